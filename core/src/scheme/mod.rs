//! Webhook signature schemes behind one interface.
//!
//! | scheme | header(s) | signed bytes | secret |
//! |---|---|---|---|
//! | `skytells` (reference) | `x-skytells-signature: <hex>` (the provider's SDK) or `sha256=<hex>` (the course) | the raw body | the secret's bytes: the account API key in the provider's `general` mode, a webhook secret in `enterprise` mode |
//! | `github` | `X-Hub-Signature-256: sha256=<hex>` | the raw body | the secret's bytes |
//! | `standard` | `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64> …` | `{id}.{timestamp}.{body}` | `whsec_` + base64 |
//! | `stripe` | `Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>]` | `{t}.{body}` | the whole `whsec_…` string's bytes |
//!
//! Every scheme is HMAC-SHA256. Verification works on the raw bytes, compares in constant
//! time after an explicit length check, tries every active key of the ring, and never
//! panics on any input. [`Scheme::sign`] is its exact inverse.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;

use crate::ct;
use crate::headers::{self, Headers, Single};
use crate::keyring::{Key, KeyError, KeyRing, KeySlot};

mod hex_prefixed;
mod standard;
mod stripe;

/// The longest signature header accepted; longer ones are refused before any parsing.
pub const MAX_SIGNATURE_HEADER_LEN: usize = 4096;
/// The most signatures one header may carry that are compared (the rest are ignored).
pub const MAX_SIGNATURES: usize = 8;
/// The default tolerance, in seconds, for timestamped schemes (Standard Webhooks, Stripe).
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// A webhook signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Skytells: `x-skytells-signature: <hex>` (bare, as the provider's SDK writes it) or
    /// `sha256=<hex>` (the course's form), hex digits in either case, over the raw body
    /// (`Skytells/ts-sdk` `src/webhooks.ts`).
    Skytells,
    /// GitHub: `X-Hub-Signature-256: sha256=<lowercase hex>` over the raw body.
    #[serde(rename = "github")]
    GitHub,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    Standard,
    /// Stripe: `Stripe-Signature: t=…,v1=…`.
    Stripe,
}

/// Every scheme, in the order the CLI lists them.
pub const ALL_SCHEMES: [Scheme; 4] = [
    Scheme::Skytells,
    Scheme::GitHub,
    Scheme::Standard,
    Scheme::Stripe,
];

/// The scheme name is not one of `skytells`, `github`, `standard`, `stripe`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scheme {0:?}: expected one of skytells, github, standard, stripe")]
pub struct UnknownScheme(pub String);

impl FromStr for Scheme {
    type Err = UnknownScheme;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_SCHEMES
            .into_iter()
            .find(|sch| sch.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownScheme(s.to_owned()))
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What verification needs besides the request: the time, passed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Now, in Unix seconds (from the caller's clock: a Worker has no `SystemTime`).
    pub now: i64,
    /// How far a signed timestamp may be from `now`, either way, in seconds.
    pub tolerance: u64,
}

impl VerifyOptions {
    /// Options at `now` with the default tolerance of 300 s.
    pub fn at(now: i64) -> Self {
        VerifyOptions {
            now,
            tolerance: DEFAULT_TOLERANCE_SECS,
        }
    }
}

/// A request that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The id of the key that matched.
    pub key_id: String,
    /// The slot of the key that matched.
    pub slot: KeySlot,
    /// The sender's delivery id, where the scheme has one (`webhook-id`, `X-GitHub-Delivery`).
    pub delivery_id: Option<String>,
    /// The signed timestamp, where the scheme has one.
    pub timestamp: Option<i64>,
}

