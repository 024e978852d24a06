//! The trace id one event carries from the edge's receipt to the archive's manifest.
//!
//! It is a W3C Trace Context trace id (<https://www.w3.org/TR/trace-context/#trace-id>):
//! 16 bytes written as 32 lowercase hex digits, not all zero. The edge keeps the one in an
//! incoming `traceparent` header (`{version}-{trace-id}-{parent-id}-{flags}`, e.g.
//! `00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`), so a sender that traces its
//! deliveries finds them in hookvault's logs; otherwise it makes one from 16 random bytes.
//! The edge puts it in the envelope (`trace_id`) and in the SQS message attribute
//! [`SQS_ATTRIBUTE`]; the archiver logs it on every line and records it in `event.json`,
//! the manifest and the failure record.
//!
//! The core has no random source (it builds for wasm32 without one): callers pass the
//! bytes ([`from_random`]).

/// The SQS message attribute (type `String`) that carries the trace id beside the body.
pub const SQS_ATTRIBUTE: &str = "TraceId";

/// The HTTP request header of W3C Trace Context.
pub const TRACEPARENT: &str = "traceparent";

/// True when `id` is a valid trace id: 32 lowercase hex digits, not all zero.
pub fn is_valid(id: &str) -> bool {
    id.len() == 32
        && id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        && id.bytes().any(|c| c != b'0')
}

/// The trace id of a `traceparent` header value, if the header is well formed
/// (Trace Context §3.2): `00-{32 hex}-{16 hex}-{2 hex}` for version 00; a later version
/// may add fields after a `-`, which are ignored. `ff` is not a valid version, and an
/// all-zero trace id or parent id makes the header invalid. `None` for anything else: the
/// caller then makes a fresh id.
pub fn from_traceparent(value: &str) -> Option<String> {
    let v = value.trim_matches([' ', '\t']);
    let mut parts = v.split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent_id = parts.next()?;
    let flags = parts.next()?;
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    };
    if !hex(version, 2) || version == "ff" || !hex(parent_id, 16) || !hex(flags, 2) {
        return None;
    }
    // Version 00 has exactly four fields; a higher version may have more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    if parent_id.bytes().all(|c| c == b'0') || !is_valid(trace_id) {
        return None;
    }
    Some(trace_id.to_owned())
}

/// A fresh trace id from 16 random bytes. In the (2^-128) case of all zeros, the last
/// digit is made `1` so the id stays valid.
pub fn from_random(bytes: [u8; 16]) -> String {
    let mut id = hex::encode(bytes);
    if !is_valid(&id) {
        id.replace_range(31.., "1");
    }
    id
}

/// `id` if it is a valid trace id, else `None`: what a reader keeps of a trace id that
/// arrived in a message.
pub fn checked(id: Option<String>) -> Option<String> {
    id.filter(|t| is_valid(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_is_read_as_the_spec_says() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            from_traceparent(ok).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        // A future version may carry more fields.
        assert!(
            from_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x").is_some()
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert_eq!(from_traceparent(bad), None, "{bad}");
        }
    }

    #[test]
    fn random_ids_are_valid_and_checked_ids_filter_bad_ones() {
        assert!(is_valid(&from_random([7; 16])));
        assert_eq!(from_random([0; 16]), format!("{}1", "0".repeat(31)));
        assert!(is_valid(&from_random([0; 16])));
        assert_eq!(checked(Some("x".into())), None);
        assert_eq!(checked(Some("ab".repeat(16))), Some("ab".repeat(16)));
    }
}
