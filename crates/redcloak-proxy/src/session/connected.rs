//! The connected phase's I/O: two halves joined by the FIFO of what is owed.
//!
//! - The **reader** (the session's task) parses every complete request the client sent,
//!   plans each one, encrypts value arguments into one upstream write per batch, and queues
//!   one [`Pending`] per request *before* its bytes are written (so a reply never arrives
//!   without its entry).
//! - The **writer** (a spawned task) delivers upstream frames through [`Replies`] and writes
//!   the client's replies in one write per batch.
//!
//! When the upstream connection breaks, every command already sent gets an error saying its
//! outcome is unknown, commands taken but not yet sent get one saying they did not run, and
//! the session moves on to a new phase with the same client connection. The FIFO is bounded
//! by `max_pipeline`: a client that keeps sending without reading is slowed down.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use redcloak_commands::resp::{self, Frame, Request};
use redcloak_commands::table;
use redcloak_commands::transform;
use redcloak_crypto::{DecryptError, KeyRing};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};
use tracing::{debug, warn, Instrument};

use super::plan::{self, Answer, Ctx, ExecBatch, Forward, Local2, Step, TxRun};
use super::replies::{put_back, Env, Front, Owed, Pending, PutBack, Replies, ReplyState};
use super::state::{ConnState, Transition, TxItem};
use super::{idle_timer, End, Input, ReadError};
use crate::atomic::exchange::Side;
use crate::atomic::{rmw, scratch, Exchange, ExchangeError, LinkState};
use crate::error::DataError;
use crate::fallback::learn::{self, Learning};
use crate::health;
use crate::metrics::Outcome;
use crate::upstream::{Dedicated, LinkError, LinkRx, LinkTx, SharedRx, SharedTx, UpstreamConn};
use crate::Shared;

/// Flush client replies once this much is buffered, even mid-batch.
const WRITE_HIGH_WATER: usize = 64 * 1024;
/// Keep the upstream write buffer from pinning a huge allocation after one large command.
const OUT_KEEP: usize = 256 * 1024;
/// The longest a put-back may hold its client's replies and requests (a connection from the
/// pool, one round trip).
const PUT_BACK_LIMIT: Duration = Duration::from_secs(10);

/// What the reader and the writer of one connected phase both see.
#[derive(Debug, Default)]
struct Busy {
    /// Entries handed to the writer and not yet answered.
    owed: AtomicUsize,
    /// The connection is subscribed.
    subscribed: AtomicBool,
    /// The database Redis confirmed.
    db: AtomicU32,
    /// The session leaves this connection but not the client (an outage began elsewhere).
    leaving: AtomicBool,
    /// The client is done sending (EOF, QUIT…) and redcloak told Redis so: Redis answers what
    /// it has read and closes, so that close is expected, not a sign of trouble.
    hung_up: AtomicBool,
    /// Entries the reader handed to the writer, ever (written by the reader only).
    sent: AtomicU64,
    /// Entries the writer answered, ever (written by the writer only): when it equals
    /// `sent`, Redis has answered every command sent before.
    answered: AtomicU64,
    /// The client's protocol, as the reply side last saw it.
    resp3: AtomicBool,
    /// A SUBSCRIBE, PSUBSCRIBE or SSUBSCRIBE was sent on this connection (written by the
    /// reader only): the connection may be in pub/sub mode.
    subscribe_sent: AtomicBool,
    /// The reader sent a QUIT of its own as the last command ([`owe_last`]): Redis closes by
    /// itself once it has answered everything.
    quit_sent: AtomicBool,
    /// Put-backs started and not finished (values a destructive read took and redcloak could
    /// not decrypt, written back by a task of their own).
    put_backs: AtomicUsize,
    /// Told when `put_backs` falls to zero.
    put_backs_done: Notify,
}

impl Busy {
    /// Returns once no put-back of this session is in flight: until then the client must
    /// neither see the refusal nor have its next command reach Redis, or it could find the
    /// key without the value that is on its way back.
    async fn put_backs_done(&self) {
        loop {
            let done = self.put_backs_done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if self.put_backs.load(Ordering::Acquire) == 0 {
                return;
            }
            done.await;
        }
    }
}

/// Why the reader stopped.
#[derive(Debug, PartialEq, Eq)]
enum ReaderEnd {
    /// EOF, QUIT, protocol error: no more requests.
    ClientDone,
    /// Shutting down: no more requests are read; the ones read are answered.
    Shutdown,
    /// An outage began elsewhere: leave this connection after the replies owed.
    Outage,
    /// The writer ended (upstream lost, or the client stopped reading).
    WriterGone,
    /// Writing to Redis failed.
    UpstreamFailed,
    /// On a shared connection, the next request needs a connection of the client's own; it
    /// waits in the input until the session has one.
    Pin,
}

/// The key locks a command holds in this redcloak while it runs.
type KeyTurn = Vec<tokio::sync::OwnedMutexGuard<()>>;

/// The link a connected phase runs on.
pub(super) enum Link {
    /// A connection of the session's own.
    Dedicated(Box<UpstreamConn>),
    /// A share of a connection pipelined with other clients' commands.
    Shared(SharedTx, SharedRx),
}

/// One upstream connection's worth of the session.
pub(super) async fn serve<R, W>(
    client_r: &mut R,
    client_w: W,
    link: Link,
    input: &mut Input,
    st: &mut ConnState,
    shared: &Arc<Shared>,
) -> (Option<W>, End)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    match link {
        Link::Dedicated(conn) => {
            let (up_tx, up_rx) = Dedicated::split(*conn, shared.reply_limits, &shared.budget);
            serve_on(client_r, client_w, (up_tx, up_rx, false), input, st, shared).await
        }
        Link::Shared(up_tx, up_rx) => {
            serve_on(client_r, client_w, (up_tx, up_rx, true), input, st, shared).await
        }
    }
}

/// One phase on a link: `sharing` when other clients' commands share its connection.
async fn serve_on<R, W, T, X>(
    client_r: &mut R,
    client_w: W,
    (mut up_tx, up_rx, sharing): (T, X, bool),
    input: &mut Input,
    st: &mut ConnState,
    shared: &Arc<Shared>,
) -> (Option<W>, End)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
    T: LinkTx,
    X: LinkRx,
{
    let (tx, rx) = mpsc::channel(shared.limits.max_pipeline);
    let default_db = shared.connector().default_db();
    let busy = Arc::new(Busy::default());
    busy.db.store(st.db, Ordering::Relaxed);
    busy.subscribed.store(st.subscribed, Ordering::Relaxed);
    busy.resp3.store(st.resp3, Ordering::Relaxed);
    let (restore, own) = restore_state(st, default_db);
    let replies = Replies::new(ReplyState::new(st.db, default_db, st.resp3));
    // In the connection's span, so the writer's log events name the connection too.
    let writer = tokio::spawn(
        write_replies(rx, up_rx, client_w, shared.clone(), replies, busy.clone()).in_current_span(),
    );
    let mut leftover = Vec::new();
    let reader_end = async {
        for _ in 0..own {
            busy.sent.fetch_add(1, Ordering::Release);
            tx.send(Pending::Own)
                .await
                .map_err(|_| ReaderEnd::WriterGone)?;
        }
        if !restore.is_empty() {
            up_tx
                .send(&restore)
                .await
                .map_err(|_| ReaderEnd::UpstreamFailed)?;
        }
        let mut reader = Reader {
            shared,
            busy: &busy,
            tx: &tx,
            sharing,
            ctx: Ctx {
                default_db,
                up: true,
                ring_keys: 1,
                format: redcloak_crypto::ValueFormat::Fernet,
            },
        };
        reader
            .run(client_r, &mut up_tx, input, st, &mut leftover)
            .await
    }
    .await
    .unwrap_or_else(|e| e);
    drop(tx);
    if matches!(reader_end, ReaderEnd::ClientDone | ReaderEnd::Outage) {
        // The client is done sending (or the session leaves Redis for the fallback): tell
        // Redis. It answers what it has read and then closes, which also ends a command the
        // client left blocked (BLPOP …). At shutdown the connection stays open instead, so
        // that a blocked command still gets its reply within the grace period.
        if reader_end == ReaderEnd::ClientDone {
            // (Leaving for the fallback is not a hang-up: what is owed still gets its reply.)
            busy.hung_up.store(true, Ordering::Release);
        }
        // After a QUIT, ending the stream could make Redis drop what it has not written yet
        // (it frees a client at EOF): Redis closes by itself after answering the QUIT.
        if !busy.quit_sent.load(Ordering::Acquire) {
            up_tx.finish().await;
        }
    }
    let Ok((mut client_w, state, lost)) = writer.await else {
        // The writer task failed (it cannot on client input): the client's write half went
        // with it, so the session ends.
        return (None, End::ClientDone);
    };
    st.db = state.db;
    st.resp3 = state.resp3;
    st.subscribed = state.subscribed();
    if reader_end == ReaderEnd::Pin {
        // Everything owed on the shared connection is answered; nothing is lost.
        return (Some(client_w), End::Pinned);
    }
    let Some(lost) = lost else {
        return (Some(client_w), End::ClientDone);
    };
    if matches!(reader_end, ReaderEnd::ClientDone | ReaderEnd::Shutdown) {
        return (Some(client_w), End::ClientDone);
    }
    let end = after_loss(&mut client_w, lost, leftover, &state, st).await;
    (Some(client_w), end)
}

