package io.swarmplex

import io.swarmplex.ffi.Connection
import io.swarmplex.ffi.InternalException
import io.swarmplex.ffi.JoinOptions
import io.swarmplex.ffi.Swarm
import io.swarmplex.ffi.SwarmEvent
import io.swarmplex.ffi.SwarmplexException
import io.swarmplex.ffi.debugPanic
import io.swarmplex.ffi.debugPanicAsync
import io.swarmplex.ffi.debugPanicEngine
import io.swarmplex.ffi.liveHandles
import io.swarmplex.ffi.topicFromName
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.async
import kotlinx.coroutines.withContext
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.flow.takeWhile
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import java.io.File

/** Every test runs on a local testnet (127.0.0.1, mDNS off) inside scripts/netns-run. */
class SwarmplexTest : LeakCheckedTest() {
    /** Two swarms, each closed afterwards whatever happens. */
    private fun withPair(block: suspend kotlinx.coroutines.CoroutineScope.(Swarm, Swarm) -> Unit) = run {
        val a = Swarm.local(bootstrap)
        val b = Swarm.local(bootstrap)
        try {
            block(a, b)
        } finally {
            // Clean up even when the test timed out (the scope is cancelled then).
            withContext(NonCancellable) {
                a.shutdownAndClose()
                b.shutdownAndClose()
            }
        }
    }

    private suspend fun connectByTopic(a: Swarm, b: Swarm, name: String): Pair<Connection, Connection> = coroutineScope {
        val topic = topicFromName(name)
        val ca = async { a.connectionFlow().first() }
        val cb = async { b.connectionFlow().first() }
        a.joinAndFlush(topic, server = true, client = false).close()
        b.join(topic, JoinOptions(server = false, client = true)).close()
        Pair(ca.await(), cb.await())
    }

    @Test
    fun `two swarms connect by topic and exchange data both ways`() = withPair { a, b ->
        val (ca, cb) = connectByTopic(a, b, "kotlin-topic-exchange")
        assertArrayEquals(b.publicKey(), ca.remotePublicKey())
        assertArrayEquals(a.publicKey(), cb.remotePublicKey())
        assertArrayEquals(ca.handshakeHash(), cb.handshakeHash())
        assertTrue(ca.isInitiator() != cb.isInitiator())

        val sa = ca.socket()
        val sb = cb.socket()
        sb.writeText("hello from b")
        assertEquals("hello from b", String(sa.readExactly(12)))
        val big = ByteArray(1 shl 20) { (it % 251).toByte() }
        // Read while writing: flow control (yamux windows on TCP) blocks a writer nobody reads.
        val received = async { sb.readToEnd() }
        sa.write(big)
        sa.end()
        assertArrayEquals(big, received.await())
        sb.end()
        assertEquals(0, sa.read(16u).size, "an empty read is the end of the stream")
        listOf(sa, sb, ca, cb).forEach { it.close() }
    }

    @Test
    fun `client and server on both sides make exactly one connection each`() = withPair { a, b ->
        val topic = topicFromName("kotlin-dedup")
        val eventsA = async { a.eventFlow().collectConnectedFor(4_000) }
        val eventsB = async { b.eventFlow().collectConnectedFor(4_000) }
        a.joinAndFlush(topic).close()
        b.joinAndFlush(topic).close()
        val connsA = eventsA.await()
        val connsB = eventsB.await()
        assertEquals(1, connsA.size, "a saw ${connsA.size} connections")
        assertEquals(1, connsB.size, "b saw ${connsB.size} connections")
        assertEquals(1, a.connections().also { l -> l.forEach { it.close() } }.size)
        assertEquals(1, b.connections().also { l -> l.forEach { it.close() } }.size)
        assertArrayEquals(connsA[0].handshakeHash(), connsB[0].handshakeHash())
        (connsA + connsB).forEach { it.close() }
    }

    /** Connection events seen during [ms] milliseconds (collection stops at the deadline). */
    private suspend fun kotlinx.coroutines.flow.Flow<SwarmEvent>.collectConnectedFor(ms: Long): List<Connection> {
        val out = mutableListOf<Connection>()
        withTimeoutOrNull(ms) {
            collect { if (it is SwarmEvent.Connected) out.add(it.connection) }
        }
        return out
    }

