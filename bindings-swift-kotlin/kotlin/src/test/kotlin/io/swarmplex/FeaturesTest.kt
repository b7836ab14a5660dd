package io.swarmplex

import io.swarmplex.ffi.Connection
import io.swarmplex.ffi.JoinOptions
import io.swarmplex.ffi.Swarm
import io.swarmplex.ffi.SwarmEvent
import io.swarmplex.ffi.SwarmplexException
import io.swarmplex.ffi.keyPairFromSecretKey
import io.swarmplex.ffi.keyPairFromSeed
import io.swarmplex.ffi.keyPairGenerate
import io.swarmplex.ffi.liveHandles
import io.swarmplex.ffi.localOptions
import io.swarmplex.ffi.topicFromName
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.async
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.flow.transformWhile
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.util.concurrent.ConcurrentLinkedQueue

/**
 * The API beyond the basics: findPeer, shared streams, topic messages, PeerInfo, status/topics,
 * suspend/resume, the firewall callback, stream reset, and cancellation of long-lived waits.
 * Every test runs on a local testnet (127.0.0.1, mDNS off) inside scripts/netns-run.
 */
class FeaturesTest : LeakCheckedTest() {
    /** [n] local swarms, each shut down and closed afterwards whatever happens. */
    private fun withSwarms(n: Int, block: suspend CoroutineScope.(List<Swarm>) -> Unit) =
        withSwarms({ List(n) { Swarm.local(bootstrap) } }, block)

    private suspend fun connectByTopic(a: Swarm, b: Swarm, name: String): Pair<Connection, Connection> = coroutineScope {
        val topic = topicFromName(name)
        val ca = async { a.connectionFlow().first() }
        val cb = async { b.connectionFlow().first() }
        a.joinAndFlush(topic, server = true, client = false).close()
        b.join(topic, JoinOptions(server = false, client = true)).close()
        Pair(ca.await(), cb.await())
    }

    /** A valid public key nobody answers to: a swarm's, after it was shut down. */
    private suspend fun goneKey(): ByteArray {
        val s = Swarm.local(bootstrap)
        val key = s.publicKey()
        s.shutdownAndClose()
        return key
    }

    private inline fun millis(block: () -> Unit): Long {
        val t0 = System.nanoTime()
        block()
        return (System.nanoTime() - t0) / 1_000_000
    }

    @Test
    fun `findPeer connects by public key and carries data both ways`() = withSwarms(2) { (a, b) ->
        b.listen()
        b.flush()
        val atB = async { b.connectionFlow().first() }
        val ca = a.connectTo(b.publicKey().toHex().hexToBytes(), timeoutMs = 20_000)
        val cb = atB.await()
        assertArrayEquals(b.publicKey(), ca.remotePublicKey())
        assertArrayEquals(a.publicKey(), cb.remotePublicKey())
        assertArrayEquals(ca.handshakeHash(), cb.handshakeHash())
        exchangeOnSockets(ca, cb, "to b".toByteArray(), bytes(300_000, 1))
        // The finder joined b explicitly; b only saw an incoming peer.
        val infoA = ca.peerInfo()
        assertArrayEquals(b.publicKey(), infoA.publicKey)
        assertTrue(infoA.explicit)
        assertFalse(cb.peerInfo().explicit)
        assertArrayEquals(a.publicKey(), cb.peerInfo().publicKey)
        // Finding a connected peer again returns the same session at once.
        a.findPeer(b.publicKey(), 5_000u).use { again ->
            again.connection().use { assertArrayEquals(ca.handshakeHash(), it.handshakeHash()) }
        }
        a.leavePeer(b.publicKey())
        listOf(ca, cb).forEach { it.close() }
    }

