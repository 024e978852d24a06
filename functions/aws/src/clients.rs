//! SDK clients for the Lambdas, built from one [`aws_types::SdkConfig`]: `AWS_REGION`,
//! the credentials Lambda puts in the environment, and `AWS_ENDPOINT_URL` when set (the
//! local stack's moto).

use aws_smithy_runtime_api::client::behavior_version::BehaviorVersion;
use aws_types::region::Region;
use aws_types::sdk_config::SharedCredentialsProvider;

use crate::credentials::EnvCredentials;
use crate::env::{self, EnvError};

/// The configuration every client shares.
pub fn sdk_config() -> Result<aws_types::SdkConfig, EnvError> {
    let mut b = aws_types::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(env::region()?))
        .credentials_provider(SharedCredentialsProvider::new(EnvCredentials));
    if let Some(url) = env::endpoint_url() {
        b = b.endpoint_url(url);
    }
    Ok(b.build())
}

/// An S3 client; path-style addressing under an endpoint override (moto needs it).
#[cfg(feature = "s3")]
pub fn s3() -> Result<aws_sdk_s3::Client, EnvError> {
    let config = aws_sdk_s3::config::Builder::from(&sdk_config()?)
        .force_path_style(env::endpoint_url().is_some())
        .build();
    Ok(aws_sdk_s3::Client::from_conf(config))
}

/// A Secrets Manager client.
#[cfg(feature = "secretsmanager")]
pub fn secrets_manager() -> Result<aws_sdk_secretsmanager::Client, EnvError> {
    Ok(aws_sdk_secretsmanager::Client::new(&sdk_config()?))
}

/// An SQS client (the archiver's `ChangeMessageVisibility`).
#[cfg(feature = "sqs")]
pub fn sqs() -> Result<aws_sdk_sqs::Client, EnvError> {
    Ok(aws_sdk_sqs::Client::new(&sdk_config()?))
}
