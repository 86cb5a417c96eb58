//! One emulated command, atomically: WATCH + read + decrypt, compute, MULTI + encrypted
//! writes + EXEC, retried (bounded, backed off) when EXEC reports a conflict.
//!
//! Round trips without contention: one for a command that only reads (WATCH, the reads and
//! UNWATCH are pipelined), two for one that writes.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use redcloak_commands::emulate::{self, Found, Held, ListItem, Read, Step, Ttl, Whole, Write};
use redcloak_commands::resp::{self, Frame};
use redcloak_commands::transform;
use redcloak_crypto::{Binding, KeyRing};

use super::{command, Exchange, ExchangeError};
use crate::metrics::Metrics;

/// Attempts before redcloak gives up on a key that keeps changing.
pub(crate) const MAX_ATTEMPTS: u32 = 64;
/// Backoff between attempts: doubles from the first to the last, with full jitter.
const BACKOFF_FIRST: Duration = Duration::from_micros(500);
const BACKOFF_LAST: Duration = Duration::from_millis(64);

/// One emulated command.
pub(crate) struct Emulation<'a> {
    /// The table name (metrics, messages).
    pub name: &'static str,
    /// The request as the client sent it.
    pub args: &'a [Bytes],
    /// The key ring in use.
    pub ring: &'a KeyRing,
    /// Reply parser limits.
    pub limits: &'a resp::Limits,
    /// The database it runs in: with the key (and field), where its values are bound.
    pub db: u32,
}

/// How an emulation ended, when it did not produce a reply.
#[derive(Debug)]
pub(crate) enum Failed {
    /// The exchange with Redis failed: the outcome is unknown.
    Exchange(ExchangeError),
}

/// Runs the emulation; the reply is the client's (plaintext, in the connection's protocol).
pub(crate) async fn run<E: Exchange>(
    ex: &mut E,
    em: &Emulation<'_>,
    metrics: &Metrics,
) -> Result<Frame, Failed> {
    let reads = match emulate::start(em.args) {
        Ok(reads) => reads,
        Err(reply) => return Ok(reply),
    };
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            metrics.emulation_retry(em.name);
            tokio::time::sleep(backoff(attempt)).await;
        }
        match once(ex, em, &reads).await? {
            Some(reply) => return Ok(reply),
            None => continue, // a watched key changed: again
        }
    }
    metrics.emulation_gave_up(em.name);
    Ok(Frame::Error(Bytes::from(format!(
        "ERR redcloak: {} could not be applied: its key changed {MAX_ATTEMPTS} times in a row while \
         redcloak was updating it (a very hot key); nothing was written, try again",
        em.name
    ))))
}

/// One attempt. `None`: EXEC reported that a watched key changed.
async fn once<E: Exchange>(
    ex: &mut E,
    em: &Emulation<'_>,
    first: &[Read],
) -> Result<Option<Frame>, Failed> {
    let mut snapshot = Snapshot::default();
    let mut reads = first.to_vec();
    loop {
        if let Err(reply) = snapshot.read(ex, em, &reads).await? {
            unwatch(ex).await?;
            return Ok(Some(reply));
        }
        let resp3 = ex.state().resp3;
        match emulate::compute(em.args, &snapshot.found, resp3) {
            Step::Read(more) => reads = more,
            Step::Done { reply, writes } if writes.is_empty() => {
                unwatch(ex).await?;
                return Ok(Some(reply));
            }
            Step::Done { reply, writes } => {
                let mut commands = vec![command(&[b"MULTI"])];
                snapshot.write_commands(&writes, em.ring, em.db, &mut commands);
                commands.push(command(&[b"EXEC"]));
                let replies = ex.call(commands).await.map_err(Failed::Exchange)?;
                let exec = parse(
                    em.limits,
                    replies
                        .last()
                        .ok_or(Failed::Exchange(ExchangeError::Malformed))?,
                )?;
                return match exec {
                    Frame::Null | Frame::NullArray => Ok(None),
                    Frame::Array(results) => match results.into_iter().find(is_error) {
                        // Under WATCH nothing else can have changed the key: a bug or an
                        // operator's intervention. Say so rather than pretend it worked.
                        Some(Frame::Error(e)) => Ok(Some(Frame::Error(Bytes::from(format!(
                            "ERR redcloak: {} was computed but Redis refused the write: {}",
                            em.name,
                            String::from_utf8_lossy(&e)
                        ))))),
                        _ => Ok(Some(reply)),
                    },
                    other => Ok(Some(other)), // EXECABORT and friends: Redis's own words
                };
            }
        }
    }
}

fn is_error(f: &Frame) -> bool {
    matches!(f, Frame::Error(_) | Frame::BulkError(_))
}

