//! The redcloak runtime: the listener, client sessions and the mutual-TLS upstream.
//!
//! # Layout
//! - [`listener`]: binds loopback TCP or a Unix socket, limits connections, spawns sessions.
//! - `session`: one client — a pure planner (`session/plan.rs`) that decides each request
//!   from the command table, reply accounting (`session/replies.rs`), and thin I/O loops for
//!   the connected and degraded phases.
//! - [`upstream`]: TCP + TLS + AUTH to Redis; the link trait every session talks through
//!   (dedicated connections today, shared ones later); the warm pool and the connect limiter.
//! - [`health`]: one shared view of the upstream (healthy / degraded / recovering), the
//!   evidence-based circuit breaker, and recovery.
//! - `fallback`: the shadow cache and outage journal (`store`), what the cache learns from
//!   replies (`learn`), the pure decision core for serving while Redis is down (`serve`),
//!   and journal replay (`replay`).
//! - `atomic`: computing on encrypted data atomically — emulated commands (read under WATCH,
//!   compute, write back in MULTI/EXEC, retry) — through one `Exchange` trait.
//! - `scripts`: EVAL / FCALL / SCRIPT / FUNCTION, run by redcloak's script engine on the
//!   same atomic machinery; function libraries stored encrypted in Redis, in a Redis function
//!   library of redcloak's own (`function_store`: outside the keyspace, kept by FLUSHALL).
//! - `budget`: the process-wide budget for buffered bytes (`REDCLOAK_MAX_BUFFERED_BYTES`).
//! - `error`: the data path's one error type, rendered to RESP in one place.
//! - [`admin`], [`metrics`]: the admin endpoint and Prometheus metrics.
//! - [`tls`]: the rustls client configuration (ring provider, CA, client certificate).
//! - [`rewrap`]: `redcloak rewrap`, online re-encryption under the primary key and format.
//! - [`reload`]: re-reading certificates and secrets on SIGHUP and when their files change.
//! - [`diagnose`]: what a failed handshake with Redis means and how to fix it.
//!
//! This is the only crate that uses tokio.

pub mod admin;
mod atomic;
mod budget;
pub mod diagnose;
mod error;
mod fallback;
mod function_store;
pub mod health;
pub mod listener;
pub mod metrics;
pub mod reload;
pub mod rewrap;
mod scripts;
mod session;
pub mod tls;
pub mod upstream;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use redcloak_commands::resp;
use redcloak_config::{Config, KeyRing, Limits, Operations};

pub use listener::Listener;
pub use rustls::ClientConfig;
pub use upstream::{Connector, UpstreamError};

/// The credentials in use: swapped as a whole on reload (SIGHUP, rotated files). Existing
/// upstream connections keep the material they were made with; new ones use the new one.
#[derive(Debug)]
pub struct Material {
    /// Encryption keys.
    pub key_ring: KeyRing,
    /// Opens upstream connections (TLS configuration and AUTH).
    pub connector: Arc<Connector>,
    /// Expiry (Unix seconds) of the certificates in use: `client` and `ca`.
    pub cert_expiry: Vec<(&'static str, i64)>,
}

/// Where the process is in its life, for readiness.
#[derive(Debug, Default)]
pub struct Lifecycle {
    /// The client listener is accepting.
    pub listening: AtomicBool,
    /// SIGTERM/SIGINT received: draining.
    pub shutting_down: AtomicBool,
}

/// What every session shares: credentials, limits, health, the fallback and metrics.
#[derive(Debug)]
pub struct Shared {
    material: RwLock<Arc<Material>>,
    /// Configured limits.
    pub limits: Limits,
    /// Admin endpoint, shutdown grace, idle timeout.
    pub operations: Operations,
    /// Parser limits for client requests.
    pub request_limits: resp::Limits,
    /// Parser limits for Redis replies (same bulk limit; arrays may be as long as Redis makes them).
    pub reply_limits: resp::Limits,
    /// The upstream's health.
    pub health: health::Health,
    /// Metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Readiness.
    pub lifecycle: Lifecycle,
    /// Tells sessions to finish (graceful shutdown).
    shutdown: tokio::sync::watch::Sender<bool>,
    pub(crate) fallback: fallback::Fallback,
    pub(crate) pool: upstream::pool::Pool,
    /// Upstream connections shared by clients' stateless commands (`REDCLOAK_SHARED_CONNECTIONS`).
    pub(crate) links: upstream::SharedLinks,
    /// Bytes buffered by all sessions beyond their free share (`REDCLOAK_MAX_BUFFERED_BYTES`).
    pub(crate) budget: Arc<budget::Budget>,
    /// Emulations take turns per key within this process.
    pub(crate) key_locks: atomic::KeyLocks,
    /// The script cache, function libraries and Lua states.
    pub(crate) scripts: scripts::Scripts,
    /// Connections of redcloak's own, reused (scripts, emulations beside a client's WATCH).
    pub(crate) sides: atomic::exchange::SidePool,
}

impl Shared {
    /// Builds the shared state from a validated configuration and its TLS client config.
    pub fn new(config: &Config, tls: Arc<rustls::ClientConfig>) -> Shared {
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
        let metrics = Arc::new(metrics::Metrics::new());
        Shared {
            material: RwLock::new(Arc::new(material(config, tls, &metrics))),
            limits: config.limits,
            operations: config.operations.clone(),
            request_limits,
            reply_limits,
            health: health::Health::default(),
            metrics,
            lifecycle: Lifecycle::default(),
            shutdown: tokio::sync::watch::channel(false).0,
            fallback: fallback::Fallback::new(config.fallback),
            pool: upstream::pool::Pool::default(),
            links: upstream::SharedLinks::new(config.limits.shared_connections),
            budget: budget::Budget::new(config.limits.max_buffered_bytes),
            key_locks: atomic::KeyLocks::default(),
            scripts: scripts::Scripts::default(),
            sides: atomic::exchange::SidePool::default(),
        }
    }

