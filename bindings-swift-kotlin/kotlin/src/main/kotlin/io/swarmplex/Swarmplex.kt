// Hand-written Kotlin idioms over the uniffi-generated bindings (package io.swarmplex.ffi).
//
// Cancellation: a cancelled coroutine frees its pending uniffi call (the Rust future is dropped,
// the engine task aborted). On top of that, the helpers here map coroutine and Flow cancellation
// onto the native handles' own cancel calls (EventSubscription.cancel, PeerSearch.cancel,
// Stream.cancelReads), and close every handle they create, so nothing stays alive natively.
package io.swarmplex

import io.swarmplex.ffi.Connection
import io.swarmplex.ffi.Discovery
import io.swarmplex.ffi.Disposable
import io.swarmplex.ffi.Firewall
import io.swarmplex.ffi.JoinOptions
import io.swarmplex.ffi.Peer
import io.swarmplex.ffi.PeerSearch
import io.swarmplex.ffi.PeerStream
import io.swarmplex.ffi.Plex
import io.swarmplex.ffi.PlexEvent
import io.swarmplex.ffi.Stream
import io.swarmplex.ffi.Swarm
import io.swarmplex.ffi.SwarmEvent
import io.swarmplex.ffi.SwarmplexException
import io.swarmplex.ffi.Testnet
import io.swarmplex.ffi.TopicHandle
import io.swarmplex.ffi.TopicMessage
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.emitAll
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.mapNotNull

/** Runs [block]; if the coroutine is cancelled meanwhile, calls [cancel] (the native cancel) too. */
private suspend inline fun <T> cancellingWith(cancel: () -> Unit, block: () -> T): T =
    try {
        block()
    } catch (e: CancellationException) {
        cancel()
        throw e
    }

/**
 * Every event of this swarm, pulled through an [io.swarmplex.ffi.EventSubscription];
 * completes when the swarm is shut down. Cold and single-consumer: the swarm has one event queue,
 * so collect one flow at a time. Cancelling the collector (or `first()`, `take(n)`, …) cancels the
 * subscription and frees it; an event not yet emitted stays in the queue for the next collector.
 */
fun Swarm.eventFlow(): Flow<SwarmEvent> = flow {
    val subscription = subscribe()
    emitAll(pulled({ subscription.next() }, subscription::cancel) { subscription.cancel(); subscription.close() })
}

/**
 * What [next] returns until it returns null. Cancelling the collector during [next] also calls
 * [cancel] (the native cancel of the pending call); [finish] runs when the flow ends, however.
 */
private fun <T> pulled(next: suspend () -> T?, cancel: () -> Unit, finish: () -> Unit = {}): Flow<T> = flow {
    try {
        while (true) {
            emit(cancellingWith(cancel) { next() } ?: break)
        }
    } finally {
        finish()
    }
}

/** The items of type [T]; the others are freed (their native handles) and skipped. */
inline fun <E : Disposable, reified T : E> Flow<E>.keepOnly(): Flow<T> = mapNotNull { item ->
    if (item is T) {
        item
    } else {
        item.destroy()
        null
    }
}

/**
 * The events of type [T] (e.g. `eventsOf<SwarmEvent.Ban>()`); the others are skipped and freed
 * (a skipped `Connected` closes its connection handle; the connection itself stays open).
 */
inline fun <reified T : SwarmEvent> Swarm.eventsOf(): Flow<T> = eventFlow().keepOnly<SwarmEvent, T>()

/** The new connections of this swarm (one per remote key); other events are skipped. */
fun Swarm.connectionFlow(): Flow<Connection> = eventsOf<SwarmEvent.Connected>().map { it.connection }

/** Topic messages for topics joined with [Swarm.joinMessages]; other events are skipped. */
fun Swarm.messageFlow(): Flow<SwarmEvent.Message> = eventsOf<SwarmEvent.Message>()

/** Joins [topic] and waits until the first discovery round is done. */
suspend fun Swarm.joinAndFlush(topic: ByteArray, server: Boolean = true, client: Boolean = true): Discovery {
    val discovery = join(topic, JoinOptions(server = server, client = client))
    discovery.flushed()
    return discovery
}

/**
 * Finds the peer with [publicKey] (it must have called `listen()`) and returns the connection.
 * Fails with [SwarmplexException.Timeout] after [timeoutMs]; cancelling the coroutine cancels the
 * search. The peer stays joined afterwards (as with `joinPeer`): `leavePeer` stops that.
 */
suspend fun Swarm.connectTo(publicKey: ByteArray, timeoutMs: Long? = null): Connection {
    if (timeoutMs != null && timeoutMs < 0) throw SwarmplexException.InvalidInput("timeoutMs must not be negative")
    return findPeer(publicKey, timeoutMs?.toULong()).await()
}

