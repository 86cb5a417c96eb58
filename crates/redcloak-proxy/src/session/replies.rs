//! Reply accounting: which upstream frame answers which command, decoded by whose rule.
//!
//! Each request the planner handed out becomes one [`Pending`] entry, in order. Each entry
//! says exactly what it is owed: an answer redcloak makes itself, one reply, or a number of
//! pub/sub confirmations that depends on the arguments *and* on the subscriptions the
//! connection holds when Redis gets to the command (an `UNSUBSCRIBE` without names gets one
//! confirmation per channel the connection is subscribed to at that point). The reply side
//! keeps its own exact view of that state ([`ReplyState`]) from the confirmations themselves.
//!
//! # Security
//! A frame that does not fit what the front entry is owed — a confirmation where a reply is
//! due, a reply where confirmations are due, a reply nobody asked for — is never handed to
//! the wrong command: [`Replies::deliver`] returns [`DataError::Desync`], and the session
//! answers every command still owed with an error and closes the connection.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use redcloak_commands::resp::{self, Frame};
use redcloak_commands::table::{self, Channels, Pops};
use redcloak_commands::transform::{self, Plan, ReplyError};
use redcloak_crypto::{DecryptError, KeyRing};

use super::plan::{Answer, Expect, Local2, OnReply};
use crate::error::DataError;
use crate::fallback::learn::Learning;
use crate::metrics::Outcome;

/// What the client is owed for one request (or for one of redcloak's own commands).
#[derive(Debug)]
pub(crate) enum Pending {
    /// An answer redcloak gives itself.
    Local(Local2),
    /// Replies from Redis to a forwarded command.
    Upstream(Box<Owed>),
    /// The reply to one of redcloak's own commands (re-AUTH after RESET, restoring the state
    /// on a new connection): consumed, never shown.
    Own,
    /// After every earlier reply: close the connection (QUIT, a protocol error).
    Close,
    /// The reply to one of redcloak's own commands that redcloak needs (an emulation's
    /// reads and writes): handed over, with the connection's state at that point.
    Capture(tokio::sync::oneshot::Sender<Captured>),
}

/// A reply handed to redcloak's own code.
#[derive(Debug)]
pub(crate) struct Captured {
    /// The raw reply frame.
    pub frame: Bytes,
    /// The connection's state when it arrived.
    pub state: crate::atomic::LinkState,
}

/// A forwarded command's share of the reply stream.
#[derive(Debug)]
pub(crate) struct Owed {
    /// Metrics and message name.
    pub name: &'static str,
    /// How many frames.
    pub expect: Expect,
    /// How to decode them.
    pub plan: Plan,
    /// Redis's reply is replaced by this answer (a local answer kept in its place among
    /// Redis's frames by a PING, or EXEC of an aborted transaction).
    pub replace: Option<Local2>,
    /// What the reply changes.
    pub on_reply: OnReply,
    /// What the shadow cache learns from it.
    pub learning: Learning,
    /// The command's key names, to name the key in an "undecryptable" error (kept only when
    /// the reply may hold values).
    pub keys: Vec<Bytes>,
    /// When it destroys what it returns (LPOP, GETDEL…): how to put back a value that does
    /// not decrypt, so that it is not lost.
    pub put_back: PutBack,
    /// When the command was read.
    pub started: Instant,
    /// It may block (no reply deadline).
    pub blocking: bool,
}

/// How to put back what a destructive read returned, if it does not decrypt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PutBack {
    /// The command keeps what it reads.
    None,
    /// Popped from the head of this list (LPOP key [count]).
    Head(Bytes),
    /// Popped from the tail (RPOP).
    Tail(Bytes),
    /// `[key, value]` popped from the head (BLPOP) or the tail (`false`, BRPOP).
    Keyed(bool),
    /// `[key, [values…]]` popped from the head or the tail (LMPOP, BLMPOP).
    Multi(bool),
    /// GETDEL: set it again if the key is still absent.
    String(Bytes),
    /// EXEC: the destructive reads it ran, by their index in the transaction's queue.
    Exec(Vec<(usize, PutBack)>),
    /// Members popped from this set (SPOP).
    Set(Bytes),
    /// Member/score pairs popped from this sorted set (ZPOPMIN, ZPOPMAX).
    Scored(Bytes),
    /// `[key, member, score]` (BZPOPMIN, BZPOPMAX).
    KeyedScored,
    /// `[key, [[member, score], …]]` (ZMPOP, BZMPOP).
    MultiScored,
    /// GETSET, SET … GET: set the old value again if `key` still holds `written`, the token the
    /// command wrote.
    Overwritten { key: Bytes, written: Bytes },
}

/// The put-back of an overwrite, run by Redis as one step: the old value is set again only
/// while the key still holds the token the command wrote (`KEYS[1]`, `ARGV[1]` = that token,
/// `ARGV[2]` = the old value), so a write that came after it is never undone.
const PUT_BACK_IF_UNCHANGED: &[u8] = b"if redis.call('GET', KEYS[1]) == ARGV[1] then \
return redis.call('SET', KEYS[1], ARGV[2]) end return 0";

/// The reply side's view of the connection: what Redis has confirmed.
#[derive(Debug, Clone)]
pub(crate) struct ReplyState {
    /// RESP3.
    pub resp3: bool,
    /// The database Redis confirmed.
    pub db: u32,
    /// The database of a new connection.
    pub default_db: u32,
    /// Channels, patterns and shard channels subscribed to, from Redis's confirmations.
    subs: [HashSet<Bytes>; 3],
    /// Confirmations still owed to the command at the front, once its first one arrived.
    left: Option<usize>,
}

