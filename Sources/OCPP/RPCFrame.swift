/// The message type number that opens every OCPP-J frame (OCPP-J 1.6 §4.1.3, 2.0.1 part 4 §4.1.3, 2.1 part 4 §4.1.3).
public enum MessageTypeNumber: Int, Sendable {
    case call = 2
    case callResult = 3
    case callError = 4
    /// OCPP 2.1 only: the answer to a CALLRESULT that could not be processed.
    case callResultError = 5
    /// OCPP 2.1 only: a CALL that is never answered.
    case send = 6
}

/// One OCPP-J RPC frame, parsed but with its payload left as JSON.
public enum RPCFrame: Equatable, Sendable {
    case call(id: String, action: String, payload: JSONValue)
    case callResult(id: String, payload: JSONValue)
    case callError(id: String, code: String, description: String, details: JSONValue)
    case callResultError(id: String, code: String, description: String, details: JSONValue)
    case send(id: String, action: String, payload: JSONValue)

    /// The longest message id allowed (OCPP-J 1.6 §4.1.4; string[36] in 2.0.1 and 2.1).
    public static let maximumMessageIdLength = 36

    public var messageId: String {
        switch self {
        case .call(let id, _, _), .callResult(let id, _), .callError(let id, _, _, _),
            .callResultError(let id, _, _, _), .send(let id, _, _):
            return id
        }
    }

    public var messageType: MessageTypeNumber {
        switch self {
        case .call: return .call
        case .callResult: return .callResult
        case .callError: return .callError
        case .callResultError: return .callResultError
        case .send: return .send
        }
    }

    /// Parses one WebSocket text message in the RPC framework of `version`.
    public static func parse(_ text: some Collection<UInt8>, version: OCPPVersion) -> Result<RPCFrame, RPCFrameError> {
        withContiguousBytes(text) { bytes in
            RPCEnvelope.read(bytes, version: version, build: true).map { envelope, payload in
                let payload = payload ?? .object([:])  // built, since `build` was set
                let id = envelope.messageId
                switch envelope.messageType {
                case .call: return .call(id: id, action: envelope.action ?? "", payload: payload)
                case .send: return .send(id: id, action: envelope.action ?? "", payload: payload)
                case .callResult: return .callResult(id: id, payload: payload)
                case .callError:
                    return .callError(
                        id: id, code: envelope.errorCode ?? "", description: envelope.errorDescription ?? "",
                        details: payload)
                case .callResultError:
                    return .callResultError(
                        id: id, code: envelope.errorCode ?? "", description: envelope.errorDescription ?? "",
                        details: payload)
                }
            }
        }
    }

    /// A CALLERROR the proxy makes in its own name: the code as `version` spells it, the description cut to
    /// string[255] (ErrorDescription in 2.0.1 and 2.1), no details.
    public static func makeCallError(id: String, code: RPCErrorCode, description: String, version: OCPPVersion)
        -> RPCFrame
    {
        .callError(
            id: id, code: code.name(in: version), description: String(description.prefix(255)), details: .object([:]))
    }

    /// ``makeCallError(id:code:description:version:)`` as JSON text: `[4,"id","code","description",{}]`.
    public static func callErrorText(id: String, code: RPCErrorCode, description: String, version: OCPPVersion)
        -> String
    {
        makeCallError(id: id, code: code, description: description, version: version).json.jsonText
    }
}

/// The head of an RPC frame: its type, message id and action (or error code), with the whole frame checked as
/// strictly as ``RPCFrame/parse(_:version:)`` checks it but the payload left unbuilt, as a byte range. What a
/// relay that forwards the frame's own bytes needs, at a fraction of the cost of building the payload.
public struct RPCEnvelope: Equatable, Sendable {
    public let messageType: MessageTypeNumber
    public let messageId: String
    /// CALL and SEND.
    public let action: String?
    /// CALLERROR and CALLRESULTERROR.
    public let errorCode: String?
    public let errorDescription: String?
    /// Where the payload (a CALLERROR's details) is in the bytes that were parsed.
    public let payloadRange: Range<Int>

    /// Reads and checks one WebSocket text message in the RPC framework of `version`; the same errors as
    /// ``RPCFrame/parse(_:version:)``.
    public static func parse(_ text: some Collection<UInt8>, version: OCPPVersion) -> Result<RPCEnvelope, RPCFrameError>
    {
        withContiguousBytes(text) { parse($0, version: version) }
    }

