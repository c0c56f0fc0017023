import Foundation
import OCPP

/// A record's time, `ts`: RFC 3339 (`2026-11-30T08:00:00.123456Z`, any fraction, `Z` or `±hh:mm`) as microseconds
/// since 1970-01-01T00:00:00Z, so that records and `--since`/`--until` compare whatever their offsets.
public enum AuditTime {
    public static func microseconds(_ text: String) -> Int64? { DateTimeText.parse(text)?.microseconds }
}

/// What `ocpp-proxy audit query` selects: every given condition must hold.
public struct AuditFilter: Sendable, Equatable {
    public var charger: String?
    public var action: String?
    public var event: String?
    public var session: String?
    /// Inclusive, microseconds since the epoch.
    public var since: Int64?
    /// Exclusive, microseconds since the epoch.
    public var until: Int64?

    public init(
        charger: String? = nil, action: String? = nil, event: String? = nil, session: String? = nil,
        since: Int64? = nil, until: Int64? = nil
    ) {
        self.charger = charger
        self.action = action
        self.event = event
        self.session = session
        self.since = since
        self.until = until
    }

    public var isEmpty: Bool { self == AuditFilter() }

    public func matches(_ record: JSONValue) -> Bool {
        guard case .object(let fields) = record else { return false }
        if let charger, fields["charger"]?.stringValue != charger { return false }
        if let event, fields["event"]?.stringValue != event { return false }
        if let session, fields["session"]?.stringValue != session { return false }
        if let action {
            guard case .object(let msg)? = fields["msg"], msg["action"]?.stringValue == action else { return false }
        }
        if since != nil || until != nil {
            guard let ts = fields["ts"]?.stringValue, let time = AuditTime.microseconds(ts) else { return false }
            if let since, time < since { return false }
            if let until, time >= until { return false }
        }
        return true
    }

    /// Whether a closed segment described by its index can hold a matching record.
    public func mayMatch(_ index: AuditIndex) -> Bool {
        if let since, let last = AuditTime.microseconds(index.lastTs), last < since { return false }
        if let until, let first = AuditTime.microseconds(index.firstTs), first >= until { return false }
        if let charger, !index.chargers.contains(charger) { return false }
        return true
    }

    /// The strings each matching line must contain as JSON text (a cheap test before parsing the line): those of
    /// printable ASCII other than quote, backslash and slash, which every JSON writer writes alike. A line lacking
    /// them cannot match and is not parsed, so an unreadable line is reported only when it contains them.
    var needles: [[UInt8]] {
        [charger, action, event, session].compactMap { $0 }
            .filter { $0.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F && $0 != 0x22 && $0 != 0x5C && $0 != 0x2F } }
            .map { Array("\"\($0)\"".utf8) }
    }
}

/// A closed segment's sidecar index, `audit-<first seq>.idx` beside `audit-<first seq>.jsonl`: one JSON line
/// `{"bytes":…,"chargers":[…],"firstSeq":…,"firstTs":"…","lastSeq":…,"lastTs":"…"}`. `firstTs`/`lastTs` are the
/// earliest and latest `ts` in the segment (a clock stepped back still cannot hide a record); `bytes` is the size of
/// the segment it describes, so an index left from before the segment grew is ignored.
public struct AuditIndex: Sendable, Equatable {
    public var bytes: Int64
    public var firstSeq: Int64
    public var lastSeq: Int64
    public var firstTs: String
    public var lastTs: String
    public var chargers: Set<String>

    public init(
        bytes: Int64, firstSeq: Int64, lastSeq: Int64, firstTs: String, lastTs: String, chargers: Set<String>
    ) {
        self.bytes = bytes
        self.firstSeq = firstSeq
        self.lastSeq = lastSeq
        self.firstTs = firstTs
        self.lastTs = lastTs
        self.chargers = chargers
    }

    /// The index file's path for a segment path (`….jsonl` → `….idx`).
    public static func path(forSegment segment: String) -> String {
        (segment.hasSuffix(".jsonl") ? String(segment.dropLast(6)) : segment) + ".idx"
    }

    /// Reads a segment and describes it; nil when it holds no record with `seq` and `ts`.
    public static func build(segment: String) throws -> AuditIndex? {
        var firstSeq: Int64?
        var lastSeq: Int64 = 0
        var earliest: (Int64, String)?
        var latest: (Int64, String)?
        var chargers: Set<String> = []
        var bytes: Int64 = 0
        try AuditSegments.forEachLine(of: segment) { line, _ in
            bytes += Int64(line.count) + 1
            guard case .object(let fields)? = JSONValue(parsing: line) else { return }
            if case .integer(let seq)? = fields["seq"] {
                if firstSeq == nil { firstSeq = seq }
                lastSeq = seq
            }
            if let ts = fields["ts"]?.stringValue, let time = AuditTime.microseconds(ts) {
                if earliest.map({ time < $0.0 }) ?? true { earliest = (time, ts) }
                if latest.map({ time > $0.0 }) ?? true { latest = (time, ts) }
            }
            if let charger = fields["charger"]?.stringValue { chargers.insert(charger) }
        }
        // The size on disk (a last line without "\n" counts one byte less than above).
        if let size = try? FileManager.default.attributesOfItem(atPath: segment)[.size] as? NSNumber {
            bytes = size.int64Value
        }
        guard let firstSeq, let earliest, let latest else { return nil }
        return AuditIndex(
            bytes: bytes, firstSeq: firstSeq, lastSeq: lastSeq, firstTs: earliest.1, lastTs: latest.1,
            chargers: chargers)
    }

