//! A live local pipeline: the event-source poller keeps feeding the archiver, so any
//! webhook sent to the edge (by `hookvault send`, curl, or a tunnel from a real provider)
//! ends in the local S3. `hookvault-dev serve` starts one; `hookvault-dev demo --serve`
//! keeps the demo's stack live the same way.

use std::sync::Arc;
use std::time::Duration;

use crate::api::CALLER_KEY;
use crate::lambda::LambdaFunction;
use crate::operator::Target;
use crate::poller::Poller;
use crate::provider::keys::INITIAL_WEBHOOK_SECRET;
use crate::stack::{LocalStack, LocalStackBuilder};
use crate::{paths, process, StackError};

/// moto's port when free: the one `edge/wrangler.toml`'s `[env.local]` points at, so
/// `wrangler dev --env local` can use this stack's queue and bucket.
pub const MOTO_PORT: u16 = 4566;
/// The edge's port when free (wrangler dev's default, for the same URLs either way).
pub const EDGE_PORT: u16 = 8787;
/// The queue (with `{QUEUE}-dlq` after [`MAX_RECEIVES`] receives) and the bucket.
pub const QUEUE: &str = "hookvault-events";
/// Receives before SQS moves a message to the DLQ: the template's `MaxReceiveCount`
/// default (15, derived there from the provider's 300-second output window), so a
/// failing record in the live stack reaches the DLQ when it would in AWS.
pub const MAX_RECEIVES: u32 = 15;
/// The queue's visibility timeout, seconds: the template's `VisibilityTimeout` (130 s,
/// the archiver's 120-second Timeout plus 10 s). The archiver sets each failed record's
/// own visibility (`ChangeMessageVisibility`, seconds) before reporting it, so this
/// applies, as in AWS, only to an invocation that crashed or timed out.
pub const VISIBILITY_TIMEOUT_SECS: i32 = 130;
/// The archive bucket.
pub const BUCKET: &str = "hookvault-archive";
/// The reconciler's check queue (issue 23): the api schedules a check of each prediction
/// it submits there, and the reconciler takes them.
pub const CHECK_QUEUE: &str = "hookvault-checks";
/// The check queue's visibility timeout, seconds: the template's `CheckQueue`
/// `VisibilityTimeout` (the reconciler's 60-second Timeout plus 10 s).
pub const CHECK_VISIBILITY_TIMEOUT_SECS: i32 = 70;

/// Feeds `archiver` from `queue` until aborted, as Lambda's event-source mapping does
/// (a failed record comes back after `visibility_timeout` seconds), printing one line per
/// batch when `verbose`.
pub fn spawn_poller(
    sqs: aws_sdk_sqs::Client,
    queue: String,
    archiver: Arc<LambdaFunction>,
    visibility_timeout: i32,
    verbose: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let poller = Poller {
            queue_url: queue,
            batch_size: 10,
            visibility_timeout,
        };
        loop {
            match poller.poll(&sqs, &archiver).await {
                Ok(p) if p.delivered > 0 && verbose => println!(
                    "poller: delivered {} to the archiver: {} archived and deleted, {} left for redelivery",
                    p.delivered, p.deleted, p.failed
                ),
                Ok(_) => {}
                Err(e) => {
                    if verbose {
                        println!("poller: {e}");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    })
}

/// Waits for Ctrl-C (SIGINT), SIGTERM, or SIGHUP (the terminal closed). Each local
/// service leads its own process group, so only this process gets the signal; returning
/// drops the services, which kills their groups.
pub async fn until_stopped() -> Result<(), StackError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = hangup.recv() => {}
    }
    Ok(())
}

/// `port` if nothing listens there, else a free one.
pub fn port_or_free(port: u16) -> Result<u16, StackError> {
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(port),
        Err(_) => process::free_port(),
    }
}

