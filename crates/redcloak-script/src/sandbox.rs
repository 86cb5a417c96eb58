//! The base functions the sandbox must replace so that they see through the read-only
//! proxies of `prelude.lua` (and refuse to write to them), written as Rust (C) functions:
//! a Lua wrapper would be replaced by the caller's frame in a tail call (`return pairs(x)`)
//! and its argument errors would then lose the script's position.

use mlua::{Function, Lua, MultiValue, Table, Value, Variadic};

use crate::vm::{arg_error, lua_error, raise, type_name, unwrap_error, Raise, RunCtx};

const READONLY: &[u8] = b"Attempt to modify a readonly table";

fn arg(args: &[Value], n: usize) -> Option<&Value> {
    args.get(n - 1)
}

fn got(args: &[Value], n: usize) -> &'static str {
    arg(args, n).map_or("no value", type_name)
}

fn check_table(lua: &Lua, args: &[Value], n: usize) -> mlua::Result<Table> {
    match arg(args, n) {
        Some(Value::Table(t)) => Ok(t.clone()),
        _ => arg_error(lua, n, &format!("table expected, got {}", got(args, n))),
    }
}

fn check_any(lua: &Lua, args: &[Value], n: usize) -> mlua::Result<Value> {
    match arg(args, n) {
        Some(v) => Ok(v.clone()),
        None => arg_error(lua, n, "value expected"),
    }
}

/// Lua's `luaL_checkint` on an optional argument: `None` when absent or nil.
fn opt_int(lua: &Lua, args: &[Value], n: usize) -> mlua::Result<Option<i64>> {
    match arg(args, n) {
        None | Some(Value::Nil) => Ok(None),
        Some(v) => match crate::vm::to_number(v) {
            Some(x) => Ok(Some(crate::numfmt::c_cast_i64(x))),
            None => arg_error(lua, n, &format!("number expected, got {}", type_name(v))),
        },
    }
}

/// The real table behind a proxy, or `None` for any other value.
fn real_of(real_of: &Table, v: &Table) -> Option<Table> {
    real_of.raw_get::<Option<Table>>(v.clone()).ok().flatten()
}

fn readonly<T>() -> mlua::Result<T> {
    raise(Raise::Str(READONLY.to_vec()))
}

fn killed(lua: &Lua) -> bool {
    lua.app_data_ref::<RunCtx>().is_some_and(|c| c.killed)
}

