// Hand-written Kotlin idioms over the uniffi-generated bindings (package io.swarmplex.ffi).
package io.swarmplex

import io.swarmplex.ffi.Connection
import io.swarmplex.ffi.Discovery
import io.swarmplex.ffi.JoinOptions
import io.swarmplex.ffi.Stream
import io.swarmplex.ffi.Swarm
import io.swarmplex.ffi.SwarmEvent
import io.swarmplex.ffi.SwarmplexException
import io.swarmplex.ffi.Testnet
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.flow.map

/**
 * Every event of this swarm, pulled with [Swarm.nextEvent]; completes when the swarm is shut down.
 * Cold and single-consumer: the swarm has one event queue, so collect one flow at a time.
 * Cancelling the collector cancels the pending native wait without losing an event.
 */
fun Swarm.eventFlow(): Flow<SwarmEvent> = flow {
    while (true) {
        val event = nextEvent() ?: break
        emit(event)
    }
}

/** The new connections of this swarm (one per remote key); other events are skipped. */
fun Swarm.connectionFlow(): Flow<Connection> =
    eventFlow().filterIsInstance<SwarmEvent.Connected>().map { it.connection }

/** Joins [topic] and waits until the first discovery round is done. */
suspend fun Swarm.joinAndFlush(topic: ByteArray, server: Boolean = true, client: Boolean = true): Discovery {
    val discovery = join(topic, JoinOptions(server = server, client = client))
    discovery.flushed()
    return discovery
}

/** Shuts the swarm down (its engine stops, remotes see the close) and frees the native handle. */
suspend fun Swarm.shutdownAndClose() {
    try {
        shutdown()
    } finally {
        close()
    }
}

/** Stops the testnet and frees the native handle. */
suspend fun Testnet.shutdownAndClose() {
    try {
        shutdown()
    } finally {
        close()
    }
}

/** Writes a UTF-8 string. */
suspend fun Stream.writeText(text: String) = write(text.toByteArray(Charsets.UTF_8))

/** Reads until the remote ends the stream. */
suspend fun Stream.readToEnd(): ByteArray {
    val out = java.io.ByteArrayOutputStream()
    while (true) {
        val chunk = read(65536u)
        if (chunk.isEmpty()) return out.toByteArray()
        out.write(chunk)
    }
}

/** Reads exactly [n] bytes (fails with `Closed` if the stream ends first). */
suspend fun Stream.readExactly(n: Int): ByteArray {
    val out = java.io.ByteArrayOutputStream(n)
    while (out.size() < n) {
        val chunk = read((n - out.size()).toUInt())
        if (chunk.isEmpty()) throw SwarmplexException.Closed("stream ended after ${out.size()} of $n bytes")
        out.write(chunk)
    }
    return out.toByteArray()
}

/** The stable error kind name shared by every binding (`"invalid_input"`, `"closed"`, …). */
val SwarmplexException.kind: String
    get() = when (this) {
        is SwarmplexException.InvalidInput -> "invalid_input"
        is SwarmplexException.Connect -> "connect"
        is SwarmplexException.Closed -> "closed"
        is SwarmplexException.Timeout -> "timeout"
        is SwarmplexException.Firewalled -> "firewalled"
        is SwarmplexException.Duplicate -> "duplicate"
        is SwarmplexException.Reset -> "reset"
        is SwarmplexException.Internal -> "internal"
    }

/** Lowercase hex of a key or topic. */
fun ByteArray.toHex(): String = joinToString("") { "%02x".format(it) }
