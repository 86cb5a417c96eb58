//! Configuration of redcloak: layering, secrets and the security policy that refuses an
//! insecure setup.
//!
//! # Layout
//! - [`load`] / [`evaluate`]: built-in defaults < `config/redcloak.toml` (or `--config`) <
//!   environment < command-line flags, then every rule of the policy; all outcomes are
//!   collected into one [`Evaluation`] so the user sees every problem at once.
//! - [`environment`]: which rule set applies (development, staging, production).
//! - [`policy`]: [`Rule`], [`Check`] and [`Outcome`] (pass / warn / fail).
//! - [`password`]: the AUTH password rules.
//! - [`tls`]: CA roots, client certificate and key, read and checked before connecting.
//! - [`x509`]: certificate validity periods, read with x509-cert.
//! - [`addr`]: [`ListenAddr`] (loopback or Unix socket only), [`SocketMode`] and
//!   [`UpstreamUrl`] (`rediss://` only).
//! - [`secret`]: [`Secret`], redacted in `Debug`/`Display` and zeroized on drop.
//! - [`problem`]: [`Problem`], the what / required / fix / docs form of every startup error.
//!
//! # Security
//! There is no setting that turns TLS, AUTH or value encryption off: the types cannot hold
//! such a configuration. Secret environment variables are read as plain strings (never
//! type-sniffed by figment, whose errors would echo them) and secret files straight into
//! zeroizing buffers. No message produced here contains a secret's value.

pub mod addr;
pub mod environment;
mod load;
pub mod password;
pub mod policy;
pub mod problem;
pub mod secret;
pub mod tls;
pub mod x509;

use std::path::PathBuf;
use std::time::Duration;

pub use addr::{Host, ListenAddr, SocketMode, UpstreamUrl};
pub use environment::{Detected, Environment};
pub use load::{evaluate, load, Overrides, DEFAULT_CONFIG_FILE, ENV_VARS};
pub use policy::{Check, Evaluation, Outcome, Rule};
pub use problem::{ConfigError, Problem};
pub use redcloak_crypto::KeyRing;
pub use secret::Secret;
pub use tls::{TlsFiles, TlsMaterial};

/// A complete configuration. One returned by [`load`] passed every rule; one inside an
/// [`Evaluation`] may have failed some (see [`Evaluation::passed`]).
#[derive(Debug, Clone)]
pub struct Config {
    /// The environment whose rules were applied, and where it came from.
    pub detected: Detected,
    /// Where applications connect (plaintext RESP, loopback or Unix socket).
    pub listen: ListenAddr,
    /// Permissions of the Unix socket (ignored for TCP).
    pub listen_mode: SocketMode,
    /// The real Redis (TLS).
    pub upstream: UpstreamUrl,
    /// ACL user for AUTH, if any.
    pub username: Option<String>,
    /// Password for AUTH.
    pub password: Secret,
    /// Where the password came from (`REDIS_PASSWORD`, `REDIS_AUTH`, `REDIS_PASSWORD_FILE`,
    /// `REDIS_URL`).
    pub password_source: &'static str,
    /// CA roots, certificate chain and key for mutual TLS, already read and checked.
    pub tls: TlsMaterial,
    /// Encryption keys: the first encrypts, all decrypt.
    pub key_ring: KeyRing,
    /// Where the keys came from (`REDIS_ENCRYPTION_KEY` or `REDIS_ENCRYPTION_KEY_FILE`).
    pub key_source: &'static str,
    /// Resource limits.
    pub limits: Limits,
    /// What redcloak does while Redis is unreachable.
    pub fallback: FallbackConfig,
    /// The admin endpoint, shutdown and idle clients.
    pub operations: Operations,
    /// The configuration file that was read, if any.
    pub config_file: Option<PathBuf>,
}

/// Operations: the admin endpoint, shutdown and idle clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operations {
    /// Where `/livez`, `/readyz`, `/status` and `/metrics` are served (loopback or Unix
    /// socket; `None`: off).
    pub admin_listen: Option<ListenAddr>,
    /// Time allowed after SIGTERM/SIGINT for sessions to answer what they have read.
    pub shutdown_grace: Duration,
    /// Close a client that has sent nothing for this long (off by default, as in Redis).
    pub idle_timeout: Option<Duration>,
    /// A reply to a non-blocking command that takes longer than this means Redis hangs: the
    /// connection is given up (commands owed get "outcome unknown") and, if no new connection
    /// can be made, redcloak serves degraded. `None`: wait forever.
    pub reply_timeout: Option<Duration>,
}

impl Default for Operations {
    fn default() -> Self {
        Operations {
            admin_listen: Some(ListenAddr::Tcp(([127, 0, 0, 1], 9121).into())),
            shutdown_grace: Duration::from_secs(20),
            idle_timeout: None,
            reply_timeout: Some(Duration::from_secs(15)),
        }
    }
}

