//! `redcloak probe livez|readyz`: ask a running redcloak's admin endpoint, for Kubernetes
//! exec probes (the kubelet cannot reach a loopback-only endpoint with httpGet).

use std::process::ExitCode;
use std::time::Duration;

use redcloak_config::{ListenAddr, Operations, Problem};

use crate::RunArgs;

/// What `redcloak probe` asks for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Endpoint {
    /// Liveness: the process runs and answers.
    Livez,
    /// Readiness: clients can be served (also in degraded mode); not while shutting down.
    Readyz,
}

/// How long `redcloak probe` waits for the admin endpoint.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// GETs the admin endpoint, prints the body, exits 0 on 200 and 1 otherwise.
pub(crate) fn probe(args: &RunArgs, endpoint: Endpoint) -> ExitCode {
    let path = match endpoint {
        Endpoint::Livez => "/livez",
        Endpoint::Readyz => "/readyz",
    };
    let addr = match admin_address(args) {
        Ok(Some(addr)) => addr,
        Ok(None) => {
            eprintln!(
                "{}",
                Problem::new(
                    "the admin endpoint is off (REDCLOAK_ADMIN_LISTEN=off): nothing to probe",
                    "REDCLOAK_ADMIN_LISTEN set to a loopback host:port or unix:/path, for redcloak and the probe alike",
                    "set REDCLOAK_ADMIN_LISTEN=127.0.0.1:9121 (the default) or unset it",
                    "docs/operations.md#metrics-and-health",
                )
            );
            return ExitCode::FAILURE;
        }
        Err(problem) => {
            eprintln!("{problem}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(redcloak_proxy::admin::get(&addr, path, PROBE_TIMEOUT)) {
        Ok((200, body)) => {
            print!("{body}");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            print!("{body}");
            eprintln!("{path} at {addr}: HTTP {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!(
                "{}",
                Problem::new(
                    format!("redcloak's admin endpoint did not answer {path}: {e}"),
                    format!("a running redcloak serving its admin endpoint at {addr} (REDCLOAK_ADMIN_LISTEN)"),
                    "start redcloak, or give the probe the same REDCLOAK_ADMIN_LISTEN (or --config) as redcloak",
                    "docs/operations.md#metrics-and-health",
                )
            );
            ExitCode::FAILURE
        }
    }
}

/// The admin address, as redcloak reads it: `REDCLOAK_ADMIN_LISTEN` when set (the probe then
/// reads nothing else), else the whole configuration (file and environment), else the default.
fn admin_address(args: &RunArgs) -> Result<Option<ListenAddr>, Problem> {
    let default = Operations::default().admin_listen;
    match std::env::var("REDCLOAK_ADMIN_LISTEN") {
        Ok(v) if v.trim().eq_ignore_ascii_case("off") => Ok(None),
        Ok(v) if !v.trim().is_empty() => ListenAddr::parse(&v).map(Some).map_err(|e| {
            Problem::new(
                format!("REDCLOAK_ADMIN_LISTEN: {e}"),
                "a loopback address or a Unix socket, like the data listener (or `off`)",
                "set REDCLOAK_ADMIN_LISTEN to the address redcloak's admin endpoint listens on",
                "docs/security.md#listener-not-loopback",
            )
        }),
        _ => {
            let eval =
                redcloak_config::evaluate(&args.overrides(), &|name| std::env::var(name).ok());
            Ok(eval
                .config()
                .map_or(default, |c| c.operations.admin_listen.clone()))
        }
    }
}