    @Test
    fun `findPeer times out, cancels at once, and frees its handle`() = withSwarms(1) { (a) ->
        val nobody = goneKey()
        val timeout = assertThrows<SwarmplexException.Timeout> { a.connectTo(nobody, timeoutMs = 300) }
        assertEquals("timeout", timeout.kind)
        assertThrows<SwarmplexException.InvalidInput> { a.findPeer(ByteArray(7), null) }
        assertThrows<SwarmplexException.InvalidInput> { a.connectTo(a.publicKey()) } // yourself
        assertThrows<SwarmplexException.InvalidInput> { a.connectTo(nobody, timeoutMs = -1) }
        assertThrows<SwarmplexException.InvalidInput> { "0g".hexToBytes() }
        assertThrows<SwarmplexException.InvalidInput> { "abc".hexToBytes() }

        val handles = liveHandles()
        // cancel() ends a pending connection() with Closed("cancelled"), and later calls too.
        a.findPeer(nobody, null).use { search ->
            val pending = async(start = CoroutineStart.UNDISPATCHED) { runCatching { search.connection() } }
            val ms = millis { search.cancel(); pending.await() }
            val e = pending.await().exceptionOrNull()
            assertTrue(e is SwarmplexException.Closed && e.message!!.contains("cancelled"), "$e")
            assertTrue(ms < 2_000, "cancel took $ms ms")
            assertThrows<SwarmplexException.Closed> { search.connection() }
        }
        // Cancelling the coroutine cancels the search and frees the handle.
        val job = launch(start = CoroutineStart.UNDISPATCHED) { a.connectTo(nobody) }
        assertTrue(job.isActive)
        val ms = millis { job.cancelAndJoin() }
        assertTrue(ms < 2_000, "coroutine cancel took $ms ms")
        assertEquals(handles, liveHandles(), "native handles after cancelled searches")
        a.leavePeer(nobody)
    }

    @Test
    fun `shared streams meet whichever side asks first and carry data both ways`() = withSwarms(2) { (a, b) ->
        val (ca, cb) = connectByTopic(a, b, "kotlin-shared-streams")
        for ((name, first, second) in listOf(Triple("chat", ca, cb), Triple("files", cb, ca))) {
            // Both sides ask before either awaits (the follower's call needs the leader's).
            val x = async(start = CoroutineStart.UNDISPATCHED) { first.createSharedStream(name) }
            val y = async(start = CoroutineStart.UNDISPATCHED) { second.createSharedStream(name) }
            val (sx, sy) = Pair(x.await(), y.await())
            assertEquals(name, sx.name())
            assertEquals(name, sy.name())
            assertArrayEquals(second.remotePublicKey(), sy.remotePublicKey())
            exchange(sx, sy, "$name one way".toByteArray(), bytes(200_000, name.length))
            listOf(sx, sy).forEach { it.close() }
        }
        listOf(ca, cb).forEach { it.close() }
    }

    /** b's topic messages until [done] says stop (that one included). */
    private suspend fun Swarm.messagesUntil(done: (SwarmEvent.Message) -> Boolean): List<SwarmEvent.Message> =
        messageFlow().transformWhile { emit(it); !done(it) }.toList()

