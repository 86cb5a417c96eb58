//! An [`Exchange`] on a connection of redcloak's own: for work that must not run on the
//! client's connection (the client holds a WATCH that redcloak's EXEC would clear; a script
//! that needs its own protocol), and a small pool of such connections to reuse.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use redcloak_commands::resp;
use tokio::io::{ReadHalf, WriteHalf};

use super::{Exchange, ExchangeError, LinkState};
use crate::upstream::{Dedicated, FrameReader, LinkRx, LinkTx, UpstreamConn};
use crate::Shared;

/// Connections kept for reuse (in a clean state: RESP2, nothing watched).
const KEEP: usize = 16;

/// A fresh, authenticated connection in the client's database.
pub(crate) struct Side {
    tx: WriteHalf<UpstreamConn>,
    rx: FrameReader<ReadHalf<UpstreamConn>>,
    /// The database it is in.
    db: u32,
    /// Its protocol now.
    resp3: bool,
}

/// Reusable side connections.
#[derive(Default)]
pub(crate) struct SidePool {
    idle: Mutex<Vec<Side>>,
}

impl std::fmt::Debug for SidePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidePool").finish_non_exhaustive()
    }
}

impl SidePool {
    /// A connection in database `db` (reused when one is idle), for a client in `client`.
    pub(crate) async fn take(
        &self,
        shared: &Arc<Shared>,
        db: u32,
        client: LinkState,
    ) -> Result<Side, ExchangeError> {
        let reused = self.idle.lock().ok().and_then(|mut idle| {
            let at = idle.iter().position(|s| s.db == db)?;
            Some(idle.swap_remove(at))
        });
        match reused {
            Some(side) => Ok(side),
            None => Side::open(shared, db, client).await,
        }
    }

    /// Gives a connection back after a successful exchange (back in RESP2 first).
    pub(crate) async fn give(&self, mut side: Side) {
        if side.resp3 && !matches!(side.switch_protocol(false).await, Ok(true)) {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < KEEP {
                idle.push(side);
            }
        }
    }

    /// Drops every idle connection (after a reload or an outage).
    pub(crate) fn clear(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

impl Side {
    /// Opens one in database `db`, for a client whose connection is in state `client`.
    pub(crate) async fn open(
        shared: &Arc<Shared>,
        db: u32,
        client: LinkState,
    ) -> Result<Side, ExchangeError> {
        let conn = shared
            .pool
            .take(shared)
            .await
            .map_err(|_| ExchangeError::Lost)?;
        let (tx, rx) = Dedicated::split(conn, shared.reply_limits, &shared.budget);
        let _ = client;
        let mut side = Side {
            tx,
            rx,
            db,
            resp3: false,
        };
        if db != shared.connector().default_db() {
            let replies = side
                .call(vec![vec![
                    Bytes::from_static(b"SELECT"),
                    Bytes::from(db.to_string()),
                ]])
                .await?;
            if replies.first().is_none_or(|r| r.starts_with(b"-")) {
                return Err(ExchangeError::Lost);
            }
        }
        Ok(side)
    }
}

impl Exchange for Side {
    async fn call(&mut self, commands: Vec<Vec<Bytes>>) -> Result<Vec<Bytes>, ExchangeError> {
        let mut out = BytesMut::new();
        for c in &commands {
            resp::write_array_len(&mut out, c.len());
            for a in c {
                resp::write_bulk(&mut out, a);
            }
        }
        self.tx.send(&out).await.map_err(|_| ExchangeError::Lost)?;
        let mut replies = Vec::with_capacity(commands.len());
        while replies.len() < commands.len() {
            match self.rx.next_frame().await {
                Ok(Some(frame)) => replies.push(frame),
                Ok(None) | Err(_) => return Err(ExchangeError::Lost),
            }
        }
        Ok(replies)
    }

    fn state(&self) -> LinkState {
        LinkState {
            resp3: self.resp3,
            pubsub: false,
        }
    }

    async fn switch_protocol(&mut self, resp3: bool) -> Result<bool, ExchangeError> {
        if self.resp3 == resp3 {
            return Ok(true);
        }
        let version = if resp3 { "3" } else { "2" };
        let replies = self
            .call(vec![vec![
                Bytes::from_static(b"HELLO"),
                Bytes::from_static(version.as_bytes()),
            ]])
            .await?;
        if replies.first().is_none_or(|r| r.starts_with(b"-")) {
            return Ok(false);
        }
        self.resp3 = resp3;
        Ok(true)
    }
}
