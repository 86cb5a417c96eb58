//! Key space and expiry commands: they name keys, never values.
use super::{forward, CommandSpec, Family::Keys, ReplyRule::Pass, ValueArgs::None};

pub(super) const COMMANDS: &[CommandSpec] = &[
    forward("DEL", -2, None, Pass, Keys),
    forward("UNLINK", -2, None, Pass, Keys),
    forward("EXISTS", -2, None, Pass, Keys),
    forward("EXPIRE", -3, None, Pass, Keys),
    forward("PEXPIRE", -3, None, Pass, Keys),
    forward("TTL", 2, None, Pass, Keys),
    forward("PTTL", 2, None, Pass, Keys),
    forward("PERSIST", 2, None, Pass, Keys),
    forward("TYPE", 2, None, Pass, Keys),
];
