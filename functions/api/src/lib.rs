//! # hookvault-api
//!
//! The team's own API, a `lambda_http` function behind a Function URL:
//!
//! | route | what |
//! |---|---|
//! | `POST /predictions` | submit `{model, input}` (or `{model_id, inputs}`) to the provider, in the dialect `PROVIDER_DIALECT` names ([`submit`], [`dialect`]) |
//! | `GET /predictions/{id}` | the archive's record, with presigned output URLs ([`status`]) |
//!
//! Every route needs `Authorization: Bearer <key>` ([`auth`]). Errors are JSON
//! `{"error": code, "message": …}` ([`error`]). One JSON log line per request.
//! `POST /predictions` honours the caller's `Idempotency-Key` ([`idempotency`]), and
//! records each accepted prediction in the ledger and schedules its first reconciliation
//! check before it answers ([`ledger`], issue 23).
#![deny(clippy::all)]
#![warn(missing_docs)]

pub mod auth;
pub mod config;
pub mod dialect;
pub mod error;
pub mod idempotency;
pub mod ledger;
pub mod request;
pub mod status;
pub mod submit;

use std::sync::Arc;
use std::time::Instant;

use hookvault_aws::secrets::SecretCache;

pub use config::ApiConfig;
pub use dialect::Dialect;
pub use error::ApiError;

/// The api function's state, built once per Lambda instance.
pub struct Api {
    /// Settings.
    pub cfg: ApiConfig,
    /// The provider API key and the caller keys, cached for `API_KEY_CACHE_TTL_SECS`.
    pub secrets: Arc<SecretCache>,
    /// The archive.
    pub s3: aws_sdk_s3::Client,
    /// Calls to the provider.
    pub http: reqwest::Client,
    /// The reconciler's check queue (`CHECK_QUEUE_URL`), when set ([`Api::with_check_queue`]).
    pub checks: Option<ledger::SqsCheckQueue>,
}

/// An answer: status, extra headers, JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Headers besides `content-type: application/json` (names in lowercase).
    pub headers: Vec<(String, String)>,
    /// The JSON body.
    pub body: String,
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        let mut headers = Vec::new();
        if let Some(ra) = &e.retry_after {
            headers.push(("retry-after".to_owned(), ra.clone()));
        }
        if e.status == 401 {
            headers.push(("www-authenticate".to_owned(), "Bearer".into()));
        }
        Reply {
            status: e.status,
            headers,
            body: e.body(),
        }
    }
}

impl Api {
    /// The api with clients for `cfg`.
    pub fn new(
        cfg: ApiConfig,
        secrets: aws_sdk_secretsmanager::Client,
        s3: aws_sdk_s3::Client,
    ) -> Self {
        Api {
            secrets: Arc::new(SecretCache::new(secrets, cfg.cache_ttl)),
            http: hookvault_aws::http::client(cfg.http_timeout),
            s3,
            cfg,
            checks: None,
        }
    }

    /// Sends each accepted prediction's first check to `CHECK_QUEUE_URL` through `sqs`
    /// ([`ledger`]); without a check queue configured, logs once that no checks are
    /// scheduled and leaves the api as it is.
    pub fn with_check_queue(mut self, sqs: aws_sdk_sqs::Client) -> Self {
        match &self.cfg.check_queue_url {
            Some(url) => {
                self.checks = Some(ledger::SqsCheckQueue {
                    client: sqs,
                    queue_url: url.clone(),
                })
            }
            None => tracing::warn!(
                "CHECK_QUEUE_URL is not set: no reconciliation checks are scheduled for submitted predictions"
            ),
        }
        self
    }

    /// Answers one request. `idempotency_keys` are the values of its `Idempotency-Key`
    /// headers (none, one, or a refused several). `deadline` bounds the provider retries
    /// and the wait for a concurrent submission with the same key.
    pub async fn handle(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        idempotency_keys: &[&[u8]],
        body: &[u8],
        deadline: Option<Instant>,
    ) -> Reply {
        let start = Instant::now();
        let reply = self
            .route(
                method,
                path,
                authorization,
                idempotency_keys,
                body,
                deadline,
            )
            .await
            .unwrap_or_else(Reply::from);
        tracing::info!(
            method,
            path = %path.chars().take(200).collect::<String>(),
            status = reply.status,
            latency_ms = start.elapsed().as_millis() as u64,
            "request"
        );
        reply
    }

    async fn route(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        idempotency_keys: &[&[u8]],
        body: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Reply, ApiError> {
        let path = path.trim_end_matches('/');
        let id = path.strip_prefix("/predictions/");
        let known = path == "/predictions" || id.is_some_and(|i| !i.is_empty() && !i.contains('/'));
        if !known {
            return Err(ApiError::new(
                404,
                "not_found",
                "routes: POST /predictions, GET /predictions/{id}",
            ));
        }
        let allowed = if id.is_some() { "GET" } else { "POST" };
        if method != allowed {
            return Err(ApiError {
                retry_after: None,
                ..ApiError::new(405, "method_not_allowed", format!("use {allowed} here"))
            });
        }
        let caller = auth::check(
            &self.secrets,
            &self.cfg.caller_keys_secret_id,
            authorization,
        )
        .await?;
        match id {
            None => {
                if body.len() > self.cfg.max_request_bytes {
                    return Err(ApiError::new(
                        413,
                        "body_too_large",
                        format!(
                            "the body is larger than {} bytes",
                            self.cfg.max_request_bytes
                        ),
                    ));
                }
                // Both checked before anything is kept or sent: a refused request is not
                // remembered under its key, and can be sent again, fixed, with it.
                let key = idempotency::from_headers(idempotency_keys)?;
                let req = submit::parse(body)?;
                match key {
                    None => {
                        let who = ledger::Submitter {
                            caller: &caller,
                            idempotency_scope: None,
                        };
                        self.submit(&req, &submit::fresh_provider_key(), &who, deadline)
                            .await
                    }
                    Some(key) => self.submit_once(&caller, &key, &req, body, deadline).await,
                }
            }
            Some(id) => Ok(Reply {
                status: 200,
                headers: vec![("cache-control".to_owned(), "no-store".into())],
                body: self.status(id).await?.to_string(),
            }),
        }
    }
}