/// The commands that bring a new upstream connection to the state the client believes it
/// is in, and how many replies they owe redcloak.
fn restore_state(st: &ConnState, default_db: u32) -> (BytesMut, usize) {
    let mut restore = BytesMut::new();
    let mut own = 0;
    if st.db != default_db {
        write_args(
            &[
                Bytes::from_static(b"SELECT"),
                Bytes::from(st.db.to_string()),
            ],
            &mut restore,
        );
        own += 1;
    }
    if st.resp3 {
        write_args(
            &[Bytes::from_static(b"HELLO"), Bytes::from_static(b"3")],
            &mut restore,
        );
        own += 1;
    }
    (restore, own)
}

/// The upstream connection was lost while the client still talks: answers what never left,
/// then says whether the session reconnects or ends.
async fn after_loss<W: AsyncWrite + Unpin>(
    client_w: &mut W,
    lost: impl std::fmt::Display,
    leftover: Vec<Pending>,
    state: &ReplyState,
    st: &mut ConnState,
) -> End {
    // Commands the reader had taken but not handed to the writer were never sent: they did
    // not run.
    if !leftover.is_empty() {
        let mut out = BytesMut::new();
        for p in leftover {
            answer_unsent(p, state, &mut out);
        }
        if client_w.write_all(&out).await.is_err() {
            return End::ClientDone;
        }
    }
    debug!(reason = %lost, "upstream connection lost; reconnecting");
    if st.subscribed {
        // Subscriptions live on the lost connection; the client library resubscribes when it
        // reconnects, which is more reliable than redcloak replaying them behind its back.
        let _ = client_w.shutdown().await;
        return End::ClientDone;
    }
    st.lose_connection();
    End::UpstreamLost
}

/// The reader half's context.
struct Reader<'a> {
    shared: &'a Arc<Shared>,
    busy: &'a Busy,
    tx: &'a mpsc::Sender<Pending>,
    /// The link's connection is shared with other clients.
    sharing: bool,
    ctx: Ctx,
}

/// One batch of carried-out plans: what goes to Redis, and what the client is owed.
#[derive(Default)]
struct Batch {
    out: BytesMut,
    owed: Vec<Pending>,
    /// `out` holds redcloak's AUTH (after RESET): send it alone and wipe it.
    secret: bool,
    closing: bool,
    /// What redcloak carries out itself (an emulated command, a transaction containing
    /// one), after everything before it is sent.
    atomic: Option<Atomic>,
    /// The connection may get frames no command asked for (a SUBSCRIBE was sent on it): a
    /// local answer goes out as a PING whose reply it replaces ([`owe_local`]).
    barrier: bool,
    /// `out` ends with a QUIT ([`owe_last`]).
    quit_sent: bool,
    /// A request that waits until redcloak knows whether the connection is in RESP2 pub/sub
    /// mode (see [`Reader::pubsub_gate`]).
    held: Option<Request>,
    /// A SELECT was sent: the requests after it wait for Redis's answer, since the database
    /// it names is where their values are bound (a refused SELECT leaves the connection
    /// where it was).
    confirm_db: bool,
    /// The next request needs a connection of the client's own (it waits in the input).
    pin: bool,
    /// A destructive read was sent (a pop, GETDEL, GETSET…, or an EXEC holding one): the
    /// requests after it wait for its reply and for the put-back of a value that does not
    /// decrypt ([`Reader::until_answered`]), so that the client's own later commands find the key
    /// as if the refused read had never run.
    popped: bool,
}

/// Work redcloak carries out itself, atomically.
enum Atomic {
    Emulate(Box<Forward>),
    Transaction(Box<TxRun>),
    Script(Box<Forward>),
}

