/// The CALL action names each version defines. Used to keep metric labels bounded (an action a charger
/// invents is counted as "other") and to tell a known action from a vendor's own.
public enum MessageCatalog {
    /// Whether `action` is a CALL defined by `version` (1.6 includes the 1.6 security extension).
    public static func isKnown(_ action: String, in version: OCPPVersion) -> Bool {
        actions(of: version).contains(action)
    }

    public static func actions(of version: OCPPVersion) -> Set<String> {
        switch version {
        case .v1_5: return v15
        case .v1_6: return v16
        case .v2_0_1: return v201
        case .v2_1: return v21
        }
    }

    /// OCPP 1.5 (the operations of its two SOAP services).
    private static let v15: Set<String> = [
        "Authorize", "BootNotification", "CancelReservation", "ChangeAvailability", "ChangeConfiguration", "ClearCache",
        "DataTransfer", "DiagnosticsStatusNotification", "FirmwareStatusNotification", "GetConfiguration",
        "GetDiagnostics", "GetLocalListVersion", "Heartbeat", "MeterValues", "RemoteStartTransaction",
        "RemoteStopTransaction", "ReserveNow", "Reset", "SendLocalList", "StartTransaction", "StatusNotification",
        "StopTransaction", "UnlockConnector", "UpdateFirmware",
    ]

    private static let v16: Set<String> = [
        "Authorize", "BootNotification", "CancelReservation", "CertificateSigned", "ChangeAvailability",
        "ChangeConfiguration", "ClearCache", "ClearChargingProfile", "DataTransfer", "DeleteCertificate",
        "DiagnosticsStatusNotification", "ExtendedTriggerMessage", "FirmwareStatusNotification", "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics", "GetInstalledCertificateIds", "GetLocalListVersion", "GetLog", "Heartbeat",
        "InstallCertificate", "LogStatusNotification", "MeterValues", "RemoteStartTransaction", "RemoteStopTransaction",
        "ReserveNow", "Reset", "SecurityEventNotification", "SendLocalList", "SetChargingProfile",
        "SignCertificate", "SignedFirmwareStatusNotification", "SignedUpdateFirmware", "StartTransaction",
        "StatusNotification",
        "StopTransaction", "TriggerMessage", "UnlockConnector", "UpdateFirmware",
    ]

    private static let v201: Set<String> = [
        "Authorize", "BootNotification", "CancelReservation", "CertificateSigned", "ChangeAvailability",
        "ClearCache", "ClearChargingProfile", "ClearDisplayMessage", "ClearVariableMonitoring", "ClearedChargingLimit",
        "CostUpdated", "CustomerInformation", "DataTransfer", "DeleteCertificate", "FirmwareStatusNotification",
        "Get15118EVCertificate", "GetBaseReport", "GetCertificateStatus", "GetChargingProfiles", "GetCompositeSchedule",
        "GetDisplayMessages", "GetInstalledCertificateIds", "GetLocalListVersion", "GetLog", "GetMonitoringReport",
        "GetReport", "GetTransactionStatus", "GetVariables", "Heartbeat", "InstallCertificate",
        "LogStatusNotification", "MeterValues", "NotifyChargingLimit", "NotifyCustomerInformation",
        "NotifyDisplayMessages",
        "NotifyEVChargingNeeds", "NotifyEVChargingSchedule", "NotifyEvent", "NotifyMonitoringReport", "NotifyReport",
        "PublishFirmware", "PublishFirmwareStatusNotification", "ReportChargingProfiles", "RequestStartTransaction",
        "RequestStopTransaction",
        "ReservationStatusUpdate", "ReserveNow", "Reset", "SecurityEventNotification", "SendLocalList",
        "SetChargingProfile", "SetDisplayMessage", "SetMonitoringBase", "SetMonitoringLevel", "SetNetworkProfile",
        "SetVariableMonitoring", "SetVariables", "SignCertificate", "StatusNotification", "TransactionEvent",
        "TriggerMessage", "UnlockConnector", "UnpublishFirmware", "UpdateFirmware",
    ]

    private static let v21: Set<String> = [
        "AFRRSignal", "AdjustPeriodicEventStream", "Authorize", "BatterySwap", "BootNotification",
        "CancelReservation", "CertificateSigned", "ChangeAvailability", "ChangeTransactionTariff", "ClearCache",
        "ClearChargingProfile", "ClearDERControl", "ClearDisplayMessage", "ClearTariffs", "ClearVariableMonitoring",
        "ClearedChargingLimit", "ClosePeriodicEventStream", "CostUpdated", "CustomerInformation", "DataTransfer",
        "DeleteCertificate", "FirmwareStatusNotification", "Get15118EVCertificate", "GetBaseReport",
        "GetCertificateChainStatus",
        "GetCertificateStatus", "GetChargingProfiles", "GetCompositeSchedule", "GetDERControl", "GetDisplayMessages",
        "GetInstalledCertificateIds", "GetLocalListVersion", "GetLog", "GetMonitoringReport", "GetPeriodicEventStream",
        "GetReport", "GetTariffs", "GetTransactionStatus", "GetVariables", "Heartbeat",
        "InstallCertificate", "LogStatusNotification", "MeterValues", "NotifyAllowedEnergyTransfer",
        "NotifyChargingLimit",
        "NotifyCustomerInformation", "NotifyDERAlarm", "NotifyDERStartStop", "NotifyDisplayMessages",
        "NotifyEVChargingNeeds",
        "NotifyEVChargingSchedule", "NotifyEvent", "NotifyMonitoringReport", "NotifyPeriodicEventStream",
        "NotifyPriorityCharging",
        "NotifyReport", "NotifySettlement", "NotifyWebPaymentStarted", "OpenPeriodicEventStream", "PublishFirmware",
        "PublishFirmwareStatusNotification", "PullDynamicScheduleUpdate", "ReportChargingProfiles", "ReportDERControl",
        "RequestBatterySwap",
        "RequestStartTransaction", "RequestStopTransaction", "ReservationStatusUpdate", "ReserveNow", "Reset",
        "SecurityEventNotification", "SendLocalList", "SetChargingProfile", "SetDERControl", "SetDefaultTariff",
        "SetDisplayMessage", "SetMonitoringBase", "SetMonitoringLevel", "SetNetworkProfile", "SetVariableMonitoring",
        "SetVariables", "SignCertificate", "StatusNotification", "TransactionEvent", "TriggerMessage",
        "UnlockConnector", "UnpublishFirmware", "UpdateDynamicSchedule", "UpdateFirmware", "UsePriorityCharging",
        "VatNumberValidation",
    ]

}
