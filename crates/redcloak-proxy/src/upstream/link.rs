//! The seam between a session and Redis: requests go out through a [`LinkTx`], reply frames
//! come back through a [`LinkRx`]. A session never touches a socket itself, so a dedicated
//! connection (today) and a share of a pipelined connection (DESIGN.md §2, second step) are
//! interchangeable behind these two traits.

use std::future::Future;
use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use redcloak_commands::resp::{self, ReplyScanner};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

use super::UpstreamConn;
use crate::budget::{Budget, Exhausted, Hold};

/// Read reservation per read.
const READ_CHUNK: usize = 16 * 1024;

/// The sending half of a link.
pub(crate) trait LinkTx: Send + 'static {
    /// Writes requests (whole RESP commands) to Redis.
    fn send(&mut self, bytes: &[u8]) -> impl Future<Output = io::Result<()>> + Send;
    /// Tells Redis that no more requests follow: it answers what it has read, then closes.
    fn finish(&mut self) -> impl Future<Output = ()> + Send;
}

/// The receiving half of a link.
pub(crate) trait LinkRx: Send + 'static {
    /// A complete frame that has already arrived, without waiting.
    fn try_frame(&mut self) -> Result<Option<Bytes>, LinkError>;

    /// The next complete reply frame (pushes included), `Ok(None)` when Redis closed the
    /// connection. Cancel-safe: a frame partly read when the future is dropped is kept.
    fn next_frame(&mut self) -> impl Future<Output = Result<Option<Bytes>, LinkError>> + Send;
}

/// Why a link could not deliver a frame.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    /// The connection failed.
    #[error("the connection to Redis failed: {0}")]
    Io(#[from] io::Error),
    /// Redis sent bytes that are not RESP (a Redis or framing bug).
    #[error("Redis sent a reply redcloak cannot parse: {0}")]
    Protocol(#[from] resp::ProtocolError),
    /// On a shared connection: the client left more replies unread than redcloak holds for
    /// one client (its link is cut; the others sharing the connection go on).
    #[error("the client left more than {limit} bytes of replies unread")]
    Unread {
        /// The bytes redcloak holds for one client at most.
        limit: usize,
    },
    /// On a shared connection: the replies the client left unread do not fit in the
    /// process-wide budget (its link is cut; the others sharing the connection go on).
    #[error("the client's unread replies do not fit in REDCLOAK_MAX_BUFFERED_BYTES ({max} bytes)")]
    UnreadBudget {
        /// The budget's limit.
        max: usize,
    },
    /// A reply larger than the memory budget can hold right now.
    #[error("a reply from Redis does not fit in REDCLOAK_MAX_BUFFERED_BYTES ({} bytes) right now", .0.max)]
    Budget(Exhausted),
}

/// A dedicated connection, split for a session's reader and writer.
pub(crate) struct Dedicated;

impl Dedicated {
    /// Splits `conn` into its two halves.
    pub(crate) fn split(
        conn: UpstreamConn,
        limits: resp::Limits,
        budget: &Arc<Budget>,
    ) -> (WriteHalf<UpstreamConn>, FrameReader<ReadHalf<UpstreamConn>>) {
        let (r, w) = tokio::io::split(conn);
        (w, FrameReader::new(r, limits, budget))
    }
}

impl<W: AsyncWrite + Send + Unpin + 'static> LinkTx for WriteHalf<W> {
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes).await
    }

    async fn finish(&mut self) {
        let _ = self.shutdown().await;
    }
}

/// Cuts a byte stream into reply frames, within the memory budget.
pub(crate) struct FrameReader<R> {
    inner: R,
    buf: BytesMut,
    scanner: ReplyScanner,
    hold: Hold,
}

impl<R> FrameReader<R> {
    pub(crate) fn new(inner: R, limits: resp::Limits, budget: &Arc<Budget>) -> FrameReader<R> {
        FrameReader {
            inner,
            buf: BytesMut::with_capacity(READ_CHUNK),
            scanner: ReplyScanner::new(limits),
            hold: Hold::new(budget),
        }
    }

    /// A complete frame already buffered, if any.
    pub(crate) fn buffered_frame(&mut self) -> Result<Option<Bytes>, resp::ProtocolError> {
        Ok(self
            .scanner
            .scan(&self.buf)?
            .map(|len| self.buf.split_to(len).freeze()))
    }
}

impl<R: AsyncRead + Send + Unpin + 'static> LinkRx for FrameReader<R> {
    fn try_frame(&mut self) -> Result<Option<Bytes>, LinkError> {
        Ok(self.buffered_frame()?)
    }

    async fn next_frame(&mut self) -> Result<Option<Bytes>, LinkError> {
        loop {
            if let Some(frame) = self.buffered_frame()? {
                if self.buf.is_empty() && self.buf.capacity() > 4 * READ_CHUNK {
                    // Do not pin a huge allocation after one large reply.
                    self.buf = BytesMut::with_capacity(READ_CHUNK);
                    self.hold.fit(self.buf.capacity());
                }
                return Ok(Some(frame));
            }
            self.hold
                .grow(&mut self.buf, READ_CHUNK)
                .await
                .map_err(LinkError::Budget)?;
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }
}
