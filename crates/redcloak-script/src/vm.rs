//! One sandboxed Lua 5.1 state set up like Redis 7.0's, and the `redis` API inside it.
//!
//! # Errors raised from Rust
//! mlua turns an error returned by a Rust callback into a userdata, not into the string or
//! table Redis's C functions raise. Every callback therefore raises a [`Raise`], and the few
//! places where Lua code can see an error value (the message handler of a run, `pcall`,
//! `xpcall`, `coroutine.resume`) convert it with [`unwrap_error`] into what Redis would have
//! raised: an error table `{err = …}` or a string.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{
    ChunkMode, Function, HookTriggers, LightUserData, Lua, LuaOptions, MultiValue, StdLib, Table,
    Value, Variadic, VmState,
};
use sha1::{Digest, Sha1};

use crate::backend::{Backend, CallContext, LogLevel};
use crate::convert::{error_table_text, frame_to_lua, lua_tostring, new_error_table};
use crate::numfmt::format_g;

/// The chunk name of redcloak's own Lua code; its frames never count as error positions.
const INTERNAL_CHUNK: &str = "=redcloak";

/// Globals of Lua 5.1's base library that Redis 7.0 does not expose.
const REMOVED_GLOBALS: &[&str] = &[
    "print", "dofile", "loadfile", "getfenv", "setfenv", "newproxy", "module", "require",
    "package", "io", "os", "debug",
];

/// An error a Rust callback raises into Lua, in the form Redis's C code would raise it.
#[derive(Debug)]
pub(crate) enum Raise {
    /// An error table `{err = <text>}`; `ignore_stats` adds `ignore_error_stats_update`.
    Table { err: Vec<u8>, ignore_stats: bool },
    /// A string error (already carrying its `source:line:` prefix if it has one).
    Str(Vec<u8>),
    /// The script ran out of time: nothing may catch this.
    Killed,
}

impl std::fmt::Display for Raise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Raise::Table { err, .. } | Raise::Str(err) => {
                f.write_str(&String::from_utf8_lossy(err))
            }
            Raise::Killed => f.write_str("script killed"),
        }
    }
}

impl std::error::Error for Raise {}

pub(crate) fn raise<T>(r: Raise) -> mlua::Result<T> {
    Err(mlua::Error::external(r))
}

fn raise_table<T>(err: &str) -> mlua::Result<T> {
    raise(Raise::Table {
        err: error_table_text(err.as_bytes()),
        ignore_stats: false,
    })
}

fn find_raise(e: &mlua::Error) -> Option<&Raise> {
    match e {
        mlua::Error::CallbackError { cause, .. } => find_raise(cause),
        mlua::Error::WithContext { cause, .. } => find_raise(cause),
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<Raise>(),
        _ => None,
    }
}

fn is_memory_error(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => {
            is_memory_error(cause)
        }
        _ => false,
    }
}

/// Converts an error value as Lua code would have seen it in Redis. `Killed` is raised again.
pub(crate) fn unwrap_error(lua: &Lua, v: Value) -> mlua::Result<Value> {
    let Value::Error(e) = v else { return Ok(v) };
    match find_raise(&e) {
        Some(Raise::Table { err, ignore_stats }) => {
            Ok(Value::Table(new_error_table(lua, err, *ignore_stats)?))
        }
        Some(Raise::Str(s)) => Ok(Value::String(lua.create_string(s)?)),
        Some(Raise::Killed) => raise(Raise::Killed),
        None if is_memory_error(&e) => Ok(Value::String(lua.create_string("not enough memory")?)),
        None => Ok(Value::String(lua.create_string(e.to_string())?)),
    }
}

/// Which kind of state: EVAL scripts, or function libraries (FUNCTION LOAD / FCALL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Eval,
    Functions,
}

/// A function registered by `redis.register_function` while a library loads.
pub(crate) struct Registration {
    pub(crate) name: String,
    pub(crate) callback: Function,
    pub(crate) flags: crate::engine::ScriptFlags,
    pub(crate) description: Option<Vec<u8>>,
}

/// Per-run state the callbacks and the hook read (Lua app data).
pub(crate) struct RunCtx {
    pub(crate) resp: u8,
    pub(crate) read_only: bool,
    pub(crate) deadline: Option<Instant>,
    pub(crate) killed: bool,
    /// While a library loads: what it registered, or the first registration error.
    pub(crate) registrations: Option<Vec<Registration>>,
    /// A run is in progress: redis.pcall is the run's, wired to its backend.
    pub(crate) in_run: bool,
}

