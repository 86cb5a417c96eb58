//! BullMQ (npm, unmodified, on ioredis) through redcloak: every Queue and Worker operation is a
//! Lua script (job hashes, wait/active/delayed/completed lists and sorted sets, the events
//! stream, cmsgpack-packed options), which redcloak runs itself (DESIGN.md §4a). Jobs added
//! and processed by a Worker, a delayed job, retries with exponential backoff, a job that fails
//! for good, completion and failure events through QueueEvents; afterwards Redis, read around
//! redcloak, holds no plaintext value or member, and MONITOR saw no script reach Redis.

use std::path::Path;
use std::process::Command;

use redcloak_e2e::diff::Monitor;
use redcloak_e2e::{missing, Stack};

fn app_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/apps/bullmq"))
}

/// Runs `node app.mjs <args>` against `port`; (success, stdout + stderr).
pub fn bullmq_app(port: u16, args: &[&str]) -> (bool, String) {
    if !app_dir().join("node_modules/bullmq").is_dir() {
        missing(
            "tests/apps/bullmq/node_modules is not installed",
            "BullMQ and ioredis from npm for the job-queue test",
            "run `make test` (scripts/ensure-deps.sh runs npm ci there) or `npm ci --prefix tests/apps/bullmq`",
        );
    }
    let mut cmd = Command::new("timeout");
    cmd.args([
        "120",
        "node",
        "app.mjs",
        args[0],
        "127.0.0.1",
        &port.to_string(),
    ])
    .args(&args[1..])
    .current_dir(app_dir());
    let out = cmd.output().unwrap_or_else(|_| {
        missing(
            "node is not installed",
            "Node.js for the BullMQ test",
            "run `make test` (scripts/ensure-deps.sh installs it)",
        )
    });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let ok = out.status.success() && stdout.trim_end().ends_with("ok");
    (
        ok,
        format!("{stdout}\n{}", String::from_utf8_lossy(&out.stderr)),
    )
}

#[test]
fn bullmq_adds_processes_delays_retries_and_reports_events() {
    run_bullmq(Stack::start());
}

/// The same with `REDCLOAK_VALUE_FORMAT=aes-gcm`: BullMQ's scripts move job ids between lists
/// (`RPOPLPUSH` in moveToActive), which redcloak carries out encrypting each id again for its
/// new list; the audit opens every value at its place.
#[test]
fn bullmq_runs_with_key_bound_values() {
    run_bullmq(Stack::start_with(
        &[],
        &[("REDCLOAK_VALUE_FORMAT", "aes-gcm")],
    ));
}

fn run_bullmq(stack: Stack) {
    let mut monitor = Monitor::start(&stack);
    let marker = "bullmqSecretMarker";
    let (ok, out) = bullmq_app(stack.proxy.addr.port(), &["check", marker]);
    assert!(
        ok,
        "BullMQ through redcloak failed:\n{out}\nredcloak's log:\n{}",
        stack.proxy.log_text()
    );
    // Nothing redcloak-made reached the application (not even while it disconnects its
    // blocked BZPOPMIN / XREAD connections at close).
    assert!(
        !out.contains("ERR redcloak"),
        "BullMQ saw an error from redcloak:\n{out}"
    );
    for script_command in ["EVAL", "EVALSHA", "FCALL", "SCRIPT", "FUNCTION"] {
        let lines = monitor.lines_of(script_command);
        assert!(
            lines.is_empty(),
            "Redis received {script_command}: scripts must run in redcloak: {:?}",
            lines.first()
        );
    }
    monitor.assert_never_seen(&[marker]);
    let checked = stack.assert_all_values_encrypted();
    assert!(checked > 100, "only {checked} values and members checked");
    // BullMQ's job hashes, lists and sorted sets are there (encrypted), not just a few keys.
    let keys = stack.direct().keys();
    for wanted in [
        &b"bull:rc-jobs:completed"[..],
        b"bull:rc-jobs:failed",
        b"bull:rc-jobs:events",
        b"bull:rc-jobs:meta",
        b"bull:rc-jobs:1",
    ] {
        assert!(
            keys.iter().any(|k| &k[..] == wanted),
            "Redis has no {:?}",
            String::from_utf8_lossy(wanted)
        );
    }
}
