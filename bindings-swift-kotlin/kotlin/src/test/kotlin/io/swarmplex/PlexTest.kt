package io.swarmplex

import io.swarmplex.ffi.JoinOptions
import io.swarmplex.ffi.Peer
import io.swarmplex.ffi.Peersockets
import io.swarmplex.ffi.Plex
import io.swarmplex.ffi.PlexEvent
import io.swarmplex.ffi.Stream
import io.swarmplex.ffi.Swarm
import io.swarmplex.ffi.SwarmplexException
import io.swarmplex.ffi.TopicHandle
import io.swarmplex.ffi.keyPairFromSeed
import io.swarmplex.ffi.keyPairGenerate
import io.swarmplex.ffi.localOptions
import io.swarmplex.ffi.topicFromName
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.CoroutineStart
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.async
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import kotlinx.coroutines.withTimeoutOrNull
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * p2plex (Plex, Peer) and peersockets (Peersockets, TopicHandle), mirroring core/tests/plex.rs
 * and core/tests/peersockets.rs: real sockets on a local testnet (127.0.0.1, inside
 * scripts/netns-run), bytes compared end to end, every wait bounded, every handle closed.
 */
class PlexTest : LeakCheckedTest() {
    private val server = JoinOptions(server = true, client = false)
    private val client = JoinOptions(server = false, client = true)

    /** Runs [block] on the plexes [make] builds, each shut down and closed afterwards whatever happens. */
    private fun withPlexes(vararg make: suspend () -> Plex, block: suspend CoroutineScope.(List<Plex>) -> Unit) = run {
        val plexes = mutableListOf<Plex>()
        try {
            make.forEach { plexes.add(it()) }
            block(plexes)
        } finally {
            withContext(NonCancellable) { plexes.forEach { it.shutdownAndClose() } }
        }
    }

    /** [n] plexes that announce their key, each announce done (so others find it at once). */
    private fun withPlexes(n: Int, block: suspend CoroutineScope.(List<Plex>) -> Unit) =
        withPlexes(*Array<suspend () -> Plex>(n) { { listed() } }, block = block)

    private suspend fun listed(seed: ByteArray? = null): Plex {
        val plex = Plex.create(localOptions(bootstrap).copy(seed = seed))
        plex.swarm().use { it.flush() }
        return plex
    }

    /** A plex that does not announce its key (p2plex's `listenSelf: false`). */
    private fun unlisted(): Plex = Swarm.local(bootstrap).use { Plex.over(it, false) }

    /** The next event of type [T] that [pick] accepts; the events before it are consumed. */
    private suspend inline fun <reified T : PlexEvent> Plex.next(crossinline pick: (T) -> Boolean = { true }): T =
        eventFlow().first { event ->
            (event is T && pick(event)).also { if (!it) event.destroy() }
        } as T

    private suspend fun Plex.nextPeer(): Peer = peerFlow().first()

    /** The ids of the open peers (their handles freed). */
    private fun Plex.peerIds(): List<ULong> = peers().map { p -> p.use { it.id() } }

    /** a finds b by key: (a's Peer for b, b's Peer for a). */
    private suspend fun connect(a: Plex, b: Plex): Pair<Peer, Peer> = coroutineScope {
        val atB = async { b.nextPeer() }
        val ab = a.findByPublicKey(b.publicKey())
        val ba = atB.await()
        assertArrayEquals(b.publicKey(), ab.publicKey())
        assertArrayEquals(a.publicKey(), ba.publicKey())
        Pair(ab, ba)
    }

    /** Each end writes its bytes and the end while reading the other's to the end; both arrive intact. */
    private suspend fun exchangeToEnd(x: Stream, y: Stream, dx: ByteArray, dy: ByteArray) = coroutineScope {
        val atY = async { y.readToEnd() }
        val atX = async { x.readToEnd() }
        launch { x.write(dx); x.end() }
        launch { y.write(dy); y.end() }
        assertArrayEquals(dx, atY.await(), "bytes ${x.name()} carried one way")
        assertArrayEquals(dy, atX.await(), "bytes ${x.name()} carried the other way")
    }

    /** Both ends of a shared stream [id] of [x] and [y], each asked before either is awaited. */
    private suspend fun shared(x: Peer, y: Peer, id: String): Pair<Stream, Stream> = coroutineScope {
        val sx = async { x.createSharedStream(id) }
        val sy = async { y.createSharedStream(id) }
        Pair(sx.await(), sy.await())
    }

