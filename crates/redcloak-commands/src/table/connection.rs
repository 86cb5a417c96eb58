//! Connection commands.
use super::reasons::{OPERATOR, OPERATOR_ALT};
use super::{
    container, local, pass, refuse, session, CommandSpec, Effect, Family::Connection, Local,
};

const CLIENT_STATE: &str = "redcloak relies on every command getting its reply, in order, and on values reaching the application only through it";

// The subcommands of Redis 7.0, the version redcloak is tested against. CLIENT SETINFO
// (Redis 7.2) is not one: redcloak answers it as Redis 7.0 does (`unknown subcommand`, and
// inside MULTI the transaction is aborted); redis-py and node-redis send it at connect and
// ignore that error.
const CLIENT: &[CommandSpec] = &[
    pass("SETNAME", 3, Connection),
    pass("GETNAME", 2, Connection),
    pass("ID", 2, Connection),
    pass("INFO", 2, Connection),
    pass("LIST", -2, Connection),
    pass("NO-EVICT", 3, Connection),
    pass("GETREDIR", 2, Connection),
    pass("TRACKINGINFO", 2, Connection),
    pass("HELP", 2, Connection),
    refuse("TRACKING", -3, Connection, "client-side caching would let the client cache and be told about values outside redcloak's rules", Some("cache decrypted values in the application if you need to")),
    refuse("CACHING", 3, Connection, "client-side caching (CLIENT TRACKING) is not supported", None),
    refuse("REPLY", 3, Connection, CLIENT_STATE, None),
    refuse("KILL", -3, Connection, OPERATOR, Some(OPERATOR_ALT)),
    refuse("PAUSE", -3, Connection, OPERATOR, Some(OPERATOR_ALT)),
    refuse("UNPAUSE", 2, Connection, OPERATOR, Some(OPERATOR_ALT)),
    refuse("UNBLOCK", -3, Connection, OPERATOR, Some(OPERATOR_ALT)),
];

pub(super) const COMMANDS: &[CommandSpec] = &[
    // PING's and ECHO's message is application data: answered here, never sent in plaintext.
    local("PING", -1, Local::Ping, Connection),
    local("ECHO", 2, Local::Echo, Connection),
    // The connection is dedicated to this client, so the selected database stays correct.
    session("SELECT", 2, Effect::Select, Connection),
    // AUTH [username] password: the upstream connection is authenticated with redcloak's own
    // secret; what the client sends is discarded, never forwarded or logged.
    local("AUTH", -2, Local::Auth, Connection),
    local("QUIT", -1, Local::Quit, Connection),
    session("HELLO", -1, Effect::Hello, Connection),
    session("RESET", 1, Effect::Reset, Connection),
    container("CLIENT", -2, Connection, CLIENT),
];
