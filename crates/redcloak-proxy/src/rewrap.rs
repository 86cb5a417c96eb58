//! `redcloak rewrap`: online re-encryption of everything stored under a key (or in a format)
//! that is not the ring's primary key and write format, so that an old key can leave the ring.
//!
//! It talks to Redis directly, with redcloak's own configuration (TLS + AUTH), while
//! applications keep running through redcloak:
//!
//! - It SCANs each database (all that hold keys, or `--db`), optionally with a `MATCH`
//!   pattern, one page at a time; `--cursor DB:CURSOR` resumes where an interrupted run
//!   stopped.
//! - For each page it WATCHes the keys, reads them (`TYPE`, then the whole value), decides in
//!   memory what to rewrite ([`plan`], pure), and writes in one `MULTI`/`EXEC`. If a client
//!   changed one of the keys meanwhile, EXEC does nothing and the page is read again (bounded;
//!   then key by key). Nothing is ever written from a stale read, so no client's update is
//!   lost.
//! - Strings: `SET … KEEPTTL`. Hash values: `HSET`. List elements: `LSET` (indexes are stable
//!   under WATCH). Set members: `SADD` the new ciphertext, then `SREM` the old one (added
//!   first, so the key never empties and keeps its TTL); a member already present under the
//!   primary key (a duplicate phase 1 of a member rotation may create) is kept and the old
//!   copy dropped. Sorted sets and geo sets: `ZADD` with the old score, then `ZREM`. Streams
//!   cannot be edited in place: a stream without consumer groups is rebuilt (`DEL`, `XADD`
//!   with every entry's own ID, `XSETID` with its last ID, entries-added and max-deleted ID,
//!   its consumer groups with their last-delivered ID and entries-read, their consumers, and
//!   every pending entry back to its consumer with its idle time and delivery count, then
//!   `PEXPIREAT` with its expiry).
//! - HyperLogLogs hash the ciphertexts they were given into registers, which cannot be
//!   re-encrypted; they are counted and left (they stay readable without any key).
//! - redcloak's own keys (`redcloak:scratch:…`, `redcloak:internal:…`) are skipped, except
//!   the function libraries' old hash (`redcloak:internal:functions`, from before they moved
//!   out of the keyspace), whose values are re-encrypted. The function libraries themselves
//!   live in redcloak's Redis function library: their code is re-encrypted first, and that
//!   library written again.
//!
//! # Security
//! Plaintexts exist only in this process's memory, as [`Plaintext`](redcloak_crypto::Plaintext)
//! (wiped on drop), between a read and the write of the new ciphertext. Nothing here logs or
//! prints a key name, a value or a secret: reports carry counts, key ids and cursors.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redcloak_commands::resp::{self, Frame};
use redcloak_commands::table::{INTERNAL_PREFIX, SCRATCH_PREFIX};
use redcloak_crypto::{inspect, inspect_member, Binding, KeyId, KeyRing, ValueFormat};
use tokio::io::{ReadHalf, WriteHalf};

use crate::budget::Budget;
use crate::function_store::{self, LEGACY_KEY};
use crate::upstream::{
    Connector, Dedicated, FrameReader, LinkRx, LinkTx, UpstreamConn, UpstreamError,
};

/// Attempts at a whole page before it is done key by key.
const PAGE_ATTEMPTS: u32 = 4;
/// Attempts at one key before it is reported as not rewrapped.
const KEY_ATTEMPTS: u32 = 40;

/// Where a run is: the database and the SCAN cursor of the next page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The database.
    pub db: u32,
    /// SCAN's cursor (0: the start of the database).
    pub cursor: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.db, self.cursor)
    }
}

/// `--cursor` is not `DB:CURSOR` or `CURSOR`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("expected DB:CURSOR (as printed by an interrupted rewrap) or a bare CURSOR with --db")]
pub struct ParsePositionError;

/// A resume point as given on the command line: `DB:CURSOR`, or a bare cursor (its database
/// comes from `--db`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The database, when given.
    pub db: Option<u32>,
    /// The cursor.
    pub cursor: u64,
}

impl FromStr for Resume {
    type Err = ParsePositionError;
    fn from_str(s: &str) -> Result<Resume, ParsePositionError> {
        match s.split_once(':') {
            Some((db, cursor)) => Ok(Resume {
                db: Some(db.trim().parse().map_err(|_| ParsePositionError)?),
                cursor: cursor.trim().parse().map_err(|_| ParsePositionError)?,
            }),
            None => Ok(Resume {
                db: None,
                cursor: s.trim().parse().map_err(|_| ParsePositionError)?,
            }),
        }
    }
}

/// What to rewrap.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only this database (default: every database that holds keys).
    pub db: Option<u32>,
    /// SCAN's `MATCH` pattern.
    pub pattern: Option<String>,
    /// Resume here.
    pub resume: Option<Resume>,
    /// SCAN's `COUNT` hint (keys per page; default 100).
    pub count: Option<u32>,
    /// Count only; write nothing.
    pub dry_run: bool,
}

/// Why a run stopped before the end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RewrapError {
    /// The connection to Redis could not be opened.
    #[error(transparent)]
    Connect(#[from] UpstreamError),
    /// The connection broke mid-run.
    #[error("the connection to Redis was lost: {0}")]
    Lost(String),
    /// Redis refused a command (the reply's text; it never holds a value).
    #[error("Redis refused {command}: {reply}")]
    Refused {
        /// What was sent (a command name).
        command: &'static str,
        /// Redis's error.
        reply: String,
    },
    /// `--cursor` names a database but `--db` another.
    #[error("--cursor names database {cursor_db} but --db is {db}")]
    ResumeMismatch {
        /// From `--cursor`.
        cursor_db: u32,
        /// From `--db`.
        db: u32,
    },
}

/// What a value or member was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A string, hash value, list element or stream field value.
    Value,
    /// A set, sorted-set or geo member.
    Member,
}

