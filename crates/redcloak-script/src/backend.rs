//! What the engine asks of its host: running one command, describing commands, logging.

use bytes::Bytes;
use redcloak_commands::resp::Frame;

/// The severity of a `redis.log` line (`redis.LOG_DEBUG` … `redis.LOG_WARNING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// `redis.LOG_DEBUG` (0).
    Debug,
    /// `redis.LOG_VERBOSE` (1).
    Verbose,
    /// `redis.LOG_NOTICE` (2).
    Notice,
    /// `redis.LOG_WARNING` (3).
    Warning,
}

impl LogLevel {
    pub(crate) fn from_number(n: i64) -> Option<LogLevel> {
        match n {
            0 => Some(LogLevel::Debug),
            1 => Some(LogLevel::Verbose),
            2 => Some(LogLevel::Notice),
            3 => Some(LogLevel::Warning),
            _ => None,
        }
    }
}

/// What the engine needs to know about a command before a script may run it, as Redis's own
/// command table says it (`COMMAND INFO`): this decides Redis's exact script errors
/// (`Unknown Redis command called from script`, `Wrong number of args calling Redis command
/// from script`, `This Redis command is not allowed from script`, `Write commands are not
/// allowed from read-only scripts.`) before [`Backend::call`] is ever reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandInfo {
    /// Redis's arity: `n > 0` exactly n arguments (command name included), `n < 0` at least
    /// `-n`. For a container command (`CONFIG GET`) the arity of the subcommand.
    pub arity: i64,
    /// The command may modify data (Redis flag `write`).
    pub write: bool,
    /// The command may not be called from scripts (Redis flag `noscript`: MULTI, WATCH, EVAL,
    /// BLPOP, SUBSCRIBE, CLIENT …).
    pub noscript: bool,
}

/// The protocol and permissions a `redis.call` runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallContext {
    /// The protocol the script selected with `redis.setresp` (2 or 3): [`Backend::call`] must
    /// answer in it (RESP3 maps, sets, doubles, nulls… only when 3).
    pub resp: u8,
    /// The script runs read-only (EVAL_RO, EVALSHA_RO, FCALL_RO, or the `no-writes` flag). The
    /// engine already refuses commands whose [`CommandInfo::write`] is set; this is for the
    /// backend's own defence in depth.
    pub read_only: bool,
}

/// The host of the engine: the proxy, which encrypts and decrypts and talks to Redis.
///
/// The engine does no I/O: each `redis.call` / `redis.pcall` of a script becomes one
/// [`Backend::command_info`] and, when the script may run it, one [`Backend::call`].
pub trait Backend {
    /// Describes the command `args[0]` (as the script wrote it, any case), with its arguments
    /// so that a container command (`CONFIG GET`, `OBJECT ENCODING`) can be looked up as its
    /// subcommand. `None`: Redis does not know it (the script gets
    /// `Unknown Redis command called from script`). A command the proxy refuses for its own
    /// reasons may still be described here; [`Backend::call`] then answers its error.
    fn command_info(&mut self, args: &[Bytes]) -> Option<CommandInfo>;

    /// Runs one command and returns Redis's reply exactly as Redis would send it to a client
    /// speaking `ctx.resp` (values decrypted). An error is `Frame::Error` (`-ERR …`,
    /// `-WRONGTYPE …`) or `Frame::BulkError`. Called only for commands that
    /// [`Backend::command_info`] described, with the right arity, not `noscript`, and not a
    /// write in a read-only script.
    fn call(&mut self, args: &[Bytes], ctx: &CallContext) -> Frame;

    /// `redis.log(level, …)`: one line written by the script. The engine never logs anything
    /// else.
    fn log(&mut self, level: LogLevel, message: &[u8]);

    /// `redis.acl_check_cmd(…)`: may the current user run this command? The default allows
    /// everything (the proxy authenticates to Redis as one user).
    fn acl_check(&mut self, args: &[Bytes]) -> bool {
        let _ = args;
        true
    }
}
