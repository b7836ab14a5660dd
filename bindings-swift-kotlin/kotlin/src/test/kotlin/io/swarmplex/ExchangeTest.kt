package io.swarmplex

import io.swarmplex.ffi.Connection
import io.swarmplex.ffi.Swarm
import io.swarmplex.ffi.SwarmEvent
import io.swarmplex.ffi.SwarmOptions
import io.swarmplex.ffi.SwarmplexException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.async
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.mapNotNull
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/**
 * Peer exchange (`SwarmOptions.exchange`): nodes meet by address (`connect`, `listenOn`) and
 * ask each other for peers (`getNewPeer`), reached through the introducer's relay or directly.
 * These nodes use no DHT (the class's testnet stays unused); everything is on 127.0.0.1 inside
 * scripts/netns-run.
 */
class ExchangeTest : LeakCheckedTest() {
    /** Peer-exchange nodes, one per network id, each shut down and closed afterwards. */
    private fun withNodes(vararg networks: String, block: suspend CoroutineScope.(List<Swarm>) -> Unit) =
        withSwarms({ networks.map { Swarm(SwarmOptions(exchange = it)) } }, block)

    /** The next connection of this swarm to [key]; the other connection events are freed. */
    private suspend fun Swarm.connectionFrom(key: ByteArray): Connection = eventsOf<SwarmEvent.Connected>()
        .mapNotNull { e ->
            if (e.connection.remotePublicKey().contentEquals(key)) {
                e.connection
            } else {
                e.destroy()
                null
            }
        }
        .first()

    @Test
    fun `A reaches C through B's relay when C accepts nothing`() = withNodes("kotlin-three", "kotlin-three", "kotlin-three") { (a, b, c) ->
        val tcp = b.listenOn("/ip4/127.0.0.1/tcp/0")
        val quic = b.listenOn("/ip4/127.0.0.1/udp/0/quic-v1")
        assertTrue(tcp.matches(Regex("/ip4/127\\.0\\.0\\.1/tcp/[1-9][0-9]*")), tcp)
        assertTrue(quic.endsWith("/quic-v1"), quic)
        val ab = a.connect(tcp)
        assertArrayEquals(b.publicKey(), ab.remotePublicKey())
        assertEquals("tcp", ab.path().transport)
        val cb = c.connect(quic)
        assertEquals("quic", cb.path().transport)

        // C listens on nothing (like a peer behind a NAT): B's relay is the only way in.
        val ac = a.getNewPeer(null)
        assertArrayEquals(c.publicKey(), ac.remotePublicKey(), "B offered the only other peer")
        val path = ac.path()
        assertEquals("relay", path.transport, path.remoteAddress)
        assertTrue(path.relayed)
        assertArrayEquals(b.publicKey(), path.relay)
        val ca = c.connectionFrom(a.publicKey())
        assertEquals("relay", ca.path().transport)
        assertArrayEquals(ac.handshakeHash(), ca.handshakeHash())
        exchangeOnSockets(ac, ca, bytes(256 * 1024, 1), bytes(200_000, 2))

        // B knows nobody A is not connected to already.
        val e = assertThrows<SwarmplexException.Connect> { a.getNewPeer(b.publicKey()) }
        assertEquals("connect", e.kind)
        listOf(ab, cb, ac, ca).forEach { it.close() }
    }

    @Test
    fun `an introduced peer that accepts is reached directly`() = withNodes("kotlin-direct", "kotlin-direct", "kotlin-direct") { (a, b, c) ->
        val bTcp = b.listenOn("/ip4/127.0.0.1/tcp/0")
        a.listenOn("/ip4/127.0.0.1/tcp/0")
        c.listenOn("/ip4/127.0.0.1/udp/0/quic-v1")
        val ab = a.connect(bTcp)
        val cb = c.connect(bTcp)
        val ac = a.getNewPeer(b.publicKey())
        assertArrayEquals(c.publicKey(), ac.remotePublicKey())
        assertNotEquals("relay", ac.path().transport, ac.path().remoteAddress)
        assertFalse(ac.path().relayed)
        val ca = c.connectionFrom(a.publicKey())
        exchangeOnSockets(ac, ca, bytes(2 shl 20, 3), bytes(1 shl 20, 4))
        listOf(ab, cb, ac, ca).forEach { it.close() }
    }

