//! AWS SDK errors as one short line, for log lines and error messages.
//!
//! `DisplayErrorContext` prints an error's whole source chain, and for a service error
//! that chain ends in the raw HTTP response (every header, the XML body): about 2 KB per
//! log line that no CloudWatch Logs Insights filter wants to read. [`short`] keeps what
//! identifies the failure.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An SDK error, short: the service's error code and message when the service answered
/// (`NoSuchBucket: The specified bucket does not exist`), else the first three causes of
/// what stopped the request (`dispatch failure: io error: …`). Never the raw response,
/// never a credential.
pub fn short<E, R>(e: &SdkError<E, R>) -> String
where
    E: std::error::Error + ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    if let Some(code) = e.code() {
        return format!("{code}: {}", e.message().unwrap_or("(no message)"));
    }
    // The first causes are the useful part; the rest is the SDK's chain of wrappers.
    DisplayErrorContext(e)
        .to_string()
        .split(": ")
        .take(3)
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    #[derive(Debug)]
    struct Op(ErrorMetadata);
    impl std::fmt::Display for Op {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "unhandled error ({:?})", self.0.code())
        }
    }
    impl std::error::Error for Op {}
    impl ProvideErrorMetadata for Op {
        fn meta(&self) -> &ErrorMetadata {
            &self.0
        }
    }

    #[test]
    fn a_service_error_is_its_code_and_message_without_the_raw_response() {
        let meta = ErrorMetadata::builder()
            .code("NoSuchBucket")
            .message("The specified bucket does not exist")
            .build();
        let raw = Response::new(
            StatusCode::try_from(404).unwrap(),
            SdkBody::from(
                "<Error><Code>NoSuchBucket</Code><Secret>x-amz-security-token</Secret></Error>",
            ),
        );
        let e: SdkError<Op, Response> = SdkError::service_error(Op(meta), raw);
        assert!(DisplayErrorContext(&e).to_string().contains("<Error>"));
        assert_eq!(
            short(&e),
            "NoSuchBucket: The specified bucket does not exist"
        );
    }

    #[test]
    fn a_failure_without_an_answer_keeps_its_first_causes() {
        let e: SdkError<Op, Response> = SdkError::dispatch_failure(ConnectorError::io(
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused").into(),
        ));
        let s = short(&e);
        assert!(s.starts_with("dispatch failure"), "{s}");
        assert!(
            s.contains("connection refused") || s.contains("io error"),
            "{s}"
        );
    }
}
