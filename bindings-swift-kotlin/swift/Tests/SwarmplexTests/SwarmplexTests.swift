// The cases of kotlin/src/test/kotlin/io/swarmplex/SwarmplexTest.kt, in Swift. Every test runs on
// its own local testnet (DHT nodes on 127.0.0.1, swarms with mDNS off) and scripts/test-swift.sh
// runs them inside scripts/netns-run (loopback only).
import Foundation
import Swarmplex
import XCTest

final class SwarmplexTests: TestnetCase {
    // MARK: tests

    func testTwoSwarmsConnectByTopicAndExchangeDataBothWays() async throws {
        try await withPair { a, b in
            let (ca, cb) = try await connectByTopic(a, b, "swift-topic-exchange")
            XCTAssertEqual(try ca.remotePublicKey(), try b.publicKey())
            XCTAssertEqual(try cb.remotePublicKey(), try a.publicKey())
            XCTAssertEqual(try ca.handshakeHash(), try cb.handshakeHash())
            XCTAssertEqual(try ca.handshakeHash().count, 32)
            XCTAssertNotEqual(try ca.isInitiator(), try cb.isInitiator())

            let sa = try ca.socket()
            let sb = try cb.socket()
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

    func testPathAndReachabilityOnALocalNetwork() async throws {
        try await withPair { a, b in
            let (ca, _) = try await connectByTopic(a, b, "swift-path")
            let path = try ca.path()
            XCTAssertFalse(path.relayed)
            XCTAssertNil(path.relay)
            XCTAssertTrue(["quic", "tcp"].contains(path.transport), path.transport)
            XCTAssertTrue(path.remoteAddress.hasPrefix("/ip4/127.0.0.1/"), path.remoteAddress)
            // Bootstrap nodes on loopback: a local network, reachable as it is, no relay.
            let r = try await a.reachability()
            XCTAssertEqual(r.state, "public")
            XCTAssertFalse(r.symmetric)
            XCTAssertTrue(r.relays.isEmpty)
            XCTAssertTrue(r.external.contains { $0.hasPrefix("/ip4/127.0.0.1/") }, "\(r.external)")
        }
    }

    func testClientAndServerOnBothSidesMakeExactlyOneConnectionEach() async throws {
        try await withPair { a, b in
            let topic = try topicFromName(name: "swift-dedup")
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
                XCTAssertEqual(try x.handshakeHash(), try y.handshakeHash())
            }
        }
    }

    func testAClientThatJoinsAfterTheServerLeftDoesNotFindIt() async throws {
        try await withPair { server, first in
            _ = try await connectByTopic(server, first, "swift-left")
            let topic = try topicFromName(name: "swift-left")
            // leave returns once the announce is withdrawn from the DHT nodes that held it.
            try await server.leave(topic: topic)
            let second = try Swarm.local(bootstrap: bootstrap)
            do {
                _ = try second.join(topic: topic, options: JoinOptions(server: false, client: true))
                try await second.flush()
                let found = try await second.connections()
                XCTAssertEqual(found.count, 0, "the second client found a server that left")
                let kept = try await first.connections()
                XCTAssertEqual(kept.count, 1, "leave keeps existing connections")
            } catch {
                try? await second.shutdown()
                throw error
            }
            try await second.shutdown()
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
            XCTAssertEqual(try connA.remotePublicKey(), try b.publicKey())
            XCTAssertEqual(try connB.remotePublicKey(), try a.publicKey())
            try a.leavePeer(publicKey: b.publicKey())
        }
    }

    func testNamedStreamsCarryTheirOwnData() async throws {
        try await withPair { a, b in
            let (ca, cb) = try await connectByTopic(a, b, "swift-named-streams")
            async let incoming = cb.receiveStream(name: "chat")
            let out = try await ca.createStream(name: "chat")
            let inc = try await incoming
            XCTAssertEqual(try inc.name(), "chat")
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

    func testAnAnnouncedStreamIsTakenOnceWithoutWaiting() async throws {
        try await withPair { a, b in
            let (ca, cb) = try await connectByTopic(a, b, "swift-parked")
            let out = try await ca.createStream(name: "note")
            try await out.write(text: "parked")
            try await out.end()
            let name = try await within(30, "stream event") { () -> String in
                while let event = try await b.nextEventCancellable() {
                    if case let .incomingStream(_, name, _) = event { return name }
                }
                throw TestError("b shut down")
            }
            XCTAssertEqual(name, "note")
            guard let got = try cb.takeParkedStream(name: "note", shared: false) else {
                return XCTFail("the announced stream was not parked")
            }
            let data = try await got.readToEnd()
            XCTAssertEqual(text(data), "parked")
            // Taken once: a late second handler of the same event gets nothing.
            XCTAssertNil(try cb.takeParkedStream(name: "note", shared: false))
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
        try await s.shutdown()

        // A shut-down swarm fails with Closed, not a crash, and its event streams finish.
        let d = try Swarm.local(bootstrap: bootstrap)
        try await d.shutdown()
        do {
            try await d.flush()
            XCTFail("flush on a shut-down swarm did not throw")
        } catch let error as SwarmplexError {
            XCTAssertEqual(error.kind, "closed")
        }
        let next = try await d.nextEvent()
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
        // Panics in the exports themselves are caught by uniffi's scaffolding (status
        // CALL_UNEXPECTED_ERROR with the panic message). Every export returns `Res<…>`, so the Swift
        // wrappers throw uniffi's internal `rustPanic` error (not a SwarmplexError; its description
        // is the panic message) instead of trapping on `try!`; the process goes on.
        do {
            try debugPanic(message: "sync boom")
            XCTFail("debugPanic did not throw")
        } catch {
            assertRustPanic(error, "sync boom")
        }
        do {
            try await debugPanicAsync(message: "async boom")
            XCTFail("debugPanicAsync did not throw")
        } catch {
            assertRustPanic(error, "async boom")
        }
        // And the library still works.
        let s = try Swarm.local(bootstrap: bootstrap)
        XCTAssertEqual(try s.publicKey().count, 32)
        try await s.shutdown()
    }

    func test100CreateAndDestroyCyclesDoNotLeak() async throws {
        func count(_ dir: String) -> Int { (try? FileManager.default.contentsOfDirectory(atPath: dir).count) ?? -1 }
        func fds() -> Int { count("/proc/self/fd") }
        func threads() -> Int { count("/proc/self/task") }
        for _ in 0..<5 { // warm up the runtime
            let s = try Swarm.local(bootstrap: bootstrap)
            try await s.shutdown()
        }
        let handles0 = try liveHandles()
        let fds0 = fds()
        let threads0 = threads()
        XCTAssertGreaterThan(fds0, 0)
        for i in 0..<100 {
            let s = try Swarm.local(bootstrap: bootstrap)
            _ = try s.join(topic: topicFromName(name: "swift-leak-\(i)"), options: JoinOptions())
            try await s.shutdown()
        } // each swarm (and discovery) is released here by ARC, which frees the native handle
        // Engines finish closing their sockets just after shutdown returns.
        var tries = 0
        while try (fds() > fds0 + 4 || liveHandles() != handles0) && tries < 50 {
            tries += 1
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        XCTAssertEqual(try liveHandles(), handles0, "native handles")
        XCTAssertLessThanOrEqual(fds(), fds0 + 4, "fds \(fds()) vs \(fds0)")
        XCTAssertLessThanOrEqual(threads(), threads0 + 4, "threads \(threads()) vs \(threads0)")
    }
}
