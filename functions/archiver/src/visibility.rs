//! When a record that failed comes back (issue 22, item 2).
//!
//! A record reported in `batchItemFailures` stays on the queue and comes back when its
//! visibility timeout ends. Left alone, that is the queue's `VisibilityTimeout` (the
//! template's: 130 s, which must be at least the function's timeout,
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html>). Before
//! reporting it, the archiver sets the record's own with `ChangeMessageVisibility`, which
//! counts the new timeout from the call
//! (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html>,
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html>),
//! to [`retry_in`]: seconds, doubling with each receive, never past the output window's end
//! plus one second, so the last try lands right after the deadline and records
//! `OUTPUT_EXPIRED` there.
//!
//! The queue URL comes from the record's `eventSourceARN`
//! (`arn:aws:sqs:{region}:{account}:{name}` → `https://sqs.{region}.amazonaws.com/{account}/{name}`,
//! the form SQS accepts in every region). A failed change is logged and the queue's own
//! timeout applies.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The longest [`retry_in`] waits after a failure, seconds: the back-off's cap.
pub const MAX_RETRY_IN_SECS: u64 = 30;

/// Why a visibility change failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ChangeMessageVisibility failed: {0}")]
pub struct VisibilityError(pub String);

/// A boxed future of a visibility change.
pub type Changing<'a> = Pin<Box<dyn Future<Output = Result<(), VisibilityError>> + Send + 'a>>;

/// Sets a received message's visibility timeout: SQS's `ChangeMessageVisibility`, or a
/// fake in tests.
pub trait Visibility: std::fmt::Debug + Send + Sync {
    /// Makes the message of `receipt_handle` on `queue_url` visible again in `secs`
    /// seconds (0 to 43 200, SQS's range).
    fn change<'a>(&'a self, queue_url: &'a str, receipt_handle: &'a str, secs: i32)
        -> Changing<'a>;
}

/// SQS's `ChangeMessageVisibility`.
#[derive(Debug, Clone)]
pub struct SqsVisibility(pub aws_sdk_sqs::Client);

impl Visibility for SqsVisibility {
    fn change<'a>(
        &'a self,
        queue_url: &'a str,
        receipt_handle: &'a str,
        secs: i32,
    ) -> Changing<'a> {
        Box::pin(async move {
            self.0
                .change_message_visibility()
                .queue_url(queue_url)
                .receipt_handle(receipt_handle)
                .visibility_timeout(secs)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| VisibilityError(hookvault_aws::sdk_error::short(&e)))
        })
    }
}

/// The queue URL of an SQS queue ARN (`arn:{partition}:sqs:{region}:{account}:{name}`);
/// `None` for anything else. The China partition's host ends in `.amazonaws.com.cn`.
pub fn queue_url(arn: &str) -> Option<String> {
    let mut parts = arn.split(':');
    let (arn_, partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (region, account, name) = (parts.next()?, parts.next()?, parts.next()?);
    if arn_ != "arn" || service != "sqs" || parts.next().is_some() {
        return None;
    }
    let ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
    };
    if !ok(region) || !ok(account) || !ok(name) {
        return None;
    }
    let suffix = if partition == "aws-cn" {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    Some(format!("https://sqs.{region}.{suffix}/{account}/{name}"))
}

/// When a record that failed on its `receive_count`-th receive (1 for the first) should
/// come back: 1 s, 2 s, 4 s, … doubling, at most [`MAX_RETRY_IN_SECS`]; and, while its
/// output window is open (`until_expiry`: the time left before `output_expires_at`), no
/// later than one second after the window closes.
pub fn retry_in(receive_count: u32, until_expiry: Option<Duration>) -> Duration {
    let exp = receive_count.saturating_sub(1).min(16);
    let backoff = Duration::from_secs((1u64 << exp).min(MAX_RETRY_IN_SECS));
    match until_expiry.filter(|d| !d.is_zero()) {
        Some(left) => backoff.min(Duration::from_secs(left.as_secs() + 1)),
        None => backoff,
    }
}

/// A fake that records each change (tests).
#[derive(Debug, Default)]
pub struct Recorded {
    /// (queue URL, receipt handle, seconds) of each change.
    pub changes: std::sync::Mutex<Vec<(String, String, i32)>>,
    /// When set, every change fails with this message.
    pub fail_with: Option<String>,
    /// How long each change takes (SQS's round trip); recorded once done.
    pub delay: Duration,
}

impl Visibility for Recorded {
    fn change<'a>(
        &'a self,
        queue_url: &'a str,
        receipt_handle: &'a str,
        secs: i32,
    ) -> Changing<'a> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            if let Ok(mut c) = self.changes.lock() {
                c.push((queue_url.to_owned(), receipt_handle.to_owned(), secs));
            }
            match &self.fail_with {
                Some(m) => Err(VisibilityError(m.clone())),
                None => Ok(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_from_arns() {
        assert_eq!(
            queue_url("arn:aws:sqs:eu-west-1:123456789012:hv-events").as_deref(),
            Some("https://sqs.eu-west-1.amazonaws.com/123456789012/hv-events")
        );
        assert_eq!(
            queue_url("arn:aws-cn:sqs:cn-north-1:123456789012:q").as_deref(),
            Some("https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q")
        );
        for bad in [
            "",
            "arn:aws:sns:us-east-1:1:q",
            "arn:aws:sqs:us-east-1:1",
            "arn:aws:sqs:us-east-1:1:q:x",
            "arn:aws:sqs:us-east-1:1:q/../x",
            "arn:aws:sqs::1:q",
        ] {
            assert_eq!(queue_url(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn failed_records_come_back_in_seconds_and_never_long_after_the_window() {
        let s = |n: u64| Duration::from_secs(n);
        let plain: Vec<u64> = (1..=8).map(|n| retry_in(n, None).as_secs()).collect();
        assert_eq!(plain, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(retry_in(0, None), s(1));
        assert_eq!(retry_in(u32::MAX, None), s(30));
        // 3 s of window left: back at the latest 1 s after it closes.
        assert_eq!(retry_in(6, Some(Duration::from_millis(3_400))), s(4));
        assert_eq!(retry_in(1, Some(s(200))), s(1));
        // The window closed: the back-off alone.
        assert_eq!(retry_in(5, Some(Duration::ZERO)), s(16));
    }

    #[tokio::test]
    async fn the_fake_records_changes_and_can_fail() {
        let v = Recorded::default();
        v.change("q", "r", 4).await.unwrap();
        assert_eq!(
            *v.changes.lock().unwrap(),
            [("q".to_owned(), "r".to_owned(), 4)]
        );
        let failing = Recorded {
            fail_with: Some("AccessDenied".into()),
            ..Recorded::default()
        };
        assert_eq!(
            failing.change("q", "r", 1).await,
            Err(VisibilityError("AccessDenied".into()))
        );
    }
}