impl Reader<'_> {
    /// Returns when the client is done or the upstream side has gone. Entries it could not
    /// hand to the writer are left in `leftover`.
    async fn run<R, T>(
        &mut self,
        client: &mut R,
        upstream: &mut T,
        input: &mut Input,
        st: &mut ConnState,
        leftover: &mut Vec<Pending>,
    ) -> Result<ReaderEnd, ReaderEnd>
    where
        R: AsyncRead + Unpin,
        T: LinkTx,
    {
        let mut batch = Batch {
            out: BytesMut::with_capacity(super::READ_CHUNK),
            ..Batch::default()
        };
        let mut shutdown = self.shared.shutdown_signal();
        let mut outages = self.shared.health.outages();
        loop {
            batch.barrier = self.busy.subscribe_sent.load(Ordering::Relaxed);
            if self.tx.is_closed() {
                // The upstream connection is gone: leave the unread requests to the next
                // phase (a new connection, or the fallback) rather than failing them.
                return Err(ReaderEnd::WriterGone);
            }
            if batch.popped && input.has_request() {
                if !self
                    .until_answered(upstream, input, client, &mut batch)
                    .await?
                {
                    return Ok(ReaderEnd::ClientDone);
                }
                batch.popped = false;
            }
            self.fill(input, st, &mut batch);
            self.flush(upstream, &mut batch, leftover).await?;
            if batch.closing {
                if batch.quit_sent {
                    self.busy.quit_sent.store(true, Ordering::Release);
                }
                return Ok(ReaderEnd::ClientDone);
            }
            if batch.pin {
                self.busy.leaving.store(true, Ordering::Release);
                return Ok(ReaderEnd::Pin);
            }
            if batch.secret {
                batch.secret = false;
                continue; // requests after the RESET may already be buffered
            }
            if std::mem::take(&mut batch.confirm_db) {
                if !self
                    .until_answered(upstream, input, client, &mut batch)
                    .await?
                {
                    return Ok(ReaderEnd::ClientDone);
                }
                st.db = self.busy.db.load(Ordering::Relaxed);
                continue; // requests after it may already be buffered
            }
            if batch.popped && input.has_request() {
                continue; // the requests after it wait at the top of the loop
            }
            if batch.held.is_some() || batch.atomic.is_some() {
                // Both start once Redis has answered what was sent before: wait for that here,
                // where a client that hangs up meanwhile is seen (it may have left a command
                // blocked in Redis, `WAIT 1 0`, that only its going away ends).
                if !self
                    .until_answered(upstream, input, client, &mut batch)
                    .await?
                {
                    return Ok(ReaderEnd::ClientDone);
                }
            }
            if let Some(request) = batch.held.take() {
                self.pubsub_gate(request, st, upstream, &mut batch).await?;
                continue; // requests after it may already be buffered
            }
            if let Some(work) = batch.atomic.take() {
                let answer = match work {
                    Atomic::Emulate(f) => self.emulate(*f, st, upstream).await?,
                    Atomic::Transaction(run) => self.transaction(*run, st, upstream).await?,
                    Atomic::Script(f) => self.script(*f, st, upstream).await?,
                };
                batch.owed.push(Pending::Local(Local2 {
                    answer,
                    pubsub_name: None,
                }));
                continue; // requests after it may already be buffered
            }
            if *shutdown.borrow() {
                // Shutting down: everything already read has been handled; read no more.
                return Ok(ReaderEnd::Shutdown);
            }
            if let Err(e) = input.check_size(self.shared) {
                close_with(&mut batch, e);
                continue;
            }
            tokio::select! {
                biased;
                _ = self.tx.closed() => return Err(ReaderEnd::WriterGone),
                _ = shutdown.changed() => {}
                _ = outages.changed() => {
                    self.busy.leaving.store(true, Ordering::Release);
                    return Ok(ReaderEnd::Outage);
                }
                read = input.read(client) => match read {
                    // The writer still answers what was read.
                    Ok(0) | Err(ReadError::Gone) => return Ok(ReaderEnd::ClientDone),
                    Ok(_) => {}
                    Err(ReadError::Budget(e)) => close_with(&mut batch, e),
                },
                _ = idle_timer(self.shared.operations.idle_timeout) => {
                    if self.idle() {
                        debug!("closing an idle client (REDCLOAK_IDLE_TIMEOUT)");
                        return Ok(ReaderEnd::ClientDone);
                    }
                }
            }
        }
    }

    /// Plans and carries out every complete request read so far (up to a QUIT, a protocol
    /// error, or a re-authentication that must be sent alone).
    fn fill(&mut self, input: &mut Input, st: &mut ConnState, batch: &mut Batch) {
        let ring = self.shared.key_ring();
        // Plans and encryptions of this batch agree on the ring (rotation rewrites).
        self.ctx.ring_keys = ring.len();
        self.ctx.format = ring.format();
        while !batch.closing
            && !batch.secret
            && batch.atomic.is_none()
            && !batch.confirm_db
            && !batch.pin
            && !batch.popped
            && batch.held.is_none()
        {
            match input.next() {
                Ok(Some(request)) if self.must_hold(&request) => batch.held = Some(request),
                Ok(Some(request)) if self.sharing => {
                    match plan::needs_own_connection(&request.args, st, &self.ctx) {
                        Some(why) => {
                            self.shared.metrics.session_pinned(why);
                            input.put_back(request);
                            batch.pin = true;
                        }
                        None => self.carry_out(request, st, &ring, batch),
                    }
                }
                Ok(Some(request)) => self.carry_out(request, st, &ring, batch),
                Ok(None) => break,
                Err(e) => close_with(batch, e),
            }
        }
    }

    /// Hands the batch's entries to the writer, then sends its bytes to Redis.
    async fn flush<T: LinkTx>(
        &mut self,
        upstream: &mut T,
        batch: &mut Batch,
        leftover: &mut Vec<Pending>,
    ) -> Result<(), ReaderEnd> {
        self.busy
            .owed
            .fetch_add(batch.owed.len(), Ordering::Relaxed);
        // Every entry counts: `answered == sent` must mean that Redis answered everything
        // sent before (see `SessionLink::sync`).
        self.busy
            .sent
            .fetch_add(batch.owed.len() as u64, Ordering::Release);
        let mut owed = batch.owed.drain(..);
        for pending in owed.by_ref() {
            if let Err(mpsc::error::SendError(p)) = self.tx.send(pending).await {
                // The writer is gone; these were never sent to Redis.
                leftover.push(p);
                leftover.extend(owed);
                return Err(ReaderEnd::WriterGone);
            }
        }
        drop(owed);
        if batch.out.is_empty() {
            return Ok(());
        }
        let written = upstream.send(&batch.out).await;
        if batch.secret {
            // The batch re-authenticated (RESET): wipe the password from the buffer.
            batch.out.iter_mut().for_each(|b| *b = 0);
        }
        batch.out.clear();
        if batch.out.capacity() > OUT_KEEP {
            batch.out = BytesMut::with_capacity(super::READ_CHUNK);
        }
        written.map_err(|_| ReaderEnd::UpstreamFailed)
    }

    /// Whether the client is idle in Redis's sense: nothing owed, not subscribed.
    fn idle(&self) -> bool {
        self.busy.owed.load(Ordering::Relaxed) == 0 && !self.busy.subscribed.load(Ordering::Relaxed)
    }

    /// Plans one request and carries the plan out into the batch.
    fn carry_out(
        &mut self,
        request: Request,
        st: &mut ConnState,
        ring: &KeyRing,
        batch: &mut Batch,
    ) {
        let planned = plan::plan(request.args, st, &self.ctx);
        if let Step::Forward(f) = &planned.step {
            if matches!(f.spec.effect, table::Effect::Subscribe(_)) {
                self.busy.subscribe_sent.store(true, Ordering::Relaxed);
                batch.barrier = true;
            }
            if matches!(f.on_reply, plan::OnReply::Select(_)) {
                batch.confirm_db = true;
            }
        }
        let metrics = &self.shared.metrics;
        match planned.step {
            Step::Answer(local) => {
                if let Answer::Error(e) = &local.answer {
                    metrics.error(e.source().as_str());
                }
                let outcome = match local.answer {
                    Answer::Error(DataError::Refused(_)) => Outcome::Refused,
                    Answer::Error(_) => Outcome::Error,
                    _ => Outcome::Ok,
                };
                metrics.command(planned.label, outcome, Duration::ZERO);
                owe_local(batch, local);
                st.apply(planned.then);
            }
            Step::Close(local) => {
                metrics.command(planned.label, Outcome::Ok, Duration::ZERO);
                owe_last(batch, local);
                batch.owed.push(Pending::Close);
                batch.closing = true;
                st.apply(planned.then);
            }
            Step::Emulate(f) => {
                st.apply(planned.then);
                batch.atomic = Some(Atomic::Emulate(f));
            }
            Step::Transaction(run) => {
                st.apply(planned.then);
                batch.atomic = Some(Atomic::Transaction(run));
            }
            Step::Script(f) => {
                st.apply(planned.then);
                batch.atomic = Some(Atomic::Script(f));
            }
            Step::Exec(exec) => {
                self.exec(*exec, st.db, ring, batch);
                st.apply(planned.then);
            }
            Step::Forward(f) => match self.encode(*f, st, ring, batch) {
                Ok(()) => st.apply(planned.then),
                Err(text) => {
                    // The row's options could not be read exactly: refused, never guessed.
                    metrics.command(planned.label, Outcome::Refused, Duration::ZERO);
                    owe_local(
                        batch,
                        Local2::plain(Answer::Error(DataError::Refused(text))),
                    );
                    st.apply(Transition::Poison);
                }
            },
        }
    }

    /// Runs an emulated command: on this connection, in order with the pipeline — or, when
    /// the client holds a WATCH that redcloak's own EXEC would clear, on a connection of its
    /// own once everything before it has been answered.
    async fn emulate<T: LinkTx>(
        &mut self,
        f: Forward,
        st: &ConnState,
        upstream: &mut T,
    ) -> Result<Answer, ReaderEnd> {
        let shared = self.shared;
        let started = Instant::now();
        let ring = shared.key_ring();
        let em = rmw::Emulation {
            name: f.name,
            args: &f.args,
            ring: &ring,
            limits: &shared.reply_limits,
            db: st.db,
        };
        let (_turn, mut link) = match self.turn(&f, st, upstream, started).await? {
            Ok(taken) => taken,
            Err(answer) => return Ok(answer),
        };
        let result = if st.watching {
            match self.side(&mut link, st, false).await {
                Ok(mut side) => {
                    let result = rmw::run(&mut side, &em, &shared.metrics).await;
                    if result.is_ok() {
                        shared.sides.give(side).await;
                    }
                    result
                }
                Err(e) => Err(rmw::Failed::Exchange(e)),
            }
        } else {
            rmw::run(&mut link, &em, &shared.metrics).await
        };
        match result {
            Ok(frame) => Ok(self.computed(f.name, frame, started)),
            Err(rmw::Failed::Exchange(ExchangeError::PubSub)) => {
                shared
                    .metrics
                    .command(f.name, Outcome::Error, started.elapsed());
                Ok(Answer::Error(DataError::Refused(format!(
                    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    f.name.to_ascii_lowercase()
                ))))
            }
            Err(rmw::Failed::Exchange(e)) => {
                shared
                    .metrics
                    .command(f.name, Outcome::Lost, started.elapsed());
                if self.tx.is_closed() {
                    return Err(ReaderEnd::WriterGone);
                }
                Ok(Answer::Error(DataError::Lost {
                    command: f.name,
                    sent: true,
                    why: match e {
                        ExchangeError::Lost => "the connection to Redis was lost",
                        ExchangeError::Malformed | ExchangeError::PubSub => {
                            "Redis sent a reply redcloak cannot parse"
                        }
                    },
                }))
            }
        }
    }

    /// The answer redcloak computed for a command it carried out itself, counted.
    fn computed(&self, name: &'static str, frame: Frame, started: Instant) -> Answer {
        let outcome = if matches!(frame, Frame::Error(_)) {
            Outcome::Error
        } else {
            Outcome::Ok
        };
        self.shared
            .metrics
            .command(name, outcome, started.elapsed());
        Answer::Frame(frame)
    }

    /// Waits until Redis has answered everything the client sent (a PING through the
    /// client's connection, only when something is still owed) and every put-back those
    /// replies started is done. Used before the requests after a destructive read (they must
    /// find the key as if a refused read had never run) and after a SELECT (they are bound to
    /// the database Redis confirmed). `false`: the client hung up meanwhile ([`reading_while`]).
    async fn until_answered<R, T>(
        &mut self,
        upstream: &mut T,
        input: &mut Input,
        client: &mut R,
        batch: &mut Batch,
    ) -> Result<bool, ReaderEnd>
    where
        R: AsyncRead + Unpin,
        T: LinkTx,
    {
        let (tx, busy) = (self.tx, self.busy);
        let settled = async move {
            let mut link = SessionLink {
                tx,
                upstream,
                busy,
                state: LinkState::default(),
            };
            // In RESP2 pub/sub mode the PING is answered too (as a pub/sub frame).
            match link.sync().await {
                Ok(()) | Err(ExchangeError::PubSub) => {}
                Err(_) if tx.is_closed() => return Err(ReaderEnd::WriterGone),
                Err(_) => return Err(ReaderEnd::UpstreamFailed),
            }
            busy.put_backs_done().await;
            Ok(())
        };
        Ok(reading_while(settled, input, client, batch)
            .await?
            .is_some())
    }

    /// Whether `request` must wait for [`Reader::pubsub_gate`]: the connection may be in
    /// pub/sub mode (a SUBSCRIBE was sent on it) and Redis would refuse the command there.
    fn must_hold(&self, request: &Request) -> bool {
        if !self.busy.subscribe_sent.load(Ordering::Relaxed) {
            return false;
        }
        match table::resolve(&request.args) {
            table::Resolved::Known { spec, .. } => {
                spec.arity_ok(request.args.len()) && !table::allowed_in_pubsub(spec)
            }
            // Unknown commands and arity errors come before the pub/sub check in Redis too.
            _ => false,
        }
    }

    /// In RESP2 pub/sub mode Redis refuses every command but the subscribe family, PING,
    /// QUIT and RESET before it looks at anything else, so redcloak must not answer, check or
    /// queue such a command first (MULTI, HELLO, argument checks, refusals, emulated
    /// commands). Whether the connection is in that mode is known once Redis has answered
    /// everything before: then the command is refused with Redis's words, or planned as usual.
    async fn pubsub_gate<T: LinkTx>(
        &mut self,
        request: Request,
        st: &mut ConnState,
        upstream: &mut T,
        batch: &mut Batch,
    ) -> Result<(), ReaderEnd> {
        let pubsub_resp2 = if self.busy.answered.load(Ordering::Acquire)
            == self.busy.sent.load(Ordering::Acquire)
        {
            self.busy.subscribed.load(Ordering::Relaxed) && !self.busy.resp3.load(Ordering::Relaxed)
        } else {
            let mut link = SessionLink {
                tx: self.tx,
                upstream,
                busy: self.busy,
                state: LinkState::default(),
            };
            match link.call(vec![vec![Bytes::from_static(b"PING")]]).await {
                Ok(_) => false,
                Err(ExchangeError::PubSub) => true,
                Err(_) if self.tx.is_closed() => return Err(ReaderEnd::WriterGone),
                Err(_) => return Err(ReaderEnd::UpstreamFailed),
            }
        };
        let ring = self.shared.key_ring();
        if !pubsub_resp2 {
            self.carry_out(request, st, &ring, batch);
            return Ok(());
        }
        let table::Resolved::Known { spec, parent } = table::resolve(&request.args) else {
            return Ok(()); // (only known commands are held)
        };
        let (name, label) = match parent {
            Some(p) => (format!("{}|{}", p.name, spec.name), p.name),
            None => (spec.name.to_owned(), spec.name),
        };
        self.shared
            .metrics
            .command(label, Outcome::Error, Duration::ZERO);
        owe_local(
            batch,
            Local2::plain(Answer::Error(DataError::Refused(table::pubsub_refusal(
                spec, &name,
            )))),
        );
        if st.tx.in_multi {
            // Refused while queueing: EXEC aborts, as in Redis.
            st.apply(Transition::Poison);
        }
        Ok(())
    }

    /// What a command redcloak carries out itself (emulated, script) starts with: the
    /// client's connection as a link, once Redis has answered everything the client sent
    /// before (or Redis's refusal, in pub/sub mode), then its keys' turn in this redcloak
    /// (clients of one redcloak take turns on a key before they WATCH it).
    ///
    /// The turn is taken only after the earlier replies are in: a command of the client's
    /// own still waiting in Redis (a pipelined `BLPOP k 0`) would otherwise hold the keys'
    /// turn — and every other client's emulated commands and scripts on those keys — for as
    /// long as it blocks.
    async fn turn<'l, T: LinkTx>(
        &'l self,
        f: &Forward,
        st: &ConnState,
        upstream: &'l mut T,
        started: Instant,
    ) -> Result<Result<(KeyTurn, SessionLink<'l, T>), Answer>, ReaderEnd> {
        let mut link = SessionLink {
            tx: self.tx,
            upstream,
            busy: self.busy,
            state: LinkState::default(),
        };
        if let Some(answer) = self.settle(&mut link, f, started).await? {
            return Ok(Err(answer));
        }
        let keys = f.keys.positions().map(|i| &f.args[i][..]);
        let turn = self.shared.key_locks.lock(st.db, keys).await;
        Ok(Ok((turn, link)))
    }

    /// Waits until Redis has answered everything the client sent before a command redcloak
    /// carries out itself (emulated, script, function): a PING on the client's connection,
    /// only when something is still owed or the connection may be subscribed (a SUBSCRIBE
    /// was sent on it). Its answer then is Redis's refusal in RESP2 pub/sub mode (Redis
    /// refuses such a command before it reads any argument, so redcloak must not check
    /// arguments or run anything first), `None` otherwise.
    async fn settle<T: LinkTx>(
        &self,
        link: &mut SessionLink<'_, T>,
        f: &Forward,
        started: Instant,
    ) -> Result<Option<Answer>, ReaderEnd> {
        if !self.busy.subscribe_sent.load(Ordering::Relaxed)
            && self.busy.answered.load(Ordering::Acquire) == self.busy.sent.load(Ordering::Acquire)
        {
            return Ok(None);
        }
        match link.call(vec![vec![Bytes::from_static(b"PING")]]).await {
            Ok(_) => Ok(None),
            Err(ExchangeError::PubSub) => {
                self.shared
                    .metrics
                    .command(f.name, Outcome::Error, started.elapsed());
                let name = match f.parent {
                    Some(p) => format!("{}|{}", p.name, f.spec.name),
                    None => f.spec.name.to_owned(),
                };
                Ok(Some(Answer::Error(DataError::Refused(format!(
                    "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                    name.to_ascii_lowercase()
                )))))
            }
            Err(_) if self.tx.is_closed() => Err(ReaderEnd::WriterGone),
            Err(_) => {
                self.shared
                    .metrics
                    .command(f.name, Outcome::Lost, started.elapsed());
                Ok(Some(Answer::Error(DataError::Lost {
                    command: f.name,
                    sent: true,
                    why: "the connection to Redis was lost",
                })))
            }
        }
    }

    /// A connection of redcloak's own in the client's database, once Redis has answered every
    /// command the client sent before (a PING on the client's connection, only when something
    /// is still owed) — in the client's protocol, or in RESP2 when `resp2` (a script's
    /// protocol: switching to the client's first would cost two round trips per script).
    async fn side<T: LinkTx>(
        &self,
        link: &mut SessionLink<'_, T>,
        st: &ConnState,
        resp2: bool,
    ) -> Result<Side, ExchangeError> {
        link.sync().await?;
        let mut client = link.state;
        if resp2 {
            client.resp3 = false;
        }
        // The database Redis confirmed (a SELECT Redis refused changed nothing).
        let _ = st;
        let db = self.busy.db.load(Ordering::Relaxed);
        let mut side = self.shared.sides.take(self.shared, db, client).await?;
        if !side.switch_protocol(client.resp3).await? {
            return Err(ExchangeError::Malformed);
        }
        Ok(side)
    }

    /// A script or function command: on a connection of redcloak's own (the script picks its
    /// protocol, and the client's WATCH is not disturbed), after every command the client sent
    /// before it.
    async fn script<T: LinkTx>(
        &mut self,
        f: Forward,
        st: &ConnState,
        upstream: &mut T,
    ) -> Result<Answer, ReaderEnd> {
        let shared = self.shared;
        let started = Instant::now();
        let table::Action::Script(op) = f.spec.action else {
            unreachable!("only script commands are planned as scripts")
        };
        let ring = shared.key_ring();
        let (_turn, mut link) = match self.turn(&f, st, upstream, started).await? {
            Ok(taken) => taken,
            Err(answer) => return Ok(answer),
        };
        let result = match self.side(&mut link, st, true).await {
            Ok(mut side) => {
                let client_resp3 = link.state.resp3;
                // The script's protocol is its own: the connection starts in RESP2, as
                // scripts do.
                let result = match side.switch_protocol(false).await {
                    Ok(_) => {
                        let ctx = crate::scripts::Ctx {
                            ring: &ring,
                            limits: &shared.reply_limits,
                            metrics: &shared.metrics,
                            client_resp3,
                            db: self.busy.db.load(Ordering::Relaxed),
                            functions_db: shared.connector().default_db(),
                        };
                        crate::scripts::run(&shared.scripts, op, &f.args, &mut side, ctx).await
                    }
                    Err(e) => Err(e),
                };
                if result.is_ok() {
                    shared.sides.give(side).await;
                }
                result
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(frame) => Ok(self.computed(f.name, frame, started)),
            Err(_) if self.tx.is_closed() => Err(ReaderEnd::WriterGone),
            Err(e) => {
                shared
                    .metrics
                    .command(f.name, Outcome::Lost, started.elapsed());
                Ok(Answer::Error(DataError::Lost {
                    command: f.name,
                    sent: true,
                    why: match e {
                        ExchangeError::Lost => "the connection to Redis was lost",
                        _ => "Redis sent a reply redcloak cannot parse",
                    },
                }))
            }
        }
    }

    /// A queued transaction for Redis: MULTI, the commands (values encrypted) and EXEC in one
    /// write; redcloak already answered +QUEUED, so MULTI's and the commands' own replies are
    /// consumed, and EXEC's is decoded by the queued commands' rules.
    fn exec(&mut self, exec: ExecBatch, db: u32, ring: &KeyRing, batch: &mut Batch) {
        let started = Instant::now();
        let mut out = BytesMut::new();
        write_args(&[Bytes::from_static(b"MULTI")], &mut out);
        let mut sent = 1;
        // Queued destructive reads: what EXEC's reply holds for them is put back if it does
        // not decrypt (by index in the queue).
        let mut pops = Vec::new();
        for (index, item) in exec.items.iter().enumerate() {
            let TxItem::Command(args) = item else {
                continue;
            };
            let table::Resolved::Known { spec, parent } = table::resolve(args) else {
                continue; // refused when it was queued
            };
            let mut tokens = Vec::new();
            let keep = spec.pops.overwrites(args).then_some(&mut tokens);
            let encoded = transform::encode_queued_request(spec, args, db, ring, &mut out, keep);
            if spec.pops != table::Pops::None {
                let keys = table::keys_of(spec, parent, args);
                pops.push((index, put_back(spec.pops, args, &keys, &tokens)));
            }
            match encoded {
                Ok(n) if n > 0 => self.shared.metrics.encrypted(n as u64),
                Ok(_) => {}
                Err(_) => {
                    // Nothing is found this late that was not refused when it was queued (a
                    // payload RESTORE cannot open is replaced): as if it had been.
                    owe_local(
                        batch,
                        Local2::plain(Answer::Error(DataError::Refused(
                            "EXECABORT Transaction discarded because of previous errors.".into(),
                        ))),
                    );
                    return;
                }
            }
            sent += 1;
        }
        write_args(&[Bytes::from_static(b"EXEC")], &mut out);
        batch.popped |= !pops.is_empty();
        batch.out.extend_from_slice(&out);
        batch.owed.extend((0..sent).map(|_| Pending::Own));
        batch.owed.push(Pending::Upstream(Box::new(Owed {
            name: "EXEC",
            expect: plan::Expect::One,
            plan: exec.plan,
            replace: None,
            on_reply: plan::OnReply::None,
            learning: Learning::None,
            keys: Vec::new(),
            put_back: if pops.is_empty() {
                PutBack::None
            } else {
                PutBack::Exec(pops)
            },
            started,
            blocking: false,
        })));
    }

    /// A transaction redcloak carries out itself (it contains emulated commands), on this
    /// connection — which also holds the client's WATCH, so EXEC honours it.
    async fn transaction<T: LinkTx>(
        &mut self,
        run: TxRun,
        st: &ConnState,
        upstream: &mut T,
    ) -> Result<Answer, ReaderEnd> {
        let shared = self.shared;
        let started = Instant::now();
        let ring = shared.key_ring();
        let keys: Vec<Bytes> = run
            .items
            .iter()
            .filter_map(|item| match item {
                TxItem::Command(args) => Some(args),
                TxItem::Local(_) => None,
            })
            .flat_map(|args| match table::resolve(args) {
                table::Resolved::Known { spec, parent } => {
                    let keys = table::keys_of(spec, parent, args);
                    keys.positions().map(|i| args[i].clone()).collect()
                }
                _ => Vec::new(),
            })
            .collect();
        let mut link = SessionLink {
            tx: self.tx,
            upstream,
            busy: self.busy,
            state: LinkState {
                // The protocol the reply side last saw, until a reply says otherwise.
                resp3: self.busy.resp3.load(Ordering::Relaxed),
                ..LinkState::default()
            },
        };
        let ctx = scratch::Ctx {
            ring: &ring,
            limits: &shared.reply_limits,
            db: st.db,
        };
        // The transaction's replies (a script's, EXEC's nil) are in the client's protocol,
        // which must be known before redcloak's first command on the connection. The keys'
        // turn is taken after that wait, not before (see `turn`).
        let result = match link.sync().await {
            Ok(()) => {
                let _turn = shared
                    .key_locks
                    .lock(st.db, keys.iter().map(|k| &k[..]))
                    .await;
                scratch::transaction(
                    &mut link,
                    &run.items,
                    ctx,
                    run.watching,
                    &shared.metrics,
                    &shared.scripts,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let outcome = match &result {
            Ok(_) => Outcome::Ok,
            Err(_) => Outcome::Lost,
        };
        shared.metrics.command("EXEC", outcome, started.elapsed());
        match result {
            Ok(frame) => Ok(Answer::Frame(frame)),
            Err(_) if self.tx.is_closed() => Err(ReaderEnd::WriterGone),
            Err(e) => Ok(Answer::Error(DataError::Lost {
                command: "EXEC",
                sent: true,
                why: match e {
                    ExchangeError::Lost => "the connection to Redis was lost",
                    _ => "Redis sent a reply redcloak cannot parse",
                },
            })),
        }
    }

    /// Encodes a forwarded request into the batch and queues what it is owed.
    fn encode(
        &mut self,
        f: Forward,
        st: &ConnState,
        ring: &KeyRing,
        batch: &mut Batch,
    ) -> Result<(), String> {
        let shared = self.shared;
        let mut tokens = Vec::new();
        if f.encrypt {
            let keep = (f.learn || f.spec.pops.overwrites(&f.args)) && f.spec.values.any();
            let n = transform::encode_request_keeping(
                f.spec,
                &f.args,
                st.db,
                ring,
                &mut batch.out,
                keep.then_some(&mut tokens),
            )?;
            if n > 0 {
                shared.metrics.encrypted(n as u64);
            }
        } else {
            write_args(&f.args, &mut batch.out);
        }
        let put_back = put_back(f.spec.pops, &f.args, &f.keys, &tokens);
        batch.popped |= !matches!(put_back, PutBack::None);
        let learning = if f.learn {
            learn::prepare(f.spec.cache, &f.args, tokens)
        } else {
            Learning::None
        };
        // The databases the reader may be in: the one it assumes, and the one Redis confirmed.
        let confirmed = self.busy.db.load(Ordering::Relaxed);
        let dbs: &[u32] = if confirmed == st.db {
            &[confirmed][..]
        } else {
            &[st.db, confirmed][..]
        };
        let dbs = dbs.to_vec();
        learn::before_send(
            &shared.fallback,
            &dbs,
            f.spec.cache,
            &f.keys,
            &f.args,
            Some(&learning),
        );
        let holds_values = !matches!(f.plan, redcloak_commands::transform::Plan::Shape(s) if *s == table::Shape::Pass);
        let keys = if holds_values {
            f.keys.positions().map(|i| f.args[i].clone()).collect()
        } else {
            Vec::new()
        };
        batch.owed.push(Pending::Upstream(Box::new(Owed {
            name: f.name,
            expect: f.expect,
            plan: f.plan,
            replace: f.replace,
            on_reply: f.on_reply,
            learning,
            keys,
            put_back,
            started: Instant::now(),
            blocking: f.keys.blocking,
        })));
        if f.reauth {
            // RESET logs the connection out of Redis: authenticate it again, silently.
            for _ in 0..shared.connector().write_hello(&mut batch.out) {
                batch.owed.push(Pending::Own);
            }
            batch.secret = true;
        }
        Ok(())
    }
}

/// An exchange on the client's own connection, in order with its pipeline: redcloak's
/// commands go out through the reader, their replies are captured by the writer.
struct SessionLink<'a, T> {
    tx: &'a mpsc::Sender<Pending>,
    upstream: &'a mut T,
    busy: &'a Busy,
    state: LinkState,
}

impl<T: LinkTx> SessionLink<'_, T> {
    /// Brings `state` (the client's protocol) up to date before redcloak's first command on
    /// the connection: a PING when Redis still owes replies to commands sent before (one of
    /// them may be a HELLO), else what the reply side last saw.
    async fn sync(&mut self) -> Result<(), ExchangeError> {
        if self.busy.answered.load(Ordering::Acquire) != self.busy.sent.load(Ordering::Acquire) {
            self.call(vec![vec![Bytes::from_static(b"PING")]]).await?;
        } else {
            self.state.resp3 = self.busy.resp3.load(Ordering::Relaxed);
        }
        Ok(())
    }
}

impl<T: LinkTx> Exchange for SessionLink<'_, T> {
    async fn call(&mut self, commands: Vec<Vec<Bytes>>) -> Result<Vec<Bytes>, ExchangeError> {
        let mut out = BytesMut::new();
        let mut waiting = Vec::with_capacity(commands.len());
        for c in &commands {
            write_args(c, &mut out);
            let (to, from) = tokio::sync::oneshot::channel();
            self.busy.owed.fetch_add(1, Ordering::Relaxed);
            self.busy.sent.fetch_add(1, Ordering::Release);
            self.tx
                .send(Pending::Capture(to))
                .await
                .map_err(|_| ExchangeError::Lost)?;
            waiting.push(from);
        }
        self.upstream
            .send(&out)
            .await
            .map_err(|_| ExchangeError::Lost)?;
        let mut replies = Vec::with_capacity(waiting.len());
        for from in waiting {
            let captured = from.await.map_err(|_| ExchangeError::Lost)?;
            self.state = captured.state;
            replies.push(captured.frame);
        }
        if self.state.pubsub {
            // RESP2 pub/sub mode: Redis refused redcloak's commands as it refuses the client's.
            return Err(ExchangeError::PubSub);
        }
        Ok(replies)
    }

    fn state(&self) -> LinkState {
        self.state
    }
}