async fn unwatch<E: Exchange>(ex: &mut E) -> Result<(), Failed> {
    ex.call(vec![command(&[b"UNWATCH"])])
        .await
        .map(|_| ())
        .map_err(Failed::Exchange)
}

pub(crate) fn parse(limits: &resp::Limits, raw: &Bytes) -> Result<Frame, Failed> {
    match Frame::parse(raw, limits) {
        Ok(Some((frame, _))) => Ok(frame),
        _ => Err(Failed::Exchange(ExchangeError::Malformed)),
    }
}

pub(crate) fn backoff(attempt: u32) -> Duration {
    let cap = BACKOFF_FIRST
        .saturating_mul(1 << attempt.min(16))
        .min(BACKOFF_LAST);
    // Full jitter from the clock's nanoseconds: enough to keep contenders apart.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    cap.mul_f64(f64::from(nanos % 1000) / 1000.0)
}

/// What the reads found: the decrypted values for `compute`, and the raw ciphertexts and
/// expiry of each list read, so a rewrite keeps untouched elements as they are.
#[derive(Default)]
pub(crate) struct Snapshot {
    pub(crate) found: Vec<Found>,
    lists: HashMap<Bytes, (Vec<Bytes>, i64)>,
}

impl Snapshot {
    /// WATCHes the keys of `reads` and reads them in one round trip. `Err(reply)`: a value
    /// that does not decrypt (the client gets the error, nothing is written).
    async fn read<E: Exchange>(
        &mut self,
        ex: &mut E,
        em: &Emulation<'_>,
        reads: &[Read],
    ) -> Result<Result<(), Frame>, Failed> {
        let mut watch = vec![Bytes::from_static(b"WATCH")];
        watch.extend(reads.iter().map(|r| key_of(r).clone()));
        let mut commands = vec![watch];
        for read in reads {
            commands.extend(read_commands(read));
        }
        let replies = ex.call(commands).await.map_err(Failed::Exchange)?;
        self.absorb(em, reads, &replies[1..])
    }

    /// Takes in the replies to `reads`' commands (in order). `Err(reply)`: a value that does
    /// not decrypt.
    pub(crate) fn absorb(
        &mut self,
        em: &Emulation<'_>,
        reads: &[Read],
        replies: &[Bytes],
    ) -> Result<Result<(), Frame>, Failed> {
        let mut replies = replies.iter();
        for read in reads {
            let n = read_commands(read).len();
            let frames: Vec<Frame> = replies
                .by_ref()
                .take(n)
                .map(|raw| parse(em.limits, raw))
                .collect::<Result<_, _>>()?;
            match self.found_in(read, frames, em.ring, em.db) {
                Ok(found) => self.found.push(found),
                Err(problem) => {
                    return Ok(Err(Frame::Error(Bytes::from(
                        transform::undecryptable_message(em.name, &[&key_of(read)[..]], problem),
                    ))))
                }
            }
        }
        Ok(Ok(()))
    }

