//! `struct`: binary packing as Redis bundles it (Roberto Ierusalimschy's `struct` library's
//! API and behaviour), written for redcloak.
//!
//! Formats: `<` `>` endianness (little by default), `!n` maximum alignment (none by default,
//! `!` alone is 8), `x` a zero byte, `b B h H l L T` 1/2/8/8-byte integers and `size_t`,
//! `i I` with an optional size (default 4, at most 32), `f d` floats, `cN` N bytes (`c0`:
//! the string's length when packing, the previous number when unpacking), `s` a
//! zero-terminated string, spaces ignored.

use mlua::{Lua, Table, Value, Variadic};

use crate::vm::{arg_error, check_number, lua_error, type_name};

const MAX_INT_SIZE: usize = 32;
const MAX_ALIGN: usize = 8;

struct Header {
    little: bool,
    align: usize,
}

impl Header {
    fn new() -> Header {
        Header {
            little: true,
            align: 1,
        }
    }
}

fn check_str(lua: &Lua, args: &[Value], n: usize) -> mlua::Result<Vec<u8>> {
    match args.get(n - 1) {
        Some(Value::String(s)) => Ok(s.as_bytes().to_vec()),
        Some(v @ (Value::Number(_) | Value::Integer(_))) => {
            Ok(crate::convert::lua_tostring(v).unwrap_or_default())
        }
        Some(v) => arg_error(lua, n, &format!("string expected, got {}", type_name(v))),
        None => arg_error(lua, n, "string expected, got no value"),
    }
}

/// Digits after an option, or `default`.
fn get_num(lua: &Lua, fmt: &[u8], i: &mut usize, default: usize) -> mlua::Result<usize> {
    if !fmt.get(*i).is_some_and(u8::is_ascii_digit) {
        return Ok(default);
    }
    let mut a: usize = 0;
    while let Some(&d) = fmt.get(*i).filter(|d| d.is_ascii_digit()) {
        let d = usize::from(d - b'0');
        if a > (i32::MAX as usize) / 10 || a * 10 > (i32::MAX as usize) - d {
            return lua_error(lua, "integral size overflow");
        }
        a = a * 10 + d;
        *i += 1;
    }
    Ok(a)
}

fn opt_size(lua: &Lua, opt: u8, fmt: &[u8], i: &mut usize) -> mlua::Result<usize> {
    Ok(match opt {
        b'B' | b'b' | b'x' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' => 4,
        b'c' => get_num(lua, fmt, i, 1)?,
        b'i' | b'I' => {
            let size = get_num(lua, fmt, i, 4)?;
            if size > MAX_INT_SIZE {
                return lua_error(
                    lua,
                    &format!("integral size {size} is larger than limit of {MAX_INT_SIZE}"),
                );
            }
            size
        }
        _ => 0,
    })
}

fn to_align(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size - (len & (size - 1))) & (size - 1)
}

fn control(lua: &Lua, opt: u8, fmt: &[u8], i: &mut usize, h: &mut Header) -> mlua::Result<()> {
    match opt {
        b' ' => Ok(()),
        b'>' => {
            h.little = false;
            Ok(())
        }
        b'<' => {
            h.little = true;
            Ok(())
        }
        b'!' => {
            let a = get_num(lua, fmt, i, MAX_ALIGN)?;
            if !a.is_power_of_two() {
                return lua_error(lua, &format!("alignment {a} is not a power of 2"));
            }
            h.align = a;
            Ok(())
        }
        other => arg_error(
            lua,
            1,
            &format!("invalid format option '{}'", char::from(other)),
        ),
    }
}

const TWO_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_64: f64 = 18_446_744_073_709_551_616.0;

/// C's conversion of a Lua number to the library's unsigned 64-bit integer, as gcc does it
/// on x86-64: negative numbers through `int64_t`, 2^63..2^64 by offset, and 0 from 2^64 on
/// (NaN and anything else out of range: 2^63).
fn to_u64(n: f64) -> u64 {
    if n < 0.0 {
        crate::numfmt::c_cast_i64(n) as u64
    } else if n < TWO_63 {
        n as u64
    } else if n < TWO_64 {
        ((n - TWO_63) as u64) | (1 << 63)
    } else if n.is_nan() {
        1 << 63
    } else {
        0
    }
}

fn put_integer(out: &mut Vec<u8>, n: f64, little: bool, size: usize) {
    let mut value = to_u64(n);
    let mut buf = vec![0u8; size];
    if little {
        for b in buf.iter_mut() {
            *b = value as u8;
            value = value.checked_shr(8).unwrap_or(0);
        }
    } else {
        for b in buf.iter_mut().rev() {
            *b = value as u8;
            value = value.checked_shr(8).unwrap_or(0);
        }
    }
    out.extend_from_slice(&buf);
}

