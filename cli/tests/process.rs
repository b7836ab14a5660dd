//! The CLI as separate processes: a testnet process, pipes between processes, and peers that
//! are killed or frozen while connected. Run inside a loopback-only namespace (`make test`).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use swarmplex::{JoinOptions, Swarm, SwarmEvent, SwarmOptions, Topic};

const BIN: &str = env!("CARGO_BIN_EXE_swarmplex");

/// A child process killed when dropped.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `swarmplex testnet 3` and returns it with its bootstrap list.
fn testnet() -> (Proc, String) {
    let mut child = Command::new(BIN).args(["testnet", "3"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let list = line.trim().strip_prefix("SWARMPLEX_BOOTSTRAP=").expect("bootstrap line").to_string();
    assert_eq!(list.split(',').count(), 6, "3 nodes × (QUIC, TCP): {list}");
    (Proc(child), list)
}

fn pipe(topic: &str, bootstrap: &str, listen: &str) -> Command {
    let mut c = Command::new(BIN);
    c.args(["pipe", topic, "--no-mdns", "--bootstrap", bootstrap, "--listen", listen, "--timeout", "30"]);
    c
}

#[test]
fn pipe_moves_8_mib_between_two_processes() {
    let (_net, bootstrap) = testnet();
    let data: Vec<u8> = (0..8u32 << 20).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let want: [u8; 32] = Sha256::digest(&data).into();
    let loopback = "/ip4/127.0.0.1/udp/0/quic-v1,/ip4/127.0.0.1/tcp/0";
    let mut a = pipe("pipe-test", &bootstrap, loopback)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut b = pipe("pipe-test", &bootstrap, loopback).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut a_in = a.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || a_in.write_all(&data).unwrap()); // drop closes stdin
    drop(b.stdin.take()); // b sends nothing
    let mut got = Vec::new();
    b.stdout.take().unwrap().read_to_end(&mut got).unwrap();
    feeder.join().unwrap();
    let mut a_out = Vec::new();
    a.stdout.take().unwrap().read_to_end(&mut a_out).unwrap();
    let mut a_err = String::new();
    a.stderr.take().unwrap().read_to_string(&mut a_err).unwrap();
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    assert_eq!(got.len(), 8 << 20);
    assert_eq!(<[u8; 32]>::from(Sha256::digest(&got)), want);
    assert!(a_out.is_empty());
    assert!(!a_err.contains(" sent ("), "no progress bar when stderr is not a terminal: {a_err}");
}

/// A pseudo-terminal: (master, slave).
fn pty() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two new file descriptors, which the Files then own.
    let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // Close-on-exec, so that no child but the one given the slave as stderr holds either end.
    for fd in [master, slave] {
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    unsafe { (std::fs::File::from_raw_fd(master), std::fs::File::from_raw_fd(slave)) }
}

#[test]
fn pipe_draws_bytes_and_rate_on_a_terminal_stderr() {
    let (_net, bootstrap) = testnet();
    let loopback = "/ip4/127.0.0.1/udp/0/quic-v1,/ip4/127.0.0.1/tcp/0";
    let (mut master, slave) = pty();
    let mut a = pipe("pipe-tty", &bootstrap, loopback).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(slave).spawn().unwrap();
    let mut b = pipe("pipe-tty", &bootstrap, loopback).stdin(Stdio::null()).stdout(Stdio::piped()).spawn().unwrap();
    // What the terminal shows, read until the last holder of the slave side (a) exits (EIO).
    let screen = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&out).into_owned()
    });
    let mut a_in = a.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || a_in.write_all(&vec![42u8; 8 << 20]).unwrap()); // drop closes stdin
    let mut got = Vec::new();
    b.stdout.take().unwrap().read_to_end(&mut got).unwrap();
    feeder.join().unwrap();
    assert!(a.wait().unwrap().success());
    assert!(b.wait().unwrap().success());
    assert_eq!(got.len(), 8 << 20);
    let screen = screen.join().unwrap();
    // The bar's last frame: "8.00 MiB sent (<rate>/s) <elapsed>".
    assert!(screen.contains("8.00 MiB sent ("), "{screen:?}");
    assert!(screen.contains("/s)"), "a rate: {screen:?}");
}

