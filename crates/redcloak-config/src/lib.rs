//! Configuration of redcloak: layering, secrets and the checks that refuse an insecure setup.
//!
//! # Layout
//! - [`load`]: built-in defaults < `config/redcloak.toml` (or `--config`) < environment <
//!   command-line flags, into a validated [`Config`]; every problem is collected into one
//!   [`ConfigError`] so the user sees them all at once.
//! - [`addr`]: [`ListenAddr`] (loopback or Unix socket only) and [`UpstreamUrl`] (`rediss://` only).
//! - [`secret`]: [`Secret`], redacted in `Debug`/`Display` and zeroized on drop.
//! - [`problem`]: [`Problem`], the what / required / fix / docs form of every startup error.
//!
//! # Security
//! There is no setting that turns TLS, AUTH or value encryption off: the types cannot hold
//! such a configuration. Secret environment variables are read as plain strings (never
//! type-sniffed by figment, whose errors would echo them) and secret files straight into
//! zeroizing buffers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
mod load;
pub mod problem;
pub mod secret;

use std::path::PathBuf;
use std::time::Duration;

pub use addr::{Host, ListenAddr, UpstreamUrl};
pub use load::{load, Overrides, DEFAULT_CONFIG_FILE, ENV_VARS};
pub use problem::{ConfigError, Problem};
pub use redcloak_crypto::KeyRing;
pub use secret::Secret;

/// A complete, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where applications connect (plaintext RESP, loopback or Unix socket).
    pub listen: ListenAddr,
    /// The real Redis (TLS).
    pub upstream: UpstreamUrl,
    /// ACL user for AUTH, if any.
    pub username: Option<String>,
    /// Password for AUTH.
    pub password: Secret,
    /// Certificates and key for mutual TLS.
    pub tls: TlsFiles,
    /// Encryption keys: the first encrypts, all decrypt.
    pub key_ring: KeyRing,
    /// Resource limits.
    pub limits: Limits,
    /// The configuration file that was read, if any.
    pub config_file: Option<PathBuf>,
}

/// PEM files for the upstream TLS connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA that signed Redis's certificate; the system roots when `None`.
    pub ca_cert: Option<PathBuf>,
    /// redcloak's client certificate (chain).
    pub cert: PathBuf,
    /// redcloak's client private key.
    pub key: PathBuf,
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
    /// Time allowed to connect to Redis, including the TLS handshake and AUTH.
    pub connect_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_pipeline: 100_000,
            max_bulk_bytes: 512 * 1024 * 1024,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// A one-line, secret-free summary for the startup log.
    pub fn summary(&self) -> String {
        format!(
            "listen={} upstream={} user={} tls.ca={} tls.cert={} keys={} config_file={}",
            self.listen,
            self.upstream,
            self.username.as_deref().unwrap_or("default"),
            self.tls
                .ca_cert
                .as_ref()
                .map_or("system roots".into(), |p| p.display().to_string()),
            self.tls.cert.display(),
            self.key_ring
                .key_ids()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            self.config_file
                .as_ref()
                .map_or("none".into(), |p| p.display().to_string()),
        )
    }
}
