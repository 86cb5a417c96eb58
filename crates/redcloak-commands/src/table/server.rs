//! Server and operator commands. Read-only introspection passes; anything that reconfigures,
//! replicates, persists on demand, inspects other clients' commands or reveals credentials is
//! the operator's job and is refused.
use super::reasons::{CLUSTER, OPERATOR, OPERATOR_ALT};
use super::{
    container, forward, local, pass, refuse, CommandSpec, Family::Server, Local, Shape, ValueArgs,
};

const fn operator(name: &'static str, arity: i32) -> CommandSpec {
    refuse(name, arity, Server, OPERATOR, Some(OPERATOR_ALT))
}

const fn cluster(name: &'static str, arity: i32) -> CommandSpec {
    refuse(name, arity, Server, CLUSTER, None)
}

const CONFIG: &[CommandSpec] = &[
    // Answered as an ACL-restricted user sees it: credentials and key paths are left out.
    forward("GET", -3, ValueArgs::None, &Shape::Config, Server),
    operator("SET", -4),
    operator("RESETSTAT", 2),
    operator("REWRITE", 2),
    pass("HELP", 2, Server),
];

const ACL: &[CommandSpec] = &[
    pass("WHOAMI", 2, Server),
    pass("CAT", -2, Server),
    pass("GENPASS", -2, Server),
    pass("HELP", 2, Server),
    refuse(
        "DRYRUN",
        -4,
        Server,
        "it would send the command's arguments, values included, to Redis unencrypted",
        None,
    ),
    operator("SETUSER", -3),
    operator("DELUSER", -3),
    operator("GETUSER", 3),
    operator("LIST", 2),
    operator("USERS", 2),
    operator("LOAD", 2),
    operator("SAVE", 2),
    operator("LOG", -2),
];

const COMMAND: &[CommandSpec] = &[
    pass("COUNT", 2, Server),
    pass("DOCS", -2, Server),
    pass("INFO", -2, Server),
    pass("LIST", -2, Server),
    pass("HELP", 2, Server),
    // The arguments (values included) never reach Redis: redcloak knows the key positions.
    local("GETKEYS", -4, Local::GetKeys { flags: false }, Server),
    local(
        "GETKEYSANDFLAGS",
        -4,
        Local::GetKeys { flags: true },
        Server,
    ),
];

const LATENCY: &[CommandSpec] = &[
    pass("DOCTOR", 2, Server),
    pass("GRAPH", 3, Server),
    pass("HISTOGRAM", -2, Server),
    pass("HISTORY", 3, Server),
    pass("LATEST", 2, Server),
    pass("HELP", 2, Server),
    operator("RESET", -2),
];

const MEMORY: &[CommandSpec] = &[
    pass("DOCTOR", 2, Server),
    pass("MALLOC-STATS", 2, Server),
    pass("PURGE", 2, Server),
    pass("STATS", 2, Server),
    pass("USAGE", -3, Server),
    pass("HELP", 2, Server),
];

const SLOWLOG: &[CommandSpec] = &[
    pass("LEN", 2, Server),
    pass("HELP", 2, Server),
    refuse(
        "GET",
        -2,
        Server,
        "it shows the arguments of every client's slow commands",
        Some(OPERATOR_ALT),
    ),
    operator("RESET", 2),
];

const MODULE: &[CommandSpec] = &[
    operator("LIST", 2),
    operator("LOAD", -3),
    operator("LOADEX", -3),
    operator("UNLOAD", 3),
    operator("HELP", 2),
];

// Redis 7.0's CLUSTER subcommands, each refused with its arity checked first (as Redis checks
// it before answering "cluster support disabled"); a subcommand Redis does not know gets
// Redis's own `unknown subcommand` words.
const CLUSTER_SUBCOMMANDS: &[CommandSpec] = &[
    cluster("ADDSLOTS", -3),
    cluster("ADDSLOTSRANGE", -4),
    cluster("BUMPEPOCH", 2),
    cluster("COUNT-FAILURE-REPORTS", 3),
    cluster("COUNTKEYSINSLOT", 3),
    cluster("DELSLOTS", -3),
    cluster("DELSLOTSRANGE", -4),
    cluster("FAILOVER", -2),
    cluster("FLUSHSLOTS", 2),
    cluster("FORGET", 3),
    cluster("GETKEYSINSLOT", 4),
    cluster("HELP", 2),
    cluster("INFO", 2),
    cluster("KEYSLOT", 3),
    cluster("LINKS", 2),
    cluster("MEET", -4),
    cluster("MYID", 2),
    cluster("NODES", 2),
    cluster("REPLICAS", 3),
    cluster("REPLICATE", 3),
    cluster("RESET", -2),
    cluster("SAVECONFIG", 2),
    cluster("SET-CONFIG-EPOCH", 3),
    cluster("SETSLOT", -4),
    cluster("SHARDS", 2),
    cluster("SLAVES", 3),
    cluster("SLOTS", 2),
];

pub(super) const COMMANDS: &[CommandSpec] = &[
    pass("INFO", -1, Server),
    pass("TIME", 1, Server),
    pass("LASTSAVE", 1, Server),
    pass("ROLE", 1, Server),
    pass("LOLWUT", -1, Server),
    // `COMMAND` alone lists every command.
    CommandSpec {
        action: super::Action::Forward,
        ..container("COMMAND", -1, Server, COMMAND)
    },
    container("CONFIG", -2, Server, CONFIG),
    container("ACL", -2, Server, ACL),
    container("LATENCY", -2, Server, LATENCY),
    container("MEMORY", -2, Server, MEMORY),
    container("SLOWLOG", -2, Server, SLOWLOG),
    container("MODULE", -2, Server, MODULE),
    // Every CLUSTER subcommand is refused (redcloak talks to one Redis, not a cluster).
    container("CLUSTER", -2, Server, CLUSTER_SUBCOMMANDS),
    cluster("ASKING", 1),
    cluster("READONLY", 1),
    cluster("READWRITE", 1),
    operator("DEBUG", -2),
    operator("MONITOR", 1),
    operator("SAVE", 1),
    operator("BGSAVE", -1),
    operator("BGREWRITEAOF", 1),
    operator("SHUTDOWN", -1),
    operator("REPLICAOF", 3),
    operator("SLAVEOF", 3),
    operator("SYNC", 1),
    operator("PSYNC", -3),
    operator("REPLCONF", -1),
    operator("FAILOVER", -1),
];
