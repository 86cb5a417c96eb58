//! `redcloak rewrap`: presentation of `redcloak_proxy::rewrap` — progress (a live line on a
//! terminal, plain lines otherwise), the dry-run census, the summary and the exit code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redcloak_config::x509::UtcTime;
use redcloak_config::KeyRing;
use redcloak_proxy::rewrap::{self, Kind, Options, Position, RewrapError, Stats};
use redcloak_proxy::Connector;

use crate::{run, RunArgs, EX_CONFIG, EX_SECURITY, EX_UNAVAILABLE};

/// Values or members remain that only a non-primary key (or the other format) opens: the
/// old key cannot leave the ring yet. For `--dry-run`: there is work to do.
pub(crate) const EX_REMAINING: u8 = 3;
/// Interrupted (SIGINT/SIGTERM): the resume cursor was printed.
pub(crate) const EX_INTERRUPTED: u8 = 130;

pub(crate) async fn rewrap(args: RunArgs, opts: Options) -> ExitCode {
    let (eval, tls) = run::evaluate(&args);
    let (Some(config), Some(tls), true) = (eval.config(), tls, eval.passed()) else {
        for p in eval.failures() {
            eprintln!("{p}\n");
        }
        eprintln!("redcloak rewrap did not start: the configuration has problems (see above; `redcloak check` shows them all).");
        return ExitCode::from(EX_CONFIG);
    };
    let ring = config.key_ring.clone();
    let connector = Connector::new(config, tls);
    let ids: Vec<String> = ring.key_ids().iter().map(ToString::to_string).collect();
    eprintln!(
        "redcloak rewrap{}: Redis {}, target key {} in format {}; ring: {}",
        if opts.dry_run {
            " --dry-run (nothing is written)"
        } else {
            ""
        },
        connector.addr(),
        ids[0],
        ring.format(),
        ids.join(", ")
    );
    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn({
        let stop = stop.clone();
        async move {
            use tokio::signal::unix::{signal, SignalKind};
            if let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                stop.store(true, Ordering::Relaxed);
            }
        }
    });
    let started = Instant::now();
    let mut shown = Progress::new(opts.dry_run);
    let result = rewrap::run(&connector, &ring, &opts, &stop, |stats, at| {
        shown.update(stats, at, started.elapsed());
    })
    .await;
    shown.finish();
    let elapsed = started.elapsed();
    let partial = opts.db.is_some() || opts.pattern.is_some() || opts.resume.is_some();
    match result {
        Ok(outcome) => {
            summary(&ring, &outcome.stats, elapsed, opts.dry_run);
            if let Some(at) = outcome.resume {
                println!(
                    "\ninterrupted: resume with `redcloak rewrap --cursor {at}`{}",
                    same_scope(&opts)
                );
                return ExitCode::from(EX_INTERRUPTED);
            }
            verdict(&ring, &outcome.stats, opts.dry_run, partial)
        }
        Err((e, stats, at)) => {
            summary(&ring, &stats, elapsed, opts.dry_run);
            eprintln!("\nerror: {e}");
            if let Some(at) = at {
                eprintln!(
                    "  resume with: redcloak rewrap --cursor {at}{} (every page before it is done)",
                    same_scope(&opts)
                );
            }
            match &e {
                RewrapError::Connect(u) if !u.is_outage() => {
                    eprintln!("{}", u.problem(config));
                    ExitCode::from(EX_SECURITY)
                }
                RewrapError::ResumeMismatch { .. } => ExitCode::from(EX_CONFIG),
                _ => ExitCode::from(EX_UNAVAILABLE),
            }
        }
    }
}

/// The flags a resumed run must repeat.
fn same_scope(opts: &Options) -> String {
    let mut s = String::new();
    if let Some(db) = opts.db {
        s.push_str(&format!(" --db {db}"));
    }
    if opts.pattern.is_some() {
        s.push_str(" --match <the same pattern>");
    }
    if opts.dry_run {
        s.push_str(" --dry-run");
    }
    s
}

