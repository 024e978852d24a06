//! The submission under a key: claim the key with a `pending` record, call the provider
//! once, keep or forget the answer; or wait for the request that holds the key, and replay
//! its answer ([`Flow::run`]). It sees the store only through [`RecordStore`] and the time
//! only through [`Clock`], so its races are unit tests over [`super::MemoryStore`].

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::key::Scope;
use super::record::{is_final, judge, replay, Record, Verdict};
use super::store::{Condition, Deleted, Put, RecordStore, StoreError};
use crate::error::ApiError;
use crate::Reply;

/// How often a `pending` record is read again while waiting for it.
pub const POLL: Duration = Duration::from_millis(200);
/// How long a request waits for a concurrent one with the same key (less if the deadline
/// is nearer).
pub const PENDING_WAIT: Duration = Duration::from_secs(5);
/// Added to the owner's deadline for its lease: time to write its answer.
pub const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// The lease when the invocation reports no deadline (the local emulator): Lambda's
/// longest timeout, so no running invocation loses its record.
pub const LEASE_WITHOUT_DEADLINE: Duration = Duration::from_secs(15 * 60);

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The wall clock the records' windows and leases are written in.
pub trait Clock: Send + Sync {
    /// Unix milliseconds now.
    fn now_ms(&self) -> u64;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
}

/// The flow's waits and leases.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// [`POLL`].
    pub poll: Duration,
    /// [`PENDING_WAIT`].
    pub pending_wait: Duration,
    /// [`LEASE_MARGIN`].
    pub lease_margin: Duration,
    /// [`LEASE_WITHOUT_DEADLINE`].
    pub lease_without_deadline: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll: POLL,
            pending_wait: PENDING_WAIT,
            lease_margin: LEASE_MARGIN,
            lease_without_deadline: LEASE_WITHOUT_DEADLINE,
        }
    }
}

/// Submissions under idempotency keys, their records in `store`.
#[derive(Debug)]
pub struct Flow<'a, S, C = SystemClock> {
    /// Where the records are.
    pub store: &'a S,
    /// The wall clock.
    pub clock: C,
    /// Waits and leases.
    pub timing: Timing,
}

impl<'a, S: RecordStore> Flow<'a, S> {
    /// The flow over `store` with the system clock and the documented timing.
    pub fn new(store: &'a S) -> Self {
        Flow {
            store,
            clock: SystemClock,
            timing: Timing::default(),
        }
    }
}

fn reused() -> ApiError {
    ApiError::new(
        422,
        "idempotency_key_reused",
        "this Idempotency-Key was used with a different request body in the last 24 hours: send the same body again, or use a new key",
    )
}

fn in_progress() -> ApiError {
    ApiError {
        retry_after: Some("1".into()),
        ..ApiError::new(
            409,
            "idempotency_key_in_progress",
            "a request with this Idempotency-Key is still being processed: retry after a second with the same key and body",
        )
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "{what}");
    ApiError::new(
        503,
        "idempotency_unavailable",
        "the Idempotency-Key record could not be read or written, so nothing was submitted; retry later with the same key",
    )
}

fn store_unavailable(e: StoreError) -> ApiError {
    unavailable(e.what, e.detail)
}

