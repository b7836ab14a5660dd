// p2plex (Plex, Peer) and peersockets (Peersockets, TopicHandle), mirroring core/tests/plex.rs and
// core/tests/peersockets.rs: real sockets on this test's local testnet (127.0.0.1, inside
// scripts/netns-run), bytes compared end to end, every wait bounded, handles leak-checked.
import Foundation
import Swarmplex
import XCTest

private let server = JoinOptions(server: true, client: false)
private let client = JoinOptions(server: false, client: true)

/// Writes `data` and the end.
private func writeAndEnd(_ s: SwarmStream, _ data: Data) async throws {
    try await s.write(data: data)
    try await s.end()
}

/// Each end writes its bytes and the end while reading the other's to the end; both arrive intact.
private func exchangeToEnd(_ x: SwarmStream, _ y: SwarmStream, _ dx: Data, _ dy: Data,
                           file: StaticString = #filePath, line: UInt = #line) async throws {
    async let atY = y.readToEnd()
    async let atX = x.readToEnd()
    async let wx: Void = writeAndEnd(x, dx)
    async let wy: Void = writeAndEnd(y, dy)
    let (gotY, gotX) = try await (atY, atX)
    _ = try await (wx, wy)
    XCTAssertEqual(gotY, dx, "one way", file: file, line: line)
    XCTAssertEqual(gotX, dy, "the other way", file: file, line: line)
}

/// The first event of `plex` that `pick` maps to a value, within 30 s; the events before it are
/// consumed.
private func next<T: Sendable>(_ plex: Plex, _ what: String,
                               _ pick: @escaping @Sendable (PlexEvent) -> T?) async throws -> T {
    try await within(30, what) {
        for await event in plex.eventStream() {
            if let value = pick(event) { return value }
        }
        throw TestError("\(what): the plex shut down")
    }
}

private func nextPeer(_ plex: Plex) async throws -> Peer {
    try await within(30, "a peer") {
        guard let peer = try await plex.nextPeer() else { throw TestError("the plex shut down") }
        return peer
    }
}

/// The ids of the open peers.
private func peerIds(_ plex: Plex) throws -> [UInt64] {
    try plex.peers().map { try $0.id() }
}

/// Waits (bounded) until both peers' connections ended.
private func bothDisconnected(_ x: Peer, _ y: Peer, _ what: String) async throws {
    try await within(30, what) {
        try await x.disconnected()
        try await y.disconnected()
    }
}

/// The next message of `h` as (sender, text), within 30 s.
private func nextMessage(_ h: TopicHandle) async throws -> (Data, String) {
    try await within(30, "a message") {
        guard let m = try await h.nextMessage() else { throw TestError("the handle closed") }
        return (m.remote, String(decoding: m.data, as: UTF8.self))
    }
}

final class PlexTests: LeakCheckedCase {
    /// A plex that announces its key, the announce done (so others find it by key at once).
    private func listed(seed: Data? = nil) async throws -> Plex {
        var options = try localOptions(bootstrap: bootstrap)
        options.seed = seed
        let plex = try await Plex.create(options: options)
        try await plex.swarm().flush()
        return plex
    }

    /// A plex that does not announce its key (p2plex's `listenSelf: false`).
    private func unlisted() throws -> Plex {
        try Plex.over(swarm: Swarm.local(bootstrap: bootstrap), listenSelf: false)
    }

    /// Runs `body` on the plexes `make` builds; each is shut down afterwards whatever happens.
    private func withPlexes(_ make: [() async throws -> Plex], _ body: ([Plex]) async throws -> Void) async throws {
        var plexes: [Plex] = []
        do {
            for m in make { plexes.append(try await m()) }
            try await body(plexes)
        } catch {
            for p in plexes { try? await p.shutdown() }
            throw error
        }
        for p in plexes { try await p.shutdown() }
    }

    /// Two listed plexes.
    private func withListedPair(_ body: (Plex, Plex) async throws -> Void) async throws {
        try await withPlexes([{ try await self.listed() }, { try await self.listed() }]) { try await body($0[0], $0[1]) }
    }

