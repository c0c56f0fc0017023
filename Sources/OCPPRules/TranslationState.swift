import OCPP

/// What translation must remember about one charger: its transactions under both ids, the seqNo of each,
/// remote starts waiting for their transaction, and request ids of running log and firmware jobs.
public struct TranslationState: Sendable, Equatable {
    public struct Transaction: Sendable, Equatable, Codable {
        /// The charger's (1.6) integer id.
        public var localId: Int64
        /// The CSMS's (2.0.1) string id.
        public var uuid: String
        public var connectorId: Int64
        public var nextSeqNo: Int64
        public var remoteStartId: Int64?
        public var ended: Bool
        /// Order of creation, to forget the oldest ended transactions first.
        public var serial: Int64

        public init(
            localId: Int64, uuid: String, connectorId: Int64, nextSeqNo: Int64, remoteStartId: Int64?, ended: Bool,
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

    public struct RemoteStart: Sendable, Equatable, Codable {
        public var evseId: Int64?
        public var idToken: String
        public var remoteStartId: Int64

        public init(evseId: Int64?, idToken: String, remoteStartId: Int64) {
            self.evseId = evseId
            self.idToken = idToken
            self.remoteStartId = remoteStartId
        }
    }

    public private(set) var transactions: [String: Transaction] = [:]
    private var byLocalId: [Int64: String] = [:]
    public var nextLocalId: Int64 = 1
    public var remoteStarts: [RemoteStart] = []
    public var requestIds: [String: Int64] = [:]
    /// The highest `serial` of any transaction, and how many have ended: kept so that starting a transaction
    /// does not scan them all.
    public private(set) var lastSerial: Int64 = 0
    public private(set) var endedCount = 0

    public init() {}

    /// How many ended transactions are kept, for frames the charger sends late.
    public static let endedKept = 20
    /// How many transactions are kept at most, ended or not (the oldest are forgotten first).
    public static let transactionsKept = 64

    public func transaction(uuid: String) -> Transaction? { transactions[uuid] }

    public func transaction(localId: Int64) -> Transaction? { byLocalId[localId].flatMap { transactions[$0] } }

    public mutating func put(_ transaction: Transaction) {
        if let old = transactions[transaction.uuid] {
            if old.localId != transaction.localId { byLocalId.removeValue(forKey: old.localId) }
            if old.ended { endedCount -= 1 }
        }
        transactions[transaction.uuid] = transaction
        byLocalId[transaction.localId] = transaction.uuid
        if transaction.ended { endedCount += 1 }
        lastSerial = max(lastSerial, transaction.serial)
    }

    public mutating func remove(uuid: String) {
        if let old = transactions.removeValue(forKey: uuid) {
            byLocalId.removeValue(forKey: old.localId)
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

    /// The key a store keeps this change under: a later change with the same key replaces it.
    public var key: String {
        switch self {
        case .transaction(let t): return "tx:\(t.uuid)"
        case .forgetTransaction(let uuid): return "tx:\(uuid)"
        case .nextLocalId: return "nextLocalId"
        case .remoteStarts: return "remoteStarts"
        case .requestId(let kind, _): return "requestId:\(kind)"
        }
    }
}

extension StateChange {
    /// The change as JSON, for the `translate` command and the state store.
    public var json: JSONValue {
        switch self {
        case .transaction(let t):
            var members: [String: JSONValue] = [
                "localId": .integer(t.localId), "uuid": .string(t.uuid), "connectorId": .integer(t.connectorId),
                "nextSeqNo": .integer(t.nextSeqNo), "ended": .bool(t.ended), "serial": .integer(t.serial),
            ]
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
                        var members: [String: JSONValue] = [
                            "idToken": .string(start.idToken), "remoteStartId": .integer(start.remoteStartId),
                        ]
                        if let evse = start.evseId { members["evseId"] = .integer(evse) }
                        return .object(members)
                    })
            ])
        case .requestId(let kind, let id):
            return .object(["requestId": .object(["kind": .string(kind), "id": .integer(id)])])
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
            guard let localId = int(field(value, "localId")), let uuid = field(value, "uuid")?.stringValue,
                let connector = int(field(value, "connectorId")), let next = int(field(value, "nextSeqNo")),
                case .bool(let ended)? = field(value, "ended")
            else { return nil }
            self = .transaction(
                .init(
                    localId: localId, uuid: uuid, connectorId: connector, nextSeqNo: next,
                    remoteStartId: int(field(value, "remoteStartId")), ended: ended,
                    serial: int(field(value, "serial")) ?? 0))
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
                    return .init(evseId: int(field(item, "evseId")), idToken: token, remoteStartId: id)
                })
        case "requestId":
            guard let kind = field(value, "kind")?.stringValue, let id = int(field(value, "id")) else { return nil }
            self = .requestId(kind: kind, id: id)
        default:
            return nil
        }
    }
}
