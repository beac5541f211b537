//! Logs: JSON lines on stdout, one object per event, as log collectors in a cluster expect.
//! `FERRY_LOG` (what the chart sets), else `RUST_LOG`, filters them (default `info`).

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_env("FERRY_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .with_current_span(false)
        .with_env_filter(filter)
        .init();
}
