//! Shared upstream connections (DESIGN.md §2, second step): the stateless commands of many
//! clients are pipelined onto a few TLS connections, and each reply frame is routed back to
//! the client whose command it answers.
//!
//! A [`Mux`] owns one connection: a writer task that sends whatever sessions have queued in
//! one write (one TLS record stream instead of fifty), and a reader task that cuts replies into
//! frames and hands each to the oldest *route* still owed frames. A route is one session's
//! batch: how many commands it sent, and the session's inbox. Queuing a batch's bytes and its
//! route happen under one lock, so routes are in the order Redis reads the commands, and Redis
//! answers a connection's commands in order — one frame per command, since a shared connection
//! never holds state that changes that (no pub/sub, no `CLIENT REPLY`, no blocking command, no
//! RESP3 push: the planner moves a client to a connection of its own before any of those).
//!
//! To a session a shared link looks like a dedicated one ([`LinkTx`] / [`LinkRx`]). When the
//! connection fails, every session owed a frame gets the error (its commands' outcome is
//! unknown, as on a dedicated connection); a session owed nothing moves to a new shared
//! connection on its next send, unnoticed.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::sync::{mpsc, Notify};
use tracing::debug;

use super::link::{FrameReader, LinkError, LinkRx, LinkTx};
use super::{UpstreamConn, UpstreamError};
use crate::budget::{Budget, FREE_PER_BUFFER};
use crate::Shared;

/// Requests queued for a connection's writer past which senders wait for it to catch up.
const QUEUE_HIGH_WATER: usize = 4 * 1024 * 1024;

/// Reply bytes a session may leave unread before it is disconnected (a client that sends
/// commands and never reads their replies must not make redcloak hold them without bound;
/// Redis closes such clients too, `client-output-buffer-limit`): one largest reply and then
/// some.
fn unread_limit(shared: &Shared) -> usize {
    shared
        .reply_limits
        .max_bulk_len
        .saturating_add(64 * 1024 * 1024)
}

/// The shared connections: a fixed number of slots, each opened when first needed and again
/// after it failed.
pub(crate) struct SharedLinks {
    slots: Vec<tokio::sync::Mutex<Option<Arc<Mux>>>>,
    next: AtomicUsize,
    /// Bumped by a reload: connections made with the old credentials are replaced.
    generation: AtomicU64,
}

impl std::fmt::Debug for SharedLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedLinks")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl SharedLinks {
    /// `n` shared connections (0: none, every client has its own).
    pub(crate) fn new(n: usize) -> SharedLinks {
        SharedLinks {
            slots: (0..n).map(|_| tokio::sync::Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
        }
    }

    /// Whether clients start on shared connections.
    pub(crate) fn enabled(&self) -> bool {
        !self.slots.is_empty()
    }

    /// After a reload: new links go to connections made with the new credentials; sessions
    /// on the old ones finish there.
    pub(crate) fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        for slot in &self.slots {
            // A slot being filled now is checked against the generation when next used.
            if let Ok(mut slot) = slot.try_lock() {
                if let Some(old) = slot.take() {
                    old.retire();
                }
            }
        }
    }

    /// A session's link on one of the shared connections (the next one in turn).
    pub(crate) async fn link(
        &self,
        shared: &Arc<Shared>,
    ) -> Result<(SharedTx, SharedRx), UpstreamError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let inbox = Arc::new(Inbox {
            owed: AtomicUsize::new(0),
            unread: Mutex::new(0),
            budget: shared.budget.clone(),
            cut: AtomicBool::new(false),
        });
        let mux = self.mux(shared).await?;
        Ok((
            SharedTx {
                shared: shared.clone(),
                mux,
                tx: Some(tx),
                inbox: inbox.clone(),
            },
            SharedRx {
                rx,
                inbox,
                ended: None,
            },
        ))
    }

    /// A live connection from the next slot, opened if needed.
    async fn mux(&self, shared: &Arc<Shared>) -> Result<Arc<Mux>, UpstreamError> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let generation = self.generation.load(Ordering::Acquire);
        let mut slot = self.slots[i].lock().await;
        if let Some(mux) = slot.as_ref() {
            if !mux.dead.load(Ordering::Acquire) && mux.generation == generation {
                return Ok(mux.attach());
            }
        }
        let conn = shared.pool.take(shared).await?;
        let mux = Mux::start(conn, shared, generation);
        if let Some(old) = slot.replace(mux.clone()) {
            old.retire();
        }
        Ok(mux.attach())
    }
}

