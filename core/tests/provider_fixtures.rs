//! The provider's documented objects (`tests/fixtures/skytells/README.md` says where each
//! comes from) are read as hookvault must read them: only `id`, `status` and `output`
//! matter for archiving, and no other member, whatever its shape, stops the parse.
#![allow(missing_docs, clippy::unwrap_used)]

use hookvault_core::event::{prediction_head, PredictionStatus, WebhookEvent};
use hookvault_core::output::{self, Source};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/skytells/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// (file, id, status, the URLs `output` holds, model name, error message)
type Case = (
    &'static str,
    &'static str,
    PredictionStatus,
    &'static [&'static str],
    Option<&'static str>,
    Option<&'static str>,
);

const CASES: &[Case] = &[
    (
        "webhook_wrapped_succeeded.json",
        "d05b96fc-7fdf-4528-8e61-aa1092f48040",
        PredictionStatus::Succeeded,
        &["https://delivery.skytells.cloud/us/2026/03/06/d05b96fc-output.png"],
        Some("truefusion-pro"),
        None,
    ),
    (
        "get_prediction_response.json",
        "pred_abc123",
        PredictionStatus::Succeeded,
        &["https://cdn.skytells.ai/outputs/pred_abc123.png"],
        Some("truefusion"),
        Some("string"),
    ),
    (
        "prediction_failed_data_removed.json",
        "pred_id....",
        PredictionStatus::Failed,
        &[],
        Some("truefusion"),
        Some("Failed to generate image."),
    ),
    (
        "webhook_bare_training.json",
        "pred_abc123",
        PredictionStatus::Succeeded,
        &["https://cdn.skytells.ai/outputs/pred_abc123/video.mp4"],
        Some("truefusion-video-pro"),
        None,
    ),
    (
        "prediction_succeeded_course.json",
        "pred_abc123",
        PredictionStatus::Succeeded,
        &["https://cdn.skytells.ai/outputs/pred_abc123/output.png"],
        None,
        None,
    ),
    (
        "sdk_test_webhook_body.json",
        "p1",
        PredictionStatus::Succeeded,
        &[],
        None,
        None,
    ),
];

#[test]
fn every_documented_object_is_read_with_its_files_model_and_error() {
    for (file, id, status, urls, model, message) in CASES {
        let body = fixture(file);
        let ev = WebhookEvent::parse(&body).unwrap_or_else(|e| panic!("{file}: {e}"));
        let p = &ev.prediction;
        assert_eq!((p.id.as_str(), &p.status), (*id, status), "{file}");
        let found: Vec<&str> = output::files(&p.output)
            .into_iter()
            .map(|f| match f.source {
                Source::Url(u) => u,
                Source::DataUri(d) => d,
            })
            .collect();
        assert_eq!(found, *urls, "{file}");
        assert_eq!(p.model_name().as_deref(), *model, "{file}");
        assert_eq!(p.provider_error().message.as_deref(), *message, "{file}");
        // The cheap head the edge and the archiver read first agrees with the full parse.
        let head = prediction_head(&body).unwrap();
        assert_eq!((head.id.as_str(), &head.status), (*id, status), "{file}");
    }
}

#[test]
fn the_wrapped_body_names_its_event_and_keeps_every_member() {
    let ev = WebhookEvent::parse(&fixture("webhook_wrapped_succeeded.json")).unwrap();
    assert_eq!(ev.event_type.as_deref(), Some("prediction.succeeded"));
    let p = ev.prediction;
    for member in [
        "model",
        "stream",
        "type",
        "privacy",
        "source",
        "input",
        "webhook",
        "metrics",
        "created_at",
        "started_at",
        "completed_at",
        "updated_at",
    ] {
        assert!(p.extra.contains_key(member), "{member} kept");
    }
    assert_eq!(p.completed_at(), Some("2026-03-06T20:15:23+00:00"));
    assert!(PredictionStatus::Failed.is_terminal());
    let failed = WebhookEvent::parse(&fixture("prediction_failed_data_removed.json")).unwrap();
    assert!(failed.prediction.data_removed());
}
