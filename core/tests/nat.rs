//! Hole punching across real NATs. The test builds its own little internet out of network
//! namespaces (iproute2 + nftables, as root):
//!
//! ```text
//!   A 192.168.1.2 ── 192.168.1.1 [nat1] 11.0.1.2 ──┐
//!                                                  11.0.1.1 [inet: B, P] 11.0.2.1
//!   C 192.168.2.2 ── 192.168.2.1 [nat2] 11.0.2.2 ──┘
//! ```
//!
//! The "internet" uses global-looking addresses (11.0.0.0/8; the namespaces have no route out),
//! because swarmplex treats private addresses as a LAN. nat1 and nat2 masquerade their LAN
//! behind their one public address; A and C can each reach the inet namespace (where B, a
//! bootstrap node, and P, a peer with no NAT, run) but cannot be dialed from outside.
//!
//! Topic tests (nothing configured but the bootstrap address): A and C find each other by topic
//! through B. Each learns it is behind a NAT (AutoNAT), reserves a slot on B's relay by itself,
//! announces the relay address, and the session starts relayed, then DCUtR punches a hole where
//! the NATs allow it.
//!
//! Peer-exchange tests: A knows only B, asks B for a peer, and is introduced to C; the
//! connection starts through B's relay (circuit relay v2) and:
//! - behind port-preserving NATs (Linux's default masquerade), DCUtR punches a hole and the
//!   session runs on a direct QUIC connection between the two NATs' public addresses;
//! - behind symmetric NATs (`masquerade random`: a new port for every destination) no hole
//!   can be punched and the session stays relayed, carrying every byte.
//!
//! Each node's engine runs on a runtime whose threads live in that node's namespace (a thread
//! enters the namespace with `setns` before it builds the runtime; its worker threads inherit
//! it), so every socket it opens is in that namespace.
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables): `.ci/run` installs them. Set
//! `SWARMPLEX_SKIP_NAT_TESTS=1` to skip on a machine that cannot create namespaces.

mod common;

use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use rand::RngCore;
use sha2::{Digest, Sha256};
use swarmplex::{Connection, Multiaddr, Reachability, RelayLimits, Swarm, SwarmEvent, SwarmOptions};

/// How the NAT routers map ports.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Nat {
    /// Linux's default masquerade: the source port is kept when free (endpoint-independent).
    PortPreserving,
    /// A random source port for every new flow (endpoint-dependent: "symmetric").
    Symmetric,
}

impl Nat {
    fn lab_name(self) -> &'static str {
        match self {
            Nat::PortPreserving => "pp",
            Nat::Symmetric => "sym",
        }
    }
}

/// The namespaces of one test (built by `scripts/nat-lab`); deleted on drop.
struct Net {
    prefix: String,
}

