//! Differential test: generated command sequences through redcloak (in front of a TLS Redis)
//! and straight to a plain Redis must get the same replies, except where redcloak refuses a
//! command; and no plaintext value may reach the TLS Redis. See `tests/src/differential/`.
//!
//! Bounded for `make test`: `REDCLOAK_DIFF_SECONDS` (default 45, minimisation included) and
//! `REDCLOAK_DIFF_COMMANDS` (default 200000), whichever ends first. The seed is fixed
//! (`REDCLOAK_DIFF_SEED` changes it); a failure prints, per class of divergence, a minimal
//! reproduction and how to replay it. `REDCLOAK_DIFF_KNOWN` (comma-separated classes, empty by
//! default) reports classes without failing, for work on a fix. The long run is `make fuzz`.

use redcloak_e2e::differential::{run, Config};

#[test]
fn redcloak_answers_like_redis_and_never_stores_plaintext() {
    let config = Config::from_env(0x5eed_2026, 200_000, 45);
    let (report, harness) = run(&config);
    eprintln!("{}", report.render(&harness.docs));
    eprintln!(
        "time in reset / steps / keyspace check / MONITOR check: {:?}; sequences ended by a missing reply: {}",
        harness.profile, harness.timeouts
    );
    let failing = report.failing();
    assert!(
        failing.is_empty(),
        "redcloak diverged from Redis ({} classes; details above): {failing:#?}",
        failing.len()
    );
}
