import Foundation
import Imaging
import Qwen3VL
import RemoteImages

/// Turns an `image_url` into decoded pixels: inline `data:` URLs always, local files only under the
/// directory allowed by `--allow-image-dir`, `http(s)` URLs only with `--allow-remote-images` (fetched
/// beforehand by `RemoteImageFetcher`, see `prefetchRemote`).
struct ImageSource: Sendable {
    /// Resolved (symlink-free) allowed directory, or nil.
    let allowedDirectory: URL?
    let maxFileBytes: Int
    let maxPixels: Int

    /// Set when remote URLs may be fetched (`--allow-remote-images`).
    let remote: RemoteImageFetcher?

    init(configuration: ServerConfiguration) {
        remote = configuration.allowRemoteImages
            ? RemoteImageFetcher(maxBytes: configuration.maxImageFileBytes, allowPrivateAddresses: configuration.allowPrivateImageHosts)
            : nil
        allowedDirectory = configuration.allowedImageDirectory.map { ImageSource.realPath($0.path).map(URL.init(fileURLWithPath:)) ?? $0 }
        maxFileBytes = configuration.maxImageFileBytes
        maxPixels = configuration.maxDecodedPixels
    }

    /// An image's bytes with what its header says, checked but not yet decoded.
    struct Inspected {
        let bytes: Data
        let header: ImageHeader
        let param: String
    }

    /// Reads one image and checks its header against the per-image and per-request limits (`allowance`): a request's
    /// images are all inspected before any of them is decoded. `param` names the content part for error messages;
    /// `fetched` holds the bytes of remote URLs fetched for this request.
    func inspect(_ url: String, param: String, fetched: [String: Data] = [:], allowance: inout ImageAllowance) throws -> Inspected {
        let bytes = try fetched[url] ?? self.bytes(url, param: param)
        do {
            // The claimed MIME type is ignored: the header is read from the magic bytes on.
            let header = try ImageDecoder.header(bytes)
            if header.pixels > maxPixels || header.width <= 0 || header.height <= 0 {
                throw ImageError.tooLarge(width: header.width, height: header.height, limit: maxPixels)
            }
            try allowance.admit(header, param: param)
            return Inspected(bytes: bytes, header: header, param: param)
        } catch let error as ImageError {
            throw ServerError.image(error, param: param)
        }
    }

    /// Decodes an inspected image straight to the size `budget` gives it (Qwen's `smart_resize` with `factor`), so
    /// that what a request keeps is its images at their budget, never at their full size.
    func decode(_ image: Inspected, budget: ImageBudget, factor: Int) throws -> RGBImage {
        do {
            let (height, width) = try smartResize(height: image.header.height, width: image.header.width, factor: factor,
                                                  minPixels: budget.minPixels, maxPixels: budget.maxPixels)
            let decoded = try ImageDecoder.decode(image.bytes, maxPixels: maxPixels, reducingTo: (width, height))
            guard decoded.width != width || decoded.height != height else { return decoded }
            return resizeBicubicAntialiased(decoded, width: width, height: height)
        } catch let error as ImageError {
            throw ServerError.image(error, param: image.param)
        }
    }

    /// Fetches the `http(s)` image URLs of a request (when allowed), keyed by URL.
    func prefetchRemote(_ urls: [(url: String, param: String)]) async throws -> [String: Data] {
        var fetched: [String: Data] = [:]
        for (url, param) in urls {
            let lower = url.trimmingCharacters(in: .whitespaces).prefix(8).lowercased()
            guard lower.hasPrefix("http://") || lower.hasPrefix("https://"), fetched[url] == nil else { continue }
            guard let remote else { throw ServerError.remoteImageURL(param: param) }
            do {
                fetched[url] = try await remote.fetch(url)
            } catch {
                if case .tooLarge(let bytes, let limit) = error { throw ServerError.imageFileTooLarge(bytes: bytes, limit: limit, param: param) }
                throw ServerError.badImageData(error.description, param: param)
            }
        }
        return fetched
    }

    func bytes(_ url: String, param: String) throws -> Data {
        let trimmed = url.trimmingCharacters(in: .whitespacesAndNewlines)
        let lower = trimmed.prefix(8).lowercased()
        if lower.hasPrefix("data:") { return try dataURL(trimmed, param: param) }
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") { throw ServerError.remoteImageURL(param: param) }
        if lower.hasPrefix("file://") {
            guard let path = URL(string: trimmed)?.path, !path.isEmpty else {
                throw ServerError.badImageData("malformed file:// URL", param: param)
            }
            return try localFile(path, param: param)
        }
        if trimmed.hasPrefix("/") { return try localFile(trimmed, param: param) }
        if let colon = trimmed.firstIndex(of: ":"), trimmed[..<colon].allSatisfy({ $0.isLetter }) {
            throw ServerError.badImageData("unsupported URL scheme '\(trimmed[..<colon])'; send a data: URL", param: param)
        }
        // A relative path: resolved under the allowed directory.
        guard let allowedDirectory else { throw ServerError.localImagesDisabled(param: param) }
        return try localFile(allowedDirectory.appendingPathComponent(trimmed).path, param: param)
    }

