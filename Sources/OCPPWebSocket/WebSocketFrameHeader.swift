/// The header of one WebSocket frame (RFC 6455 §5.2), as read from the wire or to be written to it.
///
/// This is the one place the project reads and writes WebSocket framing itself (the proxy's relay,
/// `WebSocketLink`); NIO's `WebSocketFrameDecoder` and `WebSocketFrameEncoder` are its oracle in the differential
/// tests. Pure: no NIO, no allocation. Every length is checked before it is used, so no input traps.
public struct WebSocketFrameHeader: Equatable, Sendable {
    /// FIN: the last frame of a message.
    public var fin: Bool
    /// RSV1–RSV3 as they stand in the first byte (mask 0x70); no extension is negotiated, they are passed on.
    public var reservedBits: UInt8
    /// The 4-bit opcode: 0x0 continuation, 0x1 text, 0x2 binary, 0x8 close, 0x9 ping, 0xA pong; others reserved.
    public var opcode: UInt8
    /// The masking key in wire order (the first key byte in the high bits), nil for an unmasked frame.
    public var maskingKey: UInt32?
    /// The payload's length in bytes, checked against the largest the reader takes.
    public var payloadLength: Int
    /// Bytes of header before the payload: 2 to 14.
    public var headerLength: Int

    public init(
        fin: Bool, reservedBits: UInt8 = 0, opcode: UInt8, maskingKey: UInt32?, payloadLength: Int, headerLength: Int
    ) {
        self.fin = fin
        self.reservedBits = reservedBits
        self.opcode = opcode
        self.maskingKey = maskingKey
        self.payloadLength = payloadLength
        self.headerLength = headerLength
    }

    /// Close, ping, pong and the reserved 0xB–0xF (RFC 6455 §5.5).
    public var isControl: Bool { opcode & 0x8 != 0 }

    public enum Opcode {
        public static let continuation: UInt8 = 0x0
        public static let text: UInt8 = 0x1
        public static let binary: UInt8 = 0x2
        public static let close: UInt8 = 0x8
        public static let ping: UInt8 = 0x9
        public static let pong: UInt8 = 0xA
    }

    /// The longest header: 2 bytes, an 8-byte length and a 4-byte masking key.
    public static let maximumLength = 14

    /// What `parse` found at the start of the bytes.
    public enum Parse: Equatable, Sendable {
        /// Not enough bytes for the header yet (or for the part of it that decides whether it is valid).
        case needMore
        case header(WebSocketFrameHeader)
        case invalid(WebSocketFrameViolation)
    }

