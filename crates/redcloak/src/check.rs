//! `redcloak check`: the effective configuration, every rule with ✅ / ⚠️ / ❌, the live
//! handshake, then the details of each problem. Exits 0 only when nothing failed. This is
//! presentation: the rules live in redcloak-config, the handshake texts in
//! `redcloak_proxy::diagnose`.

use std::process::ExitCode;

use redcloak_config::{Check, Outcome, Rule};

use crate::{run, RunArgs, EX_CONFIG, EX_SECURITY, EX_UNAVAILABLE};

pub(crate) async fn check(args: RunArgs) -> ExitCode {
    let (mut eval, shared) = run::prepare(&args);
    println!(
        "redcloak check ({} environment)\n",
        eval.detected.environment
    );
    match eval.config() {
        Some(config) => {
            println!("effective configuration (secrets redacted):");
            for (name, value) in config.effective() {
                println!("  {name:<16} {value}");
            }
        }
        None => println!(
            "effective configuration: incomplete (see the problems below)\n  environment      {}",
            eval.detected
        ),
    }
    let mut code = EX_CONFIG;
    let mut handshake_skipped = true;
    if let (Some(shared), Some(config)) = (&shared, eval.config()) {
        handshake_skipped = false;
        let outcome = match shared.connector().probe().await {
            Ok(probe) => {
                code = 0;
                Check::pass(
                    Rule::Handshake,
                    format!(
                        "{}: TLS ({}) + client certificate + AUTH + PING ok in {:.1} ms",
                        config.upstream,
                        probe.tls_version,
                        probe.elapsed.as_secs_f64() * 1e3
                    ),
                )
            }
            Err(e) => {
                code = if e.is_outage() {
                    EX_UNAVAILABLE
                } else {
                    EX_SECURITY
                };
                Check::fail(Rule::Handshake, e.problem(config))
            }
        };
        eval.record([outcome]);
    }
    println!("\nrules:");
    for c in eval.sorted_checks() {
        println!("  {c}");
    }
    if handshake_skipped {
        println!(
            "  ⏭️ {}: skipped until the problems above are fixed",
            Rule::Handshake
        );
    }
    for c in eval.sorted_checks() {
        match &c.outcome {
            Outcome::Fail(p) => println!("\n{p}"),
            Outcome::Warn(p) => println!("\n{}", p.as_warning()),
            Outcome::Pass(_) => {}
        }
    }
    let (failed, warned) = (eval.failures().count(), eval.warnings().count());
    if code == 0 {
        println!(
            "\nresult: ✅ every rule passes{}",
            match warned {
                0 => String::new(),
                n => format!(" ({n} warning{} above)", if n == 1 { "" } else { "s" }),
            }
        );
    } else if code == EX_UNAVAILABLE {
        // Only the handshake failed, and only because Redis cannot be reached: `run` starts
        // anyway (an outage is not a configuration error), so say what it would do.
        println!(
            "\nresult: ❌ Redis is unreachable; `redcloak run` would start anyway, in degraded mode: \
             it journals writes (applied in order when Redis answers), serves reads it can from \
             its local cache, answers the rest with -TRYAGAIN, and retries Redis in the background"
        );
    } else {
        println!("\nresult: ❌ {failed} problem(s); redcloak would not start");
    }
    ExitCode::from(code)
}
