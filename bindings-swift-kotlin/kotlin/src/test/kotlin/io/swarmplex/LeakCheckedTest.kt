package io.swarmplex

import io.swarmplex.ffi.Connection
import io.swarmplex.ffi.Stream
import io.swarmplex.ffi.Swarm
import io.swarmplex.ffi.liveHandles
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.async
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.withContext
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.BeforeEach

/**
 * A [TestnetFixture] whose every test must close what it made: the count of live native handles
 * is the same after the test as before. Also the byte-exchange helpers the tests share.
 */
abstract class LeakCheckedTest : TestnetFixture() {
    private var handlesBefore = 0L

    @BeforeEach
    fun countHandles() {
        handlesBefore = liveHandles()
    }

    /** Every test closes what it made: no native handle is left for the garbage collector. */
    @AfterEach
    fun noHandleLeft() {
        assertEquals(handlesBefore, liveHandles(), "native handles left open by the test")
    }

    /** Runs [block] (bounded, see [run]) on the swarms [make] starts, each shut down and closed afterwards whatever happens. */
    protected fun withSwarms(make: () -> List<Swarm>, block: suspend CoroutineScope.(List<Swarm>) -> Unit) = run {
        val swarms = make()
        try {
            block(swarms)
        } finally {
            withContext(NonCancellable) { swarms.forEach { it.shutdownAndClose() } }
        }
    }

    /** Writes [x] on one end and [y] on the other and checks that each arrives intact. */
    /** (Writes run beside the reads: flow control blocks a writer nobody reads.) */
    protected suspend fun exchange(one: Stream, other: Stream, x: ByteArray, y: ByteArray) = coroutineScope {
        val wx = async { one.write(x) }
        assertArrayEquals(x, other.readExactly(x.size))
        wx.await()
        val wy = async { other.write(y) }
        assertArrayEquals(y, one.readExactly(y.size))
        wy.await()
    }

    /** [exchange] over the two connections' sockets (each socket handle closed afterwards). */
    protected suspend fun exchangeOnSockets(one: Connection, other: Connection, x: ByteArray, y: ByteArray) =
        one.socket().use { s1 -> other.socket().use { s2 -> exchange(s1, s2, x, y) } }

    /** [n] bytes of a pattern that differs with [seed]. */
    protected fun bytes(n: Int, seed: Int) = ByteArray(n) { ((it * 31 + seed) % 251).toByte() }
}
