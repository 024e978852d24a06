//! SigV4 for the one request shape the edge sends: a POST with fixed headers to a fixed
//! endpoint, the day's signing key kept between requests.
//!
//! `aws-sigv4`'s full `sign` (see [`crate::sqs::sign_v4`]) parses the URL, builds header
//! maps and derives the signing key (four HMACs) on every request: in WASM that was about
//! 7 % of a webhook's CPU time (docs/benchmarks.md). Here the endpoint is parsed and the
//! headers sorted once, when the configuration is read; per request only the canonical
//! request is written and hashed. The key derivation and the signature are `aws-sigv4`'s
//! own (`generate_signing_key`, `calculate_signature`); the key is derived again when the
//! UTC day changes.
//!
//! [`PostSigner::new`] takes only what it canonicalises exactly as `aws-sigv4` does: a
//! lower-case host, an optional port, a path of unreserved characters without empty or
//! dot segments, no query, header values without spaces to trim. For anything else it
//! gives `None` and the caller signs with the crate in full. The tests check that both
//! sign every shape byte for byte alike, and against AWS's published test vector.

use std::cell::Cell;
use std::time::{Duration, UNIX_EPOCH};

use aws_sigv4::sign::v4::{calculate_signature, generate_signing_key};
use hookvault_core::time::civil_from_days;
use sha2::{Digest as _, Sha256};

/// The signing key of one UTC day (days since 1970-01-01).
#[derive(Clone, Copy)]
struct DayKey {
    day: i64,
    key: [u8; 32],
}

/// Signs POSTs to one endpoint with one set of credentials and fixed headers.
#[derive(Clone)]
pub struct PostSigner {
    url: String,
    region: String,
    service: String,
    access_key_id: String,
    secret_access_key: String,
    /// The canonical URI.
    path: String,
    /// The headers sent as they are: the fixed ones and the session token.
    sent: Vec<(String, String)>,
    /// The canonical header lines before `x-amz-date`'s, and after it.
    lines_before_date: String,
    lines_after_date: String,
    /// `content-type;host;…`.
    signed_headers: String,
    day: Cell<Option<DayKey>>,
}

impl std::fmt::Debug for PostSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostSigner")
            .field("url", &self.url)
            .field("region", &self.region)
            .field("service", &self.service)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// What signing one request gives: the headers to send, the fixed ones included.
pub type SignedHeaders = Vec<(String, String)>;

fn unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// The host header value and canonical URI of `url`, if SigV4 leaves both as they are.
fn host_and_path(url: &str) -> Option<(String, String)> {
    let (default_port, rest) = if let Some(rest) = url.strip_prefix("https://") {
        ("443", rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        ("80", rest)
    } else {
        return None;
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'-'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()));
    let segments_ok = path.strip_prefix('/').is_none_or(|p| {
        let segments: Vec<&str> = p.split('/').collect();
        // Only the last segment may be empty (a trailing slash); no dot segments.
        segments.iter().enumerate().all(|(i, s)| {
            (!s.is_empty() || i + 1 == segments.len())
                && s.bytes().all(|c| unreserved(c) && c != b'.')
        })
    });
    if !(host_ok && port_ok && segments_ok) {
        return None;
    }
    let host = match port {
        Some(p) if p != default_port => authority.to_owned(),
        _ => host.to_owned(),
    };
    let path = if path.is_empty() { "/" } else { path };
    Some((host, path.to_owned()))
}

/// A header value SigV4 canonicalises to itself: visible ASCII and single inner spaces.
fn plain_value(v: &str) -> bool {
    !v.is_empty()
        && !v.starts_with(' ')
        && !v.ends_with(' ')
        && !v.contains("  ")
        && v.bytes().all(|c| c == b' ' || c.is_ascii_graphic())
}

