//! `ApiConfig::from_env` refuses each setting that would break the function, naming the
//! variable, and reads each one away from its default. One test: this binary is its own
//! process, and the environment is set case after case, never from two threads.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hookvault_api::config::ApiConfig;

/// The variables the function needs, valid.
const BASE: &[(&str, &str)] = &[
    ("API_KEY_SECRET_ID", "api-key"),
    ("CALLER_KEYS_SECRET_ID", "caller-keys"),
    (
        "EDGE_WEBHOOK_URL",
        "https://edge.example.com/webhooks/skytells",
    ),
    ("ARCHIVE_BUCKET", "archive"),
];

const ALL: &[&str] = &[
    "PROVIDER_API_URL",
    "API_KEY_SECRET_ID",
    "API_KEY_CACHE_TTL_SECS",
    "EDGE_WEBHOOK_URL",
    "ARCHIVE_BUCKET",
    "PRESIGN_EXPIRY_SECS",
    "CALLER_KEYS_SECRET_ID",
    "MAX_REQUEST_BYTES",
    "HTTP_TIMEOUT_MS",
    "PROVIDER_DIALECT",
    "CHECK_QUEUE_URL",
    "CHECK_FIRST_DELAY_SECS",
];

/// The config read with `BASE` and `over` (a value of "" unsets the variable).
fn read(over: &[(&str, &str)]) -> Result<ApiConfig, String> {
    hookvault_aws::env::set_only(ALL, BASE, over);
    ApiConfig::from_env().map_err(|e| e.to_string())
}

#[test]
fn every_setting_is_read_and_every_refusal_names_its_variable() {
    // Defaults.
    let c = read(&[]).unwrap();
    assert_eq!(c.provider_api_url, "https://api.skytells.ai");
    assert_eq!(c.presign_expiry, Duration::from_secs(900));
    assert_eq!(c.http_timeout, Duration::from_millis(10_000));
    assert_eq!(c.cache_ttl, Duration::from_secs(300));
    assert_eq!(c.max_request_bytes, 256 * 1024);
    assert_eq!(c.check_queue_url, None, "no check queue: no checks");
    assert_eq!(c.check_first_delay_secs, 30);
    assert_eq!(c.provider(), "skytells");

    // Each setting away from its default is read.
    let c = read(&[
        ("PROVIDER_API_URL", "http://127.0.0.1:9/"),
        ("PRESIGN_EXPIRY_SECS", "604800"),
        ("HTTP_TIMEOUT_MS", "250"),
        ("API_KEY_CACHE_TTL_SECS", "5"),
        ("MAX_REQUEST_BYTES", "1024"),
        ("PROVIDER_DIALECT", "legacy"),
        (
            "CHECK_QUEUE_URL",
            "https://sqs.eu-west-1.amazonaws.com/1/hookvault-checks",
        ),
        ("CHECK_FIRST_DELAY_SECS", "0"),
    ])
    .unwrap();
    assert_eq!(
        c.check_queue_url.as_deref(),
        Some("https://sqs.eu-west-1.amazonaws.com/1/hookvault-checks")
    );
    assert_eq!(c.check_first_delay_secs, 0);
    assert_eq!(
        c.provider_api_url, "http://127.0.0.1:9",
        "the trailing / is dropped"
    );
    assert_eq!(c.presign_expiry, Duration::from_secs(604_800));
    assert_eq!(c.http_timeout, Duration::from_millis(250));
    assert_eq!(c.cache_ttl, Duration::from_secs(5));
    assert_eq!(c.max_request_bytes, 1024);
    assert_eq!(c.provider_dialect.to_string(), "legacy");

    // Refusals, each naming the variable and what was expected.
    for (over, says) in [
        (
            &[("PRESIGN_EXPIRY_SECS", "0")][..],
            "PRESIGN_EXPIRY_SECS is invalid: expected 1 to 604800 seconds",
        ),
        (
            &[("PRESIGN_EXPIRY_SECS", "604801")],
            "PRESIGN_EXPIRY_SECS is invalid: expected 1 to 604800 seconds",
        ),
        (
            &[("PRESIGN_EXPIRY_SECS", "-1")],
            "PRESIGN_EXPIRY_SECS is invalid: expected a number",
        ),
        (
            &[("EDGE_WEBHOOK_URL", "edge.example.com/webhooks")],
            "EDGE_WEBHOOK_URL is invalid: expected an http(s) URL",
        ),
        (
            &[("EDGE_WEBHOOK_URL", "ftp://edge.example.com/")],
            "EDGE_WEBHOOK_URL is invalid: expected an http(s) URL",
        ),
        (&[("EDGE_WEBHOOK_URL", "")], "EDGE_WEBHOOK_URL is not set"),
        (&[("API_KEY_SECRET_ID", "")], "API_KEY_SECRET_ID is not set"),
        (
            &[("CALLER_KEYS_SECRET_ID", "")],
            "CALLER_KEYS_SECRET_ID is not set",
        ),
        (&[("ARCHIVE_BUCKET", "")], "ARCHIVE_BUCKET is not set"),
        (
            &[("HTTP_TIMEOUT_MS", "0")],
            "HTTP_TIMEOUT_MS is invalid: expected a number of at least 1",
        ),
        (
            &[("HTTP_TIMEOUT_MS", "soon")],
            "HTTP_TIMEOUT_MS is invalid: expected a number",
        ),
        (
            &[("MAX_REQUEST_BYTES", "0")],
            "MAX_REQUEST_BYTES is invalid: expected a number of at least 1",
        ),
        (
            &[("API_KEY_CACHE_TTL_SECS", "-5")],
            "API_KEY_CACHE_TTL_SECS is invalid: expected a number",
        ),
        (
            &[("CHECK_FIRST_DELAY_SECS", "901")],
            "CHECK_FIRST_DELAY_SECS is invalid: expected 0 to 900 seconds",
        ),
        (
            &[("CHECK_FIRST_DELAY_SECS", "-1")],
            "CHECK_FIRST_DELAY_SECS is invalid: expected a number",
        ),
        (
            &[("PROVIDER_DIALECT", "v2")],
            "PROVIDER_DIALECT is invalid: expected current",
        ),
    ] {
        let e = read(over).map(|_| ()).unwrap_err();
        assert!(e.contains(says), "{over:?}: {e}");
    }
}