    /// The same, over bytes already in memory (a relay's read buffer), with nothing generic in the way.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>, version: OCPPVersion) -> Result<
        RPCEnvelope, RPCFrameError
    > {
        read(bytes, version: version, build: false).map { $0.0 }
    }

    /// The envelope, and the payload (a CALLERROR's details) built too when `build` is set: one pass either way.
    static func read(_ bytes: UnsafeBufferPointer<UInt8>, version: OCPPVersion, build: Bool) -> Result<
        (RPCEnvelope, JSONValue?), RPCFrameError
    > {
        guard let top = JSONParser.parseTopLevel(bytes, build: build) else {
            return .failure(RPCFrameError(.notJSON))
        }
        guard case .array(let elements) = top, !elements.isEmpty else {
            return .failure(RPCFrameError(.notAnArray))
        }
        guard case .value(.integer(let typeNumber)) = elements[0] else {
            return .failure(RPCFrameError(.messageTypeNotAnInteger))
        }
        guard elements.count >= 2, case .value(.string(let id)) = elements[1] else {
            return .failure(RPCFrameError(.messageIdUnreadable, messageType: Int(typeNumber)))
        }
        // SEND and CALLRESULTERROR exist in 2.1 only; elsewhere their numbers are unknown types.
        let type = MessageTypeNumber(rawValue: Int(typeNumber)).flatMap { type in
            (type == .send || type == .callResultError) && version != .v2_1 ? nil : type
        }
        func fail(_ kind: RPCFrameError.Kind) -> Result<(RPCEnvelope, JSONValue?), RPCFrameError> {
            .failure(RPCFrameError(kind, messageType: Int(typeNumber), messageId: id))
        }
        guard id.count <= RPCFrame.maximumMessageIdLength else { return fail(.messageIdTooLong) }

        switch type {
        case .call?, .send?:
            guard elements.count == 4 else { return fail(.wrongElementCount(expected: 4, got: elements.count)) }
            guard case .value(.string(let action)) = elements[2] else { return fail(.actionNotAString) }
            guard case .object(let range, let payload) = elements[3] else { return fail(.payloadNotAnObject) }
            return .success(
                (
                    RPCEnvelope(
                        messageType: type!, messageId: id, action: action, errorCode: nil, errorDescription: nil,
                        payloadRange: range), payload
                ))
        case .callResult?:
            guard elements.count == 3 else { return fail(.wrongElementCount(expected: 3, got: elements.count)) }
            guard case .object(let range, let payload) = elements[2] else { return fail(.payloadNotAnObject) }
            return .success(
                (
                    RPCEnvelope(
                        messageType: .callResult, messageId: id, action: nil, errorCode: nil, errorDescription: nil,
                        payloadRange: range), payload
                ))
        case .callError?, .callResultError?:
            guard elements.count == 5 else { return fail(.wrongElementCount(expected: 5, got: elements.count)) }
            guard case .value(.string(let code)) = elements[2] else { return fail(.errorCodeNotAString) }
            guard case .value(.string(let description)) = elements[3] else {
                return fail(.errorDescriptionNotAString)
            }
            guard case .object(let range, let details) = elements[4] else { return fail(.errorDetailsNotAnObject) }
            return .success(
                (
                    RPCEnvelope(
                        messageType: type!, messageId: id, action: nil, errorCode: code,
                        errorDescription: description, payloadRange: range), details
                ))
        default:
            return fail(.unknownMessageType(Int(typeNumber)))
        }
    }
}

/// Runs `body` over the bytes of `text`, copying them only when the collection is not contiguous.
func withContiguousBytes<T>(_ text: some Collection<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
    if let result = text.withContiguousStorageIfAvailable(body) { return result }
    return Array(text).withUnsafeBufferPointer(body)
}

