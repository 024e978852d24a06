//! The api function in the local stack: its secrets and environment, and the function
//! under `cargo lambda watch` with several instances ([`start_api`]).

use crate::lambda::{local_aws_env, with_overrides};
use crate::provider::keys::INITIAL_API_KEY;
use crate::rotation::API_KEY_SECRET_ID;
use crate::StackError;

/// The caller keys secret.
pub const CALLER_KEYS_SECRET_ID: &str = "hookvault/caller-keys";
/// The key local callers present (`Authorization: Bearer …`).
pub const CALLER_KEY: &str = "caller-key-local-0123456789abcdef";
/// A second caller's key, also listed (idempotency keys are per caller).
pub const CALLER_KEY_2: &str = "caller-key-local-2-fedcba9876543210";

/// The provider API key secret's first value: the stand-in provider's `key_0`.
pub fn initial_api_key_value() -> String {
    serde_json::json!({"kind": "provider-api-key", "key_id": "key_0", "api_key": INITIAL_API_KEY})
        .to_string()
}

/// Creates `secret_id` with `value` in Secrets Manager.
pub async fn create_secret(
    sm: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    value: &str,
) -> Result<(), StackError> {
    sm.create_secret()
        .name(secret_id)
        .secret_string(value)
        .send()
        .await
        .map_err(|e| StackError::Start(format!("create secret {secret_id}: {e}")))?;
    Ok(())
}

/// The provider API key secret and the caller keys secret.
pub async fn create_api_secrets(sm: &aws_sdk_secretsmanager::Client) -> Result<(), StackError> {
    create_secret(sm, API_KEY_SECRET_ID, &initial_api_key_value()).await?;
    create_secret(
        sm,
        CALLER_KEYS_SECRET_ID,
        &serde_json::json!({ "keys": [CALLER_KEY, CALLER_KEY_2] }).to_string(),
    )
    .await
}

/// The api function's environment for moto at `moto_endpoint`, the stand-in provider at
/// `provider_url`, the archive `bucket` and the edge's `webhook_url`; `extra` adds or
/// replaces.
pub fn api_env(
    moto_endpoint: &str,
    provider_url: &str,
    bucket: &str,
    webhook_url: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let env = local_aws_env(
        moto_endpoint,
        &[
            ("PROVIDER_API_URL", provider_url),
            ("API_KEY_SECRET_ID", API_KEY_SECRET_ID),
            ("CALLER_KEYS_SECRET_ID", CALLER_KEYS_SECRET_ID),
            ("EDGE_WEBHOOK_URL", webhook_url),
            ("ARCHIVE_BUCKET", bucket),
            ("RUST_LOG", "info"),
        ],
    );
    with_overrides(env, extra)
}

/// The api under `cargo lambda watch` with `concurrency` instances, as a Function URL
/// (`function_url`): concurrent requests reach separate instances, as on Lambda.
pub async fn start_api(
    env: &[(String, String)],
    concurrency: u32,
) -> Result<crate::lambda::LambdaFunction, StackError> {
    crate::lambda::LambdaFunction::start_concurrent("functions/api", "api", env, concurrency).await
}
