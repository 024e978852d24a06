//! The drainer's logic against in-memory fakes of the spool and the queue.

use std::collections::BTreeMap;
use std::sync::Mutex;

use hookvault_core::envelope::{Body, Envelope, ENVELOPE_VERSION};
use hookvault_core::{KeySlot, Scheme};

use super::*;
use crate::store::Page;

/// An in-memory spool: keys in order, pages of `page` keys, and a switch to refuse
/// deletes.
#[derive(Default)]
struct FakeSpool {
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    page: usize,
    refuse_delete: bool,
    calls: Mutex<Vec<String>>,
}

impl FakeSpool {
    fn with(objects: &[(&str, Vec<u8>)]) -> Self {
        FakeSpool {
            objects: Mutex::new(
                objects
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect(),
            ),
            page: 2,
            ..FakeSpool::default()
        }
    }

    fn keys(&self) -> Vec<String> {
        self.objects
            .lock()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn log(&self, call: String) {
        if let Ok(mut c) = self.calls.lock() {
            c.push(call);
        }
    }
}

impl Spool for FakeSpool {
    async fn list(&self, prefix: &str, token: Option<String>) -> Result<Page, StoreError> {
        self.log(format!("list {token:?}"));
        let keys: Vec<String> = self
            .keys()
            .into_iter()
            .filter(|k| k.starts_with(prefix) && token.as_ref().is_none_or(|t| k > t))
            .collect();
        let more = keys.len() > self.page;
        let keys: Vec<String> = keys.into_iter().take(self.page).collect();
        Ok(Page {
            next: more.then(|| keys.last().cloned().unwrap_or_default()),
            keys,
        })
    }

    async fn get(&self, key: &str, max_bytes: u64) -> Result<Fetched, StoreError> {
        self.log(format!("get {key}"));
        let object = self.objects.lock().ok().and_then(|o| o.get(key).cloned());
        Ok(match object {
            None => Fetched::Missing,
            Some(b) if b.len() as u64 > max_bytes => Fetched::TooLarge(b.len() as u64),
            Some(b) => Fetched::Object(b),
        })
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.log(format!("delete {key}"));
        if self.refuse_delete {
            return Err(StoreError::S3 {
                op: "DeleteObject",
                reason: "AccessDenied".into(),
            });
        }
        if let Ok(mut o) = self.objects.lock() {
            o.remove(key);
        }
        Ok(())
    }
}

/// An in-memory queue that refuses while `down`.
#[derive(Default)]
struct FakeQueue {
    sent: Mutex<Vec<Message>>,
    down: bool,
}

impl FakeQueue {
    fn sent(&self) -> Vec<Message> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Queue for FakeQueue {
    async fn send(&self, message: &Message) -> Result<String, StoreError> {
        if self.down {
            return Err(StoreError::Sqs("RequestThrottled: slow down".into()));
        }
        let mut sent = self
            .sent
            .lock()
            .map_err(|_| StoreError::Sqs("poisoned".into()))?;
        sent.push(message.clone());
        Ok(format!("m{}", sent.len()))
    }
}

fn envelope(id: &str, trace: Option<&str>) -> Envelope {
    let body = format!(r#"{{"id":"{id}","status":"succeeded"}}"#).into_bytes();
    Envelope {
        v: ENVELOPE_VERSION,
        provider: "skytells".into(),
        scheme: Scheme::Skytells,
        event_id: format!("{id}:succeeded"),
        received_at_ms: 1_764_435_600_000,
        key_id: "k1".into(),
        key_slot: KeySlot::Current,
        signature_headers: vec![("x-skytells-signature".into(), "ab".repeat(32))],
        content_type: None,
        body_sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body)),
        body_bytes: body.len() as u64,
        body: Body::Inline(body),
        trace_id: trace.map(str::to_owned),
        replay: None,
    }
}

fn key(e: &Envelope) -> String {
    format!("spool/{}/{}", e.provider, e.body_sha256)
}

fn cfg(queue_url: &str) -> DrainerConfig {
    DrainerConfig {
        bucket: "spool".into(),
        queue_url: queue_url.into(),
        max_object_bytes: 4096,
    }
}

const QUEUE: &str = "https://sqs.eu-west-1.amazonaws.com/1/events";

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .map(|rt| rt.block_on(f))
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

#[test]
fn a_sweep_sends_each_envelope_as_spooled_and_deletes_it_only_after_the_send() {
    let envelopes: Vec<Envelope> = (0..5)
        .map(|i| {
            envelope(
                &format!("pred_{i}"),
                Some("4bf92f3577b34da6a3ce929d0e0e4736"),
            )
        })
        .collect();
    let objects: Vec<(String, Vec<u8>)> = envelopes
        .iter()
        .map(|e| (key(e), e.to_json().into_bytes()))
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = objects
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let drainer = Drainer::new(FakeSpool::with(&refs), FakeQueue::default(), cfg(QUEUE));
    let summary = block_on(drainer.handle(Trigger::Sweep, None)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.queued.len(), 5, "{summary:?}");
    assert!(drainer.spool.keys().is_empty(), "the spool is empty");
    // Sent byte for byte as spooled, with the edge's attributes; no FIFO ids.
    let sent = drainer.queue.sent();
    let mut bodies: Vec<&str> = sent.iter().map(|m| m.body.as_str()).collect();
    bodies.sort();
    let mut spooled: Vec<String> = envelopes.iter().map(Envelope::to_json).collect();
    spooled.sort();
    assert_eq!(bodies, spooled);
    for m in &sent {
        assert!(m.fifo.is_none());
        assert_eq!(
            m.attributes.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            ["event_id", "provider", "TraceId", "Spooled"]
        );
        // The drainer's mark names the object it came from.
        let key = &m.attributes[3].1;
        assert!(key.starts_with("spool/skytells/"), "{key}");
    }
    // Each delete comes after its get (and the send between them).
    let calls = drainer
        .spool
        .calls
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    for (k, _) in &objects {
        let get = calls.iter().position(|c| *c == format!("get {k}"));
        let delete = calls.iter().position(|c| *c == format!("delete {k}"));
        assert!(get.is_some() && get < delete, "{calls:?}");
    }
    // Three pages of two.
    assert_eq!(calls.iter().filter(|c| c.starts_with("list")).count(), 3);
}

#[test]
fn a_failed_send_keeps_the_object_and_the_run_fails() {
    let e = envelope("pred_down", None);
    let spool = FakeSpool::with(&[(&key(&e), e.to_json().into_bytes())]);
    let queue = FakeQueue {
        down: true,
        ..FakeQueue::default()
    };
    let drainer = Drainer::new(spool, queue, cfg(QUEUE));
    let result = block_on(drainer.handle(Trigger::Keys(vec![key(&e)]), None));
    assert!(
        matches!(&result, Err(DrainError::Incomplete { failed: 1, unreadable: 0, first }) if first.contains("RequestThrottled")),
        "{result:?}"
    );
    assert_eq!(drainer.spool.keys(), [key(&e)], "still spooled");
    let calls = drainer
        .spool
        .calls
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    assert!(!calls.iter().any(|c| c.starts_with("delete")), "{calls:?}");
}

#[test]
fn a_delete_that_fails_after_the_send_leaves_the_object_for_a_harmless_repeat() {
    let e = envelope("pred_stuck", None);
    let spool = FakeSpool {
        refuse_delete: true,
        ..FakeSpool::with(&[(&key(&e), e.to_json().into_bytes())])
    };
    let drainer = Drainer::new(spool, FakeQueue::default(), cfg(QUEUE));
    assert!(block_on(drainer.handle(Trigger::Sweep, None)).is_err());
    assert!(block_on(drainer.handle(Trigger::Sweep, None)).is_err());
    // Sent twice, the same message: the archiver keeps one copy (content addressed).
    let sent = drainer.queue.sent();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], sent[1]);
    assert_eq!(drainer.spool.keys(), [key(&e)]);
}

