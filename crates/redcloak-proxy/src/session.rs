//! One client connection: read commands, apply the command table, forward, and answer every
//! command exactly once, in order.
//!
//! # Layout
//! A session is two halves joined by a FIFO of [`Pending`] replies:
//! - the **reader** (this task) parses every complete request in what the client sent,
//!   looks each one up in the table, encrypts value arguments into one upstream write per
//!   batch, and queues one [`Pending`] per command (a local reply, or "the next upstream
//!   reply, decoded by this rule");
//! - the **writer** (a spawned task) pops the FIFO in order, decodes upstream replies by
//!   their command's rule, and writes the client's replies in one write per batch.
//!
//! The FIFO is bounded by `max_pipeline`: a client that keeps sending without reading is
//! slowed down (backpressure) instead of growing redcloak's memory. Pending entries are queued
//! *before* their bytes are written upstream, so a reply never arrives without its entry.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use redcloak_commands::resp::{self, ProtocolError, ReplyScanner, RequestParser};
use redcloak_commands::table::{self, Action, CommandSpec, Local, ReplyRule};
use redcloak_commands::transform::{self, ReplyError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::Shared;

/// Read buffer reservation per read.
const READ_CHUNK: usize = 16 * 1024;
/// Flush client replies once this much is buffered, even mid-batch.
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// What the writer owes the client for one command (or a session event), in order.
#[derive(Debug)]
enum Pending {
    /// A reply redcloak made itself (local command, refusal, protocol error).
    Local(Bytes),
    /// The next upstream reply belongs to this command. `args` is kept only when the reply
    /// holds values, to name the key in an "undecryptable" error.
    Upstream {
        spec: &'static CommandSpec,
        args: Option<Vec<Bytes>>,
    },
    /// After every earlier reply: close the connection (QUIT, protocol error).
    Close,
}

/// Serves one client until it disconnects, sends QUIT, or breaks the protocol.
pub(crate) async fn run<C>(client: C, shared: Arc<Shared>)
where
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let mut parser = RequestParser::new(shared.request_limits);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let Some(upstream) =
        connect_or_refuse(&mut client_r, &mut client_w, &mut parser, &mut buf, &shared).await
    else {
        return;
    };
    let (upstream_r, mut upstream_w) = tokio::io::split(upstream);
    let (tx, rx) = mpsc::channel(shared.limits.max_pipeline);
    let writer = tokio::spawn(write_replies(rx, upstream_r, client_w, shared.clone()));
    if let Err(e) = read_requests(&mut client_r, &mut upstream_w, &tx, &shared, parser, buf).await {
        debug!(error = %e, "reader stopped");
    }
    drop(tx);
    // The writer answers everything queued, then closes; the upstream write half goes with us.
    let _ = writer.await;
    let _ = upstream_w.shutdown().await;
}

/// Connects upstream. While Redis cannot be reached, every command the client sends is
/// answered with an error that says so (never a hang, never a silent drop), and a new
/// connection is tried at most once per [`RETRY_EVERY`]; `None` when the client leaves.
async fn connect_or_refuse<R, W>(
    client_r: &mut R,
    client_w: &mut W,
    parser: &mut RequestParser,
    buf: &mut BytesMut,
    shared: &Shared,
) -> Option<crate::upstream::UpstreamConn>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    const RETRY_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
    let mut out = BytesMut::new();
    loop {
        let why = match shared.connector.connect().await {
            Ok(conn) => return Some(conn),
            Err(e) => {
                warn!(error = %e, "upstream connection failed");
                e.to_string()
            }
        };
        let message = format!("ERR redcloak: Redis is unavailable ({why}); try again later");
        let retry_at = tokio::time::Instant::now() + RETRY_EVERY;
        // Answer what the client sends until it is time to try again (with something to do).
        loop {
            loop {
                match parser.parse(buf) {
                    Ok(Some(request)) => {
                        match request.args.first().and_then(|n| table::lookup(n)) {
                            Some(spec) if spec.action == Action::Local(Local::Quit) => {
                                out.extend_from_slice(b"+OK\r\n");
                                let _ = client_w.write_all(&out).await;
                                let _ = client_w.shutdown().await;
                                return None;
                            }
                            Some(spec) if spec.action == Action::Local(Local::Auth) => {
                                out.extend_from_slice(b"+OK\r\n")
                            }
                            _ => resp::write_error(&mut out, &message),
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        resp::write_error(&mut out, &protocol_message(&e));
                        let _ = client_w.write_all(&out).await;
                        let _ = client_w.shutdown().await;
                        return None;
                    }
                }
            }
            if !out.is_empty() {
                client_w.write_all(&out).await.ok()?;
                out.clear();
            }
            buf.reserve(READ_CHUNK);
            if client_r.read_buf(buf).await.ok()? == 0 {
                return None;
            }
            if tokio::time::Instant::now() >= retry_at {
                break; // the new bytes are answered after the next attempt, by Redis if it is back
            }
        }
    }
}

