//! String commands: INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT, APPEND, SETRANGE, GETRANGE,
//! SUBSTR, STRLEN, LCS (Redis 7.0 `t_string.c`).
//!
//! Every write is a [`Write::SetString`] with [`Ttl::Keep`]: Redis overwrites the value in
//! place (`dbOverwrite`), which keeps the key's TTL.

use bytes::Bytes;

use super::cfloat::LongDouble;
use super::{
    bulk, done, done_with, error, executor_bug, is, ll_arg, string_at, Call, Found, Read, Step,
    StringRead, Ttl, Write, NAN_OR_INF, NOT_FLOAT, NOT_INTEGER, OVERFLOW, PROTO_MAX_BULK_LEN,
    SYNTAX, TOO_BIG,
};
use crate::resp::Frame;

// === plans ===

/// Reads the string at argument 1.
pub(super) fn plan_key(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    Ok(vec![Read::String {
        key: args[1].clone(),
    }])
}

pub(super) fn plan_incr(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    plan_key(args)
}

/// INCRBY parses its increment before looking at the key.
pub(super) fn plan_incrby(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    ll_arg(&args[2])?;
    plan_key(args)
}

/// DECRBY also refuses to negate LLONG_MIN.
pub(super) fn plan_decrby(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    if ll_arg(&args[2])? == i64::MIN {
        return Err(error("ERR decrement would overflow"));
    }
    plan_key(args)
}

/// INCRBYFLOAT checks the key's type and value before its increment: nothing to check here.
pub(super) fn plan_incrbyfloat(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    plan_key(args)
}

pub(super) fn plan_setrange(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    if ll_arg(&args[2])? < 0 {
        return Err(error("ERR offset is out of range"));
    }
    plan_key(args)
}

pub(super) fn plan_getrange(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    ll_arg(&args[2])?;
    ll_arg(&args[3])?;
    plan_key(args)
}

/// LCS looks both keys up before it parses its options.
pub(super) fn plan_lcs(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    Ok(vec![
        Read::String {
            key: args[1].clone(),
        },
        Read::String {
            key: args[2].clone(),
        },
    ])
}

// === counters ===

pub(super) fn incr(call: &Call<'_>) -> Step {
    incr_decr(call, 1)
}

pub(super) fn decr(call: &Call<'_>) -> Step {
    incr_decr(call, -1)
}

pub(super) fn incrby(call: &Call<'_>) -> Step {
    match ll_arg(call.arg(2)) {
        Ok(by) => incr_decr(call, by),
        Err(reply) => done(reply),
    }
}

pub(super) fn decrby(call: &Call<'_>) -> Step {
    match ll_arg(call.arg(2)) {
        // LLONG_MIN was refused by the plan.
        Ok(by) => incr_decr(call, by.wrapping_neg()),
        Err(reply) => done(reply),
    }
}

/// `incrDecrCommand`.
fn incr_decr(call: &Call<'_>, by: i64) -> Step {
    let old = match string_at(call, 0) {
        Ok(StringRead::Missing) => 0,
        Ok(StringRead::Value(v)) => match super::parse_ll(v) {
            Some(n) => n,
            None => return done(error(NOT_INTEGER)),
        },
        Err(step) => return step,
    };
    let Some(new) = old.checked_add(by) else {
        return done(error(OVERFLOW));
    };
    done_with(
        Frame::Integer(new),
        vec![Write::SetString {
            key: call.arg(1).clone(),
            value: new.to_string().into_bytes(),
            ttl: Ttl::Keep,
        }],
    )
}

/// `incrbyfloatCommand`: x87 long double arithmetic, `%.17Lf` output.
pub(super) fn incrbyfloat(call: &Call<'_>) -> Step {
    let old = match string_at(call, 0) {
        Ok(StringRead::Missing) => LongDouble::ZERO,
        Ok(StringRead::Value(v)) => match LongDouble::parse(v) {
            Some(x) => x,
            None => return done(error(NOT_FLOAT)),
        },
        Err(step) => return step,
    };
    let Some(by) = LongDouble::parse(call.arg(2)) else {
        return done(error(NOT_FLOAT));
    };
    let new = old.add(by);
    if new.is_nan_or_inf() {
        return done(error(NAN_OR_INF));
    }
    let text = new.to_human();
    done_with(
        bulk(text.clone()),
        vec![Write::SetString {
            key: call.arg(1).clone(),
            value: text,
            ttl: Ttl::Keep,
        }],
    )
}

