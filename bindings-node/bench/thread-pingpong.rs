//! The cost of crossing threads on this machine, for reading `compare.js`'s round trips: two OS
//! threads ping-pong a value over std channels (two crossings per round trip), median of 2000.
//!
//!     rustc -O -o /tmp/thread-pingpong bindings-node/bench/thread-pingpong.rs && /tmp/thread-pingpong
use std::sync::mpsc;
use std::time::Instant;

fn main() {
    let (to_echo, echo_rx) = mpsc::channel::<u64>();
    let (to_main, main_rx) = mpsc::channel::<u64>();
    std::thread::spawn(move || {
        for v in echo_rx {
            to_main.send(v).unwrap();
        }
    });
    let round = || {
        let t0 = Instant::now();
        to_echo.send(1).unwrap();
        main_rx.recv().unwrap();
        t0.elapsed().as_nanos() as f64 / 1000.0
    };
    for _ in 0..100 {
        round(); // warm-up
    }
    let mut us: Vec<f64> = (0..2000).map(|_| round()).collect();
    us.sort_by(|a, b| a.total_cmp(b));
    println!("thread ping-pong round trip: median {:.1} µs, p90 {:.1} µs", us[1000], us[1800]);
}
