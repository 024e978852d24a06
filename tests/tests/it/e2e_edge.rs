//! The edge in workerd, against moto's SQS.

use std::collections::HashSet;
use std::sync::Arc;

use hookvault_core::corpus::bad_inputs;
use hookvault_core::envelope::Envelope;
use hookvault_core::scheme::ALL_SCHEMES;
use hookvault_core::Scheme;
use serde_json::{json, Value};

use hookvault_localstack::paths;

use crate::utils::{now, prediction, secret, sign, Stack, BUCKET};

fn all_schemes_config() -> Vec<(&'static str, String)> {
    let providers: serde_json::Map<String, Value> = ALL_SCHEMES
        .iter()
        .map(|s| (s.name().to_owned(), s.name().into()))
        .collect();
    let secrets: serde_json::Map<String, Value> = ALL_SCHEMES
        .iter()
        .map(|s| {
            (
                s.name().to_owned(),
                json!([{ "id": format!("{s}-1"), "secret": secret(*s) }]),
            )
        })
        .collect();
    vec![
        ("PROVIDERS", Value::Object(providers).to_string()),
        ("WEBHOOK_SECRETS", Value::Object(secrets).to_string()),
        ("MAX_BODY_BYTES", "8192".to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_webhooks_of_every_scheme_are_queued_once_with_their_envelope() {
    let stack = Stack::start("events", &all_schemes_config()).await;
    let mut sent = Vec::new();
    let sent_at = now();
    for scheme in ALL_SCHEMES {
        let body = prediction(&format!("pred_{scheme}"));
        let (status, _, text) = stack
            .post(
                &format!("/webhooks/{scheme}"),
                &sign(scheme, secret(scheme), &body, sent_at),
                body.clone(),
            )
            .await;
        assert_eq!(status, 202, "{scheme}: {text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert!(
            answer["message_id"].as_str().is_some_and(|m| !m.is_empty()),
            "{text}"
        );
        sent.push((
            scheme,
            body,
            answer["event_id"].as_str().unwrap().to_owned(),
        ));
    }
    let messages = stack.drain().await;
    assert_eq!(messages.len(), sent.len(), "each webhook exactly once");
    for (scheme, body, event_id) in sent {
        let m = messages
            .iter()
            .find(|m| {
                m.message_attributes
                    .as_ref()
                    .and_then(|a| a.get("event_id"))
                    .and_then(|v| v.string_value.as_deref())
                    == Some(&event_id)
            })
            .unwrap_or_else(|| panic!("{scheme}: no message for {event_id}"));
        let env = Envelope::from_json(m.body.as_deref().unwrap()).unwrap();
        assert_eq!(
            env.inline_body(),
            Some(body.as_slice()),
            "{scheme}: body bytes"
        );
        let lowercase_sorted = |h: &[(String, String)]| {
            let mut h: Vec<(String, String)> = h
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                .collect();
            h.sort();
            h
        };
        assert_eq!(
            lowercase_sorted(&env.signature_headers),
            lowercase_sorted(&sign(scheme, secret(scheme), &body, sent_at)),
            "{scheme}: the evidence, as sent"
        );
        assert_eq!(
            (env.provider.as_str(), env.scheme, env.key_id.clone()),
            (scheme.name(), scheme, format!("{scheme}-1"))
        );
        assert_eq!(env.event_id, event_id);
        assert!((env.received_at_ms / 1000 - now()).abs() < 60);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_queues_deduplicate_a_repeated_webhook() {
    let stack = Stack::start(
        "events.fifo",
        &[("WEBHOOK_SECRETS", "fifo-secret".to_owned())],
    )
    .await;
    let body = prediction("pred_dup");
    for _ in 0..3 {
        let (status, _, text) = stack
            .post(
                "/webhooks/skytells",
                &sign(Scheme::Skytells, "fifo-secret", &body, now()),
                body.clone(),
            )
            .await;
        assert_eq!(status, 202, "{text}");
    }
    let messages = stack.drain().await;
    assert_eq!(
        messages.len(),
        1,
        "the provider's retries of one event are one message"
    );
    let attrs = messages[0].attributes.as_ref().unwrap();
    let group = attrs
        .iter()
        .find(|(k, _)| k.as_str() == "MessageGroupId")
        .map(|(_, v)| v.as_str());
    assert_eq!(group, Some("skytells:pred_dup:succeeded"));
}

/// Every form of `x-skytells-signature` the provider's SDK or the course writes (bare or
/// `sha256=`, either case, surrounding whitespace) is accepted by the edge in workerd and
/// queued with the exact bytes and the header as received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_skytells_signature_form_is_queued() {
    let stack = Stack::start("events", &all_schemes_config()).await;
    let key = secret(Scheme::Skytells).as_bytes();
    let forms = {
        let body = prediction("pred_form_probe");
        let h = Scheme::Skytells
            .sign(key, &body, &Default::default())
            .unwrap();
        hookvault_core::corpus::skytells_accepted_forms(&h[0].1).len()
    };
    for i in 0..forms {
        let body = prediction(&format!("pred_form_{i}"));
        let hex = &Scheme::Skytells
            .sign(key, &body, &Default::default())
            .unwrap()[0]
            .1;
        let (name, value) = hookvault_core::corpus::skytells_accepted_forms(hex).remove(i);
        let headers = vec![("x-skytells-signature".to_owned(), value.clone())];
        let (status, _, text) = stack
            .post("/webhooks/skytells", &headers, body.clone())
            .await;
        assert_eq!(status, 202, "{name}: {text}");
        let messages = stack.drain().await;
        assert_eq!(messages.len(), 1, "{name}");
        let env = Envelope::from_json(messages[0].body.as_deref().unwrap()).unwrap();
        assert_eq!(env.inline_body(), Some(body.as_slice()), "{name}");
        assert_eq!(env.signature_headers.len(), 1, "{name}");
        assert_eq!(env.signature_headers[0].1.trim(), value.trim(), "{name}");
    }
    assert!(forms >= 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_its_documented_status_and_nothing_is_queued() {
    let stack = Stack::start("events", &all_schemes_config()).await;
    let t = now();
    for scheme in ALL_SCHEMES {
        for case in bad_inputs(scheme, secret(scheme), t) {
            let (status, headers, text) = stack
                .post(
                    &format!("/webhooks/{scheme}"),
                    &case.headers,
                    case.body.clone(),
                )
                .await;
            assert_eq!(status, case.status, "{}: {text}", case.name);
            let body: Value = serde_json::from_str(&text)
                .unwrap_or_else(|_| panic!("{}: not JSON: {text}", case.name));
            assert_eq!(body["error"], case.code, "{}", case.name);
            assert_eq!(headers.get("content-type").unwrap(), "application/json");
            assert!(
                !text.contains(secret(scheme)),
                "{}: echoes the secret",
                case.name
            );
        }
    }
    // Edge-level refusals.
    let signed_skytells = |body: &[u8]| sign(Scheme::Skytells, secret(Scheme::Skytells), body, t);
    let big = vec![b'x'; 8193];
    type Case<'a> = (
        &'a str,
        &'a str,
        Vec<(String, String)>,
        Vec<u8>,
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "over the cap",
            "/webhooks/skytells",
            signed_skytells(&big),
            big.clone(),
            413,
            "body_too_large",
        ),
        (
            "unknown provider",
            "/webhooks/acme",
            signed_skytells(&prediction("p")),
            prediction("p"),
            404,
            "unknown_provider",
        ),
        (
            "unknown path",
            "/hooks",
            vec![],
            prediction("p"),
            404,
            "not_found",
        ),
    ];
    for (name, path, headers, body, status, code) in cases {
        let (got, _, text) = stack.post(path, &headers, body).await;
        assert_eq!(
            (
                got,
                serde_json::from_str::<Value>(&text).unwrap()["error"]
                    .as_str()
                    .unwrap()
            ),
            (status, code),
            "{name}: {text}"
        );
    }
    // A chunked body (no Content-Length) over the cap is cut off while streaming.
    assert_eq!(
        chunked_post(&stack.edge().url, "/webhooks/skytells", 9, 1024).await,
        413
    );
    let resp = stack.get("/webhooks/skytells").await;
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(
        resp.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    assert!(
        stack.drain().await.is_empty(),
        "a refused request must never reach the queue"
    );
}

/// POSTs `chunks` chunks of `size` bytes with chunked transfer encoding (no
/// Content-Length) over a raw connection; returns the status.
async fn chunked_post(base: &str, path: &str, chunks: usize, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..chunks {
        // The edge may answer 413 and close before every chunk is written.
        if conn
            .write_all(format!("{size:x}\r\n{}\r\n", " ".repeat(size)).as_bytes())
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_overlap_accepts_pending_current_and_previous_and_refuses_the_expired() {
    let t = now();
    let ring = json!([
        { "id": "k3", "secret": "pending-secret", "slot": "pending" },
        { "id": "k2", "secret": "current-secret", "slot": "current" },
        { "id": "k1", "secret": "previous-secret", "slot": "previous", "not_after": t + 3600 },
        { "id": "k0", "secret": "expired-secret", "slot": "previous", "not_after": t - 10 },
    ]);
    let stack = Stack::start("events", &[("WEBHOOK_SECRETS", ring.to_string())]).await;
    for (secret, id, slot) in [
        ("pending-secret", "k3", "pending"),
        ("current-secret", "k2", "current"),
        ("previous-secret", "k1", "previous"),
    ] {
        // The probe proves the key is accepted, without queueing anything.
        let (status, headers, _) = stack
            .post(
                "/_hookvault/probe",
                &sign(Scheme::Skytells, secret, b"probe", t),
                b"probe".to_vec(),
            )
            .await;
        assert_eq!(status, 204, "{id}");
        assert_eq!(headers.get("x-hookvault-key").unwrap(), id);
        assert_eq!(headers.get("x-hookvault-key-slot").unwrap(), slot);
        assert!(
            stack.drain().await.is_empty(),
            "a probe must not queue anything"
        );
        let body = prediction(&format!("pred_{id}"));
        let (status, _, text) = stack
            .post(
                "/webhooks/skytells",
                &sign(Scheme::Skytells, secret, &body, t),
                body,
            )
            .await;
        assert_eq!(status, 202, "{id}: {text}");
        let messages = stack.drain().await;
        assert_eq!(messages.len(), 1);
        let env = Envelope::from_json(messages[0].body.as_deref().unwrap()).unwrap();
        assert_eq!((env.key_id.as_str(), env.key_slot.as_str()), (id, slot));
    }
    let body = prediction("pred_k0");
    let (status, _, text) = stack
        .post(
            "/webhooks/skytells",
            &sign(Scheme::Skytells, "expired-secret", &body, t),
            body,
        )
        .await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("key_expired"), "{text}");
    let (status, _, _) = stack
        .post(
            "/_hookvault/probe",
            &sign(Scheme::Skytells, "expired-secret", b"probe", t),
            b"probe".to_vec(),
        )
        .await;
    assert_eq!(status, 401);
    assert!(stack.drain().await.is_empty());
}

async fn assert_unavailable(stack: &Stack, what: &str) {
    let body = prediction("pred_outage");
    let (status, headers, text) = stack
        .post(
            "/webhooks/skytells",
            &sign(Scheme::Skytells, "outage-secret", &body, now()),
            body,
        )
        .await;
    assert_eq!(status, 503, "{what}: {text}");
    assert_eq!(headers.get("retry-after").unwrap(), "7", "{what}");
    assert!(text.contains("queue_unavailable"), "{what}: {text}");
}

/// Posts `pred_outage` signed with the outage secret; the status, the answer and the body.
async fn post_outage(stack: &Stack) -> (u16, Value, Vec<u8>) {
    let body = prediction("pred_outage");
    let (status, _, text) = stack
        .post(
            "/webhooks/skytells",
            &sign(Scheme::Skytells, "outage-secret", &body, now()),
            body.clone(),
        )
        .await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        body,
    )
}

/// Checks that SQS's outage left `body`'s envelope in the spool (the test stack's bucket)
/// and the answer said so.
async fn assert_spooled(stack: &Stack, what: &str, answer: &Value, body: &[u8]) {
    assert_eq!(answer["status"], "spooled", "{what}: {answer}");
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body));
    let key = format!("spool/skytells/{sha}");
    let (json, _) = hookvault_localstack::s3::get(&stack.s3, BUCKET, &key)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{what}: nothing at {key}"));
    let envelope = Envelope::from_json(std::str::from_utf8(&json).unwrap()).unwrap();
    assert_eq!(
        envelope.inline_body(),
        Some(body),
        "{what}: the exact bytes"
    );
    assert_eq!(answer["event_id"], envelope.event_id.as_str(), "{what}");
    let logs = stack.edge().logs();
    assert!(
        logs.contains(&format!("\"spooled\":\"{key}\"")),
        "{what}: the edge logs the spool key:\n{logs}"
    );
}

/// Issue 24, item 2 (the edge's side): while SQS refuses or does not answer, a verified
/// webhook goes to the spool (the claim-check bucket by default) and is answered 202;
/// only when the spool does not take it either is the answer 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_outages_are_spooled_and_answered_503_only_when_the_spool_fails_too() {
    let secrets = ("WEBHOOK_SECRETS", "outage-secret".to_owned());
    let missing_queue = (
        "SQS_QUEUE_URL",
        "http://127.0.0.1:1/000000000000/missing".to_owned(),
    );
    // SQS answers with an error (the queue does not exist): spooled.
    let stack = Stack::start("events", &[secrets.clone(), missing_queue.clone()]).await;
    let (status, answer, body) = post_outage(&stack).await;
    assert_eq!(status, 202, "{answer}");
    assert_spooled(&stack, "queue does not exist", &answer, &body).await;
    // The sender's retry of the same bytes finds them spooled already (412): 202.
    let (status, answer, _) = post_outage(&stack).await;
    assert_eq!((status, &answer["status"]), (202, &json!("spooled")));
    drop(stack);

    // ... and with a spool bucket that does not exist either: 503.
    let stack = Stack::start(
        "events",
        &[
            secrets.clone(),
            missing_queue,
            ("SPOOL_BUCKET", "no-such-spool".to_owned()),
        ],
    )
    .await;
    assert_unavailable(&stack, "queue and spool missing").await;
    drop(stack);

    // SQS hangs: a listener that accepts and never answers. Spooled once the budget is
    // spent.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            open.push(c);
        }
    });
    let stack = Stack::start(
        "events",
        &[
            secrets.clone(),
            ("SQS_ENDPOINT", silent_url),
            ("SQS_TIMEOUT_MS", "500".to_owned()),
            ("RETRY_BUDGET_MS", "1500".to_owned()),
        ],
    )
    .await;
    let started = std::time::Instant::now();
    let (status, answer, body) = post_outage(&stack).await;
    assert_eq!(status, 202, "{answer}");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(1000),
        "retried within the budget first"
    );
    assert_spooled(&stack, "SQS does not answer", &answer, &body).await;
    held.abort();
    drop(stack);

    // SQS goes down while the edge runs, and comes back; S3 (the same moto) with it: 503.
    let mut stack =
        Stack::start("events", &[secrets, ("RETRY_BUDGET_MS", "1000".to_owned())]).await;
    let body = prediction("pred_before");
    let (status, _, _) = stack
        .post(
            "/webhooks/skytells",
            &sign(Scheme::Skytells, "outage-secret", &body, now()),
            body,
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(stack.drain().await.len(), 1);
    stack.moto.stop().await;
    assert_unavailable(&stack, "moto stopped").await;
}

