import Foundation
import Hummingbird
import HummingbirdTesting
import Testing
@testable import Server

/// `detect` over HTTP: `/v1/analyze` and `/v1/batches` give each box in both frames, the pixels those of the image as a
/// viewer shows it (an EXIF-rotated JPEG: stored 333×217, upright 217×333), and the batch CSV has both as columns.
extension AnalyzeAPITests {
    static let detectAnswer = #"{"objects": [{"bbox_2d": [100, 200, 900, 800], "label": "QR code", "category": "qr_code", "text": null}]}"#
    /// [100, 200, 900, 800] of 217×333: 21.7, 66.6, 195.3, 266.4 rounded.
    static let uprightPixels = [22, 67, 195, 266]

    @Test func detectOverHTTPMapsBoxesIntoTheUprightImage() async throws {
        let image = try Fixture.dataURL("grounding/rect_orient6.jpg", mime: "image/jpeg")
        try await runApp(engine: ScriptedEngine(Self.detectAnswer)) { client in
            let response = try await client.post("/v1/analyze", json: [
                "task": "detect", "images": [image], "options": ["instruction": "QR codes"],
            ])
            #expect(response.status == .ok, "\(response.raw)")
            #expect(response.json["task"] as? String == "detect@2")
            let result = try #require(response.json["result"] as? [String: Any])
            #expect(result["image_size"] as? [Int] == [217, 333])
            let objects = try #require(result["objects"] as? [[String: Any]])
            #expect(objects.count == 1)
            #expect(objects.first?["bbox_2d"] as? [Int] == [100, 200, 900, 800])
            #expect(objects.first?["bbox_px"] as? [Int] == Self.uprightPixels)
            // Without an image there is nothing to point at: the item's error, not a 5xx.
            let textOnly = try await client.post("/v1/analyze", json: ["task": "detect", "text": "no picture"])
            #expect(textOnly.status == .ok && textOnly.json["error"] as? String == "the detect task needs an image")
        }
    }

    @Test func detectBatchResultsAndCSVCarryBothFrames() async throws {
        let image = try Fixture.dataURL("grounding/rect_orient6.jpg", mime: "image/jpeg")
        try await runApp(engine: ScriptedEngine(Self.detectAnswer)) { client in
            let created = try await client.post("/v1/batches?task=detect", raw: try jsonl([["id": "rotated", "image": image]]))
            #expect(created.status == .ok, "\(created.raw)")
            let id = try #require(created.json["id"] as? String)
            #expect(try await waitForJob(client, id, seconds: 30).json["status"] as? String == "completed")
            let (_, lines, _) = try await text(client, "/v1/batches/\(id)/results")
            let item = try #require(try JSONSerialization.jsonObject(with: Data(lines.utf8)) as? [String: Any])
            let objects = try #require((item["result"] as? [String: Any])?["objects"] as? [[String: Any]])
            #expect(objects.first?["bbox_px"] as? [Int] == Self.uprightPixels)
            let (_, csv, _) = try await text(client, "/v1/batches/\(id)/results?format=csv")
            let rows = csv.components(separatedBy: "\r\n").filter { !$0.isEmpty }
            #expect(rows.first == "id,task,status,error,objects,boxes_2d,boxes_px,result")
            #expect(rows.count == 2)
            #expect(rows.last?.hasPrefix("rotated,detect,ok,,QR code,\"QR code [100,200,900,800]\",\"QR code [22,67,195,266]\",") == true,
                    "\(rows.last ?? "")")
        }
    }
}