/// Which format: `fernet`, `aes-gcm` or `member` (AES-SIV).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// A Fernet token.
    Fernet,
    /// An AES-GCM envelope.
    AesGcm,
    /// An AES-SIV member ciphertext.
    Siv,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Fernet => "fernet",
            Format::AesGcm => "aes-gcm",
            Format::Siv => "aes-siv (member)",
        })
    }
}

/// One line of the census: how many values or members of one format one key made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Class {
    /// Values or members.
    pub kind: Kind,
    /// The format.
    pub format: Format,
    /// The ring key that made them (its bytes), `None` when no ring key did.
    pub key: Option<[u8; 4]>,
}

/// Things left as they are, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Left {
    /// Not a redcloak ciphertext (written around redcloak): no key needed to read it, and
    /// redcloak refuses it anyway.
    NotEncrypted,
    /// A ciphertext no ring key opens (a key missing from the ring, or modified).
    NoRingKey,
    /// An AES-GCM envelope bound to another location (copied inside Redis).
    Binding,
    /// A value inside a stream whose consumer groups could not be read whole (not rebuilt:
    /// its groups would be lost). Still under an old key.
    StreamGroupsUnread,
    /// A HyperLogLog key (its registers cannot be re-encrypted; readable without any key).
    HyperLogLog,
    /// A value whose key kept changing: every attempt conflicted. Still under an old key.
    GaveUp,
}

impl Left {
    /// Whether what is left still needs a non-primary ring key to be read.
    pub fn needs_old_key(self) -> bool {
        matches!(self, Left::StreamGroupsUnread | Left::GaveUp)
    }

    /// A short description for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Left::NotEncrypted => "not encrypted by redcloak (written around it)",
            Left::NoRingKey => "no ring key opens them (missing key, or modified)",
            Left::Binding => "aes-gcm envelopes bound to another location (copied inside Redis)",
            Left::StreamGroupsUnread => {
                "in streams whose consumer groups could not be read (not rebuilt; still under an old key; run again)"
            }
            Left::HyperLogLog => {
                "HyperLogLog keys (registers cannot be re-encrypted; readable without a key)"
            }
            Left::GaveUp => {
                "in keys that changed on every attempt (still under an old key; run again)"
            }
        }
    }
}

/// What a run found and did. Counts only: no names, no values.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Keys SCAN returned (after skipping redcloak's own).
    pub keys: u64,
    /// Keys of redcloak's own that were skipped.
    pub skipped_internal: u64,
    /// Keys written.
    pub keys_changed: u64,
    /// Values and members found, by kind, format and key.
    pub census: BTreeMap<Class, u64>,
    /// Oldest and newest Fernet timestamp per key (Unix seconds).
    pub timestamps: BTreeMap<[u8; 4], (u64, u64)>,
    /// Values re-encrypted.
    pub values_rewrapped: u64,
    /// Members re-encrypted.
    pub members_rewrapped: u64,
    /// Old member copies dropped because the member was already there under the primary key.
    pub duplicates_merged: u64,
    /// Streams rebuilt.
    pub streams_rebuilt: u64,
    /// EXECs that found a watched key changed (each one was retried).
    pub conflicts: u64,
    /// What was left, and why.
    pub left: BTreeMap<Left, u64>,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.keys += o.keys;
        self.skipped_internal += o.skipped_internal;
        self.keys_changed += o.keys_changed;
        for (c, n) in o.census {
            *self.census.entry(c).or_default() += n;
        }
        for (k, (lo, hi)) in o.timestamps {
            let e = self.timestamps.entry(k).or_insert((lo, hi));
            e.0 = e.0.min(lo);
            e.1 = e.1.max(hi);
        }
        self.values_rewrapped += o.values_rewrapped;
        self.members_rewrapped += o.members_rewrapped;
        self.duplicates_merged += o.duplicates_merged;
        self.streams_rebuilt += o.streams_rebuilt;
        self.conflicts += o.conflicts;
        for (l, n) in o.left {
            *self.left.entry(l).or_default() += n;
        }
    }

    fn found(&mut self, class: Class) {
        *self.census.entry(class).or_default() += 1;
    }

    fn leave(&mut self, why: Left) {
        *self.left.entry(why).or_default() += 1;
    }

    fn stamp(&mut self, key: [u8; 4], t: u64) {
        let e = self.timestamps.entry(key).or_insert((t, t));
        e.0 = e.0.min(t);
        e.1 = e.1.max(t);
    }

    /// Values and members found (every census line).
    pub fn found_total(&self) -> u64 {
        self.census.values().sum()
    }

    /// Values and members re-encrypted.
    pub fn rewrapped_total(&self) -> u64 {
        self.values_rewrapped + self.members_rewrapped
    }

    /// How many values and members are still readable only with a key other than the primary
    /// (or in the other format), after this run: for a dry run, everything such the census
    /// counted; for a real run, what was left (streams with groups, keys that kept changing).
    pub fn still_under_old_keys(&self, ring: &KeyRing, dry_run: bool) -> u64 {
        if dry_run {
            let primary = ring.key_ids()[0].to_bytes();
            self.census
                .iter()
                .filter(|(c, _)| {
                    c.key.is_some()
                        && (c.key != Some(primary)
                            || (c.kind == Kind::Value && c.format != wanted(ring.format())))
                })
                .map(|(_, n)| n)
                .sum()
        } else {
            self.left
                .iter()
                .filter(|(l, _)| l.needs_old_key())
                .map(|(_, n)| n)
                .sum()
        }
    }
}

fn wanted(format: ValueFormat) -> Format {
    match format {
        ValueFormat::AesGcm => Format::AesGcm,
        _ => Format::Fernet,
    }
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// What it found and did.
    pub stats: Stats,
    /// Where to resume, if it was interrupted (`None`: it went through every key).
    pub resume: Option<Position>,
}