    @Test
    fun `websocket carries a peer, and stopListening refuses new peers but keeps connections`() =
        withNodes("kotlin-ws", "kotlin-ws", "kotlin-ws") { (a, b, c) ->
            val ws = b.listenOn("/ip4/127.0.0.1/tcp/0/ws")
            assertTrue(ws.endsWith("/ws"), ws)
            val ab = a.connect(ws)
            assertEquals("websocket", ab.path().transport, ab.path().remoteAddress)
            val ba = b.connectionFrom(a.publicKey())
            assertEquals("websocket", ba.path().transport)
            exchangeOnSockets(ab, ba, bytes(1 shl 20, 5), "over websocket".toByteArray())

            b.stopListening(ws)
            assertThrows<SwarmplexException.Connect> { c.connect(ws) }
            // The connection made before stays up.
            assertFalse(ab.isClosed())
            exchangeOnSockets(ab, ba, bytes(64 * 1024, 6), "still here".toByteArray())
            assertThrows<SwarmplexException.InvalidInput> { b.stopListening(ws) } // twice
            listOf(ab, ba).forEach { it.close() }
        }

    @Test
    fun `relaying is bounded - a cut circuit fails loudly and ends with relay_limit`() =
        withNodes("kotlin-bounded", "kotlin-bounded", "kotlin-bounded") { (a, b, c) ->
            val bTcp = b.listenOn("/ip4/127.0.0.1/tcp/0")
            val ab = a.connect(bTcp)
            val cb = c.connect(bTcp)
            val ac = a.getNewPeer(null)
            assertEquals("relay", ac.path().transport)
            val ca = c.connectionFrom(a.publicKey())
            // 4 MiB cannot cross a relay that carries 1 MiB per circuit (the default bound): the
            // reader must see an error, never a clean end.
            val (w, r) = Pair(ac.socket(), ca.socket())
            val writer = async {
                runCatching { repeat(64) { w.write(ByteArray(64 * 1024) { 7 }) } }.exceptionOrNull()
            }
            var got = 0
            val outcome = runCatching {
                while (true) {
                    val chunk = r.readSome()
                    if (chunk.isEmpty()) break
                    got += chunk.size
                }
            }
            assertTrue(outcome.isFailure, "read $got bytes and then a clean end: bytes were lost silently")
            assertTrue(outcome.exceptionOrNull() is SwarmplexException, "${outcome.exceptionOrNull()}")
            assertTrue(got < 4 shl 20, "$got bytes crossed")
            assertTrue(writer.await() is SwarmplexException, "the writer was not told")
            // The reader's side, whose inbound half the relay cut mid-frame, learns why. (The
            // writer's side may instead see its control stream end cleanly, which the core reads
            // as the remote's goodbye: "closed".)
            val cut = ca.closed()!!
            assertEquals("relay_limit", cut.kind, cut.message)
            assertTrue(ac.closed()!!.kind in setOf("relay_limit", "closed"))
            listOf(w, r, ab, cb, ac, ca).forEach { it.close() }
        }

    @Test
    fun `nodes only peer within one network, and bad asks fail fast with typed errors`() =
        withNodes("kotlin-net-one", "kotlin-net-two") { (one, two) ->
            val addr = one.listenOn("/ip4/127.0.0.1/tcp/0")
            val e = assertThrows<SwarmplexException.Connect> { two.connect(addr) }
            assertEquals("connect", e.kind)
            assertTrue(one.connections().isEmpty())
            assertThrows<SwarmplexException.Connect> { two.getNewPeer(null) } // no peers to ask
            assertThrows<SwarmplexException.Connect> { two.connect("/ip4/127.0.0.1/tcp/1") } // nobody there
            assertThrows<SwarmplexException.InvalidInput> { two.connect("not a multiaddr") }
            assertThrows<SwarmplexException.InvalidInput> { two.listenOn("/ip4/127.0.0.1/udp/0") } // no transport
            assertThrows<SwarmplexException.InvalidInput> { two.stopListening("/ip4/127.0.0.1/tcp/9") } // not listening
            assertThrows<SwarmplexException.InvalidInput> { two.getNewPeer(ByteArray(31)) }
            // An exchange node sets its own bootstrap, network, listeners and mDNS.
            assertThrows<SwarmplexException.InvalidInput> { Swarm(SwarmOptions(exchange = "x", bootstrap = listOf())) }
            assertThrows<SwarmplexException.InvalidInput> { Swarm(SwarmOptions(exchange = "x", mdns = true)) }
        }
}
