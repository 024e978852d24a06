//! moto server: S3, SQS and Secrets Manager on 127.0.0.1, started through
//! `tests/moto/serve.py`, which adds what moto lacks: `RotateSecret` invoking a rotation
//! Lambda that runs under `cargo lambda watch` ([`Moto::route_rotation`]).

use std::time::Duration;

use tokio::process::Command;

use crate::process::{free_port, Service, TempDir};
use crate::{paths, StackError};

/// A running moto server.
#[derive(Debug)]
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    service: Service,
    routes: std::path::PathBuf,
    _dir: TempDir,
}

impl Moto {
    /// Starts moto on a free port (or `port`) and waits until it answers.
    pub async fn start(port: Option<u16>) -> Result<Self, StackError> {
        paths::moto_server()?;
        let port = match port {
            Some(p) => p,
            None => free_port()?,
        };
        let dir = TempDir::new("moto")?;
        let routes = dir.0.join("rotation-routes.json");
        std::fs::write(&routes, "{}")?;
        let mut cmd = Command::new(paths::tools().join("venv/bin/python"));
        cmd.arg(paths::root().join("tests/moto/serve.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("HOOKVAULT_ROTATION_ROUTES", &routes)
            // PurgeQueue at any time, not once a minute as in AWS: the edge benchmark
            // starts every run on an empty queue (moto slows down as a queue fills).
            .env("MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR", "false");
        let mut service = Service::spawn(cmd, dir.0.join("moto.log"))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        service
            .wait_http(&format!("{endpoint}/moto-api/"), Duration::from_secs(30))
            .await?;
        Ok(Moto {
            endpoint,
            service,
            routes,
            _dir: dir,
        })
    }

    /// Makes `RotateSecret` for rotation function `lambda_arn` invoke the steps at
    /// `invoke_url` (a Lambda under `cargo lambda watch`), or, with `None`, only stage the
    /// new version (the caller then invokes the steps, as a test that stops between them).
    pub fn route_rotation(
        &self,
        lambda_arn: &str,
        invoke_url: Option<&str>,
    ) -> Result<(), StackError> {
        let mut routes: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&self.routes)?).unwrap_or_default();
        routes.insert(lambda_arn.to_owned(), invoke_url.into());
        std::fs::write(&self.routes, serde_json::Value::Object(routes).to_string())?;
        Ok(())
    }

    /// What moto printed (the rotation driver's lines among it).
    pub fn logs(&self) -> String {
        self.service.output()
    }

    /// Stops moto (to inject an outage).
    pub async fn stop(&mut self) {
        self.service.stop().await;
    }

    /// Forgets every resource (`POST /moto-api/reset`).
    pub async fn reset(&self) -> Result<(), StackError> {
        reqwest::Client::new()
            .post(format!("{}/moto-api/reset", self.endpoint))
            .send()
            .await
            .map_err(|e| StackError::Start(format!("moto reset: {e}")))?;
        Ok(())
    }
}

/// The SDK configuration every local client shares: moto at `endpoint`, `us-east-1`,
/// moto's test credentials.
pub fn sdk_config(endpoint: &str) -> aws_types::SdkConfig {
    aws_types::SdkConfig::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_types::region::Region::new("us-east-1"))
        .credentials_provider(aws_types::sdk_config::SharedCredentialsProvider::new(
            aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "localstack"),
        ))
        .build()
}
