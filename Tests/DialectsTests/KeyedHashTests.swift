@testable import Dialects
import Testing

/// The redactor's HMAC-SHA-256, with the key's padded blocks hashed once, against the test
/// vectors of RFC 4231 (§4.2–4.8; case 5 is about truncation and is left out): keys shorter
/// than, and longer than, SHA-256's 64-byte block.
@Suite("Keyed hash")
struct KeyedHashTests {
    static let cases: [(key: [UInt8], data: [UInt8], mac: String)] = [
        ([UInt8](repeating: 0x0B, count: 20), Array("Hi There".utf8),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        ([UInt8](repeating: 0xAA, count: 20), [UInt8](repeating: 0xDD, count: 50),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        ((1...25).map { UInt8($0) }, [UInt8](repeating: 0xCD, count: 50),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        ([UInt8](repeating: 0xAA, count: 131), Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        ([UInt8](repeating: 0xAA, count: 131),
         Array("This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".utf8),
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ]

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    @Test(arguments: 0..<cases.count)
    func rfc4231(_ index: Int) {
        let (key, data, mac) = Self.cases[index]
        let hash = KeyedHash(key: key)
        #expect(data.withUnsafeBytes { Self.hex(hash.mac($0)) } == mac)
        // Used again, and from several threads, it gives the same (its contexts are only read).
        #expect(data.withUnsafeBytes { Self.hex(hash.mac($0)) } == mac)
    }

    @Test func sharedBetweenThreads() async {
        let (key, data, mac) = Self.cases[1]
        let hash = KeyedHash(key: key)
        let results = await withTaskGroup(of: String.self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<200).map { _ in data.withUnsafeBytes { Self.hex(hash.mac($0)) } }.allSatisfy { $0 == mac } ? mac : "differs" }
            }
            return await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(results == [String](repeating: mac, count: 8))
    }

    /// A pseudonym is the first four bytes of the HMAC in hex, the same for a String and its bytes.
    @Test func pseudonymsShowTheMacsFirstFourBytes() {
        let redactor = Redactor(key: Array("Jefe".utf8))
        #expect(redactor.pseudonym("what do ya want for nothing?", kind: "token") == "‹token:5bdcc146›")
        #expect(redactor.pseudonym(Array("what do ya want for nothing?".utf8), kind: "password") == "‹password:5bdcc146›")
        #expect(redactor.pseudonym("", kind: "token") == Redactor(key: Array("Jefe".utf8)).pseudonym([UInt8](), kind: "token"))
    }
}