    @Test
    fun `topic messages reach only joined topics, both ways, and stop after leave`() = withSwarms(2) { (a, b) ->
        val (ca, cb) = connectByTopic(a, b, "kotlin-messages")
        b.joinMessages("chat")
        b.joinMessages("sync")
        ca.sendMessage("other", "not for you".toByteArray())
        ca.sendMessage("chat", "hello 1".toByteArray())
        val big = bytes(100_000, 7)
        ca.sendMessage("chat", big)
        ca.sendMessage("sync", "marker 1".toByteArray())
        val want = setOf("hello 1", "marker 1")
        val seen = mutableSetOf<String>()
        var gotBig = false
        val got = b.messagesUntil { m ->
            if (m.data.size == big.size) gotBig = true else seen.add(String(m.data))
            seen.containsAll(want) && gotBig
        }
        for (m in got) {
            assertArrayEquals(a.publicKey(), m.remote)
            assertTrue(m.topic == "chat" || m.topic == "sync", "delivered a message for ${m.topic}")
        }
        assertArrayEquals(big, got.first { it.data.size == big.size }.data)
        // The other way.
        a.joinMessages("chat")
        cb.sendMessage("chat", "reply from b".toByteArray())
        val reply = a.messageFlow().first()
        assertEquals("chat", reply.topic)
        assertEquals("reply from b", String(reply.data))
        assertArrayEquals(b.publicKey(), reply.remote)
        // After leaving, "chat" is dropped while "sync" still arrives.
        b.leaveMessages("chat")
        ca.sendMessage("chat", "after leave".toByteArray())
        ca.sendMessage("sync", "marker 2".toByteArray())
        val later = b.messagesUntil { String(it.data) == "marker 2" }
        assertTrue(later.none { it.topic == "chat" }, "chat delivered after leave: ${later.map { String(it.data) }}")
        assertThrows<SwarmplexException.InvalidInput> { ca.sendMessage("x".repeat(2000), ByteArray(1)) }
        listOf(ca, cb).forEach { it.close() }
    }

    @Test
    fun `peer info, status and topics describe what was joined`() = withSwarms(2) { (a, b) ->
        val name = "kotlin-status"
        val topic = topicFromName(name)
        val (ca, cb) = connectByTopic(a, b, name)
        // b found a as a client of the topic; a only saw an incoming peer.
        val infoB = cb.peerInfo()
        assertArrayEquals(a.publicKey(), infoB.publicKey)
        assertEquals(listOf(topic.toHex()), infoB.topics.map { it.toHex() })
        assertTrue(infoB.client)
        assertFalse(infoB.explicit)
        val infoA = ca.peerInfo()
        assertTrue(infoA.topics.isEmpty())
        assertFalse(infoA.client)

        assertEquals(JoinOptions(server = true, client = false), a.status(topic))
        assertEquals(JoinOptions(server = false, client = true), b.status(topic))
        assertNull(a.status(topicFromName("never joined")))
        val other = topicFromName("kotlin-status-2")
        a.join(other, JoinOptions()).close()
        val topics = a.topics().associate { it.topic.toHex() to Pair(it.server, it.client) }
        assertEquals(mapOf(topic.toHex() to Pair(true, false), other.toHex() to Pair(true, true)), topics)
        a.leave(other)
        assertNull(a.status(other))
        assertEquals(listOf(topic.toHex()), a.topics().map { it.topic.toHex() })
        assertThrows<SwarmplexException.InvalidInput> { a.status(ByteArray(3)) }
        listOf(ca, cb).forEach { it.close() }
    }

    @Test
    fun `a client that joins after the server left does not find it`() = withSwarms(3) { (server, first, second) ->
        val (cs, cf) = connectByTopic(server, first, "kotlin-left")
        val topic = topicFromName("kotlin-left")
        // leave returns once the announce is withdrawn from the DHT nodes that held it.
        server.leave(topic)
        second.join(topic, JoinOptions(server = false, client = true)).close()
        second.flush()
        assertEquals(0, second.connections().also { l -> l.forEach { it.close() } }.size, "the second client found a server that left")
        assertEquals(1, first.connections().also { l -> l.forEach { it.close() } }.size, "leave keeps existing connections")
        listOf(cs, cf).forEach { it.close() }
    }

    @Test
    fun `path and reachability on a local network`() = withSwarms(2) { (a, b) ->
        val (ca, cb) = connectByTopic(a, b, "kotlin-path")
        val path = ca.path()
        assertFalse(path.relayed)
        assertNull(path.relay)
        assertTrue(path.transport in listOf("quic", "tcp"), path.transport)
        assertTrue(path.remoteAddress.startsWith("/ip4/127.0.0.1/"), path.remoteAddress)
        // Bootstrap nodes on loopback: a local network, reachable as it is, no relay.
        val r = a.reachability()
        assertEquals("public", r.state)
        assertFalse(r.symmetric)
        assertTrue(r.relays.isEmpty())
        assertTrue(r.external.any { it.startsWith("/ip4/127.0.0.1/") }, r.external.toString())
        listOf(ca, cb).forEach { it.close() }
    }