    @Test
    fun `joinPeer connects to a peer by its public key`() = withPair { a, b ->
        b.listen()
        b.flush()
        // A collector cancelled while its nextEvent() is pending must not swallow a later event.
        assertEquals(null, withTimeoutOrNull(300) { a.connectionFlow().first() })
        val cb = async { b.connectionFlow().first() }
        val ca = async { a.connectionFlow().first() }
        a.joinPeer(b.publicKey())
        val connA = ca.await()
        val connB = cb.await()
        assertArrayEquals(b.publicKey(), connA.remotePublicKey())
        assertArrayEquals(a.publicKey(), connB.remotePublicKey())
        a.leavePeer(b.publicKey())
        connA.close(); connB.close()
    }

    @Test
    fun `named streams carry their own data`() = withPair { a, b ->
        val (ca, cb) = connectByTopic(a, b, "kotlin-named-streams")
        val incoming = async { cb.receiveStream("chat") }
        val out = ca.createStream("chat")
        val inc = incoming.await()
        assertEquals("chat", inc.name())
        out.writeText("ping")
        assertEquals("ping", String(inc.readExactly(4)))
        inc.writeText("pong")
        inc.end()
        assertEquals("pong", String(out.readToEnd()))
        out.end()
        assertEquals(0, inc.read(8u).size)
        // A second name is independent of the first.
        val files = async { ca.receiveStream("files") }
        val f = cb.createStream("files")
        f.write(ByteArray(1000) { 7 })
        f.end()
        val filesIn = files.await()
        assertArrayEquals(ByteArray(1000) { 7 }, filesIn.readToEnd())
        listOf(out, inc, f, filesIn, ca, cb).forEach { it.close() }
    }

    @Test
    fun `bad input raises the Kotlin exception`() = run {
        val s = Swarm.local(bootstrap)
        try {
            val e = assertThrows<SwarmplexException.InvalidInput> { s.join(ByteArray(31), JoinOptions()) }
            assertEquals("invalid_input", e.kind)
            assertTrue(e.message!!.contains("topic"), e.message)
            assertThrows<SwarmplexException.InvalidInput> { s.joinPeer(ByteArray(5)) }
            assertThrows<SwarmplexException.InvalidInput> { s.join(ByteArray(32), JoinOptions(server = false, client = false)) }
            assertThrows<SwarmplexException.InvalidInput> { Swarm.local(listOf("not a multiaddr")) }
        } finally {
            s.shutdownAndClose()
        }
        // A destroyed swarm fails with Closed, not a crash.
        val d = Swarm.local(bootstrap)
        d.shutdown()
        assertThrows<SwarmplexException.Closed> { d.flush() }
        assertEquals(null, d.nextEvent())
        d.close()
    }

    @Test
    fun `panics never cross the FFI`() = run {
        assertThrows<InternalException> { debugPanic("sync boom") }
        assertThrows<InternalException> { debugPanicAsync("async boom") }
        val e = assertThrows<SwarmplexException.Internal> { debugPanicEngine("engine boom") }
        assertEquals("internal", e.kind)
    }

    @Test
    fun `100 create and destroy cycles do not leak`() = run(120_000) {
        fun fds() = File("/proc/self/fd").list()!!.size
        fun threads() = File("/proc/self/task").list()!!.size
        repeat(5) { Swarm.local(bootstrap).shutdownAndClose() } // warm up the runtime and JNA
        System.gc()
        val handles0 = liveHandles()
        val fds0 = fds()
        val threads0 = threads()
        repeat(100) {
            val s = Swarm.local(bootstrap)
            s.join(topicFromName("kotlin-leak-$it"), JoinOptions()).close()
            s.shutdownAndClose()
        }
        // Engines finish closing their sockets just after shutdown returns.
        var tries = 0
        while ((fds() > fds0 + 4 || liveHandles() != handles0) && tries++ < 50) delay(100)
        assertEquals(handles0, liveHandles(), "native handles")
        assertTrue(fds() <= fds0 + 4, "fds ${fds()} vs $fds0")
        assertTrue(threads() <= threads0 + 4, "threads ${threads()} vs $threads0")
    }
}
