//! The engine: EVAL / EVALSHA / SCRIPT, and FUNCTION / FCALL.

use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mlua::{Function, MultiValue, Value};
use redcloak_commands::resp::Frame;

use crate::backend::Backend;
use crate::convert::{lua_to_reply, script_error_reply};
use crate::vm::{sha1_hex, valid_name, Kind, Version, Vm, NAME_RULE, RAND48_INITIAL};

/// How long a script may run, how much memory its Lua state may use, and what version it is
/// told.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock limit of one EVAL / FCALL (Redis's `busy-reply-threshold` is 5 s; Redis
    /// only starts accepting SCRIPT KILL then, redcloak ends the script).
    pub time_limit: Duration,
    /// Limit of FUNCTION LOAD's top-level code (Redis: 500 ms).
    pub load_time_limit: Duration,
    /// Bytes one Lua state (scripts, or function libraries) may allocate.
    pub memory_limit: usize,
    /// `redis.REDIS_VERSION`.
    pub redis_version: String,
    /// `redis.REDIS_VERSION_NUM` (`0x07000f` for 7.0.15).
    pub redis_version_num: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time_limit: Duration::from_secs(5),
            load_time_limit: Duration::from_millis(500),
            memory_limit: 256 * 1024 * 1024,
            redis_version: "7.0.15".to_owned(),
            redis_version_num: 0x07_00_0f,
        }
    }
}

/// How the client runs a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// The client's protocol (2, or 3 after `HELLO 3`): the reply is built in it.
    pub client_resp: u8,
    /// EVAL_RO / EVALSHA_RO / FCALL_RO.
    pub read_only: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            client_resp: 2,
            read_only: false,
        }
    }
}

/// The flags of a script's shebang (`#!lua flags=…`) or of a registered function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    /// `no-writes`.
    pub no_writes: bool,
    /// `allow-oom`.
    pub allow_oom: bool,
    /// `allow-stale`.
    pub allow_stale: bool,
    /// `no-cluster`.
    pub no_cluster: bool,
    /// `allow-cross-slot-keys`.
    pub allow_cross_slot_keys: bool,
}

impl ScriptFlags {
    /// Sets the flag named `name`; false if there is no such flag.
    pub(crate) fn set(&mut self, name: &[u8]) -> bool {
        match name {
            b"no-writes" => self.no_writes = true,
            b"allow-oom" => self.allow_oom = true,
            b"allow-stale" => self.allow_stale = true,
            b"no-cluster" => self.no_cluster = true,
            b"allow-cross-slot-keys" => self.allow_cross_slot_keys = true,
            _ => return false,
        }
        true
    }

    /// The names of the flags set, in Redis's order.
    pub fn names(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for (on, name) in [
            (self.no_writes, "no-writes"),
            (self.allow_oom, "allow-oom"),
            (self.allow_stale, "allow-stale"),
            (self.no_cluster, "no-cluster"),
            (self.allow_cross_slot_keys, "allow-cross-slot-keys"),
        ] {
            if on {
                out.push(name);
            }
        }
        out
    }
}

/// What FUNCTION RESTORE does with the libraries already loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePolicy {
    /// Delete all libraries first.
    Flush,
    /// Add the payload's libraries; fail if one already exists (Redis's default).
    Append,
    /// Add the payload's libraries, replacing those with the same name.
    Replace,
}

struct Script {
    function: Function,
    /// `None`: no shebang (Redis's compatibility mode).
    flags: Option<ScriptFlags>,
}

struct FunctionEntry {
    name: String,
    callback: Function,
    flags: ScriptFlags,
    description: Option<Vec<u8>>,
}

struct Library {
    code: Vec<u8>,
    functions: Vec<FunctionEntry>,
}