/// What happens to writes accepted while Redis was unreachable, once it is back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Apply them to Redis, in order, before new traffic flows (last writer wins).
    Replay,
    /// Drop them, and forget what the local cache knew about the keys they touched.
    Invalidate,
}

/// The fallback: the shadow cache, the outage journal and the warm pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FallbackConfig {
    /// Bound of the shadow cache (ciphertext of recently written or read strings), in bytes.
    /// 0 turns the shadow cache (and so serving during outages) off.
    pub cache_bytes: usize,
    /// Writes accepted during an outage, at most (0: refuse writes during outages).
    pub journal_max_entries: usize,
    /// Bytes of journaled writes, at most.
    pub journal_max_bytes: usize,
    /// What happens to the journal when Redis is back.
    pub recovery: Recovery,
    /// Authenticated upstream connections kept ready for new clients.
    pub pool_size: usize,
}

impl Default for FallbackConfig {
    fn default() -> Self {
        FallbackConfig {
            cache_bytes: 64 * 1024 * 1024,
            journal_max_entries: 10_000,
            journal_max_bytes: 16 * 1024 * 1024,
            recovery: Recovery::Replay,
            pool_size: 4,
        }
    }
}

/// Resource limits. Every default is shown in `redcloak --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Client connections served at once; further clients wait in the accept queue.
    pub max_connections: usize,
    /// Commands a client may have waiting for replies; past it redcloak stops reading from
    /// that client until replies drain (backpressure).
    pub max_pipeline: usize,
    /// Largest bulk string a client may send, in bytes (Redis `proto-max-bulk-len`).
    pub max_bulk_bytes: usize,
    /// Largest request (all its arguments) a client may send, in bytes (Redis
    /// `client-query-buffer-limit`).
    pub max_request_bytes: usize,
    /// Time allowed to connect to Redis, including the TLS handshake and AUTH.
    pub connect_timeout: Duration,
    /// Bytes all sessions together may hold in request and reply buffers beyond a small
    /// share each; past it, clients wait briefly and then get an error (never an abort).
    pub max_buffered_bytes: usize,
    /// Upstream TLS connections that clients' stateless commands share, pipelined (DESIGN.md
    /// §2); a client moves to a connection of its own when it does anything stateful. 0: every
    /// client has its own connection from its first command. Default 2: measured in
    /// docs/performance.md.
    pub shared_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_pipeline: 100_000,
            max_bulk_bytes: 512 * 1024 * 1024,
            max_request_bytes: 1024 * 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
            max_buffered_bytes: 256 * 1024 * 1024,
            shared_connections: 2,
        }
    }
}

impl Config {
    /// The environment whose rules apply.
    pub fn environment(&self) -> Environment {
        self.detected.environment
    }

    /// A one-line, secret-free summary for the startup log.
    pub fn summary(&self) -> String {
        self.effective()
            .iter()
            .filter(|(k, _)| *k != "environment") // logged on its own line
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The effective configuration, setting by setting, with every secret redacted (what
    /// `redcloak check` prints).
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        let listen = match &self.listen {
            ListenAddr::Unix(_) => format!("{} (mode {})", self.listen, self.listen_mode),
            ListenAddr::Tcp(_) => self.listen.to_string(),
        };
        let keys = self
            .key_ring
            .key_ids()
            .iter()
            .enumerate()
            .map(|(i, id)| {
                if i == 0 {
                    format!("{id} (encrypts, {})", self.key_ring.format())
                } else {
                    id.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        vec![
            ("environment", self.detected.to_string()),
            ("listen", listen),
            ("upstream", self.upstream.to_string()),
            (
                "username",
                self.username.clone().unwrap_or_else(|| "default".into()),
            ),
            (
                "password",
                format!(
                    "{} ({} characters, from {})",
                    self.password,
                    self.password.expose().chars().count(),
                    self.password_source
                ),
            ),
            ("tls.versions", self.environment().tls_versions().to_owned()),
            (
                "tls.ca_cert",
                match &self.tls.files.ca_cert {
                    Some(p) => p.display().to_string(),
                    None => format!("system roots ({})", self.tls.roots_file.display()),
                },
            ),
            (
                "tls.cert",
                format!(
                    "{} (valid until {})",
                    self.tls.files.cert.display(),
                    x509::UtcTime(self.tls.client_validity.not_after)
                ),
            ),
            (
                "tls.key",
                format!("{} [contents redacted]", self.tls.files.key.display()),
            ),
            (
                "encryption.keys",
                format!("{keys}; from {}", self.key_source),
            ),
            (
                "limits",
                format!(
                    "max_connections={} max_pipeline={} max_bulk_bytes={} connect_timeout_ms={} shared_connections={}",
                    self.limits.max_connections,
                    self.limits.max_pipeline,
                    self.limits.max_bulk_bytes,
                    self.limits.connect_timeout.as_millis(),
                    self.limits.shared_connections
                ),
            ),
            (
                "config_file",
                self.config_file
                    .as_ref()
                    .map_or("none".into(), |p| p.display().to_string()),
            ),
        ]
    }
}
