import CLibXML2
import Foundation

/// One element of a parsed document: what the SOAP codec needs of XML, nothing more. Comments and processing
/// instructions are dropped; text and CDATA of an element are joined into ``text``.
public struct XMLElementNode: Sendable, Equatable {
    /// An attribute with its namespace resolved (`nil` for an unprefixed attribute, which has none).
    public struct Attribute: Sendable, Equatable {
        public var namespace: String?
        public var name: String
        public var value: String

        public init(namespace: String?, name: String, value: String) {
            self.namespace = namespace
            self.name = name
            self.value = value
        }
    }

    /// The namespace URI, empty when the element is in no namespace.
    public var namespace: String
    public var name: String
    public var attributes: [Attribute]
    /// The element's own character data (not its children's), as written.
    public var text: String
    public var children: [XMLElementNode]

    public init(
        namespace: String, name: String, attributes: [Attribute] = [], text: String = "",
        children: [XMLElementNode] = []
    ) {
        self.namespace = namespace
        self.name = name
        self.attributes = attributes
        self.text = text
        self.children = children
    }

    /// The value of the attribute `name` in `namespace` (`nil` namespace: an unprefixed attribute).
    public func attribute(_ name: String, namespace: String? = nil) -> String? {
        attributes.first { $0.name == name && $0.namespace == namespace }?.value
    }
}

/// Why a document was refused. Each case says what was wrong; none of them is a crash.
public enum XMLReadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The document is longer than ``XMLReader/Limits/maxBytes``.
    case tooLarge(limit: Int)
    /// The document has a document type declaration or another markup declaration (`<!DOCTYPE`, `<!ENTITY`,
    /// ...). SOAP forbids them (SOAP 1.2 part 1 §5), and they are how entity bombs and external entities come in.
    case declarationNotAllowed
    /// The bytes are not UTF-8 text: invalid UTF-8, a NUL byte, a UTF-16/UTF-32 byte order mark, or an XML
    /// declaration naming another encoding.
    case notUTF8
    /// A processing instruction (`<?target data?>`) other than the XML declaration; SOAP forbids them.
    case processingInstructionNotAllowed
    /// Elements nest deeper than ``XMLReader/Limits/maxDepth``.
    case tooDeep(limit: Int)
    /// More elements than ``XMLReader/Limits/maxElements``.
    case tooManyElements(limit: Int)
    /// The parser refused the document (malformed, truncated, an undefined entity, ...).
    case malformed(line: Int, column: Int, code: Int)
    /// The document has no root element.
    case empty

    public var description: String {
        switch self {
        case .tooLarge(let limit): return "the document is longer than \(limit) bytes"
        case .declarationNotAllowed: return "a DOCTYPE or other markup declaration is not allowed"
        case .notUTF8: return "the document is not UTF-8 text"
        case .processingInstructionNotAllowed: return "a processing instruction is not allowed"
        case .tooDeep(let limit): return "elements nest deeper than \(limit)"
        case .tooManyElements(let limit): return "more than \(limit) elements"
        case .malformed(let line, let column, let code):
            return "malformed XML at line \(line), column \(column) (parser error \(code))"
        case .empty: return "no root element"
        }
    }
}

/// A hardened reader over libxml2's SAX2 parser: it refuses markup declarations, processing instructions and
/// anything but UTF-8 before the parser sees the bytes, bounds size, depth and element count, and fails at the
/// parser's first error (no recovery: a truncated document is an error).
///
/// libxml2 is driven directly rather than through FoundationXML's `XMLParser`, which wraps the same parser: that
/// wrapper leaks an error object for every error libxml2 reports (about 150 bytes for each malformed request,
/// measured on the running proxy; `_structuredErrorFunc` never releases what `_CFErrorCreateFromXMLInterface`
/// creates), and traps on an element name that is not UTF-8 and on a processing instruction without data. A
/// charger sending malformed SOAP could have grown the proxy's memory without bound; now it costs nothing that
/// outlives its request.
public enum XMLReader {
    /// The bounds a document must stay within. The defaults fit every OCPP 1.5/1.6 message with room to spare
    /// (a SendLocalList of a few thousand entries) and keep a hostile one cheap.
    public struct Limits: Sendable, Equatable {
        /// Bytes of the document, after any HTTP decompression.
        public var maxBytes: Int
        /// Depth of element nesting; the root is depth 1. A SOAP OCPP message needs about 8.
        public var maxDepth: Int
        /// Elements in the whole document.
        public var maxElements: Int

        public init(maxBytes: Int = 1 << 20, maxDepth: Int = 32, maxElements: Int = 50_000) {
            self.maxBytes = maxBytes
            self.maxDepth = maxDepth
            self.maxElements = maxElements
        }
    }

