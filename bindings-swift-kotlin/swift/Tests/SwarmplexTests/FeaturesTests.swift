// The cases of kotlin/src/test/kotlin/io/swarmplex/FeaturesTest.kt, in Swift: findPeer, status,
// topics and PeerInfo, leave, the firewall, ban, suspend/resume, shared streams, reset,
// cancelling pending calls, topic messages, key pairs, maxPeers, refresh and the update and
// topic events. Each test has its own local testnet (127.0.0.1) and releases every handle it made.
import Foundation
import Swarmplex
import XCTest

final class FeaturesTests: LeakCheckedCase {
    /// A valid public key nobody answers to: a swarm's, after it was shut down.
    private func goneKey() async throws -> Data {
        let s = try Swarm.local(bootstrap: bootstrap)
        let key = try s.publicKey()
        try await s.shutdown()
        return key
    }

    /// The options of a local swarm, changed by `change`.
    private func options(_ change: (inout SwarmOptions) -> Void) throws -> SwarmOptions {
        var o = try localOptions(bootstrap: bootstrap)
        change(&o)
        return o
    }

    private func nextConnection(_ swarm: Swarm, _ what: String) async throws -> Connection {
        guard let c = try await within(30, what, { try await swarm.nextConnection() }) else {
            throw TestError("\(what): the swarm shut down")
        }
        return c
    }

    private func clientOnly() -> JoinOptions { JoinOptions(server: false, client: true) }

    func testLeaveKeepsExistingConnections() async throws {
        try await withPair { server, client in
            let topic = try topicFromName(name: "swift-leave-keeps")
            let (cs, cc) = try await connectByTopic(server, client, "swift-leave-keeps")
            try await server.leave(topic: topic)
            try await client.leave(topic: topic)
            let left = try await server.topics()
            XCTAssertTrue(left.isEmpty)
            XCTAssertFalse(try cs.isClosed())
            XCTAssertFalse(try cc.isClosed())
            // The connection still carries data both ways.
            try await exchangeOnSockets(cs, cc, Data("after leave".utf8), bytes(100_000, 1))
            let open = try await client.connections()
            XCTAssertEqual(open.count, 1)
        }
    }

    func testFindPeerTimesOutCancelsAtOnceAndFreesItsHandle() async throws {
        try await withPair { a, b in
            _ = try await b.listen()
            try await b.flush()
            let found = try await a.findPeer(publicKey: b.publicKey(), timeoutMs: 20_000).connection()
            XCTAssertEqual(try found.remotePublicKey(), try b.publicKey())
            XCTAssertTrue(try found.peerInfo().explicit)
            try a.leavePeer(publicKey: b.publicKey())

            let nobody = try await goneKey()
            let timeout = await expectAsyncError(.timeout) {
                _ = try await a.findPeer(publicKey: nobody, timeoutMs: 300).connection()
            }
            XCTAssertEqual(timeout?.kind, "timeout")
            expectError(.invalidInput) { _ = try a.findPeer(publicKey: Data(count: 7), timeoutMs: nil) }
            await expectAsyncError(.invalidInput) { // yourself
                _ = try await a.findPeer(publicKey: a.publicKey(), timeoutMs: nil).connection()
            }

            let handles = try liveHandles()
            do {
                // cancel() ends a pending connection() with Closed("cancelled") at once, and the
                // outcome stays for later calls.
                let search = try a.findPeer(publicKey: nobody, timeoutMs: nil)
                let pending = Pending { try await search.connection() }
                let start = Date()
                assertCancelled(try await pending.cancelUntilDone { try search.cancel() })
                XCTAssertLessThan(secondsSince(start), 2, "cancel took too long")
                let again = await expectAsyncError(.closed) { _ = try await search.connection() }
                XCTAssertTrue(again?.message.contains("cancelled") ?? false)
            } // the search is released here, which stops it
            XCTAssertEqual(try liveHandles(), handles, "native handles after a cancelled search")
            try a.leavePeer(publicKey: nobody)
        }
    }

