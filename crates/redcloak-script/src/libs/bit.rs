//! `bit`: LuaBitOp's API with its 32-bit semantics (results are signed 32-bit numbers).

use mlua::{Lua, Table, Value, Variadic};

use crate::vm::check_number;

/// LuaBitOp's normalisation: the number rounded (half to even) and reduced modulo 2^32, by
/// adding 2^52 + 2^51 and keeping the low 32 bits of the double's mantissa.
pub(crate) fn tobit(x: f64) -> i32 {
    let t = x + 6_755_399_441_055_744.0;
    t.to_bits() as u32 as i32
}

fn arg(lua: &Lua, args: &[Value], n: usize) -> mlua::Result<i32> {
    Ok(tobit(check_number(lua, args, n)?))
}

pub(crate) fn create(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    macro_rules! unary {
        ($name:literal, $f:expr) => {
            t.raw_set(
                $name,
                lua.create_function(|lua, args: Variadic<Value>| {
                    let f: fn(i32) -> i32 = $f;
                    Ok(f64::from(f(arg(lua, &args, 1)?)))
                })?,
            )?;
        };
    }
    macro_rules! fold {
        ($name:literal, $op:tt) => {
            #[allow(clippy::assign_op_pattern)]
            t.raw_set(
                $name,
                lua.create_function(|lua, args: Variadic<Value>| {
                    let mut acc = arg(lua, &args, 1)?;
                    for i in 2..=args.len() {
                        acc = acc $op arg(lua, &args, i)?;
                    }
                    Ok(f64::from(acc))
                })?,
            )?;
        };
    }
    macro_rules! shift {
        ($name:literal, $f:expr) => {
            t.raw_set(
                $name,
                lua.create_function(|lua, args: Variadic<Value>| {
                    let f: fn(i32, u32) -> i32 = $f;
                    let x = arg(lua, &args, 1)?;
                    let n = arg(lua, &args, 2)? as u32 & 31;
                    Ok(f64::from(f(x, n)))
                })?,
            )?;
        };
    }
    unary!("tobit", |x| x);
    unary!("bnot", |x| !x);
    unary!("bswap", |x| x.swap_bytes());
    fold!("band", &);
    fold!("bor", |);
    fold!("bxor", ^);
    shift!("lshift", |x, n| ((x as u32) << n) as i32);
    shift!("rshift", |x, n| ((x as u32) >> n) as i32);
    shift!("arshift", |x, n| x >> n);
    shift!("rol", |x, n| (x as u32).rotate_left(n) as i32);
    shift!("ror", |x, n| (x as u32).rotate_right(n) as i32);
    t.raw_set(
        "tohex",
        lua.create_function(|lua, args: Variadic<Value>| {
            let mut b = arg(lua, &args, 1)? as u32;
            let mut n = if matches!(args.get(1), None | Some(Value::Nil)) && args.len() < 2 {
                8
            } else {
                arg(lua, &args, 2)?
            };
            let digits: &[u8; 16] = if n < 0 {
                n = n.wrapping_neg();
                b"0123456789ABCDEF"
            } else {
                b"0123456789abcdef"
            };
            let n = n.clamp(0, 8) as usize;
            let mut buf = [0u8; 8];
            for slot in buf[..n].iter_mut().rev() {
                *slot = digits[(b & 15) as usize];
                b >>= 4;
            }
            lua.create_string(&buf[..n])
        })?,
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tobit_wraps_like_luabitop() {
        assert_eq!(tobit(0xffff_ffffu32 as f64), -1);
        assert_eq!(tobit(2f64.powi(32) + 5.0), 5);
        assert_eq!(tobit(-1.0), -1);
        assert_eq!(tobit(1.5), 2);
        assert_eq!(tobit(2.5), 2);
    }
}
