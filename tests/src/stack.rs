//! One way to start a local stack: [`LocalStack::builder`] names the pieces a test (or the
//! soak) needs, [`LocalStackBuilder::start`] starts them, and the [`LocalStack`] holds
//! them, with the clients and helpers the end-to-end tests use.
//!
//! ```no_run
//! # async fn f() -> Result<(), hookvault_localstack::StackError> {
//! use hookvault_localstack::stack::LocalStack;
//! let stack = LocalStack::builder()
//!     .queue_with_dlq("events", 2)
//!     .bucket("archive")
//!     .edge_var("WEBHOOK_SECRETS", "a-secret")
//!     .provider()
//!     .start()
//!     .await?;
//! let (status, _, _) = stack.post("/webhooks/skytells", &[], b"{}".to_vec()).await?;
//! # let _ = status; Ok(()) }
//! ```
//!
//! moto always runs (every other piece talks to it); each other piece only when asked
//! for. Every process stops when the [`LocalStack`] is dropped.
//!
//! For issue 23 (no missed webhook) the builder also starts the api with the edge as its
//! webhook URL and a check queue ([`LocalStackBuilder::api`],
//! [`LocalStackBuilder::check_queue`]) and the reconciler on that check queue
//! ([`LocalStackBuilder::reconciler`]); the Lambdas are fed from their queues by a
//! [`poller::Mapping`], as Lambda's event-source mappings feed them.
//!
//! For rotation ([`crate::rotation::RotationStack`]) it starts the edge behind the
//! stand-in Cloudflare API ([`LocalStackBuilder::cloudflare`]), Secrets Manager secrets
//! ([`LocalStackBuilder::secret`]) and the rotator that moto's `RotateSecret` invokes
//! ([`LocalStackBuilder::rotator`], [`LocalStackBuilder::rotation`]).

use std::path::PathBuf;

use aws_sdk_sqs::types::Message;

use aws_sdk_secretsmanager::types::RotationRulesType;

use crate::cloudflare::{self, DeployedEdge};
use crate::lambda::{archiver_env, local_aws_env, reconciler_env, LambdaFunction};
use crate::moto::Moto;
use crate::provider::keys::Signing;
use crate::provider::Provider;
use crate::rotation::{SecretsFaults, ROTATOR_ARN};
use crate::workerd::{local_bindings, Edge, RUST_EDGE_MODULES};
use crate::{api, operator, paths, poller, s3, sqs, StackError};

/// The bucket name the end-to-end tests use (the claim check's, and the archive's where a
/// test archives). Not a default: a stack has a bucket only when [`LocalStackBuilder::bucket`]
/// names one.
pub const TEST_BUCKET: &str = "archive";

/// The edge's `SQS_TIMEOUT_MS` on a local stack (milliseconds): short, so a test of a
/// refusing SQS stays short.
pub const EDGE_SQS_TIMEOUT_MS: &str = "2000";

/// The edge's `RETRY_AFTER_SECS` on a local stack (seconds): a value a test can recognise
/// in a `Retry-After` header.
pub const EDGE_RETRY_AFTER_SECS: &str = "7";

/// The edge's vars on a local stack: [`local_bindings`] for moto at `moto_endpoint` and the
/// queue `queue_url`, with `SQS_TIMEOUT_MS` [`EDGE_SQS_TIMEOUT_MS`], `RETRY_AFTER_SECS`
/// [`EDGE_RETRY_AFTER_SECS`], `CLAIM_CHECK_BUCKET` = `bucket` when there is one (without
/// it the edge takes only bodies that fit in one SQS message), then `extra`, each added or
/// replacing the variable of the same name. Pairs are (name, value), in the order given to
/// workerd.
pub fn edge_bindings<K: AsRef<str>, V: AsRef<str>>(
    moto_endpoint: &str,
    queue_url: &str,
    bucket: Option<&str>,
    extra: &[(K, V)],
) -> Vec<(String, String)> {
    let mut all: Vec<(&str, String)> = vec![
        ("SQS_TIMEOUT_MS", EDGE_SQS_TIMEOUT_MS.to_owned()),
        ("RETRY_AFTER_SECS", EDGE_RETRY_AFTER_SECS.to_owned()),
    ];
    if let Some(b) = bucket {
        all.push(("CLAIM_CHECK_BUCKET", b.to_owned()));
    }
    all.extend(
        extra
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref().to_owned())),
    );
    local_bindings(moto_endpoint, queue_url, &all)
}

/// A queue of the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    /// The name it was created with.
    pub name: String,
    /// Its URL (`{moto}/{account}/{name}`).
    pub url: String,
    /// Its dead-letter queue's URL (`{name}-dlq`), for a queue made with
    /// [`LocalStackBuilder::queue_with_dlq`].
    pub dlq_url: Option<String>,
}

/// A queue to create: its name, and the receives before its DLQ takes a message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct QueueSpec {
    name: String,
    max_receives: Option<u32>,
}

/// The edge to start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct EdgeSpec {
    /// The folder holding the edge's modules; `None`: [`paths::edge_build`].
    build: Option<PathBuf>,
    /// Vars added or replacing the defaults of [`edge_bindings`].
    vars: Vec<(String, String)>,
    /// Its port; `None`: a free one.
    port: Option<u16>,
    /// The edge's own defaults for `SQS_TIMEOUT_MS` and `RETRY_AFTER_SECS` instead of the
    /// local stack's ([`LocalStackBuilder::edge_own_defaults`]).
    own_defaults: bool,
}