/// What a session's inbox holds: frames for it, or the error that ended its link.
type Delivery = Result<Bytes, LinkError>;

/// A session's side of the routing.
struct Inbox {
    /// Frames sent and not yet delivered (on the current connection).
    owed: AtomicUsize,
    /// Bytes delivered and not yet read by the session. Beyond [`FREE_PER_BUFFER`] (as for
    /// every buffer) they are taken from the process-wide budget
    /// (`REDCLOAK_MAX_BUFFERED_BYTES`): the connection's reader must go on reading for the
    /// other sessions, so what one session leaves unread is held by redcloak, not by a
    /// socket. A lock, not an atomic, so that the count and what it took change together.
    unread: Mutex<usize>,
    budget: Arc<Budget>,
    /// The session read too slowly and was cut off: drop what else arrives for it.
    cut: AtomicBool,
}

/// One batch of one session's commands, waiting for its replies.
struct Route {
    frames: usize,
    tx: mpsc::UnboundedSender<Delivery>,
    inbox: Arc<Inbox>,
}

/// One shared connection.
struct Mux {
    state: Mutex<MuxState>,
    /// Requests were queued.
    queued: Notify,
    /// The writer took the queue (senders past the high-water mark wait for it).
    drained: Notify,
    dead: AtomicBool,
    generation: u64,
    reader: Mutex<Option<tokio::task::AbortHandle>>,
    unread_limit: usize,
    /// To report a lost connection: Redis may be down, and an idle client would not notice.
    shared: Weak<Shared>,
    /// Sessions linked to this connection.
    attached: AtomicUsize,
    /// Replaced in its slot (a reload): closed once its last session leaves.
    retired: AtomicBool,
}

#[derive(Default)]
struct MuxState {
    /// Requests not yet written.
    out: BytesMut,
    /// Who is owed the next frames, oldest first.
    routes: VecDeque<Route>,
    /// Why the connection is gone.
    dead: Option<String>,
}

impl Mux {
    fn start(conn: UpstreamConn, shared: &Arc<Shared>, generation: u64) -> Arc<Mux> {
        let (r, w) = tokio::io::split(conn);
        let mux = Arc::new(Mux {
            state: Mutex::default(),
            queued: Notify::new(),
            drained: Notify::new(),
            dead: AtomicBool::new(false),
            generation,
            reader: Mutex::new(None),
            unread_limit: unread_limit(shared),
            shared: Arc::downgrade(shared),
            attached: AtomicUsize::new(0),
            retired: AtomicBool::new(false),
        });
        let frames = FrameReader::new(r, shared.reply_limits, &shared.budget);
        let reader = tokio::spawn(read_replies(mux.clone(), frames));
        if let Ok(mut slot) = mux.reader.lock() {
            *slot = Some(reader.abort_handle());
        }
        tokio::spawn(write_requests(mux.clone(), w));
        debug!("shared upstream connection opened");
        mux
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MuxState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues one batch. False when the connection is gone.
    fn queue(&self, bytes: &[u8], frames: usize, route: impl FnOnce() -> Route) -> Option<usize> {
        let mut st = self.lock();
        if st.dead.is_some() {
            return None;
        }
        st.out.extend_from_slice(bytes);
        if frames > 0 {
            st.routes.push_back(route());
        }
        let queued = st.out.len();
        drop(st);
        self.queued.notify_one();
        Some(queued)
    }

    /// A session links to this connection.
    fn attach(self: &Arc<Self>) -> Arc<Mux> {
        self.attached.fetch_add(1, Ordering::AcqRel);
        self.clone()
    }

    /// A session leaves it: a retired connection closes with its last session.
    fn detach(&self) {
        if self.attached.fetch_sub(1, Ordering::AcqRel) == 1 && self.retired.load(Ordering::Acquire)
        {
            self.close("replaced after a reload");
        }
    }

    /// Replaced in its slot: it serves the sessions it has, then closes.
    fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        if self.attached.load(Ordering::Acquire) == 0 {
            self.close("replaced after a reload");
        }
    }

