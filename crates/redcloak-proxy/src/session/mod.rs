//! One client connection: read commands, plan each one by the command table, carry the plans
//! out, and answer every command exactly once, in order — through upstream failures too.
//!
//! # Layout
//! - [`plan`]: the planner, a pure function from a request and the session's state to a
//!   plan (forward / answer here / refuse). The only place a request's meaning is decided.
//! - [`state`]: the request side's state ([`state::ConnState`]: database, transaction, WATCH)
//!   and how plans change it.
//! - [`replies`]: reply accounting — which upstream frame answers which command, decoded by
//!   whose rule — and the reply side's exact view of the connection (protocol, database,
//!   subscriptions). Pure, with unit tests.
//! - `connected`: the thin I/O loop while Redis is up (a reader that carries plans out and a
//!   writer that delivers replies, joined by the FIFO of what is owed).
//! - `degraded`: the thin I/O loop while Redis is down (plans served by the fallback).
//!
//! A session lives through a sequence of *phases*: connected (an upstream link), degraded
//! (the fallback), connected again… What must survive a phase change lives in [`Input`] (the
//! parser and unread bytes) and [`state::ConnState`]. A new upstream link is brought to the
//! same state (SELECT, HELLO 3, MULTI) before the client's commands flow again; a WATCH or a
//! transaction the old connection held cannot be carried over, so EXEC fails the way Redis
//! would fail it. A subscribed client is disconnected instead (its client library
//! resubscribes on reconnect).

mod connected;
mod degraded;
pub(crate) mod plan;
pub(crate) mod replies;
pub(crate) mod state;

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use redcloak_commands::resp::{Request, RequestParser};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tracing::warn;

use crate::budget::Hold;
use crate::error::DataError;
use crate::health::{self, Mode};
use crate::Shared;

use connected::Link;
use state::ConnState;

/// Read buffer reservation per read.
const READ_CHUNK: usize = 16 * 1024;

/// How a phase ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client is gone, sent QUIT, or broke the protocol: the session is over.
    ClientDone,
    /// The upstream connection broke (or could not be made): try again, or serve degraded.
    UpstreamLost,
    /// Redis is healthy again: leave degraded mode.
    Healthy,
    /// The client did something stateful on a shared connection: go on on one of its own.
    Pinned,
}

/// The client's unread bytes and the request parser, within the memory budget.
pub(crate) struct Input {
    parser: RequestParser,
    buf: BytesMut,
    hold: Hold,
    /// A request parsed and handed back, next in line (it waits for the next phase).
    put_back: Option<Request>,
}

impl Input {
    fn new(shared: &Shared) -> Input {
        Input {
            parser: RequestParser::new(shared.request_limits),
            buf: BytesMut::with_capacity(READ_CHUNK),
            hold: Hold::new(&shared.budget),
            put_back: None,
        }
    }

    /// Hands a request back: [`Input::next`] returns it again.
    fn put_back(&mut self, request: Request) {
        debug_assert!(self.put_back.is_none());
        self.put_back = Some(request);
    }

    /// Whether a request is waiting to be handled (read or handed back).
    fn has_request(&self) -> bool {
        self.put_back.is_some() || !self.buf.is_empty()
    }

    /// The next complete request, if one has arrived.
    fn next(&mut self) -> Result<Option<Request>, DataError> {
        if let Some(request) = self.put_back.take() {
            return Ok(Some(request));
        }
        let request = self
            .parser
            .parse(&mut self.buf)
            .map_err(DataError::Protocol)?;
        if self.buf.is_empty() && self.buf.capacity() > 4 * READ_CHUNK {
            // Do not pin a huge allocation after one large request.
            self.buf = BytesMut::with_capacity(READ_CHUNK);
            self.hold.fit(self.buf.capacity());
        }
        Ok(request)
    }

    /// A request that grew past its limit without completing.
    fn check_size(&self, shared: &Shared) -> Result<(), DataError> {
        if self.buf.len() > shared.limits.max_request_bytes {
            return Err(DataError::RequestTooLarge {
                limit: shared.limits.max_request_bytes,
            });
        }
        Ok(())
    }

