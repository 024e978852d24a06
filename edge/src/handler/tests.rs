//! The pure pieces of the handler. The request flow that uses them (every corpus case,
//! every scheme, probes, queueing) is tested through `crate::flow` with the fake I/O.

use super::*;

#[test]
fn declared_lengths_are_checked_before_the_body_is_read() {
    assert_eq!(
        check_declared_length(Some("4097"), 4096)
            .unwrap_err()
            .status,
        413
    );
    assert_eq!(
        check_declared_length(Some("12x"), 4096).unwrap_err().status,
        400
    );
    assert!(check_declared_length(Some(" 4096 "), 4096).is_ok());
    assert!(check_declared_length(None, 4096).is_ok());
}

#[test]
fn rejection_bodies_are_json_with_code_and_message() {
    let r = queue_failure(&SqsError::Unreachable("connection refused".into()), 7);
    assert_eq!((r.status, r.retry_after), (503, Some(7)));
    let body: serde_json::Value = serde_json::from_str(&r.body()).unwrap();
    assert_eq!(body["error"], "queue_unavailable");
    assert_eq!(
        queue_failure(&SqsError::TooLarge { size: 2, max: 1 }, 7).status,
        503
    );
    let r = claim_check_failure(
        &crate::s3::S3Error::Refused {
            status: 403,
            code: "AccessDenied".into(),
        },
        7,
    );
    assert_eq!(
        (r.status, r.code, r.retry_after),
        (503, "claim_check_unavailable", Some(7))
    );
}
