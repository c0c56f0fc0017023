import OCPP

/// What translation must remember about one charger: its transactions under both ids, the seqNo of each,
/// remote starts waiting for their transaction, request ids of running log and firmware jobs, and what rules keep
/// with `memo.*` and `counter.next`.
public struct TranslationState: Sendable, Equatable {
    public struct Transaction: Sendable, Equatable {
        /// The 1.6 integer id: made by the proxy for a 1.6 charger; given by a 1.6 CSMS for a 2.0.1 station, and nil
        /// until it has (a transaction the station started and the CSMS has not answered yet).
        public var localId: Int64?
        /// The CSMS's (2.0.1) string id.
        public var uuid: String
        public var connectorId: Int64
        public var nextSeqNo: Int64
        public var remoteStartId: Int64?
        public var ended: Bool
        /// Order of creation, to forget the oldest ended transactions first.
        public var serial: Int64
        /// What `tx.begin` was given to tell this start from another (a 1.6 StartTransaction's timestamp, meterStart
        /// and idTag): the same StartTransaction sent again finds it with `tx.find`.
        public var startKey: String? = nil
        /// What a rule keeps with the transaction (`tx.note`), e.g. the CSMS's answer to its start.
        public var note: JSONValue = .null

        public init(
            localId: Int64?, uuid: String, connectorId: Int64, nextSeqNo: Int64, remoteStartId: Int64?, ended: Bool,
            serial: Int64
        ) {
            self.localId = localId
            self.uuid = uuid
            self.connectorId = connectorId
            self.nextSeqNo = nextSeqNo
            self.remoteStartId = remoteStartId
            self.ended = ended
            self.serial = serial
        }
    }

    public struct RemoteStart: Sendable, Equatable {
        public var evseId: Int64?
        public var idToken: String
        public var remoteStartId: Int64
        /// The 2.0.1 idToken type the CSMS gave, for the Started event of the start it asked for.
        public var idTokenType: String?
        /// When the charger accepted it (seconds since 1970): a remote start the charger never acted on expires.
        public var acceptedAt: Int64?

        public init(
            evseId: Int64?, idToken: String, remoteStartId: Int64, idTokenType: String? = nil, acceptedAt: Int64? = nil
        ) {
            self.evseId = evseId
            self.idToken = idToken
            self.remoteStartId = remoteStartId
            self.idTokenType = idTokenType
            self.acceptedAt = acceptedAt
        }
    }

    public private(set) var transactions: [String: Transaction] = [:]
    private var byLocalId: [Int64: String] = [:]
    public var nextLocalId: Int64 = 1
    public var remoteStarts: [RemoteStart] = []
    public var requestIds: [String: Int64] = [:]
    /// Values rules keep with `memo.set` (bounded: ``memosKept`` names, ``memoBytes`` bytes of JSON each).
    public private(set) var memos: [String: JSONValue] = [:]
    /// When each memo was last set (a counter): the least recently set one makes room when the table is full.
    private var memoOrder: [String: Int64] = [:]
    private var lastMemoOrder: Int64 = 0

    /// The memo that goes when a new name finds the table full.
    public var memoToEvict: String? {
        guard memos.count >= Self.memosKept else { return nil }
        return memoOrder.min { $0.value < $1.value }?.key
    }
    /// `counter.next` counters: the last value given, by name.
    public var counters: [String: Int64] = [:]
    /// The highest `serial` of any transaction, and how many have ended: kept so that starting a transaction
    /// does not scan them all.
    public private(set) var lastSerial: Int64 = 0
    public private(set) var endedCount = 0

    public init() {}

    /// How many ended transactions are kept, for frames the charger sends late.
    public static let endedKept = 20
    /// How many transactions are kept at most, ended or not (the oldest are forgotten first).
    public static let transactionsKept = 64
    /// How many `memo.set` names a charger's state holds, and how large each value may be as JSON.
    public static let memosKept = 64
    public static let memoBytes = 4096
    /// Seconds a remote start the charger accepted waits for its transaction.
    public static let remoteStartLifetime: Int64 = 600

    public func transaction(uuid: String) -> Transaction? { transactions[uuid] }

    public func transaction(localId: Int64) -> Transaction? { byLocalId[localId].flatMap { transactions[$0] } }

    public mutating func put(_ transaction: Transaction) {
        if let old = transactions[transaction.uuid] {
            if let oldId = old.localId, oldId != transaction.localId { byLocalId.removeValue(forKey: oldId) }
            if old.ended { endedCount -= 1 }
        }
        transactions[transaction.uuid] = transaction
        if let id = transaction.localId { byLocalId[id] = transaction.uuid }
        if transaction.ended { endedCount += 1 }
        lastSerial = max(lastSerial, transaction.serial)
    }

    public mutating func remove(uuid: String) {
        if let old = transactions.removeValue(forKey: uuid) {
            if let id = old.localId, byLocalId[id] == uuid { byLocalId.removeValue(forKey: id) }
            if old.ended { endedCount -= 1 }
        }
    }

    /// Applies a change read back from a state store.
    public mutating func apply(_ change: StateChange) {
        switch change {
        case .transaction(let t): put(t)
        case .forgetTransaction(let uuid): remove(uuid: uuid)
        case .nextLocalId(let n): nextLocalId = n
        case .remoteStarts(let list): remoteStarts = list
        case .requestId(let kind, let id): requestIds[kind] = id
        case .memo(let name, let value):
            if value == .null {
                memos[name] = nil
                memoOrder[name] = nil
            } else {
                memos[name] = value
                lastMemoOrder += 1
                memoOrder[name] = lastMemoOrder
            }
        case .counter(let name, let value): counters[name] = value
        }
    }
}

