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
use redcloak_commands::table::{self, Action, Local, Resolved, Session, Shape};
use redcloak_commands::transform::{self, Plan, PubSubFrame, ReplyError};
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
        plan: Plan,
        name: &'static str,
        args: Option<Vec<Bytes>>,
    },
    /// The next upstream reply is redcloak's own (re-AUTH after RESET): consumed, not shown.
    Swallow,
    /// The next upstream reply is replaced by this one (EXEC of a transaction redcloak aborted).
    Replace(Bytes),
    /// The next upstream reply is `RESET`'s: passed on, and pub/sub mode ends.
    ResetReply,
    /// A (un)subscribe command: Redis answers with confirmations, which arrive like pushes.
    /// Entering pub/sub mode (RESP2) happens here, in order.
    PubSub,
    /// After every earlier reply: close the connection (QUIT, protocol error).
    Close,
}

/// The reader's view of the connection's state, mirrored from what Redis will do.
#[derive(Debug, Default)]
struct Tx {
    /// Between MULTI and EXEC/DISCARD.
    in_multi: bool,
    /// A command was refused inside MULTI: Redis must not run the transaction (EXECABORT).
    poisoned: bool,
    /// The reply shapes of the queued commands, for EXEC.
    queued: Vec<&'static Shape>,
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
    // The client is done sending: tell Redis. It answers what it has read and then closes,
    // which also ends a command the client left blocked (BLPOP …) instead of leaking it.
    let _ = upstream_w.shutdown().await;
    // The writer answers everything queued, then closes.
    let _ = writer.await;
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
    let mut tx_state = Tx::default();
    loop {
        let mut closing = false;
        let mut secret_in_out = false;
        loop {
            match parser.parse(&mut buf) {
                Ok(Some(request)) => {
                    let before = out.len();
                    let stop = handle(request.args, shared, &mut tx_state, &mut out, &mut batch);
                    secret_in_out |=
                        matches!(batch.last(), Some(Pending::Swallow)) && out.len() > before;
                    if stop {
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
            if secret_in_out {
                // The batch re-authenticated (RESET): wipe the password from the buffer.
                out.iter_mut().for_each(|b| *b = 0);
            }
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
fn handle(
    args: Vec<Bytes>,
    shared: &Shared,
    tx: &mut Tx,
    out: &mut BytesMut,
    batch: &mut Vec<Pending>,
) -> bool {
    let refuse = |msg: String, tx: &mut Tx, batch: &mut Vec<Pending>| {
        // Inside MULTI, Redis flags the transaction on such errors; redcloak does the same.
        tx.poisoned |= tx.in_multi;
        batch.push(Pending::Local(error_reply(&msg)));
        false
    };
    let (spec, parent) = match table::resolve(&args) {
        Resolved::Known { spec, parent } => (spec, parent),
        Resolved::Unknown => {
            let name = args.first().map_or(&[][..], |n| &n[..]);
            return refuse(transform::unknown_command_message(name), tx, batch);
        }
        Resolved::UnknownSubcommand(container) => {
            let sub = transform::printable(args.get(1).map_or(&[][..], |s| &s[..]));
            let name = format!("{} {}", container.name, sub.to_ascii_uppercase());
            let msg = match container.action {
                Action::Refuse(r) => transform::refusal_message(&name, &r),
                _ => transform::unknown_command_message(name.as_bytes()),
            };
            return refuse(msg, tx, batch);
        }
        Resolved::MissingSubcommand(container) => {
            return refuse(transform::arity_message(container, None), tx, batch)
        }
    };
    if !spec.arity_ok(args.len()) {
        return refuse(transform::arity_message(spec, parent), tx, batch);
    }
    let name = parent.map_or(spec.name, |p| p.name);
    match spec.action {
        Action::Forward => {
            let shape = spec.reply.shape(&args);
            if let Err(msg) = transform::encode_request(spec, &args, &shared.key_ring, out) {
                return refuse(msg, tx, batch);
            }
            if tx.in_multi {
                // Redis answers +QUEUED now; the value comes in EXEC's reply.
                tx.queued.push(shape);
                batch.push(Pending::Upstream {
                    plan: Plan::Shape(&Shape::Pass),
                    name,
                    args: None,
                });
            } else {
                let args = (*shape != Shape::Pass).then_some(args);
                batch.push(Pending::Upstream {
                    plan: Plan::Shape(shape),
                    name,
                    args,
                });
            }
        }
        Action::Local(Local::Auth) if tx.in_multi => {
            return refuse(
                "ERR redcloak: AUTH inside MULTI is not supported (redcloak answers AUTH itself)"
                    .into(),
                tx,
                batch,
            );
        }
        Action::Local(Local::Auth) => {
            // The client's credentials are dropped here: never forwarded, never logged.
            batch.push(Pending::Local(Bytes::from_static(b"+OK\r\n")));
        }
        Action::Local(Local::Quit) => {
            batch.push(Pending::Local(Bytes::from_static(b"+OK\r\n")));
            batch.push(Pending::Close);
            return true;
        }
        Action::Refuse(refusal) => {
            return refuse(
                transform::refusal_message(&table::display_name(spec, parent), &refusal),
                tx,
                batch,
            );
        }
        Action::Session(Session::Multi) => {
            if !tx.in_multi {
                *tx = Tx {
                    in_multi: true,
                    ..Tx::default()
                };
            }
            forward_plain(&args, out, batch, name);
        }
        Action::Session(Session::Exec) => {
            if tx.in_multi && tx.poisoned {
                // Redis never runs it: drop the queue there, answer as Redis would.
                *tx = Tx::default();
                resp::write_array_len(out, 1);
                resp::write_bulk(out, b"DISCARD");
                batch.push(Pending::Replace(Bytes::from_static(
                    b"-EXECABORT Transaction discarded because of previous errors.\r\n",
                )));
            } else if tx.in_multi {
                let queued = std::mem::take(&mut tx.queued);
                *tx = Tx::default();
                write_args(&args, out);
                batch.push(Pending::Upstream {
                    plan: Plan::Exec(queued),
                    name,
                    args: None,
                });
            } else {
                forward_plain(&args, out, batch, name); // Redis: "EXEC without MULTI"
            }
        }
        Action::Session(Session::Discard) => {
            *tx = Tx::default();
            forward_plain(&args, out, batch, name);
        }
        Action::Session(Session::Hello) => match strip_hello_auth(&args) {
            Ok(stripped) => forward_plain(&stripped, out, batch, name),
            Err(msg) => return refuse(msg.into(), tx, batch),
        },
        Action::Session(Session::Reset) => {
            *tx = Tx::default();
            write_args(&args, out);
            batch.push(Pending::ResetReply);
            // RESET logs the connection out of Redis: authenticate it again, silently.
            for _ in 0..shared.connector.write_hello(out) {
                batch.push(Pending::Swallow);
            }
        }
        Action::Session(Session::PubSub) if tx.in_multi => {
            return refuse(
                format!("ERR redcloak: {} inside MULTI is not supported", spec.name),
                tx,
                batch,
            );
        }
        Action::Session(Session::PubSub) => {
            write_args(&args, out);
            batch.push(Pending::PubSub);
        }
    }
    false
}

/// Forwards arguments unchanged, with a pass-through reply.
fn forward_plain(args: &[Bytes], out: &mut BytesMut, batch: &mut Vec<Pending>, name: &'static str) {
    write_args(args, out);
    batch.push(Pending::Upstream {
        plan: Plan::Shape(&Shape::Pass),
        name,
        args: None,
    });
}

fn write_args(args: &[Bytes], out: &mut BytesMut) {
    resp::write_array_len(out, args.len());
    for a in args {
        resp::write_bulk(out, a);
    }
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]` without its AUTH part:
/// the client's credentials are redcloak's business, never Redis's.
fn strip_hello_auth(args: &[Bytes]) -> Result<Vec<Bytes>, &'static str> {
    let mut kept = Vec::with_capacity(args.len());
    kept.extend(args.iter().take(2).cloned());
    let mut i = 2;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"AUTH") {
            if i + 2 >= args.len() {
                return Err("ERR Syntax error in HELLO option 'auth'");
            }
            i += 3;
        } else {
            kept.push(args[i].clone());
            i += 1;
        }
    }
    Ok(kept)
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
    // RESP2 pub/sub mode: arrays named "message", "subscribe"… are pushes, not replies.
    let mut pubsub = false;
    loop {
        // Answer everything that can be answered now.
        loop {
            while let Ok(p) = rx.try_recv() {
                queue.push_back(p);
            }
            match queue.front() {
                Some(Pending::Local(reply)) => {
                    out.extend_from_slice(reply);
                    queue.pop_front();
                    continue;
                }
                Some(Pending::PubSub) => {
                    pubsub = true;
                    queue.pop_front();
                    continue;
                }
                Some(Pending::Close) => {
                    let _ = client.write_all(&out).await;
                    let _ = client.shutdown().await;
                    return;
                }
                _ => {}
            }
            let len = match scanner.scan(&from_redis) {
                Ok(Some(len)) => len,
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
            };
            let frame = from_redis.split_to(len).freeze();
            if let Err(why) = deliver(frame, &mut queue, &mut pubsub, &shared, &mut out) {
                warn!(reason = why, "closing the session");
                fail_all(&mut queue, &mut rx, &mut out, why).await;
                let _ = client.write_all(&out).await;
                let _ = client.shutdown().await;
                return;
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
                if !queue.is_empty() || rx_open {
                    debug!(reason = %lost, "upstream connection ended");
                }
                // Replies already received are delivered, then every command still owed one
                // gets an error.
                while let Some(len) = scanner.scan(&from_redis).ok().flatten() {
                    let frame = from_redis.split_to(len).freeze();
                    if deliver(frame, &mut queue, &mut pubsub, &shared, &mut out).is_err() {
                        break;
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

/// Delivers one upstream frame: a pub/sub push, or the reply the front of the queue expects.
fn deliver(
    frame: Bytes,
    queue: &mut VecDeque<Pending>,
    pubsub: &mut bool,
    shared: &Shared,
    out: &mut BytesMut,
) -> Result<(), &'static str> {
    let push = frame.first() == Some(&b'>');
    if push || (*pubsub && frame.first() == Some(&b'*')) {
        match transform::decode_pubsub(&frame, &shared.key_ring, &shared.reply_limits, out) {
            Ok(PubSubFrame::Message) => return Ok(()),
            Ok(PubSubFrame::Confirmation { remaining }) => {
                if remaining == 0 && !push {
                    *pubsub = false;
                }
                return Ok(());
            }
            Ok(PubSubFrame::NotPubSub) => {}
            Err(ReplyError::Undecryptable(_)) => {
                // Never passed on as if it were the message; nothing to answer either.
                warn!("dropped a pub/sub message whose payload could not be decrypted");
                return Ok(());
            }
            Err(_) => return Err("Redis sent a malformed pub/sub message"),
        }
    }
    match queue.pop_front() {
        Some(Pending::Upstream { plan, name, args }) => {
            decode(&plan, name, args, frame, shared, out)
        }
        Some(Pending::Swallow) => {
            if frame.first() == Some(&b'-') {
                warn!("re-authentication after RESET failed; later commands will fail");
            }
        }
        Some(Pending::Replace(reply)) => out.extend_from_slice(&reply),
        Some(Pending::ResetReply) => {
            *pubsub = false;
            out.extend_from_slice(&frame);
        }
        Some(other @ (Pending::Local(_) | Pending::PubSub | Pending::Close)) => {
            // Unreachable: the caller answers these before reading a frame.
            queue.push_front(other);
            return Err("internal error: reply bookkeeping out of order");
        }
        None => return Err("Redis sent a reply to a command nobody sent"),
    }
    Ok(())
}

/// Decodes one upstream reply for the client.
fn decode(
    plan: &Plan,
    name: &'static str,
    args: Option<Vec<Bytes>>,
    frame: Bytes,
    shared: &Shared,
    out: &mut BytesMut,
) {
    match transform::decode_reply(plan, frame, &shared.key_ring, &shared.reply_limits, out) {
        Ok(_) => {}
        Err(ReplyError::Undecryptable(problem)) => {
            warn!(command = name, "a stored value could not be decrypted");
            let args = args.unwrap_or_default();
            resp::write_error(out, &transform::undecryptable_message(name, &args, problem));
        }
        Err(e) => {
            warn!(command = name, error = %e, "malformed reply from Redis");
            resp::write_error(
                out,
                &format!("ERR redcloak: {name} got a malformed reply from Redis"),
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
            Pending::Upstream { name, .. } => resp::write_error(
                out,
                &format!("ERR redcloak: {why}; the outcome of this {name} is unknown"),
            ),
            Pending::Replace(_) | Pending::ResetReply => resp::write_error(
                out,
                &format!("ERR redcloak: {why}; the outcome of this command is unknown"),
            ),
            Pending::Swallow | Pending::PubSub => {}
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
