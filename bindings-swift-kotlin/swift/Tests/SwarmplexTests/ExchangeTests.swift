// The cases of kotlin/src/test/kotlin/io/swarmplex/ExchangeTest.kt, in Swift: peer-exchange
// nodes (`SwarmOptions.exchange`) meet by address (`connect`, `listenOn`) and ask each other for
// peers (`getNewPeer`), reached through the introducer's relay or directly. The nodes use no DHT
// (the testnet stays unused); everything is on 127.0.0.1 inside scripts/netns-run.
import Foundation
import Swarmplex
import XCTest

final class ExchangeTests: LeakCheckedCase {
    /// One peer-exchange node per network id, each shut down afterwards.
    private func withNodes(_ networks: String..., body: ([Swarm]) async throws -> Void) async throws {
        try await withSwarms({ try networks.map { try Swarm(options: SwarmOptions(exchange: $0)) } }, body)
    }

    /// The next connection of `swarm` to `key` (other events are consumed).
    private func connection(of swarm: Swarm, to key: Data) async throws -> Connection {
        try await firstEvent(swarm, "the connection to the peer") {
            if case let .connected(c) = $0, (try? c.remotePublicKey()) == key { return c }
            return nil
        }
    }

    func testAReachesCThroughBsRelayWhenCAcceptsNothing() async throws {
        try await withNodes("swift-three", "swift-three", "swift-three") { nodes in
            let (a, b, c) = (nodes[0], nodes[1], nodes[2])
            let tcp = try await b.listenOn(address: "/ip4/127.0.0.1/tcp/0")
            let quic = try await b.listenOn(address: "/ip4/127.0.0.1/udp/0/quic-v1")
            XCTAssertTrue(tcp.hasPrefix("/ip4/127.0.0.1/tcp/") && !tcp.hasSuffix("/tcp/0"), tcp)
            XCTAssertTrue(quic.hasSuffix("/quic-v1"), quic)
            let ab = try await a.connect(address: tcp)
            XCTAssertEqual(try ab.remotePublicKey(), try b.publicKey())
            XCTAssertEqual(try ab.path().transport, "tcp")
            let cb = try await c.connect(address: quic)
            XCTAssertEqual(try cb.path().transport, "quic")

            // C listens on nothing (like a peer behind a NAT): B's relay is the only way in.
            let ac = try await a.getNewPeer(via: nil)
            XCTAssertEqual(try ac.remotePublicKey(), try c.publicKey(), "B offered the only other peer")
            let path = try ac.path()
            XCTAssertEqual(path.transport, "relay", path.remoteAddress)
            XCTAssertTrue(path.relayed)
            XCTAssertEqual(path.relay, try b.publicKey())
            let ca = try await connection(of: c, to: a.publicKey())
            XCTAssertEqual(try ca.path().transport, "relay")
            XCTAssertEqual(try ac.handshakeHash(), try ca.handshakeHash())
            try await exchangeOnSockets(ac, ca, bytes(256 * 1024, 1), bytes(200_000, 2))

            // B knows nobody A is not connected to already.
            await expectAsyncError(.connect) { _ = try await a.getNewPeer(via: b.publicKey()) }
        }
    }

    func testAnIntroducedPeerThatAcceptsIsReachedDirectly() async throws {
        try await withNodes("swift-direct", "swift-direct", "swift-direct") { nodes in
            let (a, b, c) = (nodes[0], nodes[1], nodes[2])
            let bTcp = try await b.listenOn(address: "/ip4/127.0.0.1/tcp/0")
            _ = try await a.listenOn(address: "/ip4/127.0.0.1/tcp/0")
            _ = try await c.listenOn(address: "/ip4/127.0.0.1/udp/0/quic-v1")
            _ = try await a.connect(address: bTcp)
            _ = try await c.connect(address: bTcp)
            let ac = try await a.getNewPeer(via: b.publicKey())
            XCTAssertEqual(try ac.remotePublicKey(), try c.publicKey())
            let path = try ac.path()
            XCTAssertNotEqual(path.transport, "relay", path.remoteAddress)
            XCTAssertFalse(path.relayed)
            let ca = try await connection(of: c, to: a.publicKey())
            try await exchangeOnSockets(ac, ca, bytes(2 << 20, 3), bytes(1 << 20, 4))
        }
    }

