//! Scripts and functions: Redis would run them on ciphertext, so redcloak runs them itself —
//! Lua 5.1 with Redis's sandbox, API and libraries (`redcloak-script`), every `redis.call`
//! through this table, atomically.
use super::reasons::{OPERATOR, OPERATOR_ALT};
use super::{container, pass, refuse, scripted, CommandSpec, Family::Scripting, ScriptOp};

const SCRIPT: &[CommandSpec] = &[
    scripted("LOAD", 3, ScriptOp::Load),
    refuse("DEBUG", 3, Scripting, OPERATOR, Some(OPERATOR_ALT)),
    scripted("EXISTS", -3, ScriptOp::Exists),
    scripted("FLUSH", -2, ScriptOp::Flush),
    scripted("KILL", 2, ScriptOp::Kill),
    pass("HELP", 2, Scripting),
];

const FUNCTION: &[CommandSpec] = &[
    scripted("LOAD", -3, ScriptOp::FunctionLoad),
    scripted("RESTORE", -3, ScriptOp::FunctionRestore),
    scripted("DELETE", 3, ScriptOp::FunctionDelete),
    scripted("DUMP", 2, ScriptOp::FunctionDump),
    scripted("FLUSH", -2, ScriptOp::FunctionFlush),
    scripted("KILL", 2, ScriptOp::Kill),
    scripted("LIST", -2, ScriptOp::FunctionList),
    scripted("STATS", 2, ScriptOp::FunctionStats),
    pass("HELP", 2, Scripting),
];

pub(super) const COMMANDS: &[CommandSpec] = &[
    scripted(
        "EVAL",
        -3,
        ScriptOp::Eval {
            read_only: false,
            by_sha: false,
        },
    ),
    scripted(
        "EVALSHA",
        -3,
        ScriptOp::Eval {
            read_only: false,
            by_sha: true,
        },
    ),
    scripted(
        "EVAL_RO",
        -3,
        ScriptOp::Eval {
            read_only: true,
            by_sha: false,
        },
    ),
    scripted(
        "EVALSHA_RO",
        -3,
        ScriptOp::Eval {
            read_only: true,
            by_sha: true,
        },
    ),
    scripted("FCALL", -3, ScriptOp::Fcall { read_only: false }),
    scripted("FCALL_RO", -3, ScriptOp::Fcall { read_only: true }),
    container("SCRIPT", -2, Scripting, SCRIPT),
    container("FUNCTION", -2, Scripting, FUNCTION),
];