/// Runs EVAL scripts and function libraries in sandboxed Lua 5.1 states, as Redis 7.0 does.
///
/// One Lua state for scripts, one for function libraries (as in Redis); compiled scripts are
/// cached by SHA1 until [`Engine::script_flush`]. The engine does no I/O: every `redis.call`
/// goes to the [`Backend`] given to the run.
pub struct Engine {
    limits: Limits,
    version: Version,
    rng: Arc<AtomicU64>,
    eval_vm: Vm,
    func_vm: Vm,
    scripts: HashMap<String, Script>,
    libraries: BTreeMap<String, Library>,
    /// Function name (ASCII lower case: Redis matches function names without case) → library
    /// name.
    functions: HashMap<String, String>,
}

fn err(text: &str) -> Frame {
    Frame::Error(Bytes::copy_from_slice(text.as_bytes()))
}

fn err_owned(text: Vec<u8>) -> Frame {
    crate::convert::error_frame(text)
}

impl Engine {
    /// A new engine with empty caches.
    ///
    /// # Panics
    /// If Lua cannot create a state (out of memory at start).
    pub fn new(limits: Limits) -> Engine {
        let version = Version {
            text: limits.redis_version.clone(),
            num: limits.redis_version_num,
        };
        let rng = Arc::new(AtomicU64::new(RAND48_INITIAL));
        let eval_vm = Vm::new(Kind::Eval, rng.clone(), &version, limits.memory_limit)
            .expect("creating the scripts' Lua state");
        let func_vm = Vm::new(Kind::Functions, rng.clone(), &version, limits.memory_limit)
            .expect("creating the functions' Lua state");
        Engine {
            limits,
            version,
            rng,
            eval_vm,
            func_vm,
            scripts: HashMap::new(),
            libraries: BTreeMap::new(),
            functions: HashMap::new(),
        }
    }

    /// The limits the engine was made with.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    // === EVAL ===

    /// EVAL / EVAL_RO: compiles (or finds in the cache) and runs `body`.
    pub fn eval(
        &mut self,
        body: &[u8],
        keys: &[Bytes],
        argv: &[Bytes],
        opts: RunOptions,
        backend: &mut dyn Backend,
    ) -> Frame {
        let sha = sha1_hex(body);
        if !self.scripts.contains_key(&sha) {
            if let Err(e) = self.compile_script(body, &sha) {
                return e;
            }
        }
        self.run_script(&sha, keys, argv, opts, backend)
    }

    /// EVALSHA / EVALSHA_RO. An unknown SHA (any case) is Redis's NOSCRIPT error.
    pub fn eval_sha(
        &mut self,
        sha: &[u8],
        keys: &[Bytes],
        argv: &[Bytes],
        opts: RunOptions,
        backend: &mut dyn Backend,
    ) -> Frame {
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        if sha.len() != 40 || !self.scripts.contains_key(&sha) {
            return err("NOSCRIPT No matching script. Please use EVAL.");
        }
        self.run_script(&sha, keys, argv, opts, backend)
    }

    /// SCRIPT LOAD: compiles and caches `body`; its SHA1 (lowercase hex).
    pub fn script_load(&mut self, body: &[u8]) -> Result<String, Frame> {
        let sha = sha1_hex(body);
        if !self.scripts.contains_key(&sha) {
            self.compile_script(body, &sha)?;
        }
        Ok(sha)
    }

    /// SCRIPT EXISTS.
    pub fn script_exists(&self, shas: &[Bytes]) -> Vec<bool> {
        shas.iter()
            .map(|s| {
                let s = String::from_utf8_lossy(s).to_ascii_lowercase();
                self.scripts.contains_key(&s)
            })
            .collect()
    }

    /// SCRIPT FLUSH: forgets every script and starts a fresh Lua state (as Redis does).
    pub fn script_flush(&mut self) {
        self.scripts.clear();
        if let Ok(vm) = Vm::new(
            Kind::Eval,
            self.rng.clone(),
            &self.version,
            self.limits.memory_limit,
        ) {
            self.eval_vm = vm;
        }
    }

    /// Number of cached scripts.
    pub fn script_count(&self) -> usize {
        self.scripts.len()
    }