/// Waits for `settled` (Redis answering what the client sent before) while still reading the
/// client, so that a client that hangs up meanwhile is seen at once: `Ok(None)` then. Its
/// requests still waiting are dropped, as Redis drops the commands queued behind a blocked
/// one when its client goes — and its connection to Redis must not stay blocked (a later push
/// would be popped for nobody). A request over the memory budget answers its error once the
/// wait is over.
async fn reading_while<V, R>(
    settled: impl std::future::Future<Output = Result<V, ReaderEnd>>,
    input: &mut Input,
    client: &mut R,
    batch: &mut Batch,
) -> Result<Option<V>, ReaderEnd>
where
    R: AsyncRead + Unpin,
{
    tokio::pin!(settled);
    loop {
        tokio::select! {
            done = &mut settled => return done.map(Some),
            read = input.read(client) => match read {
                Ok(0) | Err(ReadError::Gone) => return Ok(None),
                Ok(_) => {} // more requests: they wait too
                Err(ReadError::Budget(e)) => {
                    close_with(batch, e);
                    return settled.await.map(Some);
                }
            },
        }
    }
}

/// Answers an error about the client's input (malformed, too large, over the budget), then
/// closes the connection.
fn close_with(batch: &mut Batch, e: DataError) {
    owe_last(batch, Local2::plain(Answer::Error(e)));
    batch.owed.push(Pending::Close);
    batch.closing = true;
}