/// First argument of redis.pcall meaning "this is redis.log" / "redis.acl_check_cmd" (a
/// light userdata: scripts can make none but cjson.null, the null pointer).
const BRIDGE_LOG: LightUserData = LightUserData(std::ptr::without_provenance_mut(1));
const BRIDGE_ACL: LightUserData = LightUserData(std::ptr::without_provenance_mut(2));

/// The version Redis reports to scripts (`redis.REDIS_VERSION`, `redis.REDIS_VERSION_NUM`).
#[derive(Debug, Clone)]
pub(crate) struct Version {
    pub(crate) text: String,
    pub(crate) num: u32,
}

pub(crate) struct Vm {
    pub(crate) lua: Lua,
    /// The real globals table (user code sees the read-only proxy `globals`).
    pub(crate) real_g: Table,
    /// The real `redis` table, where the per-run functions go.
    pub(crate) redis: Table,
    /// The metatable of the globals proxy: its `__index` is swapped while a library loads.
    globals_mt: Table,
    /// Load-time globals (function libraries only).
    load_g: Option<Table>,
    /// `xpcall(f, handler, ...)` with Redis's message handler.
    runner: Function,
    key_call: mlua::String,
    key_pcall: mlua::String,
}

impl Vm {
    pub(crate) fn new(
        kind: Kind,
        rng: Arc<AtomicU64>,
        version: &Version,
        memory_limit: usize,
    ) -> mlua::Result<Vm> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        lua.set_app_data(RunCtx {
            resp: 2,
            read_only: false,
            deadline: None,
            killed: false,
            registrations: None,
            in_run: false,
        });
        let real_g = lua.globals();
        for name in REMOVED_GLOBALS {
            real_g.raw_set(*name, Value::Nil)?;
        }

        install_math(&lua, &real_g, rng)?;
        crate::libs::install(&lua, &real_g)?;
        let redis = lua.create_table()?;
        install_redis_api(&lua, &redis, version)?;
        if kind == Kind::Functions {
            // Functions see no debugger entry points and no replicate_commands.
            for name in ["breakpoint", "debug", "replicate_commands"] {
                redis.raw_set(name, Value::Nil)?;
            }
        }
        real_g.raw_set("redis", redis.clone())?;

        let handler = lua.create_function(error_handler)?;
        if kind == Kind::Eval {
            real_g.raw_set("__redis__err__handler", handler.clone())?;
        }

        let unwrap = lua.create_function(|lua, v: Value| unwrap_error(lua, v))?;
        // A script that ran out of time stays dead: a caught error is raised again.
        let check_killed = lua.create_function(|lua, ()| {
            let killed = lua.app_data_ref::<RunCtx>().is_some_and(|c| c.killed);
            if killed {
                return raise(Raise::Killed);
            }
            Ok(())
        })?;
        let prelude: (Table, Function, Table, Table) = lua
            .load(include_str!("prelude.lua"))
            .set_name(INTERNAL_CHUNK)
            .set_mode(ChunkMode::Text)
            .call((real_g.clone(), unwrap, check_killed))?;
        let (globals, protect, real_of, shown_mt) = prelude;
        crate::sandbox::install(&lua, &real_g, &real_of, &shown_mt)?;
        let globals_mt = globals
            .metatable()
            .ok_or_else(|| mlua::Error::runtime("globals proxy without metatable"))?;

        let load_g = if kind == Kind::Functions {
            // At load time a library sees only `redis.register_function`, `redis.log` and the
            // constants; Redis swaps the globals' __index the same way.
            let load_redis = lua.create_table()?;
            for name in [
                "log",
                "LOG_DEBUG",
                "LOG_VERBOSE",
                "LOG_NOTICE",
                "LOG_WARNING",
                "REDIS_VERSION",
                "REDIS_VERSION_NUM",
            ] {
                load_redis.raw_set(name, redis.raw_get::<Value>(name)?)?;
            }
            load_redis.raw_set("register_function", lua.create_function(register_function)?)?;
            // A missing field of the load-time `redis` reads as a missing global, as in Redis.
            load_redis.set_metatable(real_g.metatable())?;
            let load_g = lua.create_table()?;
            load_g.raw_set("redis", protect.call::<Table>(load_redis)?)?;
            load_g.set_metatable(real_g.metatable())?;
            Some(load_g)
        } else {
            None
        };

        lua.set_globals(globals)?;
        let runner = make_runner(&lua, &real_g)?;

