import Logging
import NIOCore
import NIOEmbedded
import NIOWebSocket
import OCPP
import OCPPWebSocket
import TestSupport
import Testing

@testable import OCPPProxy

/// One frame of a generated stream, written by hand (not by the code under test): any opcode, RSV bits, FIN,
/// masked or not, and lengths in the shortest encoding or a longer one, or a length no payload follows.
struct WireFrame {
    var fin = true
    var reserved: UInt8 = 0
    var opcode: UInt8
    var key: [UInt8]?
    var payload: [UInt8]
    /// 0: shortest; 16 or 64: that length field, whatever the length.
    var lengthBits = 0
    /// Set: this length is written instead of the payload's (the payload still follows).
    var claimedLength: UInt64?

    var bytes: [UInt8] {
        var out: [UInt8] = [(fin ? 0x80 : 0) | reserved | opcode]
        let mask: UInt8 = key == nil ? 0 : 0x80
        let length = claimedLength ?? UInt64(payload.count)
        let bits = lengthBits != 0 ? lengthBits : length <= 125 ? 7 : length <= 0xFFFF ? 16 : 64
        switch bits {
        case 7: out.append(mask | UInt8(length))
        case 16: out += [mask | 126, UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
        default:
            out.append(mask | 127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: length >> shift)) }
        }
        if let key {
            out += key
            out += payload.enumerated().map { $0.element ^ key[$0.offset % 4] }
        } else {
            out += payload
        }
        return out
    }
}

/// A frame as either decoder saw it: what the comparison looks at.
struct DecodedFrame: Equatable, CustomStringConvertible {
    var fin: Bool
    var reserved: UInt8
    var opcode: UInt8
    var masked: Bool
    var payload: [UInt8]

    var description: String { "fin=\(fin) rsv=\(reserved) op=\(opcode) masked=\(masked) \(payload.count) bytes" }
}

/// Streams of frames from a seed: payload sizes at the 7/16/64-bit length boundaries, fragments, control frames
/// between them, masked and unmasked, RSV bits, reserved opcodes, and now and then a header that breaks the rules
/// (a long or fragmented control frame, a length over the limit or past Int.max).
struct FrameStreams {
    var random: SplitMix64
    let maxFrameSize: Int

    static let boundaries = [0, 1, 2, 3, 4, 5, 7, 8, 9, 125, 126, 127, 128, 65535, 65536, 65537]

    mutating func payload(control: Bool) -> [UInt8] {
        let count: Int
        switch Int.random(in: 0..<10, using: &random) {
        case 0..<5: count = Int.random(in: 0...40, using: &random)
        case 5..<8: count = FrameStreams.boundaries.filter { !control || $0 <= 125 }.randomElement(using: &random)!
        default: count = Int.random(in: 0...(control ? 125 : 2000), using: &random)
        }
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
    }

    mutating func frame(allowViolations: Bool) -> WireFrame {
        let opcodes: [UInt8] = [0x1, 0x1, 0x1, 0x2, 0x0, 0x0, 0x8, 0x9, 0x9, 0xA, 0x3, 0x7, 0xB, 0xF]
        let opcode = opcodes.randomElement(using: &random)!
        let control = opcode & 0x8 != 0
        var frame = WireFrame(opcode: opcode, payload: payload(control: control))
        frame.fin = control || Bool.random(using: &random)
        if Int.random(in: 0..<8, using: &random) == 0 { frame.reserved = UInt8.random(in: 1...7, using: &random) << 4 }
        if Bool.random(using: &random) { frame.key = (0..<4).map { _ in UInt8.random(in: 0...255, using: &random) } }
        if Int.random(in: 0..<10, using: &random) == 0 { frame.lengthBits = Bool.random(using: &random) ? 16 : 64 }
        guard allowViolations, Int.random(in: 0..<12, using: &random) == 0 else { return frame }
        switch Int.random(in: 0..<5, using: &random) {
        case 0: frame.fin = false
        case 1 where control: frame.payload = [UInt8](repeating: 0x61, count: 126)
        case 2: frame.claimedLength = UInt64(maxFrameSize) + UInt64.random(in: 1...3, using: &random)
        case 3: frame.claimedLength = UInt64.random(in: (UInt64(Int.max) + 1)...UInt64.max, using: &random)
        default: frame.claimedLength = UInt64(Int.max)
        }
        return frame
    }

    mutating func stream(frames count: Int, allowViolations: Bool = true) -> [UInt8] {
        (0..<count).flatMap { _ in frame(allowViolations: allowViolations).bytes }
    }

    /// `bytes` cut at random places, as reads from a socket.
    mutating func chunks(_ bytes: [UInt8]) -> [[UInt8]] {
        var chunks: [[UInt8]] = []
        var start = 0
        while start < bytes.count {
            let size =
                Bool.random(using: &random)
                ? Int.random(in: 1...16, using: &random) : Int.random(in: 1...70000, using: &random)
            let end = min(bytes.count, start + size)
            chunks.append(Array(bytes[start..<end]))
            start = end
        }
        return chunks
    }
}

