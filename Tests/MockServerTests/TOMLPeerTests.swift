import Foundation
import MockFiles
import TestSupport
import Testing

/// The TOML reader against Python's `tomllib` (the standard library's TOML 1.0 reader, a peer
/// nobody here wrote) on realistic rumqttd configuration files and on the TOML 1.0
/// specification's examples: the same values, or both refuse. Dates and times are the one
/// known difference: wmq-mock's reader refuses them on purpose (its configuration has none),
/// and no sample here holds one. python3 is part of every machine this project builds on;
/// under CI=true its absence fails these tests.
@Suite("TOML against Python's tomllib")
struct TOMLPeerTests {
    /// Values in one canonical text both sides write alike: strings and keys as UTF-8 hex,
    /// tables with their keys sorted, numbers with their kind.
    static func canonical(_ value: TOMLValue) -> String {
        switch value {
        case .string(let text): "s:" + hex(text)
        case .integer(let number): "i:\(number)"
        case .float(let number): "f:" + (number.isNaN ? "nan" : "\(number)")
        case .boolean(let flag): "b:\(flag)"
        case .array(let items): "[" + items.map(canonical).joined(separator: ",") + "]"
        case .table(let table): canonical(table)
        }
    }

    static func canonical(_ table: TOMLTable) -> String {
        let keys = table.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        return "{" + keys.map { hex($0) + "=" + canonical(table[$0] ?? .boolean(false)) }.joined(separator: ",") + "}"
    }

    static func hex(_ text: String) -> String {
        text.utf8.map { String(format: "%02x", $0) }.joined()
    }

    static let python = #"""
        import math, sys, tomllib
        def hexs(text): return text.encode("utf-8").hex()
        def canon(v):
            if isinstance(v, bool): return "b:" + ("true" if v else "false")
            if isinstance(v, int): return "i:%d" % v
            if isinstance(v, float): return "f:" + ("nan" if math.isnan(v) else repr(v))
            if isinstance(v, str): return "s:" + hexs(v)
            if isinstance(v, list): return "[" + ",".join(canon(x) for x in v) + "]"
            if isinstance(v, dict):
                return "{" + ",".join(hexs(k) + "=" + canon(v[k]) for k in sorted(v, key=lambda k: k.encode("utf-8"))) + "}"
            raise SystemExit("unexpected " + type(v).__name__)
        try:
            document = tomllib.loads(sys.stdin.buffer.read().decode("utf-8"))
        except tomllib.TOMLDecodeError as error:
            print("refused: %s" % error)
        else:
            print(canon(document))
        """#

    /// tomllib's reading of `text`: its canonical values, or "refused: …".
    static func tomllib(_ text: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", python]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "python3 failed on \(text)")
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func ours(_ text: String) -> String {
        do { return canonical(try TOML.parse(text)) } catch { return "refused: \(error)" }
    }

    /// Configuration files as rumqttd users write them: blank lines between tables, comments,
    /// indented sub-tables, inline tables, arrays of tables, CRLF line ends.
    static let configurations = [
        """
        id = 0

        [router]
        id = 0
        max_connections = 10010
        max_outgoing_packet_count = 200
        max_segment_size = 104857600
        max_segment_count = 10

        # The MQTT 3.1.1 listener
        [v4.1]
        name = "v4-1"
        listen = "0.0.0.0:1883"
        next_connection_delay_ms = 1

            [v4.1.connections]
            connection_timeout_ms = 60000
            max_payload_size = 20480
            max_inflight_count = 100
            dynamic_filters = true

        [v5.1]
        name = "v5-1"
        listen = "0.0.0.0:1884"
        next_connection_delay_ms = 1
            [v5.1.connections]
            connection_timeout_ms = 60000
            max_payload_size = 20480
            max_inflight_count = 100

        [ws.1]
        name = "ws-1"
        listen = "127.0.0.1:8885"

        [wmq]
        mode = "works"

        [console]
        listen = "0.0.0.0:3030"

        """,
        "[ws.1]\r\nlisten = \"127.0.0.1:8885\"\r\n\r\n[wmq]\r\nmode = \"works\"\r\n",
        """
        # prometheus and bridges, as some deployments have them
        [prometheus]
        listen = "127.0.0.1:9042"
        interval = 1


        [bridge]
        name = "bridge-1"
        addr = "localhost:1883"
        qos = 1
        sub_path = "#"
        reconnection_delay = 5
        ping_delay = 5
        timeout_delay = 5
            [bridge.connections]
            connection_timeout_ms = 60000
            max_payload_size = 20480

        [[users]]
        name = "alice"
        password = "s3cret"

