package io.swarmplex

import io.swarmplex.ffi.Testnet
import io.swarmplex.ffi.startTestnet
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.TestInstance

/**
 * One local testnet (3 bootstrap nodes on 127.0.0.1) per test class, shut down after the class;
 * the tests run inside scripts/netns-run, so nothing leaves the loopback interface.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class TestnetFixture {
    protected lateinit var testnet: Testnet
    protected val bootstrap get() = testnet.bootstrap()

    @BeforeAll
    fun startTestnet() = runBlocking { testnet = startTestnet(3u) }

    @AfterAll
    fun stopTestnet() = runBlocking { testnet.shutdownAndClose() }

    /** Runs [block] with a bound (a hung test fails instead of hanging the suite). */
    protected fun <T> run(timeoutMs: Long = 30_000, block: suspend CoroutineScope.() -> T): T =
        runBlocking { withTimeout(timeoutMs) { block() } }
}
