//! The request flow with a fake runtime: a virtual clock that moves only when the flow
//! sleeps or a stand-in AWS takes its time, scripted SQS and S3 answers, every request
//! recorded. Nothing here waits for real time.

use super::*;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use hookvault_core::corpus::{bad_inputs, sample_body};
use hookvault_core::envelope::Body as EnvelopeBody;
use hookvault_core::scheme::ALL_SCHEMES;
use hookvault_core::{KeySlot, Pending, Scheme, Verified};
use md5::{Digest as _, Md5};
use sha2::Sha256;

use crate::config::Provider;
use crate::sqs::UnsignedRequest;

const NOW_MS: u64 = 1_800_000_000_000;
const NOW: i64 = 1_800_000_000;

/// Runs a future of the fake to its end: none of its I/O ever waits.
fn run<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the fake I/O never waits"),
    }
}

/// What a stand-in AWS does with one request.
#[derive(Debug, Clone)]
enum Reply {
    /// Takes the request after this many milliseconds (SQS: a valid SendMessage answer).
    Ok(u64),
    /// Answers this status and body after this many milliseconds.
    Status(u64, u16, String),
    /// Never answers (the request times out); or the connection fails at once (0).
    Silent,
    Refused,
}

fn sqs_error(status: u16, kind: &str) -> Reply {
    Reply::Status(
        5,
        status,
        format!(r#"{{"__type":"{kind}","message":"no"}}"#),
    )
}

fn s3_error(status: u16, code: &str) -> Reply {
    Reply::Status(
        5,
        status,
        format!("<?xml version=\"1.0\"?><Error><Code>{code}</Code></Error>"),
    )
}

/// One request the flow sent.
#[derive(Debug, Clone)]
struct Sent {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout_ms: u32,
    at_ms: u64,
}

struct Fake {
    cfg: Result<Rc<EdgeConfig>, String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    declared: bool,
    clock: Cell<u64>,
    random: Cell<f64>,
    sqs: RefCell<VecDeque<Reply>>,
    s3: RefCell<VecDeque<Reply>>,
    spool: RefCell<VecDeque<Reply>>,
    sent: RefCell<Vec<Sent>>,
    slept: RefCell<Vec<u64>>,
    errors: RefCell<Vec<String>>,
}

impl Fake {
    fn new(cfg: EdgeConfig, headers: Vec<(String, String)>, body: &[u8]) -> Self {
        let mut headers = headers;
        headers.push(("content-length".into(), body.len().to_string()));
        Fake {
            cfg: Ok(Rc::new(cfg)),
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
            body: body.to_vec(),
            declared: true,
            clock: Cell::new(NOW_MS),
            random: Cell::new(0.5),
            sqs: RefCell::new(VecDeque::new()),
            s3: RefCell::new(VecDeque::new()),
            spool: RefCell::new(VecDeque::new()),
            sent: RefCell::new(Vec::new()),
            slept: RefCell::new(Vec::new()),
            errors: RefCell::new(Vec::new()),
        }
    }

    fn sqs(self, replies: impl IntoIterator<Item = Reply>) -> Self {
        self.sqs.borrow_mut().extend(replies);
        self
    }

    fn s3(self, replies: impl IntoIterator<Item = Reply>) -> Self {
        self.s3.borrow_mut().extend(replies);
        self
    }

    fn spool(self, replies: impl IntoIterator<Item = Reply>) -> Self {
        self.spool.borrow_mut().extend(replies);
        self
    }

    /// The spool's PUTs.
    fn spooled(&self) -> Vec<Sent> {
        self.sent
            .borrow()
            .iter()
            .filter(|s| s.url.contains("/spool/"))
            .cloned()
            .collect()
    }

    /// The requests sent with `method`, the spool's left out.
    fn sent(&self, method: &str) -> Vec<Sent> {
        self.sent
            .borrow()
            .iter()
            .filter(|s| s.method == method && !s.url.contains("/spool/"))
            .cloned()
            .collect()
    }

    /// The envelopes SQS took, in order.
    fn queued(&self) -> Vec<Envelope> {
        self.sent("POST")
            .iter()
            .map(|s| {
                let body: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
                Envelope::from_json(body["MessageBody"].as_str().unwrap()).unwrap()
            })
            .collect()
    }

    fn advance(&self, ms: u64) {
        self.clock.set(self.clock.get() + ms);
    }
}

impl Io for Fake {
    type Blob = Vec<u8>;

    fn config(&self) -> Result<Rc<EdgeConfig>, String> {
        self.cfg.clone()
    }

    /// As the runtime's `Headers.get`: every value of the name, joined with `, `.
    fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }

    async fn read_body(
        &self,
        declared: bool,
        max: usize,
        _signed: Option<&Provider>,
        _digest: bool,
    ) -> Result<Body<Vec<u8>>, Rejection> {
        assert_eq!(declared, self.declared);
        if self.body.len() > max {
            return Err(handler::too_large(max));
        }
        Ok(Body {
            bytes: self.body.clone(),
            blob: self.body.clone(),
            first_mac: None,
            sha256: None,
        })
    }

    async fn verify(
        &self,
        p: &Provider,
        pending: Pending<'_>,
        _body: &Vec<u8>,
        _first_mac: Option<[u8; 32]>,
    ) -> Result<Verified, Rejection> {
        handler::settle(p, pending)
    }

    fn sha256<'a>(&self, data: &'a [u8], _blob: &Vec<u8>) -> impl Future<Output = [u8; 32]> + 'a {
        std::future::ready(Sha256::digest(data).into())
    }

    fn blob(&self, bytes: &[u8]) -> Vec<u8> {
        bytes.to_vec()
    }

    async fn send_message_hashes(
        &self,
        unsigned: &UnsignedRequest,
        body: &Vec<u8>,
    ) -> ([u8; 32], [u8; 16]) {
        (Sha256::digest(body).into(), unsigned.message_md5())
    }

    async fn send(
        &self,
        method: &str,
        url: &str,
        body: &Vec<u8>,
        headers: &[(String, String)],
        timeout_ms: u32,
    ) -> Result<(u16, String), String> {
        self.sent.borrow_mut().push(Sent {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: headers.to_vec(),
            body: body.clone(),
            timeout_ms,
            at_ms: self.clock.get(),
        });
        let script = if url.contains("/spool/") {
            &self.spool
        } else if method == "PUT" {
            &self.s3
        } else {
            &self.sqs
        };
        let reply = script.borrow_mut().pop_front().unwrap_or(Reply::Ok(3));
        let took = |ms: u64| {
            if ms > u64::from(timeout_ms) {
                self.advance(u64::from(timeout_ms));
                Err(format!("no answer within {timeout_ms} ms"))
            } else {
                self.advance(ms);
                Ok(())
            }
        };
        match reply {
            Reply::Ok(ms) => {
                took(ms)?;
                if method == "PUT" {
                    return Ok((200, String::new()));
                }
                let json: serde_json::Value = serde_json::from_slice(body).unwrap();
                let message = json["MessageBody"].as_str().unwrap();
                let md5 = hex::encode(Md5::digest(message.as_bytes()));
                let id = self.sent.borrow().len();
                Ok((
                    200,
                    format!(r#"{{"MessageId":"m-{id}","MD5OfMessageBody":"{md5}"}}"#),
                ))
            }
            Reply::Status(ms, status, text) => took(ms).map(|()| (status, text)),
            Reply::Silent => took(u64::MAX).map(|()| (0, String::new())),
            Reply::Refused => Err("connection refused".into()),
        }
    }

    async fn sleep(&self, ms: u64) {
        self.slept.borrow_mut().push(ms);
        self.advance(ms);
    }

    fn now_ms(&self) -> u64 {
        self.clock.get()
    }

    fn random(&self) -> f64 {
        self.random.get()
    }

    fn log_error(&self, line: &str) {
        self.errors.borrow_mut().push(line.to_owned());
    }

    fn memory_bytes(&self) -> Option<u64> {
        None
    }
}