/// The proxy's reading of a stream: `WebSocketFrameHeader.parse` and `WebSocketMasking`, fed read by read as the
/// link is; the violation that stopped it, if one did.
func decodeWithRelayParser(_ chunks: [[UInt8]], maxFrameSize: Int) -> (frames: [DecodedFrame], violation: UInt16?) {
    var held: [UInt8] = []
    var frames: [DecodedFrame] = []
    for chunk in chunks {
        held += chunk
        while true {
            let parse = held.withUnsafeBytes { WebSocketFrameHeader.parse($0, maxPayloadLength: maxFrameSize) }
            switch parse {
            case .needMore: break
            case .invalid(let violation): return (frames, violation.closeCode)
            case .header(let header):
                guard held.count - header.headerLength >= header.payloadLength else { break }
                var payload = [UInt8](repeating: 0, count: header.payloadLength)
                let start = header.headerLength
                held.withUnsafeBytes { source in
                    payload.withUnsafeMutableBytes { destination in
                        let body = UnsafeRawBufferPointer(rebasing: source[start..<(start + header.payloadLength)])
                        if let key = header.maskingKey {
                            WebSocketMasking.apply(key, from: body, to: destination)
                        } else {
                            destination.copyMemory(from: body)
                        }
                    }
                }
                frames.append(
                    DecodedFrame(
                        fin: header.fin, reserved: header.reservedBits, opcode: header.opcode,
                        masked: header.maskingKey != nil, payload: payload))
                held.removeFirst(header.headerLength + header.payloadLength)
                continue
            }
            break
        }
    }
    return (frames, nil)
}

/// NIO's reading of the same stream, in the same terms.
func decodeWithNIO(_ chunks: [[UInt8]], maxFrameSize: Int) -> (frames: [DecodedFrame], violation: UInt16?) {
    let decoded = NIOFraming.decode(chunks.map { ByteBuffer(bytes: $0) }, maxFrameSize: maxFrameSize)
    let frames = decoded.frames.map { frame in
        DecodedFrame(
            fin: frame.fin, reserved: (frame.rsv1 ? 0x40 : 0) | (frame.rsv2 ? 0x20 : 0) | (frame.rsv3 ? 0x10 : 0),
            opcode: UInt8(webSocketOpcode: frame.opcode), masked: frame.maskKey != nil,
            payload: Array(frame.unmaskedData.readableBytesView))
    }
    let violation: UInt16? = (decoded.error as? NIOWebSocketError).map {
        $0 == .invalidFrameLength ? 1009 : 1002
    }
    if decoded.error != nil && violation == nil { return (frames, 0) }
    return (frames, violation)
}

@Suite("WebSocket framing: the relay's parser and writer against NIO's codec")
struct WebSocketFramingTests {
    static let maxFrameSize = 70_000

    @Test(arguments: 0..<40)
    func randomStreamsDecodeAsNIODecodesThem(seed: Int) {
        var streams = FrameStreams(random: SplitMix64(seed: UInt64(seed) &* 7919), maxFrameSize: Self.maxFrameSize)
        for _ in 0..<25 {
            let bytes = streams.stream(frames: Int.random(in: 1...12, using: &streams.random))
            let chunks = streams.chunks(bytes)
            let ours = decodeWithRelayParser(chunks, maxFrameSize: Self.maxFrameSize)
            let nio = decodeWithNIO(chunks, maxFrameSize: Self.maxFrameSize)
            #expect(ours.frames == nio.frames)
            #expect(ours.violation == nio.violation)
        }
    }

    @Test(arguments: 0..<12)
    func everyTruncationDecodesAsNIODecodesIt(seed: Int) {
        var streams = FrameStreams(random: SplitMix64(seed: 0xC0FFEE &+ UInt64(seed)), maxFrameSize: 300)
        // Short payloads keep every prefix cheap; the length encodings and violations are all there.
        let bytes = streams.stream(frames: 5).prefix(700)
        for end in 0...bytes.count {
            let prefix = [Array(bytes.prefix(end))]
            let ours = decodeWithRelayParser(prefix, maxFrameSize: 300)
            let nio = decodeWithNIO(prefix, maxFrameSize: 300)
            #expect(ours.frames == nio.frames, "cut after \(end) of \(bytes.count) bytes")
            #expect(ours.violation == nio.violation, "cut after \(end) of \(bytes.count) bytes")
        }
    }