impl<S: RecordStore, C: Clock> Flow<'_, S, C> {
    /// Runs `submit` at most once for the key of `scope` and the request whose body
    /// hashes to `request_sha256`, or answers from its record: see the module
    /// [`crate::idempotency`]. `submit` gets the provider's `Idempotency-Key`.
    pub async fn run<F, Fut>(
        &self,
        scope: &Scope,
        request_sha256: &str,
        deadline: Option<Instant>,
        submit: F,
    ) -> Result<Reply, ApiError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<Reply, ApiError>>,
    {
        let t = self.timing;
        let wait = deadline.map_or(t.pending_wait, |d| {
            t.pending_wait
                .min(d.saturating_duration_since(Instant::now()))
        });
        let wait_until = Instant::now() + wait;
        // This request's token in its pending records: it knows its own claim by it.
        let owner = uuid::Uuid::new_v4().simple().to_string();
        let mut condition = Condition::Absent;
        loop {
            let now = self.clock.now_ms();
            let lease = deadline.map_or(t.lease_without_deadline, |d| {
                d.saturating_duration_since(Instant::now()) + t.lease_margin
            });
            let pending =
                Record::pending(scope, request_sha256, now, now + lease.as_millis() as u64)
                    .owned_by(&owner);
            if let Put::Written(etag) = self.put_record(scope, &pending, &condition).await? {
                return self.run_claimed(scope, &pending, etag, submit).await;
            }
            // Someone else holds the key, or the record changed since it was read.
            condition = loop {
                match self.get_record(scope).await? {
                    None => break Condition::Absent,
                    Some((record, etag)) => {
                        match judge(record, request_sha256, &owner, self.clock.now_ms()) {
                            Verdict::Replace => break Condition::Match(etag),
                            Verdict::Mine => {
                                tracing::info!(
                                    idempotency = scope.short(),
                                    "the claim was written though its answer was lost"
                                );
                                return self.run_claimed(scope, &pending, etag, submit).await;
                            }
                            Verdict::Mismatch => return Err(reused()),
                            Verdict::Replay(r) => {
                                tracing::info!(
                                    idempotency = scope.short(),
                                    status = r.status,
                                    "idempotent replay"
                                );
                                return Ok(replay(r));
                            }
                            Verdict::Wait => {}
                        }
                    }
                }
                if Instant::now() + t.poll > wait_until {
                    tracing::info!(idempotency = scope.short(), "the key is still pending: 409");
                    return Err(in_progress());
                }
                tokio::time::sleep(t.poll).await;
            };
            if Instant::now() >= wait_until {
                return Err(in_progress());
            }
            if matches!(condition, Condition::Absent) {
                // It was deleted (a retry-able failure) just now: claim it again, after a
                // pause so that racing requests do not spin.
                tokio::time::sleep(t.poll / 4).await;
            }
        }
    }

    /// The key is ours (`pending`, ETag `etag`): call the provider once, then keep the
    /// answer, or forget the key if the caller may retry.
    async fn run_claimed<F, Fut>(
        &self,
        scope: &Scope,
        pending: &Record,
        etag: String,
        submit: F,
    ) -> Result<Reply, ApiError>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<Reply, ApiError>>,
    {
        let outcome = submit(scope.provider_key()).await;
        let (reply, keep) = match &outcome {
            Ok(r) => (r.clone(), true),
            Err(e) => (Reply::from(e.clone()), is_final(e.status, &e.code)),
        };
        let done = keep.then(|| pending.done(&reply));
        match done {
            Some(Ok(done)) => {
                match self.put_record(scope, &done, &Condition::Match(etag)).await {
                    Ok(Put::Written(_)) => {
                        tracing::info!(
                            idempotency = scope.short(),
                            status = reply.status,
                            "answer kept for the idempotency key"
                        );
                    }
                    Ok(Put::Taken | Put::Missing) => tracing::warn!(
                        idempotency = scope.short(),
                        "the idempotency record was taken over before the answer was kept"
                    ),
                    // Logged by put_record; the key stays pending until its lease ends.
                    Err(_) => {}
                }
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "the answer is not JSON: the idempotency key is forgotten");
                self.delete_record(scope, &etag).await;
            }
            None => {
                tracing::info!(
                    idempotency = scope.short(),
                    status = reply.status,
                    "retry-able answer: the idempotency key is forgotten"
                );
                self.delete_record(scope, &etag).await;
            }
        }
        outcome
    }

    /// Writes `record` under `condition`.
    async fn put_record(
        &self,
        scope: &Scope,
        record: &Record,
        condition: &Condition,
    ) -> Result<Put, ApiError> {
        let body = serde_json::to_vec(record)
            .map_err(|e| unavailable("idempotency record not serialisable", e))?;
        self.store
            .put(&scope.object_key, body, condition)
            .await
            .map_err(store_unavailable)
    }

    /// The record and its ETag; `None` if there is none.
    async fn get_record(&self, scope: &Scope) -> Result<Option<(Record, String)>, ApiError> {
        let Some(stored) = self
            .store
            .get(&scope.object_key)
            .await
            .map_err(store_unavailable)?
        else {
            return Ok(None);
        };
        let record = Record::from_json(&stored.body)
            .map_err(|e| unavailable("idempotency record unreadable", e))?;
        Ok(Some((record, stored.etag)))
    }

    /// Deletes the record if it is still `etag`; failures are logged (the record then
    /// stays pending until its lease ends).
    async fn delete_record(&self, scope: &Scope, etag: &str) {
        match self.store.delete(&scope.object_key, etag).await {
            Ok(Deleted::Gone) => {}
            Ok(Deleted::Changed) => tracing::info!(
                idempotency = scope.short(),
                "the idempotency record had already changed"
            ),
            Err(e) => tracing::error!(
                error = %e.detail,
                idempotency = scope.short(),
                "{}: the key stays pending until its lease ends",
                e.what
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The races, over [`MemoryStore`] with a clock the test moves.
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use tokio::sync::Notify;

    use super::*;
    use crate::idempotency::key::tests::{caller, key};
    use crate::idempotency::record::State;
    use crate::idempotency::MemoryStore;

    const T0: u64 = 1_795_626_000_000;

    #[derive(Clone)]
    struct TestClock(Arc<AtomicU64>);

    impl Clock for TestClock {
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    impl TestClock {
        fn advance(&self, ms: u64) {
            self.0.fetch_add(ms, Ordering::SeqCst);
        }
    }

    fn flow(store: &MemoryStore, wait_ms: u64) -> (Flow<'_, MemoryStore, TestClock>, TestClock) {
        let clock = TestClock(Arc::new(AtomicU64::new(T0)));
        let f = Flow {
            store,
            clock: clock.clone(),
            timing: Timing {
                poll: Duration::from_millis(10),
                pending_wait: Duration::from_millis(wait_ms),
                lease_margin: Duration::ZERO,
                lease_without_deadline: Duration::from_secs(60),
            },
        };
        (f, clock)
    }

    fn scope() -> Scope {
        Scope::new(&caller("caller-key-a-0123456789"), &key("order-1"))
    }

    fn created(id: &str) -> Reply {
        Reply {
            status: 201,
            headers: vec![("location".into(), format!("/predictions/{id}"))],
            body: format!(r#"{{"id":"{id}","status":"starting"}}"#),
        }
    }

    fn unreachable() -> ApiError {
        ApiError::new(503, "provider_unreachable", "down")
    }

    /// The stand-in for the provider: counts its calls and the keys they carried.
    #[derive(Default)]
    struct Provider {
        keys: Mutex<Vec<String>>,
    }

    impl Provider {
        fn calls(&self) -> usize {
            self.keys.lock().unwrap().len()
        }

        /// A submit that answers `answer` once `gate` opens.
        fn submit<'a>(
            &'a self,
            gate: Option<&'a Notify>,
            answer: Result<Reply, ApiError>,
        ) -> impl FnOnce(String) -> std::pin::Pin<Box<dyn Future<Output = Result<Reply, ApiError>> + 'a>>
        {
            move |provider_key| {
                self.keys.lock().unwrap().push(provider_key);
                Box::pin(async move {
                    if let Some(g) = gate {
                        // Bounded, so that a broken flow fails the test instead of hanging it.
                        let opened = tokio::time::timeout(Duration::from_secs(5), g.notified());
                        assert!(opened.await.is_ok(), "the gate never opened");
                    }
                    answer
                })
            }
        }
    }

    fn record(store: &MemoryStore) -> Option<Record> {
        store
            .object(&scope().object_key)
            .map(|s| Record::from_json(&s.body).unwrap())
    }

    /// Waits (real time) until the key has a record in `state`.
    async fn until_state(store: &MemoryStore, state: State) {
        for _ in 0..500 {
            if record(store).is_some_and(|r| r.state == state) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("the record never became {state:?}");
    }

    fn replayed(r: &Reply) -> bool {
        r.headers
            .iter()
            .any(|(n, v)| n == "idempotent-replayed" && v == "true")
    }

    #[tokio::test]
    async fn two_requests_with_one_key_call_the_provider_once() {
        let store = MemoryStore::new();
        let (f, _) = flow(&store, 2000);
        let p = Provider::default();
        let gate = Notify::new();
        let s = scope();
        let (a, b, ()) = tokio::join!(
            f.run(
                &s,
                "req",
                None,
                p.submit(Some(&gate), Ok(created("pred_1")))
            ),
            f.run(
                &s,
                "req",
                None,
                p.submit(Some(&gate), Ok(created("pred_2")))
            ),
            async {
                until_state(&store, State::Pending).await;
                // The loser reads the pending record a few times before the answer comes.
                tokio::time::sleep(Duration::from_millis(50)).await;
                gate.notify_one();
            }
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(p.calls(), 1, "one provider call for one key");
        assert_eq!(a.body, b.body, "both get the one answer");
        assert_eq!(a.body, created("pred_1").body);
        assert!(!replayed(&a) && replayed(&b), "{a:?} {b:?}");
        assert_eq!(record(&store).unwrap().state, State::Done);
        assert_eq!(*p.keys.lock().unwrap(), vec![s.provider_key()]);
    }

    #[tokio::test]
    async fn a_request_still_running_past_the_wait_is_409_and_another_body_422() {
        let store = MemoryStore::new();
        let (f, _) = flow(&store, 100);
        let p = Provider::default();
        let gate = Notify::new();
        let s = scope();
        let (a, (b, c), ()) = tokio::join!(
            f.run(
                &s,
                "req",
                None,
                p.submit(Some(&gate), Ok(created("pred_1")))
            ),
            async {
                until_state(&store, State::Pending).await;
                let started = Instant::now();
                let b = f
                    .run(&s, "req", None, p.submit(None, Ok(created("x"))))
                    .await;
                assert!(started.elapsed() >= Duration::from_millis(80), "it waited");
                let c = f
                    .run(&s, "other", None, p.submit(None, Ok(created("x"))))
                    .await;
                (b, c)
            },
            async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                gate.notify_one();
            }
        );
        let b = b.unwrap_err();
        assert_eq!(
            (b.status, b.code.as_str()),
            (409, "idempotency_key_in_progress")
        );
        assert_eq!(b.retry_after.as_deref(), Some("1"));
        let c = c.unwrap_err();
        assert_eq!((c.status, c.code.as_str()), (422, "idempotency_key_reused"));
        assert_eq!(a.unwrap().status, 201);
        assert_eq!(p.calls(), 1);
        // Answered, another body is still refused; the same body is replayed.
        let d = f
            .run(&s, "other", None, p.submit(None, Ok(created("x"))))
            .await;
        assert_eq!(d.unwrap_err().status, 422);
        let e = f
            .run(&s, "req", None, p.submit(None, Ok(created("x"))))
            .await;
        assert!(replayed(&e.unwrap()));
        assert_eq!(p.calls(), 1);
    }

    #[tokio::test]
    async fn a_lease_that_ends_is_taken_over_and_the_late_owner_keeps_nothing() {
        let store = MemoryStore::new();
        let (f, clock) = flow(&store, 2000);
        let p = Provider::default();
        let (gate_a, gate_b) = (Notify::new(), Notify::new());
        let s = scope();
        // A's invocation has 1 s left: its lease ends at T0 + 1 s.
        let deadline = Some(Instant::now() + Duration::from_secs(1));
        let (a, b, ()) = tokio::join!(
            f.run(
                &s,
                "req",
                deadline,
                p.submit(Some(&gate_a), Ok(created("pred_a")))
            ),
            async {
                until_state(&store, State::Pending).await;
                let lease = record(&store).unwrap().lease_until_ms.unwrap();
                assert!((T0..=T0 + 1000).contains(&lease), "{lease}");
                // Before the lease ends, B would wait; after it, B takes the key over.
                clock.advance(1001);
                f.run(
                    &s,
                    "req",
                    None,
                    p.submit(Some(&gate_b), Ok(created("pred_b"))),
                )
                .await
            },
            async {
                until_state(&store, State::Pending).await;
                // B holds the key now (a second pending record, B's).
                while p.calls() < 2 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                gate_b.notify_one();
                until_state(&store, State::Done).await;
                // A, whose instance was presumed dead, answers late.
                gate_a.notify_one();
            }
        );
        assert_eq!(
            a.unwrap().body,
            created("pred_a").body,
            "A's caller gets A's answer"
        );
        assert_eq!(b.unwrap().body, created("pred_b").body);
        assert_eq!(p.calls(), 2);
        let keys = p.keys.lock().unwrap().clone();
        assert_eq!(
            keys,
            vec![s.provider_key(), s.provider_key()],
            "one provider key"
        );
        // A's `If-Match` on its own ETag was refused: the record is B's.
        let r = record(&store).unwrap();
        assert_eq!(r.response.unwrap().body.get(), created("pred_b").body);
        let c = f
            .run(&s, "req", None, p.submit(None, Ok(created("x"))))
            .await
            .unwrap();
        assert!(replayed(&c) && c.body == created("pred_b").body);
    }

    #[tokio::test]
    async fn a_claim_whose_write_answer_is_lost_is_known_as_the_requests_own() {
        let store = MemoryStore::new();
        let (f, _) = flow(&store, 100);
        let p = Provider::default();
        let s = scope();
        // The claim is written, but its answer is lost and the retried write gets 412:
        // the record read back carries this request's token, so the key is its own.
        store.lose_next_put_answer();
        let a = f
            .run(&s, "req", None, p.submit(None, Ok(created("pred_1"))))
            .await;
        assert_eq!(a.unwrap().status, 201, "not 409 for its own claim");
        assert_eq!(p.calls(), 1);
        assert_eq!(record(&store).unwrap().state, State::Done);
        let b = f
            .run(&s, "req", None, p.submit(None, Ok(created("x"))))
            .await
            .unwrap();
        assert!(replayed(&b) && b.body == created("pred_1").body);
        assert_eq!(p.calls(), 1);
    }

    #[tokio::test]
    async fn an_answer_whose_write_reply_is_lost_is_kept_all_the_same() {
        let store = MemoryStore::new();
        let (f, _) = flow(&store, 100);
        let p = Provider::default();
        let s = scope();
        let a = f
            .run(&s, "req", None, |k| {
                // The `done` write is made; its answer is lost and the retry gets 412.
                store.lose_next_put_answer();
                p.submit(None, Ok(created("pred_1")))(k)
            })
            .await;
        assert_eq!(a.unwrap().status, 201);
        let b = f
            .run(&s, "req", None, p.submit(None, Ok(created("x"))))
            .await
            .unwrap();
        assert!(replayed(&b) && b.body == created("pred_1").body);
        assert_eq!(p.calls(), 1);
    }

    #[tokio::test]
    async fn a_retry_able_answer_is_deleted_under_a_waiter_which_then_claims_the_key() {
        let store = MemoryStore::new();
        let (f, _) = flow(&store, 2000);
        let p = Provider::default();
        let gate = Notify::new();
        let s = scope();
        let (a, b, ()) = tokio::join!(
            f.run(&s, "req", None, p.submit(Some(&gate), Err(unreachable()))),
            async {
                until_state(&store, State::Pending).await;
                f.run(&s, "req", None, p.submit(None, Ok(created("pred_2"))))
                    .await
            },
            async {
                until_state(&store, State::Pending).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                gate.notify_one();
            }
        );
        assert_eq!(a.unwrap_err().status, 503, "A's caller may retry");
        let b = b.unwrap();
        assert!(!replayed(&b) && b.body == created("pred_2").body, "{b:?}");
        assert_eq!(p.calls(), 2);
        assert_eq!(store.deletes.load(Ordering::SeqCst), 1);
        let r = record(&store).unwrap();
        assert_eq!(r.response.unwrap().body.get(), created("pred_2").body);
    }

    #[tokio::test]
    async fn a_late_delete_after_a_takeover_leaves_the_new_owners_record() {
        let store = MemoryStore::new();
        let (f, clock) = flow(&store, 2000);
        let p = Provider::default();
        let (gate_a, gate_b) = (Notify::new(), Notify::new());
        let s = scope();
        let deadline = Some(Instant::now() + Duration::from_secs(1));
        let (a, b, ()) = tokio::join!(
            f.run(
                &s,
                "req",
                deadline,
                p.submit(Some(&gate_a), Err(unreachable()))
            ),
            async {
                until_state(&store, State::Pending).await;
                clock.advance(1001);
                f.run(
                    &s,
                    "req",
                    None,
                    p.submit(Some(&gate_b), Ok(created("pred_b"))),
                )
                .await
            },
            async {
                while p.calls() < 2 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                // A forgets the key while B holds it: A's `If-Match` delete is refused.
                gate_a.notify_one();
                tokio::time::sleep(Duration::from_millis(30)).await;
                assert_eq!(record(&store).unwrap().state, State::Pending, "B's claim");
                gate_b.notify_one();
            }
        );
        assert_eq!(a.unwrap_err().status, 503);
        assert_eq!(b.unwrap().status, 201);
        assert_eq!(store.deletes.load(Ordering::SeqCst), 0);
        let r = record(&store).unwrap();
        assert_eq!(r.response.unwrap().body.get(), created("pred_b").body);
    }

    #[tokio::test]
    async fn a_store_that_cannot_be_read_or_written_submits_nothing() {
        let store = MemoryStore::new();
        let (f, _) = flow(&store, 100);
        let p = Provider::default();
        store.set_down(true);
        let e = f
            .run(&scope(), "req", None, p.submit(None, Ok(created("x"))))
            .await
            .unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (503, "idempotency_unavailable")
        );
        assert_eq!(p.calls(), 0);
    }

    #[tokio::test]
    async fn an_expired_record_is_replaced_whatever_its_body() {
        let store = MemoryStore::new();
        let (f, clock) = flow(&store, 100);
        let p = Provider::default();
        let s = scope();
        let a = f
            .run(&s, "req-a", None, p.submit(None, Ok(created("pred_1"))))
            .await;
        assert_eq!(a.unwrap().status, 201);
        clock.advance(WINDOW_MS);
        let b = f
            .run(&s, "req-b", None, p.submit(None, Ok(created("pred_2"))))
            .await;
        let b = b.unwrap();
        assert!(!replayed(&b) && b.body == created("pred_2").body);
        assert_eq!(p.calls(), 2);
        assert_eq!(record(&store).unwrap().created_at_ms, T0 + WINDOW_MS);
    }

    const WINDOW_MS: u64 = crate::idempotency::WINDOW.as_millis() as u64;
}