    func testPeerInfoStatusAndTopicsDescribeWhatWasJoined() async throws {
        try await withPair { a, b in
            let topic = try topicFromName(name: "swift-status")
            let (ca, cb) = try await connectByTopic(a, b, "swift-status")
            // b found a as a client of the topic; a only saw an incoming peer.
            let infoB = try cb.peerInfo()
            XCTAssertEqual(infoB.publicKey, try a.publicKey())
            XCTAssertEqual(infoB.topics, [topic])
            XCTAssertTrue(infoB.client)
            XCTAssertFalse(infoB.explicit)
            let infoA = try ca.peerInfo()
            XCTAssertTrue(infoA.topics.isEmpty)
            XCTAssertFalse(infoA.client)

            let statusA = try await a.status(topic: topic)
            let statusB = try await b.status(topic: topic)
            let never = try await a.status(topic: topicFromName(name: "never joined"))
            XCTAssertEqual(statusA, JoinOptions(server: true, client: false))
            XCTAssertEqual(statusB, clientOnly())
            XCTAssertNil(never)
            let other = try topicFromName(name: "swift-status-2")
            _ = try a.join(topic: other, options: JoinOptions())
            let both = try await a.topics()
            XCTAssertEqual(Set(both), [TopicStatus(topic: topic, server: true, client: false),
                                       TopicStatus(topic: other, server: true, client: true)])
            try await a.leave(topic: other)
            let gone = try await a.status(topic: other)
            XCTAssertNil(gone)
            let left = try await a.topics()
            XCTAssertEqual(left.map(\.topic), [topic])
            await expectAsyncError(.invalidInput) { _ = try await a.status(topic: Data(count: 3)) }
        }
    }

    func testAFirewallRejectsAndBansAndAnAllowingOneAdmits() async throws {
        let rejecting = RecordingFirewall(rejects: true)
        let allowing = RecordingFirewall(rejects: false)
        try await withSwarms({ [
            try Swarm.local(bootstrap: bootstrap),
            try Swarm(options: options { $0.firewall = rejecting }),
            try Swarm(options: options { $0.firewall = allowing }),
        ] }) { swarms in
            let (client, closed, open) = (swarms[0], swarms[1], swarms[2])
            let topic = try topicFromName(name: "swift-fw-reject")
            try await closed.joinAndFlush(topic, server: true, client: false)
            _ = try client.join(topic: topic, options: clientOnly())
            let banned = try await firstEvent(closed, "ban") { if case let .ban(remote) = $0 { return remote }; return nil }
            XCTAssertEqual(banned, try client.publicKey())
            try await client.flush()
            XCTAssertEqual(rejecting.asked, [try client.publicKey()], "asked once, about the client")
            let none = try await closed.connections()
            XCTAssertTrue(none.isEmpty)

            let (cs, cc) = try await connectByTopic(open, client, "swift-fw-allow")
            XCTAssertEqual(allowing.asked, [try client.publicKey()])
            try await exchangeOnSockets(cs, cc, Data("let in".utf8), bytes(50_000, 3))
        }
    }

    func testBanClosesTheConnectionEmitsBanAndThePeerStaysOut() async throws {
        try await withPair { a, b in
            let (ca, _) = try await connectByTopic(a, b, "swift-ban")
            expectError(.invalidInput) { try a.ban(publicKey: Data(count: 31)) }
            try a.ban(publicKey: b.publicKey())
            let banned = try await firstEvent(a, "ban") { if case let .ban(remote) = $0 { return remote }; return nil }
            XCTAssertEqual(banned, try b.publicKey())
            let reason = try await ca.closed()
            XCTAssertEqual(reason?.kind, "firewalled")
            let gone = try await firstEvent(b, "disconnected") {
                if case let .disconnected(remote, _) = $0 { return remote }
                return nil
            }
            XCTAssertEqual(gone, try a.publicKey())
            // b still looks the topic up and finds a, which refuses it.
            try await b.flush()
            let open = try await a.connections()
            XCTAssertTrue(open.isEmpty, "a banned peer got back in")
        }
    }

