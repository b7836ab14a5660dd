package io.swarmplex

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import java.io.File
import java.util.concurrent.TimeUnit

/**
 * The engine's logs: `SWARMPLEX_LOG` (an env-filter, e.g. `swarmplex=debug`) writes them to
 * stderr. The logger is set up once per process, so each case runs the echo example
 * (examples/kotlin/Echo.kt: its own local testnet, two swarms that connect and exchange bytes) in
 * a child JVM, inside the same loopback-only namespace.
 */
class LogsTest {
    /** Runs the echo example in a child JVM with `SWARMPLEX_LOG` set to [log] (unset: `null`); its exit code and stderr. */
    private fun echoInChildJvm(log: String?): Pair<Int, String> {
        val java = File(System.getProperty("java.home"), "bin/java").path
        val command = listOf(
            java, "-cp", System.getProperty("java.class.path"),
            "-Djna.library.path=${System.getProperty("jna.library.path")}",
            "io.swarmplex.examples.EchoKt", "ping",
        )
        val builder = ProcessBuilder(command).redirectOutput(ProcessBuilder.Redirect.DISCARD)
        builder.environment().remove("SWARMPLEX_LOG")
        if (log != null) builder.environment()["SWARMPLEX_LOG"] = log
        val child = builder.start()
        val err = child.errorStream.bufferedReader().readText() // to the end: the child exited or closed it
        if (!child.waitFor(30, TimeUnit.SECONDS)) {
            child.destroyForcibly()
            error("the echo example did not exit")
        }
        return child.exitValue() to err
    }

    @Test
    @Timeout(120)
    fun `SWARMPLEX_LOG writes the engine's logs to stderr, and without it the engine is silent`() {
        val (code, logged) = echoInChildJvm("swarmplex=debug")
        assertEquals(0, code, logged.takeLast(2000))
        assertTrue(Regex("DEBUG.*swarmplex::state::peers.*session active").containsMatchIn(logged), logged.takeLast(2000))
        val (quietCode, quiet) = echoInChildJvm(null)
        assertEquals(0, quietCode, quiet.takeLast(2000))
        assertFalse(quiet.contains("swarmplex::"), quiet.takeLast(2000))
    }
}
