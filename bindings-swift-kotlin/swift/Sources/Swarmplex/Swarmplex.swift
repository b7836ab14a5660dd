// Hand-written Swift idioms over the uniffi-generated bindings (Generated/swarmplex_uniffi.swift,
// same module). The Swift counterpart of kotlin/src/main/kotlin/io/swarmplex/Swarmplex.kt.
import Foundation
#if canImport(swarmplex_uniffiFFI)
import swarmplex_uniffiFFI
#endif

/// The binding's `Stream`, by a name that does not clash with Foundation's `Stream` (`NSStream`):
/// a file that imports both Foundation and Swarmplex must otherwise write `Swarmplex.Stream`.
public typealias SwarmStream = Stream

// MARK: - Events

extension Swarm {
    /// The next event, or `nil` once the swarm is shut down, like `nextEvent()`, but the wait
    /// honours Swift task cancellation: cancelling the calling task cancels the native wait and
    /// throws `CancellationError`, and no event is lost (the engine's queue keeps it).
    ///
    /// The generated async functions cannot do that: uniffi 0.32's Swift code awaits the native
    /// future with a continuation that ignores cancellation, so a cancelled `nextEvent()` waits on
    /// until the next event arrives and then takes it from the queue. This drives the same export
    /// (`Swarm::next_event`) through uniffi's future ABI and calls its `cancel` on cancellation.
    public func nextEventCancellable() async throws -> SwarmEvent? {
        try Task.checkCancellation()
        let future = uniffi_swarmplex_uniffi_fn_method_swarm_next_event(uniffiCloneHandle())
        defer { ffi_swarmplex_uniffi_rust_future_free_rust_buffer(future) }
        await withTaskCancellationHandler {
            // Poll until the future says "ready" (it does at once after a cancel).
            while await pollOnce(future) != pollReady {}
        } onCancel: {
            ffi_swarmplex_uniffi_rust_future_cancel_rust_buffer(future)
        }
        var status = RustCallStatus()
        let buffer = ffi_swarmplex_uniffi_rust_future_complete_rust_buffer(future, &status)
        switch status.code {
        case callSuccess:
            // A value that was ready when the task was cancelled is returned, not dropped.
            return try liftOptionalSwarmEvent(buffer)
        case callError:
            // `Swarm::next_event` returns `Res<…>` (so that a panic throws instead of trapping).
            throw try FfiConverterTypeSwarmplexError_lift(status.errorBuf)
        case callCancelled:
            throw CancellationError()
        case callPanic:
            throw SwarmplexError.Internal(message: takeString(status.errorBuf))
        default:
            throw SwarmplexError.Internal(message: "unexpected call status \(status.code)")
        }
    }

    /// Every event of this swarm as an `AsyncStream`, pulled lazily with `nextEventCancellable()`:
    /// an event is taken off the swarm's queue only when the consumer asks for the next element,
    /// so events after the ones consumed stay queued for the next stream. The stream finishes when
    /// the swarm is shut down, or when the consuming task is cancelled (which also cancels the
    /// pending native wait; no event is lost). One consumer at a time: the swarm has one queue.
    public func eventStream() -> AsyncStream<SwarmEvent> {
        AsyncStream(unfolding: { [self] in
            try? await self.nextEventCancellable()
        })
    }

    /// The new connections of this swarm (one per remote key); other events are skipped.
    /// Same pull, finish and cancellation behaviour as `eventStream()`.
    public func connectionStream() -> AsyncStream<Connection> {
        AsyncStream(unfolding: { [self] in
            try? await self.nextConnection()
        })
    }

    /// The next new connection (other events are skipped and consumed); `nil` once the swarm is
    /// shut down. Throws `CancellationError` if the task is cancelled.
    public func nextConnection() async throws -> Connection? {
        while let event = try await nextEventCancellable() {
            if case let .connected(connection) = event { return connection }
        }
        return nil
    }

    /// Joins `topic` and waits until the first discovery round is done.
    @discardableResult
    public func joinAndFlush(_ topic: Data, server: Bool = true, client: Bool = true) async throws -> Discovery {
        let discovery = try join(topic: topic, options: JoinOptions(server: server, client: client))
        try await discovery.flushed()
        return discovery
    }
}

// MARK: - p2plex and peersockets

/// `body`, whose pending native call `cancel` ends at once when the calling task is cancelled
/// (uniffi's generated async functions ignore task cancellation; the binding's native cancels
/// do not).
func withNativeCancel<T>(_ cancel: @escaping @Sendable () throws -> Void,
                         _ body: () async throws -> T) async throws -> T {
    try Task.checkCancellation()
    return try await withTaskCancellationHandler(operation: body, onCancel: { try? cancel() })
}

extension Plex {
    /// Every event of this plex as an `AsyncStream`, pulled lazily through a
    /// `PlexEventSubscription`; it finishes when the plex is shut down, or when the consuming
    /// task is cancelled (which cancels the subscription; an event not yet taken stays queued).
    /// One consumer at a time: the plex has one queue.
    public func eventStream() -> AsyncStream<PlexEvent> {
        guard let subscription = try? subscribe() else { return AsyncStream { $0.finish() } }
        return AsyncStream(unfolding: {
            try? await withNativeCancel(subscription.cancel) { try await subscription.next() }
        })
    }

    /// The next new connection's `Peer` (other events are consumed); `nil` once the plex is shut
    /// down. Throws `CancellationError` if the task is cancelled.
    public func nextPeer() async throws -> Peer? {
        for await event in eventStream() {
            if case let .connected(peer) = event { return peer }
        }
        try Task.checkCancellation()
        return nil
    }