/// What a stand-in AWS answers to one request: after a wait, a status and a body; or, for
/// SQS, a valid `SendMessage` answer (a message id and the message's MD5).
#[derive(Clone)]
enum Scripted {
    After(std::time::Duration, u16, String),
    SendMessageOk,
}

/// A stand-in AWS endpoint: it reads each whole request, answers it with the next
/// [`Scripted`] (the last one once the script runs out), and hands each body it read to
/// the returned receiver.
async fn stand_in(
    script: Vec<Scripted>,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    tokio::task::JoinHandle<()>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let script = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(
        script,
    )));
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let (tx, script) = (tx.clone(), Arc::clone(&script));
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65_536];
                let body_at = loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..body_at]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < body_at + length {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[body_at..body_at + length].to_vec();
                let next = {
                    let mut script = script.lock().unwrap();
                    match script.len() {
                        0 => return,
                        1 => script[0].clone(),
                        _ => script.pop_front().unwrap(),
                    }
                };
                let (status, text) = match next {
                    Scripted::After(delay, status, text) => {
                        tokio::time::sleep(delay).await;
                        (status, text)
                    }
                    Scripted::SendMessageOk => {
                        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let message = json["MessageBody"].as_str().unwrap_or_default();
                        let md5 = hex::encode(<md5::Md5 as md5::Digest>::digest(message));
                        (
                            200,
                            json!({"MessageId": "stand-in-1", "MD5OfMessageBody": md5}).to_string(),
                        )
                    }
                };
                let _ = tx.send(body);
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    (url, rx, task)
}