    @Test
    fun `suspend closes connections and resume reconnects`() = withSwarms(2) { (a, b) ->
        val (ca, cb) = connectByTopic(a, b, "kotlin-suspend")
        val disconnected = async(start = CoroutineStart.UNDISPATCHED) {
            a.eventsOf<SwarmEvent.Disconnected>().first()
        }
        b.suspend()
        val reason = cb.closed()
        assertNotNull(reason)
        assertEquals("closed", reason!!.kind)
        assertTrue(cb.isClosed())
        assertArrayEquals(b.publicKey(), disconnected.await().remote)
        cb.socket().use { assertThrows<SwarmplexException.Closed> { it.write("x".toByteArray()) } }

        val again = async { b.connectionFlow().first() }
        val againA = async { a.connectionFlow().first() }
        b.resume()
        val (cb2, ca2) = Pair(again.await(), againA.await())
        assertFalse(cb2.handshakeHash().contentEquals(cb.handshakeHash()), "a new session")
        exchangeOnSockets(cb2, ca2, "back".toByteArray(), "welcome back".toByteArray())
        listOf(ca, cb, ca2, cb2).forEach { it.close() }
    }

    @Test
    fun `a firewall rejects and bans, a throwing one rejects, an allowing one admits`() = run {
        val client = Swarm.local(bootstrap)
        val asked = ConcurrentLinkedQueue<String>()
        val rejecting = Swarm(localOptions(bootstrap).copy(firewall = firewall { asked.add(it.toHex()); true }))
        val throwing = Swarm(localOptions(bootstrap).copy(firewall = firewall { throw IllegalStateException("firewall bug") }))
        val admitted = ConcurrentLinkedQueue<String>()
        val allowing = Swarm(localOptions(bootstrap).copy(firewall = firewall { admitted.add(it.toHex()); false }))
        try {
            for ((server, name) in listOf(rejecting to "kotlin-fw-reject", throwing to "kotlin-fw-throw")) {
                val topic = topicFromName(name)
                server.joinAndFlush(topic, server = true, client = false).close()
                val ban = async { server.eventsOf<SwarmEvent.Ban>().first() }
                client.join(topic, JoinOptions(server = false, client = true)).close()
                assertArrayEquals(client.publicKey(), ban.await().remote)
            }
            assertEquals(listOf(client.publicKey().toHex()), asked.toList(), "asked once, about the client")
            assertTrue(rejecting.connections().isEmpty())

            val (cs, cc) = connectByTopic(allowing, client, "kotlin-fw-allow")
            assertEquals(listOf(client.publicKey().toHex()), admitted.toList())
            exchangeOnSockets(cs, cc, "let in".toByteArray(), bytes(50_000, 3))
            listOf(cs, cc).forEach { it.close() }
        } finally {
            withContext(NonCancellable) {
                listOf(client, rejecting, throwing, allowing).forEach { it.shutdownAndClose() }
            }
        }
    }

    @Test
    fun `an announced stream is taken once, without waiting`() = withSwarms(2) { (a, b) ->
        val (ca, cb) = connectByTopic(a, b, "kotlin-parked")
        val announced = async(start = CoroutineStart.UNDISPATCHED) {
            b.eventsOf<SwarmEvent.IncomingStream>().first()
        }
        val out = ca.createStream("note")
        out.writeText("parked")
        out.end()
        assertEquals("note", announced.await().name)
        val got = cb.takeParkedStream("note", false)
        assertNotNull(got)
        assertEquals("parked", String(got!!.readToEnd()))
        // Taken once: a second take (e.g. a late handler of the same event) gets nothing.
        assertNull(cb.takeParkedStream("note", false))
        listOf(out, got, ca, cb).forEach { it.close() }
    }

