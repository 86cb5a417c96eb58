//! redcloak's script engine: EVAL / EVALSHA / SCRIPT and FUNCTION / FCALL, run by redcloak
//! itself in a Lua 5.1 state that reproduces Redis 7.0's scripting environment, because Redis
//! cannot run scripts over encrypted values.
//!
//! # Layout
//! - [`engine`]: [`Engine`] (script cache by SHA1, function libraries) and its options.
//! - [`backend`]: the [`Backend`] trait through which every `redis.call` leaves the engine.
//! - `vm`: one sandboxed Lua state and the `redis` API inside it; `prelude.lua` makes the
//!   globals read-only as Redis 7.0 does.
//! - `sandbox`: the base functions that must see through (and refuse writes to) the
//!   read-only proxies.
//! - `convert`: Lua ↔ RESP conversions (RESP2 and RESP3).
//! - `libs`: `bit`, `cjson`, `cmsgpack`, `struct`, written for redcloak.
//! - `dump`: the FUNCTION DUMP payload.
//!
//! The crate does no I/O, starts no thread and logs nothing itself (only `redis.log`, through
//! [`Backend::log`]).
//!
//! # Security
//! Scripts are untrusted code. They run with Redis's sandbox: no `os`, `io`, `debug`,
//! `require`, `loadfile`, `dofile`, no bytecode loading, read-only globals and libraries (so
//! one script cannot plant code another script will run), a wall-clock time limit enforced
//! by an instruction hook, and a memory limit on each Lua state. Error texts never contain
//! ARGV values beyond what Redis itself would include.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod backend;
mod convert;
mod dump;
pub mod engine;
mod libs;
mod numfmt;
mod sandbox;
mod vm;

pub use backend::{Backend, CallContext, CommandInfo, LogLevel};
pub use engine::{parse_numkeys, Engine, Limits, RestorePolicy, RunOptions, ScriptFlags};
