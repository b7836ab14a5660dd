//! Runs every example binary and checks what it prints, so that no example rots.

use std::process::Command;
use std::time::Duration;

fn run(bin: &str, args: &[&str]) -> String {
    let mut child = Command::new(bin)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Bound each example: a hang fails the test instead of blocking the suite.
    let started = std::time::Instant::now();
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{bin} did not finish in 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{bin} failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn echo_by_key() {
    let out = run(env!("CARGO_BIN_EXE_echo_by_key"), &[]);
    assert!(out.contains("echoed: ping over swarmplex"), "{out}");
}

#[test]
fn file_transfer() {
    let out = run(env!("CARGO_BIN_EXE_file_transfer"), &[]);
    assert!(out.contains("received generated.bin: 16777216 bytes") && out.contains("verified"), "{out}");
    let path = std::env::temp_dir().join(format!("swarmplex-example-{}.txt", std::process::id()));
    std::fs::write(&path, b"a small file\n").unwrap();
    let out = run(env!("CARGO_BIN_EXE_file_transfer"), &[path.to_str().unwrap()]);
    assert!(out.contains(": 13 bytes") && out.contains("verified"), "{out}");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn topic_messages() {
    let out = run(env!("CARGO_BIN_EXE_topic_messages"), &[]);
    assert!(out.contains("reader got [news] swarmplex 0.1 released"), "{out}");
    assert!(out.contains("other got [sports] 2 - 1"), "{out}");
}

#[test]
fn chat() {
    let out = run(env!("CARGO_BIN_EXE_chat"), &[]);
    assert!(out.contains("share one connection: true"), "{out}");
    assert!(out.contains("bob reads: hi bob!") && out.contains("alice reads: hello alice!"), "{out}");
}
