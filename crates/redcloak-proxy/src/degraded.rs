//! Answering commands while Redis is unreachable, from the shadow cache, journaling writes.
//!
//! Only what can be answered *correctly* from what redcloak knows is answered: a read of a
//! key redcloak has never seen, a conditional write whose condition depends on unknown state,
//! and every command outside this small set get
//! `-TRYAGAIN redcloak: Redis is unreachable, <command> cannot be served from the local cache`.
//! Nothing is faked: transactions and blocking commands are refused, never simulated.
//!
//! One approximation is documented in docs/operations.md: `DEL`/`UNLINK` of keys redcloak
//! knows nothing about are journaled (they will be deleted), and counted as not existing.

use bytes::{Bytes, BytesMut};
use redcloak_commands::resp;
use redcloak_commands::table::{self, Resolved};
use redcloak_commands::transform;

use crate::fallback::{now_ms, Entry, JournalError, Ttl};
use crate::Shared;

/// What the session does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Continue,
    Close,
}

/// The connection state the fallback needs.
pub(crate) struct Conn<'a> {
    pub db: &'a mut u32,
    pub resp3: bool,
}

/// Answers one command from the fallback, appending the reply to `out`.
pub(crate) fn serve(
    shared: &Shared,
    conn: &mut Conn<'_>,
    args: &[Bytes],
    out: &mut BytesMut,
) -> Step {
    let (spec, parent) = match table::resolve(args) {
        Resolved::Known { spec, parent } => (spec, parent),
        Resolved::Unknown => {
            resp::write_error(
                out,
                &transform::unknown_command_message(args.first().map_or(&[][..], |n| &n[..])),
            );
            return Step::Continue;
        }
        Resolved::UnknownSubcommand(p) | Resolved::MissingSubcommand(p) => {
            try_again(out, p.name);
            return Step::Continue;
        }
    };
    if !spec.arity_ok(args.len()) {
        resp::write_error(out, &transform::arity_message(spec, parent));
        return Step::Continue;
    }
    if let table::Action::Refuse(refusal) = spec.action {
        resp::write_error(
            out,
            &transform::refusal_message(&table::display_name(spec, parent), &refusal),
        );
        return Step::Continue;
    }
    let name = parent.map_or(spec.name, |_| "");
    let mut f = Fb {
        shared,
        db: *conn.db,
        resp3: conn.resp3,
        out,
    };
    let answered = match name {
        "PING" => {
            match args.get(1) {
                Some(msg) => resp::write_bulk(f.out, msg),
                None => resp::write_simple(f.out, "PONG"),
            }
            true
        }
        "ECHO" => {
            resp::write_bulk(f.out, &args[1]);
            true
        }
        "AUTH" => {
            resp::write_simple(f.out, "OK");
            true
        }
        "QUIT" => {
            resp::write_simple(f.out, "OK");
            return Step::Close;
        }
        // Whether the database exists cannot be known without Redis (and a client that
        // believes it switched would write to the wrong one after recovery).
        "SELECT" => false,
        "GET" => f.get(&args[1]),
        "MGET" => f.mget(&args[1..]),
        "EXISTS" => f.exists(&args[1..]),
        "TYPE" => f.kind(&args[1]),
        "TTL" => f.ttl(&args[1], 1000),
        "PTTL" => f.ttl(&args[1], 1),
        "SET" => f.set(args),
        "SETNX" => f.set(&[
            args[0].clone(),
            args[1].clone(),
            args[2].clone(),
            Bytes::from_static(b"NX"),
        ]),
        "SETEX" | "PSETEX" => {
            let unit = if name == "SETEX" { "EX" } else { "PX" };
            f.set(&[
                args[0].clone(),
                args[1].clone(),
                args[3].clone(),
                Bytes::from_static(unit.as_bytes()),
                args[2].clone(),
            ])
        }
        "GETSET" => f.set(&[
            args[0].clone(),
            args[1].clone(),
            args[2].clone(),
            Bytes::from_static(b"GET"),
        ]),
        "MSET" => f.mset(&args[1..], false),
        "MSETNX" => f.mset(&args[1..], true),
        "GETDEL" => f.getdel(&args[1]),
        "DEL" | "UNLINK" => f.del(&args[1..]),
        "EXPIRE" | "PEXPIRE" | "EXPIREAT" | "PEXPIREAT" => f.expire(name, args),
        "PERSIST" => f.persist(&args[1]),
        _ => false,
    };
    let label = parent.map_or(spec.name, |p| p.name);
    if answered {
        shared
            .health
            .served_from_fallback
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        shared.metrics.command(
            label,
            crate::metrics::Outcome::Fallback,
            std::time::Duration::ZERO,
        );
    } else {
        shared.metrics.command(
            label,
            crate::metrics::Outcome::Unavailable,
            std::time::Duration::ZERO,
        );
        try_again(out, &table::display_name(spec, parent));
    }
    Step::Continue
}