/// Why a request did not verify. Messages never contain a secret or an expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header the scheme needs is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header that must appear once appears several times.
    #[error("the {0} header appears more than once")]
    DuplicateHeader(&'static str),
    /// A header does not have the scheme's form.
    #[error("malformed {header} header: {reason}")]
    MalformedHeader {
        /// The header's name.
        header: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The signed timestamp is older than the tolerance allows (a replay, or a stale retry).
    #[error("signed timestamp is {age} s old, beyond the {tolerance} s tolerance")]
    TimestampTooOld {
        /// Seconds between the timestamp and now.
        age: u64,
        /// The tolerance in force.
        tolerance: u64,
    },
    /// The signed timestamp is further in the future than the tolerance allows.
    #[error("signed timestamp is {ahead} s in the future, beyond the {tolerance} s tolerance")]
    TimestampInFuture {
        /// Seconds between now and the timestamp.
        ahead: u64,
        /// The tolerance in force.
        tolerance: u64,
    },
    /// No active key produces any of the signatures given.
    #[error("signature does not match any active key")]
    NoMatch,
    /// The signature matches a key whose not-after time has passed.
    #[error("signature matches key {key_id:?}, which expired at {not_after}")]
    KeyExpired {
        /// The expired key's id.
        key_id: String,
        /// When it expired, in Unix seconds.
        not_after: i64,
    },
}

impl VerifyError {
    /// The HTTP status the edge answers with: 400 for a malformed request, 401 for one
    /// that is well-formed but not authentic.
    pub fn status(&self) -> u16 {
        match self {
            VerifyError::DuplicateHeader(_) | VerifyError::MalformedHeader { .. } => 400,
            VerifyError::MissingHeader(_)
            | VerifyError::TimestampTooOld { .. }
            | VerifyError::TimestampInFuture { .. }
            | VerifyError::NoMatch
            | VerifyError::KeyExpired { .. } => 401,
        }
    }

    /// A stable machine-readable code for JSON error bodies and logs.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::MissingHeader(_) => "missing_signature",
            VerifyError::DuplicateHeader(_) => "duplicate_header",
            VerifyError::MalformedHeader { .. } => "malformed_signature",
            VerifyError::TimestampTooOld { .. } => "timestamp_too_old",
            VerifyError::TimestampInFuture { .. } => "timestamp_in_future",
            VerifyError::NoMatch => "bad_signature",
            VerifyError::KeyExpired { .. } => "key_expired",
        }
    }
}

/// What signing needs besides the body and the secret.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignParams {
    /// The delivery id (Standard Webhooks' `webhook-id`); required by `standard`.
    pub id: Option<String>,
    /// The timestamp, Unix seconds; required by `standard` and `stripe`.
    pub timestamp: Option<i64>,
}

/// How `skytells` writes its hex signature ([`Scheme::sign`], [`Scheme::sign_prefixed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HexForm {
    /// `<hex>`: the provider's SDK.
    Bare,
    /// `sha256=<hex>`: the course text.
    Prefixed,
}

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The scheme signs a value that was not given.
    #[error("the {scheme} scheme needs {what}")]
    Missing {
        /// The scheme.
        scheme: Scheme,
        /// What is missing (`--id`, `--timestamp`).
        what: &'static str,
    },
    /// The secret is not in the scheme's format.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The delivery id is not visible ASCII without `.`.
    #[error("the delivery id must be 1 to 256 visible ASCII characters")]
    BadId,
}

/// Up to [`MAX_SIGNATURES`] candidate signatures, decoded, without allocating.
pub(crate) struct Candidates {
    sigs: [[u8; 32]; MAX_SIGNATURES],
    len: usize,
}

impl Candidates {
    pub(crate) fn new() -> Self {
        Candidates {
            sigs: [[0; 32]; MAX_SIGNATURES],
            len: 0,
        }
    }
    pub(crate) fn push(&mut self, sig: [u8; 32]) {
        if self.len < MAX_SIGNATURES {
            self.sigs[self.len] = sig;
            self.len += 1;
        }
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }
    fn as_slice(&self) -> &[[u8; 32]] {
        &self.sigs[..self.len]
    }
}

/// A parsed signature header: what is signed before the body, and the candidates.
pub(crate) struct Parsed<'a> {
    pub(crate) prefix: Prefix<'a>,
    pub(crate) candidates: Candidates,
    pub(crate) timestamp: Option<i64>,
    pub(crate) delivery_id: Option<&'a [u8]>,
}

/// A request whose signature header parsed and whose timestamp is within tolerance,
/// waiting for the MAC that each key gives its signed message ([`Scheme::prepare`]).
pub struct Pending<'a> {
    parsed: Parsed<'a>,
    body: &'a [u8],
    now: i64,
    expired: Option<(String, i64)>,
}

impl<'a> Pending<'a> {
    /// What the sender signed, as pieces to MAC in order: the scheme's prefix (pieces may
    /// be empty: `{id}.{ts}.` for Standard Webhooks, `{ts}.` for Stripe, nothing for
    /// Skytells and GitHub), then the body.
    pub fn message(&self) -> [&'a [u8]; 5] {
        let [a, b, c, d] = self.parsed.prefix.parts;
        [a, b, c, d, self.body]
    }