/// Queues an answer redcloak gives itself, in order. On a connection that may get frames no
/// command asked for (pub/sub messages), "in order" must include them: a message Redis sent
/// before it would have answered this command must reach the client first. A bare PING is
/// sent as a barrier and its reply replaced by the answer (the message of `PING <message>`
/// or `ECHO` never reaches Redis); every frame Redis sent before the PONG is delivered
/// before it.
fn owe_local(batch: &mut Batch, local: Local2) {
    owe_behind(batch, local, "PING");
}

/// [`owe_local`] for the last answer before the connection closes (QUIT, a protocol error).
/// The barrier is a QUIT: Redis answers it after everything it owes, then closes (a PING
/// followed by the end of the stream could lose what Redis had not written yet).
fn owe_last(batch: &mut Batch, local: Local2) {
    owe_behind(batch, local, "QUIT");
}

fn owe_behind(batch: &mut Batch, local: Local2, barrier: &'static str) {
    if !batch.barrier {
        batch.owed.push(Pending::Local(local));
        return;
    }
    write_args(&[Bytes::from_static(barrier.as_bytes())], &mut batch.out);
    batch.quit_sent |= barrier == "QUIT";
    batch.owed.push(Pending::Upstream(Box::new(Owed {
        name: barrier,
        expect: plan::Expect::One,
        plan: transform::Plan::Shape(&table::Shape::Pass),
        replace: Some(local),
        on_reply: plan::OnReply::None,
        learning: Learning::None,
        keys: Vec::new(),
        put_back: PutBack::None,
        started: Instant::now(),
        blocking: false,
    })));
}

