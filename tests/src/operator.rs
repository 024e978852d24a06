//! What the operations tests and the drill share: the `hookvault` CLI pointed at the local
//! stack as an operator points it at a real one (the standard credential chain, here moto's
//! test credentials and `AWS_ENDPOINT_URL`; the bucket and queues in `HOOKVAULT_*`), queue
//! depths, and a versioned bucket where "archived once" is countable.

use aws_sdk_sqs::types::QueueAttributeName;

use crate::{paths, StackError};

fn err(e: impl std::fmt::Display) -> StackError {
    StackError::Start(format!("operator: {e}"))
}

/// Where the CLI works: moto's endpoint, the bucket, the queue and its DLQ.
#[derive(Debug, Clone)]
pub struct Target {
    /// moto's endpoint.
    pub endpoint: String,
    /// The archive bucket.
    pub bucket: String,
    /// The events queue.
    pub queue: String,
    /// Its DLQ.
    pub dlq: String,
}

impl Target {
    /// `hookvault` with the environment an operator's shell would have (no profile or
    /// config file read from this machine).
    pub fn command(&self) -> Result<tokio::process::Command, StackError> {
        let mut cmd = tokio::process::Command::new(paths::hookvault_cli()?);
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE")
            .env("HOOKVAULT_BUCKET", &self.bucket)
            .env("HOOKVAULT_QUEUE_URL", &self.queue)
            .env("HOOKVAULT_DLQ_URL", &self.dlq);
        Ok(cmd)
    }

    /// Runs `hookvault ARGS`; its exit code and standard output.
    pub async fn run(&self, args: &[&str]) -> Result<(i32, String, String), StackError> {
        let out = self.command()?.args(args).output().await?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// The `export` lines that point a shell's `hookvault` at this stack.
    pub fn exports(&self) -> String {
        format!(
            "export AWS_ENDPOINT_URL={} AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing\nexport HOOKVAULT_BUCKET={} HOOKVAULT_QUEUE_URL={} HOOKVAULT_DLQ_URL={}",
            self.endpoint, self.bucket, self.queue, self.dlq
        )
    }
}

/// Messages in `queue`, visible or in flight.
pub async fn depth(sqs: &aws_sdk_sqs::Client, queue: &str) -> Result<usize, StackError> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(err)?
        .attributes
        .unwrap_or_default();
    Ok(attrs.values().filter_map(|v| v.parse::<usize>().ok()).sum())
}

/// Turns on versioning, so each write of a key is a version.
pub async fn enable_versioning(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<(), StackError> {
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(err)?;
    Ok(())
}

/// How many versions of `key` were written.
pub async fn versions(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<usize, StackError> {
    Ok(s3
        .list_object_versions()
        .bucket(bucket)
        .prefix(key)
        .send()
        .await
        .map_err(err)?
        .versions()
        .iter()
        .filter(|v| v.key() == Some(key))
        .count())
}
