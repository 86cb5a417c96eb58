//! `cmsgpack`: the MessagePack module Redis bundles (lua-cmsgpack 0.4.0's API and
//! behaviour), written for redcloak.
//!
//! Packing: integral numbers as the smallest MessagePack integer, other numbers as float32
//! when exact and float64 otherwise, strings as fixstr/str8/str16/str32, tables without holes
//! whose keys are 1..n as arrays and other tables as maps (in `next` order), tables nested
//! deeper than 16 levels and unsupported types as nil. Unpacking knows the same types (not
//! bin/ext, which are "Bad data format"), reads uint64 as a signed 64-bit integer and is
//! iterative, so hostile nesting cannot exhaust the native stack.

use mlua::{Lua, Table, Value, Variadic};

use super::{is_ref, RefStack, MAX_REF_RESULTS, MAX_RESULTS};
use crate::vm::{arg_error, lua_error, type_name, Raise};

const MAX_NESTING: u32 = 16;

pub(crate) fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.is_empty() {
                return arg_error(lua, 0, "MessagePack pack needs input.");
            }
            let mut out = Vec::new();
            for a in args.iter() {
                pack_value(&mut out, a, 0);
            }
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, args: Variadic<Value>| {
            let s = check_string(lua, &args, 1)?;
            unpack_full(lua, &s, 0, 0)
        })?,
    )?;
    t.raw_set(
        "unpack_one",
        lua.create_function(|lua, args: Variadic<Value>| {
            let s = check_string(lua, &args, 1)?;
            let offset = opt_int(lua, &args, 2)?;
            unpack_full(lua, &s, 1, offset)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(|lua, args: Variadic<Value>| {
            let s = check_string(lua, &args, 1)?;
            let limit = crate::vm::check_number(lua, &args, 2)? as i64;
            let offset = opt_int(lua, &args, 3)?;
            unpack_full(lua, &s, limit, offset)
        })?,
    )?;
    Ok(t)
}

fn check_string(lua: &Lua, args: &[Value], n: usize) -> mlua::Result<Vec<u8>> {
    match args.get(n - 1) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(v @ (Value::Number(_) | Value::Integer(_))) => {
            Ok(crate::convert::lua_tostring(v).unwrap_or_default())
        }
        Some(v) => arg_error(lua, n, &format!("string expected, got {}", type_name(v))),
        None => arg_error(lua, n, "string expected, got no value"),
    }
}

fn opt_int(lua: &Lua, args: &[Value], n: usize) -> mlua::Result<i64> {
    match args.get(n - 1) {
        None | Some(Value::Nil) => Ok(0),
        Some(_) => Ok(crate::vm::check_number(lua, args, n)? as i64),
    }
}

// === packing ===

fn pack_integer(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        if i <= 127 {
            out.push(i as u8);
        } else if i <= 0xff {
            out.extend_from_slice(&[0xcc, i as u8]);
        } else if i <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(i as u16).to_be_bytes());
        } else if i <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(i as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(i as u64).to_be_bytes());
        }
    } else if i >= -32 {
        out.push(i as i8 as u8);
    } else if i >= -128 {
        out.extend_from_slice(&[0xd0, i as i8 as u8]);
    } else if i >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(i as i16).to_be_bytes());
    } else if i >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(i as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&i.to_be_bytes());
    }
}

fn pack_number(out: &mut Vec<u8>, n: f64) {
    // C's `(int64_t)n == n` (x86-64: out of range and NaN become INT64_MIN).
    if !n.is_infinite() && crate::numfmt::c_cast_i64(n) as f64 == n {
        pack_integer(out, crate::numfmt::c_cast_i64(n));
        return;
    }
    let f = n as f32;
    if f64::from(f) == n {
        out.push(0xca);
        out.extend_from_slice(&f.to_bits().to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_bits().to_be_bytes());
    }
}

