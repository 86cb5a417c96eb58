//! What the shadow cache learns while Redis is up: a pure translation of a command (its row's
//! [`CacheOp`], its arguments and the ciphertexts redcloak sent) into a [`Learning`], applied
//! when Redis's reply arrives, in order.
//!
//! # Consistency
//! A write forgets the keys it may change *before* it is sent ([`before_send`]): if its
//! outcome is never learned (the connection breaks), the cache must not answer with the old
//! value. Commands whose effect the cache follows exactly learn from the reply instead, and
//! forget their keys if the reply never comes ([`Learning::forget_keys`]).

use bytes::Bytes;
use redcloak_commands::resp::{self, Frame};
use redcloak_commands::table::{CacheOp, KeyUse};
use redcloak_commands::words;

use super::store::{now_ms, Entry, Fallback, Ttl};

/// What the cache learns from one command's reply.
#[derive(Debug, Default)]
pub(crate) enum Learning {
    /// Nothing.
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

/// How a write changes the expiry of what it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TtlChange {
    Clear,
    At(u64),
    Keep,
}

/// Which replies mean the write happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    /// Any reply but an error.
    NotError,
    /// A reply that is neither an error nor nil (`SET … NX` answers nil when it did nothing).
    Done,
    /// `:1`.
    One,
}

/// Whether the cache follows this command's effect exactly (it learns from the reply).
pub(crate) fn follows(op: CacheOp) -> bool {
    !matches!(
        op,
        CacheOp::None | CacheOp::ForgetAll | CacheOp::Exists | CacheOp::Type | CacheOp::Ttl(_)
    )
}

/// Makes the cache forget, before a command is sent, what it may change and will not learn
/// from the reply. `dbs` are the databases the session may be in (the one it assumes and the
/// one Redis confirmed, which differ while a SELECT is in flight).
pub(crate) fn before_send(
    fallback: &Fallback,
    dbs: &[u32],
    op: CacheOp,
    keys: &KeyUse,
    args: &[Bytes],
    learning: Option<&Learning>,
) {
    if keys.touches_all || op == CacheOp::ForgetAll {
        fallback.forget_all();
        return;
    }
    let learns = learning.is_some_and(|l| !matches!(l, Learning::None));
    if keys.write && !learns {
        for db in dbs {
            for i in keys.positions() {
                fallback.forget(*db, &args[i]);
            }
        }
    }
}

/// What the cache will learn from `op`'s reply. `tokens` are the ciphertexts of the value
/// arguments, in argument order. Options the cache does not follow exactly give
/// [`Learning::None`] (the caller then forgets the keys instead of guessing).
pub(crate) fn prepare(op: CacheOp, args: &[Bytes], tokens: Vec<Bytes>) -> Learning {
    let now = now_ms();
    let number = |i: usize| args.get(i).and_then(|a| words::int(a));
    let first_token = || tokens.first().cloned();
    let key = || args[1].clone();
    match op {
        CacheOp::Set => match first_token() {
            Some(token) => prepare_set(args, token, now),
            None => Learning::None,
        },
        CacheOp::SetEx(unit) => {
            let (Some(n), Some(token)) = (number(2), first_token()) else {
                return Learning::None;
            };
            let at = (now as i64)
                .saturating_add(n.saturating_mul(unit as i64))
                .max(0) as u64;
            Learning::Set {
                pairs: vec![(key(), token)],
                ttl: TtlChange::At(at),
                when: When::NotError,
            }
        }
        CacheOp::SetNx | CacheOp::GetSet => {
            let Some(token) = first_token() else {
                return Learning::None;
            };
            let when = if op == CacheOp::SetNx {
                When::One
            } else {
                When::NotError
            };
            Learning::Set {
                pairs: vec![(key(), token)],
                ttl: TtlChange::Clear,
                when,
            }
        }
        CacheOp::MSet | CacheOp::MSetNx => {
            let keys = args[1..].iter().step_by(2).cloned();
            let pairs: Vec<_> = keys.zip(tokens).collect();
            let when = if op == CacheOp::MSetNx {
                When::One
            } else {
                When::NotError
            };
            Learning::Set {
                pairs,
                ttl: TtlChange::Clear,
                when,
            }
        }
        CacheOp::Get | CacheOp::MGet => Learning::Read {
            keys: args[1..].to_vec(),
        },
        CacheOp::GetDel | CacheOp::Del => Learning::Absent {
            keys: args[1..].to_vec(),
        },
        CacheOp::Expire(unit, absolute) => {
            // With NX/XX/GT/LT whether it applied depends on the old expiry: the reply says.
            let Some(n) = number(2) else {
                return Learning::None;
            };
            let at = if absolute {
                n.saturating_mul(unit as i64)
            } else {
                (now as i64).saturating_add(n.saturating_mul(unit as i64))
            };
            Learning::Expire {
                key: key(),
                at: at.max(0) as u64,
            }
        }
        CacheOp::Persist => Learning::Persist { key: key() },
        CacheOp::None | CacheOp::ForgetAll | CacheOp::Exists | CacheOp::Type | CacheOp::Ttl(_) => {
            Learning::None
        }
    }
}

