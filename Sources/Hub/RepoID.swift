import Foundation

/// A model repository on the Hub, `org/name` (or a bare legacy `name`).
///
/// Validated with the Hub's own rules so that an id can never name a folder outside the cache:
/// letters, digits, `-`, `_` and `.`; no `--` or `..`; at most 96 characters per part.
public struct RepoID: Sendable, Hashable, CustomStringConvertible {
    public let namespace: String?
    public let name: String

    public init(_ string: String) throws {
        let parts = string.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), parts.allSatisfy(RepoID.isValidPart) else {
            throw HubError.invalidRepoID(string)
        }
        namespace = parts.count == 2 ? parts[0] : nil
        name = parts.last!
    }

    /// `org/name`, as the Hub writes it.
    public var description: String { namespace.map { "\($0)/\(name)" } ?? name }

    /// The cache folder name `huggingface_hub` uses: `models--org--name`.
    public var cacheFolderName: String { (["models"] + (namespace.map { [$0] } ?? []) + [name]).joined(separator: "--") }

    /// Whether `string` has the shape of a repo id (used to tell repo ids from folder paths).
    public static func isValid(_ string: String) -> Bool { (try? RepoID(string)) != nil }

    static func isValidPart(_ part: String) -> Bool {
        guard !part.isEmpty, part.count <= 96, !part.contains("--"), !part.contains(".."),
              !part.hasPrefix("-"), !part.hasPrefix("."), !part.hasSuffix("-"), !part.hasSuffix(".")
        else { return false }
        return part.unicodeScalars.allSatisfy { s in
            (s.isASCII && (CharacterSet.alphanumerics.contains(s))) || s == "-" || s == "_" || s == "."
        }
    }
}

/// Checks on strings that come from the network or the command line and become paths.
enum PathRules {
    /// A commit hash as the Hub returns it: 40 lowercase hex digits.
    static func isCommitHash(_ s: String) -> Bool {
        s.utf8.count == 40 && s.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// A blob name: a git sha1 (40 hex) or an LFS sha256 (64 hex).
    static func isEtag(_ s: String) -> Bool {
        (s.utf8.count == 40 || s.utf8.count == 64)
            && s.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// A repository file path that stays inside the snapshot folder: relative, no `.`/`..`
    /// components, no empty components, no NUL or backslash.
    static func isSafeRelativePath(_ s: String) -> Bool {
        guard !s.isEmpty, !s.hasPrefix("/"), !s.contains("\0"), !s.contains("\\") else { return false }
        return s.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { $0 != "" && $0 != "." && $0 != ".." }
    }

    /// A branch or tag name usable under `refs/` (branches may contain `/`, as in `refs/pr/1`).
    static func isSafeRevision(_ s: String) -> Bool {
        isSafeRelativePath(s) && s.count <= 255
    }
}
