import Foundation
import PostgresStore
import Store
import Testing

/// One suite, both `ConversationStore`s: what the web page sees must not depend on the database behind it.
enum Backend: String, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }

    var isAvailable: Bool { self == .sqlite || TestDatabase.available }

    /// Runs `body` with a fresh store of this kind.
    func withConversations(_ body: (any ConversationStore) async throws -> Void) async throws {
        switch self {
        case .sqlite: try await body(try SQLiteConversationStore.inMemory())
        case .postgres: try await TestDatabase.withFresh { try await body($0.conversations) }
        }
    }

    func withJobs(_ body: (any JobQueue) async throws -> Void) async throws {
        switch self {
        case .sqlite: try await body(try SQLiteJobQueue.inMemory())
        case .postgres: try await TestDatabase.withFresh { try await body($0.jobs) }
        }
    }
}

/// Backends to run: PostgreSQL only when a test server is configured.
let backends = Backend.allCases.filter(\.isAvailable)

func png(_ seed: UInt8) -> Data {
    // A valid 1×1 PNG whose last byte of the image data differs by seed (different hash, same sniffed type).
    var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    bytes += Array("postlens test image \(seed)".utf8)
    return Data(bytes)
}

func expectStoreError(_ expected: StoreError, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async {
    do {
        try await body()
        Issue.record("expected \(expected)", sourceLocation: sourceLocation)
    } catch let error as StoreError {
        #expect(error == expected, sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(expected), got \(error)", sourceLocation: sourceLocation)
    }
}

@Suite struct ConversationStoreConformanceTests {
    @Test(arguments: backends) func createAppendListRenameDelete(_ backend: Backend) async throws {
        try await backend.withConversations { store in
            let first = try await store.createConversation(title: "  First  ", parameters: .object(["max_tokens": .number(64)]))
            #expect(first.title == "First")
            try await Task.sleep(for: .milliseconds(5))
            let second = try await store.createConversation(title: "Second", parameters: nil)
            #expect(try await store.listConversations().map(\.id) == [second.id, first.id], "newest first")

            let user = try await store.appendMessage(to: first.id, NewMessage(role: .user, content: "What does the sign say?"))
            let answer = try await store.appendMessage(to: first.id, NewMessage(role: .assistant, content: "It says **OPEN**.",
                                                                                stats: .object(["ttft_ms": .number(120)])))
            let list = try await store.listConversations()
            #expect(list.first?.id == first.id, "a new message moves the conversation to the top")
            #expect(list.first?.messageCount == 2)
            let loaded = try await store.conversation(id: first.id)
            #expect(loaded.messages == [user, answer])
            #expect(loaded.parameters == .object(["max_tokens": .number(64)]))

            #expect(try await store.renameConversation(id: first.id, title: "Shop sign").title == "Shop sign")
            #expect(try await store.conversation(id: first.id).title == "Shop sign")
            let updated = try await store.updateConversation(id: first.id, title: nil, parameters: .object(["temperature": .number(0.5)]))
            #expect(updated.title == "Shop sign")
            #expect(try await store.conversation(id: first.id).parameters == .object(["temperature": .number(0.5)]))

            try await store.deleteConversation(id: first.id)
            #expect(try await store.listConversations().map(\.id) == [second.id])
            await expectStoreError(.conversationNotFound(first.id)) { _ = try await store.conversation(id: first.id) }
        }
    }

    @Test(arguments: backends) func unknownIdsAndInvalidInputChangeNothing(_ backend: Backend) async throws {
        try await backend.withConversations { store in
            await expectStoreError(.conversationNotFound("nope")) { try await store.deleteConversation(id: "nope") }
            await expectStoreError(.conversationNotFound("nope")) { _ = try await store.renameConversation(id: "nope", title: "x") }
            await expectStoreError(.conversationNotFound("nope")) {
                _ = try await store.appendMessage(to: "nope", NewMessage(role: .user, content: "hi"))
            }
            await expectStoreError(.invalid("title must not be empty")) { _ = try await store.createConversation(title: " ", parameters: nil) }
            let conversation = try await store.createConversation(title: "A", parameters: nil)
            await expectStoreError(.invalid("an image is not PNG, JPEG, WebP or GIF")) {
                _ = try await store.appendMessage(to: conversation.id, NewMessage(role: .user, content: "x", images: [.bytes(Data("hello".utf8))]))
            }
            #expect(try await store.conversation(id: conversation.id).messages == [])
        }
    }

    @Test(arguments: backends) func nulCharactersBecomeReplacementCharacters(_ backend: Backend) async throws {
        try await backend.withConversations { store in
            let conversation = try await store.createConversation(title: "nul\u{0}title", parameters: nil)
            let appended = try await store.appendMessage(to: conversation.id, NewMessage(role: .assistant, content: "before\u{0}after"))
            #expect(appended.content == "before\u{FFFD}after")
            let reloaded = try await store.conversation(id: conversation.id)
            #expect(reloaded.messages.map(\.content) == ["before\u{FFFD}after"])
            #expect(reloaded.title == "nul\u{FFFD}title")
        }
    }

    @Test(arguments: backends) func truncateKeepsThePrefixAndDropsOrphanImages(_ backend: Backend) async throws {
        try await backend.withConversations { store in
            let conversation = try await store.createConversation(title: "T", parameters: nil)
            var imageHash = ""
            for index in 0..<4 {
                let message = try await store.appendMessage(to: conversation.id, NewMessage(role: index % 2 == 0 ? .user : .assistant, content: "m\(index)",
                                                                                            images: index == 2 ? [.bytes(png(9))] : []))
                if index == 2 { imageHash = message.images[0].sha256 }
            }
            #expect(try await store.image(sha256: imageHash).data == png(9))
            let truncated = try await store.truncateMessages(of: conversation.id, keeping: 2)
            #expect(truncated.messages.map(\.content) == ["m0", "m1"])
            await expectStoreError(.imageNotFound(imageHash)) { _ = try await store.image(sha256: imageHash) }
            let appended = try await store.appendMessage(to: conversation.id, NewMessage(role: .user, content: "m2'"))
            let reloaded = try await store.conversation(id: conversation.id)
            #expect(reloaded.messages.last == appended)
            #expect(reloaded.messages.count == 3)
        }
    }

    @Test(arguments: backends) func searchMatchesTitlesAndTextLiterally(_ backend: Backend) async throws {
        try await backend.withConversations { store in
            let cats = try await store.createConversation(title: "Cat memes", parameters: nil)
            let promo = try await store.createConversation(title: "Promo", parameters: nil)
            _ = try await store.appendMessage(to: promo.id, NewMessage(role: .assistant, content: "50% off all SHOES this weekend, 周末优惠"))
            let byTitle = try await store.listConversations(matching: "cat")
            #expect(byTitle.map(\.id) == [cats.id])
            #expect(byTitle.first?.snippet == nil)
            let byText = try await store.listConversations(matching: "shoes")
            #expect(byText.map(\.id) == [promo.id])
            #expect(byText.first?.snippet?.contains("SHOES") == true)
            #expect(try await store.listConversations(matching: "优惠").map(\.id) == [promo.id])
            #expect(try await store.listConversations(matching: "50%").map(\.id) == [promo.id])
            #expect(try await store.listConversations(matching: "%").map(\.id) == [promo.id], "% is literal")
            #expect(try await store.listConversations(matching: "_").map(\.id) == [], "_ is literal")
            #expect(try await store.listConversations(matching: "dog") == [])
        }
    }

    @Test(arguments: backends) func imagesAreStoredOnceSharedAndCleanedUp(_ backend: Backend) async throws {
        try await backend.withConversations { store in
            let a = try await store.createConversation(title: "A", parameters: nil)
            let b = try await store.createConversation(title: "B", parameters: nil)
            let first = try await store.appendMessage(to: a.id, NewMessage(role: .user, content: "1", images: [.bytes(png(1)), .bytes(png(2))]))
            let inB = try await store.appendMessage(to: b.id, NewMessage(role: .user, content: "3", images: [.stored(sha256: first.images[0].sha256)]))
            #expect(inB.images == [first.images[0]])
            #expect(try await store.image(sha256: first.images[0].sha256.uppercased()).data == png(1))
            try await store.deleteConversation(id: a.id)
            #expect(try await store.image(sha256: first.images[0].sha256).data == png(1), "B still uses it")
            await expectStoreError(.imageNotFound(first.images[1].sha256)) { _ = try await store.image(sha256: first.images[1].sha256) }
            try await store.deleteConversation(id: b.id)
            await expectStoreError(.imageNotFound(first.images[0].sha256)) { _ = try await store.image(sha256: first.images[0].sha256) }
            let c = try await store.createConversation(title: "C", parameters: nil)
            await expectStoreError(ConversationRules.missingImage(first.images[0].sha256)) {
                _ = try await store.appendMessage(to: c.id, NewMessage(role: .user, content: "x", images: [.stored(sha256: first.images[0].sha256)]))
            }
        }
    }

    @Test(arguments: backends) func exportImportRoundTripsAndRefusesWholesale(_ backend: Backend) async throws {
        try await backend.withConversations { store in
            let conversation = try await store.createConversation(title: "Menu 菜单", parameters: .object(["temperature": .number(0.7)]))
            _ = try await store.appendMessage(to: conversation.id, NewMessage(role: .user, content: "Read it", images: [.bytes(png(3))]))
            _ = try await store.appendMessage(to: conversation.id, NewMessage(role: .assistant, content: "| a |", stats: .object(["cached": .bool(true)])))
            let original = try await store.conversation(id: conversation.id)
            let document = try await store.export(ids: [conversation.id], inlineImages: true)
            let decoded = try ExportDocument.decoder().decode(ExportDocument.self, from: try ExportDocument.encoder().encode(document))
            #expect(decoded == document)

            // Importing into the same store: the id is taken, so a new one; same content.
            let again = try await store.importDocument(decoded)
            #expect(again[0].id != conversation.id)
            var copy = try await store.conversation(id: again[0].id)
            copy.id = original.id
            for index in copy.messages.indices { copy.messages[index].id = original.messages[index].id }
            #expect(copy == original)

            var bad = decoded
            bad.conversations.append(ExportedConversation(id: "x", title: "", createdAt: Date(), updatedAt: Date(), parameters: nil, messages: []))
            let before = try await store.listConversations().count
            await #expect(throws: StoreError.self) { _ = try await store.importDocument(bad) }
            #expect(try await store.listConversations().count == before, "nothing half-imported")
        }
    }

    /// Two servers appending to one conversation at the same moment: positions stay dense, nothing is lost.
    @Test(arguments: backends) func concurrentAppendsKeepEveryMessage(_ backend: Backend) async throws {
        try await backend.withConversations { store in
            let conversation = try await store.createConversation(title: "busy", parameters: nil)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<20 {
                    group.addTask { _ = try await store.appendMessage(to: conversation.id, NewMessage(role: .user, content: "m\(index)")) }
                }
                try await group.waitForAll()
            }
            let messages = try await store.conversation(id: conversation.id).messages
            #expect(messages.count == 20)
            #expect(Set(messages.map(\.content)) == Set((0..<20).map { "m\($0)" }))
        }
    }
}
