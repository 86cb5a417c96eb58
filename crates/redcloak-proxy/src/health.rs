//! One shared view of the upstream's health, the circuit breaker, and recovery.
//!
//! - **Healthy**: sessions use Redis.
//! - **Degraded**: Redis is unreachable. The breaker is open: sessions do not try to connect
//!   (no client waits out a connect timeout while Redis is known to be down) and serve from
//!   the fallback. A single background probe (TLS + AUTH + PING) retries with exponential
//!   backoff and jitter.
//! - **Recovering**: the probe succeeded; the outage journal is being applied to Redis.
//!   Sessions keep serving from the fallback until it is empty, so no new traffic reaches a
//!   key before the writes made to it during the outage.
//!
//! # Busy is not down
//! The breaker opens only on *evidence* that Redis cannot be used: a connection refused or
//! reset, a TLS or AUTH refusal ([`report_outage`]), or a health probe that fails
//! [`PROBE_ATTEMPTS`] times in a row. A slow connect or a slow reply — which is what a loaded
//! Redis (or a loaded redcloak, in a storm of new clients) looks like — only makes redcloak
//! [`suspect`] an outage: one probe runs, sessions keep waiting for Redis meanwhile, and the
//! breaker opens only if the probe cannot get a PING answered either.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::fallback::replay::drain_journal;
use crate::Shared;

/// The upstream's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Redis answers.
    Healthy,
    /// Redis is unreachable; serving from the fallback.
    Degraded,
    /// Redis answers again; the outage journal is being applied.
    Recovering,
}

impl Mode {
    fn from_u8(v: u8) -> Mode {
        match v {
            0 => Mode::Healthy,
            1 => Mode::Degraded,
            _ => Mode::Recovering,
        }
    }

    /// The mode's name, for logs and status.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Healthy => "healthy",
            Mode::Degraded => "degraded",
            Mode::Recovering => "recovering",
        }
    }
}

/// First and largest wait between recovery probes.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Failed probes in a row that prove an outage after a suspicion.
pub const PROBE_ATTEMPTS: u32 = 3;
/// Pause between suspicion probes.
const PROBE_PAUSE: Duration = Duration::from_millis(250);

/// The shared health view.
#[derive(Debug)]
pub struct Health {
    mode: AtomicU8,
    /// Why the last outage began, for status and logs.
    last_error: Mutex<Option<String>>,
    since: Mutex<Option<Instant>>,
    /// Commands answered from the fallback.
    pub served_from_fallback: AtomicU64,
    /// Suspicions raised (slow connects, reply timeouts) and how many proved an outage.
    pub suspicions: AtomicU64,
    /// A suspicion probe is running (true), or not; sessions that need a new connection wait
    /// for its verdict instead of piling onto a Redis that may be down.
    probing: tokio::sync::watch::Sender<bool>,
    /// Bumped when an outage begins: sessions still connected to Redis leave it too, so that
    /// while writes are journaled nobody writes to Redis directly (a journaled write replayed
    /// later would otherwise overwrite a newer direct one).
    outages: tokio::sync::watch::Sender<u64>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            mode: AtomicU8::new(0),
            last_error: Mutex::new(None),
            since: Mutex::new(None),
            served_from_fallback: AtomicU64::new(0),
            suspicions: AtomicU64::new(0),
            probing: tokio::sync::watch::channel(false).0,
            outages: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Health {
    /// The current mode.
    pub fn mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Ordering::Acquire))
    }

    /// The error that started the current (or last) outage.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Changes when an outage begins.
    pub(crate) fn outages(&self) -> tokio::sync::watch::Receiver<u64> {
        self.outages.subscribe()
    }

    /// Waits until no suspicion probe is running.
    pub(crate) async fn probed(&self) {
        let mut probing = self.probing.subscribe();
        let _ = probing.wait_for(|p| !*p).await;
    }

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Release);
    }
}

/// Reports evidence that Redis cannot be used (a refused or reset connection, a TLS or AUTH
/// refusal, a failed probe). The first report of an outage opens the breaker, opens the
/// journal and starts the recovery task.
pub(crate) fn report_outage(shared: &Arc<Shared>, reason: &str) {
    let health = &shared.health;
    if health
        .mode
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return; // already degraded or recovering
    }
    shared.fallback.open_journal();
    // Ready connections may be as dead (or as hung) as the one that failed.
    shared.pool.clear();
    shared.sides.clear();
    if let Ok(mut e) = health.last_error.lock() {
        *e = Some(reason.to_owned());
    }
    if let Ok(mut s) = health.since.lock() {
        *s = Some(Instant::now());
    }
    warn!(reason, "Redis is unreachable: entering degraded mode (serving from the local cache, journaling writes)");
    health.outages.send_modify(|n| *n += 1);
    let shared = shared.clone();
    tokio::spawn(async move { recover(shared).await });
}

