//! An SQS `SendMessage` endpoint that answers at once, for the edge's load benchmark
//! only. Behind moto, the webhook route measures moto (a Python server) for both Workers
//! alike; behind this sink it measures what the Workers themselves spend on the whole
//! webhook path: verify, envelope, SigV4 signing, the fetch, reading SQS's answer.
//!
//! It refuses anything but a SigV4-signed JSON-protocol `SendMessage` with a
//! `MessageBody`, and answers `MessageId` and `MD5OfMessageBody` as SQS does (the Rust edge
//! checks the MD5). It does not check the signature itself: the tests do that against moto.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http_body_util::BodyExt as _;
use md5::{Digest as _, Md5};

use crate::process::{json_response, serve_http, ServerBody};
use crate::StackError;

/// The running sink; stopped when dropped.
pub struct SqsSink {
    /// `http://127.0.0.1:{port}/`, for `SQS_ENDPOINT`.
    pub endpoint: String,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl SqsSink {
    /// Starts the sink on a free port.
    pub async fn start() -> Result<Self, StackError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}/", listener.local_addr()?);
        let accepted = Arc::new(AtomicU64::new(0));
        let task = serve_http(listener, Arc::clone(&accepted), answer);
        Ok(SqsSink {
            endpoint,
            accepted,
            task,
        })
    }

    /// A queue URL on the sink.
    pub fn queue_url(&self) -> String {
        format!("{}000000000000/bench", self.endpoint)
    }

    /// Messages accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for SqsSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn refuse(kind: &str) -> hyper::Response<ServerBody> {
    json_response(
        400,
        &serde_json::json!({ "__type": kind, "message": kind }),
        &[],
    )
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    accepted: Arc<AtomicU64>,
) -> hyper::Response<ServerBody> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    if header("x-amz-target") != "AmazonSQS.SendMessage" {
        return refuse("InvalidAction");
    }
    if !header("authorization").starts_with("AWS4-HMAC-SHA256 Credential=") {
        return refuse("MissingAuthenticationToken");
    }
    let Ok(body) = req.into_body().collect().await else {
        return refuse("InvalidRequest");
    };
    let request: serde_json::Value = match serde_json::from_slice(&body.to_bytes()) {
        Ok(v) => v,
        Err(_) => return refuse("InvalidRequest"),
    };
    let Some(message) = request.get("MessageBody").and_then(|m| m.as_str()) else {
        return refuse("MissingParameter");
    };
    let n = accepted.fetch_add(1, Ordering::Relaxed);
    json_response(
        200,
        &serde_json::json!({
            "MessageId": format!("sink-{n}"),
            "MD5OfMessageBody": hex::encode(Md5::digest(message.as_bytes())),
        }),
        &[("x-amzn-requestid", "sink")],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_send_message_like_sqs_and_refuses_the_rest() {
        let sink = SqsSink::start().await.unwrap();
        let client = reqwest::Client::new();
        let send = |target: &'static str, auth: &'static str, body: &'static str| {
            client
                .post(&sink.endpoint)
                .header("x-amz-target", target)
                .header("authorization", auth)
                .body(body)
                .send()
        };
        let signed = "AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/sqs/aws4_request";
        let ok = send(
            "AmazonSQS.SendMessage",
            signed,
            r#"{"MessageBody":"hello"}"#,
        )
        .await
        .unwrap();
        assert_eq!(ok.status(), 200);
        let v: serde_json::Value = serde_json::from_slice(&ok.bytes().await.unwrap()).unwrap();
        // MD5("hello"), as SQS computes it over the message body.
        assert_eq!(v["MD5OfMessageBody"], "5d41402abc4b2a76b9719d911017c592");
        for (target, auth, body) in [
            ("AmazonSQS.ReceiveMessage", signed, r#"{"MessageBody":"x"}"#),
            (
                "AmazonSQS.SendMessage",
                "Bearer x",
                r#"{"MessageBody":"x"}"#,
            ),
            ("AmazonSQS.SendMessage", signed, r#"{"QueueUrl":"q"}"#),
            ("AmazonSQS.SendMessage", signed, "not json"),
        ] {
            let r = send(target, auth, body).await.unwrap();
            assert_eq!(r.status(), 400, "{target} {auth} {body}");
        }
        assert_eq!(sink.accepted(), 1);
    }
}