        lua.set_memory_limit(memory_limit)?;
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(10_000),
            |lua, _| {
                if let Some(mut ctx) = lua.app_data_mut::<RunCtx>() {
                    if let Some(deadline) = ctx.deadline {
                        if ctx.killed || Instant::now() >= deadline {
                            ctx.killed = true;
                            drop(ctx);
                            return raise(Raise::Killed);
                        }
                    }
                }
                Ok(VmState::Continue)
            },
        )?;

        lua.set_app_data(crate::convert::ReplyKeys::new(&lua)?);
        let key_call = lua.create_string("call")?;
        let key_pcall = lua.create_string("pcall")?;
        Ok(Vm {
            key_call,
            key_pcall,
            lua,
            real_g,
            redis,
            globals_mt,
            load_g,
            runner,
        })
    }

    /// Compiles a chunk in the sandbox. Text only: a chunk starting with ESC is a syntax
    /// error, as in Redis (which never loads bytecode).
    pub(crate) fn compile(&self, code: &[u8], chunk_name: &str) -> Result<Function, Vec<u8>> {
        if code.first() == Some(&27) {
            let e = match self
                .lua
                .load(&b"\x01"[..])
                .set_name(chunk_name)
                .into_function()
            {
                Err(mlua::Error::SyntaxError { message, .. }) => message,
                _ => String::new(),
            };
            return Err(e.replace("'char(1)'", "'char(27)'").into_bytes());
        }
        // Lua's own loadstring keeps the message's bytes (mlua's errors are UTF-8 strings).
        let loadstring: Function = self
            .lua
            .named_registry_value("redcloak.loadstring")
            .map_err(|e| e.to_string().into_bytes())?;
        let code = self
            .lua
            .create_string(code)
            .map_err(|_| b"not enough memory".to_vec())?;
        match loadstring.call::<(Value, Value)>((code, chunk_name)) {
            Ok((Value::Function(f), _)) => Ok(f),
            Ok((_, msg)) => Err(lua_tostring(&msg).unwrap_or_default()),
            Err(e) if is_memory_error(&e) => Err(b"not enough memory".to_vec()),
            Err(e) => Err(e.to_string().into_bytes()),
        }
    }

    pub(crate) fn ctx<R>(&self, f: impl FnOnce(&mut RunCtx) -> R) -> R {
        let mut ctx = self
            .lua
            .app_data_mut::<RunCtx>()
            .expect("RunCtx is set when the state is created");
        f(&mut ctx)
    }

    /// Runs `f(args…)` under Redis's message handler with the backend wired into
    /// `redis.call` / `redis.pcall` / `redis.log` / `redis.acl_check_cmd`. `finish` turns the
    /// outcome (`Ok(values)` or `Err(error value)`) into a reply while the values are alive.
    pub(crate) fn run<R>(
        &self,
        f: &Function,
        args: MultiValue,
        backend: &mut dyn Backend,
        time_limit: Duration,
        finish: impl FnOnce(&Lua, Result<MultiValue, Value>) -> R,
    ) -> mlua::Result<R> {
        self.ctx(|c| {
            c.resp = 2;
            c.killed = false;
            c.in_run = true;
            c.deadline = Instant::now().checked_add(time_limit);
        });
        let backend = RefCell::new(backend);
        let out = self.lua.scope(|scope| {
            let b = &backend;
            // Only redis.call and redis.pcall are made per run (they need the backend);
            // redis.log and redis.acl_check_cmd reach the backend through redis.pcall with
            // a first argument no script can forge (see `BRIDGE_LOG`).
            self.redis.raw_set(
                self.key_call.clone(),
                scope.create_function_mut(move |lua, args: MultiValue| {
                    redis_call(lua, args, true, &mut **b.borrow_mut())
                })?,
            )?;
            self.redis.raw_set(
                self.key_pcall.clone(),
                scope.create_function_mut(move |lua, mut args: MultiValue| {
                    let backend = &mut **b.borrow_mut();
                    match args.front() {
                        Some(Value::LightUserData(p)) if p.0 == BRIDGE_LOG.0 => {
                            args.pop_front();
                            redis_log(lua, args, Some(backend)).map(|()| Value::Nil)
                        }
                        Some(Value::LightUserData(p)) if p.0 == BRIDGE_ACL.0 => {
                            args.pop_front();
                            acl_check_cmd(lua, args, backend).map(Value::Boolean)
                        }
                        _ => redis_call(lua, args, false, backend),
                    }
                })?,
            )?;
            let mut call_args = MultiValue::with_capacity(args.len() + 1);
            call_args.push_back(Value::Function(f.clone()));
            call_args.extend(args);
            let result = self.runner.call::<MultiValue>(call_args);
            let outcome = match result {
                Ok(mut values) => match values.pop_front() {
                    Some(Value::Boolean(true)) => Ok(values),
                    Some(_) => Err(values.pop_front().unwrap_or(Value::Nil)),
                    None => Err(Value::Nil),
                },
                Err(e) => Err(Value::Error(Box::new(e))),
            };
            Ok(finish(&self.lua, outcome))
        });
        self.ctx(|c| {
            c.deadline = None;
            c.in_run = false;
        });
        out
    }

    /// Loads a library chunk with the load-time globals and collects its registrations.
    pub(crate) fn load_library(
        &self,
        chunk: &Function,
        time_limit: Duration,
    ) -> Result<Vec<Registration>, Vec<u8>> {
        let Some(load_g) = &self.load_g else {
            return Err(b"ERR functions are not available in this state".to_vec());
        };
        let restore = self.globals_mt.raw_get::<Value>("__index").ok();
        let _ = self.globals_mt.raw_set("__index", load_g.clone());
        self.ctx(|c| {
            c.registrations = Some(Vec::new());
            c.killed = false;
            c.deadline = Instant::now().checked_add(time_limit);
        });
        let result = self
            .runner
            .call::<MultiValue>(Value::Function(chunk.clone()));
        let _ = self.globals_mt.raw_set(
            "__index",
            restore.unwrap_or(Value::Table(self.real_g.clone())),
        );
        let (killed, regs) = self.ctx(|c| {
            c.deadline = None;
            (c.killed, c.registrations.take())
        });
        if killed {
            return Err(b"ERR FUNCTION LOAD timeout".to_vec());
        }
        let failure = match result {
            Ok(mut values) => match values.pop_front() {
                Some(Value::Boolean(true)) => None,
                _ => Some(values.pop_front().unwrap_or(Value::Nil)),
            },
            Err(e) => Some(Value::Error(Box::new(e))),
        };
        if let Some(err) = failure {
            return Err(match err {
                Value::Table(t) => crate::convert::error_info(&t)
                    .msg
                    .unwrap_or_else(|| b"ERR unknown error".to_vec()),
                Value::String(s) if s.as_bytes().as_ref() == b"not enough memory" => {
                    b"ERR Script exceeded the memory limit of redcloak's script engine".to_vec()
                }
                other => lua_tostring(&other).unwrap_or_else(|| b"ERR unknown error".to_vec()),
            });
        }
        Ok(regs.unwrap_or_default())
    }

    /// Sets KEYS and ARGV (new tables each run, as Redis does).
    pub(crate) fn set_keys_argv(&self, keys: &[Bytes], argv: &[Bytes]) -> mlua::Result<()> {
        self.real_g.raw_set("KEYS", self.array(keys)?)?;
        self.real_g.raw_set("ARGV", self.array(argv)?)?;
        Ok(())
    }

    pub(crate) fn array(&self, items: &[Bytes]) -> mlua::Result<Table> {
        let t = self.lua.create_table()?;
        for (i, item) in items.iter().enumerate() {
            t.raw_set(i + 1, self.lua.create_string(item)?)?;
        }
        Ok(t)
    }
}

