//! Idempotent submits: `POST /predictions` with the caller's `Idempotency-Key` creates at
//! most one prediction per key and caller within 24 hours, and answers every repeat with
//! the first answer.
//!
//! **The header** follows the IETF draft "The Idempotency-Key HTTP Header Field"
//! (<https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/>) with
//! Stripe's semantics (<https://docs.stripe.com/api/idempotent_requests>): optional; a key
//! is 1 to 255 bytes of visible ASCII (0x21 to 0x7E), taken as sent (a draft-style quoted
//! string `"abc"` is not the key `abc`); a repeat with the same key and the same request
//! gets the stored answer with `Idempotent-Replayed: true`; the same key with another
//! request body is refused (422, the draft's "reused key"); a repeat while the first is
//! still running is refused (409, the draft's "concurrent request"), with `Retry-After: 1`.
//! A request refused before it reaches the provider (a bad body, a bad key) is not
//! remembered.
//!
//! **The storage** is the archive bucket; there is no database. Each key has one object,
//! `idempotency/{sha256_hex(caller_key_sha256 + "\n" + key)}.json` ([`Scope`]): the key is
//! scoped to the caller (the SHA-256 of its bearer key, [`crate::auth::Caller`]), and
//! neither the caller's key nor the idempotency key is stored, only that hash. The object
//! is a [`Record`]:
//!
//! ```json
//! {"v": 1, "key_sha256": "…", "request_sha256": "…", "state": "pending" | "done",
//!  "created_at": "2026-11-25T17:00:00Z", "created_at_ms": 1795626000000,
//!  "lease_until_ms": 1795626035000, "owner": "…",
//!  "response": {"status": 201, "headers": [["location", "…"]], "body": {…}}}
//! ```
//!
//! **The race** is settled by S3's conditional writes
//! (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html>): the
//! first request writes a `pending` record with `If-None-Match: *`, which S3 accepts for
//! exactly one writer of a key and refuses for the others with 412 Precondition Failed (or
//! 409 ConditionalRequestConflict when two writes overlap, which AWS says to retry). The
//! winner calls the provider once, with a provider `Idempotency-Key` derived from the
//! caller's ([`Scope::provider_key`]), then replaces its record, `If-Match` on its ETag,
//! with `done` and the answer. A loser reads the record: another body is 422, `done` is
//! replayed, `pending` is read again every 200 ms for up to 5 s (less if the invocation's
//! deadline is nearer), then 409. A `pending` record carrying the request's own `owner`
//! token is its own claim, written though the answer to the write was lost (the SDK's
//! retry got 412): the request goes on as the winner with that record's ETag.
//!
//! **Retry-able failures are forgotten.** When the answer is one the caller may retry (429,
//! a 5xx such as the provider being unreachable or our API key being refused), the winner
//! deletes its record (`If-Match` on its ETag), so the same key can go again; the provider
//! gets the same derived key again and, if it honours it, does not create a second
//! prediction. Any other answer (2xx, 4xx) is kept ([`is_final`]).
//!
//! **Expiry.** A record older than 24 hours ([`WINDOW`]) is expired: the next request with
//! its key replaces it with a conditional write on its ETag (`If-Match`), so two racers
//! cannot both win. The bucket's lifecycle rule deletes `idempotency/` objects after one
//! day, but S3 lifecycle works in whole days and runs late; the 24-hour guarantee rests on
//! this check, not on the rule. A `pending` record whose owner's invocation has ended (its
//! `lease_until_ms`, the owner's deadline plus a margin, has passed: the instance died or
//! could not write its answer) is abandoned and taken over the same way.
//!
//! **The code**, one module per part: [`key`] (the header, [`IdempotencyKey`], [`Scope`]),
//! [`record`] (the [`Record`], [`judge`], [`is_final`]), [`store`] (the [`RecordStore`]
//! trait and [`S3Store`]), [`memory`] ([`MemoryStore`], the same contract in memory) and
//! [`flow`] (the claim, wait and replay loop, [`Flow`]). The flow sees S3 only through
//! the trait, and the time only through a [`Clock`], so its races (two requests with one
//! key, a lease that ends, a write whose answer is lost, a delete under a waiter) are unit
//! tests over the memory store.

pub mod flow;
pub mod key;
pub mod memory;
pub mod record;
pub mod store;

use std::time::Instant;

pub use flow::{
    now_ms, Clock, Flow, SystemClock, Timing, LEASE_MARGIN, LEASE_WITHOUT_DEADLINE, PENDING_WAIT,
    POLL,
};
pub use key::{from_headers, sha256_hex, IdempotencyKey, Scope, HEADER, MAX_KEY_LEN, PREFIX};
pub use memory::MemoryStore;
pub use record::{
    is_final, judge, replay, Record, RecordError, State, StoredResponse, Verdict, RECORD_VERSION,
    REPLAYED_HEADER, WINDOW,
};
pub use store::{
    Condition, Deleted, Put, RecordStore, S3Store, StoreError, Stored, MAX_RECORD_BYTES,
};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::submit::SubmitRequest;
use crate::{Api, Reply};

impl Api {
    /// Submits `req` (whose exact bytes are `body`) at most once for `caller`'s `key`:
    /// see the module's documentation.
    pub async fn submit_once(
        &self,
        caller: &Caller,
        key: &IdempotencyKey,
        req: &SubmitRequest,
        body: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Reply, ApiError> {
        let store = S3Store {
            s3: &self.s3,
            bucket: &self.cfg.bucket,
        };
        let scope = Scope::new(caller, key);
        let who = crate::ledger::Submitter {
            caller,
            idempotency_scope: Some(&scope.key_sha256),
        };
        let who = &who;
        Flow::new(&store)
            .run(
                &scope,
                &sha256_hex(body),
                deadline,
                |provider_key| async move { self.submit(req, &provider_key, who, deadline).await },
            )
            .await
    }
}
