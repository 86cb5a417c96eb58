//! One client connection: read commands, apply the command table, forward, and answer every
//! command exactly once, in order — through upstream failures too.
//!
//! # Layout
//! A session lives through a sequence of *phases*, each with its own upstream situation:
//! - **connected** (Redis healthy): two halves joined by a FIFO of [`Pending`] replies. The
//!   **reader** (this task) parses every complete request the client sent, looks each one up
//!   in the table, encrypts value arguments into one upstream write per batch, and queues one
//!   [`Pending`] per command; the **writer** (a spawned task) pops the FIFO in order, decodes
//!   upstream replies by their command's rule, and writes the client's replies in one write
//!   per batch. When the upstream connection breaks, every command already sent gets an error
//!   saying its outcome is unknown, and the session moves on to a new phase with the same
//!   client connection (an idle client notices nothing).
//! - **degraded** (Redis unreachable): commands are answered from the fallback (see
//!   `degraded.rs`) until Redis is healthy again.
//!
//! What must survive a phase change lives in [`State`]: the parser and unread bytes, the
//! transaction, the selected database and protocol. A new upstream connection is brought to
//! the same state (SELECT, HELLO 3, MULTI) before the client's commands flow again; a WATCH
//! or a transaction that the old connection held cannot be carried over, so EXEC fails the
//! way Redis would fail it. A subscribed client is disconnected instead (its client library
//! resubscribes on reconnect).
//!
//! The FIFO is bounded by `max_pipeline`: a client that keeps sending without reading is
//! slowed down (backpressure) instead of growing redcloak's memory. Pending entries are queued
//! *before* their bytes are written upstream, so a reply never arrives without its entry.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use redcloak_commands::resp::{self, ProtocolError, ReplyScanner, RequestParser};
use redcloak_commands::table::{self, Action, Local, Resolved, Session, Shape};
use redcloak_commands::transform::{self, Plan, PubSubFrame, ReplyError};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::{debug, warn, Instrument};

use crate::degraded::{self, SetOptions, Step};
use crate::fallback::{now_ms, Entry, Ttl};
use crate::health::Mode;
use crate::metrics::Outcome;
use crate::upstream::UpstreamConn;
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
        shadow: ShadowOp,
        /// When the command was read, for `redcloak_command_duration_seconds`.
        started: Instant,
        /// It may block (BLPOP…): no reply deadline.
        blocking: bool,
    },
    /// The next upstream reply is redcloak's own (re-AUTH after RESET, restoring state on a
    /// new connection): consumed, not shown.
    Swallow,
    /// The next upstream reply is replaced by this one (EXEC of a transaction redcloak aborted).
    Replace(Bytes),
    /// The next upstream reply is `RESET`'s: passed on; pub/sub, database and protocol reset.
    ResetReply,
    /// The next upstream reply is `SELECT db`'s: passed on; on success the database changes.
    Select(u32),
    /// The next upstream reply is `HELLO`'s: passed on; on success the protocol changes.
    Hello(Option<bool>),
    /// A (un)subscribe command: Redis answers with confirmations, which arrive like pushes.
    /// Entering pub/sub mode (RESP2) happens here, in order.
    PubSub,
    /// After every earlier reply: close the connection (QUIT, protocol error).
    Close,
}

/// What the shadow cache learns from a reply (applied by the writer, in order).
#[derive(Debug, Default)]
enum ShadowOp {
    #[default]
    None,
    /// On `when`, each key holds its token, with this expiry change.
    Set {
        pairs: Vec<(Bytes, Bytes)>,
        ttl: TtlChange,
        when: When,
    },
    /// The values in the reply are what the keys hold (GET, MGET).
    Read { keys: Vec<Bytes> },
    /// On success, the keys no longer exist (DEL, UNLINK, GETDEL).
    Absent { keys: Vec<Bytes> },
    /// On `:1`, the key expires at this time (or is gone, if it is in the past).
    Expire { key: Bytes, at: u64 },
    /// On `:1`, the key no longer expires.
    Persist { key: Bytes },
}

#[derive(Debug, Clone, Copy)]
enum TtlChange {
    Clear,
    At(u64),
    Keep,
}

#[derive(Debug, Clone, Copy)]
enum When {
    /// Any reply but an error.
    NotError,
    /// A reply that is neither an error nor nil (`SET … NX` answers nil when it did nothing).
    Done,
    /// `:1`.
    One,
}

/// The reader's view of the transaction, mirrored from what Redis will do.
#[derive(Debug, Default)]
struct Tx {
    /// Between MULTI and EXEC/DISCARD.
    in_multi: bool,
    /// A command was refused inside MULTI (or the connection holding the transaction was
    /// lost): Redis must not run it (EXECABORT).
    poisoned: bool,
    /// The reply shapes of the queued commands, for EXEC.
    queued: Vec<&'static Shape>,
    /// A WATCH was held by a connection that was lost: the next EXEC must fail as if a
    /// watched key had changed (redcloak cannot know that none did).
    watch_lost: bool,
}

/// What the reader and writer of one connected phase both see.
#[derive(Debug, Default)]
struct Busy {
    /// Pending entries handed to the writer and not yet answered.
    owed: std::sync::atomic::AtomicUsize,
    /// The connection is subscribed (RESP2 pub/sub mode, or RESP3 subscriptions).
    subscribed: std::sync::atomic::AtomicBool,
    /// The database Redis confirmed (by the last successful SELECT).
    db: std::sync::atomic::AtomicU32,
    /// The session leaves this connection but not the client (an outage began elsewhere).
    leaving: std::sync::atomic::AtomicBool,
}

impl Busy {
    /// Whether the client is idle in Redis's sense: nothing owed, not subscribed.
    fn idle(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.owed.load(Relaxed) == 0 && !self.subscribed.load(Relaxed)
    }
}

/// What survives from one phase of the session to the next.
struct State {
    parser: RequestParser,
    buf: BytesMut,
    tx: Tx,
    watching: bool,
    /// The selected database and protocol, as the last phase left them.
    db: u32,
    resp3: bool,
    /// RESP2 pub/sub mode (confirmations and messages arrive as arrays).
    pubsub: bool,
}

