//! rq (the Python job queue, unmodified from PyPI) through redcloak: its queue index and
//! registries are sets and sorted sets whose members are job ids and queue names, its job
//! hashes hold pickled calls and results. Afterwards Redis, read around redcloak, holds no
//! plaintext value and no plaintext member.

use std::path::Path;
use std::process::Command;

use redcloak_e2e::{missing, Stack};

fn rq_app(stack: &Stack, mode: &str) -> (bool, String) {
    let check = Command::new("python3").args(["-c", "import rq"]).output();
    if !check.is_ok_and(|o| o.status.success()) {
        missing(
            "the Python rq package is not installed",
            "rq from PyPI for the job-queue test",
            "run `make test` (scripts/ensure-deps.sh installs it) or `pip install rq`",
        );
    }
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/clients/rq"));
    let out = Command::new("python3")
        .arg(dir.join("rq_app.py"))
        .args(["127.0.0.1", &stack.proxy.addr.port().to_string(), mode])
        .current_dir(dir)
        .output()
        .expect("python3");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = out.status.success()
        && String::from_utf8_lossy(&out.stdout)
            .trim_end()
            .ends_with("ok");
    (ok, text)
}

/// Enqueueing (with a dependency and a scheduled job), the queue index (a set of queue
/// names) and the registries (sorted sets of job ids) work through redcloak today.
#[test]
fn rq_enqueues_schedules_and_keeps_registries_encrypted() {
    let stack = Stack::start();
    let (ok, out) = rq_app(&stack, "enqueue");
    assert!(ok, "rq through redcloak failed:\n{out}");
    let checked = stack.assert_all_values_encrypted();
    assert!(checked > 20, "only {checked} values and members checked");
    // The queue index and a registry hold member ciphertexts, not the names.
    let mut direct = stack.direct();
    let ring = stack.key_ring();
    let redcloak_commands::resp::Frame::Array(queues) =
        direct.cmd(&[b"SMEMBERS", b"rq:queues"]).unwrap()
    else {
        panic!("rq:queues is a set")
    };
    assert_eq!(queues.len(), 1);
    let redcloak_commands::resp::Frame::Bulk(name) = &queues[0] else {
        panic!()
    };
    assert!(!name.windows(12).any(|w| w == b"redcloak-tes"));
    assert_eq!(
        &ring.decrypt_member(name).unwrap().plaintext[..],
        b"rq:queue:redcloak-test"
    );
}

/// The whole flow: a worker in burst mode runs the jobs (one fails on purpose, one waits for
/// another), then results and the finished/failed/started/scheduled registries are checked,
/// a failed job is requeued and a scheduled one removed.
///
/// rq's worker removes each job from its intermediate queue with `LREM` and counts jobs with
/// `HINCRBY` / `HINCRBYFLOAT` on the worker's hash, all inside MULTI pipelines: redcloak
/// emulates those commands inside the transaction, on scratch copies (DESIGN.md §4a).
#[test]
fn rq_worker_runs_jobs_through_redcloak() {
    run_worker(Stack::start());
}

/// The same with `REDCLOAK_VALUE_FORMAT=aes-gcm`: the burst worker takes each job with
/// `LMOVE` to its intermediate queue, which redcloak carries out, encrypting the job id again
/// for that list; the audit opens every value at its place.
#[test]
fn rq_worker_runs_with_key_bound_values() {
    run_worker(Stack::start_with(
        &[],
        &[("REDCLOAK_VALUE_FORMAT", "aes-gcm")],
    ));
}

fn run_worker(stack: Stack) {
    let (ok, out) = rq_app(&stack, "full");
    for needs in ["LREM", "HINCRBY", "HINCRBYFLOAT"] {
        for missing in [
            format!("redcloak: {needs} is not supported"),
            format!("redcloak: {needs} inside MULTI is not supported"),
        ] {
            assert!(
                !out.contains(&missing),
                "rq's worker needs {needs} inside MULTI: '{missing}'\n{out}"
            );
        }
    }
    assert!(ok, "rq through redcloak failed:\n{out}");
    assert!(stack.assert_all_values_encrypted() > 40);
}
