//! What the rotator is invoked with: a Secrets Manager rotation step, or an EventBridge
//! scheduled event.

use serde::{Deserialize, Serialize};

use crate::error::RotationError;

/// One of the four rotation steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Make the new value (`AWSPENDING`).
    Create,
    /// Put it where it is used.
    Set,
    /// Prove it works.
    Test,
    /// Make it `AWSCURRENT`.
    Finish,
}

impl Step {
    /// The step's name in the event.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Create => "createSecret",
            Step::Set => "setSecret",
            Step::Test => "testSecret",
            Step::Finish => "finishSecret",
        }
    }
}

impl std::str::FromStr for Step {
    type Err = RotationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "createSecret" => Step::Create,
            "setSecret" => Step::Set,
            "testSecret" => Step::Test,
            "finishSecret" => Step::Finish,
            other => return Err(RotationError::UnknownStep(other.chars().take(40).collect())),
        })
    }
}

/// Secrets Manager's rotation event. Fields it adds later (`RotationToken`, …) are kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotationEvent {
    /// The secret's ARN or name.
    #[serde(rename = "SecretId")]
    pub secret_id: String,
    /// The version being rotated to.
    #[serde(rename = "ClientRequestToken")]
    pub token: String,
    /// `createSecret`, `setSecret`, `testSecret` or `finishSecret`.
    #[serde(rename = "Step")]
    pub step: String,
    /// Everything else, kept as sent.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// What the function was invoked with.
#[derive(Debug, Clone)]
pub enum Input {
    /// A rotation step.
    Rotation(RotationEvent),
    /// The schedule (EventBridge rule or Scheduler).
    Scheduled,
}

impl Input {
    /// Classifies an event.
    pub fn parse(v: serde_json::Value) -> Result<Self, RotationError> {
        if v.get("Step").is_some() {
            return serde_json::from_value(v)
                .map(Input::Rotation)
                .map_err(|_| RotationError::UnknownEvent);
        }
        let detail_type = v.get("detail-type").and_then(|d| d.as_str());
        let source = v.get("source").and_then(|d| d.as_str());
        if detail_type == Some("Scheduled Event")
            || matches!(source, Some("aws.events" | "aws.scheduler"))
        {
            return Ok(Input::Scheduled);
        }
        Err(RotationError::UnknownEvent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rotation_events_keep_unknown_fields() {
        let v = json!({"SecretId": "arn:s", "ClientRequestToken": "t1", "Step": "setSecret", "RotationToken": "rt"});
        let Input::Rotation(e) = Input::parse(v).unwrap() else {
            panic!("not a rotation")
        };
        assert_eq!(e.step.parse::<Step>().unwrap(), Step::Set);
        assert_eq!(e.extra["RotationToken"], "rt");
        assert_eq!(serde_json::to_value(&e).unwrap()["RotationToken"], "rt");
    }

    #[test]
    fn scheduled_events_and_rubbish() {
        let sched = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        assert!(matches!(Input::parse(sched).unwrap(), Input::Scheduled));
        assert!(matches!(
            Input::parse(json!({"hello": 1})),
            Err(RotationError::UnknownEvent)
        ));
        assert!(matches!(
            Input::parse(json!({"Step": "createSecret"})),
            Err(RotationError::UnknownEvent)
        ));
        assert!(matches!(
            "dropSecret".parse::<Step>(),
            Err(RotationError::UnknownStep(_))
        ));
    }
}
