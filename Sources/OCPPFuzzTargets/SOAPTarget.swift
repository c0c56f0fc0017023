import OCPP
import OCPPRules
import OCPPSOAP

/// The SOAP codec on hostile bytes, as a charger's request and as a charger's answer to each action: never a trap,
/// a fault for what is not a valid message, and a request that reads is read back the same from the request the
/// codec writes of it (a charger's, to the Central System service).
struct SOAPTarget {
    let codec: SOAPCodec
    /// A few actions of each version, to read the bytes as the answer to.
    static let answered: [(OCPPVersion, String)] = [
        (.v1_5, "Reset"), (.v1_5, "GetConfiguration"), (.v1_6, "RemoteStartTransaction"), (.v1_6, "DataTransfer"),
    ]

    func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        switch codec.readRequest(bytes) {
        case .failure(let failure):
            // Every refusal can be written as a fault.
            FuzzInvariant.check(!codec.writeFault(for: failure).bytes.isEmpty, "an empty fault for \(failure)")
        case .success(let request):
            roundTrip(request)
        }
        for (version, action) in Self.answered {
            _ = codec.readCallAnswer(bytes, action: action, ocppVersion: version, messageID: "urn:uuid:fuzz")
        }
    }

    private func roundTrip(_ request: SOAPRequest) {
        let written: SOAPMessage
        do {
            written = try codec.writeCall(
                action: request.action, payload: request.payload, ocppVersion: request.ocppVersion,
                identity: request.identity, messageID: "urn:uuid:fuzz", to: "http://127.0.0.1/cs",
                from: "http://127.0.0.1/cp", caller: .charger)
        } catch .unwritable {
            // A string with a character XML 1.0 cannot carry (it arrived as a character reference).
            return
        } catch {
            FuzzInvariant.fail("a request that was read cannot be written again: \(error)")
        }
        guard case .success(let again) = codec.readRequest(written.bytes) else {
            FuzzInvariant.fail(
                "the codec's own request does not read: \(String(decoding: written.bytes, as: UTF8.self))")
        }
        FuzzInvariant.check(
            again.action == request.action && again.ocppVersion == request.ocppVersion
                && again.identity == request.identity && again.payload == request.payload,
            "\(request.action) reads back differently: \(request.payload) → \(again.payload)")
    }
}