/// Reports that Redis may be down without proof: a connect or a reply took longer than its
/// timeout, or a connection closed. Slow is not down: one probe checks whether Redis still
/// answers a PING on a new connection, and only if it cannot, [`PROBE_ATTEMPTS`] times in a
/// row, does the breaker open. A refused connection is proof at once.
pub(crate) fn suspect(shared: &Arc<Shared>, reason: &str) {
    let health = &shared.health;
    if health.mode() != Mode::Healthy || health.probing.send_replace(true) {
        return;
    }
    // Ready connections may be as stuck as the one that was slow.
    shared.pool.clear();
    health.suspicions.fetch_add(1, Ordering::Relaxed);
    info!(
        reason,
        "Redis is slow; probing it before treating it as unreachable"
    );
    let shared = shared.clone();
    let reason = reason.to_owned();
    tokio::spawn(async move {
        let mut last = reason;
        let mut proven = true;
        for attempt in 0..PROBE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(PROBE_PAUSE).await;
            }
            match shared.connector().probe().await {
                Ok(_) => {
                    proven = false;
                    break;
                }
                Err(e) if e.is_evidence() => {
                    last = e.to_string();
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        if proven {
            report_outage(&shared, &last);
        }
        shared.health.probing.send_replace(false);
        if !proven {
            info!("Redis answered the probe: it is busy, not down");
        }
    });
}

/// Probes until Redis answers, applies the journal, then declares the upstream healthy.
async fn recover(shared: Arc<Shared>) {
    let mut backoff = BACKOFF_MIN;
    let mut last_logged = String::new();
    loop {
        tokio::time::sleep(jitter(backoff)).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
        let mut conn = match shared.connector().connect().await {
            Ok(conn) => conn,
            Err(e) => {
                let text = e.to_string();
                if text != last_logged {
                    // Each new reason once: a refusal (rotated password or certificate) needs
                    // an operator; an outage only needs patience.
                    if e.is_outage() {
                        info!(error = %text, "Redis is still unreachable");
                    } else {
                        tracing::error!(error = %text, "Redis refuses redcloak's connection; fix the credentials or certificates");
                    }
                    last_logged.clone_from(&text);
                }
                if let Ok(mut last) = shared.health.last_error.lock() {
                    *last = Some(text);
                }
                continue;
            }
        };
        shared.health.set(Mode::Recovering);
        match drain_journal(&shared, &mut conn).await {
            Ok(applied) => {
                let outage = shared
                    .health
                    .since
                    .lock()
                    .ok()
                    .and_then(|s| *s)
                    .map(|s| s.elapsed());
                shared.health.set(Mode::Healthy);
                warn!(
                    journal_applied = applied,
                    outage_seconds = outage.map_or(0.0, |d| d.as_secs_f64()),
                    served_from_fallback =
                        shared.health.served_from_fallback.load(Ordering::Relaxed),
                    "Redis is reachable again: leaving degraded mode"
                );
                return;
            }
            Err(e) => {
                warn!(error = %e, "Redis went away again while the outage journal was applied; staying degraded");
                shared.health.set(Mode::Degraded);
            }
        }
    }
}

/// At shutdown: if writes are journaled and Redis answers, apply them now. Returns how many
/// journaled writes are still not in Redis (lost when the process exits).
pub(crate) async fn flush_at_shutdown(shared: &Arc<Shared>) -> usize {
    if shared.fallback.journal_len() == 0 {
        return 0;
    }
    if let Ok(mut conn) = shared.connector().connect().await {
        shared.health.set(Mode::Recovering);
        if drain_journal(shared, &mut conn).await.is_ok() {
            shared.health.set(Mode::Healthy);
        }
    }
    shared.fallback.journal_len()
}

/// ±20 % of `d`, so that many redcloak instances do not probe in lockstep.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let factor = 0.8 + f64::from(nanos % 1000) / 1000.0 * 0.4;
    d.mul_f64(factor)
}