/// A stand-in S3 that takes `delay` over every request and then answers 200.
async fn slow_s3(
    delay: std::time::Duration,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    tokio::task::JoinHandle<()>,
) {
    stand_in(vec![Scripted::After(delay, 200, String::new())]).await
}

fn sqs_error(status: u16, kind: &str) -> Scripted {
    Scripted::After(
        std::time::Duration::ZERO,
        status,
        json!({"__type": kind, "message": "stand-in"}).to_string(),
    )
}

/// Issue 24, item 1, in workerd: a throttled or failing `SendMessage` is retried within
/// the request (with the runtime's timers between attempts), the same bytes each time, and
/// answered 202 once SQS takes it; a refusal no retry fixes is sent once (and spooled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_send_message_is_retried_within_the_request() {
    let (sqs_url, mut received, sqs_task) = stand_in(vec![
        sqs_error(400, "com.amazonaws.sqs#RequestThrottled"),
        sqs_error(400, "com.amazonaws.sqs#KmsThrottled"),
        sqs_error(500, "com.amazonaws.sqs#InternalError"),
        Scripted::SendMessageOk,
    ])
    .await;
    let stack = Stack::start(
        "events",
        &[
            ("WEBHOOK_SECRETS", "retry-secret".to_owned()),
            ("SQS_ENDPOINT", sqs_url),
        ],
    )
    .await;
    let body = prediction("pred_throttled");
    let started = std::time::Instant::now();
    let (status, _, text) = stack
        .post(
            "/webhooks/skytells",
            &sign(Scheme::Skytells, "retry-secret", &body, now()),
            body,
        )
        .await;
    assert_eq!(status, 202, "{text}");
    assert!(text.contains("stand-in-1"), "{text}");
    // Three back-offs of at least 50, 100 and 200 ms (the jitter's lower bound).
    assert!(started.elapsed() >= std::time::Duration::from_millis(350));
    let mut bodies = Vec::new();
    while let Ok(b) = received.try_recv() {
        bodies.push(b);
    }
    assert_eq!(bodies.len(), 4, "four attempts");
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "the same bytes each time"
    );
    let logs = stack.edge().logs();
    assert!(logs.contains("\"sqs_attempts\":4"), "{logs}");
    sqs_task.abort();
    drop(stack);

    // InvalidParameterValue: no retry; the envelope goes to the spool.
    let (sqs_url, mut received, sqs_task) = stand_in(vec![sqs_error(
        400,
        "com.amazonaws.sqs#InvalidParameterValue",
    )])
    .await;
    let stack = Stack::start(
        "events",
        &[
            ("WEBHOOK_SECRETS", "retry-secret".to_owned()),
            ("SQS_ENDPOINT", sqs_url),
        ],
    )
    .await;
    let body = prediction("pred_refused");
    let (status, _, text) = stack
        .post(
            "/webhooks/skytells",
            &sign(Scheme::Skytells, "retry-secret", &body, now()),
            body,
        )
        .await;
    assert_eq!(status, 202, "{text}");
    assert!(text.contains("spooled"), "{text}");
    let mut attempts = 0;
    while received.try_recv().is_ok() {
        attempts += 1;
    }
    assert_eq!(attempts, 1, "a refusal no retry fixes is sent once");
    sqs_task.abort();
}

