//! A fault-injecting HTTP proxy in front of moto, for the soak (issue 24, item 5): moto has
//! no fault switches, so the stack's clients (the edge, and the Lambdas' SDKs) talk to
//! this proxy, which forwards each request to moto unless a fault is on:
//!
//! | fault | answer, instead of forwarding |
//! |---|---|
//! | [`SqsFault::RefuseAll`] | every SQS request: 503 `ServiceUnavailable` in SQS's JSON protocol |
//! | [`SqsFault::ThrottleThird`] | every third SQS request: 400 `RequestThrottled` in SQS's JSON protocol |
//! | [`S3Fault::Refuse`] | every S3 request: 503 `SlowDown` in S3's XML |
//!
//! Which service a request is for ([`classify`]): SQS's JSON protocol (the edge's signed
//! `SendMessage` and the SDK's calls) names its operation in `x-amz-target:
//! AmazonSQS.{Operation}`; the query protocol posts a form with `Action=`; anything else
//! is S3 (path-style REST). A refused request's body is read whole first, so the client
//! gets the answer, not a reset connection. Every request is counted ([`Counts`]).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::process::ServerBody;
use crate::StackError;

/// The service a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// SQS (JSON or query protocol).
    Sqs,
    /// S3 (REST).
    S3,
}

/// What SQS does now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SqsFault {
    /// Forwards everything.
    #[default]
    None,
    /// Refuses every request (503 `ServiceUnavailable`).
    RefuseAll,
    /// Throttles every third request (400 `RequestThrottled`), forwards the others.
    ThrottleThird,
}

/// What S3 does now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum S3Fault {
    /// Forwards everything.
    #[default]
    None,
    /// Refuses every request (503 `SlowDown`).
    Refuse,
}

/// The faults on now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// SQS's.
    pub sqs: SqsFault,
    /// S3's.
    pub s3: S3Fault,
}

/// What the proxy does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Sends it to moto and relays the answer.
    Forward,
    /// Answers it with this fault.
    Refuse(Refusal),
}

/// An injected error answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// SQS: 503 `ServiceUnavailable`.
    SqsUnavailable,
    /// SQS: 400 `RequestThrottled`.
    SqsThrottled,
    /// S3: 503 `SlowDown`.
    S3SlowDown,
}