#[test]
fn unreadable_objects_are_never_deleted_and_do_not_stop_the_rest() {
    let good = envelope("pred_good", None);
    let mut corrupt = envelope("pred_corrupt", None);
    corrupt.body_sha256 = "0".repeat(64);
    let good_key = key(&good);
    let objects = [
        ("spool/skytells/0-not-json", b"not an envelope".to_vec()),
        ("spool/skytells/1-not-utf8", vec![0xff, 0xfe, b'{']),
        ("spool/skytells/2-corrupt", corrupt.to_json().into_bytes()),
        ("spool/skytells/3-too-large", vec![b' '; 5000]),
        (good_key.as_str(), good.to_json().into_bytes()),
    ];
    let drainer = Drainer::new(FakeSpool::with(&objects), FakeQueue::default(), cfg(QUEUE));
    let result = block_on(drainer.handle(Trigger::Sweep, None));
    assert!(
        matches!(
            &result,
            Err(DrainError::Incomplete {
                failed: 0,
                unreadable: 4,
                ..
            })
        ),
        "{result:?}"
    );
    let mut left = drainer.spool.keys();
    left.sort();
    assert_eq!(
        left,
        [
            "spool/skytells/0-not-json",
            "spool/skytells/1-not-utf8",
            "spool/skytells/2-corrupt",
            "spool/skytells/3-too-large"
        ]
    );
    assert_eq!(drainer.queue.sent().len(), 1, "the good one still went");
    let calls = drainer
        .spool
        .calls
        .lock()
        .map(|c| c.clone())
        .unwrap_or_default();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("delete")).count(),
        1,
        "{calls:?}"
    );
}

#[test]
fn a_fifo_queue_gets_the_edges_group_and_deduplication_ids() {
    let e = envelope("pred_fifo", None);
    let spool = FakeSpool::with(&[(&key(&e), e.to_json().into_bytes())]);
    let drainer = Drainer::new(
        spool,
        FakeQueue::default(),
        cfg("https://sqs.eu-west-1.amazonaws.com/1/events.fifo"),
    );
    let summary = block_on(drainer.handle(Trigger::Keys(vec![key(&e)]), None))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(summary.queued, ["pred_fifo:succeeded"]);
    let sent = drainer.queue.sent();
    assert_eq!(sent[0].fifo, Some((e.group_id(), e.dedup_id())));
}

#[test]
fn a_key_already_drained_is_gone_and_a_past_deadline_stops_a_sweep() {
    let e = envelope("pred_gone", None);
    let drainer = Drainer::new(
        FakeSpool::with(&[(&key(&e), e.to_json().into_bytes())]),
        FakeQueue::default(),
        cfg(QUEUE),
    );
    let summary = block_on(drainer.handle(Trigger::Keys(vec!["spool/skytells/none".into()]), None))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((summary.gone, summary.queued.len()), (1, 0));
    let summary = block_on(drainer.handle(Trigger::Sweep, Some(Instant::now())))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(summary.stopped_at_deadline);
    assert_eq!(drainer.spool.keys(), [key(&e)], "left for the next run");
}
