import Foundation
import Testing
@testable import BalconyCore

@Suite struct SHA256Tests {
    /// NIST FIPS 180-4 examples and the empty string, as hashlib prints them.
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
    ])
    func knownVectors(_ message: String, _ expected: String) {
        #expect(SHA256.hash(Array(message.utf8)).hex == expected)
    }

    @Test func millionA() {
        let message = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA256.hash(message).hex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Lengths around the padding boundaries (55/56 bytes leave no room for the length field),
    /// against hashlib digests of bytes `i % 251`.
    @Test(arguments: [
        (55, "463eb28e72f82e0a96c0a4cc53690c571281131f672aa229e0d45ae59b598b59"),
        (56, "da2ae4d6b36748f2a318f23e7ab1dfdf45acdc9d049bd80e59de82a60895f562"),
        (63, "29af2686fd53374a36b0846694cc342177e428d1647515f078784d69cdb9e488"),
        (64, "fdeab9acf3710362bd2658cdc9a29e8f9c757fcf9811603a8c447cd1d9151108"),
        (65, "4bfd2c8b6f1eec7a2afeb48b934ee4b2694182027e6d0fc075074f2fabb31781"),
        (119, "da18797ed7c3a777f0847f429724a2d8cd5138e6ed2895c3fa1a6d39d18f7ec6"),
        (120, "f52b23db1fbb6ded89ef42a23ce0c8922c45f25c50b568a93bf1c075420bbb7c"),
    ])
    func paddingBoundaries(_ length: Int, _ expected: String) {
        let message = (0..<length).map { UInt8($0 % 251) }
        #expect(SHA256.hash(message).hex == expected)
    }

    /// Streaming in uneven pieces gives the one-shot digest, and `finalize` does not disturb the
    /// hasher.
    @Test func streamingMatchesOneShot() {
        let message = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let expected = SHA256.hash(message)
        var hasher = SHA256()
        var offset = 0
        for size in [0, 1, 63, 64, 65, 3, 1000, 127, 128, 5000] where offset < message.count {
            let end = min(offset + size, message.count)
            hasher.update(message[offset..<end])
            offset = end
            _ = hasher.finalize()
        }
        hasher.update(message[offset...])
        #expect(hasher.finalize() == expected)
        #expect(SHA256.hash(Data(message)) == expected)
    }

    @Test func fileDigest() throws {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("balcony-sha256-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        try Data(repeating: UInt8(ascii: "a"), count: 1_000_000).write(to: url)
        #expect(try SHA256.hash(contentsOf: url).hex
            == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")

        try Data().write(to: url)
        #expect(try SHA256.hash(contentsOf: url).hex
            == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func missingFileThrows() {
        #expect(throws: ModelFileError.self) {
            try SHA256.hash(contentsOf: URL(fileURLWithPath: "/nonexistent/balcony-sha256"))
        }
    }
}
