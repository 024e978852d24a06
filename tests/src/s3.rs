//! An S3 client for the local stack (moto), and helpers to read what the archiver wrote.

use aws_sdk_s3::Client;

use crate::StackError;

/// A client for `endpoint` (moto), path-style, with moto's test credentials.
pub fn client(endpoint: &str) -> Client {
    let config = aws_sdk_s3::config::Builder::from(&crate::moto::sdk_config(endpoint))
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

fn err(e: impl std::fmt::Display) -> StackError {
    StackError::Start(format!("s3: {e}"))
}

/// Creates a bucket.
pub async fn create_bucket(s3: &Client, name: &str) -> Result<(), StackError> {
    s3.create_bucket()
        .bucket(name)
        .send()
        .await
        .map_err(|e| err(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    Ok(())
}

/// An object's bytes and content type, or `None` if it does not exist.
pub async fn get(
    s3: &Client,
    bucket: &str,
    key: &str,
) -> Result<Option<(Vec<u8>, Option<String>)>, StackError> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => {
            let ct = o.content_type.clone();
            let bytes = o.body.collect().await.map_err(err)?.into_bytes().to_vec();
            Ok(Some((bytes, ct)))
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
        Err(e) => Err(err(aws_sdk_s3::error::DisplayErrorContext(e))),
    }
}

/// Every key under `prefix`.
pub async fn keys(s3: &Client, bucket: &str, prefix: &str) -> Result<Vec<String>, StackError> {
    let out = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .map_err(|e| err(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    Ok(out
        .contents
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| o.key)
        .collect())
}

/// Multipart uploads still open (none should survive a failure).
pub async fn open_uploads(s3: &Client, bucket: &str) -> Result<usize, StackError> {
    let out = s3
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| err(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    Ok(out.uploads.unwrap_or_default().len())
}

/// A Secrets Manager client for `endpoint` (moto), with moto's test credentials.
pub fn secrets_client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&crate::moto::sdk_config(endpoint))
}
