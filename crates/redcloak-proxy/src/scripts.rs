//! Scripts and functions, run by redcloak (DESIGN.md §4a): Redis would run them on
//! ciphertext, so redcloak runs them itself in its script engine (`redcloak-script`: Lua 5.1
//! with Redis's sandbox, API and libraries), and every `redis.call` goes through the command
//! table like a client's command — values encrypted on the way to Redis, decrypted on the way
//! back, read-modify-write commands emulated.
//!
//! # Atomicity
//! A script runs on a private view of the keyspace (`atomic::scratch`): keys WATCHed when
//! first touched, copied when first written; its effects are committed at once in MULTI/EXEC,
//! or — when a watched key changed — the script runs again from the start (bounded, backed
//! off). No other client, through this redcloak or any other, sees a script half done. A
//! script that fails half way keeps the writes it made before the error, as in Redis.
//!
//! # Where things live
//! - Compiled scripts are cached per redcloak by SHA1 ([`Scripts`]); an unknown SHA gets
//!   `NOSCRIPT`, and clients send the body again, as they do against Redis.
//! - Function libraries are stored in Redis, encrypted, in a Redis function library of
//!   redcloak's own (`function_store`), so every redcloak in front of the same Redis sees
//!   them, they survive restarts and, as Redis's functions do, FLUSHALL, and they are no key
//!   of the client's keyspace; each redcloak reloads them when asked for a function it does
//!   not know, and before FUNCTION LIST / STATS / DUMP.
//! - Each run takes a Lua state from a pool and runs on a blocking thread; its `redis.call`s
//!   come back to the session's task through a channel. Only the calling client waits for
//!   its script; a runaway script ends with an error at the time limit (5 s).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use redcloak_commands::resp::Frame;
use redcloak_commands::table::{self, Resolved, ScriptOp};
use redcloak_commands::transform;
use redcloak_crypto::{Binding, KeyRing};
use redcloak_script::{Backend, CallContext, CommandInfo, Engine, LogLevel, RunOptions};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::atomic::scratch::{self, Commit, Ran, Scratch};
use crate::atomic::{rmw, Exchange, ExchangeError};
use crate::metrics::Metrics;

use crate::function_store::{self, LEGACY_KEY};

/// Lua states kept for reuse.
const KEEP_ENGINES: usize = 16;

/// The script cache, the function libraries and a pool of Lua states.
pub(crate) struct Scripts {
    limits: redcloak_script::Limits,
    idle: Mutex<Vec<Pooled>>,
    /// Script bodies by SHA1 (lower-case hex), as EVAL or SCRIPT LOAD brought them.
    bodies: Mutex<HashMap<String, Bytes>>,
    /// Bumped by SCRIPT FLUSH: pooled states drop their compiled scripts.
    flushes: AtomicU64,
    libraries: Mutex<Libraries>,
}

impl std::fmt::Debug for Scripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripts").finish_non_exhaustive()
    }
}

/// The function libraries as this redcloak last saw them in Redis.
#[derive(Default, Clone)]
struct Libraries {
    generation: u64,
    code: Vec<(String, Vec<u8>)>,
}

/// A Lua state and what it has been brought up to date with.
struct Pooled {
    engine: Engine,
    flushes: u64,
    libraries: u64,
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts {
            limits: redcloak_script::Limits::default(),
            idle: Mutex::default(),
            bodies: Mutex::default(),
            flushes: AtomicU64::new(0),
            libraries: Mutex::default(),
        }
    }
}

impl Scripts {
    /// A Lua state with the current function libraries.
    fn take(&self) -> Pooled {
        let mut pooled = self
            .idle
            .lock()
            .ok()
            .and_then(|mut idle| idle.pop())
            .unwrap_or_else(|| Pooled {
                engine: Engine::new(self.limits.clone()),
                flushes: 0,
                libraries: 0,
            });
        let flushes = self.flushes.load(Ordering::Acquire);
        if pooled.flushes != flushes {
            pooled.engine.script_flush();
            pooled.flushes = flushes;
        }
        let libraries = self.libraries.lock().map(|l| l.clone()).unwrap_or_default();
        if pooled.libraries != libraries.generation {
            pooled.engine.function_flush();
            for (name, code) in &libraries.code {
                if let Err(e) = pooled.engine.function_load(code, true) {
                    warn!(library = %name, error = ?e, "a function library stored in Redis does not load");
                }
            }
            pooled.libraries = libraries.generation;
        }
        pooled
    }