// === APPEND, SETRANGE, GETRANGE, STRLEN ===

pub(super) fn append(call: &Call<'_>) -> Step {
    let suffix = call.arg(2);
    let value = match string_at(call, 0) {
        // APPEND creates the key, even with an empty value.
        Ok(StringRead::Missing) => suffix.to_vec(),
        Ok(StringRead::Value(v)) => {
            if v.len() as u64 + suffix.len() as u64 > PROTO_MAX_BULK_LEN {
                return done(error(TOO_BIG));
            }
            if suffix.is_empty() {
                return done(Frame::Integer(v.len() as i64));
            }
            let mut value = Vec::with_capacity(v.len() + suffix.len());
            value.extend_from_slice(v);
            value.extend_from_slice(suffix);
            value
        }
        Err(step) => return step,
    };
    done_with(
        Frame::Integer(value.len() as i64),
        vec![Write::SetString {
            key: call.arg(1).clone(),
            value,
            ttl: Ttl::Keep,
        }],
    )
}

pub(super) fn setrange(call: &Call<'_>) -> Step {
    let Ok(offset) = ll_arg(call.arg(2)) else {
        return executor_bug();
    };
    let offset = offset as u64; // >= 0: checked by the plan
    let patch = call.arg(3);
    let current = match string_at(call, 0) {
        Ok(StringRead::Missing) => {
            if patch.is_empty() {
                return done(Frame::Integer(0));
            }
            None
        }
        Ok(StringRead::Value(v)) => {
            if patch.is_empty() {
                return done(Frame::Integer(v.len() as i64));
            }
            Some(v)
        }
        Err(step) => return step,
    };
    if offset + patch.len() as u64 > PROTO_MAX_BULK_LEN {
        return done(error(TOO_BIG));
    }
    let offset = offset as usize;
    let mut value = current.map(<[u8]>::to_vec).unwrap_or_default();
    if value.len() < offset + patch.len() {
        value.resize(offset + patch.len(), 0);
    }
    value[offset..offset + patch.len()].copy_from_slice(patch);
    let len = value.len() as i64;
    let unchanged = current.is_some_and(|v| v == value.as_slice());
    let writes = if unchanged {
        Vec::new()
    } else {
        vec![Write::SetString {
            key: call.arg(1).clone(),
            value,
            ttl: Ttl::Keep,
        }]
    };
    done_with(Frame::Integer(len), writes)
}

pub(super) fn getrange(call: &Call<'_>) -> Step {
    let (Ok(mut start), Ok(mut end)) = (ll_arg(call.arg(2)), ll_arg(call.arg(3))) else {
        return executor_bug();
    };
    let s: &[u8] = match string_at(call, 0) {
        Ok(StringRead::Missing) => return done(bulk(Bytes::new())),
        Ok(StringRead::Value(v)) => v,
        Err(step) => return step,
    };
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return done(bulk(Bytes::new()));
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return done(bulk(Bytes::new()));
    }
    done(bulk(s[start as usize..=end as usize].to_vec()))
}

pub(super) fn strlen(call: &Call<'_>) -> Step {
    match string_at(call, 0) {
        Ok(StringRead::Missing) => done(Frame::Integer(0)),
        Ok(StringRead::Value(v)) => done(Frame::Integer(v.len() as i64)),
        Err(step) => step,
    }
}

// === LCS ===

