//! `redcloak`: the command-line entry point. Only this crate prints errors and exits.
//!
//! # Layout
//! - `redcloak` / `redcloak run`: load and check the configuration, probe Redis, serve.
//! - `redcloak check`: the same checks and the live handshake, then exit (like `nginx -t`).
//! - `redcloak keygen`: print a new Fernet key.
//! - `redcloak certs`: write a development CA, Redis server and client certificate.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use redcloak_config::{Config, ConfigError, Overrides, Problem};
use redcloak_proxy::{Listener, Shared};
use tracing::{error, info, warn};

/// Exit code for an invalid or insecure configuration (sysexits EX_CONFIG).
const EX_CONFIG: u8 = 78;
/// Exit code when Redis rejects redcloak's TLS handshake or credentials.
const EX_SECURITY: u8 = 77;
/// Exit code when the listener cannot be bound.
const EX_UNAVAILABLE: u8 = 69;

/// A security-first sidecar proxy for Redis: plaintext RESP on loopback in, every value
/// encrypted, mutual TLS + AUTH out.
///
/// Configuration comes from (lowest to highest): built-in defaults, config/redcloak.toml
/// (or --config), environment variables, flags. See README.md and docs/configuration.md.
#[derive(Debug, Parser)]
#[command(name = "redcloak", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    /// Configuration file (TOML). Default: config/redcloak.toml when it exists.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Where applications connect: a loopback host:port or unix:/path [env: REDCLOAK_LISTEN]
    /// [default: 127.0.0.1:6379].
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy (the default).
    Run,
    /// Check the configuration and the live TLS + AUTH handshake with Redis, then exit.
    Check,
    /// Print a new random Fernet encryption key (for REDIS_ENCRYPTION_KEY).
    Keygen,
    /// Write a development CA, Redis server certificate and redcloak client certificate.
    Certs {
        /// Directory for ca.crt, ca.key, redis.crt, redis.key, client.crt, client.key.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// Extra subject alternative names for the Redis server certificate.
        #[arg(long = "san", value_name = "NAME_OR_IP")]
        sans: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
        /// Replace existing files (clients holding the old CA will stop trusting Redis).
        #[arg(long)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Keygen) => {
            println!("{}", *redcloak_crypto::generate_key());
            ExitCode::SUCCESS
        }
        Some(Command::Certs {
            dir,
            sans,
            days,
            force,
        }) => certs(&dir, &sans, days, force),
        Some(Command::Check) => with_runtime(check(cli.run)),
        Some(Command::Run) | None => with_runtime(run(cli.run)),
    }
}

fn with_runtime(fut: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    init_logging();
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(fut),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("REDCLOAK_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Loads, validates and builds everything that does not need the network.
fn prepare(args: &RunArgs) -> Result<(Config, Arc<Shared>), ConfigError> {
    let overrides = Overrides {
        config_file: args.config.clone(),
        listen: args.listen.clone(),
    };
    let config = redcloak_config::load(&overrides, &|name| std::env::var(name).ok())?;
    let tls = redcloak_proxy::tls::client_config(&config.tls)
        .map_err(|problems| ConfigError { problems })?;
    let shared = Arc::new(Shared::new(&config, tls));
    Ok((config, shared))
}

fn report(err: &ConfigError) -> ExitCode {
    eprintln!("{err}");
    eprintln!(
        "\nredcloak did not start: {} problem(s) above. Nothing was served.",
        err.problems.len()
    );
    ExitCode::from(EX_CONFIG)
}

async fn run(args: RunArgs) -> ExitCode {
    let (config, shared) = match prepare(&args) {
        Ok(ready) => ready,
        Err(e) => return report(&e),
    };
    info!(version = env!("CARGO_PKG_VERSION"), "{}", config.summary());
    match shared.connector.probe().await {
        Ok(probe) => {
            info!(tls = %probe.tls_version, elapsed_ms = probe.elapsed.as_secs_f64() * 1e3, "Redis handshake ok")
        }
        Err(e) if e.is_outage() => {
            warn!(error = %e, "Redis is unreachable; serving anyway, clients get errors until it is back")
        }
        Err(e) => {
            error!(error = %e, "Redis rejected redcloak's handshake");
            eprintln!("{}", security_problem(&e));
            return ExitCode::from(EX_SECURITY);
        }
    }
    let listener = match Listener::bind(&config.listen).await {
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
    info!(listen = %listener.local_addr(), "redcloak is ready");
    listener
        .serve(shared, shutdown_signal(), Duration::from_secs(10))
        .await;
    info!("redcloak stopped");
    ExitCode::SUCCESS
}

async fn check(args: RunArgs) -> ExitCode {
    let (config, shared) = match prepare(&args) {
        Ok(ready) => ready,
        Err(e) => return report(&e),
    };
    println!("configuration: {}", config.summary());
    match shared.connector.probe().await {
        Ok(probe) => {
            println!(
                "✅ Redis at {}: TLS ({}) + AUTH + PING ok in {:.1} ms",
                config.upstream,
                probe.tls_version,
                probe.elapsed.as_secs_f64() * 1e3
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("❌ Redis at {}: {e}", config.upstream);
            eprintln!("{}", security_problem(&e));
            ExitCode::from(if e.is_outage() {
                EX_UNAVAILABLE
            } else {
                EX_SECURITY
            })
        }
    }
}

fn security_problem(e: &redcloak_proxy::UpstreamError) -> Problem {
    use redcloak_proxy::UpstreamError as E;
    let (required, fix, docs) = match e {
        E::Tls { .. } => (
            "Redis's certificate verifies against REDIS_TLS_CA_CERT and names the host in REDIS_URL; Redis accepts redcloak's client certificate",
            "check REDIS_TLS_CA_CERT / REDIS_TLS_CERT / REDIS_TLS_KEY and the host in REDIS_URL (it must be a SAN of Redis's certificate)",
            "docs/security.md#server-verification",
        ),
        E::Rejected { .. } => (
            "the password (and user) Redis expects",
            "set REDIS_PASSWORD (or REDIS_PASSWORD_FILE) to Redis's requirepass / ACL password, and REDIS_USERNAME for ACL users",
            "docs/security.md#auth",
        ),
        _ => ("Redis reachable at REDIS_URL", "start Redis or correct REDIS_URL", "docs/configuration.md#redis_url"),
    };
    Problem::new(e.to_string(), required, fix, docs)
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

fn certs(dir: &std::path::Path, sans: &[String], days: u32, force: bool) -> ExitCode {
    match redcloak_certs::write_dev_pki(dir, sans, days, force) {
        Ok(pki) => {
            println!("wrote a development PKI to {}:", dir.display());
            for p in [
                &pki.ca_cert,
                &pki.ca_key,
                &pki.server_cert,
                &pki.server_key,
                &pki.client_cert,
                &pki.client_key,
            ] {
                println!("  {}", p.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EX_CONFIG)
        }
    }
}
