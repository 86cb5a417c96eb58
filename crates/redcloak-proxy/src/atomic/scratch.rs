//! A private view of the keyspace for one atomic execution that redcloak carries out itself
//! (a transaction with emulated commands, a script): Redis's own optimistic concurrency, with
//! scratch copies.
//!
//! - The first time a key is touched it is WATCHed; the first time it is written it is
//!   COPYed (value and TTL) to a scratch key. Reads of keys not written yet go to the key
//!   itself — WATCH guarantees it has not changed since — and everything else to the copy.
//! - Commands run one by one on that view, so each sees the effects of the ones before,
//!   exactly as inside Redis; values are encrypted and decrypted like any request or reply.
//! - [`Scratch::commit`] makes every change visible at once: `MULTI`, then for each written
//!   key `DEL key` + `RENAME copy key` (a copy that no longer exists means the key was
//!   deleted: the RENAME's error is expected), the deferred PUBLISHes, `EXEC`. If a watched
//!   key changed meanwhile, EXEC does nothing and the caller runs everything again.
//!
//! No other client, through this redcloak or any other, can see an intermediate state: the
//! keys themselves change only inside the final EXEC. Copies are named
//! `redcloak:scratch:<unix ms>:<instance>:<n>` ([`PREFIX`]); redcloak hides them from
//! KEYS/SCAN, deletes them after every attempt, and the janitor deletes those a crashed
//! execution left behind.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use redcloak_commands::emulate::{self, Step};
use redcloak_commands::resp::{self, Frame};
use redcloak_commands::table::{self, Action, CommandSpec, Effect, Local, Resolved};
use redcloak_commands::transform::{self, Plan};
use redcloak_crypto::KeyRing;

use super::rmw::{self, Emulation, Failed, Snapshot};
use super::{Exchange, ExchangeError};
use crate::session::replies::{put_back, put_back_command};

/// Whether Redis finds the command's keys and arity right (else it answers an error).
fn well_formed(args: &[Bytes]) -> bool {
    match table::resolve(args) {
        Resolved::Known { spec, parent } => {
            spec.arity_ok(args.len()) && !table::keys_of(spec, parent, args).invalid
        }
        _ => false,
    }
}

/// What every scratch key starts with.
pub(crate) const PREFIX: &[u8] = redcloak_commands::table::SCRATCH_PREFIX;

/// This process's share of the scratch namespace, random at start.
fn instance() -> u64 {
    static INSTANCE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *INSTANCE.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .elapsed()
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_u32(std::process::id());
        h.finish()
    })
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Redis's clock minus this machine's, in ms, as the janitor last measured it (`TIME`).
static REDIS_CLOCK_OFFSET_MS: AtomicI64 = AtomicI64::new(0);

/// Records how far Redis's clock is from this machine's (`redis_ms` read from `TIME` at
/// `local_ms`).
pub(crate) fn set_redis_clock(redis_ms: u64, local_ms: u64) {
    let offset = i64::try_from(redis_ms).unwrap_or(i64::MAX) - i64::try_from(local_ms).unwrap_or(0);
    REDIS_CLOCK_OFFSET_MS.store(offset, Ordering::Relaxed);
}

/// Now on Redis's clock (Unix ms). Scratch keys are named with it and the janitor judges
/// their age by it, so that redcloaks whose clocks disagree — one a minute behind another —
/// never take each other's running executions for left-overs.
pub(crate) fn redis_now_ms() -> u64 {
    crate::fallback::now_ms().saturating_add_signed(REDIS_CLOCK_OFFSET_MS.load(Ordering::Relaxed))
}

/// A new scratch key name.
fn scratch_name() -> Bytes {
    let ms = redis_now_ms();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut name = Vec::with_capacity(PREFIX.len() + 48);
    name.extend_from_slice(PREFIX);
    name.extend_from_slice(format!("{ms}:{:016x}:{n}", instance()).as_bytes());
    Bytes::from(name)
}

