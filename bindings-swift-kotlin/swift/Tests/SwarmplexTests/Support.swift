// What the Swift test classes share: a local testnet per test, swarms shut down whatever
// happens, connecting two swarms by topic, byte exchange, waiting for events with a deadline,
// and the handle-leak check. Everything talks only to 127.0.0.1; scripts/test-swift.sh runs the
// tests inside scripts/netns-run (loopback only).
import Foundation
import Swarmplex
import XCTest

/// A test case with its own local testnet (3 DHT nodes on 127.0.0.1) for every test.
class TestnetCase: XCTestCase {
    /// This test's testnet (started in `setUp`, shut down in `tearDown`).
    var testnet: Testnet!
    /// Its nodes' multiaddrs, for `Swarm.local(bootstrap:)`.
    var bootstrap: [String] { get throws { try testnet.bootstrap() } }

    override func setUp() async throws {
        testnet = try await startTestnet(nodes: 3)
    }

    override func tearDown() async throws {
        try await testnet?.shutdown()
        testnet = nil
    }

    /// Runs `body` on the swarms `make` starts; each is shut down afterwards whatever happens.
    func withSwarms(_ make: () throws -> [Swarm], _ body: ([Swarm]) async throws -> Void) async throws {
        let swarms = try make()
        do {
            try await body(swarms)
        } catch {
            for s in swarms { try? await s.shutdown() }
            throw error
        }
        for s in swarms { try await s.shutdown() }
    }

    /// `n` local swarms (mDNS off, this test's testnet), shut down afterwards.
    func withSwarms(_ n: Int, _ body: ([Swarm]) async throws -> Void) async throws {
        try await withSwarms({ try (0..<n).map { _ in try Swarm.local(bootstrap: bootstrap) } }, body)
    }

    /// Two local swarms, shut down afterwards whatever happens.
    func withPair(_ body: (Swarm, Swarm) async throws -> Void) async throws {
        try await withSwarms(2) { try await body($0[0], $0[1]) }
    }

    /// `a` serves `name`, `b` looks it up; both sides' new connection.
    func connectByTopic(_ a: Swarm, _ b: Swarm, _ name: String) async throws -> (Connection, Connection) {
        let topic = try topicFromName(name: name)
        return try await within(30, "connect by topic") {
            async let ca = a.nextConnection()
            async let cb = b.nextConnection()
            try await a.joinAndFlush(topic, server: true, client: false)
            _ = try b.join(topic: topic, options: JoinOptions(server: false, client: true))
            guard let x = try await ca, let y = try await cb else { throw TestError("a swarm shut down") }
            return (x, y)
        }
    }

    /// `data` as UTF-8 text.
    func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) }
}

/// A [TestnetCase] whose every test must release what it made: as many native handles are alive
/// after the test as before it.
class LeakCheckedCase: TestnetCase {
    private var handlesBefore: Int64 = 0

    override func setUp() async throws {
        try await super.setUp()
        handlesBefore = try liveHandles()
    }

    override func tearDown() async throws {
        XCTAssertEqual(try liveHandles(), handlesBefore, "native handles left alive by the test")
        try await super.tearDown()
    }
}

/// `n` bytes of a pattern that differs with `seed`.
func bytes(_ n: Int, _ seed: Int) -> Data {
    Data((0..<n).map { UInt8(($0 &* 31 &+ seed) % 251) })
}

/// Writes `x` on `one` and `y` on `other`, each read on the far side beside its write (flow
/// control blocks a writer nobody reads), and checks that both arrive intact.
func exchange(_ one: SwarmStream, _ other: SwarmStream, _ x: Data, _ y: Data,
              file: StaticString = #filePath, line: UInt = #line) async throws {
    for (from, to, data) in [(one, other, x), (other, one, y)] {
        async let written: Void = from.write(data: data)
        let got = try await to.read(exactly: data.count)
        try await written
        XCTAssertEqual(got, data, "\(data.count) bytes", file: file, line: line)
    }
}

/// [exchange] over the two connections' sockets.
func exchangeOnSockets(_ one: Connection, _ other: Connection, _ x: Data, _ y: Data,
                       file: StaticString = #filePath, line: UInt = #line) async throws {
    try await exchange(one.socket(), other.socket(), x, y, file: file, line: line)
}

/// The first event of `swarm` that `pick` maps to a value, within `seconds`; the events before it
/// are consumed.
func firstEvent<T: Sendable>(_ swarm: Swarm, _ what: String, seconds: Double = 30,
                             _ pick: @escaping @Sendable (SwarmEvent) -> T?) async throws -> T {
    try await within(seconds, what) {
        while let event = try await swarm.nextEventCancellable() {
            if let value = pick(event) { return value }
        }
        throw TestError("\(what): the swarm shut down")
    }
}

/// Seconds since `start`.
func secondsSince(_ start: Date) -> Double { Date().timeIntervalSince(start) }