    /// a finds b by key: (a's Peer for b, b's Peer for a).
    private func connect(_ a: Plex, _ b: Plex) async throws -> (Peer, Peer) {
        async let atB = nextPeer(b)
        let key = try b.publicKey()
        let ab = try await within(30, "find by key") { try await a.find(publicKey: key) }
        let ba = try await atB
        XCTAssertEqual(try ab.publicKey(), try b.publicKey())
        XCTAssertEqual(try ba.publicKey(), try a.publicKey())
        return (ab, ba)
    }

    func testSixteenNamedStreamsBothWaysKeepTheirBytesThenTheConnectionClosesByItself() async throws {
        try await withListedPair { a, b in
            let (ab, ba) = try await connect(a, b)
            try await within(60, "16 streams") {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for i in 0..<16 {
                        let (opener, taker) = i % 2 == 0 ? (ab, ba) : (ba, ab)
                        group.addTask {
                            async let x = opener.createStream(id: "s\(i)")
                            async let y = taker.receiveStream(id: "s\(i)")
                            let (sx, sy) = try await (x, y)
                            try await exchangeToEnd(sx, sy, bytes(100_000 + i, i), bytes(50_000, i + 100))
                        }
                    }
                    try await group.waitForAll()
                }
            }
            // Every stream finished on both sides: the connection closes by itself.
            try await bothDisconnected(ab, ba, "auto-close")
            XCTAssertFalse(try ab.isConnected())
            XCTAssertEqual(try peerIds(a), [])
            XCTAssertEqual(try peerIds(b), [])
            let abId = try ab.id()
            _ = try await next(a, "a's disconnected event") { event in
                if case let .disconnected(peer) = event, (try? peer.id()) == abId { return true }
                return nil
            }
        }
    }

    func testAnUnclaimedStreamIsNoticedAndAStreamOnAClosedPeerReopensByKey() async throws {
        try await withListedPair { a, b in
            let (ab, ba) = try await connect(a, b)
            let s = try await ab.createStream(id: "x")
            try await writeAndEnd(s, Data("unasked".utf8))
            // Nobody on b asked for "x": it is noticed, and taken from the notice once.
            let (noticed, id, shared) = try await next(b, "stream notice") { event -> (UInt64?, String, Bool)? in
                if case let .incomingStream(peer, id, shared) = event { return (try? peer.id(), id, shared) }
                return nil
            }
            XCTAssertEqual(noticed, try ba.id())
            XCTAssertEqual(id, "x")
            XCTAssertFalse(shared)
            guard let r = try ba.takeStream(id: "x", shared: false) else { return XCTFail("the noticed stream") }
            XCTAssertNil(try ba.takeStream(id: "x", shared: false), "taken once")
            let unasked = try await r.readToEnd()
            XCTAssertEqual(text(unasked), "unasked")
            try await writeAndEnd(r, Data("ok".utf8))
            let ok = try await within(30, "the reply") { try await s.readToEnd() }
            XCTAssertEqual(text(ok), "ok")
            try await bothDisconnected(ab, ba, "auto-close")

            // A stream opened on the closed Peer reopens on a new connection to the same key.
            async let reopened = ab.createStream(id: "again")
            let bNew = try await nextPeer(b)
            XCTAssertNotEqual(try bNew.id(), try ba.id())
            XCTAssertTrue(try bNew.isConnected())
            let r2 = try await within(30, "receive on the new peer") { try await bNew.receiveStream(id: "again") }
            try await exchangeToEnd(try await reopened, r2, Data("second".utf8), Data("reply".utf8))
            // (It may have closed by itself already: both streams finished.)
            let aNew = try XCTUnwrap(try a.peer(publicKey: b.publicKey()))
            XCTAssertGreaterThan(try aNew.id(), try ab.id())
        }
    }

    func testAReceiveClaimsAStreamThatCameFirstAndNextStreamSkipsIt() async throws {
        try await withListedPair { a, b in
            let (ab, ba) = try await connect(a, b)
            let (s1, s2) = (try await ab.createStream(id: "dup"), try await ab.createStream(id: "dup"))
            try await writeAndEnd(s1, Data("one".utf8))
            try await writeAndEnd(s2, Data("two".utf8))
            for _ in 0..<2 {
                _ = try await next(b, "notice") { event in
                    if case .incomingStream = event { return true }
                    return nil
                }
            }
            // A receive now claims the first; nextStream skips the notice whose stream was taken.
            let first = try await within(30, "receive") { try await ba.receiveStream(id: "dup") }
            let second = try await within(30, "next stream") { () -> PeerStream in
                for await s in ba.incomingStreams() { return s }
                throw TestError("no stream")
            }
            XCTAssertEqual(second.id, "dup")
            let (one, two) = (try await first.readToEnd(), try await second.stream.readToEnd())
            XCTAssertEqual(text(one), "one")
            XCTAssertEqual(text(two), "two")
            XCTAssertNil(try ba.takeStream(id: "dup", shared: false))
        }
    }

    func testSharedStreamsMeetAndAResetStreamCountsAsFinished() async throws {
        try await withListedPair { a, b in
            let (ab, ba) = try await connect(a, b)
            async let x = ab.createSharedStream(id: "chat")
            async let y = ba.createSharedStream(id: "chat")
            let (sx, sy) = try await (x, y)
            XCTAssertEqual(try sx.name(), "chat")
            try await exchangeToEnd(sx, sy, Data("from a".utf8), Data("from b".utf8))
            try await bothDisconnected(ab, ba, "auto-close")

            // A reset stream is finished at once; the remote's failed read finishes its side.
            let (ab2, ba2) = try await connect(a, b)
            async let incoming = ba2.receiveStream(id: "doomed")
            let s = try await ab2.createStream(id: "doomed")
            let r = try await incoming
            try await s.write(data: Data("partial".utf8))
            let partial = try await r.read(exactly: 7)
            XCTAssertEqual(text(partial), "partial")
            try await s.reset()
            await expectAsyncError(.reset) { _ = try await r.read(max: 16) }
            try await bothDisconnected(ab2, ba2, "auto-close after a reset")
        }
    }

    func testFindByPublicKeyTimesOutCancelsRefusesBadInputAndShutdownFailsPendingFinds() async throws {
        try await withListedPair { a, b in
            let nobody = try keyPairGenerate().publicKey
            await expectAsyncError(.timeout) { _ = try await a.findByPublicKey(publicKey: nobody, timeoutMs: 300) }
            await expectAsyncError(.invalidInput) { _ = try await a.findByPublicKey(publicKey: try a.publicKey(), timeoutMs: nil) }
            await expectAsyncError(.invalidInput) { _ = try await a.findByPublicKey(publicKey: Data(count: 7), timeoutMs: nil) }
            // A timeout on a topic search leaves the topic again (it was not joined before).
            let t = try topicFromName(name: "plex-nobody-here")
            await expectAsyncError(.timeout) {
                _ = try await a.findByTopicAndPublicKey(topic: t, publicKey: nobody, options: client, timeoutMs: 200)
            }
            let swarm = try a.swarm()
            try await within(10, "the topic is left") {
                while try await swarm.status(topic: t) != nil { await Task.yield() }
            }
            // cancelFinds() ends a pending find at once; so does cancelling a task in find().
            let pending = Pending { try await a.findByPublicKey(publicKey: nobody, timeoutMs: nil) }
            assertCancelled(try await pending.cancelUntilDone { try a.cancelFinds() })
            let task = Task { try await a.find(publicKey: nobody) }
            task.cancel()
            let cancelled = try await within(5, "a cancelled find") { await task.result }
            guard case .failure = cancelled else { return XCTFail("a cancelled find found \(cancelled)") }
            // The plex lives on and finds a peer that listens.
            let peer = try await within(30, "find b") { try await a.findByPublicKey(publicKey: try b.publicKey(), timeoutMs: 20_000) }
            XCTAssertTrue(try peer.isConnected())
            XCTAssertEqual(try peerIds(a), [try peer.id()])
            // Shutdown: a pending find fails with Closed, and so do later calls; the events end.
            let doomed = Task { try await a.findByPublicKey(publicKey: nobody, timeoutMs: nil) }
            try await a.shutdown()
            let result = try await within(10, "the pending find") { await doomed.result }
            guard case let .failure(error) = result else { return XCTFail("found \(result)") }
            XCTAssertEqual((error as? SwarmplexError)?.kind, "closed", "\(error)")
            await expectAsyncError(.closed) { try await a.join(topic: t, options: client) }
            XCTAssertTrue(try a.isDestroyed())
            try await within(10, "the events end") { while try await a.nextEvent() != nil {} }
        }
    }

    func testFindByTopicAndPublicKeyGivesOneConnectionWhateverBothSidesUse() async throws {
        try await withPlexes([{ try self.unlisted() }, { try self.unlisted() }]) { p in
            let (a, b) = (p[0], p[1])
            let t = try topicFromName(name: "plex-find-by-topic")
            let both = JoinOptions(server: true, client: true)
            let (keyA, keyB) = (try a.publicKey(), try b.publicKey())
            async let atA = a.findByTopicAndPublicKey(topic: t, publicKey: keyB, options: both, timeoutMs: 20_000)
            async let atB = b.findByTopicAndPublicKey(topic: t, publicKey: keyA, options: both, timeoutMs: 20_000)
            let (pa, pb) = try await (atA, atB)
            XCTAssertEqual(try pa.publicKey(), keyB)
            XCTAssertEqual(try pb.publicKey(), keyA)
            XCTAssertTrue(try pa.topics().contains(t) || pb.topics().contains(t), "found under the topic")
            XCTAssertEqual(try peerIds(a), [try pa.id()])
            XCTAssertEqual(try peerIds(b), [try pb.id()])
            // Already connected: the same Peer at once.
            let again = try await b.findByTopicAndPublicKey(topic: t, publicKey: keyA, options: client, timeoutMs: nil)
            XCTAssertEqual(try again.id(), try pb.id())
            async let x = pa.createSharedStream(id: "s")
            async let y = pb.createSharedStream(id: "s")
            let (sx, sy) = try await (x, y)
            try await exchangeToEnd(sx, sy, Data("A".utf8), Data("B".utf8))
        }
    }

    func testJoinLeaveDisconnectBanAndTheIdentityOfASeed() async throws {
        let seed = Data(repeating: 7, count: 32)
        let kp = try keyPairFromSeed(seed: seed)
        try await withPlexes([{ try await self.listed() }, { try await self.listed(seed: seed) }]) { p in
            let (a, b) = (p[0], p[1])
            XCTAssertEqual(try b.publicKey(), kp.publicKey)
            XCTAssertEqual(try b.keyPair(), kp)
            let t = try topicFromName(name: "plex-join")
            try await within(30, "announce") { try await b.join(topic: t, options: server) }
            try await within(30, "lookup") { try await a.join(topic: t, options: client) }
            let ab = try await nextPeer(a)
            let ba = try await nextPeer(b)
            XCTAssertEqual(try ab.publicKey(), kp.publicKey)
            XCTAssertFalse(try ab.incoming())
            XCTAssertTrue(try ab.topics().contains(t))
            XCTAssertTrue(try ba.incoming())
            try await within(30, "leave") { try await a.leave(topic: t) }
            try await within(30, "disconnect") { try await ab.disconnect() }
            XCTAssertFalse(try ab.isConnected())
            XCTAssertEqual(try peerIds(a), [])
            try await within(30, "b sees it") { try await ba.disconnected() }

            // ban() closes the connection; both sides see it, and the peer is not found again.
            let (ab2, ba2) = try await connect(a, b)
            XCTAssertNotEqual(try ab2.id(), try ab.id())
            XCTAssertNotEqual(try ba2.id(), try ba.id())
            try ab2.ban()
            try await bothDisconnected(ab2, ba2, "ban")
            do {
                _ = try await a.findByPublicKey(publicKey: kp.publicKey, timeoutMs: 500)
                XCTFail("a banned peer was found")
            } catch let e as SwarmplexError {
                XCTAssertTrue(["timeout", "firewalled"].contains(e.kind), "\(e)")
            }
        }
    }

    // MARK: - peersockets

    /// Asserts that `h` gets nothing within a short window (a bounded negative check).
    private func nothingFor(_ h: TopicHandle) async throws {
        let reader = Task { () -> TopicMessage? in
            for await m in h.messages() { return m }
            return nil
        }
        try await Task.sleep(nanoseconds: 300_000_000)
        reader.cancel()
        let got = await reader.value
        let name = try h.name()
        XCTAssertNil(got, "unexpected message on \(name)")
    }

    func testPeersocketsSendBroadcastCloseLeaveAndAPeerThatDidNotJoinGetsNothing() async throws {
        try await withSwarms(3) { s in
            let (a, b, c) = (s[0], s[1], s[2])
            // a is the server of a topic; b and c connect to it.
            let topic = try topicFromName(name: "ps")
            try await a.joinAndFlush(topic, server: true, client: false)
            for x in [b, c] { _ = try x.join(topic: topic, options: client) }
            try await within(30, "a connects to b and c") {
                var n = 0
                for await event in a.eventStream() {
                    if case .connected = event { n += 1 }
                    if n == 2 { return }
                }
                throw TestError("a shut down")
            }
            let (pa, pb, pc) = (try Peersockets(swarm: a), try Peersockets(swarm: b), try Peersockets(swarm: c))
            let roomA = try pa.join(name: "room")
            let (roomB1, roomB2) = (try pb.join(name: "room"), try pb.join(name: "room"))
            let otherC = try pc.join(name: "other")
            let (keyA, keyB) = (try a.publicKey(), try b.publicKey())

            // send: both of b's handles get it, with a's key.
            try await roomA.send(remote: keyB, data: Data("hello b".utf8))
            for h in [roomB1, roomB2] {
                let (from, msg) = try await nextMessage(h)
                XCTAssertEqual(from, keyA)
                XCTAssertEqual(msg, "hello b")
            }
            // broadcast reaches every connected peer; only b joined "room".
            let sends = try await roomA.broadcast(data: Data("to all".utf8))
            XCTAssertEqual(sends, 2)
            for h in [roomB1, roomB2] {
                let (_, msg) = try await nextMessage(h)
                XCTAssertEqual(msg, "to all")
            }
            try await nothingFor(otherC)
            // Replies go the other way.
            try await roomB1.send(remote: keyA, data: Data("hi a".utf8))
            let (from, reply) = try await nextMessage(roomA)
            XCTAssertEqual(from, keyB)
            XCTAssertEqual(reply, "hi a")

            // A closed handle gets nothing more and refuses to send; the topic stays joined for b2.
            try roomB1.shutdown()
            XCTAssertTrue(try roomB1.isClosed())
            let afterClose = try await roomB1.nextMessage()
            XCTAssertNil(afterClose)
            await expectAsyncError(.closed) { try await roomB1.send(remote: keyA, data: Data("x".utf8)) }
            try await roomA.send(remote: keyB, data: Data("after close".utf8))
            let (_, forB2) = try await nextMessage(roomB2)
            XCTAssertEqual(forB2, "after close")

            // leave closes every handle of the topic and stops delivery.
            XCTAssertEqual(try pb.leave(name: "room"), [try roomB2.id()])
            XCTAssertTrue(try roomB2.isClosed())
            let afterLeave = try await roomB2.nextMessage()
            XCTAssertNil(afterLeave)
            XCTAssertEqual(try pb.topics(), [])
            try await roomA.send(remote: keyB, data: Data("after leave".utf8))
            let leaked = Task { () -> Bool in
                for await event in b.eventStream() {
                    if case let .message(_, _, data) = event, data == Data("after leave".utf8) { return true }
                }
                return false
            }
            try await Task.sleep(nanoseconds: 300_000_000)
            leaked.cancel()
            let wasLeaked = await leaked.value
            XCTAssertFalse(wasLeaked, "b's swarm delivered a message of a topic it left")
            let again = try pb.join(name: "room")
            try await roomA.send(remote: keyB, data: Data("rejoined".utf8))
            while try await nextMessage(again).1 != "rejoined" {} // (a late "after leave" may come first)

            // Bad input and peers we are not connected to fail with typed errors.
            expectError(.invalidInput) { _ = try pa.join(name: "") }
            expectError(.invalidInput) { _ = try pa.join(name: String(repeating: "x", count: 1024 - 12 + 1)) }
            XCTAssertNoThrow(try pa.join(name: String(repeating: "x", count: 1024 - 12)))
            let stranger = try keyPairGenerate().publicKey
            await expectAsyncError(.closed) { try await roomA.send(remote: stranger, data: Data("?".utf8)) }
            try await a.shutdown()
            expectError(.closed) { _ = try pa.join(name: "late") }
        }
    }
}