/// Issue 24, item 3: the claim check's `PutObject` waits `CLAIM_CHECK_TIMEOUT_MS` (30 s by
/// default), not `SQS_TIMEOUT_MS` (5 s by default). An S3 that takes 8 s over a body gets
/// it, and the webhook is answered 202, with the default timeouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_check_to_an_s3_that_takes_8_s_is_accepted_with_the_default_timeouts() {
    let (s3_url, mut stored, s3_task) = slow_s3(std::time::Duration::from_secs(8)).await;
    let stack = Stack::start(
        "events",
        &[
            ("WEBHOOK_SECRETS", "slow-s3-secret".to_owned()),
            // The defaults, in place of the test stack's short SQS timeout.
            ("SQS_TIMEOUT_MS", "5000".to_owned()),
            ("S3_ENDPOINT", s3_url),
            // A 4 KiB body goes by claim check.
            ("SQS_MAX_MESSAGE_BYTES", "2048".to_owned()),
        ],
    )
    .await;
    let body = json!({"id": "pred_slow_s3", "status": "succeeded", "logs": "z".repeat(4_000)})
        .to_string()
        .into_bytes();
    let started = std::time::Instant::now();
    let (status, _, text) = stack
        .post(
            "/webhooks/skytells",
            &sign(Scheme::Skytells, "slow-s3-secret", &body, now()),
            body.clone(),
        )
        .await;
    assert_eq!(status, 202, "{text}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(8));
    assert!(
        stored.recv().await.unwrap() == body,
        "S3 took the exact bytes"
    );
    let messages = stack.drain().await;
    assert_eq!(messages.len(), 1);
    let envelope = Envelope::from_json(messages[0].body.as_deref().unwrap()).unwrap();
    assert!(
        matches!(envelope.body, hookvault_core::envelope::Body::S3(_)),
        "claim-checked"
    );
    s3_task.abort();
}