/// The reply for what cannot be served locally.
pub(crate) fn try_again(out: &mut BytesMut, command: &str) {
    resp::write_error(out, &format!("TRYAGAIN redcloak: Redis is unreachable, {command} cannot be served from the local cache"));
}

/// What is known about a key right now: `Some(Some(token))` present, `Some(None)` absent,
/// `None` unknown.
type Known = Option<Option<Bytes>>;

struct Fb<'a> {
    shared: &'a Shared,
    db: u32,
    resp3: bool,
    out: &'a mut BytesMut,
}

impl Fb<'_> {
    fn entry(&self, key: &Bytes) -> Option<Entry> {
        self.shared.fallback.lookup(self.db, key)
    }

    fn known(&self, key: &Bytes) -> Known {
        self.entry(key).map(|e| e.at(now_ms()).cloned())
    }

    fn nil(&mut self) {
        self.out
            .extend_from_slice(if self.resp3 { b"_\r\n" } else { b"$-1\r\n" });
    }

    /// Writes a stored token as the plaintext value, or an error if it does not decrypt.
    fn value(&mut self, token: &Bytes) {
        match self.shared.key_ring().decrypt(token) {
            Ok(plain) => resp::write_bulk(self.out, &plain),
            Err(e) => resp::write_error(
                self.out,
                &format!(
                    "ERR redcloak: a cached value cannot be decrypted: {}",
                    transform::decrypt_reason(e)
                ),
            ),
        }
    }

    fn get(&mut self, key: &Bytes) -> bool {
        match self.known(key) {
            Some(Some(token)) => self.value(&token),
            Some(None) => self.nil(),
            None => return false,
        }
        true
    }

    fn mget(&mut self, keys: &[Bytes]) -> bool {
        let known: Option<Vec<Option<Bytes>>> = keys.iter().map(|k| self.known(k)).collect();
        let Some(values) = known else { return false };
        resp::write_array_len(self.out, values.len());
        for v in values {
            match v {
                Some(token) => self.value(&token),
                None => self.nil(),
            }
        }
        true
    }

    fn exists(&mut self, keys: &[Bytes]) -> bool {
        let known: Option<Vec<Option<Bytes>>> = keys.iter().map(|k| self.known(k)).collect();
        let Some(values) = known else { return false };
        resp::write_integer(
            self.out,
            values.iter().filter(|v| v.is_some()).count() as i64,
        );
        true
    }

    fn kind(&mut self, key: &Bytes) -> bool {
        match self.known(key) {
            Some(Some(_)) => resp::write_simple(self.out, "string"),
            Some(None) => resp::write_simple(self.out, "none"),
            None => return false,
        }
        true
    }

    fn ttl(&mut self, key: &Bytes, unit_ms: u64) -> bool {
        let Some(entry) = self.entry(key) else {
            return false;
        };
        let now = now_ms();
        let reply = match (entry.at(now), entry.ttl) {
            (None, _) => -2,
            (Some(_), Ttl::Persistent) => -1,
            (Some(_), Ttl::At(at)) => ((at - now) + unit_ms / 2) as i64 / unit_ms as i64,
            (Some(_), Ttl::Unknown) => return false,
        };
        resp::write_integer(self.out, reply);
        true
    }

    /// Journals a write; on failure answers the client and returns false.
    fn journal(&mut self, args: Vec<Bytes>) -> Result<(), ()> {
        match self.shared.fallback.journal(self.db, args) {
            Ok(()) => Ok(()),
            Err(JournalError::Full { entries }) => {
                resp::write_error(
                    self.out,
                    &format!(
                        "TRYAGAIN redcloak: Redis is unreachable and the outage journal is full ({entries} writes); \
                         this write was not accepted"
                    ),
                );
                Err(())
            }
            Err(JournalError::Disabled) => {
                resp::write_error(self.out, "TRYAGAIN redcloak: Redis is unreachable and writes are not journaled (REDCLOAK_JOURNAL_MAX_ENTRIES=0); this write was not accepted");
                Err(())
            }
            Err(JournalError::Recovered) => {
                resp::write_error(self.out, "TRYAGAIN redcloak: Redis is back; try again");
                Err(())
            }
        }
    }

    /// `SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]`, applied locally.
    fn set(&mut self, args: &[Bytes]) -> bool {
        let Some(opts) = SetOptions::parse(&args[3..]) else {
            resp::write_error(self.out, "ERR syntax error");
            return true;
        };
        let key = &args[1];
        let needs_state = opts.nx || opts.xx || opts.get || opts.keep_ttl;
        let entry = self.entry(key);
        if needs_state && entry.is_none() {
            return false;
        }
        let now = now_ms();
        let current = entry.as_ref().and_then(|e| e.at(now).cloned());
        let exists = current.is_some();
        let proceed = !(opts.nx && exists || opts.xx && !exists);
        let ttl = match (opts.expire_at(now), opts.keep_ttl) {
            (Some(at), _) => Ttl::At(at),
            (None, true) => entry.as_ref().map_or(Ttl::Persistent, |e| {
                if exists {
                    e.ttl
                } else {
                    Ttl::Persistent
                }
            }),
            (None, false) => Ttl::Persistent,
        };
        if opts.keep_ttl && ttl == Ttl::Unknown {
            return false; // the TTL to keep is not known
        }
        if proceed {
            let token = Bytes::from(self.shared.key_ring().encrypt(&args[2]));
            let mut journaled = vec![Bytes::from_static(b"SET"), key.clone(), token.clone()];
            if let Ttl::At(at) = ttl {
                journaled.push(Bytes::from_static(b"PXAT"));
                journaled.push(Bytes::from(at.to_string()));
            }
            if self.journal(journaled).is_err() {
                return true;
            }
            self.shared.fallback.record(
                self.db,
                key.clone(),
                Entry {
                    value: Some(token),
                    ttl,
                },
            );
        }
        match (opts.get, proceed) {
            (true, _) => match current {
                Some(token) => self.value(&token),
                None => self.nil(),
            },
            (false, true) => resp::write_simple(self.out, "OK"),
            (false, false) => self.nil(),
        }
        true
    }

    fn mset(&mut self, pairs: &[Bytes], nx: bool) -> bool {
        if pairs.len() % 2 != 0 {
            resp::write_error(
                self.out,
                if nx {
                    "ERR wrong number of arguments for 'msetnx' command"
                } else {
                    "ERR wrong number of arguments for 'mset' command"
                },
            );
            return true;
        }
        if nx {
            let known: Option<Vec<Option<Bytes>>> =
                pairs.chunks(2).map(|p| self.known(&p[0])).collect();
            let Some(values) = known else { return false };
            if values.iter().any(Option::is_some) {
                resp::write_integer(self.out, 0);
                return true;
            }
        }
        let mut journaled = vec![Bytes::from_static(b"MSET")];
        let mut records = Vec::with_capacity(pairs.len() / 2);
        for p in pairs.chunks(2) {
            let token = Bytes::from(self.shared.key_ring().encrypt(&p[1]));
            journaled.push(p[0].clone());
            journaled.push(token.clone());
            records.push((p[0].clone(), token));
        }
        if self.journal(journaled).is_err() {
            return true;
        }
        for (key, token) in records {
            self.shared.fallback.record(
                self.db,
                key,
                Entry {
                    value: Some(token),
                    ttl: Ttl::Persistent,
                },
            );
        }
        if nx {
            resp::write_integer(self.out, 1);
        } else {
            resp::write_simple(self.out, "OK");
        }
        true
    }

    fn getdel(&mut self, key: &Bytes) -> bool {
        let Some(current) = self.known(key) else {
            return false;
        };
        if let Some(token) = current {
            if !self.delete(std::slice::from_ref(key)) {
                return true;
            }
            self.value(&token);
        } else {
            self.nil();
        }
        true
    }

    fn del(&mut self, keys: &[Bytes]) -> bool {
        let existed = keys
            .iter()
            .filter(|k| matches!(self.known(k), Some(Some(_))))
            .count();
        if self.delete(keys) {
            resp::write_integer(self.out, existed as i64);
        }
        true
    }

    /// Journals `DEL keys` and records them as absent. False (with the refusal written) if
    /// the journal did not take it.
    fn delete(&mut self, keys: &[Bytes]) -> bool {
        let mut journaled = vec![Bytes::from_static(b"DEL")];
        journaled.extend(keys.iter().cloned());
        if self.journal(journaled).is_err() {
            return false;
        }
        for key in keys {
            self.shared.fallback.record(
                self.db,
                key.clone(),
                Entry {
                    value: None,
                    ttl: Ttl::Persistent,
                },
            );
        }
        true
    }

    fn expire(&mut self, name: &str, args: &[Bytes]) -> bool {
        let key = &args[1];
        let Some(n) = std::str::from_utf8(&args[2])
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
        else {
            resp::write_error(self.out, "ERR value is not an integer or out of range");
            return true;
        };
        if args.len() > 3 {
            return false; // NX/XX/GT/LT: not worth the risk of getting them subtly wrong
        }
        let Some(entry) = self.entry(key) else {
            return false;
        };
        let now = now_ms();
        if entry.at(now).is_none() {
            resp::write_integer(self.out, 0);
            return true;
        }
        let at = match name {
            "EXPIRE" => now as i64 + n.saturating_mul(1000),
            "PEXPIRE" => now as i64 + n,
            "EXPIREAT" => n.saturating_mul(1000),
            _ => n,
        };
        if at <= now as i64 {
            // Redis deletes the key.
            if !self.delete(std::slice::from_ref(key)) {
                return true;
            }
        } else {
            let at = at as u64;
            if self
                .journal(vec![
                    Bytes::from_static(b"PEXPIREAT"),
                    key.clone(),
                    Bytes::from(at.to_string()),
                ])
                .is_err()
            {
                return true;
            }
            self.shared.fallback.set_ttl(self.db, key, Ttl::At(at));
        }
        resp::write_integer(self.out, 1);
        true
    }

    fn persist(&mut self, key: &Bytes) -> bool {
        let Some(entry) = self.entry(key) else {
            return false;
        };
        let reply = match (entry.at(now_ms()), entry.ttl) {
            (None, _) | (Some(_), Ttl::Persistent) => 0,
            (Some(_), Ttl::Unknown) => return false,
            (Some(_), Ttl::At(_)) => {
                if self
                    .journal(vec![Bytes::from_static(b"PERSIST"), key.clone()])
                    .is_err()
                {
                    return true;
                }
                self.shared.fallback.set_ttl(self.db, key, Ttl::Persistent);
                1
            }
        };
        resp::write_integer(self.out, reply);
        true
    }
}

