// One peer of NatTests (Tests/SwarmplexTests/NatTests.swift), run by it inside its network
// namespace behind a NAT of scripts/nat-lab. A test helper, not part of the library.
//
// Args: ROLE (server/client) BOOTSTRAP TOPIC N SEED EXPECT_N EXPECT_SEED. Joins TOPIC on the private
// network "natlab" with BOOTSTRAP as its only configuration, sends N bytes of `pattern(N, SEED)`
// and its end, reads the remote's bytes to the end and compares them with
// `pattern(EXPECT_N, EXPECT_SEED)`, prints `key=value` lines and `end`, then waits for a line on
// stdin before it shuts down (so neither side closes while the other's bytes are in flight).
import Foundation
import Swarmplex

/// `n` pseudo-random bytes that differ with `seed` (the same as NatPeer.kt's).
func pattern(_ n: Int, _ seed: Int) -> Data {
    Data((0..<n).map { UInt8(truncatingIfNeeded: (($0 + seed) &* 2654435761) >> 13) })
}

/// Why the peer gave up.
struct PeerError: Error, CustomStringConvertible {
    let description: String
}

/// `operation`, or a PeerError after `seconds` (it must honour cancellation).
func within<T: Sendable>(_ seconds: Double, _ what: String, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            throw PeerError(description: "\(what): timed out after \(seconds) s")
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// Reachability states heard so far, and the first connection.
final class Heard: @unchecked Sendable {
    var states: [String] = []
    var connection: Connection?
}

/// Takes `swarm`'s events, recording reachability states, until `done` says stop.
func listen(_ swarm: Swarm, _ heard: Heard, until done: @escaping @Sendable (Heard) -> Bool) async throws {
    while !done(heard) {
        guard let event = try await swarm.nextEventCancellable() else { throw PeerError(description: "swarm shut down") }
        switch event {
        case let .reachability(state, _): heard.states.append(state)
        case let .connected(c) where heard.connection == nil: heard.connection = c
        default: break
        }
    }
}

let args = CommandLine.arguments
guard args.count == 8, let n = Int(args[4]), let seed = Int(args[5]), let expectN = Int(args[6]),
      let expectSeed = Int(args[7]) else {
    FileHandle.standardError.write(Data("usage: NatPeer ROLE BOOTSTRAP TOPIC N SEED EXPECT_N EXPECT_SEED\n".utf8))
    exit(2)
}
let role = args[1]
let swarm = try Swarm(options: SwarmOptions(bootstrap: [args[2]], network: "natlab", mdns: false))
let heard = Heard()
_ = try swarm.join(topic: topicFromName(name: args[3]), options: JoinOptions(server: role == "server", client: role == "client"))
try await within(90, "a connection") { try await listen(swarm, heard) { $0.connection != nil } }
let conn = heard.connection!
let socket = try conn.socket()
@Sendable func send() async throws {
    try await socket.write(data: pattern(n, seed))
    try await socket.end()
}
async let sent: Void = send()
let got = try await socket.readToEnd()
try await sent
// A server behind a NAT may still be "unknown" (holding a relay) when the session comes; it
// learns it is "private" from AutoNAT soon after: wait for that event.
if role == "server" {
    try await within(60, "the private reachability event") { try await listen(swarm, heard) { $0.states.contains("private") } }
}
let r = try await swarm.reachability()
let path = try conn.path()
print("""
    transport=\(path.transport)
    remote_address=\(path.remoteAddress)
    relay=\(path.relay?.hexString ?? "")
    handshake_hash=\(try conn.handshakeHash().hexString)
    got_len=\(got.count)
    got_expected=\(got == pattern(expectN, expectSeed))
    reachability=\(r.state)
    reachability_events=\(heard.states.joined(separator: ","))
    relays=\(r.relays.count)
    external=\(r.external.joined(separator: " "))
    end
    """)
fflush(stdout)
_ = readLine()
try await swarm.shutdown()