    private fun text(s: String) = s.toByteArray()

    @Test
    fun `sixteen named streams both ways keep their bytes, then the connection closes by itself`() = withPlexes(2) { (a, b) ->
        val (ab, ba) = connect(a, b)
        coroutineScope {
            for (i in 0 until 16) {
                val (opener, taker) = if (i % 2 == 0) ab to ba else ba to ab
                launch {
                    val x = async { opener.createStream("s$i") }
                    val y = async { taker.receiveStream("s$i") }
                    x.await().use { sx ->
                        y.await().use { sy -> exchangeToEnd(sx, sy, bytes(100_000 + i, i), bytes(50_000, i + 100)) }
                    }
                }
            }
        }
        // Every stream finished on both sides: the connection closes by itself.
        ab.disconnected()
        ba.disconnected()
        assertFalse(ab.isConnected())
        assertEquals(emptyList<ULong>(), a.peerIds())
        assertEquals(emptyList<ULong>(), b.peerIds())
        a.next<PlexEvent.Disconnected> { it.peer.id() == ab.id() }.destroy()
        ab.close()
        ba.close()
    }

    @Test
    fun `an unclaimed stream is noticed, and a stream on a closed peer reopens by key`() = withPlexes(2) { (a, b) ->
        val (ab, ba) = connect(a, b)
        ab.createStream("x").use { s ->
            s.write(text("unasked"))
            s.end()
            // Nobody on b asked for "x": it is noticed, and taken from the notice once.
            val notice = b.next<PlexEvent.IncomingStream>()
            assertEquals(ba.id(), notice.peer.id())
            assertEquals("x", notice.id)
            assertFalse(notice.shared)
            notice.destroy()
            ba.takeStream("x", false)!!.use { r ->
                assertNull(ba.takeStream("x", false), "taken once")
                assertArrayEquals(text("unasked"), r.readToEnd())
                r.write(text("ok"))
                r.end()
            }
            assertArrayEquals(text("ok"), s.readToEnd())
        }
        ab.disconnected()
        ba.disconnected()

        // A stream opened on the closed Peer reopens on a new connection to the same key.
        val reopened = async { ab.createStream("again") }
        b.nextPeer().use { bNew ->
            assertNotEquals(ba.id(), bNew.id())
            assertTrue(bNew.isConnected())
            reopened.await().use { s2 ->
                bNew.receiveStream("again").use { r2 -> exchangeToEnd(s2, r2, text("second"), text("reply")) }
            }
        }
        // (It may have closed by itself already: both streams finished.)
        a.peer(b.publicKey())!!.use { aNew -> assertTrue(aNew.id() > ab.id()) }
        listOf(ab, ba).forEach { it.close() }
    }

    @Test
    fun `a receive claims a stream that came first, and nextStream skips it`() = withPlexes(2) { (a, b) ->
        val (ab, ba) = connect(a, b)
        val s1 = ab.createStream("dup")
        val s2 = ab.createStream("dup")
        for ((s, d) in listOf(s1 to "one", s2 to "two")) {
            s.write(text(d))
            s.end()
        }
        repeat(2) { b.next<PlexEvent.IncomingStream>().destroy() }
        // A receive now claims the first; nextStream skips the notice whose stream was taken.
        ba.receiveStream("dup").use { first -> assertArrayEquals(text("one"), first.readToEnd()) }
        val second = ba.streamFlow().first()
        assertEquals("dup", second.id)
        second.stream.use { assertArrayEquals(text("two"), it.readToEnd()) }
        assertNull(ba.takeStream("dup", false))
        listOf(s1, s2, ab, ba).forEach { it.close() }
    }

    @Test
    fun `shared streams meet, and a reset stream counts as finished`() = withPlexes(2) { (a, b) ->
        val (ab, ba) = connect(a, b)
        val (x, y) = shared(ab, ba, "chat")
        assertEquals("chat", x.name())
        x.use { y.use { exchangeToEnd(x, y, text("from a"), text("from b")) } }
        ab.disconnected()
        ba.disconnected()

        // A reset stream is finished at once; the remote's failed read finishes its side.
        val (ab2, ba2) = connect(a, b)
        coroutineScope {
            val incoming = async { ba2.receiveStream("doomed") }
            ab2.createStream("doomed").use { s ->
                incoming.await().use { r ->
                    s.write(text("partial"))
                    assertArrayEquals(text("partial"), r.readExactly(7))
                    s.reset()
                    assertThrows<SwarmplexException.Reset> { r.readSome(16) }
                }
            }
        }
        ab2.disconnected()
        ba2.disconnected()
        listOf(ab, ba, ab2, ba2).forEach { it.close() }
    }

