//! The crate's layering, checked on its source (see the `# Layout` section of the crate docs):
//! the state machines do no I/O and read no clock, nothing below the driver names it, every
//! file stays small, and the loop has no `unwrap()` to panic on.

use std::fs;
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's text without its unit tests (`#[cfg(test)] mod tests`) and without `tests.rs`
/// files and the files under a `tests/` module, which may use the real clock.
fn production_code(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") || path.parent().is_some_and(|d| d.ends_with("tests")) {
        return String::new();
    }
    let text = fs::read_to_string(path).expect("read");
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn src() -> (PathBuf, Vec<PathBuf>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    files.sort();
    (root, files)
}

#[test]
fn the_state_machines_do_no_io_and_read_no_clock() {
    let (root, files) = src();
    for f in files.iter().filter(|f| f.starts_with(root.join("state"))) {
        let code = production_code(f);
        for banned in ["tokio", "libp2p::Swarm", "Instant::now", "thread_rng", "rand::random", "TcpStream", "UdpSocket", "crate::engine", "crate::tasks", "crate::session"] {
            assert!(!code.contains(banned), "{} uses {banned}", f.display());
        }
    }
}

#[test]
fn only_the_swarm_handle_names_the_driver() {
    let (root, files) = src();
    for f in &files {
        let rel = f.strip_prefix(&root).expect("under src");
        if rel.starts_with("engine") || rel == Path::new("swarm.rs") || rel == Path::new("lib.rs") {
            continue;
        }
        assert!(!production_code(f).contains("crate::engine"), "{} imports the driver", rel.display());
    }
}

#[test]
fn no_source_file_is_over_700_lines() {
    let (root, files) = src();
    for f in &files {
        let lines = fs::read_to_string(f).expect("read").lines().count();
        assert!(lines <= 700, "{} has {lines} lines", f.strip_prefix(&root).unwrap_or(f).display());
    }
}

#[test]
fn the_driver_and_the_state_machines_do_not_unwrap() {
    let (root, files) = src();
    for f in files.iter().filter(|f| f.starts_with(root.join("state")) || f.starts_with(root.join("engine"))) {
        let code = production_code(f);
        for (n, line) in code.lines().enumerate() {
            assert!(!line.contains(".unwrap()") && !line.contains(".expect("), "{}:{} may panic: {line}", f.display(), n + 1);
        }
    }
}