/// `lcsCommand`: the vanilla dynamic programming table and Redis's backtracking, so that the
/// LCS string and the IDX ranges are the ones Redis picks among equally long answers.
pub(super) fn lcs(call: &Call<'_>) -> Step {
    let mut values: [&[u8]; 2] = [&[], &[]];
    for (i, value) in values.iter_mut().enumerate() {
        match call.found(i) {
            Some(Found::Missing) => {}
            Some(Found::String(v)) => *value = v,
            Some(Found::WrongType) => {
                return done(error("ERR The specified keys must contain string values"))
            }
            _ => return executor_bug(),
        }
    }
    let [a, b] = values;
    let (mut getlen, mut getidx, mut withmatchlen) = (false, false, false);
    let mut minmatchlen: i64 = 0;
    let args = call.args;
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        let moreargs = args.len() - 1 - j;
        if is(opt, "IDX") {
            getidx = true;
        } else if is(opt, "LEN") {
            getlen = true;
        } else if is(opt, "WITHMATCHLEN") {
            withmatchlen = true;
        } else if is(opt, "MINMATCHLEN") && moreargs > 0 {
            match ll_arg(&args[j + 1]) {
                Ok(n) => minmatchlen = n.max(0),
                Err(reply) => return done(reply),
            }
            j += 1;
        } else {
            return done(error(SYNTAX));
        }
        j += 1;
    }
    if getidx && getlen {
        return done(error(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    if cells * 4 > PROTO_MAX_BULK_LEN {
        return done(error(
            "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let width = blen + 1;
    let mut table = vec![0u32; cells as usize];
    for i in 1..=alen {
        for j in 1..=blen {
            table[i * width + j] = if a[i - 1] == b[j - 1] {
                table[(i - 1) * width + j - 1] + 1
            } else {
                table[(i - 1) * width + j].max(table[i * width + j - 1])
            };
        }
    }
    let total = table[alen * width + blen];
    let mut idx = total as usize;
    let computelcs = getidx || !getlen;
    let mut result = if computelcs {
        vec![0u8; idx]
    } else {
        Vec::new()
    };
    let mut matches = Vec::new();
    // `alen` as arange_start means "no range being tracked".
    let (mut arange_start, mut arange_end, mut brange_start, mut brange_end) = (alen, 0, 0, 0);
    let (mut i, mut j) = (alen, blen);
    while computelcs && i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[idx - 1] = a[i - 1];
            if arange_start == alen {
                arange_start = i - 1;
                arange_end = i - 1;
                brange_start = j - 1;
                brange_end = j - 1;
            } else if arange_start == i && brange_start == j {
                arange_start -= 1;
                brange_start -= 1;
            } else {
                emit = true;
            }
            if arange_start == 0 || brange_start == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            j -= 1;
        } else {
            let up = table[(i - 1) * width + j];
            let left = table[i * width + j - 1];
            if up > left {
                i -= 1;
            } else {
                j -= 1;
            }
            if arange_start != alen {
                emit = true;
            }
        }
        let match_len = (arange_end as u32)
            .wrapping_sub(arange_start as u32)
            .wrapping_add(1);
        if emit {
            if (minmatchlen == 0 || i64::from(match_len) >= minmatchlen) && getidx {
                let mut item = vec![
                    Frame::Array(vec![
                        Frame::Integer(arange_start as i64),
                        Frame::Integer(arange_end as i64),
                    ]),
                    Frame::Array(vec![
                        Frame::Integer(brange_start as i64),
                        Frame::Integer(brange_end as i64),
                    ]),
                ];
                if withmatchlen {
                    item.push(Frame::Integer(i64::from(match_len)));
                }
                matches.push(Frame::Array(item));
            }
            arange_start = alen;
        }
    }
    let reply = if getidx {
        let pairs = vec![
            (bulk(Bytes::from_static(b"matches")), Frame::Array(matches)),
            (
                bulk(Bytes::from_static(b"len")),
                Frame::Integer(i64::from(total)),
            ),
        ];
        if call.resp3 {
            Frame::Map(pairs)
        } else {
            Frame::Array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect())
        }
    } else if getlen {
        Frame::Integer(idx as i64)
    } else {
        bulk(result)
    };
    done(reply)
}

#[cfg(test)]
mod tests {
    use super::super::tests::args;
    use super::super::*;

    fn run(parts: &[&str], found: Vec<Found>) -> Step {
        let a = args(parts);
        start(&a).expect("plan");
        compute(&a, &found, false)
    }

    fn reply(step: &Step) -> &Frame {
        match step {
            Step::Done { reply, .. } => reply,
            Step::Read(_) => panic!("more reads"),
        }
    }

    fn s(v: &str) -> Found {
        Found::String(v.as_bytes().to_vec())
    }

    #[test]
    fn counters() {
        assert_eq!(
            run(&["INCR", "k"], vec![Found::Missing]),
            done_with(
                Frame::Integer(1),
                vec![Write::SetString {
                    key: Bytes::from_static(b"k"),
                    value: b"1".to_vec(),
                    ttl: Ttl::Keep
                }]
            )
        );
        assert_eq!(
            reply(&run(&["INCR", "k"], vec![s("9223372036854775807")])),
            &error(OVERFLOW)
        );
        assert_eq!(
            reply(&run(&["INCR", "k"], vec![s("-0")])),
            &error(NOT_INTEGER)
        );
        assert_eq!(
            reply(&run(&["INCR", "k"], vec![Found::WrongType])),
            &error(WRONGTYPE)
        );
        assert_eq!(
            reply(&run(&["DECRBY", "k", "-9223372036854775807"], vec![s("0")])),
            &Frame::Integer(i64::MAX)
        );
        assert_eq!(
            start(&args(&["DECRBY", "k", "-9223372036854775808"])),
            Err(error("ERR decrement would overflow"))
        );
        assert_eq!(
            start(&args(&["INCRBY", "k", "+1"])),
            Err(error(NOT_INTEGER))
        );
    }

    #[test]
    fn incrbyfloat_checks_type_then_value_then_increment() {
        assert_eq!(
            reply(&run(&["INCRBYFLOAT", "k", "x"], vec![Found::WrongType])),
            &error(WRONGTYPE)
        );
        assert_eq!(
            reply(&run(&["INCRBYFLOAT", "k", "x"], vec![s("1")])),
            &error(NOT_FLOAT)
        );
        assert_eq!(
            reply(&run(&["INCRBYFLOAT", "k", "inf"], vec![s("1")])),
            &error(NAN_OR_INF)
        );
        assert_eq!(
            reply(&run(&["INCRBYFLOAT", "k", "0.1"], vec![s("10.5")])),
            &bulk(Bytes::from_static(b"10.6"))
        );
    }

    #[test]
    fn setrange_and_append() {
        assert_eq!(
            run(&["SETRANGE", "k", "5", ""], vec![Found::Missing]),
            done(Frame::Integer(0))
        );
        assert_eq!(
            reply(&run(&["SETRANGE", "k", "536870911", ""], vec![s("abc")])),
            &Frame::Integer(3)
        );
        assert_eq!(
            reply(&run(&["SETRANGE", "k", "536870912", "x"], vec![s("abc")])),
            &error(TOO_BIG)
        );
        assert_eq!(
            run(&["SETRANGE", "k", "2", "xy"], vec![Found::Missing]),
            done_with(
                Frame::Integer(4),
                vec![Write::SetString {
                    key: Bytes::from_static(b"k"),
                    value: b"\0\0xy".to_vec(),
                    ttl: Ttl::Keep
                }]
            )
        );
        assert_eq!(
            start(&args(&["SETRANGE", "k", "-1", "x"])),
            Err(error("ERR offset is out of range"))
        );
        // APPEND of nothing to a missing key creates an empty string.
        assert_eq!(
            run(&["APPEND", "k", ""], vec![Found::Missing]),
            done_with(
                Frame::Integer(0),
                vec![Write::SetString {
                    key: Bytes::from_static(b"k"),
                    value: Vec::new(),
                    ttl: Ttl::Keep
                }]
            )
        );
    }

    #[test]
    fn getrange_edges() {
        let g =
            |a: &str, b: &str, v: &str| reply(&run(&["GETRANGE", "k", a, b], vec![s(v)])).clone();
        assert_eq!(g("0", "-1", "hello"), bulk(Bytes::from_static(b"hello")));
        assert_eq!(g("-3", "-1", "hello"), bulk(Bytes::from_static(b"llo")));
        assert_eq!(g("-1", "-3", "hello"), bulk(Bytes::new()));
        assert_eq!(g("10", "20", "hello"), bulk(Bytes::new()));
        assert_eq!(g("0", "0", ""), bulk(Bytes::new()));
        assert_eq!(
            g("-9223372036854775808", "9223372036854775807", "ab"),
            bulk(Bytes::from_static(b"ab"))
        );
    }

    #[test]
    fn lcs_forms() {
        let found = || vec![s("ohmytext"), s("mynewtext")];
        assert_eq!(
            reply(&run(&["LCS", "a", "b"], found())),
            &bulk(Bytes::from_static(b"mytext"))
        );
        assert_eq!(
            reply(&run(&["LCS", "a", "b", "LEN"], found())),
            &Frame::Integer(6)
        );
        let idx = reply(&run(
            &["LCS", "a", "b", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"],
            found(),
        ))
        .clone();
        let mut out = bytes::BytesMut::new();
        idx.encode(&mut out);
        assert_eq!(
            &out[..],
            &b"*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n"[..]
        );
        assert_eq!(
            reply(&run(
                &["LCS", "a", "b", "foo"],
                vec![Found::WrongType, s("x")]
            )),
            &error("ERR The specified keys must contain string values")
        );
    }
}
