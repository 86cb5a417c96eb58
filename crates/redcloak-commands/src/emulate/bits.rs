//! Bitmap commands: GETBIT, SETBIT, BITCOUNT, BITPOS, BITFIELD, BITFIELD_RO, BITOP (Redis 7.0
//! `bitops.c`).
//!
//! SETBIT and BITFIELD change the string in place (TTL kept: [`Ttl::Keep`]); BITOP replaces
//! the destination (`setKey`: TTL cleared, [`Ttl::Clear`]) or deletes it when every source is
//! empty or missing.

use bytes::Bytes;

use super::{
    done, done_with, error, executor_bug, is, parse_ll, string_at, Call, Found, Read, Step,
    StringRead, Ttl, Write, NOT_INTEGER, PROTO_MAX_BULK_LEN, SYNTAX, WRONGTYPE,
};
use crate::resp::Frame;

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";
const BAD_BIT: &str = "ERR bit is not an integer or out of range";
const BAD_TYPE: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

/// `getBitOffsetFromArgument`: a bit offset, `#n` meaning `n * bits` where `hash_bits` is
/// given (BITFIELD), below `proto-max-bulk-len` bytes.
fn bit_offset(arg: &[u8], hash_bits: Option<u32>) -> Result<u64, Frame> {
    let use_hash = hash_bits.is_some() && arg.len() > 1 && arg[0] == b'#';
    let digits = if use_hash { &arg[1..] } else { arg };
    let mut offset = parse_ll(digits).ok_or_else(|| error(BAD_OFFSET))?;
    if use_hash {
        // C multiplies without an overflow check; a wrapped product is caught below or
        // used as is, as there.
        offset = offset.wrapping_mul(i64::from(hash_bits.unwrap_or(1)));
    }
    if offset < 0 || (offset >> 3) as u64 >= PROTO_MAX_BULK_LEN {
        return Err(error(BAD_OFFSET));
    }
    Ok(offset as u64)
}

fn bit_at(s: &[u8], offset: u64) -> bool {
    let byte = (offset >> 3) as usize;
    s.get(byte)
        .is_some_and(|b| b & (1 << (7 - (offset & 7))) != 0)
}

// === GETBIT, SETBIT ===

pub(super) fn plan_getbit(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    bit_offset(&args[2], None)?;
    super::strings::plan_key(args)
}

pub(super) fn getbit(call: &Call<'_>) -> Step {
    let Ok(offset) = bit_offset(call.arg(2), None) else {
        return executor_bug();
    };
    match string_at(call, 0) {
        Ok(StringRead::Missing) => done(Frame::Integer(0)),
        Ok(StringRead::Value(v)) => done(Frame::Integer(i64::from(bit_at(v, offset)))),
        Err(step) => step,
    }
}

fn setbit_value(arg: &[u8]) -> Result<bool, Frame> {
    match parse_ll(arg) {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        _ => Err(error(BAD_BIT)),
    }
}

pub(super) fn plan_setbit(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    bit_offset(&args[2], None)?;
    setbit_value(&args[3])?;
    super::strings::plan_key(args)
}

pub(super) fn setbit(call: &Call<'_>) -> Step {
    let (Ok(offset), Ok(on)) = (bit_offset(call.arg(2), None), setbit_value(call.arg(3))) else {
        return executor_bug();
    };
    let (mut value, existed) = match string_at(call, 0) {
        Ok(StringRead::Missing) => (Vec::new(), false),
        Ok(StringRead::Value(v)) => (v.to_vec(), true),
        Err(step) => return step,
    };
    let byte = (offset >> 3) as usize;
    let grown = value.len() < byte + 1;
    if grown {
        value.resize(byte + 1, 0);
    }
    let mask = 1u8 << (7 - (offset & 7));
    let old = value[byte] & mask != 0;
    if on {
        value[byte] |= mask;
    } else {
        value[byte] &= !mask;
    }
    let writes = if !existed || grown || old != on {
        vec![Write::SetString {
            key: call.arg(1).clone(),
            value,
            ttl: Ttl::Keep,
        }]
    } else {
        Vec::new()
    };
    done_with(Frame::Integer(i64::from(old)), writes)
}

// === BITCOUNT, BITPOS ===