/// The UTC day number, `YYYYMMDD` and `YYYYMMDDTHHMMSSZ` of Unix milliseconds `now_ms`.
fn utc(now_ms: u64) -> (i64, String, String) {
    let secs = i64::try_from(now_ms / 1_000).unwrap_or(i64::MAX);
    let day = secs.div_euclid(86_400);
    let (y, m, d) = civil_from_days(day);
    let rem = secs.rem_euclid(86_400);
    let date = format!("{y:04}{m:02}{d:02}");
    let amz_date = format!(
        "{date}T{:02}{:02}{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    );
    (day, date, amz_date)
}

impl PostSigner {
    /// A signer for POSTs to `url` with `headers` (lower-case names); `None` if the URL or
    /// a header is not of the shape this signer writes exactly as `aws-sigv4` would.
    pub fn new(
        url: &str,
        region: &str,
        service: &str,
        credentials: (&str, &str, Option<&str>),
        headers: &[(&str, &str)],
    ) -> Option<Self> {
        let (access_key_id, secret_access_key, session_token) = credentials;
        let (host, path) = host_and_path(url)?;
        let mut sent: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        if let Some(token) = session_token {
            sent.push(("x-amz-security-token".to_owned(), token.to_owned()));
        }
        let mut canonical: Vec<(&str, &str)> = sent
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([("host", host.as_str())])
            .collect();
        canonical.sort_unstable_by_key(|(k, _)| *k);
        let names_ok = canonical.windows(2).all(|w| w[0].0 != w[1].0)
            && canonical.iter().all(|(k, _)| {
                !k.is_empty()
                    && *k != "x-amz-date"
                    && *k != "authorization"
                    && k.bytes()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            });
        if !names_ok || !canonical.iter().all(|(_, v)| plain_value(v)) {
            return None;
        }
        let line = |(k, v): &(&str, &str)| format!("{k}:{v}\n");
        let split = canonical.partition_point(|(k, _)| *k < "x-amz-date");
        let mut names: Vec<&str> = canonical.iter().map(|(k, _)| *k).collect();
        names.insert(split, "x-amz-date");
        Some(PostSigner {
            url: url.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
            path,
            lines_before_date: canonical[..split].iter().map(line).collect(),
            lines_after_date: canonical[split..].iter().map(line).collect(),
            signed_headers: names.join(";"),
            sent,
            day: Cell::new(None),
        })
    }

    /// The URL this signer signs for.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The day's signing key, derived once a day.
    fn key(&self, day: i64, now_ms: u64) -> [u8; 32] {
        if let Some(kept) = self.day.get().filter(|k| k.day == day) {
            return kept.key;
        }
        let time = UNIX_EPOCH + Duration::from_millis(now_ms);
        let derived =
            generate_signing_key(&self.secret_access_key, time, &self.region, &self.service);
        let mut key = [0u8; 32];
        key.copy_from_slice(derived.as_ref());
        self.day.set(Some(DayKey { day, key }));
        key
    }

    /// Signs a POST whose body has the SHA-256 `payload_sha256_hex`, at `now_ms` (Unix
    /// milliseconds): the headers to send.
    pub fn sign(&self, payload_sha256_hex: &str, now_ms: u64) -> SignedHeaders {
        let (day, date, amz_date) = utc(now_ms);
        let canonical_request = format!(
            "POST\n{}\n\n{}x-amz-date:{amz_date}\n{}\n{}\n{payload_sha256_hex}",
            self.path, self.lines_before_date, self.lines_after_date, self.signed_headers
        );
        let scope = format!("{date}/{}/{}/aws4_request", self.region, self.service);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical_request.as_bytes()))
        );
        let signature = calculate_signature(self.key(day, now_ms), string_to_sign.as_bytes());
        let mut headers = self.sent.clone();
        headers.push((
            "authorization".to_owned(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
                self.access_key_id, self.signed_headers
            ),
        ));
        headers.push(("x-amz-date".to_owned(), amz_date));
        headers
    }
}

#[cfg(test)]
mod tests;
