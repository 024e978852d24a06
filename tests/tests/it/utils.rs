//! A stack per test: its own moto, queue and edge, so tests run in parallel.

use std::time::{SystemTime, UNIX_EPOCH};

use hookvault_core::Scheme;
use std::path::Path;

use hookvault_localstack::moto::Moto;
use hookvault_localstack::workerd::{Edge, RUST_EDGE_MODULES};
use hookvault_localstack::{paths, s3, sqs};

pub struct Stack {
    pub moto: Moto,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    pub queue_url: String,
    pub edge: Edge,
    pub http: reqwest::Client,
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub use hookvault_core::corpus::example_secret as secret;

/// The bucket every test stack has: the claim check's (and the archive's, where a test
/// archives).
pub const BUCKET: &str = "archive";

/// The edge's vars for the tests: the library's, with a short SQS timeout, a
/// recognisable Retry-After, and the claim check to [`BUCKET`] (which the caller creates).
pub fn bindings(
    endpoint: &str,
    queue_url: &str,
    extra: &[(&str, String)],
) -> Vec<(String, String)> {
    let mut all = vec![
        ("SQS_TIMEOUT_MS", "2000".to_owned()),
        ("RETRY_AFTER_SECS", "7".to_owned()),
        ("CLAIM_CHECK_BUCKET", BUCKET.to_owned()),
    ];
    all.extend(extra.iter().cloned());
    hookvault_localstack::workerd::local_bindings(endpoint, queue_url, &all)
}

impl Stack {
    /// moto, a queue named `queue`, the bucket [`BUCKET`], and the edge configured with
    /// `extra`.
    pub async fn start(queue: &str, extra: &[(&str, String)]) -> Stack {
        Self::start_build(&paths::edge_build().unwrap(), queue, extra).await
    }

    /// [`Stack::start`] with the edge built into `build` (e.g. the test build with a
    /// route that panics).
    pub async fn start_build(build: &Path, queue: &str, extra: &[(&str, String)]) -> Stack {
        let moto = Moto::start(None).await.unwrap();
        let sqs = sqs::client(&moto.endpoint);
        let queue_url = sqs::create_queue(&sqs, queue).await.unwrap();
        let s3 = s3::client(&moto.endpoint);
        s3::create_bucket(&s3, BUCKET).await.unwrap();
        let edge = Edge::start_modules(
            build,
            RUST_EDGE_MODULES,
            &bindings(&moto.endpoint, &queue_url, extra),
            None,
        )
        .await
        .unwrap();
        Stack {
            moto,
            sqs,
            s3,
            queue_url,
            edge,
            http: reqwest::Client::new(),
        }
    }

    pub async fn post(
        &self,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.edge.url))
            .body(body);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.unwrap())
    }

    /// A GET of `path` on the edge.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.edge.url))
            .send()
            .await
            .unwrap()
    }

    pub async fn drain(&self) -> Vec<aws_sdk_sqs::types::Message> {
        sqs::drain(&self.sqs, &self.queue_url).await.unwrap()
    }
}

/// Headers signing `body` with `secret` (in the scheme's format) at `ts`.
pub fn sign(scheme: Scheme, secret: &str, body: &[u8], ts: i64) -> Vec<(String, String)> {
    hookvault_core::corpus::signed(scheme, secret, body, ts).unwrap()
}

pub fn prediction(id: &str) -> Vec<u8> {
    format!(r#"{{"id":"{id}","status":"succeeded","model":"m","output":["https://cdn.skytells.ai/{id}/0.png"]}}"#).into_bytes()
}