    public var json: JSONValue {
        .object([
            "bytes": .integer(bytes), "firstSeq": .integer(firstSeq), "lastSeq": .integer(lastSeq),
            "firstTs": .string(firstTs), "lastTs": .string(lastTs),
            "chargers": .array(chargers.sorted().map(JSONValue.string)),
        ])
    }

    public init?(json: JSONValue) {
        guard case .object(let f) = json, case .integer(let bytes)? = f["bytes"],
            case .integer(let firstSeq)? = f["firstSeq"], case .integer(let lastSeq)? = f["lastSeq"],
            let firstTs = f["firstTs"]?.stringValue, let lastTs = f["lastTs"]?.stringValue,
            case .array(let list)? = f["chargers"]
        else { return nil }
        let chargers = list.compactMap(\.stringValue)
        guard chargers.count == list.count else { return nil }
        self.init(
            bytes: bytes, firstSeq: firstSeq, lastSeq: lastSeq, firstTs: firstTs, lastTs: lastTs,
            chargers: Set(chargers))
    }

    /// Writes the index beside its segment, as one line.
    public func write(forSegment segment: String) throws {
        // Readable as the segments are (0640): it names the chargers in the segment.
        let path = Self.path(forSegment: segment)
        try Data((json.jsonText + "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: path)
    }

    /// The index of a segment if there is one that still describes it (same size); nil otherwise.
    public static func read(forSegment segment: String) -> AuditIndex? {
        guard let data = FileManager.default.contents(atPath: path(forSegment: segment)),
            let line = data.split(separator: UInt8(ascii: "\n")).first,
            let value = JSONValue(parsing: line), let index = AuditIndex(json: value),
            let size = try? FileManager.default.attributesOfItem(atPath: segment)[.size] as? NSNumber,
            size.int64Value == index.bytes
        else { return nil }
        return index
    }
}

/// The segments of an audit directory and their lines.
public enum AuditSegments {
    /// `audit-*.jsonl` in the directory, in name order (the first seq, 20 digits, orders them).
    public static func list(directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory)
            .filter { $0.hasPrefix("audit-") && $0.hasSuffix(".jsonl") }
            .sorted()
            .map { (directory as NSString).appendingPathComponent($0) }
    }

    /// Calls `body` with each line (without its "\n") and its 1-based number, reading the file in chunks.
    public static func forEachLine(
        of path: String, _ body: (ArraySlice<UInt8>, Int) throws -> Void
    ) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        defer { try? handle.close() }
        var pending: [UInt8] = []
        var number = 0
        while true {
            let chunk = try handle.read(upToCount: 1 << 20) ?? Data()
            if chunk.isEmpty { break }
            pending.append(contentsOf: chunk)
            var start = 0
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                number += 1
                try body(pending[start..<newline], number)
                start = newline + 1
            }
            pending.removeFirst(start)
        }
        if !pending.isEmpty {
            number += 1
            try body(pending[...], number)
        }
    }

    /// Every record matching the filter, in segment and line order, as the line's text and its parsed value.
    /// Segments whose index says they cannot match are skipped; a line that is not a JSON object goes to
    /// `unreadable` as file:line and is skipped.
    public static func query(
        directory: String, filter: AuditFilter, useIndex: Bool = true,
        unreadable: (String) -> Void, _ body: (ArraySlice<UInt8>, JSONValue) throws -> Void
    ) throws {
        let needles = filter.needles
        for segment in try list(directory: directory) {
            if useIndex, !filter.isEmpty, let index = AuditIndex.read(forSegment: segment), !filter.mayMatch(index) {
                continue
            }
            try forEachLine(of: segment) { line, number in
                if line.isEmpty { return }
                // A line without every filtered string as JSON text cannot match; an unreadable line may hide
                // anything, so only lines that contain them all are parsed and reported.
                for needle in needles where !contains(line, needle) { return }
                guard let record = JSONValue(parsing: line), record.isObject else {
                    unreadable("\(segment):\(number)")
                    return
                }
                if filter.matches(record) { try body(line, record) }
            }
        }
    }

    static func contains(_ haystack: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard haystack.count >= needle.count else { return false }
        let first = needle[0]
        var index = haystack.startIndex
        let last = haystack.endIndex - needle.count
        while index <= last {
            if haystack[index] == first && haystack[index..<(index + needle.count)].elementsEqual(needle) {
                return true
            }
            index += 1
        }
        return false
    }
}
