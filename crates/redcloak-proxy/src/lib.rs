//! The redcloak runtime: the listener, client sessions and the mutual-TLS upstream.
//!
//! # Layout
//! - [`listener`]: binds loopback TCP or a Unix socket, limits connections, spawns sessions.
//! - `session`: one client: parse, apply the command table, forward, answer in order.
//! - [`upstream`]: TCP + TLS + AUTH to Redis; the seam where pooling and multiplexing go.
//! - `pool`: a few pre-established, authenticated connections for new clients.
//! - [`health`]: one shared view of the upstream (healthy / degraded / recovering), the
//!   circuit breaker, and recovery (applying the outage journal).
//! - `fallback`: the shadow cache of recently written or read values (ciphertext) and the
//!   outage journal; `degraded`: answering commands from it while Redis is unreachable.
//! - [`tls`]: the rustls client configuration (ring provider, CA, client certificate).
//!
//! This is the only crate that uses tokio.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod degraded;
mod fallback;
pub mod health;
pub mod listener;
mod pool;
mod session;
pub mod tls;
pub mod upstream;

use redcloak_commands::resp;
use redcloak_config::{Config, KeyRing, Limits};

pub use listener::Listener;
pub use upstream::{Connector, UpstreamError};

/// What every session shares: keys, the upstream connector and the limits.
#[derive(Debug)]
pub struct Shared {
    /// Encryption keys.
    pub key_ring: KeyRing,
    /// Opens upstream connections.
    pub connector: Connector,
    /// Configured limits.
    pub limits: Limits,
    /// Parser limits for client requests.
    pub request_limits: resp::Limits,
    /// Parser limits for Redis replies (same bulk limit; arrays may be as long as Redis makes them).
    pub reply_limits: resp::Limits,
    /// The upstream's health.
    pub health: health::Health,
    pub(crate) fallback: fallback::Fallback,
    pub(crate) pool: pool::Pool,
}

impl Shared {
    /// Builds the shared state from a validated configuration and its TLS client config.
    pub fn new(config: &Config, tls: std::sync::Arc<rustls::ClientConfig>) -> Shared {
        let request_limits = resp::Limits {
            max_bulk_len: config.limits.max_bulk_bytes,
            ..resp::Limits::default()
        };
        // Stored values are ciphertext, larger than what the client sent (Fernet: about 4/3).
        let reply_limits = resp::Limits {
            max_bulk_len: config.limits.max_bulk_bytes.saturating_mul(2),
            max_array_len: u32::MAX as usize,
            ..resp::Limits::default()
        };
        Shared {
            key_ring: config.key_ring.clone(),
            connector: Connector::new(config, tls),
            limits: config.limits,
            request_limits,
            reply_limits,
            health: health::Health::default(),
            fallback: fallback::Fallback::new(config.fallback),
            pool: pool::Pool::default(),
        }
    }

    /// Starts the background tasks (the warm pool). Call once, inside the runtime.
    pub fn start(self: &std::sync::Arc<Self>) {
        tokio::spawn(pool::keep_warm(self.clone()));
    }

    /// Records that Redis could not be reached (at startup: serve degraded from the start).
    pub fn report_outage(self: &std::sync::Arc<Self>, reason: &str) {
        health::report_outage(self, reason);
    }

    /// Writes accepted during the current outage and not yet applied to Redis.
    pub fn journal_len(&self) -> usize {
        self.fallback.journal_len()
    }
}
