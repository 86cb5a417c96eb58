//! The decision core for answering a command while Redis is unreachable: a pure function of
//! the command's [`CacheOp`], its arguments and what the shadow cache knows.
//!
//! Only what can be answered *correctly* from what redcloak knows is answered: a read of a
//! key redcloak has never seen, a conditional write whose condition depends on unknown state,
//! and every command without a cache rule get [`Decision::TryAgain`]. Nothing is faked.
//!
//! A decision never holds plaintext and never decrypts: a read answers with what Redis would
//! have answered (the stored ciphertext), which the session decodes by the command's reply
//! rule like any reply; a write names the command to journal in plaintext form, which the
//! session encrypts through the transform layer before it is journaled or cached.
//!
//! One approximation is documented in docs/operations.md: `DEL`/`UNLINK` of keys redcloak
//! knows nothing about are journaled (they will be deleted), and counted as not existing.

use bytes::Bytes;
use redcloak_commands::resp::Frame;
use redcloak_commands::table::CacheOp;
use redcloak_commands::words;

use super::learn::{Expire, SetOptions};
use super::store::{Entry, Ttl};

/// What to do with one command while Redis is down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// It cannot be answered correctly without Redis.
    TryAgain,
    /// An error Redis itself would have answered (a syntax error).
    Error(&'static str),
    /// What Redis would have replied; stored values inside are ciphertext.
    Reply(Frame),
    /// A write: journal `command` (plaintext form; encrypted by the transform layer first),
    /// record what the keys then hold, and reply.
    Write {
        command: Vec<Bytes>,
        cache: Vec<(Bytes, Cached, Ttl)>,
        reply: Frame,
    },
}

/// What a key holds after a journaled write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cached {
    /// Nothing (deleted).
    Absent,
    /// The ciphertext of this argument of the journaled command.
    Arg(usize),
    /// Its value is unchanged (only the expiry changes).
    Same,
}

/// What is known about a key right now: `Some(Some(token))` present, `Some(None)` absent,
/// `None` unknown.
type Known = Option<Option<Bytes>>;

/// Decides how to answer `args` (a command whose row has `op`) from the cache.
pub(crate) fn decide(
    op: CacheOp,
    args: &[Bytes],
    lookup: &dyn Fn(&Bytes) -> Option<Entry>,
    now: u64,
    resp3: bool,
) -> Decision {
    let d = Decide {
        lookup,
        now,
        nil: if resp3 { Frame::Null } else { Frame::NullBulk },
    };
    match op {
        CacheOp::Get => d.get(&args[1]),
        CacheOp::MGet => d.mget(&args[1..]),
        CacheOp::Exists => d.exists(&args[1..]),
        CacheOp::Type => d.kind(&args[1]),
        CacheOp::Ttl(unit) => d.ttl(&args[1], unit),
        CacheOp::Set => match SetOptions::parse(&args[3..]) {
            Some(opts) => d.set(&args[1], &args[2], opts),
            None => Decision::Error("ERR syntax error"),
        },
        CacheOp::SetNx => d.set(
            &args[1],
            &args[2],
            SetOptions {
                nx: true,
                ..SetOptions::default()
            },
        ),
        CacheOp::SetEx(unit) => match words::int(&args[2]) {
            None => Decision::Error("ERR value is not an integer or out of range"),
            Some(n) if n <= 0 => Decision::Error(if unit == 1000 {
                "ERR invalid expire time in 'setex' command"
            } else {
                "ERR invalid expire time in 'psetex' command"
            }),
            Some(n) => match (n as u64).checked_mul(unit) {
                Some(ms) => d.set(
                    &args[1],
                    &args[3],
                    SetOptions {
                        expire: Some(Expire::In(ms)),
                        ..SetOptions::default()
                    },
                ),
                None => Decision::Error(if unit == 1000 {
                    "ERR invalid expire time in 'setex' command"
                } else {
                    "ERR invalid expire time in 'psetex' command"
                }),
            },
        },
        CacheOp::GetSet => d.set(
            &args[1],
            &args[2],
            SetOptions {
                get: true,
                ..SetOptions::default()
            },
        ),
        CacheOp::MSet => d.mset(&args[1..], false),
        CacheOp::MSetNx => d.mset(&args[1..], true),
        CacheOp::GetDel => d.getdel(&args[1]),
        CacheOp::Del => d.del(&args[1..]),
        CacheOp::Expire(unit, absolute) => d.expire(args, unit, absolute),
        CacheOp::Persist => d.persist(&args[1]),
        CacheOp::None | CacheOp::ForgetAll => Decision::TryAgain,
    }
}

