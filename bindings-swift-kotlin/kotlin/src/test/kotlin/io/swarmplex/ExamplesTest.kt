package io.swarmplex

import io.swarmplex.examples.echo
import io.swarmplex.examples.main as echoMain
import io.swarmplex.ffi.liveHandles
import io.swarmplex.ffi.startTestnet
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.ByteArrayOutputStream
import java.io.PrintStream

/** Runs the Kotlin examples (examples/kotlin) so that none rots; each starts its own local testnet. */
class ExamplesTest {
    /** Runs [main] with [args] and returns what it printed. */
    private fun runMain(main: (Array<String>) -> Unit, vararg args: String): String {
        val out = ByteArrayOutputStream()
        val saved = System.out
        System.setOut(PrintStream(out, true, "UTF-8"))
        try {
            main(arrayOf(*args))
        } finally {
            System.setOut(saved)
        }
        return out.toString("UTF-8").also { print(it) }
    }

    @Test
    fun `echo by public key (the default)`() {
        val before = liveHandles()
        val out = runMain(::echoMain, "ping", "from", "kotlin")
        assertTrue(out.contains("server listening as "), out)
        assertTrue(out.lines().contains("echoed: ping from kotlin"), out)
        assertEquals(before, liveHandles(), "native handles the example did not close")
    }

    @Test
    fun `echo by topic`() {
        val out = runMain(::echoMain, "--topic", "kotlin-echo-example", "ping by topic")
        assertTrue(out.contains("server joined topic kotlin-echo-example"), out)
        assertTrue(out.lines().contains("echoed: ping by topic"), out)
    }

    @Test
    fun `echo returns every byte, on a testnet given with bootstrap`() = runBlocking {
        withTimeout(60_000) {
            val testnet = startTestnet(3u)
            try {
                val message = ByteArray(300_000) { (it * 7 % 256).toByte() }
                assertArrayEquals(message, echo(message, bootstrap = testnet.bootstrap()))
                assertArrayEquals(message, echo(message, topic = "kotlin-echo-bytes", bootstrap = testnet.bootstrap()))
            } finally {
                testnet.shutdownAndClose()
            }
        }
    }
}
