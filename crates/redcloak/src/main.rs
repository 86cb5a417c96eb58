//! `redcloak`: the command-line entry point. Only this crate prints errors and exits.
//!
//! # Layout
//! - `redcloak` / `redcloak run`: load the configuration, evaluate every rule of the security
//!   policy for the detected environment (all problems reported together, exit 78), probe
//!   Redis once (TLS + AUTH + PING; a rejection exits 77, an outage does not), serve.
//! - `redcloak check`: the effective configuration (redacted), every rule with ✅ / ⚠️ / ❌ and
//!   the live handshake, then exit; 0 only when nothing failed (like `nginx -t`).
//! - `redcloak keygen`: print a new Fernet key.
//! - `redcloak certs`: write a development CA, Redis server and client certificate.
//! - `redcloak probe livez|readyz`: ask the admin endpoint (for Kubernetes exec probes).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use redcloak_config::{Check, Config, Evaluation, Outcome, Overrides, Problem, Rule};
use redcloak_proxy::{Listener, Shared, UpstreamError};
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
        endpoint: ProbeEndpoint,
    },
}

/// What `redcloak probe` asks for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ProbeEndpoint {
    /// Liveness: the process runs and answers.
    Livez,
    /// Readiness: clients can be served (also in degraded mode); not while shutting down.
    Readyz,
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
        Some(Command::Probe { endpoint }) => probe(&cli.run, endpoint),
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

