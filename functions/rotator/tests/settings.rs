//! `RotatorConfig::from_env` reads each setting away from its default and refuses each
//! one that would break a rotation, naming the variable. One test: this binary is its own
//! process, and the environment is set case after case, never from two threads.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hookvault_rotator::config::KeyMode;
use hookvault_rotator::RotatorConfig;

const ALL: &[&str] = &[
    "CLOUDFLARE_ACCOUNT_ID",
    "CLOUDFLARE_TOKEN_SECRET_ID",
    "CLOUDFLARE_API_URL",
    "CLOUDFLARE_WORKER_NAME",
    "EDGE_PROVIDER",
    "EDGE_URL",
    "SKYTELLS_KEY_MODE",
    "GITHUB_KEY_MODE",
    "EDGE_PROPAGATION_SECS",
    "EDGE_CONVERGENCE_PROBES",
    "EDGE_SOAK_SECS",
    "API_KEY_ACTIVATION_SECS",
    "PROVIDER_API_URL",
    "PROVIDER_KEYS_PATH",
    "PROVIDER_WEBHOOK_SECRET_PATH",
    "PROVIDER_AUTH_CHECK_PATH",
    "PROVIDER_API_KEY_SECRET_ID",
    "WEBHOOK_GRACE_SECS",
    "API_KEY_GRACE_SECS",
    "MANAGED_SECRET_IDS",
    "ROTATION_INTERVAL_DAYS",
    "ROTATION_STUCK_AFTER_SECS",
    "HTTP_TIMEOUT_MS",
];

fn read(vars: &[(&str, &str)]) -> Result<RotatorConfig, String> {
    for name in ALL {
        std::env::remove_var(name);
    }
    for (k, v) in vars {
        std::env::set_var(k, v);
    }
    RotatorConfig::from_env().map_err(|e| e.to_string())
}