    /// The connection failed: [`Mux::close`], and a probe decides whether Redis is down
    /// (sessions owed a frame report it too; one owed nothing would only notice at its next
    /// command).
    fn kill(&self, why: &str) {
        if self.close(why) {
            if let Some(shared) = self.shared.upgrade() {
                crate::health::suspect(&shared, why);
            }
        }
    }

    /// The connection is gone: everyone owed a frame is told, nothing more is sent. False if
    /// it was already.
    fn close(&self, why: &str) -> bool {
        let mut st = self.lock();
        if st.dead.is_some() {
            return false;
        }
        debug!(reason = why, "shared upstream connection closed");
        st.dead = Some(why.to_owned());
        self.dead.store(true, Ordering::Release);
        st.out = BytesMut::new();
        for route in st.routes.drain(..) {
            route.inbox.owed.fetch_sub(route.frames, Ordering::AcqRel);
            let _ = route.tx.send(Err(LinkError::Io(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                why.to_owned(),
            ))));
        }
        drop(st);
        self.queued.notify_one();
        self.drained.notify_waiters();
        if let Some(reader) = self.reader.lock().ok().and_then(|mut r| r.take()) {
            reader.abort();
        }
        true
    }

    /// Hands one reply frame to the session it answers.
    fn route(&self, frame: Bytes) -> Result<(), &'static str> {
        let mut st = self.lock();
        let Some(front) = st.routes.front_mut() else {
            return Err("Redis sent a reply no command was waiting for");
        };
        front.frames -= 1;
        let inbox = &front.inbox;
        inbox.owed.fetch_sub(1, Ordering::AcqRel);
        if !inbox.cut.load(Ordering::Acquire) {
            let mut unread = inbox.lock_unread();
            let (old, new) = (*unread, *unread + frame.len());
            let take = held(new) - held(old);
            if new > self.unread_limit {
                // Like Redis's output buffer limit: the client is cut off, the others go on.
                inbox.cut.store(true, Ordering::Release);
                let _ = front.tx.send(Err(LinkError::Unread {
                    limit: self.unread_limit,
                }));
            } else if take > 0
                && !inbox
                    .budget
                    .try_take_within(take, unread_cap(&inbox.budget))
            {
                // The process-wide budget cannot hold more: the client that leaves replies
                // unread is cut off, not the connection (busy is not down). A client that
                // reads as replies come holds less than the free part and is never cut.
                // Unread replies get the budget up to `unread_cap`: the connection's reader
                // needs the rest to read a large reply for anyone, requests need it too.
                inbox.cut.store(true, Ordering::Release);
                let _ = front.tx.send(Err(LinkError::UnreadBudget {
                    max: inbox.budget.max(),
                }));
            } else if front.tx.send(Ok(frame)).is_ok() {
                *unread = new;
            } else {
                // The session is gone (its receiver closed): nothing holds the frame.
                inbox.budget.give(take);
            }
        }
        if front.frames == 0 {
            st.routes.pop_front();
        }
        Ok(())
    }
}