    /// Parses `bytes` into its root element, or says why not.
    public static func read(_ bytes: some Collection<UInt8>, limits: Limits = Limits()) throws(XMLReadError)
        -> XMLElementNode
    {
        guard bytes.count <= limits.maxBytes else { throw .tooLarge(limit: limits.maxBytes) }
        let data = Data(bytes)
        try screen(data)
        _ = initialized
        let builder = TreeBuilder(limits: limits)
        var handler = xmlSAXHandler()
        handler.initialized = UInt32(XML_SAX2_MAGIC)
        handler.startElementNs = { context, name, _, uri, _, _, count, _, attributes in
            TreeBuilder.from(context)?.start(name: name, uri: uri, count: Int(count), attributes: attributes)
        }
        handler.endElementNs = { context, _, _, _ in TreeBuilder.from(context)?.end() }
        handler.characters = { context, bytes, length in TreeBuilder.from(context)?.text(bytes, Int(length)) }
        handler.cdataBlock = { context, bytes, length in TreeBuilder.from(context)?.text(bytes, Int(length)) }
        // Errors and warnings come here, and only here: nothing is printed or allocated for them.
        handler.serror = { context, error in TreeBuilder.from(context)?.error(error) }
        let context = Unmanaged.passUnretained(builder).toOpaque()
        let finished: Bool = withExtendedLifetime(builder) {
            guard let parser = xmlCreatePushParserCtxt(&handler, context, nil, 0, nil) else { return false }
            defer { xmlFreeParserCtxt(parser) }
            // No network, no DTD loading, predefined entities replaced in attribute values (no other entity can
            // exist: declarations never get here).
            _ = xmlCtxtUseOptions(
                parser, Int32(XML_PARSE_NONET.rawValue | XML_PARSE_NOENT.rawValue | XML_PARSE_NOWARNING.rawValue))
            builder.parser = parser
            let status = data.withUnsafeBytes { raw -> Int32 in
                guard let base = raw.bindMemory(to: CChar.self).baseAddress else {
                    return xmlParseChunk(parser, "", 0, 1)
                }
                return xmlParseChunk(parser, base, Int32(raw.count), 1)
            }
            builder.parser = nil
            return status == 0
        }
        if let limit = builder.limitHit { throw limit }
        if !finished || builder.failed {
            let (line, column, code) = builder.firstError ?? (0, 0, 0)
            throw .malformed(line: line, column: column, code: code)
        }
        guard let root = builder.root, builder.open.isEmpty else { throw .empty }
        return root
    }

    /// libxml2's one-time set-up, before the first parse on any thread.
    private static let initialized: Void = xmlInitParser()

    /// Refuses what must never reach the parser: markup declarations (`<!` that opens neither a comment nor a
    /// CDATA section: `<!DOCTYPE`, `<!ENTITY`, `<!ELEMENT`, `<!ATTLIST`) and bytes that are not UTF-8 text, in
    /// which such a declaration could hide from this scan. `<!` inside a comment or CDATA section is refused
    /// too; a SOAP message has no need of it.
    ///
    /// The bytes must be valid UTF-8 and any encoding the XML declaration names must be UTF-8: names and text reach
    /// the tree as they are, and a document in another encoding would reach the parser transcoded, past this scan.
    static func screen(_ data: Data) throws(XMLReadError) {
        let boms: [[UInt8]] = [[0xFE, 0xFF], [0xFF, 0xFE], [0x00, 0x00, 0xFE, 0xFF]]
        if boms.contains(where: { data.starts(with: $0) }) { throw .notUTF8 }
        guard String(data: data, encoding: .utf8) != nil else { throw .notUTF8 }
        if let encoding = declaredEncoding(data), !["utf-8", "utf8"].contains(encoding.lowercased()) {
            throw .notUTF8
        }
        // Where the document starts, after a UTF-8 byte order mark.
        let first = data.starts(with: [0xEF, 0xBB, 0xBF]) ? data.startIndex + 3 : data.startIndex
        var index = data.startIndex
        let end = data.endIndex
        while index < end {
            let byte = data[index]
            if byte == 0 { throw .notUTF8 }
            // A processing instruction: SOAP forbids them (SOAP 1.2 part 1 §5). Only the XML declaration may open
            // with `<?`, at the very start.
            if byte == UInt8(ascii: "<"), index + 1 < end, data[index + 1] == UInt8(ascii: "?"),
                !(index == first && isXMLDeclaration(data[index...]))
            {
                throw .processingInstructionNotAllowed
            }
            if byte == UInt8(ascii: "<"), index + 1 < end, data[index + 1] == UInt8(ascii: "!") {
                let rest = data[(index + 2)...]
                if !rest.starts(with: "--".utf8) && !rest.starts(with: "[CDATA[".utf8) {
                    throw .declarationNotAllowed
                }
            }
            index += 1
        }
    }
}