    fn compile_script(&mut self, body: &[u8], sha: &str) -> Result<(), Frame> {
        let (flags, code) = parse_eval_shebang(body)?;
        let function = self.eval_vm.compile(&code, "@user_script").map_err(|e| {
            err_owned(
                [
                    b"ERR Error compiling script (new function): ".as_slice(),
                    &e,
                ]
                .concat(),
            )
        })?;
        self.scripts
            .insert(sha.to_owned(), Script { function, flags });
        Ok(())
    }

    fn run_script(
        &mut self,
        sha: &str,
        keys: &[Bytes],
        argv: &[Bytes],
        opts: RunOptions,
        backend: &mut dyn Backend,
    ) -> Frame {
        let Some(script) = self.scripts.get(sha) else {
            return err("NOSCRIPT No matching script. Please use EVAL.");
        };
        let read_only = match script.flags {
            None => opts.read_only,
            Some(flags) => {
                if opts.read_only && !flags.no_writes {
                    return err("ERR Can not execute a script with write flag using *_ro command.");
                }
                opts.read_only || flags.no_writes
            }
        };
        let function = script.function.clone();
        if let Err(e) = self.eval_vm.set_keys_argv(keys, argv) {
            return self.internal_error(&e);
        }
        self.eval_vm.ctx(|c| c.read_only = read_only);
        let limits = &self.limits;
        let vm = &self.eval_vm;
        let result = catch_unwind(AssertUnwindSafe(|| {
            vm.run(
                &function,
                MultiValue::new(),
                backend,
                limits.time_limit,
                |lua, outcome| finish(lua, outcome, sha, opts.client_resp, limits),
            )
        }));
        match result {
            Err(_) => {
                // A bug (ours or mlua's) panicked mid-script: start a fresh state rather
                // than trust this one.
                self.script_flush();
                err("ERR redcloak script engine: internal error (the script cache was reset)")
            }
            Ok(Ok(frame)) => frame,
            Ok(Err(e)) => self.internal_error(&e),
        }
    }

    fn internal_error(&self, e: &mlua::Error) -> Frame {
        if matches!(e, mlua::Error::MemoryError(_)) {
            return memory_error(&self.limits);
        }
        err("ERR redcloak script engine: internal error")
    }

    // === FUNCTION ===

    /// FUNCTION LOAD (with or without REPLACE): the library's name, or Redis's error.
    ///
    /// `redis.log` lines written by a library's top-level code are discarded (there is no
    /// backend at load time).
    pub fn function_load(&mut self, code: &[u8], replace: bool) -> Result<String, Frame> {
        let (name, body) = parse_library_shebang(code)?;
        if !replace && self.libraries.contains_key(&name) {
            return Err(err(&format!("ERR Library '{name}' already exists")));
        }
        let chunk = self
            .func_vm
            .compile(&body, "@user_function")
            .map_err(|e| err_owned([b"ERR Error compiling function: ".as_slice(), &e].concat()))?;
        let regs = self
            .func_vm
            .load_library(&chunk, self.limits.load_time_limit)
            .map_err(|e| {
                let mut text = b"ERR Error registering functions: ".to_vec();
                text.extend_from_slice(&e);
                err_owned(text)
            })?;
        if regs.is_empty() {
            return Err(err("ERR No functions registered"));
        }
        for r in &regs {
            if let Some(owner) = self.functions.get(&r.name.to_ascii_lowercase()) {
                if *owner != name {
                    return Err(err(&format!("ERR Function {} already exists", r.name)));
                }
            }
        }
        self.remove_library(&name);
        let functions = regs
            .into_iter()
            .map(|r| FunctionEntry {
                name: r.name,
                callback: r.callback,
                flags: r.flags,
                description: r.description,
            })
            .collect::<Vec<_>>();
        for f in &functions {
            self.functions
                .insert(f.name.to_ascii_lowercase(), name.clone());
        }
        self.libraries.insert(
            name.clone(),
            Library {
                code: code.to_vec(),
                functions,
            },
        );
        Ok(name)
    }

    fn remove_library(&mut self, name: &str) -> bool {
        match self.libraries.remove(name) {
            Some(lib) => {
                for f in lib.functions {
                    self.functions.remove(&f.name.to_ascii_lowercase());
                }
                true
            }
            None => false,
        }
    }