    /// `findByPublicKey`, but cancelling the calling task ends the search at once (through
    /// `cancelFinds()`, which ends every pending find of this handle).
    public func find(publicKey: Data, timeoutMs: UInt64? = nil) async throws -> Peer {
        try await withNativeCancel(cancelFinds) { try await findByPublicKey(publicKey: publicKey, timeoutMs: timeoutMs) }
    }
}

extension Peer {
    /// The streams the remote opens that nobody claimed (`nextStream()`), until the connection is
    /// gone or the consuming task is cancelled (which calls `cancelWaits()`).
    public func incomingStreams() -> AsyncStream<PeerStream> {
        AsyncStream(unfolding: { [self] in
            try? await withNativeCancel(self.cancelWaits) { try await self.nextStream() }
        })
    }
}

extension TopicHandle {
    /// This handle's messages, until it is closed or the consuming task is cancelled (which
    /// calls `cancelReads()`; no message is lost).
    public func messages() -> AsyncStream<TopicMessage> {
        AsyncStream(unfolding: { [self] in
            try? await withNativeCancel(self.cancelReads) { try await self.nextMessage() }
        })
    }
}

// MARK: - Streams

extension Stream {
    /// Writes a string as UTF-8.
    public func write(text: String) async throws {
        try await write(data: Data(text.utf8))
    }

    /// Reads until the remote ends the stream.
    public func readToEnd(chunkSize: UInt32 = 65536) async throws -> Data {
        var out = Data()
        while true {
            let chunk = try await read(max: chunkSize)
            if chunk.isEmpty { return out }
            out.append(chunk)
        }
    }

    /// Reads exactly `count` bytes (throws `SwarmplexError.Closed` if the stream ends first).
    public func read(exactly count: Int) async throws -> Data {
        var out = Data()
        out.reserveCapacity(count)
        while out.count < count {
            let chunk = try await read(max: UInt32(count - out.count))
            if chunk.isEmpty {
                throw SwarmplexError.Closed(message: "stream ended after \(out.count) of \(count) bytes")
            }
            out.append(chunk)
        }
        return out
    }
}

// MARK: - Errors and bytes

extension SwarmplexError {
    /// The stable error kind name shared by every binding (`"invalid_input"`, `"closed"`, …).
    public var kind: String {
        switch self {
        case .InvalidInput: return "invalid_input"
        case .Connect: return "connect"
        case .Closed: return "closed"
        case .Timeout: return "timeout"
        case .Firewalled: return "firewalled"
        case .Duplicate: return "duplicate"
        case .Reset: return "reset"
        case .RelayLimit: return "relay_limit"
        case .Internal: return "internal"
        }
    }

    /// The engine's message.
    public var message: String {
        switch self {
        case let .InvalidInput(m), let .Connect(m), let .Closed(m), let .Timeout(m),
             let .Firewalled(m), let .Duplicate(m), let .Reset(m), let .RelayLimit(m), let .Internal(m):
            return m
        }
    }
}

extension Data {
    /// Lowercase hex of a key or topic.
    public var hexString: String { map { String(format: "%02x", $0) }.joined() }
}

// MARK: - uniffi future ABI (private)

// Values of uniffi 0.32's C ABI (RustCallStatus codes, rust_future_poll results); the generated
// file has the same constants, but file-private.
private let callSuccess: Int8 = 0
private let callError: Int8 = 1
private let callPanic: Int8 = 2
private let callCancelled: Int8 = 3
private let pollReady: Int8 = 0

private final class PollContinuation {
    let continuation: CheckedContinuation<Int8, Never>
    init(_ continuation: CheckedContinuation<Int8, Never>) { self.continuation = continuation }
}

/// Called by Rust (on any thread) exactly once per poll with the poll result.
private let pollCallback: UniffiRustFutureContinuationCallback = { data, pollResult in
    let pointer = UnsafeRawPointer(bitPattern: UInt(data))!
    Unmanaged<PollContinuation>.fromOpaque(pointer).takeRetainedValue().continuation.resume(returning: pollResult)
}

private func pollOnce(_ future: UInt64) async -> Int8 {
    await withCheckedContinuation { continuation in
        let box = Unmanaged.passRetained(PollContinuation(continuation)).toOpaque()
        ffi_swarmplex_uniffi_rust_future_poll_rust_buffer(future, pollCallback, UInt64(UInt(bitPattern: box)))
    }
}

/// Copies and frees a RustBuffer.
private func takeBytes(_ buffer: RustBuffer) -> Data {
    let data = buffer.data.map { Data(bytes: $0, count: Int(buffer.len)) } ?? Data()
    var status = RustCallStatus()
    ffi_swarmplex_uniffi_rustbuffer_free(buffer, &status)
    return data
}

private func takeString(_ buffer: RustBuffer) -> String {
    String(decoding: takeBytes(buffer), as: UTF8.self)
}

/// `Option<SwarmEvent>` as uniffi serializes it: a tag byte (0 none, 1 some), then the event.
private func liftOptionalSwarmEvent(_ buffer: RustBuffer) throws -> SwarmEvent? {
    let data = takeBytes(buffer)
    guard let tag = data.first else {
        throw SwarmplexError.Internal(message: "empty Option<SwarmEvent> buffer")
    }
    switch tag {
    case 0:
        return nil
    case 1:
        var reader = (data: data, offset: data.startIndex + 1)
        return try FfiConverterTypeSwarmEvent.read(from: &reader)
    default:
        throw SwarmplexError.Internal(message: "bad Option tag \(tag)")
    }
}
