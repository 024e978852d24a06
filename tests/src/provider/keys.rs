//! The stand-in provider's key management and webhook sender. The seed documents none of
//! this, so the shapes are the rotator's defaults (`functions/rotator/src/provider.rs`):
//!
//! | call | answer |
//! |---|---|
//! | `POST /v1/api-keys` (`Idempotency-Key`) | 201 `{"id","key"}`; the same key again for the same idempotency key |
//! | `DELETE /v1/api-keys/{id}` | 204, 404 if unknown |
//! | `GET /v1/api-keys` | `{"data":[{"id","revoked"}]}` |
//! | `PUT /v1/webhooks/secret` `{"secret"}` | 204; webhooks are signed with it from then on |
//! | `GET /v1/models` | 200: the authenticated no-op |
//!
//! Every call needs `x-api-key` with a key that is active and not revoked (401
//! `invalid_api_key` otherwise; a new key is active after `activation_delay`). Faults for tests are set through [`super::Provider::with`].
//!
//! What webhooks are signed with is [`KeyState::signing`] ([`Signing`]): the registered
//! webhook secret (Skytells' `enterprise` mode), or the API key (its `general` mode, the
//! SDK's default: `Skytells/ts-sdk`, `src/webhooks.ts`, `verifySkytellsWebhookSignature`,
//! HMAC-SHA256 of the raw body keyed by the `sk-…` key). Which API key a real provider
//! picks is not documented, so the stand-in has both behaviours it might have: the key
//! the prediction was created under, or the account's current key (the key of the
//! account's most recent authenticated request).

use std::collections::HashMap;
use std::sync::Mutex;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};

use hookvault_core::scheme::{Scheme, SignParams};

use super::{lock, status, Body, Provider, State};

/// The webhook secret the stand-in signs with until one is registered.
pub const INITIAL_WEBHOOK_SECRET: &str = "stand-in-initial-webhook-secret-0000";
/// The API key the stand-in starts with (id `key_0`).
pub const INITIAL_API_KEY: &str = "sk-test-initial-0000";

/// One API key.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    /// Its id.
    pub id: String,
    /// The key.
    pub key: String,
    /// Revoked keys authenticate nothing.
    pub revoked: bool,
    /// A key authenticates nothing before this (a vendor's activation delay).
    pub valid_from: std::time::Instant,
    /// Requests refused because the key was not valid yet.
    pub refused_early: u32,
}

impl KeyRecord {
    /// A key valid from now on.
    pub fn active(id: &str, key: &str) -> Self {
        KeyRecord {
            id: id.to_owned(),
            key: key.to_owned(),
            revoked: false,
            valid_from: std::time::Instant::now(),
            refused_early: 0,
        }
    }
}

/// What the stand-in signs a prediction's webhook with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Signing {
    /// The registered webhook secret (`enterprise` mode).
    #[default]
    WebhookSecret,
    /// `general` mode: the API key the prediction was created under.
    PredictionKey,
    /// `general` mode: the account's current key when the webhook is sent, i.e. the key of
    /// its most recent authenticated request (a prediction's, or any key API call's).
    AccountKey,
}

/// Keys, the registered webhook secret, and injected faults.
#[derive(Debug)]
pub struct KeyState {
    /// Every key minted, revoked ones included.
    pub keys: Vec<KeyRecord>,
    idempotency: HashMap<String, usize>,
    /// The secret webhooks are signed with.
    pub webhook_secret: String,
    /// Every secret ever registered, in order.
    pub webhook_secrets: Vec<String>,
    /// Mints that happen but whose answer is replaced by a 500 (a response lost on the
    /// way back, as after a crash): counts down.
    pub lose_mint_answers: u32,
    /// `PUT /v1/webhooks/secret` answers 500 this many times.
    pub fail_webhook_secret: u32,
    /// A key minted from now on is refused (401) for this long: many vendors' keys take a
    /// while to become valid.
    pub activation_delay: std::time::Duration,
    /// What webhooks are signed with.
    pub signing: Signing,
    /// The key of the account's most recent authenticated request (an index of `keys`).
    pub last_used: usize,
}