impl ReplyState {
    /// A connection in `db`, protocol as given.
    pub(crate) fn new(db: u32, default_db: u32, resp3: bool) -> ReplyState {
        ReplyState {
            resp3,
            db,
            default_db,
            subs: Default::default(),
            left: None,
        }
    }

    /// Subscribed to anything (in RESP2 the connection is then in pub/sub mode).
    pub(crate) fn subscribed(&self) -> bool {
        self.subs.iter().any(|s| !s.is_empty())
    }

    fn kind(k: Channels) -> usize {
        match k {
            Channels::Plain => 0,
            Channels::Pattern => 1,
            Channels::Shard => 2,
        }
    }
}

/// What the reply side needs from the rest of the process.
pub(crate) trait Env {
    /// The key ring in use.
    fn ring(&self) -> KeyRing;
    /// Parser limits for replies.
    fn limits(&self) -> &resp::Limits;
    /// The shadow cache learns from a reply.
    fn learn(&self, db: u32, learning: Learning, frame: &Bytes);
    /// A command got its reply.
    fn done(&self, name: &'static str, outcome: Outcome, started: Instant);
    /// redcloak answered this error of its own.
    fn error(&self, e: &DataError);
    /// A value did not decrypt (`pubsub`: a message, which is dropped).
    fn undecryptable(&self, name: &'static str, error: DecryptError, pubsub: bool);
    /// Put back values a destructive read removed but could not decrypt (raw ciphertext).
    fn put_back(&self, db: u32, command: Vec<Bytes>);
}

/// The FIFO of what is owed, and the reply side's state.
#[derive(Debug)]
pub(crate) struct Replies {
    pub queue: VecDeque<Pending>,
    pub state: ReplyState,
}

/// What [`Replies::drain_local`] stopped at.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Front {
    /// An upstream reply is due (or nothing is owed).
    Waiting,
    /// The connection must close now (everything before was answered).
    Close,
}

impl Replies {
    pub(crate) fn new(state: ReplyState) -> Replies {
        Replies {
            queue: VecDeque::new(),
            state,
        }
    }

    /// Answers the local entries at the front of the queue.
    pub(crate) fn drain_local(&mut self, out: &mut BytesMut) -> Front {
        loop {
            match self.queue.front() {
                Some(Pending::Local(_)) => {
                    if let Some(Pending::Local(local)) = self.queue.pop_front() {
                        render(&local, &self.state, out);
                    }
                }
                Some(Pending::Close) => return Front::Close,
                _ => return Front::Waiting,
            }
        }
    }

    /// Delivers one upstream frame: a pub/sub message, or (part of) what the front entry is
    /// owed. Local entries must have been drained first.
    pub(crate) fn deliver(
        &mut self,
        frame: Bytes,
        env: &dyn Env,
        out: &mut BytesMut,
    ) -> Result<(), DataError> {
        let confirming = matches!(
            self.queue.front(),
            Some(Pending::Upstream(owed)) if matches!(owed.expect, Expect::Confirmations { .. })
        );
        let class = classify(&frame, &self.state, confirming, env.limits());
        if let Class::Message = class {
            return self.message(frame, env, out);
        }
        if let Class::OtherPush = class {
            out.extend_from_slice(&frame); // out of band (RESP3): not owed to anyone
            return Ok(());
        }
        let is_error = matches!(frame.first(), Some(b'-' | b'!'));
        let Some(front) = self.queue.front_mut() else {
            return Err(DataError::Desync(
                "Redis sent a reply to a command nobody sent",
            ));
        };
        match front {
            Pending::Capture(_) => self.captured(frame, class),
            Pending::Own => {
                if is_error {
                    tracing::warn!(
                        "redcloak's own command on the connection failed: {}",
                        String::from_utf8_lossy(&frame).trim_end()
                    );
                }
                self.queue.pop_front();
                Ok(())
            }
            Pending::Upstream(owed) => match (owed.expect, class) {
                (Expect::One, Class::Confirmation { .. }) => Err(DataError::Desync(
                    "Redis sent a pub/sub confirmation where a reply was due",
                )),
                (Expect::One, _) => {
                    let Some(Pending::Upstream(owed)) = self.queue.pop_front() else {
                        unreachable!("the front was just matched")
                    };
                    self.reply(*owed, frame, is_error, env, out);
                    Ok(())
                }
                (Expect::Confirmations { .. }, _) if is_error => {
                    // Redis refused the whole command (e.g. an ACL on a channel).
                    let Some(Pending::Upstream(owed)) = self.queue.pop_front() else {
                        unreachable!("the front was just matched")
                    };
                    self.state.left = None;
                    env.done(owed.name, Outcome::Error, owed.started);
                    out.extend_from_slice(&frame);
                    Ok(())
                }
                (
                    Expect::Confirmations { kind, names },
                    Class::Confirmation {
                        kind: got,
                        subscribe,
                        name,
                    },
                ) if got == kind => {
                    out.extend_from_slice(&frame);
                    self.confirm(kind, names, subscribe, name, env);
                    Ok(())
                }
                (Expect::Confirmations { .. }, _) => Err(DataError::Desync(
                    "Redis sent something else where a pub/sub confirmation was due",
                )),
            },
            Pending::Local(_) | Pending::Close => Err(DataError::Desync(
                "reply bookkeeping out of order (a local answer was not drained)",
            )),
        }
    }