/// Resolves a `[start, end]` range the way BITCOUNT and BITPOS do, on `totlen` units.
fn clamp(mut start: i64, mut end: i64, totlen: i64) -> (i64, i64) {
    if start < 0 {
        start = start.wrapping_add(totlen);
    }
    if end < 0 {
        end = end.wrapping_add(totlen);
    }
    start = start.max(0);
    end = end.max(0);
    if end >= totlen {
        end = totlen - 1;
    }
    (start, end)
}

/// The edge masks of a BIT range (bits outside the range in the first and last bytes).
fn edge_masks(start: i64, end: i64) -> (u8, u8) {
    let first = !((1u32 << (8 - (start & 7))) - 1) as u8;
    let last = ((1u32 << (7 - (end & 7))) - 1) as u8;
    (first, last)
}

/// `bitcountCommand`: in 7.0 the key is looked up before the range is parsed.
pub(super) fn bitcount(call: &Call<'_>) -> Step {
    let p: &[u8] = match string_at(call, 0) {
        Ok(StringRead::Missing) => return done(Frame::Integer(0)),
        Ok(StringRead::Value(v)) => v,
        Err(step) => return step,
    };
    let argc = call.args.len();
    let strlen = p.len() as i64;
    let (mut start, mut end);
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    if argc == 4 || argc == 5 {
        let mut totlen = strlen;
        start = match super::ll_arg(call.arg(2)) {
            Ok(n) => n,
            Err(reply) => return done(reply),
        };
        end = match super::ll_arg(call.arg(3)) {
            Ok(n) => n,
            Err(reply) => return done(reply),
        };
        if start < 0 && end < 0 && start > end {
            return done(Frame::Integer(0));
        }
        let mut isbit = false;
        if argc == 5 {
            if is(call.arg(4), "BIT") {
                isbit = true;
            } else if !is(call.arg(4), "BYTE") {
                return done(error(SYNTAX));
            }
        }
        if isbit {
            totlen <<= 3;
        }
        (start, end) = clamp(start, end, totlen);
        if isbit && start <= end {
            (first_mask, last_mask) = edge_masks(start, end);
            start >>= 3;
            end >>= 3;
        }
    } else if argc == 2 {
        start = 0;
        end = strlen - 1;
    } else {
        return done(error(SYNTAX));
    }
    if start > end {
        return done(Frame::Integer(0));
    }
    let range = &p[start as usize..=end as usize];
    let mut count: i64 = range.iter().map(|b| i64::from(b.count_ones())).sum();
    count -= i64::from((p[start as usize] & first_mask).count_ones());
    count -= i64::from((p[end as usize] & last_mask).count_ones());
    done(Frame::Integer(count))
}

fn bitpos_bit(arg: &[u8]) -> Result<bool, Frame> {
    match parse_ll(arg) {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        Some(_) => Err(error("ERR The bit argument must be 1 or 0.")),
        None => Err(error(NOT_INTEGER)),
    }
}

pub(super) fn plan_bitpos(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    bitpos_bit(&args[2])?;
    super::strings::plan_key(args)
}

/// `redisBitpos`: the first bit equal to `bit` in `bytes`; if none, -1 when looking for a
/// 1 and the first bit after the bytes when looking for a 0.
fn redis_bitpos(bytes: &[u8], bit: bool) -> i64 {
    for (i, &b) in bytes.iter().enumerate() {
        let b = if bit { b } else { !b };
        if b != 0 {
            return i as i64 * 8 + i64::from(b.leading_zeros());
        }
    }
    if bit {
        -1
    } else {
        bytes.len() as i64 * 8
    }
}

