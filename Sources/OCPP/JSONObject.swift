/// The members of a JSON object, in the order they were read or added, each key once.
///
/// OCPP objects have a handful of members, and a rule reads a few of them: a linear scan over an array finds a key
/// with a few byte comparisons where a `Dictionary` hashes it (SipHash over the whole key) on every insert and
/// every lookup, and builds a hash table per object. Keys keep their order, so a frame goes out with its
/// members in the order its sender wrote them.
///
/// Equality and hashing ignore the order, as a JSON object's meaning does.
public struct JSONObject: Sendable {
    public typealias Member = (key: String, value: JSONValue)

    public private(set) var members: [Member]

    public init() { members = [] }

    /// Members with distinct keys, in this order (the caller guarantees they are distinct).
    public init(uniqueMembers: [Member]) { members = uniqueMembers }

    /// Members in this order; a repeated key keeps its first position and its last value (as JSON parsers and
    /// `Dictionary` do).
    public init(_ pairs: some Sequence<(String, JSONValue)>) {
        members = []
        members.reserveCapacity(pairs.underestimatedCount)
        for (key, value) in pairs { self[key] = value }
    }

    /// A dictionary's members, keys sorted (a dictionary has no order of its own worth keeping).
    public init(_ dictionary: [String: JSONValue]) {
        members = dictionary.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) }
    }

    /// The members read from a document, duplicates resolved: a repeated key keeps its first position and its
    /// last value. Large objects (only ever hostile ones in OCPP) are checked through a hash table, so that no
    /// input makes this quadratic.
    public init(parsed pairs: ArraySlice<(String, JSONValue)>) {
        members = []
        members.reserveCapacity(pairs.count)
        if pairs.count <= 16 {
            for (key, value) in pairs {
                if let index = members.firstIndex(where: { $0.key == key }) {
                    members[index].value = value
                } else {
                    members.append((key: key, value: value))
                }
            }
        } else {
            var positions: [String: Int] = [:]
            positions.reserveCapacity(pairs.count)
            for (key, value) in pairs {
                if let index = positions[key] {
                    members[index].value = value
                } else {
                    positions[key] = members.count
                    members.append((key: key, value: value))
                }
            }
        }
    }

    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }
    public var first: Member? { members.first }
    public var keys: [String] { members.map(\.key) }
    public var values: [JSONValue] { members.map(\.value) }

    /// The member's value; setting nil removes the member, setting a new key appends it.
    public subscript(key: String) -> JSONValue? {
        get {
            // Lengths first: most keys of an object differ in length, and that costs no string comparison.
            let length = key.utf8.count
            for member in members where member.key.utf8.count == length && member.key == key { return member.value }
            return nil
        }
        set {
            if let index = index(forKey: key) {
                if let newValue { members[index].value = newValue } else { members.remove(at: index) }
            } else if let newValue {
                members.append((key: key, value: newValue))
            }
        }
    }

    public subscript(key: String, default fallback: @autoclosure () -> JSONValue) -> JSONValue {
        self[key] ?? fallback()
    }

    public mutating func reserveCapacity(_ count: Int) { members.reserveCapacity(count) }

    /// Appends a member whose key the object does not hold (the caller guarantees it): no search.
    public mutating func appendNew(_ key: String, _ value: JSONValue) { members.append((key: key, value: value)) }

    public func index(forKey key: String) -> Int? {
        let length = key.utf8.count
        return members.firstIndex { $0.key.utf8.count == length && $0.key == key }
    }

    @discardableResult
    public mutating func removeValue(forKey key: String) -> JSONValue? {
        guard let index = index(forKey: key) else { return nil }
        return members.remove(at: index).value
    }

    /// Sets every member of `other`, keeping this object's order for keys it has.
    public mutating func merge(_ other: JSONObject) {
        for (key, value) in other.members { self[key] = value }
    }

    public func mapValues(_ transform: (JSONValue) throws -> JSONValue) rethrows -> JSONObject {
        JSONObject(uniqueMembers: try members.map { (key: $0.key, value: try transform($0.value)) })
    }

    /// The members `isIncluded` keeps, in order.
    public func filter(_ isIncluded: (Member) throws -> Bool) rethrows -> JSONObject {
        JSONObject(uniqueMembers: try members.filter(isIncluded))
    }

    /// The members as a dictionary, for code that wants one.
    public var dictionary: [String: JSONValue] {
        Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }
}

extension JSONObject: Sequence {
    public func makeIterator() -> IndexingIterator<[Member]> { members.makeIterator() }
    public var underestimatedCount: Int { members.count }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public typealias Key = String
    public typealias Value = JSONValue

    public init(dictionaryLiteral elements: (String, JSONValue)...) { self.init(elements) }
}

extension JSONObject: Hashable {
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.count == rhs.count else { return false }
        // The common case: the same keys in the same order.
        if zip(lhs.members, rhs.members).allSatisfy({ $0.key == $1.key }) {
            return zip(lhs.members, rhs.members).allSatisfy { $0.value == $1.value }
        }
        if lhs.count <= 16 { return lhs.members.allSatisfy { rhs[$0.key] == $0.value } }
        let right = rhs.dictionary
        return lhs.members.allSatisfy { right[$0.key] == $0.value }
    }

    /// Order-independent: the members' own hashes summed.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(members.count)
        var sum = 0
        for member in members {
            var own = Hasher()
            own.combine(member.key)
            own.combine(member.value)
            sum &+= own.finalize()
        }
        hasher.combine(sum)
    }
}

extension JSONObject: Encodable {
    private struct MemberName: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: MemberName.self)
        for (key, value) in members { try container.encode(value, forKey: MemberName(stringValue: key)) }
    }
}

extension JSONObject: CustomStringConvertible {
    public var description: String { JSONValue.object(self).jsonText }
}
