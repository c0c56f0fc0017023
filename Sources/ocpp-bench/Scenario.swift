/// The CALLs a benchmark charger sends, with schema-valid payloads (OCPP 1.6 JSON schemas; OCPP 2.0.1 part 3).
enum CallKind: Int, CaseIterable {
    case bootNotification
    case heartbeat
    case statusNotification
    case authorize
    case startTransaction  // 1.6 StartTransaction, 2.0.1 TransactionEvent Started
    case meterValues  // MeterValues (both versions)
    case transactionUpdated  // 1.6 MeterValues with the transaction, 2.0.1 TransactionEvent Updated
    case stopTransaction  // 1.6 StopTransaction, 2.0.1 TransactionEvent Ended
    case statusAvailable  // StatusNotification back to Available

    func action(_ version: BenchVersion) -> String {
        switch self {
        case .bootNotification: return "BootNotification"
        case .heartbeat: return "Heartbeat"
        case .statusNotification, .statusAvailable: return "StatusNotification"
        case .authorize: return "Authorize"
        case .meterValues: return "MeterValues"
        case .startTransaction: return version == .v16 ? "StartTransaction" : "TransactionEvent"
        case .transactionUpdated: return version == .v16 ? "MeterValues" : "TransactionEvent"
        case .stopTransaction: return version == .v16 ? "StopTransaction" : "TransactionEvent"
        }
    }
}

enum ScenarioName: String, CaseIterable {
    /// Heartbeat, StatusNotification, MeterValues and whole transactions, in a cycle.
    case mixed
    /// Heartbeat only.
    case heartbeat
    /// Connect, boot, then one Heartbeat every `--heartbeat` seconds.
    case idle
}

/// One charger's place in its scenario and the state a transaction needs.
struct ScenarioState {
    /// One cycle of the mixed scenario: a transaction between two status changes, then a heartbeat.
    static let mixedCycle: [CallKind] = [
        .statusNotification, .authorize, .startTransaction, .transactionUpdated, .meterValues,
        .transactionUpdated, .stopTransaction, .statusAvailable, .heartbeat,
    ]

    var step: Int
    var transactionId = 0  // 1.6: from StartTransaction.conf
    var transactionSeq = 0  // 2.0.1: a new transactionId per transaction
    var seqNo = 0
    var meter = 0

    init(start: Int) {
        step = start % Self.mixedCycle.count
    }

    mutating func next(_ scenario: ScenarioName) -> CallKind {
        switch scenario {
        case .heartbeat, .idle:
            return .heartbeat
        case .mixed:
            let kind = Self.mixedCycle[step]
            step = (step + 1) % Self.mixedCycle.count
            return kind
        }
    }

    /// The JSON payload of `kind`.
    mutating func payload(_ kind: CallKind, version: BenchVersion, identity: String, now: String) -> String {
        let idTag = "T\(identity.suffix(19))"
        switch (version, kind) {
        case (.v16, .bootNotification):
            return
                "{\"chargePointVendor\":\"ocpp-bench\",\"chargePointModel\":\"bench-1.6\",\"firmwareVersion\":\"1.0\"}"
        case (.v201, .bootNotification):
            return
                "{\"chargingStation\":{\"model\":\"bench-2.0.1\",\"vendorName\":\"ocpp-bench\"},\"reason\":\"PowerUp\"}"
        case (_, .heartbeat):
            return "{}"
        case (.v16, .statusNotification):
            return "{\"connectorId\":1,\"errorCode\":\"NoError\",\"status\":\"Preparing\",\"timestamp\":\"\(now)\"}"
        case (.v16, .statusAvailable):
            return "{\"connectorId\":1,\"errorCode\":\"NoError\",\"status\":\"Available\",\"timestamp\":\"\(now)\"}"
        case (.v201, .statusNotification):
            return "{\"timestamp\":\"\(now)\",\"connectorStatus\":\"Occupied\",\"evseId\":1,\"connectorId\":1}"
        case (.v201, .statusAvailable):
            return "{\"timestamp\":\"\(now)\",\"connectorStatus\":\"Available\",\"evseId\":1,\"connectorId\":1}"
        case (.v16, .authorize):
            return "{\"idTag\":\"\(idTag)\"}"
        case (.v201, .authorize):
            return "{\"idToken\":{\"idToken\":\"\(idTag)\",\"type\":\"ISO14443\"}}"
        case (.v16, .startTransaction):
            return "{\"connectorId\":1,\"idTag\":\"\(idTag)\",\"meterStart\":\(meter),\"timestamp\":\"\(now)\"}"
        case (.v201, .startTransaction):
            transactionSeq += 1
            seqNo = 0
            return "{\"eventType\":\"Started\",\"timestamp\":\"\(now)\",\"triggerReason\":\"Authorized\",\"seqNo\":0,"
                + "\"transactionInfo\":{\"transactionId\":\"\(identity)-\(transactionSeq)\",\"chargingState\":\"EVConnected\"},"
                + "\"idToken\":{\"idToken\":\"\(idTag)\",\"type\":\"ISO14443\"},\"evse\":{\"id\":1,\"connectorId\":1}}"
        case (.v16, .meterValues), (.v16, .transactionUpdated):
            meter += 250
            let transaction =
                kind == .transactionUpdated && transactionId > 0 ? ",\"transactionId\":\(transactionId)" : ""
            return "{\"connectorId\":1\(transaction),\"meterValue\":[{\"timestamp\":\"\(now)\",\"sampledValue\":["
                + "{\"value\":\"\(meter)\",\"context\":\"Sample.Periodic\",\"measurand\":\"Energy.Active.Import.Register\",\"unit\":\"Wh\"},"
                + "{\"value\":\"11000\",\"context\":\"Sample.Periodic\",\"measurand\":\"Power.Active.Import\",\"unit\":\"W\"}]}]}"
        case (.v201, .meterValues):
            meter += 250
            return "{\"evseId\":1,\"meterValue\":[{\"timestamp\":\"\(now)\",\"sampledValue\":["
                + "{\"value\":\(meter),\"measurand\":\"Energy.Active.Import.Register\",\"unitOfMeasure\":{\"unit\":\"Wh\"}},"
                + "{\"value\":11000,\"measurand\":\"Power.Active.Import\",\"unitOfMeasure\":{\"unit\":\"W\"}}]}]}"
        case (.v201, .transactionUpdated):
            meter += 250
            seqNo += 1
            return
                "{\"eventType\":\"Updated\",\"timestamp\":\"\(now)\",\"triggerReason\":\"MeterValuePeriodic\",\"seqNo\":\(seqNo),"
                + "\"transactionInfo\":{\"transactionId\":\"\(identity)-\(transactionSeq)\",\"chargingState\":\"Charging\"},"
                + "\"meterValue\":[{\"timestamp\":\"\(now)\",\"sampledValue\":[{\"value\":\(meter),\"measurand\":\"Energy.Active.Import.Register\"}]}]}"
        case (.v16, .stopTransaction):
            return
                "{\"transactionId\":\(transactionId),\"idTag\":\"\(idTag)\",\"meterStop\":\(meter),\"timestamp\":\"\(now)\",\"reason\":\"Local\"}"
        case (.v201, .stopTransaction):
            seqNo += 1
            return
                "{\"eventType\":\"Ended\",\"timestamp\":\"\(now)\",\"triggerReason\":\"StopAuthorized\",\"seqNo\":\(seqNo),"
                + "\"transactionInfo\":{\"transactionId\":\"\(identity)-\(transactionSeq)\",\"stoppedReason\":\"Local\"},"
                + "\"idToken\":{\"idToken\":\"\(idTag)\",\"type\":\"ISO14443\"}}"
        }
    }
}

