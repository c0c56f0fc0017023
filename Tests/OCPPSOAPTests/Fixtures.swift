import Foundation
import OCPP
import OCPPRules

@testable import OCPPSOAP

/// The repository's rules directory and WSDL fixtures, found from this file (a fresh clone has nothing else).
enum Repository {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func rules() throws -> RuleSources {
        var files: [String: String] = [:]
        let directory = root.appendingPathComponent("Rules")
        for folder in RuleSources.folders {
            let path = directory.appendingPathComponent(folder).path
            for name in try FileManager.default.contentsOfDirectory(atPath: path) where name.hasSuffix(".yaml") {
                files[folder + name] = try String(contentsOfFile: path + "/" + name, encoding: .utf8)
            }
        }
        return RuleSources(files: files, directory: "Rules")
    }

    static func codec(limits: XMLReader.Limits = XMLReader.Limits()) throws -> SOAPCodec {
        SOAPCodec(layouts: try SOAPLayouts.load(rules()), limits: limits)
    }
}

/// A payload that satisfies a shape, with every optional field, two elements per array where allowed, and strings
/// that need escaping.
enum Sample {
    static func value(_ shape: Shape, seed: Int = 0) -> JSONValue {
        switch shape {
        case .object(let object):
            var members: JSONObject = [:]
            for (index, field) in object.fields.enumerated() {
                members[field.name] = value(field.shape, seed: seed + index)
            }
            return .object(members)
        case .array(let element, let min, let max):
            let count = Swift.max(min ?? 0, Swift.min(max ?? 2, 2))
            return .array((0..<count).map { value(element, seed: seed + $0 + 1) })
        case .integer(let minimum): return .integer(Swift.max(minimum ?? -7, -7) + Int64(seed % 5))
        case .number(let minimum, _): return .number(Swift.max(minimum ?? -2.5, -2.5) + 0.1 * Double(seed % 3))
        case .boolean: return .bool(seed % 2 == 0)
        case .string(let maxLength):
            let text = "A&<b>\"q\" 'é' \t\(seed)"
            return .string(String(text.prefix(maxLength ?? text.count)))
        case .dateTime: return .string("2024-05-0\(1 + seed % 8)T12:30:0\(seed % 10)Z")
        case .enumeration(let values): return .string(values[seed % values.count])
        case .any: return .string("any")
        }
    }
}

extension SOAPMessage {
    var text: String { String(decoding: bytes, as: UTF8.self) }
}

/// A SOAP envelope written by hand, for inputs the codec never writes.
func envelope(
    soap: String = "http://www.w3.org/2003/05/soap-envelope", header: String, body: String
) -> [UInt8] {
    Array(
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <s:Envelope xmlns:s="\(soap)" xmlns:a="http://www.w3.org/2005/08/addressing">
        <s:Header>\(header)</s:Header><s:Body>\(body)</s:Body></s:Envelope>
        """.utf8)
}

let heartbeat15 = #"<heartbeatRequest xmlns="urn://Ocpp/Cs/2012/06/"/>"#
let identity15 = #"<cs:chargeBoxIdentity xmlns:cs="urn://Ocpp/Cs/2012/06/">CP1</cs:chargeBoxIdentity>"#