    fn give(&self, pooled: Pooled) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < KEEP_ENGINES {
                idle.push(pooled);
            }
        }
    }

    /// Whether FCALL `name` finds a function in the libraries this redcloak holds.
    fn has_function(&self, name: &[u8]) -> bool {
        let pooled = self.take();
        let found = pooled.engine.has_function(name);
        self.give(pooled);
        found
    }

    fn body(&self, sha: &str) -> Option<Bytes> {
        self.bodies.lock().ok()?.get(sha).cloned()
    }

    fn remember(&self, sha: String, body: Bytes) {
        if let Ok(mut bodies) = self.bodies.lock() {
            bodies.insert(sha, body);
        }
    }
}

/// What a script run needs from its session.
pub(crate) struct Ctx<'a> {
    /// The key ring in use.
    pub ring: &'a KeyRing,
    /// Reply parser limits.
    pub limits: &'a redcloak_commands::resp::Limits,
    /// Metrics.
    pub metrics: &'a Metrics,
    /// The client's protocol (the script's reply is made in it).
    pub client_resp3: bool,
    /// The database the exchange is in (the client's).
    pub db: u32,
    /// The database the function libraries' code is bound to (and where the old hash,
    /// [`LEGACY_KEY`], is): always the same one (the upstream URL's), since function
    /// libraries, as in Redis, belong to no database.
    pub functions_db: u32,
}

impl Ctx<'_> {
    /// `commands`, run in the functions' database (and back in the client's after).
    fn in_functions_db(&self, commands: Vec<Vec<Bytes>>) -> (Vec<Vec<Bytes>>, usize) {
        if self.db == self.functions_db {
            return (commands, 0);
        }
        let select = |db: u32| vec![Bytes::from_static(b"SELECT"), Bytes::from(db.to_string())];
        let mut out = Vec::with_capacity(commands.len() + 2);
        out.push(select(self.functions_db));
        out.extend(commands);
        out.push(select(self.db));
        (out, 1)
    }
}

/// Carries out a script or function command (`args` as the client sent them).
pub(crate) async fn run<E: Exchange>(
    scripts: &Scripts,
    op: ScriptOp,
    args: &[Bytes],
    ex: &mut E,
    ctx: Ctx<'_>,
) -> Result<Frame, ExchangeError> {
    match op {
        ScriptOp::Eval { .. } | ScriptOp::Fcall { .. } => {
            atomically(scripts, op, args, ex, &ctx).await
        }
        ScriptOp::Load => Ok(load(scripts, &args[2])),
        ScriptOp::Exists => {
            let known = |sha: &Bytes| {
                scripts
                    .body(&String::from_utf8_lossy(sha).to_ascii_lowercase())
                    .is_some()
            };
            Ok(Frame::Array(
                args[2..]
                    .iter()
                    .map(|sha| Frame::Integer(i64::from(known(sha))))
                    .collect(),
            ))
        }
        ScriptOp::Flush => {
            if let Some(mode) = args.get(2) {
                if args.len() > 3
                    || !(redcloak_commands::words::is(mode, "ASYNC")
                        || redcloak_commands::words::is(mode, "SYNC"))
                {
                    return Ok(error("ERR SCRIPT FLUSH only support SYNC|ASYNC option"));
                }
            }
            if let Ok(mut bodies) = scripts.bodies.lock() {
                bodies.clear();
            }
            scripts.flushes.fetch_add(1, Ordering::AcqRel);
            Ok(ok())
        }
        ScriptOp::Kill => Ok(error("NOTBUSY No scripts in execution right now.")),
        _ => functions(scripts, op, args, ex, &ctx).await,
    }
}

/// SCRIPT LOAD: compiled (to report errors as Redis does) and remembered.
fn load(scripts: &Scripts, body: &Bytes) -> Frame {
    let mut pooled = scripts.take();
    let result = pooled.engine.script_load(body);
    scripts.give(pooled);
    match result {
        Ok(sha) => {
            scripts.remember(sha.clone(), body.clone());
            Frame::Bulk(Bytes::from(sha))
        }
        Err(e) => e,
    }
}