fn make_runner(lua: &Lua, real_g: &Table) -> mlua::Result<Function> {
    // `xpcall` in the real globals is the prelude's user-facing wrapper (it converts errors
    // for user handlers); the runner needs Redis's handler to see the raw error and the
    // frames, so it uses the base xpcall, saved before the prelude ran.
    let handler = lua.create_function(error_handler)?;
    let base_xpcall: Value = lua.named_registry_value("redcloak.base_xpcall")?;
    let xpcall = match base_xpcall {
        Value::Function(f) => f,
        _ => real_g.raw_get::<Function>("xpcall")?,
    };
    // Function callbacks take (KEYS, ARGV); Lua 5.1's xpcall passes no arguments.
    lua.load(
        "local xpcall, h = ... return function(f, k, a) \
           if k == nil then return xpcall(f, h) end \
           return xpcall(function() return f(k, a) end, h) end",
    )
    .set_name(INTERNAL_CHUNK)
    .call((xpcall, handler))
}

/// Redis's `__redis__err__handler`: turns any error into an error table and records where
/// the script was when it failed (`source`, `line`).
fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Value> {
    let err = match unwrap_error(lua, err) {
        Ok(v) => v,
        Err(_) => return Ok(Value::Nil), // killed: the caller answers with the kill error
    };
    let table = match err {
        Value::Table(t) => t,
        other => {
            let text = match lua_tostring(&other) {
                Some(s) => s,
                None => {
                    let tostring: Function = lua.named_registry_value("redcloak.tostring")?;
                    let s: mlua::String = tostring.call(other)?;
                    s.as_bytes().to_vec()
                }
            };
            let mut msg = b"ERR ".to_vec();
            msg.extend_from_slice(&text);
            new_error_table(lua, &msg, false)?
        }
    };
    if let Some((source, line)) = error_position(lua) {
        table.raw_set("source", lua.create_string(source)?)?;
        table.raw_set("line", line)?;
    }
    Ok(Value::Table(table))
}

