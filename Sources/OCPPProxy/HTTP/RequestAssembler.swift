import NIOCore
import NIOHTTP1

/// Keeps a request's head (and, up to `maxBody` bytes, its body) until its end arrives: the proxy's HTTP handlers
/// answer complete requests only.
struct RequestAssembler {
    /// Body bytes kept; more marks the request `tooLarge` (its body is dropped).
    let maxBody: Int
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false

    init(maxBody: Int = 0) {
        self.maxBody = maxBody
    }

    /// The request, once its last part has arrived; bodies are ignored.
    mutating func receive(_ part: HTTPServerRequestPart) -> HTTPRequestHead? {
        receiveWithBody(part)?.head
    }

    /// The request with its body, once its last part has arrived; `tooLarge` when the body passed `maxBody`.
    mutating func receiveWithBody(_ part: HTTPServerRequestPart) -> (
        head: HTTPRequestHead, body: [UInt8], tooLarge: Bool
    )? {
        switch part {
        case .head(let head):
            self.head = head
            body = []
            tooLarge = false
            return nil
        case .body(let buffer):
            if !tooLarge, body.count + buffer.readableBytes <= maxBody {
                body.append(contentsOf: buffer.readableBytesView)
            } else {
                tooLarge = true
                body = []
            }
            return nil
        case .end:
            defer {
                head = nil
                body = []
            }
            return head.map { ($0, body, tooLarge) }
        }
    }
}