/// How a phase ended.
enum End {
    /// The client is gone, sent QUIT, or broke the protocol: the session is over.
    ClientDone,
    /// The upstream connection broke (or could not be made): try again, or serve degraded.
    UpstreamLost,
    /// Redis is healthy again: leave degraded mode.
    Healthy,
}

/// Serves one client until it disconnects, sends QUIT, or breaks the protocol.
pub(crate) async fn run<C>(client: C, shared: Arc<Shared>)
where
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut client_r, client_w) = tokio::io::split(client);
    let mut client_w = Some(client_w);
    let mut st = State {
        parser: RequestParser::new(shared.request_limits),
        buf: BytesMut::with_capacity(READ_CHUNK),
        tx: Tx::default(),
        watching: false,
        db: shared.connector().default_db(),
        resp3: false,
        pubsub: false,
    };
    loop {
        let Some(w) = client_w.take() else { return };
        let (w, end) = if shared.health.mode() == Mode::Healthy {
            match shared.pool.take(&shared).await {
                Ok(conn) => match connected(&mut client_r, w, conn, &mut st, &shared).await {
                    (Some(w), end) => (w, end),
                    (None, _) => return,
                },
                Err(e) => {
                    // At runtime every failure to connect means "Redis cannot be used now":
                    // serve from the fallback. A refusal (certificate, password rotated on the
                    // Redis side) is logged loudly by the recovery probe until it is fixed;
                    // an EOF during a handshake is ambiguous while Redis is being killed.
                    if !e.is_outage() {
                        warn!(error = %e, "Redis refused a new connection");
                    }
                    shared.report_outage(&e.to_string());
                    (w, End::UpstreamLost)
                }
            }
        } else {
            let mut w = w;
            let end = serve_degraded(&mut client_r, &mut w, &mut st, &shared).await;
            (w, end)
        };
        match end {
            End::ClientDone => return,
            End::UpstreamLost | End::Healthy => client_w = Some(w),
        }
    }
}

// === connected ===

/// One upstream connection's worth of the session.
async fn connected<R, W>(
    client_r: &mut R,
    client_w: W,
    upstream: UpstreamConn,
    st: &mut State,
    shared: &Arc<Shared>,
) -> (Option<W>, End)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (upstream_r, mut upstream_w) = tokio::io::split(upstream);
    let (tx, rx) = mpsc::channel(shared.limits.max_pipeline);
    // Bring the new connection to the state the client believes it is in.
    let mut restore = BytesMut::new();
    let mut swallow = 0;
    if st.db != shared.connector().default_db() {
        write_args(
            &[
                Bytes::from_static(b"SELECT"),
                Bytes::from(st.db.to_string()),
            ],
            &mut restore,
        );
        swallow += 1;
    }
    if st.resp3 {
        write_args(
            &[Bytes::from_static(b"HELLO"), Bytes::from_static(b"3")],
            &mut restore,
        );
        swallow += 1;
    }
    if st.tx.in_multi {
        write_args(&[Bytes::from_static(b"MULTI")], &mut restore);
        swallow += 1;
    }
    let busy = Arc::new(Busy::default());
    busy.subscribed
        .store(st.pubsub, std::sync::atomic::Ordering::Relaxed);
    let writer_state = WriterState {
        db: st.db,
        resp3: st.resp3,
        pubsub: st.pubsub,
        lost: None,
        busy: busy.clone(),
    };
    // In the connection's span, so the writer's log events name the connection too.
    let writer = tokio::spawn(
        write_replies(rx, upstream_r, client_w, shared.clone(), writer_state).in_current_span(),
    );
    let mut leftover = Vec::new();
    let reader_end = async {
        for _ in 0..swallow {
            tx.send(Pending::Swallow)
                .await
                .map_err(|_| ReaderEnd::WriterGone)?;
        }
        if !restore.is_empty() {
            upstream_w
                .write_all(&restore)
                .await
                .map_err(|_| ReaderEnd::UpstreamFailed)?;
        }
        read_requests(
            client_r,
            &mut upstream_w,
            &tx,
            shared,
            st,
            &mut leftover,
            &busy,
        )
        .await
    }
    .await
    .unwrap_or_else(|e| e);
    drop(tx);
    if matches!(reader_end, ReaderEnd::ClientDone | ReaderEnd::Outage) {
        // The client is done sending (or the session leaves Redis for the fallback): tell Redis. It answers what it has read and then
        // closes, which also ends a command the client left blocked (BLPOP …).
        let _ = upstream_w.shutdown().await;
    }
    // (At shutdown the connection stays open instead, so that a blocked command still gets
    // its reply if it comes within the grace period.)
    let Ok((mut client_w, ws)) = writer.await else {
        // The writer task failed (it cannot on client input): the client's write half went
        // with it, so the session ends.
        return (None, End::ClientDone);
    };
    st.db = ws.db;
    st.resp3 = ws.resp3;
    st.pubsub = ws.pubsub;
    let Some(lost) = ws.lost else {
        return (Some(client_w), End::ClientDone);
    };
    if matches!(reader_end, ReaderEnd::ClientDone | ReaderEnd::Shutdown) {
        return (Some(client_w), End::ClientDone);
    }
    // The upstream connection broke. Commands the reader had taken but not yet handed to the
    // writer were never sent to Redis: they did not run.
    if !leftover.is_empty() {
        let mut out = BytesMut::new();
        for p in leftover {
            answer_unsent(p, &mut out);
        }
        if client_w.write_all(&out).await.is_err() {
            return (Some(client_w), End::ClientDone);
        }
    }
    debug!(reason = %lost, "upstream connection lost; reconnecting");
    if st.pubsub || busy.subscribed.load(std::sync::atomic::Ordering::Relaxed) {
        // Subscriptions live on the lost connection; the client library resubscribes when it
        // reconnects, which is more reliable than redcloak replaying them behind its back.
        let _ = client_w.shutdown().await;
        return (Some(client_w), End::ClientDone);
    }
    if st.tx.in_multi {
        st.tx.poisoned = true;
    }
    if st.watching {
        st.watching = false;
        st.tx.watch_lost = true;
    }
    (Some(client_w), End::UpstreamLost)
}