/// The frame Redis's handler reports: the function that raised the error, or its caller when
/// that function is a C function. redcloak's own Lua frames are not counted.
fn error_position(lua: &Lua) -> Option<(String, i64)> {
    let mut frames: Vec<(&'static str, String, i64)> = Vec::new();
    // Level 0 is this handler; level 1 the function that raised the error.
    let mut level = 1;
    while frames.len() < 2 && level < 64 {
        let frame = lua.inspect_stack(level, |d| {
            let s = d.source();
            (
                s.what,
                s.source.map(|c| c.into_owned()).unwrap_or_default(),
                d.current_line().map_or(-1, |n| n as i64),
            )
        })?;
        level += 1;
        if frame.1 == INTERNAL_CHUNK {
            continue;
        }
        frames.push(frame);
    }
    let first = frames.first()?;
    let chosen = if first.0 == "C" {
        frames.get(1)?
    } else {
        first
    };
    Some((chosen.1.clone(), chosen.2))
}

/// Lua's `lua_tonumber`: numbers, and strings that read as numbers.
pub(crate) fn to_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Integer(n) => Some(*n as f64),
        Value::String(s) => {
            let b = s.as_bytes();
            let t = std::str::from_utf8(&b)
                .ok()?
                .trim_matches(|c: char| c.is_ascii_whitespace());
            if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                return u64::from_str_radix(hex, 16).ok().map(|n| n as f64);
            }
            if t.is_empty()
                || t.contains(|c: char| {
                    c.is_ascii_alphabetic()
                        && !matches!(c, 'e' | 'E' | 'i' | 'I' | 'n' | 'N' | 'f' | 'F' | 'a' | 'A')
                })
            {
                return None;
            }
            t.parse::<f64>().ok()
        }
        _ => None,
    }
}

/// `source:line: ` of the Lua function calling the running C function (`luaL_where(L, 1)`).
pub(crate) fn lua_where(lua: &Lua) -> String {
    lua.inspect_stack(1, |d| {
        let s = d.source();
        match d.current_line() {
            Some(line) if line > 0 => {
                format!("{}:{}: ", s.short_src.as_deref().unwrap_or("?"), line)
            }
            _ => String::new(),
        }
    })
    .unwrap_or_default()
}

/// `luaL_argerror`: `bad argument #n to 'name' (msg)` with the caller's position.
pub(crate) fn arg_error<T>(lua: &Lua, n: usize, msg: &str) -> mlua::Result<T> {
    let name = lua
        .inspect_stack(0, |d| d.names().name.map(|c| c.into_owned()))
        .flatten()
        .unwrap_or_else(|| "?".to_owned());
    raise(Raise::Str(
        format!("{}bad argument #{n} to '{name}' ({msg})", lua_where(lua)).into_bytes(),
    ))
}

/// `luaL_error`: a string error with the caller's position.
pub(crate) fn lua_error<T>(lua: &Lua, msg: &str) -> mlua::Result<T> {
    raise(Raise::Str(format!("{}{msg}", lua_where(lua)).into_bytes()))
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::Number(_) | Value::Integer(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        Value::LightUserData(_) | Value::UserData(_) | Value::Error(_) => "userdata",
        _ => "userdata",
    }
}

/// `luaL_checknumber` for argument `n` (1-based) of `args`.
pub(crate) fn check_number(lua: &Lua, args: &[Value], n: usize) -> mlua::Result<f64> {
    match args.get(n - 1) {
        Some(v) => match to_number(v) {
            Some(x) => Ok(x),
            None => arg_error(lua, n, &format!("number expected, got {}", type_name(v))),
        },
        None => arg_error(lua, n, "number expected, got no value"),
    }
}

/// `luaL_checkint`: a number truncated like C's cast to `int` through `lua_Integer`.
pub(crate) fn check_int(lua: &Lua, args: &[Value], n: usize) -> mlua::Result<i32> {
    let x = check_number(lua, args, n)?;
    Ok(crate::numfmt::c_cast_i64(x) as i32)
}

// === math.random / math.randomseed: Redis's rand48 ===

/// The rand48 state Redis starts with (`x = {0x330E, 0xABCD, 0x1234}`).
pub(crate) const RAND48_INITIAL: u64 = 0x1234_ABCD_330E;

fn rand48_next(state: &AtomicU64) -> i32 {
    const A: u64 = 0x5_DEEC_E66D;
    const MASK: u64 = (1 << 48) - 1;
    let mut x = state.load(Ordering::Relaxed);
    x = (x.wrapping_mul(A).wrapping_add(0xB)) & MASK;
    state.store(x, Ordering::Relaxed);
    (x >> 17) as i32
}

