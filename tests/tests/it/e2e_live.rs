//! The live local pipeline as a developer uses it (issue #14): `hookvault-dev serve`, then
//! the `hookvault send` line it prints, run as printed, ends with the output in the local
//! S3, found with the `hookvault events list` line it prints; Ctrl-C stops every process
//! the stack started.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use hookvault_core::records::Manifest;
use hookvault_localstack::s3;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Every process below `root` (children, their children, …), from `/proc`.
fn descendants(root: u32) -> BTreeSet<u32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid …": comm may hold spaces and parentheses.
        let Some(after) = stat.rsplit_once(')').map(|(_, rest)| rest.to_owned()) else {
            continue;
        };
        if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
            parent_of.push((pid, ppid));
        }
    }
    let mut found = BTreeSet::from([root]);
    loop {
        let before = found.len();
        for (pid, ppid) in &parent_of {
            if found.contains(ppid) {
                found.insert(*pid);
            }
        }
        if found.len() == before {
            break;
        }
    }
    found.remove(&root);
    found
}

/// True while `pid` runs (a zombie waiting for its parent is not running).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

/// Runs one printed shell line (or several) with `sh -c`: (exit code, stdout, stderr).
async fn shell(script: &str) -> (i32, String, String) {
    let out = tokio::process::Command::new("sh")
        .args(["-c", script])
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `hookvault-dev ARGS` as a terminal runs it: its own process group, which Ctrl-C
/// signals; stdin a pipe that stays open (a terminal nobody types into). Returns the
/// child, its pid, and its stdout's lines.
fn spawn_dev(
    args: &[&str],
) -> (
    tokio::process::Child,
    u32,
    tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) {
    let mut std_cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hookvault-dev"));
    std_cmd
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0);
    let mut cmd = tokio::process::Command::from(std_cmd);
    cmd.kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let pid = child.id().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, pid, stdout)
}