extension XMLReader {
    /// Whether `bytes` open with an XML declaration: `<?xml` and white space.
    static func isXMLDeclaration(_ bytes: Data.SubSequence) -> Bool {
        guard bytes.starts(with: "<?xml".utf8), bytes.count > 5 else { return false }
        return [0x20, 0x09, 0x0A, 0x0D].contains(bytes[bytes.startIndex + 5])
    }

    /// The `encoding` of the XML declaration at the start of `data`, if it names one.
    static func declaredEncoding(_ data: Data) -> String? {
        let utf8 = data.drop(while: { $0 == 0xEF || $0 == 0xBB || $0 == 0xBF })  // a UTF-8 byte order mark
        guard utf8.starts(with: "<?xml".utf8), let end = utf8.firstRange(of: Data("?>".utf8)) else { return nil }
        let declaration = String(decoding: utf8[utf8.startIndex..<end.lowerBound], as: UTF8.self)
        guard let key = declaration.range(of: "encoding") else { return nil }
        let rest = declaration[key.upperBound...].drop(while: { $0 == " " || $0 == "=" || $0 == "\t" })
        guard let quote = rest.first, quote == "\"" || quote == "'" else { return "" }
        return String(rest.dropFirst().prefix(while: { $0 != quote }))
    }
}

/// The parser's SAX handler: builds the tree and stops the parser at a limit or the first error.
private final class TreeBuilder {
    let limits: XMLReader.Limits
    var open: [XMLElementNode] = []
    var root: XMLElementNode?
    var elements = 0
    var limitHit: XMLReadError?
    var failed = false
    var firstError: (line: Int, column: Int, code: Int)?
    /// The parser while it runs, to stop it.
    var parser: xmlParserCtxtPtr?

    init(limits: XMLReader.Limits) { self.limits = limits }

    /// The builder `read` passed as the parser's user data, alive for the whole parse (never nil there).
    static func from(_ context: UnsafeMutableRawPointer?) -> TreeBuilder? {
        guard let context else { return nil }
        return Unmanaged<TreeBuilder>.fromOpaque(UnsafeRawPointer(context)).takeUnretainedValue()
    }

    func start(
        name: UnsafePointer<xmlChar>?, uri: UnsafePointer<xmlChar>?, count: Int,
        attributes: UnsafeMutablePointer<UnsafePointer<xmlChar>?>?
    ) {
        guard limitHit == nil, !failed else { return }
        elements += 1
        if elements > limits.maxElements { return stop(.tooManyElements(limit: limits.maxElements)) }
        if open.count >= limits.maxDepth { return stop(.tooDeep(limit: limits.maxDepth)) }
        var resolved: [XMLElementNode.Attribute] = []
        if let attributes, count > 0 {
            // Five pointers per attribute: local name, prefix, URI, value start, value end (not NUL-terminated).
            for index in 0..<count {
                let base = index * 5
                guard let local = attributes[base], let start = attributes[base + 3], let end = attributes[base + 4],
                    end >= start
                else { continue }
                let value = String(decoding: UnsafeBufferPointer(start: start, count: end - start), as: UTF8.self)
                resolved.append(
                    .init(namespace: attributes[base + 2].map(Self.string), name: Self.string(local), value: value))
            }
        }
        // Sorted so that the tree does not depend on the document's attribute order.
        resolved.sort { ($0.namespace ?? "", $0.name) < ($1.namespace ?? "", $1.name) }
        open.append(
            XMLElementNode(
                namespace: uri.map(Self.string) ?? "", name: name.map(Self.string) ?? "", attributes: resolved))
    }

    func end() {
        guard limitHit == nil, !failed, let element = open.popLast() else { return }
        if open.isEmpty {
            if root != nil { failed = true }
            root = element
        } else {
            open[open.count - 1].children.append(element)
        }
    }

    func text(_ bytes: UnsafePointer<xmlChar>?, _ length: Int) {
        guard limitHit == nil, !failed, !open.isEmpty, let bytes, length > 0 else { return }
        open[open.count - 1].text += String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self)
    }

    func error(_ error: UnsafePointer<xmlError>?) {
        // Warnings are not failures; anything else is, and the first one is the one reported.
        guard let error, error.pointee.level.rawValue >= XML_ERR_ERROR.rawValue else { return }
        if firstError == nil {
            firstError = (Int(error.pointee.line), Int(error.pointee.int2), Int(error.pointee.code))
        }
        failed = true
        if let parser { xmlStopParser(parser) }
    }

    private func stop(_ error: XMLReadError) {
        limitHit = error
        if let parser { xmlStopParser(parser) }
    }

    private static func string(_ pointer: UnsafePointer<xmlChar>) -> String {
        String(cString: pointer)
    }
}