/// A sample prediction webhook whose output is on the stand-in CDN (`cdn`), written to
/// `target/hookvault-dev/webhook.json`; its path.
pub fn sample_webhook(cdn: &str) -> Result<std::path::PathBuf, StackError> {
    let dir = paths::root().join("target/hookvault-dev");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("webhook.json");
    let id = format!("pred_live_{}", std::process::id());
    std::fs::write(
        &path,
        format!(
            r#"{{"id":"{id}","status":"succeeded","model":"flux-1","output":["{cdn}/files/{id}.png?size=65536"]}}"#
        ),
    )?;
    Ok(path)
}

/// What to tell the person at the terminal: every endpoint, the secret, and how to read
/// the archive.
pub fn instructions(
    edge: &str,
    provider: &str,
    secret: &str,
    sample: &std::path::Path,
    target: &Target,
    api: Option<&str>,
) -> String {
    let hook = format!("{edge}/webhooks/skytells");
    let cli = paths::root().join("target/debug/hookvault");
    let mut out = format!(
        "edge (webhooks):  {hook}\n\
         webhook secret:   {secret}   (scheme skytells: x-skytells-signature over the raw body)\n\
         moto (S3, SQS):   {endpoint}   bucket {bucket}, queue {queue}, DLQ {dlq}\n\
         \x20 the stand-in provider and its CDN: {provider}   (outputs: {provider}/files/NAME.png?size=BYTES)\n\
         \n\
         send a signed webhook (its output is on the stand-in CDN, which the archiver may download):\n\
         \x20 {cli} send {hook} --scheme skytells --secret {secret} {sample}\n\
         then read the archive with the operator CLI:\n\
         \x20 {exports}\n\
         \x20 {cli} events list --since 1h\n",
        endpoint = target.endpoint,
        bucket = target.bucket,
        queue = target.queue,
        dlq = target.dlq,
        sample = sample.display(),
        exports = target.exports().replace('\n', "\n  "),
        cli = cli.display(),
    );
    if let Some(api) = api {
        out.push_str(&format!(
            "the api (Function URL):  {api}/predictions   Authorization: Bearer {CALLER_KEY}\n\
             \x20 each prediction it submits is checked by the reconciler ({CHECK_QUEUE}): a lost webhook is fetched and archived as reconciled\n"
        ));
    }
    out.push_str("Ctrl-C stops everything.");
    out
}

/// The live stack's builder, as `hookvault-dev serve` and `demo` start it: moto on
/// [`MOTO_PORT`] and the edge on [`EDGE_PORT`] when free, the queue [`QUEUE`] with its DLQ
/// after [`MAX_RECEIVES`] receives, the bucket [`BUCKET`], the edge with its own defaults
/// (as deployed), the stand-in provider and CDN, and the api's secrets. The caller adds
/// the edge's `WEBHOOK_SECRETS`.
pub fn builder() -> Result<LocalStackBuilder, StackError> {
    Ok(LocalStack::builder()
        .moto_port(port_or_free(MOTO_PORT)?)
        .queue_with_dlq(QUEUE, MAX_RECEIVES)
        .bucket(BUCKET)
        .edge_port(port_or_free(EDGE_PORT)?)
        .edge_own_defaults()
        .provider()
        .api_secrets())
}

/// The operator CLI's view of a live stack: its moto, [`BUCKET`], the queue and its DLQ.
/// Error: the stack has no queue with a DLQ.
pub fn target(stack: &LocalStack) -> Result<Target, StackError> {
    Ok(Target {
        endpoint: stack.moto.endpoint.clone(),
        bucket: BUCKET.to_owned(),
        queue: stack.queue_url()?.to_owned(),
        dlq: stack.dlq_url()?.to_owned(),
    })
}

