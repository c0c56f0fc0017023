import Crypto

/// RFC 6962 §2.1 Merkle Tree Hash, built incrementally: leaves are appended one at a time and the root is available
/// at any point, in O(log n) memory (one hash per set bit of the leaf count).
///
/// - leaf hash = SHA-256(0x00 ‖ leaf bytes), node hash = SHA-256(0x01 ‖ left ‖ right);
/// - MTH of no leaves = SHA-256 of the empty string;
/// - MTH of n > 1 leaves = node(MTH(first k), MTH(rest)), k the largest power of two below n.
///
/// The first k leaves always form a perfect subtree, so the tree of n leaves is the perfect subtrees of the binary
/// decomposition of n, largest first, folded from the right: that is what `peaks` holds.
public struct MerkleTree: Sendable {
    /// Roots of the perfect subtrees, largest (leftmost) first, with their sizes (powers of two, decreasing).
    private var peaks: [(hash: [UInt8], size: Int)] = []
    /// How many leaves have been appended.
    public private(set) var count = 0

    public init() {}

    /// Appends one leaf given its bytes (for the audit log: a record's canonical form).
    public mutating func append(leaf bytes: some Sequence<UInt8>) {
        append(leafHash: Self.leafHash(bytes))
    }

    /// Appends one leaf given its leaf hash (already SHA-256(0x00 ‖ bytes)).
    public mutating func append(leafHash: [UInt8]) {
        var hash = leafHash
        var size = 1
        while let last = peaks.last, last.size == size {
            peaks.removeLast()
            hash = Self.nodeHash(last.hash, hash)
            size *= 2
        }
        peaks.append((hash, size))
        count += 1
    }

    /// The Merkle Tree Hash of the leaves so far (32 bytes).
    public var root: [UInt8] {
        guard var hash = peaks.last?.hash else { return Self.emptyRoot }
        for peak in peaks.dropLast().reversed() { hash = Self.nodeHash(peak.hash, hash) }
        return hash
    }

    /// ``root`` as lowercase hex, as checkpoints carry it.
    public var rootHex: String { Hex.string(root) }

    /// The Merkle Tree Hash of `leaves` in one go.
    public static func root(of leaves: [[UInt8]]) -> [UInt8] {
        var tree = MerkleTree()
        for leaf in leaves { tree.append(leaf: leaf) }
        return tree.root
    }

    /// SHA-256 of the empty string: the hash of a tree with no leaves.
    public static var emptyRoot: [UInt8] { Array(SHA256.hash(data: [UInt8]())) }

    public static func leafHash(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        var hasher = SHA256()
        withUnsafeBytes(of: UInt8(0x00)) { hasher.update(bufferPointer: $0) }
        // The bytes as they are when contiguous (a record's canonical form is an array): no copy.
        if bytes.withContiguousStorageIfAvailable({ hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }) == nil {
            hasher.update(data: Array(bytes))
        }
        return hasher.finalize().withUnsafeBytes { Array($0) }
    }

    public static func nodeHash(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        withUnsafeBytes(of: UInt8(0x01)) { hasher.update(bufferPointer: $0) }
        hasher.update(data: left)
        hasher.update(data: right)
        return hasher.finalize().withUnsafeBytes { Array($0) }
    }
}