/// A call that runs in its own task, and whether it has finished (without awaiting it).
final class Pending<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var finished = false
    private(set) var task: Task<T, Error>!

    init(_ operation: @escaping @Sendable () async throws -> T) {
        task = Task { [self] in
            defer { lock.withLock { finished = true } }
            return try await operation()
        }
    }

    var isDone: Bool { lock.withLock { finished } }

    /// Calls `cancel` until the call has finished (a native cancel ends only the calls already
    /// made, and the task may not have made its call yet), within `seconds`; then its result.
    func cancelUntilDone(within seconds: Double = 5, _ cancel: () throws -> Void) async throws -> Result<T, Error> {
        let start = Date()
        while !isDone {
            try cancel()
            if secondsSince(start) > seconds { throw TestError("not finished \(seconds) s after the cancel") }
            await Task.yield()
        }
        return await task.result
    }
}

/// A firewall from a function (return `true` to reject), recording whom it was asked about.
final class RecordingFirewall: Firewall, @unchecked Sendable {
    private let lock = NSLock()
    private var keys: [Data] = []
    private let verdict: Bool

    init(rejects: Bool) { verdict = rejects }

    func reject(remotePublicKey: Data) -> Bool {
        lock.withLock { keys.append(remotePublicKey) }
        return verdict
    }

    var asked: [Data] { lock.withLock { keys } }
}

// MARK: - errors, deadlines

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

enum Kind: String {
    case invalidInput = "invalid_input", connect, closed, timeout, firewalled, reset, relayLimit = "relay_limit"
}

/// Asserts that `thrown` (nil: nothing was thrown) is a SwarmplexError of `kind`; returns it.
private func checkError(_ kind: Kind, _ thrown: Error?, file: StaticString, line: UInt) -> SwarmplexError? {
    guard let thrown else {
        XCTFail("no error thrown, expected \(kind.rawValue)", file: file, line: line)
        return nil
    }
    guard let error = thrown as? SwarmplexError else {
        XCTFail("not a SwarmplexError: \(thrown)", file: file, line: line)
        return nil
    }
    XCTAssertEqual(error.kind, kind.rawValue, "\(error)", file: file, line: line)
    return error
}

/// Asserts that `body` throws a SwarmplexError of `kind`; returns it.
@discardableResult
func expectError(_ kind: Kind, file: StaticString = #filePath, line: UInt = #line,
                 _ body: () throws -> Void) -> SwarmplexError? {
    do {
        try body()
        return checkError(kind, nil, file: file, line: line)
    } catch {
        return checkError(kind, error, file: file, line: line)
    }
}

/// Asserts that the async `body` throws a SwarmplexError of `kind`; returns it.
@discardableResult
func expectAsyncError(_ kind: Kind, file: StaticString = #filePath, line: UInt = #line,
                      _ body: () async throws -> Void) async -> SwarmplexError? {
    do {
        try await body()
        return checkError(kind, nil, file: file, line: line)
    } catch {
        return checkError(kind, error, file: file, line: line)
    }
}

/// Asserts that `error` is uniffi's report of a Rust panic carrying `message`: not a
/// SwarmplexError (uniffi's `UniffiInternalError.rustPanic` is file-private to the generated code,
/// so it is recognised by its description).
func assertRustPanic(_ error: Error, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertFalse(error is SwarmplexError, "a panic became \(error)", file: file, line: line)
    XCTAssertTrue(String(describing: error).contains("rustPanic"), "\(error)", file: file, line: line)
    let description = (error as? LocalizedError)?.errorDescription ?? ""
    XCTAssertTrue(description.contains(message), "description: \(description)", file: file, line: line)
}

/// Asserts that `result` is the `Closed("cancelled")` a native cancel ends a call with.
func assertCancelled<T>(_ result: Result<T, Error>, file: StaticString = #filePath, line: UInt = #line) {
    guard case let .failure(error) = result, let e = error as? SwarmplexError, case .Closed = e else {
        return XCTFail("not ended with Closed(cancelled): \(result)", file: file, line: line)
    }
    XCTAssertTrue(e.message.contains("cancelled"), e.message, file: file, line: line)
}

/// A topic message, as the `message` event gives it.
struct Message: Sendable {
    let remote: Data
    let topic: String
    let data: Data
}

/// `swarm`'s topic messages (other events are consumed) until `done` says the list is complete.
func messages(_ swarm: Swarm, until done: @escaping @Sendable ([Message]) -> Bool) async throws -> [Message] {
    try await within(30, "topic messages") {
        var got: [Message] = []
        while let event = try await swarm.nextEventCancellable() {
            if case let .message(remote, topic, data) = event {
                got.append(Message(remote: remote, topic: topic, data: data))
                if done(got) { return got }
            }
        }
        throw TestError("the swarm shut down after \(got.count) messages")
    }
}