    /// `data:[<mime>][;base64],<payload>`; only base64 payloads carry binary images.
    private func dataURL(_ url: String, param: String) throws -> Data {
        guard let comma = url.firstIndex(of: ",") else {
            throw ServerError.badImageData("malformed data: URL (no comma); expected data:image/png;base64,...", param: param)
        }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma].lowercased()
        guard header.split(separator: ";").contains("base64") else {
            throw ServerError.badImageData("data: URLs must be base64-encoded (data:image/png;base64,...)", param: param)
        }
        var payload = String(url[url.index(after: comma)...])
        payload.removeAll { $0 == "\n" || $0 == "\r" || $0 == " " || $0 == "\t" }
        // Accept base64url and missing padding, which some clients produce.
        if payload.contains("-") || payload.contains("_") {
            payload = payload.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        }
        if payload.count % 4 != 0 { payload += String(repeating: "=", count: 4 - payload.count % 4) }
        guard let data = Data(base64Encoded: payload) else {
            throw ServerError.badImageData("the data: URL payload is not valid base64", param: param)
        }
        guard !data.isEmpty else { throw ServerError.image(.empty, param: param) }
        return data
    }

    /// A file under the allowed directory, after resolving `..` and symlinks.
    private func localFile(_ path: String, param: String) throws -> Data {
        guard let allowedDirectory else { throw ServerError.localImagesDisabled(param: param) }
        guard let resolved = ImageSource.realPath(path) else { throw ServerError.imageFileUnreadable(param: param) }
        let root = allowedDirectory.path.hasSuffix("/") ? allowedDirectory.path : allowedDirectory.path + "/"
        guard resolved.hasPrefix(root) else { throw ServerError.imagePathOutsideAllowedDirectory(param: param) }
        let attributes = try? FileManager.default.attributesOfItem(atPath: resolved)
        guard let size = (attributes?[.size] as? NSNumber)?.intValue, attributes?[.type] as? FileAttributeType == .typeRegular else {
            throw ServerError.imageFileUnreadable(param: param)
        }
        guard size <= maxFileBytes else { throw ServerError.imageFileTooLarge(bytes: size, limit: maxFileBytes, param: param) }
        guard let data = FileManager.default.contents(atPath: resolved) else { throw ServerError.imageFileUnreadable(param: param) }
        return data
    }

    /// The canonical absolute path (`realpath(3)`: no `..`, no symlinks), or nil if it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

/// How many images, and how many pixels in all (as their headers announce them), one request may bring: the images
/// are decoded one after another, but each costs decode time and its full-size buffer while it is decoded.
struct ImageAllowance {
    let maxImages: Int
    let maxPixels: Int
    private(set) var images = 0
    private(set) var pixels = 0

    init(maxImages: Int, maxPixels: Int) {
        self.maxImages = maxImages
        self.maxPixels = maxPixels
    }

    mutating func admit(_ header: ImageHeader, param: String) throws {
        images += 1
        guard images <= maxImages else { throw ServerError.tooManyImages(limit: maxImages) }
        pixels += header.pixels
        guard pixels <= maxPixels else { throw ServerError.requestPixelsExceeded(pixels: pixels, limit: maxPixels, param: param) }
    }
}

/// Pixel budgets per image from `detail` and the request's `max_pixels` / `min_pixels`.
struct ImageBudget: Sendable, Equatable {
    var minPixels: Int
    var maxPixels: Int

    /// `low`: at most `lowDetailImageTokens` tokens; `high`/`auto`: the preprocessor's maximum capped by
    /// `maxImageTokens`. An explicit `max_pixels` replaces either, but never raises the operator's cap
    /// (`--max-image-tokens`): the server's ceiling is not the client's to lift.
    static func resolve(detail: ChatCompletionRequest.Detail?, requestMaxPixels: Int?, requestMinPixels: Int?,
                        preprocessor: PreprocessorConfiguration, configuration: ServerConfiguration) -> ImageBudget {
        let perToken = ImageTokenBudget.pixelsPerToken
        let high = min(preprocessor.maxPixels, configuration.maxImageTokens * perToken)
        var maxPixels = detail == .low ? min(high, configuration.lowDetailImageTokens * perToken) : high
        if let requestMaxPixels { maxPixels = min(requestMaxPixels, high) }
        let minPixels = min(requestMinPixels ?? preprocessor.minPixels, maxPixels)
        return ImageBudget(minPixels: minPixels, maxPixels: maxPixels)
    }
}
