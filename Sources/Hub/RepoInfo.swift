import Foundation

/// The part of the Hub's model-info answer (`GET /api/models/{repo}/revision/{rev}?blobs=true`)
/// that a download needs: the commit the revision points to and every file with its size and hash.
public struct RepoInfo: Sendable, Decodable {
    public struct File: Sendable, Decodable {
        /// Path inside the repository, with `/` separators.
        public let path: String
        /// Size in bytes, when the server sends it (it does with `blobs=true`).
        public let size: Int64?
        /// Git blob sha1; the cache names non-LFS blobs after it.
        public let blobID: String?
        /// For files stored with Git LFS: the sha256 of the content (also the blob's name in the cache).
        public let lfs: LFS?

        public struct LFS: Sendable, Decodable {
            public let sha256: String
            public let size: Int64?
        }

        enum CodingKeys: String, CodingKey {
            case path = "rfilename", size, blobID = "blobId", lfs
        }

        public init(path: String, size: Int64?, blobID: String?, lfs: LFS?) {
            self.path = path
            self.size = size
            self.blobID = blobID
            self.lfs = lfs
        }

        /// The size the downloaded file must have.
        var expectedSize: Int64? { lfs?.size ?? size }
    }

    /// Commit hash the requested revision resolved to.
    public let commit: String
    public let files: [File]

    enum CodingKeys: String, CodingKey {
        case commit = "sha", files = "siblings"
    }

    public init(commit: String, files: [File]) {
        self.commit = commit
        self.files = files
    }
}
