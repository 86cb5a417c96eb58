//! An [`Exchange`] on a connection of its own: for an emulation that must not run on the
//! client's connection (the client holds a WATCH that redcloak's EXEC would clear).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use redcloak_commands::resp;
use tokio::io::{ReadHalf, WriteHalf};

use super::{Exchange, ExchangeError, LinkState};
use crate::upstream::{Dedicated, FrameReader, LinkRx, LinkTx, UpstreamConn};
use crate::Shared;

/// A fresh, authenticated connection in the client's database (RESP2).
pub(crate) struct Side {
    tx: WriteHalf<UpstreamConn>,
    rx: FrameReader<ReadHalf<UpstreamConn>>,
    /// The client's protocol, in which its reply is made.
    client: LinkState,
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
        let mut side = Side { tx, rx, client };
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
        self.client
    }
}
