//! A shared tokio runtime for callers that have none (the language bindings).

use std::sync::OnceLock;

/// A multi-threaded runtime created on first use and kept for the life of the process.
pub fn shared() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("swarmplex")
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}
