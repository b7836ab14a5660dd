// The case of kotlin/src/test/kotlin/io/swarmplex/LogsTest.kt, in Swift: SWARMPLEX_LOG writes the
// engine's logs to stderr. The logger is set up once per process, so the test runs another test of
// this bundle (two swarms that connect on their own local testnet) in a child process, in the same
// chroot and loopback-only namespace.
import Foundation
import XCTest

final class LogsTests: XCTestCase {
    /// Runs `SwarmplexTests/testTwoSwarmsConnectByTopicAndExchangeDataBothWays` of this test
    /// binary in a child process with `SWARMPLEX_LOG` set to `log` (unset: nil); its exit status
    /// and stderr.
    private func connectInChildProcess(log: String?) throws -> (Int32, String) {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = ["SwarmplexTests.SwarmplexTests/testTwoSwarmsConnectByTopicAndExchangeDataBothWays"]
        var environment = ProcessInfo.processInfo.environment
        environment["SWARMPLEX_LOG"] = log
        child.environment = environment
        child.standardOutput = FileHandle.nullDevice
        let stderr = Pipe()
        child.standardError = stderr
        try child.run()
        // To the end: the child exited (its own test bounds every wait).
        let err = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        child.waitUntilExit()
        return (child.terminationStatus, err)
    }

    func testSwarmplexLogWritesTheEnginesLogsToStderrAndWithoutItTheEngineIsSilent() throws {
        let (status, logged) = try connectInChildProcess(log: "swarmplex=debug")
        XCTAssertEqual(status, 0, String(logged.suffix(2000)))
        let sessionActive = try NSRegularExpression(pattern: "DEBUG.*swarmplex::state::peers.*session active")
        let range = NSRange(logged.startIndex..., in: logged)
        XCTAssertNotNil(sessionActive.firstMatch(in: logged, range: range), String(logged.suffix(2000)))
        let (quietStatus, quiet) = try connectInChildProcess(log: nil)
        XCTAssertEqual(quietStatus, 0, String(quiet.suffix(2000)))
        XCTAssertFalse(quiet.contains("swarmplex::"), String(quiet.suffix(2000)))
    }
}