impl Refusal {
    /// The status, headers and body the proxy answers with: AWS's shapes, as the clients
    /// read them (the edge reads SQS's `__type` and S3's `<Code>`).
    pub fn answer(self) -> (u16, Vec<(&'static str, &'static str)>, &'static str) {
        match self {
            Refusal::SqsUnavailable => (
                503,
                vec![
                    ("content-type", "application/x-amz-json-1.0"),
                    ("x-amzn-query-error", "ServiceUnavailable;Receiver"),
                ],
                r#"{"__type":"com.amazonaws.sqs#ServiceUnavailable","message":"Service is unable to handle request (injected by the soak's fault proxy)."}"#,
            ),
            Refusal::SqsThrottled => (
                400,
                vec![
                    ("content-type", "application/x-amz-json-1.0"),
                    ("x-amzn-query-error", "RequestThrottled;Sender"),
                ],
                r#"{"__type":"com.amazonaws.sqs#RequestThrottled","message":"Rate exceeded (injected by the soak's fault proxy)."}"#,
            ),
            Refusal::S3SlowDown => (
                503,
                vec![("content-type", "application/xml")],
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate. (injected by the soak's fault proxy)</Message><RequestId>soak</RequestId></Error>",
            ),
        }
    }
}

/// Which service a request with `x_amz_target` (the header, if any), `content_type` and
/// `body` is for: SQS when the target names `AmazonSQS.…` (JSON protocol) or a form body
/// has an `Action=` (query protocol), else S3.
pub fn classify(x_amz_target: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Service {
    if x_amz_target.is_some_and(|t| t.starts_with("AmazonSQS.")) {
        return Service::Sqs;
    }
    let form = content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form
        && body
            .split(|&b| b == b'&')
            .any(|kv| kv.starts_with(b"Action="))
    {
        return Service::Sqs;
    }
    Service::S3
}

/// What to do with a request for `service` under `faults`, `n` being how many SQS
/// requests came before this one (from 0): under [`SqsFault::ThrottleThird`] the 3rd, 6th,
/// 9th, … are throttled.
pub fn decide(faults: Faults, service: Service, n: u64) -> Decision {
    match (service, faults.sqs, faults.s3) {
        (Service::Sqs, SqsFault::RefuseAll, _) => Decision::Refuse(Refusal::SqsUnavailable),
        (Service::Sqs, SqsFault::ThrottleThird, _) if n % 3 == 2 => {
            Decision::Refuse(Refusal::SqsThrottled)
        }
        (Service::S3, _, S3Fault::Refuse) => Decision::Refuse(Refusal::S3SlowDown),
        _ => Decision::Forward,
    }
}

/// What the proxy has done so far.
#[derive(Debug, Default)]
pub struct Counts {
    /// SQS requests forwarded to moto.
    pub sqs_forwarded: AtomicU64,
    /// SQS requests answered `ServiceUnavailable`.
    pub sqs_refused: AtomicU64,
    /// SQS requests answered `RequestThrottled`.
    pub sqs_throttled: AtomicU64,
    /// S3 requests forwarded to moto.
    pub s3_forwarded: AtomicU64,
    /// S3 requests answered `SlowDown`.
    pub s3_refused: AtomicU64,
    /// Requests moto did not answer (relayed as 502).
    pub upstream_errors: AtomicU64,
}

/// A snapshot of [`Counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountsNow {
    /// See [`Counts::sqs_forwarded`].
    pub sqs_forwarded: u64,
    /// See [`Counts::sqs_refused`].
    pub sqs_refused: u64,
    /// See [`Counts::sqs_throttled`].
    pub sqs_throttled: u64,
    /// See [`Counts::s3_forwarded`].
    pub s3_forwarded: u64,
    /// See [`Counts::s3_refused`].
    pub s3_refused: u64,
    /// See [`Counts::upstream_errors`].
    pub upstream_errors: u64,
}

#[derive(Debug, Default)]
struct State {
    upstream: Mutex<Option<String>>,
    faults: Mutex<Faults>,
    sqs_seen: AtomicU64,
    counts: Counts,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A running proxy: stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`: the endpoint to give the clients.
    pub url: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Headers not relayed either way: hop-by-hop ones, and those the relaying client or
/// server sets itself for the body it sends.
const NOT_RELAYED: [&str; 6] = [
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "expect",
    "keep-alive",
];

fn relayed(name: &str) -> bool {
    !NOT_RELAYED.contains(&name.to_ascii_lowercase().as_str())
}

fn response(status: u16, headers: &[(String, Vec<u8>)], body: Bytes) -> Response<ServerBody> {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(k.as_str(), v.as_slice());
    }
    b.body(Full::new(body).boxed()).unwrap_or_default()
}

impl FaultProxy {
    /// Starts on a free port, forwarding to `upstream` (moto's endpoint), no fault on.
    pub async fn start(upstream: &str) -> Result<Self, StackError> {
        let proxy = Self::start_unbound().await?;
        proxy.set_upstream(upstream);
        Ok(proxy)
    }

    /// Starts on a free port with no upstream yet (its URL can go into a config before
    /// moto runs): every request is answered 502 until [`FaultProxy::set_upstream`].
    pub async fn start_unbound() -> Result<Self, StackError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let state = Arc::new(State::default());
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .map_err(|e| StackError::Start(format!("fault proxy: {e}")))?;
        let task = crate::process::serve_http(
            listener,
            (Arc::clone(&state), http),
            |req, (state, http): (Arc<State>, reqwest::Client)| async move {
                handle(req, &state, &http).await
            },
        );
        Ok(FaultProxy { url, state, task })
    }

    /// Forwards to `upstream` from now on.
    pub fn set_upstream(&self, upstream: &str) {
        *locked(&self.state.upstream) = Some(upstream.trim_end_matches('/').to_owned());
    }

    /// Sets SQS's fault.
    pub fn set_sqs(&self, fault: SqsFault) {
        locked(&self.state.faults).sqs = fault;
    }

    /// Sets S3's fault.
    pub fn set_s3(&self, fault: S3Fault) {
        locked(&self.state.faults).s3 = fault;
    }

    /// The faults on now.
    pub fn faults(&self) -> Faults {
        *locked(&self.state.faults)
    }

    /// What it has done so far.
    pub fn counts(&self) -> CountsNow {
        let c = &self.state.counts;
        CountsNow {
            sqs_forwarded: c.sqs_forwarded.load(Relaxed),
            sqs_refused: c.sqs_refused.load(Relaxed),
            sqs_throttled: c.sqs_throttled.load(Relaxed),
            s3_forwarded: c.s3_forwarded.load(Relaxed),
            s3_refused: c.s3_refused.load(Relaxed),
            upstream_errors: c.upstream_errors.load(Relaxed),
        }
    }
}

async fn handle(
    req: Request<Incoming>,
    state: &State,
    http: &reqwest::Client,
) -> Response<ServerBody> {
    let (parts, body) = req.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    // The whole body first, even to refuse it: the client then reads the answer.
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return response(400, &[], Bytes::new()),
    };
    let service = classify(header("x-amz-target"), header("content-type"), &body);
    let n = match service {
        Service::Sqs => state.sqs_seen.fetch_add(1, Relaxed),
        Service::S3 => 0,
    };
    let faults = *locked(&state.faults);
    let c = &state.counts;
    match decide(faults, service, n) {
        Decision::Refuse(r) => {
            match r {
                Refusal::SqsUnavailable => &c.sqs_refused,
                Refusal::SqsThrottled => &c.sqs_throttled,
                Refusal::S3SlowDown => &c.s3_refused,
            }
            .fetch_add(1, Relaxed);
            let (status, headers, text) = r.answer();
            let headers: Vec<(String, Vec<u8>)> = headers
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
                .collect();
            return response(status, &headers, Bytes::from_static(text.as_bytes()));
        }
        Decision::Forward => match service {
            Service::Sqs => &c.sqs_forwarded,
            Service::S3 => &c.s3_forwarded,
        }
        .fetch_add(1, Relaxed),
    };
    let Some(upstream) = locked(&state.upstream).clone() else {
        c.upstream_errors.fetch_add(1, Relaxed);
        return response(502, &[], Bytes::from_static(b"no upstream yet"));
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = http.request(parts.method.clone(), format!("{upstream}{path}"));
    for (k, v) in &parts.headers {
        if relayed(k.as_str()) {
            out = out.header(k, v);
        }
    }
    let answer = match out.body(body).send().await {
        Ok(a) => a,
        Err(e) => {
            c.upstream_errors.fetch_add(1, Relaxed);
            return response(502, &[], Bytes::from(e.to_string()));
        }
    };
    let status = answer.status().as_u16();
    let headers: Vec<(String, Vec<u8>)> = answer
        .headers()
        .iter()
        .filter(|(k, _)| relayed(k.as_str()))
        .map(|(k, v)| (k.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    match answer.bytes().await {
        Ok(b) => response(status, &headers, b),
        Err(e) => {
            c.upstream_errors.fetch_add(1, Relaxed);
            response(502, &[], Bytes::from(e.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_told_apart_by_protocol() {
        assert_eq!(
            classify(Some("AmazonSQS.SendMessage"), None, b"{}"),
            Service::Sqs
        );
        assert_eq!(
            classify(
                None,
                Some("application/x-www-form-urlencoded; charset=utf-8"),
                b"QueueUrl=x&Action=SendMessage"
            ),
            Service::Sqs
        );
        // S3: a PUT of any bytes, a form-looking body without an Action, another target.
        assert_eq!(
            classify(None, Some("application/octet-stream"), b"Action=x"),
            Service::S3
        );
        assert_eq!(
            classify(None, Some("application/x-www-form-urlencoded"), b"a=b"),
            Service::S3
        );
        assert_eq!(
            classify(Some("secretsmanager.GetSecretValue"), None, b""),
            Service::S3
        );
    }

    #[test]
    fn each_fault_refuses_only_its_service() {
        let none = Faults::default();
        for n in 0..6 {
            assert_eq!(decide(none, Service::Sqs, n), Decision::Forward);
            assert_eq!(decide(none, Service::S3, n), Decision::Forward);
        }
        let sqs_down = Faults {
            sqs: SqsFault::RefuseAll,
            s3: S3Fault::None,
        };
        assert_eq!(
            decide(sqs_down, Service::Sqs, 7),
            Decision::Refuse(Refusal::SqsUnavailable)
        );
        assert_eq!(decide(sqs_down, Service::S3, 7), Decision::Forward);
        let s3_down = Faults {
            sqs: SqsFault::None,
            s3: S3Fault::Refuse,
        };
        assert_eq!(
            decide(s3_down, Service::S3, 0),
            Decision::Refuse(Refusal::S3SlowDown)
        );
        assert_eq!(decide(s3_down, Service::Sqs, 2), Decision::Forward);
    }

    #[test]
    fn throttling_refuses_exactly_a_third() {
        let f = Faults {
            sqs: SqsFault::ThrottleThird,
            s3: S3Fault::None,
        };
        let throttled: Vec<u64> = (0..9)
            .filter(|&n| decide(f, Service::Sqs, n) != Decision::Forward)
            .collect();
        assert_eq!(throttled, vec![2, 5, 8]);
        assert_eq!(decide(f, Service::S3, 2), Decision::Forward);
    }

    #[test]
    fn refusals_are_shaped_as_aws_sends_them() {
        let (status, headers, body) = Refusal::SqsThrottled.answer();
        assert_eq!(status, 400);
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        // What the edge reads (edge/src/sqs.rs parse_response, flow::is_throttling).
        assert_eq!(v["__type"], "com.amazonaws.sqs#RequestThrottled");
        assert!(headers.contains(&("x-amzn-query-error", "RequestThrottled;Sender")));
        let (status, _, body) = Refusal::SqsUnavailable.answer();
        assert_eq!(status, 503);
        assert!(body.contains("#ServiceUnavailable"));
        let (status, _, body) = Refusal::S3SlowDown.answer();
        assert_eq!(status, 503);
        assert!(body.contains("<Code>SlowDown</Code>"), "{body}");
    }

    #[tokio::test]
    async fn forwards_and_refuses_over_http() {
        // moto's stand-in: an upstream that echoes the method, path and body.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let echo = crate::process::serve_http(listener, (), |req: Request<Incoming>, ()| async {
            let line = format!("{} {}", req.method(), req.uri());
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let mut text = line.into_bytes();
            text.extend_from_slice(&body);
            response(200, &[("x-echo".into(), b"1".to_vec())], Bytes::from(text))
        });
        let proxy = FaultProxy::start(&upstream).await.unwrap();
        let http = reqwest::Client::new();
        let put = |path: &str| {
            http.put(format!("{}{path}", proxy.url))
                .body("bytes")
                .send()
        };
        let sqs = || {
            http.post(format!("{}/", proxy.url))
                .header("x-amz-target", "AmazonSQS.SendMessage")
                .body("{}")
                .send()
        };
        let a = put("/bucket/raw/k?x=1").await.unwrap();
        assert_eq!(a.status(), 200);
        assert_eq!(a.headers()["x-echo"], "1");
        assert_eq!(a.text().await.unwrap(), "PUT /bucket/raw/k?x=1bytes");
        proxy.set_s3(S3Fault::Refuse);
        let a = put("/bucket/raw/k").await.unwrap();
        assert_eq!(a.status(), 503);
        assert!(a.text().await.unwrap().contains("SlowDown"));
        assert_eq!(sqs().await.unwrap().status(), 200);
        proxy.set_s3(S3Fault::None);
        proxy.set_sqs(SqsFault::RefuseAll);
        assert_eq!(sqs().await.unwrap().status(), 503);
        proxy.set_sqs(SqsFault::ThrottleThird);
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(sqs().await.unwrap().status().as_u16());
        }
        // SQS requests n = 0 and 1 came before: n = 2 is the third, throttled.
        assert_eq!(statuses, vec![400, 200, 200]);
        assert_eq!(
            proxy.counts(),
            CountsNow {
                sqs_forwarded: 3,
                sqs_refused: 1,
                sqs_throttled: 1,
                s3_forwarded: 1,
                s3_refused: 1,
                upstream_errors: 0,
            }
        );
        echo.abort();
    }
}
