//! `ReconcilerConfig::from_env` reads each setting away from its default and refuses each
//! that would break the function, naming the variable. One test: this binary is its own
//! process, and the environment is set case after case, never from two threads.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hookvault_reconciler::ReconcilerConfig;

/// The variables the function needs, valid.
const BASE: &[(&str, &str)] = &[
    ("ARCHIVE_BUCKET", "archive"),
    ("QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/1/events"),
    (
        "CHECK_QUEUE_URL",
        "https://sqs.eu-west-1.amazonaws.com/1/checks",
    ),
    ("API_KEY_SECRET_ID", "hookvault/provider-api-key"),
];

const ALL: &[&str] = &[
    "ARCHIVE_BUCKET",
    "QUEUE_URL",
    "CHECK_QUEUE_URL",
    "API_KEY_SECRET_ID",
    "API_KEY_CACHE_TTL_SECS",
    "PROVIDER_API_URL",
    "PROVIDER",
    "HTTP_TIMEOUT_MS",
    "MAX_ANSWER_BYTES",
    "CHECK_MAX_AGE_SECS",
    "CHECK_MAX_INTERVAL_SECS",
    "SWEEP_ENABLED",
    "SWEEP_LOOKBACK_SECS",
    "METRICS_NAMESPACE",
];

/// The config read with `BASE` and `over` (a value of "" unsets the variable).
fn read(over: &[(&str, &str)]) -> Result<ReconcilerConfig, String> {
    hookvault_aws::env::set_only(ALL, BASE, over);
    ReconcilerConfig::from_env().map_err(|e| e.to_string())
}

#[test]
fn every_setting_is_read_and_every_refusal_names_its_variable() {
    // Defaults.
    let c = read(&[]).unwrap();
    assert_eq!(c.bucket, "archive");
    assert_eq!(c.queue_url, "https://sqs.eu-west-1.amazonaws.com/1/events");
    assert_eq!(
        c.check_queue_url,
        "https://sqs.eu-west-1.amazonaws.com/1/checks"
    );
    assert_eq!(c.api_key_secret_id, "hookvault/provider-api-key");
    assert_eq!(c.provider_api_url, "https://api.skytells.ai");
    assert_eq!(c.provider, "skytells");
    assert_eq!(c.http_timeout, Duration::from_millis(10_000));
    assert_eq!(c.max_answer_bytes, 64 * 1024 * 1024);
    assert_eq!(c.cache_ttl, Duration::from_secs(300));
    assert_eq!(c.max_age_secs, 86_400);
    assert_eq!(c.max_interval_secs, 60);
    assert!(!c.sweep_enabled);
    assert_eq!(c.sweep_lookback_secs, 3600);
    assert!(!c.is_fifo());

    // Each setting away from its default is read.
    let c = read(&[
        ("PROVIDER_API_URL", "http://127.0.0.1:9/"),
        ("PROVIDER", "sky-2"),
        ("HTTP_TIMEOUT_MS", "250"),
        ("MAX_ANSWER_BYTES", "2048"),
        ("API_KEY_CACHE_TTL_SECS", "5"),
        ("CHECK_MAX_AGE_SECS", "600"),
        ("CHECK_MAX_INTERVAL_SECS", "900"),
        ("SWEEP_ENABLED", "true"),
        ("SWEEP_LOOKBACK_SECS", "7200"),
        (
            "QUEUE_URL",
            "https://sqs.eu-west-1.amazonaws.com/1/events.fifo",
        ),
        ("METRICS_NAMESPACE", "hookvault/test"),
    ])
    .unwrap();
    assert_eq!(
        c.provider_api_url, "http://127.0.0.1:9",
        "the trailing / is dropped"
    );
    assert_eq!(c.provider, "sky-2");
    assert_eq!(c.http_timeout, Duration::from_millis(250));
    assert_eq!(c.max_answer_bytes, 2048);
    assert_eq!(c.cache_ttl, Duration::from_secs(5));
    assert_eq!(c.max_age_secs, 600);
    assert_eq!(c.max_interval_secs, 900);
    assert!(c.sweep_enabled);
    assert_eq!(c.sweep_lookback_secs, 7200);
    assert!(c.is_fifo());
    assert_eq!(
        hookvault_aws::metrics::Emf::from_env("reconciler").namespace,
        "hookvault/test"
    );

    // Refusals, each naming the variable.
    for (over, says) in [
        (&[("ARCHIVE_BUCKET", "")][..], "ARCHIVE_BUCKET is not set"),
        (&[("QUEUE_URL", "")], "QUEUE_URL is not set"),
        (&[("CHECK_QUEUE_URL", "")], "CHECK_QUEUE_URL is not set"),
        (&[("API_KEY_SECRET_ID", "")], "API_KEY_SECRET_ID is not set"),
        (
            &[("CHECK_MAX_INTERVAL_SECS", "901")],
            "CHECK_MAX_INTERVAL_SECS is invalid: expected 1 to 900 seconds",
        ),
        (
            &[("CHECK_MAX_INTERVAL_SECS", "0")],
            "CHECK_MAX_INTERVAL_SECS is invalid: expected a number of at least 1",
        ),
        (
            &[("CHECK_MAX_AGE_SECS", "0")],
            "CHECK_MAX_AGE_SECS is invalid: expected a number of at least 1",
        ),
        (
            &[("SWEEP_ENABLED", "yes")],
            "SWEEP_ENABLED is invalid: expected true or false",
        ),
        (
            &[("SWEEP_LOOKBACK_SECS", "soon")],
            "SWEEP_LOOKBACK_SECS is invalid: expected a number",
        ),
        (
            &[("MAX_ANSWER_BYTES", "0")],
            "MAX_ANSWER_BYTES is invalid: expected a number of at least 1",
        ),
        (
            &[("HTTP_TIMEOUT_MS", "0")],
            "HTTP_TIMEOUT_MS is invalid: expected a number of at least 1",
        ),
        (
            &[("API_KEY_CACHE_TTL_SECS", "-5")],
            "API_KEY_CACHE_TTL_SECS is invalid: expected a number",
        ),
        (
            &[("PROVIDER", "a/b")],
            "PROVIDER is invalid: expected a provider name",
        ),
    ] {
        let e = read(over).map(|_| ()).unwrap_err();
        assert!(e.contains(says), "{over:?}: {e}");
    }
}