#[test]
fn every_setting_is_read_and_every_refusal_names_its_variable() {
    // Defaults: nothing is required.
    let c = read(&[]).unwrap();
    assert!(c.cloudflare.is_none());
    assert_eq!(c.edge_provider, "skytells");
    assert_eq!(c.key_mode, KeyMode::General);
    assert_eq!(c.webhook_grace_secs, 72 * 3600);
    assert_eq!(c.rotation_interval_days, 90);
    assert_eq!(c.provider.keys_path, "/v1/api-keys");

    // Each setting away from its default is read.
    let c = read(&[
        ("CLOUDFLARE_ACCOUNT_ID", "acct"),
        ("CLOUDFLARE_TOKEN_SECRET_ID", "cf-token"),
        ("CLOUDFLARE_WORKER_NAME", "edge-prod"),
        ("EDGE_PROVIDER", "github"),
        ("GITHUB_KEY_MODE", "general"),
        ("EDGE_URL", "https://edge.example.com/"),
        ("EDGE_PROPAGATION_SECS", "7"),
        ("EDGE_CONVERGENCE_PROBES", "2"),
        ("EDGE_SOAK_SECS", "0"),
        ("API_KEY_ACTIVATION_SECS", "3"),
        ("PROVIDER_API_URL", "http://127.0.0.1:9/"),
        ("PROVIDER_KEYS_PATH", "/keys"),
        ("PROVIDER_WEBHOOK_SECRET_PATH", "/secret"),
        ("PROVIDER_AUTH_CHECK_PATH", "/me"),
        ("PROVIDER_API_KEY_SECRET_ID", "api-key"),
        ("WEBHOOK_GRACE_SECS", "600"),
        ("API_KEY_GRACE_SECS", "601"),
        ("MANAGED_SECRET_IDS", " a , ,b "),
        ("ROTATION_INTERVAL_DAYS", "0"),
        ("ROTATION_STUCK_AFTER_SECS", "60"),
        ("HTTP_TIMEOUT_MS", "250"),
    ])
    .unwrap();
    let cf = c.cloudflare.as_ref().unwrap();
    assert_eq!(
        (cf.account_id.as_str(), cf.worker_name.as_str()),
        ("acct", "edge-prod")
    );
    assert_eq!(c.edge_provider, "github");
    assert_eq!(
        c.key_mode,
        KeyMode::General,
        "GITHUB_KEY_MODE is read for EDGE_PROVIDER=github"
    );
    assert_eq!(c.edge_url.as_deref(), Some("https://edge.example.com"));
    assert_eq!(c.edge_propagation, Duration::from_secs(7));
    assert_eq!(c.convergence_probes, 2);
    assert_eq!(c.soak, Duration::ZERO);
    assert_eq!(c.api_key_activation, Duration::from_secs(3));
    assert_eq!(c.provider.api_url, "http://127.0.0.1:9");
    assert_eq!(
        (
            c.provider.keys_path.as_str(),
            c.provider.webhook_secret_path.as_str(),
            c.provider.auth_check_path.as_str()
        ),
        ("/keys", "/secret", "/me")
    );
    assert_eq!(c.provider_api_key_secret_id.as_deref(), Some("api-key"));
    assert_eq!((c.webhook_grace_secs, c.api_key_grace_secs), (600, 601));
    assert_eq!(c.managed_secret_ids, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(c.rotation_interval_days, 0);
    assert_eq!(c.stuck_after_secs, 60);
    assert_eq!(c.http_timeout, Duration::from_millis(250));

    // Refusals, each naming the variable.
    for (vars, says) in [
        (
            &[("CLOUDFLARE_ACCOUNT_ID", "acct")][..],
            "CLOUDFLARE_TOKEN_SECRET_ID is not set",
        ),
        (
            &[("CLOUDFLARE_TOKEN_SECRET_ID", "t")],
            "CLOUDFLARE_ACCOUNT_ID is not set",
        ),
        (
            &[("PROVIDER_KEYS_PATH", "v1/api-keys")],
            "PROVIDER_KEYS_PATH is invalid: expected a path starting with /",
        ),
        (
            &[("PROVIDER_WEBHOOK_SECRET_PATH", "x")],
            "PROVIDER_WEBHOOK_SECRET_PATH is invalid: expected a path starting with /",
        ),
        (
            &[("PROVIDER_AUTH_CHECK_PATH", "models")],
            "PROVIDER_AUTH_CHECK_PATH is invalid: expected a path starting with /",
        ),
        (
            &[("ROTATION_INTERVAL_DAYS", "-1")],
            "ROTATION_INTERVAL_DAYS is invalid: expected a number of days, 0 or more",
        ),
        (
            &[("WEBHOOK_GRACE_SECS", "-5")],
            "WEBHOOK_GRACE_SECS is invalid: expected a number of at least 1",
        ),
        (
            &[("API_KEY_GRACE_SECS", "0")],
            "API_KEY_GRACE_SECS is invalid: expected a number of at least 1",
        ),
        (
            &[("ROTATION_STUCK_AFTER_SECS", "0")],
            "ROTATION_STUCK_AFTER_SECS is invalid: expected a number of at least 1",
        ),
        (
            &[("EDGE_PROPAGATION_SECS", "0")],
            "EDGE_PROPAGATION_SECS is invalid: expected a number of at least 1",
        ),
        (
            &[("EDGE_CONVERGENCE_PROBES", "0")],
            "EDGE_CONVERGENCE_PROBES is invalid: expected a number of at least 1",
        ),
        (
            &[("EDGE_SOAK_SECS", "-1")],
            "EDGE_SOAK_SECS is invalid: expected a number",
        ),
        (
            &[("HTTP_TIMEOUT_MS", "0")],
            "HTTP_TIMEOUT_MS is invalid: expected a number of at least 1",
        ),
        (
            &[("SKYTELLS_KEY_MODE", "both")],
            "SKYTELLS_KEY_MODE is invalid: expected general or enterprise",
        ),
    ] {
        let e = read(vars).map(|_| ()).unwrap_err();
        assert!(e.contains(says), "{vars:?}: {e}");
    }
}