fn install_math(lua: &Lua, real_g: &Table, rng: Arc<AtomicU64>) -> mlua::Result<()> {
    let math: Table = real_g.raw_get("math")?;
    let r = rng.clone();
    math.raw_set(
        "random",
        lua.create_function(move |lua, args: Variadic<Value>| {
            const MAX: i32 = i32::MAX;
            let r = f64::from(rand48_next(&r) % MAX) / f64::from(MAX);
            match args.len() {
                0 => Ok(r),
                1 => {
                    let u = check_int(lua, &args, 1)?;
                    if u < 1 {
                        return arg_error(lua, 1, "interval is empty");
                    }
                    Ok((r * f64::from(u)).floor() + 1.0)
                }
                2 => {
                    let l = check_int(lua, &args, 1)?;
                    let u = check_int(lua, &args, 2)?;
                    if l > u {
                        return arg_error(lua, 2, "interval is empty");
                    }
                    Ok((r * (f64::from(u) - f64::from(l) + 1.0)).floor() + f64::from(l))
                }
                _ => lua_error(lua, "wrong number of arguments"),
            }
        })?,
    )?;
    math.raw_set(
        "randomseed",
        lua.create_function(move |lua, args: Variadic<Value>| {
            let seed = check_int(lua, &args, 1)?;
            rng.store((u64::from(seed as u32) << 16) | 0x330E, Ordering::Relaxed);
            Ok(())
        })?,
    )?;
    // Kept for the message handler (tostring of tables, functions…).
    lua.set_named_registry_value("redcloak.tostring", real_g.raw_get::<Function>("tostring")?)?;
    lua.set_named_registry_value(
        "redcloak.base_xpcall",
        real_g.raw_get::<Function>("xpcall")?,
    )?;
    lua.set_named_registry_value("redcloak.next", real_g.raw_get::<Function>("next")?)?;
    // Compiling through Lua's own loadstring keeps error messages byte for byte.
    lua.set_named_registry_value(
        "redcloak.loadstring",
        real_g.raw_get::<Function>("loadstring")?,
    )?;
    Ok(())
}

// === the redis table ===

fn install_redis_api(lua: &Lua, redis: &Table, version: &Version) -> mlua::Result<()> {
    for (name, v) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        redis.raw_set(name, v)?;
    }
    redis.raw_set("REDIS_VERSION", version.text.as_str())?;
    redis.raw_set("REDIS_VERSION_NUM", version.num)?;
    // Outside a run these fail like Redis's do outside a script invocation.
    let outside = |lua: &Lua, _: MultiValue| -> mlua::Result<Value> {
        let _ = lua;
        raise_table("redis.call/pcall can only be called inside a script invocation")
    };
    redis.raw_set("call", lua.create_function(outside)?)?;
    redis.raw_set("pcall", lua.create_function(outside)?)?;
    let r = redis.clone();
    redis.raw_set(
        "acl_check_cmd",
        lua.create_function(move |lua, mut args: MultiValue| {
            if !lua.app_data_ref::<RunCtx>().is_some_and(|c| c.in_run) {
                return outside(lua, args);
            }
            let pcall: Function = r.raw_get("pcall")?;
            args.push_front(Value::LightUserData(BRIDGE_ACL));
            pcall.call::<Value>(args)
        })?,
    )?;
    let r = redis.clone();
    redis.raw_set(
        "log",
        lua.create_function(move |lua, mut args: MultiValue| {
            if !lua.app_data_ref::<RunCtx>().is_some_and(|c| c.in_run) {
                // No backend (FUNCTION LOAD): the arguments are checked, the line dropped.
                return redis_log(lua, args, None);
            }
            let pcall: Function = r.raw_get("pcall")?;
            args.push_front(Value::LightUserData(BRIDGE_LOG));
            pcall.call::<()>(args)
        })?,
    )?;
    redis.raw_set(
        "sha1hex",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.len() != 1 {
                return raise_table("wrong number of arguments");
            }
            let data = lua_tostring(&args[0]).unwrap_or_default();
            lua.create_string(sha1_hex(&data))
        })?,
    )?;
    redis.raw_set(
        "error_reply",
        lua.create_function(|lua, args: Variadic<Value>| match args.as_slice() {
            [Value::String(s)] => {
                let s = s.as_bytes();
                let mut raw = Vec::with_capacity(s.len() + 1);
                if s.first() != Some(&b'-') {
                    raw.push(b'-');
                }
                raw.extend_from_slice(&s);
                new_error_table(lua, &error_table_text(&raw), false)
            }
            _ => new_error_table(lua, b"ERR wrong number or type of arguments", false),
        })?,
    )?;
    redis.raw_set(
        "status_reply",
        lua.create_function(|lua, args: Variadic<Value>| match args.as_slice() {
            [Value::String(s)] => {
                let t = lua.create_table()?;
                t.raw_set("ok", s.clone())?;
                Ok(t)
            }
            _ => new_error_table(lua, b"ERR wrong number or type of arguments", false),
        })?,
    )?;
    redis.raw_set(
        "setresp",
        lua.create_function(|lua, args: Variadic<Value>| {
            if args.len() != 1 {
                return raise_table("redis.setresp() requires one argument.");
            }
            let resp = to_number(&args[0]).map_or(0, |n| crate::numfmt::c_cast_i64(n) as i32);
            if resp != 2 && resp != 3 {
                return raise_table("RESP version must be 2 or 3.");
            }
            if let Some(mut ctx) = lua.app_data_mut::<RunCtx>() {
                ctx.resp = resp as u8;
            }
            Ok(())
        })?,
    )?;
    redis.raw_set(
        "set_repl",
        lua.create_function(|_, args: Variadic<Value>| {
            if args.len() != 1 {
                return raise_table("redis.set_repl() requires two arguments.");
            }
            let flags = to_number(&args[0]).map_or(0, |n| crate::numfmt::c_cast_i64(n) as i32);
            if flags & !3 != 0 {
                return raise_table(
                    "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                );
            }
            Ok(())
        })?,
    )?;
    redis.raw_set(
        "replicate_commands",
        lua.create_function(|_, _: MultiValue| Ok(true))?,
    )?;
    redis.raw_set(
        "breakpoint",
        lua.create_function(|_, _: MultiValue| Ok(false))?,
    )?;
    redis.raw_set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    Ok(())
}