fn secret(scheme: Scheme) -> &'static str {
    hookvault_core::corpus::example_secret(scheme)
}

fn vars(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let secrets: serde_json::Map<String, serde_json::Value> = ALL_SCHEMES
        .iter()
        .map(|s| {
            (
                s.name().to_owned(),
                serde_json::json!([{ "id": "k1", "secret": secret(*s) }]),
            )
        })
        .collect();
    let providers: serde_json::Map<String, serde_json::Value> = ALL_SCHEMES
        .iter()
        .map(|s| (s.name().to_owned(), s.name().into()))
        .collect();
    let mut vars: HashMap<String, String> = [
        (
            "WEBHOOK_SECRETS",
            serde_json::Value::Object(secrets).to_string(),
        ),
        (
            "PROVIDERS",
            serde_json::Value::Object(providers).to_string(),
        ),
        (
            "SQS_QUEUE_URL",
            "http://127.0.0.1:4566/000000000000/q".to_owned(),
        ),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("MAX_BODY_BYTES", "4096".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    vars
}

fn config(extra: &[(&str, &str)]) -> EdgeConfig {
    let vars = vars(extra);
    EdgeConfig::from_vars(&|k| vars.get(k).cloned()).unwrap()
}

/// The default settings, with a claim-check bucket and a queue whose messages hold 2 KiB,
/// so a 4 KiB body goes by claim check.
fn claim_check_config(extra: &[(&str, &str)]) -> EdgeConfig {
    let mut all = vec![
        ("CLAIM_CHECK_BUCKET", "archive"),
        ("S3_ENDPOINT", "http://127.0.0.1:4566/"),
        ("SQS_MAX_MESSAGE_BYTES", "2048"),
    ];
    all.extend_from_slice(extra);
    config(&all)
}

fn signed(scheme: Scheme, body: &[u8]) -> Vec<(String, String)> {
    hookvault_core::corpus::signed(scheme, secret(scheme), body, NOW).unwrap()
}

fn post(path: &str) -> RequestLog {
    RequestLog::new("POST", path)
}

/// Runs the flow for a webhook to `provider`; the answer (a refusal as its answer) and
/// the log.
fn webhook(io: &Fake, provider: &str) -> (Answer, RequestLog) {
    let mut log = post(&format!("/webhooks/{provider}"));
    let answer =
        run(handle(io, NOW_MS, None, &mut log)).unwrap_or_else(|r| Answer::refusal(&r, None));
    (answer, log)
}

fn skytells(cfg: EdgeConfig, body: &[u8]) -> Fake {
    Fake::new(cfg, signed(Scheme::Skytells, body), body)
}

fn code(answer: &Answer) -> String {
    let body: serde_json::Value =
        serde_json::from_str(answer.body.as_deref().unwrap_or("{}")).unwrap();
    body["error"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn every_corpus_case_gets_its_documented_status_and_nothing_is_sent() {
    for scheme in ALL_SCHEMES {
        for case in bad_inputs(scheme, secret(scheme), NOW) {
            let io = Fake::new(config(&[]), case.headers.clone(), &case.body);
            let (answer, _) = webhook(&io, scheme.name());
            assert_eq!(
                (answer.status, code(&answer)),
                (case.status, case.code.to_owned()),
                "{}",
                case.name
            );
            assert!(io.sent.borrow().is_empty(), "{}", case.name);
        }
    }
}

#[test]
fn every_verified_body_is_queued_byte_for_byte_in_its_envelope() {
    for body in [
        sample_body(),
        b"not json".to_vec(),
        br#"{"hello":"world"}"#.to_vec(),
        b"\xff\xfe".to_vec(),
        b"\xEF\xBB\xBF{\"id\":\"p\",\"status\":\"succeeded\"}\r\n".to_vec(),
        b"payload=%7B%22zen%22%3A%22x%22%7D".to_vec(),
        Vec::new(),
    ] {
        for scheme in ALL_SCHEMES {
            let io = Fake::new(config(&[]), signed(scheme, &body), &body);
            let (answer, log) = webhook(&io, scheme.name());
            assert_eq!(answer.status, 202, "{scheme} {body:?}: {answer:?}");
            let [env] = io.queued().try_into().unwrap();
            assert_eq!(env.inline_body(), Some(body.as_slice()), "{scheme}");
            assert_eq!(env.signature_headers, signed(scheme, &body));
            assert_eq!(env.received_at_ms, 1_800_000_000_000);
            assert_eq!(env.provider, scheme.name());
            assert_eq!(
                (env.key_id.as_str(), env.key_slot),
                ("k1", KeySlot::Current)
            );
            assert_eq!(log.sqs_message_id.as_deref(), Some("m-1"));
            assert_eq!((log.sqs_attempts, log.s3_attempts), (None, None));
            let accepted: serde_json::Value =
                serde_json::from_str(answer.body.as_deref().unwrap()).unwrap();
            assert_eq!(accepted["event_id"], env.event_id.as_str());
        }
    }
}

#[test]
fn unknown_providers_and_large_bodies_are_refused_before_anything_is_sent() {
    let body = sample_body();
    let io = skytells(config(&[]), &body);
    assert_eq!(webhook(&io, "nope").0.status, 404);
    let big = vec![b' '; 4097];
    for declared in [true, false] {
        let mut io = skytells(config(&[]), &big);
        if !declared {
            io.headers.retain(|(k, _)| k != "content-length");
            io.declared = false;
        }
        let (answer, _) = webhook(&io, "skytells");
        assert_eq!(
            (answer.status, code(&answer)),
            (413, "body_too_large".into())
        );
        assert!(io.sent.borrow().is_empty());
    }
}

#[test]
fn probes_verify_and_queue_nothing() {
    let h = signed(Scheme::GitHub, b"probe");
    let io = Fake::new(config(&[]), h.clone(), b"probe");
    let mut log = post("/_hookvault/probe/github");
    let answer = run(handle(&io, NOW_MS, None, &mut log)).unwrap();
    assert_eq!(answer.status, 204);
    assert!(answer
        .headers
        .contains(&("x-hookvault-key", "k1".to_owned())));
    assert!(io.sent.borrow().is_empty());
    let io = Fake::new(config(&[]), h.clone(), b"probe!");
    let r = run(handle(
        &io,
        NOW_MS,
        None,
        &mut post("/_hookvault/probe/github"),
    ))
    .unwrap_err();
    assert_eq!(r.status, 401);
    // Several providers: the probe must name one.
    let io = Fake::new(config(&[]), h, b"probe");
    let r = run(handle(&io, NOW_MS, None, &mut post("/_hookvault/probe"))).unwrap_err();
    assert_eq!(r.status, 404);
}

#[test]
fn a_misconfigured_edge_answers_503_and_logs_which_variable() {
    let mut io = skytells(config(&[]), b"{}");
    io.cfg = Err("SQS_QUEUE_URL is not set".into());
    let (answer, _) = webhook(&io, "skytells");
    assert_eq!(
        (answer.status, code(&answer)),
        (503, "edge_misconfigured".into())
    );
    assert!(io.errors.borrow()[0].contains("SQS_QUEUE_URL is not set"));
}

/// Issue 24, item 3: the claim check's `PutObject` waits `CLAIM_CHECK_TIMEOUT_MS` (30 s
/// by default), not `SQS_TIMEOUT_MS` (5 s). An S3 that takes 8 s gets the body: 202.
#[test]
fn a_claim_check_waits_claim_check_timeout_ms_not_the_sqs_timeout() {
    let body = vec![b'x'; 4000];
    let io = skytells(claim_check_config(&[]), &body).s3([Reply::Ok(8_000)]);
    let (answer, log) = webhook(&io, "skytells");
    assert_eq!(answer.status, 202, "{answer:?}");
    let [put] = io.sent("PUT").try_into().unwrap();
    assert_eq!(put.timeout_ms, 30_000);
    assert_eq!(put.body, body, "the exact bytes go to S3");
    let [env] = io.queued().try_into().unwrap();
    let EnvelopeBody::S3(object) = &env.body else {
        panic!("not claim-checked: {env:?}");
    };
    assert_eq!(
        object.key,
        format!("raw/{}", hex::encode(Sha256::digest(&body)))
    );
    assert_eq!(log.claim_check.as_deref(), Some(object.key.as_str()));
    // And the SendMessage that follows has its own timeout.
    assert_eq!(io.sent("POST")[0].timeout_ms, 5_000);

    // The setting is read: at 7 s, an S3 that takes 8 s is too slow, and so is every
    // retry within the budget.
    let io = skytells(
        claim_check_config(&[("CLAIM_CHECK_TIMEOUT_MS", "7000")]),
        &body,
    )
    .s3([Reply::Ok(8_000), Reply::Ok(8_000)]);
    let (answer, _) = webhook(&io, "skytells");
    assert_eq!(
        (answer.status, code(&answer)),
        (503, "claim_check_unavailable".into())
    );
    assert_eq!(io.sent("PUT")[0].timeout_ms, 7_000);
    assert!(io.sent("POST").is_empty(), "no envelope without its body");
}

/// Issue 24, item 1: throttling, 5xx and no answer are retried within the request.
#[test]
fn sqs_throttling_5xx_and_silence_are_retried_with_jittered_back_off() {
    let body = sample_body();
    let io = skytells(config(&[]), &body).sqs([
        sqs_error(400, "com.amazonaws.sqs#RequestThrottled"),
        sqs_error(400, "ThrottlingException"),
        sqs_error(400, "com.amazonaws.sqs#KmsThrottled"),
        sqs_error(500, "InternalError"),
    ]);
    let (answer, log) = webhook(&io, "skytells");
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(io.sent("POST").len(), 5);
    assert_eq!(log.sqs_attempts, Some(5));
    // 100 ms doubling, at the middle of the jitter.
    assert_eq!(*io.slept.borrow(), [100, 200, 400, 800]);
    // Every attempt sent the same bytes: one message.
    let sent = io.sent("POST");
    assert!(sent.iter().all(|s| s.body == sent[0].body));

    // Jitter: ×0.5 to ×1.5 of the back-off.
    for (unit, first) in [(0.0, 50), (0.999_999, 149)] {
        let io = skytells(config(&[]), &body).sqs([
            sqs_error(503, "ServiceUnavailable"),
            Reply::Silent,
            Reply::Refused,
            sqs_error(400, "KMS.ThrottlingException"),
        ]);
        io.random.set(unit);
        let (answer, _) = webhook(&io, "skytells");
        assert_eq!(answer.status, 202);
        assert_eq!(io.slept.borrow()[0], first, "{unit}");
        assert_eq!(io.sent("POST").len(), 5);
    }
}

#[test]
fn a_refusal_no_retry_can_fix_is_answered_at_once() {
    let body = sample_body();
    for reply in [
        sqs_error(400, "com.amazonaws.sqs#InvalidParameterValue"),
        sqs_error(400, "com.amazonaws.sqs#QueueDoesNotExist"),
        sqs_error(403, "AccessDenied"),
        sqs_error(400, "com.amazonaws.sqs#KmsAccessDenied"),
    ] {
        let io = skytells(config(&[]), &body).sqs([reply.clone()]);
        let (answer, log) = webhook(&io, "skytells");
        assert_eq!(
            (answer.status, code(&answer)),
            (503, "queue_unavailable".into()),
            "{reply:?}"
        );
        assert_eq!(io.sent("POST").len(), 1, "{reply:?}");
        assert!(io.slept.borrow().is_empty());
        assert!(log.reason.unwrap().contains("HTTP"));
    }
    // S3 likewise: a 403 is not retried, and nothing is queued.
    let io = skytells(claim_check_config(&[]), &[b'x'; 4000]).s3([s3_error(403, "AccessDenied")]);
    let (answer, _) = webhook(&io, "skytells");
    assert_eq!(
        (answer.status, code(&answer)),
        (503, "claim_check_unavailable".into())
    );
    assert_eq!(io.sent("PUT").len(), 1);
    assert!(io.sent("POST").is_empty());
}

#[test]
fn retries_stop_at_the_attempt_limit_and_the_budget() {
    let body = sample_body();
    // Always throttled: five attempts, then 503.
    let io = skytells(config(&[]), &body).sqs(vec![sqs_error(400, "RequestThrottled"); 9]);
    let (answer, log) = webhook(&io, "skytells");
    assert_eq!(answer.status, 503);
    assert_eq!((io.sent("POST").len(), log.sqs_attempts), (5, Some(5)));

    // SQS never answers: 5 s for the first attempt, then retries only within the 10 s
    // budget, each waiting at most what is left of it.
    let io = skytells(config(&[]), &body).sqs(vec![Reply::Silent; 9]);
    let (answer, _) = webhook(&io, "skytells");
    assert_eq!(answer.status, 503);
    let sent = io.sent("POST");
    assert_eq!(sent[0].timeout_ms, 5_000);
    for s in &sent[1..] {
        let left = NOW_MS + 10_000 - s.at_ms;
        assert_eq!(u64::from(s.timeout_ms), left.min(5_000), "{s:?}");
    }
    assert!(io.now_ms() <= NOW_MS + 10_000, "{}", io.now_ms() - NOW_MS);
    assert!(sent.len() >= 2, "{sent:?}");

    // A budget of 0: no retry at all.
    let io = skytells(config(&[("RETRY_BUDGET_MS", "0")]), &body).sqs([Reply::Refused]);
    assert_eq!(webhook(&io, "skytells").0.status, 503);
    assert_eq!(io.sent("POST").len(), 1);

    // A budget of 250 ms: the first back-off (100 ms) fits, the second (200 ms) does not.
    let io = skytells(config(&[("RETRY_BUDGET_MS", "250")]), &body).sqs(vec![
        sqs_error(
            500,
            "InternalError"
        );
        9
    ]);
    assert_eq!(webhook(&io, "skytells").0.status, 503);
    assert_eq!(io.sent("POST").len(), 2);
    assert_eq!(*io.slept.borrow(), [100]);
}

#[test]
fn a_claim_check_put_is_retried_then_the_envelope_queued() {
    let body = vec![b'y'; 4000];
    let io = skytells(claim_check_config(&[]), &body).s3([
        s3_error(503, "SlowDown"),
        s3_error(500, "InternalError"),
        Reply::Refused,
    ]);
    let (answer, log) = webhook(&io, "skytells");
    assert_eq!(answer.status, 202, "{answer:?}");
    assert_eq!(io.sent("PUT").len(), 4);
    assert_eq!(log.s3_attempts, Some(4));
    assert_eq!(io.queued().len(), 1);
    // The envelope's SendMessage is retried too.
    let io = skytells(claim_check_config(&[]), &body).sqs([sqs_error(503, "ServiceUnavailable")]);
    let (answer, log) = webhook(&io, "skytells");
    assert_eq!(answer.status, 202);
    assert_eq!((log.s3_attempts, log.sqs_attempts), (None, Some(2)));
}

#[test]
fn errors_are_classified_for_the_retry_policy() {
    let status = |status| {
        Some(Failure::Status {
            status,
            retry_after: None,
        })
    };
    let refused = |status, kind: &str| SqsError::Refused {
        status,
        kind: kind.into(),
    };
    assert_eq!(
        sqs_failure(&refused(400, "com.amazonaws.sqs#RequestThrottled")),
        status(429)
    );
    assert_eq!(
        sqs_failure(&refused(400, "KMS.ThrottlingException")),
        status(429)
    );
    assert_eq!(
        sqs_failure(&refused(400, "InvalidParameterValue")),
        status(400)
    );
    assert_eq!(
        sqs_failure(&SqsError::Unreachable("x".into())),
        Some(Failure::Transport)
    );
    assert_eq!(sqs_failure(&SqsError::TooLarge { size: 2, max: 1 }), None);
    assert_eq!(sqs_failure(&SqsError::Sign("x".into())), None);
    let s3 = |status, code: &str| S3Error::Refused {
        status,
        code: code.into(),
    };
    assert_eq!(s3_failure(&s3(503, "SlowDown")), status(429));
    assert_eq!(s3_failure(&s3(403, "AccessDenied")), status(403));
    let policy = retry_policy();
    for code in [429, 500, 502, 503, 504, 599] {
        assert!(policy.retryable.contains(&code), "{code}");
    }
    for code in [400, 403, 404, 413] {
        assert!(!policy.retryable.contains(&code), "{code}");
    }
}

/// The local stack's settings: the claim-check bucket, which is the spool too.
fn spool_config() -> EdgeConfig {
    config(&[
        ("CLAIM_CHECK_BUCKET", "archive"),
        ("S3_ENDPOINT", "http://127.0.0.1:4566/"),
    ])
}

/// Issue 24, item 2 (the edge's side): SQS did not take it, the spool did: 202.
#[test]
fn an_event_sqs_does_not_take_is_spooled_create_only_and_answered_202() {
    let body = sample_body();
    let sha = Sha256::digest(&body);
    for (why, replies) in [
        (
            "refused",
            vec![sqs_error(400, "com.amazonaws.sqs#QueueDoesNotExist")],
        ),
        ("throttled", vec![sqs_error(400, "RequestThrottled"); 9]),
        ("silent", vec![Reply::Silent; 9]),
    ] {
        let io = skytells(spool_config(), &body).sqs(replies);
        let (answer, log) = webhook(&io, "skytells");
        assert_eq!(answer.status, 202, "{why}: {answer:?}");
        let accepted: serde_json::Value =
            serde_json::from_str(answer.body.as_deref().unwrap()).unwrap();
        assert_eq!(accepted["status"], "spooled", "{why}");
        let [put] = io.spooled().try_into().unwrap();
        let key = format!("spool/skytells/{}", hex::encode(sha));
        assert_eq!(
            put.url,
            format!("http://127.0.0.1:4566/archive/{key}"),
            "{why}"
        );
        assert!(put
            .headers
            .contains(&("if-none-match".to_owned(), "*".to_owned())));
        // The spooled envelope is the one SQS would have had, the exact bytes inline.
        let env = Envelope::from_json(std::str::from_utf8(&put.body).unwrap()).unwrap();
        assert_eq!(env.inline_body(), Some(body.as_slice()), "{why}");
        assert_eq!(accepted["event_id"], env.event_id.as_str());
        assert_eq!(log.spooled.as_deref(), Some(key.as_str()));
        assert!(
            log.reason.as_deref().unwrap_or_default().contains("SQS"),
            "{why}: the log says why"
        );
        assert_eq!(
            log.level(),
            crate::log::Level::Error,
            "{why}: an operator should know"
        );
    }
}

#[test]
fn a_key_already_spooled_is_the_same_event_and_503_only_when_both_fail() {
    let body = sample_body();
    // 412: the same provider and body were spooled before.
    let io = skytells(spool_config(), &body)
        .sqs(vec![Reply::Refused; 9])
        .spool([s3_error(412, "PreconditionFailed")]);
    assert_eq!(webhook(&io, "skytells").0.status, 202);
    // SQS and the spool both refuse: 503, and the log names both.
    let io = skytells(spool_config(), &body)
        .sqs([sqs_error(403, "AccessDenied")])
        .spool([s3_error(403, "AccessDenied")]);
    let (answer, log) = webhook(&io, "skytells");
    assert_eq!(
        (answer.status, code(&answer)),
        (503, "queue_unavailable".into())
    );
    let reason = log.reason.unwrap();
    assert!(
        reason.contains("SQS") && reason.contains("spool"),
        "{reason}"
    );
    assert_eq!(log.spooled, None);
    // No bucket at all: no spool, 503 as before.
    let io = skytells(config(&[]), &body).sqs([sqs_error(403, "AccessDenied")]);
    assert_eq!(webhook(&io, "skytells").0.status, 503);
    assert!(io.spooled().is_empty());
}

#[test]
fn a_claim_checked_envelope_is_spooled_pointing_at_its_body() {
    let body = vec![b'q'; 4000];
    let io = skytells(claim_check_config(&[]), &body)
        .sqs([sqs_error(400, "com.amazonaws.sqs#KmsAccessDenied")]);
    let (answer, _) = webhook(&io, "skytells");
    assert_eq!(answer.status, 202);
    assert_eq!(io.sent("PUT").len(), 1, "the body, once");
    let [put] = io.spooled().try_into().unwrap();
    let env = Envelope::from_json(std::str::from_utf8(&put.body).unwrap()).unwrap();
    assert!(matches!(env.body, EnvelopeBody::S3(_)));
    // A claim check S3 did not take is not spooled: the body is nowhere.
    let io = skytells(claim_check_config(&[]), &body).s3([s3_error(403, "AccessDenied")]);
    assert_eq!(webhook(&io, "skytells").0.status, 503);
    assert!(io.spooled().is_empty());
}

#[test]
fn the_spool_may_be_another_bucket_in_another_region() {
    let body = sample_body();
    let io = skytells(
        config(&[
            ("SPOOL_BUCKET", "spool-west"),
            ("SPOOL_REGION", "us-west-2"),
            ("SPOOL_TIMEOUT_MS", "1500"),
        ]),
        &body,
    )
    .sqs(vec![Reply::Refused; 9])
    .spool([s3_error(409, "ConditionalRequestConflict")]);
    let (answer, log) = webhook(&io, "skytells");
    assert_eq!(answer.status, 202);
    let spooled = io.spooled();
    assert_eq!(spooled.len(), 2, "a 409 is retried");
    assert_eq!(log.spool_attempts, Some(2));
    assert!(spooled[0]
        .url
        .starts_with("https://spool-west.s3.us-west-2.amazonaws.com/spool/skytells/"));
    assert_eq!(spooled[0].timeout_ms, 1_500);
    let auth = &spooled[0]
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap()
        .1;
    assert!(auth.contains("/us-west-2/s3/aws4_request"), "{auth}");
}
