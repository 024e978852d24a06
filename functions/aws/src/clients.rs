//! SDK clients for the Lambdas.

use crate::credentials::EnvCredentials;
use crate::env::{self, EnvError};

#[cfg(feature = "s3")]
/// An S3 client for `AWS_REGION`, honouring `AWS_ENDPOINT_URL` (with path-style
/// addressing, which moto needs) when set.
pub fn s3() -> Result<aws_sdk_s3::Client, EnvError> {
    let mut b = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(env::region()?))
        .credentials_provider(EnvCredentials);
    if let Some(url) = env::endpoint_url() {
        b = b.endpoint_url(url).force_path_style(true);
    }
    Ok(aws_sdk_s3::Client::from_conf(b.build()))
}

/// A Secrets Manager client for `AWS_REGION`, honouring `AWS_ENDPOINT_URL` when set.
#[cfg(feature = "secretsmanager")]
pub fn secrets_manager() -> Result<aws_sdk_secretsmanager::Client, EnvError> {
    let mut b = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new(env::region()?))
        .credentials_provider(EnvCredentials);
    if let Some(url) = env::endpoint_url() {
        b = b.endpoint_url(url);
    }
    Ok(aws_sdk_secretsmanager::Client::from_conf(b.build()))
}
