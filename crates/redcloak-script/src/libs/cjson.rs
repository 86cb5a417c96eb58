//! `cjson`: the JSON module Redis bundles (lua-cjson 2.1.0's API and behaviour), written for
//! redcloak.
//!
//! Encoding: numbers as `%.14g` (configurable precision), `/` and control characters escaped,
//! bytes ≥ 0x80 copied as they are, an empty table as `{}`, tables whose keys are all
//! positive integers as arrays (holes as `null`, "excessively sparse" arrays refused), object
//! keys in `next` order. Decoding is as lenient as lua-cjson (numbers read the way C's
//! `strtod` reads them, raw control characters accepted in strings) and reports errors in
//! its words (`Expected value but found T_END at character 2`).

use std::sync::{Arc, Mutex};

use mlua::{LightUserData, Lua, Table, Value, Variadic};

use super::RefStack;
use crate::numfmt::push_g;
use crate::vm::{arg_error, lua_error, type_name};

#[derive(Debug, Clone)]
struct Config {
    sparse_convert: bool,
    sparse_ratio: i64,
    sparse_safe: i64,
    encode_max_depth: i64,
    decode_max_depth: i64,
    precision: usize,
    keep_buffer: bool,
    /// 0: refuse NaN/Inf, 1: write them, 2: write `null`.
    encode_invalid: u8,
    decode_invalid: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: false,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            precision: 14,
            keep_buffer: true,
            encode_invalid: 0,
            decode_invalid: true,
        }
    }
}

pub(crate) fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

pub(crate) fn create(lua: &Lua) -> mlua::Result<Table> {
    let cfg = Arc::new(Mutex::new(Config::default()));
    let t = lua.create_table()?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    t.raw_set("null", null())?;

    let c = cfg.clone();
    t.raw_set(
        "encode",
        lua.create_function(move |lua, args: Variadic<Value>| {
            if args.len() != 1 {
                return arg_error(lua, 1, "expected 1 argument");
            }
            let cfg = c.lock().map(|g| g.clone()).unwrap_or_default();
            let mut out = Vec::new();
            match encode_value(lua, &mut out, &args[0], &cfg, 0) {
                Ok(()) => lua.create_string(&out),
                Err(msg) => lua_error(lua, &msg),
            }
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "decode",
        lua.create_function(move |lua, args: Variadic<Value>| {
            if args.len() != 1 {
                return arg_error(lua, 1, "expected 1 argument");
            }
            let text = match &args[0] {
                Value::String(s) => s.as_bytes().to_vec(),
                v @ (Value::Number(_) | Value::Integer(_)) => {
                    crate::convert::lua_tostring(v).unwrap_or_default()
                }
                v => return arg_error(lua, 1, &format!("string expected, got {}", type_name(v))),
            };
            let cfg = c.lock().map(|g| g.clone()).unwrap_or_default();
            let mut d = Decoder {
                lua,
                s: &text,
                pos: 0,
                cfg: &cfg,
                depth: 0,
                slots: 0,
            };
            match d.decode_top() {
                Ok(v) => Ok(v),
                Err(DecodeError::Lua(e)) => Err(e),
                Err(DecodeError::Msg(m)) => lua_error(lua, &m),
            }
        })?,
    )?;

    // Configuration: each returns the current setting(s) after applying its arguments.
    let c = cfg.clone();
    t.raw_set(
        "encode_sparse_array",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let mut g = c.lock().map_err(|_| mlua::Error::runtime("cjson config"))?;
            if let Some(v) = enum_opt(lua, &args, 1)? {
                g.sparse_convert = v == 1;
            }
            if let Some(n) = int_opt(lua, &args, 2, 0, i64::from(i32::MAX))? {
                g.sparse_ratio = n;
            }
            if let Some(n) = int_opt(lua, &args, 3, 0, i64::from(i32::MAX))? {
                g.sparse_safe = n;
            }
            Ok((g.sparse_convert, g.sparse_ratio, g.sparse_safe))
        })?,
    )?;
    for (name, which) in [("encode_max_depth", 0), ("decode_max_depth", 1)] {
        let c = cfg.clone();
        t.raw_set(
            name,
            lua.create_function(move |lua, args: Variadic<Value>| {
                let mut g = c.lock().map_err(|_| mlua::Error::runtime("cjson config"))?;
                if let Some(n) = int_opt(lua, &args, 1, 1, i64::from(i32::MAX))? {
                    if which == 0 {
                        g.encode_max_depth = n;
                    } else {
                        g.decode_max_depth = n;
                    }
                }
                Ok(if which == 0 {
                    g.encode_max_depth
                } else {
                    g.decode_max_depth
                })
            })?,
        )?;
    }
    let c = cfg.clone();
    t.raw_set(
        "encode_number_precision",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let mut g = c.lock().map_err(|_| mlua::Error::runtime("cjson config"))?;
            if let Some(n) = int_opt(lua, &args, 1, 1, 14)? {
                g.precision = n as usize;
            }
            Ok(g.precision)
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "encode_keep_buffer",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let mut g = c.lock().map_err(|_| mlua::Error::runtime("cjson config"))?;
            if let Some(v) = enum_opt(lua, &args, 1)? {
                g.keep_buffer = v == 1;
            }
            Ok(g.keep_buffer)
        })?,
    )?;
    let c = cfg.clone();
    t.raw_set(
        "encode_invalid_numbers",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let mut g = c.lock().map_err(|_| mlua::Error::runtime("cjson config"))?;
            if let Some(v) = enum_opt(lua, &args, 1)? {
                g.encode_invalid = v;
            }
            Ok(match g.encode_invalid {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                _ => Value::String(lua.create_string("null")?),
            })
        })?,
    )?;
    let c = cfg;
    t.raw_set(
        "decode_invalid_numbers",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let mut g = c.lock().map_err(|_| mlua::Error::runtime("cjson config"))?;
            if let Some(v) = enum_opt(lua, &args, 1)? {
                g.decode_invalid = v == 1;
            }
            Ok(g.decode_invalid)
        })?,
    )?;
    t.raw_set(
        "new",
        lua.create_function(|lua, _: Variadic<Value>| create(lua))?,
    )?;
    Ok(t)
}