/// What the engine runs.
#[derive(Clone)]
enum Call {
    Eval { body: Bytes },
    EvalSha { sha: Bytes, body: Option<Bytes> },
    Fcall { name: Bytes },
}

/// A script or function called inside a transaction redcloak carries out: on that
/// transaction's view (committed with it).
pub(crate) async fn in_view<E: Exchange>(
    scripts: &Scripts,
    op: ScriptOp,
    args: &[Bytes],
    view: &mut Scratch<'_, E>,
    client_resp3: bool,
) -> Result<Frame, ExchangeError> {
    let Some((call, keys, argv, opts)) = prepare(scripts, op, args, client_resp3) else {
        return Ok(error(
            "ERR redcloak: only EVAL, EVALSHA and FCALL can run inside a transaction",
        ));
    };
    match call {
        Ok(call) => engine_run(scripts, call, &keys, &argv, opts, view).await,
        Err(e) => Ok(e),
    }
}

type Prepared = (Result<Call, Frame>, Vec<Bytes>, Vec<Bytes>, RunOptions);

/// What a script command runs: its call (or Redis's error for its arguments), keys, ARGV.
fn prepare(
    scripts: &Scripts,
    op: ScriptOp,
    args: &[Bytes],
    client_resp3: bool,
) -> Option<Prepared> {
    let (read_only, by_sha, fcall) = match op {
        ScriptOp::Eval { read_only, by_sha } => (read_only, by_sha, false),
        ScriptOp::Fcall { read_only } => (read_only, false, true),
        _ => return None,
    };
    let opts = RunOptions {
        client_resp: if client_resp3 { 3 } else { 2 },
        read_only,
    };
    // Redis's order of checks: EVALSHA answers NOSCRIPT for a SHA that is not 40 characters
    // long before it reads numkeys (evalShaCommand), and a 40-character unknown one after;
    // FCALL looks the function up first (fcallCommandGeneric), and says numkeys is not a
    // number in its own words; EVAL reads numkeys before it compiles.
    let refuse = |e: Frame| Some((Err(e), Vec::new(), Vec::new(), opts));
    if by_sha && args[1].len() != 40 {
        return refuse(error("NOSCRIPT No matching script. Please use EVAL."));
    }
    let numkeys = match redcloak_script::parse_numkeys(&args[2], args.len() - 3) {
        Ok(n) => n,
        Err(_) if fcall && !scripts.has_function(&args[1]) => {
            return refuse(error("ERR Function not found"))
        }
        Err(Frame::Error(e)) if fcall && e.starts_with(b"ERR value is not an integer") => {
            return refuse(error("ERR Bad number of keys provided"))
        }
        Err(e) => return refuse(e),
    };
    let keys = args[3..3 + numkeys].to_vec();
    let argv = args[3 + numkeys..].to_vec();
    let call = if fcall {
        Call::Fcall {
            name: args[1].clone(),
        }
    } else if by_sha {
        let sha = args[1].clone();
        let body = scripts.body(&String::from_utf8_lossy(&sha).to_ascii_lowercase());
        Call::EvalSha { sha, body }
    } else {
        Call::Eval {
            body: args[1].clone(),
        }
    };
    Some((Ok(call), keys, argv, opts))
}