/// How long `redcloak probe` waits for the admin endpoint.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `redcloak probe livez|readyz`: GET the admin endpoint, print the body, exit 0 on 200.
fn probe(args: &RunArgs, endpoint: ProbeEndpoint) -> ExitCode {
    let path = match endpoint {
        ProbeEndpoint::Livez => "/livez",
        ProbeEndpoint::Readyz => "/readyz",
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
fn admin_address(args: &RunArgs) -> Result<Option<redcloak_config::ListenAddr>, Problem> {
    let default = redcloak_config::Operations::default().admin_listen;
    match std::env::var("REDCLOAK_ADMIN_LISTEN") {
        Ok(v) if v.trim().eq_ignore_ascii_case("off") => Ok(None),
        Ok(v) if !v.trim().is_empty() => {
            redcloak_config::ListenAddr::parse(&v)
                .map(Some)
                .map_err(|e| {
                    Problem::new(
                    format!("REDCLOAK_ADMIN_LISTEN: {e}"),
                    "a loopback address or a Unix socket, like the data listener (or `off`)",
                    "set REDCLOAK_ADMIN_LISTEN to the address redcloak's admin endpoint listens on",
                    "docs/security.md#listener-not-loopback",
                )
                })
        }
        _ => {
            let overrides = Overrides {
                config_file: args.config.clone(),
                listen: args.listen.clone(),
            };
            let eval = redcloak_config::evaluate(&overrides, &|name| std::env::var(name).ok());
            Ok(eval
                .config()
                .map_or(default, |c| c.operations.admin_listen.clone()))
        }
    }
}

/// Loads the configuration, evaluates every rule of the security policy and builds the TLS
/// configuration — everything that does not need the network. The shared state exists only
/// when nothing failed.
fn prepare(args: &RunArgs) -> (Evaluation, Option<Arc<Shared>>) {
    let (eval, tls) = evaluate_all(args);
    let shared = match (eval.passed(), eval.config(), tls) {
        (true, Some(config), Some(tls)) => Some(Arc::new(Shared::new(config, tls))),
        _ => None,
    };
    (eval, shared)
}

/// Every rule of the policy, including building the TLS configuration.
fn evaluate_all(args: &RunArgs) -> (Evaluation, Option<Arc<redcloak_proxy::ClientConfig>>) {
    let overrides = Overrides {
        config_file: args.config.clone(),
        listen: args.listen.clone(),
    };
    let mut eval = redcloak_config::evaluate(&overrides, &|name| std::env::var(name).ok());
    let mut tls_checks = Vec::new();
    let tls = eval.tls().and_then(|material| {
        redcloak_proxy::tls::client_config(material, eval.detected.environment, &mut tls_checks)
    });
    eval.record(tls_checks);
    (eval, tls)
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

async fn run(args: RunArgs) -> ExitCode {
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
            eprintln!("{}", handshake_problem(&e, config));
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
    tokio::spawn(reload_loop(
        args.clone(),
        shared.clone(),
        watched_files(config),
    ));
    listener.serve(shared, shutdown_signal()).await;
    info!("redcloak stopped");
    ExitCode::SUCCESS
}

/// `redcloak check`: the effective configuration, every rule with ✅ / ⚠️ / ❌, the live
/// handshake, then the details of each problem. Exits 0 only when nothing failed.
async fn check(args: RunArgs) -> ExitCode {
    let (mut eval, shared) = prepare(&args);
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
                Check::fail(Rule::Handshake, handshake_problem(&e, config))
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
    } else {
        println!("\nresult: ❌ {failed} problem(s); redcloak would not start");
    }
    ExitCode::from(code)
}

/// The startup handshake failed for a reason other than an outage: say what, what the policy
/// requires and how to fix it, by kind of failure.
fn handshake_problem(e: &UpstreamError, config: &Config) -> Problem {
    use redcloak_proxy::upstream::TlsFailure as F;
    let environment = config.environment();
    let host = config.upstream.host.to_string();
    let trusted = match &config.tls.files.ca_cert {
        Some(p) => format!("the CA in REDIS_TLS_CA_CERT={}", p.display()),
        None => format!("the system roots ({})", config.tls.roots_file.display()),
    };
    let what = e.to_string();
    let (what, required, fix, docs) = match e {
        UpstreamError::Tls { failure, .. } => match failure {
            F::UntrustedServer => (
                what,
                format!("Redis's certificate is signed by {trusted}; verification cannot be turned off"),
                "set REDIS_TLS_CA_CERT to the CA that signed Redis's tls-cert-file (certs/ca.crt from \
                 ./scripts/setup-secure-redis.sh)"
                    .to_owned(),
                "docs/security.md#server-certificate-untrusted",
            ),
            F::NameMismatch => (
                what,
                format!("Redis's certificate names {host} (the host in REDIS_URL) as a DNS or IP SAN"),
                format!(
                    "set REDIS_URL to a name the certificate holds, or reissue Redis's certificate with {host} as a SAN \
                     (development PKI: redcloak certs --dir certs --force --san {host})"
                ),
                "docs/security.md#server-name-mismatch",
            ),
            F::ServerExpired => (
                what,
                "a Redis certificate (and CA) that is valid now".to_owned(),
                "renew Redis's certificate (tls-cert-file) and restart Redis; development PKI: \
                 redcloak certs --dir certs --force, then make stop && make run"
                    .to_owned(),
                "docs/security.md#server-certificate-expired",
            ),
            F::ServerNotYetValid => (
                what,
                "a Redis certificate that is valid now".to_owned(),
                "check this machine's clock (NTP), or use a Redis certificate whose validity has started".to_owned(),
                "docs/security.md#server-certificate-not-yet-valid",
            ),
            F::ProtocolVersion if environment.is_strict() => (
                format!("{what} (Redis does not offer TLS 1.3, which the {environment} environment requires)"),
                "TLS 1.3 in staging and production; TLS 1.2 is accepted only in development".to_owned(),
                "enable TLS 1.3 in Redis: tls-protocols \"TLSv1.3\" (or \"TLSv1.2 TLSv1.3\") in redis.conf, then restart Redis"
                    .to_owned(),
                "docs/security.md#tls-version-refused",
            ),
            F::ProtocolVersion => (
                what,
                "TLS 1.2 or 1.3".to_owned(),
                "enable TLSv1.3 (or TLSv1.2) in Redis's tls-protocols, then restart Redis".to_owned(),
                "docs/security.md#tls-version-refused",
            ),
            F::ClientRejected => (
                what,
                "Redis accepts redcloak's client certificate: issued by a CA in Redis's tls-ca-cert-file, valid, \
                 with the clientAuth usage"
                    .to_owned(),
                "issue REDIS_TLS_CERT/REDIS_TLS_KEY from the CA in Redis's tls-ca-cert-file (certs/client.crt and \
                 certs/client.key from the setup script), or add redcloak's CA to that file"
                    .to_owned(),
                "docs/security.md#client-certificate-rejected",
            ),
            _ => (
                what,
                format!("a TLS handshake with Redis verified against {trusted}, with redcloak's client certificate"),
                "check REDIS_TLS_CA_CERT, REDIS_TLS_CERT, REDIS_TLS_KEY and the host in REDIS_URL".to_owned(),
                "docs/security.md#server-verification",
            ),
        },
        UpstreamError::Rejected { step: "AUTH", .. } => (
            what,
            "the password (and user) Redis expects".to_owned(),
            "set REDIS_PASSWORD_FILE (or REDIS_PASSWORD) to Redis's requirepass / ACL password, and REDIS_USERNAME \
             for ACL users"
                .to_owned(),
            "docs/security.md#auth-rejected",
        ),
        UpstreamError::Rejected { .. } => (
            what,
            "a database number Redis has (its `databases` setting)".to_owned(),
            "correct the /db at the end of REDIS_URL".to_owned(),
            "docs/configuration.md#redis_url",
        ),
        _ => (
            what,
            "Redis reachable at REDIS_URL (while it is not, redcloak serves errors and keeps retrying)".to_owned(),
            "start Redis or correct REDIS_URL".to_owned(),
            "docs/security.md#redis-unreachable",
        ),
    };
    Problem::new(what, required, fix, docs)
}

/// How often the certificate, key and secret files are checked for changes (Kubernetes
/// rotates mounted Secrets in place).
const RELOAD_POLL: Duration = Duration::from_secs(2);

/// Reloads certificates, CA, password and key ring on SIGHUP and when their files change.
async fn reload_loop(args: RunArgs, shared: Arc<Shared>, mut files: Vec<PathBuf>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).ok();
    let mut seen = fingerprint(&files);
    let mut tick = tokio::time::interval(RELOAD_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let reason = tokio::select! {
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
            _ = tick.tick() => {
                let now = fingerprint(&files);
                if now == seen {
                    continue;
                }
                "a certificate, key or secret file changed"
            }
        };
        if let Some(new_files) = reload(&args, &shared, reason) {
            files = new_files;
        }
        seen = fingerprint(&files);
    }
}

/// Re-reads and re-checks the whole configuration; swaps the credentials only if every rule
/// passes. Returns the files to watch from now on.
fn reload(args: &RunArgs, shared: &Shared, reason: &str) -> Option<Vec<PathBuf>> {
    let (eval, tls) = evaluate_all(args);
    match (eval.passed(), eval.config(), tls) {
        (true, Some(config), Some(tls)) => {
            shared.reload(config, tls);
            let ids: Vec<String> = config
                .key_ring
                .key_ids()
                .iter()
                .map(ToString::to_string)
                .collect();
            info!(reason, keys = %ids.join(","), "reloaded certificates, password and keys; new connections use them");
            Some(watched_files(config))
        }
        _ => {
            let failures: Vec<String> = eval.failures().map(|p| p.to_string()).collect();
            error!(reason, problems = failures.len(), "reload rejected: the new configuration fails the policy; the previous credentials stay in use");
            for f in failures {
                eprintln!("{f}\n");
            }
            None
        }
    }
}

/// The files whose change triggers a reload.
fn watched_files(config: &redcloak_config::Config) -> Vec<PathBuf> {
    let mut files = vec![config.tls.files.cert.clone(), config.tls.files.key.clone()];
    files.extend(config.tls.files.ca_cert.clone());
    files.extend(config.config_file.clone());
    for var in ["REDIS_PASSWORD_FILE", "REDIS_ENCRYPTION_KEY_FILE"] {
        files.extend(std::env::var_os(var).map(PathBuf::from));
    }
    files
}

/// Modification time and size of each file (following symlinks, as Kubernetes swaps them).
fn fingerprint(files: &[PathBuf]) -> Vec<Option<(std::time::SystemTime, u64)>> {
    files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
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