    /// A reply to a command redcloak sent for itself on the client's connection (an emulated
    /// command's read, a script's call): handed to whoever waits for it.
    fn captured(&mut self, frame: Bytes, class: Class) -> Result<(), DataError> {
        if let Class::Confirmation { .. } = class {
            return Err(DataError::Desync(
                "Redis sent a pub/sub confirmation where redcloak's own reply was due",
            ));
        }
        let state = crate::atomic::LinkState {
            resp3: self.state.resp3,
            pubsub: self.state.subscribed() && !self.state.resp3,
        };
        if let Some(Pending::Capture(to)) = self.queue.pop_front() {
            // The receiver is gone only if its session is ending.
            let _ = to.send(Captured { frame, state });
        }
        Ok(())
    }

    /// One confirmation owed to the (un)subscribe command at the front: the subscriptions
    /// change as Redis says; the command is done when all its confirmations came.
    fn confirm(
        &mut self,
        kind: Channels,
        names: Option<usize>,
        subscribe: bool,
        name: Option<Bytes>,
        env: &dyn Env,
    ) {
        let set = &mut self.state.subs[ReplyState::kind(kind)];
        // Without names: one per subscription of the kind *when Redis gets to the command*,
        // which is now (every earlier reply has been delivered), and at least one.
        let left = self
            .state
            .left
            .unwrap_or_else(|| names.unwrap_or_else(|| set.len().max(1)));
        match (subscribe, name) {
            (true, Some(name)) => {
                set.insert(name);
            }
            (false, Some(name)) => {
                set.remove(&name);
            }
            _ => {}
        }
        if left > 1 {
            self.state.left = Some(left - 1);
            return;
        }
        self.state.left = None;
        if let Some(Pending::Upstream(owed)) = self.queue.pop_front() {
            env.done(owed.name, Outcome::Ok, owed.started);
        }
    }

    /// A pub/sub message: its payload decrypted; dropped (and counted) if it does not decrypt.
    /// Keyspace and keyevent notifications carry key and event names, never values: they pass.
    fn message(
        &mut self,
        frame: Bytes,
        env: &dyn Env,
        out: &mut BytesMut,
    ) -> Result<(), DataError> {
        if is_notification(&frame, env.limits()) {
            out.extend_from_slice(&frame);
            return Ok(());
        }
        match transform::decode_pubsub(&frame, &env.ring(), env.limits(), out) {
            Ok(_) => Ok(()),
            Err(ReplyError::Undecryptable(problem)) => {
                env.undecryptable("message", problem.error, true);
                Ok(())
            }
            Err(_) => Err(DataError::Desync("Redis sent a malformed pub/sub message")),
        }
    }

    /// The one reply to a forwarded command.
    fn reply(
        &mut self,
        owed: Owed,
        frame: Bytes,
        is_error: bool,
        env: &dyn Env,
        out: &mut BytesMut,
    ) {
        if !is_error {
            match owed.on_reply {
                OnReply::None => {}
                OnReply::Select(db) => self.state.db = db,
                OnReply::Hello(Some(resp3)) => self.state.resp3 = resp3,
                OnReply::Hello(None) => {}
                OnReply::Reset => {
                    self.state =
                        ReplyState::new(self.state.default_db, self.state.default_db, false);
                }
            }
        }
        if !matches!(owed.learning, Learning::None) {
            env.learn(self.state.db, owed.learning, &frame);
        }
        if let Some(replacement) = &owed.replace {
            render(replacement, &self.state, out);
            env.done(owed.name, Outcome::Ok, owed.started);
            return;
        }
        let outcome = match transform::decode_reply(
            &owed.plan,
            frame.clone(),
            &env.ring(),
            env.limits(),
            out,
        ) {
            Ok(_) if is_error => Outcome::Error,
            Ok(_) if matches!(owed.put_back, PutBack::Exec(_)) => {
                // Elements that did not decrypt became error elements: put their values back.
                put_back_exec(
                    owed.name,
                    &owed.plan,
                    &owed.put_back,
                    &frame,
                    env,
                    self.state.db,
                );
                Outcome::Ok
            }
            Ok(_) => Outcome::Ok,
            Err(ReplyError::Undecryptable(problem)) => {
                env.undecryptable(owed.name, problem.error, false);
                if let Some(command) = put_back_command(&owed.put_back, &frame, env.limits()) {
                    env.put_back(self.state.db, command);
                }
                let keys: Vec<&[u8]> = owed.keys.iter().map(|k| &k[..]).collect();
                let e = DataError::Undecryptable(transform::undecryptable_message(
                    owed.name, &keys, problem,
                ));
                env.error(&e);
                e.write(out);
                Outcome::Error
            }
            Err(_) => {
                tracing::warn!(command = owed.name, "malformed reply from Redis");
                let e = DataError::Malformed { command: owed.name };
                env.error(&e);
                e.write(out);
                Outcome::Error
            }
        };
        env.done(owed.name, outcome, owed.started);
    }