/// EVAL / EVALSHA / FCALL (and their `_RO` forms): on a private view, committed at once, run
/// again when a watched key changed.
async fn atomically<E: Exchange>(
    scripts: &Scripts,
    op: ScriptOp,
    args: &[Bytes],
    ex: &mut E,
    ctx: &Ctx<'_>,
) -> Result<Frame, ExchangeError> {
    if matches!(op, ScriptOp::Fcall { .. })
        && redcloak_script::parse_numkeys(&args[2], args.len() - 3).is_err()
        && !scripts.has_function(&args[1])
    {
        // Redis answers `Function not found` before numkeys: is it really unknown (another
        // redcloak may have loaded it)?
        if let Err(reply) = refresh(scripts, ex, ctx).await? {
            return Ok(reply);
        }
    }
    let Some((call, keys, argv, opts)) = prepare(scripts, op, args, ctx.client_resp3) else {
        unreachable!("only scripts run atomically")
    };
    let call = match call {
        Ok(call) => call,
        Err(e) => return Ok(e),
    };
    let name = table::resolve(args)
        .known()
        .map_or("script", |(spec, _)| spec.name);
    let mut refreshed = false;
    for attempt in 0..rmw::MAX_ATTEMPTS {
        if attempt > 0 {
            ctx.metrics.emulation_retry(name);
            tokio::time::sleep(rmw::backoff(attempt)).await;
        }
        let mut view = Scratch::new(
            &mut *ex,
            scratch::Ctx {
                ring: ctx.ring,
                limits: ctx.limits,
                db: ctx.db,
            },
        );
        let reply = engine_run(scripts, call.clone(), &keys, &argv, opts, &mut view).await?;
        if !refreshed && is_function_not_found(&reply) {
            // Another redcloak may have loaded it: reload the libraries from Redis, once.
            drop(view);
            if let Err(reply) = refresh(scripts, ex, ctx).await? {
                return Ok(reply);
            }
            refreshed = true;
            continue;
        }
        match view.commit().await? {
            Commit::Done(_) => return Ok(reply),
            Commit::Conflict => debug!("a key the script used changed; running it again"),
        }
    }
    ctx.metrics.emulation_gave_up(name);
    Ok(error(&format!(
        "ERR redcloak: the script could not be applied: its keys changed {} times in a row \
         while redcloak was running it; nothing was written, try again",
        rmw::MAX_ATTEMPTS
    )))
}

fn is_function_not_found(f: &Frame) -> bool {
    matches!(f, Frame::Error(e) if &e[..] == b"ERR Function not found")
}

/// A request from the script's thread to the session's task.
enum Request {
    Call {
        args: Vec<Bytes>,
        ctx: CallContext,
        reply: oneshot::Sender<Frame>,
    },
}

/// The engine's backend on the script's thread: commands go to the session's task, which
/// runs them on the private view.
struct Bridge {
    to: mpsc::Sender<Request>,
}

impl Backend for Bridge {
    fn command_info(&mut self, args: &[Bytes]) -> Option<CommandInfo> {
        command_info(args)
    }

    fn call(&mut self, args: &[Bytes], ctx: &CallContext) -> Frame {
        let (reply, answer) = oneshot::channel();
        let sent = self.to.blocking_send(Request::Call {
            args: args.to_vec(),
            ctx: *ctx,
            reply,
        });
        match sent.ok().and_then(|()| answer.blocking_recv().ok()) {
            Some(frame) => frame,
            None => error("ERR redcloak: the connection to Redis was lost during the script"),
        }
    }

    fn log(&mut self, level: LogLevel, message: &[u8]) {
        // Script bodies and what they log are the application's business: debug level only.
        let message = String::from_utf8_lossy(message);
        match level {
            LogLevel::Warning => debug!(level = "warning", message = %message, "redis.log"),
            _ => debug!(level = ?level, message = %message, "redis.log"),
        }
    }
}

/// What the table says about a command, for Redis's own script errors.
fn command_info(args: &[Bytes]) -> Option<CommandInfo> {
    let (spec, parent) = match table::resolve(args) {
        Resolved::Known { spec, parent } => (spec, parent),
        Resolved::MissingSubcommand(spec) | Resolved::UnknownSubcommand(spec) => (spec, None),
        Resolved::Unknown => return None,
    };
    let keys = table::key_spec(spec, parent);
    Some(CommandInfo {
        arity: i64::from(spec.arity),
        write: keys.is_some_and(|k| k.write),
        noscript: keys.is_some_and(|k| k.noscript),
    })
}