/// `bitposCommand`, step for step (the edge bytes of a BIT range are searched apart).
pub(super) fn bitpos(call: &Call<'_>) -> Step {
    let Ok(bit) = bitpos_bit(call.arg(2)) else {
        return executor_bug();
    };
    let p: &[u8] = match string_at(call, 0) {
        Ok(StringRead::Missing) => return done(Frame::Integer(if bit { -1 } else { 0 })),
        Ok(StringRead::Value(v)) => v,
        Err(step) => return step,
    };
    let argc = call.args.len();
    let strlen = p.len() as i64;
    let (mut start, mut end);
    let mut end_given = false;
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    if (4..=6).contains(&argc) {
        let mut totlen = strlen;
        start = match super::ll_arg(call.arg(3)) {
            Ok(n) => n,
            Err(reply) => return done(reply),
        };
        let mut isbit = false;
        if argc == 6 {
            if is(call.arg(5), "BIT") {
                isbit = true;
            } else if !is(call.arg(5), "BYTE") {
                return done(error(SYNTAX));
            }
        }
        if argc >= 5 {
            end = match super::ll_arg(call.arg(4)) {
                Ok(n) => n,
                Err(reply) => return done(reply),
            };
            end_given = true;
        } else if isbit {
            end = (totlen << 3) + 7;
        } else {
            end = totlen - 1;
        }
        if isbit {
            totlen <<= 3;
        }
        (start, end) = clamp(start, end, totlen);
        if isbit && start <= end {
            (first_mask, last_mask) = edge_masks(start, end);
            start >>= 3;
            end >>= 3;
        }
    } else if argc == 3 {
        start = 0;
        end = strlen - 1;
    } else {
        return done(error(SYNTAX));
    }
    if start > end {
        return done(Frame::Integer(-1));
    }
    let mut bytes = end - start + 1;
    let pos;
    'result: {
        if first_mask != 0 {
            let mut tmp = if bit {
                p[start as usize] & !first_mask
            } else {
                p[start as usize] | first_mask
            };
            if last_mask != 0 && bytes == 1 {
                tmp = if bit {
                    tmp & !last_mask
                } else {
                    tmp | last_mask
                };
            }
            let found = redis_bitpos(&[tmp], bit);
            if bytes == 1 || (found != -1 && found != 8) {
                pos = found;
                break 'result;
            }
            start += 1;
            bytes -= 1;
        }
        let curbytes = bytes - i64::from(last_mask != 0);
        if curbytes > 0 {
            let found = redis_bitpos(&p[start as usize..(start + curbytes) as usize], bit);
            if bytes == curbytes || (found != -1 && found != curbytes << 3) {
                pos = found;
                break 'result;
            }
            start += curbytes;
            bytes -= curbytes;
        }
        let tmp = if bit {
            p[end as usize] & !last_mask
        } else {
            p[end as usize] | last_mask
        };
        pos = redis_bitpos(&[tmp], bit);
    }
    if end_given && !bit && pos == bytes << 3 {
        return done(Frame::Integer(-1));
    }
    let pos = if pos != -1 { pos + (start << 3) } else { pos };
    done(Frame::Integer(pos))
}

// === BITFIELD ===

#[derive(Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Get,
    Set,
    IncrBy,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OverflowKind {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy)]
struct FieldOp {
    kind: OpKind,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    overflow: OverflowKind,
}

/// `getBitfieldTypeFromArgument`: `i1`..`i64`, `u1`..`u63` (a C string: it ends at NUL).
fn field_type(arg: &[u8]) -> Result<(bool, u32), Frame> {
    let arg = match arg.iter().position(|&b| b == 0) {
        Some(nul) => &arg[..nul],
        None => arg,
    };
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(error(BAD_TYPE)),
    };
    match parse_ll(&arg[1..]) {
        Some(n) if n >= 1 && n <= if signed { 64 } else { 63 } => Ok((signed, n as u32)),
        _ => Err(error(BAD_TYPE)),
    }
}

