//! Issue 24, item 5, at a small N: `hookvault-dev soak`'s run (`hookvault_localstack::soak`)
//! with 60 webhooks over 40 s through the live local stack while SQS refuses everything,
//! S3 refuses everything (3 s of it with SQS), SQS throttles a third of its requests, the
//! archiver is killed twice and the CDN fails a tenth of first downloads. Nothing answered
//! 2xx may be missing from the archive, no prediction may get a second manifest, and each
//! fault must be seen to have happened (so this cannot pass with a fault switched off).

use hookvault_localstack::soak::{run, Fault, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_soak_under_faults_loses_nothing_and_archives_each_prediction_once() {
    let r = run(Options {
        n: 60,
        rate: 1.5,
        concurrency: 4,
        visibility_secs: 20,
        // The template sweeps every minute; shortened so the test stays short.
        sweep_secs: 20,
        settle_secs: 150,
        output_bytes: 8 << 10,
    })
    .await
    .unwrap();
    let table = r.table();
    println!("{table}");
    let t = r.tally;

    // Nothing lost, nothing archived twice, everything accepted and archived.
    assert!(r.settled, "not settled before the deadline\n{table}");
    assert_eq!((t.lost, t.duplicates), (0, 0), "{table}");
    assert_eq!(t.sent, 60, "{table}");
    assert_eq!(
        t.answered_2xx, t.sent,
        "the sender's retries got every webhook in\n{table}"
    );
    assert_eq!(t.archived, t.answered_2xx, "{table}");
    assert_eq!(r.left, (0, 0, 0), "queue, spool and DLQ empty\n{table}");

    // Each fault happened.
    let during = |fault: Fault| {
        r.applied
            .iter()
            .zip(&r.during)
            .find(|(w, _)| w.fault == fault)
            .map(|(_, d)| *d)
            .unwrap_or_else(|| panic!("{fault:?} was not applied\n{table}"))
    };
    let (_, spooled, refused, _) = during(Fault::SqsRefusesAll);
    assert!(spooled > 0, "SQS down: the edge spooled\n{table}");
    assert!(
        refused > 0 && t.answered_503 > 0,
        "SQS and S3 down: 503, retried\n{table}"
    );
    assert!(r.proxy.sqs_refused > 0 && r.proxy.s3_refused > 0, "{table}");
    assert!(r.proxy.sqs_throttled > 0, "SQS throttled\n{table}");
    assert_eq!(r.archiver_restarts, 2, "{table}");
    assert!(
        r.held_at_kills.len() == 2 && r.held_at_kills.iter().all(|&n| n > 0),
        "each kill took messages in flight with it\n{table}"
    );
    let (failed_first, fetched_again) = r.cdn_first_failures;
    assert!(
        failed_first >= 5,
        "a tenth of 60 first downloads failed\n{table}"
    );
    assert_eq!(fetched_again, failed_first, "{table}");
    // The spool drained by the drainer alone: object-created events and sweeps (an
    // event whose spool object was not deleted is queued again).
    assert!(r.drainer.2 >= t.spooled as u64, "{table}");
}