    @Test func lengthsAtTheEncodingBoundariesAndPastIntMaxAreJudgedAsNIOJudgesThem() {
        for length: UInt64 in [
            0, 125, 126, 127, 65535, 65536, 70_000, 70_001, UInt64(Int.max), UInt64(Int.max) + 1, .max,
        ] {
            for bits in [0, 16, 64] where !(bits == 16 && length > 0xFFFF) {
                let frame = WireFrame(
                    opcode: 1, key: [1, 2, 3, 4], payload: [], lengthBits: bits, claimedLength: length)
                let ours = decodeWithRelayParser([frame.bytes], maxFrameSize: Self.maxFrameSize)
                let nio = decodeWithNIO([frame.bytes], maxFrameSize: Self.maxFrameSize)
                #expect(ours.violation == nio.violation, "length \(length) in \(bits) bits")
                #expect(ours.frames == nio.frames)
            }
        }
    }

    @Test(arguments: [0, 1, 5, 125, 126, 127, 1000, 65535, 65536, 70_000])
    func headersAndMaskingAreNIOsByteForByte(size: Int) throws {
        var random = SplitMix64(seed: UInt64(size) &+ 17)
        let payload = (0..<size).map { _ in UInt8.random(in: 0...255, using: &random) }
        for opcode: UInt8 in [0x1, 0x2, 0x8, 0x9, 0xA] where size <= 125 || opcode < 0x8 {
            for key: UInt32? in [nil, 0, 0xDEAD_BEEF, UInt32.random(in: 0...UInt32.max, using: &random)] {
                let header = WebSocketFrameHeader(
                    fin: true, opcode: opcode, maskingKey: key, payloadLength: size,
                    headerLength: WebSocketFrameHeader.length(payloadLength: size, masked: key != nil))
                var ours = [UInt8](repeating: 0, count: header.headerLength + size)
                ours.withUnsafeMutableBytes { destination in
                    let start = header.write(to: destination)
                    #expect(start == header.headerLength)
                    payload.withUnsafeBytes { source in
                        let body = UnsafeMutableRawBufferPointer(rebasing: destination[start...])
                        if let key {
                            WebSocketMasking.apply(key, from: source, to: body)
                        } else {
                            body.copyMemory(from: source)
                        }
                    }
                }
                let nioKey = key.map { k in
                    WebSocketMaskingKey([
                        UInt8(k >> 24), UInt8(truncatingIfNeeded: k >> 16), UInt8(truncatingIfNeeded: k >> 8),
                        UInt8(truncatingIfNeeded: k),
                    ])!
                }
                let frame = WebSocketFrame(
                    fin: true, opcode: WebSocketOpcode(encodedWebSocketOpcode: opcode)!, maskKey: nioKey,
                    data: ByteBuffer(bytes: payload))
                #expect(Array(try NIOFraming.encode(frame).readableBytesView) == ours)
                // And NIO's decoder reads back the payload.
                let back = decodeWithNIO([ours], maxFrameSize: 1 << 20)
                #expect(back.violation == nil)
                #expect(back.frames.map(\.payload) == [payload])
            }
        }
    }

    @Test func maskingInPlaceEqualsMaskingACopy() {
        var random = SplitMix64(seed: 42)
        for count in 0..<40 {
            let key = UInt32.random(in: 0...UInt32.max, using: &random)
            let bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            var copy = [UInt8](repeating: 0, count: count)
            bytes.withUnsafeBytes { source in
                copy.withUnsafeMutableBytes { WebSocketMasking.apply(key, from: source, to: $0) }
            }
            var inPlace = bytes
            inPlace.withUnsafeMutableBytes { WebSocketMasking.apply(key, from: UnsafeRawBufferPointer($0), to: $0) }
            #expect(copy == inPlace)
            var back = copy
            back.withUnsafeMutableBytes { WebSocketMasking.apply(key, from: UnsafeRawBufferPointer($0), to: $0) }
            #expect(back == bytes)
        }
    }
}

/// What a link hands its session, recorded.
final class RecordingEvents: LinkEvents {
    let logger = Logger(label: "test")
    var messages: [String] = []
    var binaries = 0
    var closed: (peerCode: WebSocketErrorCode?, reason: String?)?

    func received(text: ByteBuffer, from side: Side) { messages.append(String(buffer: text)) }
    func receivedBinary(from side: Side) { binaries += 1 }
    func linkClosed(_ side: Side, peerCode: WebSocketErrorCode?, reason: String?) { closed = (peerCode, reason) }
    func writabilityChanged() {}
}

/// The whole relay on an embedded channel against NIO's decoder and aggregator (as the link used them: no minimum
/// fragment size, 1,024 fragments, maxFrameBytes): the same messages reach the session, and a stream that breaks
/// the rules ends with the same close code.
@Suite("WebSocket relay: messages and close codes as behind NIO's decoder and aggregator")
struct WebSocketRelayTests {
    static let maxFrameBytes = 70_000

