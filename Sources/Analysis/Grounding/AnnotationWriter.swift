import Foundation
import Imaging
import JSON

/// `postlens analyze --draw DIR`: one annotated image per post that has an image and a result, at the image's
/// original size (EXIF orientation applied), with the result's boxes drawn on it (`AnnotatedImage`). JPEG inputs
/// are written as JPEG (quality 92), everything else as PNG. Images are read through the task runner, so the
/// same path and URL guards apply as for the analysis itself.
public struct AnnotationWriter: Sendable {
    public let runner: TaskRunner
    public let directory: URL

    public init(runner: TaskRunner, directory: URL) {
        self.runner = runner
        self.directory = directory
    }

    /// What was written, and why some posts have no image (no image, failed item, unreadable image).
    public struct Report: Sendable, Equatable {
        public var written: [String] = []
        public var skipped: [(id: String, reason: String)] = []
        public static func == (a: Report, b: Report) -> Bool {
            a.written == b.written && a.skipped.map(\.id) == b.skipped.map(\.id) && a.skipped.map(\.reason) == b.skipped.map(\.reason)
        }
    }

    /// Draws every item of `lines` (the stored result lines, by id) whose input record has an image.
    public func write(items: [InputItem], lines: [JSONValue]) async throws -> Report {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var byID: [String: JSONValue] = [:]
        for line in lines { if let id = line["id"]?.stringValue { byID[id] = line } }
        var report = Report()
        var used = Set<String>()
        for item in items {
            guard let record = item.record, let reference = record.image else { continue }
            guard let line = byID[item.id], line["status"] == "ok", let result = line["result"], !result.isNull else {
                report.skipped.append((item.id, "no result"))
                continue
            }
            let image: RGBImage
            let data: Data
            do {
                (image, data) = try await runner.loadImageWithBytes(reference)
            } catch {
                report.skipped.append((item.id, "\(error)"))
                continue
            }
            let format: ImageFormat = ImageDecoder.sniff(data) == .jpeg ? .jpeg : .png
            let name = Self.fileName(for: item, format: format, used: &used)
            let drawn = AnnotatedImage.draw(image, items: AnnotatedImage.items(in: result))
            let encoded = try ImageEncoder.encode(drawn, as: format, quality: 92)
            try encoded.write(to: directory.appendingPathComponent(name), options: .atomic)
            report.written.append(name)
        }
        return report
    }

    /// A file name from the post's id: characters outside `[A-Za-z0-9._-]` become `_`, an image extension the id
    /// already has is dropped, and a name taken by an earlier post gets the input position appended.
    static func fileName(for item: InputItem, format: ImageFormat, used: inout Set<String>) -> String {
        var stem = String(item.id.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
        let ext = (stem as NSString).pathExtension.lowercased()
        if RecordReader.imageExtensions.contains(ext) { stem = (stem as NSString).deletingPathExtension }
        stem = String(stem.drop(while: { $0 == "." }).prefix(120))
        if stem.isEmpty { stem = "post" }
        let suffix = format == .jpeg ? "jpg" : "png"
        var name = "\(stem).\(suffix)"
        if !used.insert(name).inserted {
            name = "\(stem)-\(item.seq + 1).\(suffix)"
            used.insert(name)
        }
        return name
    }
}