/// What one command run on the view produced.
#[derive(Debug)]
pub(crate) enum Ran {
    /// Its reply, as the client sees it.
    Reply(Frame),
    /// A PUBLISH, sent only at commit: its reply is the commit's result at this index.
    Deferred(usize),
}

/// How a commit ended.
#[derive(Debug)]
pub(crate) enum Commit {
    /// Every change is in Redis; the deferred commands' replies, in order.
    Done(Vec<Frame>),
    /// A watched key changed: nothing was changed; run everything again.
    Conflict,
}

/// What a scratch execution needs besides the exchange.
pub(crate) struct Ctx<'a> {
    /// The key ring in use.
    pub ring: &'a KeyRing,
    /// Reply parser limits.
    pub limits: &'a resp::Limits,
    /// The database the commands run in (the client's): where their values are bound.
    pub db: u32,
}

/// The private view.
pub(crate) struct Scratch<'a, E> {
    ex: &'a mut E,
    ctx: Ctx<'a>,
    watched: HashSet<Bytes>,
    /// Key → its scratch copy (only keys written so far).
    copies: HashMap<Bytes, Bytes>,
    /// Scratch copy → its key, to give replies the names the client knows.
    names: HashMap<Bytes, Bytes>,
    deferred: Vec<Vec<Bytes>>,
}