extension ScenarioState {
    /// The SOAP body element of `kind`: the request element of the version's CentralSystemService WSDL, its fields
    /// in the WSDL's order, with the version's namespace as the default one. The same calls and values as the
    /// OCPP-J payloads; 1.5 has no `Preparing` (the connector is `Occupied`) and no stop `reason`, and carries meter
    /// values as `values` with attribute-carrying `value` text.
    mutating func soapBody(_ kind: CallKind, version: OCPPSVersion, identity: String, now: String) -> String {
        let idTag = XMLText.escape("T\(identity.suffix(19))")
        let ns = "xmlns=\"\(version.namespace)\""
        switch kind {
        case .bootNotification:
            return "<bootNotificationRequest \(ns)><chargePointVendor>ocpp-bench</chargePointVendor>"
                + "<chargePointModel>bench-s\(version == .v15 ? "1.5" : "1.6")</chargePointModel>"
                + "<firmwareVersion>1.0</firmwareVersion></bootNotificationRequest>"
        case .heartbeat:
            return "<heartbeatRequest \(ns)/>"
        case .statusNotification, .statusAvailable:
            let status = kind == .statusAvailable ? "Available" : version == .v15 ? "Occupied" : "Preparing"
            return "<statusNotificationRequest \(ns)><connectorId>1</connectorId><status>\(status)</status>"
                + "<errorCode>NoError</errorCode><timestamp>\(now)</timestamp></statusNotificationRequest>"
        case .authorize:
            return "<authorizeRequest \(ns)><idTag>\(idTag)</idTag></authorizeRequest>"
        case .startTransaction:
            return "<startTransactionRequest \(ns)><connectorId>1</connectorId><idTag>\(idTag)</idTag>"
                + "<timestamp>\(now)</timestamp><meterStart>\(meter)</meterStart></startTransactionRequest>"
        case .meterValues, .transactionUpdated:
            meter += 250
            let transaction =
                kind == .transactionUpdated && transactionId > 0
                ? "<transactionId>\(transactionId)</transactionId>" : ""
            let values: String
            switch version {
            case .v15:
                values =
                    "<values><timestamp>\(now)</timestamp>"
                    + "<value context=\"Sample.Periodic\" measurand=\"Energy.Active.Import.Register\" unit=\"Wh\">\(meter)</value>"
                    + "<value context=\"Sample.Periodic\" measurand=\"Power.Active.Import\" unit=\"W\">11000</value></values>"
            case .v16:
                values =
                    "<meterValue><timestamp>\(now)</timestamp>"
                    + "<sampledValue><value>\(meter)</value><context>Sample.Periodic</context>"
                    + "<measurand>Energy.Active.Import.Register</measurand><unit>Wh</unit></sampledValue>"
                    + "<sampledValue><value>11000</value><context>Sample.Periodic</context>"
                    + "<measurand>Power.Active.Import</measurand><unit>W</unit></sampledValue></meterValue>"
            }
            return "<meterValuesRequest \(ns)><connectorId>1</connectorId>\(transaction)\(values)</meterValuesRequest>"
        case .stopTransaction:
            let reason = version == .v16 ? "<reason>Local</reason>" : ""
            return
                "<stopTransactionRequest \(ns)><transactionId>\(transactionId)</transactionId><idTag>\(idTag)</idTag>"
                + "<timestamp>\(now)</timestamp><meterStop>\(meter)</meterStop>\(reason)</stopTransactionRequest>"
        }
    }
}
