//! The `hookvault` binary, run as a user would.
#![allow(missing_docs, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

use hookvault_core::corpus::{bad_inputs, sample_body};
use hookvault_core::scheme::ALL_SCHEMES;
use hookvault_core::{KeyRing, Scheme, VerifyOptions};

const NOW: i64 = 1_800_000_000;

fn hookvault(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookvault"))
        .args(args)
        .env_remove("HOOKVAULT_SECRET")
        .env_remove("HOOKVAULT_BUCKET")
        .env_remove("HOOKVAULT_QUEUE_URL")
        .env_remove("HOOKVAULT_DLQ_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A child that exits before reading (usage errors) closes the pipe: not a failure.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn secret(scheme: Scheme) -> &'static str {
    hookvault_core::corpus::example_secret(scheme)
}

fn header_args(headers: &[(String, String)]) -> Vec<String> {
    headers
        .iter()
        .flat_map(|(k, v)| ["--header".to_owned(), format!("{k}: {v}")])
        .collect()
}

#[test]
fn sign_output_verifies_for_every_scheme() {
    for scheme in ALL_SCHEMES {
        let body = sample_body();
        let ts = NOW.to_string();
        let out = hookvault(
            &[
                "sign",
                "--scheme",
                scheme.name(),
                "--secret",
                secret(scheme),
                "--timestamp",
                &ts,
            ],
            &body,
        );
        assert!(
            out.status.success(),
            "{scheme}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let headers: Vec<(String, String)> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (k, v) = l.split_once(": ").unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let mut args = vec![
            "verify".to_owned(),
            "--scheme".into(),
            scheme.name().into(),
            "--secret".into(),
            "old-secret".into(),
            "--secret".into(),
            secret(scheme).into(),
            "--now".into(),
            ts.clone(),
        ];
        if scheme == Scheme::Standard {
            args[4] = "whsec_b2xkLXNlY3JldA==".into();
        }
        args.extend(header_args(&headers));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = hookvault(&args, &body);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{scheme}: {stdout}");
        assert!(
            stdout.contains("verified: key secret-2 (previous)"),
            "{scheme}: {stdout}"
        );
    }
}

#[test]
fn verify_accepts_the_published_github_vector_from_a_file() {
    let dir = std::env::temp_dir().join(format!("hookvault-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("body");
    std::fs::write(&file, "Hello, World!").unwrap();
    let out = hookvault(
        &["verify", "--scheme", "github", "--secret", "It's a Secret to Everybody", "-H",
          "X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
          file.to_str().unwrap()],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::remove_dir_all(dir).ok();
}

/// `sign` writes what the provider's SDK writes (bare lowercase hex, keyed with the API
/// key: the vector was computed by Node's crypto as `Skytells/ts-sdk` does), `--prefixed`
/// the course's form, and `verify` accepts every documented form of that MAC.
#[test]
fn skytells_sign_writes_the_sdk_s_bare_hex_and_verify_accepts_every_form() {
    let body = br#"{"type":"prediction.succeeded","data":{"id":"pred_1","status":"succeeded","output":"https://cdn/x.png"}}"#;
    let api_key = "sk-live-0123456789abcdef";
    let vector = include_str!("../../core/tests/fixtures/skytells_sdk_vector.txt").trim();
    let sign = |extra: &[&str]| {
        let mut args = vec!["sign", "--scheme", "skytells", "--secret", api_key];
        args.extend_from_slice(extra);
        let out = hookvault(&args, body);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(sign(&[]), format!("x-skytells-signature: {vector}\n"));
    assert_eq!(
        sign(&["--prefixed"]),
        format!("x-skytells-signature: sha256={vector}\n")
    );
    for (name, value) in hookvault_core::corpus::skytells_accepted_forms(vector) {
        let header = format!("x-skytells-signature: {value}");
        let out = hookvault(
            &[
                "verify", "--scheme", "skytells", "--secret", api_key, "-H", &header,
            ],
            body,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {stdout}");
        assert!(
            stdout.contains("verified: key secret-1 (current)"),
            "{name}: {stdout}"
        );
    }
}

/// `verify` trims what HTTP trims (spaces and tabs) and nothing more: a value the edge
/// refuses as malformed (a trailing no-break space or vertical tab) is refused here too.
#[test]
fn verify_trims_only_http_whitespace_as_the_edge_does() {
    let body = sample_body();
    let hex = Scheme::Skytells
        .sign(
            secret(Scheme::Skytells).as_bytes(),
            &body,
            &Default::default(),
        )
        .unwrap()[0]
        .1
        .clone();
    let verify = |value: &str| {
        let header = format!("x-skytells-signature: {value}");
        let secret = secret(Scheme::Skytells);
        let args = [
            "verify", "--scheme", "skytells", "--secret", secret, "-H", &header,
        ];
        let out = hookvault(&args, &body);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = verify(&format!("\t{hex} \t"));
    assert_eq!(code, Some(0), "{out}");
    for odd in ["\u{a0}", "\u{b}", "\u{2003}"] {
        let (code, out) = verify(&format!("{hex}{odd}"));
        assert_eq!(code, Some(1), "{odd:?}: {out}");
        assert!(out.contains("400 malformed_signature"), "{odd:?}: {out}");
    }
}

#[test]
fn verify_refuses_every_corpus_case_with_its_reason() {
    for scheme in ALL_SCHEMES {
        for case in bad_inputs(scheme, secret(scheme), NOW) {
            let mut args = vec![
                "verify".to_owned(),
                "--scheme".into(),
                scheme.name().into(),
                "--secret".into(),
                secret(scheme).into(),
                "--now".into(),
                NOW.to_string(),
            ];
            args.extend(header_args(&case.headers));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = hookvault(&args, &case.body);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(1), "{}: {stdout}", case.name);
            assert!(
                stdout.contains(&format!("{} {}", case.status, case.code)),
                "{}: {stdout}",
                case.name
            );
            assert!(!stdout.contains(secret(scheme)));
        }
    }
}

/// Each usage error exits 2 and its message names the problem: clap also exits 2 for an
/// unknown or renamed flag, so the code alone would not tell these cases from a typo in
/// the test.
#[test]
fn usage_errors_exit_2_and_name_the_problem() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["verify", "--scheme", "svix", "--secret", "x"],
            "unknown scheme \"svix\"",
        ),
        (
            &[
                "verify", "--scheme", "skytells", "--secret", "x", "-H", "no colon",
            ],
            "\"no colon\" is not `Name: value`",
        ),
        (&["verify", "--scheme", "skytells"], "--secret <SECRETS>"),
        (
            &["sign", "--scheme", "standard", "--secret", "whsec_!!!"],
            "must be base64",
        ),
        (&["frobnicate"], "unrecognized subcommand 'frobnicate'"),
        // The operator commands refuse what they cannot do before touching AWS.
        (&["events", "list", "--bucket", "b"], "--since <SINCE>"),
        (
            &["events", "list", "--bucket", "b", "--since", "yesterday"],
            "\"yesterday\" is neither a duration",
        ),
        (
            &[
                "events", "list", "--bucket", "b", "--since", "2h", "--status", "lost",
            ],
            "\"lost\" is not one of",
        ),
        (
            &[
                "events", "list", "--bucket", "b", "--since", "1h", "--until", "2h",
            ],
            "--until is before --since",
        ),
        (
            &[
                "events",
                "list",
                "--bucket",
                "b",
                "--since",
                "99999999999999d",
            ],
            "at most 90 days",
        ),
        (
            &["events", "list", "--bucket", "b", "--since", "91d"],
            "at most 90 days",
        ),
        (
            &[
                "events",
                "list",
                "--bucket",
                "b",
                "--since",
                "2026-02-30T00:00:00Z",
            ],
            "\"2026-02-30T00:00:00Z\" is neither",
        ),
        (
            &[
                "events",
                "list",
                "--bucket",
                "b",
                "--since",
                "2099-01-01T00:00:00Z",
            ],
            "is in the future",
        ),
        (
            &[
                "replay",
                "--bucket",
                "b",
                "--queue-url",
                "q",
                "--since",
                "1h",
                "--status",
                "lost",
            ],
            "\"lost\" is not one of",
        ),
        (
            &["replay", "--bucket", "b", "--queue-url", "q"],
            "<--dlq|--since <SINCE>>",
        ),
        (
            &[
                "replay",
                "--bucket",
                "b",
                "--queue-url",
                "q",
                "--dlq",
                "--since",
                "1h",
            ],
            "'--dlq' cannot be used with '--since <SINCE>'",
        ),
        (
            &["replay", "--bucket", "b", "--queue-url", "q", "--dlq"],
            "--dlq needs --dlq-url",
        ),
        (
            &[
                "send",
                "http://127.0.0.1:9/",
                "--scheme",
                "skytells",
                "--secret",
                "s",
                "--attempts",
                "0",
            ],
            "0 is not in 1..=10",
        ),
    ];
    for (args, says) in cases {
        let out = hookvault(args, b"{}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?} does not say {says:?}: {stderr}"
        );
    }
}

#[test]
fn operator_usage_errors_say_what_to_do() {
    let cases: [(&[&str], &str); 4] = [
        // Neither source: the message names both.
        (
            &["replay", "--bucket", "b", "--queue-url", "q", "--dry-run"],
            "--dlq",
        ),
        // An empty DLQ URL (`HOOKVAULT_DLQ_URL=` in a shell) is named, not sent to SQS.
        (
            &[
                "replay",
                "--bucket",
                "b",
                "--queue-url",
                "q",
                "--dlq",
                "--dlq-url",
                "",
            ],
            "empty",
        ),
        (
            &["replay", "--bucket", "b", "--queue-url", "q", "--dlq"],
            "DlqUrl",
        ),
        // A year no calendar holds: refused, not an arithmetic overflow.
        (
            &[
                "events",
                "list",
                "--bucket",
                "b",
                "--since",
                "9223372036854775807-01-01T00:00:00Z",
            ],
            "RFC 3339",
        ),
    ];
    for (args, says) in cases {
        let out = hookvault(args, b"");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{args:?} does not say {says:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn help_explains_each_scheme() {
    let out = hookvault(&["verify", "--help"], b"");
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "x-skytells-signature",
        "X-Hub-Signature-256",
        "webhook-signature",
        "Stripe-Signature",
    ] {
        assert!(text.contains(needle), "{needle} missing from --help");
    }
}

/// `send` POSTs a request that the core verifies, and reports the server's status.
#[test]
fn send_posts_a_signed_request_and_prints_the_status() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut headers = Vec::new();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .unwrap()
            .1
            .parse()
            .unwrap();
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let ring = KeyRing::single(Scheme::Skytells, "send-secret").unwrap();
        let ok = Scheme::Skytells
            .verify(&ring, &headers, &body, &VerifyOptions::at(NOW))
            .is_ok();
        let answer = if ok {
            "HTTP/1.1 202 Accepted\r\ncontent-length: 13\r\n\r\n{\"queued\":1}\n"
        } else {
            "HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n"
        };
        let mut stream = stream;
        stream.write_all(answer.as_bytes()).unwrap();
        ok
    });
    let url = format!("http://{addr}/webhooks/skytells");
    let out = hookvault(
        &[
            "send",
            &url,
            "--scheme",
            "skytells",
            "--secret",
            "send-secret",
        ],
        &sample_body(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        server.join().unwrap(),
        "the server did not verify the request"
    );
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.starts_with("HTTP 202"), "{stdout}");
}

/// `HOOKVAULT_SECRET` stands in for `--secret` (sign, verify, send), so a secret stays out
/// of the shell history and the process list; `--help` never shows its value.
#[test]
fn the_secret_may_come_from_hookvault_secret() {
    let run = |args: &[&str], secret: Option<&str>, stdin: &[u8]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookvault"));
        cmd.args(args)
            .env_remove("HOOKVAULT_SECRET")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(s) = secret {
            cmd.env("HOOKVAULT_SECRET", s);
        }
        let mut child = cmd.spawn().unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin);
        child.wait_with_output().unwrap()
    };
    let body = sample_body();
    let from_env = run(
        &["sign", "--scheme", "skytells"],
        Some("env-secret-42"),
        &body,
    );
    assert!(
        from_env.status.success(),
        "{}",
        String::from_utf8_lossy(&from_env.stderr)
    );
    let from_flag = run(
        &["sign", "--scheme", "skytells", "--secret", "env-secret-42"],
        None,
        &body,
    );
    assert_eq!(
        from_env.stdout, from_flag.stdout,
        "the same signature either way"
    );
    let header = String::from_utf8(from_env.stdout).unwrap();
    let header = header.trim_end();
    let ok = run(
        &["verify", "--scheme", "skytells", "-H", header],
        Some("env-secret-42"),
        &body,
    );
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let wrong = run(
        &["verify", "--scheme", "skytells", "-H", header],
        Some("other"),
        &body,
    );
    assert_eq!(wrong.status.code(), Some(1));
    // Without either, a usage error naming the flag.
    let none = run(&["sign", "--scheme", "skytells"], None, &body);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("--secret"));
    // --help names the variable but not its value.
    let help = run(&["sign", "--help"], Some("env-secret-42"), b"");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("HOOKVAULT_SECRET"), "{text}");
    assert!(!text.contains("env-secret-42"), "{text}");
}