/// Runs the engine on a blocking thread; serves its `redis.call`s on `view` meanwhile.
async fn engine_run<E: Exchange>(
    scripts: &Scripts,
    call: Call,
    keys: &[Bytes],
    argv: &[Bytes],
    opts: RunOptions,
    view: &mut Scratch<'_, E>,
) -> Result<Frame, ExchangeError> {
    let mut pooled = scripts.take();
    if let Call::EvalSha {
        body: Some(body), ..
    } = &call
    {
        // Known to this redcloak, maybe not yet to this Lua state.
        let _ = pooled.engine.script_load(body);
    }
    let (to, mut from) = mpsc::channel(1);
    let (keys, argv) = (keys.to_vec(), argv.to_vec());
    let thread = tokio::task::spawn_blocking(move || {
        let mut bridge = Bridge { to };
        let reply = match &call {
            Call::Eval { body } => pooled.engine.eval(body, &keys, &argv, opts, &mut bridge),
            Call::EvalSha { sha, .. } => {
                pooled.engine.eval_sha(sha, &keys, &argv, opts, &mut bridge)
            }
            Call::Fcall { name } => pooled.engine.fcall(name, &keys, &argv, opts, &mut bridge),
        };
        let sha = match &call {
            Call::Eval { body } => pooled
                .engine
                .script_load(body)
                .ok()
                .map(|s| (s, body.clone())),
            _ => None,
        };
        (pooled, reply, sha)
    });
    let mut lost = None;
    while let Some(Request::Call { args, ctx, reply }) = from.recv().await {
        let frame = match view_call(view, &args, ctx).await {
            Ok(frame) => frame,
            Err(e) => {
                lost = Some(e.clone());
                error("ERR redcloak: the connection to Redis was lost during the script")
            }
        };
        let _ = reply.send(frame);
    }
    let (pooled, reply, sha) = thread.await.map_err(|_| ExchangeError::Lost)?;
    scripts.give(pooled);
    if let Some((sha, body)) = sha {
        scripts.remember(sha, body);
    }
    match lost {
        Some(e) => Err(e),
        None => Ok(reply),
    }
}

/// One `redis.call` on the view, its reply in the protocol the script chose.
async fn view_call<E: Exchange>(
    view: &mut Scratch<'_, E>,
    args: &[Bytes],
    ctx: CallContext,
) -> Result<Frame, ExchangeError> {
    let want_resp3 = ctx.resp == 3;
    let switched = view.switch_protocol(want_resp3).await?;
    let frame = match view.run(args).await? {
        Ran::Reply(frame) => frame,
        // A PUBLISH is sent when the script's effects are committed; its reply now is the
        // number of clients subscribed to the channel (patterns are not counted).
        Ran::Deferred(_) => view.subscribers(&args[1]).await?,
    };
    // A view on the client's own connection cannot switch protocols (a transaction redcloak
    // carries out): a RESP3 reply is converted for a script that asked for RESP2. (A script
    // that asks for RESP3 on a RESP2 client's transaction gets RESP2 replies.)
    Ok(if !switched && view.resp3() && !want_resp3 {
        scratch::to_resp2(frame)
    } else {
        frame
    })
}

/// The FUNCTION commands: the libraries live in Redis (`function_store`, encrypted).
async fn functions<E: Exchange>(
    scripts: &Scripts,
    op: ScriptOp,
    args: &[Bytes],
    ex: &mut E,
    ctx: &Ctx<'_>,
) -> Result<Frame, ExchangeError> {
    let call = match FunctionCall::parse(op, args) {
        Ok(call) => call,
        Err(reply) => return Ok(reply),
    };
    let writes = call.writes();
    let resp = if ctx.client_resp3 { 3 } else { 2 };
    if let Err(reply) = refresh(scripts, ex, ctx).await? {
        return Ok(reply);
    }
    let mut pooled = scripts.take();
    let engine = &mut pooled.engine;
    let reply = match call {
        FunctionCall::List { pattern, with_code } => {
            engine.function_list(pattern.as_deref(), with_code, resp)
        }
        FunctionCall::Stats => engine.function_stats(resp),
        FunctionCall::Dump => Frame::Bulk(Bytes::from(engine.function_dump())),
        FunctionCall::Load { replace, code } => match engine.function_load(code, replace) {
            Ok(name) => Frame::Bulk(Bytes::from(name)),
            Err(e) => e,
        },
        FunctionCall::Delete(name) => engine.function_delete(name),
        FunctionCall::Flush => {
            engine.function_flush();
            ok()
        }
        // A payload DUMP returned for a key through redcloak (sealed) is a valid dump of
        // something that is no function: Redis's words for it.
        FunctionCall::Restore { payload, .. } if dumped_key(ctx, payload) => {
            error("ERR given type is not a function")
        }
        FunctionCall::Restore { payload, policy } => engine.function_restore(payload, policy),
    };
    // What changed the libraries is stored before the client hears of it.
    let stored = if writes && !matches!(reply, Frame::Error(_)) {
        persist(scripts, &pooled.engine, ex, ctx).await
    } else {
        Ok(Ok(()))
    };
    match stored? {
        Ok(()) => {
            scripts.give(pooled);
            Ok(reply)
        }
        // The engine holds libraries Redis does not: it is dropped, not pooled.
        Err(refused) => Ok(refused),
    }
}