/// `hookvault-dev serve`: moto, the edge in workerd, the stand-in provider and CDN, the
/// api, the archiver and the reconciler under `cargo lambda watch`, and the pollers (the
/// events queue → the archiver, the check queue → the reconciler), until Ctrl-C.
pub async fn serve() -> Result<String, StackError> {
    let secret = INITIAL_WEBHOOK_SECRET;
    println!(
        "starting the stack, the api, the archiver and the reconciler under `cargo lambda watch`…"
    );
    let mut stack = builder()?
        .edge_var("WEBHOOK_SECRETS", secret)
        .check_queue(CHECK_QUEUE)
        .api(&[])
        .reconciler(&[])
        .start()
        .await?;
    let archiver = start_archiver(&stack).await?;
    let api = stack.api.take();
    // The reconciler's checks, fed as Lambda's event source feeds them.
    let checks = match stack.reconciler.take() {
        Some(reconciler) => Some(spawn_poller(
            stack.sqs.clone(),
            stack.check_queue()?.url.clone(),
            Arc::new(reconciler),
            CHECK_VISIBILITY_TIMEOUT_SECS,
            false,
        )),
        None => None,
    };
    keep_serving(
        stack.sqs.clone(),
        archiver,
        &target(&stack)?,
        &stack.edge()?.url,
        &stack.provider()?.url,
        secret,
        api.as_ref().map(|a| a.function_url.as_str()),
    )
    .await?;
    if let Some(checks) = checks {
        checks.abort();
    }
    Ok("stopped: every process of the stack is gone".to_owned())
}

/// The archiver of the live stack, under `cargo lambda watch`: the stack's bucket
/// ([`BUCKET`]), and the queue's `maxReceiveCount` as the template passes it, so a record
/// failing on its last receive is logged, counted and entered in the event log as
/// `dead_lettered`, as in AWS.
pub async fn start_archiver(stack: &LocalStack) -> Result<LambdaFunction, StackError> {
    let max_receives = MAX_RECEIVES.to_string();
    stack
        .start_archiver(&[("MAX_RECEIVE_COUNT", &max_receives)])
        .await
}

/// Keeps a started stack live until a signal ([`until_stopped`]): prints the
/// [`instructions`] (with a sample webhook whose output is on `provider`'s CDN), and feeds
/// `archiver` from the target's queue meanwhile.
pub async fn keep_serving(
    sqs_client: aws_sdk_sqs::Client,
    archiver: LambdaFunction,
    target: &Target,
    edge: &str,
    provider: &str,
    secret: &str,
    api: Option<&str>,
) -> Result<(), StackError> {
    let sample = sample_webhook(provider)?;
    println!(
        "\n{}",
        instructions(edge, provider, secret, &sample, target, api)
    );
    let poller = spawn_poller(
        sqs_client,
        target.queue.clone(),
        Arc::new(archiver),
        VISIBILITY_TIMEOUT_SECS,
        true,
    );
    until_stopped().await?;
    poller.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The value after `key: ` on the first line at or after the line `block` in the
    /// template (a plain scan: the template's layout is fixed by cfn-lint and our rules).
    fn template_value(template: &str, block: &str, key: &str) -> Option<String> {
        let lines: Vec<&str> = template.lines().collect();
        let start = lines.iter().position(|l| *l == block)?;
        lines[start + 1..]
            .iter()
            .take_while(|l| l.starts_with("   ") || l.trim().is_empty())
            .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    }

    #[test]
    fn the_live_queue_is_set_as_the_template_sets_the_events_queue() {
        let template =
            std::fs::read_to_string(crate::paths::root().join("infra/template.yaml")).unwrap();
        assert_eq!(
            template_value(&template, "  MaxReceiveCount:", "Default").as_deref(),
            Some(super::MAX_RECEIVES.to_string().as_str())
        );
        assert_eq!(
            template_value(&template, "  EventsQueue:", "VisibilityTimeout").as_deref(),
            Some(super::VISIBILITY_TIMEOUT_SECS.to_string().as_str())
        );
        assert_eq!(
            template_value(&template, "  CheckQueue:", "VisibilityTimeout").as_deref(),
            Some(super::CHECK_VISIBILITY_TIMEOUT_SECS.to_string().as_str())
        );
    }
}