fn pack_len(out: &mut Vec<u8>, len: usize, fix: u8, fix_max: usize, op16: u8, op32: u8) {
    if len < fix_max {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.push(op16);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(op32);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn pack_value(out: &mut Vec<u8>, v: &Value, level: u32) {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Number(n) => pack_number(out, *n),
        Value::Integer(i) => pack_number(out, *i as f64),
        Value::String(s) => {
            let s = s.as_bytes();
            let len = s.len();
            if len < 32 {
                out.push(0xa0 | len as u8);
            } else if len <= 0xff {
                out.extend_from_slice(&[0xd9, len as u8]);
            } else if len <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(len as u32).to_be_bytes());
            }
            out.extend_from_slice(&s);
        }
        Value::Table(t) if level < MAX_NESTING => {
            // Two passes over `next` (nothing collected: every value held from Rust takes a
            // slot of mlua's limited reference stack).
            let mut max = 0f64;
            let mut count = 0usize;
            let mut is_array = true;
            for pair in t.pairs::<Value, Value>() {
                let Ok((k, _)) = pair else { break };
                count += 1;
                let n = match k {
                    Value::Number(n) => n,
                    Value::Integer(i) => i as f64,
                    _ => {
                        is_array = false;
                        continue;
                    }
                };
                if n <= 0.0 || f64::from(n as i32) != n {
                    is_array = false;
                }
                max = max.max(n);
            }
            if is_array && max as usize == count {
                let len = t.raw_len();
                pack_len(out, len, 0x90, 16, 0xdc, 0xdd);
                for i in 1..=len {
                    let item: Value = t.raw_get(i).unwrap_or(Value::Nil);
                    pack_value(out, &item, level + 1);
                }
            } else {
                pack_len(out, count, 0x80, 16, 0xde, 0xdf);
                for pair in t.pairs::<Value, Value>() {
                    let Ok((k, item)) = pair else { break };
                    pack_value(out, &k, level + 1);
                    pack_value(out, &item, level + 1);
                }
            }
        }
        _ => out.push(0xc0),
    }
}

// === unpacking ===

enum Fail {
    Eof,
    BadFormat,
    Raise(mlua::Error),
}

impl From<mlua::Error> for Fail {
    fn from(e: mlua::Error) -> Self {
        Fail::Raise(e)
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.s.len() - self.pos
    }
    fn take(&mut self, n: usize) -> Result<&[u8], Fail> {
        if self.left() < n {
            return Err(Fail::Eof);
        }
        let out = &self.s[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }
    fn be(&mut self, n: usize) -> Result<u64, Fail> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }
}

/// An open container while unpacking (its table and pending key live in [`RefStack`]s).
struct Open {
    left: usize,
    next_index: i64,
    map: bool,
    has_key: bool,
}

/// Redis's Lua stack allows 3999 nested containers (each holds two stack slots).
const MAX_OPEN: usize = 3999;