    @Test
    fun `reset is an error for the remote, not an end`() = withSwarms(2) { (a, b) ->
        val (ca, cb) = connectByTopic(a, b, "kotlin-reset")
        val incoming = async { cb.receiveStream("r") }
        val out = ca.createStream("r")
        val inc = incoming.await()
        exchange(out, inc, "partial".toByteArray(), "answer".toByteArray())
        out.write("last words".toByteArray())
        out.reset()
        assertEquals("last words", String(inc.readExactly(10)))
        val e = assertThrows<SwarmplexException.Reset> { inc.readSome() }
        assertEquals("reset", e.kind)
        listOf(out, inc, ca, cb).forEach { it.close() }
    }

    @Test
    fun `cancelling a blocked read returns at once, loses nothing and frees its handles`() = withSwarms(2) { (a, b) ->
        val (ca, cb) = connectByTopic(a, b, "kotlin-cancel-read")
        val (sa, sb) = Pair(ca.socket(), cb.socket())
        val handles = liveHandles()
        // A coroutine blocked in a read, cancelled.
        val job = launch(start = CoroutineStart.UNDISPATCHED) { sa.readSome() }
        assertTrue(job.isActive, "the read is pending")
        val ms = millis { job.cancelAndJoin() }
        assertTrue(ms < 2_000, "cancel took $ms ms")
        // A collector of chunks, cancelled.
        val collector = launch(start = CoroutineStart.UNDISPATCHED) { sa.chunks().collect { } }
        collector.cancelAndJoin()
        // cancelReads() ends a pending read with Closed("cancelled").
        val pending = async(start = CoroutineStart.UNDISPATCHED) { runCatching { sa.read(16u) } }
        sa.cancelReads()
        val e = pending.await().exceptionOrNull()
        assertTrue(e is SwarmplexException.Closed && e.message!!.contains("cancelled"), "$e")
        assertEquals(handles, liveHandles(), "native handles after cancelled reads")
        // Nothing was lost: the stream still works both ways.
        exchange(sb, sa, "after the cancels".toByteArray(), "still here".toByteArray())

        // Connection waits: cancelWaits() ends receiveStream (error) and closed() (null).
        val waiting = async(start = CoroutineStart.UNDISPATCHED) { runCatching { ca.receiveStream("never") } }
        val closing = async(start = CoroutineStart.UNDISPATCHED) { ca.closed() }
        ca.cancelWaits()
        assertTrue(waiting.await().exceptionOrNull() is SwarmplexException.Closed)
        assertNull(closing.await())
        assertFalse(ca.isClosed())

        // cancelWrites() ends a write the remote does not read (it blocks on flow control).
        val incoming = async { cb.receiveStream("sink") }
        val sink = ca.createStream("sink")
        val sinkIn = incoming.await()
        val writing = async(start = CoroutineStart.UNDISPATCHED) { runCatching { sink.write(ByteArray(64 shl 20)) } }
        sinkIn.readExactly(1000) // the write is under way; now nobody reads
        sink.cancelWrites()
        val w = writing.await().exceptionOrNull()
        assertTrue(w is SwarmplexException.Closed && w.message!!.contains("cancelled"), "$w")
        assertThrows<SwarmplexException.Reset> { sink.write(ByteArray(1)) } // a cut write poisons the side
        listOf(sink, sinkIn, sa, sb, ca, cb).forEach { it.close() }
    }

    @Test
    fun `cancelling an event subscription returns at once and frees it`() = run {
        // No bootstrap, nothing joined: this swarm has no events, so every wait below blocks.
        val s = Swarm.local(emptyList())
        try {
            val handles = liveHandles()
            val job = launch(start = CoroutineStart.UNDISPATCHED) { s.eventFlow().collect { } }
            assertTrue(job.isActive, "the collector is waiting")
            val ms = millis { job.cancelAndJoin() }
            assertTrue(ms < 2_000, "cancel took $ms ms")
            assertEquals(handles, liveHandles(), "the flow freed its subscription")

            s.subscribe().use { sub ->
                val next = async(start = CoroutineStart.UNDISPATCHED) { sub.next() }
                sub.cancel()
                assertNull(next.await())
                assertTrue(sub.isCancelled())
                assertNull(sub.next(), "a cancelled subscription stays ended")
            }
            assertEquals(handles, liveHandles())
        } finally {
            withContext(NonCancellable) { s.shutdownAndClose() }
        }
    }