        [[users]]
        name = "bob"
        roles = ["publish", "subscribe"]
        limits = { publish_rate = 100, burst = 10 }
        """,
    ]

    /// Valid documents in the manner of the TOML 1.0 specification's examples (no dates).
    static let specification = [
        #"""
        # This is a TOML document

        title = "TOML Example"

        [owner]
        name = "Tom Preston-Werner"

        [database]
        enabled = true
        ports = [ 8000, 8001, 8002 ]
        data = [ ["delta", "phi"], [3.14] ]
        temp_targets = { cpu = 79.5, case = 72.0 }

        [servers]

        [servers.alpha]
        ip = "10.0.0.1"
        role = "frontend"

        [servers.beta]
        ip = "10.0.0.2"
        role = "backend"
        """#,
        #"""
        key = "value"
        bare_key = "value"
        bare-key = "value"
        1234 = "value"
        "127.0.0.1" = "value"
        "character encoding" = "value"
        "ʎǝʞ" = "value"
        'key2' = "value"
        'quoted "value"' = "value"
        name = "Orange"
        physical.color = "orange"
        physical.shape = "round"
        site."google.com" = true
        fruit.name = "banana"     # this is best practice
        fruit. color = "yellow"    # same as fruit.color
        fruit . flavor = "banana"   # same as fruit.flavor
        3.14159 = "pi"
        """#,
        #"""
        str = "I'm a string. \"You can quote me\". Name\tJos\u00E9\nLocation\tSF."
        str1 = """
        Roses are red
        Violets are blue"""
        str2 = """
        The quick brown \


          fox jumps over \
            the lazy dog."""
        str4 = """Here are two quotation marks: "". Simple enough."""
        str5 = """Here are three quotation marks: ""\"."""
        str7 = """"This," she said, "is just a pointless statement.""""
        winpath  = 'C:\Users\nodejs\templates'
        winpath2 = '\\ServerX\admin$\system32\'
        quoted   = 'Tom "Dubs" Preston-Werner'
        regex    = '<\i\c*\s*>'
        regex2 = '''I [dw]on't need \d{2} apples'''
        lines  = '''
        The first newline is
        trimmed in raw strings.
           All other whitespace
           is preserved.
        '''
        quot15 = '''Here are fifteen quotation marks: """""""""""""""'''
        apos15 = "Here are fifteen apostrophes: '''''''''''''''"
        """#,
        #"""
        int1 = +99
        int2 = 42
        int3 = 0
        int4 = -17
        int5 = 1_000
        int6 = 5_349_221
        int7 = 53_49_221
        int8 = 1_2_3_4_5
        hex1 = 0xDEADBEEF
        hex2 = 0xdeadbeef
        hex3 = 0xdead_beef
        oct1 = 0o01234567
        oct2 = 0o755
        bin1 = 0b11010110
        flt1 = +1.0
        flt2 = 3.1415
        flt3 = -0.01
        flt4 = 5e+22
        flt5 = 1e06
        flt6 = -2E-2
        flt7 = 6.626e-34
        flt8 = 224_617.445_991_228
        sf1 = inf
        sf2 = +inf
        sf3 = -inf
        sf4 = nan
        sf5 = +nan
        sf6 = -nan
        bool1 = true
        bool2 = false
        """#,
        #"""
        integers = [ 1, 2, 3 ]
        colors = [ "red", "yellow", "green" ]
        nested_arrays_of_ints = [ [ 1, 2 ], [3, 4, 5] ]
        nested_mixed_array = [ [ 1, 2 ], ["a", "b", "c"] ]
        string_array = [ "all", 'strings', """are the same""", '''type''' ]
        numbers = [ 0.1, 0.2, 0.5, 1, 2, 5 ]
        contributors = [
          "Foo Bar <foo@example.com>",
          { name = "Baz Qux", email = "bazqux@example.com", url = "https://example.com/bazqux" }
        ]
        integers2 = [
          1, 2, 3
        ]
        integers3 = [
          1,
          2, # this is ok
        ]
        """#,
        #"""
        [table-1]
        key1 = "some string"
        key2 = 123

        [table-2]
        key1 = "another string"
        key2 = 456

        [dog."tater.man"]
        type.name = "pug"

        [a.b.c]            # this is best practice
        [ d.e.f ]          # same as [d.e.f]
        [ g .  h  . i ]    # same as [g.h.i]
        [ j . "ʞ" . 'l' ]  # same as [j."ʞ".'l']

        # [x] you
        # [x.y] don't
        # [x.y.z] need these
        [x.y.z.w] # for this to work

        [x] # defining a super-table afterward is ok

        [fruit]
        apple.color = "red"
        apple.taste.sweet = true

