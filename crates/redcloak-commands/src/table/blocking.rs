//! What each blocking command does where it cannot block: inside a transaction or a script
//! (Redis runs `BLPOP` there as if its timeout had passed at once: it pops what there is, or
//! answers a null). redcloak carries some transactions and every script out itself, one
//! command at a time on a private view of the keyspace (`atomic/scratch.rs`); there a
//! blocking command must not block either, so it is run as its non-blocking equivalent,
//! described here once for every blocking command of Redis 7.0 (`WAIT` names no keys and is
//! not one of them: it is refused there).
//!
//! The timeout is checked first, exactly as Redis reads it: a timeout Redis rejects makes the
//! command an error that cannot block, so it is sent as it is and Redis answers with its own
//! words, checking the other arguments in its own order (`BLMPOP` reads numkeys before the
//! timeout, `BLMOVE` the directions).

use bytes::Bytes;

use crate::words;

/// How a blocking command is run where it cannot block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unblocked {
    /// Its timeout is one Redis rejects: sent as it is, it gets Redis's error and never
    /// blocks.
    AsSent,
    /// This command instead (`BLMPOP t …` → `LMPOP …`, `XREAD BLOCK ms …` → `XREAD …`): the
    /// same reply, the same errors.
    Instead(Vec<Bytes>),
    /// `BLPOP`-like: `pop key` for each key in order; the first reply that is not empty (or an
    /// error, `WRONGTYPE`) decides: `[key, value]` (`[key, member, score]` for a sorted set).
    /// Nothing anywhere: a null array.
    FirstOf {
        /// The non-blocking pop (`LPOP`, `ZPOPMIN`…).
        pop: &'static str,
        /// The keys, in order.
        keys: Vec<Bytes>,
    },
}

/// Where the timeout is, and what replaces the command.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// `BLPOP key [key …] timeout`: the first key with something to pop.
    FirstOf(&'static str),
    /// `BLMPOP timeout numkeys …`: `name` with the arguments after the timeout.
    TimeoutFirst(&'static str),
    /// `BLMOVE src dst from to timeout`: `name` with the arguments before the timeout.
    TimeoutLast(&'static str),
    /// `XREAD`/`XREADGROUP [BLOCK ms]`: without its BLOCK options.
    BlockOption,
}

/// Redis 7.0's blocking commands that name keys.
const BLOCKING: &[(&str, Form)] = &[
    ("BLMOVE", Form::TimeoutLast("LMOVE")),
    ("BLMPOP", Form::TimeoutFirst("LMPOP")),
    ("BLPOP", Form::FirstOf("LPOP")),
    ("BRPOP", Form::FirstOf("RPOP")),
    ("BRPOPLPUSH", Form::TimeoutLast("RPOPLPUSH")),
    ("BZMPOP", Form::TimeoutFirst("ZMPOP")),
    ("BZPOPMAX", Form::FirstOf("ZPOPMAX")),
    ("BZPOPMIN", Form::FirstOf("ZPOPMIN")),
    ("XREAD", Form::BlockOption),
    ("XREADGROUP", Form::BlockOption),
];

/// The non-blocking form of `args` (arity already checked), or `None` when the command is not
/// a blocking one that names keys.
pub fn unblocked(args: &[Bytes]) -> Option<Unblocked> {
    let name = args.first()?;
    let form = BLOCKING
        .iter()
        .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))?
        .1;
    let bytes = |s: &'static str| Bytes::from_static(s.as_bytes());
    Some(match form {
        Form::FirstOf(pop) => {
            let (timeout, keys) = args[1..].split_last()?;
            if !seconds_ok(timeout) {
                return Some(Unblocked::AsSent);
            }
            Unblocked::FirstOf {
                pop,
                keys: keys.to_vec(),
            }
        }
        Form::TimeoutFirst(instead) => {
            if !seconds_ok(args.get(1)?) {
                return Some(Unblocked::AsSent);
            }
            let mut out = vec![bytes(instead)];
            out.extend_from_slice(&args[2..]);
            Unblocked::Instead(out)
        }
        Form::TimeoutLast(instead) => {
            let (timeout, rest) = args[1..].split_last()?;
            if !seconds_ok(timeout) {
                return Some(Unblocked::AsSent);
            }
            let mut out = vec![bytes(instead)];
            out.extend_from_slice(rest);
            Unblocked::Instead(out)
        }
        Form::BlockOption => without_block(args),
    })
}