    @Test
    fun `seed and secretKey give libsodium's key pair, and peers find the swarm under it`() = withSwarms({
        val other = keyPairGenerate()
        listOf(
            Swarm(localOptions(bootstrap).copy(seed = ByteArray(32) { 4 })),
            Swarm(localOptions(bootstrap).copy(secretKey = other.secretKey)),
        )
    }) { (bySeed, bySecret) ->
        val seed = ByteArray(32) { 4 }
        val kp = keyPairFromSeed(seed)
        // libsodium's crypto_sign_seed_keypair vector, as in the core's tests.
        assertEquals("ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7c", kp.publicKey.toHex())
        assertArrayEquals(seed + kp.publicKey, kp.secretKey)
        assertArrayEquals(kp.publicKey, keyPairFromSecretKey(kp.secretKey).publicKey)
        val (g1, g2) = Pair(keyPairGenerate(), keyPairGenerate())
        assertEquals(64, g1.secretKey.size)
        assertFalse(g1.publicKey.contentEquals(g2.publicKey))
        assertThrows<SwarmplexException.InvalidInput> { keyPairFromSeed(ByteArray(31)) }
        assertThrows<SwarmplexException.InvalidInput> { keyPairFromSecretKey(ByteArray(63)) }
        assertThrows<SwarmplexException.InvalidInput> { keyPairFromSecretKey(seed + g1.publicKey) } // halves differ
        assertThrows<SwarmplexException.InvalidInput> { Swarm(localOptions(bootstrap).copy(seed = seed, secretKey = g1.secretKey)) }
        assertThrows<SwarmplexException.InvalidInput> { Swarm(localOptions(bootstrap).copy(seed = ByteArray(33))) }

        assertArrayEquals(kp.publicKey, bySeed.publicKey())
        assertArrayEquals(kp.secretKey, bySeed.keyPair().secretKey)
        assertArrayEquals(bySecret.keyPair().publicKey, bySecret.publicKey())
        assertArrayEquals(bySecret.publicKey(), bySecret.keyPair().secretKey.copyOfRange(32, 64))
        // The derived key is the identity peers see: the seeded swarm is found under it.
        bySeed.listen()
        bySeed.flush()
        val c = bySecret.connectTo(kp.publicKey, timeoutMs = 20_000)
        assertArrayEquals(kp.publicKey, c.remotePublicKey())
        bySecret.leavePeer(kp.publicKey)
        c.close()
    }

    @Test
    fun `maxPeers caps connections and flush still resolves`() = withSwarms({
        List(3) { Swarm.local(bootstrap) } + Swarm(localOptions(bootstrap).copy(maxPeers = 1u))
    }) { swarms ->
        val topic = topicFromName("kotlin-max-peers")
        val client = swarms.last()
        for (server in swarms.dropLast(1)) server.joinAndFlush(topic, server = true, client = false).close()
        val first = async(start = CoroutineStart.UNDISPATCHED) { client.connectionFlow().first() }
        client.join(topic, JoinOptions(server = false, client = true)).close()
        client.flush()
        first.await().close()
        val open = client.connections()
        assertEquals(1, open.size, "three servers announced, maxPeers is 1")
        open.forEach { it.close() }
    }