impl<'a, E: Exchange> Scratch<'a, E> {
    pub(crate) fn new(ex: &'a mut E, ctx: Ctx<'a>) -> Scratch<'a, E> {
        Scratch {
            ex,
            ctx,
            watched: HashSet::new(),
            copies: HashMap::new(),
            names: HashMap::new(),
            deferred: Vec::new(),
        }
    }

    /// The exchange's protocol.
    pub(crate) fn resp3(&self) -> bool {
        self.ex.state().resp3
    }

    /// Switches the exchange's protocol when it can (see [`Exchange::switch_protocol`]).
    pub(crate) async fn switch_protocol(&mut self, resp3: bool) -> Result<bool, ExchangeError> {
        if self.resp3() == resp3 {
            return Ok(true);
        }
        self.ex.switch_protocol(resp3).await
    }

    /// Clients subscribed to `channel` now (`PUBSUB NUMSUB`): what a script sees as the
    /// reply of a PUBLISH that is sent only at commit (pattern subscribers are not counted).
    pub(crate) async fn subscribers(&mut self, channel: &Bytes) -> Result<Frame, ExchangeError> {
        let replies = self
            .ex
            .call(vec![vec![
                Bytes::from_static(b"PUBSUB"),
                Bytes::from_static(b"NUMSUB"),
                channel.clone(),
            ]])
            .await?;
        let n = match replies.first().map(|r| rmw::parse(self.ctx.limits, r)) {
            Some(Ok(Frame::Array(items))) => match items.get(1) {
                Some(Frame::Integer(n)) => *n,
                _ => 0,
            },
            Some(Ok(Frame::Map(pairs))) => match pairs.first().map(|p| &p.1) {
                Some(Frame::Integer(n)) => *n,
                _ => 0,
            },
            _ => 0,
        };
        Ok(Frame::Integer(n))
    }

    /// Runs one command, as a client sent it, on the view. A blocking command runs as Redis
    /// runs it inside a transaction: without blocking (`table::blocking`).
    pub(crate) async fn run(&mut self, args: &[Bytes]) -> Result<Ran, ExchangeError> {
        use table::blocking::Unblocked;
        let unblocked = match table::resolve(args) {
            Resolved::Known { spec, .. } if spec.arity_ok(args.len()) => {
                match transform::action(spec, self.ctx.ring.format()) {
                    Action::Forward => {
                        // A move refused in this value format is refused as it is.
                        if let Some(text) = transform::send_error(spec, args, self.ctx.ring) {
                            return Ok(error(text));
                        }
                        table::blocking::unblocked(args)
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        match unblocked {
            None => self.run_as_sent(args, false).await,
            Some(Unblocked::AsSent) => self.run_as_sent(args, true).await,
            // Arguments Redis rejects whatever the timeout (numkeys, unbalanced streams):
            // sent as they are, Redis answers its own error before it could block.
            Some(Unblocked::Instead(instead)) if well_formed(&instead) => {
                self.run_as_sent(&instead, true).await
            }
            Some(Unblocked::Instead(_)) => self.run_as_sent(args, true).await,
            Some(Unblocked::FirstOf { pop, keys }) => {
                for key in keys {
                    let popped = self
                        .run_as_sent(&[Bytes::from_static(pop.as_bytes()), key.clone()], false)
                        .await?;
                    match popped {
                        Ran::Reply(Frame::Null | Frame::NullBulk | Frame::NullArray) => {}
                        Ran::Reply(Frame::Array(items)) if items.is_empty() => {}
                        Ran::Reply(Frame::Array(items)) => {
                            let mut reply = vec![Frame::Bulk(key)];
                            reply.extend(items);
                            return Ok(Ran::Reply(Frame::Array(reply)));
                        }
                        Ran::Reply(Frame::Bulk(value)) => {
                            return Ok(Ran::Reply(Frame::Array(vec![
                                Frame::Bulk(key),
                                Frame::Bulk(value),
                            ])))
                        }
                        // An error (WRONGTYPE) is the answer.
                        other => return Ok(other),
                    }
                }
                Ok(Ran::Reply(if self.resp3() {
                    Frame::Null
                } else {
                    Frame::NullArray
                }))
            }
        }
    }

    /// Runs one command on the view as it is; `unblocked`: a blocking command that cannot
    /// block as sent (see [`Scratch::run`]), which is not refused for blocking.
    async fn run_as_sent(&mut self, args: &[Bytes], unblocked: bool) -> Result<Ran, ExchangeError> {
        let (spec, parent) = match table::resolve(args) {
            Resolved::Known { spec, parent } => (spec, parent),
            Resolved::Unknown => return Ok(error(transform::unknown_command_message(args))),
            Resolved::UnknownSubcommand(_) => {
                return Ok(error(transform::unknown_subcommand_message(args)))
            }
            Resolved::MissingSubcommand(c) => return Ok(error(transform::arity_message(c, None))),
        };
        if !spec.arity_ok(args.len()) {
            return Ok(error(transform::arity_message(spec, parent)));
        }
        let name = table::display_name(spec, parent);
        match transform::action(spec, self.ctx.ring.format()) {
            Action::Refuse(refusal) => Ok(error(transform::refusal_message(&name, &refusal))),
            Action::Local(local) => Ok(Ran::Reply(self.local(local, spec, parent, args))),
            Action::Emulate => self.emulate(spec, args).await.map(Ran::Reply),
            // Scripts inside a transaction run on its view (see `transaction`); a script
            // cannot call another.
            Action::Script(_) => Ok(Ran::Reply(not_here(&name))),
            Action::Forward => self.forward(spec, parent, &name, args, unblocked).await,
        }
    }

    fn local(
        &self,
        local: Local,
        spec: &CommandSpec,
        parent: Option<&CommandSpec>,
        args: &[Bytes],
    ) -> Frame {
        match local {
            Local::Echo => Frame::Bulk(args[1].clone()),
            Local::Ping if args.len() > 2 => {
                Frame::Error(Bytes::from(transform::arity_message(spec, parent)))
            }
            Local::Ping => match args.get(1) {
                Some(m) => Frame::Bulk(m.clone()),
                None => Frame::Simple(Bytes::from_static(b"PONG")),
            },
            Local::GetKeys { flags } => table::command_getkeys(&args[2..], flags)
                .unwrap_or_else(|e| Frame::Error(Bytes::from_static(e.as_bytes()))),
            Local::Auth | Local::Quit => not_here(spec.name),
        }
    }

    async fn forward(
        &mut self,
        spec: &'static CommandSpec,
        parent: Option<&'static CommandSpec>,
        name: &str,
        args: &[Bytes],
        unblocked: bool,
    ) -> Result<Ran, ExchangeError> {
        match spec.effect {
            Effect::None => {}
            Effect::Publish => {
                let encrypted =
                    match transform::encrypt_args(spec, args, self.ctx.db, self.ctx.ring) {
                        Ok(e) => e,
                        Err(text) => return Ok(error(text)),
                    };
                self.deferred.push(encrypted);
                return Ok(Ran::Deferred(self.deferred.len() - 1));
            }
            _ => return Ok(Ran::Reply(not_here(name))),
        }
        let keys = table::keys_of(spec, parent, args);
        // An unblocked command whose keys cannot be found is an error in Redis before it
        // touches anything (see `run`): sent without keys.
        let rejected_by_redis = unblocked && keys.invalid;
        if (keys.invalid || keys.touches_all) && !rejected_by_redis
            || (keys.blocking && !unblocked)
            || spec.cache == table::CacheOp::ForgetAll
        {
            return Ok(Ran::Reply(not_here(name)));
        }
        // Checked before the keys are touched: a command refused after its keys were copied
        // would leave copies that were never made to be committed over the keys.
        if let Some(text) = transform::send_error(spec, args, self.ctx.ring) {
            return Ok(error(text));
        }
        let mut commands = Vec::new();
        let mut renamed = args.to_vec();
        for &(i, flags) in &keys.keys {
            let key = args[i].clone();
            self.touch(&key, flags & table::K_RO == 0, &mut commands);
            if let Some(copy) = self.copies.get(&key) {
                renamed[i] = copy.clone();
            }
        }
        // Sent under the scratch names, bound to the keys the client named: the copies
        // replace those keys when the transaction commits.
        let encrypted =
            match transform::encrypt_args_at(spec, &renamed, args, self.ctx.db, self.ctx.ring) {
                Ok(e) => e,
                Err(text) => return Ok(error(text)),
            };
        // A destructive read that cannot be answered puts back what it took (below): an
        // overwrite only while the copy still holds the value it wrote.
        let written = (spec.pops != table::Pops::None)
            .then(|| encrypted.get(2).cloned())
            .flatten();
        commands.push(encrypted);
        let replies = self.ex.call(commands).await?;
        let raw = replies.last().ok_or(ExchangeError::Malformed)?;
        // Encrypted with this ring just above: the same rewrite (rotation, MATCH) decodes it.
        let plan = transform::reply_plan(spec, args, self.ctx.db, self.ctx.ring.len());
        let (frame, undecryptable) = self.decode(&plan, raw, name, args)?;
        if undecryptable && spec.pops != table::Pops::None {
            // Refused, so it must not have changed anything: what it removed from the view
            // goes back into the copy before the next command runs (a value that does not
            // decrypt is never lost, inside a script or transaction too).
            let how = put_back(spec.pops, &renamed, &keys, written.as_slice());
            if let Some(command) = put_back_command(&how, raw, self.ctx.limits) {
                self.ex.call(vec![command]).await?;
            }
        }
        Ok(Ran::Reply(frame))
    }

    /// WATCHes `key` the first time it is touched, and copies it the first time it is
    /// written (commands appended to `out`, sent before the command that needs them).
    fn touch(&mut self, key: &Bytes, write: bool, out: &mut Vec<Vec<Bytes>>) {
        if self.watched.insert(key.clone()) {
            out.push(vec![Bytes::from_static(b"WATCH"), key.clone()]);
        }
        if write && !self.copies.contains_key(key) {
            let copy = scratch_name();
            out.push(vec![
                Bytes::from_static(b"COPY"),
                key.clone(),
                copy.clone(),
                Bytes::from_static(b"REPLACE"),
            ]);
            self.names.insert(copy.clone(), key.clone());
            self.copies.insert(key.clone(), copy);
        }
    }

    /// The client's view of a reply: scratch names back to key names, values decrypted; and
    /// whether it was refused because a value in it does not decrypt.
    fn decode(
        &self,
        plan: &Plan,
        raw: &Bytes,
        name: &str,
        args: &[Bytes],
    ) -> Result<(Frame, bool), ExchangeError> {
        let frame = rmw::parse(self.ctx.limits, raw).map_err(|_| ExchangeError::Malformed)?;
        let frame = self.rename(frame);
        let mut encoded = BytesMut::new();
        frame.encode(&mut encoded);
        let mut out = BytesMut::new();
        match transform::decode_reply(
            plan,
            encoded.freeze(),
            self.ctx.ring,
            self.ctx.limits,
            &mut out,
        ) {
            Ok(_) => rmw::parse(self.ctx.limits, &out.freeze())
                .map(|f| (f, false))
                .map_err(|_| ExchangeError::Malformed),
            Err(transform::ReplyError::Undecryptable(problem)) => {
                let keys: Vec<&[u8]> = args.get(1).map(|k| &k[..]).into_iter().collect();
                Ok((
                    Frame::Error(Bytes::from(transform::undecryptable_message(
                        name, &keys, problem,
                    ))),
                    true,
                ))
            }
            Err(_) => Err(ExchangeError::Malformed),
        }
    }

    /// Replaces scratch key names with the keys they copy, anywhere in a reply.
    fn rename(&self, frame: Frame) -> Frame {
        if self.names.is_empty() {
            return frame;
        }
        let each = |items: Vec<Frame>| items.into_iter().map(|f| self.rename(f)).collect();
        match frame {
            Frame::Bulk(b) => Frame::Bulk(self.names.get(&b).cloned().unwrap_or(b)),
            // Redis names the key in some errors (`NOGROUP No such key '…'`).
            Frame::Error(e) if contains(&e, PREFIX) => {
                let mut text = e.to_vec();
                for (copy, key) in &self.names {
                    text = replace_all(&text, copy, key);
                }
                Frame::Error(Bytes::from(text))
            }
            Frame::Array(items) => Frame::Array(each(items)),
            Frame::Set(items) => Frame::Set(each(items)),
            Frame::Push(items) => Frame::Push(each(items)),
            Frame::Map(pairs) => Frame::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (self.rename(k), self.rename(v)))
                    .collect(),
            ),
            other => other,
        }
    }

    /// An emulated command on the view: reads from the keys (or their copies), writes to the
    /// copies; no MULTI needed, the copies are private.
    async fn emulate(
        &mut self,
        spec: &'static CommandSpec,
        args: &[Bytes],
    ) -> Result<Frame, ExchangeError> {
        let mut reads = match emulate::start(args) {
            Ok(reads) => reads,
            Err(reply) => return Ok(reply),
        };
        let em = Emulation {
            name: spec.name,
            args,
            ring: self.ctx.ring,
            limits: self.ctx.limits,
            db: self.ctx.db,
        };
        let mut snapshot = Snapshot::default();
        loop {
            let mut commands = Vec::new();
            for read in &reads {
                self.touch(rmw::key_of(read), false, &mut commands);
            }
            let skip = commands.len();
            for read in &reads {
                for mut c in rmw::read_commands(read) {
                    if let Some(copy) = self.copies.get(&c[1]) {
                        c[1] = copy.clone();
                    }
                    commands.push(c);
                }
            }
            let replies = self.ex.call(commands).await?;
            match snapshot.absorb(&em, &reads, &replies[skip..]) {
                Ok(Ok(())) => {}
                Ok(Err(reply)) => return Ok(reply),
                Err(Failed::Exchange(e)) => return Err(e),
            }
            match emulate::compute(args, &snapshot.found, self.resp3()) {
                Step::Read(more) => reads = more,
                Step::Done { reply, writes } => {
                    if writes.is_empty() {
                        return Ok(reply);
                    }
                    let mut out = Vec::new();
                    snapshot.write_commands(&writes, self.ctx.ring, self.ctx.db, &mut out);
                    let mut commands = Vec::new();
                    for mut c in out {
                        // Every write names its key first; RENAME names two.
                        let keys = if c[0][..] == *b"RENAME" { 1..3 } else { 1..2 };
                        for i in keys {
                            let key = c[i].clone();
                            self.touch(&key, true, &mut commands);
                            c[i] = self.copies[&key].clone();
                        }
                        commands.push(c);
                    }
                    self.ex.call(commands).await?;
                    return Ok(reply);
                }
            }
        }
    }

    /// Makes every change visible at once, or reports a conflict (nothing changed). The
    /// copies are deleted either way.
    pub(crate) async fn commit(self) -> Result<Commit, ExchangeError> {
        let mut commands = vec![vec![Bytes::from_static(b"MULTI")]];
        for (key, copy) in &self.copies {
            commands.push(vec![Bytes::from_static(b"DEL"), key.clone()]);
            commands.push(vec![
                Bytes::from_static(b"RENAME"),
                copy.clone(),
                key.clone(),
            ]);
        }
        let deferred = self.deferred.len();
        commands.extend(self.deferred.iter().cloned());
        commands.push(vec![Bytes::from_static(b"EXEC")]);
        let replies = self.ex.call(commands).await?;
        let exec = rmw::parse(
            self.ctx.limits,
            replies.last().ok_or(ExchangeError::Malformed)?,
        )
        .map_err(|_| ExchangeError::Malformed)?;
        match exec {
            Frame::Array(mut results) if results.len() >= deferred => {
                let published = results.split_off(results.len() - deferred);
                Ok(Commit::Done(published))
            }
            Frame::Null | Frame::NullArray => {
                if !self.copies.is_empty() {
                    let mut del = vec![Bytes::from_static(b"DEL")];
                    del.extend(self.copies.values().cloned());
                    self.ex.call(vec![del]).await?;
                }
                Ok(Commit::Conflict)
            }
            _ => Err(ExchangeError::Malformed),
        }
    }
}

/// A RESP3 reply as a RESP2 client sees it (maps and sets as arrays, null as nil, doubles
/// as bulk strings, booleans as 1/nil): for a script that asked for RESP2 on a connection
/// whose protocol is the client's RESP3 (a transaction redcloak carries out).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// `text` with every `from` replaced by `to`.
fn replace_all(text: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if !from.is_empty() && text[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

pub(crate) fn to_resp2(frame: Frame) -> Frame {
    match frame {
        Frame::Map(pairs) => Frame::Array(
            pairs
                .into_iter()
                .flat_map(|(k, v)| [to_resp2(k), to_resp2(v)])
                .collect(),
        ),
        Frame::Set(items) | Frame::Array(items) | Frame::Push(items) => {
            Frame::Array(items.into_iter().map(to_resp2).collect())
        }
        Frame::Null => Frame::NullBulk,
        Frame::Double(d) | Frame::BigNumber(d) => Frame::Bulk(d),
        Frame::Boolean(true) => Frame::Integer(1),
        Frame::Boolean(false) => Frame::NullBulk,
        Frame::BulkError(e) => Frame::Error(e),
        Frame::Attribute { frame, .. } => to_resp2(*frame),
        other => other,
    }
}

/// The script operation of a request, if it is one.
fn script_op(args: &[Bytes]) -> Option<table::ScriptOp> {
    match table::resolve(args) {
        Resolved::Known { spec, .. } => match spec.action {
            Action::Script(op) => Some(op),
            _ => None,
        },
        _ => None,
    }
}

fn error(text: String) -> Ran {
    Ran::Reply(Frame::Error(Bytes::from(text)))
}

/// A command that cannot run inside an execution redcloak carries out itself.
fn not_here(name: &str) -> Frame {
    Frame::Error(Bytes::from(format!(
        "ERR redcloak: {name} cannot run inside a transaction or script that redcloak executes \
         itself (one that contains emulated commands); run it outside"
    )))
}

/// A client's transaction that contains emulated commands, carried out by redcloak:
/// every command on the private view in order, then one commit; when a watched key changed,
/// everything again (bounded, backed off) — unless the client holds a WATCH of its own, in
/// which case EXEC fails (nil) as Redis would (redcloak cannot tell whose key changed).
pub(crate) async fn transaction<E: Exchange>(
    ex: &mut E,
    items: &[crate::session::state::TxItem],
    ctx: Ctx<'_>,
    client_watching: bool,
    metrics: &crate::metrics::Metrics,
    scripts: &crate::scripts::Scripts,
) -> Result<Frame, ExchangeError> {
    use crate::session::state::TxItem;
    for attempt in 0..rmw::MAX_ATTEMPTS {
        if attempt > 0 {
            metrics.emulation_retry("EXEC");
            tokio::time::sleep(rmw::backoff(attempt)).await;
        }
        let resp3 = ex.state().resp3;
        let mut scratch = Scratch::new(
            &mut *ex,
            Ctx {
                ring: ctx.ring,
                limits: ctx.limits,
                db: ctx.db,
            },
        );
        let mut results = Vec::with_capacity(items.len());
        let mut deferred = Vec::new();
        for item in items {
            match item {
                TxItem::Local(frame) => results.push(frame.clone()),
                TxItem::Command(args) if script_op(args).is_some() => {
                    let op = script_op(args).unwrap_or(table::ScriptOp::Kill);
                    results.push(
                        crate::scripts::in_view(scripts, op, args, &mut scratch, resp3).await?,
                    );
                }
                TxItem::Command(args) => match scratch.run(args).await? {
                    Ran::Reply(frame) => results.push(frame),
                    Ran::Deferred(i) => {
                        deferred.push((results.len(), i));
                        results.push(Frame::Null);
                    }
                },
            }
        }
        match scratch.commit().await? {
            Commit::Done(published) => {
                for (at, i) in deferred {
                    results[at] = published.get(i).cloned().unwrap_or(Frame::Integer(0));
                }
                return Ok(Frame::Array(results));
            }
            Commit::Conflict if client_watching => {
                // The protocol as the replies to this attempt's commands showed it (`resp3`
                // was read before any of them: a RESP3 client got RESP2's `*-1`).
                return Ok(if ex.state().resp3 {
                    Frame::Null
                } else {
                    Frame::NullArray
                });
            }
            Commit::Conflict => {}
        }
    }
    metrics.emulation_gave_up("EXEC");
    Ok(Frame::Error(Bytes::from(format!(
        "ERR redcloak: the transaction could not be applied: its keys changed {} times in a row \
         while redcloak was running it; nothing was written, try again",
        rmw::MAX_ATTEMPTS
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_names_are_unique_and_prefixed() {
        let (a, b) = (scratch_name(), scratch_name());
        assert_ne!(a, b);
        assert!(a.starts_with(PREFIX) && b.starts_with(PREFIX));
    }

    /// A redcloak whose clock is a minute behind Redis's names its scratch keys with Redis's
    /// time, so another redcloak's janitor (which judges by Redis's `TIME`) sees them as new.
    #[test]
    fn scratch_names_carry_redis_time() {
        let local = crate::fallback::now_ms();
        set_redis_clock(local + 60_000, local);
        let name = scratch_name();
        set_redis_clock(local, local);
        let rest = &name[PREFIX.len()..];
        let ms: u64 = std::str::from_utf8(rest.split(|&b| b == b':').next().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (local + 60_000..local + 70_000).contains(&ms),
            "{ms} vs {local}"
        );
    }
}
