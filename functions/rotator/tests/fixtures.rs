//! The rotator's event fixtures, `events/rotator/`: one Secrets Manager rotation event per
//! step and the daily EventBridge schedule, read as the rotator's `main` reads its payload
//! (`Input::parse` of the JSON value), down to the step it dispatches.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use hookvault_rotator::event::{Input, RotationEvent, Step};
use hookvault_rotator::RotationError;
use serde_json::Value;

/// `(file stem, fixture, the step it names)`, in protocol order.
const STEPS: [(&str, &str, Step); 4] = [
    (
        "createSecret",
        include_str!("../../../events/rotator/createSecret.json"),
        Step::Create,
    ),
    (
        "setSecret",
        include_str!("../../../events/rotator/setSecret.json"),
        Step::Set,
    ),
    (
        "testSecret",
        include_str!("../../../events/rotator/testSecret.json"),
        Step::Test,
    ),
    (
        "finishSecret",
        include_str!("../../../events/rotator/finishSecret.json"),
        Step::Finish,
    ),
];

const SCHEDULED: &str = include_str!("../../../events/rotator/scheduled.json");

/// The stack `hookvault`'s webhook secret (`${AWS::StackName}/webhook-secret`, with the
/// six characters Secrets Manager appends to a secret's ARN).
const SECRET_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:hookvault/webhook-secret-Xy7Qz1";

fn value(text: &str) -> Value {
    serde_json::from_str(text).expect("a fixture is JSON")
}

fn rotation(text: &str) -> RotationEvent {
    match Input::parse(value(text)).unwrap() {
        Input::Rotation(e) => e,
        Input::Scheduled => panic!("a rotation fixture was read as the schedule"),
    }
}

#[test]
fn each_step_fixture_parses_to_its_step() {
    for (stem, text, step) in STEPS {
        let e = rotation(text);
        assert_eq!(e.step.parse::<Step>().unwrap(), step, "{stem}.json");
        assert_eq!(step.as_str(), stem, "the file is named after its Step");
        assert_eq!(e.secret_id, SECRET_ARN);
    }
}

#[test]
fn the_four_steps_are_one_rotation() {
    let events: Vec<RotationEvent> = STEPS.iter().map(|(_, text, _)| rotation(text)).collect();
    let token = &events[0].token;
    // Secrets Manager names the new version with the token in every step.
    assert!(events.iter().all(|e| &e.token == token));
    assert_eq!(token.len(), 36, "a UUID, as RotateSecret generates");
    assert!(events.iter().all(|e| e.secret_id == events[0].secret_id));
}

#[test]
fn rotation_token_is_kept_as_sent() {
    for (stem, text, _) in STEPS {
        let e = rotation(text);
        // AWS documents `RotationToken` besides the three fields the rotator reads
        // (https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotate-secrets_lambda.html).
        assert_eq!(
            e.extra.keys().collect::<Vec<_>>(),
            ["RotationToken"],
            "{stem}.json"
        );
        assert!(e.extra["RotationToken"].is_string());
        // What the rotator keeps of an event is the event: nothing lost, nothing added.
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            value(text),
            "{stem}.json"
        );
    }
}

#[test]
fn a_rotation_event_without_its_fields_is_refused() {
    for field in ["SecretId", "ClientRequestToken"] {
        let mut v = value(STEPS[1].1);
        v.as_object_mut().unwrap().remove(field);
        assert!(
            matches!(Input::parse(v), Err(RotationError::UnknownEvent)),
            "without {field}"
        );
    }
    let mut v = value(STEPS[1].1);
    v["Step"] = "set_secret".into();
    let Input::Rotation(e) = Input::parse(v).unwrap() else {
        panic!("still a rotation event");
    };
    // The steps are camelCase in the events Secrets Manager sends; the snake_case names
    // in AWS's prose are not accepted.
    assert!(matches!(
        e.step.parse::<Step>(),
        Err(RotationError::UnknownStep(_))
    ));
}

#[test]
fn scheduled_fixture_is_the_daily_sweep() {
    let v = value(SCHEDULED);
    assert_eq!(v["source"], "aws.events");
    assert_eq!(v["detail-type"], "Scheduled Event");
    assert!(v["resources"][0]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:events:us-east-1:123456789012:rule/"));
    assert!(matches!(Input::parse(v).unwrap(), Input::Scheduled));
}
