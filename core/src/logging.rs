//! Engine logs on stderr, for programs and bindings that have no logger of their own to forward
//! them to (the CLI, Node, Kotlin/Swift; Python forwards them to its `logging` instead).

use std::sync::Once;

/// The environment variable that turns logs on, in env-filter syntax (`swarmplex=debug`).
pub const LOG_ENV: &str = "SWARMPLEX_LOG";

/// If `SWARMPLEX_LOG` is set (and not empty), writes the engine's logs to stderr with that filter. Idempotent;
/// does nothing if the process already installed a `tracing` subscriber.
pub fn stderr_from_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use std::io::IsTerminal;
        if let Some(filter) = std::env::var(LOG_ENV).ok().filter(|f| !f.trim().is_empty()) {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr)
                .try_init();
        }
    });
}