/** The search's connection; cancelling the coroutine cancels the search. Frees the handle. */
suspend fun PeerSearch.await(): Connection = use { search ->
    cancellingWith({ search.cancel() }) { search.connection() }
}

/** A [Firewall] from a function: return `true` to **reject** the peer (called once per peer, on a background thread). */
fun firewall(reject: (remotePublicKey: ByteArray) -> Boolean): Firewall = object : Firewall {
    override fun reject(remotePublicKey: ByteArray): Boolean = reject(remotePublicKey)
}

/** Shuts the swarm down (its engine stops, remotes see the close) and frees the native handle. */
suspend fun Swarm.shutdownAndClose() {
    try {
        shutdown()
    } finally {
        close()
    }
}

// ---- p2plex and peersockets

/**
 * Every event of this plex, pulled through an [io.swarmplex.ffi.PlexEventSubscription]; completes
 * when the plex is shut down. Cold and single-consumer, like [Swarm.eventFlow]: cancelling the
 * collector cancels the subscription and frees it; an event not yet emitted stays queued.
 */
fun Plex.eventFlow(): Flow<PlexEvent> = flow {
    val subscription = subscribe()
    emitAll(pulled({ subscription.next() }, subscription::cancel) { subscription.cancel(); subscription.close() })
}

/** The events of type [T] (e.g. `plexEventsOf<PlexEvent.Disconnected>()`); the others are skipped and freed. */
inline fun <reified T : PlexEvent> Plex.plexEventsOf(): Flow<T> = eventFlow().keepOnly<PlexEvent, T>()

/** Each new connection's [Peer]; other events are skipped. */
fun Plex.peerFlow(): Flow<Peer> = plexEventsOf<PlexEvent.Connected>().map { it.peer }

/**
 * The streams the remote opens that nobody claimed, with their ids ([Peer.nextStream]); completes
 * once the connection is gone. Cancelling the collector also calls [Peer.cancelWaits].
 */
fun Peer.streamFlow(): Flow<PeerStream> = pulled({
    try {
        nextStream()
    } catch (e: SwarmplexException.Closed) {
        null
    }
}, { cancelWaits() })

/**
 * The messages of this topic handle; completes once the handle is closed. Cancelling the
 * collector also calls [TopicHandle.cancelReads] (no message is lost).
 */
fun TopicHandle.messageFlow(): Flow<TopicMessage> = pulled({ nextMessage() }, { cancelReads() })

/** Shuts the plex down (every connection closes, pending finds fail) and frees the native handle. */
suspend fun Plex.shutdownAndClose() {
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

/**
 * Up to [max] bytes (waits for at least one); empty at the end of the stream. Cancelling the
 * coroutine also calls [Stream.cancelReads], so every pending read on this handle ends at once;
 * no data is lost and the stream stays usable.
 */
suspend fun Stream.readSome(max: Int = 65536): ByteArray {
    if (max <= 0) throw SwarmplexException.InvalidInput("max must be positive")
    return cancellingWith({ cancelReads() }) { read(max.toUInt()) }
}

/** The stream's data as chunks until the remote ends it; cancelling the collector cancels the read. */
fun Stream.chunks(max: Int = 65536): Flow<ByteArray> = flow {
    while (true) {
        val chunk = readSome(max)
        if (chunk.isEmpty()) break
        emit(chunk)
    }
}

/** Reads until the remote ends the stream. */
suspend fun Stream.readToEnd(): ByteArray {
    val out = java.io.ByteArrayOutputStream()
    while (true) {
        val chunk = readSome(65536)
        if (chunk.isEmpty()) return out.toByteArray()
        out.write(chunk)
    }
}

/** Reads exactly [n] bytes (fails with `Closed` if the stream ends first). */
suspend fun Stream.readExactly(n: Int): ByteArray {
    val out = java.io.ByteArrayOutputStream(n)
    while (out.size() < n) {
        val chunk = readSome(n - out.size())
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
        is SwarmplexException.RelayLimit -> "relay_limit"
        is SwarmplexException.Internal -> "internal"
    }

/** Lowercase hex of a key or topic. */
fun ByteArray.toHex(): String = joinToString("") { "%02x".format(it) }

/** Bytes from lowercase or uppercase hex (a public key printed by [toHex]); `InvalidInput` if not hex. */
fun String.hexToBytes(): ByteArray {
    if (length % 2 != 0) throw SwarmplexException.InvalidInput("hex string of odd length")
    fun digit(i: Int): Int =
        Character.digit(this[i], 16).takeIf { it >= 0 } ?: throw SwarmplexException.InvalidInput("not hex: '${this[i]}'")
    return ByteArray(length / 2) { i -> (digit(2 * i) * 16 + digit(2 * i + 1)).toByte() }
}
