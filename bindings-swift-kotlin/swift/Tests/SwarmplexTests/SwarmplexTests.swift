// The cases of kotlin/src/test/kotlin/io/swarmplex/SwarmplexTest.kt, in Swift. Every test runs on
// its own local testnet (DHT nodes on 127.0.0.1, swarms with mDNS off) and scripts/test-swift.sh
// runs them inside scripts/netns-run (loopback only).
import Foundation
import Swarmplex
import swarmplex_uniffiFFI
import XCTest

final class SwarmplexTests: XCTestCase {
    private var testnet: Testnet!
    private var bootstrap: [String] { testnet.bootstrap() }

    override func setUp() async throws {
        testnet = try await startTestnet(nodes: 3)
    }

    override func tearDown() async throws {
        await testnet?.shutdown()
        testnet = nil
    }

    // MARK: helpers

    /// Two local swarms, shut down afterwards whatever happens.
    private func withPair(_ body: (Swarm, Swarm) async throws -> Void) async throws {
        let a = try Swarm.local(bootstrap: bootstrap)
        let b = try Swarm.local(bootstrap: bootstrap)
        do {
            try await body(a, b)
        } catch {
            await a.shutdown()
            await b.shutdown()
            throw error
        }
        await a.shutdown()
        await b.shutdown()
    }

    /// `a` serves `name`, `b` looks it up; both sides' new connection.
    private func connectByTopic(_ a: Swarm, _ b: Swarm, _ name: String) async throws -> (Connection, Connection) {
        let topic = topicFromName(name: name)
        return try await within(30, "connect by topic") {
            async let ca = a.nextConnection()
            async let cb = b.nextConnection()
            try await a.joinAndFlush(topic, server: true, client: false)
            _ = try b.join(topic: topic, options: JoinOptions(server: false, client: true))
            guard let x = try await ca, let y = try await cb else { throw TestError("a swarm shut down") }
            return (x, y)
        }
    }

