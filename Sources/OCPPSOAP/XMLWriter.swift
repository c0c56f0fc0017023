/// A character XML 1.0 cannot carry (§2.2: only tab, line feed, carriage return and U+0020 and above, without
/// U+FFFE and U+FFFF), found in text or an attribute value that was to be written.
public struct XMLWriteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The code point that has no XML 1.0 form, not even as a character reference.
    public var scalar: UInt32

    public var description: String {
        "U+\(String(scalar, radix: 16, uppercase: true)) cannot be written in XML 1.0"
    }
}

/// Writes an XML document as UTF-8 bytes, escaping text and attribute values. A character XML 1.0 cannot carry
/// is refused (``XMLWriteError``), never replaced: the writer does not change what it was given to say.
public struct XMLWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    private var open: [String] = []

    /// Starts a document with the XML declaration OCPP-S §3.1 asks for.
    public init(declaration: Bool = true) {
        bytes.reserveCapacity(1024)
        if declaration { bytes.append(contentsOf: #"<?xml version="1.0" encoding="UTF-8"?>"#.utf8) }
    }

    /// Opens `<qualifiedName attributes…>`; names are written as given (the caller's own, never from input).
    /// Attribute values are escaped.
    public mutating func start(_ qualifiedName: String, _ attributes: [(String, String)] = []) throws(XMLWriteError) {
        bytes.append(UInt8(ascii: "<"))
        bytes.append(contentsOf: qualifiedName.utf8)
        for (name, value) in attributes {
            bytes.append(UInt8(ascii: " "))
            bytes.append(contentsOf: name.utf8)
            bytes.append(contentsOf: "=\"".utf8)
            try Self.escape(value, into: &bytes, inAttribute: true)
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: ">"))
        open.append(qualifiedName)
    }

    /// Escaped character data inside the open element.
    public mutating func text(_ text: String) throws(XMLWriteError) {
        try Self.escape(text, into: &bytes, inAttribute: false)
    }

    /// Closes the innermost open element.
    public mutating func end() {
        guard let name = open.popLast() else { return }
        bytes.append(contentsOf: "</".utf8)
        bytes.append(contentsOf: name.utf8)
        bytes.append(UInt8(ascii: ">"))
    }

    /// `<qualifiedName attributes…>text</qualifiedName>`.
    public mutating func element(_ qualifiedName: String, _ attributes: [(String, String)] = [], text: String)
        throws(XMLWriteError)
    {
        try start(qualifiedName, attributes)
        try self.text(text)
        end()
    }

    /// The document with every open element closed.
    public var document: [UInt8] {
        var copy = self
        while !copy.open.isEmpty { copy.end() }
        return copy.bytes
    }

    /// Escapes `&`, `<`, `>`, `"` and `'`; in attribute values also tab, line feed and carriage return, which
    /// attribute-value normalisation would otherwise turn into spaces; in text carriage return, which
    /// line-end normalisation would otherwise drop.
    static func escape(_ text: String, into out: inout [UInt8], inAttribute: Bool) throws(XMLWriteError) {
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x26: out.append(contentsOf: "&amp;".utf8)
            case 0x3C: out.append(contentsOf: "&lt;".utf8)
            case 0x3E: out.append(contentsOf: "&gt;".utf8)
            case 0x22: out.append(contentsOf: "&quot;".utf8)
            case 0x27: out.append(contentsOf: "&apos;".utf8)
            case 0x09 where inAttribute: out.append(contentsOf: "&#9;".utf8)
            case 0x0A where inAttribute: out.append(contentsOf: "&#10;".utf8)
            case 0x0D: out.append(contentsOf: "&#13;".utf8)
            case 0x09, 0x0A: out.append(UInt8(scalar.value))
            case 0..<0x20, 0xFFFE, 0xFFFF: throw XMLWriteError(scalar: scalar.value)
            default: UTF8.encode(scalar) { out.append($0) }
            }
        }
    }
}