/// Runs a rewrap. `progress` is called after every page with the totals so far and the
/// position of the next page. `stop` is checked between pages: when set, the run ends after
/// the page it is on and reports where to resume.
pub async fn run(
    connector: &Connector,
    ring: &KeyRing,
    opts: &Options,
    stop: &AtomicBool,
    mut progress: impl FnMut(&Stats, Position),
) -> Result<Outcome, (RewrapError, Stats, Option<Position>)> {
    let mut stats = Stats::default();
    let mut conn = match Conn::open(connector).await {
        Ok(c) => c,
        Err(e) => return Err((e.into(), stats, None)),
    };
    let dbs = match databases(&mut conn, opts).await {
        Ok(d) => d,
        Err(e) => return Err((e, stats, None)),
    };
    match function_libraries(&mut conn, ring, connector.default_db(), opts.dry_run).await {
        Ok(s) => stats.merge(s),
        Err(e) => return Err((e, stats, None)),
    }
    let count = opts.count.unwrap_or(100).max(1).to_string();
    for (i, db) in dbs.iter().copied().enumerate() {
        let mut cursor = match opts.resume {
            Some(r) if i == 0 => r.cursor,
            _ => 0,
        };
        let here = |cursor| Position { db, cursor };
        if let Err(e) = conn.select(db).await {
            return Err((e, stats, Some(here(cursor))));
        }
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(Outcome {
                    stats,
                    resume: Some(here(cursor)),
                });
            }
            let mut scan = vec![
                Bytes::from_static(b"SCAN"),
                Bytes::from(cursor.to_string()),
                Bytes::from_static(b"COUNT"),
                Bytes::from(count.clone()),
            ];
            if let Some(p) = &opts.pattern {
                scan.push(Bytes::from_static(b"MATCH"));
                scan.push(Bytes::from(p.clone().into_bytes()));
            }
            let (next, keys) = match conn.one(scan, "SCAN").await.and_then(scan_reply) {
                Ok(r) => r,
                Err(e) => return Err((e, stats, Some(here(cursor)))),
            };
            match page(&mut conn, ring, db, keys, opts.dry_run).await {
                Ok(s) => stats.merge(s),
                Err(e) => return Err((e, stats, Some(here(cursor)))),
            }
            cursor = next;
            progress(&stats, here(cursor));
            if cursor == 0 {
                break;
            }
        }
    }
    Ok(Outcome {
        stats,
        resume: None,
    })
}

/// The function libraries (kept in redcloak's Redis function library, outside the keyspace,
/// `function_store`): their code re-encrypted and the library written again. Like every
/// FUNCTION LOAD through redcloak, the write replaces the library whole: a library loaded
/// through redcloak between this read and this write would be lost, so run rewrap when
/// nobody is loading libraries (they change rarely).
async fn function_libraries(
    conn: &mut Conn,
    ring: &KeyRing,
    db: u32,
    dry_run: bool,
) -> Result<Stats, RewrapError> {
    let mut stats = Stats::default();
    let reply = conn
        .call(&[function_store::read_command()])
        .await?
        .pop()
        .ok_or_else(|| RewrapError::Lost("no reply".into()))?;
    let sealed = match function_store::parse(reply) {
        function_store::Read::Stored(sealed) => sealed,
        // None stored yet, or still in the old hash (a data key, rewrapped with the keys).
        function_store::Read::Missing => return Ok(stats),
        function_store::Read::Refused(e) => {
            return Err(RewrapError::Refused {
                command: "FCALL_RO",
                reply: String::from_utf8_lossy(&e).into_owned(),
            })
        }
        function_store::Read::Unreadable => {
            return Err(RewrapError::Refused {
                command: "FCALL_RO",
                reply: format!(
                    "the Redis function library {} is not the one redcloak writes",
                    function_store::LIBRARY
                ),
            })
        }
    };
    let target = ring.format();
    let mut changed = false;
    let mut rewritten = Vec::with_capacity(sealed.len());
    for (name, code) in sealed {
        let at = Binding::field(db, function_store::LEGACY_KEY, &name);
        match value(ring, &mut stats, &code, &at, target) {
            Some(new) => {
                changed = true;
                rewritten.push((name, new));
            }
            None => rewritten.push((name, code)),
        }
    }
    if changed && !dry_run {
        let sealed = rewritten;
        let reply = conn
            .call(&[function_store::write_command(&sealed)])
            .await?
            .pop()
            .ok_or_else(|| RewrapError::Lost("no reply".into()))?;
        if !function_store::written(&reply, &sealed) {
            return Err(RewrapError::Refused {
                command: "FUNCTION LOAD",
                reply: match reply {
                    Frame::Error(e) => String::from_utf8_lossy(&e).into_owned(),
                    _ => "an unexpected reply".to_owned(),
                },
            });
        }
        stats.keys_changed += 1;
    }
    Ok(stats)
}

/// The databases to scan, in order.
async fn databases(conn: &mut Conn, opts: &Options) -> Result<Vec<u32>, RewrapError> {
    let from = opts.resume.and_then(|r| r.db);
    if let (Some(cursor_db), Some(db)) = (from, opts.db) {
        if cursor_db != db {
            return Err(RewrapError::ResumeMismatch { cursor_db, db });
        }
    }
    if let Some(db) = opts.db {
        return Ok(vec![db]);
    }
    let info = conn
        .one(
            vec![Bytes::from_static(b"INFO"), Bytes::from_static(b"keyspace")],
            "INFO",
        )
        .await?;
    let text = match info {
        Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    };
    let mut dbs: Vec<u32> = text
        .lines()
        .filter_map(|l| l.strip_prefix("db")?.split(':').next()?.parse().ok())
        .collect();
    dbs.sort_unstable();
    if let Some(from) = from {
        dbs.retain(|&d| d >= from);
        if dbs.first() != Some(&from) {
            dbs.insert(0, from);
        }
    } else if opts.resume.is_some() {
        // A bare cursor without --db: it belongs to the first database.
    }
    Ok(dbs)
}

fn scan_reply(f: Frame) -> Result<(u64, Vec<Bytes>), RewrapError> {
    let malformed = || RewrapError::Lost("SCAN returned a malformed reply".into());
    let Frame::Array(mut parts) = f else {
        return Err(malformed());
    };
    if parts.len() != 2 {
        return Err(malformed());
    }
    let keys = match parts.pop() {
        Some(Frame::Array(items)) => items
            .into_iter()
            .filter_map(|i| match i {
                Frame::Bulk(b) => Some(b),
                _ => None,
            })
            .collect(),
        _ => return Err(malformed()),
    };
    let next = match parts.pop() {
        Some(Frame::Bulk(b)) => std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(malformed)?,
        _ => return Err(malformed()),
    };
    Ok((next, keys))
}