/// The reply for a command that was taken from the client but never sent to Redis.
fn answer_unsent(p: Pending, state: &ReplyState, out: &mut BytesMut) {
    match p {
        Pending::Local(local) => super::replies::render(&local, state, out),
        Pending::Upstream(owed) => DataError::Lost {
            command: owed.name,
            sent: false,
            why: "the connection to Redis was lost",
        }
        .write(out),
        Pending::Own | Pending::Close | Pending::Capture(_) => {}
    }
}

fn write_args(args: &[Bytes], out: &mut BytesMut) {
    resp::write_array_len(out, args.len());
    for a in args {
        resp::write_bulk(out, a);
    }
}

// === the writer ===

/// The writer's view of the process.
struct WriterEnv {
    shared: Arc<Shared>,
    busy: Arc<Busy>,
}

impl Env for WriterEnv {
    fn ring(&self) -> KeyRing {
        self.shared.key_ring()
    }

    fn limits(&self) -> &resp::Limits {
        &self.shared.reply_limits
    }

    fn learn(&self, db: u32, learning: Learning, frame: &Bytes) {
        learning.apply(&self.shared.fallback, db, frame, &self.shared.reply_limits);
    }

    fn done(&self, name: &'static str, outcome: Outcome, started: Instant) {
        self.shared
            .metrics
            .command(name, outcome, started.elapsed());
    }