/// One write to the state store, produced by a translation before the frame that depends on it is sent.
public enum StateChange: Sendable, Equatable {
    case transaction(TranslationState.Transaction)
    case forgetTransaction(uuid: String)
    case nextLocalId(Int64)
    case remoteStarts([TranslationState.RemoteStart])
    case requestId(kind: String, id: Int64)
    /// A `memo.set` value; null forgets the name.
    case memo(name: String, value: JSONValue)
    case counter(name: String, value: Int64)

    /// The key a store keeps this change under: a later change with the same key replaces it.
    public var key: String {
        switch self {
        case .transaction(let t): return "tx:\(t.uuid)"
        case .forgetTransaction(let uuid): return "tx:\(uuid)"
        case .nextLocalId: return "nextLocalId"
        case .remoteStarts: return "remoteStarts"
        case .requestId(let kind, _): return "requestId:\(kind)"
        case .memo(let name, _): return "memo:\(name)"
        case .counter(let name, _): return "counter:\(name)"
        }
    }
}

extension StateChange {
    /// The change as JSON, for the `translate` command and the state store.
    public var json: JSONValue {
        switch self {
        case .transaction(let t):
            var members: JSONObject = [
                "uuid": .string(t.uuid), "connectorId": .integer(t.connectorId),
                "nextSeqNo": .integer(t.nextSeqNo), "ended": .bool(t.ended), "serial": .integer(t.serial),
            ]
            if let id = t.localId { members["localId"] = .integer(id) }
            if let key = t.startKey { members["startKey"] = .string(key) }
            if t.note != .null { members["note"] = t.note }
            if let r = t.remoteStartId { members["remoteStartId"] = .integer(r) }
            return .object(["transaction": .object(members)])
        case .forgetTransaction(let uuid):
            return .object(["forgetTransaction": .string(uuid)])
        case .nextLocalId(let n):
            return .object(["nextLocalId": .integer(n)])
        case .remoteStarts(let list):
            return .object([
                "remoteStarts": .array(
                    list.map { start in
                        var members: JSONObject = [
                            "idToken": .string(start.idToken), "remoteStartId": .integer(start.remoteStartId),
                        ]
                        if let evse = start.evseId { members["evseId"] = .integer(evse) }
                        if let type = start.idTokenType { members["idTokenType"] = .string(type) }
                        if let at = start.acceptedAt { members["acceptedAt"] = .integer(at) }
                        return .object(members)
                    })
            ])
        case .requestId(let kind, let id):
            return .object(["requestId": .object(["kind": .string(kind), "id": .integer(id)])])
        case .memo(let name, let value):
            var members: JSONObject = ["name": .string(name)]
            if value != .null { members["value"] = value }
            return .object(["memo": .object(members)])
        case .counter(let name, let value):
            return .object(["counter": .object(["name": .string(name), "value": .integer(value)])])
        }
    }

    /// Reads back what ``json`` wrote; nil for anything else.
    public init?(json: JSONValue) {
        guard case .object(let outer) = json, outer.count == 1, let (key, value) = outer.first else { return nil }
        func int(_ v: JSONValue?) -> Int64? {
            if case .integer(let i)? = v { return i }
            return nil
        }
        func field(_ v: JSONValue, _ name: String) -> JSONValue? {
            if case .object(let m) = v { return m[name] }
            return nil
        }
        switch key {
        case "transaction":
            guard let uuid = field(value, "uuid")?.stringValue,
                let connector = int(field(value, "connectorId")), let next = int(field(value, "nextSeqNo")),
                case .bool(let ended)? = field(value, "ended")
            else { return nil }
            var transaction = TranslationState.Transaction(
                localId: int(field(value, "localId")), uuid: uuid, connectorId: connector, nextSeqNo: next,
                remoteStartId: int(field(value, "remoteStartId")), ended: ended,
                serial: int(field(value, "serial")) ?? 0)
            transaction.startKey = field(value, "startKey")?.stringValue
            transaction.note = field(value, "note") ?? .null
            self = .transaction(transaction)
        case "forgetTransaction":
            guard let uuid = value.stringValue else { return nil }
            self = .forgetTransaction(uuid: uuid)
        case "nextLocalId":
            guard let n = int(value) else { return nil }
            self = .nextLocalId(n)
        case "remoteStarts":
            guard case .array(let items) = value else { return nil }
            self = .remoteStarts(
                items.compactMap { item in
                    guard let token = field(item, "idToken")?.stringValue, let id = int(field(item, "remoteStartId"))
                    else { return nil }
                    return .init(
                        evseId: int(field(item, "evseId")), idToken: token, remoteStartId: id,
                        idTokenType: field(item, "idTokenType")?.stringValue, acceptedAt: int(field(item, "acceptedAt"))
                    )
                })
        case "requestId":
            guard let kind = field(value, "kind")?.stringValue, let id = int(field(value, "id")) else { return nil }
            self = .requestId(kind: kind, id: id)
        case "memo":
            guard let name = field(value, "name")?.stringValue else { return nil }
            self = .memo(name: name, value: field(value, "value") ?? .null)
        case "counter":
            guard let name = field(value, "name")?.stringValue, let n = int(field(value, "value")) else { return nil }
            self = .counter(name: name, value: n)
        default:
            return nil
        }
    }
}