    @Test
    fun `findByPublicKey times out, cancels, refuses bad input, and shutdown fails pending finds`() = withPlexes(2) { (a, b) ->
        val nobody = keyPairGenerate().publicKey
        assertThrows<SwarmplexException.Timeout> { a.findByPublicKey(nobody, 300u) }
        assertThrows<SwarmplexException.InvalidInput> { a.findByPublicKey(a.publicKey()) }
        assertThrows<SwarmplexException.InvalidInput> { a.findByPublicKey(ByteArray(7)) }
        // A timeout on a topic search leaves the topic again (it was not joined before).
        val t = topicFromName("plex-nobody-here")
        assertThrows<SwarmplexException.Timeout> { a.findByTopicAndPublicKey(t, nobody, client, 200u) }
        a.swarm().use { s ->
            while (s.status(t) != null) yield()
        }
        // cancelFinds() ends a pending find at once; so does cancelling the coroutine.
        val pending = async(start = CoroutineStart.UNDISPATCHED) { runCatching { a.findByPublicKey(nobody) } }
        a.cancelFinds()
        val e = pending.await().exceptionOrNull()
        assertTrue(e is SwarmplexException.Closed && e.message!!.contains("cancelled"), "$e")
        launch(start = CoroutineStart.UNDISPATCHED) { a.findByPublicKey(nobody) }.cancelAndJoin()
        // The plex lives on and finds a peer that listens.
        a.findByPublicKey(b.publicKey(), 20_000u).use { peer ->
            assertTrue(peer.isConnected())
            assertEquals(listOf(peer.id()), a.peerIds())
        }
        // Shutdown: a pending find fails with Closed, and so do later calls; the events end.
        val doomed = async(start = CoroutineStart.UNDISPATCHED) { runCatching { a.findByPublicKey(nobody) } }
        a.shutdown()
        assertTrue(doomed.await().exceptionOrNull() is SwarmplexException.Closed)
        assertThrows<SwarmplexException.Closed> { a.join(t, client) }
        assertTrue(a.isDestroyed())
        while (true) (a.nextEvent() ?: break).destroy()
    }

    @Test
    fun `findByTopicAndPublicKey gives one connection whatever both sides use`() =
        withPlexes({ unlisted() }, { unlisted() }) { (a, b) ->
            val t = topicFromName("plex-find-by-topic")
            val both = JoinOptions(server = true, client = true)
            val atA = async { a.findByTopicAndPublicKey(t, b.publicKey(), both, 20_000u) }
            val atB = async { b.findByTopicAndPublicKey(t, a.publicKey(), both, 20_000u) }
            val (pa, pb) = Pair(atA.await(), atB.await())
            assertArrayEquals(b.publicKey(), pa.publicKey())
            assertArrayEquals(a.publicKey(), pb.publicKey())
            assertTrue((pa.topics() + pb.topics()).any { it.contentEquals(t) }, "found under the topic")
            assertEquals(listOf(pa.id()), a.peerIds())
            assertEquals(listOf(pb.id()), b.peerIds())
            // Already connected: the same Peer at once.
            b.findByTopicAndPublicKey(t, a.publicKey(), client).use { assertEquals(pb.id(), it.id()) }
            val (x, y) = shared(pa, pb, "s")
            x.use { y.use { exchangeToEnd(x, y, text("A"), text("B")) } }
            listOf(pa, pb).forEach { it.close() }
        }

    @Test
    fun `join, leave, disconnect, ban, and the identity of a seed`() {
        val seed = ByteArray(32) { 7 }
        val kp = keyPairFromSeed(seed)
        withPlexes({ listed() }, { listed(seed) }) { (a, b) ->
            assertArrayEquals(kp.publicKey, b.publicKey())
            assertArrayEquals(kp.secretKey, b.keyPair().secretKey)
            val t = topicFromName("plex-join")
            b.join(t, server)
            a.join(t, client)
            val ab = a.nextPeer()
            val ba = b.nextPeer()
            assertArrayEquals(b.publicKey(), ab.publicKey())
            assertFalse(ab.incoming())
            assertTrue(ab.topics().any { it.contentEquals(t) })
            assertTrue(ba.incoming())
            a.leave(t)
            ab.disconnect()
            assertFalse(ab.isConnected())
            assertEquals(emptyList<ULong>(), a.peerIds())
            ba.disconnected()

            // ban() closes the connection; both sides see it, and the peer is not found again.
            val ab2 = a.findByPublicKey(b.publicKey())
            val ba2 = b.nextPeer()
            assertNotEquals(ab.id(), ab2.id())
            assertNotEquals(ba.id(), ba2.id())
            ab2.ban()
            ab2.disconnected()
            ba2.disconnected()
            val e = assertThrows<SwarmplexException> { a.findByPublicKey(b.publicKey(), 500u) }
            assertTrue(e.kind == "timeout" || e.kind == "firewalled", "$e")
            listOf(ab, ba, ab2, ba2).forEach { it.close() }
        }
    }

