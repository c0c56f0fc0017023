/// The identity of a charging station, taken from the last segment of its connection URL
/// (OCPP-J 1.6 §3.1.1, OCPP 2.0.1 part 4 §3.1.1).
public struct ChargerIdentity: Hashable, Sendable, CustomStringConvertible {
    /// The longest identity accepted: 2.0.1 defines it as identifierString[48].
    public static let maximumLength = 48

    public let value: String

    public var description: String { value }

    /// Validates an already decoded identity.
    public init(_ value: String) throws(IdentityError) {
        guard !value.isEmpty else { throw .empty }
        guard value.count <= Self.maximumLength else { throw .tooLong(value.count) }
        // Appended to the CSMS's URL, "." or ".." is a path traversal (RFC 3986 §5.2.4 removes it), so the
        // CSMS or a reverse proxy in front of it would see another path than the charger's.
        guard value != "." && value != ".." else { throw .dotSegment }
        // ':' would make HTTP Basic auth ambiguous (OCPP 2.0.1 part 4 §3.1.1); '/' cannot be a path segment.
        for scalar in value.unicodeScalars {
            if scalar == ":" { throw .forbiddenCharacter(":") }
            if scalar == "/" { throw .forbiddenCharacter("/") }
            if scalar.value < 0x20 || scalar.value == 0x7F { throw .controlCharacter }
        }
        self.value = value
    }

    /// The identity percent-encoded as one URL path segment, for the upstream URL.
    public var percentEncoded: String {
        var out = ""
        for byte in value.utf8 {
            if Self.isUnreserved(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}

/// Why a URL segment is not a charger identity.
public enum IdentityError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case tooLong(Int)
    case forbiddenCharacter(Character)
    case controlCharacter
    case badPercentEncoding
    case dotSegment

    public var description: String {
        switch self {
        case .empty: return "the identity is empty"
        case .tooLong(let n):
            return "the identity has \(n) characters, at most \(ChargerIdentity.maximumLength) are allowed"
        case .forbiddenCharacter(let c): return "the identity contains '\(c)'"
        case .controlCharacter: return "the identity contains a control character"
        case .badPercentEncoding: return "the identity is not valid percent-encoded UTF-8"
        case .dotSegment: return "the identity is a dot-segment ('.' or '..'), which a URL path resolves away"
        }
    }
}

/// Where a request path leads on a listener mounted at `mountPath`.
public enum ConnectionPath: Equatable, Sendable {
    case charger(ChargerIdentity)
    /// Not `{mountPath}/{one segment}`: HTTP 404.
    case notFound
    /// The segment is there but is not an identity: HTTP 400.
    case badIdentity(IdentityError)

    /// Splits a request target such as `/ocpp/CP%20001?x=1` at a listener mounted on `/ocpp`.
    public static func resolve(requestTarget: String, mountPath: String) -> ConnectionPath {
        var target = Substring(requestTarget)
        if let query = target.firstIndex(where: { $0 == "?" || $0 == "#" }) { target = target[..<query] }
        let prefix = mountPath.hasSuffix("/") ? mountPath : mountPath + "/"
        guard target.hasPrefix(prefix) else { return .notFound }
        let segment = target.dropFirst(prefix.count)
        guard !segment.contains("/") else { return .notFound }
        guard let decoded = percentDecode(segment) else { return .badIdentity(.badPercentEncoding) }
        do {
            return .charger(try ChargerIdentity(decoded))
        } catch {
            return .badIdentity(error)
        }
    }

    static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue)
                else { return nil }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
