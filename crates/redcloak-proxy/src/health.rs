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

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use redcloak_commands::resp::{self, ReplyScanner};
use redcloak_config::Recovery;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{info, warn};

use crate::upstream::UpstreamConn;
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

/// First and largest wait between probes.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Journal entries sent per round trip while replaying.
const REPLAY_BATCH: usize = 256;

/// The shared health view.
#[derive(Debug)]
pub struct Health {
    mode: AtomicU8,
    /// Why the last outage began, for status and logs.
    last_error: Mutex<Option<String>>,
    since: Mutex<Option<Instant>>,
    /// Commands answered from the fallback.
    pub served_from_fallback: AtomicU64,
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

    fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::Release);
    }
}

/// Reports that Redis could not be reached (or a connection to it broke). The first report
/// of an outage opens the breaker, opens the journal and starts the recovery task.
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

/// Applies the journal in order (or drops it, with `Recovery::Invalidate`), until it is empty
/// and closed. Entries are removed only once Redis has answered them.
async fn drain_journal(shared: &Shared, conn: &mut UpstreamConn) -> std::io::Result<usize> {
    let fallback = &shared.fallback;
    if fallback.recovery() == Recovery::Invalidate {
        let mut dropped = 0;
        loop {
            dropped += fallback.discard_journal();
            if fallback.close_journal_if_empty() {
                if dropped > 0 {
                    warn!(dropped, "REDCLOAK_RECOVERY=invalidate: writes accepted during the outage were dropped");
                }
                return Ok(0);
            }
        }
    }
    let mut applied = 0;
    let mut db = shared.connector().default_db();
    let mut scanner = ReplyScanner::new(shared.reply_limits);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    loop {
        let batch = fallback.peek_journal(REPLAY_BATCH);
        if batch.is_empty() {
            if fallback.close_journal_if_empty() {
                return Ok(applied);
            }
            continue;
        }
        let mut out = BytesMut::new();
        let mut replies = 0;
        for entry in &batch {
            if entry.db != db {
                resp::write_array_len(&mut out, 2);
                resp::write_bulk(&mut out, b"SELECT");
                resp::write_bulk(&mut out, entry.db.to_string().as_bytes());
                db = entry.db;
                replies += 1;
            }
            resp::write_array_len(&mut out, entry.args.len());
            for a in &entry.args {
                resp::write_bulk(&mut out, a);
            }
            replies += 1;
        }
        conn.write_all(&out).await?;
        let mut seen = 0;
        while seen < replies {
            match scanner.scan(&buf).map_err(std::io::Error::other)? {
                Some(len) => {
                    let reply = buf.split_to(len);
                    if reply.first() == Some(&b'-') {
                        // Redis refused one write (e.g. the key changed type meanwhile): it
                        // cannot be applied later either. Say so; keep going.
                        warn!(
                            "Redis refused a write from the outage journal: {}",
                            String::from_utf8_lossy(&reply).trim_end()
                        );
                    }
                    seen += 1;
                }
                None => {
                    if conn.read_buf(&mut buf).await? == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                }
            }
        }
        fallback.ack_journal(batch.len());
        applied += batch.len();
        info!(
            applied,
            left = fallback.journal_len(),
            "applying the outage journal"
        );
    }
}

/// ±20 % of `d`, so that many redcloak instances do not probe in lockstep.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let factor = 0.8 + f64::from(nanos % 1000) / 1000.0 * 0.4;
    d.mul_f64(factor)
}