/// Installs the replacements into the real globals, `table` and `coroutine`.
pub(crate) fn install(
    lua: &Lua,
    real_g: &Table,
    real_of_t: &Table,
    shown_mt: &Table,
) -> mlua::Result<()> {
    let base_next: Function = real_g.raw_get("next")?;
    let base_getmetatable: Function = real_g.raw_get("getmetatable")?;
    let base_loadstring: Function = lua.named_registry_value("redcloak.loadstring")?;

    let ro = real_of_t.clone();
    real_g.raw_set(
        "rawget",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let t = check_table(lua, &args, 1)?;
            let k = check_any(lua, &args, 2)?;
            let target = real_of(&ro, &t).unwrap_or(t);
            target.raw_get::<Value>(k)
        })?,
    )?;
    let ro = real_of_t.clone();
    real_g.raw_set(
        "rawset",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let t = check_table(lua, &args, 1)?;
            let k = check_any(lua, &args, 2)?;
            let v = check_any(lua, &args, 3)?;
            if real_of(&ro, &t).is_some() {
                return readonly();
            }
            match &k {
                Value::Nil => return raise(Raise::Str(b"table index is nil".to_vec())),
                Value::Number(n) if n.is_nan() => {
                    return raise(Raise::Str(b"table index is NaN".to_vec()))
                }
                _ => {}
            }
            t.raw_set(k, v)?;
            Ok(t)
        })?,
    )?;
    let ro = real_of_t.clone();
    let bn = base_next.clone();
    let next = lua.create_function(move |lua, args: Variadic<Value>| {
        let t = check_table(lua, &args, 1)?;
        let k = arg(&args, 2).cloned().unwrap_or(Value::Nil);
        let target = real_of(&ro, &t).unwrap_or(t);
        match bn.call::<MultiValue>((target, k)) {
            Ok(v) => Ok(v),
            // "invalid key to 'next'", raised in C: no position
            Err(_) => raise(Raise::Str(b"invalid key to 'next'".to_vec())),
        }
    })?;
    real_g.raw_set("next", next.clone())?;
    let ro = real_of_t.clone();
    real_g.raw_set(
        "pairs",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let t = check_table(lua, &args, 1)?;
            // A proxy iterates its real table; any other table uses the base `next`.
            let iter = if real_of(&ro, &t).is_some() {
                next.clone()
            } else {
                base_next.clone()
            };
            Ok((iter, t, Value::Nil))
        })?,
    )?;
    let ro = real_of_t.clone();
    real_g.raw_set(
        "setmetatable",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let t = check_table(lua, &args, 1)?;
            let mt = match arg(&args, 2) {
                Some(Value::Table(mt)) => Some(mt.clone()),
                Some(Value::Nil) => None,
                _ => return arg_error(lua, 2, "nil or table expected"),
            };
            if real_of(&ro, &t).is_some() {
                return readonly();
            }
            let protected = t.metatable().is_some_and(|m| {
                !m.raw_get::<Value>("__metatable")
                    .unwrap_or(Value::Nil)
                    .is_nil()
            });
            if protected {
                return lua_error(lua, "cannot change a protected metatable");
            }
            t.set_metatable(mt)?;
            Ok(t)
        })?,
    )?;
    let ro = real_of_t.clone();
    let shown = shown_mt.clone();
    real_g.raw_set(
        "getmetatable",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let v = check_any(lua, &args, 1)?;
            if let Value::Table(t) = &v {
                if real_of(&ro, t).is_some() {
                    return shown.raw_get::<Value>(t.clone());
                }
            }
            base_getmetatable.call::<Value>(v)
        })?,
    )?;

    // table.insert / table.remove refuse read-only tables.
    let table_lib: Table = real_of(real_of_t, &real_g.raw_get::<Table>("table")?)
        .ok_or_else(|| mlua::Error::runtime("table library is not protected"))?;
    let tinsert: Function = table_lib.raw_get("insert")?;
    let tremove: Function = table_lib.raw_get("remove")?;
    let ro = real_of_t.clone();
    table_lib.raw_set(
        "insert",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let t = check_table(lua, &args, 1)?;
            match args.len() {
                2 => {}
                3 => {
                    opt_int(lua, &args, 2)?;
                }
                _ => return lua_error(lua, "wrong number of arguments to 'insert'"),
            }
            if real_of(&ro, &t).is_some() {
                return readonly();
            }
            tinsert.call::<()>(args)
        })?,
    )?;
    let ro = real_of_t.clone();
    table_lib.raw_set(
        "remove",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let t = check_table(lua, &args, 1)?;
            opt_int(lua, &args, 2)?;
            if real_of(&ro, &t).is_some() {
                return readonly();
            }
            tremove.call::<MultiValue>(args)
        })?,
    )?;

    // coroutine.resume: an error inside the coroutine is given back as Redis would see it,
    // and a killed script stays killed.
    let co_lib: Table = real_of(real_of_t, &real_g.raw_get::<Table>("coroutine")?)
        .ok_or_else(|| mlua::Error::runtime("coroutine library is not protected"))?;
    let resume: Function = co_lib.raw_get("resume")?;
    co_lib.raw_set(
        "resume",
        lua.create_function(move |lua, args: Variadic<Value>| {
            if !matches!(arg(&args, 1), Some(Value::Thread(_))) {
                return arg_error(lua, 1, "coroutine expected");
            }
            let mut out = resume.call::<MultiValue>(args)?;
            if matches!(out.front(), Some(Value::Boolean(false))) {
                if killed(lua) {
                    return raise(Raise::Killed);
                }
                if let Some(e) = out.pop_back() {
                    out.push_back(unwrap_error(lua, e)?);
                }
            }
            Ok(out)
        })?,
    )?;

    // loadstring / load: text only (Redis never loads bytecode: a chunk starting with ESC is
    // a syntax error).
    let ls = base_loadstring.clone();
    let text_load = move |lua: &Lua, code: mlua::String, name: Value| -> mlua::Result<MultiValue> {
        if code.as_bytes().first() == Some(&27) {
            let name = if name.is_nil() {
                Value::String(code.clone())
            } else {
                name
            };
            let (_, e): (Value, mlua::String) = ls.call((lua.create_string("\x01")?, name))?;
            let e = e.as_bytes();
            let e = e.strip_suffix(b"'char(1)'").map_or_else(
                || e.to_vec(),
                |head| [head, b"'char(27)'".as_slice()].concat(),
            );
            return Ok(MultiValue::from_iter([
                Value::Nil,
                Value::String(lua.create_string(e)?),
            ]));
        }
        ls.call::<MultiValue>((code, name))
    };
    let tl = text_load.clone();
    real_g.raw_set(
        "loadstring",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let code = match arg(&args, 1) {
                Some(Value::String(s)) => s.clone(),
                Some(v @ (Value::Number(_) | Value::Integer(_))) => {
                    lua.create_string(crate::convert::lua_tostring(v).unwrap_or_default())?
                }
                _ => return arg_error(lua, 1, &format!("string expected, got {}", got(&args, 1))),
            };
            let name = match arg(&args, 2) {
                None | Some(Value::Nil) => Value::Nil,
                Some(v @ (Value::String(_) | Value::Number(_) | Value::Integer(_))) => v.clone(),
                Some(v) => {
                    return arg_error(lua, 2, &format!("string expected, got {}", type_name(v)))
                }
            };
            tl(lua, code, name)
        })?,
    )?;
    real_g.raw_set(
        "load",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let Some(Value::Function(reader)) = arg(&args, 1) else {
                return arg_error(lua, 1, &format!("function expected, got {}", got(&args, 1)));
            };
            let name = match arg(&args, 2) {
                None | Some(Value::Nil) => Value::String(lua.create_string("=(load)")?),
                Some(v) => v.clone(),
            };
            let mut code = Vec::new();
            loop {
                match reader.call::<Value>(()) {
                    Ok(Value::Nil) => break,
                    Ok(Value::String(s)) if s.as_bytes().is_empty() => break,
                    Ok(Value::String(s)) => code.extend_from_slice(&s.as_bytes()),
                    Ok(_) => {
                        return Ok(MultiValue::from_iter([
                            Value::Nil,
                            Value::String(
                                lua.create_string("reader function must return a string")?,
                            ),
                        ]))
                    }
                    Err(e) => {
                        let e = unwrap_error(lua, Value::Error(Box::new(e)))?;
                        return Ok(MultiValue::from_iter([Value::Nil, e]));
                    }
                }
            }
            text_load(lua, lua.create_string(&code)?, name)
        })?,
    )?;
    Ok(())
}