/// 500 webhooks at once, 100 in flight. The sender behaves as the provider does: a 503
/// (SQS slow or down) is retried. Every event must end accepted and on the queue; a 503
/// whose message SQS had in fact taken may leave a duplicate, which the archiver absorbs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_500_concurrent_webhooks_is_queued_without_loss() {
    let stack = Arc::new(
        Stack::start(
            "events",
            &[
                ("WEBHOOK_SECRETS", "burst-secret".to_owned()),
                ("SQS_TIMEOUT_MS", "10000".to_owned()),
            ],
        )
        .await,
    );
    let limit = Arc::new(tokio::sync::Semaphore::new(100));
    let mut tasks = Vec::new();
    for i in 0..500 {
        let (stack, limit) = (Arc::clone(&stack), Arc::clone(&limit));
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire().await.unwrap();
            let body = prediction(&format!("pred_burst_{i}"));
            let mut retries = 0;
            loop {
                let headers = sign(Scheme::Skytells, "burst-secret", &body, now());
                let (status, _, text) = stack
                    .post("/webhooks/skytells", &headers, body.clone())
                    .await;
                match status {
                    202 => return retries,
                    503 if retries < 5 => retries += 1,
                    other => panic!("pred_burst_{i}: HTTP {other} after {retries} retries: {text}"),
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }));
    }
    let mut retried = 0;
    for t in tasks {
        retried += t.await.unwrap();
    }
    let messages = stack.drain().await;
    let ids: HashSet<String> = messages
        .iter()
        .map(|m| {
            Envelope::from_json(m.body.as_deref().unwrap())
                .unwrap()
                .event_id
        })
        .collect();
    assert_eq!(
        ids.len(),
        500,
        "every accepted webhook is on the queue ({retried} 503s retried)"
    );
    assert!(
        messages.len() <= 500 + retried,
        "duplicates only from retried requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_json_log_line_per_request_and_never_a_secret() {
    let stack = Stack::start(
        "events",
        &[("WEBHOOK_SECRETS", "log-scan-secret".to_owned())],
    )
    .await;
    let body = prediction("pred_log");
    let good = sign(Scheme::Skytells, "log-scan-secret", &body, now());
    let signature = good[0].1.clone();
    stack.post("/webhooks/skytells", &good, body.clone()).await;
    stack
        .post(
            "/webhooks/skytells",
            &sign(Scheme::Skytells, "wrong-secret", &body, now()),
            body,
        )
        .await;
    stack.get("/nowhere").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logs = stack.edge().logs();
    let lines: Vec<Value> = logs
        .lines()
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["msg"] == "request" && v["path"] != "/healthz")
        .collect();
    assert_eq!(lines.len(), 3, "one line per request:\n{logs}");
    assert_eq!(
        (lines[0]["status"].as_u64(), lines[0]["key_slot"].as_str()),
        (Some(202), Some("current"))
    );
    assert!(lines[0]["event_id"].as_str().is_some() && lines[0]["latency_ms"].is_u64());
    assert_eq!(
        (lines[1]["status"].as_u64(), lines[1]["error"].as_str()),
        (Some(401), Some("bad_signature"))
    );
    assert_eq!(lines[2]["status"].as_u64(), Some(404));
    // The webhook route's lines name the request's trace; other routes have none.
    for line in &lines[..2] {
        assert!(
            line["trace_id"]
                .as_str()
                .is_some_and(hookvault_core::trace::is_valid),
            "{line}"
        );
    }
    assert!(lines[2].get("trace_id").is_none());
    for needle in [
        "log-scan-secret",
        hookvault_localstack::workerd::LOCAL_AWS_SECRET,
        signature.as_str(),
        signature.trim_start_matches("sha256="),
    ] {
        assert!(!logs.contains(needle), "the log contains {needle:?}");
    }
}