impl EdgeSpec {
    /// The vars for moto at `moto_endpoint`, the queue `queue_url` and `bucket`:
    /// [`edge_bindings`], or without its local defaults when `own_defaults`.
    fn bindings(
        &self,
        moto_endpoint: &str,
        queue_url: &str,
        bucket: Option<&str>,
    ) -> Vec<(String, String)> {
        if !self.own_defaults {
            return edge_bindings(moto_endpoint, queue_url, bucket, &self.vars);
        }
        let mut extra: Vec<(&str, String)> = Vec::new();
        if let Some(b) = bucket {
            extra.push(("CLAIM_CHECK_BUCKET", b.to_owned()));
        }
        extra.extend(self.vars.iter().map(|(k, v)| (k.as_str(), v.clone())));
        local_bindings(moto_endpoint, queue_url, &extra)
    }
}

/// The pieces of a [`LocalStack`] to start: made by [`LocalStack::builder`], every option
/// chainable, started by [`LocalStackBuilder::start`].
#[derive(Debug, Clone, Default)]
#[must_use = "a builder does nothing until .start().await"]
pub struct LocalStackBuilder {
    moto_port: Option<u16>,
    queues: Vec<QueueSpec>,
    bucket: Option<String>,
    versioned: bool,
    api_secrets: bool,
    edge: Option<EdgeSpec>,
    provider: bool,
    archiver: Option<Vec<(String, String)>>,
    check_queue: Option<String>,
    api: Option<Vec<(String, String)>>,
    reconciler: Option<Vec<(String, String)>>,
    secrets: Vec<(String, String)>,
    cloudflare: Option<String>,
    rotator: Option<Vec<(String, String)>>,
    rotator_faults: bool,
    rotations: Vec<String>,
    signing: Option<Signing>,
}