/// The reader half. Returns when the client is done or the writer has gone.
async fn read_requests<R, W>(
    client: &mut R,
    upstream: &mut W,
    tx: &mpsc::Sender<Pending>,
    shared: &Shared,
    mut parser: RequestParser,
    mut buf: BytesMut,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    let mut batch: Vec<Pending> = Vec::new();
    loop {
        let mut closing = false;
        loop {
            match parser.parse(&mut buf) {
                Ok(Some(request)) => {
                    if handle(request.args, shared, &mut out, &mut batch) {
                        closing = true;
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    batch.push(Pending::Local(error_reply(&protocol_message(&e))));
                    batch.push(Pending::Close);
                    closing = true;
                    break;
                }
            }
        }
        for pending in batch.drain(..) {
            if tx.send(pending).await.is_err() {
                return Ok(()); // the writer is gone (upstream lost, client gone)
            }
        }
        if !out.is_empty() {
            upstream.write_all(&out).await?;
            out.clear();
            // Keep the buffer from pinning a huge allocation after one large command.
            if out.capacity() > 4 * WRITE_HIGH_WATER {
                out = BytesMut::with_capacity(READ_CHUNK);
            }
        }
        if closing {
            return Ok(());
        }
        buf.reserve(READ_CHUNK);
        tokio::select! {
            read = client.read_buf(&mut buf) => {
                if read? == 0 {
                    return Ok(()); // EOF: the writer still answers what was read
                }
            }
            _ = tx.closed() => return Ok(()),
        }
    }
}

/// Applies the table to one request: encodes it for Redis into `out` and/or queues its
/// pending reply. Returns true when the session must stop reading (QUIT).
fn handle(args: Vec<Bytes>, shared: &Shared, out: &mut BytesMut, batch: &mut Vec<Pending>) -> bool {
    let Some(name) = args.first() else {
        return false;
    };
    let Some(spec) = table::lookup(name) else {
        batch.push(Pending::Local(error_reply(
            &transform::unknown_command_message(name),
        )));
        return false;
    };
    if !spec.arity_ok(args.len()) {
        batch.push(Pending::Local(error_reply(&transform::arity_message(spec))));
        return false;
    }
    match spec.action {
        Action::Forward => {
            transform::encode_request(spec, &args, &shared.key_ring, out);
            let args = (spec.reply != ReplyRule::Pass).then_some(args);
            batch.push(Pending::Upstream { spec, args });
            false
        }
        Action::Local(Local::Auth) => {
            // The client's credentials are dropped here: never forwarded, never logged.
            batch.push(Pending::Local(Bytes::from_static(b"+OK\r\n")));
            false
        }
        Action::Local(Local::Quit) => {
            batch.push(Pending::Local(Bytes::from_static(b"+OK\r\n")));
            batch.push(Pending::Close);
            true
        }
        Action::Refuse(refusal) => {
            batch.push(Pending::Local(error_reply(&transform::refusal_message(
                spec, &refusal,
            ))));
            false
        }
    }
}

/// The writer half: answers every pending entry in order, then closes the client side.
async fn write_replies<U, W>(
    mut rx: mpsc::Receiver<Pending>,
    mut upstream: U,
    mut client: W,
    shared: Arc<Shared>,
) where
    U: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut queue: VecDeque<Pending> = VecDeque::new();
    let mut from_redis = BytesMut::with_capacity(READ_CHUNK);
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    let mut scanner = ReplyScanner::new(shared.reply_limits);
    let mut rx_open = true;
    loop {
        // Answer everything that can be answered now.
        loop {
            while let Ok(p) = rx.try_recv() {
                queue.push_back(p);
            }
            let Some(front) = queue.front() else { break };
            match front {
                Pending::Local(reply) => {
                    out.extend_from_slice(reply);
                    queue.pop_front();
                }
                Pending::Close => {
                    let _ = client.write_all(&out).await;
                    let _ = client.shutdown().await;
                    return;
                }
                Pending::Upstream { .. } => match scanner.scan(&from_redis) {
                    Ok(Some(len)) => {
                        let frame = from_redis.split_to(len).freeze();
                        let Some(Pending::Upstream { spec, args }) = queue.pop_front() else {
                            unreachable!()
                        };
                        decode(spec, args, frame, &shared, &mut out);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        warn!(error = %e, "Redis sent a reply redcloak cannot parse; closing the session");
                        fail_all(
                            &mut queue,
                            &mut rx,
                            &mut out,
                            "redcloak could not parse Redis's reply",
                        )
                        .await;
                        let _ = client.write_all(&out).await;
                        let _ = client.shutdown().await;
                        return;
                    }
                },
            }
            if out.len() >= WRITE_HIGH_WATER {
                if client.write_all(&out).await.is_err() {
                    return; // the client is gone; dropping rx stops the reader
                }
                out.clear();
            }
        }
        if !out.is_empty() {
            if client.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if queue.is_empty() && !rx_open {
            let _ = client.shutdown().await;
            return;
        }
        from_redis.reserve(READ_CHUNK);
        tokio::select! {
            biased;
            p = rx.recv(), if rx_open => match p {
                Some(p) => queue.push_back(p),
                None => rx_open = false,
            },
            read = upstream.read_buf(&mut from_redis) => {
                let lost = match read {
                    Ok(0) => "Redis closed the connection".to_owned(),
                    Ok(_) => continue,
                    Err(e) => format!("the connection to Redis failed: {e}"),
                };
                warn!(reason = %lost, "upstream connection lost");
                // Replies already received are still delivered (next loop), then the rest fail.
                while let Some(len) = scanner.scan(&from_redis).ok().flatten() {
                    match queue.pop_front() {
                        Some(Pending::Upstream { spec, args }) => {
                            let frame = from_redis.split_to(len).freeze();
                            decode(spec, args, frame, &shared, &mut out);
                        }
                        Some(Pending::Local(reply)) => out.extend_from_slice(&reply),
                        Some(Pending::Close) | None => break,
                    }
                }
                fail_all(&mut queue, &mut rx, &mut out, &lost).await;
                let _ = client.write_all(&out).await;
                let _ = client.shutdown().await;
                return;
            }
        }
    }
}

/// Decodes one upstream reply for the client.
fn decode(
    spec: &'static CommandSpec,
    args: Option<Vec<Bytes>>,
    frame: Bytes,
    shared: &Shared,
    out: &mut BytesMut,
) {
    match transform::decode_reply(
        spec.reply,
        frame,
        &shared.key_ring,
        &shared.reply_limits,
        out,
    ) {
        Ok(_) => {}
        Err(ReplyError::Undecryptable(problem)) => {
            warn!(command = spec.name, "a stored value could not be decrypted");
            let keys = args
                .as_deref()
                .map_or(&[][..], |a| a.get(1..).unwrap_or(&[]));
            resp::write_error(out, &transform::undecryptable_message(spec, keys, problem));
        }
        Err(e) => {
            warn!(command = spec.name, error = %e, "malformed reply from Redis");
            resp::write_error(
                out,
                &format!(
                    "ERR redcloak: {} got a malformed reply from Redis",
                    spec.name
                ),
            );
        }
    }
}

/// Gives every command still owed a reply an error saying its outcome is unknown.
async fn fail_all(
    queue: &mut VecDeque<Pending>,
    rx: &mut mpsc::Receiver<Pending>,
    out: &mut BytesMut,
    why: &str,
) {
    rx.close();
    while let Some(p) = rx.recv().await {
        queue.push_back(p);
    }
    for pending in queue.drain(..) {
        match pending {
            Pending::Local(reply) => out.extend_from_slice(&reply),
            Pending::Upstream { spec, .. } => resp::write_error(
                out,
                &format!(
                    "ERR redcloak: {why}; the outcome of this {} is unknown",
                    spec.name
                ),
            ),
            Pending::Close => break,
        }
    }
}

fn error_reply(msg: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(msg.len() + 3);
    resp::write_error(&mut out, msg);
    out.freeze()
}

fn protocol_message(e: &ProtocolError) -> String {
    format!("ERR {e}")
}