    /// NIO's decoder, then its aggregator, then what the link did with each frame (text and binary messages while
    /// open; a close frame ends reading): the messages, and the close code the proxy would send (nil: none).
    func expectedByNIO(_ chunks: [[UInt8]]) -> (messages: [String], binaries: Int, closeCode: UInt16?) {
        let decoded = decodeWithNIO(chunks, maxFrameSize: Self.maxFrameBytes)
        var messages: [String] = []
        var binaries = 0
        var fragments: [DecodedFrame] = []
        var size = 0
        func fail(_ code: UInt16) -> (messages: [String], binaries: Int, closeCode: UInt16?) {
            (messages, binaries, code)
        }
        for frame in decoded.frames {
            switch frame.opcode {
            case 0x0:
                guard let first = fragments.first else { return fail(1002) }
                guard fragments.count < 1024, frame.fin || fragments.count + 1 < 1024 else { return fail(1002) }
                fragments.append(frame)
                size += frame.payload.count
                guard size <= Self.maxFrameBytes else { return fail(1009) }
                if frame.fin {
                    let joined = fragments.flatMap(\.payload)
                    if first.opcode == 0x1 {
                        messages.append(String(decoding: joined, as: UTF8.self))
                    } else {
                        binaries += 1
                    }
                    fragments = []
                    size = 0
                }
            case 0x1, 0x2:
                guard fragments.isEmpty else { return fail(1002) }
                if frame.fin {
                    if frame.opcode == 0x1 {
                        messages.append(String(decoding: frame.payload, as: UTF8.self))
                    } else {
                        binaries += 1
                    }
                } else {
                    fragments = [frame]
                    size = frame.payload.count
                }
            case 0x8:
                // The link echoes the peer's close and reads nothing more as messages.
                return (messages, binaries, nil)
            default:
                continue
            }
        }
        return (messages, binaries, decoded.violation)
    }

    @Test(arguments: 0..<30)
    func randomStreamsReachTheSessionAsTheyDidBehindNIO(seed: Int) throws {
        var streams = FrameStreams(
            random: SplitMix64(seed: 0x5EED_0000 &+ UInt64(seed)), maxFrameSize: Self.maxFrameBytes)
        for _ in 0..<10 {
            // Data frames only from the charger's side are masked, from the CSMS's not: the link reads either.
            let bytes = streams.stream(frames: Int.random(in: 1...14, using: &streams.random))
            let chunks = streams.chunks(bytes)
            let expected = expectedByNIO(chunks)

            let loop = EmbeddedEventLoop()
            let link = WebSocketLink(
                side: .charger, isClient: false, keepalive: KeepaliveConfiguration(pingInterval: .zero),
                maxFrameBytes: Self.maxFrameBytes)
            let events = RecordingEvents()
            link.events = events
            let channel = EmbeddedChannel(handler: link, loop: loop)
            _ = try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            for chunk in chunks where channel.isActive {
                try channel.writeInbound(ByteBuffer(bytes: chunk))
            }
            #expect(events.messages == expected.messages)
            #expect(events.binaries == expected.binaries)
            // The close frames the link wrote; the code of the first that is the proxy's own.
            var closeCodes: [UInt16] = []
            while let written = try channel.readOutbound(as: ByteBuffer.self) {
                let frames = NIOFraming.decode([written], maxFrameSize: 1 << 20).frames
                for frame in frames where frame.opcode == .connectionClose {
                    var data = frame.unmaskedData
                    closeCodes.append(data.readInteger(as: UInt16.self) ?? 0)
                }
            }
            if let code = expected.closeCode { #expect(closeCodes.first == code) }
            _ = try? channel.finish()
        }
    }

    @Test func writesFramesNIOReadsBackWithTheKeyItChose() throws {
        let loop = EmbeddedEventLoop()
        let link = WebSocketLink(side: .csms, isClient: true, keepalive: KeepaliveConfiguration(pingInterval: .zero))
        let channel = EmbeddedChannel(handler: link, loop: loop)
        _ = try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        for size in [0, 1, 125, 126, 65535, 65536] {
            let text = String(repeating: "x", count: size)
            link.send(text: ByteBuffer(string: text))
            let written = try #require(try channel.readOutbound(as: ByteBuffer.self))
            let decoded = NIOFraming.decode([written], maxFrameSize: 1 << 20)
            let frame = try #require(decoded.frames.first)
            #expect(decoded.frames.count == 1)
            #expect(frame.fin && frame.opcode == .text)
            let key = try #require(frame.maskKey)
            #expect(String(buffer: frame.unmaskedData) == text)
            // NIO's encoder, given the same key, writes the same bytes.
            let nio = try NIOFraming.encode(
                WebSocketFrame(fin: true, opcode: .text, maskKey: key, data: ByteBuffer(string: text)))
            #expect(nio == written)
        }
    }
}