/// Whether rewrap looks at a key: not redcloak's scratch copies or internal keys, except the
/// function libraries.
pub fn is_data_key(key: &[u8]) -> bool {
    key == LEGACY_KEY || !(key.starts_with(SCRATCH_PREFIX) || key.starts_with(INTERNAL_PREFIX))
}

/// One page: every key rewrapped, or counted as left.
async fn page(
    conn: &mut Conn,
    ring: &KeyRing,
    db: u32,
    keys: Vec<Bytes>,
    dry_run: bool,
) -> Result<Stats, RewrapError> {
    let mut stats = Stats::default();
    let (keys, internal): (Vec<Bytes>, Vec<Bytes>) = keys.into_iter().partition(|k| is_data_key(k));
    stats.skipped_internal = internal.len() as u64;
    if keys.is_empty() {
        return Ok(stats);
    }
    match attempt(conn, ring, db, &keys, dry_run, PAGE_ATTEMPTS).await? {
        Attempted::Done(s) => stats.merge(s),
        Attempted::Conflicts(n, _) => {
            stats.conflicts += u64::from(n);
            for key in &keys {
                match attempt(
                    conn,
                    ring,
                    db,
                    std::slice::from_ref(key),
                    false,
                    KEY_ATTEMPTS,
                )
                .await?
                {
                    Attempted::Done(s) => stats.merge(s),
                    Attempted::Conflicts(n, mut last) => {
                        stats.conflicts += u64::from(n);
                        // What the last read found stays under its key; the census counts it.
                        let stale = last.rewrapped_total();
                        last.values_rewrapped = 0;
                        last.members_rewrapped = 0;
                        last.duplicates_merged = 0;
                        last.streams_rebuilt = 0;
                        last.keys_changed = 0;
                        *last.left.entry(Left::GaveUp).or_default() += stale;
                        stats.merge(last);
                    }
                }
            }
        }
    }
    Ok(stats)
}

enum Attempted {
    Done(Stats),
    /// Every attempt conflicted: how many, and what the last read planned.
    Conflicts(u32, Stats),
}

/// Up to `attempts` times: WATCH and read `keys`, plan, write in MULTI/EXEC.
async fn attempt(
    conn: &mut Conn,
    ring: &KeyRing,
    db: u32,
    keys: &[Bytes],
    dry_run: bool,
    attempts: u32,
) -> Result<Attempted, RewrapError> {
    let mut last = Stats::default();
    for n in 0..attempts {
        if n > 0 {
            // Back off a little, more each time (≤ 50 ms): the writer is busy with this key.
            tokio::time::sleep(Duration::from_millis(u64::from(n.min(10)) * 5)).await;
        }
        // 1. WATCH and TYPE, in one round trip.
        let mut cmds = Vec::with_capacity(keys.len() + 1);
        if !dry_run {
            let mut watch = vec![Bytes::from_static(b"WATCH")];
            watch.extend(keys.iter().cloned());
            cmds.push(watch);
        }
        for k in keys {
            cmds.push(vec![Bytes::from_static(b"TYPE"), k.clone()]);
        }
        let replies = conn.call(&cmds).await?;
        let types: Vec<Type> = replies[usize::from(!dry_run)..]
            .iter()
            .map(Type::of)
            .collect();
        // 2. Read every key whole.
        let mut reads = Vec::new();
        let mut shape = Vec::with_capacity(keys.len());
        for (k, t) in keys.iter().zip(&types) {
            let r = t.reads(k);
            shape.push(r.len());
            reads.extend(r);
        }
        let replies = conn.call(&reads).await?;
        let mut replies = replies.into_iter();
        let mut got: Vec<Vec<Frame>> = shape
            .iter()
            .map(|&n| replies.by_ref().take(n).collect())
            .collect();
        // 2b. A stream's consumer groups: their consumers and pending entries, to rebuild
        // them with the stream.
        let mut more = Vec::new();
        let mut extra = vec![0; keys.len()];
        for (i, (k, t)) in keys.iter().zip(&types).enumerate() {
            if *t == Type::Stream {
                for g in groups(got[i].get(3)) {
                    more.push(vec![
                        Bytes::from_static(b"XINFO"),
                        Bytes::from_static(b"CONSUMERS"),
                        k.clone(),
                        g.name.clone(),
                    ]);
                    more.push(vec![
                        Bytes::from_static(b"XPENDING"),
                        k.clone(),
                        g.name,
                        Bytes::from_static(b"-"),
                        Bytes::from_static(b"+"),
                        Bytes::from(g.pending.max(1).to_string()),
                    ]);
                    extra[i] += 2;
                }
            }
        }
        let mut more = conn.call(&more).await?.into_iter();
        for (g, n) in got.iter_mut().zip(extra) {
            g.extend(more.by_ref().take(n));
        }
        // 3. Plan.
        let mut stats = Stats::default();
        let mut writes = Vec::new();
        for ((k, t), got) in keys.iter().zip(&types).zip(got) {
            let p = plan(ring, db, k, *t, got);
            stats.merge(p.stats);
            if !p.writes.is_empty() {
                stats.keys_changed += 1;
            }
            writes.extend(p.writes);
        }
        if dry_run || writes.is_empty() {
            if !dry_run {
                conn.one(vec![Bytes::from_static(b"UNWATCH")], "UNWATCH")
                    .await?;
            }
            // A dry run does not count rewraps it did not do.
            if dry_run {
                stats.values_rewrapped = 0;
                stats.members_rewrapped = 0;
                stats.duplicates_merged = 0;
                stats.streams_rebuilt = 0;
                stats.keys_changed = 0;
            }
            stats.keys = keys.len() as u64;
            return Ok(Attempted::Done(stats));
        }
        // 4. Write atomically.
        let count = writes.len();
        let mut tx = Vec::with_capacity(count + 2);
        tx.push(vec![Bytes::from_static(b"MULTI")]);
        tx.extend(writes);
        tx.push(vec![Bytes::from_static(b"EXEC")]);
        let replies = conn.call(&tx).await?;
        for r in &replies[..replies.len() - 1] {
            if let Frame::Error(e) = r {
                return Err(RewrapError::Refused {
                    command: "a queued write",
                    reply: String::from_utf8_lossy(e).into_owned(),
                });
            }
        }
        match replies.last() {
            Some(Frame::Array(results)) => {
                if let Some(Frame::Error(e)) = results.iter().find(|r| matches!(r, Frame::Error(_)))
                {
                    return Err(RewrapError::Refused {
                        command: "EXEC",
                        reply: String::from_utf8_lossy(e).into_owned(),
                    });
                }
                stats.keys = keys.len() as u64;
                return Ok(Attempted::Done(stats));
            }
            Some(Frame::NullArray | Frame::Null) => {
                last = stats;
            }
            Some(Frame::Error(e)) => {
                return Err(RewrapError::Refused {
                    command: "EXEC",
                    reply: String::from_utf8_lossy(e).into_owned(),
                })
            }
            _ => return Err(RewrapError::Lost("EXEC returned a malformed reply".into())),
        }
    }
    last.keys = keys.len() as u64;
    Ok(Attempted::Conflicts(attempts, last))
}