/// Why a text message is not a well-formed RPC frame, with as much of the frame as could be read.
public struct RPCFrameError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        case notJSON
        case notAnArray
        case messageTypeNotAnInteger
        case messageIdUnreadable
        case messageIdTooLong
        case unknownMessageType(Int)
        case wrongElementCount(expected: Int, got: Int)
        case actionNotAString
        case payloadNotAnObject
        case errorCodeNotAString
        case errorDescriptionNotAString
        case errorDetailsNotAnObject
    }

    public let kind: Kind
    /// The message type number, when the frame had a readable one.
    public let messageType: Int?
    /// The message id, when it could be read.
    public let messageId: String?

    public init(_ kind: Kind, messageType: Int? = nil, messageId: String? = nil) {
        self.kind = kind
        self.messageType = messageType
        self.messageId = messageId
    }

    /// A short, stable name for metrics labels.
    public var reason: String {
        switch kind {
        case .notJSON: return "not_json"
        case .notAnArray: return "not_an_array"
        case .messageTypeNotAnInteger: return "message_type_not_integer"
        case .messageIdUnreadable: return "message_id_unreadable"
        case .messageIdTooLong: return "message_id_too_long"
        case .unknownMessageType: return "unknown_message_type"
        case .wrongElementCount: return "wrong_element_count"
        case .actionNotAString: return "action_not_string"
        case .payloadNotAnObject: return "payload_not_object"
        case .errorCodeNotAString, .errorDescriptionNotAString, .errorDetailsNotAnObject: return "malformed_callerror"
        }
    }

    public var description: String {
        switch kind {
        case .notJSON: return "the message is not valid JSON"
        case .notAnArray: return "the message is not a non-empty JSON array"
        case .messageTypeNotAnInteger: return "the first element (MessageTypeId) is not an integer"
        case .messageIdUnreadable: return "the second element (MessageId) is missing or not a string"
        case .messageIdTooLong: return "the MessageId is longer than \(RPCFrame.maximumMessageIdLength) characters"
        case .unknownMessageType(let n): return "message type number \(n) is not supported"
        case .wrongElementCount(let expected, let got):
            return "a message of type \(messageType ?? 0) has \(expected) elements, this one has \(got)"
        case .actionNotAString: return "the Action is not a string"
        case .payloadNotAnObject: return "the payload is not a JSON object"
        case .errorCodeNotAString: return "the ErrorCode is not a string"
        case .errorDescriptionNotAString: return "the ErrorDescription is not a string"
        case .errorDetailsNotAnObject: return "the ErrorDetails is not a JSON object"
        }
    }

    /// Whether the sender should get a CALLERROR back. Only a CALL (or a frame whose type cannot be told)
    /// is answered: OCPP 1.6 and 2.0.1 have no way to answer a broken CALLRESULT or CALLERROR.
    public func answersSender(version: OCPPVersion) -> Bool {
        if case .unknownMessageType = kind {
            // 2.1 part 4 §4.1.3: a message with an unknown type number is ignored.
            return version != .v2_1
        }
        switch messageType {
        case nil, MessageTypeNumber.call.rawValue?: return true
        case MessageTypeNumber.send.rawValue?: return false
        default: return false
        }
    }

    /// The CALLERROR the sender gets, per the RPC error codes of its version.
    public func callErrorCode(version: OCPPVersion) -> RPCErrorCode {
        switch kind {
        case .unknownMessageType:
            return version.isTwoX ? .messageTypeNotSupported : .genericError
        case .payloadNotAnObject:
            return .formatViolation
        default:
            return .rpcFrameworkError
        }
    }

    /// The MessageId to answer with: the frame's own when readable, else "-1" (2.0.1 part 4 §4.2.3).
    public var answerMessageId: String { messageId ?? "-1" }
}

extension RPCFrame {
    /// The frame as the JSON array it is sent as.
    public var json: JSONValue {
        func number(_ type: MessageTypeNumber) -> JSONValue { .integer(Int64(type.rawValue)) }
        switch self {
        case .call(let id, let action, let payload):
            return .array([number(.call), .string(id), .string(action), payload])
        case .callResult(let id, let payload):
            return .array([number(.callResult), .string(id), payload])
        case .callError(let id, let code, let description, let details):
            return .array([number(.callError), .string(id), .string(code), .string(description), details])
        case .callResultError(let id, let code, let description, let details):
            return .array([number(.callResultError), .string(id), .string(code), .string(description), details])
        case .send(let id, let action, let payload):
            return .array([number(.send), .string(id), .string(action), payload])
        }
    }
}