    /// FUNCTION DELETE.
    pub fn function_delete(&mut self, library: &[u8]) -> Frame {
        let name = String::from_utf8_lossy(library).into_owned();
        if self.remove_library(&name) {
            Frame::Simple(Bytes::from_static(b"OK"))
        } else {
            err("ERR Library not found")
        }
    }

    /// FUNCTION FLUSH: deletes every library and starts a fresh Lua state.
    pub fn function_flush(&mut self) {
        self.libraries.clear();
        self.functions.clear();
        if let Ok(vm) = Vm::new(
            Kind::Functions,
            self.rng.clone(),
            &self.version,
            self.limits.memory_limit,
        ) {
            self.func_vm = vm;
        }
    }

    /// FUNCTION LIST (LIBRARYNAME pattern, WITHCODE), in the protocol `resp`; the pattern is
    /// a glob matched without regard to case. Libraries are listed by name (Redis lists them
    /// in its hash table's order).
    pub fn function_list(&self, pattern: Option<&[u8]>, with_code: bool, resp: u8) -> Frame {
        let bulk = |s: &[u8]| Frame::Bulk(Bytes::copy_from_slice(s));
        let pairs_frame = |pairs: Vec<(Frame, Frame)>| {
            if resp == 3 {
                Frame::Map(pairs)
            } else {
                Frame::Array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect())
            }
        };
        let mut libs = Vec::new();
        for (name, lib) in &self.libraries {
            if let Some(p) = pattern {
                // Redis matches library names without regard to case.
                let (p, n) = (p.to_ascii_lowercase(), name.to_ascii_lowercase());
                if !glob_match(&p, n.as_bytes()) {
                    continue;
                }
            }
            let functions = lib
                .functions
                .iter()
                .map(|f| {
                    let flags: Vec<Frame> = f
                        .flags
                        .names()
                        .into_iter()
                        .map(|n| Frame::Simple(Bytes::from_static(n.as_bytes())))
                        .collect();
                    pairs_frame(vec![
                        (bulk(b"name"), bulk(f.name.as_bytes())),
                        (
                            bulk(b"description"),
                            match &f.description {
                                Some(d) => bulk(d),
                                None if resp == 3 => Frame::Null,
                                None => Frame::NullBulk,
                            },
                        ),
                        (
                            bulk(b"flags"),
                            if resp == 3 {
                                Frame::Set(flags)
                            } else {
                                Frame::Array(flags)
                            },
                        ),
                    ])
                })
                .collect();
            let mut fields = vec![
                (bulk(b"library_name"), bulk(name.as_bytes())),
                (bulk(b"engine"), bulk(b"LUA")),
                (bulk(b"functions"), Frame::Array(functions)),
            ];
            if with_code {
                fields.push((bulk(b"library_code"), bulk(&lib.code)));
            }
            libs.push(pairs_frame(fields));
        }
        Frame::Array(libs)
    }

    /// FUNCTION STATS: never a running script (the engine answers between runs).
    pub fn function_stats(&self, resp: u8) -> Frame {
        let bulk = |s: &str| Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()));
        let pairs_frame = |pairs: Vec<(Frame, Frame)>| {
            if resp == 3 {
                Frame::Map(pairs)
            } else {
                Frame::Array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect())
            }
        };
        let lua = pairs_frame(vec![
            (
                bulk("libraries_count"),
                Frame::Integer(self.libraries.len() as i64),
            ),
            (
                bulk("functions_count"),
                Frame::Integer(self.functions.len() as i64),
            ),
        ]);
        pairs_frame(vec![
            (
                bulk("running_script"),
                if resp == 3 {
                    Frame::Null
                } else {
                    Frame::NullBulk
                },
            ),
            (bulk("engines"), pairs_frame(vec![(bulk("LUA"), lua)])),
        ])
    }

    /// Every library's name and source, so the proxy can persist them and load them again
    /// with [`Engine::function_load`] on start.
    pub fn libraries_code(&self) -> Vec<(String, Vec<u8>)> {
        self.libraries
            .iter()
            .map(|(n, l)| (n.clone(), l.code.clone()))
            .collect()
    }

    /// FUNCTION DUMP, in redcloak's own format (docs/scripting.md, "Differences from Redis").
    pub fn function_dump(&self) -> Vec<u8> {
        crate::dump::encode(self.libraries.values().map(|l| l.code.as_slice()))
    }

    /// FUNCTION RESTORE. All or nothing: on any error nothing changes.
    pub fn function_restore(&mut self, payload: &[u8], policy: RestorePolicy) -> Frame {
        let Some(codes) = crate::dump::decode(payload) else {
            return err("ERR DUMP payload version or checksum are wrong");
        };
        // Check every header first; a library failing to load later rolls everything back.
        let mut names = Vec::with_capacity(codes.len());
        for code in &codes {
            match parse_library_shebang(code) {
                Ok((name, _)) => names.push(name),
                Err(e) => return e,
            }
        }
        if policy == RestorePolicy::Append {
            for name in &names {
                if self.libraries.contains_key(name) {
                    return err(&format!("ERR Library {name} already exists"));
                }
            }
        }
        let saved: Vec<(String, Vec<u8>)> = self.libraries_code();
        if policy == RestorePolicy::Flush {
            self.function_flush();
        }
        for code in &codes {
            if let Err(e) = self.function_load(code, policy != RestorePolicy::Append) {
                // Roll back to what was there.
                self.function_flush();
                for (_, code) in &saved {
                    let _ = self.function_load(code, true);
                }
                return e;
            }
        }
        Frame::Simple(Bytes::from_static(b"OK"))
    }

    /// The function FCALL `name` calls: names are matched without regard to ASCII case, as
    /// Redis matches them.
    fn function(&self, name: &[u8]) -> Option<&FunctionEntry> {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let lib = self.functions.get(&name)?;
        self.libraries
            .get(lib)?
            .functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(&name))
    }

    /// Whether FCALL `name` finds a function (Redis looks it up before it reads numkeys).
    pub fn has_function(&self, name: &[u8]) -> bool {
        self.function(name).is_some()
    }

    /// FCALL / FCALL_RO.
    pub fn fcall(
        &mut self,
        name: &[u8],
        keys: &[Bytes],
        argv: &[Bytes],
        opts: RunOptions,
        backend: &mut dyn Backend,
    ) -> Frame {
        let Some(entry) = self.function(name) else {
            return err("ERR Function not found");
        };
        if opts.read_only && !entry.flags.no_writes {
            return err("ERR Can not execute a script with write flag using *_ro command.");
        }
        let read_only = opts.read_only || entry.flags.no_writes;
        let callback = entry.callback.clone();
        let fname = entry.name.clone();
        let args = match (self.func_vm.array(keys), self.func_vm.array(argv)) {
            (Ok(k), Ok(a)) => MultiValue::from_iter([Value::Table(k), Value::Table(a)]),
            (Err(e), _) | (_, Err(e)) => return self.internal_error(&e),
        };
        self.func_vm.ctx(|c| c.read_only = read_only);
        let limits = &self.limits;
        let vm = &self.func_vm;
        let result = catch_unwind(AssertUnwindSafe(|| {
            vm.run(
                &callback,
                args,
                backend,
                limits.time_limit,
                |lua, outcome| finish(lua, outcome, &fname, opts.client_resp, limits),
            )
        }));
        match result {
            Err(_) => {
                // As for scripts: a fresh state, with the libraries loaded again.
                let saved = self.libraries_code();
                self.function_flush();
                for (_, code) in &saved {
                    let _ = self.function_load(code, true);
                }
                err("ERR redcloak script engine: internal error (the function state was reset)")
            }
            Ok(Ok(frame)) => frame,
            Ok(Err(e)) => self.internal_error(&e),
        }
    }
}