/// A key's type, as `TYPE` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    None,
    String,
    Hash,
    List,
    Set,
    ZSet,
    Stream,
    /// Anything else (a module type): left alone.
    Other,
}

impl Type {
    fn of(f: &Frame) -> Type {
        match f {
            Frame::Simple(s) => match &s[..] {
                b"string" => Type::String,
                b"hash" => Type::Hash,
                b"list" => Type::List,
                b"set" => Type::Set,
                b"zset" => Type::ZSet,
                b"stream" => Type::Stream,
                b"none" => Type::None,
                _ => Type::Other,
            },
            _ => Type::Other,
        }
    }

    /// The commands that read a key of this type whole.
    fn reads(self, key: &Bytes) -> Vec<Vec<Bytes>> {
        let c = |parts: &[&'static [u8]]| {
            let mut v: Vec<Bytes> = vec![Bytes::from_static(parts[0]), key.clone()];
            v.extend(parts[1..].iter().map(|p| Bytes::from_static(p)));
            v
        };
        match self {
            Type::String => vec![c(&[b"GET"])],
            Type::Hash => vec![c(&[b"HGETALL"])],
            Type::List => vec![c(&[b"LRANGE", b"0", b"-1"])],
            Type::Set => vec![c(&[b"SMEMBERS"])],
            Type::ZSet => vec![c(&[b"ZRANGE", b"0", b"-1", b"WITHSCORES"])],
            Type::Stream => vec![
                c(&[b"XRANGE", b"-", b"+"]),
                vec![
                    Bytes::from_static(b"XINFO"),
                    Bytes::from_static(b"STREAM"),
                    key.clone(),
                ],
                c(&[b"PEXPIRETIME"]),
                vec![
                    Bytes::from_static(b"XINFO"),
                    Bytes::from_static(b"GROUPS"),
                    key.clone(),
                ],
            ],
            Type::None | Type::Other => vec![],
        }
    }
}

/// What to write for one key, and what was found.
#[derive(Debug, Default)]
struct KeyPlan {
    writes: Vec<Vec<Bytes>>,
    stats: Stats,
}

/// Where a value lives, for the AES-GCM binding.
fn binding<'a>(db: u32, key: &'a [u8], field: Option<&'a [u8]>) -> Binding<'a> {
    match field {
        Some(f) => Binding::field(db, key, f),
        None => Binding::key(db, key),
    }
}

/// One value: `Some(new ciphertext)` when it must be rewritten.
fn value(
    ring: &KeyRing,
    stats: &mut Stats,
    stored: &[u8],
    at: &Binding<'_>,
    target: ValueFormat,
) -> Option<Bytes> {
    let Some(seen) = inspect(stored) else {
        stats.leave(Left::NotEncrypted);
        return None;
    };
    let format = match seen.format {
        ValueFormat::AesGcm => Format::AesGcm,
        _ => Format::Fernet,
    };
    let Some(id) = ring.identify(stored) else {
        stats.found(Class {
            kind: Kind::Value,
            format,
            key: None,
        });
        stats.leave(Left::NoRingKey);
        return None;
    };
    stats.found(Class {
        kind: Kind::Value,
        format,
        key: Some(id.to_bytes()),
    });
    if let Some(t) = seen.timestamp {
        stats.stamp(id.to_bytes(), t);
    }
    if id == ring.key_ids()[0] && format == wanted(target) {
        return None;
    }
    match ring.decrypt_value(stored, at) {
        Ok(opened) => {
            stats.values_rewrapped += 1;
            let out = ring.clone().with_format(target);
            Some(Bytes::from(out.encrypt_value(&opened.plaintext, at)))
        }
        Err(redcloak_crypto::DecryptError::Binding) => {
            stats.leave(Left::Binding);
            None
        }
        Err(_) => {
            stats.leave(Left::NoRingKey);
            None
        }
    }
}

/// One member: `Some(new ciphertext)` when it must be rewritten.
fn member(ring: &KeyRing, stats: &mut Stats, stored: &Bytes) -> Option<Bytes> {
    if inspect_member(stored).is_none() {
        stats.leave(Left::NotEncrypted);
        return None;
    }
    match ring.decrypt_member(stored) {
        Ok(opened) => {
            stats.found(Class {
                kind: Kind::Member,
                format: Format::Siv,
                key: Some(opened.key_id.to_bytes()),
            });
            if opened.key_id == ring.key_ids()[0] {
                return None;
            }
            stats.members_rewrapped += 1;
            Some(Bytes::from(ring.encrypt_member(&opened.plaintext)))
        }
        Err(_) => {
            stats.found(Class {
                kind: Kind::Member,
                format: Format::Siv,
                key: None,
            });
            stats.leave(Left::NoRingKey);
            None
        }
    }
}