/// A panic in the Rust code loses that request only: the next request runs on a fresh
/// WASM instance. edge/entry.mjs relies on worker-build's glue for this (it calls the
/// generated handler without the shim's Proxy), so this guards that design against a new
/// worker-build. Runs the test build with the panic route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_panic_the_next_request_is_served_by_a_fresh_instance() {
    let secrets = ("WEBHOOK_SECRETS", "panic-test-secret".to_owned());
    let stack = Stack::start_build(
        &paths::edge_test_build().unwrap(),
        "after-panic",
        &[secrets],
    )
    .await;
    for round in 0..2 {
        let (status, _, _) = stack.post("/_hookvault/panic", &[], Vec::new()).await;
        assert_eq!(status, 500, "round {round}");
        let health = stack.get("/healthz").await;
        assert_eq!(health.status().as_u16(), 200, "round {round}");
        // The whole path works again: verify (WebCrypto), envelope, SigV4, SQS.
        let body = prediction(&format!("pred_after_panic_{round}"));
        let headers = sign(Scheme::Skytells, "panic-test-secret", &body, now());
        let (status, _, text) = stack.post("/webhooks/skytells", &headers, body).await;
        assert_eq!(status, 202, "round {round}: {text}");
    }
    assert_eq!(stack.drain().await.len(), 2);
    assert!(
        stack.edge().logs().contains("the test build's panic route"),
        "the panic is logged"
    );
}

