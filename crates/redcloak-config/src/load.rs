//! Layering: defaults < configuration file < environment < flags, then validation.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use redcloak_crypto::ValueFormat;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::addr::{
    ListenAddr, ListenAddrError, SocketMode, SocketModeError, UpstreamUrl, UpstreamUrlError,
};
use crate::password::{self, Weakness};
use crate::{
    environment, tls, Check, Config, ConfigError, Environment, Evaluation, KeyRing, Limits,
    Problem, Rule, Secret,
};

/// The configuration file read when `--config` is not given and it exists.
pub const DEFAULT_CONFIG_FILE: &str = "config/redcloak.toml";

/// The file layer (and the shape flags and environment merge into). Every field is optional;
/// defaults are applied after merging. Secrets have no field here except as file paths.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    listen: Option<String>,
    listen_mode: Option<String>,
    upstream: UpstreamSettings,
    tls: TlsSettings,
    encryption: EncryptionSettings,
    limits: LimitSettings,
    fallback: FallbackSettings,
    operations: OperationsSettings,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct UpstreamSettings {
    url: Option<String>,
    username: Option<String>,
    password_file: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TlsSettings {
    ca_cert: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct EncryptionSettings {
    key_file: Option<PathBuf>,
    value_format: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LimitSettings {
    max_connections: Option<u64>,
    max_pipeline: Option<u64>,
    max_bulk_bytes: Option<u64>,
    max_request_bytes: Option<u64>,
    connect_timeout_ms: Option<u64>,
    max_buffered_bytes: Option<u64>,
    shared_connections: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct OperationsSettings {
    admin_listen: Option<String>,
    shutdown_grace_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    reply_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FallbackSettings {
    cache_bytes: Option<u64>,
    journal_max_entries: Option<u64>,
    journal_max_bytes: Option<u64>,
    recovery: Option<String>,
    pool_size: Option<u64>,
}

/// How an environment variable's text becomes a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
}

/// The non-secret environment variables and the setting each one sets. They are public
/// interface: documented in README.md and docs/configuration.md.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("REDCLOAK_LISTEN", "listen"),
    ("REDCLOAK_LISTEN_MODE", "listen_mode"),
    ("REDIS_URL", "upstream.url"),
    ("REDIS_USERNAME", "upstream.username"),
    ("REDIS_PASSWORD_FILE", "upstream.password_file"),
    ("REDIS_TLS_CA_CERT", "tls.ca_cert"),
    ("REDIS_TLS_CERT", "tls.cert"),
    ("REDIS_TLS_KEY", "tls.key"),
    ("REDIS_ENCRYPTION_KEY_FILE", "encryption.key_file"),
    ("REDCLOAK_VALUE_FORMAT", "encryption.value_format"),
    ("REDCLOAK_MAX_CONNECTIONS", "limits.max_connections"),
    ("REDCLOAK_MAX_PIPELINE", "limits.max_pipeline"),
    ("REDCLOAK_MAX_BULK_BYTES", "limits.max_bulk_bytes"),
    ("REDCLOAK_CONNECT_TIMEOUT_MS", "limits.connect_timeout_ms"),
    ("REDCLOAK_MAX_REQUEST_BYTES", "limits.max_request_bytes"),
    ("REDCLOAK_MAX_BUFFERED_BYTES", "limits.max_buffered_bytes"),
    ("REDCLOAK_SHARED_CONNECTIONS", "limits.shared_connections"),
    ("REDCLOAK_ADMIN_LISTEN", "operations.admin_listen"),
    ("REDCLOAK_SHUTDOWN_GRACE", "operations.shutdown_grace_secs"),
    ("REDCLOAK_IDLE_TIMEOUT", "operations.idle_timeout_secs"),
    ("REDCLOAK_REPLY_TIMEOUT", "operations.reply_timeout_secs"),
    ("REDCLOAK_FALLBACK_CACHE_BYTES", "fallback.cache_bytes"),
    (
        "REDCLOAK_JOURNAL_MAX_ENTRIES",
        "fallback.journal_max_entries",
    ),
    ("REDCLOAK_JOURNAL_MAX_BYTES", "fallback.journal_max_bytes"),
    ("REDCLOAK_RECOVERY", "fallback.recovery"),
    ("REDCLOAK_POOL_SIZE", "fallback.pool_size"),
];

fn kind_of(path: &str) -> Kind {
    let text = ["fallback.recovery", "operations.admin_listen"];
    if !text.contains(&path)
        && ["limits.", "fallback.", "operations."]
            .iter()
            .any(|p| path.starts_with(p))
    {
        Kind::Number
    } else {
        Kind::Text
    }
}

/// Values given on the command line (the highest layer).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config`: a file that must exist.
    pub config_file: Option<PathBuf>,
    /// `--listen`.
    pub listen: Option<String>,
}

/// Loads the configuration and applies every rule; `Err` holds every failure (warnings are
/// not errors: use [`evaluate`] to see them). `env` reads one environment variable (the
/// binary passes `std::env::var`; tests pass a map).
pub fn load(
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    evaluate(overrides, env).into_result()
}

/// Loads the configuration and evaluates every rule of the security policy for the detected
/// environment, collecting all outcomes (passes, warnings, failures) instead of stopping at
/// the first. The live handshake and the key/certificate match are added by the caller
/// ([`Evaluation::record`]).
pub fn evaluate(overrides: &Overrides, env: &dyn Fn(&str) -> Option<String>) -> Evaluation {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut checks = Vec::new();
    let (detected, unknown) = environment::detect(env);
    checks.push(match unknown {
        Some(problem) => Check::fail(Rule::Environment, problem),
        None => Check::pass(Rule::Environment, detected.to_string()),
    });
    let environment = detected.environment;

    let mut problems = Vec::new();
    let (s, config_file) = layered(overrides, env, &mut problems);
    let limits = check_limits(&s.limits, &mut problems);
    let fallback = check_fallback(&s.fallback, &mut problems);
    let operations = check_operations(&s.operations, &mut problems);
    if problems.is_empty() {
        checks.push(Check::pass(
            Rule::Settings,
            format!(
                "{}; limits in range",
                config_file
                    .as_ref()
                    .map_or("no configuration file".to_owned(), |p| format!(
                        "configuration file {}",
                        p.display()
                    ))
            ),
        ));
    }
    checks.extend(problems.into_iter().map(|p| Check::fail(Rule::Settings, p)));

    let listen = check_listen(
        s.listen.as_deref().unwrap_or("127.0.0.1:6379"),
        s.listen_mode.as_deref(),
        &mut checks,
    );
    let upstream = check_upstream(s.upstream.url.as_deref(), env, &mut checks);
    checks.push(Check::pass(
        Rule::TlsVersions,
        format!(
            "{} in {environment}; cipher suites are rustls's safe defaults (no settings)",
            environment.tls_versions()
        ),
    ));
    let tls = tls::check(
        s.tls.ca_cert,
        s.tls.cert,
        s.tls.key,
        environment,
        env,
        now,
        &mut checks,
    );
    let username = s
        .upstream
        .username
        .or_else(|| upstream.as_ref().and_then(|u| u.username.clone()));
    let password = check_password(
        s.upstream.password_file.as_deref(),
        upstream.as_ref(),
        username.as_deref(),
        environment,
        env,
        &mut checks,
    );
    let keys = check_keys(s.encryption.key_file.as_deref(), env, &mut checks).and_then(
        |(ring, source)| {
            let format = check_value_format(s.encryption.value_format.as_deref(), &mut checks)?;
            Some((ring.with_format(format), source))
        },
    );

    let (config, partial_tls) = match (listen, upstream, password, tls, keys) {
        (
            Some((listen, listen_mode)),
            Some(upstream),
            Some((password, password_source)),
            Some(tls),
            Some((key_ring, key_source)),
        ) => (
            Some(Config {
                detected: detected.clone(),
                listen,
                listen_mode,
                upstream,
                username,
                password,
                password_source,
                tls,
                key_ring,
                key_source,
                limits,
                fallback,
                operations,
                config_file,
            }),
            None,
        ),
        (.., tls, _) => (None, tls),
    };
    Evaluation {
        detected,
        checks,
        config,
        partial_tls,
    }
}

fn layered(
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> (Settings, Option<PathBuf>) {
    let mut figment = Figment::new();
    let config_file = match &overrides.config_file {
        Some(path) if !path.is_file() => {
            problems.push(Problem::new(
                format!("the configuration file {} does not exist", path.display()),
                "--config names a readable TOML file",
                format!(
                    "create {} (see config/redcloak.example.toml) or drop --config",
                    path.display()
                ),
                "docs/configuration.md#configuration-file",
            ));
            None
        }
        Some(path) => Some(path.clone()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
    };
    if let Some(path) = &config_file {
        // file_exact: never search parent directories for a file the user did not name.
        figment = figment.merge(Toml::file_exact(path));
    }
    for &(var, path) in ENV_VARS {
        let Some(value) = env(var).filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        figment = match kind_of(path) {
            Kind::Text => figment.merge(Serialized::default(path, value)),
            Kind::Number => match value.trim().parse::<u64>() {
                Ok(n) => figment.merge(Serialized::default(path, n)),
                Err(_) => {
                    problems.push(Problem::new(
                        format!("{var}={value} is not a whole number"),
                        format!("{var} is a count (a whole number)"),
                        format!("set {var} to a number, or unset it to use the default"),
                        "docs/configuration.md#limits",
                    ));
                    figment
                }
            },
        };
    }
    if let Some(listen) = &overrides.listen {
        figment = figment.merge(Serialized::default("listen", listen));
    }
    match figment.extract::<Settings>() {
        Ok(settings) => (settings, config_file),
        Err(errors) => {
            for e in errors {
                // Type errors name the setting, not its value. A TOML syntax error quotes the
                // offending source line, which may hold a secret (a password in
                // `upstream.url`): only its position and description are shown.
                let kind = without_source_lines(&e.kind.to_string());
                problems.push(Problem::new(
                    format!(
                        "the configuration file is invalid at '{}': {}",
                        e.path.join("."),
                        kind
                    ),
                    "settings described in config/redcloak.example.toml, with the right types",
                    "correct or remove the setting (a misspelled name is an error, not ignored)",
                    "docs/configuration.md#configuration-file",
                ));
            }
            (Settings::default(), config_file)
        }
    }
}

/// A parser message without the lines that quote the input (`2 | url = …`, `  |    ^`).
fn without_source_lines(message: &str) -> String {
    message
        .lines()
        .filter(|l| !l.contains('|'))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

const SETUP: &str =
    "./scripts/setup-secure-redis.sh (or `make run`) generates a working local setup";

fn check_listen(
    value: &str,
    mode: Option<&str>,
    checks: &mut Vec<Check>,
) -> Option<(ListenAddr, SocketMode)> {
    let rule = Rule::Listener;
    let addr = ListenAddr::parse(value)
        .map_err(|e| {
            let (fix, docs) = match e {
                ListenAddrError::NotLoopback(_) => (
                    "set REDCLOAK_LISTEN=127.0.0.1:6379 (or unix:/path/to/redcloak.sock); to reach redcloak from \
                     another container, run it as a sidecar in the same pod/network namespace",
                    "docs/security.md#listener-not-loopback",
                ),
                _ => (
                    "set REDCLOAK_LISTEN=127.0.0.1:6379 or REDCLOAK_LISTEN=unix:/path/to/redcloak.sock",
                    "docs/security.md#listener-address-invalid",
                ),
            };
            checks.push(Check::fail(
                rule,
                Problem::new(
                    format!("listen address {e}"),
                    "a loopback address (127.0.0.0/8, ::1, localhost) or a Unix socket, in every environment",
                    fix,
                    docs,
                ),
            ))
        })
        .ok();
    let mode = match mode.filter(|m| !m.trim().is_empty()) {
        None => Some(SocketMode::DEFAULT),
        Some(text) => SocketMode::parse(text)
            .map_err(|e| {
                let docs = match e {
                    SocketModeError::WorldAccess(_) => "docs/security.md#socket-mode-world-accessible",
                    _ => "docs/security.md#socket-mode-invalid",
                };
                checks.push(Check::fail(
                    rule,
                    Problem::new(
                        format!("the Unix socket mode (REDCLOAK_LISTEN_MODE) {e}"),
                        "0600 (owner only, the default) or 0660 (owner and group); never access for other users",
                        "set REDCLOAK_LISTEN_MODE=0600, or 0660 and add the application's user to redcloak's group",
                        docs,
                    ),
                ))
            })
            .ok(),
    };
    let (addr, mode) = (addr?, mode?);
    checks.push(Check::pass(
        rule,
        match &addr {
            ListenAddr::Tcp(a) => format!("{a} is a loopback address"),
            ListenAddr::Unix(_) => format!("{addr} is a Unix socket created with mode {mode}"),
        },
    ));
    Some((addr, mode))
}

fn check_upstream(
    url: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    checks: &mut Vec<Check>,
) -> Option<UpstreamUrl> {
    let rule = Rule::UpstreamUrl;
    let Some(url) = url else {
        checks.push(Check::fail(
            rule,
            Problem::new(
                "REDIS_URL is not set",
                "the address of the real Redis, as rediss://host:port[/db]",
                format!("set REDIS_URL=rediss://localhost:6380; {SETUP}"),
                "docs/configuration.md#redis_url",
            ),
        ));
        return None;
    };
    match UpstreamUrl::parse(url) {
        Ok(url) => {
            checks.push(Check::pass(rule, format!("{url} (TLS)")));
            Some(url)
        }
        Err(e) => {
            let (what, fix, docs) = match e {
                UpstreamUrlError::Plaintext => {
                    let mut what = e.to_string();
                    if env("REDIS_INSECURE_ALLOW_PLAINTEXT").is_some() {
                        what.push_str(
                            "; REDIS_INSECURE_ALLOW_PLAINTEXT is set, but redcloak has no insecure mode and does not honour it",
                        );
                    }
                    (
                        what,
                        format!("serve Redis over TLS and set REDIS_URL=rediss://host:port (unset REDIS_INSECURE_ALLOW_PLAINTEXT); {SETUP}"),
                        "docs/security.md#plaintext-redis-url",
                    )
                }
                _ => (
                    e.to_string(),
                    "set REDIS_URL=rediss://host:port[/db], e.g. rediss://localhost:6380/0"
                        .to_owned(),
                    "docs/security.md#redis-url-invalid",
                ),
            };
            checks.push(Check::fail(
                rule,
                Problem::new(
                    what,
                    "rediss:// (TLS with a client certificate and AUTH) in every environment; there is no plaintext mode",
                    fix,
                    docs,
                ),
            ));
            None
        }
    }
}

const PASSWORD_FIX: &str = "generate one with `openssl rand -hex 32`, make it Redis's password (requirepass, or the ACL \
     user's) and give it to redcloak in REDIS_PASSWORD_FILE (or REDIS_PASSWORD); for local development \
     ./scripts/setup-secure-redis.sh does all of this";

fn check_password(
    file: Option<&Path>,
    url: Option<&UpstreamUrl>,
    username: Option<&str>,
    environment: Environment,
    env: &dyn Fn(&str) -> Option<String>,
    checks: &mut Vec<Check>,
) -> Option<(Secret, &'static str)> {
    let rule = Rule::Auth;
    let set = |var: &'static str| {
        env(var)
            .filter(|v| !v.is_empty())
            .map(|v| (Secret::new(v), var))
    };
    let found = match (set("REDIS_PASSWORD").or_else(|| set("REDIS_AUTH")), file) {
        (Some(found), _) => Some(found),
        (None, Some(path)) => Some((
            read_secret_file(path, "REDIS_PASSWORD_FILE", rule, checks)?,
            "REDIS_PASSWORD_FILE",
        )),
        (None, None) => url
            .and_then(|u| u.password.clone())
            .map(|p| (p, "REDIS_URL")),
    };
    let Some((password, source)) = found.filter(|(p, _)| !p.is_empty()) else {
        checks.push(Check::fail(
            rule,
            Problem::new(
                "no Redis password is configured",
                format!(
                    "AUTH on every upstream connection, with a password of at least {} characters in {environment}: \
                     REDIS_PASSWORD, REDIS_AUTH or REDIS_PASSWORD_FILE",
                    environment.min_password_len()
                ),
                PASSWORD_FIX,
                "docs/security.md#password-missing",
            ),
        ));
        return None;
    };
    let weaknesses = password::assess(password.expose(), environment);
    for weakness in &weaknesses {
        let problem = match *weakness {
            Weakness::TooShort { len, min } => Problem::new(
                format!("the Redis password (from {source}) is {len} characters long"),
                format!("at least {min} characters in {environment}"),
                PASSWORD_FIX,
                "docs/security.md#password-too-short",
            ),
            Weakness::WellKnown => Problem::new(
                format!(
                    "the Redis password (from {source}) is a well-known weak value, a repetition of one, or one followed by digits"
                ),
                format!("a random password in {environment}, not a common word such as foobared, redis or password"),
                PASSWORD_FIX,
                "docs/security.md#password-well-known",
            ),
            Weakness::TooFewDistinct { distinct, min } => Problem::new(
                format!("the Redis password (from {source}) is made of only {distinct} distinct characters"),
                format!("a random-looking password in {environment}: at least {min} distinct characters"),
                PASSWORD_FIX,
                "docs/security.md#password-not-random",
            ),
        };
        checks.push(Check::fail(rule, problem));
    }
    if weaknesses.is_empty() {
        checks.push(Check::pass(
            rule,
            format!(
                "password from {source} ({} characters) meets the {environment} rules; AUTH as {}",
                password.expose().chars().count(),
                username.map_or("the default user".to_owned(), |u| format!("user {u}"))
            ),
        ));
    }
    Some((password, source))
}

fn check_keys(
    file: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    checks: &mut Vec<Check>,
) -> Option<(KeyRing, &'static str)> {
    let rule = Rule::EncryptionKeys;
    let (list, source) = match (env("REDIS_ENCRYPTION_KEY").filter(|v| !v.is_empty()), file) {
        (Some(list), _) => (Secret::new(list), "REDIS_ENCRYPTION_KEY"),
        (None, Some(path)) => {
            let raw = read_secret_file(path, "REDIS_ENCRYPTION_KEY_FILE", rule, checks)?;
            // One key per line or comma-separated, as the user prefers; `#` starts a comment
            // (not in the base64 alphabet), as `KeyRing::parse_file` reads the file.
            let list = Secret::new(
                raw.expose()
                    .lines()
                    .map(|line| line.split('#').next().unwrap_or_default())
                    .flat_map(|line| line.split(','))
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .collect::<Vec<_>>()
                    .join(","),
            );
            (list, "REDIS_ENCRYPTION_KEY_FILE")
        }
        (None, None) => {
            checks.push(Check::fail(
                rule,
                Problem::new(
                    "no encryption key is configured",
                    "REDIS_ENCRYPTION_KEY (comma-separated Fernet keys, the first encrypts) or REDIS_ENCRYPTION_KEY_FILE, \
                     in every environment; redcloak never generates one at startup (data would be unreadable after a restart)",
                    "run `redcloak keygen`, store the key in your secret store, and set REDIS_ENCRYPTION_KEY_FILE (or REDIS_ENCRYPTION_KEY)",
                    "docs/security.md#encryption-key-missing",
                ),
            ));
            return None;
        }
    };
    match KeyRing::parse(list.expose()) {
        Ok(ring) => {
            let ids = ring.key_ids();
            checks.push(Check::pass(
                rule,
                format!(
                    "{} Fernet key{} from {source}; {} encrypts",
                    ids.len(),
                    if ids.len() == 1 { "" } else { "s" },
                    ids[0]
                ),
            ));
            Some((ring, source))
        }
        Err(e) => {
            checks.push(Check::fail(
                rule,
                Problem::new(
                    format!("{e} (in {source})"),
                    "one or more valid Fernet keys (32 random bytes, url-safe base64), each listed once",
                    "generate a key with `redcloak keygen`; to rotate, put the new key first and keep the old ones after it",
                    "docs/security.md#encryption-key-invalid",
                ),
            ));
            None
        }
    }
}

/// `REDCLOAK_VALUE_FORMAT` / `encryption.value_format`: the format new values are written in.
/// Reads accept both formats whatever this says, so switching is a `rewrap`, not a flag day.
fn check_value_format(value: Option<&str>, checks: &mut Vec<Check>) -> Option<ValueFormat> {
    let rule = Rule::EncryptionKeys;
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Some(ValueFormat::Fernet),
        Some(text) => match text.parse::<ValueFormat>() {
            Ok(format) => {
                checks.push(Check::pass(
                    rule,
                    format!("new values are written as {format} (REDCLOAK_VALUE_FORMAT)"),
                ));
                Some(format)
            }
            Err(_) => {
                checks.push(Check::fail(
                    rule,
                    Problem::new(
                        format!("REDCLOAK_VALUE_FORMAT = {:?} is not a value format", text.chars().take(40).collect::<String>()),
                        "`fernet` (the default, readable by Python's cryptography.fernet) or `aes-gcm` \
                         (bound to database, key and hash field: a value copied elsewhere does not decrypt)",
                        "set REDCLOAK_VALUE_FORMAT=fernet or REDCLOAK_VALUE_FORMAT=aes-gcm (or unset it for fernet)",
                        "docs/encryption.md#aes-256-gcm-value-envelope-opt-in-valueformataesgcm-aes-gcm",
                    ),
                ));
                None
            }
        },
    }
}

/// Shared upstream connections, at most: a few carry thousands of clients.
const MAX_SHARED_CONNECTIONS: u64 = 64;

fn check_limits(l: &LimitSettings, problems: &mut Vec<Problem>) -> Limits {
    let d = Limits::default();
    let mut get = |value: Option<u64>, name: &str, default: usize, max: usize| -> usize {
        match value {
            None => default,
            Some(v) if v >= 1 && v <= max as u64 => v as usize,
            Some(v) => {
                problems.push(Problem::new(
                    format!("limits.{name} = {v} is out of range"),
                    format!("a value from 1 to {max}"),
                    format!("set limits.{name} within range, or unset it to use the default ({default})"),
                    "docs/configuration.md#limits",
                ));
                default
            }
        }
    };
    Limits {
        max_connections: get(
            l.max_connections,
            "max_connections",
            d.max_connections,
            1_000_000,
        ),
        max_pipeline: get(l.max_pipeline, "max_pipeline", d.max_pipeline, 10_000_000),
        max_bulk_bytes: get(
            l.max_bulk_bytes,
            "max_bulk_bytes",
            d.max_bulk_bytes,
            d.max_bulk_bytes,
        ),
        max_request_bytes: get(
            l.max_request_bytes,
            "max_request_bytes",
            d.max_request_bytes,
            1 << 34,
        ),
        connect_timeout: Duration::from_millis(get(
            l.connect_timeout_ms,
            "connect_timeout_ms",
            d.connect_timeout.as_millis() as usize,
            600_000,
        ) as u64),
        max_buffered_bytes: get(
            l.max_buffered_bytes,
            "max_buffered_bytes",
            d.max_buffered_bytes,
            1 << 40,
        ),
        // 0 is meaningful here (no shared connections), unlike for the other limits.
        shared_connections: match l.shared_connections {
            None => d.shared_connections,
            Some(v) if v <= MAX_SHARED_CONNECTIONS => v as usize,
            Some(v) => {
                problems.push(Problem::new(
                    format!("limits.shared_connections = {v} is out of range"),
                    format!(
                        "a value from 0 (every client has its own connection to Redis) to \
                         {MAX_SHARED_CONNECTIONS}"
                    ),
                    "set REDCLOAK_SHARED_CONNECTIONS within range, or unset it to use the default",
                    "docs/configuration.md#limits",
                ));
                d.shared_connections
            }
        },
    }
}

fn check_operations(o: &OperationsSettings, problems: &mut Vec<Problem>) -> crate::Operations {
    let d = crate::Operations::default();
    let admin_listen = match o.admin_listen.as_deref().map(str::trim) {
        None => d.admin_listen.clone(),
        Some(v) if v.eq_ignore_ascii_case("off") => None,
        Some(v) => match ListenAddr::parse(v) {
            Ok(addr) => Some(addr),
            Err(e) => {
                problems.push(Problem::new(
                    format!("REDCLOAK_ADMIN_LISTEN: {e}"),
                    "a loopback address or a Unix socket, like the data listener (or `off`)",
                    "set REDCLOAK_ADMIN_LISTEN=127.0.0.1:9121; probes run inside the pod (`redcloak probe readyz`)",
                    "docs/security.md#listener-not-loopback",
                ));
                d.admin_listen.clone()
            }
        },
    };
    let secs = |v: Option<u64>,
                name: &str,
                default: Duration,
                max: u64,
                problems: &mut Vec<Problem>| match v {
        None => default,
        Some(n) if n <= max => Duration::from_secs(n),
        Some(n) => {
            problems.push(Problem::new(
                format!("operations.{name} = {n} is out of range"),
                format!("seconds, from 0 to {max}"),
                format!("set operations.{name} within range, or unset it to use the default"),
                "docs/configuration.md#operations",
            ));
            default
        }
    };
    let shutdown_grace = secs(
        o.shutdown_grace_secs,
        "shutdown_grace_secs",
        d.shutdown_grace,
        3600,
        problems,
    );
    let idle = secs(
        o.idle_timeout_secs,
        "idle_timeout_secs",
        Duration::ZERO,
        30 * 24 * 3600,
        problems,
    );
    let reply = secs(
        o.reply_timeout_secs,
        "reply_timeout_secs",
        d.reply_timeout.unwrap_or(Duration::ZERO),
        24 * 3600,
        problems,
    );
    crate::Operations {
        admin_listen,
        shutdown_grace,
        idle_timeout: (!idle.is_zero()).then_some(idle),
        reply_timeout: (!reply.is_zero()).then_some(reply),
    }
}

fn check_fallback(f: &FallbackSettings, problems: &mut Vec<Problem>) -> crate::FallbackConfig {
    let d = crate::FallbackConfig::default();
    let mut get = |value: Option<u64>, name: &str, default: usize, min: u64, max: u64| -> usize {
        match value {
            None => default,
            Some(v) if (min..=max).contains(&v) => v as usize,
            Some(v) => {
                problems.push(Problem::new(
                    format!("fallback.{name} = {v} is out of range"),
                    format!("a value from {min} to {max}"),
                    format!("set fallback.{name} within range, or unset it to use the default ({default})"),
                    "docs/configuration.md#fallback",
                ));
                default
            }
        }
    };
    let cache_bytes = get(f.cache_bytes, "cache_bytes", d.cache_bytes, 0, 1 << 40);
    let journal_max_entries = get(
        f.journal_max_entries,
        "journal_max_entries",
        d.journal_max_entries,
        0,
        100_000_000,
    );
    let journal_max_bytes = get(
        f.journal_max_bytes,
        "journal_max_bytes",
        d.journal_max_bytes,
        0,
        1 << 40,
    );
    let pool_size = get(f.pool_size, "pool_size", d.pool_size, 0, 1024);
    let recovery = match f.recovery.as_deref().map(str::trim) {
        None => d.recovery,
        Some(r) if r.eq_ignore_ascii_case("replay") => crate::Recovery::Replay,
        Some(r) if r.eq_ignore_ascii_case("invalidate") => crate::Recovery::Invalidate,
        Some(other) => {
            problems.push(Problem::new(
                format!("REDCLOAK_RECOVERY={other} is not a recovery mode"),
                "replay (apply writes made during an outage when Redis returns; last writer wins) or invalidate (drop them)",
                "set REDCLOAK_RECOVERY=replay (the default) or REDCLOAK_RECOVERY=invalidate",
                "docs/configuration.md#fallback",
            ));
            d.recovery
        }
    };
    crate::FallbackConfig {
        cache_bytes,
        journal_max_entries,
        journal_max_bytes,
        recovery,
        pool_size,
    }
}

/// Largest secret file read (a password or a few keys; a bigger file is a wrong path).
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Reads a secret file into a zeroizing buffer; trailing newlines are dropped (as `echo` and
/// Kubernetes Secrets created from literals leave one).
fn read_secret_file(path: &Path, var: &str, rule: Rule, checks: &mut Vec<Check>) -> Option<Secret> {
    use std::io::Read;
    let fail = |why: String| {
        Check::fail(
            rule,
            Problem::new(
                format!("{var}={} cannot be read: {why}", path.display()),
                "a readable file holding the secret (UTF-8 text)",
                format!("check the path and permissions of {}", path.display()),
                "docs/configuration.md#secret-files",
            ),
        )
    };
    let read = || -> std::io::Result<Zeroizing<Vec<u8>>> {
        let mut file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        if len > MAX_SECRET_FILE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("larger than {MAX_SECRET_FILE} bytes"),
            ));
        }
        // Sized up front so the buffer is not reallocated (leaving copies behind) while reading.
        let mut buf = Zeroizing::new(Vec::with_capacity(len as usize + 1));
        file.by_ref().take(MAX_SECRET_FILE).read_to_end(&mut buf)?;
        Ok(buf)
    };
    let mut buf = match read() {
        Ok(buf) => buf,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            checks.push(fail(e.to_string()));
            return None;
        }
        Err(e) => {
            checks.push(fail(e.kind().to_string()));
            return None;
        }
    };
    while buf.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
        buf.pop();
    }
    match String::from_utf8(std::mem::take(&mut *buf)) {
        Ok(text) => Some(Secret::new(text)),
        Err(e) => {
            e.into_bytes().zeroize();
            checks.push(fail("it is not UTF-8 text".to_owned()));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const STRONG: &str = "q7Ld9vX2mK4pR8sT1wZ6nB3cF5hJ0gYa";

    struct Fixture {
        dir: tempfile::TempDir,
        env: HashMap<String, String>,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let pki = redcloak_certs::write_dev_pki(dir.path(), &[], 30, false).unwrap();
            let p = |f: &Path| f.display().to_string();
            let env = HashMap::from([
                ("REDIS_URL".to_owned(), "rediss://localhost:6380".to_owned()),
                ("REDIS_PASSWORD".to_owned(), STRONG.to_owned()),
                (
                    "REDIS_ENCRYPTION_KEY".to_owned(),
                    redcloak_crypto::generate_key().to_string(),
                ),
                ("REDIS_TLS_CA_CERT".to_owned(), p(&pki.ca_cert)),
                ("REDIS_TLS_CERT".to_owned(), p(&pki.client_cert)),
                ("REDIS_TLS_KEY".to_owned(), p(&pki.client_key)),
            ]);
            Fixture { dir, env }
        }

        fn set(mut self, k: &str, v: &str) -> Self {
            self.env.insert(k.to_owned(), v.to_owned());
            self
        }

        fn clone_with(&self, k: &str, v: &str) -> Fixture {
            let mut env = self.env.clone();
            env.insert(k.to_owned(), v.to_owned());
            Fixture {
                dir: tempfile::tempdir().unwrap(),
                env,
            }
        }

        fn unset(mut self, k: &str) -> Self {
            self.env.remove(k);
            self
        }

        fn load(&self, overrides: &Overrides) -> Result<Config, ConfigError> {
            load(overrides, &|k| self.env.get(k).cloned())
        }

        fn evaluate(&self) -> Evaluation {
            evaluate(&Overrides::default(), &|k| self.env.get(k).cloned())
        }
    }

    fn errors(f: &Fixture) -> String {
        f.load(&Overrides::default()).unwrap_err().to_string()
    }

    #[test]
    fn a_complete_environment_loads_with_defaults() {
        let f = Fixture::new();
        let c = f.load(&Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:6379");
        assert_eq!(c.upstream.to_string(), "rediss://localhost:6380/0");
        assert_eq!(c.password.expose(), STRONG);
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.environment(), Environment::Production, "the default");
        assert_eq!(c.listen_mode, SocketMode::DEFAULT);
        let key = &f.env["REDIS_ENCRYPTION_KEY"][..20];
        for shown in [
            c.summary(),
            format!("{c:?}"),
            format!("{:?}", c.effective()),
        ] {
            assert!(!shown.contains(STRONG) && !shown.contains(key), "{shown}");
            assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        }
    }

    #[test]
    fn shared_connections_from_zero_to_the_maximum() {
        for (value, want) in [
            ("0", Some(0)),
            ("3", Some(3)),
            ("64", Some(64)),
            ("65", None),
        ] {
            let f = Fixture::new().set("REDCLOAK_SHARED_CONNECTIONS", value);
            match (f.load(&Overrides::default()), want) {
                (Ok(c), Some(n)) => assert_eq!(c.limits.shared_connections, n),
                (Err(e), None) => {
                    let e = e.to_string();
                    assert!(
                        e.contains("limits.shared_connections = 65 is out of range"),
                        "{e}"
                    );
                    assert!(e.contains("REDCLOAK_SHARED_CONNECTIONS"), "{e}");
                }
                (got, _) => panic!("REDCLOAK_SHARED_CONNECTIONS={value}: {got:?}"),
            }
        }
        let c = Fixture::new().load(&Overrides::default()).unwrap();
        assert_eq!(c.limits.shared_connections, 2, "the default");
    }

    #[test]
    fn layers_file_then_env_then_flags() {
        let f = Fixture::new()
            .set("REDCLOAK_LISTEN", "127.0.0.2:7000")
            .set("REDCLOAK_MAX_PIPELINE", "42");
        let file = f.dir.path().join("redcloak.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.3:1\"\n[limits]\nmax_connections = 7\nmax_pipeline = 9\n",
        )
        .unwrap();
        let o = Overrides {
            config_file: Some(file.clone()),
            listen: None,
        };
        let c = f.load(&o).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.2:7000", "env beats file");
        assert_eq!((c.limits.max_connections, c.limits.max_pipeline), (7, 42));
        let o = Overrides {
            config_file: Some(file),
            listen: Some("[::1]:9".into()),
        };
        assert_eq!(
            f.load(&o).unwrap().listen.to_string(),
            "[::1]:9",
            "flag beats env"
        );
    }

    #[test]
    fn numeric_looking_secrets_are_strings() {
        // figment would sniff these as numbers/booleans and echo them in its error.
        let f = Fixture::new()
            .set("REDCLOAK_ENV", "development")
            .set("REDIS_PASSWORD", "1234567890123456")
            .set("REDIS_USERNAME", "true");
        let c = f.load(&Overrides::default()).unwrap();
        assert_eq!(c.password.expose(), "1234567890123456");
        assert_eq!(c.username.as_deref(), Some("true"));
    }

    #[test]
    fn all_problems_are_reported_together_without_secrets() {
        let f = Fixture::new()
            .set("REDIS_URL", "redis://:pw-in-url-secret@localhost:6379")
            .set("REDIS_INSECURE_ALLOW_PLAINTEXT", "true")
            .set("REDIS_ENCRYPTION_KEY", "not-a-key-secret-value")
            .set("REDCLOAK_LISTEN", "0.0.0.0:6379")
            .unset("REDIS_PASSWORD")
            .unset("REDIS_TLS_CERT");
        let err = f.load(&Overrides::default()).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.problems.len(), 5, "{text}");
        for needle in [
            "redis:// (plaintext)",
            "no insecure mode",
            "not a loopback",
            "no Redis password",
            "REDIS_TLS_CERT is not set",
            "encryption key #1",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
        for p in &err.problems {
            assert!(!p.fix.is_empty() && p.docs.starts_with("docs/"), "{p}");
        }
        assert!(
            !text.contains("pw-in-url-secret") && !text.contains("not-a-key-secret-value"),
            "{text}"
        );
    }

    #[test]
    fn missing_everything_says_how_to_set_up() {
        let text = load(&Overrides::default(), &|_| None)
            .unwrap_err()
            .to_string();
        for needle in [
            "REDIS_URL is not set",
            "no Redis password",
            "REDIS_TLS_CERT is not set",
            "REDIS_TLS_KEY is not set",
            "no encryption key",
            "redcloak keygen",
            "setup-secure-redis.sh",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
        }
    }

    #[test]
    fn secret_files_and_aliases() {
        let f = Fixture::new()
            .set("REDCLOAK_ENV", "dev")
            .unset("REDIS_PASSWORD")
            .unset("REDIS_ENCRYPTION_KEY");
        let pw = f.dir.path().join("pw");
        std::fs::write(&pw, "from-a-file-password\n").unwrap();
        let keys = f.dir.path().join("keys");
        let (k1, k2) = (
            redcloak_crypto::generate_key(),
            redcloak_crypto::generate_key(),
        );
        std::fs::write(
            &keys,
            format!(
                "# new primary (rotated in today)\n{}\n\n{}  # old: remove after rewrap\n",
                *k1, *k2
            ),
        )
        .unwrap();
        let f = f
            .set("REDIS_PASSWORD_FILE", &pw.display().to_string())
            .set("REDIS_ENCRYPTION_KEY_FILE", &keys.display().to_string());
        let c = f.load(&Overrides::default()).unwrap();
        assert_eq!(c.password.expose(), "from-a-file-password");
        assert_eq!(c.key_ring.len(), 2);
        let f = f.set("REDIS_AUTH", "alias-wins-over-file");
        assert_eq!(
            f.load(&Overrides::default()).unwrap().password.expose(),
            "alias-wins-over-file"
        );
        let f = f
            .set("REDIS_PASSWORD_FILE", "/nonexistent/pw")
            .unset("REDIS_AUTH");
        assert!(errors(&f).contains("REDIS_PASSWORD_FILE=/nonexistent/pw cannot be read"));
    }

    #[test]
    fn password_from_url_is_used_when_nothing_else_is_set() {
        let f = Fixture::new()
            .set("REDCLOAK_ENV", "development")
            .unset("REDIS_PASSWORD")
            .set(
                "REDIS_URL",
                "rediss://app:url-password-123@localhost:6380/3",
            );
        let c = f.load(&Overrides::default()).unwrap();
        assert_eq!(
            (c.password.expose(), c.username.as_deref(), c.upstream.db),
            ("url-password-123", Some("app"), 3)
        );
    }

    #[test]
    fn a_toml_syntax_error_never_quotes_the_line() {
        let f = Fixture::new();
        let file = f.dir.path().join("bad.toml");
        std::fs::write(
            &file,
            "[upstream]\nurl = rediss://:S3cretPassw0rdXYZ@host:6380\n",
        )
        .unwrap();
        let err = f
            .load(&Overrides {
                config_file: Some(file),
                listen: None,
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("S3cretPassw0rdXYZ"), "{err}");
    }

    #[test]
    fn the_example_file_is_valid() {
        let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../config/redcloak.example.toml");
        let settings: Settings = Figment::new()
            .merge(Toml::file_exact(&example))
            .extract()
            .expect("example parses");
        assert_eq!(settings.listen.as_deref(), Some("127.0.0.1:6379"));
        assert_eq!(
            settings.limits.max_pipeline,
            Some(Limits::default().max_pipeline as u64)
        );
        assert_eq!(
            settings.limits.max_connections,
            Some(Limits::default().max_connections as u64)
        );
    }

    #[test]
    fn file_errors_are_reported() {
        let f = Fixture::new();
        let file = f.dir.path().join("bad.toml");
        std::fs::write(&file, "[upstream]\nurll = \"x\"\n").unwrap();
        let err = f
            .load(&Overrides {
                config_file: Some(file),
                listen: None,
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("urll"), "{err}");
        let err = f
            .load(&Overrides {
                config_file: Some("/nonexistent.toml".into()),
                listen: None,
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent.toml does not exist"), "{err}");
        let err = errors(&f.set("REDCLOAK_MAX_CONNECTIONS", "lots"));
        assert!(
            err.contains("REDCLOAK_MAX_CONNECTIONS=lots is not a whole number"),
            "{err}"
        );
    }

    fn fails(e: &Evaluation, rule: Rule) -> Vec<&Problem> {
        e.checks
            .iter()
            .filter(|c| c.rule == rule && c.failed())
            .filter_map(Check::problem)
            .collect()
    }

    #[test]
    fn every_rule_passes_on_a_good_configuration() {
        let e = Fixture::new().evaluate();
        assert!(e.passed(), "{:#?}", e.checks);
        let mut rules: Vec<Rule> = e.checks.iter().map(|c| c.rule).collect();
        rules.dedup();
        // The handshake is recorded by the binary after it connects.
        assert_eq!(rules, &Rule::ALL[..Rule::ALL.len() - 1]);
        assert!(e.checks.iter().all(|c| c.problem().is_none()));
    }

    #[test]
    fn an_unknown_redcloak_env_fails_and_the_rest_is_checked_as_production() {
        let f = Fixture::new()
            .set("REDCLOAK_ENV", "prodution")
            .set("REDIS_PASSWORD", "only-twenty-chars-ok");
        let e = f.evaluate();
        assert_eq!(e.detected.environment, Environment::Production);
        assert!(fails(&e, Rule::Environment)[0]
            .what
            .contains("REDCLOAK_ENV=prodution"));
        assert!(fails(&e, Rule::Auth)[0].what.contains("20 characters"));
        assert!(!e.passed());
        assert!(e.config().is_some(), "still complete enough to print");
    }

    #[test]
    fn password_rules_follow_the_environment() {
        let cases = [
            ("0123456789abcdefXYZ", "development", None),
            ("0123456789abcdef", "development", None),
            ("0123456789abcde", "development", Some("password-too-short")),
            ("0123456789abcdefXYZ", "staging", Some("password-too-short")),
            ("foobaredfoobaredfoobaredfoobared", "dev", None),
            (
                "changeme12345678901234567890123456",
                "prod",
                Some("password-well-known"),
            ),
            (
                "abcdeabcdeabcdeabcdeabcdeabcdeabcde",
                "production",
                Some("password-not-random"),
            ),
            ("abcdeabcdeabcdeabcdeabcdeabcdeabcde", "development", None),
        ];
        for (password, env, anchor) in cases {
            let f = Fixture::new()
                .set("REDCLOAK_ENV", env)
                .set("REDIS_PASSWORD", password);
            let e = f.evaluate();
            let found = fails(&e, Rule::Auth);
            match anchor {
                None => assert!(found.is_empty(), "{password} in {env}: {found:?}"),
                Some(anchor) => {
                    assert_eq!(found.len(), 1, "{password} in {env}: {found:?}");
                    assert!(found[0].docs.ends_with(anchor), "{}", found[0]);
                    assert!(found[0].required.contains(e.detected.environment.name()));
                    assert!(!found[0].to_string().contains(password));
                }
            }
        }
    }

    #[test]
    fn listen_mode_is_checked() {
        let f = Fixture::new().set("REDCLOAK_LISTEN", "unix:/tmp/x.sock");
        let c = f.load(&Overrides::default()).unwrap();
        assert_eq!(c.listen_mode, SocketMode::DEFAULT);
        let c = f
            .clone_with("REDCLOAK_LISTEN_MODE", "0660")
            .load(&Overrides::default())
            .unwrap();
        assert_eq!(c.listen_mode.bits(), 0o660);
        assert!(
            c.summary().contains("unix:/tmp/x.sock (mode 0660)"),
            "{}",
            c.summary()
        );
        let err = errors(&f.clone_with("REDCLOAK_LISTEN_MODE", "0666"));
        assert!(
            err.contains("0666 lets every user") && err.contains("REDCLOAK_LISTEN_MODE=0600"),
            "{err}"
        );
        let err = errors(&f.clone_with("REDCLOAK_LISTEN_MODE", "rw-rw----"));
        assert!(err.contains("is not a file mode"), "{err}");
        let file = f.dir.path().join("mode.toml");
        std::fs::write(&file, "listen_mode = \"0640\"\n").unwrap();
        let c = f
            .load(&Overrides {
                config_file: Some(file),
                listen: None,
            })
            .unwrap();
        assert_eq!(c.listen_mode.bits(), 0o640);
    }

    #[test]
    fn warnings_do_not_stop_loading() {
        let f = Fixture::new().set("REDCLOAK_ENV", "development");
        let key = PathBuf::from(&f.env["REDIS_TLS_KEY"]);
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let e = f.evaluate();
        assert!(e.passed(), "{:#?}", e.checks);
        assert_eq!(e.warnings().count(), 1);
        assert!(f.load(&Overrides::default()).is_ok());
        let f = f.set("REDCLOAK_ENV", "staging");
        let err = errors(&f);
        assert!(
            err.contains("has mode 0644") && err.contains("chmod 600"),
            "{err}"
        );
    }

    #[test]
    fn secret_file_edge_cases() {
        let f = Fixture::new().unset("REDIS_PASSWORD");
        let pw = f.dir.path().join("pw");
        std::fs::write(&pw, [0xff, 0xfe, b'x']).unwrap();
        let f = f.set("REDIS_PASSWORD_FILE", &pw.display().to_string());
        assert!(errors(&f).contains("is not UTF-8 text"));
        std::fs::write(&pw, vec![b'a'; 100_000]).unwrap();
        assert!(errors(&f).contains("larger than"));
        std::fs::write(&pw, format!("{STRONG}\r\n\n")).unwrap();
        assert_eq!(
            f.load(&Overrides::default()).unwrap().password.expose(),
            STRONG
        );
        // An empty REDIS_PASSWORD is unset: the file is used.
        let f = f.set("REDIS_PASSWORD", "");
        assert_eq!(
            f.load(&Overrides::default()).unwrap().password_source,
            "REDIS_PASSWORD_FILE"
        );
    }
}
