//! LAN discovery with no bootstrap at all: two hosts in two network namespaces that this test
//! creates, joined by a veth pair, find each other by topic through mDNS and move bytes.
//! Needs root and iproute2 (as `make test` has); the namespaces and veth are removed afterwards.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_swarmplex");

fn ip(args: &[&str]) {
    let ok = Command::new("ip").args(args).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "ip {args:?} failed");
}

/// Two named namespaces linked by a veth pair, with 10.77.x.1/.2; removed on drop.
struct Lan {
    a: String,
    b: String,
}

impl Lan {
    fn new() -> Lan {
        let id = std::process::id() % 100_000;
        let (a, b) = (format!("spx-a-{id}"), format!("spx-b-{id}"));
        let (va, vb) = (format!("spxa{id}"), format!("spxb{id}"));
        let subnet = 10 + id % 200;
        ip(&["netns", "add", &a]);
        ip(&["netns", "add", &b]);
        let lan = Lan { a: a.clone(), b: b.clone() };
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb]);
        ip(&["link", "set", &va, "netns", &a]);
        ip(&["link", "set", &vb, "netns", &b]);
        for (ns, dev, host) in [(&a, &va, 1), (&b, &vb, 2)] {
            ip(&["-n", ns, "addr", "add", &format!("10.77.{subnet}.{host}/24"), "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        lan
    }

    fn pipe(&self, ns: &str, topic: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, BIN, "pipe", topic, "--bootstrap", "none", "--timeout", "40"]);
        c
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

#[test]
fn two_hosts_find_each_other_by_topic_over_mdns_with_no_bootstrap() {
    let lan = Lan::new();
    let data = b"over the LAN, no internet, no bootstrap".repeat(1000);
    let mut a = lan.pipe(&lan.a, "lan-topic").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut b = lan.pipe(&lan.b, "lan-topic").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut a_in = a.stdin.take().unwrap();
    let payload = data.clone();
    let feeder = std::thread::spawn(move || a_in.write_all(&payload).unwrap());
    drop(b.stdin.take());
    let mut got = Vec::new();
    b.stdout.take().unwrap().read_to_end(&mut got).unwrap();
    feeder.join().unwrap();
    let (sa, sb) = (a.wait().unwrap(), b.wait().unwrap());
    assert!(sa.success() && sb.success(), "exit codes {sa} / {sb}");
    assert_eq!(got, data);
}