fn get_integer(buf: &[u8], little: bool, signed: bool) -> f64 {
    let mut l: u64 = 0;
    let mut push = |b: u8| l = (l.wrapping_shl(8)) | u64::from(b);
    if little {
        buf.iter().rev().for_each(|&b| push(b));
    } else {
        buf.iter().for_each(|&b| push(b));
    }
    if !signed {
        return l as f64;
    }
    let shift = (buf.len() * 8).wrapping_sub(1) as u32;
    let mask = u64::MAX.wrapping_shl(shift);
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

fn pack(lua: &Lua, mut args: Variadic<Value>) -> mlua::Result<mlua::String> {
    let fmt = check_str(lua, &args, 1)?;
    // The library pushes a nil after its arguments: one missing argument reads as nil.
    args.push(Value::Nil);
    let mut h = Header::new();
    let mut arg = 2;
    let mut out = Vec::new();
    let mut i = 0;
    while i < fmt.len() {
        let opt = fmt[i];
        i += 1;
        let mut size = opt_size(lua, opt, &fmt, &mut i)?;
        let pad = to_align(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = check_number(lua, &args, arg)?;
                arg += 1;
                put_integer(&mut out, n, h.little, size);
            }
            b'x' => out.push(0),
            b'f' => {
                let f = check_number(lua, &args, arg)? as f32;
                arg += 1;
                let b = if h.little {
                    f.to_le_bytes()
                } else {
                    f.to_be_bytes()
                };
                out.extend_from_slice(&b);
            }
            b'd' => {
                let d = check_number(lua, &args, arg)?;
                arg += 1;
                let b = if h.little {
                    d.to_le_bytes()
                } else {
                    d.to_be_bytes()
                };
                out.extend_from_slice(&b);
            }
            b'c' | b's' => {
                let s = check_str(lua, &args, arg)?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // lua's struct reports the argument after the string
                    return arg_error(lua, arg, "string too short");
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => control(lua, opt, &fmt, &mut i, &mut h)?,
        }
    }
    lua.create_string(&out)
}

fn unpack(lua: &Lua, args: Variadic<Value>) -> mlua::Result<Variadic<Value>> {
    let fmt = check_str(lua, &args, 1)?;
    let data = check_str(lua, &args, 2)?;
    let ld = data.len();
    let start = match args.get(2) {
        None | Some(Value::Nil) => 1,
        Some(_) => check_number(lua, &args, 3)? as i64,
    };
    if start < 1 {
        return arg_error(lua, 3, "offset must be 1 or greater");
    }
    let mut pos = (start - 1) as usize;
    let mut h = Header::new();
    let mut out: Variadic<Value> = Variadic::new();
    let mut refs = 0;
    let mut i = 0;
    while i < fmt.len() {
        let opt = fmt[i];
        i += 1;
        let mut size = opt_size(lua, opt, &fmt, &mut i)?;
        pos += to_align(pos, &h, opt, size);
        if pos.saturating_add(size) > ld {
            return arg_error(lua, 2, "data string too short");
        }
        if out.len() >= super::MAX_RESULTS || refs >= super::MAX_REF_RESULTS {
            return lua_error(lua, "stack overflow (too many results)");
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let signed = opt.is_ascii_lowercase();
                out.push(Value::Number(get_integer(
                    &data[pos..pos + size],
                    h.little,
                    signed,
                )));
            }
            b'x' => {}
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[pos..pos + 4]);
                let f = if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                out.push(Value::Number(f64::from(f)));
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[pos..pos + 8]);
                let d = if h.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                out.push(Value::Number(d));
            }
            b'c' => {
                if size == 0 {
                    let prev = out.last().and_then(crate::vm::to_number);
                    let Some(n) = prev else {
                        return lua_error(lua, "format 'c0' needs a previous size");
                    };
                    out.pop();
                    size = n as usize;
                    if pos.saturating_add(size) > ld {
                        return arg_error(lua, 2, "data string too short");
                    }
                }
                out.push(Value::String(lua.create_string(&data[pos..pos + size])?));
                refs += 1;
            }
            b's' => {
                let Some(end) = data[pos..].iter().position(|&b| b == 0) else {
                    return lua_error(lua, "unfinished string in data");
                };
                out.push(Value::String(lua.create_string(&data[pos..pos + end])?));
                refs += 1;
                size = end + 1;
            }
            _ => control(lua, opt, &fmt, &mut i, &mut h)?,
        }
        pos += size;
    }
    out.push(Value::Number((pos + 1) as f64));
    Ok(out)
}

fn size(lua: &Lua, args: Variadic<Value>) -> mlua::Result<f64> {
    let fmt = check_str(lua, &args, 1)?;
    let mut h = Header::new();
    let mut pos = 0usize;
    let mut i = 0;
    while i < fmt.len() {
        let opt = fmt[i];
        i += 1;
        let size = opt_size(lua, opt, &fmt, &mut i)?;
        pos += to_align(pos, &h, opt, size);
        if opt == b's' {
            return arg_error(lua, 1, "option 's' has no fixed size");
        } else if opt == b'c' && size == 0 {
            return arg_error(lua, 1, "option 'c0' has no fixed size");
        }
        if !opt.is_ascii_alphanumeric() {
            control(lua, opt, &fmt, &mut i, &mut h)?;
        }
        pos += size;
    }
    Ok(pos as f64)
}

pub(crate) fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", lua.create_function(pack)?)?;
    t.raw_set("unpack", lua.create_function(unpack)?)?;
    t.raw_set("size", lua.create_function(size)?)?;
    Ok(t)
}