/// `XREAD`'s option loop (`xreadCommand`): the BLOCK options before `STREAMS` are taken out;
/// any other mistake is left for Redis to answer (it answers before it could block).
fn without_block(args: &[Bytes]) -> Unblocked {
    let mut out = vec![args[0].clone()];
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let arg = &args[i];
        if words::is(arg, "BLOCK") && more > 0 {
            if !millis_ok(&args[i + 1]) {
                return Unblocked::AsSent;
            }
            i += 2;
            continue;
        }
        let skip = if (words::is(arg, "COUNT") && more > 0) || words::is(arg, "STREAMS") {
            if words::is(arg, "STREAMS") {
                // The rest are keys and IDs.
                args.len() - i
            } else {
                2
            }
        } else if words::is(arg, "GROUP") && more >= 2 {
            3
        } else {
            1
        };
        let end = (i + skip).min(args.len());
        out.extend_from_slice(&args[i..end]);
        i = end;
    }
    Unblocked::Instead(out)
}

/// Redis's `getTimeoutFromObjectOrReply` in seconds: a `long double` (`string2ld`), times
/// 1000, truncated to milliseconds, neither negative nor past the end of time.
fn seconds_ok(arg: &[u8]) -> bool {
    let Some(seconds) = long_double(arg) else {
        return false;
    };
    let ms = (seconds * 1000.0).trunc();
    // Beyond i64 the C cast gives i64::MIN ("timeout is negative").
    ms.is_finite() && (0.0..END_OF_TIME_MS).contains(&ms)
}

/// The same in milliseconds (`XREAD BLOCK`): a `string2ll` integer.
fn millis_ok(arg: &[u8]) -> bool {
    words::int(arg).is_some_and(|ms| (0.0..END_OF_TIME_MS).contains(&(ms as f64)))
}

/// `LLONG_MAX - now`: Redis refuses a timeout that would overflow its absolute deadline
/// ("timeout is out of range"); now is ~1.8e12 ms, its exact value does not matter here.
const END_OF_TIME_MS: f64 = 9.223_372_036_854_775e18 - 2.0e12;

/// Redis's `string2ld`: C's `strtold` over the whole argument (a NUL ends the conversion
/// early, which Redis rejects), no leading space, neither NaN nor an overflow nor an underflow
/// to zero; at most 5 KiB.
fn long_double(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() >= 5 * 1024 {
        return None;
    }
    let (negative, body) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let value = if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
        f64::INFINITY
    } else if body.len() > 2 && body[..2].eq_ignore_ascii_case(b"0x") {
        hex_float(&body[2..])?
    } else {
        let ok = matches!(body.first(), Some(b'0'..=b'9' | b'.'))
            && body
                .iter()
                .all(|b| b.is_ascii_digit() || b".eE+-".contains(b));
        if !ok {
            return None;
        }
        let value = std::str::from_utf8(body).ok()?.parse::<f64>().ok()?;
        if value == 0.0 && underflows(body) {
            return None;
        }
        value
    };
    Some(if negative { -value } else { value })
}

/// Whether a decimal that f64 rounds to zero is below the smallest `long double` too
/// (~1e-4951, where `strtold` reports ERANGE and Redis refuses it).
fn underflows(body: &[u8]) -> bool {
    let (mantissa, exp) = match body.iter().position(|&b| b == b'e' || b == b'E') {
        Some(p) => (&body[..p], &body[p + 1..]),
        None => (body, &b"0"[..]),
    };
    let Some(first) = mantissa.iter().position(|&b| (b'1'..=b'9').contains(&b)) else {
        return false; // zero itself
    };
    let point = mantissa
        .iter()
        .position(|&b| b == b'.')
        .unwrap_or(mantissa.len());
    let shift = if first < point {
        (point - first) as i64 - 1
    } else {
        -((first - point) as i64)
    };
    let exp: i64 = std::str::from_utf8(exp)
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    exp.saturating_add(shift) < -4951
}