/// If WebCrypto fails, the Rust hashes take over: every webhook is still verified against
/// each key, enqueued with the right envelope and checked against SQS's MD5, and each
/// failure is logged. Runs the test build with WebCrypto broken (`TEST_BREAK_WEBCRYPTO`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_webcrypto_fails_the_rust_hashes_take_over_and_nothing_is_lost() {
    let t = now();
    let ring = json!([
        { "id": "k2", "secret": "broken-crypto-current", "slot": "current" },
        { "id": "k1", "secret": "broken-crypto-previous", "slot": "previous", "not_after": t + 3600 },
    ]);
    let stack = Stack::start_build(
        &paths::edge_test_build().unwrap(),
        "broken-webcrypto",
        &[
            ("WEBHOOK_SECRETS", ring.to_string()),
            ("TEST_BREAK_WEBCRYPTO", "1".to_owned()),
        ],
    )
    .await;
    let mut sent = Vec::new();
    for (secret, key) in [
        ("broken-crypto-current", "k2"),
        ("broken-crypto-previous", "k1"),
    ] {
        let body = prediction(&format!("pred_broken_crypto_{key}"));
        let headers = sign(Scheme::Skytells, secret, &body, t);
        let (status, _, text) = stack
            .post("/webhooks/skytells", &headers, body.clone())
            .await;
        assert_eq!(status, 202, "{key}: {text}");
        let (status, headers, _) = stack
            .post(
                "/_hookvault/probe",
                &sign(Scheme::Skytells, secret, &body, t),
                body.clone(),
            )
            .await;
        assert_eq!(status, 204, "{key}");
        assert_eq!(headers.get("x-hookvault-key").unwrap(), key);
        sent.push((key, body));
    }
    let body = prediction("pred_broken_crypto_wrong");
    let headers = sign(Scheme::Skytells, "not-in-the-ring", &body, t);
    let (status, _, _) = stack.post("/webhooks/skytells", &headers, body).await;
    assert_eq!(status, 401);

    let messages = stack.drain().await;
    assert_eq!(messages.len(), 2);
    for (key, body) in sent {
        // from_json checks the payload against payload_sha256: the Rust digest was right.
        let env = messages
            .iter()
            .map(|m| Envelope::from_json(m.body.as_deref().unwrap()).unwrap())
            .find(|e| e.key_id == key)
            .unwrap_or_else(|| panic!("no message for {key}"));
        assert_eq!(env.inline_body(), Some(body.as_slice()));
    }
    let logs = stack.edge().logs();
    let failures: Vec<Value> = logs
        .lines()
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["msg"] == "webcrypto_failed")
        .collect();
    assert!(
        failures.iter().any(|v| v["op"] == "digest"),
        "a digest failure is logged:\n{logs}"
    );
    // Without crypto.getRandomValues, trace ids still come (from Math.random), logged.
    assert!(
        failures.iter().any(|v| v["op"] == "getRandomValues"),
        "a getRandomValues failure is logged:\n{logs}"
    );
    let traces: HashSet<String> = queued_traces(&messages)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(traces.len(), 2, "distinct trace ids: {traces:?}");
    assert!(traces.iter().all(|t| hookvault_core::trace::is_valid(t)));
    for key in ["k1", "k2"] {
        assert!(
            failures.iter().any(|v| v["key_id"] == key),
            "a MAC failure with {key} is logged:\n{logs}"
        );
    }
}

