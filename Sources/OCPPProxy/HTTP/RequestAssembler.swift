import NIOCore
import NIOHTTP1

/// Keeps a request's head until its end arrives: the proxy's HTTP handlers answer complete requests only.
struct RequestAssembler {
    private var head: HTTPRequestHead?

    /// The request, once its last part has arrived; bodies are ignored.
    mutating func receive(_ part: HTTPServerRequestPart) -> HTTPRequestHead? {
        switch part {
        case .head(let head):
            self.head = head
            return nil
        case .body:
            return nil
        case .end:
            defer { head = nil }
            return head
        }
    }
}
