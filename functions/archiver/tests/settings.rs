//! `ArchiverConfig::from_env` (and the window's settings) read each setting away from its
//! default and refuse each one that would break the archiver, naming the variable. One
//! test: this binary is its own process, and the environment is set case after case,
//! never from two threads.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hookvault_archiver::window::WindowConfig;
use hookvault_archiver::ArchiverConfig;

const ALL: &[&str] = &[
    "ARCHIVE_BUCKET",
    "DOWNLOAD_ALLOWED_HOSTS",
    "DOWNLOAD_ALLOW_INSECURE_LOOPBACK",
    "DOWNLOAD_MAX_BYTES",
    "EVENT_MAX_BYTES",
    "DOWNLOAD_CONNECT_TIMEOUT_MS",
    "DOWNLOAD_READ_TIMEOUT_MS",
    "UPLOAD_PART_BYTES",
    "UPLOAD_PARTS_IN_FLIGHT",
    "OUTPUTS_IN_FLIGHT",
    "OUTPUT_RETENTION_SECS",
    "DOWNLOAD_RETRY_BUDGET_MS",
];

const BASE: &[(&str, &str)] = &[
    ("ARCHIVE_BUCKET", "archive"),
    ("DOWNLOAD_ALLOWED_HOSTS", "cdn.skytells.ai,*.skytells.cloud"),
];

fn set(over: &[(&str, &str)]) {
    hookvault_aws::env::set_only(ALL, BASE, over);
}

fn read(over: &[(&str, &str)]) -> Result<ArchiverConfig, String> {
    set(over);
    ArchiverConfig::from_env().map_err(|e| e.to_string())
}

#[test]
fn every_setting_is_read_and_every_refusal_names_its_variable() {
    // Defaults.
    let c = read(&[]).unwrap();
    assert_eq!(c.bucket, "archive");
    assert_eq!(c.max_output_bytes, 5 * 1024 * 1024 * 1024);
    assert_eq!((c.connect_timeout_ms, c.read_timeout_ms), (5_000, 30_000));
    assert_eq!(c.part_bytes, 8 * 1024 * 1024);
    assert_eq!((c.parts_in_flight, c.outputs_in_flight), (2, 2));
    assert!(c.guard.check("https://cdn.skytells.ai/o.png").is_ok());
    assert!(c.guard.check("https://x.skytells.cloud/o.png").is_ok());
    assert!(c.guard.check("https://evil.example.com/o.png").is_err());
    assert!(
        c.guard.check("http://127.0.0.1/o.png").is_err(),
        "https and public only"
    );

    // Each setting away from its default is read.
    let c = read(&[
        ("DOWNLOAD_ALLOWED_HOSTS", "127.0.0.1"),
        ("DOWNLOAD_ALLOW_INSECURE_LOOPBACK", "true"),
        ("DOWNLOAD_MAX_BYTES", "1024"),
        ("EVENT_MAX_BYTES", "2048"),
        ("DOWNLOAD_CONNECT_TIMEOUT_MS", "250"),
        ("DOWNLOAD_READ_TIMEOUT_MS", "750"),
        ("UPLOAD_PART_BYTES", "5242880"),
        ("UPLOAD_PARTS_IN_FLIGHT", "3"),
        ("OUTPUTS_IN_FLIGHT", "4"),
    ])
    .unwrap();
    assert!(c.guard.check("http://127.0.0.1:9/o.png").is_ok());
    assert_eq!((c.max_output_bytes, c.max_event_bytes), (1024, 2048));
    assert_eq!((c.connect_timeout_ms, c.read_timeout_ms), (250, 750));
    assert_eq!(c.part_bytes, 5 * 1024 * 1024);
    assert_eq!((c.parts_in_flight, c.outputs_in_flight), (3, 4));

    // Refusals, each naming the variable.
    for (over, says) in [
        (
            &[("UPLOAD_PART_BYTES", "5242879")][..],
            "UPLOAD_PART_BYTES is invalid: expected at least 5242880",
        ),
        (
            &[("UPLOAD_PART_BYTES", "8MiB")],
            "UPLOAD_PART_BYTES is invalid: expected a number",
        ),
        (&[("ARCHIVE_BUCKET", "")], "ARCHIVE_BUCKET is not set"),
        (
            &[("DOWNLOAD_ALLOWED_HOSTS", "")],
            "DOWNLOAD_ALLOWED_HOSTS is not set",
        ),
        (
            &[("DOWNLOAD_ALLOW_INSECURE_LOOPBACK", "yes")],
            "DOWNLOAD_ALLOW_INSECURE_LOOPBACK is invalid: expected true or false",
        ),
        (
            &[("DOWNLOAD_MAX_BYTES", "-1")],
            "DOWNLOAD_MAX_BYTES is invalid: expected a number",
        ),
        (
            &[("DOWNLOAD_CONNECT_TIMEOUT_MS", "0")],
            "DOWNLOAD_CONNECT_TIMEOUT_MS is invalid: expected a number of at least 1",
        ),
        (
            &[("DOWNLOAD_READ_TIMEOUT_MS", "0")],
            "DOWNLOAD_READ_TIMEOUT_MS is invalid: expected a number of at least 1",
        ),
        (
            &[("UPLOAD_PARTS_IN_FLIGHT", "0")],
            "UPLOAD_PARTS_IN_FLIGHT is invalid: expected a number of at least 1",
        ),
        (
            &[("OUTPUTS_IN_FLIGHT", "0")],
            "OUTPUTS_IN_FLIGHT is invalid: expected a number of at least 1",
        ),
    ] {
        let e = read(over).map(|_| ()).unwrap_err();
        assert!(e.contains(says), "{over:?}: {e}");
    }

    // The window's settings.
    set(&[]);
    let w = WindowConfig::from_env().unwrap();
    assert_eq!(
        w.retention.secs("skytells"),
        300,
        "the provider's documented 5 minutes"
    );
    set(&[
        ("OUTPUT_RETENTION_SECS", "skytells:120,*:900"),
        ("DOWNLOAD_RETRY_BUDGET_MS", "7000"),
    ]);
    let w = WindowConfig::from_env().unwrap();
    assert_eq!(
        (w.retention.secs("skytells"), w.retention.secs("other")),
        (120, 900)
    );
    assert_eq!(w.retry_budget, Duration::from_millis(7_000));
    set(&[("OUTPUT_RETENTION_SECS", "skytells=120")]);
    let e = WindowConfig::from_env().unwrap_err().to_string();
    assert!(e.contains("OUTPUT_RETENTION_SECS is invalid"), "{e}");
}
