//! [`MemoryStore`]: the [`RecordStore`] contract in memory, with the faults S3 can show
//! (an answer lost after the write was made), so the flow's races run as unit tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::store::{Condition, Deleted, Put, RecordStore, StoreError, Stored};

/// Records in a map, with S3's conditional-write rules: `If-None-Match: *` refused (412)
/// when the key exists, `If-Match` refused (412) when the ETag differs and 404 when the
/// key is gone; a delete `If-Match` likewise. Every write gets a new ETag.
#[derive(Debug, Default)]
pub struct MemoryStore {
    objects: Mutex<HashMap<String, Stored>>,
    next_etag: AtomicUsize,
    lose_next_put_answer: AtomicBool,
    down: AtomicBool,
    /// Writes accepted.
    pub puts: AtomicUsize,
    /// Deletes accepted.
    pub deletes: AtomicUsize,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next accepted write is made but its answer is lost: the client retries it, as
    /// the SDK does after a timeout, and that retry is refused with 412 (the condition no
    /// longer holds), so the caller sees [`Put::Taken`].
    pub fn lose_next_put_answer(&self) {
        self.lose_next_put_answer.store(true, Ordering::SeqCst);
    }

    /// While `down`, every call fails as an S3 outage does (503 SlowDown, a timeout).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check_up(&self, what: &'static str) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::new(what, "the memory store is down"));
        }
        Ok(())
    }

    /// The object at `key`, if any.
    pub fn object(&self, key: &str) -> Option<Stored> {
        self.lock().get(key).cloned()
    }

    /// Writes `body` at `key` unconditionally (a record left by another invocation);
    /// returns its ETag.
    pub fn insert(&self, key: &str, body: Vec<u8>) -> String {
        let etag = self.etag();
        self.lock().insert(
            key.to_owned(),
            Stored {
                body,
                etag: etag.clone(),
            },
        );
        etag
    }

    fn etag(&self) -> String {
        format!("\"{}\"", self.next_etag.fetch_add(1, Ordering::SeqCst) + 1)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Stored>> {
        // A test that panicked while holding the lock left a map that is still whole.
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RecordStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Stored>, StoreError> {
        self.check_up("GetObject (memory)")?;
        Ok(self.object(key))
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        condition: &Condition,
    ) -> Result<Put, StoreError> {
        self.check_up("PutObject (memory)")?;
        let mut objects = self.lock();
        let allowed = match (condition, objects.get(key)) {
            (Condition::Absent, None) => Ok(()),
            (Condition::Absent, Some(_)) => Err(Put::Taken),
            (Condition::Match(_), None) => Err(Put::Missing),
            (Condition::Match(want), Some(have)) if want.is_empty() || *want == have.etag => Ok(()),
            (Condition::Match(_), Some(_)) => Err(Put::Taken),
        };
        if let Err(refused) = allowed {
            return Ok(refused);
        }
        let etag = self.etag();
        objects.insert(
            key.to_owned(),
            Stored {
                body,
                etag: etag.clone(),
            },
        );
        self.puts.fetch_add(1, Ordering::SeqCst);
        if self.lose_next_put_answer.swap(false, Ordering::SeqCst) {
            return Ok(Put::Taken);
        }
        Ok(Put::Written(etag))
    }

    async fn delete(&self, key: &str, etag: &str) -> Result<Deleted, StoreError> {
        self.check_up("DeleteObject (memory)")?;
        let mut objects = self.lock();
        match objects.get(key) {
            Some(have) if etag.is_empty() || have.etag == etag => {
                objects.remove(key);
                self.deletes.fetch_add(1, Ordering::SeqCst);
                Ok(Deleted::Gone)
            }
            _ => Ok(Deleted::Changed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conditional_writes_follow_s3() {
        let s = MemoryStore::new();
        let k = "idempotency/a.json";
        assert_eq!(s.get(k).await.unwrap(), None);
        let Put::Written(e1) = s.put(k, b"1".to_vec(), &Condition::Absent).await.unwrap() else {
            panic!("the first write is accepted")
        };
        assert_eq!(
            s.put(k, b"2".to_vec(), &Condition::Absent).await.unwrap(),
            Put::Taken
        );
        assert_eq!(
            s.put(k, b"2".to_vec(), &Condition::Match("\"other\"".into()))
                .await
                .unwrap(),
            Put::Taken
        );
        let Put::Written(e2) = s
            .put(k, b"2".to_vec(), &Condition::Match(e1.clone()))
            .await
            .unwrap()
        else {
            panic!("If-Match on the current ETag is accepted")
        };
        assert_ne!(e1, e2);
        assert_eq!(s.delete(k, &e1).await.unwrap(), Deleted::Changed);
        assert_eq!(s.get(k).await.unwrap().unwrap().body, b"2");
        assert_eq!(s.delete(k, &e2).await.unwrap(), Deleted::Gone);
        assert_eq!(
            s.put(k, b"3".to_vec(), &Condition::Match(e2))
                .await
                .unwrap(),
            Put::Missing
        );
        assert_eq!(s.delete(k, "").await.unwrap(), Deleted::Changed);
    }
}