    fn error(&self, e: &DataError) {
        self.shared.metrics.error(e.source().as_str());
    }

    fn undecryptable(&self, name: &'static str, error: DecryptError, pubsub: bool) {
        self.shared.metrics.decrypt_failure(error, pubsub);
        if pubsub {
            warn!("dropped a pub/sub message whose payload could not be decrypted");
        } else {
            warn!(command = name, "a stored value could not be decrypted");
        }
    }

    fn put_back(&self, db: u32, command: Vec<Bytes>) {
        // The shadow cache learned the destructive read (GETDEL: absent; GETSET: the new
        // value); the put-back changes the key again: forget what it knew.
        if let table::Resolved::Known { spec, parent } = table::resolve(&command) {
            let keys = table::keys_of(spec, parent, &command);
            for i in keys.positions() {
                self.shared.fallback.forget(db, &command[i]);
            }
        }
        let shared = self.shared.clone();
        let busy = self.busy.clone();
        // The client's refusal and its next command wait for this (`Busy::put_backs_done`);
        // bounded, so that a Redis that stops answering cannot hold the client forever.
        busy.put_backs.fetch_add(1, Ordering::AcqRel);
        let limit = PUT_BACK_LIMIT;
        tokio::spawn(
            async move {
                match tokio::time::timeout(limit, put_back_now(&shared, db, &command)).await {
                    Ok(Ok(())) => warn!("put back a value that does not decrypt, where the command had taken it from"),
                    Ok(Err(e)) => warn!(error = %e, "could not put back a value that does not decrypt; it stays where the command left it"),
                    Err(_) => warn!(limit_secs = limit.as_secs(), "could not put back a value that does not decrypt in time; it stays where the command left it"),
                }
                if busy.put_backs.fetch_sub(1, Ordering::AcqRel) == 1 {
                    busy.put_backs_done.notify_waiters();
                }
            }
            .in_current_span(),
        );
    }
}

/// Sends `command` (raw ciphertext) on a connection of its own, in database `db`.
async fn put_back_now(shared: &Arc<Shared>, db: u32, command: &[Bytes]) -> std::io::Result<()> {
    let conn = shared
        .pool
        .connect(shared)
        .await
        .map_err(std::io::Error::other)?;
    let (mut tx, mut rx) = Dedicated::split(conn, shared.reply_limits, &shared.budget);
    let mut out = BytesMut::new();
    let mut replies = 1;
    if db != shared.connector().default_db() {
        write_args(
            &[Bytes::from_static(b"SELECT"), Bytes::from(db.to_string())],
            &mut out,
        );
        replies += 1;
    }
    write_args(command, &mut out);
    tx.send(&out).await?;
    for _ in 0..replies {
        match rx.next_frame().await {
            Ok(Some(f)) if !f.starts_with(b"-") => {}
            Ok(Some(f)) => {
                return Err(std::io::Error::other(
                    String::from_utf8_lossy(&f).trim_end().to_owned(),
                ))
            }
            Ok(None) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        }
    }
    Ok(())
}

/// The writer half: answers every pending entry in order. Returns the client's write half,
/// the reply side's state, and why the upstream connection ended (if it did).
async fn write_replies<X, W>(
    mut rx: mpsc::Receiver<Pending>,
    mut upstream: X,
    mut client: W,
    shared: Arc<Shared>,
    mut replies: Replies,
    busy: Arc<Busy>,
) -> (W, ReplyState, Option<String>)
where
    X: LinkRx,
    W: AsyncWrite + Unpin,
{
    let env = WriterEnv {
        shared: shared.clone(),
        busy: busy.clone(),
    };
    let lost = deliver_until_done(
        &mut rx,
        &mut upstream,
        &mut client,
        &env,
        &mut replies,
        &busy,
    )
    .await;
    // Whatever is still owed was never answered (the client went away): what those commands
    // may have changed in Redis is unknown, so the cache forgets their keys.
    rx.close();
    while let Ok(p) = rx.try_recv() {
        replies.queue.push_back(p);
    }
    for pending in replies.queue.drain(..) {
        if let Pending::Upstream(owed) = pending {
            owed.learning
                .forget_keys(&shared.fallback, replies.state.db);
        }
    }
    (client, replies.state, lost)
}

/// The writer's state across its loop.
struct Writer<'a, X, W> {
    /// Entries taken from the reader, ever.
    received: u64,
    rx: &'a mut mpsc::Receiver<Pending>,
    upstream: &'a mut X,
    client: &'a mut W,
    env: &'a WriterEnv,
    replies: &'a mut Replies,
    busy: &'a Busy,
    out: BytesMut,
    rx_open: bool,
}

/// What the writer does next.
enum Flow {
    /// Wait for more.
    Wait,
    /// Stop: the session is over (`None`) or the upstream connection is gone (why).
    Done(Option<String>),
}

async fn deliver_until_done<X, W>(
    rx: &mut mpsc::Receiver<Pending>,
    upstream: &mut X,
    client: &mut W,
    env: &WriterEnv,
    replies: &mut Replies,
    busy: &Busy,
) -> Option<String>
where
    X: LinkRx,
    W: AsyncWrite + Unpin,
{
    let mut w = Writer {
        received: 0,
        rx,
        upstream,
        client,
        env,
        replies,
        busy,
        out: BytesMut::with_capacity(super::READ_CHUNK),
        rx_open: true,
    };
    loop {
        if let Flow::Done(lost) = w.answer_ready().await {
            return lost;
        }
        if let Flow::Done(lost) = w.wait().await {
            return lost;
        }
    }
}