/// `SET key value [options]`: what the cache learns depends on the options.
fn prepare_set(args: &[Bytes], token: Bytes, now: u64) -> Learning {
    let Some(opts) = SetOptions::parse(&args[3..]) else {
        return Learning::None;
    };
    if opts.get && (opts.nx || opts.xx) {
        return Learning::None; // whether it was set cannot be told from the reply
    }
    let ttl = match (opts.expire_at(now), opts.keep_ttl) {
        (Some(at), _) => TtlChange::At(at),
        (None, true) => TtlChange::Keep,
        (None, false) => TtlChange::Clear,
    };
    let when = if opts.get { When::NotError } else { When::Done };
    Learning::Set {
        pairs: vec![(args[1].clone(), token)],
        ttl,
        when,
    }
}

impl Learning {
    /// Teaches the cache what a reply says about the keys of a tracked command.
    pub(crate) fn apply(self, fallback: &Fallback, db: u32, frame: &Bytes, limits: &resp::Limits) {
        let is_error = matches!(frame.first(), Some(b'-' | b'!'));
        let is_nil = matches!(&frame[..], b"$-1\r\n" | b"*-1\r\n" | b"_\r\n");
        let is_one = &frame[..] == b":1\r\n";
        match self {
            Learning::None => {}
            Learning::Set { pairs, ttl, when } => {
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
                        &key,
                        &Entry {
                            value: Some(token),
                            ttl,
                        },
                    );
                }
            }
            Learning::Read { keys } => {
                if !is_error {
                    learn_read(fallback, db, keys, frame, limits);
                }
            }
            Learning::Absent { keys } => {
                if !is_error {
                    for key in keys {
                        fallback.record(db, &key, &Entry::ABSENT);
                    }
                }
            }
            Learning::Expire { key, at } => {
                if is_one {
                    if at <= now_ms() {
                        fallback.record(db, &key, &Entry::ABSENT);
                    } else {
                        fallback.set_ttl(db, &key, Ttl::At(at));
                    }
                }
            }
            Learning::Persist { key } => {
                if is_one {
                    fallback.set_ttl(db, &key, Ttl::Persistent);
                }
            }
        }
    }

    /// Forgets the keys this command may have changed (its outcome is unknown).
    pub(crate) fn forget_keys(&self, fallback: &Fallback, db: u32) {
        match self {
            Learning::None | Learning::Read { .. } => {}
            Learning::Set { pairs, .. } => pairs.iter().for_each(|(k, _)| fallback.forget(db, k)),
            Learning::Absent { keys } => keys.iter().for_each(|k| fallback.forget(db, k)),
            Learning::Expire { key, .. } | Learning::Persist { key } => fallback.forget(db, key),
        }
    }
}

/// GET / MGET: what the reply says the keys hold.
fn learn_read(
    fallback: &Fallback,
    db: u32,
    keys: Vec<Bytes>,
    frame: &Bytes,
    limits: &resp::Limits,
) {
    match Frame::parse(frame, limits) {
        Ok(Some((Frame::Array(items), _))) => {
            for (key, item) in keys.into_iter().zip(items) {
                match item {
                    Frame::Bulk(token) => fallback.record_read(db, &key, Some(&token)),
                    // MGET answers nil for a key of another type too: unknown, not absent.
                    _ => fallback.forget(db, &key),
                }
            }
        }
        Ok(Some((Frame::Bulk(token), _))) => {
            if let Some(key) = keys.into_iter().next() {
                fallback.record_read(db, &key, Some(&token));
            }
        }
        Ok(Some((Frame::NullBulk | Frame::Null, _))) => {
            if let Some(key) = keys.into_iter().next() {
                fallback.record_read(db, &key, None);
            }
        }
        _ => {}
    }
}

/// The options of `SET`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SetOptions {
    pub nx: bool,
    pub xx: bool,
    pub get: bool,
    pub keep_ttl: bool,
    pub expire: Option<Expire>,
}

/// An expiry option of `SET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expire {
    /// Relative, in milliseconds.
    In(u64),
    /// Absolute, Unix milliseconds.
    At(u64),
}

