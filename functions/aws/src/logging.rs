//! JSON logs on stdout, one object per event, as CloudWatch and Lambda's JSON log format
//! expect. The level comes from `RUST_LOG` (default `info`).

/// Installs the subscriber; call once at start. A second call does nothing.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .try_init();
}
