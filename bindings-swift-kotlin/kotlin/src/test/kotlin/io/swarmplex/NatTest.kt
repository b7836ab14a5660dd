package io.swarmplex

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.Timeout
import java.io.BufferedReader
import java.io.File
import java.util.concurrent.TimeUnit

/**
 * Two Kotlin peers behind two NATs meet by topic through one bootstrap node, with nothing else
 * configured: namespaces from scripts/nat-lab, the bootstrap node is the CLI's
 * `swarmplex bootstrap --network natlab` (built by scripts/test.sh beside the library), each peer
 * a child JVM running [main] of NatPeer.kt in its namespace. Bytes are compared by SHA-256 both
 * ways. Needs root, iproute2 and nftables (SWARMPLEX_SKIP_NAT_TESTS=1 skips), as the Node and
 * Python NAT tests do.
 */
class NatTest {
    private val root = File(System.getProperty("user.dir"), "../..").canonicalFile
    private val lab = File(root, "scripts/nat-lab").path
    private val cli = File(System.getProperty("jna.library.path"), "swarmplex").path
    private val sizes = mapOf("server" to Pair(1 shl 20, 1), "client" to Pair(512 shl 10, 2))

    private fun labAvailable(): Boolean =
        System.getenv("SWARMPLEX_SKIP_NAT_TESTS").isNullOrEmpty() &&
            ProcessBuilder("id", "-u").start().inputStream.bufferedReader().readText().trim() == "0" &&
            ProcessBuilder("sh", "-c", "command -v nft").start().waitFor() == 0

    private fun run(vararg command: String) {
        val p = ProcessBuilder(*command).inheritIO().start()
        assertEquals(0, p.waitFor(), command.joinToString(" "))
    }

    /** A peer's `key=value` lines up to `end`. */
    private fun BufferedReader.result(): Map<String, String> = generateSequence { readLine() }
        .takeWhile { it != "end" }
        .associate { it.substringBefore('=') to it.substringAfter('=') }

    /** Runs a server behind [nat1] and a client behind [nat2]; their results after checking both ways' bytes. */
    private fun runPair(nat1: String, nat2: String): Pair<Map<String, String>, Map<String, String>> {
        assumeTrue(labAvailable(), "needs root and nftables (or SWARMPLEX_SKIP_NAT_TESTS is set)")
        val prefix = "sxk${ProcessHandle.current().pid()}$nat1$nat2"
        run(lab, "up", prefix, nat1, nat2)
        val procs = mutableListOf<Process>()
        fun inNs(ns: String, vararg command: String) = ProcessBuilder("ip", "netns", "exec", "$prefix-$ns", *command)
            .redirectError(ProcessBuilder.Redirect.INHERIT).start().also { procs.add(it) }
        try {
            val boot = inNs("inet", cli, "bootstrap", "--network", "natlab").inputStream.bufferedReader()
            val via = mutableMapOf<String, String>()
            while (via.size < 2) {
                val line = boot.readLine() ?: error("the bootstrap node exited")
                for (ip in listOf("11.0.1.1", "11.0.2.1")) {
                    if (line.startsWith("/ip4/$ip/udp/") && "/quic-v1/" in line) via[ip] = line.trim()
                }
            }
            val java = File(System.getProperty("java.home"), "bin/java").path
            fun peer(ns: String, role: String, ip: String): Process {
                val (n, seed) = sizes.getValue(role)
                return inNs(
                    ns, java, "-cp", System.getProperty("java.class.path"),
                    "-Djna.library.path=${System.getProperty("jna.library.path")}",
                    "io.swarmplex.NatPeerKt", role, via.getValue(ip), "kotlin across $nat1 x $nat2", "$n", "$seed",
                )
            }
            val (a, c) = Pair(peer("a", "server", "11.0.1.1"), peer("c", "client", "11.0.2.1"))
            val (ra, rc) = listOf(a, c).map { it.inputStream.bufferedReader().result() }
            for (p in listOf(a, c)) {
                p.outputStream.write("done\n".toByteArray())
                p.outputStream.flush()
                assertTrue(p.waitFor(30, TimeUnit.SECONDS), "a peer did not exit")
                assertEquals(0, p.exitValue())
            }
            assertTrue(ra.containsKey("handshake_hash") && rc.containsKey("handshake_hash"), "a peer gave no result: $ra $rc")
            assertEquals(ra["handshake_hash"], rc["handshake_hash"])
            assertEquals(sha256Hex(natPattern(1 shl 20, 1)), rc["got_sha256"], "$rc")
            assertEquals(sha256Hex(natPattern(512 shl 10, 2)), ra["got_sha256"], "$ra")
            // The NATed server advertised a relay circuit, never its private address, and heard of
            // its reachability through the event.
            assertEquals("private", ra["reachability"], "$ra")
            assertTrue(ra.getValue("relays").toInt() >= 1, "$ra")
            assertEquals(setOf("private"), ra.getValue("reachability_events").split(",").toSet(), "$ra")
            val external = ra.getValue("external").split(" ")
            assertTrue(external.any { "/p2p-circuit" in it } && external.none { "/192.168." in it }, "$external")
            return Pair(ra, rc)
        } finally {
            procs.forEach { it.destroyForcibly().waitFor() }
            ProcessBuilder(lab, "down", prefix).inheritIO().start().waitFor()
        }
    }

    @Test
    @Timeout(240)
    fun `Kotlin peers behind port-preserving NATs meet by topic and go direct`() {
        val (a, c) = runPair("pp", "pp")
        assertEquals("quic", a["transport"], "$a")
        assertTrue(a.getValue("remote_address").startsWith("/ip4/11.0.2.2/"), "$a")
        assertEquals("quic", c["transport"], "$c")
        assertTrue(c.getValue("remote_address").startsWith("/ip4/11.0.1.2/"), "$c")
    }

    @Test
    @Timeout(240)
    fun `Kotlin peers behind symmetric NATs meet by topic through the relay, and the server hears it is private`() {
        val (a, c) = runPair("sym", "sym")
        assertEquals("relay", a["transport"], "$a")
        assertEquals("relay", c["transport"], "$c")
        assertTrue(a.getValue("relay").isNotEmpty() && a["relay"] == c["relay"], "both through the bootstrap node: $a $c")
    }
}
