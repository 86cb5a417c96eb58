//! Lua ↔ RESP conversions, as Redis 7.0 does them.
//!
//! - [`frame_to_lua`]: a command's reply (in the script's protocol) to the Lua value
//!   `redis.call` returns.
//! - [`lua_to_reply`]: the script's return value to the reply the client receives (in the
//!   client's protocol).
//! - [`error_table_text`]: how Redis turns an error text into the `err` of an error table.

use bytes::Bytes;
use mlua::{Lua, Table, Value};
use redcloak_commands::resp::Frame;

use crate::numfmt::{c_cast_i64, format_g};

/// Deepest table nesting converted into a reply. Redis stops at Lua's C stack limit
/// (`reached lua stack limit`, after thousands of levels, and then sends a broken reply); we
/// stop earlier because the conversion and `Frame::encode` recurse on the proxy's small
/// thread stacks (redcloak-commands bounds frames at 512 levels).
pub(crate) const MAX_REPLY_DEPTH: usize = 256;

/// Redis's `luaPushErrorBuff`: `-CODE msg` keeps its code, anything else gets `ERR`; the
/// message is trimmed of CR/LF at both ends; the result is `CODE msg`.
pub(crate) fn error_table_text(raw: &[u8]) -> Vec<u8> {
    let (code, msg): (&[u8], &[u8]) = match raw.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&b| b == b' ') {
            Some(sp) => (&rest[..sp], &rest[sp + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", raw),
    };
    let msg = trim_crlf(msg);
    let mut out = Vec::with_capacity(code.len() + 1 + msg.len());
    out.extend_from_slice(code);
    out.push(b' ');
    out.extend_from_slice(msg);
    out
}

fn trim_crlf(mut s: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b'\r' | b'\n'] = s {
        s = rest;
    }
    s
}

/// Builds the Lua error table `{err = <text>}` (plus `ignore_error_stats_update = true` for
/// errors of commands, as Redis marks them).
pub(crate) fn new_error_table(lua: &Lua, err: &[u8], ignore_stats: bool) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(err)?)?;
    if ignore_stats {
        t.raw_set("ignore_error_stats_update", true)?;
    }
    Ok(t)
}

/// A command's reply to the Lua value `redis.call` returns (Redis's `redisProtocolToLuaType`).
/// Tables are created without size hints and filled in reply order, as Redis does: a table's
/// layout, and so the order `pairs` visits its keys, depends on both.
/// `Err(text)` for an error reply: the text for [`new_error_table`].
pub(crate) fn frame_to_lua(lua: &Lua, frame: &Frame) -> mlua::Result<Result<Value, Vec<u8>>> {
    Ok(Ok(match frame {
        Frame::Error(e) | Frame::BulkError(e) => {
            let mut raw = Vec::with_capacity(e.len() + 1);
            raw.push(b'-');
            raw.extend_from_slice(e);
            return Ok(Err(error_table_text(&raw)));
        }
        Frame::Attribute { frame, .. } => return frame_to_lua(lua, frame),
        _ => value_of(lua, frame)?,
    }))
}

fn value_of(lua: &Lua, frame: &Frame) -> mlua::Result<Value> {
    Ok(match frame {
        Frame::Simple(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(s)?)?;
            Value::Table(t)
        }
        Frame::Error(e) | Frame::BulkError(e) => {
            let mut raw = Vec::with_capacity(e.len() + 1);
            raw.push(b'-');
            raw.extend_from_slice(e);
            Value::Table(new_error_table(lua, &error_table_text(&raw), true)?)
        }
        Frame::Integer(n) => Value::Number(*n as f64),
        Frame::Bulk(b) => Value::String(lua.create_string(b)?),
        Frame::NullBulk | Frame::NullArray => Value::Boolean(false),
        Frame::Null => Value::Nil,
        Frame::Boolean(b) => Value::Boolean(*b),
        Frame::Array(items) | Frame::Push(items) => {
            let t = lua.create_table()?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, value_of(lua, item)?)?;
            }
            Value::Table(t)
        }
        Frame::Double(d) => {
            let t = lua.create_table()?;
            let s = std::str::from_utf8(d).unwrap_or("0");
            let n: f64 = match s {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                "nan" | "-nan" => f64::NAN,
                _ => s.parse().unwrap_or(0.0),
            };
            t.raw_set("double", n)?;
            Value::Table(t)
        }
        Frame::BigNumber(b) => {
            let t = lua.create_table()?;
            t.raw_set("big_number", lua.create_string(b)?)?;
            Value::Table(t)
        }
        Frame::Verbatim { format, data } => {
            let inner = lua.create_table()?;
            inner.raw_set("string", lua.create_string(data)?)?;
            inner.raw_set("format", lua.create_string(format)?)?;
            let t = lua.create_table()?;
            t.raw_set("verbatim_string", inner)?;
            Value::Table(t)
        }
        Frame::Map(pairs) => {
            let inner = lua.create_table()?;
            for (k, v) in pairs {
                inner.raw_set(value_of(lua, k)?, value_of(lua, v)?)?;
            }
            let t = lua.create_table()?;
            t.raw_set("map", inner)?;
            Value::Table(t)
        }
        Frame::Set(items) => {
            let inner = lua.create_table()?;
            for item in items {
                inner.raw_set(value_of(lua, item)?, true)?;
            }
            let t = lua.create_table()?;
            t.raw_set("set", inner)?;
            Value::Table(t)
        }
        Frame::Attribute { frame, .. } => value_of(lua, frame)?,
    })
}