/// Writes what sessions queued, a whole queue per write.
async fn write_requests(mux: Arc<Mux>, mut w: WriteHalf<UpstreamConn>) {
    let mut batch = BytesMut::new();
    loop {
        // Let every task that is ready (sessions whose clients sent something, found by the
        // same poll of the I/O driver) queue its requests first: tokio runs a yielded task
        // again after the driver has been polled. At -P 1 with many clients this turns one
        // TLS record and one write per request into one per batch, as a proxy's event loop
        // does (twemproxy); an idle runtime resumes the task at once.
        tokio::task::yield_now().await;
        {
            let mut st = mux.lock();
            if st.dead.is_some() {
                return;
            }
            std::mem::swap(&mut st.out, &mut batch);
        }
        if batch.is_empty() {
            mux.queued.notified().await;
            continue;
        }
        mux.drained.notify_waiters();
        let written = match w.write_all(&batch).await {
            Ok(()) => w.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            mux.kill(&format!("writing to Redis failed: {e}"));
            return;
        }
        batch.clear();
        if batch.capacity() > QUEUE_HIGH_WATER {
            batch = BytesMut::new();
        }
    }
}

/// Reads reply frames and routes each to its session.
async fn read_replies(mux: Arc<Mux>, mut frames: FrameReader<tokio::io::ReadHalf<UpstreamConn>>) {
    let why = loop {
        match frames.next_frame().await {
            Ok(Some(frame)) => {
                if let Err(why) = mux.route(frame) {
                    break why.to_owned();
                }
            }
            Ok(None) => break "Redis closed the connection".to_owned(),
            Err(e) => break e.to_string(),
        }
    };
    mux.kill(&why);
}

/// A session's sending half on a shared connection.
pub(crate) struct SharedTx {
    shared: Arc<Shared>,
    mux: Arc<Mux>,
    /// Cloned into every route; `None` once the session is done sending.
    tx: Option<mpsc::UnboundedSender<Delivery>>,
    inbox: Arc<Inbox>,
}

impl LinkTx for SharedTx {
    async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        let sent = self.queue(bytes).await;
        if sent.is_err() {
            // The batch's entries are already the session's writer's: ending the link makes
            // it answer them (outcome unknown) instead of waiting for frames that never come.
            self.tx = None;
        }
        sent
    }

    async fn finish(&mut self) {
        // The inbox closes once the last owed frame is delivered.
        self.tx = None;
    }
}

impl SharedTx {
    /// Queues one batch on the connection (a new one if the old failed with nothing owed).
    async fn queue(&mut self, bytes: &[u8]) -> io::Result<()> {
        let frames = count_commands(bytes).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "a request that is not RESP")
        })?;
        let Some(tx) = &self.tx else {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "link finished"));
        };
        if self.mux.dead.load(Ordering::Acquire) && self.inbox.owed.load(Ordering::Acquire) == 0 {
            // Nothing is owed on the failed connection: carry on on another, unnoticed.
            let next = self
                .shared
                .links
                .mux(&self.shared)
                .await
                .map_err(|e| io::Error::new(io::ErrorKind::ConnectionRefused, e.to_string()))?;
            std::mem::replace(&mut self.mux, next).detach();
        }
        self.inbox.owed.fetch_add(frames, Ordering::AcqRel);
        let route = || Route {
            frames,
            tx: tx.clone(),
            inbox: self.inbox.clone(),
        };
        let Some(queued) = self.mux.queue(bytes, frames, route) else {
            self.inbox.owed.fetch_sub(frames, Ordering::AcqRel);
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the shared connection to Redis is gone",
            ));
        };
        if queued > QUEUE_HIGH_WATER {
            // Backpressure: wait until the writer takes the queue (or the connection dies).
            let drained = self.mux.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.mux.lock().out.len() > QUEUE_HIGH_WATER
                && !self.mux.dead.load(Ordering::Acquire)
            {
                drained.await;
            }
        }
        Ok(())
    }
}

impl Drop for SharedTx {
    fn drop(&mut self) {
        self.mux.detach();
    }
}

/// A session's receiving half on a shared connection.
pub(crate) struct SharedRx {
    rx: mpsc::UnboundedReceiver<Delivery>,
    inbox: Arc<Inbox>,
    /// The link's end, seen by `try_frame` and reported by `next_frame` (to a session,
    /// `try_frame` failing means an unparsable reply; a lost connection is `next_frame`'s).
    ended: Option<LinkError>,
}

