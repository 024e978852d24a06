//! The local stack's SQS refuses on SendMessage / SendMessageBatch what Amazon SQS refuses
//! (tests/moto/serve.py adds these rules to moto): characters outside the allowed set
//! (`InvalidMessageContents`), and messages longer than the queue's MaximumMessageSize (by
//! default, and at most, 1 MiB) counted in UTF-8 bytes, every message attribute's name,
//! type and value included (`InvalidParameterValue`); a batch judges each entry alone.

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use hookvault_localstack::sqs;
use hookvault_localstack::stack::LocalStack;

const MIB: usize = 1_048_576;
const CONTENTS: &str = "InvalidMessageContents";
const PARAMETER: &str = "InvalidParameterValue";

fn string_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .unwrap()
}

/// SendMessage of `body` (with attribute `k` = `attr`): `Ok(())`, or the error's code,
/// asserted to come with HTTP 400.
async fn send(sqs: &Client, queue: &str, body: &str, attr: Option<&str>) -> Result<(), String> {
    let mut req = sqs.send_message().queue_url(queue).message_body(body);
    if let Some(value) = attr {
        req = req.message_attributes("k", string_attribute(value));
    }
    let e = match req.send().await {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let Some(service) = e.as_service_error() else {
        panic!("not a service error: {}", DisplayErrorContext(&e));
    };
    let status = e.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(400), "{}", DisplayErrorContext(&e));
    Err(service.code().unwrap_or_default().to_owned())
}

fn refused(code: &str) -> Result<(), String> {
    Err(code.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_message_refuses_what_sqs_refuses() {
    let stack = LocalStack::builder().queue("rules").start().await.unwrap();
    let (client, queue) = (stack.sqs.clone(), stack.queue_url().unwrap().to_owned());

    // Characters: #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF only.
    let allowed = "tab\t LF\n CR\r U+FFFD \u{FFFD} é 中 \u{1F600} \u{10FFFF}";
    assert_eq!(send(&client, &queue, allowed, Some(allowed)).await, Ok(()));
    let got = sqs::drain(&client, &queue).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body(), Some(allowed), "queued as sent");
    for bad in ['\u{FFFE}', '\u{FFFF}', '\u{0}', '\u{8}', '\u{B}', '\u{1F}'] {
        let body = format!("a{bad}b");
        assert_eq!(
            send(&client, &queue, &body, None).await,
            refused(CONTENTS),
            "{bad:?}"
        );
        assert_eq!(
            send(&client, &queue, "ok", Some(&body)).await,
            refused(CONTENTS),
            "{bad:?}"
        );
    }

    // Size: a new queue's MaximumMessageSize is 1 MiB.
    let attrs = client
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(QueueAttributeName::MaximumMessageSize)
        .send()
        .await
        .unwrap();
    let max = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::MaximumMessageSize));
    assert_eq!(max.map(String::as_str), Some("1048576"));
    assert_eq!(send(&client, &queue, &"a".repeat(MIB), None).await, Ok(()));
    assert_eq!(
        send(&client, &queue, &"a".repeat(MIB + 1), None).await,
        refused(PARAMETER)
    );
    // UTF-8 bytes, not characters: 1,048,576 characters, 1,048,577 bytes.
    let wide = format!("{}é", "a".repeat(MIB - 1));
    assert_eq!(send(&client, &queue, &wide, None).await, refused(PARAMETER));
    // Attribute "k", type "String", value "v": 8 bytes more.
    assert_eq!(
        send(&client, &queue, &"a".repeat(MIB - 8), Some("v")).await,
        Ok(())
    );
    assert_eq!(
        send(&client, &queue, &"a".repeat(MIB - 7), Some("v")).await,
        refused(PARAMETER)
    );

    // A queue's own, smaller MaximumMessageSize.
    let small = client
        .create_queue()
        .queue_name("rules-small")
        .attributes(QueueAttributeName::MaximumMessageSize, "2048")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    assert_eq!(send(&client, &small, &"a".repeat(2048), None).await, Ok(()));
    assert_eq!(
        send(&client, &small, &"a".repeat(2049), None).await,
        refused(PARAMETER)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_message_batch_judges_each_entry_alone() {
    let stack = LocalStack::builder()
        .queue("rules-batch")
        .start()
        .await
        .unwrap();
    let (client, queue) = (stack.sqs.clone(), stack.queue_url().unwrap().to_owned());
    client
        .set_queue_attributes()
        .queue_url(&queue)
        .attributes(QueueAttributeName::MaximumMessageSize, "2048")
        .send()
        .await
        .unwrap();
    let entry = |id: &str, body: &str| {
        SendMessageBatchRequestEntry::builder()
            .id(id)
            .message_body(body)
    };

    let out = client
        .send_message_batch()
        .queue_url(&queue)
        .entries(entry("good1", "hello").build().unwrap())
        .entries(entry("badchar", "x\u{FFFE}").build().unwrap())
        .entries(entry("toolong", &"a".repeat(2049)).build().unwrap())
        .entries(
            entry("badattr", "ok")
                .message_attributes("k", string_attribute("\u{0}"))
                .build()
                .unwrap(),
        )
        .entries(entry("good2", "é\u{1F600}").build().unwrap())
        .send()
        .await
        .unwrap();

    let mut sent: Vec<&str> = out.successful().iter().map(|s| s.id()).collect();
    sent.sort_unstable();
    assert_eq!(sent, ["good1", "good2"]);
    let mut failed: Vec<(&str, &str, bool)> = out
        .failed()
        .iter()
        .map(|f| (f.id(), f.code(), f.sender_fault()))
        .collect();
    failed.sort_unstable();
    assert_eq!(
        failed,
        [
            ("badattr", CONTENTS, true),
            ("badchar", CONTENTS, true),
            ("toolong", PARAMETER, true),
        ]
    );
    let mut queued: Vec<String> = sqs::drain(&client, &queue)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| m.body)
        .collect();
    queued.sort_unstable();
    assert_eq!(queued, ["hello", "é\u{1F600}"]);
}

/// The archiver's SQS event fixture (events/archiver/sqs-batch.json) carries the MD5s SQS
/// would give its messages: each message sent to the local SQS with the fixture's body and
/// attributes comes back with the fixture's `md5OfBody` and `md5OfMessageAttributes`.
/// (The fixture's generator computes them by SQS's documented algorithm; only SQS's own
/// implementation, here moto's, can check that.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archiver_fixture_s_md5s_are_the_ones_sqs_computes() {
    let stack = LocalStack::builder()
        .queue("fixture-md5")
        .start()
        .await
        .unwrap();
    let (client, queue) = (stack.sqs.clone(), stack.queue_url().unwrap().to_owned());
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../../events/archiver/sqs-batch.json")).unwrap();
    let records = fixture["Records"].as_array().unwrap();
    assert!(!records.is_empty());
    for r in records {
        let mut req = client
            .send_message()
            .queue_url(&queue)
            .message_body(r["body"].as_str().unwrap());
        for (name, a) in r["messageAttributes"].as_object().unwrap() {
            assert_eq!(a["dataType"], "String", "{name}");
            req =
                req.message_attributes(name, string_attribute(a["stringValue"].as_str().unwrap()));
        }
        let out = req.send().await.unwrap();
        assert_eq!(
            out.md5_of_message_body(),
            r["md5OfBody"].as_str(),
            "{}",
            r["messageId"]
        );
        assert_eq!(
            out.md5_of_message_attributes(),
            r["md5OfMessageAttributes"].as_str(),
            "{}",
            r["messageId"]
        );
    }
}
