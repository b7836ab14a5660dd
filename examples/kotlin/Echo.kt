// Echo (Kotlin, JVM): a server sends back whatever a client writes to it. The client finds the
// server by its public key (default: the server calls listen(), the client findPeer/connectTo) or,
// with --topic NAME, by a topic both join.
//
// Runs on a local testnet it starts itself (DHT nodes on 127.0.0.1, mDNS off), or on the one
// given with --bootstrap ADDR[,ADDR...]. From bindings-swift-kotlin/kotlin (after scripts/test.sh
// built the library and generated the bindings):
//
//   mvn -q test-compile exec:java -Dexec.args="hello"
//   mvn -q test-compile exec:java -Dexec.args="--topic demo hello by topic"
//
// It is compiled with the Maven project's test sources and run by ExamplesTest.
package io.swarmplex.examples

import io.swarmplex.chunks
import io.swarmplex.connectTo
import io.swarmplex.connectionFlow
import io.swarmplex.joinAndFlush
import io.swarmplex.readToEnd
import io.swarmplex.shutdownAndClose
import io.swarmplex.toHex
import io.swarmplex.ffi.JoinOptions
import io.swarmplex.ffi.Swarm
import io.swarmplex.ffi.Testnet
import io.swarmplex.ffi.startTestnet
import io.swarmplex.ffi.topicFromName
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext

/**
 * Starts an echo server and a client, sends [message] from the client and returns what came back.
 * [topic] `null`: the client finds the server by public key; otherwise both join this topic name.
 * [bootstrap] `null`: a local testnet of 3 nodes is started (and stopped) for the run.
 */
suspend fun echo(message: ByteArray, topic: String? = null, bootstrap: List<String>? = null, log: (String) -> Unit = {}): ByteArray =
    coroutineScope {
        val testnet: Testnet? = if (bootstrap == null) startTestnet(3u) else null
        val nodes = bootstrap ?: testnet!!.bootstrap()
        val server = Swarm.local(nodes)
        val client = Swarm.local(nodes)
        try {
            // The server: every connection gets its bytes back, then the end of the stream.
            val serving = launch {
                server.connectionFlow().collect { conn ->
                    launch {
                        conn.use {
                            val socket = it.socket()
                            socket.use { s ->
                                s.chunks().collect { chunk -> s.write(chunk) }
                                s.end()
                            }
                        }
                    }
                }
            }
            val conn = if (topic == null) {
                server.listen() // announce under its own key
                server.flush()
                log("server listening as ${server.publicKey().toHex()}")
                client.connectTo(server.publicKey(), timeoutMs = 30_000)
            } else {
                val t = topicFromName(topic)
                server.joinAndFlush(t, server = true, client = false).close()
                log("server joined topic $topic")
                client.join(t, JoinOptions(server = false, client = true)).close()
                client.connectionFlow().first()
            }
            conn.use {
                log("client connected to ${it.remotePublicKey().toHex()}")
                it.socket().use { s ->
                    s.write(message)
                    s.end()
                    val back = s.readToEnd()
                    serving.cancelAndJoin()
                    back
                }
            }
        } finally {
            withContext(NonCancellable) {
                client.shutdownAndClose()
                server.shutdownAndClose()
                testnet?.shutdownAndClose()
            }
        }
    }

fun main(args: Array<String>) = runBlocking {
    var topic: String? = null
    var bootstrap: List<String>? = null
    val words = mutableListOf<String>()
    var i = 0
    while (i < args.size) {
        when (args[i]) {
            "--topic" -> topic = args.getOrNull(++i) ?: error("--topic needs a name")
            "--bootstrap" -> bootstrap = (args.getOrNull(++i) ?: error("--bootstrap needs addresses")).split(",")
            else -> words.add(args[i])
        }
        i++
    }
    val message = words.joinToString(" ").ifEmpty { "hello over swarmplex" }
    val back = echo(message.toByteArray(), topic, bootstrap) { println(it) }
    println("echoed: ${String(back)}")
}