/// Connects an in-process client to a `pipe` process listening on `listen`, then applies
/// `signal` to the process and returns how long the client took to see the connection end.
fn close_seen_after(signal: &str, listen: &str) -> Duration {
    let (_net, bootstrap) = testnet();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let topic_name = format!("kill-{signal}-{}", listen.len());
    let child = pipe(&topic_name, &bootstrap, listen).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut child = Proc(child);
    rt.block_on(async {
        let client = Swarm::new(SwarmOptions::local(bootstrap.split(',').map(str::to_string).collect())).await.unwrap();
        client.join(Topic::from_name(&topic_name), JoinOptions { server: false, client: true }).unwrap();
        let conn = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if let Some(SwarmEvent::Connection(c)) = client.next_event().await {
                    return c;
                }
            }
        })
        .await
        .expect("connected to the pipe process");
        // Prove the link works first: the child echoes nothing, but it reads what we send.
        conn.socket().write(b"hello").await.unwrap();
        let pid = child.0.id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
        let started = Instant::now();
        let reason = tokio::time::timeout(Duration::from_secs(10), conn.closed()).await.expect("close seen within 10 s");
        let took = started.elapsed();
        eprintln!("{signal} on {listen}: close seen after {took:?} ({reason})");
        if signal == "-STOP" {
            let _ = Command::new("kill").args(["-CONT", &pid]).status();
        }
        client.destroy().await;
        let _ = child.0.kill();
        took
    })
}

#[test]
fn a_killed_peer_is_seen_closed_within_10_s_on_quic() {
    close_seen_after("-KILL", "/ip4/127.0.0.1/udp/0/quic-v1");
}

#[test]
fn a_killed_peer_is_seen_closed_within_10_s_on_tcp() {
    close_seen_after("-KILL", "/ip4/127.0.0.1/tcp/0");
}

#[test]
fn a_frozen_peer_is_seen_closed_by_the_heartbeat() {
    // SIGSTOP keeps the sockets open: only the session heartbeat can notice.
    let took = close_seen_after("-STOP", "/ip4/127.0.0.1/tcp/0");
    assert!(took >= Duration::from_secs(4), "closed before the silence limit: {took:?}");
}

#[test]
fn keygen_is_deterministic_for_a_seed_and_id_persists() {
    let out = Command::new(BIN).args(["keygen", "--seed", &"04".repeat(32)]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7c"), "{text}");
    let dir = std::env::temp_dir().join(format!("swarmplex-id-{}", std::process::id()));
    let id = || {
        let o = Command::new(BIN).arg("id").env("XDG_CONFIG_HOME", &dir).output().unwrap();
        assert!(o.status.success());
        String::from_utf8(o.stdout).unwrap()
    };
    let first = id();
    assert_eq!(first.trim().len(), 64);
    assert_eq!(id(), first, "identity persists");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("swarmplex/identity")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_arguments_exit_with_2_and_runtime_failures_with_1() {
    let usage = Command::new(BIN).args(["pipe", "--bogus"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
    let bad_seed = Command::new(BIN).args(["keygen", "--seed", "abcd"]).output().unwrap();
    assert_eq!(bad_seed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad_seed.stderr).contains("seed must be 32 bytes"));
    let no_peer = Command::new(BIN)
        .args(["pipe", "lonely", "--no-mdns", "--bootstrap", "none", "--loopback", "--timeout", "1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(no_peer.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_peer.stderr).contains("no peer found"));
}

async fn bounded<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), fut).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// `swarmplex bootstrap` also relays: C, which listens on nothing (as if behind a NAT), holds a
/// reservation on it, and A reaches C through it by C's relayed address.
#[test]
fn bootstrap_node_relays_for_a_peer_that_cannot_be_dialed() {
    let mut child = Command::new(BIN).args(["bootstrap", "--port", "0"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let _proc = Proc(child);
    let tcp = loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "bootstrap exited before printing a TCP address");
        if line.contains("/tcp/") {
            break line.trim().to_string();
        }
    };
    tokio::runtime::Runtime::new().unwrap().block_on(async move {
        let c = Swarm::new(SwarmOptions { listen: Some(vec![]), reserve_relays: true, ..SwarmOptions::local(vec![tcp.clone()]) })
            .await
            .unwrap();
        // C listens on nothing else, so its first listen address is the relayed one.
        let relayed = bounded("C's reservation", c.listen_addrs()).await.unwrap();
        let circuit = relayed.iter().find(|a| a.to_string().contains("/p2p-circuit")).expect("a relayed address").clone();
        let a = Swarm::new(SwarmOptions::local(vec![tcp])).await.unwrap();
        let ac = bounded("A reaches C", a.connect(circuit)).await.unwrap();
        assert_eq!(ac.remote_public_key(), c.public_key());
        assert_eq!(ac.transport(), "relay");
        let ca = loop {
            match bounded("C's connection", c.next_event()).await {
                Some(SwarmEvent::Connection(conn)) => break conn,
                Some(_) => continue,
                None => panic!("C ended"),
            }
        };
        ac.socket().write(b"through the bootstrap relay").await.unwrap();
        ac.socket().end().await.unwrap();
        let got = bounded("relayed bytes", ca.socket().read_to_end()).await.unwrap();
        assert_eq!(got, b"through the bootstrap relay");
        a.destroy().await;
        c.destroy().await;
    });
}