struct Decide<'a> {
    lookup: &'a dyn Fn(&Bytes) -> Option<Entry>,
    now: u64,
    nil: Frame,
}

fn bulk(b: &Bytes) -> Frame {
    Frame::Bulk(b.clone())
}

fn ok() -> Frame {
    Frame::Simple(Bytes::from_static(b"OK"))
}

impl Decide<'_> {
    fn entry(&self, key: &Bytes) -> Option<Entry> {
        (self.lookup)(key)
    }

    fn known(&self, key: &Bytes) -> Known {
        self.entry(key).map(|e| e.at(self.now).cloned())
    }

    fn value_or_nil(&self, v: Option<Bytes>) -> Frame {
        v.as_ref().map_or_else(|| self.nil.clone(), bulk)
    }

    fn get(&self, key: &Bytes) -> Decision {
        match self.known(key) {
            Some(v) => Decision::Reply(self.value_or_nil(v)),
            None => Decision::TryAgain,
        }
    }

    fn all_known(&self, keys: &[Bytes]) -> Option<Vec<Option<Bytes>>> {
        keys.iter().map(|k| self.known(k)).collect()
    }

    fn mget(&self, keys: &[Bytes]) -> Decision {
        match self.all_known(keys) {
            Some(values) => Decision::Reply(Frame::Array(
                values.into_iter().map(|v| self.value_or_nil(v)).collect(),
            )),
            None => Decision::TryAgain,
        }
    }

    fn exists(&self, keys: &[Bytes]) -> Decision {
        match self.all_known(keys) {
            Some(values) => Decision::Reply(Frame::Integer(values.iter().flatten().count() as i64)),
            None => Decision::TryAgain,
        }
    }

    fn kind(&self, key: &Bytes) -> Decision {
        match self.known(key) {
            Some(v) => Decision::Reply(Frame::Simple(Bytes::from_static(if v.is_some() {
                b"string"
            } else {
                b"none"
            }))),
            None => Decision::TryAgain,
        }
    }

    fn ttl(&self, key: &Bytes, unit_ms: u64) -> Decision {
        let Some(entry) = self.entry(key) else {
            return Decision::TryAgain;
        };
        let now = self.now;
        let reply = match (entry.at(now), entry.ttl) {
            (None, _) => -2,
            (Some(_), Ttl::Persistent) => -1,
            (Some(_), Ttl::At(at)) => ((at - now) + unit_ms / 2) as i64 / unit_ms as i64,
            (Some(_), Ttl::Unknown) => return Decision::TryAgain,
        };
        Decision::Reply(Frame::Integer(reply))
    }

    /// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]`, applied locally.
    fn set(&self, key: &Bytes, value: &Bytes, opts: SetOptions) -> Decision {
        let needs_state = opts.nx || opts.xx || opts.get || opts.keep_ttl;
        let entry = self.entry(key);
        if needs_state && entry.is_none() {
            return Decision::TryAgain;
        }
        let now = self.now;
        let current = entry.as_ref().and_then(|e| e.at(now).cloned());
        let exists = current.is_some();
        let proceed = !(opts.nx && exists || opts.xx && !exists);
        let ttl = match (opts.expire_at(now), opts.keep_ttl) {
            (Some(at), _) => Ttl::At(at),
            (None, true) => match (&entry, exists) {
                (Some(e), true) => e.ttl,
                _ => Ttl::Persistent,
            },
            (None, false) => Ttl::Persistent,
        };
        if opts.keep_ttl && ttl == Ttl::Unknown {
            return Decision::TryAgain; // the TTL to keep is not known
        }
        let reply = match (opts.get, proceed) {
            (true, _) => self.value_or_nil(current),
            (false, true) => ok(),
            (false, false) => self.nil.clone(),
        };
        if !proceed {
            return Decision::Reply(reply);
        }
        let mut command = vec![Bytes::from_static(b"SET"), key.clone(), value.clone()];
        if let Ttl::At(at) = ttl {
            command.push(Bytes::from_static(b"PXAT"));
            command.push(Bytes::from(at.to_string()));
        }
        Decision::Write {
            command,
            cache: vec![(key.clone(), Cached::Arg(2), ttl)],
            reply,
        }
    }

    fn mset(&self, pairs: &[Bytes], nx: bool) -> Decision {
        if pairs.len() % 2 != 0 {
            return Decision::Error(if nx {
                "ERR wrong number of arguments for 'msetnx' command"
            } else {
                "ERR wrong number of arguments for 'mset' command"
            });
        }
        if nx {
            let keys: Vec<Bytes> = pairs.iter().step_by(2).cloned().collect();
            let Some(values) = self.all_known(&keys) else {
                return Decision::TryAgain;
            };
            if values.iter().any(Option::is_some) {
                return Decision::Reply(Frame::Integer(0));
            }
        }
        let mut command = vec![Bytes::from_static(b"MSET")];
        command.extend(pairs.iter().cloned());
        let cache = pairs
            .iter()
            .step_by(2)
            .enumerate()
            .map(|(i, key)| (key.clone(), Cached::Arg(2 + 2 * i), Ttl::Persistent))
            .collect();
        Decision::Write {
            command,
            cache,
            reply: if nx { Frame::Integer(1) } else { ok() },
        }
    }

    fn delete(&self, keys: &[Bytes], reply: Frame) -> Decision {
        let mut command = vec![Bytes::from_static(b"DEL")];
        command.extend(keys.iter().cloned());
        Decision::Write {
            command,
            cache: keys
                .iter()
                .map(|k| (k.clone(), Cached::Absent, Ttl::Persistent))
                .collect(),
            reply,
        }
    }

    fn getdel(&self, key: &Bytes) -> Decision {
        match self.known(key) {
            Some(Some(token)) => self.delete(std::slice::from_ref(key), bulk(&token)),
            Some(None) => Decision::Reply(self.nil.clone()),
            None => Decision::TryAgain,
        }
    }

    fn del(&self, keys: &[Bytes]) -> Decision {
        let existed = keys
            .iter()
            .filter(|k| matches!(self.known(k), Some(Some(_))))
            .count();
        self.delete(keys, Frame::Integer(existed as i64))
    }

    fn expire(&self, args: &[Bytes], unit: u64, absolute: bool) -> Decision {
        let key = &args[1];
        let Some(n) = words::int(&args[2]) else {
            return Decision::Error("ERR value is not an integer or out of range");
        };
        if args.len() > 3 {
            return Decision::TryAgain; // NX/XX/GT/LT: not worth the risk of getting them wrong
        }
        let Some(entry) = self.entry(key) else {
            return Decision::TryAgain;
        };
        let now = self.now;
        if entry.at(now).is_none() {
            return Decision::Reply(Frame::Integer(0));
        }
        let at = if absolute {
            n.saturating_mul(unit as i64)
        } else {
            (now as i64).saturating_add(n.saturating_mul(unit as i64))
        };
        if at <= now as i64 {
            // Redis deletes the key.
            return self.delete(std::slice::from_ref(key), Frame::Integer(1));
        }
        Decision::Write {
            command: vec![
                Bytes::from_static(b"PEXPIREAT"),
                key.clone(),
                Bytes::from(at.to_string()),
            ],
            cache: vec![(key.clone(), Cached::Same, Ttl::At(at as u64))],
            reply: Frame::Integer(1),
        }
    }

    fn persist(&self, key: &Bytes) -> Decision {
        let Some(entry) = self.entry(key) else {
            return Decision::TryAgain;
        };
        match (entry.at(self.now), entry.ttl) {
            (None, _) | (Some(_), Ttl::Persistent) => Decision::Reply(Frame::Integer(0)),
            (Some(_), Ttl::Unknown) => Decision::TryAgain,
            (Some(_), Ttl::At(_)) => Decision::Write {
                command: vec![Bytes::from_static(b"PERSIST"), key.clone()],
                cache: vec![(key.clone(), Cached::Same, Ttl::Persistent)],
                reply: Frame::Integer(1),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn args(s: &str) -> Vec<Bytes> {
        s.split_whitespace().map(b).collect()
    }

    const NOW: u64 = 1_000_000;

    /// A cache that knows `v` (present, no expiry), `e` (expires in 10 s), `gone` (absent)
    /// and `u` (present, expiry unknown).
    fn cache() -> HashMap<Bytes, Entry> {
        let mut c = HashMap::new();
        c.insert(
            b("v"),
            Entry {
                value: Some(b("tok-v")),
                ttl: Ttl::Persistent,
            },
        );
        c.insert(
            b("e"),
            Entry {
                value: Some(b("tok-e")),
                ttl: Ttl::At(NOW + 10_000),
            },
        );
        c.insert(b("gone"), Entry::ABSENT);
        c.insert(
            b("u"),
            Entry {
                value: Some(b("tok-u")),
                ttl: Ttl::Unknown,
            },
        );
        c
    }

    fn run(op: CacheOp, s: &str) -> Decision {
        let c = cache();
        decide(op, &args(s), &|k| c.get(k).cloned(), NOW, false)
    }

    #[test]
    fn reads_answer_with_the_stored_ciphertext_or_try_again() {
        assert_eq!(
            run(CacheOp::Get, "GET v"),
            Decision::Reply(Frame::Bulk(b("tok-v")))
        );
        assert_eq!(
            run(CacheOp::Get, "GET gone"),
            Decision::Reply(Frame::NullBulk)
        );
        assert_eq!(run(CacheOp::Get, "GET never"), Decision::TryAgain);
        let c = cache();
        assert_eq!(
            decide(
                CacheOp::Get,
                &args("GET gone"),
                &|k| c.get(k).cloned(),
                NOW,
                true
            ),
            Decision::Reply(Frame::Null),
            "RESP3 nil"
        );
        assert_eq!(
            run(CacheOp::MGet, "MGET v gone"),
            Decision::Reply(Frame::Array(vec![Frame::Bulk(b("tok-v")), Frame::NullBulk]))
        );
        assert_eq!(run(CacheOp::MGet, "MGET v never"), Decision::TryAgain);
        assert_eq!(
            run(CacheOp::Exists, "EXISTS v e gone"),
            Decision::Reply(Frame::Integer(2))
        );
        assert_eq!(
            run(CacheOp::Ttl(1000), "TTL e"),
            Decision::Reply(Frame::Integer(10))
        );
        assert_eq!(
            run(CacheOp::Ttl(1), "PTTL v"),
            Decision::Reply(Frame::Integer(-1))
        );
        assert_eq!(
            run(CacheOp::Ttl(1), "PTTL gone"),
            Decision::Reply(Frame::Integer(-2))
        );
        assert_eq!(run(CacheOp::Ttl(1), "PTTL u"), Decision::TryAgain);
        assert_eq!(
            run(CacheOp::Type, "TYPE v"),
            Decision::Reply(Frame::Simple(b("string")))
        );
    }

    #[test]
    fn writes_are_journaled_in_absolute_form() {
        let Decision::Write {
            command,
            cache,
            reply,
        } = run(CacheOp::Set, "SET k hello EX 10")
        else {
            panic!()
        };
        assert_eq!(command, args(&format!("SET k hello PXAT {}", NOW + 10_000)));
        assert_eq!(cache, vec![(b("k"), Cached::Arg(2), Ttl::At(NOW + 10_000))]);
        assert_eq!(reply, Frame::Simple(b("OK")));
        // Conditional writes need the key's state.
        assert_eq!(run(CacheOp::Set, "SET never x NX"), Decision::TryAgain);
        assert_eq!(
            run(CacheOp::SetNx, "SETNX v x"),
            Decision::Reply(Frame::NullBulk)
        );
        assert!(matches!(
            run(CacheOp::Set, "SET v x KEEPTTL"),
            Decision::Write { .. }
        ));
        assert_eq!(run(CacheOp::Set, "SET u x KEEPTTL"), Decision::TryAgain);
        assert_eq!(
            run(CacheOp::Set, "SET k x BOGUS"),
            Decision::Error("ERR syntax error")
        );
        // GETSET answers the old ciphertext.
        let Decision::Write { reply, .. } = run(CacheOp::GetSet, "GETSET v new") else {
            panic!()
        };
        assert_eq!(reply, Frame::Bulk(b("tok-v")));
        let Decision::Write { command, cache, .. } = run(CacheOp::MSet, "MSET a 1 b 2") else {
            panic!()
        };
        assert_eq!(command, args("MSET a 1 b 2"));
        assert_eq!(cache[1], (b("b"), Cached::Arg(4), Ttl::Persistent));
        assert_eq!(
            run(CacheOp::MSetNx, "MSETNX v 1 gone 2"),
            Decision::Reply(Frame::Integer(0))
        );
        assert_eq!(
            run(CacheOp::MSet, "MSET a"),
            Decision::Error("ERR wrong number of arguments for 'mset' command")
        );
    }

    #[test]
    fn deletes_and_expiry() {
        let Decision::Write { command, reply, .. } = run(CacheOp::GetDel, "GETDEL v") else {
            panic!()
        };
        assert_eq!((command, reply), (args("DEL v"), Frame::Bulk(b("tok-v"))));
        assert_eq!(run(CacheOp::GetDel, "GETDEL never"), Decision::TryAgain);
        let Decision::Write { reply, .. } = run(CacheOp::Del, "DEL v never gone") else {
            panic!()
        };
        assert_eq!(reply, Frame::Integer(1));
        let Decision::Write { command, cache, .. } =
            run(CacheOp::Expire(1000, false), "EXPIRE v 5")
        else {
            panic!()
        };
        assert_eq!(command[0], b("PEXPIREAT"));
        assert_eq!(cache[0].1, Cached::Same);
        let Decision::Write { command, .. } = run(CacheOp::Expire(1, true), "PEXPIREAT v 1") else {
            panic!()
        };
        assert_eq!(command, args("DEL v"), "an expiry in the past deletes");
        assert_eq!(
            run(CacheOp::Expire(1000, false), "EXPIRE v 5 NX"),
            Decision::TryAgain
        );
        assert_eq!(
            run(CacheOp::Expire(1000, false), "EXPIRE v x"),
            Decision::Error("ERR value is not an integer or out of range")
        );
        assert_eq!(
            run(CacheOp::Persist, "PERSIST v"),
            Decision::Reply(Frame::Integer(0))
        );
        let Decision::Write { cache, .. } = run(CacheOp::Persist, "PERSIST e") else {
            panic!()
        };
        assert_eq!(cache[0].2, Ttl::Persistent);
        assert_eq!(run(CacheOp::None, "LPUSH l x"), Decision::TryAgain);
    }
}