/// How far the budget's use may go for replies left unread: three quarters. The last
/// quarter stays for request buffers and the connections' readers (a reader that cannot
/// grow its buffer to read a large reply fails the connection for every session on it).
/// Redis itself holds any amount for a slow normal client (`client-output-buffer-limit
/// normal 0 0 0`), so the cap is as generous as the reserve allows: a client that leaves
/// 100 MiB of values (140 MB of ciphertext) unread under the default 256 MiB is still served.
fn unread_cap(budget: &Budget) -> usize {
    budget.max() / 4 * 3
}

/// What `unread` bytes take from the budget.
fn held(unread: usize) -> usize {
    unread.saturating_sub(FREE_PER_BUFFER)
}

impl Inbox {
    fn lock_unread(&self) -> std::sync::MutexGuard<'_, usize> {
        self.unread.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session took a frame of `len` bytes: what it held goes back to the budget.
    fn taken(&self, len: usize) {
        let mut unread = self.lock_unread();
        let (old, new) = (*unread, unread.saturating_sub(len));
        *unread = new;
        self.budget.give(held(old) - held(new));
    }
}

impl SharedRx {
    fn took(&mut self, d: Delivery) -> Result<Option<Bytes>, LinkError> {
        let frame = d?;
        self.inbox.taken(frame.len());
        Ok(Some(frame))
    }
}

impl Drop for SharedRx {
    fn drop(&mut self) {
        // Frames delivered and never taken give their budget back; once closed, the
        // connection's reader cannot deliver more (a failed send gives back itself).
        self.rx.close();
        while let Ok(d) = self.rx.try_recv() {
            if let Ok(frame) = d {
                self.inbox.taken(frame.len());
            }
        }
    }
}

impl LinkRx for SharedRx {
    fn try_frame(&mut self) -> Result<Option<Bytes>, LinkError> {
        if self.ended.is_some() {
            return Ok(None);
        }
        match self.rx.try_recv() {
            Ok(Err(e)) => {
                self.ended = Some(e);
                Ok(None)
            }
            Ok(d) => self.took(d),
            Err(_) => Ok(None),
        }
    }

    async fn next_frame(&mut self) -> Result<Option<Bytes>, LinkError> {
        if let Some(e) = self.ended.take() {
            return Err(e);
        }
        match self.rx.recv().await {
            Some(d) => self.took(d),
            None => Ok(None),
        }
    }
}

/// How many commands (RESP arrays of bulk strings, as redcloak writes them) `bytes` holds;
/// `None` if it is anything else.
fn count_commands(mut bytes: &[u8]) -> Option<usize> {
    fn number(bytes: &[u8], sigil: u8) -> Option<(usize, &[u8])> {
        let rest = bytes.strip_prefix(&[sigil])?;
        let end = rest.iter().position(|&b| b == b'\r')?;
        let n = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
        let rest = rest[end..].strip_prefix(b"\r\n")?;
        Some((n, rest))
    }
    let mut count = 0;
    while !bytes.is_empty() {
        let (args, mut rest) = number(bytes, b'*')?;
        for _ in 0..args {
            let (len, after) = number(rest, b'$')?;
            rest = after.get(len..)?.strip_prefix(b"\r\n")?;
        }
        bytes = rest;
        count += 1;
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::count_commands;

    #[test]
    fn commands_are_counted_by_their_frames() {
        assert_eq!(count_commands(b""), Some(0));
        assert_eq!(count_commands(b"*1\r\n$4\r\nPING\r\n"), Some(1));
        let two = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n\r\n\r\n\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        assert_eq!(count_commands(two), Some(2));
        assert_eq!(count_commands(b"*0\r\n"), Some(1));
        // Anything else is not counted, never guessed.
        for bad in [
            &b"PING\r\n"[..],
            b"*1\r\n$4\r\nPIN",
            b"*1\r\n$4\r\nPINGxx",
            b"*x\r\n",
            b"*1\r\n+OK\r\n",
        ] {
            assert_eq!(count_commands(bad), None, "{bad:?}");
        }
    }
}