pub(crate) fn sha1_hex(data: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha1::digest(data);
    let mut out = String::with_capacity(40);
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

/// Redis's `luaArgsToRedisArgv`: strings as they are, numbers as `%.17g`.
fn command_args(args: &MultiValue) -> Option<Vec<Bytes>> {
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        out.push(match a {
            Value::String(s) => Bytes::copy_from_slice(&s.as_bytes()),
            Value::Number(n) => Bytes::from(format_g(*n, 17)),
            Value::Integer(n) => Bytes::from(format_g(*n as f64, 17)),
            _ => return None,
        });
    }
    Some(out)
}

fn fail(lua: &Lua, raise_it: bool, err: &str, ignore_stats: bool) -> mlua::Result<Value> {
    let err = error_table_text(err.as_bytes());
    if raise_it {
        raise(Raise::Table { err, ignore_stats })
    } else {
        Ok(Value::Table(new_error_table(lua, &err, ignore_stats)?))
    }
}

/// `redis.call` (`raise_it`) and `redis.pcall`.
fn redis_call(
    lua: &Lua,
    args: MultiValue,
    raise_it: bool,
    backend: &mut dyn Backend,
) -> mlua::Result<Value> {
    if args.is_empty() {
        return fail(
            lua,
            raise_it,
            "Please specify at least one argument for this redis lib call",
            false,
        );
    }
    let Some(argv) = command_args(&args) else {
        return fail(
            lua,
            raise_it,
            "Lua redis lib command arguments must be strings or integers",
            false,
        );
    };
    let Some(info) = backend.command_info(&argv) else {
        return fail(
            lua,
            raise_it,
            "Unknown Redis command called from script",
            true,
        );
    };
    let argc = argv.len() as i64;
    if (info.arity > 0 && info.arity != argc) || argc < -info.arity {
        return fail(
            lua,
            raise_it,
            "Wrong number of args calling Redis command from script",
            true,
        );
    }
    if info.noscript {
        return fail(
            lua,
            raise_it,
            "This Redis command is not allowed from script",
            true,
        );
    }
    let (resp, read_only) = {
        let ctx = lua.app_data_ref::<RunCtx>();
        ctx.map_or((2, false), |c| (c.resp, c.read_only))
    };
    if info.write && read_only {
        return fail(
            lua,
            raise_it,
            "Write commands are not allowed from read-only scripts.",
            true,
        );
    }
    let reply = backend.call(&argv, &CallContext { resp, read_only });
    match frame_to_lua(lua, &reply)? {
        Ok(v) => Ok(v),
        Err(err) => {
            if raise_it {
                raise(Raise::Table {
                    err,
                    ignore_stats: true,
                })
            } else {
                Ok(Value::Table(new_error_table(lua, &err, true)?))
            }
        }
    }
}