impl<X: LinkRx, W: AsyncWrite + Unpin> Writer<'_, X, W> {
    /// Answers everything that can be answered now: local answers, and replies already read.
    async fn answer_ready(&mut self) -> Flow {
        loop {
            while let Ok(p) = self.rx.try_recv() {
                self.received += 1;
                self.replies.queue.push_back(p);
            }
            if self.replies.drain_local(&mut self.out) == Front::Close {
                let _ = self.client.write_all(&self.out).await;
                let _ = self.client.shutdown().await;
                return Flow::Done(None);
            }
            let frame = match self.upstream.try_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    warn!(error = %e, "closing the session");
                    return self.fail("Redis sent a reply redcloak cannot parse").await;
                }
            };
            if let Err(e) = self.replies.deliver(frame, self.env, &mut self.out) {
                // Never hand a reply to the wrong command: every command still owed gets an
                // error, then the session ends.
                return self.fail(desync(&e)).await;
            }
            if self.out.len() >= WRITE_HIGH_WATER && !self.write_out().await {
                return Flow::Done(None); // the client is gone; dropping rx stops the reader
            }
        }
        self.busy
            .subscribed
            .store(self.replies.state.subscribed(), Ordering::Relaxed);
        self.busy.db.store(self.replies.state.db, Ordering::Relaxed);
        self.busy
            .resp3
            .store(self.replies.state.resp3, Ordering::Relaxed);
        self.busy.answered.store(
            self.received - self.replies.queue.len() as u64,
            Ordering::Release,
        );
        if !self.write_out().await {
            return Flow::Done(None);
        }
        if self.replies.queue.is_empty() && !self.rx_open {
            if self.busy.leaving.load(Ordering::Acquire) {
                // Everything owed is answered; the session goes on without this connection.
                return Flow::Done(Some("left Redis for the fallback (outage)".to_owned()));
            }
            let _ = self.client.shutdown().await;
            return Flow::Done(None);
        }
        self.busy
            .owed
            .store(self.replies.queue.len(), Ordering::Relaxed);
        Flow::Wait
    }

    /// Waits for a new entry, an upstream frame, or the front's reply deadline.
    async fn wait(&mut self) -> Flow {
        let shared = &self.env.shared;
        let deadline = reply_deadline(self.replies.queue.front(), shared.operations.reply_timeout);
        tokio::select! {
            biased;
            p = self.rx.recv(), if self.rx_open => match p {
                Some(p) => {
                    self.received += 1;
                    self.replies.queue.push_back(p);
                }
                None => self.rx_open = false,
            },
            frame = self.upstream.next_frame() => match frame {
                Ok(Some(frame)) => {
                    // The entry this frame answers was queued before its command was sent,
                    // but `recv` above may have said "pending" only because the task's
                    // cooperative budget ran out: take what is queued before delivering.
                    while let Ok(p) = self.rx.try_recv() {
                        self.received += 1;
                        self.replies.queue.push_back(p);
                    }
                    if self.replies.drain_local(&mut self.out) == Front::Close {
                        // Only entries queued after the frame's command can be at the front
                        // here; a Close cannot precede the reply it follows.
                        return self.fail("reply bookkeeping out of order").await;
                    }
                    if let Err(e) = self.replies.deliver(frame, self.env, &mut self.out) {
                        return self.fail(desync(&e)).await;
                    }
                }
                Err(LinkError::Unread { limit }) => {
                    // Like Redis past a client's output buffer limit: this client is closed,
                    // Redis is fine, the clients sharing its connection go on.
                    warn!(limit, "closing a client that does not read its replies");
                    return self
                        .fail("redcloak closed this connection: its replies were not read")
                        .await;
                }
                Err(LinkError::UnreadBudget { max }) => {
                    warn!(
                        max,
                        "closing a client whose unread replies do not fit in REDCLOAK_MAX_BUFFERED_BYTES"
                    );
                    return self
                        .fail(
                            "redcloak closed this connection: its replies were not read, and what it left \
                             unread does not fit in REDCLOAK_MAX_BUFFERED_BYTES (read replies as \
                             they come, or raise the limit)",
                        )
                        .await;
                }
                Ok(None) | Err(_) if self.busy.hung_up.load(Ordering::Acquire) => {
                    // The client hung up and Redis, told so, answered what it had read and
                    // closed. What is still owed is a command that was blocked (BLPOP,
                    // XREAD BLOCK…): Redis drops such a client without a reply, and so does
                    // redcloak — no invented error, no suspicion that Redis is down.
                    let _ = self.client.write_all(&self.out).await;
                    self.out.clear();
                    let _ = self.client.shutdown().await;
                    return Flow::Done(Some("the client hung up".to_owned()));
                }
                Ok(None) | Err(_) => {
                    let lost = match frame {
                        Ok(_) => "Redis closed the connection".to_owned(),
                        Err(e) => e.to_string(),
                    };
                    // Every command still owed a reply gets an error saying its outcome is
                    // unknown. Redis may be down: a probe finds out (at once if it refuses).
                    self.fail_owed("the connection to Redis was lost").await;
                    let _ = self.client.write_all(&self.out).await;
                    if !self.busy.leaving.load(Ordering::Acquire) {
                        health::suspect(shared, &lost);
                    }
                    return Flow::Done(Some(lost));
                }
            },
            _ = sleep_until(deadline) => {
                // Redis accepted the connection but does not answer (hung, stopped, a
                // partition that keeps the socket open): give the connection up, and have
                // a probe decide whether Redis is down or only slow.
                let timeout = shared.operations.reply_timeout.unwrap_or_default();
                warn!(timeout_secs = timeout.as_secs_f64(), "Redis did not answer in time; giving up the connection");
                let why = "Redis did not answer within REDCLOAK_REPLY_TIMEOUT";
                self.fail_owed(why).await;
                let _ = self.client.write_all(&self.out).await;
                health::suspect(shared, why);
                return Flow::Done(Some(why.to_owned()));
            }
        }
        Flow::Wait
    }

    /// Writes what is buffered for the client; false if the client is gone.
    async fn write_out(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        if self.busy.put_backs.load(Ordering::Acquire) > 0 {
            // A refusal is in `out`: the client sees it once the value is back in Redis.
            self.busy.put_backs_done().await;
        }
        let ok = self.client.write_all(&self.out).await.is_ok();
        self.out.clear();
        ok
    }

    /// Fails everything owed, writes it, and closes the client.
    async fn fail(&mut self, why: &'static str) -> Flow {
        self.fail_owed(why).await;
        let _ = self.client.write_all(&self.out).await;
        let _ = self.client.shutdown().await;
        Flow::Done(None)
    }

    /// Gives every command still owed a reply an error saying its outcome is unknown.
    async fn fail_owed(&mut self, why: &'static str) {
        self.rx.close();
        while let Some(p) = self.rx.recv().await {
            self.replies.queue.push_back(p);
        }
        let fallback = &self.env.shared.fallback;
        let forget = |learning: &Learning, db: u32| learning.forget_keys(fallback, db);
        self.replies.fail_all(why, self.env, &forget, &mut self.out);
    }
}

/// Why a reply could not be accounted for, logged; the text every owed command gets.
fn desync(e: &DataError) -> &'static str {
    warn!(error = %e.text(), "closing the session: a reply from Redis cannot be matched to its command");
    match e {
        DataError::Desync(why) => why,
        _ => "redcloak could not match a reply from Redis to its command",
    }
}

/// When the reply owed by the front entry is overdue: never for commands that may block
/// (they wait as long as the client asked).
fn reply_deadline(
    front: Option<&Pending>,
    timeout: Option<Duration>,
) -> Option<tokio::time::Instant> {
    let timeout = timeout?;
    match front? {
        Pending::Upstream(owed) if !owed.blocking => {
            Some(tokio::time::Instant::from_std(owed.started + timeout))
        }
        _ => None,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