/// Why the reader stopped.
enum ReaderEnd {
    /// EOF, QUIT, protocol error: no more requests.
    ClientDone,
    /// Shutting down: no more requests are read; the ones read are answered.
    Shutdown,
    /// An outage began (another session could not reach Redis): leave this connection too,
    /// after the replies owed, and serve from the fallback like everyone else.
    Outage,
    /// The writer ended (upstream lost, or the client stopped reading).
    WriterGone,
    /// Writing to Redis failed.
    UpstreamFailed,
}

/// The reader half. Returns when the client is done or the upstream side has gone. Pending
/// entries it could not hand to the writer are left in `leftover`.
async fn read_requests<R, W>(
    client: &mut R,
    upstream: &mut W,
    tx: &mpsc::Sender<Pending>,
    shared: &Shared,
    st: &mut State,
    leftover: &mut Vec<Pending>,
    busy: &Busy,
) -> Result<ReaderEnd, ReaderEnd>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    let mut batch: Vec<Pending> = Vec::new();
    let mut shutdown = shared.shutdown_signal();
    let mut outages = shared.health.outages();
    loop {
        let mut closing = false;
        let mut secret_in_out = false;
        if tx.is_closed() {
            // The upstream connection is gone: leave the unread requests to the next phase
            // (a new connection, or the fallback) rather than failing them.
            return Err(ReaderEnd::WriterGone);
        }
        loop {
            match st.parser.parse(&mut st.buf) {
                Ok(Some(request)) => {
                    let before = out.len();
                    let stop = handle(request.args, shared, st, busy, &mut out, &mut batch);
                    secret_in_out |=
                        matches!(batch.last(), Some(Pending::Swallow)) && out.len() > before;
                    if stop {
                        closing = true;
                        break;
                    }
                    if secret_in_out {
                        // Send the re-authentication now: if the buffer grew after it, the
                        // old allocation (with the password) would be freed without a wipe.
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
        busy.owed
            .fetch_add(batch.len(), std::sync::atomic::Ordering::Relaxed);
        let mut drained = batch.drain(..);
        for pending in drained.by_ref() {
            if let Err(mpsc::error::SendError(p)) = tx.send(pending).await {
                // The writer is gone; these were never sent to Redis.
                leftover.push(p);
                leftover.extend(drained);
                return Err(ReaderEnd::WriterGone);
            }
        }
        drop(drained);
        if !out.is_empty() {
            let written = upstream.write_all(&out).await;
            if secret_in_out {
                // The batch re-authenticated (RESET): wipe the password from the buffer.
                out.iter_mut().for_each(|b| *b = 0);
            }
            out.clear();
            if written.is_err() {
                return Err(ReaderEnd::UpstreamFailed);
            }
            // Keep the buffer from pinning a huge allocation after one large command.
            if out.capacity() > 4 * WRITE_HIGH_WATER {
                out = BytesMut::with_capacity(READ_CHUNK);
            }
        }
        if closing {
            return Ok(ReaderEnd::ClientDone);
        }
        if secret_in_out {
            continue; // requests after the RESET may already be buffered
        }
        if *shutdown.borrow() {
            // Shutting down: everything already read has been handled; read no more.
            return Ok(ReaderEnd::Shutdown);
        }
        if let Some(e) = request_too_large(st, shared) {
            batch.push(Pending::Local(error_reply(&e)));
            batch.push(Pending::Close);
            continue;
        }
        st.buf.reserve(READ_CHUNK);
        let idle = shared.operations.idle_timeout;
        tokio::select! {
            biased;
            _ = tx.closed() => return Err(ReaderEnd::WriterGone),
            _ = shutdown.changed() => {}
            _ = outages.changed() => {
                busy.leaving.store(true, std::sync::atomic::Ordering::Release);
                return Ok(ReaderEnd::Outage);
            }
            read = client.read_buf(&mut st.buf) => {
                match read {
                    Ok(0) | Err(_) => return Ok(ReaderEnd::ClientDone), // the writer still answers what was read
                    Ok(_) => {}
                }
            }
            _ = idle_timer(idle) => {
                if busy.idle() {
                    debug!("closing an idle client (REDCLOAK_IDLE_TIMEOUT)");
                    return Ok(ReaderEnd::ClientDone);
                }
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

/// A request that has grown past `max_request_bytes` without completing.
fn request_too_large(st: &State, shared: &Shared) -> Option<String> {
    (st.buf.len() > shared.limits.max_request_bytes).then(|| {
        format!(
            "ERR Protocol error: request larger than {} bytes (redcloak: REDCLOAK_MAX_REQUEST_BYTES)",
            shared.limits.max_request_bytes
        )
    })
}

/// Applies the table to one request: encodes it for Redis into `out` and/or queues its
/// pending reply. Returns true when the session must stop reading (QUIT).
fn handle(
    args: Vec<Bytes>,
    shared: &Shared,
    st: &mut State,
    busy: &Busy,
    out: &mut BytesMut,
    batch: &mut Vec<Pending>,
) -> bool {
    let metrics = &shared.metrics;
    let refuse = |msg: String, tx: &mut Tx, batch: &mut Vec<Pending>| {
        metrics.command(refused_label(&args), Outcome::Refused, Duration::ZERO);
        // Inside MULTI, Redis flags the transaction on such errors; redcloak does the same.
        tx.poisoned |= tx.in_multi;
        batch.push(Pending::Local(error_reply(&msg)));
        false
    };
    let tx = &mut st.tx;
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
            if tx.in_multi && spec.name == "WATCH" {
                // Redis refuses it without queueing it or aborting the transaction.
                batch.push(Pending::Local(error_reply(
                    "ERR WATCH inside MULTI is not allowed",
                )));
                return false;
            }
            if tx.in_multi && spec.name == "SELECT" {
                // Which database the connection is in after EXEC would depend on the
                // transaction's outcome; redcloak must know it (reconnects, the cache).
                return refuse(
                    "ERR redcloak: SELECT inside MULTI is not supported; SELECT before MULTI"
                        .into(),
                    tx,
                    batch,
                );
            }
            let shape = spec.reply.shape(&args);
            let keys = table::keys_of(spec, parent, &args);
            // Forget what a write may change *before* it is sent: if its outcome is never
            // learned (the connection breaks), the cache must not answer with the old value.
            let fallback = &shared.fallback;
            // The databases the reader may be in: the one it assumes, and the one Redis confirmed.
            let dbs = [st.db, busy.db.load(std::sync::atomic::Ordering::Relaxed)];
            let forget = |keys: &[usize]| {
                for db in if dbs[0] == dbs[1] {
                    &dbs[..1]
                } else {
                    &dbs[..]
                } {
                    for &k in keys {
                        fallback.forget(*db, &args[k]);
                    }
                }
            };
            let tracked = parent.is_none() && !tx.in_multi && shadow_tracked(spec.name);
            let other_db = spec.name == "MOVE"
                || (spec.name == "COPY" && args.iter().any(|a| a.eq_ignore_ascii_case(b"DB")));
            if keys.touches_all || other_db {
                fallback.forget_all();
            } else if keys.write && !tracked {
                // (Tracked commands update the cache from the reply, and forget their keys
                // if the reply never comes: see `fail_all`.)
                forget(&keys.keys);
            }
            let mut tokens = Vec::new();
            let keep = tracked && spec.values.any();
            match transform::encode_request_keeping(
                spec,
                &args,
                &shared.key_ring(),
                out,
                keep.then_some(&mut tokens),
            ) {
                Ok(0) => {}
                Ok(n) => shared.metrics.encrypted(n as u64),
                Err(msg) => return refuse(msg, tx, batch),
            }
            if tx.in_multi {
                // Redis answers +QUEUED now; the value comes in EXEC's reply.
                tx.queued.push(shape);
                batch.push(Pending::pass(name));
            } else {
                let shadow = if tracked {
                    shadow_op(spec.name, &args, tokens)
                } else {
                    ShadowOp::None
                };
                if tracked && matches!(shadow, ShadowOp::None) && keys.write {
                    // Options the cache does not follow: forget instead of guessing.
                    forget(&keys.keys);
                }
                if spec.name == "WATCH" {
                    st.watching = true;
                } else if spec.name == "UNWATCH" {
                    st.watching = false;
                    tx.watch_lost = false;
                }
                if spec.name == "SELECT" {
                    if let Some(db) = parse_u32(&args[1]) {
                        st.db = db;
                        batch.push(Pending::Select(db));
                        return false;
                    }
                }
                let args = (*shape != Shape::Pass).then_some(args);
                batch.push(Pending::Upstream {
                    plan: Plan::Shape(shape),
                    name,
                    args,
                    shadow,
                    started: Instant::now(),
                    blocking: keys.blocking,
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
            shared
                .metrics
                .command(spec.name, Outcome::Ok, Duration::ZERO);
            batch.push(Pending::Local(Bytes::from_static(b"+OK\r\n")));
        }
        Action::Local(Local::Quit) => {
            shared
                .metrics
                .command(spec.name, Outcome::Ok, Duration::ZERO);
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
                    watch_lost: tx.watch_lost,
                    ..Tx::default()
                };
            }
            forward_plain(&args, out, batch, name);
        }
        Action::Session(Session::Exec) => {
            let abort: Option<&'static [u8]> = if !tx.in_multi {
                None
            } else if tx.poisoned {
                Some(b"-EXECABORT Transaction discarded because of previous errors.\r\n")
            } else if tx.watch_lost {
                // As if a watched key had changed: the transaction does not run.
                Some(if st.resp3 { b"_\r\n" } else { b"*-1\r\n" })
            } else {
                None
            };
            st.watching = false;
            match abort {
                Some(reply) => {
                    // Redis never runs it: drop the queue there, answer as Redis would.
                    *tx = Tx::default();
                    write_args(&[Bytes::from_static(b"DISCARD")], out);
                    batch.push(Pending::Replace(Bytes::from_static(reply)));
                }
                None if tx.in_multi => {
                    let queued = std::mem::take(&mut tx.queued);
                    *tx = Tx::default();
                    write_args(&args, out);
                    batch.push(Pending::Upstream {
                        plan: Plan::Exec(queued),
                        name,
                        args: None,
                        shadow: ShadowOp::None,
                        started: Instant::now(),
                        blocking: false,
                    });
                }
                None => forward_plain(&args, out, batch, name), // Redis: "EXEC without MULTI"
            }
        }
        Action::Session(Session::Discard) => {
            if tx.in_multi {
                *tx = Tx::default();
                st.watching = false;
            }
            forward_plain(&args, out, batch, name);
        }
        Action::Session(Session::Hello) if tx.in_multi => {
            return refuse(
                "ERR redcloak: HELLO inside MULTI is not supported".into(),
                tx,
                batch,
            );
        }
        Action::Session(Session::Hello) => match strip_hello_auth(&args) {
            Ok(stripped) => {
                // The protocol changes only if Redis accepts it (the writer learns that).
                let resp3 = stripped
                    .get(1)
                    .and_then(|v| protocol_version(v))
                    .filter(|v| matches!(v, 2 | 3))
                    .map(|v| v == 3);
                write_args(&stripped, out);
                batch.push(Pending::Hello(resp3));
            }
            Err(msg) => return refuse(msg.into(), tx, batch),
        },
        Action::Session(Session::Reset) => {
            *tx = Tx::default();
            st.watching = false;
            st.db = shared.connector().default_db();
            st.resp3 = false;
            write_args(&args, out);
            batch.push(Pending::ResetReply);
            // RESET logs the connection out of Redis: authenticate it again, silently.
            for _ in 0..shared.connector().write_hello(out) {
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

/// Commands whose effect on a string key the shadow cache follows exactly.
fn shadow_tracked(name: &str) -> bool {
    matches!(
        name,
        "SET"
            | "SETEX"
            | "PSETEX"
            | "SETNX"
            | "GETSET"
            | "MSET"
            | "MSETNX"
            | "GET"
            | "MGET"
            | "GETDEL"
            | "DEL"
            | "UNLINK"
            | "EXPIRE"
            | "PEXPIRE"
            | "EXPIREAT"
            | "PEXPIREAT"
            | "PERSIST"
    )
}

/// What the shadow cache learns from a tracked command once Redis answers. `tokens` are the
/// ciphertexts of its value arguments, in order.
fn shadow_op(name: &str, args: &[Bytes], tokens: Vec<Bytes>) -> ShadowOp {
    let now = now_ms();
    let number = |i: usize| -> Option<i64> { std::str::from_utf8(args.get(i)?).ok()?.parse().ok() };
    let first_token = || tokens.first().cloned();
    match name {
        "SET" => {
            let (Some(opts), Some(token)) = (SetOptions::parse(&args[3..]), first_token()) else {
                return ShadowOp::None;
            };
            if opts.get && (opts.nx || opts.xx) {
                return ShadowOp::None; // whether it was set cannot be told from the reply
            }
            let ttl = match (opts.expire_at(now), opts.keep_ttl) {
                (Some(at), _) => TtlChange::At(at),
                (None, true) => TtlChange::Keep,
                (None, false) => TtlChange::Clear,
            };
            let when = if opts.get { When::NotError } else { When::Done };
            ShadowOp::Set {
                pairs: vec![(args[1].clone(), token)],
                ttl,
                when,
            }
        }
        "SETEX" | "PSETEX" => {
            let (Some(n), Some(token)) = (number(2), first_token()) else {
                return ShadowOp::None;
            };
            let unit = if name == "SETEX" { 1000 } else { 1 };
            let at = (now as i64).saturating_add(n.saturating_mul(unit)).max(0) as u64;
            ShadowOp::Set {
                pairs: vec![(args[1].clone(), token)],
                ttl: TtlChange::At(at),
                when: When::NotError,
            }
        }
        "SETNX" | "GETSET" => {
            let Some(token) = first_token() else {
                return ShadowOp::None;
            };
            let when = if name == "SETNX" {
                When::One
            } else {
                When::NotError
            };
            ShadowOp::Set {
                pairs: vec![(args[1].clone(), token)],
                ttl: TtlChange::Clear,
                when,
            }
        }
        "MSET" | "MSETNX" => {
            let keys = args[1..].iter().step_by(2).cloned();
            let pairs: Vec<_> = keys.zip(tokens).collect();
            let when = if name == "MSETNX" {
                When::One
            } else {
                When::NotError
            };
            ShadowOp::Set {
                pairs,
                ttl: TtlChange::Clear,
                when,
            }
        }
        "GET" | "MGET" => ShadowOp::Read {
            keys: args[1..].to_vec(),
        },
        "GETDEL" | "DEL" | "UNLINK" => ShadowOp::Absent {
            keys: args[1..].to_vec(),
        },
        "EXPIRE" | "PEXPIRE" | "EXPIREAT" | "PEXPIREAT" => {
            let Some(n) = number(2) else {
                return ShadowOp::None;
            };
            let at = match name {
                "EXPIRE" => (now as i64).saturating_add(n.saturating_mul(1000)),
                "PEXPIRE" => (now as i64).saturating_add(n),
                "EXPIREAT" => n.saturating_mul(1000),
                _ => n,
            };
            ShadowOp::Expire {
                key: args[1].clone(),
                at: at.max(0) as u64,
            }
        }
        "PERSIST" => ShadowOp::Persist {
            key: args[1].clone(),
        },
        _ => ShadowOp::None,
    }
}

fn parse_u32(b: &[u8]) -> Option<u32> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Forwards arguments unchanged, with a pass-through reply.
fn forward_plain(args: &[Bytes], out: &mut BytesMut, batch: &mut Vec<Pending>, name: &'static str) {
    write_args(args, out);
    batch.push(Pending::pass(name));
}

impl Pending {
    /// The next upstream reply, passed on as it is.
    fn pass(name: &'static str) -> Pending {
        Pending::Upstream {
            plan: Plan::Shape(&Shape::Pass),
            name,
            args: None,
            shadow: ShadowOp::None,
            started: Instant::now(),
            blocking: false,
        }
    }
}

fn write_args(args: &[Bytes], out: &mut BytesMut) {
    resp::write_array_len(out, args.len());
    for a in args {
        resp::write_bulk(out, a);
    }
}

/// A HELLO protocol version, as Redis reads it.
fn protocol_version(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]` without its AUTH part:
/// the client's credentials are redcloak's business, never Redis's.
fn strip_hello_auth(args: &[Bytes]) -> Result<Vec<Bytes>, &'static str> {
    // Without a numeric protocol version Redis would not parse (nor redact) the rest: answer
    // here, so an `AUTH` in the wrong place never reaches Redis, its MONITOR or its slowlog.
    if args.len() > 1 && protocol_version(&args[1]).is_none() {
        return Err("ERR Protocol version is not an integer or out of range");
    }
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

// === the writer ===

/// What the writer tracks (and hands back when it ends).
struct WriterState {
    db: u32,
    resp3: bool,
    pubsub: bool,
    /// Why the upstream connection ended, if it did.
    lost: Option<String>,
    /// Shared with the reader (idle detection).
    busy: Arc<Busy>,
}

/// The writer half: answers every pending entry in order. Returns the client's write half
/// and what it learned, when the client is done or the upstream connection is lost.
async fn write_replies<U, W>(
    mut rx: mpsc::Receiver<Pending>,
    upstream: U,
    client: W,
    shared: Arc<Shared>,
    ws: WriterState,
) -> (W, WriterState)
where
    U: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut queue: VecDeque<Pending> = VecDeque::new();
    let (client, ws) =
        write_replies_until_done(&mut rx, &mut queue, upstream, client, &shared, ws).await;
    // Whatever is still owed was never answered (the client went away): what those commands
    // may have changed in Redis is unknown, so the cache forgets their keys.
    rx.close();
    while let Ok(p) = rx.try_recv() {
        queue.push_back(p);
    }
    for pending in queue.drain(..) {
        if let Pending::Upstream { shadow, .. } = pending {
            shadow.forget_keys(&shared.fallback, ws.db);
        }
    }
    (client, ws)
}

async fn write_replies_until_done<U, W>(
    rx: &mut mpsc::Receiver<Pending>,
    queue: &mut VecDeque<Pending>,
    mut upstream: U,
    mut client: W,
    shared: &Arc<Shared>,
    mut ws: WriterState,
) -> (W, WriterState)
where
    U: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
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
            match queue.front() {
                Some(Pending::Local(reply)) => {
                    out.extend_from_slice(reply);
                    queue.pop_front();
                    continue;
                }
                Some(Pending::PubSub) => {
                    // RESP2 only: in RESP3, pub/sub frames are pushes and replies stay replies.
                    ws.pubsub = !ws.resp3;
                    ws.busy
                        .subscribed
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    queue.pop_front();
                    continue;
                }
                Some(Pending::Close) => {
                    let _ = client.write_all(&out).await;
                    let _ = client.shutdown().await;
                    return (client, ws);
                }
                _ => {}
            }
            let delivered = match scanner.scan(&from_redis) {
                Ok(Some(len)) => Ok(len),
                Ok(None) => break,
                Err(e) => {
                    warn!(error = %e, "Redis sent a reply redcloak cannot parse");
                    Err("redcloak could not parse Redis's reply")
                }
            }
            .and_then(|len| {
                deliver(
                    from_redis.split_to(len).freeze(),
                    queue,
                    &mut ws,
                    shared,
                    &mut out,
                )
            });
            if let Err(why) = delivered {
                // Every command still owed a reply gets one (an error), then the session ends.
                warn!(reason = why, "closing the session");
                let (fallback, metrics) = (&shared.fallback, &shared.metrics);
                fail_all(queue, rx, &mut out, why, fallback, ws.db, metrics).await;
                let _ = client.write_all(&out).await;
                let _ = client.shutdown().await;
                return (client, ws);
            }
            if out.len() >= WRITE_HIGH_WATER {
                if client.write_all(&out).await.is_err() {
                    return (client, ws); // the client is gone; dropping rx stops the reader
                }
                out.clear();
            }
        }
        if !out.is_empty() {
            if client.write_all(&out).await.is_err() {
                return (client, ws);
            }
            out.clear();
        }
        if queue.is_empty() && !rx_open {
            if ws.busy.leaving.load(std::sync::atomic::Ordering::Acquire) {
                // Everything owed is answered; the session goes on without this connection.
                ws.lost = Some("left Redis for the fallback (outage)".to_owned());
            } else {
                let _ = client.shutdown().await;
            }
            return (client, ws);
        }
        ws.busy
            .owed
            .store(queue.len(), std::sync::atomic::Ordering::Relaxed);
        from_redis.reserve(READ_CHUNK);
        let deadline = reply_deadline(queue.front(), shared.operations.reply_timeout);
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
                // Replies already received are delivered; every command still owed one gets
                // an error saying its outcome is unknown.
                while let Some(len) = scanner.scan(&from_redis).ok().flatten() {
                    let frame = from_redis.split_to(len).freeze();
                    if deliver(frame, queue, &mut ws, shared, &mut out).is_err() {
                        break;
                    }
                }
                fail_all(queue, rx, &mut out, "the connection to Redis was lost", &shared.fallback, ws.db, &shared.metrics).await;
                let _ = client.write_all(&out).await;
                ws.lost = Some(lost);
                return (client, ws);
            }
            _ = sleep_until(deadline) => {
                // Redis accepted the connection but does not answer (hung, stopped, a
                // partition that keeps the socket open): give the connection up.
                let timeout = shared.operations.reply_timeout.unwrap_or_default();
                warn!(timeout_secs = timeout.as_secs_f64(), "Redis did not answer in time; giving up the connection");
                let why = "Redis did not answer within REDCLOAK_REPLY_TIMEOUT";
                fail_all(queue, rx, &mut out, why, &shared.fallback, ws.db, &shared.metrics).await;
                let _ = client.write_all(&out).await;
                // A hung Redis is an outage even though connections still open: every
                // session (and the pooled connections) must stop waiting on it.
                shared.report_outage(why);
                ws.lost = Some(why.to_owned());
                return (client, ws);
            }
        }
    }
}

/// When the reply to the command at the front of the queue is overdue: never for commands
/// that may block (they wait as long as the client asked).
fn reply_deadline(
    front: Option<&Pending>,
    timeout: Option<Duration>,
) -> Option<tokio::time::Instant> {
    let timeout = timeout?;
    match front? {
        Pending::Upstream {
            started,
            blocking: false,
            ..
        } => Some(tokio::time::Instant::from_std(*started + timeout)),
        _ => None,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Delivers one upstream frame: a pub/sub push, or the reply the front of the queue expects.
fn deliver(
    frame: Bytes,
    queue: &mut VecDeque<Pending>,
    ws: &mut WriterState,
    shared: &Shared,
    out: &mut BytesMut,
) -> Result<(), &'static str> {
    let push = frame.first() == Some(&b'>');
    if push || (!ws.resp3 && ws.pubsub && frame.first() == Some(&b'*')) {
        match transform::decode_pubsub(&frame, &shared.key_ring(), &shared.reply_limits, out) {
            Ok(PubSubFrame::Message) => return Ok(()),
            Ok(PubSubFrame::Confirmation { remaining }) => {
                if remaining == 0 && !push {
                    ws.pubsub = false;
                }
                ws.busy
                    .subscribed
                    .store(remaining > 0, std::sync::atomic::Ordering::Relaxed);
                return Ok(());
            }
            Ok(PubSubFrame::NotPubSub) => {}
            Err(ReplyError::Undecryptable(_)) => {
                // Never passed on as if it were the message; nothing to answer either.
                shared.metrics.decrypt_failure();
                warn!("dropped a pub/sub message whose payload could not be decrypted");
                return Ok(());
            }
            Err(_) => return Err("Redis sent a malformed pub/sub message"),
        }
    }
    let is_error = matches!(frame.first(), Some(b'-' | b'!'));
    match queue.pop_front() {
        Some(Pending::Upstream {
            plan,
            name,
            args,
            shadow,
            started,
            ..
        }) => {
            if !matches!(shadow, ShadowOp::None) {
                apply_shadow(shared, ws.db, shadow, &frame);
            }
            let decoded = decode(&plan, name, args, frame, shared, out);
            let outcome = if is_error || !decoded {
                Outcome::Error
            } else {
                Outcome::Ok
            };
            shared.metrics.command(name, outcome, started.elapsed());
        }
        Some(Pending::Swallow) => {
            if is_error {
                warn!(
                    "redcloak's own command on a new connection failed: {}",
                    String::from_utf8_lossy(&frame).trim_end()
                );
            }
        }
        Some(Pending::Replace(reply)) => out.extend_from_slice(&reply),
        Some(Pending::ResetReply) => {
            ws.pubsub = false;
            ws.busy
                .subscribed
                .store(false, std::sync::atomic::Ordering::Relaxed);
            ws.db = shared.connector().default_db();
            ws.resp3 = false;
            out.extend_from_slice(&frame);
        }
        Some(Pending::Select(db)) => {
            if !is_error {
                ws.db = db;
                ws.busy.db.store(db, std::sync::atomic::Ordering::Relaxed);
            }
            out.extend_from_slice(&frame);
        }
        Some(Pending::Hello(resp3)) => {
            if let (false, Some(r)) = (is_error, resp3) {
                ws.resp3 = r;
            }
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

/// Teaches the shadow cache what a reply says about the keys of a tracked command.
fn apply_shadow(shared: &Shared, db: u32, op: ShadowOp, frame: &Bytes) {
    let fallback = &shared.fallback;
    let is_error = matches!(frame.first(), Some(b'-' | b'!'));
    let is_nil = matches!(&frame[..], b"$-1\r\n" | b"*-1\r\n" | b"_\r\n");
    let is_one = &frame[..] == b":1\r\n";
    match op {
        ShadowOp::None => {}
        ShadowOp::Set { pairs, ttl, when } => {
            let ok = match when {
                When::NotError => !is_error,
                When::Done => !is_error && !is_nil,
                When::One => is_one,
            };
            if !ok {
                return;
            }
            for (key, token) in pairs {
                let ttl = match ttl {
                    TtlChange::Clear => Ttl::Persistent,
                    TtlChange::At(at) => Ttl::At(at),
                    // The old entry was forgotten before the write: its TTL is unknown now.
                    TtlChange::Keep => Ttl::Unknown,
                };
                fallback.record(
                    db,
                    key,
                    Entry {
                        value: Some(token),
                        ttl,
                    },
                );
            }
        }
        ShadowOp::Read { keys } => {
            if is_error {
                return;
            }
            let limits = shared.reply_limits;
            match resp::Frame::parse(frame, &limits) {
                Ok(Some((resp::Frame::Array(items), _))) => {
                    for (key, item) in keys.into_iter().zip(items) {
                        match item {
                            resp::Frame::Bulk(token) => fallback.record_read(db, key, Some(token)),
                            // MGET answers nil for a key of another type too: unknown,
                            // not absent.
                            resp::Frame::NullBulk | resp::Frame::Null => fallback.forget(db, &key),
                            _ => fallback.forget(db, &key),
                        }
                    }
                }
                Ok(Some((resp::Frame::Bulk(token), _))) => {
                    if let Some(key) = keys.into_iter().next() {
                        fallback.record_read(db, key, Some(token));
                    }
                }
                Ok(Some((resp::Frame::NullBulk | resp::Frame::Null, _))) => {
                    if let Some(key) = keys.into_iter().next() {
                        fallback.record_read(db, key, None);
                    }
                }
                _ => {}
            }
        }
        ShadowOp::Absent { keys } => {
            if !is_error {
                for key in keys {
                    fallback.record(
                        db,
                        key,
                        Entry {
                            value: None,
                            ttl: Ttl::Persistent,
                        },
                    );
                }
            }
        }
        ShadowOp::Expire { key, at } => {
            if is_one {
                if at <= now_ms() {
                    fallback.record(
                        db,
                        key,
                        Entry {
                            value: None,
                            ttl: Ttl::Persistent,
                        },
                    );
                } else {
                    fallback.set_ttl(db, &key, Ttl::At(at));
                }
            }
        }
        ShadowOp::Persist { key } => {
            if is_one {
                fallback.set_ttl(db, &key, Ttl::Persistent);
            }
        }
    }
}

/// Decodes one upstream reply for the client. False when redcloak had to answer with an
/// error instead (a value that does not decrypt, a malformed reply).
fn decode(
    plan: &Plan,
    name: &'static str,
    args: Option<Vec<Bytes>>,
    frame: Bytes,
    shared: &Shared,
    out: &mut BytesMut,
) -> bool {
    match transform::decode_reply(plan, frame, &shared.key_ring(), &shared.reply_limits, out) {
        Ok(_) => true,
        Err(ReplyError::Undecryptable(problem)) => {
            shared.metrics.decrypt_failure();
            warn!(command = name, "a stored value could not be decrypted");
            let args = args.unwrap_or_default();
            resp::write_error(out, &transform::undecryptable_message(name, &args, problem));
            false
        }
        Err(e) => {
            warn!(command = name, error = %e, "malformed reply from Redis");
            resp::write_error(
                out,
                &format!("ERR redcloak: {name} got a malformed reply from Redis"),
            );
            false
        }
    }
}

/// Gives every command still owed a reply an error saying its outcome is unknown.
async fn fail_all(
    queue: &mut VecDeque<Pending>,
    rx: &mut mpsc::Receiver<Pending>,
    out: &mut BytesMut,
    why: &str,
    fallback: &crate::fallback::Fallback,
    db: u32,
    metrics: &crate::metrics::Metrics,
) {
    rx.close();
    while let Some(p) = rx.recv().await {
        queue.push_back(p);
    }
    for pending in queue.drain(..) {
        match pending {
            Pending::Local(reply) => out.extend_from_slice(&reply),
            Pending::Upstream {
                name,
                shadow,
                started,
                ..
            } => {
                // Its outcome is unknown: whatever the cache knew of its keys may be wrong.
                shadow.forget_keys(fallback, db);
                metrics.command(name, Outcome::Lost, started.elapsed());
                resp::write_error(
                    out,
                    &format!("ERR redcloak: {why}; the outcome of this {name} is unknown"),
                )
            }
            Pending::Replace(_) | Pending::ResetReply | Pending::Select(_) | Pending::Hello(_) => {
                resp::write_error(
                    out,
                    &format!("ERR redcloak: {why}; the outcome of this command is unknown"),
                )
            }
            Pending::Swallow | Pending::PubSub => {}
            Pending::Close => break,
        }
    }
}

impl ShadowOp {
    /// Forgets the keys this command may have changed.
    fn forget_keys(&self, fallback: &crate::fallback::Fallback, db: u32) {
        match self {
            ShadowOp::None | ShadowOp::Read { .. } => {}
            ShadowOp::Set { pairs, .. } => pairs.iter().for_each(|(k, _)| fallback.forget(db, k)),
            ShadowOp::Absent { keys } => keys.iter().for_each(|k| fallback.forget(db, k)),
            ShadowOp::Expire { key, .. } | ShadowOp::Persist { key } => fallback.forget(db, key),
        }
    }
}

/// The reply for a command that was taken from the client but never sent to Redis.
fn answer_unsent(p: Pending, out: &mut BytesMut) {
    match p {
        Pending::Local(reply) => out.extend_from_slice(&reply),
        Pending::Upstream { name, .. } => resp::write_error(
            out,
            &format!("ERR redcloak: the connection to Redis was lost before this {name} was sent; it did not run"),
        ),
        Pending::Replace(_) | Pending::ResetReply | Pending::Select(_) | Pending::Hello(_) => {
            resp::write_error(out, "ERR redcloak: the connection to Redis was lost before this command was sent; it did not run")
        }
        Pending::Swallow | Pending::PubSub | Pending::Close => {}
    }
}

// === degraded ===

/// Serves the client from the fallback while Redis is unreachable; returns when Redis is
/// healthy again (with unhandled bytes left in `st.buf`) or when the client is done.
async fn serve_degraded<R, W>(
    client_r: &mut R,
    client_w: &mut W,
    st: &mut State,
    shared: &Arc<Shared>,
) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    let mut shutdown = shared.shutdown_signal();
    loop {
        loop {
            if shared.health.mode() == Mode::Healthy {
                if !out.is_empty() && client_w.write_all(&out).await.is_err() {
                    return End::ClientDone;
                }
                return End::Healthy;
            }
            match st.parser.parse(&mut st.buf) {
                Ok(Some(request)) => {
                    if serve_one(shared, st, &request.args, &mut out) == Step::Close {
                        let _ = client_w.write_all(&out).await;
                        let _ = client_w.shutdown().await;
                        return End::ClientDone;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    resp::write_error(&mut out, &protocol_message(&e));
                    let _ = client_w.write_all(&out).await;
                    let _ = client_w.shutdown().await;
                    return End::ClientDone;
                }
            }
        }
        if !out.is_empty() {
            if client_w.write_all(&out).await.is_err() {
                return End::ClientDone;
            }
            out.clear();
        }
        if *shutdown.borrow() {
            let _ = client_w.shutdown().await;
            return End::ClientDone;
        }
        if let Some(e) = request_too_large(st, shared) {
            resp::write_error(&mut out, &e);
            let _ = client_w.write_all(&out).await;
            let _ = client_w.shutdown().await;
            return End::ClientDone;
        }
        st.buf.reserve(READ_CHUNK);
        tokio::select! {
            biased;
            _ = shutdown.changed() => {}
            read = client_r.read_buf(&mut st.buf) => match read {
                Ok(0) | Err(_) => return End::ClientDone,
                Ok(_) => {}
            },
            _ = idle_timer(shared.operations.idle_timeout) => {
                let _ = client_w.shutdown().await;
                return End::ClientDone;
            }
        }
    }
}

/// One command in degraded mode, with the session's transaction state.
fn serve_one(shared: &Shared, st: &mut State, args: &[Bytes], out: &mut BytesMut) -> Step {
    let name = args
        .first()
        .map(|n| n.to_ascii_uppercase())
        .unwrap_or_default();
    let refused = match &name[..] {
        // Inside a transaction the lost connection held: only its end can be answered.
        b"EXEC" if st.tx.in_multi => {
            st.tx = Tx::default();
            resp::write_error(
                out,
                "EXECABORT Transaction discarded: the connection to Redis was lost",
            );
            return Step::Continue;
        }
        b"DISCARD" if st.tx.in_multi => {
            st.tx = Tx::default();
            resp::write_simple(out, "OK");
            return Step::Continue;
        }
        b"QUIT" => false,
        _ if st.tx.in_multi => {
            st.tx.poisoned = true;
            true
        }
        // Transactions, blocking commands and subscriptions cannot be honoured locally.
        b"MULTI" | b"EXEC" | b"DISCARD" | b"WATCH" | b"UNWATCH" | b"HELLO" | b"RESET" => true,
        _ => false,
    };
    if refused {
        degraded::try_again(out, &String::from_utf8_lossy(&name));
        return Step::Continue;
    }
    degraded::serve(
        shared,
        &mut degraded::Conn {
            db: &mut st.db,
            resp3: st.resp3,
        },
        args,
        out,
    )
}

fn error_reply(msg: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(msg.len() + 3);
    resp::write_error(&mut out, msg);
    out.freeze()
}

fn protocol_message(e: &ProtocolError) -> String {
    format!("ERR {e}")
}

/// The metrics label of a refused request: its table name, or `unknown`.
fn refused_label(args: &[Bytes]) -> &'static str {
    match table::resolve(args) {
        Resolved::Known { spec, parent } => parent.map_or(spec.name, |p| p.name),
        Resolved::UnknownSubcommand(p) | Resolved::MissingSubcommand(p) => p.name,
        Resolved::Unknown => "unknown",
    }
}