/// Reads lines until one contains `until` (300 s at most); every line read.
async fn read_until(
    stdout: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    until: &str,
) -> Vec<String> {
    let mut printed = Vec::new();
    while !printed.last().is_some_and(|l: &String| l.contains(until)) {
        let line = tokio::time::timeout(Duration::from_secs(300), stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("no {until:?} in 300 s: {printed:#?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("ended before {until:?}: {printed:#?}"));
        printed.push(line);
    }
    printed
}

/// Ctrl-C (SIGINT to the process group, as a terminal sends it): the command exits within
/// 60 s saying it stopped (0 when it was serving, 1 when it had not finished), and none of
/// the processes it had started still runs.
async fn interrupt_and_check_nothing_left(
    mut child: tokio::process::Child,
    pid: u32,
    mut stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    serving: bool,
) {
    let stack = descendants(pid);
    assert!(
        stack.len() >= 3,
        "moto, workerd and `cargo lambda watch` expected below hookvault-dev: {stack:?}"
    );
    let status = std::process::Command::new("kill")
        .args(["-INT", "--", &format!("-{pid}")])
        .status()
        .unwrap();
    assert!(status.success());
    let reader = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = stdout.next_line().await {
            rest.push(line);
        }
        rest
    });
    let exit = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("did not stop within 60 s of Ctrl-C")
        .unwrap();
    assert_eq!(exit.success(), serving, "exited with {exit}");
    let rest = reader.await.unwrap();
    assert!(
        rest.iter().any(|l| l.contains("stopped")),
        "did not say it stopped: {rest:#?}"
    );
    let gone_by = Instant::now() + Duration::from_secs(10);
    let mut left: Vec<u32> = stack.iter().copied().filter(|p| running(*p)).collect();
    while !left.is_empty() && Instant::now() < gone_by {
        tokio::time::sleep(Duration::from_millis(200)).await;
        left.retain(|p| running(*p));
    }
    let names: Vec<String> = left
        .iter()
        .map(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default())
        .map(|c| c.replace('\0', " "))
        .collect();
    assert!(left.is_empty(), "left running after Ctrl-C: {names:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_archives_a_webhook_sent_as_it_prints_and_ctrl_c_leaves_no_process() {
    let (serve, pid, mut stdout) = spawn_dev(&["serve"]);
    // What it prints, up to "Ctrl-C stops everything." (starting the Lambdas under
    // `cargo lambda watch` and moto takes a while on a cold machine).
    let started = Instant::now();
    let printed = read_until(&mut stdout, "Ctrl-C stops everything").await;
    println!("serve ready in {:?}", started.elapsed());
    let find = |needle: &str| -> String {
        printed
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in {printed:#?}"))
            .trim()
            .to_owned()
    };
    for endpoint in [
        "edge (webhooks):",
        "webhook secret:",
        "moto (S3, SQS):",
        "the stand-in provider and its CDN:",
        "api",
    ] {
        find(endpoint);
    }
    // The whole pipeline: the api, the archiver and the reconciler (issue 23), each under
    // `cargo lambda watch`.
    let watched: Vec<String> = descendants(pid)
        .iter()
        .filter_map(|p| std::fs::read(format!("/proc/{p}/cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("lambda watch"))
        .collect();
    for bin in ["api", "archiver", "reconciler"] {
        assert!(
            watched.iter().any(|c| c.contains(&format!("--bin {bin}"))),
            "no `cargo lambda watch --bin {bin}` below serve: {watched:#?}"
        );
    }
    let send = find(" send http");
    let exports: Vec<String> = printed
        .iter()
        .filter(|l| l.trim_start().starts_with("export "))
        .map(|l| l.trim().to_owned())
        .collect();
    assert_eq!(exports.len(), 2, "the export lines: {printed:#?}");
    let list = find(" events list --since 1h");

    // 1. The send line, as printed: the edge accepts it.
    let (code, out, err) = shell(&send).await;
    assert_eq!(code, 0, "`{send}` failed:\n{out}\n{err}");

    // 2. Without any other command, the event reaches the archive: the printed list
    // line finds it archived, and its manifest and output are in the local S3.
    let sample: Value = {
        let path = send.split_whitespace().last().unwrap();
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    };
    let id = sample["id"].as_str().unwrap().to_owned();
    let script = format!("{}\n{}\n{list} --json", exports[0], exports[1]);
    let deadline = Instant::now() + Duration::from_secs(300);
    let entry = loop {
        let (code, out, err) = shell(&script).await;
        assert_eq!(code, 0, "`{list}` failed:\n{out}\n{err}");
        let archived = out
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["prediction_id"] == id.as_str() && e["outcome"] == "archived");
        if let Some(entry) = archived {
            break entry;
        }
        assert!(
            Instant::now() < deadline,
            "{id} not archived after 300 s; the list printed:\n{out}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(entry["provider"], "skytells");
    let endpoint = exports[0]
        .split_whitespace()
        .find_map(|w| w.strip_prefix("AWS_ENDPOINT_URL="))
        .unwrap()
        .to_owned();
    let bucket = exports[1]
        .split_whitespace()
        .find_map(|w| w.strip_prefix("HOOKVAULT_BUCKET="))
        .unwrap()
        .to_owned();
    let store = s3::client(&endpoint);
    let (manifest, _) = s3::get(&store, &bucket, &format!("predictions/{id}/manifest.json"))
        .await
        .unwrap()
        .expect("no manifest");
    let manifest: Manifest = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(manifest.outputs.len(), 1);
    let (file, _) = s3::get(&store, &bucket, &manifest.outputs[0].key)
        .await
        .unwrap()
        .expect("the output file is not in S3");
    assert_eq!(file.len() as u64, manifest.outputs[0].bytes);
    assert!(!file.is_empty());

    // 3. Ctrl-C: the whole stack stops, and no process it started is left.
    interrupt_and_check_nothing_left(serve, pid, stdout, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_in_the_middle_of_the_drill_leaves_no_process() {
    // The drill without --yes waits for Enter after breaking the archiver: moto, the
    // edge and the broken archiver are up, and a thread is blocked reading stdin.
    let (drill, pid, mut stdout) = spawn_dev(&["drill"]);
    read_until(&mut stdout, "press Enter").await;
    interrupt_and_check_nothing_left(drill, pid, stdout, false).await;
}