fn lab(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/nat-lab");
    let out = Command::new(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script} (needs root, iproute2 and nftables, or set SWARMPLEX_SKIP_NAT_TESTS=1): {e}"));
    assert!(out.status.success(), "nat-lab {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

impl Net {
    fn ns(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    fn new(nat: Nat) -> Net {
        Net::mixed(nat, nat)
    }

    /// nat1 of kind `n1` (in front of A), nat2 of kind `n2` (in front of C).
    fn mixed(n1: Nat, n2: Nat) -> Net {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let net = Net { prefix: format!("sx{}n{}", std::process::id(), COUNT.fetch_add(1, Ordering::Relaxed)) };
        lab(&["up", &net.prefix, n1.lab_name(), n2.lab_name()]);
        net
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        lab(&["down", &self.prefix]);
    }
}

/// A tokio runtime whose threads are in network namespace `ns`.
struct NsRuntime {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NsRuntime {
    fn new(ns: &str) -> NsRuntime {
        let file = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("namespace file");
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            // SAFETY: setns on this thread only, with a valid namespace fd.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
            tx.send(rt.handle().clone()).unwrap();
            rt.block_on(async {
                let _ = stopped.await;
            });
        });
        NsRuntime { handle: rx.recv().unwrap(), stop: Some(stop), thread: Some(thread) }
    }

    /// Starts a swarm on this runtime (so its sockets are in this namespace).
    async fn swarm(&self, opts: SwarmOptions) -> Swarm {
        self.handle.spawn(async move { Swarm::spawn(opts, &tokio::runtime::Handle::current()) }).await.unwrap().expect("swarm")
    }
}

impl Drop for NsRuntime {
    fn drop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = self.thread.take().unwrap().join();
    }
}

fn skip() -> bool {
    if std::env::var_os("SWARMPLEX_SKIP_NAT_TESTS").is_some() {
        eprintln!("SWARMPLEX_SKIP_NAT_TESTS is set: skipping the NAT test");
        return true;
    }
    false
}

/// The connection event from `key` (other events are skipped).
async fn connection_from(s: &Swarm, key: swarmplex::PublicKey) -> Connection {
    match next_matching(s, "a connection from the peer", |e| matches!(e, SwarmEvent::Connection(c) if c.remote_public_key() == key)).await {
        SwarmEvent::Connection(c) => c,
        _ => unreachable!(),
    }
}

/// `n` random bytes each way, compared by SHA-256.
async fn bytes_both_ways(x: &Connection, y: &Connection, n: usize) {
    for (from, to) in [(x, y), (y, x)] {
        let mut data = vec![0u8; n];
        rand::thread_rng().fill_bytes(&mut data);
        let digest: [u8; 32] = Sha256::digest(&data).into();
        let w = from.socket();
        let writer = tokio::spawn(async move {
            for c in data.chunks(16 * 1024) {
                w.write(c).await.unwrap();
            }
        });
        let (r, mut got) = (to.socket(), Vec::with_capacity(n));
        while got.len() < n {
            got.extend(within("bytes across the NATs", r.read(64 * 1024)).await.unwrap());
        }
        writer.await.unwrap();
        assert_eq!(<[u8; 32]>::from(Sha256::digest(&got)), digest);
    }
}

/// Asserts that A's and C's ends each see the other's NAT's public address: the punched hole,
/// not a private address.
fn assert_through_the_holes(ac: &Connection, ca: &Connection) {
    assert!(ac.remote_address().to_string().starts_with("/ip4/11.0.2.2/udp/"), "{}", ac.remote_address());
    assert!(ca.remote_address().to_string().starts_with("/ip4/11.0.1.2/udp/"), "{}", ca.remote_address());
}

async fn destroy_all(swarms: impl IntoIterator<Item = Swarm>) {
    for s in swarms {
        s.destroy().await;
    }
}

/// A and C behind their NATs, B on the "internet": A reaches C through B. Returns A's and C's
/// ends of the A–C session (the runtimes and namespaces must outlive them).
async fn introduce(net: &Net) -> (Vec<NsRuntime>, Vec<Swarm>, Connection, Connection) {
    init_logging();
    let rts: Vec<NsRuntime> = ["inet", "a", "c"].iter().map(|n| NsRuntime::new(&net.ns(n))).collect();
    // Each listens on QUIC and TCP on every address of its namespace.
    let start = |i: usize| {
        let rt = &rts[i];
        async move {
            let s = rt.swarm(SwarmOptions::exchange("nat")).await;
            let quic = within("listening", s.listen_on("/ip4/0.0.0.0/udp/0/quic-v1".parse().unwrap())).await.unwrap();
            within("listening", s.listen_on("/ip4/0.0.0.0/tcp/0".parse().unwrap())).await.unwrap();
            (s, quic)
        }
    };
    let (b, b_quic) = start(0).await;
    let b_port: u16 = b_quic.to_string().split('/').nth(4).unwrap().parse().unwrap();
    let (a, _) = start(1).await;
    let (c, _) = start(2).await;
    let via = |ip: &str| -> Multiaddr { format!("/ip4/{ip}/udp/{b_port}/quic-v1").parse().unwrap() };
    within("A connects to B", a.connect(via("11.0.1.1"))).await.unwrap();
    within("C connects to B", c.connect(via("11.0.2.1"))).await.unwrap();
    let ac = within("A gets C from B", a.get_new_peer(Some(b.public_key()))).await.unwrap();
    assert_eq!(ac.remote_public_key(), c.public_key());
    let ca = connection_from(&c, a.public_key()).await;
    assert_eq!(ac.handshake_hash(), ca.handshake_hash());
    (rts, vec![a, b, c], ac, ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hole_punching_gives_a_direct_connection_across_two_nats() {
    if skip() {
        return;
    }
    let net = Net::new(Nat::PortPreserving);
    let (_rts, swarms, ac, ca) = introduce(&net).await;
    assert_eq!(ac.transport(), "quic", "A's end: {}", ac.remote_address());
    assert_eq!(ca.transport(), "quic", "C's end: {}", ca.remote_address());
    assert_through_the_holes(&ac, &ca);
    bytes_both_ways(&ac, &ca, 4 << 20).await;
    destroy_all(swarms).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_symmetric_nats_the_session_stays_relayed_and_carries_every_byte() {
    if skip() {
        return;
    }
    let net = Net::new(Nat::Symmetric);
    let (_rts, swarms, ac, ca) = introduce(&net).await;
    assert_eq!(ac.transport(), "relay", "A's end: {}", ac.remote_address());
    assert_eq!(ca.transport(), "relay", "C's end: {}", ca.remote_address());
    bytes_both_ways(&ac, &ca, 256 * 1024).await;
    destroy_all(swarms).await;
}

// ---- topics across NATs, nothing configured but a bootstrap node --------------------------------

const NETWORK: &str = "natsuite";

/// B: a bootstrap node for the private network, as `swarmplex bootstrap --network` runs it.
async fn bootstrap_node(rt: &NsRuntime) -> (Swarm, u16) {
    bootstrap_with(rt, RelayLimits::private_network()).await
}

/// B with these relay limits.
async fn bootstrap_with(rt: &NsRuntime, limits: RelayLimits) -> (Swarm, u16) {
    let b = rt
        .swarm(SwarmOptions {
            network: Some(NETWORK.into()),
            bootstrap: Some(vec![]),
            dht_server: true,
            mdns: false,
            relay: Some(limits),
            ..Default::default()
        })
        .await;
    let addrs = within("B listening", b.listen_addrs_all()).await.unwrap();
    let quic = addrs.iter().find(|a| a.to_string().contains("/quic-v1")).expect("a QUIC address");
    let port = quic.to_string().split('/').nth(4).unwrap().parse().unwrap();
    (b, port)
}

/// An app peer whose only configuration is the bootstrap node, reached at `ip`.
async fn app_peer(rt: &NsRuntime, b: &Swarm, ip: &str, port: u16) -> Swarm {
    app_peer_of(rt, &[(b, port)], ip).await
}

/// An app peer whose only configuration is these bootstrap nodes, reached at `ip`.
async fn app_peer_of(rt: &NsRuntime, nodes: &[(&Swarm, u16)], ip: &str) -> Swarm {
    let boot = nodes.iter().map(|(b, port)| format!("/ip4/{ip}/udp/{port}/quic-v1/p2p/{}", b.public_key().to_peer_id())).collect();
    rt.swarm(SwarmOptions { network: Some(NETWORK.into()), bootstrap: Some(boot), mdns: false, ..Default::default() }).await
}

/// The connection event from `key`, and asserts no other connection or disconnection event came
/// before it.
async fn only_connection_from(s: &Swarm, key: swarmplex::PublicKey) -> Connection {
    let e = next_matching(s, "a connection", |e| matches!(e, SwarmEvent::Connection(_) | SwarmEvent::Disconnected { .. })).await;
    match e {
        SwarmEvent::Connection(c) if c.remote_public_key() == key => c,
        other => panic!("expected one connection from the peer, got {other:?}"),
    }
}

/// Asserts what a NATed server advertises: a relay circuit through B, no private address; and
/// that it learns it is behind a NAT (it may still be Unknown, holding a relay, when the session
/// came: it reserves after 5 s of Unknown, AutoNAT answers later).
async fn assert_announces_relay_only(s: &Swarm) {
    let r = s.reachability().await.unwrap();
    if !matches!(r.state, Reachability::Private { .. }) {
        assert_eq!(r.state, Reachability::Unknown, "{r:?}");
        next_matching(s, "Private", |e| matches!(e, SwarmEvent::Reachability(Reachability::Private { .. }))).await;
    }
    assert!(!r.relays.is_empty(), "holds a relay reservation: {r:?}");
    assert!(r.external.iter().any(|a| a.to_string().contains("/p2p-circuit")), "{r:?}");
    for a in &r.external {
        let a = a.to_string();
        assert!(!a.contains("/192.168.") && !a.contains("/127.0.0.1/"), "private address advertised: {a}");
    }
}

/// A (server, behind nat1) and C (client, behind nat2) meet by topic through B. Returns the
/// runtimes and swarms (to keep alive) and A's and C's ends.
async fn meet_by_topic(net: &Net) -> (Vec<NsRuntime>, Vec<Swarm>, Connection, Connection) {
    meet_through(net, RelayLimits::private_network()).await
}

/// As [`meet_by_topic`], with B's relay limited to `limits`.
async fn meet_through(net: &Net, limits: RelayLimits) -> (Vec<NsRuntime>, Vec<Swarm>, Connection, Connection) {
    init_logging();
    let rts: Vec<NsRuntime> = ["inet", "a", "c"].iter().map(|n| NsRuntime::new(&net.ns(n))).collect();
    let (b, port) = bootstrap_with(&rts[0], limits).await;
    let a = app_peer(&rts[1], &b, "11.0.1.1", port).await;
    let c = app_peer(&rts[2], &b, "11.0.2.1", port).await;
    let t = swarmplex::Topic::from_name("across the NATs");
    a.join(t, swarmplex::JoinOptions { server: true, client: false }).unwrap();
    c.join(t, swarmplex::JoinOptions { server: false, client: true }).unwrap();
    let (ac, ca) = tokio::join!(only_connection_from(&a, c.public_key()), only_connection_from(&c, a.public_key()));
    assert_eq!(ac.handshake_hash(), ca.handshake_hash());
    assert_announces_relay_only(&a).await;
    (rts, vec![a, b, c], ac, ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_behind_port_preserving_nats_meet_by_topic_and_punch_a_direct_path() {
    if skip() {
        return;
    }
    let net = Net::new(Nat::PortPreserving);
    let (_rts, swarms, ac, ca) = meet_by_topic(&net).await;
    assert_eq!(ac.transport(), "quic", "A's end: {}", ac.remote_address());
    assert_through_the_holes(&ac, &ca);
    bytes_both_ways(&ac, &ca, 4 << 20).await;
    destroy_all(swarms).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_behind_symmetric_nats_meet_by_topic_through_the_relay() {
    if skip() {
        return;
    }
    let net = Net::new(Nat::Symmetric);
    let (_rts, swarms, ac, ca) = meet_by_topic(&net).await;
    assert_eq!(ac.transport(), "relay", "A's end: {}", ac.remote_address());
    assert_eq!(ca.transport(), "relay", "C's end: {}", ca.remote_address());
    let b = &swarms[1];
    for end in [&ac, &ca] {
        let path = end.path();
        assert!(path.relayed && path.relay == Some(b.public_key()), "through the bootstrap node: {path:?}");
    }
    // The private network's relay carries more than the public default's 1 MiB.
    bytes_both_ways(&ac, &ca, 4 << 20).await;
    destroy_all(swarms).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symmetric_nat_and_a_port_preserving_one_meet_by_topic() {
    if skip() {
        return;
    }
    let net = Net::mixed(Nat::Symmetric, Nat::PortPreserving);
    let (_rts, swarms, ac, ca) = meet_by_topic(&net).await;
    eprintln!("symmetric server x port-preserving client: {} ({})", ac.transport(), ac.remote_address());
    bytes_both_ways(&ac, &ca, 1 << 20).await;
    destroy_all(swarms).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_no_nat_is_public_and_a_natted_client_dials_it_directly() {
    if skip() {
        return;
    }
    init_logging();
    let net = Net::new(Nat::PortPreserving);
    let rts: Vec<NsRuntime> = ["inet", "inet", "c"].iter().map(|n| NsRuntime::new(&net.ns(n))).collect();
    let (b, port) = bootstrap_node(&rts[0]).await;
    let p = app_peer(&rts[1], &b, "11.0.1.1", port).await;
    let c = app_peer(&rts[2], &b, "11.0.2.1", port).await;
    let t = swarmplex::Topic::from_name("to a public peer");
    p.join(t, swarmplex::JoinOptions { server: true, client: false }).unwrap();
    c.join(t, swarmplex::JoinOptions { server: false, client: true }).unwrap();
    let (pc, cp) = tokio::join!(only_connection_from(&p, c.public_key()), only_connection_from(&c, p.public_key()));
    assert_eq!(cp.transport(), "quic", "{}", cp.remote_address());
    assert!(cp.remote_address().to_string().starts_with("/ip4/11.0."), "{}", cp.remote_address());
    let r = p.reachability().await.unwrap();
    assert_eq!(r.state, Reachability::Public, "{r:?}");
    assert!(r.relays.is_empty(), "a public peer reserves no relay: {r:?}");
    assert!(r.external.iter().all(|a| !a.to_string().contains("p2p-circuit")), "{r:?}");
    bytes_both_ways(&pc, &cp, 1 << 20).await;
    destroy_all([p, b, c]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_cuts_a_session_at_its_limit_ends_it_with_relay_limit_and_no_reconnect_storm() {
    if skip() {
        return;
    }
    let net = Net::new(Nat::Symmetric);
    // The public network's bounds (1 MiB per circuit), as relays found on Amino have.
    let (_rts, swarms, ac, ca) = meet_through(&net, RelayLimits::default()).await;
    assert_eq!(ac.transport(), "relay");
    let (a, c) = (&swarms[0], &swarms[2]);
    let w = ac.socket();
    let writer = tokio::spawn(async move {
        let chunk = vec![7u8; 64 * 1024];
        for _ in 0..64 {
            if w.write(&chunk).await.is_err() {
                return; // cut, as expected
            }
        }
    });
    let r = ca.socket();
    let read = tokio::spawn(async move { while r.read(64 * 1024).await.is_ok_and(|d| !d.is_empty()) {} });
    for s in [a, c] {
        let e = next_matching(s, "the session's end", |e| matches!(e, SwarmEvent::Disconnected { .. })).await;
        let SwarmEvent::Disconnected { reason, .. } = e else { unreachable!() };
        assert_eq!(reason.kind(), swarmplex::ErrorKind::RelayLimit, "{reason}");
    }
    let _ = tokio::join!(writer, read);
    // The client still wants the server: it reconnects, after backoff, once; the new session
    // carries little and stays up.
    let again = only_connection_from(c, a.public_key()).await;
    assert_eq!(again.transport(), "relay");
    let more = drain_for(c, std::time::Duration::from_secs(8)).await;
    let churn = more.iter().filter(|e| matches!(e, SwarmEvent::Connection(_) | SwarmEvent::Disconnected { .. })).count();
    assert_eq!(churn, 0, "no flapping: {more:?}");
    destroy_all(swarms).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_relays_die_reserves_on_another_and_new_clients_still_reach_it() {
    if skip() {
        return;
    }
    init_logging();
    let net = Net::new(Nat::Symmetric);
    let rts: Vec<NsRuntime> = ["inet", "a", "c"].iter().map(|n| NsRuntime::new(&net.ns(n))).collect();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(bootstrap_node(&rts[0]).await);
    }
    let all: Vec<(&Swarm, u16)> = nodes.iter().map(|(b, p)| (b, *p)).collect();
    let a = app_peer_of(&rts[1], &all, "11.0.1.1").await;
    let t = swarmplex::Topic::from_name("relays come and go");
    a.join(t, swarmplex::JoinOptions { server: true, client: false }).unwrap();
    // A first client proves A is announced; A holds two relays (of three candidates).
    let c1 = app_peer_of(&rts[2], &all, "11.0.2.1").await;
    c1.join(t, swarmplex::JoinOptions { server: false, client: true }).unwrap();
    only_connection_from(&c1, a.public_key()).await;
    let held = a.reachability().await.unwrap().relays;
    assert_eq!(held.len(), 2, "{held:?}");
    c1.destroy().await;
    // Both of A's relays go away (as bootstrap nodes restarting would).
    let (gone, kept): (Vec<_>, Vec<_>) = nodes.into_iter().partition(|(b, _)| held.contains(&b.public_key()));
    for (b, _) in &gone {
        b.destroy().await;
    }
    let (b3, p3) = &kept[0];
    // A new client that knows only the third node finds A through it: A reserved there at once
    // and announced the new relay address. The announce reaches the third node only once A's
    // DHT query gave up on the two dead ones (up to kad's 10 s per peer), and the client may
    // first find A's old record (circuits through the dead relays): it meets A at a later lookup.
    let c2 = app_peer_of(&rts[2], &[(b3, *p3)], "11.0.2.1").await;
    c2.join(t, swarmplex::JoinOptions { server: false, client: true }).unwrap();
    let started = std::time::Instant::now();
    let wait = async {
        loop {
            if let SwarmEvent::Connection(c) = c2.next_event().await.expect("swarm ended") {
                return c;
            }
        }
    };
    let conn = tokio::time::timeout(std::time::Duration::from_secs(90), wait).await.expect("C2 meets A within 90 s");
    assert_eq!(conn.remote_public_key(), a.public_key());
    eprintln!("a client met the server {:.1} s after its relays died", started.elapsed().as_secs_f64());
    assert_eq!(conn.path().relay, Some(b3.public_key()), "{:?}", conn.path());
    assert_eq!(a.reachability().await.unwrap().relays, vec![b3.public_key()]);
    destroy_all([a, c2]).await;
    b3.destroy().await;
}
