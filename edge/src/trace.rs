//! The trace id of a webhook request, decided without I/O.
//!
//! Every request on the webhook route gets one trace id ([`hookvault_core::trace`]): the
//! one of the request's `traceparent` header when that header is valid W3C Trace Context
//! (<https://www.w3.org/TR/trace-context/#traceparent-header>), so a sender that traces
//! its deliveries finds them in hookvault; otherwise a fresh one from 16 random bytes (the
//! Worker takes them from the runtime's `crypto.getRandomValues`). The edge's own work on
//! the request is a span of that trace, with a fresh parent-id (8 random bytes, not all
//! zero: Trace Context §3.2.2.4).
//!
//! The trace id goes into the envelope (`trace_id`), into the SQS message attribute
//! [`hookvault_core::trace::SQS_ATTRIBUTE`], into the request's log line, and back to the
//! sender in the [`RESPONSE_HEADER`] header.

use hookvault_core::trace;

/// The response header that returns the trace to the sender: `traceresponse`, in the
/// `traceparent` format (`00-{trace-id}-{parent-id}-{trace-flags}`), with the edge's span
/// id as parent-id. W3C drafted this header for exactly this use (a server telling its
/// caller which trace and span served a request), in the Trace Context Level 2 drafts;
/// the working group moved it to Level 3 (<https://github.com/w3c/trace-context/pull/484>),
/// which is still a draft. `traceparent` itself is a request header only
/// (<https://www.w3.org/TR/trace-context/#traceparent-header>), so the edge does not send
/// it back.
pub const RESPONSE_HEADER: &str = "traceresponse";

/// How many random bytes a request's trace takes: 16 for a fresh trace id (used only when
/// the request has no valid `traceparent`) and 8 for the edge's span id.
pub const RANDOM_BYTES: usize = 24;

/// The trace of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTrace {
    /// 32 lowercase hex digits, not all zero ([`trace::is_valid`]).
    pub trace_id: String,
    /// The edge's span: 16 lowercase hex digits, not all zero.
    pub span_id: String,
    /// True when `trace_id` came from the request's `traceparent`.
    pub from_sender: bool,
}

impl RequestTrace {
    /// The trace of a request whose `traceparent` header is `traceparent` (as the runtime
    /// gives it: several headers of that name arrive joined by `, `, which Trace Context
    /// treats as invalid), with `random` fresh random bytes: the header's trace id when it
    /// is valid ([`trace::from_traceparent`]), else one from `random[..16]`
    /// ([`trace::from_random`]); the span id from `random[16..]`.
    pub fn new(traceparent: Option<&str>, random: [u8; RANDOM_BYTES]) -> Self {
        let mut fresh = [0u8; 16];
        fresh.copy_from_slice(&random[..16]);
        let mut span = [0u8; 8];
        span.copy_from_slice(&random[16..]);
        let (trace_id, from_sender) = match traceparent.and_then(trace::from_traceparent) {
            Some(id) => (id, true),
            None => (trace::from_random(fresh), false),
        };
        RequestTrace {
            trace_id,
            span_id: span_id(span),
            from_sender,
        }
    }

    /// The [`RESPONSE_HEADER`] value: `00-{trace_id}-{span_id}-01`. The flags say
    /// "sampled" (Trace Context §3.2.2.5): the edge logs every request it answers.
    pub fn response_header(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

/// A span id (Trace Context's parent-id) from 8 random bytes; in the (2^-64) case of all
/// zeros, which the spec forbids, the last digit is made `1`.
fn span_id(bytes: [u8; 8]) -> String {
    let mut id = hex::encode(bytes);
    if bytes == [0; 8] {
        id.replace_range(15.., "1");
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANDOM: [u8; RANDOM_BYTES] = [
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
        0x01, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18,
    ];
    const SENDER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_keeps_its_trace_id_with_a_span_of_our_own() {
        let t = RequestTrace::new(Some(SENDER), RANDOM);
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(t.from_sender);
        // The edge's span, never the sender's parent-id.
        assert_eq!(t.span_id, "a1b2c3d4e5f60718");
        assert_eq!(
            t.response_header(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-a1b2c3d4e5f60718-01"
        );
        // Surrounding blanks are allowed (the header's OWS).
        let padded = RequestTrace::new(Some(&format!(" {SENDER}\t")), RANDOM);
        assert_eq!(padded.trace_id, t.trace_id);
        // A later version with more fields still gives its trace id.
        let v1 = RequestTrace::new(
            Some("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"),
            RANDOM,
        );
        assert!(v1.from_sender);
    }

    #[test]
    fn an_absent_or_invalid_traceparent_gets_a_fresh_id_from_the_random_bytes() {
        let fresh = "112233445566778899aabbccddeeff01";
        for header in [
            None,
            Some(""),
            Some("garbage"),
            // Upper case, all-zero trace id, all-zero parent id, version ff.
            Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            Some("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            // Two traceparent headers, as the runtime joins them.
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01, 00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01"),
        ] {
            let t = RequestTrace::new(header, RANDOM);
            assert_eq!(t.trace_id, fresh, "{header:?}");
            assert!(!t.from_sender, "{header:?}");
            assert!(trace::is_valid(&t.trace_id));
        }
        // Other bytes, another id.
        let mut other = RANDOM;
        other[0] = 0x12;
        assert_ne!(RequestTrace::new(None, other).trace_id, fresh);
    }

    #[test]
    fn all_zero_random_bytes_still_give_valid_ids() {
        let t = RequestTrace::new(None, [0; RANDOM_BYTES]);
        assert!(trace::is_valid(&t.trace_id), "{}", t.trace_id);
        assert_eq!(t.span_id, "0000000000000001");
        let header = t.response_header();
        // The header we send is one our own parser takes, with the same trace id.
        assert_eq!(
            trace::from_traceparent(&header).as_deref(),
            Some(t.trace_id.as_str())
        );
    }
}