/// What an error table says, as Redis's `luaExtractErrorInformation` reads it.
pub(crate) struct ErrorInfo {
    pub(crate) msg: Option<Vec<u8>>,
    pub(crate) source: Option<Vec<u8>>,
    pub(crate) line: Option<Vec<u8>>,
}

/// Lua's `lua_tostring` for strings and numbers (numbers as `%.14g`), `None` otherwise.
pub(crate) fn lua_tostring(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Number(n) => Some(format_g(*n, 14).into_bytes()),
        Value::Integer(n) => Some(format_g(*n as f64, 14).into_bytes()),
        _ => None,
    }
}

pub(crate) fn error_info(t: &Table) -> ErrorInfo {
    let field = |name: &str| {
        t.raw_get::<Value>(name)
            .ok()
            .as_ref()
            .and_then(lua_tostring)
    };
    ErrorInfo {
        msg: field("err"),
        source: field("source"),
        line: field("line"),
    }
}

/// The reply for a script that failed with the error table `t` (Redis: `-<err>`, then
/// ` script: <name>, on <source>:<line>.` when the position is known).
pub(crate) fn script_error_reply(t: &Table, funcname: &str) -> Frame {
    let info = error_info(t);
    let Some(msg) = info.msg else {
        // Redis 7.0.15 crashes on an error table without `err`; we answer instead.
        return Frame::Error(Bytes::from_static(
            b"ERR Error running script: the error object has no 'err' field",
        ));
    };
    let mut out = Vec::with_capacity(msg.len() + 64);
    out.extend_from_slice(&msg);
    if let (Some(source), Some(line)) = (info.source, info.line) {
        out.extend_from_slice(b" script: ");
        out.extend_from_slice(funcname.as_bytes());
        out.extend_from_slice(b", on ");
        out.extend_from_slice(&source);
        out.push(b':');
        out.extend_from_slice(&line);
        out.push(b'.');
    }
    error_frame(out)
}

/// An error reply with Redis's sanitising (CR and LF become spaces) and `ERR` for an empty
/// text (Redis's `addReplyErrorLength`).
pub(crate) fn error_frame(mut text: Vec<u8>) -> Frame {
    for b in text.iter_mut() {
        if *b == b'\r' || *b == b'\n' {
            *b = b' ';
        }
    }
    Frame::Error(Bytes::from(text))
}

/// The script's result to the client's reply (Redis's `luaReplyToRedisReply`). `client_resp`
/// is the client's protocol, `script_resp` what the script chose with `redis.setresp` (it
/// decides how booleans are sent).
/// The field names of special reply tables, interned once per state (looking a field up by
/// a Rust `&str` would intern the name again on every lookup).
pub(crate) struct ReplyKeys {
    err: mlua::String,
    ok: mlua::String,
    double: mlua::String,
    big_number: mlua::String,
    verbatim_string: mlua::String,
    map: mlua::String,
    set: mlua::String,
    format: mlua::String,
    string: mlua::String,
}

impl ReplyKeys {
    pub(crate) fn new(lua: &Lua) -> mlua::Result<ReplyKeys> {
        Ok(ReplyKeys {
            err: lua.create_string("err")?,
            ok: lua.create_string("ok")?,
            double: lua.create_string("double")?,
            big_number: lua.create_string("big_number")?,
            verbatim_string: lua.create_string("verbatim_string")?,
            map: lua.create_string("map")?,
            set: lua.create_string("set")?,
            format: lua.create_string("format")?,
            string: lua.create_string("string")?,
        })
    }
}

pub(crate) fn lua_to_reply(k: &ReplyKeys, v: &Value, client_resp: u8, script_resp: u8) -> Frame {
    match to_reply(k, v, client_resp, script_resp, 0) {
        Ok(f) => f,
        Err(Deep) => Frame::Error(Bytes::from_static(b"ERR reached lua stack limit")),
    }
}

struct Deep;

fn null(resp: u8) -> Frame {
    if resp == 3 {
        Frame::Null
    } else {
        Frame::NullBulk
    }
}

