use super::*;
use crate::sqs::{sign_v4, SignableBody, SqsTarget};

const SQS_HEADERS: [(&str, &str); 2] = [
    ("content-type", "application/x-amz-json-1.0"),
    ("x-amz-target", "AmazonSQS.SendMessage"),
];

fn credentials(token: Option<&str>) -> (&'static str, &'static str, Option<&str>) {
    (
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        token,
    )
}

fn sorted(mut h: Vec<(String, String)>) -> Vec<(String, String)> {
    h.sort();
    h
}

/// What `aws-sigv4`'s full `sign` gives for the same request.
fn by_the_crate(
    url: &str,
    region: &str,
    service: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    payload: &str,
    now_ms: u64,
) -> Vec<(String, String)> {
    let (id, secret, token) = credentials(token);
    let target = SqsTarget {
        queue_url: "unused".to_owned(),
        endpoint: url.to_owned(),
        region: region.to_owned(),
        access_key_id: id.to_owned(),
        secret_access_key: secret.to_owned(),
        session_token: token.map(str::to_owned),
    };
    let signed = sign_v4(
        &target,
        service,
        url,
        headers,
        SignableBody::Precomputed(payload.to_owned()),
        now_ms,
    )
    .unwrap();
    sorted(signed)
}

/// AWS's SigV4 test suite, `post-vanilla` (as in sqs/tests.rs): POST
/// https://example.amazonaws.com/ at 20150830T123600Z, us-east-1, service `service`.
#[test]
fn signs_the_published_post_vanilla_vector() {
    let signer = PostSigner::new(
        "https://example.amazonaws.com/",
        "us-east-1",
        "service",
        credentials(None),
        &[],
    )
    .unwrap();
    let empty = hex::encode(Sha256::digest(b""));
    let headers = signer.sign(&empty, 1_440_938_160_000);
    assert_eq!(
        headers,
        vec![
            (
                "authorization".to_owned(),
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b".to_owned()
            ),
            ("x-amz-date".to_owned(), "20150830T123600Z".to_owned()),
        ]
    );
}

#[test]
fn signs_every_endpoint_shape_exactly_as_aws_sigv4() {
    let urls = [
        "https://sqs.us-east-1.amazonaws.com/",
        "https://sqs.eu-west-1.amazonaws.com",
        "http://127.0.0.1:4566/",
        "http://localhost:80/",
        "https://localhost:443/",
        "http://localhost:443/",
        "https://sqs-fips.us-gov-west-1.amazonaws.com:8443/queue/path_1~x/",
        "http://10.0.0.7:9324/a/b",
    ];
    let times = [
        0,
        951_782_399_999,
        951_782_400_000,
        1_440_938_160_000,
        1_709_164_800_000,
        1_764_115_199_999,
        4_102_444_799_000,
    ];
    for url in urls {
        for token in [None, Some("FwoGZXIvYXdzEBYaDH/session+token=")] {
            for (i, now_ms) in times.into_iter().enumerate() {
                let payload = hex::encode(Sha256::digest(format!("body {i}")));
                let signer =
                    PostSigner::new(url, "us-east-1", "sqs", credentials(token), &SQS_HEADERS)
                        .unwrap_or_else(|| panic!("{url} is a shape the signer takes"));
                assert_eq!(
                    sorted(signer.sign(&payload, now_ms)),
                    by_the_crate(
                        url,
                        "us-east-1",
                        "sqs",
                        token,
                        &SQS_HEADERS,
                        &payload,
                        now_ms
                    ),
                    "{url}, token {token:?}, {now_ms} ms"
                );
            }
        }
    }
}

#[test]
fn derives_the_key_again_when_the_day_changes() {
    let url = "https://sqs.ap-southeast-2.amazonaws.com/";
    let signer = PostSigner::new(
        url,
        "ap-southeast-2",
        "sqs",
        credentials(None),
        &SQS_HEADERS,
    )
    .unwrap();
    let payload = hex::encode(Sha256::digest(b"{}"));
    // One signer across three UTC days, back and forth: each signature as if fresh.
    for now_ms in [
        1_764_115_199_000,
        1_764_115_200_000,
        1_764_115_199_999,
        1_764_201_600_000,
        1_764_115_300_000,
    ] {
        assert_eq!(
            sorted(signer.sign(&payload, now_ms)),
            by_the_crate(
                url,
                "ap-southeast-2",
                "sqs",
                None,
                &SQS_HEADERS,
                &payload,
                now_ms
            ),
            "{now_ms} ms"
        );
    }
}

#[test]
fn leaves_other_shapes_to_the_crate() {
    for url in [
        "ftp://example.com/",
        "example.com/",
        "https://Example.com/",
        "https:///",
        "https://example.com:/",
        "https://example.com:44x/",
        "https://user@example.com/",
        "https://[::1]:4566/",
        "https://example.com/a/../b",
        "https://example.com/./b",
        "https://example.com/a//b",
        "https://example.com/v1.0/",
        "https://example.com/a%20b",
        "https://example.com/?Action=SendMessage",
        "https://example.com/#x",
    ] {
        assert!(
            PostSigner::new(url, "us-east-1", "sqs", credentials(None), &SQS_HEADERS).is_none(),
            "{url}"
        );
    }
    let url = "https://example.com/";
    for headers in [
        &[("content-type", "a  b")][..],
        &[("content-type", " a")],
        &[("content-type", "")],
        &[("content-type", "a\tb")],
        &[("Content-Type", "a")],
        &[("host", "other")],
        &[("x-amz-date", "20150830T123600Z")],
        &[("authorization", "x")],
        &[("a", "1"), ("a", "2")],
    ] {
        assert!(
            PostSigner::new(url, "us-east-1", "sqs", credentials(None), headers).is_none(),
            "{headers:?}"
        );
    }
    assert!(PostSigner::new(
        url,
        "us-east-1",
        "sqs",
        credentials(Some("two  spaces")),
        &[]
    )
    .is_none());
}

#[test]
fn writes_utc_dates_and_times() {
    let amz = |secs: u64| utc(secs * 1_000).2;
    assert_eq!(amz(0), "19700101T000000Z");
    assert_eq!(amz(951_782_400), "20000229T000000Z");
    assert_eq!(amz(1_709_251_199), "20240229T235959Z");
    assert_eq!(amz(1_709_251_200), "20240301T000000Z");
    assert_eq!(amz(4_102_444_799), "20991231T235959Z");
    assert_eq!(amz(4_107_542_399), "21000228T235959Z");
    assert_eq!(amz(4_107_542_400), "21000301T000000Z");
    assert_eq!(utc(1_440_938_160_000).1, "20150830");
}

#[test]
fn debug_shows_no_secret() {
    let signer = PostSigner::new(
        "https://example.com/",
        "us-east-1",
        "sqs",
        credentials(Some("session-token-value")),
        &[],
    )
    .unwrap();
    let shown = format!("{signer:?}");
    assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
    assert!(!shown.contains("session-token-value"), "{shown}");
}
