//! A stack per test: its own moto, queue and edge, so tests run in parallel.

use std::time::{SystemTime, UNIX_EPOCH};

use hookvault_core::Scheme;
use std::path::Path;

use hookvault_localstack::stack::{LocalStack, LocalStackBuilder};
use hookvault_localstack::workerd::Edge;

/// The stack most edge tests use: a [`LocalStack`] with a queue, the bucket [`BUCKET`]
/// and the edge, whose helpers fail the test where [`LocalStack`]'s return an error. The
/// rest of the [`LocalStack`] (moto, the clients) is reached through `Deref`.
pub struct Stack {
    pub local: LocalStack,
    /// The queue's URL (the edge's `SQS_QUEUE_URL`).
    pub queue_url: String,
}

impl std::ops::Deref for Stack {
    type Target = LocalStack;
    fn deref(&self) -> &LocalStack {
        &self.local
    }
}

impl std::ops::DerefMut for Stack {
    fn deref_mut(&mut self) -> &mut LocalStack {
        &mut self.local
    }
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
pub use hookvault_localstack::stack::TEST_BUCKET as BUCKET;

impl Stack {
    /// The builder of [`Stack::start`]: moto, a queue named `queue`, the bucket
    /// [`BUCKET`], and the edge configured with `extra`; add pieces before starting it
    /// with [`Stack::from_builder`].
    pub fn builder(queue: &str, extra: &[(&str, String)]) -> LocalStackBuilder {
        LocalStack::builder()
            .queue(queue)
            .bucket(BUCKET)
            .edge_vars(extra)
    }

    /// Starts `builder` (one from [`Stack::builder`]).
    pub async fn from_builder(builder: LocalStackBuilder) -> Stack {
        let local = builder.start().await.unwrap();
        let queue_url = local.queue_url().unwrap().to_owned();
        Stack { local, queue_url }
    }

    /// moto, a queue named `queue`, the bucket [`BUCKET`], and the edge configured with
    /// `extra`.
    pub async fn start(queue: &str, extra: &[(&str, String)]) -> Stack {
        Self::from_builder(Self::builder(queue, extra)).await
    }

    /// [`Stack::start`] with the edge built into `build` (e.g. the test build with a
    /// route that panics).
    pub async fn start_build(build: &Path, queue: &str, extra: &[(&str, String)]) -> Stack {
        Self::from_builder(Self::builder(queue, extra).edge_build(build)).await
    }

    /// The edge.
    pub fn edge(&self) -> &Edge {
        self.local.edge().unwrap()
    }

    /// A POST of `body` with `headers` to `path` on the edge: status, headers, text.
    pub async fn post(
        &self,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        self.local.post(path, headers, body).await.unwrap()
    }

    /// A GET of `path` on the edge.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.local.get(path).await.unwrap()
    }

    /// Every message on the queue, deleted.
    pub async fn drain(&self) -> Vec<aws_sdk_sqs::types::Message> {
        self.local.drain().await.unwrap()
    }
}

/// Headers signing `body` with `secret` (in the scheme's format) at `ts`.
pub fn sign(scheme: Scheme, secret: &str, body: &[u8], ts: i64) -> Vec<(String, String)> {
    hookvault_core::corpus::signed(scheme, secret, body, ts).unwrap()
}

pub fn prediction(id: &str) -> Vec<u8> {
    format!(r#"{{"id":"{id}","status":"succeeded","model":"m","output":["https://cdn.skytells.ai/{id}/0.png"]}}"#).into_bytes()
}