    @Test
    fun `refresh with options switches a client to server, and a new client finds it`() = withSwarms(2) { (a, b) ->
        val topic = topicFromName("kotlin-refresh")
        a.join(topic, JoinOptions(server = false, client = true)).use { d ->
            d.flushed()
            assertThrows<SwarmplexException.InvalidInput> { d.refresh(JoinOptions(server = false, client = false)) }
            assertEquals(JoinOptions(server = false, client = true), a.status(topic))
            d.refresh(JoinOptions(server = true, client = true))
            assertEquals(JoinOptions(server = true, client = true), a.status(topic))
            d.flushed() // the new round announced a
            // b's first lookup finds a: without the switch there would be no announce to find.
            val atA = async(start = CoroutineStart.UNDISPATCHED) { a.connectionFlow().first() }
            b.join(topic, JoinOptions(server = false, client = true)).close()
            b.flush()
            val found = b.connections()
            assertEquals(listOf(a.publicKey().toHex()), found.map { it.remotePublicKey().toHex() })
            found.forEach { it.close() }
            atA.await().close()
            // A plain refresh starts a round and keeps the mode.
            d.refresh()
            d.flushed()
            assertEquals(JoinOptions(server = true, client = true), a.status(topic))
        }
    }

    @Test
    fun `ban closes the connection, emits ban, and the peer stays out`() = withSwarms(2) { (a, b) ->
        val (ca, cb) = connectByTopic(a, b, "kotlin-ban")
        val gone = async(start = CoroutineStart.UNDISPATCHED) { b.eventsOf<SwarmEvent.Disconnected>().first() }
        assertThrows<SwarmplexException.InvalidInput> { a.ban(ByteArray(31)) }
        a.ban(b.publicKey())
        assertArrayEquals(b.publicKey(), a.eventsOf<SwarmEvent.Ban>().first().remote)
        assertEquals("firewalled", ca.closed()!!.kind)
        assertArrayEquals(a.publicKey(), gone.await().remote)
        // b still looks the topic up and finds a, which refuses it.
        b.flush()
        assertTrue(a.connections().isEmpty(), "a banned peer got back in")
        listOf(ca, cb).forEach { it.close() }
    }

    @Test
    fun `connecting goes up and down through update events`() = withSwarms(2) { (server, client) ->
        val topic = topicFromName("kotlin-updates")
        server.joinAndFlush(topic, server = true, client = false).close()
        assertEquals(0uL, client.connecting())
        client.join(topic, JoinOptions(server = false, client = true)).close()
        val updates = client.eventsOf<SwarmEvent.Update>().transformWhile { emit(it); it.connections != 1uL }.toList()
        val seen = updates.map { it.connecting }
        assertTrue(1uL in seen, "connecting reached 1: $seen")
        assertEquals(0uL, seen.last(), "$seen")
        assertEquals(0uL, client.connecting())
        client.connections().forEach { it.close() }
    }

    @Test
    fun `a connected peer found under a second topic is told by a topic event`() = withSwarms(2) { (server, client) ->
        val (t1, t2) = Pair(topicFromName("kotlin-topic-1"), topicFromName("kotlin-topic-2"))
        server.joinAndFlush(t1, server = true, client = false).close()
        server.joinAndFlush(t2, server = true, client = false).close()
        val first = async(start = CoroutineStart.UNDISPATCHED) { client.connectionFlow().first() }
        client.join(t1, JoinOptions(server = false, client = true)).close()
        val conn = first.await()
        assertEquals(listOf(t1.toHex()), conn.peerInfo().topics.map { it.toHex() })
        val told = async(start = CoroutineStart.UNDISPATCHED) { client.eventsOf<SwarmEvent.PeerTopic>().first() }
        client.join(t2, JoinOptions(server = false, client = true)).close()
        val event = told.await()
        assertArrayEquals(server.publicKey(), event.remote)
        assertArrayEquals(t2, event.topic)
        client.flush()
        assertEquals(setOf(t1.toHex(), t2.toHex()), conn.peerInfo().topics.map { it.toHex() }.toSet())
        assertEquals(1, client.connections().also { l -> l.forEach { it.close() } }.size, "one connection for both topics")
        conn.close()
    }
}