fn memory_error(limits: &Limits) -> Frame {
    err_owned(
        format!(
            "ERR Script killed by redcloak: exceeded the script memory limit ({} bytes)",
            limits.memory_limit
        )
        .into_bytes(),
    )
}

/// The reply for a finished run.
fn finish(
    lua: &mlua::Lua,
    outcome: Result<MultiValue, Value>,
    funcname: &str,
    client_resp: u8,
    limits: &Limits,
) -> Frame {
    let (killed, script_resp) = lua
        .app_data_ref::<crate::vm::RunCtx>()
        .map_or((false, 2), |c| (c.killed, c.resp));
    if killed {
        return err_owned(
            format!(
                "ERR Script killed by redcloak: exceeded the script time limit ({} ms)",
                limits.time_limit.as_millis()
            )
            .into_bytes(),
        );
    }
    match outcome {
        Ok(values) => {
            let v = values.into_iter().next().unwrap_or(Value::Nil);
            match lua.app_data_ref::<crate::convert::ReplyKeys>() {
                Some(keys) => lua_to_reply(&keys, &v, client_resp, script_resp),
                None => err("ERR redcloak script engine: internal error"),
            }
        }
        Err(Value::Table(t)) => script_error_reply(&t, funcname),
        Err(Value::String(s)) if s.as_bytes().as_ref() == b"not enough memory" => {
            let _ = lua.gc_collect();
            memory_error(limits)
        }
        Err(Value::Error(e)) if matches!(*e, mlua::Error::MemoryError(_)) => {
            let _ = lua.gc_collect();
            memory_error(limits)
        }
        Err(other) => {
            // An error the handler did not see (error in error handling…).
            let text = crate::convert::lua_tostring(&other)
                .unwrap_or_else(|| b"execution failure".to_vec());
            let mut msg = format!("ERR Error running script {funcname}, ").into_bytes();
            msg.extend_from_slice(&text[..text.len().min(100)]);
            err_owned(msg)
        }
    }
}