    /// Reads more from the client, taking the buffer's growth from the budget first. `Ok(0)`
    /// at end of stream.
    async fn read<R: AsyncRead + Unpin>(&mut self, client: &mut R) -> Result<usize, ReadError> {
        self.hold
            .grow(&mut self.buf, READ_CHUNK)
            .await
            .map_err(|e| ReadError::Budget(DataError::Budget { max: e.max }))?;
        client
            .read_buf(&mut self.buf)
            .await
            .map_err(|_| ReadError::Gone)
    }
}

/// Why reading from the client stopped.
#[derive(Debug)]
enum ReadError {
    /// The client is gone.
    Gone,
    /// The memory budget cannot hold more of this client's request.
    Budget(DataError),
}

/// Serves one client until it disconnects, sends QUIT, or breaks the protocol.
pub(crate) async fn run<C>(client: C, shared: Arc<Shared>)
where
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut client_r, client_w) = tokio::io::split(client);
    let mut client_w = Some(client_w);
    let mut input = Input::new(&shared);
    let mut st = ConnState::new(shared.connector().default_db());
    // Once the client does something stateful it keeps a connection of its own.
    let mut pinned = !shared.links.enabled();
    loop {
        let Some(mut w) = client_w.take() else { return };
        let end = if shared.health.mode() == Mode::Healthy {
            // A client costs an upstream connection only once it sends a request.
            if !input.has_request() && !wait_for_request(&mut client_r, &mut input, &shared).await {
                return;
            }
            match connect(&shared, !pinned).await {
                Some(link) => {
                    // Boxed: the phases' state machines are large, and a client that has not
                    // sent anything (or sits between phases) should cost only its buffers.
                    let (w, end) = Box::pin(connected::serve(
                        &mut client_r,
                        w,
                        link,
                        &mut input,
                        &mut st,
                        &shared,
                    ))
                    .await;
                    match w {
                        Some(w) => client_w = Some(w),
                        None => return,
                    }
                    end
                }
                None => {
                    client_w = Some(w);
                    End::UpstreamLost
                }
            }
        } else {
            let end = Box::pin(degraded::serve(
                &mut client_r,
                &mut w,
                &mut input,
                &mut st,
                &shared,
            ))
            .await;
            client_w = Some(w);
            end
        };
        match end {
            End::ClientDone => return,
            End::Pinned => pinned = true,
            End::UpstreamLost | End::Healthy => {}
        }
    }
}

/// Waits until the client sends something. False when the client is gone, idle past the
/// idle timeout, or the process is shutting down.
async fn wait_for_request<R: AsyncRead + Unpin>(
    client: &mut R,
    input: &mut Input,
    shared: &Shared,
) -> bool {
    let mut shutdown = shared.shutdown_signal();
    if *shutdown.borrow() {
        return false;
    }
    tokio::select! {
        _ = shutdown.changed() => false,
        read = input.read(client) => matches!(read, Ok(n) if n > 0),
        _ = idle_timer(shared.operations.idle_timeout) => false,
    }
}

/// An upstream link — a share of a shared connection when `share`, else a connection of the
/// session's own — or `None` when Redis cannot be used now (the session then serves from the
/// fallback). Slow connects are retried while a probe decides whether Redis is down (see
/// `health`): a storm of new clients is served, not mistaken for an outage.
async fn connect(shared: &Arc<Shared>, share: bool) -> Option<Link> {
    let mut pause = Duration::from_millis(20);
    loop {
        if shared.health.mode() != Mode::Healthy {
            return None;
        }
        // While a probe decides whether Redis is down, wait for its verdict.
        shared.health.probed().await;
        if shared.health.mode() != Mode::Healthy {
            return None;
        }
        let link = if share {
            shared
                .links
                .link(shared)
                .await
                .map(|(tx, rx)| Link::Shared(tx, rx))
        } else {
            shared
                .pool
                .take(shared)
                .await
                .map(|conn| Link::Dedicated(Box::new(conn)))
        };
        match link {
            Ok(link) => return Some(link),
            Err(e) if e.is_evidence() => {
                // A refusal (certificate, password rotated on the Redis side) is logged loudly
                // by the recovery probe until it is fixed.
                if !e.is_outage() {
                    warn!(error = %e, "Redis refused a new connection");
                }
                shared.report_outage(&e.to_string());
                return None;
            }
            Err(e) => {
                health::suspect(shared, &e.to_string());
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Sleeps for the idle timeout, or forever when there is none.
async fn idle_timer(idle: Option<Duration>) {
    match idle {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