    /// Offers `mac`, the HMAC-SHA256 that `key` gives [`Pending::message`]. It is compared
    /// in constant time with every candidate signature of the header. `Some` when one
    /// matches and the key is active; a match on an expired key is remembered for
    /// [`Pending::refusal`]. Offer the ring's keys in order, and stop at the first `Some`.
    pub fn offer(&mut self, key: &Key, mac: &[u8; 32]) -> Option<Verified> {
        let matched = self
            .parsed
            .candidates
            .as_slice()
            .iter()
            .fold(false, |acc, sig| acc | ct::eq(mac, sig));
        if !matched {
            return None;
        }
        if key.is_active(self.now) {
            return Some(Verified {
                key_id: key.id().to_owned(),
                slot: key.slot(),
                delivery_id: self
                    .parsed
                    .delivery_id
                    .map(|id| String::from_utf8_lossy(id).into_owned()),
                timestamp: self.parsed.timestamp,
            });
        }
        self.expired
            .get_or_insert_with(|| (key.id().to_owned(), key.not_after().unwrap_or_default()));
        None
    }

    /// Offers the MAC of each key of `ring` in order, computed with this crate's
    /// HMAC-SHA256: the first active match, else [`Pending::refusal`].
    pub fn finish(mut self, ring: &KeyRing) -> Result<Verified, VerifyError> {
        let message = self.message();
        for key in ring.keys() {
            if let Some(verified) = self.offer(key, &key.mac(&message)) {
                return Ok(verified);
            }
        }
        Err(self.refusal())
    }

    /// Why the request is refused once every key was offered without a `Some`: the
    /// expired key that matched, if any, else no match.
    pub fn refusal(self) -> VerifyError {
        match self.expired {
            Some((key_id, not_after)) => VerifyError::KeyExpired { key_id, not_after },
            None => VerifyError::NoMatch,
        }
    }
}

/// The bytes signed before the body: `{id}.{ts}.` or `{ts}.` or nothing.
#[derive(Default)]
pub(crate) struct Prefix<'a> {
    pub(crate) parts: [&'a [u8]; 4],
}