impl KeyState {
    /// The starting state: `key_0` and the initial webhook secret.
    pub fn new() -> Self {
        KeyState {
            keys: vec![KeyRecord::active("key_0", INITIAL_API_KEY)],
            idempotency: HashMap::new(),
            webhook_secret: INITIAL_WEBHOOK_SECRET.into(),
            webhook_secrets: vec![INITIAL_WEBHOOK_SECRET.into()],
            lose_mint_answers: 0,
            fail_webhook_secret: 0,
            activation_delay: std::time::Duration::ZERO,
            signing: Signing::WebhookSecret,
            last_used: 0,
        }
    }

    /// [`KeyState::is_valid`], and a valid key becomes the account's current key.
    pub fn authenticate(&mut self, key: &str) -> bool {
        if !self.is_valid(key) {
            return false;
        }
        if let Some(at) = self.keys.iter().position(|k| k.key == key) {
            self.last_used = at;
        }
        true
    }

    /// The secret a webhook for a prediction created with API key `created_with` is
    /// signed with now, and its label (the key id, or `webhook-secret`).
    pub fn webhook_signing_secret(&self, created_with: &str) -> (String, String) {
        let key = |at: usize| {
            self.keys.get(at).map_or_else(
                || ("none".to_owned(), String::new()),
                |k| (k.id.clone(), k.key.clone()),
            )
        };
        match self.signing {
            Signing::WebhookSecret => ("webhook-secret".into(), self.webhook_secret.clone()),
            Signing::PredictionKey => {
                let at = self.keys.iter().position(|k| k.key == created_with);
                at.map_or_else(|| ("unknown".into(), created_with.to_owned()), key)
            }
            Signing::AccountKey => key(self.last_used),
        }
    }

    /// True for a key that exists, is active and is not revoked. A key refused only
    /// because it is not active yet is counted in its `refused_early`.
    pub fn is_valid(&mut self, key: &str) -> bool {
        let now = std::time::Instant::now();
        match self.keys.iter_mut().find(|k| k.key == key && !k.revoked) {
            Some(k) if now >= k.valid_from => true,
            Some(k) => {
                k.refused_early += 1;
                false
            }
            None => false,
        }
    }

    /// The record of key `id`.
    pub fn key(&self, id: &str) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| k.id == id)
    }
}

impl Default for KeyState {
    fn default() -> Self {
        Self::new()
    }
}

fn json(code: u16, v: serde_json::Value) -> Response<Body> {
    crate::process::json_response(code, &v, &[])
}

fn unauthorized() -> Response<Body> {
    json(
        401,
        serde_json::json!({"error": {"code": "invalid_api_key", "message": "Invalid, revoked, or missing API key"}}),
    )
}

/// A key that is hard to guess (122 random bits from the OS, via UUID v4) and easy to
/// spot in a log scan (`sk-test-`).
fn new_key(n: usize) -> String {
    format!("sk-test-{n}-{}", uuid::Uuid::new_v4().simple())
}

