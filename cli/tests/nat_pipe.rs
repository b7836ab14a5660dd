//! `swarmplex pipe` between two hosts behind two NATs, as a user would run it: one
//! `swarmplex bootstrap --network` node on the "internet", each host running
//! `swarmplex pipe TOPIC --no-mdns --network … --bootstrap …` and nothing else configured. The
//! namespaces come from `scripts/nat-lab` (see there); every pair of NAT kinds is tried, and the
//! bytes each side receives are compared by SHA-256. Needs root, iproute2 and nftables; set
//! `SWARMPLEX_SKIP_NAT_TESTS=1` to skip.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_swarmplex");
const LAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/nat-lab");

/// A child process killed when dropped.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One `scripts/nat-lab` topology; torn down on drop.
struct Lab(String);
impl Lab {
    fn up(nat1: &str, nat2: &str) -> Lab {
        static N: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!("sxp{}n{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let ok = Command::new(LAB).args(["up", &prefix, nat1, nat2]).status().expect("run nat-lab");
        assert!(ok.success(), "nat-lab up failed");
        Lab(prefix)
    }

    /// `swarmplex ARGS` inside namespace `ns` of this lab.
    fn swarmplex(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &format!("{}-{ns}", self.0), BIN]).args(args);
        c
    }
}
impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(LAB).args(["down", &self.0]).status();
    }
}

/// Starts the bootstrap node and returns it with its QUIC addresses as seen from nat1's and
/// nat2's side.
fn bootstrap(lab: &Lab) -> (Proc, String, String) {
    let mut child = lab
        .swarmplex("inet", &["bootstrap", "--network", "natpipe", "--seed", &"11".repeat(32)])
        .stdout(Stdio::piped())
        .spawn()
        .expect("bootstrap");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    let (mut side1, mut side2) = (None, None);
    for line in out.lines() {
        let line = line.expect("a line");
        if line.contains("/quic-v1/") && line.starts_with("/ip4/11.0.1.1/") {
            side1 = Some(line.clone());
        }
        if line.contains("/quic-v1/") && line.starts_with("/ip4/11.0.2.1/") {
            side2 = Some(line.clone());
        }
        if side1.is_some() && side2.is_some() {
            break;
        }
    }
    (Proc(child), side1.expect("an address on 11.0.1.1"), side2.expect("an address on 11.0.2.1"))
}

fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_add(seed).wrapping_mul(2654435761) >> 13) as u8).collect()
}

/// One lab at a time: each runs five processes, and hole punching is timing-sensitive on a
/// loaded 2-core machine.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `pipe` on A and C across NATs of kinds `nat1`/`nat2`; returns each side's stderr.
fn pipe_across(nat1: &str, nat2: &str) -> (String, String) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let lab = Lab::up(nat1, nat2);
    let (_boot, via1, via2) = bootstrap(&lab);
    let topic = format!("pipe across {nat1} and {nat2}");
    let pipe = |ns: &str, via: &str| {
        lab.swarmplex(ns, &["pipe", &topic, "--no-mdns", "--network", "natpipe", "--bootstrap", via, "--timeout", "60"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pipe")
    };
    let (mut a, mut c) = (Proc(pipe("a", &via1)), Proc(pipe("c", &via2)));
    let (to_c, to_a) = (pseudo_random(2 << 20, 1), pseudo_random(1 << 20, 2));
    let feed = |child: &mut Proc, data: Vec<u8>| {
        let mut stdin = child.0.stdin.take().expect("stdin");
        std::thread::spawn(move || stdin.write_all(&data).expect("write stdin")) // drop closes
    };
    let feeders = [feed(&mut a, to_c.clone()), feed(&mut c, to_a.clone())];
    let read_all = |child: &mut Proc| {
        let (mut out, mut err) = (child.0.stdout.take().expect("stdout"), child.0.stderr.take().expect("stderr"));
        std::thread::spawn(move || {
            let (mut o, mut e) = (Vec::new(), String::new());
            out.read_to_end(&mut o).expect("read stdout");
            err.read_to_string(&mut e).expect("read stderr");
            (o, e)
        })
    };
    let (ra, rc) = (read_all(&mut a), read_all(&mut c));
    let ((a_got, a_err), (c_got, c_err)) = (ra.join().expect("A's output"), rc.join().expect("C's output"));
    for f in feeders {
        f.join().expect("feeder");
    }
    assert!(a.0.wait().expect("A exits").success(), "A failed: {a_err}");
    assert!(c.0.wait().expect("C exits").success(), "C failed: {c_err}");
    let digest = |d: &[u8]| -> [u8; 32] { Sha256::digest(d).into() };
    assert_eq!(c_got.len(), to_c.len(), "C got every byte: {c_err}");
    assert_eq!(digest(&c_got), digest(&to_c));
    assert_eq!(a_got.len(), to_a.len(), "A got every byte: {a_err}");
    assert_eq!(digest(&a_got), digest(&to_a));
    eprintln!("{nat1} x {nat2}: A {}; C {}", a_err.trim(), c_err.trim());
    (a_err, c_err)
}

fn skip() -> bool {
    std::env::var_os("SWARMPLEX_SKIP_NAT_TESTS").is_some()
}

/// Both `pipe` processes join as server and client, so each dials the other through a relay
/// at once; on a loaded machine the hole punch then sometimes misses its window and the session
/// starts relayed (2 of 7 clean-clone CI runs here), and nothing moves it to a direct path later
/// yet (issue 13, migration). So this test checks the bytes and that the path is one of the two;
/// that the hole is punched is asserted where one side is the server and the other the client:
/// `core/tests/nat.rs`, Node `test/nat.test.js`, Python `tests/test_nat.py`.
#[test]
fn pipe_across_two_port_preserving_nats_connects_directly_or_relayed() {
    if skip() {
        return;
    }
    let (a, c) = pipe_across("pp", "pp");
    let direct = a.contains("over quic (/ip4/11.0.2.2/") && c.contains("over quic (/ip4/11.0.1.2/");
    let relayed = a.contains("over relay") && c.contains("over relay");
    assert!(direct || relayed, "A: {a}\nC: {c}");
}

#[test]
fn pipe_across_two_symmetric_nats_goes_through_the_relay() {
    if skip() {
        return;
    }
    let (a, c) = pipe_across("sym", "sym");
    assert!(a.contains("over relay") && c.contains("over relay"), "A: {a}\nC: {c}");
}

#[test]
fn pipe_across_a_symmetric_and_a_port_preserving_nat_connects_both_ways() {
    if skip() {
        return;
    }
    pipe_across("sym", "pp");
    pipe_across("pp", "sym");
}