    private func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }

    // MARK: tests

    func testTwoSwarmsConnectByTopicAndExchangeDataBothWays() async throws {
        try await withPair { a, b in
            let (ca, cb) = try await connectByTopic(a, b, "swift-topic-exchange")
            XCTAssertEqual(ca.remotePublicKey(), b.publicKey())
            XCTAssertEqual(cb.remotePublicKey(), a.publicKey())
            XCTAssertEqual(ca.handshakeHash(), cb.handshakeHash())
            XCTAssertEqual(ca.handshakeHash().count, 32)
            XCTAssertNotEqual(ca.isInitiator(), cb.isInitiator())

            let sa = ca.socket()
            let sb = cb.socket()
            try await sb.write(text: "hello from b")
            let hello = try await sa.read(exactly: 12)
            XCTAssertEqual(text(hello), "hello from b")

            let big = Data((0..<(1 << 20)).map { UInt8($0 % 251) })
            // Read while writing: flow control blocks a writer nobody reads.
            async let received = sb.readToEnd()
            try await sa.write(data: big)
            try await sa.end()
            let got = try await received
            XCTAssertEqual(got.count, big.count)
            XCTAssertEqual(got, big)
            try await sb.end()
            let eof = try await sa.read(max: 16)
            XCTAssertEqual(eof.count, 0, "an empty read is the end of the stream")
        }
    }

    func testClientAndServerOnBothSidesMakeExactlyOneConnectionEach() async throws {
        try await withPair { a, b in
            let topic = topicFromName(name: "swift-dedup")
            async let eventsA = connectedEvents(a, during: 4)
            async let eventsB = connectedEvents(b, during: 4)
            try await a.joinAndFlush(topic)
            try await b.joinAndFlush(topic)
            let connsA = await eventsA
            let connsB = await eventsB
            XCTAssertEqual(connsA.count, 1, "a saw \(connsA.count) connections")
            XCTAssertEqual(connsB.count, 1, "b saw \(connsB.count) connections")
            let openA = try await a.connections()
            let openB = try await b.connections()
            XCTAssertEqual(openA.count, 1)
            XCTAssertEqual(openB.count, 1)
            if let x = connsA.first, let y = connsB.first {
                XCTAssertEqual(x.handshakeHash(), y.handshakeHash())
            }
        }
    }

    func testJoinPeerConnectsToAPeerByItsPublicKey() async throws {
        try await withPair { a, b in
            _ = try await b.listen()
            try await b.flush()
            // A consumer cancelled while its pull is pending must end at once, and must not
            // swallow a later event (the native wait is cancelled, not left behind).
            let started = Date()
            let probe = Task { await a.connectionStream().first(where: { _ in true }) }
            try await Task.sleep(nanoseconds: 300_000_000)
            probe.cancel()
            let probed = await probe.value
            XCTAssertNil(probed)
            XCTAssertLessThan(Date().timeIntervalSince(started), 3, "the cancelled stream ended late")

            let (connA, connB) = try await within(30, "joinPeer") {
                async let cb = b.nextConnection()
                async let ca = a.nextConnection()
                try a.joinPeer(publicKey: b.publicKey())
                guard let x = try await ca, let y = try await cb else { throw TestError("a swarm shut down") }
                return (x, y)
            }
            XCTAssertEqual(connA.remotePublicKey(), b.publicKey())
            XCTAssertEqual(connB.remotePublicKey(), a.publicKey())
            try a.leavePeer(publicKey: b.publicKey())
        }
    }

    func testNamedStreamsCarryTheirOwnData() async throws {
        try await withPair { a, b in
            let (ca, cb) = try await connectByTopic(a, b, "swift-named-streams")
            async let incoming = cb.receiveStream(name: "chat")
            let out = try await ca.createStream(name: "chat")
            let inc = try await incoming
            XCTAssertEqual(inc.name(), "chat")
            try await out.write(text: "ping")
            let ping = try await inc.read(exactly: 4)
            XCTAssertEqual(text(ping), "ping")
            try await inc.write(text: "pong")
            try await inc.end()
            let pong = try await out.readToEnd()
            XCTAssertEqual(text(pong), "pong")
            try await out.end()
            let eof = try await inc.read(max: 8)
            XCTAssertEqual(eof.count, 0)

            // A second name is independent of the first.
            async let files = ca.receiveStream(name: "files")
            let f = try await cb.createStream(name: "files")
            try await f.write(data: Data(repeating: 7, count: 1000))
            try await f.end()
            let fileData = try await files.readToEnd()
            XCTAssertEqual(fileData, Data(repeating: 7, count: 1000))
        }
    }

    func testBadInputThrowsSwarmplexError() async throws {
        let s = try Swarm.local(bootstrap: bootstrap)
        let e = expectError(.invalidInput) { _ = try s.join(topic: Data(count: 31), options: JoinOptions()) }
        XCTAssertEqual(e?.kind, "invalid_input")
        XCTAssertTrue(e?.message.contains("topic") ?? false, e?.message ?? "")
        if let e, case .InvalidInput = e {} else { XCTFail("not SwarmplexError.InvalidInput: \(String(describing: e))") }
        expectError(.invalidInput) { try s.joinPeer(publicKey: Data(count: 5)) }
        expectError(.invalidInput) {
            _ = try s.join(topic: Data(count: 32), options: JoinOptions(server: false, client: false))
        }
        expectError(.invalidInput) { _ = try Swarm.local(bootstrap: ["not a multiaddr"]) }
        await s.shutdown()

        // A shut-down swarm fails with Closed, not a crash, and its event streams finish.
        let d = try Swarm.local(bootstrap: bootstrap)
        await d.shutdown()
        do {
            try await d.flush()
            XCTFail("flush on a shut-down swarm did not throw")
        } catch let error as SwarmplexError {
            XCTAssertEqual(error.kind, "closed")
        }
        let next = await d.nextEvent()
        XCTAssertNil(next)
        let nextCancellable = try await d.nextEventCancellable()
        XCTAssertNil(nextCancellable)
        var leftover = 0
        for await _ in d.eventStream() { leftover += 1 }
        XCTAssertEqual(leftover, 0)
    }

    func testPanicsNeverCrossTheFFI() async throws {
        // A panic inside an engine task: the Swift error, kind "internal".
        do {
            try await debugPanicEngine(message: "engine boom")
            XCTFail("no error")
        } catch let error as SwarmplexError {
            guard case .Internal = error else { return XCTFail("not Internal: \(error)") }
            XCTAssertEqual(error.kind, "internal")
        }
        // Panics in the exports themselves are caught by uniffi's scaffolding and reported as
        // status CALL_UNEXPECTED_ERROR (2) with the panic message; the process goes on. Checked at
        // the C ABI because uniffi's Swift wrappers of non-throwing exports (`debugPanic`,
        // `debugPanicAsync`) `try!` that status, which would trap; throwing exports raise it as an
        // Error (see README, "Swift").
        let sync = rawDebugPanic("sync boom")
        XCTAssertEqual(sync.code, 2)
        XCTAssertTrue(sync.message.contains("sync boom"), sync.message)
        let async_ = await rawDebugPanicAsync("async boom")
        XCTAssertEqual(async_.code, 2)
        XCTAssertTrue(async_.message.contains("async boom"), async_.message)
        // And the library still works.
        let s = try Swarm.local(bootstrap: bootstrap)
        XCTAssertEqual(s.publicKey().count, 32)
        await s.shutdown()
    }

    func test100CreateAndDestroyCyclesDoNotLeak() async throws {
        func count(_ dir: String) -> Int { (try? FileManager.default.contentsOfDirectory(atPath: dir).count) ?? -1 }
        func fds() -> Int { count("/proc/self/fd") }
        func threads() -> Int { count("/proc/self/task") }
        for _ in 0..<5 { // warm up the runtime
            let s = try Swarm.local(bootstrap: bootstrap)
            await s.shutdown()
        }
        let handles0 = liveHandles()
        let fds0 = fds()
        let threads0 = threads()
        XCTAssertGreaterThan(fds0, 0)
        for i in 0..<100 {
            let s = try Swarm.local(bootstrap: bootstrap)
            _ = try s.join(topic: topicFromName(name: "swift-leak-\(i)"), options: JoinOptions())
            await s.shutdown()
        } // each swarm (and discovery) is released here by ARC, which frees the native handle
        // Engines finish closing their sockets just after shutdown returns.
        var tries = 0
        while (fds() > fds0 + 4 || liveHandles() != handles0) && tries < 50 {
            tries += 1
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        XCTAssertEqual(liveHandles(), handles0, "native handles")
        XCTAssertLessThanOrEqual(fds(), fds0 + 4, "fds \(fds()) vs \(fds0)")
        XCTAssertLessThanOrEqual(threads(), threads0 + 4, "threads \(threads()) vs \(threads0)")
    }
}