/// A FUNCTION subcommand with its arguments checked the way Redis checks them.
enum FunctionCall<'a> {
    List {
        pattern: Option<Bytes>,
        with_code: bool,
    },
    Stats,
    Dump,
    Load {
        replace: bool,
        code: &'a Bytes,
    },
    Delete(&'a Bytes),
    Flush,
    Restore {
        payload: &'a Bytes,
        policy: redcloak_script::RestorePolicy,
    },
}

impl<'a> FunctionCall<'a> {
    fn parse(op: ScriptOp, args: &'a [Bytes]) -> Result<FunctionCall<'a>, Frame> {
        use redcloak_commands::words;
        use redcloak_script::RestorePolicy;
        Ok(match op {
            ScriptOp::FunctionList => {
                let (mut pattern, mut with_code) = (None, false);
                let mut rest = args.iter().skip(2);
                while let Some(arg) = rest.next() {
                    if !with_code && words::is(arg, "WITHCODE") {
                        with_code = true;
                    } else if pattern.is_none() && words::is(arg, "LIBRARYNAME") {
                        match rest.next() {
                            Some(p) => pattern = Some(p.clone()),
                            None => return Err(error("ERR library name argument was not given")),
                        }
                    } else {
                        return Err(error(&format!(
                            "ERR Unknown argument {}",
                            String::from_utf8_lossy(words::c_str(arg))
                        )));
                    }
                }
                FunctionCall::List { pattern, with_code }
            }
            ScriptOp::FunctionStats => FunctionCall::Stats,
            ScriptOp::FunctionDump => FunctionCall::Dump,
            ScriptOp::FunctionLoad => {
                // Every argument but the last is an option (functionLoadCommand).
                let (code, options) = args[2..].split_last().expect("arity -3");
                let mut replace = false;
                for option in options {
                    if !words::is(option, "REPLACE") {
                        let option = String::from_utf8_lossy(words::c_str(option));
                        return Err(error(&format!("ERR Unknown option given: {option}")));
                    }
                    replace = true;
                }
                FunctionCall::Load { replace, code }
            }
            ScriptOp::FunctionDelete => FunctionCall::Delete(&args[2]),
            ScriptOp::FunctionFlush => match args.get(2) {
                _ if args.len() > 3 => return Err(syntax_error(&args[1])),
                Some(mode) if !(words::is(mode, "SYNC") || words::is(mode, "ASYNC")) => {
                    return Err(error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"))
                }
                _ => FunctionCall::Flush,
            },
            ScriptOp::FunctionRestore => {
                // functionRestoreCommand: the count, then the policy, then the payload.
                if args.len() > 4 {
                    return Err(syntax_error(&args[1]));
                }
                let policy = match args.get(3) {
                    None => RestorePolicy::Append,
                    Some(p) if words::is(p, "APPEND") => RestorePolicy::Append,
                    Some(p) if words::is(p, "REPLACE") => RestorePolicy::Replace,
                    Some(p) if words::is(p, "FLUSH") => RestorePolicy::Flush,
                    Some(_) => return Err(error(
                        "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
                    )),
                };
                FunctionCall::Restore {
                    payload: &args[2],
                    policy,
                }
            }
            _ => unreachable!("the other script operations are handled above"),
        })
    }

    /// Whether a success changes the libraries (and must be stored in Redis).
    fn writes(&self) -> bool {
        matches!(
            self,
            FunctionCall::Load { .. }
                | FunctionCall::Delete(_)
                | FunctionCall::Flush
                | FunctionCall::Restore { .. }
        )
    }
}

/// Stores `engine`'s libraries in Redis (replacing what was there) and makes them this
/// redcloak's current ones; `Err(reply)`: Redis did not store them, and why (for the client).
async fn persist<E: Exchange>(
    scripts: &Scripts,
    engine: &Engine,
    ex: &mut E,
    ctx: &Ctx<'_>,
) -> Result<Result<(), Frame>, ExchangeError> {
    let mut code = engine.libraries_code();
    code.sort();
    let sealed: Vec<(Bytes, Bytes)> = code
        .iter()
        .map(|(name, body)| {
            let at = Binding::field(ctx.functions_db, LEGACY_KEY, name.as_bytes());
            (
                Bytes::from(name.clone()),
                transform::seal_value(ctx.ring, body, &at),
            )
        })
        .collect();
    if let Err(reply) = store(ex, ctx, &sealed).await? {
        return Ok(Err(reply));
    }
    set_libraries(scripts, code);
    Ok(Ok(()))
}

/// Writes `sealed` as redcloak's function library in Redis.
async fn store<E: Exchange>(
    ex: &mut E,
    ctx: &Ctx<'_>,
    sealed: &[(Bytes, Bytes)],
) -> Result<Result<(), Frame>, ExchangeError> {
    let replies = ex.call(vec![function_store::write_command(sealed)]).await?;
    let reply = rmw::parse(ctx.limits, replies.first().ok_or(ExchangeError::Malformed)?)
        .map_err(|_| ExchangeError::Malformed)?;
    if function_store::written(&reply, sealed) {
        return Ok(Ok(()));
    }
    warn!("Redis did not store redcloak's function library");
    let said = match &reply {
        Frame::Error(e) => String::from_utf8_lossy(e).into_owned(),
        _ => "an unexpected reply".to_owned(),
    };
    Ok(Err(error(&format!(
        "ERR redcloak: the function libraries could not be stored in Redis ({said}); redcloak \
         keeps them in a Redis function library of its own ({}), so its Redis user needs \
         FUNCTION LOAD, FUNCTION DELETE and FCALL_RO (Redis 7.0 or later)",
        function_store::LIBRARY
    ))))
}

fn set_libraries(scripts: &Scripts, code: Vec<(String, Vec<u8>)>) {
    if let Ok(mut libs) = scripts.libraries.lock() {
        if libs.code != code {
            libs.code = code;
            libs.generation += 1;
        }
    }
}

/// Reloads the function libraries from Redis (moving them out of the old hash the first
/// time); `Err(reply)`: Redis would not give them, and why (for the client).
async fn refresh<E: Exchange>(
    scripts: &Scripts,
    ex: &mut E,
    ctx: &Ctx<'_>,
) -> Result<Result<(), Frame>, ExchangeError> {
    let replies = ex.call(vec![function_store::read_command()]).await?;
    let frame = rmw::parse(ctx.limits, replies.first().ok_or(ExchangeError::Malformed)?)
        .map_err(|_| ExchangeError::Malformed)?;
    let sealed = match function_store::parse(frame) {
        function_store::Read::Stored(sealed) => sealed,
        function_store::Read::Missing => match migrate(ex, ctx).await? {
            Ok(sealed) => sealed,
            Err(reply) => return Ok(Err(reply)),
        },
        function_store::Read::Refused(e) => {
            warn!("Redis refused to give redcloak's function library");
            return Ok(Err(error(&format!(
                "ERR redcloak: the function libraries could not be read from Redis ({}); \
                 redcloak keeps them in a Redis function library of its own ({}), so its Redis \
                 user needs FCALL_RO, FUNCTION LOAD and FUNCTION DELETE (Redis 7.0 or later)",
                String::from_utf8_lossy(&e),
                function_store::LIBRARY
            ))));
        }
        function_store::Read::Unreadable => {
            warn!("the Redis function library redcloak keeps its libraries in is not its own");
            return Ok(Err(error(&format!(
                "ERR redcloak: the Redis function library {} is not the one redcloak writes; \
                 redcloak keeps its clients' function libraries there: delete it in Redis \
                 (FUNCTION DELETE {}) if nothing else uses it",
                function_store::LIBRARY,
                function_store::LIBRARY
            ))));
        }
    };
    let mut code = Vec::with_capacity(sealed.len());
    for (name, sealed) in sealed {
        let at = Binding::field(ctx.functions_db, LEGACY_KEY, &name);
        match transform::open_value(ctx.ring, &sealed, &at) {
            Ok(body) => code.push((String::from_utf8_lossy(&name).into_owned(), body)),
            Err(e) => {
                warn!(error = %e, "a function library in Redis cannot be decrypted; it is ignored")
            }
        }
    }
    code.sort();
    if scripts.libraries.lock().is_ok_and(|libs| libs.code != code) {
        info!(
            libraries = code.len(),
            "function libraries reloaded from Redis"
        );
    }
    set_libraries(scripts, code);
    Ok(Ok(()))
}

/// The libraries as an older redcloak stored them (the hash [`LEGACY_KEY`], a key in the
/// client's keyspace), moved into redcloak's function library and the hash deleted; none
/// when there is no such hash.
async fn migrate<E: Exchange>(
    ex: &mut E,
    ctx: &Ctx<'_>,
) -> Result<Result<Vec<(Bytes, Bytes)>, Frame>, ExchangeError> {
    let (commands, at) = ctx.in_functions_db(vec![vec![
        Bytes::from_static(b"HGETALL"),
        Bytes::from_static(LEGACY_KEY),
    ]]);
    let replies = ex.call(commands).await?;
    let frame = rmw::parse(ctx.limits, replies.get(at).ok_or(ExchangeError::Malformed)?)
        .map_err(|_| ExchangeError::Malformed)?;
    let pairs: Vec<(Frame, Frame)> = match frame {
        Frame::Map(pairs) => pairs,
        Frame::Array(items) => {
            let mut it = items.into_iter();
            std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect()
        }
        _ => Vec::new(),
    };
    let mut sealed: Vec<(Bytes, Bytes)> = pairs
        .into_iter()
        .filter_map(|pair| match pair {
            (Frame::Bulk(name), Frame::Bulk(code)) => Some((name, code)),
            _ => None,
        })
        .collect();
    if sealed.is_empty() {
        return Ok(Ok(sealed));
    }
    sealed.sort();
    // The hash goes only once Redis holds its content in the library.
    if let Err(reply) = store(ex, ctx, &sealed).await? {
        return Ok(Err(reply));
    }
    let (commands, _) = ctx.in_functions_db(vec![vec![
        Bytes::from_static(b"DEL"),
        Bytes::from_static(LEGACY_KEY),
    ]]);
    ex.call(commands).await?;
    info!(
        libraries = sealed.len(),
        "function libraries moved from the hash redcloak:internal:functions into the Redis \
         function library redcloak_internal"
    );
    Ok(Ok(sealed))
}

/// Redis's `addReplySubcommandSyntaxError` for a FUNCTION subcommand, named as the client
/// wrote it.
fn syntax_error(subcommand: &[u8]) -> Frame {
    let name = redcloak_commands::words::c_str(subcommand);
    let name = String::from_utf8_lossy(&name[..name.len().min(128)]);
    error(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{name}'. Try FUNCTION HELP."
    ))
}

fn ok() -> Frame {
    Frame::Simple(Bytes::from_static(b"OK"))
}

/// Whether `payload` is what DUMP returned for a key through redcloak: it opens under the key
/// ring (with `REDCLOAK_VALUE_FORMAT=aes-gcm`, bound to a key this call does not know: a
/// binding error says it opened).
fn dumped_key(ctx: &Ctx<'_>, payload: &[u8]) -> bool {
    let anywhere = Binding::field(ctx.db, b"", transform::DUMP_SLOT);
    matches!(
        ctx.ring.decrypt_value(payload, &anywhere),
        Ok(_) | Err(redcloak_crypto::DecryptError::Binding)
    )
}

fn error(text: &str) -> Frame {
    Frame::Error(Bytes::copy_from_slice(text.as_bytes()))
}