fn bulks(f: Frame) -> Vec<Bytes> {
    match f {
        Frame::Array(items) => items
            .into_iter()
            .filter_map(|i| match i {
                Frame::Bulk(b) => Some(b),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

/// What to write for one key, from what its reads returned (pure: no I/O).
fn plan(ring: &KeyRing, db: u32, key: &Bytes, ty: Type, mut got: Vec<Frame>) -> KeyPlan {
    let mut p = KeyPlan::default();
    let s = &mut p.stats;
    // Function libraries are hash fields like any other (bound to their library's name).
    let target = ring.format();
    let word = |w: &'static [u8]| Bytes::from_static(w);
    match ty {
        Type::String => {
            let Some(Frame::Bulk(v)) = got.pop() else {
                return p;
            };
            if v.starts_with(b"HYLL") {
                s.leave(Left::HyperLogLog);
                return p;
            }
            if let Some(new) = value(ring, s, &v, &binding(db, key, None), target) {
                p.writes
                    .push(vec![word(b"SET"), key.clone(), new, word(b"KEEPTTL")]);
            }
        }
        Type::Hash => {
            let items = bulks(got.pop().unwrap_or(Frame::Null));
            let mut hset = vec![word(b"HSET"), key.clone()];
            for pair in items.chunks_exact(2) {
                if let Some(new) =
                    value(ring, s, &pair[1], &binding(db, key, Some(&pair[0])), target)
                {
                    hset.push(pair[0].clone());
                    hset.push(new);
                }
            }
            if hset.len() > 2 {
                p.writes.push(hset);
            }
        }
        Type::List => {
            let items = bulks(got.pop().unwrap_or(Frame::Null));
            for (i, v) in items.iter().enumerate() {
                if let Some(new) = value(ring, s, v, &binding(db, key, None), target) {
                    p.writes.push(vec![
                        word(b"LSET"),
                        key.clone(),
                        Bytes::from(i.to_string()),
                        new,
                    ]);
                }
            }
        }
        Type::Set => {
            let items = bulks(got.pop().unwrap_or(Frame::Null));
            let present: HashSet<&Bytes> = items.iter().collect();
            let (mut add, mut rem) = (
                vec![word(b"SADD"), key.clone()],
                vec![word(b"SREM"), key.clone()],
            );
            for m in &items {
                if let Some(new) = member(ring, s, m) {
                    if present.contains(&new) {
                        s.duplicates_merged += 1;
                    } else {
                        add.push(new);
                    }
                    rem.push(m.clone());
                }
            }
            if add.len() > 2 {
                p.writes.push(add);
            }
            if rem.len() > 2 {
                p.writes.push(rem);
            }
        }
        Type::ZSet => {
            let items = bulks(got.pop().unwrap_or(Frame::Null));
            let present: HashSet<&Bytes> = items.iter().step_by(2).collect();
            let (mut add, mut rem) = (
                vec![word(b"ZADD"), key.clone()],
                vec![word(b"ZREM"), key.clone()],
            );
            for pair in items.chunks_exact(2) {
                if let Some(new) = member(ring, s, &pair[0]) {
                    if present.contains(&new) {
                        // The copy under the primary key is the newer write: keep its score.
                        s.duplicates_merged += 1;
                    } else {
                        add.push(pair[1].clone());
                        add.push(new);
                    }
                    rem.push(pair[0].clone());
                }
            }
            if add.len() > 2 {
                p.writes.push(add);
            }
            if rem.len() > 2 {
                p.writes.push(rem);
            }
        }
        Type::Stream => {
            let mut got = got.into_iter();
            let entries = match got.next() {
                Some(Frame::Array(e)) => e,
                _ => return p,
            };
            let info = got.next().unwrap_or(Frame::Null);
            let expire_at = match got.next() {
                Some(Frame::Integer(t)) => t,
                _ => -1,
            };
            let info = stream_info(info);
            let group_list = groups(got.next().as_ref());
            let mut group_details = Vec::new();
            for g in group_list {
                let consumers = got.next().unwrap_or(Frame::Null);
                let pending = got.next().unwrap_or(Frame::Null);
                group_details.push((g, consumers, pending));
            }
            let mut rebuilt = vec![vec![word(b"DEL"), key.clone()]];
            let mut stale = 0u64;
            for entry in entries {
                let Frame::Array(mut parts) = entry else {
                    continue;
                };
                let fields = bulks(parts.pop().unwrap_or(Frame::Null));
                let Some(Frame::Bulk(id)) = parts.pop() else {
                    continue;
                };
                let mut xadd = vec![word(b"XADD"), key.clone(), id];
                for pair in fields.chunks_exact(2) {
                    xadd.push(pair[0].clone());
                    match value(ring, s, &pair[1], &binding(db, key, Some(&pair[0])), target) {
                        Some(new) => {
                            stale += 1;
                            xadd.push(new);
                        }
                        None => xadd.push(pair[1].clone()),
                    }
                }
                rebuilt.push(xadd);
            }
            if stale == 0 {
                return p;
            }
            if info.groups != Some(group_details.len() as i64) {
                // Groups that could not be read: leave the stream as it is.
                s.values_rewrapped -= stale;
                *s.left.entry(Left::StreamGroupsUnread).or_default() += stale;
                return p;
            }
            let Some(last_id) = info.last_id else {
                s.values_rewrapped -= stale;
                *s.left.entry(Left::StreamGroupsUnread).or_default() += stale;
                return p;
            };
            let mut setid = vec![word(b"XSETID"), key.clone(), last_id];
            if let Some(added) = info.entries_added {
                setid.push(word(b"ENTRIESADDED"));
                setid.push(added);
            }
            if let Some(max_deleted) = info.max_deleted {
                setid.push(word(b"MAXDELETEDID"));
                setid.push(max_deleted);
            }
            rebuilt.push(setid);
            for (g, consumers, pending) in group_details {
                let mut create = vec![
                    word(b"XGROUP"),
                    word(b"CREATE"),
                    key.clone(),
                    g.name.clone(),
                    g.last_delivered.clone(),
                ];
                if let Some(read) = g.entries_read {
                    create.push(word(b"ENTRIESREAD"));
                    create.push(read);
                }
                rebuilt.push(create);
                for c in consumer_names(consumers) {
                    rebuilt.push(vec![
                        word(b"XGROUP"),
                        word(b"CREATECONSUMER"),
                        key.clone(),
                        g.name.clone(),
                        c,
                    ]);
                }
                // Each pending entry back to its consumer, with its idle time and delivery
                // count (FORCE creates the entry; JUSTID does not count a delivery).
                for (id, consumer, idle, deliveries) in pending_entries(pending) {
                    rebuilt.push(vec![
                        word(b"XCLAIM"),
                        key.clone(),
                        g.name.clone(),
                        consumer,
                        word(b"0"),
                        id,
                        word(b"IDLE"),
                        Bytes::from(idle.to_string()),
                        word(b"RETRYCOUNT"),
                        Bytes::from(deliveries.to_string()),
                        word(b"FORCE"),
                        word(b"JUSTID"),
                    ]);
                }
            }
            if expire_at > 0 {
                rebuilt.push(vec![
                    word(b"PEXPIREAT"),
                    key.clone(),
                    Bytes::from(expire_at.to_string()),
                ]);
            }
            s.streams_rebuilt += 1;
            p.writes = rebuilt;
        }
        Type::None | Type::Other => {}
    }
    p
}

#[derive(Debug, Default)]
struct StreamInfo {
    groups: Option<i64>,
    last_id: Option<Bytes>,
    entries_added: Option<Bytes>,
    max_deleted: Option<Bytes>,
}

/// The fields of `XINFO STREAM` a rebuild needs (RESP2: a flat list of name, value).
fn stream_info(f: Frame) -> StreamInfo {
    let mut info = StreamInfo::default();
    let Frame::Array(items) = f else {
        return info;
    };
    for pair in items.chunks_exact(2) {
        let Frame::Bulk(name) = &pair[0] else {
            continue;
        };
        let as_bytes = |v: &Frame| match v {
            Frame::Bulk(b) => Some(b.clone()),
            Frame::Integer(n) => Some(Bytes::from(n.to_string())),
            _ => None,
        };
        match &name[..] {
            b"groups" => {
                if let Frame::Integer(n) = pair[1] {
                    info.groups = Some(n);
                }
            }
            b"last-generated-id" => info.last_id = as_bytes(&pair[1]),
            b"entries-added" => info.entries_added = as_bytes(&pair[1]),
            b"max-deleted-entry-id" => info.max_deleted = as_bytes(&pair[1]),
            _ => {}
        }
    }
    info
}

/// One consumer group, as `XINFO GROUPS` describes it.
#[derive(Debug, Clone)]
struct Group {
    name: Bytes,
    last_delivered: Bytes,
    entries_read: Option<Bytes>,
    pending: i64,
}

/// `XINFO GROUPS` (RESP2: one flat name/value list per group). Empty for anything else (a
/// missing reply, an error).
fn groups(f: Option<&Frame>) -> Vec<Group> {
    let Some(Frame::Array(list)) = f else {
        return vec![];
    };
    list.iter()
        .filter_map(|g| {
            let Frame::Array(fields) = g else {
                return None;
            };
            let (mut name, mut last, mut read, mut pending) = (None, None, None, 0);
            for pair in fields.chunks_exact(2) {
                let Frame::Bulk(n) = &pair[0] else { continue };
                match (&n[..], &pair[1]) {
                    (b"name", Frame::Bulk(v)) => name = Some(v.clone()),
                    (b"last-delivered-id", Frame::Bulk(v)) => last = Some(v.clone()),
                    (b"entries-read", Frame::Integer(v)) => read = Some(Bytes::from(v.to_string())),
                    (b"pending", Frame::Integer(v)) => pending = *v,
                    _ => {}
                }
            }
            Some(Group {
                name: name?,
                last_delivered: last?,
                entries_read: read,
                pending,
            })
        })
        .collect()
}

/// Consumer names from `XINFO CONSUMERS`.
fn consumer_names(f: Frame) -> Vec<Bytes> {
    let Frame::Array(list) = f else {
        return vec![];
    };
    list.into_iter()
        .filter_map(|c| {
            let Frame::Array(fields) = c else {
                return None;
            };
            fields
                .chunks_exact(2)
                .find_map(|pair| match (&pair[0], &pair[1]) {
                    (Frame::Bulk(n), Frame::Bulk(v)) if &n[..] == b"name" => Some(v.clone()),
                    _ => None,
                })
        })
        .collect()
}

/// `(id, consumer, idle ms, deliveries)` from the extended form of `XPENDING`.
fn pending_entries(f: Frame) -> Vec<(Bytes, Bytes, i64, i64)> {
    let Frame::Array(list) = f else {
        return vec![];
    };
    list.into_iter()
        .filter_map(|e| match e {
            Frame::Array(p) => match &p[..] {
                [Frame::Bulk(id), Frame::Bulk(c), Frame::Integer(idle), Frame::Integer(n)] => {
                    Some((id.clone(), c.clone(), *idle, *n))
                }
                _ => None,
            },
            _ => None,
        })
        .collect()
}

// === the connection ===

/// One authenticated connection of rewrap's own, RESP2.
struct Conn {
    tx: WriteHalf<UpstreamConn>,
    rx: FrameReader<ReadHalf<UpstreamConn>>,
    limits: resp::Limits,
}

impl Conn {
    async fn open(connector: &Connector) -> Result<Conn, UpstreamError> {
        let conn = connector.connect().await?;
        let limits = resp::Limits {
            max_array_len: u32::MAX as usize,
            ..resp::Limits::default()
        };
        let (tx, rx) = Dedicated::split(conn, limits, &Budget::new(usize::MAX / 2));
        Ok(Conn { tx, rx, limits })
    }

    async fn select(&mut self, db: u32) -> Result<(), RewrapError> {
        match self
            .one(
                vec![Bytes::from_static(b"SELECT"), Bytes::from(db.to_string())],
                "SELECT",
            )
            .await?
        {
            Frame::Error(e) => Err(RewrapError::Refused {
                command: "SELECT",
                reply: String::from_utf8_lossy(&e).into_owned(),
            }),
            _ => Ok(()),
        }
    }

    async fn one(&mut self, cmd: Vec<Bytes>, name: &'static str) -> Result<Frame, RewrapError> {
        let reply = self.call(&[cmd]).await?.pop();
        match reply {
            Some(Frame::Error(e)) => Err(RewrapError::Refused {
                command: name,
                reply: String::from_utf8_lossy(&e).into_owned(),
            }),
            Some(f) => Ok(f),
            None => Err(RewrapError::Lost("no reply".into())),
        }
    }

    async fn call(&mut self, cmds: &[Vec<Bytes>]) -> Result<Vec<Frame>, RewrapError> {
        if cmds.is_empty() {
            return Ok(vec![]);
        }
        let mut out = BytesMut::new();
        for c in cmds {
            resp::write_array_len(&mut out, c.len());
            for a in c {
                resp::write_bulk(&mut out, a);
            }
        }
        self.tx
            .send(&out)
            .await
            .map_err(|e| RewrapError::Lost(e.to_string()))?;
        let mut replies = Vec::with_capacity(cmds.len());
        while replies.len() < cmds.len() {
            let frame = match self.rx.next_frame().await {
                Ok(Some(f)) => f,
                Ok(None) => return Err(RewrapError::Lost("Redis closed the connection".into())),
                Err(e) => return Err(RewrapError::Lost(e.to_string())),
            };
            match Frame::parse(&frame, &self.limits) {
                Ok(Some((f, _))) => replies.push(f),
                _ => return Err(RewrapError::Lost("Redis sent a malformed reply".into())),
            }
        }
        Ok(replies)
    }
}

/// How reports name a census line's key: its id, and whether it is the ring's primary.
pub fn key_label(ring: &KeyRing, key: Option<[u8; 4]>) -> String {
    match key {
        None => "no ring key".to_owned(),
        Some(b) => {
            let id = KeyId::from_bytes(b);
            match ring.key_ids().iter().position(|k| *k == id) {
                Some(0) => format!("{id} (primary)"),
                Some(_) => format!("{id}"),
                None => format!("{id} (not in the ring)"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(keys: &[&str]) -> KeyRing {
        KeyRing::parse(&keys.join(",")).unwrap()
    }

    #[test]
    fn resume_positions_parse() {
        assert_eq!(
            "3:1234".parse::<Resume>().unwrap(),
            Resume {
                db: Some(3),
                cursor: 1234
            }
        );
        assert_eq!(
            "77".parse::<Resume>().unwrap(),
            Resume {
                db: None,
                cursor: 77
            }
        );
        assert!("x:1".parse::<Resume>().is_err());
        assert_eq!(Position { db: 2, cursor: 9 }.to_string(), "2:9");
    }

    #[test]
    fn own_keys_are_skipped_except_function_libraries() {
        assert!(is_data_key(b"user:1"));
        assert!(is_data_key(LEGACY_KEY));
        assert!(!is_data_key(b"redcloak:scratch:1:2:3"));
        assert!(!is_data_key(b"redcloak:internal:other"));
    }

    #[test]
    fn a_string_under_the_old_key_is_rewritten_keeping_its_ttl() {
        let (new, old) = (
            redcloak_crypto::generate_key().to_string(),
            redcloak_crypto::generate_key().to_string(),
        );
        let before = ring(&[&old]);
        let after = ring(&[&new, &old]);
        let key = Bytes::from_static(b"k");
        let stored = Bytes::from(before.encrypt(b"v"));
        let p = plan(&after, 0, &key, Type::String, vec![Frame::Bulk(stored)]);
        assert_eq!(p.writes.len(), 1);
        let w = &p.writes[0];
        assert_eq!(&w[0][..], b"SET");
        assert_eq!(&w[3][..], b"KEEPTTL");
        assert_eq!(
            after.identify(&w[2]),
            Some(after.key_ids()[0]),
            "written under the primary key"
        );
        assert_eq!(after.decrypt(&w[2]).unwrap(), b"v");
        // Already under the primary key: nothing to write.
        let p = plan(
            &after,
            0,
            &key,
            Type::String,
            vec![Frame::Bulk(w[2].clone())],
        );
        assert!(p.writes.is_empty());
        // Not a token: left, counted.
        let p = plan(
            &after,
            0,
            &key,
            Type::String,
            vec![Frame::Bulk(Bytes::from_static(b"plain"))],
        );
        assert!(p.writes.is_empty());
        assert_eq!(p.stats.left.get(&Left::NotEncrypted), Some(&1));
    }

    #[test]
    fn set_members_are_added_before_the_old_ones_are_removed() {
        let (new, old) = (
            redcloak_crypto::generate_key().to_string(),
            redcloak_crypto::generate_key().to_string(),
        );
        let before = ring(&[&old]);
        let after = ring(&[&new, &old]);
        let a_old = Bytes::from(before.encrypt_member(b"a"));
        let b_old = Bytes::from(before.encrypt_member(b"b"));
        let b_new = Bytes::from(after.encrypt_member(b"b"));
        let items = Frame::Array(vec![
            Frame::Bulk(a_old.clone()),
            Frame::Bulk(b_old.clone()),
            Frame::Bulk(b_new.clone()),
        ]);
        let p = plan(&after, 0, &Bytes::from_static(b"s"), Type::Set, vec![items]);
        assert_eq!(p.writes.len(), 2);
        assert_eq!(&p.writes[0][0][..], b"SADD");
        assert_eq!(p.writes[0].len(), 3, "b is already there under the new key");
        assert_eq!(&p.writes[1][0][..], b"SREM");
        assert_eq!(&p.writes[1][2..], &[a_old, b_old]);
        assert_eq!(p.stats.duplicates_merged, 1);
        assert_eq!(p.stats.members_rewrapped, 2);
    }
}
