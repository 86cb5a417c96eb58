//! A global memory bound (issue 10, class 4).
//!
//! Per-connection limits alone let 8 clients, each sending 250 MB of one unfinished bulk,
//! push redcloak to 2.3 GB. Now request and reply buffers beyond 64 KiB each take from one
//! process-wide budget (`REDCLOAK_MAX_BUFFERED_BYTES`); a client that cannot get more waits up
//! to 2 s, then gets a clear error and is closed. Here 8 clients start 250 MB bulks and send
//! 100 MB of them slowly against a 64 MB budget: redcloak's peak RSS stays within the budget
//! over a baseline measured first, every one of them gets the error, small clients are served
//! all along, and nothing crashes. A 50 MB value still goes through (SET and GET) under a
//! budget that can hold it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redcloak_e2e::diff::{metric, scrape, stack_with_admin};
use redcloak_e2e::wait_for;

const BUDGET: u64 = 64_000_000;
const BIG_CLIENTS: usize = 8;
const DECLARED: usize = 250_000_000;
const SENT: usize = 100_000_000;

/// One client sending an unfinished 250 MB bulk, 1 MB at a time; returns what redcloak
/// answered (read on a thread while the writer is blocked) and how much it managed to send.
fn big_client(addr: std::net::SocketAddr) -> (String, usize) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut reader = s.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let answer = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = reader.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&chunk[..n]);
            }
            done.store(true, Ordering::Relaxed);
            String::from_utf8_lossy(&got).into_owned()
        })
    };
    let header = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${DECLARED}\r\n");
    let mut sent = 0;
    if s.write_all(header.as_bytes()).is_ok() {
        let chunk = vec![b'x'; 1 << 20];
        while sent < SENT && !done.load(Ordering::Relaxed) {
            if s.write_all(&chunk).is_err() {
                break;
            }
            sent += chunk.len();
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    (answer.join().unwrap(), sent)
}

#[test]
fn huge_unfinished_requests_stay_within_the_global_budget() {
    // glibc's malloc raises its mmap threshold (up to 32 MiB) after the first large free, and
    // keeps later buffers of up to that size resident in its arenas once freed: measured here,
    // that adds ~25 MB of freed-but-resident memory on top of the budget. A fixed threshold
    // (as the deployment examples should set) returns freed buffers to the system, so what is
    // measured is what redcloak holds.
    let (stack, admin) = stack_with_admin(
        &[],
        &[
            ("REDCLOAK_MAX_BUFFERED_BYTES", &BUDGET.to_string()),
            ("MALLOC_MMAP_THRESHOLD_", "131072"),
        ],
    );
    let addr = stack.proxy.addr;
    // Baseline: the process after some ordinary traffic from a few clients.
    let mut warm = stack.client();
    for i in 0..200 {
        let _: () = redis::cmd("SET")
            .arg(format!("w{i}"))
            .arg("x".repeat(1000))
            .query(&mut warm)
            .unwrap();
        let _: String = redis::cmd("GET")
            .arg(format!("w{i}"))
            .query(&mut warm)
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let baseline = stack.proxy.peak_rss_kib().max(stack.proxy.rss_kib());
    // Small clients, served throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let small: Vec<_> = (0..4)
        .map(|n| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let client = redis::Client::open(format!("redis://{addr}")).unwrap();
                let mut c = client
                    .get_connection_with_timeout(Duration::from_secs(5))
                    .unwrap();
                let (mut count, mut slowest) = (0u64, Duration::ZERO);
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let key = format!("small{n}");
                    let set: redis::RedisResult<()> =
                        redis::cmd("SET").arg(&key).arg(count).query(&mut c);
                    let get: redis::RedisResult<u64> = redis::cmd("GET").arg(&key).query(&mut c);
                    match (set, get) {
                        (Ok(()), Ok(v)) if v == count => {}
                        other => return Err(format!("small client {n}, round {count}: {other:?}")),
                    }
                    slowest = slowest.max(t.elapsed());
                    count += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok((count, slowest))
            })
        })
        .collect();
    // Sample RSS while the big clients send.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (sampling, pid) = (sampling.clone(), stack.proxy.pid());
        std::thread::spawn(move || {
            let mut max = 0u64;
            while sampling.load(Ordering::Relaxed) {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                let rss = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0);
                max = max.max(rss);
                std::thread::sleep(Duration::from_millis(10));
            }
            max
        })
    };
    let started = Instant::now();
    let bigs: Vec<_> = (0..BIG_CLIENTS)
        .map(|_| std::thread::spawn(move || big_client(addr)))
        .collect();
    let answers: Vec<(String, usize)> = bigs.into_iter().map(|b| b.join().unwrap()).collect();
    let elapsed = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    let sampled_max = sampler.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let small: Vec<(u64, Duration)> = small
        .into_iter()
        .map(|s| {
            s.join()
                .unwrap()
                .unwrap_or_else(|e| panic!("{e}\n{}", stack.proxy.log_text()))
        })
        .collect();
    let peak = stack.proxy.peak_rss_kib();
    let budget_kib = BUDGET / 1024;
    eprintln!(
        "baseline {baseline} KiB, peak {peak} KiB (+{} KiB; sampled max {sampled_max} KiB), budget {budget_kib} KiB; \
         {BIG_CLIENTS} big clients done in {elapsed:?}, sent {:?} MB; small clients: {small:?}",
        peak.saturating_sub(baseline),
        answers.iter().map(|(_, s)| s / 1_000_000).collect::<Vec<_>>()
    );
    for (answer, sent) in &answers {
        assert!(
            answer.starts_with("-ERR redcloak: this request does not fit in the memory budget"),
            "a big client (sent {sent} bytes) got {answer:?}"
        );
    }
    assert!(
        peak <= baseline + budget_kib + 8 * 1024,
        "peak RSS {peak} KiB is more than the budget ({budget_kib} KiB) over the baseline ({baseline} KiB)"
    );
    for (count, slowest) in &small {
        assert!(*count > 10, "a small client was starved: {small:?}");
        assert!(
            *slowest < Duration::from_secs(2),
            "a small client waited {slowest:?}"
        );
    }
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    // Nothing crashed; the big clients' sessions are gone; service goes on.
    drop(warm);
    let mut c = stack.client();
    let _: () = redis::cmd("SET")
        .arg("after")
        .arg("fine")
        .query(&mut c)
        .unwrap();
    let v: String = redis::cmd("GET").arg("after").query(&mut c).unwrap();
    assert_eq!(v, "fine");
    assert!(stack
        .proxy
        .log_text()
        .lines()
        .all(|l| !l.contains("panicked")));
    assert!(
        wait_for(Duration::from_secs(5), || metric(
            &scrape(&admin),
            "redcloak_connections_open"
        ) == Some(1.0)),
        "the big clients' sessions are closed"
    );
}

/// A 50 MB value goes through — SET (a 50 MB request) and GET (a ~67 MB ciphertext reply,
/// decrypted) — under a budget that can hold it.
#[test]
fn a_large_value_still_works_under_a_budget_that_holds_it() {
    let (stack, _admin) = stack_with_admin(&[], &[("REDCLOAK_MAX_BUFFERED_BYTES", "200000000")]);
    let value: Vec<u8> = (0..50_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut c = stack.client();
    let _: () = redis::cmd("SET")
        .arg("large")
        .arg(&value)
        .query(&mut c)
        .unwrap();
    let got: Vec<u8> = redis::cmd("GET").arg("large").query(&mut c).unwrap();
    assert!(got == value, "the 50 MB value came back different");
    let stored = stack.direct().get(b"large").unwrap();
    assert!(stored.len() > 66_000_000, "{} bytes stored", stored.len());
}