/// Serves `/v1/…`.
pub async fn route(req: Request<Incoming>, state: &Mutex<State>) -> Response<Body> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let api_key = header("x-api-key").unwrap_or_default();
    let idempotency = header("idempotency-key");
    let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return status(413, &[]),
    };
    let mut s = lock(state);
    let k = &mut s.keys;
    if !k.authenticate(&api_key) {
        return unauthorized();
    }
    match (method.as_str(), path.as_str()) {
        ("POST", "/v1/api-keys") => {
            let existing = idempotency
                .as_ref()
                .and_then(|i| k.idempotency.get(i))
                .copied();
            let (at, code) = match existing {
                Some(at) => (at, 200),
                None => {
                    let n = k.keys.len();
                    k.keys.push(KeyRecord {
                        id: format!("key_{n}"),
                        key: new_key(n),
                        revoked: false,
                        valid_from: std::time::Instant::now() + k.activation_delay,
                        refused_early: 0,
                    });
                    if let Some(i) = idempotency {
                        k.idempotency.insert(i, n);
                    }
                    (n, 201)
                }
            };
            if k.lose_mint_answers > 0 {
                k.lose_mint_answers -= 1;
                return status(500, &[]);
            }
            let rec = &k.keys[at];
            json(code, serde_json::json!({"id": rec.id, "key": rec.key}))
        }
        ("GET", "/v1/api-keys") => json(
            200,
            serde_json::json!({"data": k.keys.iter().map(|r| serde_json::json!({"id": r.id, "revoked": r.revoked})).collect::<Vec<_>>()}),
        ),
        ("DELETE", p) if p.starts_with("/v1/api-keys/") => {
            let id = &p["/v1/api-keys/".len()..];
            match k.keys.iter_mut().find(|r| r.id == id) {
                Some(r) => {
                    r.revoked = true;
                    status(204, &[])
                }
                None => status(404, &[]),
            }
        }
        ("PUT", "/v1/webhooks/secret") => {
            if k.fail_webhook_secret > 0 {
                k.fail_webhook_secret -= 1;
                return status(500, &[]);
            }
            let secret = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("secret").and_then(|s| s.as_str()).map(str::to_owned));
            match secret {
                Some(secret) if !secret.is_empty() => {
                    k.webhook_secret = secret.clone();
                    k.webhook_secrets.push(secret);
                    status(204, &[])
                }
                _ => json(
                    400,
                    serde_json::json!({"error": {"code": "invalid_request", "message": "body must be {\"secret\": \"…\"}"}}),
                ),
            }
        }
        ("GET", "/v1/models") => json(200, serde_json::json!({"data": []})),
        _ => status(404, &[]),
    }
}

/// A prediction submission (`POST /v1/predictions`) authenticated with a valid key makes
/// it the account's current key ([`Signing::AccountKey`]).
pub(crate) fn note_use(req: &Request<Incoming>, state: &Mutex<State>) {
    if let Some(key) = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        lock(state).keys.authenticate(key);
    }
}

/// A Skytells webhook body for prediction `id` (succeeded, no outputs).
pub fn webhook_body(id: &str) -> String {
    super::predictions::prediction(id, "succeeded", &[])
}

/// The headers of `body` signed with `secret` (Skytells' scheme).
pub fn sign(secret: &str, body: &str) -> Vec<(&'static str, String)> {
    Scheme::Skytells
        .decode_secret(secret)
        .and_then(|k| {
            Scheme::Skytells
                .sign(&k, body.as_bytes(), &SignParams::default())
                .map_err(|_| hookvault_core::keyring::KeyError::EmptySecret)
        })
        .unwrap_or_default()
}

impl Provider {
    /// The secret the provider signs webhooks with now.
    pub fn webhook_secret(&self) -> String {
        self.with(|s| s.keys.webhook_secret.clone())
    }

    /// Sends `body` to `url` signed as the provider signs now; the status, or `None`
    /// when the edge did not answer. A fresh connection each time (as a provider's
    /// deliveries are), so a restarted edge is reached at once.
    pub async fn deliver(&self, url: &str, body: &str) -> Option<u16> {
        send_signed(url, body, &self.webhook_secret()).await
    }

    /// Sends the webhook of a prediction created with API key `created_with`, signed as
    /// [`KeyState::signing`] says at this moment: the label of the key used (the key id,
    /// or `webhook-secret`) and the status.
    pub async fn deliver_prediction(
        &self,
        url: &str,
        body: &str,
        created_with: &str,
    ) -> (String, Option<u16>) {
        let (label, secret) = self.with(|s| s.keys.webhook_signing_secret(created_with));
        (label, send_signed(url, body, &secret).await)
    }
}

/// Sends `body` to `url` signed with `secret` (Skytells' scheme) on a fresh connection.
pub async fn send_signed(url: &str, body: &str, secret: &str) -> Option<u16> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .ok()?;
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in sign(secret, body) {
        req = req.header(k, v);
    }
    req.send().await.ok().map(|r| r.status().as_u16())
}