/// An on/off option: `true`/`false`, `"on"`/`"off"`, `"null"` (2). `None` when absent.
fn enum_opt(lua: &Lua, args: &[Value], n: usize) -> mlua::Result<Option<u8>> {
    match args.get(n - 1) {
        None | Some(Value::Nil) => Ok(None),
        Some(Value::Boolean(b)) => Ok(Some(u8::from(*b))),
        Some(Value::String(s)) => match s.as_bytes().as_ref() {
            b"off" => Ok(Some(0)),
            b"on" => Ok(Some(1)),
            b"null" => Ok(Some(2)),
            other => arg_error(
                lua,
                n,
                &format!("invalid option '{}'", String::from_utf8_lossy(other)),
            ),
        },
        Some(v) => arg_error(lua, n, &format!("string expected, got {}", type_name(v))),
    }
}

fn int_opt(lua: &Lua, args: &[Value], n: usize, min: i64, max: i64) -> mlua::Result<Option<i64>> {
    match args.get(n - 1) {
        None | Some(Value::Nil) => Ok(None),
        Some(_) => {
            let v = crate::vm::check_number(lua, args, n)? as i64;
            if v < min || v > max {
                return arg_error(lua, n, &format!("expected integer between {min} and {max}"));
            }
            Ok(Some(v))
        }
    }
}

// === encoding ===