    /// The credentials in use now.
    pub fn material(&self) -> Arc<Material> {
        self.material
            .read()
            .map_or_else(|p| p.into_inner().clone(), |m| m.clone())
    }

    /// The key ring in use now.
    pub fn key_ring(&self) -> KeyRing {
        self.material().key_ring.clone()
    }

    /// The connector in use now.
    pub fn connector(&self) -> Arc<Connector> {
        self.material().connector.clone()
    }

    /// Replaces the credentials (after the new configuration passed every check). New upstream
    /// connections use them; connections already open keep working; pooled ones are dropped.
    pub fn reload(&self, config: &Config, tls: Arc<rustls::ClientConfig>) {
        let new = Arc::new(material(config, tls, &self.metrics));
        match self.material.write() {
            Ok(mut m) => *m = new,
            Err(p) => *p.into_inner() = new,
        }
        self.pool.clear();
        self.links.clear();
        self.sides.clear();
    }

    /// Starts the background tasks (the warm pool). Call once, inside the runtime.
    pub fn start(self: &Arc<Self>) {
        tokio::spawn(upstream::pool::keep_warm(self.clone()));
        tokio::spawn(atomic::janitor::run(self.clone()));
    }

    /// Records that Redis could not be reached (at startup: serve degraded from the start).
    pub fn report_outage(self: &Arc<Self>, reason: &str) {
        health::report_outage(self, reason);
    }

    /// Bytes of the buffer budget in use, and its limit.
    pub fn buffered_bytes(&self) -> (usize, usize) {
        (self.budget.used(), self.budget.max())
    }

    /// Writes accepted during the current outage and not yet applied to Redis.
    pub fn journal_len(&self) -> usize {
        self.fallback.journal_len()
    }

    /// Asks every session to answer what it has read and finish.
    pub fn begin_shutdown(&self) {
        self.lifecycle.shutting_down.store(true, Ordering::Release);
        self.shutdown.send_replace(true);
    }

    /// Resolves once shutdown has begun.
    pub(crate) fn shutdown_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// If writes are journaled and Redis is reachable, applies them now (at shutdown).
    /// Returns how many writes are still not in Redis.
    pub async fn flush_journal(self: &Arc<Self>) -> usize {
        health::flush_at_shutdown(self).await
    }
}

fn material(
    config: &Config,
    tls: Arc<rustls::ClientConfig>,
    metrics: &Arc<metrics::Metrics>,
) -> Material {
    let mut cert_expiry = vec![("client", config.tls.client_validity.not_after)];
    if let Some(ca) = config
        .tls
        .roots
        .first()
        .and_then(|der| redcloak_config::x509::validity(der).ok())
    {
        cert_expiry.push(("ca", ca.not_after));
    }
    Material {
        key_ring: config.key_ring.clone(),
        connector: Arc::new(Connector::new(config, tls).with_metrics(metrics.clone())),
        cert_expiry,
    }
}
