import OCPPWebSocket

/// The relay's frame header reader (`WebSocketFrameHeader.parse`) on any bytes, read as a stream of frames: it
/// never traps, every header it returns fits its input and its limit, a header written back reads the same, a
/// prefix of a header is never taken for another header, and masking twice gives back the payload.
enum WebSocketTarget {
    /// Small enough that the 16- and 64-bit lengths of short inputs cross it.
    static let maxPayloadLength = 4096

    static func run(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            guard case .header(let header) = WebSocketFrameHeader.parse(rest, maxPayloadLength: maxPayloadLength)
            else { return }
            check(header, in: rest)
            guard rest.count - header.headerLength >= header.payloadLength else { return }
            offset += header.headerLength + header.payloadLength
        }
    }

    static func check(_ header: WebSocketFrameHeader, in bytes: UnsafeRawBufferPointer) {
        FuzzInvariant.check(
            (2...14).contains(header.headerLength) && header.headerLength <= bytes.count,
            "header of \(header.headerLength) bytes in \(bytes.count)")
        FuzzInvariant.check(
            (0...maxPayloadLength).contains(header.payloadLength), "payload length \(header.payloadLength)")
        FuzzInvariant.check(
            !header.isControl || (header.fin && header.payloadLength <= 125), "a control frame that breaks §5.5")
        // Fewer bytes than the header: never a header.
        for count in 0..<header.headerLength {
            let prefix = UnsafeRawBufferPointer(rebasing: bytes[..<count])
            if case .header = WebSocketFrameHeader.parse(prefix, maxPayloadLength: maxPayloadLength) {
                FuzzInvariant.fail("a header read from \(count) of its \(header.headerLength) bytes")
            }
        }
        // Written back (shortest length encoding), it reads the same, but for its length.
        var written = [UInt8](repeating: 0, count: WebSocketFrameHeader.maximumLength)
        let count = written.withUnsafeMutableBytes { header.write(to: $0) }
        let again = written.withUnsafeBytes {
            WebSocketFrameHeader.parse(
                UnsafeRawBufferPointer(rebasing: $0[..<count]), maxPayloadLength: maxPayloadLength)
        }
        var expected = header
        expected.headerLength = count
        FuzzInvariant.check(again == .header(expected), "\(header) written back reads \(again)")
        // Masking is its own inverse, in place or into a copy.
        guard let key = header.maskingKey else { return }
        let payload = UnsafeRawBufferPointer(
            rebasing: bytes[header.headerLength..<min(bytes.count, header.headerLength + header.payloadLength)])
        var copy = [UInt8](repeating: 0, count: payload.count)
        copy.withUnsafeMutableBytes { WebSocketMasking.apply(key, from: payload, to: $0) }
        copy.withUnsafeMutableBytes { WebSocketMasking.apply(key, from: UnsafeRawBufferPointer($0), to: $0) }
        FuzzInvariant.check(copy.elementsEqual(payload), "masking twice changed the payload")
    }
}
