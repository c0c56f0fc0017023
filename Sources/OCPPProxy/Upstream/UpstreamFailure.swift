import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Why an upstream link could not be opened; decides the status the charger's upgrade is answered with.
enum UpstreamFailure: Error, CustomStringConvertible {
    /// Nothing listens at the CSMS address.
    case refused(String)
    /// The CSMS answered but would not open the link (HTTP error, wrong subprotocol, closed mid-handshake).
    case rejected(String)
    /// The CSMS address cannot be resolved or reached.
    case unreachable(String)
    /// No open link within `upstream.connectTimeout`.
    case timeout

    var status: HTTPResponseStatus {
        switch self {
        case .refused, .rejected: return .badGateway
        case .unreachable: return .serviceUnavailable
        case .timeout: return .gatewayTimeout
        }
    }

    var metricReason: String {
        switch self {
        case .refused: return "refused"
        case .rejected: return "rejected"
        case .unreachable: return "unreachable"
        case .timeout: return "timeout"
        }
    }

    var description: String {
        switch self {
        case .refused(let why): return "upstream refused the connection: \(why)"
        case .rejected(let why): return "upstream rejected the link: \(why)"
        case .unreachable(let why): return "upstream unreachable: \(why)"
        case .timeout: return "upstream did not open the link within upstream.connectTimeout"
        }
    }

    /// Sorts a connect error from NIO into the failure it means for the charger.
    static func classify(_ error: Error) -> UpstreamFailure {
        switch error {
        case let failure as UpstreamFailure:
            return failure
        case let error as NIOConnectionError:
            if let dns = error.dnsAError ?? error.dnsAAAAError, error.connectionErrors.isEmpty {
                return .unreachable("cannot resolve \(error.host): \(dns)")
            }
            let single = error.connectionErrors.map { classify($0.error) }
            return single.first { if case .refused = $0 { return true } else { return false } }
                ?? single.first ?? .unreachable("\(error)")
        case let error as IOError:
            switch error.errnoCode {
            case ECONNREFUSED: return .refused("\(error)")
            case ETIMEDOUT: return .timeout
            default: return .unreachable("\(error)")
            }
        case ChannelError.connectTimeout:
            return .timeout
        case is SocketAddressError:
            return .unreachable("\(error)")
        default:
            return .rejected("\(error)")
        }
    }
}