/// `#!lua flags=…` at the start of an EVAL script. The code to compile keeps the shebang's
/// line as an empty line, so line numbers stay those of the body.
fn parse_eval_shebang(
    body: &[u8],
) -> Result<(Option<ScriptFlags>, std::borrow::Cow<'_, [u8]>), Frame> {
    if !body.starts_with(b"#!") {
        return Ok((None, std::borrow::Cow::Borrowed(body)));
    }
    let Some(nl) = body.iter().position(|&b| b == b'\n') else {
        return Err(err("ERR Invalid script shebang"));
    };
    let line = &body[..nl];
    let mut parts = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or_default();
    if engine != b"#!lua" {
        return Err(err_owned(
            [
                b"ERR Unexpected engine in script shebang: ".as_slice(),
                engine,
            ]
            .concat(),
        ));
    }
    let mut flags = ScriptFlags::default();
    for part in parts {
        match part.strip_prefix(b"flags=") {
            Some(list) => {
                for flag in list.split(|&b| b == b',').filter(|f| !f.is_empty()) {
                    if !flags.set(flag) {
                        return Err(err_owned(
                            [b"ERR Unexpected flag in script shebang: ".as_slice(), flag].concat(),
                        ));
                    }
                }
            }
            None => {
                return Err(err_owned(
                    [b"ERR Unknown lua shebang option: ".as_slice(), part].concat(),
                ))
            }
        }
    }
    Ok((Some(flags), std::borrow::Cow::Owned(body[nl..].to_vec())))
}

/// `#!lua name=<lib>` at the start of a library; its name and the code to compile (the
/// shebang's line kept as an empty line).
fn parse_library_shebang(code: &[u8]) -> Result<(String, Vec<u8>), Frame> {
    if !code.starts_with(b"#!") {
        return Err(err("ERR Missing library metadata"));
    }
    let Some(nl) = code.iter().position(|&b| b == b'\n') else {
        return Err(err("ERR Invalid library metadata"));
    };
    let line = &code[2..nl];
    let mut parts = line.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or_default();
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(err_owned(
            format!("ERR Engine '{}' not found", String::from_utf8_lossy(engine)).into_bytes(),
        ));
    }
    let mut name = None;
    for part in parts {
        match part.strip_prefix(b"name=") {
            Some(n) => {
                if name.is_some() {
                    return Err(err(
                        "ERR Invalid metadata value, name argument was given multiple times",
                    ));
                }
                name = Some(n);
            }
            None => {
                return Err(err_owned(
                    [b"ERR Invalid metadata value given: ".as_slice(), part].concat(),
                ))
            }
        }
    }
    let Some(name) = name else {
        return Err(err("ERR Library name was not given"));
    };
    if !valid_name(name) {
        return Err(err_owned(format!("ERR {NAME_RULE}").into_bytes()));
    }
    Ok((
        String::from_utf8_lossy(name).into_owned(),
        code[nl..].to_vec(),
    ))
}

