import OCPP

/// The parser targets: both entry points into ``JSONParser`` (building a value, and checking a frame while building
/// only its head), and the two RPC readers on top of them.
enum JSONTargets {
    /// One document: the builder and the envelope's checker accept exactly the same documents, and what is
    /// accepted survives being written and read again (sorted and wire order alike), a fixpoint after one round.
    static func json(_ bytes: UnsafeBufferPointer<UInt8>) {
        let value = JSONValue(parsing: bytes)
        let checked = RPCEnvelope.parse(bytes, version: .v2_1)
        let checkerRefused: Bool
        if case .failure(let error) = checked, error.kind == .notJSON {
            checkerRefused = true
        } else {
            checkerRefused = false
        }
        FuzzInvariant.check(
            (value == nil) == checkerRefused,
            "JSONValue(parsing:) \(value == nil ? "refuses" : "accepts") a document that the envelope reader "
                + "\(checkerRefused ? "refuses" : "accepts") as JSON")
        guard let value else { return }

        let text = value.jsonText
        guard let again = JSONValue(parsing: Array(text.utf8)) else {
            FuzzInvariant.fail("the serialised text of a parsed value does not parse: \(text.prefix(300))")
        }
        FuzzInvariant.check(
            JSONSameness.same(value, again),
            "a value read back from its own text differs: \(text.prefix(300)) → \(again.jsonText.prefix(300))")
        FuzzInvariant.check(again.jsonText == text, "jsonText is not a fixpoint: \(text.prefix(300))")

        let wire = value.wireBytes
        guard let fromWire = JSONValue(parsing: wire) else {
            FuzzInvariant.fail("the wire text of a parsed value does not parse: \(value.wireText.prefix(300))")
        }
        FuzzInvariant.check(JSONSameness.same(value, fromWire), "wire text reads back differently: \(text.prefix(300))")
    }

    /// One frame in every version: the pass-through reader (envelope, payload unbuilt) and the translating reader
    /// (whole frame) agree on acceptance, on the error, and on type, id, action and payload; a frame accepted is
    /// accepted again, the same, from its own serialisation.
    static func envelope(_ bytes: UnsafeBufferPointer<UInt8>) {
        for version in OCPPVersion.allCases {
            let envelope = RPCEnvelope.parse(bytes, version: version)
            let frame = RPCFrame.parse(bytes, version: version)
            switch (envelope, frame) {
            case (.failure(let a), .failure(let b)):
                FuzzInvariant.check(a == b, "\(version): the envelope reader says \(a), the frame reader \(b)")
            case (.success(let head), .success(let frame)):
                FuzzInvariant.check(
                    head.messageType == frame.messageType && head.messageId == frame.messageId,
                    "\(version): envelope \(head.messageType) \(head.messageId), frame \(frame.messageType) "
                        + "\(frame.messageId)")
                let payload: JSONValue
                switch frame {
                case .call(_, let action, let p), .send(_, let action, let p):
                    FuzzInvariant.check(head.action == action, "\(version): actions differ")
                    payload = p
                case .callResult(_, let p):
                    FuzzInvariant.check(head.action == nil && head.errorCode == nil, "\(version): result has action")
                    payload = p
                case .callError(_, let code, let description, let details),
                    .callResultError(_, let code, let description, let details):
                    FuzzInvariant.check(
                        head.errorCode == code && head.errorDescription == description,
                        "\(version): error code or description differ")
                    payload = details
                }
                FuzzInvariant.check(
                    head.payloadRange.lowerBound >= 0 && head.payloadRange.upperBound <= bytes.count,
                    "\(version): payload range \(head.payloadRange) outside \(bytes.count) bytes")
                let relayed = JSONValue(parsing: UnsafeBufferPointer(rebasing: bytes[head.payloadRange]))
                FuzzInvariant.check(
                    relayed.map { JSONSameness.same($0, payload) } ?? false,
                    "\(version): the envelope's payload bytes do not read as the frame's payload")
                let written = frame.json.wireBytes
                guard case .success(let again) = RPCFrame.parse(written, version: version) else {
                    FuzzInvariant.fail("\(version): a frame written out is refused: \(frame.json.jsonText.prefix(300))")
                }
                FuzzInvariant.check(
                    JSONSameness.same(frame.json, again.json),
                    "\(version): a frame read back from its own text differs")
            case (.success(let head), .failure(let error)):
                FuzzInvariant.fail(
                    "\(version): the envelope reader accepts \(head.messageId), the frame reader: \(error)")
            case (.failure(let error), .success(let frame)):
                FuzzInvariant.fail(
                    "\(version): the frame reader accepts \(frame.messageId), the envelope reader: \(error)")
            }
        }
    }
}

/// Equality of JSON values as documents: `1` and `1.0` are the same number (``JSONValue/jsonText`` writes an
/// integral Double as an integer, which reads back as `.integer`), and so are `0` and `-0`.
enum JSONSameness {
    static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.string(let x), .string(let y)): return x.utf8.elementsEqual(y.utf8)
        case (.integer(let x), .integer(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.integer(let i), .number(let d)), (.number(let d), .integer(let i)): return Int64(exactly: d) == i
        case (.array(let x), .array(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case (.object(let x), .object(let y)):
            guard x.count == y.count else { return false }
            for (key, value) in x {
                guard let other = y[key], same(value, other) else { return false }
            }
            return true
        default: return false
        }
    }

    /// Whether a value holds a number JSON cannot write (an infinity or NaN).
    static func hasNonFiniteNumber(_ value: JSONValue) -> Bool {
        switch value {
        case .number(let d): return !d.isFinite
        case .array(let elements): return elements.contains(where: hasNonFiniteNumber)
        case .object(let members): return members.values.contains(where: hasNonFiniteNumber)
        default: return false
        }
    }
}
