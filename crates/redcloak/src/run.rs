//! `redcloak run` (the default): configuration in, every rule checked, one handshake with
//! Redis, then serve until SIGTERM/SIGINT. Also how the configuration is read, for `check`
//! and for hot reload.

use std::process::ExitCode;
use std::sync::Arc;

use redcloak_config::{Evaluation, Problem};
use redcloak_proxy::reload::{self, Reevaluated};
use redcloak_proxy::{ClientConfig, Listener, Shared};
use tracing::{error, info, warn};

use crate::{RunArgs, EX_CONFIG, EX_SECURITY, EX_UNAVAILABLE};

/// Every rule of the policy, including building the TLS configuration: flags, then the
/// configuration file and the process environment.
pub(crate) fn evaluate(args: &RunArgs) -> (Evaluation, Option<Arc<ClientConfig>>) {
    let mut eval = redcloak_config::evaluate(&args.overrides(), &|name| std::env::var(name).ok());
    let mut tls_checks = Vec::new();
    let tls = eval.tls().and_then(|material| {
        redcloak_proxy::tls::client_config(material, eval.detected.environment, &mut tls_checks)
    });
    eval.record(tls_checks);
    (eval, tls)
}

/// Loads the configuration, evaluates every rule of the security policy and builds the TLS
/// configuration — everything that does not need the network. The shared state exists only
/// when nothing failed.
pub(crate) fn prepare(args: &RunArgs) -> (Evaluation, Option<Arc<Shared>>) {
    let (eval, tls) = evaluate(args);
    let shared = match (eval.passed(), eval.config(), tls) {
        (true, Some(config), Some(tls)) => Some(Arc::new(Shared::new(config, tls))),
        _ => None,
    };
    (eval, shared)
}

/// What a reload applies: the same reading as at startup, kept only if every rule passes.
fn reevaluate(args: &RunArgs) -> Reevaluated {
    let (eval, tls) = evaluate(args);
    let failures: Vec<Problem> = eval.failures().cloned().collect();
    match (eval.passed(), tls, eval.into_result()) {
        (true, Some(tls), Ok(config)) => Ok((config, tls)),
        _ => Err(failures),
    }
}

/// Prints every failure (and warning) in the what / required / fix / docs form.
fn report(eval: &Evaluation) -> ExitCode {
    let failures: Vec<&Problem> = eval.failures().collect();
    for p in &failures {
        eprintln!("{p}\n");
    }
    for w in eval.warnings() {
        eprintln!("{}\n", w.as_warning());
    }
    eprintln!(
        "redcloak did not start: {} problem(s) above ({} environment, from {}). Nothing was served.",
        failures.len().max(1),
        eval.detected.environment,
        eval.detected.source_text()
    );
    ExitCode::from(EX_CONFIG)
}

pub(crate) async fn run(args: RunArgs) -> ExitCode {
    let (eval, shared) = prepare(&args);
    let detected = &eval.detected;
    info!(
        environment = %detected.environment,
        source = %detected.source_text(),
        "environment: {detected}"
    );
    let (Some(config), Some(shared)) = (eval.config(), shared) else {
        return report(&eval);
    };
    // Allowed in this environment, but the operator should act: the full what / required /
    // fix form, like the errors.
    for w in eval.warnings() {
        eprintln!("{}", w.as_warning());
    }
    info!(version = env!("CARGO_PKG_VERSION"), "{}", config.summary());
    match shared.connector().probe().await {
        Ok(probe) => {
            info!(tls = %probe.tls_version, elapsed_ms = probe.elapsed.as_secs_f64() * 1e3, "Redis handshake ok")
        }
        Err(e) if e.is_outage() => {
            warn!(error = %e, "Redis is unreachable at startup; serving from the local cache (degraded mode) until it is back");
            shared.report_outage(&e.to_string());
        }
        Err(e) => {
            error!(error = %e, "Redis rejected redcloak's handshake");
            eprintln!("{}", e.problem(config));
            return ExitCode::from(EX_SECURITY);
        }
    }
    let listener = match Listener::bind_with_mode(&config.listen, config.listen_mode).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "{}",
                Problem::new(
                    format!("cannot listen on {}: {e}", config.listen),
                    "a free loopback port or a writable socket path",
                    "stop whatever uses the address (e.g. a local redis-server on 6379) or set REDCLOAK_LISTEN",
                    "docs/configuration.md#redcloak_listen",
                )
            );
            return ExitCode::from(EX_UNAVAILABLE);
        }
    };
    redcloak_proxy::admin::start(&shared, &config.listen).await;
    info!(listen = %listener.local_addr(), "redcloak is ready");
    let reload_args = args.clone();
    tokio::spawn(reload::watch(shared.clone(), config, move || {
        reevaluate(&reload_args)
    }));
    listener.serve(shared, shutdown_signal()).await;
    info!("redcloak stopped");
    ExitCode::SUCCESS
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process still dies on SIGTERM (default action).
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: shutting down"),
        _ = int.recv() => info!("SIGINT: shutting down"),
    }
}
