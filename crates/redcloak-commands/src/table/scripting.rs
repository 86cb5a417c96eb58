//! Scripts and functions: they run inside Redis, on ciphertext.
use super::reasons::{SCRIPTS, SCRIPTS_ALT};
use super::{container, pass, refuse, CommandSpec, Family::Scripting};

const fn script(name: &'static str, arity: i32) -> CommandSpec {
    refuse(name, arity, Scripting, SCRIPTS, Some(SCRIPTS_ALT))
}

const SCRIPT: &[CommandSpec] = &[
    script("LOAD", 3),
    refuse(
        "DEBUG",
        3,
        Scripting,
        super::reasons::OPERATOR,
        Some(super::reasons::OPERATOR_ALT),
    ),
    pass("EXISTS", -3, Scripting),
    pass("FLUSH", -2, Scripting),
    pass("KILL", 2, Scripting),
    pass("HELP", 2, Scripting),
];

const FUNCTION: &[CommandSpec] = &[
    script("LOAD", -3),
    script("RESTORE", -3),
    pass("DELETE", 3, Scripting),
    pass("DUMP", 2, Scripting),
    pass("FLUSH", -2, Scripting),
    pass("KILL", 2, Scripting),
    pass("LIST", -2, Scripting),
    pass("STATS", 2, Scripting),
    pass("HELP", 2, Scripting),
];

pub(super) const COMMANDS: &[CommandSpec] = &[
    script("EVAL", -3),
    script("EVALSHA", -3),
    script("EVAL_RO", -3),
    script("EVALSHA_RO", -3),
    script("FCALL", -3),
    script("FCALL_RO", -3),
    container("SCRIPT", -2, Scripting, SCRIPT),
    container("FUNCTION", -2, Scripting, FUNCTION),
];