    /// Every entry still owed gets an error saying what happened (the connection is gone or
    /// is being closed); what their commands may have changed is forgotten by the cache.
    pub(crate) fn fail_all(
        &mut self,
        why: &'static str,
        env: &dyn Env,
        forget: &(dyn Fn(&Learning, u32) + Sync),
        out: &mut BytesMut,
    ) {
        for pending in self.queue.drain(..) {
            match pending {
                Pending::Local(local) => render(&local, &self.state, out),
                Pending::Upstream(owed) => {
                    forget(&owed.learning, self.state.db);
                    env.done(owed.name, Outcome::Lost, owed.started);
                    let e = DataError::Lost {
                        command: owed.name,
                        sent: true,
                        why,
                    };
                    env.error(&e);
                    e.write(out);
                }
                Pending::Own | Pending::Capture(_) => {}
                Pending::Close => break,
            }
        }
        self.state.left = None;
    }
}

/// What kind of frame arrived.
#[derive(Debug, PartialEq, Eq)]
enum Class {
    /// A reply.
    Reply,
    /// A pub/sub message (RESP3 push, or RESP2 array in pub/sub mode).
    Message,
    /// A (un)subscribe confirmation.
    Confirmation {
        kind: Channels,
        subscribe: bool,
        name: Option<Bytes>,
    },
    /// A RESP3 push that is none of the above (passed on, owed to nobody).
    OtherPush,
}

/// In RESP3 pub/sub frames are pushes. In RESP2 they are arrays: messages only while the
/// connection is subscribed, confirmations also while a (un)subscribe command is owed them
/// (the first SUBSCRIBE, an UNSUBSCRIBE while subscribed to nothing).
fn classify(frame: &Bytes, state: &ReplyState, confirming: bool, limits: &resp::Limits) -> Class {
    let push = frame.first() == Some(&b'>');
    let resp2_pubsub =
        frame.first() == Some(&b'*') && !state.resp3 && (state.subscribed() || confirming);
    if !push && !resp2_pubsub {
        return Class::Reply;
    }
    let items = match Frame::parse(frame, limits) {
        Ok(Some((Frame::Push(items) | Frame::Array(items), _))) => items,
        _ => return if push { Class::OtherPush } else { Class::Reply },
    };
    let kind = match items.first() {
        Some(Frame::Bulk(k) | Frame::Simple(k)) => k.to_ascii_lowercase(),
        _ => return if push { Class::OtherPush } else { Class::Reply },
    };
    let confirmation = |kind, subscribe| {
        let name = match items.get(1) {
            Some(Frame::Bulk(n)) => Some(n.clone()),
            _ => None,
        };
        Class::Confirmation {
            kind,
            subscribe,
            name,
        }
    };
    match &kind[..] {
        b"message" | b"pmessage" | b"smessage" => Class::Message,
        b"subscribe" => confirmation(Channels::Plain, true),
        b"unsubscribe" => confirmation(Channels::Plain, false),
        b"psubscribe" => confirmation(Channels::Pattern, true),
        b"punsubscribe" => confirmation(Channels::Pattern, false),
        b"ssubscribe" => confirmation(Channels::Shard, true),
        b"sunsubscribe" => confirmation(Channels::Shard, false),
        _ if push => Class::OtherPush,
        // RESP2 pub/sub mode: `["pong", msg]` is PING's reply.
        _ => Class::Reply,
    }
}

/// A keyspace or keyevent notification (`__keyspace@<db>__:…`, `__keyevent@<db>__:…`):
/// Redis publishes key and event names there, never application values.
fn is_notification(frame: &Bytes, limits: &resp::Limits) -> bool {
    let Ok(Some((Frame::Push(items) | Frame::Array(items), _))) = Frame::parse(frame, limits)
    else {
        return false;
    };
    let channel = match (items.first(), items.get(1), items.get(2)) {
        (Some(Frame::Bulk(k)), Some(Frame::Bulk(c)), _) if k.eq_ignore_ascii_case(b"message") => c,
        (Some(Frame::Bulk(k)), _, Some(Frame::Bulk(c))) if k.eq_ignore_ascii_case(b"pmessage") => c,
        _ => return false,
    };
    channel.starts_with(b"__keyspace@") || channel.starts_with(b"__keyevent@")
}

/// Renders a local answer with the connection's state at its turn.
pub(crate) fn render(local: &Local2, state: &ReplyState, out: &mut BytesMut) {
    let pubsub_mode = state.subscribed() && !state.resp3;
    if let (true, Some(name)) = (pubsub_mode, &local.pubsub_name) {
        // Redis refuses everything but (un)subscribing, PING, QUIT and RESET in RESP2
        // pub/sub mode; redcloak's local answers follow the same rule.
        resp::write_error(
            out,
            &format!(
                "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            ),
        );
        return;
    }
    match &local.answer {
        Answer::Ok => out.extend_from_slice(b"+OK\r\n"),
        Answer::Queued => out.extend_from_slice(b"+QUEUED\r\n"),
        Answer::Pong(msg) if pubsub_mode => {
            resp::write_array_len(out, 2);
            resp::write_bulk(out, b"pong");
            resp::write_bulk(out, msg.as_deref().unwrap_or_default());
        }
        Answer::Pong(Some(msg)) => resp::write_bulk(out, msg),
        Answer::Pong(None) => out.extend_from_slice(b"+PONG\r\n"),
        Answer::Frame(frame) => frame.encode(out),
        Answer::NilArray => out.extend_from_slice(if state.resp3 { b"_\r\n" } else { b"*-1\r\n" }),
        Answer::Error(e) => e.write(out),
    }
}

/// EXEC's reply: for each queued destructive read whose element does not decrypt by its
/// shape, puts back what it took.
fn put_back_exec(
    name: &'static str,
    plan: &Plan,
    how: &PutBack,
    frame: &Bytes,
    env: &dyn Env,
    db: u32,
) {
    let (Plan::Exec(queued), PutBack::Exec(pops)) = (plan, how) else {
        return;
    };
    let Ok(Some((Frame::Array(items), _))) = Frame::parse(frame, env.limits()) else {
        return; // EXECABORT, nil (WATCH): nothing ran
    };
    for (index, put_back) in pops {
        // Redis's reply holds the commands it queued; the ones answered here are not in it.
        let plan = match queued.get(*index) {
            Some(transform::Queued::Shape(shape)) => Plan::Shape(shape),
            Some(transform::Queued::At(shape, site)) => Plan::At(shape, site.clone()),
            _ => continue,
        };
        let at = queued[..*index]
            .iter()
            .filter(|q| !matches!(q, transform::Queued::Local(_)))
            .count();
        let Some(item) = items.get(at) else { continue };
        let mut raw = BytesMut::new();
        item.encode(&mut raw);
        let raw = raw.freeze();
        let decoded = transform::decode_reply(
            &plan,
            raw.clone(),
            &env.ring(),
            env.limits(),
            &mut BytesMut::new(),
        );
        if let Err(ReplyError::Undecryptable(problem)) = decoded {
            env.undecryptable(name, problem.error, false);
            if let Some(command) = put_back_command(put_back, &raw, env.limits()) {
                env.put_back(db, command);
            }
        }
    }
}

/// How a destructive read puts back a value that does not decrypt. `tokens`: the ciphertexts
/// of the command's value arguments as sent (an overwrite's put-back checks the key still
/// holds it).
pub(crate) fn put_back(
    pops: Pops,
    args: &[Bytes],
    keys: &table::KeyUse,
    tokens: &[Bytes],
) -> PutBack {
    match pops {
        Pops::None => PutBack::None,
        Pops::Overwrite | Pops::OverwriteWith(_) => match tokens.first() {
            Some(written) if pops.overwrites(args) => PutBack::Overwritten {
                key: args[1].clone(),
                written: written.clone(),
            },
            _ => PutBack::None,
        },
        Pops::Head => PutBack::Head(args[1].clone()),
        Pops::Tail => PutBack::Tail(args[1].clone()),
        Pops::KeyedHead => PutBack::Keyed(true),
        Pops::KeyedTail => PutBack::Keyed(false),
        Pops::String => PutBack::String(args[1].clone()),
        Pops::SetMembers => PutBack::Set(args[1].clone()),
        Pops::Scored => PutBack::Scored(args[1].clone()),
        Pops::KeyedScored => PutBack::KeyedScored,
        Pops::MultiScored => PutBack::MultiScored,
        Pops::Multi => {
            // LMPOP numkeys key … LEFT|RIGHT: the direction follows the keys.
            let after = keys.positions().max().map_or(args.len(), |i| i + 1);
            let head = args
                .get(after)
                .is_some_and(|a| redcloak_commands::words::is(a, "LEFT"));
            PutBack::Multi(head)
        }
    }
}

/// The command that puts back what a destructive read returned (raw ciphertext, as Redis
/// held it), or `None` when there is nothing to put back.
pub(crate) fn put_back_command(
    how: &PutBack,
    frame: &Bytes,
    limits: &resp::Limits,
) -> Option<Vec<Bytes>> {
    let parsed = Frame::parse(frame, limits).ok()??.0;
    let bulks = |f: Frame| -> Vec<Bytes> {
        match f {
            Frame::Bulk(b) => vec![b],
            Frame::Array(items) => items
                .into_iter()
                .filter_map(|i| match i {
                    Frame::Bulk(b) => Some(b),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    let (push, key, mut values): (&'static [u8], Bytes, Vec<Bytes>) = match (how, parsed) {
        (PutBack::None | PutBack::Exec(_), _) => return None,
        (PutBack::Set(key), f) => {
            let members = bulks(f);
            if members.is_empty() {
                return None;
            }
            let mut command = vec![Bytes::from_static(b"SADD"), key.clone()];
            command.extend(members);
            return Some(command);
        }
        (PutBack::Scored(key), f) => return zadd(key.clone(), f),
        (PutBack::KeyedScored, Frame::Array(mut kms)) if kms.len() == 3 => {
            let score = kms.pop()?;
            let member = kms.pop()?;
            let Frame::Bulk(key) = kms.pop()? else {
                return None;
            };
            return zadd(key, Frame::Array(vec![member, score]));
        }
        (PutBack::MultiScored, Frame::Array(mut kv)) if kv.len() == 2 => {
            let pairs = kv.pop()?;
            let Frame::Bulk(key) = kv.pop()? else {
                return None;
            };
            return zadd(key, pairs);
        }
        (PutBack::Overwritten { key, written }, Frame::Bulk(old)) => {
            return Some(vec![
                Bytes::from_static(b"EVAL"),
                Bytes::from_static(PUT_BACK_IF_UNCHANGED),
                Bytes::from_static(b"1"),
                key.clone(),
                written.clone(),
                old,
            ])
        }
        (PutBack::String(key), Frame::Bulk(value)) => {
            return Some(vec![
                Bytes::from_static(b"SET"),
                key.clone(),
                value,
                Bytes::from_static(b"NX"),
            ])
        }
        (PutBack::Head(key), f) => (b"LPUSH", key.clone(), bulks(f)),
        (PutBack::Tail(key), f) => (b"RPUSH", key.clone(), bulks(f)),
        // [key, value] (BLPOP / BRPOP), [key, [values…]] (LMPOP / BLMPOP)
        (PutBack::Keyed(head) | PutBack::Multi(head), Frame::Array(mut kv)) if kv.len() == 2 => {
            let values = kv.pop()?;
            let Frame::Bulk(key) = kv.pop()? else {
                return None;
            };
            let push: &'static [u8] = if *head { b"LPUSH" } else { b"RPUSH" };
            (push, key, bulks(values))
        }
        _ => return None,
    };
    if values.is_empty() {
        return None;
    }
    // Popped first = pushed back last, so the list reads as before.
    values.reverse();
    let mut command = vec![Bytes::from_static(push), key];
    command.append(&mut values);
    Some(command)
}

/// `ZADD key score member …` putting back popped member/score pairs (flat or nested, scores
/// as bulk strings or RESP3 doubles), as Redis held them.
fn zadd(key: Bytes, pairs: Frame) -> Option<Vec<Bytes>> {
    let Frame::Array(items) = pairs else {
        return None;
    };
    let flat: Vec<Frame> = items
        .into_iter()
        .flat_map(|item| match item {
            Frame::Array(pair) => pair,
            other => vec![other],
        })
        .collect();
    let text = |f: &Frame| match f {
        Frame::Bulk(b) | Frame::Double(b) => Some(b.clone()),
        _ => None,
    };
    let mut command = vec![Bytes::from_static(b"ZADD"), key];
    for pair in flat.chunks(2) {
        let [member, score] = pair else { return None };
        command.push(text(score)?);
        command.push(text(member)?);
    }
    (command.len() > 2).then_some(command)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::session::plan::{Answer, Expect, Local2, OnReply};
    use redcloak_commands::table::Shape;

    struct TestEnv {
        ring: KeyRing,
        limits: resp::Limits,
        done: Mutex<Vec<(&'static str, Outcome)>>,
        undecryptable: Mutex<Vec<(&'static str, bool)>>,
        put_back: Mutex<Vec<Vec<Bytes>>>,
    }

    impl TestEnv {
        fn new() -> TestEnv {
            TestEnv {
                ring: KeyRing::parse(&redcloak_crypto::generate_key()).unwrap(),
                limits: resp::Limits::default(),
                done: Mutex::default(),
                undecryptable: Mutex::default(),
                put_back: Mutex::default(),
            }
        }
    }

    impl Env for TestEnv {
        fn ring(&self) -> KeyRing {
            self.ring.clone()
        }
        fn limits(&self) -> &resp::Limits {
            &self.limits
        }
        fn learn(&self, _: u32, _: Learning, _: &Bytes) {}
        fn error(&self, _: &DataError) {}
        fn done(&self, name: &'static str, outcome: Outcome, _: Instant) {
            self.done.lock().unwrap().push((name, outcome));
        }
        fn undecryptable(&self, name: &'static str, _: DecryptError, pubsub: bool) {
            self.undecryptable.lock().unwrap().push((name, pubsub));
        }
        fn put_back(&self, _: u32, command: Vec<Bytes>) {
            self.put_back.lock().unwrap().push(command);
        }
    }

    fn owed(name: &'static str, expect: Expect, plan: Plan) -> Pending {
        Pending::Upstream(Box::new(Owed {
            name,
            expect,
            plan,
            replace: None,
            on_reply: OnReply::None,
            learning: Learning::None,
            keys: vec![Bytes::from_static(b"k")],
            put_back: PutBack::None,
            started: Instant::now(),
            blocking: false,
        }))
    }

    fn one(name: &'static str) -> Pending {
        owed(name, Expect::One, Plan::Shape(&Shape::Pass))
    }

    fn frame(items: &[&[u8]], count: i64, push: bool) -> Bytes {
        let mut v: Vec<Frame> = items
            .iter()
            .map(|i| Frame::Bulk(Bytes::copy_from_slice(i)))
            .collect();
        v.push(Frame::Integer(count));
        let f = if push {
            Frame::Push(v)
        } else {
            Frame::Array(v)
        };
        let mut out = BytesMut::new();
        f.encode(&mut out);
        out.freeze()
    }

    fn b(s: &[u8]) -> Bytes {
        Bytes::copy_from_slice(s)
    }

    /// RESP2: `UNSUBSCRIBE a b c` gets three confirmations, then PING's reply is PING's.
    #[test]
    fn unsubscribe_with_names_owes_one_confirmation_each() {
        for resp3 in [false, true] {
            let env = TestEnv::new();
            let mut r = Replies::new(ReplyState::new(0, 0, resp3));
            let mut out = BytesMut::new();
            r.queue.push_back(owed(
                "UNSUBSCRIBE",
                Expect::Confirmations {
                    kind: Channels::Plain,
                    names: Some(3),
                },
                Plan::Shape(&Shape::Pass),
            ));
            r.queue.push_back(one("PING"));
            for name in [&b"a"[..], b"b", b"c"] {
                r.deliver(frame(&[b"unsubscribe", name], 0, resp3), &env, &mut out)
                    .unwrap();
            }
            assert_eq!(r.queue.len(), 1, "resp3={resp3}");
            r.deliver(b(b"+PONG\r\n"), &env, &mut out).unwrap();
            assert!(r.queue.is_empty());
            assert!(out.ends_with(b"+PONG\r\n"));
        }
    }

    /// Without names: one confirmation per current subscription of the kind, or one.
    #[test]
    fn unsubscribe_without_names_owes_what_the_connection_holds() {
        let env = TestEnv::new();
        let mut r = Replies::new(ReplyState::new(0, 0, false));
        let mut out = BytesMut::new();
        r.queue.push_back(owed(
            "SUBSCRIBE",
            Expect::Confirmations {
                kind: Channels::Plain,
                names: Some(2),
            },
            Plan::Shape(&Shape::Pass),
        ));
        r.queue.push_back(owed(
            "PSUBSCRIBE",
            Expect::Confirmations {
                kind: Channels::Pattern,
                names: Some(1),
            },
            Plan::Shape(&Shape::Pass),
        ));
        r.queue.push_back(owed(
            "UNSUBSCRIBE",
            Expect::Confirmations {
                kind: Channels::Plain,
                names: None,
            },
            Plan::Shape(&Shape::Pass),
        ));
        r.queue.push_back(owed(
            "UNSUBSCRIBE",
            Expect::Confirmations {
                kind: Channels::Plain,
                names: None,
            },
            Plan::Shape(&Shape::Pass),
        ));
        r.queue.push_back(one("PING"));
        r.deliver(frame(&[b"subscribe", b"a"], 1, false), &env, &mut out)
            .unwrap();
        r.deliver(frame(&[b"subscribe", b"b"], 2, false), &env, &mut out)
            .unwrap();
        r.deliver(frame(&[b"psubscribe", b"p*"], 3, false), &env, &mut out)
            .unwrap();
        // A message in between is delivered, owed to nobody.
        let token = env.ring.encrypt(b"hello");
        r.deliver(frame_msg(&token), &env, &mut out).unwrap();
        assert!(out.windows(5).any(|w| w == b"hello"));
        r.deliver(frame(&[b"unsubscribe", b"a"], 2, false), &env, &mut out)
            .unwrap();
        r.deliver(frame(&[b"unsubscribe", b"b"], 1, false), &env, &mut out)
            .unwrap();
        // No channel left: the second UNSUBSCRIBE gets one confirmation with a nil name.
        let mut nil = BytesMut::new();
        Frame::Array(vec![
            Frame::Bulk(b(b"unsubscribe")),
            Frame::NullBulk,
            Frame::Integer(1),
        ])
        .encode(&mut nil);
        r.deliver(nil.freeze(), &env, &mut out).unwrap();
        assert_eq!(r.queue.len(), 1);
        assert!(r.state.subscribed(), "the pattern subscription remains");
        // Still in RESP2 pub/sub mode (a pattern is left): PING's reply is an array.
        out.clear();
        r.deliver(b(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"), &env, &mut out)
            .unwrap();
        assert!(r.queue.is_empty());
        assert_eq!(&out[..], b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    }

    fn frame_msg(payload: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        Frame::Array(vec![
            Frame::Bulk(b(b"message")),
            Frame::Bulk(b(b"a")),
            Frame::Bulk(b(payload)),
        ])
        .encode(&mut out);
        out.freeze()
    }

    /// Anything that does not fit what the front is owed closes the connection.
    #[test]
    fn frames_that_cannot_be_accounted_for_are_desyncs() {
        let env = TestEnv::new();
        let mut out = BytesMut::new();
        let mut r = Replies::new(ReplyState::new(0, 0, true));
        assert!(matches!(
            r.deliver(b(b"+OK\r\n"), &env, &mut out),
            Err(DataError::Desync(_))
        ));
        r.queue.push_back(one("GET"));
        assert!(
            matches!(
                r.deliver(frame(&[b"unsubscribe", b"x"], 0, true), &env, &mut out),
                Err(DataError::Desync(_))
            ),
            "a confirmation where a reply is due"
        );
        let mut r = Replies::new(ReplyState::new(0, 0, false));
        r.queue.push_back(owed(
            "SUBSCRIBE",
            Expect::Confirmations {
                kind: Channels::Plain,
                names: Some(1),
            },
            Plan::Shape(&Shape::Pass),
        ));
        assert!(
            matches!(
                r.deliver(b(b"$3\r\nabc\r\n"), &env, &mut out),
                Err(DataError::Desync(_))
            ),
            "a reply where a confirmation is due"
        );
        assert!(
            matches!(
                r.deliver(frame(&[b"psubscribe", b"x"], 1, false), &env, &mut out),
                Err(DataError::Desync(_))
            ),
            "a confirmation of another kind"
        );
        // An error ends the whole subscribe command (Redis refused it).
        r.deliver(b(b"-NOPERM no\r\n"), &env, &mut out).unwrap();
        assert!(r.queue.is_empty());
    }

    #[test]
    fn local_answers_follow_the_connection_state() {
        let mut state = ReplyState::new(0, 0, false);
        let mut out = BytesMut::new();
        let echo = Local2 {
            answer: Answer::Frame(Frame::Bulk(b(b"hi"))),
            pubsub_name: Some("echo".into()),
        };
        render(&echo, &state, &mut out);
        assert_eq!(&out[..], b"$2\r\nhi\r\n");
        state.subs[0].insert(b(b"a"));
        out.clear();
        render(&echo, &state, &mut out);
        assert!(out.starts_with(b"-ERR Can't execute 'echo'"));
        out.clear();
        render(
            &Local2 {
                answer: Answer::Pong(Some(b(b"m"))),
                pubsub_name: None,
            },
            &state,
            &mut out,
        );
        assert_eq!(&out[..], b"*2\r\n$4\r\npong\r\n$1\r\nm\r\n");
        state.resp3 = true;
        out.clear();
        render(
            &Local2 {
                answer: Answer::NilArray,
                pubsub_name: None,
            },
            &state,
            &mut out,
        );
        assert_eq!(&out[..], b"_\r\n");
    }

    #[test]
    fn keyspace_notifications_pass_and_bad_messages_are_counted() {
        let env = TestEnv::new();
        let mut out = BytesMut::new();
        let mut r = Replies::new(ReplyState::new(0, 0, true));
        let mut note = BytesMut::new();
        Frame::Push(vec![
            Frame::Bulk(b(b"message")),
            Frame::Bulk(b(b"__keyevent@0__:set")),
            Frame::Bulk(b(b"mykey")),
        ])
        .encode(&mut note);
        r.deliver(note.clone().freeze(), &env, &mut out).unwrap();
        assert_eq!(&out[..], &note[..]);
        out.clear();
        let mut bad = BytesMut::new();
        Frame::Push(vec![
            Frame::Bulk(b(b"message")),
            Frame::Bulk(b(b"ch")),
            Frame::Bulk(b(b"plaintext")),
        ])
        .encode(&mut bad);
        r.deliver(bad.freeze(), &env, &mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!(*env.undecryptable.lock().unwrap(), vec![("message", true)]);
    }

    #[test]
    fn destructive_reads_put_back_what_does_not_decrypt() {
        let env = TestEnv::new();
        let mut out = BytesMut::new();
        let mut r = Replies::new(ReplyState::new(0, 0, false));
        let mut lpop = owed("LPOP", Expect::One, Plan::Shape(&Shape::Values));
        if let Pending::Upstream(o) = &mut lpop {
            o.put_back = PutBack::Head(b(b"q"));
        }
        r.queue.push_back(lpop);
        r.deliver(b(b"*2\r\n$2\r\nx1\r\n$2\r\nx2\r\n"), &env, &mut out)
            .unwrap();
        assert!(out.starts_with(b"-ERR redcloak: LPOP"));
        assert_eq!(
            *env.put_back.lock().unwrap(),
            vec![vec![b(b"LPUSH"), b(b"q"), b(b"x2"), b(b"x1")]]
        );
        let blpop = put_back_command(
            &PutBack::Keyed(false),
            &b(b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n"),
            &resp::Limits::default(),
        );
        assert_eq!(blpop, Some(vec![b(b"RPUSH"), b(b"k"), b(b"v")]));
        let getdel = put_back_command(
            &PutBack::String(b(b"k")),
            &b(b"$1\r\nv\r\n"),
            &resp::Limits::default(),
        );
        assert_eq!(getdel, Some(vec![b(b"SET"), b(b"k"), b(b"v"), b(b"NX")]));
        let overwritten = PutBack::Overwritten {
            key: b(b"k"),
            written: b(b"token"),
        };
        let getset = put_back_command(&overwritten, &b(b"$3\r\nold\r\n"), &resp::Limits::default());
        assert_eq!(
            getset,
            Some(vec![
                b(b"EVAL"),
                Bytes::from_static(PUT_BACK_IF_UNCHANGED),
                b(b"1"),
                b(b"k"),
                b(b"token"),
                b(b"old")
            ])
        );
        // SET … NX GET answering nil, or a plain SET's +OK: nothing to put back.
        assert_eq!(
            put_back_command(&overwritten, &b(b"$-1\r\n"), &resp::Limits::default()),
            None
        );
        assert_eq!(
            put_back_command(&overwritten, &b(b"+OK\r\n"), &resp::Limits::default()),
            None
        );
        let limits = resp::Limits::default();
        let spop = put_back_command(
            &PutBack::Set(b(b"s")),
            &b(b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"),
            &limits,
        );
        assert_eq!(spop, Some(vec![b(b"SADD"), b(b"s"), b(b"a"), b(b"b")]));
        // RESP2 flat pairs and RESP3 nested pairs with double scores.
        let flat = put_back_command(
            &PutBack::Scored(b(b"z")),
            &b(b"*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$3\r\n2.5\r\n"),
            &limits,
        );
        let expected = Some(vec![
            b(b"ZADD"),
            b(b"z"),
            b(b"1"),
            b(b"a"),
            b(b"2.5"),
            b(b"b"),
        ]);
        assert_eq!(flat, expected);
        let nested = put_back_command(
            &PutBack::Scored(b(b"z")),
            &b(b"*2\r\n*2\r\n$1\r\na\r\n,1\r\n*2\r\n$1\r\nb\r\n,2.5\r\n"),
            &limits,
        );
        assert_eq!(nested, expected);
        let bzpop = put_back_command(
            &PutBack::KeyedScored,
            &b(b"*3\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\n1\r\n"),
            &limits,
        );
        assert_eq!(bzpop, Some(vec![b(b"ZADD"), b(b"z"), b(b"1"), b(b"a")]));
        let zmpop = put_back_command(
            &PutBack::MultiScored,
            &b(b"*2\r\n$1\r\nz\r\n*1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"),
            &limits,
        );
        assert_eq!(zmpop, Some(vec![b(b"ZADD"), b(b"z"), b(b"1"), b(b"a")]));
        assert_eq!(
            put_back_command(&PutBack::Set(b(b"s")), &b(b"$-1\r\n"), &limits),
            None,
            "nothing popped, nothing to put back"
        );
    }

    /// A destructive read queued in MULTI gets its values with EXEC: what does not decrypt
    /// there is put back too (the element's index skips commands answered locally).
    #[test]
    fn pops_inside_exec_put_back_what_does_not_decrypt() {
        use redcloak_commands::transform::Queued;
        let env = TestEnv::new();
        let good = env.ring.encrypt(b"good");
        let mut out = BytesMut::new();
        let mut r = Replies::new(ReplyState::new(0, 0, false));
        let mut exec = owed(
            "EXEC",
            Expect::One,
            Plan::Exec(vec![
                Queued::Shape(&Shape::Values),
                Queued::Local(Frame::Bulk(b(b"echo"))),
                Queued::Shape(&Shape::Values),
                Queued::Shape(&Shape::Value),
            ]),
        );
        if let Pending::Upstream(o) = &mut exec {
            o.put_back = PutBack::Exec(vec![
                (0, PutBack::Head(b(b"q"))),
                (2, PutBack::Tail(b(b"q2"))),
                (3, PutBack::String(b(b"s"))),
            ]);
        }
        r.queue.push_back(exec);
        let mut reply = BytesMut::new();
        Frame::Array(vec![
            Frame::Bulk(b(b"plaintext")),
            Frame::Bulk(Bytes::from(good)),
            Frame::Bulk(b(b"also-bad")),
        ])
        .encode(&mut reply);
        r.deliver(reply.freeze(), &env, &mut out).unwrap();
        assert!(out.starts_with(b"*4\r\n-ERR redcloak"), "{out:?}");
        assert_eq!(
            *env.put_back.lock().unwrap(),
            vec![
                vec![b(b"LPUSH"), b(b"q"), b(b"plaintext")],
                vec![b(b"SET"), b(b"s"), b(b"also-bad"), b(b"NX")],
            ]
        );
    }
}