    // ---- peersockets

    private suspend fun TopicHandle.next(): Pair<List<Byte>, String> =
        nextMessage()!!.let { Pair(it.remote.toList(), String(it.data)) }

    @Test
    fun `peersockets send, broadcast, close, leave, and a peer that did not join gets nothing`() =
        withSwarms({ List(3) { Swarm.local(bootstrap) } }) { (a, b, c) ->
            // a is the server of a topic; b and c connect to it.
            a.joinAndFlush(topicFromName("ps"), server = true, client = false).close()
            val atA = async { a.connectionFlow().take(2).toList() }
            for (s in listOf(b, c)) s.join(topicFromName("ps"), client).close()
            atA.await().forEach { it.close() }
            val (pa, pb, pc) = listOf(a, b, c).map { Peersockets(it) }
            val roomA = pa.join("room")
            val (roomB1, roomB2) = Pair(pb.join("room"), pb.join("room"))
            val otherC = pc.join("other")
            val keyA = a.publicKey().toList()

            // send: both of b's handles get it, with a's key.
            roomA.send(b.publicKey(), text("hello b"))
            for (h in listOf(roomB1, roomB2)) assertEquals(Pair(keyA, "hello b"), h.next())
            // broadcast reaches every connected peer; only b joined "room".
            assertEquals(2uL, roomA.broadcast(text("to all")))
            for (h in listOf(roomB1, roomB2)) assertEquals(Pair(keyA, "to all"), h.next())
            assertNull(withTimeoutOrNull(300) { otherC.nextMessage() }, "c did not join room")
            // Replies go the other way.
            roomB1.send(a.publicKey(), text("hi a"))
            val reply = roomA.messageFlow().first()
            assertEquals(Pair(b.publicKey().toList(), "hi a"), Pair(reply.remote.toList(), String(reply.data)))

            // A closed handle gets nothing more and refuses to send; the topic stays joined for b2.
            roomB1.shutdown()
            assertTrue(roomB1.isClosed())
            assertNull(roomB1.nextMessage())
            assertThrows<SwarmplexException.Closed> { roomB1.send(a.publicKey(), text("x")) }
            roomA.send(b.publicKey(), text("after close"))
            assertEquals("after close", roomB2.next().second)

            // leave closes every handle of the topic and stops delivery.
            assertEquals(listOf(roomB2.id()), pb.leave("room"))
            assertTrue(roomB2.isClosed())
            assertNull(roomB2.nextMessage())
            assertEquals(emptyList<String>(), pb.topics())
            roomA.send(b.publicKey(), text("after leave"))
            val delivered = mutableListOf<String>()
            withTimeoutOrNull(300) { b.messageFlow().collect { delivered.add(String(it.data)) } }
            assertFalse("after leave" in delivered, "b's swarm delivered a message of a topic it left: $delivered")
            pb.join("room").use { again ->
                roomA.send(b.publicKey(), text("rejoined"))
                while (again.next().second != "rejoined") { /* a late "after leave" may come first */ }
            }

            // Bad input and peers we are not connected to fail with typed errors.
            assertThrows<SwarmplexException.InvalidInput> { pa.join("") }
            assertThrows<SwarmplexException.InvalidInput> { pa.join("x".repeat(1024 - 12 + 1)) }
            pa.join("x".repeat(1024 - 12)).close()
            assertThrows<SwarmplexException.Closed> { roomA.send(keyPairGenerate().publicKey, text("?")) }
            a.shutdown()
            assertThrows<SwarmplexException.Closed> { pa.join("late") }
            listOf(roomA, roomB1, roomB2, otherC).forEach { it.close() }
            listOf(pa, pb, pc).forEach { it.close() }
        }
}
