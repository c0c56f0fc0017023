import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

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
    /// The bytes are not UTF-8 text: a NUL byte or a UTF-16/UTF-32 byte order mark.
    case notUTF8
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
        case .tooDeep(let limit): return "elements nest deeper than \(limit)"
        case .tooManyElements(let limit): return "more than \(limit) elements"
        case .malformed(let line, let column, let code):
            return "malformed XML at line \(line), column \(column) (parser error \(code))"
        case .empty: return "no root element"
        }
    }
}

/// A hardened reader over FoundationXML's `XMLParser` (libxml2): it refuses markup declarations before the
/// parser sees the bytes, bounds size, depth and element count, and fails whenever the parser reports an error,
/// even when `parse()` returned true (libxml2 runs in recover mode and returns true for a truncated document).
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
        let parser = XMLParser(data: data)
        parser.shouldProcessNamespaces = true
        parser.shouldReportNamespacePrefixes = true  // to resolve prefixed attributes (`env:mustUnderstand`)
        parser.shouldResolveExternalEntities = false
        let builder = TreeBuilder(limits: limits)
        parser.delegate = builder
        let finished = parser.parse()
        if let limit = builder.limitHit { throw limit }
        if !finished || parser.parserError != nil || builder.failed {
            throw .malformed(
                line: parser.lineNumber, column: parser.columnNumber,
                code: (parser.parserError as NSError?)?.code ?? 0)
        }
        guard let root = builder.root, builder.open.isEmpty else { throw .empty }
        return root
    }

    /// Refuses what must never reach the parser: markup declarations (`<!` that opens neither a comment nor a
    /// CDATA section: `<!DOCTYPE`, `<!ENTITY`, `<!ELEMENT`, `<!ATTLIST`) and bytes that are not UTF-8 text, in
    /// which such a declaration could hide from this scan. `<!` inside a comment or CDATA section is refused
    /// too; a SOAP message has no need of it.
    static func screen(_ data: Data) throws(XMLReadError) {
        let boms: [[UInt8]] = [[0xFE, 0xFF], [0xFF, 0xFE], [0x00, 0x00, 0xFE, 0xFF]]
        if boms.contains(where: { data.starts(with: $0) }) { throw .notUTF8 }
        var index = data.startIndex
        let end = data.endIndex
        while index < end {
            let byte = data[index]
            if byte == 0 { throw .notUTF8 }
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

/// The parser's delegate: builds the tree, resolves attribute prefixes, and stops the parser at a limit.
private final class TreeBuilder: NSObject, XMLParserDelegate {
    let limits: XMLReader.Limits
    var open: [XMLElementNode] = []
    var root: XMLElementNode?
    var elements = 0
    var limitHit: XMLReadError?
    var failed = false
    /// Prefix → namespace URI, innermost declaration last. `xml` is bound without a declaration (Namespaces in
    /// XML §3).
    var prefixes: [String: [String]] = ["xml": ["http://www.w3.org/XML/1998/namespace"]]

    init(limits: XMLReader.Limits) { self.limits = limits }

    func parser(_ parser: XMLParser, didStartMappingPrefix prefix: String, toURI namespaceURI: String) {
        prefixes[prefix, default: []].append(namespaceURI)
    }

    func parser(_ parser: XMLParser, didEndMappingPrefix prefix: String) {
        _ = prefixes[prefix]?.popLast()
    }

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        guard limitHit == nil else { return }
        elements += 1
        if elements > limits.maxElements {
            stop(parser, .tooManyElements(limit: limits.maxElements))
            return
        }
        if open.count >= limits.maxDepth {
            stop(parser, .tooDeep(limit: limits.maxDepth))
            return
        }
        var resolved: [XMLElementNode.Attribute] = []
        // Sorted so that the tree does not depend on dictionary order.
        for (qualified, value) in attributes.sorted(by: { $0.key < $1.key }) {
            if qualified == "xmlns" || qualified.hasPrefix("xmlns:") { continue }
            if let colon = qualified.firstIndex(of: ":") {
                let prefix = String(qualified[..<colon])
                let name = String(qualified[qualified.index(after: colon)...])
                guard let uri = prefixes[prefix]?.last else {
                    failed = true
                    parser.abortParsing()
                    return
                }
                resolved.append(.init(namespace: uri, name: name, value: value))
            } else {
                resolved.append(.init(namespace: nil, name: qualified, value: value))
            }
        }
        open.append(XMLElementNode(namespace: namespaceURI ?? "", name: elementName, attributes: resolved))
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
        guard limitHit == nil, let element = open.popLast() else { return }
        if open.isEmpty {
            if root != nil { failed = true }
            root = element
        } else {
            open[open.count - 1].children.append(element)
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard limitHit == nil, !open.isEmpty else { return }
        open[open.count - 1].text += string
    }

    func parser(_ parser: XMLParser, foundCDATA CDATABlock: Data) {
        guard limitHit == nil, !open.isEmpty else { return }
        guard let text = String(data: CDATABlock, encoding: .utf8) else {
            failed = true
            parser.abortParsing()
            return
        }
        open[open.count - 1].text += text
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: Error) { failed = true }

    func parser(_ parser: XMLParser, validationErrorOccurred validationError: Error) { failed = true }

    func parser(_ parser: XMLParser, resolveExternalEntityName name: String, systemID: String?) -> Data? {
        // Never reached: declarations are refused before parsing. Answer nothing if it ever is.
        failed = true
        return nil
    }

    private func stop(_ parser: XMLParser, _ error: XMLReadError) {
        limitHit = error
        parser.abortParsing()
    }
}