// MARK: - test support

struct TestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `operation`, failing with a TestError after `seconds` (the operation is then cancelled;
/// the swarm waits used here — nextConnection, event streams — honour cancellation).
func within<T: Sendable>(
    _ seconds: Double, _ what: String, _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            throw TestError("\(what): timed out after \(seconds) s")
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// The connection events `swarm` reports during `seconds` (the collecting task is then
/// cancelled, which ends its event stream).
func connectedEvents(_ swarm: Swarm, during seconds: Double) async -> [Connection] {
    let collector = Task { () -> [Connection] in
        var out: [Connection] = []
        for await event in swarm.eventStream() {
            if case let .connected(connection) = event { out.append(connection) }
        }
        return out
    }
    try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
    collector.cancel()
    return await collector.value
}

enum Kind: String { case invalidInput = "invalid_input", closed }

/// Asserts that `body` throws a SwarmplexError of `kind`; returns it.
@discardableResult
func expectError(_ kind: Kind, file: StaticString = #filePath, line: UInt = #line,
                 _ body: () throws -> Void) -> SwarmplexError? {
    do {
        try body()
        XCTFail("no error thrown, expected \(kind.rawValue)", file: file, line: line)
    } catch let error as SwarmplexError {
        XCTAssertEqual(error.kind, kind.rawValue, "\(error)", file: file, line: line)
        return error
    } catch {
        XCTFail("not a SwarmplexError: \(error)", file: file, line: line)
    }
    return nil
}

// The C ABI, for the panic test.

private func lowerString(_ s: String) -> RustBuffer {
    var status = RustCallStatus()
    return Array(s.utf8).withUnsafeBufferPointer { bytes in
        ffi_swarmplex_uniffi_rustbuffer_from_bytes(ForeignBytes(len: Int32(bytes.count), data: bytes.baseAddress), &status)
    }
}

private func takeString(_ buffer: RustBuffer) -> String {
    let s = buffer.data.map { String(decoding: UnsafeBufferPointer(start: $0, count: Int(buffer.len)), as: UTF8.self) } ?? ""
    var status = RustCallStatus()
    ffi_swarmplex_uniffi_rustbuffer_free(buffer, &status)
    return s
}

/// `debug_panic(message)` through the C ABI: the call status code and error message.
private func rawDebugPanic(_ message: String) -> (code: Int8, message: String) {
    var status = RustCallStatus()
    uniffi_swarmplex_uniffi_fn_func_debug_panic(lowerString(message), &status)
    return (status.code, status.code == 0 ? "" : takeString(status.errorBuf))
}

private final class Waiter {
    let continuation: CheckedContinuation<Int8, Never>
    init(_ continuation: CheckedContinuation<Int8, Never>) { self.continuation = continuation }
}

private let wake: UniffiRustFutureContinuationCallback = { data, poll in
    Unmanaged<Waiter>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(data))!).takeRetainedValue()
        .continuation.resume(returning: poll)
}

/// `debug_panic_async(message)` driven through uniffi's future ABI: status code and message.
private func rawDebugPanicAsync(_ message: String) async -> (code: Int8, message: String) {
    let future = uniffi_swarmplex_uniffi_fn_func_debug_panic_async(lowerString(message))
    defer { ffi_swarmplex_uniffi_rust_future_free_void(future) }
    while await withCheckedContinuation({ (c: CheckedContinuation<Int8, Never>) in
        let box = Unmanaged.passRetained(Waiter(c)).toOpaque()
        ffi_swarmplex_uniffi_rust_future_poll_void(future, wake, UInt64(UInt(bitPattern: box)))
    }) != 0 {}
    var status = RustCallStatus()
    ffi_swarmplex_uniffi_rust_future_complete_void(future, &status)
    return (status.code, status.code == 0 ? "" : takeString(status.errorBuf))
}