impl Scheme {
    /// The scheme's name on the command line and in configuration.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Skytells => "skytells",
            Scheme::GitHub => "github",
            Scheme::Standard => "standard",
            Scheme::Stripe => "stripe",
        }
    }

    /// The header that carries the signature.
    pub fn signature_header(self) -> &'static str {
        match self {
            Scheme::Skytells => hex_prefixed::SKYTELLS_HEADER,
            Scheme::GitHub => hex_prefixed::GITHUB_HEADER,
            Scheme::Standard => standard::SIGNATURE_HEADER,
            Scheme::Stripe => stripe::HEADER,
        }
    }

    /// True if the scheme signs the raw body alone (no prefix): a runtime can start the MAC
    /// as soon as the body arrives, before the headers are parsed, and offer it to
    /// [`Pending::offer`] once they are.
    pub fn signs_body_alone(self) -> bool {
        match self {
            Scheme::Skytells | Scheme::GitHub => true,
            Scheme::Standard | Scheme::Stripe => false,
        }
    }

    /// The header that carries the sender's delivery id, if the scheme has one.
    pub fn delivery_id_header(self) -> Option<&'static str> {
        match self {
            Scheme::GitHub => Some(hex_prefixed::GITHUB_DELIVERY_HEADER),
            Scheme::Standard => Some(standard::ID_HEADER),
            Scheme::Skytells | Scheme::Stripe => None,
        }
    }

    /// Every header verification reads: a runtime that pays per header lookup (a Worker)
    /// passes only these.
    pub fn header_names(self) -> &'static [&'static str] {
        match self {
            Scheme::Skytells => &[hex_prefixed::SKYTELLS_HEADER],
            Scheme::GitHub => &[
                hex_prefixed::GITHUB_HEADER,
                hex_prefixed::GITHUB_DELIVERY_HEADER,
            ],
            Scheme::Standard => &[
                standard::ID_HEADER,
                standard::TIMESTAMP_HEADER,
                standard::SIGNATURE_HEADER,
            ],
            Scheme::Stripe => &[stripe::HEADER],
        }
    }

    /// A one-paragraph explanation of the scheme, for `--help`.
    pub fn describe(self) -> &'static str {
        match self {
            Scheme::Skytells => "skytells: header `x-skytells-signature: <64 hex>` (bare, as the provider's SDK signs) or `sha256=<64 hex>` (the course's form), hex digits in either case, HMAC-SHA256 of the raw body keyed with the secret's bytes: the account API key (the provider's default `general` mode) or the dashboard webhook secret (`enterprise`).",
            Scheme::GitHub => "github: header `X-Hub-Signature-256: sha256=<64 lowercase hex>`, HMAC-SHA256 of the raw body keyed with the secret's bytes; `X-GitHub-Delivery` is the delivery id.",
            Scheme::Standard => "standard: Standard Webhooks; headers `webhook-id`, `webhook-timestamp` (Unix seconds, ±tolerance) and `webhook-signature: v1,<base64> [v1,<base64> …]`, HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the base64-decoded `whsec_…` secret.",
            Scheme::Stripe => "stripe: header `Stripe-Signature: t=<Unix seconds>,v1=<hex>[,v1=<hex>…]`, HMAC-SHA256 of `{t}.{body}` keyed with the whole `whsec_…` string; timestamps outside ±tolerance are refused.",
        }
    }

    /// A new secret in the scheme's format from 32 random bytes (the rotator's
    /// `createSecret`): `whsec_` + base64 for Standard Webhooks and Stripe, 64 lowercase
    /// hex characters for the others. [`Scheme::decode_secret`] accepts what this makes.
    pub fn format_secret(self, random: &[u8; 32]) -> String {
        match self {
            Scheme::Standard | Scheme::Stripe => format!(
                "whsec_{}",
                base64::engine::general_purpose::STANDARD.encode(random)
            ),
            Scheme::Skytells | Scheme::GitHub => hex::encode(random),
        }
    }

    /// The key bytes of a secret written in the scheme's format.
    pub fn decode_secret(self, secret: &str) -> Result<Vec<u8>, KeyError> {
        let bytes = match self {
            Scheme::Standard => {
                let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| KeyError::NotBase64 {
                        key_id: String::new(),
                    })?
            }
            Scheme::Skytells | Scheme::GitHub | Scheme::Stripe => secret.as_bytes().to_vec(),
        };
        if bytes.is_empty() {
            return Err(KeyError::EmptySecret);
        }
        Ok(bytes)
    }

    /// Verifies a request against every active key of `ring`: [`Scheme::prepare`], then
    /// [`Pending::finish`].
    pub fn verify<H: Headers + ?Sized>(
        self,
        ring: &KeyRing,
        headers: &H,
        body: &[u8],
        opts: &VerifyOptions,
    ) -> Result<Verified, VerifyError> {
        self.prepare(headers, body, opts)?.finish(ring)
    }

    /// Everything verification does before the MACs: parses the signature header (and the
    /// scheme's id and timestamp headers) and checks the timestamp's tolerance. The MACs
    /// can then come from anywhere that computes HMAC-SHA256 over [`Pending::message`]: the
    /// edge uses the runtime's WebCrypto, which is native code, where this crate's HMAC
    /// would run as WASM.
    pub fn prepare<'a, H: Headers + ?Sized>(
        self,
        headers: &'a H,
        body: &'a [u8],
        opts: &VerifyOptions,
    ) -> Result<Pending<'a>, VerifyError> {
        let parsed = match self {
            Scheme::Skytells => hex_prefixed::parse(
                headers,
                hex_prefixed::SKYTELLS_HEADER,
                hex_prefixed::Form::BareOrPrefixed,
            )?,
            Scheme::GitHub => {
                let mut p = hex_prefixed::parse(
                    headers,
                    hex_prefixed::GITHUB_HEADER,
                    hex_prefixed::Form::PrefixedLowercase,
                )?;
                if let Single::One(id) =
                    headers::single(headers, hex_prefixed::GITHUB_DELIVERY_HEADER)
                {
                    p.delivery_id = Some(id);
                }
                p
            }
            Scheme::Standard => standard::parse(headers)?,
            Scheme::Stripe => stripe::parse(headers)?,
        };
        if let Some(ts) = parsed.timestamp {
            check_timestamp(ts, opts)?;
        }
        Ok(Pending {
            parsed,
            body,
            now: opts.now,
            expired: None,
        })
    }

    /// The headers a sender adds for `body`, signed with the decoded secret `key`, in the
    /// form the sender itself writes: for `skytells`, bare lowercase hex, as the provider's
    /// SDK does (`Skytells/ts-sdk` `src/webhooks.ts`). [`Scheme::verify`] accepts exactly
    /// what this produces.
    pub fn sign(
        self,
        key: &[u8],
        body: &[u8],
        params: &SignParams,
    ) -> Result<Vec<(&'static str, String)>, SignError> {
        self.sign_as(key, body, params, HexForm::Bare)
    }

    /// As [`Scheme::sign`], with `skytells` in the course's prefixed form
    /// (`sha256=<hex>`, `shared/seed/`); every other scheme signs as [`Scheme::sign`].
    pub fn sign_prefixed(
        self,
        key: &[u8],
        body: &[u8],
        params: &SignParams,
    ) -> Result<Vec<(&'static str, String)>, SignError> {
        self.sign_as(key, body, params, HexForm::Prefixed)
    }

    fn sign_as(
        self,
        key: &[u8],
        body: &[u8],
        params: &SignParams,
        skytells_form: HexForm,
    ) -> Result<Vec<(&'static str, String)>, SignError> {
        let key = Key::new("sign", KeySlot::Current, key, None)?;
        let need_ts = || {
            params.timestamp.ok_or(SignError::Missing {
                scheme: self,
                what: "a timestamp",
            })
        };
        Ok(match self {
            Scheme::Skytells | Scheme::GitHub => {
                let sig = hex::encode(key.mac(&[body]));
                let value = match (self, skytells_form) {
                    (Scheme::Skytells, HexForm::Bare) => sig,
                    _ => format!("sha256={sig}"),
                };
                let mut out = vec![(self.signature_header(), value)];
                if let (Scheme::GitHub, Some(id)) = (self, &params.id) {
                    out.push((hex_prefixed::GITHUB_DELIVERY_HEADER, id.clone()));
                }
                out
            }
            Scheme::Standard => {
                let id = params.id.as_deref().ok_or(SignError::Missing {
                    scheme: self,
                    what: "a delivery id",
                })?;
                if !standard::valid_id(id.as_bytes()) {
                    return Err(SignError::BadId);
                }
                let ts = need_ts()?.to_string();
                let mac = key.mac(&[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
                let sig = base64::engine::general_purpose::STANDARD.encode(mac);
                vec![
                    (standard::ID_HEADER, id.to_owned()),
                    (standard::TIMESTAMP_HEADER, ts),
                    (standard::SIGNATURE_HEADER, format!("v1,{sig}")),
                ]
            }
            Scheme::Stripe => {
                let ts = need_ts()?.to_string();
                let sig = hex::encode(key.mac(&[ts.as_bytes(), b".", body]));
                vec![(stripe::HEADER, format!("t={ts},v1={sig}"))]
            }
        })
    }
}

fn check_timestamp(ts: i64, opts: &VerifyOptions) -> Result<(), VerifyError> {
    let tolerance = opts.tolerance;
    let diff = i128::from(opts.now) - i128::from(ts);
    let secs = |d: i128| u64::try_from(d.unsigned_abs()).unwrap_or(u64::MAX);
    if diff > i128::from(tolerance) {
        Err(VerifyError::TimestampTooOld {
            age: secs(diff),
            tolerance,
        })
    } else if -diff > i128::from(tolerance) {
        Err(VerifyError::TimestampInFuture {
            ahead: secs(diff),
            tolerance,
        })
    } else {
        Ok(())
    }
}

/// Parses a Unix timestamp written as 1 to 19 ASCII digits.
pub(crate) fn parse_timestamp(raw: &[u8], header: &'static str) -> Result<i64, VerifyError> {
    let malformed = VerifyError::MalformedHeader {
        header,
        reason: "timestamp must be 1 to 19 decimal digits (Unix seconds)",
    };
    if raw.is_empty() || raw.len() > 19 || !raw.iter().all(u8::is_ascii_digit) {
        return Err(malformed);
    }
    raw.iter()
        .try_fold(0i64, |acc, d| {
            acc.checked_mul(10)?.checked_add(i64::from(d - b'0'))
        })
        .ok_or(malformed)
}

/// Decodes exactly 64 lowercase hex digits.
pub(crate) fn decode_lower_hex32(s: &[u8]) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        *o = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

/// As [`required`], for a header whose form never contains `", "`: such a value is two
/// headers merged (the Fetch API, and so a Worker, joins repeated headers with `", "`),
/// and is refused as duplicated.
pub(crate) fn required_unmerged<'a, H: Headers + ?Sized>(
    headers: &'a H,
    name: &'static str,
) -> Result<&'a [u8], VerifyError> {
    let v = required(headers, name)?;
    if v.windows(2).any(|w| w == b", ") {
        return Err(VerifyError::DuplicateHeader(name));
    }
    Ok(v)
}

/// Looks up a header that must appear exactly once and be at most
/// [`MAX_SIGNATURE_HEADER_LEN`] bytes; trims surrounding whitespace.
pub(crate) fn required<'a, H: Headers + ?Sized>(
    headers: &'a H,
    name: &'static str,
) -> Result<&'a [u8], VerifyError> {
    match headers::single(headers, name) {
        Single::Missing => Err(VerifyError::MissingHeader(name)),
        Single::Duplicated => Err(VerifyError::DuplicateHeader(name)),
        Single::One(v) if v.len() > MAX_SIGNATURE_HEADER_LEN => Err(VerifyError::MalformedHeader {
            header: name,
            reason: "longer than 4096 bytes",
        }),
        Single::One(v) => Ok(v.trim_ascii()),
    }
}

#[cfg(test)]
mod tests;
