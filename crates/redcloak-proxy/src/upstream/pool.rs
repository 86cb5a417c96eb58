//! The warm pool: a few pre-established, authenticated TLS connections, so a new client does
//! not wait for a handshake (~0.2–0.4 ms with TLS 1.3). A connection is handed out once and
//! never returned: every pooled connection is fresh (clean state: database, protocol, no
//! MULTI, no subscriptions), and stale ones are dropped.
//!
//! New connections are made at most [`MAX_CONNECTING`] at a time: in a storm of thousands of
//! new clients the others wait their turn, and each handshake that is under way gets the CPU
//! it needs to finish well within the connect timeout (the wait in the queue is not counted
//! against it).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::sync::{Notify, Semaphore};

use crate::health::Mode;
use crate::upstream::{UpstreamConn, UpstreamError};
use crate::Shared;

/// A pooled connection older than this is replaced (Redis or a middlebox may drop idle ones).
const MAX_IDLE: Duration = Duration::from_secs(60);

/// Connections being established at once (TCP + TLS + AUTH).
pub(crate) const MAX_CONNECTING: usize = 32;

/// The pool.
pub(crate) struct Pool {
    ready: Mutex<Vec<(Instant, UpstreamConn)>>,
    wanted: Notify,
    connecting: Semaphore,
}

impl Default for Pool {
    fn default() -> Self {
        Pool {
            ready: Mutex::default(),
            wanted: Notify::new(),
            connecting: Semaphore::new(MAX_CONNECTING),
        }
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("ready", &self.len()).finish()
    }
}

impl Pool {
    /// Drops every ready connection (after a reload: they were made with the old material).
    pub fn clear(&self) {
        if let Ok(mut ready) = self.ready.lock() {
            ready.clear();
        }
        self.wanted.notify_one();
    }

    fn len(&self) -> usize {
        self.ready.lock().map_or(0, |r| r.len())
    }

    /// A fresh connection: from the pool when one is ready and alive, else a new one.
    pub async fn take(&self, shared: &Shared) -> Result<UpstreamConn, UpstreamError> {
        loop {
            let candidate = self.ready.lock().ok().and_then(|mut r| r.pop());
            self.wanted.notify_one();
            let Some((born, mut conn)) = candidate else {
                break;
            };
            if born.elapsed() < MAX_IDLE && alive(&mut conn).await {
                return Ok(conn);
            }
        }
        self.connect(shared).await
    }

    /// A new connection, made when a connecting slot is free.
    pub async fn connect(&self, shared: &Shared) -> Result<UpstreamConn, UpstreamError> {
        // The semaphore is never closed.
        let _slot = self.connecting.acquire().await;
        shared.connector().connect().await
    }
}

/// Whether a pooled connection is still open: a read must have nothing to say. (TLS 1.3
/// session tickets Redis sends after the handshake are consumed here without app data.)
async fn alive(conn: &mut UpstreamConn) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::ZERO, conn.read(&mut byte)).await,
        Err(_elapsed)
    )
}

/// Keeps the pool filled while Redis is healthy.
pub(crate) async fn keep_warm(shared: Arc<Shared>) {
    let size = shared.fallback.config().pool_size;
    if size == 0 {
        return;
    }
    loop {
        let have = {
            let Ok(mut ready) = shared.pool.ready.lock() else {
                return;
            };
            ready.retain(|(born, _)| born.elapsed() < MAX_IDLE);
            ready.len()
        };
        if have < size && shared.health.mode() == Mode::Healthy {
            match shared.pool.connect(&shared).await {
                Ok(conn) => {
                    if let Ok(mut ready) = shared.pool.ready.lock() {
                        ready.push((Instant::now(), conn));
                    }
                    continue;
                }
                // Keeping the pool warm doubles as a health check.
                Err(e) if e.is_evidence() => shared.report_outage(&e.to_string()),
                Err(e) => crate::health::suspect(&shared, &e.to_string()),
            }
        }
        // Wait until a connection is taken, or re-check now and then (expiry, recovery).
        let _ = tokio::time::timeout(Duration::from_secs(1), shared.pool.wanted.notified()).await;
    }
}