/// The options of `SET`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SetOptions {
    pub nx: bool,
    pub xx: bool,
    pub get: bool,
    pub keep_ttl: bool,
    /// (unit in ms for relative, or absolute ms)
    pub expire: Option<Expire>,
}

/// An expiry option of `SET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expire {
    In(u64),
    At(u64),
}

impl SetOptions {
    /// Parses the options after `SET key value`, as Redis does (`None`: syntax error).
    pub fn parse(opts: &[Bytes]) -> Option<SetOptions> {
        let mut o = SetOptions::default();
        let mut i = 0;
        while i < opts.len() {
            let word = opts[i].to_ascii_uppercase();
            let number = |i: usize| -> Option<u64> {
                let n: i64 = std::str::from_utf8(opts.get(i)?).ok()?.parse().ok()?;
                (n > 0).then_some(n as u64)
            };
            match &word[..] {
                b"NX" if !o.xx => o.nx = true,
                b"XX" if !o.nx => o.xx = true,
                b"GET" => o.get = true,
                b"KEEPTTL" if o.expire.is_none() => o.keep_ttl = true,
                b"EX" | b"PX" | b"EXAT" | b"PXAT" if o.expire.is_none() && !o.keep_ttl => {
                    let n = number(i + 1)?;
                    o.expire = Some(match &word[..] {
                        b"EX" => Expire::In(n.checked_mul(1000)?),
                        b"PX" => Expire::In(n),
                        b"EXAT" => Expire::At(n.checked_mul(1000)?),
                        _ => Expire::At(n),
                    });
                    i += 1;
                }
                _ => return None,
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

    fn opts(s: &str) -> Option<SetOptions> {
        let v: Vec<Bytes> = s
            .split_whitespace()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        SetOptions::parse(&v)
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
        ] {
            assert_eq!(opts(bad), None, "{bad}");
        }
    }
}
