// The cases of kotlin/src/test/kotlin/io/swarmplex/NatTest.kt, in Swift: two Swift peers behind
// two NATs meet by topic through one bootstrap node, with nothing else configured. Namespaces from
// scripts/nat-lab (the chroot has iproute2, nftables and procps for it), the bootstrap node is the
// CLI's `swarmplex bootstrap --network natlab` ($SWARMPLEX_CLI, which scripts/test-swift.sh builds
// and passes), each peer the SwarmplexNatPeer executable (Tests/NatPeer) in its namespace; each
// peer compares the bytes it got with what the other sent. Needs root (scripts/test-swift.sh
// skips these with SWARMPLEX_SKIP_NAT_TESTS=1).
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import XCTest

/// A child process whose stdout is read line by line, and whose stdin can be written.
final class Child {
    let process = Process()
    private let output = Pipe()
    private let input = Pipe()
    private var buffer = Data()

    init(_ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = output
        process.standardInput = input
        try process.run()
    }

    /// The next line of its stdout; nil at the end.
    func readLine() -> String? {
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self)
                buffer.removeSubrange(buffer.startIndex...newline)
                return line
            }
            let more = output.fileHandleForReading.availableData
            if more.isEmpty { return nil }
            buffer.append(more)
        }
    }

    func write(_ text: String) {
        input.fileHandleForWriting.write(Data(text.utf8))
    }

    /// SIGKILL (if still running), then reaps it.
    func kill() {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

final class NatTests: XCTestCase {
    private let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    private let peer = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("SwarmplexNatPeer").path

    @discardableResult
    private func run(_ arguments: String...) throws -> Int32 {
        let child = try Child(arguments)
        child.process.waitUntilExit()
        return child.process.terminationStatus
    }

    /// A server behind `nat1` and a client behind `nat2`; their results, after the common checks.
    private func runPair(_ nat1: String, _ nat2: String) throws -> ([String: String], [String: String]) {
        guard let cli = ProcessInfo.processInfo.environment["SWARMPLEX_CLI"] else {
            throw TestError("SWARMPLEX_CLI (the swarmplex CLI, for the bootstrap node) is not set")
        }
        let lab = root.appendingPathComponent("scripts/nat-lab").path
        let prefix = "sxs\(getpid())\(nat1)\(nat2)"
        XCTAssertEqual(try run(lab, "up", prefix, nat1, nat2), 0, "nat-lab up")
        var children: [Child] = []
        // Every wait below reads a child; a watchdog kills them all if the pair hangs.
        let watchdog = DispatchWorkItem { children.forEach { $0.kill() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 180, execute: watchdog)
        defer {
            watchdog.cancel()
            children.forEach { $0.kill() }
            _ = try? run(lab, "down", prefix)
        }
        func inNs(_ ns: String, _ arguments: String...) throws -> Child {
            let child = try Child(["ip", "netns", "exec", "\(prefix)-\(ns)"] + arguments)
            children.append(child)
            return child
        }
        let boot = try inNs("inet", cli, "bootstrap", "--network", "natlab")
        var via: [String: String] = [:]
        while via.count < 2 {
            guard let line = boot.readLine() else { throw TestError("the bootstrap node exited") }
            for ip in ["11.0.1.1", "11.0.2.1"] where line.hasPrefix("/ip4/\(ip)/udp/") && line.contains("/quic-v1/") {
                via[ip] = line.trimmingCharacters(in: .whitespaces)
            }
        }
        let topic = "swift across \(nat1) x \(nat2)"
        let (serverBytes, clientBytes) = ((1 << 20, 1), (512 << 10, 2))
        let a = try inNs("a", peer, "server", via["11.0.1.1"]!, topic, "\(serverBytes.0)", "\(serverBytes.1)",
                         "\(clientBytes.0)", "\(clientBytes.1)")
        let c = try inNs("c", peer, "client", via["11.0.2.1"]!, topic, "\(clientBytes.0)", "\(clientBytes.1)",
                         "\(serverBytes.0)", "\(serverBytes.1)")
        let (ra, rc) = (result(of: a), result(of: c))
        for p in [a, c] {
            p.write("done\n")
            p.process.waitUntilExit()
            XCTAssertEqual(p.process.terminationStatus, 0, "a peer failed")
        }
        XCTAssertNotNil(ra["handshake_hash"], "the server gave no result")
        XCTAssertEqual(ra["handshake_hash"], rc["handshake_hash"])
        XCTAssertEqual(ra["got_expected"], "true", "\(ra)")
        XCTAssertEqual(rc["got_expected"], "true", "\(rc)")
        // The NATed server advertised a relay circuit, never its private address, and heard of its
        // reachability through the event.
        XCTAssertEqual(ra["reachability"], "private", "\(ra)")
        XCTAssertGreaterThanOrEqual(Int(ra["relays"] ?? "") ?? 0, 1, "\(ra)")
        XCTAssertEqual(Set((ra["reachability_events"] ?? "").split(separator: ",")), ["private"], "\(ra)")
        let external = (ra["external"] ?? "").split(separator: " ")
        XCTAssertTrue(external.contains { $0.contains("/p2p-circuit") }, "\(external)")
        XCTAssertFalse(external.contains { $0.contains("/192.168.") }, "\(external)")
        return (ra, rc)
    }

    /// A peer's `key=value` lines up to `end`.
    private func result(of peer: Child) -> [String: String] {
        var out: [String: String] = [:]
        while let line = peer.readLine(), line != "end" {
            guard let eq = line.firstIndex(of: "=") else { continue }
            out[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return out
    }

    func testSwiftPeersBehindPortPreservingNatsMeetByTopicAndGoDirect() throws {
        let (a, c) = try runPair("pp", "pp")
        XCTAssertEqual(a["transport"], "quic", "\(a)")
        XCTAssertTrue(a["remote_address"]?.hasPrefix("/ip4/11.0.2.2/") ?? false, "\(a)")
        XCTAssertEqual(c["transport"], "quic", "\(c)")
        XCTAssertTrue(c["remote_address"]?.hasPrefix("/ip4/11.0.1.2/") ?? false, "\(c)")
    }

    func testSwiftPeersBehindSymmetricNatsMeetByTopicThroughTheRelayAndTheServerHearsItIsPrivate() throws {
        let (a, c) = try runPair("sym", "sym")
        XCTAssertEqual(a["transport"], "relay", "\(a)")
        XCTAssertEqual(c["transport"], "relay", "\(c)")
        XCTAssertFalse((a["relay"] ?? "").isEmpty, "\(a)")
        XCTAssertEqual(a["relay"], c["relay"], "both through the bootstrap node")
    }
}