fn to_reply(k: &ReplyKeys, v: &Value, resp: u8, sresp: u8, depth: usize) -> Result<Frame, Deep> {
    if depth > MAX_REPLY_DEPTH {
        return Err(Deep);
    }
    Ok(match v {
        Value::String(s) => Frame::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Boolean(b) => {
            if sresp == 2 {
                if *b {
                    Frame::Integer(1)
                } else {
                    null(resp)
                }
            } else if resp == 3 {
                Frame::Boolean(*b)
            } else {
                Frame::Integer(i64::from(*b))
            }
        }
        Value::Number(n) => Frame::Integer(c_cast_i64(*n)),
        Value::Integer(n) => Frame::Integer(*n),
        Value::Table(t) => table_reply(k, t, resp, sresp, depth)?,
        _ => null(resp),
    })
}

fn raw_field(t: &Table, name: &mlua::String) -> Value {
    t.raw_get::<Value>(name).unwrap_or(Value::Nil)
}

fn table_reply(k: &ReplyKeys, t: &Table, resp: u8, sresp: u8, depth: usize) -> Result<Frame, Deep> {
    if let Value::String(e) = raw_field(t, &k.err) {
        let mut text = Vec::with_capacity(e.as_bytes().len());
        text.extend_from_slice(&e.as_bytes());
        return Ok(error_frame(text));
    }
    if let Value::String(s) = raw_field(t, &k.ok) {
        let mut text = s.as_bytes().to_vec();
        for b in text.iter_mut() {
            if *b == b'\r' || *b == b'\n' {
                *b = b' ';
            }
        }
        return Ok(Frame::Simple(Bytes::from(text)));
    }
    match raw_field(t, &k.double) {
        Value::Number(d) => return Ok(double_reply(d, resp)),
        Value::Integer(d) => return Ok(double_reply(d as f64, resp)),
        _ => {}
    }
    if let Value::String(s) = raw_field(t, &k.big_number) {
        let b = Bytes::copy_from_slice(&s.as_bytes());
        return Ok(if resp == 3 {
            Frame::BigNumber(b)
        } else {
            Frame::Bulk(b)
        });
    }
    if let Value::Table(vs) = raw_field(t, &k.verbatim_string) {
        if let (Value::String(format), Value::String(s)) =
            (raw_field(&vs, &k.format), raw_field(&vs, &k.string))
        {
            let data = Bytes::copy_from_slice(&s.as_bytes());
            if resp == 3 {
                let f = format.as_bytes();
                let mut fmt = [0u8; 3];
                for (i, slot) in fmt.iter_mut().enumerate() {
                    *slot = f.get(i).copied().unwrap_or(0);
                }
                return Ok(Frame::Verbatim { format: fmt, data });
            }
            return Ok(Frame::Bulk(data));
        }
    }
    if let Value::Table(m) = raw_field(t, &k.map) {
        let mut pairs = Vec::new();
        for pair in m.pairs::<Value, Value>() {
            let Ok((key, v)) = pair else { break };
            pairs.push((
                to_reply(k, &key, resp, sresp, depth + 1)?,
                to_reply(k, &v, resp, sresp, depth + 1)?,
            ));
        }
        return Ok(if resp == 3 {
            Frame::Map(pairs)
        } else {
            Frame::Array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect())
        });
    }
    if let Value::Table(s) = raw_field(t, &k.set) {
        let mut items = Vec::new();
        for pair in s.pairs::<Value, Value>() {
            let Ok((key, _)) = pair else { break };
            items.push(to_reply(k, &key, resp, sresp, depth + 1)?);
        }
        return Ok(if resp == 3 {
            Frame::Set(items)
        } else {
            Frame::Array(items)
        });
    }
    let mut items = Vec::new();
    let mut i = 1;
    loop {
        let v: Value = t.raw_get(i).unwrap_or(Value::Nil);
        if v.is_nil() {
            break;
        }
        items.push(to_reply(k, &v, resp, sresp, depth + 1)?);
        i += 1;
    }
    Ok(Frame::Array(items))
}

/// Redis's `addReplyDouble`: `%.17g`, a bulk string in RESP2, a double in RESP3.
pub(crate) fn double_reply(d: f64, resp: u8) -> Frame {
    let text = Bytes::from(format_g(d, 17));
    if resp == 3 {
        Frame::Double(text)
    } else {
        Frame::Bulk(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_like_redis() {
        assert_eq!(error_table_text(b"-My Error"), b"My Error");
        assert_eq!(error_table_text(b"-"), b"ERR ");
        assert_eq!(error_table_text(b"-X"), b"ERR X");
        assert_eq!(error_table_text(b"plain text"), b"ERR plain text");
        assert_eq!(
            error_table_text(b"-WRONGTYPE Operation\r\n"),
            b"WRONGTYPE Operation"
        );
    }
}