    /// What one read found, decrypted.
    fn found_in(
        &mut self,
        read: &Read,
        frames: Vec<Frame>,
        ring: &KeyRing,
        db: u32,
    ) -> Result<Found, transform::Undecryptable> {
        let at = match read {
            Read::HashField { key, field } => Binding::field(db, key, field),
            _ => Binding::key(db, key_of(read)),
        };
        let open = |stored: &Bytes| {
            transform::open_value(ring, stored, &at)
                .map_err(|error| transform::Undecryptable::value(stored, error))
        };
        let mut frames = frames.into_iter();
        let first = frames.next().unwrap_or(Frame::Null);
        if is_wrongtype(&first) {
            return Ok(Found::WrongType);
        }
        Ok(match read {
            Read::String { .. } => match first {
                Frame::Bulk(v) => Found::String(open(&v)?),
                _ => Found::Missing,
            },
            Read::HashField { .. } => match first {
                Frame::Bulk(v) => Found::Field(open(&v)?),
                _ => Found::Missing,
            },
            Read::ListEnd { .. } => match first {
                Frame::Bulk(v) => Found::Element(open(&v)?),
                _ => Found::Missing,
            },
            Read::Whole { key } => {
                let (string, list, hash) = (frames.next(), frames.next(), frames.next());
                let expire_at = match frames.next() {
                    Some(Frame::Integer(t)) => t,
                    _ => -1,
                };
                let kind = match &first {
                    Frame::Simple(t) | Frame::Bulk(t) => t.clone(),
                    _ => Bytes::new(),
                };
                let held = match &kind[..] {
                    b"none" => return Ok(Found::Missing),
                    b"string" => match string {
                        // A HyperLogLog is Redis's registers of member ciphertexts.
                        Some(Frame::Bulk(v)) if v.starts_with(b"HYLL") => Held::Unbound,
                        Some(Frame::Bulk(v)) => Held::String(open(&v)?),
                        _ => return Ok(Found::Missing),
                    },
                    b"list" => Held::List(
                        elements(list.unwrap_or(Frame::Null))
                            .iter()
                            .map(open)
                            .collect::<Result<_, _>>()?,
                    ),
                    b"hash" => {
                        let flat = match hash {
                            Some(Frame::Map(pairs)) => {
                                pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()
                            }
                            Some(other) => elements(other).into_iter().map(Frame::Bulk).collect(),
                            None => Vec::new(),
                        };
                        let mut fields = Vec::with_capacity(flat.len() / 2);
                        for pair in flat.chunks_exact(2) {
                            let (Frame::Bulk(field), Frame::Bulk(stored)) = (&pair[0], &pair[1])
                            else {
                                continue;
                            };
                            let at = Binding::field(db, key, field);
                            let value = transform::open_value(ring, stored, &at)
                                .map_err(|error| transform::Undecryptable::value(stored, error))?;
                            fields.push((field.clone(), value));
                        }
                        Held::Hash(fields)
                    }
                    b"stream" => Held::Stream,
                    _ => Held::Unbound,
                };
                Found::Whole(Whole { held, expire_at })
            }
            Read::IsList { .. } => match &first {
                Frame::Simple(t) | Frame::Bulk(t) if &t[..] == b"list" => Found::List(Vec::new()),
                Frame::Simple(t) | Frame::Bulk(t) if &t[..] == b"none" => Found::Missing,
                _ => Found::WrongType,
            },
            Read::List { key } => {
                let items = elements(first);
                let expire_at = match frames.next() {
                    Some(Frame::Integer(t)) => t,
                    _ => -1,
                };
                if items.is_empty() {
                    return Ok(Found::Missing);
                }
                let plain = items.iter().map(open).collect::<Result<Vec<_>, _>>()?;
                self.lists.insert(key.clone(), (items, expire_at));
                Found::List(plain)
            }
            Read::Collection { .. } => {
                let kind = match &first {
                    Frame::Simple(t) | Frame::Bulk(t) => t.clone(),
                    _ => Bytes::new(),
                };
                let (list, set, zset) = (frames.next(), frames.next(), frames.next());
                match &kind[..] {
                    b"none" => Found::Missing,
                    b"list" => Found::List(
                        elements(list.unwrap_or(Frame::Null))
                            .iter()
                            .map(open)
                            .collect::<Result<_, _>>()?,
                    ),
                    b"set" => Found::Set(
                        elements(set.unwrap_or(Frame::Null))
                            .iter()
                            .map(|m| {
                                transform::open_member(ring, m)
                                    .map_err(transform::Undecryptable::member)
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    b"zset" => Found::ZSet(scored(zset.unwrap_or(Frame::Null), ring)?),
                    _ => Found::WrongType,
                }
            }
        })
    }

    /// The commands that apply `writes` (values encrypted; untouched list elements keep
    /// their ciphertext; a rewritten list keeps its expiry when the write says so).
    pub(crate) fn write_commands(
        &self,
        writes: &[Write],
        ring: &KeyRing,
        db: u32,
        out: &mut Vec<Vec<Bytes>>,
    ) {
        for w in writes {
            match w {
                Write::SetString { key, value, ttl } => {
                    let mut set = vec![
                        Bytes::from_static(b"SET"),
                        key.clone(),
                        transform::seal_value(ring, value, &Binding::key(db, key)),
                    ];
                    if *ttl == Ttl::Keep {
                        set.push(Bytes::from_static(b"KEEPTTL"));
                    }
                    out.push(set);
                }
                Write::HSetField { key, field, value } => out.push(vec![
                    Bytes::from_static(b"HSET"),
                    key.clone(),
                    field.clone(),
                    transform::seal_value(ring, value, &Binding::field(db, key, field)),
                ]),
                Write::ReplaceList { key, items, ttl } => {
                    out.push(vec![Bytes::from_static(b"DEL"), key.clone()]);
                    let (existing, expire_at) = self
                        .lists
                        .get(key)
                        .map_or((&[][..], -1), |(items, at)| (&items[..], *at));
                    let mut push = vec![Bytes::from_static(b"RPUSH"), key.clone()];
                    push.extend(items.iter().map(|item| match item {
                        ListItem::Existing(i) => existing.get(*i).cloned().unwrap_or_default(),
                        ListItem::New(v) => transform::seal_value(ring, v, &Binding::key(db, key)),
                    }));
                    if push.len() > 2 {
                        out.push(push);
                        if *ttl == Ttl::Keep && expire_at > 0 {
                            out.push(vec![
                                Bytes::from_static(b"PEXPIREAT"),
                                key.clone(),
                                Bytes::from(expire_at.to_string()),
                            ]);
                        }
                    }
                }
                Write::Delete { key } => out.push(vec![Bytes::from_static(b"DEL"), key.clone()]),
                Write::ExpireAt { key, at } => out.push(vec![
                    Bytes::from_static(b"PEXPIREAT"),
                    key.clone(),
                    Bytes::from(at.to_string()),
                ]),
                Write::Rename { from, to } => out.push(vec![
                    Bytes::from_static(b"RENAME"),
                    from.clone(),
                    to.clone(),
                ]),
                Write::Pop { key, tail } => out.push(vec![
                    Bytes::from_static(if *tail { b"RPOP" } else { b"LPOP" }),
                    key.clone(),
                ]),
                Write::Push { key, head, value } => out.push(vec![
                    Bytes::from_static(if *head { b"LPUSH" } else { b"RPUSH" }),
                    key.clone(),
                    transform::seal_value(ring, value, &Binding::key(db, key)),
                ]),
            }
        }
    }
}

pub(crate) fn key_of(read: &Read) -> &Bytes {
    match read {
        Read::String { key }
        | Read::HashField { key, .. }
        | Read::List { key }
        | Read::ListEnd { key, .. }
        | Read::IsList { key }
        | Read::Whole { key }
        | Read::Collection { key } => key,
    }
}

/// The commands that perform one read (all in the same WATCH round trip).
pub(crate) fn read_commands(read: &Read) -> Vec<Vec<Bytes>> {
    let b = |s: &'static [u8]| Bytes::from_static(s);
    match read {
        Read::String { key } => vec![vec![b(b"GET"), key.clone()]],
        Read::HashField { key, field } => vec![vec![b(b"HGET"), key.clone(), field.clone()]],
        Read::List { key } => vec![
            vec![b(b"LRANGE"), key.clone(), b(b"0"), b(b"-1")],
            vec![b(b"PEXPIRETIME"), key.clone()],
        ],
        Read::ListEnd { key, tail } => vec![vec![
            b(b"LINDEX"),
            key.clone(),
            b(if *tail { b"-1" } else { b"0" }),
        ]],
        Read::IsList { key } => vec![vec![b(b"TYPE"), key.clone()]],
        // TYPE says which reading is the right one (the others are WRONGTYPE).
        Read::Whole { key } => vec![
            vec![b(b"TYPE"), key.clone()],
            vec![b(b"GET"), key.clone()],
            vec![b(b"LRANGE"), key.clone(), b(b"0"), b(b"-1")],
            vec![b(b"HGETALL"), key.clone()],
            vec![b(b"PEXPIRETIME"), key.clone()],
        ],
        // TYPE says which of the three readings is the right one (the others are WRONGTYPE).
        Read::Collection { key } => vec![
            vec![b(b"TYPE"), key.clone()],
            vec![b(b"LRANGE"), key.clone(), b(b"0"), b(b"-1")],
            vec![b(b"SMEMBERS"), key.clone()],
            vec![
                b(b"ZRANGE"),
                key.clone(),
                b(b"0"),
                b(b"-1"),
                b(b"WITHSCORES"),
            ],
        ],
    }
}

fn is_wrongtype(f: &Frame) -> bool {
    matches!(f, Frame::Error(e) if e.starts_with(b"WRONGTYPE"))
}

/// The bulk strings of an array or set reply.
fn elements(f: Frame) -> Vec<Bytes> {
    match f {
        Frame::Array(items) | Frame::Set(items) => items
            .into_iter()
            .filter_map(|i| match i {
                Frame::Bulk(b) => Some(b),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `ZRANGE … WITHSCORES`: `[m, s, …]` (RESP2) or `[[m, s], …]` (RESP3), members decrypted.
fn scored(f: Frame, ring: &KeyRing) -> Result<Vec<(Vec<u8>, f64)>, transform::Undecryptable> {
    let Frame::Array(items) = f else {
        return Ok(Vec::new());
    };
    let pairs: Vec<(Frame, Frame)> = if matches!(items.first(), Some(Frame::Array(_))) {
        items
            .into_iter()
            .filter_map(|p| match p {
                Frame::Array(mut kv) if kv.len() == 2 => {
                    let s = kv.pop()?;
                    Some((kv.pop()?, s))
                }
                _ => None,
            })
            .collect()
    } else {
        let mut it = items.into_iter();
        std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
    };
    pairs
        .into_iter()
        .map(|(m, s)| {
            let Frame::Bulk(m) = m else {
                return Ok((Vec::new(), 0.0));
            };
            let score = match s {
                Frame::Bulk(t) | Frame::Double(t) => std::str::from_utf8(&t)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0.0),
                _ => 0.0,
            };
            let member =
                transform::open_member(ring, &m).map_err(transform::Undecryptable::member)?;
            Ok((member, score))
        })
        .collect()
}
