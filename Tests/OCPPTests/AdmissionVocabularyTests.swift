import OCPP
import Testing

@Suite("Charger identity from the URL")
struct ChargerIdentityTests {
    @Test func takesTheSegmentAfterTheMountPath() {
        #expect(
            ConnectionPath.resolve(requestTarget: "/ocpp/CP001", mountPath: "/ocpp")
                == .charger(try! ChargerIdentity("CP001")))
        #expect(
            ConnectionPath.resolve(requestTarget: "/ocpp/CP001?x=1", mountPath: "/ocpp")
                == .charger(try! ChargerIdentity("CP001")))
        #expect(
            ConnectionPath.resolve(requestTarget: "/CP001", mountPath: "/") == .charger(try! ChargerIdentity("CP001")))
    }

    @Test func percentDecodesTheIdentity() {
        #expect(
            ConnectionPath.resolve(requestTarget: "/ocpp/CP%20001", mountPath: "/ocpp")
                == .charger(try! ChargerIdentity("CP 001")))
        #expect(
            ConnectionPath.resolve(requestTarget: "/ocpp/St%C3%A4tion", mountPath: "/ocpp")
                == .charger(try! ChargerIdentity("Stätion")))
    }

    @Test(arguments: ["/other/CP001", "/ocpp", "/ocpp/a/b", "/ocppx/CP001", "/"])
    func anythingButOneSegmentUnderTheMountPathIsNotFound(target: String) {
        #expect(ConnectionPath.resolve(requestTarget: target, mountPath: "/ocpp") == .notFound)
    }

    @Test func refusesBadIdentities() {
        #expect(ConnectionPath.resolve(requestTarget: "/ocpp/", mountPath: "/ocpp") == .badIdentity(.empty))
        #expect(
            ConnectionPath.resolve(requestTarget: "/ocpp/" + String(repeating: "a", count: 49), mountPath: "/ocpp")
                == .badIdentity(.tooLong(49)))
        #expect(
            ConnectionPath.resolve(requestTarget: "/ocpp/a:b", mountPath: "/ocpp")
                == .badIdentity(.forbiddenCharacter(":")))
        #expect(
            ConnectionPath.resolve(requestTarget: "/ocpp/a%3Ab", mountPath: "/ocpp")
                == .badIdentity(.forbiddenCharacter(":")))
        #expect(
            ConnectionPath.resolve(requestTarget: "/ocpp/a%2Fb", mountPath: "/ocpp")
                == .badIdentity(.forbiddenCharacter("/")))
        #expect(
            ConnectionPath.resolve(requestTarget: "/ocpp/a%0Ab", mountPath: "/ocpp") == .badIdentity(.controlCharacter))
        #expect(
            ConnectionPath.resolve(requestTarget: "/ocpp/a%zz", mountPath: "/ocpp") == .badIdentity(.badPercentEncoding)
        )
        #expect(
            ConnectionPath.resolve(requestTarget: "/ocpp/a%C3", mountPath: "/ocpp") == .badIdentity(.badPercentEncoding)
        )
    }

    /// Appended to the CSMS's URL, a dot-segment identity would be a path traversal.
    @Test(arguments: ["/ocpp/.", "/ocpp/..", "/ocpp/%2E", "/ocpp/%2e%2E", "/ocpp/.%2e", "/ocpp/..?x=1"])
    func refusesDotSegmentIdentities(target: String) {
        #expect(ConnectionPath.resolve(requestTarget: target, mountPath: "/ocpp") == .badIdentity(.dotSegment))
    }

    @Test(arguments: ["...", ".a", "a..", "CP.01"])
    func acceptsIdentitiesWithDotsThatAreNotDotSegments(identity: String) throws {
        #expect(
            ConnectionPath.resolve(requestTarget: "/ocpp/\(identity)", mountPath: "/ocpp")
                == .charger(try ChargerIdentity(identity)))
    }

    @Test func acceptsExactly48Characters() throws {
        let id = String(repeating: "a", count: 48)
        #expect(try ChargerIdentity(id).value == id)
    }

    @Test func percentEncodesForTheUpstreamURL() throws {
        #expect(try ChargerIdentity("CP-001_a.b~c").percentEncoded == "CP-001_a.b~c")
        #expect(try ChargerIdentity("CP 001").percentEncoded == "CP%20001")
        #expect(try ChargerIdentity("Stä").percentEncoded == "St%C3%A4")
    }
}

@Suite("Subprotocol negotiation")
struct SubprotocolNegotiationTests {
    let served: [OCPPVersion] = [.v1_6, .v2_0_1]

    @Test func takesTheChargersFirstPreferenceThatIsServed() {
        #expect(
            SubprotocolNegotiation.negotiate(
                offeredHeaderValues: ["ocpp2.1, ocpp2.0.1, ocpp1.6"], served: served, defaultVersion: nil)
                == .agreed(.v2_0_1))
        #expect(
            SubprotocolNegotiation.negotiate(
                offeredHeaderValues: ["ocpp1.6", "ocpp2.0.1"], served: served, defaultVersion: nil) == .agreed(.v1_6))
    }

    @Test func noHeaderFallsBackToTheDefaultVersion() {
        #expect(
            SubprotocolNegotiation.negotiate(offeredHeaderValues: [], served: served, defaultVersion: .v1_6)
                == .defaulted(.v1_6))
        #expect(
            SubprotocolNegotiation.negotiate(offeredHeaderValues: [" "], served: served, defaultVersion: nil)
                == .missing)
    }

    @Test func nothingServedIsNoneAcceptable() {
        #expect(
            SubprotocolNegotiation.negotiate(
                offeredHeaderValues: ["ocpp1.5,ocpp2.0"], served: served, defaultVersion: .v1_6)
                == .noneAcceptable(offered: ["ocpp1.5", "ocpp2.0"]))
    }

    @Test func subprotocolsAreCaseSensitive() {
        #expect(
            SubprotocolNegotiation.negotiate(offeredHeaderValues: ["OCPP1.6"], served: served, defaultVersion: nil)
                == .noneAcceptable(offered: ["OCPP1.6"]))
    }
}