fn verdict(ring: &KeyRing, stats: &Stats, dry_run: bool, partial: bool) -> ExitCode {
    let remaining = stats.still_under_old_keys(ring, dry_run);
    let primary = ring.key_ids()[0];
    let scope = if partial {
        " (in the keys this run covered; without --db/--match/--cursor it covers every key)"
    } else {
        ""
    };
    if remaining == 0 {
        let old: Vec<String> = ring.key_ids()[1..]
            .iter()
            .map(ToString::to_string)
            .collect();
        if old.is_empty() {
            println!("\nresult: ✅ every value and member is under {primary}{scope}");
        } else {
            println!(
                "\nresult: ✅ every value and member is under {primary}{scope}: {} can be removed from the ring",
                old.join(", ")
            );
        }
        ExitCode::SUCCESS
    } else if dry_run {
        println!(
            "\nresult: {remaining} values and members are not under {primary} in format {}{scope}: run `redcloak rewrap`",
            ring.format()
        );
        ExitCode::from(EX_REMAINING)
    } else {
        println!(
            "\nresult: ❌ {remaining} values are still under an old key{scope} (see \"left\" above): keep the old key in the ring"
        );
        ExitCode::from(EX_REMAINING)
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn summary(ring: &KeyRing, stats: &Stats, elapsed: Duration, dry_run: bool) {
    let secs = elapsed.as_secs_f64().max(1e-3);
    println!(
        "\n{} keys scanned in {:.1} s ({} of redcloak's own skipped)",
        thousands(stats.keys),
        secs,
        thousands(stats.skipped_internal)
    );
    println!("found, per key and format:");
    if stats.census.is_empty() {
        println!("  (no encrypted values or members)");
    }
    for (class, n) in &stats.census {
        let kind = match class.kind {
            Kind::Value => "values ",
            Kind::Member => "members",
        };
        let when = match class.key.and_then(|k| stats.timestamps.get(&k)) {
            Some((lo, hi)) if class.format == rewrap::Format::Fernet => format!(
                "  oldest {}  newest {}",
                UtcTime(i64::try_from(*lo).unwrap_or(i64::MAX)),
                UtcTime(i64::try_from(*hi).unwrap_or(i64::MAX))
            ),
            _ => String::new(),
        };
        println!(
            "  {kind}  {:<17} {:<26} {:>12}{when}",
            class.format.to_string(),
            rewrap::key_label(ring, class.key),
            thousands(*n)
        );
    }
    if !dry_run {
        println!(
            "re-encrypted: {} values, {} members ({} duplicate members merged, {} streams rebuilt) in {} keys, {:.0} values/s; {} conflicts with concurrent writers retried",
            thousands(stats.values_rewrapped),
            thousands(stats.members_rewrapped),
            thousands(stats.duplicates_merged),
            thousands(stats.streams_rebuilt),
            thousands(stats.keys_changed),
            stats.rewrapped_total() as f64 / secs,
            thousands(stats.conflicts)
        );
    }
    if !stats.left.is_empty() {
        println!("left as they are:");
        for (why, n) in &stats.left {
            println!("  {:>12}  {}", thousands(*n), why.describe());
        }
    }
}

/// The progress display: one line redrawn on a terminal, a plain line every few seconds
/// otherwise (logs, CI).
struct Progress {
    terminal: bool,
    dry_run: bool,
    last: Option<Instant>,
    drawn: bool,
}

impl Progress {
    fn new(dry_run: bool) -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            dry_run,
            last: None,
            drawn: false,
        }
    }

    fn update(&mut self, stats: &Stats, at: Position, elapsed: Duration) {
        let every = if self.terminal {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        let now = Instant::now();
        if self.last.is_some_and(|l| now.duration_since(l) < every) {
            return;
        }
        self.last = Some(now);
        let secs = elapsed.as_secs_f64().max(1e-3);
        let (done, verb) = if self.dry_run {
            (stats.found_total(), "counted")
        } else {
            (stats.rewrapped_total(), "re-encrypted")
        };
        let line = format!(
            "{} keys, {} values and members found, {} {verb} ({:.0}/s), next cursor {at}",
            thousands(stats.keys),
            thousands(stats.found_total()),
            thousands(done),
            done as f64 / secs
        );
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K{line}");
            self.drawn = true;
        } else {
            let _ = writeln!(err, "progress: {line}");
        }
        let _ = err.flush();
    }

    fn finish(&mut self) {
        if self.drawn {
            eprintln!();
        }
    }
}
