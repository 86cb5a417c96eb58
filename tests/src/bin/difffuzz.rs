//! The long differential run (`make fuzz`): generated command sequences through redcloak and
//! straight to a plain Redis, compared reply by reply, with plaintext checks around the proxy.
//! See `tests/src/differential/`.
//!
//! ```text
//! difffuzz [--commands N] [--seconds S] [--seed X] [--only I] [--no-minimise] [--known CLASS,…]
//! difffuzz --self-check SECONDS [--seed X]
//! ```
//!
//! `--self-check` runs the generator against two plain Redis servers instead: any divergence is
//! a normalisation missing from the harness, not a redcloak bug.
//!
//! Defaults: 1 000 000 commands, no time limit, a random seed (printed), every class minimised
//! once. The `REDCLOAK_DIFF_*` variables set the same things. Exits 1 when a divergence that is
//! not listed as known was found, 2 on a usage error.

use std::time::Duration;

use redcloak_e2e::differential::{parse_u64, run, self_check, Config};

fn usage(msg: &str) -> ! {
    eprintln!(
        "error: {msg}\nusage: difffuzz [--commands N] [--seconds S] [--seed X] [--only I] [--no-minimise] [--known CLASS,…]"
    );
    std::process::exit(2)
}

fn main() {
    let random_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut config = Config::from_env(random_seed, 1_000_000, u64::MAX / 4);
    config.progress = Some(Duration::from_secs(10));
    let mut self_check_secs = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        let number =
            |v: String| parse_u64(&v).unwrap_or_else(|| usage(&format!("not a number: {v}")));
        match flag.as_str() {
            "--commands" => config.max_commands = number(value()),
            "--seconds" => config.max_time = Duration::from_secs(number(value())),
            "--seed" => config.seed = number(value()),
            "--only" => config.only = Some(number(value())),
            "--no-minimise" => config.minimise = false,
            "--self-check" => self_check_secs = Some(number(value())),
            "--known" => {
                config.known = value()
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            }
            "-h" | "--help" => {
                println!("see the documentation at the top of tests/src/bin/difffuzz.rs");
                return;
            }
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if let Some(secs) = self_check_secs {
        eprintln!(
            "difffuzz --self-check: two plain Redis servers, seed 0x{:x}, {secs} s",
            config.seed
        );
        let found = self_check(config.seed, Duration::from_secs(secs), config.sequence_len);
        for (class, repro) in &found {
            println!("== {class}\n{repro}");
        }
        if !found.is_empty() {
            eprintln!(
                "difffuzz --self-check: {} classes where two Redis servers disagree",
                found.len()
            );
            std::process::exit(1);
        }
        eprintln!("difffuzz --self-check: no divergence");
        return;
    }
    eprintln!(
        "difffuzz: seed 0x{:x}, up to {} commands{}",
        config.seed,
        config.max_commands,
        if config.max_time < Duration::from_secs(u64::MAX / 8) {
            format!(" or {} s", config.max_time.as_secs())
        } else {
            String::new()
        }
    );
    let (report, harness) = run(&config);
    println!("{}", report.render(&harness.docs));
    println!(
        "time in reset / steps / keyspace check / MONITOR check: {:?}; sequences ended by a missing reply: {}",
        harness.profile, harness.timeouts
    );
    let mut slow: Vec<_> = harness.step_time.iter().collect();
    slow.sort_by_key(|(_, (_, t))| std::cmp::Reverse(*t));
    let slow: Vec<String> = slow
        .iter()
        .take(12)
        .map(|(k, (n, t))| format!("{k} ×{n}: {:.2} s", t.as_secs_f64()))
        .collect();
    println!("slowest steps: {}", slow.join(", "));
    let failing = report.failing().len();
    // Stop the servers before exiting (`exit` runs no destructors).
    drop(harness);
    if failing > 0 {
        eprintln!("difffuzz: {failing} divergence classes (see above)");
        std::process::exit(1);
    }
}