fn redis_log(lua: &Lua, args: MultiValue, backend: Option<&mut dyn Backend>) -> mlua::Result<()> {
    let args: Vec<Value> = args.into_iter().collect();
    if args.len() < 2 {
        return raise_table("redis.log() requires two arguments or more.");
    }
    let Some(level) = to_number(&args[0]) else {
        return raise_table("First argument must be a number");
    };
    let Some(level) = LogLevel::from_number(crate::numfmt::c_cast_i64(level)) else {
        return raise_table("Invalid debug level.");
    };
    let mut line = Vec::new();
    for (i, a) in args[1..].iter().enumerate() {
        if let Some(s) = lua_tostring(a) {
            if i != 0 {
                line.push(b' ');
            }
            line.extend_from_slice(&s);
        }
    }
    let _ = lua;
    if let Some(b) = backend {
        b.log(level, &line);
    }
    Ok(())
}

fn acl_check_cmd(lua: &Lua, args: MultiValue, backend: &mut dyn Backend) -> mlua::Result<bool> {
    let _ = lua;
    if args.is_empty() {
        return raise_table("Please specify at least one argument for this redis lib call");
    }
    let Some(argv) = command_args(&args) else {
        return raise_table("Lua redis lib command arguments must be strings or integers");
    };
    if backend.command_info(&argv).is_none() {
        return raise_table("Invalid command passed to redis.acl_check_cmd()");
    }
    Ok(backend.acl_check(&argv))
}

/// Library and function names: letters, digits and underscores, at least one.
pub(crate) fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
}

pub(crate) const NAME_RULE: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

fn register_function(lua: &Lua, args: Variadic<Value>) -> mlua::Result<()> {
    use crate::engine::ScriptFlags;
    let (name, callback, flags, description) = match args.as_slice() {
        [Value::Table(t)] => {
            let mut name = None;
            let mut callback = None;
            let mut flags = ScriptFlags::default();
            let mut description = None;
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                let key = match &k {
                    Value::String(s) => s.as_bytes().to_vec(),
                    _ => return raise_table("named argument key given to redis.register_function is not a string"),
                };
                match key.as_slice() {
                    b"function_name" => match lua_tostring(&v) {
                        Some(s) => name = Some(s),
                        None => return raise_table("function_name argument given to redis.register_function must be a string"),
                    },
                    b"description" => match lua_tostring(&v) {
                        Some(s) => description = Some(s),
                        None => return raise_table("description argument given to redis.register_function must be a string"),
                    },
                    b"callback" => match v {
                        Value::Function(f) => callback = Some(f),
                        _ => return raise_table("callback argument given to redis.register_function must be a function"),
                    },
                    b"flags" => match &v {
                        Value::Table(ft) => {
                            for flag in ft.sequence_values::<Value>() {
                                let flag = match flag? {
                                    Value::String(s) => s.as_bytes().to_vec(),
                                    _ => return raise_table("unknown flag given"),
                                };
                                if !flags.set(&flag) {
                                    return raise_table("unknown flag given");
                                }
                            }
                        }
                        _ => return raise_table("flags argument to redis.register_function must be a table representing function flags"),
                    },
                    _ => return raise_table("unknown argument given to redis.register_function"),
                }
            }
            let Some(name) = name else {
                return raise_table("redis.register_function must get a function name argument");
            };
            let Some(callback) = callback else {
                return raise_table("redis.register_function must get a callback argument");
            };
            (name, callback, flags, description)
        }
        [_] => return raise_table("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."),
        [n, f] => {
            let Some(name) = (match n {
                Value::String(_) | Value::Number(_) | Value::Integer(_) => lua_tostring(n),
                _ => None,
            }) else {
                return raise_table("first argument to redis.register_function must be a string");
            };
            let Value::Function(f) = f else {
                return raise_table("second argument to redis.register_function must be a function");
            };
            (name, f.clone(), ScriptFlags::default(), None)
        }
        _ => return raise_table("wrong number of arguments to redis.register_function"),
    };
    if !valid_name(&name) {
        return raise_table(NAME_RULE);
    }
    let name = String::from_utf8(name).unwrap_or_default();
    let mut ctx = lua
        .app_data_mut::<RunCtx>()
        .ok_or_else(|| mlua::Error::runtime("no run context"))?;
    let Some(regs) = ctx.registrations.as_mut() else {
        drop(ctx);
        return raise_table("redis.register_function can only be called on FUNCTION LOAD command");
    };
    if regs.iter().any(|r| r.name == name) {
        drop(ctx);
        return raise_table("Function already exists in the library");
    }
    regs.push(Registration {
        name,
        callback,
        flags,
        description,
    });
    Ok(())
}