/// A hexadecimal float after its `0x`: digits, an optional fraction, an optional `p` exponent.
fn hex_float(s: &[u8]) -> Option<f64> {
    let (mantissa, exp) = match s.iter().position(|&b| b == b'p' || b == b'P') {
        Some(p) => (&s[..p], Some(&s[p + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.iter().position(|&b| b == b'.') {
        Some(d) => (&mantissa[..d], &mantissa[d + 1..]),
        None => (mantissa, &[][..]),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for &d in int.iter().chain(frac) {
        value = value * 16.0 + f64::from((d as char).to_digit(16)?);
    }
    value /= 16f64.powi(i32::try_from(frac.len()).ok()?);
    if let Some(exp) = exp {
        let e: i32 = std::str::from_utf8(exp).ok()?.parse().ok()?;
        value *= 2f64.powi(e);
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn timeouts_are_read_as_redis_reads_them() {
        for ok in [
            "0", "1", "0.5", "1e3", "+2", ".5", "5.", "-0", "-0.0001", "0x10", "0x1p3", "1e-4000",
        ] {
            assert!(seconds_ok(ok.as_bytes()), "{ok:?}");
        }
        for bad in [
            "", " 1", "1 ", "x", "-1", "nan", "inf", "-inf", "1e300", "1e", "0x", "--1", "\0",
            "3\0x", "1e-5000",
        ] {
            assert!(!seconds_ok(bad.as_bytes()), "{bad:?}");
        }
        assert!(millis_ok(b"0") && millis_ok(b"100"));
        for bad in ["-1", "1.5", "+1", "01", "1\0", ""] {
            assert!(!millis_ok(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn every_blocking_command_has_its_non_blocking_form() {
        assert_eq!(
            unblocked(&b(&["blpop", "a", "b", "0"])),
            Some(Unblocked::FirstOf {
                pop: "LPOP",
                keys: b(&["a", "b"])
            })
        );
        assert_eq!(
            unblocked(&b(&["BZPOPMAX", "z", "1.5"])),
            Some(Unblocked::FirstOf {
                pop: "ZPOPMAX",
                keys: b(&["z"])
            })
        );
        assert_eq!(
            unblocked(&b(&["BLMPOP", "0", "1", "l", "LEFT", "COUNT", "2"])),
            Some(Unblocked::Instead(b(&[
                "LMPOP", "1", "l", "LEFT", "COUNT", "2"
            ])))
        );
        assert_eq!(
            unblocked(&b(&["BLMOVE", "a", "b", "LEFT", "RIGHT", "0"])),
            Some(Unblocked::Instead(b(&["LMOVE", "a", "b", "LEFT", "RIGHT"])))
        );
        assert_eq!(
            unblocked(&b(&["BRPOPLPUSH", "a", "b", "x"])),
            Some(Unblocked::AsSent)
        );
        assert_eq!(
            unblocked(&b(&[
                "XREAD", "block", "0", "COUNT", "BLOCK", "STREAMS", "s", "$"
            ])),
            Some(Unblocked::Instead(b(&[
                "XREAD", "COUNT", "BLOCK", "STREAMS", "s", "$"
            ])))
        );
        assert_eq!(
            unblocked(&b(&[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "BLOCK",
                "5",
                "NOACK",
                "STREAMS",
                "BLOCK",
                ">"
            ])),
            Some(Unblocked::Instead(b(&[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "NOACK",
                "STREAMS",
                "BLOCK",
                ">"
            ])))
        );
        assert_eq!(
            unblocked(&b(&["XREAD", "BLOCK", "-1", "STREAMS", "s", "0"])),
            Some(Unblocked::AsSent)
        );
        assert_eq!(unblocked(&b(&["LPOP", "l"])), None);
        // Every blocking command of the table that names keys is described here.
        for spec in super::super::all() {
            let keys = super::super::key_spec(spec, None);
            if keys.is_some_and(|k| k.blocking && !k.specs.is_empty()) {
                assert!(
                    BLOCKING.iter().any(|(n, _)| *n == spec.name),
                    "{} blocks and has no non-blocking form",
                    spec.name
                );
            }
        }
    }
}