/// One complete top-level value.
fn unpack_value(lua: &Lua, c: &mut Cursor<'_>) -> Result<Value, Fail> {
    let mut open: Vec<Open> = Vec::new();
    let mut tables = RefStack::new(lua)?;
    let mut keys = RefStack::new(lua)?;
    loop {
        // Read one item; containers are pushed and filled by the following items.
        let op = c.take(1)?[0];
        let mut value = match op {
            0x00..=0x7f => Value::Number(f64::from(op)),
            0xe0..=0xff => Value::Number(f64::from(op as i8)),
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xca => Value::Number(f64::from(f32::from_bits(c.be(4)? as u32))),
            0xcb => Value::Number(f64::from_bits(c.be(8)?)),
            0xcc => Value::Number(c.be(1)? as f64),
            0xcd => Value::Number(c.be(2)? as f64),
            0xce => Value::Number(c.be(4)? as f64),
            0xcf => Value::Number(c.be(8)? as i64 as f64),
            0xd0 => Value::Number(f64::from(c.be(1)? as u8 as i8)),
            0xd1 => Value::Number(f64::from(c.be(2)? as u16 as i16)),
            0xd2 => Value::Number(f64::from(c.be(4)? as u32 as i32)),
            0xd3 => Value::Number(c.be(8)? as i64 as f64),
            0xa0..=0xbf | 0xd9 | 0xda | 0xdb => {
                let len = match op {
                    0xd9 => c.be(1)?,
                    0xda => c.be(2)?,
                    0xdb => c.be(4)?,
                    _ => u64::from(op & 0x1f),
                } as usize;
                Value::String(lua.create_string(c.take(len)?)?)
            }
            0x90..=0x9f | 0xdc | 0xdd | 0x80..=0x8f | 0xde | 0xdf => {
                let map = matches!(op, 0x80..=0x8f | 0xde | 0xdf);
                if open.len() >= MAX_OPEN {
                    return Err(Fail::Raise(mlua::Error::external(Raise::Str(
                        format!(
                            "{}{}",
                            crate::vm::lua_where(lua),
                            if map {
                                "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"
                            } else {
                                "stack overflow (in function mp_decode_to_lua_array)"
                            }
                        )
                        .into_bytes(),
                    ))));
                }
                let len = match op {
                    0xdc | 0xde => c.be(2)?,
                    0xdd | 0xdf => c.be(4)?,
                    _ => u64::from(op & 0x0f),
                } as usize;
                let table = lua.create_table()?;
                if len > 0 {
                    tables.push(table)?;
                    keys.push(Value::Nil)?;
                    open.push(Open {
                        left: len,
                        next_index: 1,
                        map,
                        has_key: false,
                    });
                    continue;
                }
                Value::Table(table)
            }
            _ => return Err(Fail::BadFormat),
        };
        // Store the value in the open container(s); close those that are full.
        loop {
            let Some(top) = open.last_mut() else {
                return Ok(value);
            };
            let table: Table = tables.top()?;
            if top.map {
                if !top.has_key {
                    keys.set_top(value)?;
                    top.has_key = true;
                    break;
                }
                let k: Value = keys.top()?;
                top.has_key = false;
                match &k {
                    Value::Nil => return Err(Fail::Raise(raise_err(b"table index is nil"))),
                    Value::Number(n) if n.is_nan() => {
                        return Err(Fail::Raise(raise_err(b"table index is NaN")))
                    }
                    _ => {}
                }
                table.raw_set(k, value)?;
            } else {
                table.raw_set(top.next_index, value)?;
                top.next_index += 1;
            }
            top.left -= 1;
            if top.left > 0 {
                break;
            }
            open.pop();
            let _: Value = keys.pop()?;
            value = Value::Table(tables.pop()?);
        }
    }
}

fn raise_err(msg: &[u8]) -> mlua::Error {
    mlua::Error::external(Raise::Str(msg.to_vec()))
}

fn unpack_full(lua: &Lua, s: &[u8], limit: i64, offset: i64) -> mlua::Result<Variadic<Value>> {
    let len = s.len() as i64;
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return lua_error(
            lua,
            &format!("Invalid request to unpack with offset of {offset} and limit of {len}."),
        );
    }
    if offset > len {
        return lua_error(
            lua,
            &format!("Start offset {offset} greater than input length {len}."),
        );
    }
    let limit = if decode_all { i64::MAX } else { limit };
    let mut c = Cursor {
        s,
        pos: offset as usize,
    };
    let mut out = Variadic::new();
    let mut count = 0;
    let mut refs = 0;
    while c.left() > 0 && count < limit {
        if count >= MAX_RESULTS as i64 || refs >= MAX_REF_RESULTS {
            return lua_error(
                lua,
                "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)",
            );
        }
        match unpack_value(lua, &mut c) {
            Ok(v) if is_ref(&v) => {
                refs += 1;
                out.push(v)
            }
            Ok(v) => out.push(v),
            Err(Fail::Eof) => return lua_error(lua, "Missing bytes in input."),
            Err(Fail::BadFormat) => return lua_error(lua, "Bad data format in input."),
            Err(Fail::Raise(e)) => return Err(e),
        }
        count += 1;
    }
    if !decode_all {
        let next = if c.left() == 0 { -1 } else { c.pos as i64 };
        out.insert(0, Value::Number(next as f64));
    }
    Ok(out)
}
