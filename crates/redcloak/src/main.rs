//! `redcloak`: the command-line entry point. Only this crate prints errors and exits.
//!
//! # Layout
//! - `main.rs`: the command line, logging, and dispatch to one module per subcommand.
//! - [`run`] — `redcloak` / `redcloak run`: load the configuration, evaluate every rule of the
//!   security policy for the detected environment (all problems reported together, exit 78),
//!   probe Redis once (TLS + AUTH + PING; a rejection exits 77, an outage does not), serve.
//! - [`check`] — `redcloak check`: the effective configuration (redacted), every rule with
//!   ✅ / ⚠️ / ❌ and the live handshake, then exit; 0 only when nothing failed (like `nginx -t`).
//! - `redcloak keygen`: print a new Fernet key.
//! - [`certs`] — `redcloak certs`: write a development CA, Redis server and client certificate.
//! - [`probe`] — `redcloak probe livez|readyz`: ask the admin endpoint (for Kubernetes exec
//!   probes).

mod certs;
mod check;
mod probe;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use redcloak_config::{Overrides, Problem};

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
/// (or --config), environment variables, flags. The security rules follow REDCLOAK_ENV
/// (else APP_ENV, ENVIRONMENT, NODE_ENV): development, staging or production (the default).
/// See README.md, docs/configuration.md and docs/security.md.
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

impl RunArgs {
    /// The flags that override the file and the environment.
    fn overrides(&self) -> Overrides {
        Overrides {
            config_file: self.config.clone(),
            listen: self.listen.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy (the default).
    Run,
    /// Print the effective configuration (secrets redacted), check every security rule and
    /// the live TLS + AUTH + PING handshake with Redis, then exit (0 only if nothing failed).
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
    /// Ask a running redcloak's admin endpoint (REDCLOAK_ADMIN_LISTEN) for /livez or /readyz:
    /// prints the answer, exits 0 on HTTP 200 and 1 otherwise (2 s timeout). For Kubernetes
    /// exec probes: the kubelet cannot reach a loopback-only endpoint with httpGet.
    Probe {
        /// What to ask.
        #[arg(value_enum)]
        endpoint: probe::Endpoint,
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
        }) => certs::write(&dir, &sans, days, force),
        Some(Command::Check) => with_runtime(check::check(cli.run)),
        Some(Command::Probe { endpoint }) => probe::probe(&cli.run, endpoint),
        Some(Command::Run) | None => with_runtime(run::run(cli.run)),
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

/// Logs go to stderr: one JSON object per line (for log collectors) unless stderr is a
/// terminal, where they are human-readable; `REDCLOAK_LOG_FORMAT=json|text` chooses. The
/// level comes from `REDCLOAK_LOG`, else `RUST_LOG`, else `info`.
///
/// # Security
/// Events carry command names, never arguments, values or secrets; the JSON form adds the
/// connection's span (`id`, `client.addr`) and nothing else.
fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("REDCLOAK_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let terminal = std::io::stderr().is_terminal();
    let json = match std::env::var("REDCLOAK_LOG_FORMAT") {
        Err(_) => !terminal,
        Ok(v) => match v.trim().to_ascii_lowercase().as_str() {
            "json" => true,
            "text" => false,
            "" => !terminal,
            _ => {
                let shown: String = v.chars().take(20).collect();
                let fallback = if terminal { "text" } else { "json" };
                eprintln!(
                    "{}\n",
                    Problem::new(
                        format!("REDCLOAK_LOG_FORMAT={shown} is not a log format; logging as {fallback}"),
                        "json or text (unset: JSON, or text when stderr is a terminal)",
                        "set REDCLOAK_LOG_FORMAT=json or REDCLOAK_LOG_FORMAT=text, or unset it",
                        "docs/configuration.md#logs",
                    )
                    .as_warning()
                );
                !terminal
            }
        },
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        logs.json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        logs.with_ansi(terminal).init();
    }
}