    func testSuspendClosesConnectionsAndResumeReconnects() async throws {
        try await withPair { a, b in
            let (_, cb) = try await connectByTopic(a, b, "swift-suspend")
            try b.suspend()
            let reason = try await cb.closed()
            XCTAssertEqual(reason?.kind, "closed")
            XCTAssertTrue(try cb.isClosed())
            let gone = try await firstEvent(a, "disconnected") {
                if case let .disconnected(remote, _) = $0 { return remote }
                return nil
            }
            XCTAssertEqual(gone, try b.publicKey())
            await expectAsyncError(.closed) { try await cb.socket().write(data: Data("x".utf8)) }

            try b.resume()
            let cb2 = try await nextConnection(b, "b reconnects")
            let ca2 = try await nextConnection(a, "a sees b again")
            XCTAssertNotEqual(try cb2.handshakeHash(), try cb.handshakeHash(), "a new session")
            try await exchangeOnSockets(cb2, ca2, Data("back".utf8), Data("welcome back".utf8))
        }
    }

    func testSharedStreamsMeetWhicheverSideAsksFirst() async throws {
        try await withPair { a, b in
            let (ca, cb) = try await connectByTopic(a, b, "swift-shared-streams")
            for (name, first, second) in [("chat", ca, cb), ("files", cb, ca)] {
                // Both sides ask before either awaits (the follower's call needs the leader's).
                async let x = first.createSharedStream(name: name)
                async let y = second.createSharedStream(name: name)
                let (sx, sy) = try await (x, y)
                XCTAssertEqual(try sx.name(), name)
                XCTAssertEqual(try sy.name(), name)
                XCTAssertEqual(try sy.remotePublicKey(), try second.remotePublicKey())
                try await exchange(sx, sy, Data("\(name) one way".utf8), bytes(200_000, name.count))
            }
        }
    }

    func testResetIsAnErrorForTheRemoteNotAnEnd() async throws {
        try await withPair { a, b in
            let (ca, cb) = try await connectByTopic(a, b, "swift-reset")
            async let incoming = cb.receiveStream(name: "r")
            let out = try await ca.createStream(name: "r")
            let inc = try await incoming
            try await exchange(out, inc, Data("partial".utf8), Data("answer".utf8))
            try await out.write(data: Data("last words".utf8))
            try await out.reset()
            let last = try await inc.read(exactly: 10)
            XCTAssertEqual(text(last), "last words")
            await expectAsyncError(.reset) { _ = try await inc.read(max: 64) }
        }
    }

    func testCancellingAPendingReadReturnsAtOnceAndLosesNothing() async throws {
        try await withPair { a, b in
            let (ca, cb) = try await connectByTopic(a, b, "swift-cancel-read")
            let (sa, sb) = (try ca.socket(), try cb.socket())
            let handles = try liveHandles()
            // cancelReads() ends a pending read with Closed("cancelled") at once.
            let read = Pending { try await sa.read(max: 16) }
            let start = Date()
            assertCancelled(try await read.cancelUntilDone { try sa.cancelReads() })
            XCTAssertLessThan(secondsSince(start), 2, "cancel took too long")
            XCTAssertEqual(try liveHandles(), handles, "native handles after a cancelled read")
            // Nothing was lost: the stream still works both ways.
            try await exchange(sb, sa, Data("after the cancel".utf8), Data("still here".utf8))

            // cancelWaits() ends receiveStream (an error) and closed() (nil); the connection stays.
            let receiving = Pending { try await ca.receiveStream(name: "never") }
            assertCancelled(try await receiving.cancelUntilDone { try ca.cancelWaits() })
            let closing = Pending { try await ca.closed() }
            let closed = try await closing.cancelUntilDone { try ca.cancelWaits() }
            XCTAssertNil(try closed.get(), "closed() ended by cancelWaits() gives nil")
            XCTAssertFalse(try ca.isClosed())

            // cancelWrites() ends a write the remote does not read (flow control blocks it).
            async let incoming = cb.receiveStream(name: "sink")
            let sink = try await ca.createStream(name: "sink")
            let sinkIn = try await incoming
            let writing = Pending { try await sink.write(data: Data(count: 64 << 20)) }
            _ = try await sinkIn.read(exactly: 1000) // the write is under way; now nobody reads
            assertCancelled(try await writing.cancelUntilDone { try sink.cancelWrites() })
            // A cut write may have sent part of its data: that side of the stream is reset.
            await expectAsyncError(.reset) { try await sink.write(data: Data(count: 1)) }
        }
    }

