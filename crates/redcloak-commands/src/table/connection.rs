//! Connection commands.
use super::{
    forward, Action, CommandSpec, Family::Connection, Local, ReplyRule::Pass, ValueArgs::None,
};

pub(super) const COMMANDS: &[CommandSpec] = &[
    forward("PING", -1, None, Pass, Connection),
    forward("ECHO", 2, None, Pass, Connection),
    // The connection is dedicated to this client, so the selected database stays correct.
    forward("SELECT", 2, None, Pass, Connection),
    // AUTH [username] password: the upstream connection is authenticated with redcloak's own
    // secret; what the client sends is discarded, never forwarded or logged.
    local("AUTH", -2, Local::Auth),
    local("QUIT", -1, Local::Quit),
];

const fn local(name: &'static str, arity: i32, local: Local) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        action: Action::Local(local),
        values: None,
        reply: Pass,
        family: Connection,
    }
}
