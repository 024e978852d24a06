//! The Secrets Manager calls a rotation makes, with errors that name the secret and the
//! operation. Values are always read by stage or by version id with its stage, never by
//! default (some emulators return a stale version then).

use std::collections::HashMap;

use aws_sdk_secretsmanager::Client;

use crate::error::RotationError;

/// The stage of the live value.
pub const CURRENT: &str = "AWSCURRENT";
/// The stage of the value being rotated to.
pub const PENDING: &str = "AWSPENDING";
/// The stage of the value before the current one.
pub const PREVIOUS: &str = "AWSPREVIOUS";

/// Tag: Unix seconds of the last `finishSecret` (when the version now `AWSPREVIOUS` stopped
/// being current). Grace periods are counted from it.
pub const TAG_ROTATED_AT: &str = "hookvault:rotated-at";
/// Tag: API keys to revoke later, `key_id@unix_seconds` separated by spaces.
pub const TAG_REVOKE: &str = "hookvault:revoke-after";
/// Tag: the version whose `createSecret` made (or is making) a value. A `testSecret` for
/// a pending version with no value and another token is Secrets Manager's configuration
/// test ([`crate::configuration_test`]); with this token it is a rotation whose value
/// went missing.
pub const TAG_PENDING_VERSION: &str = "hookvault:pending-version";

/// Tag: in `general` key mode, the Unix seconds after which the edge's key ring still
/// holds a retired API key whose grace has ended. Set by `finishSecret`; the schedule
/// writes the ring again without it once due, then removes the tag.
pub const TAG_RING_RETIRE_AT: &str = "hookvault:ring-retire-at";

/// Tag: in `general` key mode, the key ids (space-separated) that the edge's key ring may
/// give a `not_after`: set before a ring write to those of the ring deployed and the new
/// one, after it to the new one's, so it never names fewer than the ring deployed. The
/// schedule writes the ring again when it names the `AWSCURRENT` key. No tag: none.
pub const TAG_RING_EXPIRING: &str = "hookvault:ring-expiring";

/// What `DescribeSecret` says about a secret.
#[derive(Debug, Clone, Default)]
pub struct Described {
    /// The secret's ARN (or the id asked for).
    pub arn: String,
    /// Rotation enabled.
    pub rotation_enabled: bool,
    /// Version id → its stages.
    pub stages: HashMap<String, Vec<String>>,
    /// The secret's tags.
    pub tags: HashMap<String, String>,
    /// Last rotation, Unix seconds.
    pub last_rotated: Option<i64>,
    /// Creation, Unix seconds.
    pub created: Option<i64>,
}

impl Described {
    /// The version holding `stage`.
    pub fn version_with(&self, stage: &str) -> Option<&str> {
        self.stages
            .iter()
            .find(|(_, s)| s.iter().any(|x| x == stage))
            .map(|(v, _)| v.as_str())
    }

    /// A numeric tag.
    pub fn tag_secs(&self, key: &str) -> Option<i64> {
        self.tags.get(key).and_then(|v| v.parse().ok())
    }
}

/// Secrets Manager, for one rotator.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
}

fn aws<E>(
    op: &'static str,
    secret: &str,
    e: aws_sdk_secretsmanager::error::SdkError<E>,
) -> RotationError
where
    E: std::error::Error + aws_sdk_secretsmanager::error::ProvideErrorMetadata + 'static,
{
    RotationError::Aws {
        op,
        secret: secret.to_owned(),
        message: hookvault_aws::sdk_error::short(&e),
    }
}

fn secs(d: Option<&aws_smithy_types::DateTime>) -> Option<i64> {
    d.map(|d| d.secs())
}

impl Store {
    /// A store on `client`.
    pub fn new(client: Client) -> Self {
        Store { client }
    }

    /// `DescribeSecret`.
    pub async fn describe(&self, id: &str) -> Result<Described, RotationError> {
        let out = self
            .client
            .describe_secret()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| aws("DescribeSecret", id, e))?;
        Ok(Described {
            arn: out.arn().unwrap_or(id).to_owned(),
            rotation_enabled: out.rotation_enabled().unwrap_or(false),
            stages: out.version_ids_to_stages().cloned().unwrap_or_default(),
            tags: out
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect(),
            last_rotated: secs(out.last_rotated_date()),
            created: secs(out.created_date()),
        })
    }

    /// The value at `stage` (of `version` when given). `None` when there is no such
    /// version or it has no value yet: the placeholder Secrets Manager stages for a new
    /// rotation before `createSecret` writes it.
    pub async fn value(
        &self,
        id: &str,
        version: Option<&str>,
        stage: &str,
    ) -> Result<Option<String>, RotationError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(id)
            .set_version_id(version.map(str::to_owned))
            .version_stage(stage)
            .send()
            .await;
        match out {
            Ok(o) => Ok(o.secret_string),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(aws("GetSecretValue", id, e)),
        }
    }

    /// Writes `value` as version `token` with `AWSPENDING`. Idempotent for the same value.
    pub async fn put_pending(
        &self,
        id: &str,
        token: &str,
        value: &str,
    ) -> Result<(), RotationError> {
        self.client
            .put_secret_value()
            .secret_id(id)
            .client_request_token(token)
            .secret_string(value)
            .version_stages(PENDING)
            .send()
            .await
            .map_err(|e| aws("PutSecretValue", id, e))?;
        Ok(())
    }

    /// Moves `AWSCURRENT` from `from` to `to` (Secrets Manager then marks `from`
    /// `AWSPREVIOUS`).
    pub async fn promote(
        &self,
        id: &str,
        to: &str,
        from: Option<&str>,
    ) -> Result<(), RotationError> {
        self.client
            .update_secret_version_stage()
            .secret_id(id)
            .version_stage(CURRENT)
            .move_to_version_id(to)
            .set_remove_from_version_id(from.map(str::to_owned))
            .send()
            .await
            .map_err(|e| aws("UpdateSecretVersionStage", id, e))?;
        Ok(())
    }

    /// Sets a tag.
    pub async fn tag(&self, id: &str, key: &str, value: &str) -> Result<(), RotationError> {
        let tag = aws_sdk_secretsmanager::types::Tag::builder()
            .key(key)
            .value(value)
            .build();
        self.client
            .tag_resource()
            .secret_id(id)
            .tags(tag)
            .send()
            .await
            .map_err(|e| aws("TagResource", id, e))?;
        Ok(())
    }

    /// Removes a tag.
    pub async fn untag(&self, id: &str, key: &str) -> Result<(), RotationError> {
        self.client
            .untag_resource()
            .secret_id(id)
            .tag_keys(key)
            .send()
            .await
            .map_err(|e| aws("UntagResource", id, e))?;
        Ok(())
    }

    /// `RotateSecret` with the secret's configured rotation function and schedule.
    pub async fn rotate(&self, id: &str) -> Result<Option<String>, RotationError> {
        let out = self
            .client
            .rotate_secret()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| aws("RotateSecret", id, e))?;
        Ok(out.version_id)
    }

    /// Creation time of each version, Unix seconds.
    pub async fn version_dates(&self, id: &str) -> Result<HashMap<String, i64>, RotationError> {
        let out = self
            .client
            .list_secret_version_ids()
            .secret_id(id)
            .include_deprecated(false)
            .send()
            .await
            .map_err(|e| aws("ListSecretVersionIds", id, e))?;
        Ok(out
            .versions()
            .iter()
            .filter_map(|v| Some((v.version_id()?.to_owned(), secs(v.created_date())?)))
            .collect())
    }
}