    func testTopicMessagesReachOnlyJoinedTopicsBothWaysAndStopAfterLeave() async throws {
        try await withPair { a, b in
            let (ca, cb) = try await connectByTopic(a, b, "swift-messages")
            try b.joinMessages(topic: "chat")
            try b.joinMessages(topic: "sync")
            try await ca.sendMessage(topic: "other", data: Data("not for you".utf8))
            try await ca.sendMessage(topic: "chat", data: Data("hello 1".utf8))
            let big = bytes(100_000, 7)
            try await ca.sendMessage(topic: "chat", data: big)
            try await ca.sendMessage(topic: "sync", data: Data("marker 1".utf8))
            let got = try await messages(b) { got in
                Set(got.map { String(decoding: $0.data, as: UTF8.self) }).isSuperset(of: ["hello 1", "marker 1"])
                    && got.contains { $0.data == big }
            }
            for m in got {
                XCTAssertEqual(m.remote, try a.publicKey())
                XCTAssertTrue(["chat", "sync"].contains(m.topic), "delivered a message for \(m.topic)")
            }
            // The other way.
            try a.joinMessages(topic: "chat")
            try await cb.sendMessage(topic: "chat", data: Data("reply from b".utf8))
            let reply = try await messages(a) { !$0.isEmpty }[0]
            XCTAssertEqual(reply.topic, "chat")
            XCTAssertEqual(text(reply.data), "reply from b")
            XCTAssertEqual(reply.remote, try b.publicKey())
            // After leaving, "chat" is dropped while "sync" still arrives.
            try b.leaveMessages(topic: "chat")
            try await ca.sendMessage(topic: "chat", data: Data("after leave".utf8))
            try await ca.sendMessage(topic: "sync", data: Data("marker 2".utf8))
            let later = try await messages(b) { $0.contains { $0.data == Data("marker 2".utf8) } }
            XCTAssertFalse(later.contains { $0.topic == "chat" }, "chat delivered after leave")
            await expectAsyncError(.invalidInput) {
                try await ca.sendMessage(topic: String(repeating: "x", count: 2000), data: Data(count: 1))
            }
        }
    }

    func testSeedAndSecretKeyGiveLibsodiumsKeyPairAndPeersFindTheSwarmUnderIt() async throws {
        let seed = Data(repeating: 4, count: 32)
        let kp = try keyPairFromSeed(seed: seed)
        // libsodium's crypto_sign_seed_keypair vector, as in the core's tests.
        XCTAssertEqual(kp.publicKey.hexString, "ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7c")
        XCTAssertEqual(kp.secretKey, seed + kp.publicKey)
        XCTAssertEqual(try keyPairFromSecretKey(secretKey: kp.secretKey), kp)
        let (g1, g2) = (try keyPairGenerate(), try keyPairGenerate())
        XCTAssertEqual(g1.secretKey.count, 64)
        XCTAssertNotEqual(g1.publicKey, g2.publicKey)
        expectError(.invalidInput) { _ = try keyPairFromSeed(seed: Data(count: 31)) }
        expectError(.invalidInput) { _ = try keyPairFromSecretKey(secretKey: Data(count: 63)) }
        expectError(.invalidInput) { _ = try keyPairFromSecretKey(secretKey: seed + g1.publicKey) } // halves differ
        let both = try options { $0.seed = seed; $0.secretKey = g1.secretKey }
        expectError(.invalidInput) { _ = try Swarm(options: both) }

        try await withSwarms({ [
            try Swarm(options: options { $0.seed = seed }),
            try Swarm(options: options { $0.secretKey = g2.secretKey }),
        ] }) { swarms in
            let (seeded, other) = (swarms[0], swarms[1])
            XCTAssertEqual(try seeded.publicKey(), kp.publicKey)
            XCTAssertEqual(try seeded.keyPair(), kp)
            XCTAssertEqual(try other.keyPair(), g2)
            // The derived key is the identity peers see: the seeded swarm is found under it.
            _ = try await seeded.listen()
            try await seeded.flush()
            let c = try await other.findPeer(publicKey: kp.publicKey, timeoutMs: 20_000).connection()
            XCTAssertEqual(try c.remotePublicKey(), kp.publicKey)
            try other.leavePeer(publicKey: kp.publicKey)
        }
    }

