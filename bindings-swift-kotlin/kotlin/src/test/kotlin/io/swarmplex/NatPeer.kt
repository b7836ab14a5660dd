// One peer of NatTest, run by it in a child JVM inside its network namespace behind a NAT.
package io.swarmplex

import io.swarmplex.ffi.Connection
import io.swarmplex.ffi.JoinOptions
import io.swarmplex.ffi.Swarm
import io.swarmplex.ffi.SwarmEvent
import io.swarmplex.ffi.SwarmOptions
import io.swarmplex.ffi.topicFromName
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import java.security.MessageDigest
import java.util.concurrent.ConcurrentLinkedQueue

/** [n] pseudo-random bytes that differ with [seed] (what a NAT peer sends). */
fun natPattern(n: Int, seed: Int): ByteArray = ByteArray(n) { i -> (((i + seed).toLong() * 2654435761L) shr 13).toByte() }

/** Lowercase hex of the SHA-256 of [data]. */
fun sha256Hex(data: ByteArray): String = MessageDigest.getInstance("SHA-256").digest(data).toHex()

/**
 * Args: ROLE (`server`/`client`) BOOTSTRAP TOPIC N SEED. Joins TOPIC on the private network
 * "natlab" with BOOTSTRAP as its only configuration, sends N bytes of [natPattern] and its end,
 * reads the remote's bytes to the end, prints `key=value` lines (transport, remote address,
 * relay, handshake hash, SHA-256 of what it got, reachability and its events, relays, external
 * addresses) and `end`, then waits for a line on stdin before it shuts down (so neither side
 * closes while the other's bytes are in flight).
 */
fun main(args: Array<String>) = runBlocking {
    val (role, bootstrap, topic) = args
    val (n, seed) = Pair(args[3].toInt(), args[4].toInt())
    val swarm = Swarm(SwarmOptions(bootstrap = listOf(bootstrap), network = "natlab", mdns = false))
    val reachabilityEvents = ConcurrentLinkedQueue<String>()
    val private = CompletableDeferred<Unit>()
    val first = CompletableDeferred<Connection>()
    val events = launch {
        swarm.eventFlow().collect { e ->
            when {
                e is SwarmEvent.Reachability -> {
                    reachabilityEvents.add(e.state)
                    if (e.state == "private") private.complete(Unit)
                }
                e is SwarmEvent.Connected && !first.isCompleted -> first.complete(e.connection)
                else -> e.destroy()
            }
        }
    }
    swarm.join(topicFromName(topic), JoinOptions(server = role == "server", client = role == "client")).close()
    val conn = withTimeout(90_000) { first.await() }
    val socket = conn.socket()
    val sent = async {
        socket.write(natPattern(n, seed))
        socket.end()
    }
    val got = withTimeout(90_000) { socket.readToEnd() }
    sent.await()
    // A server behind a NAT may still be "unknown" (holding a relay) when the session comes; it
    // learns it is "private" from AutoNAT soon after: wait for that event.
    if (role == "server") withTimeout(60_000) { private.await() }
    val r = swarm.reachability()
    val path = conn.path()
    println("transport=${path.transport}")
    println("remote_address=${path.remoteAddress}")
    println("relay=${path.relay?.toHex() ?: ""}")
    println("handshake_hash=${conn.handshakeHash().toHex()}")
    println("got_sha256=${sha256Hex(got)}")
    println("reachability=${r.state}")
    println("reachability_events=${reachabilityEvents.joinToString(",")}")
    println("relays=${r.relays.size}")
    println("external=${r.external.joinToString(" ")}")
    println("end")
    System.out.flush()
    readLine()
    events.cancel()
    socket.close()
    conn.close()
    swarm.shutdownAndClose()
}