fn encode_number(out: &mut Vec<u8>, x: f64, cfg: &Config) -> Result<(), String> {
    if !x.is_finite() {
        match cfg.encode_invalid {
            0 => return Err("Cannot serialise number: must not be NaN or Inf".to_owned()),
            2 => {
                out.extend_from_slice(b"null");
                return Ok(());
            }
            _ => {}
        }
    }
    let mut s = String::new();
    push_g(&mut s, x, cfg.precision);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

pub(crate) fn encode_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..=0x1f | 0x7f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// An open container while encoding (its table, and an object's last key, live in
/// [`RefStack`]s: nesting may be thousands deep).
enum Open {
    Array { next: i64, len: i64 },
    Object { first: bool },
}

/// Lua stack slots Redis's cjson may use for nesting (arrays take one per level, objects
/// two): beyond them it reports excessive nesting whatever the configured depth.
const MAX_SLOTS: i64 = 7997;

fn encode_value(
    lua: &Lua,
    out: &mut Vec<u8>,
    v: &Value,
    cfg: &Config,
    depth: i64,
) -> Result<(), String> {
    let le = |e: mlua::Error| e.to_string();
    let next_fn: mlua::Function = lua.named_registry_value("redcloak.next").map_err(le)?;
    let mut open: Vec<Open> = Vec::new();
    let mut tables = RefStack::new(lua).map_err(le)?;
    let mut keys = RefStack::new(lua).map_err(le)?;
    let mut slots = 0i64;
    let mut pending = Some(v.clone());
    let mut depth = depth;
    loop {
        if let Some(v) = pending.take() {
            match &v {
                Value::Nil => out.extend_from_slice(b"null"),
                Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
                Value::Number(n) => encode_number(out, *n, cfg)?,
                Value::Integer(n) => encode_number(out, *n as f64, cfg)?,
                Value::String(s) => encode_string(out, &s.as_bytes()),
                Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
                Value::Table(t) => {
                    depth += 1;
                    let array = array_length(t, cfg)?;
                    let need = if array.is_some() { 1 } else { 2 };
                    if depth > cfg.encode_max_depth || slots + need > MAX_SLOTS {
                        return Err(format!("Cannot serialise, excessive nesting ({depth})"));
                    }
                    slots += need;
                    tables.push(t.clone()).map_err(le)?;
                    keys.push(Value::Nil).map_err(le)?;
                    match array {
                        Some(len) => {
                            out.push(b'[');
                            open.push(Open::Array { next: 1, len });
                        }
                        None => {
                            out.push(b'{');
                            open.push(Open::Object { first: true });
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "Cannot serialise {}: type not supported",
                        type_name(other)
                    ))
                }
            }
        }
        // The next item of the innermost open container, or close it.
        let Some(top) = open.last_mut() else {
            return Ok(());
        };
        let table: Table = tables.top().map_err(le)?;
        match top {
            Open::Array { next, len } => {
                if *next > *len {
                    out.push(b']');
                } else {
                    if *next > 1 {
                        out.push(b',');
                    }
                    pending = Some(table.raw_get(*next).map_err(le)?);
                    *next += 1;
                    continue;
                }
            }
            Open::Object { first } => {
                let last: Value = keys.top().map_err(le)?;
                let (k, item): (Value, Value) = next_fn.call((table, last)).map_err(le)?;
                if k.is_nil() {
                    out.push(b'}');
                } else {
                    if !*first {
                        out.push(b',');
                    }
                    *first = false;
                    encode_key(out, &k, cfg)?;
                    keys.set_top(k).map_err(le)?;
                    pending = Some(item);
                    continue;
                }
            }
        }
        let closed = open.pop();
        slots -= if matches!(closed, Some(Open::Array { .. })) {
            1
        } else {
            2
        };
        let _: Value = tables.pop().map_err(le)?;
        let _: Value = keys.pop().map_err(le)?;
        depth -= 1;
    }
}

fn encode_key(out: &mut Vec<u8>, k: &Value, cfg: &Config) -> Result<(), String> {
    match k {
        Value::String(s) => encode_string(out, &s.as_bytes()),
        Value::Number(_) | Value::Integer(_) => {
            let n = match k {
                Value::Number(n) => *n,
                Value::Integer(n) => *n as f64,
                _ => 0.0,
            };
            out.push(b'"');
            encode_number(out, n, cfg)?;
            out.push(b'"');
        }
        other => {
            return Err(format!(
                "Cannot serialise {}: table key must be a number or string",
                type_name(other)
            ))
        }
    }
    out.push(b':');
    Ok(())
}

/// lua-cjson's array test: `Some(max)` when every key is a positive integer (an empty table
/// is not an array), `None` for an object; an error for an excessively sparse array.
fn array_length(t: &Table, cfg: &Config) -> Result<Option<i64>, String> {
    let mut max = 0i64;
    let mut items = 0i64;
    for pair in t.pairs::<Value, Value>() {
        let Ok((k, _)) = pair else { return Ok(None) };
        let k = match k {
            Value::Number(n) if n.floor() == n && n >= 1.0 => n,
            Value::Integer(n) if n >= 1 => n as f64,
            _ => return Ok(None),
        };
        if k > max as f64 {
            // lua-cjson keeps the largest key in a C `int`: a key past i32::MAX becomes
            // INT_MIN on x86-64, and the table then encodes as an object.
            max = if k <= f64::from(i32::MAX) {
                k as i64
            } else {
                i64::from(i32::MIN)
            };
        }
        items += 1;
    }
    if cfg.sparse_safe > 0 && max > items * cfg.sparse_ratio && max > cfg.sparse_safe {
        if !cfg.sparse_convert {
            return Err("Cannot serialise table: excessively sparse array".to_owned());
        }
        return Ok(None);
    }
    Ok((max > 0).then_some(max))
}

// === decoding ===

enum DecodeError {
    Lua(mlua::Error),
    Msg(String),
}

impl From<mlua::Error> for DecodeError {
    fn from(e: mlua::Error) -> Self {
        DecodeError::Lua(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Number(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    /// A tokenizer error (its message) at the given index.
    Error(&'static str),
}

impl Tok {
    fn name(&self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Number(_) => "T_NUMBER",
            Tok::Bool(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(m) => m,
        }
    }
}

struct Decoder<'a> {
    lua: &'a Lua,
    s: &'a [u8],
    pos: usize,
    cfg: &'a Config,
    depth: i64,
    slots: i64,
}

/// lua-cjson's test for numbers JSON does not allow: a leading `+`, hex, leading zeros,
/// Inf and NaN (any case).
fn invalid_number(s: &[u8]) -> bool {
    if s.first() == Some(&b'+') {
        return true;
    }
    let p = s.strip_prefix(b"-").unwrap_or(s);
    match p.first() {
        Some(b'0') => matches!(p.get(1), Some(c) if (c | 0x20) == b'x' || c.is_ascii_digit()),
        Some(c) if *c <= b'9' => false,
        None => false,
        _ => {
            let head: Vec<u8> = p.iter().take(3).map(u8::to_ascii_lowercase).collect();
            head == b"inf" || head == b"nan"
        }
    }
}

/// C's `strtod` on the start of `s`: the number and how many bytes it used.
pub(crate) fn strtod_prefix(s: &[u8]) -> Option<(f64, usize)> {
    let mut i = 0;
    let neg = match s.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let sign = if neg { -1.0 } else { 1.0 };
    let rest = &s[i..];
    let lower: Vec<u8> = rest
        .iter()
        .take(8)
        .map(|b| b.to_ascii_lowercase())
        .collect();
    if lower.starts_with(b"infinity") {
        return Some((sign * f64::INFINITY, i + 8));
    }
    if lower.starts_with(b"inf") {
        return Some((sign * f64::INFINITY, i + 3));
    }
    if lower.starts_with(b"nan") {
        let mut n = f64::NAN;
        if neg {
            n = -n;
        }
        return Some((n, i + 3));
    }
    if lower.starts_with(b"0x") && rest.get(2).is_some_and(|b| b.is_ascii_hexdigit()) {
        let mut j = 2;
        let mut v = 0f64;
        while let Some(d) = rest.get(j).and_then(|b| (*b as char).to_digit(16)) {
            v = v * 16.0 + f64::from(d);
            j += 1;
        }
        if rest.get(j) == Some(&b'.') {
            j += 1;
            let mut scale = 1.0 / 16.0;
            while let Some(d) = rest.get(j).and_then(|b| (*b as char).to_digit(16)) {
                v += f64::from(d) * scale;
                scale /= 16.0;
                j += 1;
            }
        }
        return Some((sign * v, i + j));
    }
    let mut j = 0;
    let digits_start = j;
    while rest.get(j).is_some_and(u8::is_ascii_digit) {
        j += 1;
    }
    let mut any = j > digits_start;
    if rest.get(j) == Some(&b'.') {
        let mut k = j + 1;
        while rest.get(k).is_some_and(u8::is_ascii_digit) {
            k += 1;
        }
        if k > j + 1 || any {
            any = any || k > j + 1;
            j = k;
        }
    }
    if !any {
        return None;
    }
    if matches!(rest.get(j), Some(b'e' | b'E')) {
        let mut k = j + 1;
        if matches!(rest.get(k), Some(b'+' | b'-')) {
            k += 1;
        }
        let e_start = k;
        while rest.get(k).is_some_and(u8::is_ascii_digit) {
            k += 1;
        }
        if k > e_start {
            j = k;
        }
    }
    let text = std::str::from_utf8(&rest[..j]).ok()?;
    let v: f64 = text.parse().ok()?;
    Some((sign * v, i + j))
}

impl Decoder<'_> {
    fn skip_ws(&mut self) {
        while matches!(self.s.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// The next token, its 0-based index, and (for strings) the decoded bytes.
    fn next(&mut self, text: &mut Vec<u8>) -> (Tok, usize) {
        self.skip_ws();
        let start = self.pos;
        let Some(&c) = self.s.get(self.pos) else {
            return (Tok::End, start);
        };
        let single = |t| (t, start);
        match c {
            b'{' => {
                self.pos += 1;
                single(Tok::ObjBegin)
            }
            b'}' => {
                self.pos += 1;
                single(Tok::ObjEnd)
            }
            b'[' => {
                self.pos += 1;
                single(Tok::ArrBegin)
            }
            b']' => {
                self.pos += 1;
                single(Tok::ArrEnd)
            }
            b':' => {
                self.pos += 1;
                single(Tok::Colon)
            }
            b',' => {
                self.pos += 1;
                single(Tok::Comma)
            }
            b'"' => self.string(text),
            b'-' | b'0'..=b'9' => {
                if !self.cfg.decode_invalid && invalid_number(&self.s[start..]) {
                    return single(Tok::Error("invalid number"));
                }
                self.number(start)
            }
            b't' if self.s[start..].starts_with(b"true") => {
                self.pos += 4;
                single(Tok::Bool(true))
            }
            b'f' if self.s[start..].starts_with(b"false") => {
                self.pos += 5;
                single(Tok::Bool(false))
            }
            b'n' if self.s[start..].starts_with(b"null") => {
                self.pos += 4;
                single(Tok::Null)
            }
            // Characters that may start an invalid JSON number (Inf, NaN, +1): read as numbers
            // only when invalid numbers are accepted and the text is one of them.
            b't' | b'f' | b'n' | b'i' | b'I' | b'N' | b'+'
                if self.cfg.decode_invalid && invalid_number(&self.s[start..]) =>
            {
                self.number(start)
            }
            _ => single(Tok::Error("invalid token")),
        }
    }

    /// A number as C's `strtod` reads it from `start`.
    fn number(&mut self, start: usize) -> (Tok, usize) {
        match strtod_prefix(&self.s[start..]) {
            Some((v, used)) if used > 0 => {
                self.pos = start + used;
                (Tok::Number(v), start)
            }
            _ => (Tok::Error("invalid number"), start),
        }
    }

    fn string(&mut self, out: &mut Vec<u8>) -> (Tok, usize) {
        let start = self.pos;
        out.clear();
        self.pos += 1;
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return (Tok::Error("unexpected end of string"), self.pos);
            };
            match c {
                b'"' => {
                    self.pos += 1;
                    return (Tok::Str, start);
                }
                b'\\' => {
                    let esc_at = self.pos;
                    let Some(&e) = self.s.get(self.pos + 1) else {
                        return (Tok::Error("unexpected end of string"), self.pos);
                    };
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => match self.unicode(out) {
                            Some(()) => continue,
                            None => return (Tok::Error("invalid unicode escape code"), esc_at),
                        },
                        _ => return (Tok::Error("invalid escape code"), esc_at),
                    }
                    self.pos += 2;
                }
                _ => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.s.get(at..at + 4)?;
        let t = std::str::from_utf8(h).ok()?;
        if !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(t, 16).ok()
    }

    /// `\uXXXX` (and a following low surrogate) at `self.pos` as UTF-8.
    fn unicode(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let mut cp = self.hex4(self.pos + 2)?;
        let mut used = 6;
        if (0xD800..0xDC00).contains(&cp) {
            if self.s.get(self.pos + 6..self.pos + 8) != Some(b"\\u") {
                return None;
            }
            let low = self.hex4(self.pos + 8)?;
            if !(0xDC00..0xE000).contains(&low) {
                return None;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            used = 12;
        } else if (0xDC00..0xE000).contains(&cp) {
            return None;
        }
        let ch = char::from_u32(cp)?;
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        self.pos += used;
        Some(())
    }

    fn leave(&mut self, slots: i64) {
        self.depth -= 1;
        self.slots -= slots;
    }

    fn error(&self, expected: &str, tok: Tok, at: usize) -> DecodeError {
        DecodeError::Msg(format!(
            "Expected {expected} but found {} at character {}",
            tok.name(),
            at + 1
        ))
    }

    /// Decodes the whole text. Iterative (an explicit stack of open containers), so 1000
    /// levels of nesting need no deep native stack.
    fn decode_top(&mut self) -> Result<Value, DecodeError> {
        // Open containers: kind here, table and pending key in RefStacks (see RefStack).
        enum Open {
            Obj,
            Arr(i64),
        }
        let mut text = Vec::new();
        let mut open: Vec<Open> = Vec::new();
        let mut tables = RefStack::new(self.lua)?;
        let mut keys = RefStack::new(self.lua)?;
        let (mut tok, mut at) = self.next(&mut text);
        loop {
            let mut value = match tok {
                Tok::Str => Value::String(self.lua.create_string(&text)?),
                Tok::Number(n) => Value::Number(n),
                Tok::Bool(b) => Value::Boolean(b),
                Tok::Null => null(),
                Tok::ObjBegin => {
                    self.enter(at, 2)?;
                    let t = self.lua.create_table()?;
                    let (first, fat) = self.next(&mut text);
                    if first == Tok::ObjEnd {
                        self.leave(2);
                        Value::Table(t)
                    } else {
                        let key = self.key(first, fat, &mut text)?;
                        tables.push(t)?;
                        keys.push(key)?;
                        open.push(Open::Obj);
                        (tok, at) = self.next(&mut text);
                        continue;
                    }
                }
                Tok::ArrBegin => {
                    self.enter(at, 1)?;
                    let t = self.lua.create_table()?;
                    let (first, fat) = self.next(&mut text);
                    if first == Tok::ArrEnd {
                        self.leave(1);
                        Value::Table(t)
                    } else {
                        tables.push(t)?;
                        keys.push(Value::Nil)?;
                        open.push(Open::Arr(1));
                        (tok, at) = (first, fat);
                        continue;
                    }
                }
                other => return Err(self.error("value", other, at)),
            };
            // A value is complete: store it in the open container, closing those that end.
            loop {
                let Some(top) = open.last_mut() else {
                    let (end, eat) = self.next(&mut text);
                    if end != Tok::End {
                        return Err(self.error("the end", end, eat));
                    }
                    return Ok(value);
                };
                let t: Table = tables.top()?;
                let closing = match top {
                    Open::Arr(i) => {
                        t.raw_set(*i, value)?;
                        *i += 1;
                        let (sep, sat) = self.next(&mut text);
                        match sep {
                            Tok::ArrEnd => 1,
                            Tok::Comma => {
                                (tok, at) = self.next(&mut text);
                                break;
                            }
                            other => return Err(self.error("comma or array end", other, sat)),
                        }
                    }
                    Open::Obj => {
                        let key: mlua::String = keys.top()?;
                        t.raw_set(key, value)?;
                        let (sep, sat) = self.next(&mut text);
                        match sep {
                            Tok::ObjEnd => 2,
                            Tok::Comma => {
                                let (k, kat) = self.next(&mut text);
                                keys.set_top(self.key(k, kat, &mut text)?)?;
                                (tok, at) = self.next(&mut text);
                                break;
                            }
                            other => return Err(self.error("comma or object end", other, sat)),
                        }
                    }
                };
                open.pop();
                let _: Value = keys.pop()?;
                value = Value::Table(tables.pop()?);
                self.leave(closing);
            }
        }
    }

    /// An object key (the token just read) followed by its colon.
    fn key(
        &mut self,
        tok: Tok,
        at: usize,
        text: &mut Vec<u8>,
    ) -> Result<mlua::String, DecodeError> {
        if tok != Tok::Str {
            return Err(self.error("object key string", tok, at));
        }
        let key = self.lua.create_string(&*text)?;
        let (colon, cat) = self.next(text);
        if colon != Tok::Colon {
            return Err(self.error("colon", colon, cat));
        }
        Ok(key)
    }

    /// Opens a container taking `slots` of Redis's Lua stack (arrays 1, objects 2).
    fn enter(&mut self, at: usize, slots: i64) -> Result<(), DecodeError> {
        self.depth += 1;
        self.slots += slots;
        if self.depth > self.cfg.decode_max_depth || self.slots > 7998 {
            return Err(DecodeError::Msg(format!(
                "Found too many nested data structures ({}) at character {}",
                self.depth,
                at + 1
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_like_c() {
        assert_eq!(strtod_prefix(b"12abc"), Some((12.0, 2)));
        assert_eq!(strtod_prefix(b"-1.5e3,"), Some((-1500.0, 6)));
        assert_eq!(strtod_prefix(b"0x10"), Some((16.0, 4)));
        assert_eq!(strtod_prefix(b"1e"), Some((1.0, 1)));
        assert_eq!(strtod_prefix(b"inf"), Some((f64::INFINITY, 3)));
        assert!(strtod_prefix(b"nan").is_some_and(|(v, n)| v.is_nan() && n == 3));
        assert_eq!(strtod_prefix(b"-"), None);
        assert_eq!(strtod_prefix(b".5"), Some((0.5, 2)));
    }
}