/// The operations of a BITFIELD command, in order, and whether any writes.
fn parse_bitfield(args: &[Bytes]) -> Result<(Vec<FieldOp>, Option<u64>), Frame> {
    let mut ops = Vec::new();
    let mut overflow = OverflowKind::Wrap;
    let mut highest_write: Option<u64> = None;
    let mut j = 2;
    while j < args.len() {
        let remargs = args.len() - j - 1;
        let sub = &args[j];
        let kind = if is(sub, "GET") && remargs >= 2 {
            OpKind::Get
        } else if is(sub, "SET") && remargs >= 3 {
            OpKind::Set
        } else if is(sub, "INCRBY") && remargs >= 3 {
            OpKind::IncrBy
        } else if is(sub, "OVERFLOW") && remargs >= 1 {
            let name = &args[j + 1];
            overflow = if is(name, "WRAP") {
                OverflowKind::Wrap
            } else if is(name, "SAT") {
                OverflowKind::Sat
            } else if is(name, "FAIL") {
                OverflowKind::Fail
            } else {
                return Err(error("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(error(SYNTAX));
        };
        let (signed, bits) = field_type(&args[j + 1])?;
        let offset = bit_offset(&args[j + 2], Some(bits))?;
        let mut value = 0;
        if kind != OpKind::Get {
            let last = offset + u64::from(bits) - 1;
            highest_write = Some(highest_write.map_or(last, |h| h.max(last)));
            value = parse_ll(&args[j + 3]).ok_or_else(|| error(NOT_INTEGER))?;
        }
        ops.push(FieldOp {
            kind,
            signed,
            bits,
            offset,
            value,
            overflow,
        });
        j += if kind == OpKind::Get { 3 } else { 4 };
    }
    Ok((ops, highest_write))
}

pub(super) fn plan_bitfield(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    parse_bitfield(args)?;
    super::strings::plan_key(args)
}

pub(super) fn plan_bitfield_ro(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    let (_, highest_write) = parse_bitfield(args)?;
    if highest_write.is_some() {
        return Err(error("ERR BITFIELD_RO only supports the GET subcommand"));
    }
    super::strings::plan_key(args)
}

fn get_unsigned(buf: &[u8], offset: u64, bits: u32) -> u64 {
    let mut value = 0u64;
    for j in 0..u64::from(bits) {
        value = (value << 1) | u64::from(bit_at(buf, offset + j));
    }
    value
}

fn get_signed(buf: &[u8], offset: u64, bits: u32) -> i64 {
    let mut value = get_unsigned(buf, offset, bits);
    if bits < 64 && value & (1u64 << (bits - 1)) != 0 {
        value |= u64::MAX << bits;
    }
    value as i64
}

/// Writes the low `bits` bits of `value` at `offset` (the buffer is large enough).
fn set_bits(buf: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..u64::from(bits) {
        let bitval = (value >> (u64::from(bits) - 1 - j)) & 1;
        let pos = offset + j;
        let byte = (pos >> 3) as usize;
        let mask = 1u8 << (7 - (pos & 7));
        if bitval == 1 {
            buf[byte] |= mask;
        } else {
            buf[byte] &= !mask;
        }
    }
}

/// `checkUnsignedBitfieldOverflow`: whether `value + incr` overflows, and the value to store
/// for WRAP and SAT. The C code's wrapping conversions are reproduced.
fn check_unsigned(value: u64, incr: i64, bits: u32, ow: OverflowKind) -> (bool, u64) {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = value.wrapping_neg() as i64;
    let wrap = || {
        let mask = u64::MAX << bits;
        value.wrapping_add(incr as u64) & !mask
    };
    if value > max || (incr > 0 && incr > maxincr) {
        (
            true,
            if ow == OverflowKind::Wrap {
                wrap()
            } else {
                max
            },
        )
    } else if incr < 0 && incr < minincr {
        (true, if ow == OverflowKind::Wrap { wrap() } else { 0 })
    } else {
        (false, 0)
    }
}

/// `checkSignedBitfieldOverflow`, with the same wrapping arithmetic.
fn check_signed(value: i64, incr: i64, bits: u32, ow: OverflowKind) -> (bool, i64) {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let msb = 1u64 << (bits - 1);
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & msb != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        (
            true,
            if ow == OverflowKind::Wrap {
                wrap()
            } else {
                max
            },
        )
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        (
            true,
            if ow == OverflowKind::Wrap {
                wrap()
            } else {
                min
            },
        )
    } else {
        (false, 0)
    }
}

/// `bitfieldGeneric`: one reply per operation (nil for a FAIL overflow); the string is
/// first grown to the highest bit any write reaches, even if every write then fails.
pub(super) fn bitfield(call: &Call<'_>) -> Step {
    let Ok((ops, highest_write)) = parse_bitfield(call.args) else {
        return executor_bug();
    };
    let (mut buf, existed) = match string_at(call, 0) {
        Ok(StringRead::Missing) => (Vec::new(), false),
        Ok(StringRead::Value(v)) => (v.to_vec(), true),
        Err(step) => return step,
    };
    let original_len = buf.len();
    if let Some(highest) = highest_write {
        let need = (highest >> 3) as usize + 1;
        if buf.len() < need {
            buf.resize(need, 0);
        }
    }
    let mut changed = highest_write.is_some() && (!existed || buf.len() != original_len);
    let mut replies = Vec::with_capacity(ops.len());
    for op in &ops {
        match op.kind {
            OpKind::Get => {
                replies.push(Frame::Integer(if op.signed {
                    get_signed(&buf, op.offset, op.bits)
                } else {
                    get_unsigned(&buf, op.offset, op.bits) as i64
                }));
            }
            OpKind::Set | OpKind::IncrBy if op.signed => {
                let old = get_signed(&buf, op.offset, op.bits);
                let (overflow, new, ret) = if op.kind == OpKind::IncrBy {
                    let (overflow, limit) = check_signed(old, op.value, op.bits, op.overflow);
                    let new = if overflow {
                        limit
                    } else {
                        old.wrapping_add(op.value)
                    };
                    (overflow, new, new)
                } else {
                    let (overflow, limit) = check_signed(op.value, 0, op.bits, op.overflow);
                    (overflow, if overflow { limit } else { op.value }, old)
                };
                if overflow && op.overflow == OverflowKind::Fail {
                    replies.push(call.null());
                } else {
                    replies.push(Frame::Integer(ret));
                    set_bits(&mut buf, op.offset, op.bits, new as u64);
                    changed |= old != new;
                }
            }
            OpKind::Set | OpKind::IncrBy => {
                let old = get_unsigned(&buf, op.offset, op.bits);
                let (overflow, new, ret) = if op.kind == OpKind::IncrBy {
                    let (overflow, limit) = check_unsigned(old, op.value, op.bits, op.overflow);
                    let new = if overflow {
                        limit
                    } else {
                        old.wrapping_add(op.value as u64)
                    };
                    (overflow, new, new)
                } else {
                    let v = op.value as u64;
                    let (overflow, limit) = check_unsigned(v, 0, op.bits, op.overflow);
                    (overflow, if overflow { limit } else { v }, old)
                };
                if overflow && op.overflow == OverflowKind::Fail {
                    replies.push(call.null());
                } else {
                    replies.push(Frame::Integer(ret as i64));
                    set_bits(&mut buf, op.offset, op.bits, new);
                    changed |= old != new;
                }
            }
        }
    }
    let writes = if changed {
        vec![Write::SetString {
            key: call.arg(1).clone(),
            value: buf,
            ttl: Ttl::Keep,
        }]
    } else {
        Vec::new()
    };
    done_with(Frame::Array(replies), writes)
}

// === BITOP ===

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

fn parse_bitop(args: &[Bytes]) -> Result<BitOp, Frame> {
    let name = &args[1];
    let op = if is(name, "AND") {
        BitOp::And
    } else if is(name, "OR") {
        BitOp::Or
    } else if is(name, "XOR") {
        BitOp::Xor
    } else if is(name, "NOT") {
        BitOp::Not
    } else {
        return Err(error(SYNTAX));
    };
    if op == BitOp::Not && args.len() != 4 {
        return Err(error(
            "ERR BITOP NOT must be called with a single source key.",
        ));
    }
    Ok(op)
}

pub(super) fn plan_bitop(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    parse_bitop(args)?;
    Ok(args[3..]
        .iter()
        .map(|key| Read::String { key: key.clone() })
        .collect())
}

pub(super) fn bitop(call: &Call<'_>) -> Step {
    let Ok(op) = parse_bitop(call.args) else {
        return executor_bug();
    };
    let sources = call.args.len() - 3;
    if call.found.len() != sources {
        return executor_bug();
    }
    let mut values: Vec<&[u8]> = Vec::with_capacity(sources);
    for found in call.found {
        match found {
            Found::Missing => values.push(&[]),
            Found::String(v) => values.push(v),
            Found::WrongType => return done(error(WRONGTYPE)),
            _ => return executor_bug(),
        }
    }
    let maxlen = values.iter().map(|v| v.len()).max().unwrap_or(0);
    let dest = call.arg(2).clone();
    if maxlen == 0 {
        return done_with(Frame::Integer(0), vec![Write::Delete { key: dest }]);
    }
    let byte = |v: &[u8], i: usize| v.get(i).copied().unwrap_or(0);
    let result: Vec<u8> = (0..maxlen)
        .map(|i| {
            let mut out = byte(values[0], i);
            if op == BitOp::Not {
                out = !out;
            }
            for v in &values[1..] {
                match op {
                    BitOp::And => out &= byte(v, i),
                    BitOp::Or => out |= byte(v, i),
                    BitOp::Xor => out ^= byte(v, i),
                    BitOp::Not => {}
                }
            }
            out
        })
        .collect();
    done_with(
        Frame::Integer(maxlen as i64),
        vec![Write::SetString {
            key: dest,
            value: result,
            ttl: Ttl::Clear,
        }],
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::args;
    use super::super::*;

    fn reply(parts: &[&str], found: Vec<Found>) -> Frame {
        let a = args(parts);
        match compute(&a, &found, false) {
            Step::Done { reply, .. } => reply,
            Step::Read(_) => panic!(),
        }
    }

    fn s(v: &[u8]) -> Found {
        Found::String(v.to_vec())
    }

    #[test]
    fn bitcount_and_bitpos() {
        assert_eq!(
            reply(&["BITCOUNT", "k"], vec![s(b"foobar")]),
            Frame::Integer(26)
        );
        assert_eq!(
            reply(&["BITCOUNT", "k", "1", "1"], vec![s(b"foobar")]),
            Frame::Integer(6)
        );
        assert_eq!(
            reply(&["BITCOUNT", "k", "5", "30", "BIT"], vec![s(b"foobar")]),
            Frame::Integer(17)
        );
        // 7.0 looks the key up first.
        assert_eq!(
            reply(&["BITCOUNT", "k", "x"], vec![Found::Missing]),
            Frame::Integer(0)
        );
        assert_eq!(
            reply(&["BITPOS", "k", "0"], vec![s(b"\xff\xf0\x00")]),
            Frame::Integer(12)
        );
        assert_eq!(
            reply(
                &["BITPOS", "k", "1", "2", "-1", "BYTE"],
                vec![s(b"\x00\xff\xf0")]
            ),
            Frame::Integer(16)
        );
        assert_eq!(
            reply(
                &["BITPOS", "k", "1", "7", "15", "BIT"],
                vec![s(b"\x00\xff\xf0")]
            ),
            Frame::Integer(8)
        );
        assert_eq!(
            reply(&["BITPOS", "k", "0"], vec![s(b"\xff\xff")]),
            Frame::Integer(16)
        );
        assert_eq!(
            reply(&["BITPOS", "k", "0", "0", "-1"], vec![s(b"\xff\xff")]),
            Frame::Integer(-1)
        );
        assert_eq!(
            reply(&["BITPOS", "k", "1"], vec![Found::Missing]),
            Frame::Integer(-1)
        );
    }

    #[test]
    fn bitfield_overflows() {
        assert_eq!(
            reply(
                &[
                    "BITFIELD", "k", "INCRBY", "u2", "100", "1", "OVERFLOW", "SAT", "INCRBY", "u2",
                    "102", "1"
                ],
                vec![Found::Missing]
            ),
            Frame::Array(vec![Frame::Integer(1), Frame::Integer(1)])
        );
        assert_eq!(
            reply(
                &["BITFIELD", "k", "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "200"],
                vec![Found::Missing]
            ),
            Frame::Array(vec![Frame::NullBulk])
        );
        assert_eq!(
            reply(
                &["BITFIELD", "k", "SET", "i8", "#1", "-1", "GET", "u8", "8"],
                vec![Found::Missing]
            ),
            Frame::Array(vec![Frame::Integer(0), Frame::Integer(255)])
        );
        assert_eq!(
            start(&args(&["BITFIELD_RO", "k", "SET", "i8", "0", "1"])),
            Err(error("ERR BITFIELD_RO only supports the GET subcommand"))
        );
        assert_eq!(
            start(&args(&["BITFIELD", "k", "GET", "u64", "0"])),
            Err(error(super::BAD_TYPE))
        );
    }

    #[test]
    fn bitop_all_missing_deletes() {
        let a = args(&["BITOP", "OR", "d", "a", "b"]);
        assert_eq!(
            compute(&a, &[Found::Missing, Found::Missing], false),
            done_with(
                Frame::Integer(0),
                vec![Write::Delete {
                    key: Bytes::from_static(b"d")
                }]
            )
        );
    }
}