    func testMaxPeersCapsConnectionsAndFlushStillResolves() async throws {
        try await withSwarms({
            try (0..<3).map { _ in try Swarm.local(bootstrap: bootstrap) } + [Swarm(options: options { $0.maxPeers = 1 })]
        }) { swarms in
            let topic = try topicFromName(name: "swift-max-peers")
            let client = swarms[3]
            for server in swarms.prefix(3) { try await server.joinAndFlush(topic, server: true, client: false) }
            _ = try client.join(topic: topic, options: clientOnly())
            _ = try await nextConnection(client, "the first connection")
            try await client.flush()
            let open = try await client.connections()
            XCTAssertEqual(open.count, 1, "three servers announced, maxPeers is 1")
        }
    }

    func testRefreshWithOptionsSwitchesAClientToServerAndANewClientFindsIt() async throws {
        try await withPair { a, b in
            let topic = try topicFromName(name: "swift-refresh")
            let d = try a.join(topic: topic, options: clientOnly())
            try await d.flushed()
            expectError(.invalidInput) { try d.refresh(options: JoinOptions(server: false, client: false)) }
            let before = try await a.status(topic: topic)
            XCTAssertEqual(before, clientOnly())
            try d.refresh(options: JoinOptions(server: true, client: true))
            let after = try await a.status(topic: topic)
            XCTAssertEqual(after, JoinOptions(server: true, client: true))
            try await d.flushed() // the new round announced a
            // b's first lookup finds a: without the switch there would be no announce to find.
            _ = try b.join(topic: topic, options: clientOnly())
            try await b.flush()
            let found = try await b.connections()
            XCTAssertEqual(try found.map { try $0.remotePublicKey() }, [try a.publicKey()])
            // A plain refresh starts a round and keeps the mode.
            try d.refresh()
            try await d.flushed()
            let kept = try await a.status(topic: topic)
            XCTAssertEqual(kept, JoinOptions(server: true, client: true))
        }
    }

    func testConnectingGoesUpAndDownThroughUpdateEvents() async throws {
        try await withPair { server, client in
            let topic = try topicFromName(name: "swift-updates")
            try await server.joinAndFlush(topic, server: true, client: false)
            XCTAssertEqual(try client.connecting(), 0)
            _ = try client.join(topic: topic, options: clientOnly())
            let seen = try await within(30, "updates") { () -> [UInt64] in
                var seen: [UInt64] = []
                while let event = try await client.nextEventCancellable() {
                    guard case let .update(connecting, connections) = event else { continue }
                    seen.append(connecting)
                    if connections == 1 { return seen }
                }
                throw TestError("the client shut down")
            }
            XCTAssertTrue(seen.contains(1), "connecting reached 1: \(seen)")
            XCTAssertEqual(seen.last, 0, "\(seen)")
            XCTAssertEqual(try client.connecting(), 0)
        }
    }

    func testAConnectedPeerFoundUnderASecondTopicIsToldByATopicEvent() async throws {
        try await withPair { server, client in
            let (t1, t2) = (try topicFromName(name: "swift-topic-1"), try topicFromName(name: "swift-topic-2"))
            try await server.joinAndFlush(t1, server: true, client: false)
            try await server.joinAndFlush(t2, server: true, client: false)
            _ = try client.join(topic: t1, options: clientOnly())
            let conn = try await nextConnection(client, "the connection under the first topic")
            XCTAssertEqual(try conn.peerInfo().topics, [t1])
            _ = try client.join(topic: t2, options: clientOnly())
            let (remote, topic) = try await firstEvent(client, "topic event") {
                if case let .peerTopic(remote, topic) = $0 { return (remote, topic) }
                return nil
            }
            XCTAssertEqual(remote, try server.publicKey())
            XCTAssertEqual(topic, t2)
            try await client.flush()
            XCTAssertEqual(Set(try conn.peerInfo().topics), [t1, t2])
            let open = try await client.connections()
            XCTAssertEqual(open.count, 1, "one connection for both topics")
        }
    }
}