/// Redis's glob (`stringmatchlen`): `*`, `?`, `[…]` with `^` and ranges,
/// and `\` escapes.
pub(crate) fn glob_match(pattern: &[u8], s: &[u8]) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        let (mut pi, mut si) = (0, 0);
        let (mut star_p, mut star_s) = (None, 0);
        while si < s.len() {
            if pi < p.len() {
                match p[pi] {
                    b'*' => {
                        star_p = Some(pi);
                        star_s = si;
                        pi += 1;
                        continue;
                    }
                    b'?' => {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                    b'[' => {
                        if let Some((matched, next)) = class(p, pi, s[si]) {
                            if matched {
                                pi = next;
                                si += 1;
                                continue;
                            }
                        }
                    }
                    b'\\' if pi + 1 < p.len() && p[pi + 1] == s[si] => {
                        pi += 2;
                        si += 1;
                        continue;
                    }
                    c if c == s[si] => {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                    _ => {}
                }
            }
            match star_p {
                Some(sp) => {
                    pi = sp + 1;
                    star_s += 1;
                    si = star_s;
                }
                None => return false,
            }
        }
        p[pi..].iter().all(|&c| c == b'*')
    }
    fn class(p: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
        let mut i = start + 1;
        let negate = p.get(i) == Some(&b'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        loop {
            let ch = *p.get(i)?;
            if ch == b']' {
                break;
            }
            if ch == b'\\' && i + 1 < p.len() {
                i += 1;
                matched |= p[i] == c;
            } else if p.get(i + 1) == Some(&b'-') && p.get(i + 2).is_some_and(|&e| e != b']') {
                let (lo, hi) = (ch.min(p[i + 2]), ch.max(p[i + 2]));
                matched |= (lo..=hi).contains(&c);
                i += 2;
            } else {
                matched |= ch == c;
            }
            i += 1;
        }
        Some((matched != negate, i + 1))
    }
    m(pattern, s)
}

/// Redis's `string2ll`: an optional `-`, digits, no leading zero (but `0`), no `-0`, no
/// spaces or `+`, within i64.
fn string2ll(s: &[u8]) -> Option<i64> {
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    let valid = match digits {
        [] => false,
        [b'0'] => s.len() == 1,
        [b'0', ..] => false,
        _ => digits.iter().all(u8::is_ascii_digit),
    };
    if !valid {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Parses EVAL's `numkeys` against the number of arguments after it, with Redis's errors.
pub fn parse_numkeys(numkeys: &[u8], args_after: usize) -> Result<usize, Frame> {
    let n = string2ll(numkeys).ok_or_else(|| err("ERR value is not an integer or out of range"))?;
    if n > args_after as i64 {
        return Err(err(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    if n < 0 {
        return Err(err("ERR Number of keys can't be negative"));
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b"abc"));
        assert!(glob_match(b"a*c", b"abbbc"));
        assert!(!glob_match(b"a*d", b"abbbc"));
        assert!(glob_match(b"l?", b"l1"));
        assert!(glob_match(b"l[0-9]", b"l5"));
        assert!(!glob_match(b"l[^0-9]", b"l5"));
        assert!(glob_match(b"l\\*", b"l*"));
    }

    #[test]
    fn numkeys() {
        assert_eq!(parse_numkeys(b"2", 2), Ok(2));
        assert!(parse_numkeys(b"3", 2).is_err());
        assert!(parse_numkeys(b"-1", 2).is_err());
        assert!(parse_numkeys(b"x", 2).is_err());
    }
}
