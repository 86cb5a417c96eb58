//! The redcloak runtime: the listener, client sessions and the mutual-TLS upstream.
//!
//! # Layout
//! - [`listener`]: binds loopback TCP or a Unix socket, limits connections, spawns sessions.
//! - `session`: one client: parse, apply the command table, forward, answer in order.
//! - [`upstream`]: TCP + TLS + AUTH to Redis; the seam where pooling and multiplexing go.
//! - [`tls`]: the rustls client configuration (ring provider, CA, client certificate).
//!
//! This is the only crate that uses tokio.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod listener;
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
        }
    }
}