        [fruit.apple.texture]  # you can add sub-tables
        smooth = true
        """#,
        #"""
        name = { first = "Tom", last = "Preston-Werner" }
        point = { x = 1, y = 2 }
        animal = { type.name = "pug" }

        [[products]]
        name = "Hammer"
        sku = 738594937

        [[products]]  # empty table within the array

        [[products]]
        name = "Nail"
        sku = 284758393

        color = "gray"

        [[fruits]]
        name = "apple"

        [fruits.physical]  # subtable
        color = "red"
        shape = "round"

        [[fruits.varieties]]  # nested array of tables
        name = "red delicious"

        [[fruits.varieties]]
        name = "granny smith"

        [[fruits]]
        name = "banana"

        [[fruits.varieties]]
        name = "plantain"

        points = [ { x = 1, y = 2, z = 3 },
                   { x = 7, y = 8, z = 9 },
                   { x = 2, y = 4, z = 8 } ]
        """#,
    ]

    /// Documents the specification calls invalid.
    static let invalid = [
        "key = # INVALID",
        "first = \"Tom\" last = \"Preston-Werner\" # INVALID",
        "= \"no key name\"  # INVALID",
        "\"\"\"key\"\"\" = \"not allowed\"",
        "name = \"Tom\"\nname = \"Pradyun\"",
        "spelling = \"favorite\"\n\"spelling\" = \"favourite\"",
        "fruit.apple = 1\nfruit.apple.smooth = true",
        "str5 = \"\"\"Here are three quotation marks: \"\"\".\"\"\"",
        "apos15 = '''Here are fifteen apostrophes: ''''''''''''''''''",
        "invalid_float_1 = .7\n",
        "invalid_float_2 = 7.\n",
        "invalid_float_3 = 3.e+20\n",
        "utf8_dec = 01\n",
        "[fruit]\napple = \"red\"\n\n[fruit]\norange = \"orange\"",
        "[fruit]\napple = \"red\"\n\n[fruit.apple]\ntexture = \"smooth\"",
        "[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n\n[fruit.apple]",
        "[fruit]\napple.color = \"red\"\napple.taste.sweet = true\n\n[fruit.apple.taste]",
        "[fruit.apple]\nx = 1\n\n[fruit]\napple.y = 2",
        "type = { name = \"Nail\" }\ntype.edible = false",
        "[product]\ntype.name = \"Nail\"\ntype = { edible = false }",
        "[fruit.physical]\ncolor = \"red\"\n\n[[fruit]]\nname = \"apple\"",
        "fruits = []\n\n[[fruits]]",
        "[[fruits]]\nname = \"apple\"\n\n[[fruits.varieties]]\nname = \"red delicious\"\n\n[fruits.varieties]\nname = \"granny smith\"",
        "integers = [ 1, 2, 3 ",
        "a = \"\\x41\"",
        "a = 'line\nbreak'",
        "a = 1\r\rb = 2",
    ]

    /// tomllib takes the text, and wmq's reader reads the same values from it.
    static func bothRead(_ text: String, _ label: String) throws {
        let theirs = try tomllib(text)
        #expect(!theirs.hasPrefix("refused"), "tomllib refused \(label): \(theirs)")
        #expect(ours(text) == theirs, "\(label)")
    }

    @Test(arguments: Array(configurations.indices))
    func realisticConfigurations(index: Int) throws {
        try Self.bothRead(Self.configurations[index], "configuration \(index)")
    }

    @Test(arguments: Array(specification.indices))
    func specificationExamples(index: Int) throws {
        try Self.bothRead(Self.specification[index], "example \(index)")
    }

    @Test(arguments: Array(invalid.indices))
    func invalidDocumentsAreRefusedByBoth(index: Int) throws {
        let text = Self.invalid[index]
        #expect(try Self.tomllib(text).hasPrefix("refused"), "tomllib took invalid example \(index)")
        #expect(Self.ours(text).hasPrefix("refused"), "wmq's reader took invalid example \(index): \(Self.ours(text))")
    }

    /// The newcomer's case: docs/mock.md's example with a blank line before a table.
    @Test func aBlankLineBeforeATable() throws {
        let table = try TOML.parse("[ws.1]\nlisten = \"127.0.0.1:8885\"\n\n[wmq]\nmode = \"works\"\n")
        guard case .table(let wmq)? = table["wmq"] else {
            Issue.record("no [wmq] table")
            return
        }
        #expect(wmq["mode"] == .string("works"))
        // Blank lines anywhere: between keys, at the start, several, with blanks on them.
        let spaced = try TOML.parse("\n\n  \na = 1\n\n\t\nb = 2\n\n")
        #expect(spaced["a"] == .integer(1) && spaced["b"] == .integer(2))
    }
}