    /// Reads the header at the start of `bytes`; the payload may or may not follow. A frame is judged as soon as
    /// its length is known, before its masking key arrives, in NIO's order: a payload longer than
    /// `maxPayloadLength` (or than `Int.max`), then a fragmented control frame, then a control frame over 125
    /// bytes. RSV bits and reserved opcodes are not judged here (NIO's decoder passes them on as well).
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxPayloadLength: Int) -> Parse {
        guard bytes.count >= 2 else { return .needMore }
        let first = bytes[0]
        let second = bytes[1]
        let masked = second & 0x80 != 0
        var offset = 2
        let length: UInt64
        switch second & 0x7F {
        case 126:
            guard bytes.count >= 4 else { return .needMore }
            length = UInt64(bytes[2]) << 8 | UInt64(bytes[3])
            offset = 4
        case 127:
            guard bytes.count >= 10 else { return .needMore }
            var value: UInt64 = 0
            for index in 2..<10 { value = value << 8 | UInt64(bytes[index]) }
            length = value
            offset = 10
        case let short:
            length = UInt64(short)
        }
        // A negative limit takes nothing; comparing as UInt64 keeps lengths past Int.max from converting.
        guard length <= UInt64(max(0, maxPayloadLength)) else { return .invalid(.tooLarge) }
        let fin = first & 0x80 != 0
        let opcode = first & 0x0F
        let isControl = opcode & 0x8 != 0
        if isControl && !fin { return .invalid(.fragmentedControlFrame) }
        if isControl && length > 125 { return .invalid(.controlFrameTooLong) }
        var key: UInt32?
        if masked {
            guard bytes.count >= offset + 4 else { return .needMore }
            key =
                UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8
                | UInt32(bytes[offset + 3])
            offset += 4
        }
        return .header(
            WebSocketFrameHeader(
                fin: fin, reservedBits: first & 0x70, opcode: opcode, maskingKey: key, payloadLength: Int(length),
                headerLength: offset))
    }

    /// The header's length for a payload of `payloadLength` bytes, masked or not (the shortest length encoding).
    public static func length(payloadLength: Int, masked: Bool) -> Int {
        let lengthBytes = payloadLength <= 125 ? 0 : payloadLength <= 0xFFFF ? 2 : 8
        return 2 + lengthBytes + (masked ? 4 : 0)
    }

    /// Writes this header at the start of `destination`, with the shortest length encoding (as NIO's encoder
    /// does); returns the bytes written, 0 when `destination` is too short or the length is negative.
    public func write(to destination: UnsafeMutableRawBufferPointer) -> Int {
        let count = Self.length(payloadLength: payloadLength, masked: maskingKey != nil)
        guard payloadLength >= 0, destination.count >= count else { return 0 }
        destination[0] = (fin ? 0x80 : 0) | (reservedBits & 0x70) | (opcode & 0x0F)
        let maskBit: UInt8 = maskingKey == nil ? 0 : 0x80
        var offset = 2
        if payloadLength <= 125 {
            destination[1] = maskBit | UInt8(payloadLength)
        } else if payloadLength <= 0xFFFF {
            destination[1] = maskBit | 126
            destination[2] = UInt8(truncatingIfNeeded: payloadLength >> 8)
            destination[3] = UInt8(truncatingIfNeeded: payloadLength)
            offset = 4
        } else {
            destination[1] = maskBit | 127
            let length = UInt64(payloadLength)
            for index in 0..<8 { destination[2 + index] = UInt8(truncatingIfNeeded: length >> (56 - 8 * index)) }
            offset = 10
        }
        if let key = maskingKey {
            for index in 0..<4 { destination[offset + index] = UInt8(truncatingIfNeeded: key >> (24 - 8 * index)) }
            offset += 4
        }
        return offset
    }
}

/// A header that breaks RFC 6455 as NIO's decoder judges it; the link closes with `closeCode` and reads no more.
public enum WebSocketFrameViolation: Error, Equatable, Sendable {
    /// A payload longer than the reader takes (`limits.maxFrameBytes`) or than any length it could hold.
    case tooLarge
    /// A control frame without FIN (RFC 6455 §5.5: control frames are not fragmented).
    case fragmentedControlFrame
    /// A control frame with more than 125 bytes of payload (RFC 6455 §5.5).
    case controlFrameTooLong

    /// 1009 (message too big) or 1002 (protocol error), as NIO's `WebSocketProtocolErrorHandler` sends them.
    public var closeCode: UInt16 {
        self == .tooLarge ? 1009 : 1002
    }
}

/// Masking and unmasking (RFC 6455 §5.3): the payload XORed with the 4-byte key, copied as it goes.
public enum WebSocketMasking {
    /// Writes `source` XOR `key` to the start of `destination` (which may be `source` itself, for masking in
    /// place); byte `i` takes key byte `i % 4`. Copies only as many bytes as both hold.
    public static func apply(
        _ key: UInt32, from source: UnsafeRawBufferPointer, to destination: UnsafeMutableRawBufferPointer
    ) {
        let count = min(source.count, destination.count)
        guard count > 0, let from = source.baseAddress, let to = destination.baseAddress else { return }
        // The key as it lies in memory, twice: eight bytes at a time whatever the byte order.
        let word = key.bigEndian
        let wide = UInt64(word) | UInt64(word) << 32
        var index = 0
        while index + 8 <= count {
            let bytes = from.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            to.storeBytes(of: bytes ^ wide, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < count {
            let keyByte = UInt8(truncatingIfNeeded: key >> (24 - 8 * (index & 3)))
            to.storeBytes(
                of: from.load(fromByteOffset: index, as: UInt8.self) ^ keyByte, toByteOffset: index, as: UInt8.self)
            index += 1
        }
    }
}