/// The edge's JSON log lines among workerd's output.
fn log_lines(logs: &str) -> Vec<Value> {
    logs.lines()
        .filter_map(|l| l.find('{').map(|i| &l[i..]))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

/// The trace id of a `traceresponse` header (`00-{trace}-{span}-01`), checked for form.
fn traced(headers: &reqwest::header::HeaderMap) -> String {
    let value = headers
        .get("traceresponse")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no traceresponse header in {headers:?}"));
    let trace_id = hookvault_core::trace::from_traceparent(value)
        .unwrap_or_else(|| panic!("traceresponse {value:?} is not in traceparent form"));
    assert!(
        value.starts_with("00-") && value.ends_with("-01"),
        "{value}"
    );
    trace_id
}

/// The trace id each message carries, in its envelope and in its `TraceId` attribute
/// (both must agree), by event id.
fn queued_traces(messages: &[aws_sdk_sqs::types::Message]) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|m| {
            let env = Envelope::from_json(m.body.as_deref().unwrap()).unwrap();
            let attr = m
                .message_attributes
                .as_ref()
                .and_then(|a| a.get(hookvault_core::trace::SQS_ATTRIBUTE))
                .unwrap_or_else(|| panic!("{}: no TraceId attribute", env.event_id));
            assert_eq!(attr.data_type(), "String");
            let trace_id = env.trace_id.clone().expect("the envelope's trace_id");
            assert_eq!(
                attr.string_value(),
                Some(trace_id.as_str()),
                "{}: the attribute and the envelope agree",
                env.event_id
            );
            (env.event_id, trace_id)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_senders_valid_traceparent_is_the_events_trace_id_end_to_end() {
    let stack = Stack::start("traced", &[("WEBHOOK_SECRETS", "trace-secret".to_owned())]).await;
    let sender_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{sender_trace}-00f067aa0ba902b7-01");
    let body = prediction("pred_traced");
    let mut headers = sign(Scheme::Skytells, "trace-secret", &body, now());
    headers.push(("traceparent".to_owned(), traceparent.clone()));
    let (status, answer, text) = stack.post("/webhooks/skytells", &headers, body).await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(
        traced(&answer),
        sender_trace,
        "the answer names the sender's trace"
    );
    let span = answer["traceresponse"].to_str().unwrap().to_owned();
    assert!(
        !span.contains("00f067aa0ba902b7"),
        "the edge answers with a span of its own: {span}"
    );
    let event_id = serde_json::from_str::<Value>(&text).unwrap()["event_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A body too large for one message goes by claim check; its envelope carries the
    // trace too.
    let big = format!(
        r#"{{"id":"pred_traced_big","status":"succeeded","output":[],"logs":"{}"}}"#,
        "z".repeat(1_100_000)
    )
    .into_bytes();
    let big_trace = "0af7651916cd43dd8448eb211c80319c";
    let mut headers = sign(Scheme::Skytells, "trace-secret", &big, now());
    headers.push((
        "traceparent".to_owned(),
        format!("00-{big_trace}-b7ad6b7169203331-00"),
    ));
    let (status, answer, text) = stack.post("/webhooks/skytells", &headers, big).await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(traced(&answer), big_trace);

    let messages = stack.drain().await;
    assert_eq!(messages.len(), 2);
    let traces = queued_traces(&messages);
    assert!(
        traces.contains(&(event_id.clone(), sender_trace.to_owned())),
        "{traces:?}"
    );
    let claim_checked = messages
        .iter()
        .map(|m| Envelope::from_json(m.body.as_deref().unwrap()).unwrap())
        .find(|e| matches!(e.body, hookvault_core::envelope::Body::S3(_)))
        .expect("the large body went by claim check");
    assert_eq!(claim_checked.trace_id.as_deref(), Some(big_trace));

    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let lines = log_lines(&stack.edge().logs());
    let line = lines
        .iter()
        .find(|v| v["msg"] == "request" && v["event_id"] == event_id.as_str())
        .expect("the request's log line");
    assert_eq!(line["trace_id"], sender_trace);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_traceparent_each_request_gets_a_fresh_trace_id() {
    let stack = Stack::start(
        "untraced",
        &[("WEBHOOK_SECRETS", "fresh-trace-secret".to_owned())],
    )
    .await;
    let mut answered = Vec::new();
    for (id, traceparent) in [
        ("pred_no_traceparent", None),
        (
            "pred_bad_traceparent",
            // All-zero trace id: invalid (W3C Trace Context §3.2.2.3).
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        ),
        ("pred_garbage_traceparent", Some("not a traceparent")),
    ] {
        let body = prediction(id);
        let mut headers = sign(Scheme::Skytells, "fresh-trace-secret", &body, now());
        if let Some(t) = traceparent {
            headers.push(("traceparent".to_owned(), t.to_owned()));
        }
        let (status, answer, text) = stack.post("/webhooks/skytells", &headers, body).await;
        assert_eq!(status, 202, "{id}: {text}");
        let trace_id = traced(&answer);
        assert!(
            hookvault_core::trace::is_valid(&trace_id),
            "{id}: {trace_id}"
        );
        let event_id = serde_json::from_str::<Value>(&text).unwrap()["event_id"]
            .as_str()
            .unwrap()
            .to_owned();
        answered.push((event_id, trace_id));
    }
    let distinct: HashSet<&String> = answered.iter().map(|(_, t)| t).collect();
    assert_eq!(distinct.len(), answered.len(), "fresh ids: {answered:?}");
    let mut queued = queued_traces(&stack.drain().await);
    queued.sort();
    answered.sort();
    assert_eq!(
        queued, answered,
        "each message carries its request's trace id"
    );

    // A refusal on the webhook route names its trace too, in the answer and the log.
    let body = prediction("pred_forged");
    let (status, answer, _) = stack
        .post(
            "/webhooks/skytells",
            &sign(Scheme::Skytells, "wrong-secret", &body, now()),
            body,
        )
        .await;
    assert_eq!(status, 401);
    let refused_trace = traced(&answer);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let lines = log_lines(&stack.edge().logs());
    assert!(
        lines
            .iter()
            .any(|v| v["status"] == 401 && v["trace_id"] == refused_trace.as_str()),
        "{lines:?}"
    );
    // Other routes have no trace.
    let health = stack.get("/healthz").await;
    assert!(health.headers().get("traceresponse").is_none());
}