    func testWebsocketCarriesAPeerAndStopListeningRefusesNewPeersButKeepsConnections() async throws {
        try await withNodes("swift-ws", "swift-ws", "swift-ws") { nodes in
            let (a, b, c) = (nodes[0], nodes[1], nodes[2])
            let ws = try await b.listenOn(address: "/ip4/127.0.0.1/tcp/0/ws")
            XCTAssertTrue(ws.hasSuffix("/ws"), ws)
            let ab = try await a.connect(address: ws)
            XCTAssertEqual(try ab.path().transport, "websocket")
            let ba = try await connection(of: b, to: a.publicKey())
            XCTAssertEqual(try ba.path().transport, "websocket")
            try await exchangeOnSockets(ab, ba, bytes(1 << 20, 5), Data("over websocket".utf8))

            try await b.stopListening(address: ws)
            await expectAsyncError(.connect) { _ = try await c.connect(address: ws) }
            // The connection made before stays up.
            XCTAssertFalse(try ab.isClosed())
            try await exchangeOnSockets(ab, ba, bytes(64 * 1024, 6), Data("still here".utf8))
            await expectAsyncError(.invalidInput) { try await b.stopListening(address: ws) } // twice
        }
    }

    func testRelayingIsBoundedACutCircuitFailsLoudlyAndEndsWithRelayLimit() async throws {
        try await withNodes("swift-bounded", "swift-bounded", "swift-bounded") { nodes in
            let (a, b, c) = (nodes[0], nodes[1], nodes[2])
            let bTcp = try await b.listenOn(address: "/ip4/127.0.0.1/tcp/0")
            _ = try await a.connect(address: bTcp)
            _ = try await c.connect(address: bTcp)
            let ac = try await a.getNewPeer(via: nil)
            XCTAssertEqual(try ac.path().transport, "relay")
            let ca = try await connection(of: c, to: a.publicKey())
            // 4 MiB cannot cross a relay that carries 1 MiB per circuit (the default bound): the
            // reader must see an error, never a clean end.
            let (w, r) = (try ac.socket(), try ca.socket())
            let writer = Pending { () -> String in
                do {
                    for _ in 0..<64 { try await w.write(data: Data(repeating: 7, count: 64 * 1024)) }
                    return "wrote everything"
                } catch let e as SwarmplexError {
                    return e.kind
                }
            }
            var got = 0
            var failure: Error?
            do {
                while true {
                    let chunk = try await r.read(max: 65536)
                    if chunk.isEmpty { break }
                    got += chunk.count
                }
            } catch {
                failure = error
            }
            XCTAssertTrue(failure is SwarmplexError, "read \(got) bytes and then \(String(describing: failure)): bytes were lost silently")
            XCTAssertLessThan(got, 4 << 20)
            let writerOutcome = try await writer.task.value
            XCTAssertNotEqual(writerOutcome, "wrote everything", "the writer was not told")
            // The reader's side, whose inbound half the relay cut mid-frame, learns why. (The
            // writer's side may instead see its control stream end cleanly, which the core reads
            // as the remote's goodbye: "closed".)
            let cut = try await ca.closed()
            XCTAssertEqual(cut?.kind, "relay_limit", cut?.message ?? "")
            let end = try await ac.closed()
            XCTAssertTrue(["relay_limit", "closed"].contains(end?.kind ?? ""), "\(String(describing: end))")
        }
    }

    func testNodesOnlyPeerWithinOneNetworkAndBadAsksFailFastWithTypedErrors() async throws {
        try await withNodes("swift-net-one", "swift-net-two") { nodes in
            let (one, two) = (nodes[0], nodes[1])
            let addr = try await one.listenOn(address: "/ip4/127.0.0.1/tcp/0")
            await expectAsyncError(.connect) { _ = try await two.connect(address: addr) }
            let none = try await one.connections()
            XCTAssertTrue(none.isEmpty)
            await expectAsyncError(.connect) { _ = try await two.getNewPeer(via: nil) } // no peers to ask
            await expectAsyncError(.connect) { _ = try await two.connect(address: "/ip4/127.0.0.1/tcp/1") } // nobody there
            await expectAsyncError(.invalidInput) { _ = try await two.connect(address: "not a multiaddr") }
            await expectAsyncError(.invalidInput) { _ = try await two.listenOn(address: "/ip4/127.0.0.1/udp/0") }
            await expectAsyncError(.invalidInput) { try await two.stopListening(address: "/ip4/127.0.0.1/tcp/9") }
            await expectAsyncError(.invalidInput) { _ = try await two.getNewPeer(via: Data(count: 31)) }
            // An exchange node sets its own bootstrap, network, listeners and mDNS.
            expectError(.invalidInput) { _ = try Swarm(options: SwarmOptions(bootstrap: [], exchange: "x")) }
            expectError(.invalidInput) { _ = try Swarm(options: SwarmOptions(mdns: true, exchange: "x")) }
        }
    }
}
