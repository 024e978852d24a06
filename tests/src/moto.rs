//! moto server: S3, SQS and Secrets Manager on 127.0.0.1.

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
    _dir: TempDir,
}

impl Moto {
    /// Starts moto on a free port (or `port`) and waits until it answers.
    pub async fn start(port: Option<u16>) -> Result<Self, StackError> {
        let bin = paths::moto_server()?;
        let port = match port {
            Some(p) => p,
            None => free_port()?,
        };
        let dir = TempDir::new("moto")?;
        let mut cmd = Command::new(bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
        let mut service = Service::spawn(cmd, dir.0.join("moto.log"))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        service
            .wait_http(&format!("{endpoint}/moto-api/"), Duration::from_secs(30))
            .await?;
        Ok(Moto {
            endpoint,
            service,
            _dir: dir,
        })
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
