//! Hash commands: HINCRBY, HINCRBYFLOAT, HSTRLEN (Redis 7.0 `t_hash.c`).
//!
//! Writes are [`Write::HSetField`]: `HSET` leaves the hash's TTL alone (a new hash has none).

use bytes::Bytes;

use super::cfloat::LongDouble;
use super::{
    bulk, done, done_with, error, executor_bug, ll_arg, parse_ll, Call, Found, Read, Step, Write,
    NAN_OR_INF, NOT_FLOAT, OVERFLOW, WRONGTYPE,
};
use crate::resp::Frame;

/// Reads field `args[2]` of the hash `args[1]`.
pub(super) fn plan_field(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    Ok(vec![Read::HashField {
        key: args[1].clone(),
        field: args[2].clone(),
    }])
}

/// HINCRBY parses its increment before looking at the key.
pub(super) fn plan_hincrby(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    ll_arg(&args[3])?;
    plan_field(args)
}

/// HINCRBYFLOAT too, and refuses an infinite increment.
pub(super) fn plan_hincrbyfloat(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    increment(&args[3])?;
    plan_field(args)
}

fn increment(arg: &[u8]) -> Result<LongDouble, Frame> {
    let incr = LongDouble::parse(arg).ok_or_else(|| error(NOT_FLOAT))?;
    if incr.is_nan_or_inf() {
        return Err(error("ERR value is NaN or Infinity"));
    }
    Ok(incr)
}

/// The field's current value: `Ok(None)` if the key or the field is missing.
fn field<'a>(call: &'a Call<'_>) -> Result<Option<&'a [u8]>, Step> {
    match call.found(0) {
        Some(Found::Missing) => Ok(None),
        Some(Found::Field(v)) => Ok(Some(v)),
        Some(Found::WrongType) => Err(done(error(WRONGTYPE))),
        _ => Err(executor_bug()),
    }
}

fn hset(call: &Call<'_>, value: Vec<u8>) -> Vec<Write> {
    vec![Write::HSetField {
        key: call.arg(1).clone(),
        field: call.arg(2).clone(),
        value,
    }]
}

pub(super) fn hincrby(call: &Call<'_>) -> Step {
    let Ok(incr) = ll_arg(call.arg(3)) else {
        return executor_bug();
    };
    let old = match field(call) {
        Ok(None) => 0,
        Ok(Some(v)) => match parse_ll(v) {
            Some(n) => n,
            None => return done(error("ERR hash value is not an integer")),
        },
        Err(step) => return step,
    };
    let Some(new) = old.checked_add(incr) else {
        return done(error(OVERFLOW));
    };
    done_with(
        Frame::Integer(new),
        hset(call, new.to_string().into_bytes()),
    )
}

pub(super) fn hincrbyfloat(call: &Call<'_>) -> Step {
    let Ok(incr) = increment(call.arg(3)) else {
        return executor_bug();
    };
    let old = match field(call) {
        Ok(None) => LongDouble::ZERO,
        Ok(Some(v)) => match LongDouble::parse(v) {
            Some(x) => x,
            None => return done(error("ERR hash value is not a float")),
        },
        Err(step) => return step,
    };
    let new = old.add(incr);
    if new.is_nan_or_inf() {
        return done(error(NAN_OR_INF));
    }
    let text = new.to_human();
    done_with(bulk(text.clone()), hset(call, text))
}

pub(super) fn hstrlen(call: &Call<'_>) -> Step {
    match field(call) {
        Ok(v) => done(Frame::Integer(v.map_or(0, |v| v.len() as i64))),
        Err(step) => step,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::args;
    use super::super::*;

    #[test]
    fn errors_in_redis_order() {
        assert_eq!(
            start(&args(&["HINCRBYFLOAT", "h", "f", "inf"])),
            Err(error("ERR value is NaN or Infinity"))
        );
        assert_eq!(
            start(&args(&["HINCRBYFLOAT", "h", "f", "x"])),
            Err(error(NOT_FLOAT))
        );
        let a = args(&["HINCRBY", "h", "f", "1"]);
        assert_eq!(
            compute(&a, &[Found::Field(b"abc".to_vec())], false),
            done(error("ERR hash value is not an integer"))
        );
        assert_eq!(
            compute(&a, &[Found::Field(b"9223372036854775807".to_vec())], false),
            done(error(OVERFLOW))
        );
        let a = args(&["HINCRBYFLOAT", "h", "f", "1"]);
        assert_eq!(
            compute(&a, &[Found::Field(b"abc".to_vec())], false),
            done(error("ERR hash value is not a float"))
        );
        assert_eq!(
            compute(&a, &[Found::Field(b"1e4933".to_vec())], false),
            done(error("ERR hash value is not a float"))
        );
        let a = args(&["HSTRLEN", "h", "f"]);
        assert_eq!(
            compute(&a, &[Found::Missing], true),
            done(Frame::Integer(0))
        );
    }
}