fn owned(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn borrowed(vars: &[(String, String)]) -> Vec<(&str, &str)> {
    vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn names(vars: &[(String, String)], name: &str) -> bool {
    vars.iter().any(|(k, _)| k == name)
}

impl LocalStackBuilder {
    /// moto on `port` (for a stack other tools point at, as `hookvault-dev serve`'s 4566);
    /// by default a free port.
    pub fn moto_port(mut self, port: u16) -> Self {
        self.moto_port = Some(port);
        self
    }

    /// A queue named `name` (FIFO when it ends in `.fifo`). The first queue is the
    /// stack's queue: the edge's `SQS_QUEUE_URL`, what [`LocalStack::queue_url`] and
    /// [`LocalStack::drain`] name. Queues are created in the order given.
    pub fn queue(mut self, name: &str) -> Self {
        self.queues.push(QueueSpec {
            name: name.to_owned(),
            max_receives: None,
        });
        self
    }

    /// [`LocalStackBuilder::queue`] with a dead-letter queue `{name}-dlq` taking a message
    /// after `max_receives` receives (the queue's redrive policy, as in AWS; see
    /// [`poller::create_with_dlq`]).
    pub fn queue_with_dlq(mut self, name: &str, max_receives: u32) -> Self {
        self.queues.push(QueueSpec {
            name: name.to_owned(),
            max_receives: Some(max_receives),
        });
        self
    }

    /// A bucket named `name` (the tests use [`TEST_BUCKET`]): the edge's claim-check
    /// bucket and the archiver's archive. A second call replaces the name.
    pub fn bucket(mut self, name: &str) -> Self {
        self.bucket = Some(name.to_owned());
        self
    }

    /// Turns on versioning on the bucket (so "archived once" is countable: one version
    /// per write). Needs [`LocalStackBuilder::bucket`].
    pub fn versioned(mut self) -> Self {
        self.versioned = true;
        self
    }

    /// The api's secrets in Secrets Manager: the provider API key and the caller keys
    /// ([`api::create_api_secrets`]).
    pub fn api_secrets(mut self) -> Self {
        self.api_secrets = true;
        self
    }

    /// The edge (the built Rust Worker, [`paths::edge_build`]) in workerd, with
    /// [`edge_bindings`] for the stack's first queue and its bucket. Needs a queue.
    pub fn edge(mut self) -> Self {
        self.edge.get_or_insert_with(EdgeSpec::default);
        self
    }

    /// The edge built into `build` instead (e.g. the test build with a route that
    /// panics); implies [`LocalStackBuilder::edge`].
    pub fn edge_build(mut self, build: impl Into<PathBuf>) -> Self {
        self.edge.get_or_insert_with(EdgeSpec::default).build = Some(build.into());
        self
    }

    /// The edge on `port` instead of a free one; implies [`LocalStackBuilder::edge`].
    pub fn edge_port(mut self, port: u16) -> Self {
        self.edge.get_or_insert_with(EdgeSpec::default).port = Some(port);
        self
    }

    /// The edge var `name` = `value`, added or replacing a default of [`edge_bindings`]
    /// (a later call for the same name wins); implies [`LocalStackBuilder::edge`].
    pub fn edge_var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.edge
            .get_or_insert_with(EdgeSpec::default)
            .vars
            .push((name.to_owned(), value.into()));
        self
    }

    /// The edge keeps its own defaults for `SQS_TIMEOUT_MS` and `RETRY_AFTER_SECS` (those
    /// of `edge/wrangler.toml`) instead of the local stack's short ones
    /// ([`EDGE_SQS_TIMEOUT_MS`], [`EDGE_RETRY_AFTER_SECS`]): for a stack that stands in for
    /// a deployment (`hookvault-dev serve`, `demo`, `drill`, the latency benchmark).
    /// `CLAIM_CHECK_BUCKET` and the [`LocalStackBuilder::edge_var`]s are as without it;
    /// implies [`LocalStackBuilder::edge`].
    pub fn edge_own_defaults(mut self) -> Self {
        self.edge.get_or_insert_with(EdgeSpec::default).own_defaults = true;
        self
    }

    /// [`LocalStackBuilder::edge_var`] for each (name, value) of `vars`, in order.
    pub fn edge_vars<K: AsRef<str>, V: AsRef<str>>(mut self, vars: &[(K, V)]) -> Self {
        for (k, v) in vars {
            self = self.edge_var(k.as_ref(), v.as_ref());
        }
        self.edge()
    }

    /// The stand-in provider and its CDN ([`Provider`]), on a free port.
    pub fn provider(mut self) -> Self {
        self.provider = true;
        self
    }

    /// The stand-in provider signs its webhooks as `signing` says from its start (the
    /// rotation stack's `general` key mode: [`Signing::PredictionKey`]); implies
    /// [`LocalStackBuilder::provider`].
    pub fn provider_signing(mut self, signing: Signing) -> Self {
        self.signing = Some(signing);
        self.provider()
    }

    /// The archiver Lambda under `cargo lambda watch`, with [`archiver_env`] for moto and
    /// the stack's bucket, `vars` added or replacing. Needs a bucket. Started last; the
    /// first invoke waits for the function to be built. (Feed it with a
    /// [`poller::Poller`] on the stack's queue.)
    pub fn archiver(mut self, vars: &[(&str, &str)]) -> Self {
        self.archiver = Some(owned(vars));
        self
    }

    /// The reconciler's check queue (issue 23), a standard queue named `name`, created
    /// after the builder's other queues (never the stack's first queue): the api's
    /// `CHECK_QUEUE_URL` and the queue the reconciler reads and re-checks on
    /// ([`LocalStack::check_queue`]).
    pub fn check_queue(mut self, name: &str) -> Self {
        self.check_queue = Some(name.to_owned());
        self
    }

    /// The api under `cargo lambda watch` (a Function URL, one instance) with
    /// [`api::api_env`] for moto, the provider, the bucket, the edge's webhook URL
    /// (`{edge}/webhooks/skytells`) and the check queue's `CHECK_QUEUE_URL` when there is
    /// one, `vars` added or replacing (`EDGE_WEBHOOK_URL` among them when there is no
    /// edge). Implies [`LocalStackBuilder::api_secrets`]; needs a provider and a bucket.
    pub fn api(mut self, vars: &[(&str, &str)]) -> Self {
        self.api = Some(owned(vars));
        self.api_secrets = true;
        self
    }

    /// The reconciler under `cargo lambda watch` with [`reconciler_env`] for moto, the
    /// bucket, the stack's first queue (where reconciled events go), the check queue and
    /// the provider's API (`PROVIDER_API_URL` in `vars` when there is no provider), `vars`
    /// added or replacing. Implies [`LocalStackBuilder::api_secrets`] (the key it fetches
    /// with); needs a bucket, a queue and a check queue. (Feed it with a
    /// [`poller::Mapping`] on the check queue.)
    pub fn reconciler(mut self, vars: &[(&str, &str)]) -> Self {
        self.reconciler = Some(owned(vars));
        self.api_secrets = true;
        self
    }

    /// A Secrets Manager secret `id` with the string `value`, created after the api's
    /// secrets (the rotation stack's webhook secret, API key and Cloudflare token).
    pub fn secret(mut self, id: &str, value: impl Into<String>) -> Self {
        self.secrets.push((id.to_owned(), value.into()));
        self
    }

    /// The edge deployed behind the stand-in Cloudflare API ([`DeployedEdge`], accepting
    /// `token`) instead of alone in workerd: version 1 is the built edge with the
    /// [`LocalStackBuilder::edge`] vars, and the API can upload and deploy more
    /// ([`LocalStack::cloudflare`]). Implies [`LocalStackBuilder::edge`]; not with
    /// [`LocalStackBuilder::edge_port`] or [`LocalStackBuilder::edge_build`].
    pub fn cloudflare(mut self, token: &str) -> Self {
        self.cloudflare = Some(token.to_owned());
        self.edge()
    }

    /// The rotator Lambda under `cargo lambda watch`, with [`local_aws_env`] for moto, the
    /// stand-in Cloudflare API and the deployed edge (`CLOUDFLARE_API_URL`,
    /// `CLOUDFLARE_ACCOUNT_ID`, `CLOUDFLARE_WORKER_NAME`, `EDGE_URL`), the provider's
    /// `PROVIDER_API_URL`, then `vars` added or replacing. moto's `RotateSecret` for
    /// [`ROTATOR_ARN`] invokes it ([`Moto::route_rotation`]). Needs
    /// [`LocalStackBuilder::cloudflare`] and a provider.
    pub fn rotator(mut self, vars: &[(&str, &str)]) -> Self {
        self.rotator = Some(owned(vars));
        self
    }

    /// The rotator reaches moto through a proxy that can fail chosen Secrets Manager
    /// calls ([`SecretsFaults`], [`LocalStack::secrets_faults`]). Needs a rotator.
    pub fn rotator_faults(mut self) -> Self {
        self.rotator_faults = true;
        self
    }

    /// Rotation enabled on the secret `id` with the rotator, every 90 days, not at once
    /// (`RotateSecret` with its rules); a test then rotates when it wants. Needs
    /// [`LocalStackBuilder::rotator`] and [`LocalStackBuilder::secret`]`(id, …)`.
    pub fn rotation(mut self, id: &str) -> Self {
        self.rotations.push(id.to_owned());
        self
    }

    /// Checks that the pieces asked for fit together, before anything starts: an edge
    /// needs a queue, versioning and an archiver need a bucket, and queue names are
    /// unique. Errors are [`StackError::Start`], naming the option missing.
    pub fn check(&self) -> Result<(), StackError> {
        let missing = |what: &str| Err(StackError::Start(format!("LocalStack::builder: {what}")));
        if self.edge.is_some() && self.queues.is_empty() {
            return missing("the edge needs a queue: add .queue(name)");
        }
        if self.versioned && self.bucket.is_none() {
            return missing(".versioned() needs a bucket: add .bucket(name)");
        }
        if self.archiver.is_some() && self.bucket.is_none() {
            return missing("the archiver needs a bucket: add .bucket(name)");
        }
        for (i, q) in self.queues.iter().enumerate() {
            if self.queues[..i].iter().any(|p| p.name == q.name) {
                return missing(&format!("queue {} is named twice", q.name));
            }
        }
        if let Some(c) = &self.check_queue {
            if self.queues.iter().any(|q| &q.name == c) {
                return missing(&format!("queue {c} is named twice"));
            }
        }
        if self.cloudflare.is_some() {
            if let Some(e) = &self.edge {
                if e.port.is_some() || e.build.is_some() {
                    return missing("the edge behind the Cloudflare API has its own port and the built edge: drop .edge_port / .edge_build");
                }
            }
        }
        if self.rotator.is_some() {
            if self.cloudflare.is_none() {
                return missing("the rotator needs the deployed edge: add .cloudflare(token)");
            }
            if !self.provider {
                return missing("the rotator needs a provider: add .provider()");
            }
        } else if self.rotator_faults || !self.rotations.is_empty() {
            return missing("rotation needs the rotator: add .rotator(vars)");
        }
        for id in &self.rotations {
            if !self.secrets.iter().any(|(s, _)| s == id) {
                return missing(&format!(
                    "rotation of {id} needs the secret: add .secret({id:?}, value)"
                ));
            }
        }
        if let Some(vars) = &self.api {
            if self.bucket.is_none() {
                return missing("the api needs a bucket: add .bucket(name)");
            }
            if !self.provider && !names(vars, "PROVIDER_API_URL") {
                return missing("the api needs a provider: add .provider()");
            }
            if self.edge.is_none() && !names(vars, "EDGE_WEBHOOK_URL") {
                return missing("the api needs a webhook URL: add .edge() or EDGE_WEBHOOK_URL");
            }
        }
        if let Some(vars) = &self.reconciler {
            if self.bucket.is_none() {
                return missing("the reconciler needs a bucket: add .bucket(name)");
            }
            if self.queues.is_empty() {
                return missing("the reconciler needs an events queue: add .queue(name)");
            }
            if self.check_queue.is_none() {
                return missing("the reconciler needs a check queue: add .check_queue(name)");
            }
            if !self.provider && !names(vars, "PROVIDER_API_URL") {
                return missing("the reconciler needs a provider: add .provider()");
            }
        }
        Ok(())
    }

    /// The edge's vars this builder gives workerd once moto is at `moto_endpoint` and the
    /// first queue at `queue_url` ([`edge_bindings`] with the bucket and the
    /// [`LocalStackBuilder::edge_var`]s, without its local defaults after
    /// [`LocalStackBuilder::edge_own_defaults`]); `None` when no edge was asked for.
    pub fn edge_bindings(
        &self,
        moto_endpoint: &str,
        queue_url: &str,
    ) -> Option<Vec<(String, String)>> {
        self.edge
            .as_ref()
            .map(|e| e.bindings(moto_endpoint, queue_url, self.bucket.as_deref()))
    }

    /// Starts moto, then the queues (the check queue last), the bucket (versioned if
    /// asked), the api's secrets and the [`LocalStackBuilder::secret`]s, the provider, the
    /// edge (alone or behind the stand-in Cloudflare API), the api, the reconciler, the
    /// archiver, and the rotator (after its fault proxy; then `RotateSecret` is routed to
    /// it and the [`LocalStackBuilder::rotation`]s are enabled), each only if asked for,
    /// and waits until each answers (moto up to 30 s, the edge 20 s, each Lambda's
    /// emulator 60 s).
    ///
    /// Errors: [`LocalStackBuilder::check`]'s; [`StackError::Missing`] when a tool or the
    /// edge build is missing; [`StackError::Start`] when a process does not become ready
    /// or moto refuses a call. What had started is stopped again.
    pub async fn start(self) -> Result<LocalStack, StackError> {
        self.check()?;
        let moto = Moto::start(self.moto_port).await?;
        let sqs = sqs::client(&moto.endpoint);
        let s3 = s3::client(&moto.endpoint);
        let secrets = s3::secrets_client(&moto.endpoint);
        let mut queues = Vec::with_capacity(self.queues.len());
        for q in &self.queues {
            let (url, dlq_url) = match q.max_receives {
                Some(n) => {
                    let (url, dlq) = poller::create_with_dlq(&sqs, &q.name, n).await?;
                    (url, Some(dlq))
                }
                None => (sqs::create_queue(&sqs, &q.name).await?, None),
            };
            queues.push(Queue {
                name: q.name.clone(),
                url,
                dlq_url,
            });
        }
        let check_queue = match &self.check_queue {
            Some(name) => Some(Queue {
                name: name.clone(),
                url: sqs::create_queue(&sqs, name).await?,
                dlq_url: None,
            }),
            None => None,
        };
        if let Some(b) = &self.bucket {
            s3::create_bucket(&s3, b).await?;
            if self.versioned {
                operator::enable_versioning(&s3, b).await?;
            }
        }
        if self.api_secrets {
            api::create_api_secrets(&secrets).await?;
        }
        for (id, value) in &self.secrets {
            api::create_secret(&secrets, id, value).await?;
        }
        let provider = if self.provider {
            let p = Provider::start().await?;
            if let Some(signing) = self.signing {
                p.with(|s| s.keys.signing = signing);
            }
            Some(p)
        } else {
            None
        };
        let cloudflare = match (&self.cloudflare, &self.edge, queues.first()) {
            (Some(token), Some(spec), Some(q)) => {
                let bindings = spec.bindings(&moto.endpoint, &q.url, self.bucket.as_deref());
                Some(DeployedEdge::start(bindings, token).await?)
            }
            _ => None,
        };
        let edge = match (&self.edge, queues.first()) {
            (Some(_), _) if cloudflare.is_some() => None,
            (Some(spec), Some(q)) => {
                let build = match &spec.build {
                    Some(b) => b.clone(),
                    None => paths::edge_build()?,
                };
                let bindings = spec.bindings(&moto.endpoint, &q.url, self.bucket.as_deref());
                Some(Edge::start_modules(&build, RUST_EDGE_MODULES, &bindings, spec.port).await?)
            }
            _ => None,
        };
        let mut stack = LocalStack {
            moto,
            sqs,
            s3,
            secrets,
            queues,
            check_queue,
            bucket: self.bucket,
            edge,
            provider,
            api: None,
            reconciler: None,
            archiver: None,
            cloudflare,
            rotator: None,
            secrets_faults: None,
            http: reqwest::Client::new(),
        };
        if let Some(vars) = &self.api {
            stack.api = Some(stack.start_api(&borrowed(vars), 1).await?);
        }
        if let Some(vars) = &self.reconciler {
            stack.reconciler = Some(stack.start_reconciler(&borrowed(vars)).await?);
        }
        if let Some(vars) = &self.archiver {
            stack.archiver = Some(stack.start_archiver(&borrowed(vars)).await?);
        }
        if let Some(vars) = &self.rotator {
            if self.rotator_faults {
                stack.secrets_faults = Some(SecretsFaults::start(&stack.moto.endpoint).await?);
            }
            let rotator = stack.start_rotator(&borrowed(vars)).await?;
            stack
                .moto
                .route_rotation(ROTATOR_ARN, Some(&rotator.invoke_url))?;
            stack.rotator = Some(rotator);
            for id in &self.rotations {
                stack
                    .secrets
                    .rotate_secret()
                    .secret_id(id)
                    .rotation_lambda_arn(ROTATOR_ARN)
                    .rotation_rules(
                        RotationRulesType::builder()
                            .automatically_after_days(90)
                            .build(),
                    )
                    .rotate_immediately(false)
                    .send()
                    .await
                    .map_err(|e| StackError::Start(format!("enable rotation of {id}: {e}")))?;
            }
        }
        Ok(stack)
    }
}

/// A running local stack: moto with the clients for it, and the pieces the builder asked
/// for (`None` or empty where not).
#[derive(Debug)]
pub struct LocalStack {
    /// moto (SQS, S3, Secrets Manager).
    pub moto: Moto,
    /// An SQS client for moto.
    pub sqs: aws_sdk_sqs::Client,
    /// An S3 client for moto (path-style).
    pub s3: aws_sdk_s3::Client,
    /// A Secrets Manager client for moto.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// The queues, in the order the builder named them.
    pub queues: Vec<Queue>,
    /// The reconciler's check queue ([`LocalStackBuilder::check_queue`]).
    pub check_queue: Option<Queue>,
    /// The bucket's name, if the builder named one.
    pub bucket: Option<String>,
    /// The edge in workerd.
    pub edge: Option<Edge>,
    /// The stand-in provider and CDN.
    pub provider: Option<Provider>,
    /// The api under `cargo lambda watch` ([`LocalStackBuilder::api`]).
    pub api: Option<LambdaFunction>,
    /// The reconciler under `cargo lambda watch` ([`LocalStackBuilder::reconciler`]).
    pub reconciler: Option<LambdaFunction>,
    /// The archiver under `cargo lambda watch` ([`LocalStackBuilder::archiver`]).
    pub archiver: Option<LambdaFunction>,
    /// The edge deployed behind the stand-in Cloudflare API
    /// ([`LocalStackBuilder::cloudflare`]); [`LocalStack::edge`] is then `None`.
    pub cloudflare: Option<DeployedEdge>,
    /// The rotator under `cargo lambda watch` ([`LocalStackBuilder::rotator`]).
    pub rotator: Option<LambdaFunction>,
    /// The proxy between the rotator and moto ([`LocalStackBuilder::rotator_faults`]).
    pub secrets_faults: Option<SecretsFaults>,
    /// An HTTP client (for the edge and the provider).
    pub http: reqwest::Client,
}

fn absent(what: &str, option: &str) -> StackError {
    StackError::Start(format!(
        "this LocalStack has no {what}: start it with LocalStack::builder().{option}"
    ))
}

impl LocalStack {
    /// A builder with nothing but moto; add the pieces with its options.
    pub fn builder() -> LocalStackBuilder {
        LocalStackBuilder::default()
    }

    /// The stack's queue (the first the builder named). Error: there is none.
    pub fn queue(&self) -> Result<&Queue, StackError> {
        self.queues
            .first()
            .ok_or_else(|| absent("queue", "queue(name)"))
    }

    /// The queue named `name` (the check queue too). Error: there is none of that name.
    pub fn queue_named(&self, name: &str) -> Result<&Queue, StackError> {
        self.queues
            .iter()
            .chain(self.check_queue.as_ref())
            .find(|q| q.name == name)
            .ok_or_else(|| absent(&format!("queue {name}"), &format!("queue({name:?})")))
    }

    /// The check queue. Error: there is none.
    pub fn check_queue(&self) -> Result<&Queue, StackError> {
        self.check_queue
            .as_ref()
            .ok_or_else(|| absent("check queue", "check_queue(name)"))
    }

    /// The stack's queue's URL. Error: there is no queue.
    pub fn queue_url(&self) -> Result<&str, StackError> {
        Ok(&self.queue()?.url)
    }

    /// The stack's queue's dead-letter queue URL. Error: no queue, or one without a DLQ.
    pub fn dlq_url(&self) -> Result<&str, StackError> {
        self.queue()?
            .dlq_url
            .as_deref()
            .ok_or_else(|| absent("DLQ", "queue_with_dlq(name, max_receives)"))
    }

    /// The bucket's name. Error: there is no bucket.
    pub fn bucket(&self) -> Result<&str, StackError> {
        self.bucket
            .as_deref()
            .ok_or_else(|| absent("bucket", "bucket(name)"))
    }

    /// The edge. Error: there is none.
    pub fn edge(&self) -> Result<&Edge, StackError> {
        self.edge.as_ref().ok_or_else(|| absent("edge", "edge()"))
    }

    /// The stand-in provider and CDN. Error: there is none.
    pub fn provider(&self) -> Result<&Provider, StackError> {
        self.provider
            .as_ref()
            .ok_or_else(|| absent("provider", "provider()"))
    }

    /// Starts an archiver under `cargo lambda watch` for this stack: [`archiver_env`] for
    /// moto and the bucket, `vars` added or replacing (e.g. one broken, then one fixed).
    /// Error: no bucket, or the emulator did not start ([`LambdaFunction::start`]).
    pub async fn start_archiver(
        &self,
        vars: &[(&str, &str)],
    ) -> Result<LambdaFunction, StackError> {
        let env = archiver_env(&self.moto.endpoint, self.bucket()?, vars);
        LambdaFunction::start("functions/archiver", "archiver", &env).await
    }

    /// The edge's webhook URL for the reference provider, `{edge}/webhooks/skytells`.
    /// Error: no edge.
    pub fn webhook_url(&self) -> Result<String, StackError> {
        Ok(format!("{}/webhooks/skytells", self.edge()?.url))
    }

    /// The api's environment on this stack: [`api::api_env`] for moto, the provider, the
    /// bucket and the edge's [`LocalStack::webhook_url`] (none without an edge: then
    /// `vars` must name `EDGE_WEBHOOK_URL`), `CHECK_QUEUE_URL` = the check queue when
    /// there is one, then `vars` added or replacing. Error: no bucket, or no provider and
    /// no `PROVIDER_API_URL` in `vars`.
    pub fn api_env(&self, vars: &[(&str, &str)]) -> Result<Vec<(String, String)>, StackError> {
        let provider = match &self.provider {
            Some(p) => p.url.clone(),
            None if vars.iter().any(|(k, _)| *k == "PROVIDER_API_URL") => String::new(),
            None => return Err(absent("provider", "provider()")),
        };
        let hook = self.webhook_url().unwrap_or_default();
        let mut extra: Vec<(&str, &str)> = Vec::new();
        if let Some(c) = &self.check_queue {
            extra.push(("CHECK_QUEUE_URL", c.url.as_str()));
        }
        extra.extend_from_slice(vars);
        Ok(api::api_env(
            &self.moto.endpoint,
            &provider,
            self.bucket()?,
            &hook,
            &extra,
        ))
    }

    /// Starts an api under `cargo lambda watch` with [`LocalStack::api_env`] and up to
    /// `concurrency` instances ([`api::start_api`]). Errors: [`LocalStack::api_env`]'s, or
    /// the emulator did not start.
    pub async fn start_api(
        &self,
        vars: &[(&str, &str)],
        concurrency: u32,
    ) -> Result<LambdaFunction, StackError> {
        api::start_api(&self.api_env(vars)?, concurrency).await
    }

    /// The reconciler's environment on this stack: [`reconciler_env`] for moto, the
    /// bucket, the first queue, the check queue and the provider, then `vars`. Error: any
    /// of those missing (the provider unless `vars` names `PROVIDER_API_URL`).
    pub fn reconciler_env(
        &self,
        vars: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>, StackError> {
        let provider = match &self.provider {
            Some(p) => p.url.clone(),
            None if vars.iter().any(|(k, _)| *k == "PROVIDER_API_URL") => String::new(),
            None => return Err(absent("provider", "provider()")),
        };
        Ok(reconciler_env(
            &self.moto.endpoint,
            self.bucket()?,
            self.queue_url()?,
            &self.check_queue()?.url,
            &provider,
            vars,
        ))
    }

    /// Starts a reconciler under `cargo lambda watch` with [`LocalStack::reconciler_env`].
    /// Errors: that one's, or the emulator did not start.
    pub async fn start_reconciler(
        &self,
        vars: &[(&str, &str)],
    ) -> Result<LambdaFunction, StackError> {
        let env = self.reconciler_env(vars)?;
        LambdaFunction::start("functions/reconciler", "reconciler", &env).await
    }

    /// The rotator's environment on this stack ([`LocalStackBuilder::rotator`]), through
    /// the [`LocalStack::secrets_faults`] proxy when there is one. Error: no deployed edge,
    /// or no provider.
    pub fn rotator_env(&self, vars: &[(&str, &str)]) -> Result<Vec<(String, String)>, StackError> {
        let edge = self
            .cloudflare
            .as_ref()
            .ok_or_else(|| absent("deployed edge", "cloudflare(token)"))?;
        let mut all = vec![
            ("CLOUDFLARE_API_URL", edge.api_url.as_str()),
            ("CLOUDFLARE_ACCOUNT_ID", cloudflare::ACCOUNT),
            ("CLOUDFLARE_WORKER_NAME", cloudflare::SCRIPT),
            ("EDGE_URL", edge.url.as_str()),
            ("PROVIDER_API_URL", self.provider()?.url.as_str()),
        ];
        all.extend_from_slice(vars);
        if let Some(f) = &self.secrets_faults {
            all.push(("AWS_ENDPOINT_URL", f.url.as_str()));
        }
        Ok(local_aws_env(&self.moto.endpoint, &all))
    }

    /// Starts a rotator under `cargo lambda watch` with [`LocalStack::rotator_env`] (not
    /// routed from `RotateSecret`: the builder's is). Errors: that one's, or the emulator
    /// did not start.
    pub async fn start_rotator(&self, vars: &[(&str, &str)]) -> Result<LambdaFunction, StackError> {
        let env = self.rotator_env(vars)?;
        LambdaFunction::start("functions/rotator", "rotator", &env).await
    }

    /// POSTs `body` with `headers` (name, value) to `path` on the edge; the status, the
    /// headers and the body as text. Error: no edge, or the request failed.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Result<(u16, reqwest::header::HeaderMap, String), StackError> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.edge()?.url))
            .body(body);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let failed = |e: reqwest::Error| StackError::Start(format!("POST {path}: {e}"));
        let resp = req.send().await.map_err(failed)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        Ok((status, headers, resp.text().await.map_err(failed)?))
    }

    /// GETs `path` on the edge. Error: no edge, or the request failed.
    pub async fn get(&self, path: &str) -> Result<reqwest::Response, StackError> {
        self.http
            .get(format!("{}{path}", self.edge()?.url))
            .send()
            .await
            .map_err(|e| StackError::Start(format!("GET {path}: {e}")))
    }

    /// Every message now on the stack's queue, each deleted ([`sqs::drain`]). Error: no
    /// queue, or SQS refused.
    pub async fn drain(&self) -> Result<Vec<Message>, StackError> {
        sqs::drain(&self.sqs, self.queue_url()?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value<'a>(b: &'a [(String, String)], name: &str) -> Option<&'a str> {
        b.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_edge_gets_the_local_defaults_the_bucket_and_the_extras() {
        let b = LocalStack::builder()
            .queue("events")
            .bucket(TEST_BUCKET)
            .edge_var("WEBHOOK_SECRETS", "s")
            .edge_var("SQS_TIMEOUT_MS", "500")
            .edge_bindings("http://127.0.0.1:1", "http://127.0.0.1:1/123/events")
            .unwrap_or_default();
        assert_eq!(
            value(&b, "SQS_QUEUE_URL"),
            Some("http://127.0.0.1:1/123/events")
        );
        assert_eq!(value(&b, "SQS_ENDPOINT"), Some("http://127.0.0.1:1/"));
        assert_eq!(value(&b, "S3_ENDPOINT"), Some("http://127.0.0.1:1/"));
        assert_eq!(value(&b, "RETRY_AFTER_SECS"), Some("7"));
        assert_eq!(value(&b, "CLAIM_CHECK_BUCKET"), Some("archive"));
        assert_eq!(value(&b, "WEBHOOK_SECRETS"), Some("s"));
        assert_eq!(
            value(&b, "SQS_TIMEOUT_MS"),
            Some("500"),
            "an extra replaces"
        );
        let names: Vec<&str> = b.iter().map(|(k, _)| k.as_str()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "each var once: {names:?}");
    }

    #[test]
    fn the_bindings_are_what_the_tests_gave_the_edge_before_the_builder() {
        // utils::bindings before issue 24 item 6: local_bindings with these three first.
        let before = local_bindings(
            "http://m",
            "http://m/q",
            &[
                ("SQS_TIMEOUT_MS", "2000".to_owned()),
                ("RETRY_AFTER_SECS", "7".to_owned()),
                ("CLAIM_CHECK_BUCKET", "archive".to_owned()),
                ("WEBHOOK_SECRETS", "x".to_owned()),
            ],
        );
        let now = edge_bindings(
            "http://m",
            "http://m/q",
            Some("archive"),
            &[("WEBHOOK_SECRETS", "x")],
        );
        assert_eq!(now, before);
    }

    #[test]
    fn without_a_bucket_the_edge_has_no_claim_check_and_without_an_edge_no_bindings() {
        let b = LocalStack::builder().queue("q").edge();
        let vars = b
            .edge_bindings("http://m", "http://m/q")
            .unwrap_or_default();
        assert_eq!(value(&vars, "CLAIM_CHECK_BUCKET"), None);
        assert!(!vars.is_empty());
        assert!(LocalStack::builder()
            .queue("q")
            .edge_bindings("http://m", "u")
            .is_none());
    }

    #[test]
    fn with_its_own_defaults_the_edge_gets_what_the_dev_stacks_gave_it_before_the_builder() {
        // hookvault-dev serve, demo, drill and bench-latency before issue 24 item 6.
        let before = local_bindings(
            "http://m",
            "http://m/q",
            &[
                ("WEBHOOK_SECRETS", "x".to_owned()),
                ("CLAIM_CHECK_BUCKET", "archive".to_owned()),
            ],
        );
        let now = LocalStack::builder()
            .queue("q")
            .bucket("archive")
            .edge_var("WEBHOOK_SECRETS", "x")
            .edge_own_defaults()
            .edge_bindings("http://m", "http://m/q")
            .unwrap_or_default();
        let sorted = |mut v: Vec<(String, String)>| {
            v.sort();
            v
        };
        assert_eq!(sorted(now.clone()), sorted(before));
        assert_eq!(value(&now, "SQS_TIMEOUT_MS"), None, "the edge's own 5000");
        assert_eq!(value(&now, "RETRY_AFTER_SECS"), None, "the edge's own 10");
    }

    #[test]
    fn edge_options_imply_the_edge() {
        for b in [
            LocalStack::builder().edge_own_defaults(),
            LocalStack::builder().edge_var("A", "1"),
            LocalStack::builder().edge_build("/tmp/x"),
            LocalStack::builder().edge_port(1),
            LocalStack::builder().edge_vars(&[("A", "1")]),
        ] {
            assert!(b.edge.is_some());
        }
        let b = LocalStack::builder()
            .edge_build("/tmp/x")
            .edge_var("A", "1")
            .edge();
        let spec = b.edge.unwrap_or_default();
        assert_eq!(spec.build, Some(PathBuf::from("/tmp/x")));
        assert_eq!(spec.vars, vec![("A".to_owned(), "1".to_owned())]);
    }

    #[test]
    fn check_refuses_pieces_that_do_not_fit() {
        let refused = |b: LocalStackBuilder, says: &str| match b.check() {
            Err(StackError::Start(m)) => assert!(m.contains(says), "{m}"),
            other => panic!("{other:?}"),
        };
        refused(LocalStack::builder().edge(), "needs a queue");
        refused(LocalStack::builder().versioned(), "needs a bucket");
        refused(LocalStack::builder().archiver(&[]), "needs a bucket");
        refused(
            LocalStack::builder().queue("a").queue_with_dlq("a", 2),
            "named twice",
        );
        assert!(LocalStack::builder()
            .queue_with_dlq("events", 2)
            .queue("other")
            .bucket(TEST_BUCKET)
            .versioned()
            .api_secrets()
            .edge()
            .provider()
            .archiver(&[("X", "1")])
            .check()
            .is_ok());
        assert!(LocalStack::builder().check().is_ok(), "moto alone");
    }

    #[test]
    fn the_api_and_the_reconciler_need_what_they_talk_to() {
        let refused = |b: LocalStackBuilder, says: &str| match b.check() {
            Err(StackError::Start(m)) => assert!(m.contains(says), "{m}"),
            other => panic!("{other:?}"),
        };
        let base = || {
            LocalStack::builder()
                .queue("events")
                .check_queue("checks")
                .bucket(TEST_BUCKET)
                .provider()
        };
        refused(
            LocalStack::builder().queue("q").provider().edge().api(&[]),
            "bucket",
        );
        refused(
            LocalStack::builder().bucket("b").queue("q").edge().api(&[]),
            "provider",
        );
        refused(
            LocalStack::builder().bucket("b").provider().api(&[]),
            "webhook URL",
        );
        assert!(LocalStack::builder()
            .bucket("b")
            .provider()
            .api(&[("EDGE_WEBHOOK_URL", "https://e/webhooks/skytells")])
            .check()
            .is_ok());
        refused(
            LocalStack::builder()
                .queue("events")
                .bucket("b")
                .provider()
                .reconciler(&[]),
            "check queue",
        );
        refused(
            LocalStack::builder()
                .check_queue("c")
                .bucket("b")
                .provider()
                .reconciler(&[]),
            "events queue",
        );
        refused(
            LocalStack::builder()
                .queue("events")
                .check_queue("c")
                .reconciler(&[]),
            "bucket",
        );
        refused(
            LocalStack::builder().queue("c").check_queue("c"),
            "named twice",
        );
        let b = base()
            .edge()
            .api(&[])
            .reconciler(&[("CHECK_MAX_AGE_SECS", "6")]);
        assert!(b.check().is_ok());
        assert!(
            b.api_secrets,
            "the api and the reconciler read the key secret"
        );
        assert_eq!(
            b.reconciler,
            Some(vec![("CHECK_MAX_AGE_SECS".into(), "6".into())])
        );
    }

    #[test]
    fn the_reconciler_reads_the_check_queue_and_sends_to_the_events_queue() {
        let env = reconciler_env(
            "http://m",
            "archive",
            "http://m/1/events",
            "http://m/1/checks",
            "http://p",
            &[("CHECK_MAX_AGE_SECS", "6"), ("RUST_LOG", "debug")],
        );
        assert_eq!(value(&env, "AWS_ENDPOINT_URL"), Some("http://m"));
        assert_eq!(value(&env, "ARCHIVE_BUCKET"), Some("archive"));
        assert_eq!(value(&env, "QUEUE_URL"), Some("http://m/1/events"));
        assert_eq!(value(&env, "CHECK_QUEUE_URL"), Some("http://m/1/checks"));
        assert_eq!(value(&env, "PROVIDER_API_URL"), Some("http://p"));
        assert_eq!(
            value(&env, "API_KEY_SECRET_ID"),
            Some(crate::rotation::API_KEY_SECRET_ID)
        );
        assert_eq!(value(&env, "CHECK_MAX_AGE_SECS"), Some("6"));
        assert_eq!(value(&env, "RUST_LOG"), Some("debug"), "an extra replaces");
    }

    #[test]
    fn the_rotator_needs_the_deployed_edge_the_provider_and_its_secrets() {
        let refused = |b: LocalStackBuilder, says: &str| match b.check() {
            Err(StackError::Start(m)) => assert!(m.contains(says), "{m}"),
            other => panic!("{other:?}"),
        };
        let base = || LocalStack::builder().queue("q").provider();
        refused(base().edge().rotator(&[]), "cloudflare");
        refused(
            LocalStack::builder()
                .queue("q")
                .cloudflare("t")
                .rotator(&[]),
            "provider",
        );
        refused(base().rotation("s"), "rotator");
        refused(base().rotator_faults(), "rotator");
        refused(
            base().cloudflare("t").rotator(&[]).rotation("s"),
            ".secret(\"s\"",
        );
        refused(base().cloudflare("t").edge_port(1), "own port");
        refused(LocalStack::builder().cloudflare("t"), "needs a queue");
        let b = base()
            .secret("s", "v")
            .edge_var("WEBHOOK_SECRETS", "x")
            .edge_own_defaults()
            .cloudflare("t")
            .rotator(&[("RUST_LOG", "info")])
            .rotator_faults()
            .rotation("s");
        assert!(b.check().is_ok());
        assert_eq!(b.secrets, vec![("s".into(), "v".into())]);
        assert_eq!(b.cloudflare.as_deref(), Some("t"));
        assert!(b.edge.is_some(), "cloudflare implies the edge");
        let b = LocalStack::builder().provider_signing(Signing::PredictionKey);
        assert!(b.provider, "provider_signing implies the provider");
        assert_eq!(b.signing, Some(Signing::PredictionKey));
    }

    #[test]
    fn the_archiver_s_vars_are_kept_in_order() {
        let b = LocalStack::builder().archiver(&[("A", "1"), ("B", "2")]);
        assert_eq!(
            b.archiver,
            Some(vec![("A".into(), "1".into()), ("B".into(), "2".into())])
        );
    }
}