impl SetOptions {
    /// Parses the options after `SET key value`, as Redis does (`None`: syntax error or an
    /// expiry Redis would refuse).
    pub fn parse(opts: &[Bytes]) -> Option<SetOptions> {
        let mut o = SetOptions::default();
        let mut i = 0;
        while i < opts.len() {
            let word = &opts[i];
            let number = |i: usize| -> Option<u64> {
                let n = words::int(opts.get(i)?)?;
                (n > 0).then_some(n as u64)
            };
            let is = |w: &str| words::is(word, w);
            if is("NX") && !o.xx {
                o.nx = true;
            } else if is("XX") && !o.nx {
                o.xx = true;
            } else if is("GET") {
                o.get = true;
            } else if is("KEEPTTL") && o.expire.is_none() {
                o.keep_ttl = true;
            } else if (is("EX") || is("PX") || is("EXAT") || is("PXAT"))
                && o.expire.is_none()
                && !o.keep_ttl
            {
                let n = number(i + 1)?;
                o.expire = Some(if is("EX") {
                    Expire::In(n.checked_mul(1000)?)
                } else if is("PX") {
                    Expire::In(n)
                } else if is("EXAT") {
                    Expire::At(n.checked_mul(1000)?)
                } else {
                    Expire::At(n)
                });
                i += 1;
            } else {
                return None;
            }
            i += 1;
        }
        Some(o)
    }

    /// The absolute expiry, if the options set one.
    pub fn expire_at(&self, now_ms: u64) -> Option<u64> {
        match self.expire? {
            Expire::In(ms) => Some(now_ms.saturating_add(ms)),
            Expire::At(ms) => Some(ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<Bytes> {
        s.split_whitespace()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn opts(s: &str) -> Option<SetOptions> {
        SetOptions::parse(&args(s))
    }

    #[test]
    fn set_options_parse_like_redis() {
        assert_eq!(opts(""), Some(SetOptions::default()));
        let o = opts("nx get ex 10").unwrap();
        assert!(o.nx && o.get && o.expire == Some(Expire::In(10_000)));
        assert_eq!(
            opts("PXAT 1700000000000").unwrap().expire,
            Some(Expire::At(1_700_000_000_000))
        );
        assert!(opts("KEEPTTL").unwrap().keep_ttl);
        // Redis compares option words with strcasecmp: a NUL ends the word.
        assert!(
            SetOptions::parse(&[Bytes::from_static(b"nx\0junk")])
                .unwrap()
                .nx
        );
        for bad in [
            "NX XX",
            "EX",
            "EX 0",
            "EX -1",
            "EX 10 PX 5",
            "KEEPTTL EX 1",
            "EX 1 KEEPTTL",
            "BOGUS",
            "EX ten",
            "EX 010",
        ] {
            assert_eq!(opts(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_learning_follows_its_reply() {
        let f = Fallback::new(redcloak_config::FallbackConfig::default());
        let limits = resp::Limits::default();
        let t = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        // SET NX answered nil: nothing was written, nothing learned.
        prepare(CacheOp::Set, &args("SET k v NX"), vec![t("tok")]).apply(
            &f,
            0,
            &t("$-1\r\n"),
            &limits,
        );
        assert!(f.lookup(0, &t("k")).is_none());
        prepare(CacheOp::Set, &args("SET k v NX"), vec![t("tok")]).apply(
            &f,
            0,
            &t("+OK\r\n"),
            &limits,
        );
        assert_eq!(f.lookup(0, &t("k")).unwrap().value, Some(t("tok")));
        // MGET: a nil is "unknown" (another type answers nil too), a bulk is learned.
        prepare(CacheOp::MGet, &args("MGET k x"), vec![]).apply(
            &f,
            0,
            &t("*2\r\n$-1\r\n$3\r\nxyz\r\n"),
            &limits,
        );
        assert!(f.lookup(0, &t("k")).is_none());
        assert_eq!(f.lookup(0, &t("x")).unwrap().value, Some(t("xyz")));
        // DEL answered with an error: nothing learned.
        prepare(CacheOp::Del, &args("DEL x"), vec![]).apply(&f, 0, &t("-ERR x\r\n"), &limits);
        assert!(f.lookup(0, &t("x")).is_some());
        prepare(CacheOp::Del, &args("DEL x"), vec![]).apply(&f, 0, &t(":1\r\n"), &limits);
        assert_eq!(f.lookup(0, &t("x")), Some(Entry::ABSENT));
        // EXPIRE in the past deletes.
        f.record(
            0,
            b"e",
            &Entry {
                value: Some(t("v")),
                ttl: Ttl::Persistent,
            },
        );
        prepare(CacheOp::Expire(1000, true), &args("EXPIREAT e 1"), vec![]).apply(
            &f,
            0,
            &t(":1\r\n"),
            &limits,
        );
        assert_eq!(f.lookup(0, &t("e")), Some(Entry::ABSENT));
        // Options the cache does not follow learn nothing.
        assert!(matches!(
            prepare(CacheOp::Set, &args("SET k v GET NX"), vec![t("tok")]),
            Learning::None
        ));
        assert!(matches!(
            prepare(CacheOp::Set, &args("SET k v BOGUS"), vec![t("tok")]),
            Learning::None
        ));
    }
}
