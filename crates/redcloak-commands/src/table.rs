//! The command table: one row per command redcloak knows, saying what it does with it.
//!
//! # Security
//! The table is the policy. A command that is not in it is refused (fail closed), so a new
//! Redis command can never carry a plaintext value past the proxy by accident. Every row
//! states which arguments are values (encrypted before they leave) and which parts of the
//! reply are values (decrypted before the client sees them).
//!
//! Rows are grouped by family in `table/strings.rs`, `keys.rs` and `connection.rs`; later families only
//! add rows (and, where a reply has a new shape, a [`ReplyRule`] variant).

mod connection;
mod hashes;
mod keys;
mod keyspecs;
mod lists;
mod members;
mod pubsub;
mod scripting;
mod server;
mod streams;
mod strings;
mod tx;

use bytes::Bytes;

/// How a command is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Encrypt the value arguments and forward to Redis; transform the reply by the row's rule.
    Forward,
    /// Answered by redcloak itself, never forwarded.
    Local(Local),
    /// Forwarded, with bookkeeping in the session (transactions, pub/sub, protocol, reset).
    Session(Session),
    /// Refused with an explanation: the command cannot work on encrypted values, or would
    /// reconfigure or bypass the secured server.
    Refuse(Refusal),
}

/// Commands redcloak answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// `AUTH`: the client's credentials are discarded; the upstream connection is
    /// authenticated with redcloak's own secret. Answered `+OK`.
    Auth,
    /// `QUIT`: answered `+OK`, then the connection is closed after every earlier reply.
    Quit,
}

/// Commands that change the state of the session, which redcloak must track to keep
/// decrypting replies correctly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// `MULTI`: later commands are queued by Redis; their reply rules are kept for `EXEC`.
    Multi,
    /// `EXEC`: the reply is an array decoded element by element by the queued rules.
    Exec,
    /// `DISCARD`: the queue is dropped.
    Discard,
    /// `HELLO`: the `AUTH` part is answered by redcloak (stripped), the rest is forwarded;
    /// `HELLO 3` switches the connection to RESP3 end to end.
    Hello,
    /// `RESET`: forwarded, then redcloak authenticates the connection again.
    Reset,
    /// `SUBSCRIBE`, `PSUBSCRIBE`, `SSUBSCRIBE`, and their `UNSUBSCRIBE`s: Redis answers with
    /// one confirmation per channel, as pushes; message payloads are decrypted.
    PubSub,
}

/// Why a known command is refused, and what to do instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Why the command cannot work through redcloak (completes "… is not supported on
    /// encrypted values: …").
    pub reason: &'static str,
    /// What to do instead, when something exists.
    pub alternative: Option<&'static str>,
}

/// Which arguments of a command are values. Indexes count the command name as 0 (for a
/// subcommand, the container: `CLIENT SETNAME name` → `name` is 2).
#[derive(Debug, Clone, Copy)]
pub enum ValueArgs {
    /// No argument is a value.
    None,
    /// Exactly the argument at this index (e.g. `SET key value` → 2).
    At(usize),
    /// Every second argument starting at this index (`MSET k v k v` → 2, 4, …).
    EveryOther(usize),
    /// Every argument from this index on (`LPUSH key v v v` → 2…).
    From(usize),
    /// Positions that depend on options (`XADD`): computed from the arguments; an error is a
    /// syntax error answered by redcloak (nothing is forwarded when values cannot be found).
    Custom(fn(&[Bytes]) -> Result<ValueArgs, &'static str>),
    /// The argument at this index is a payload redcloak sealed earlier (`RESTORE` of a
    /// `DUMP`): it is opened before forwarding, and anything else is refused.
    Unseal(usize),
}

impl ValueArgs {
    /// Whether argument `index` (0 = the command name) is a value. `Custom` must be resolved
    /// first ([`ValueArgs::resolve`]); it answers false. `Unseal` positions are not values.
    pub fn is_value(self, index: usize) -> bool {
        match self {
            ValueArgs::None | ValueArgs::Custom(_) | ValueArgs::Unseal(_) => false,
            ValueArgs::At(i) => index == i,
            ValueArgs::EveryOther(start) => index >= start && (index - start) % 2 == 0,
            ValueArgs::From(start) => index >= start,
        }
    }

    /// Whether the command has value arguments at all.
    pub fn any(self) -> bool {
        !matches!(self, ValueArgs::None)
    }

    /// Resolves `Custom` positions for these arguments.
    pub fn resolve(self, args: &[Bytes]) -> Result<ValueArgs, &'static str> {
        match self {
            ValueArgs::Custom(f) => f(args),
            other => Ok(other),
        }
    }
}

/// Where the values are in a reply. Shapes describe the reply tree; a node whose type does
/// not match its shape passes unchanged (it holds no value redcloak wrote, e.g. an error or
/// nil). RESP2 and RESP3 forms of the same reply are both covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Nothing in the reply is a value: forwarded byte for byte.
    Pass,
    /// A bulk string is a value (`GET`); nil, status and integer replies pass.
    Value,
    /// Every bulk string anywhere in the reply is a value (`LRANGE`, `LPOP` with or without a
    /// count, `HVALS`).
    Values,
    /// An array of values, one per key argument (`MGET`): errors name the key.
    PerKey,
    /// An array whose element `i` has shape `i` (missing shapes pass).
    Tuple(&'static [Shape]),
    /// Every element of an array, set or push has this shape.
    Each(&'static Shape),
    /// Field/value pairs: a RESP3 map, an array of 2-element arrays, or a flat
    /// `[field, value, …]` array; the values (second of each pair) have this shape.
    Pairs(&'static Shape),
    /// Named fields (a map or a flat `[name, value, …]` array) where some names hold values
    /// of the given shape (`XINFO STREAM`).
    Fields(&'static [(&'static str, Shape)]),
    /// The bulk reply is sealed (encrypted) for the client: `DUMP` payloads, which redcloak
    /// later accepts back in `RESTORE` and nothing else does.
    Seal,
}

/// How the reply shape is found for one request.
#[derive(Debug, Clone, Copy)]
pub enum ReplyRule {
    /// Always this shape.
    Shape(&'static Shape),
    /// Depends on the arguments (`HRANDFIELD … WITHVALUES`).
    Custom(fn(&[Bytes]) -> &'static Shape),
}

impl ReplyRule {
    /// The shape of the reply to these arguments.
    pub fn shape(self, args: &[Bytes]) -> &'static Shape {
        match self {
            ReplyRule::Shape(shape) => shape,
            ReplyRule::Custom(f) => f(args),
        }
    }

    /// Whether the reply never holds a value, whatever the arguments.
    pub fn is_pass(self) -> bool {
        matches!(self, ReplyRule::Shape(Shape::Pass))
    }
}

/// The family a command belongs to, for `docs/commands.md` and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// PING, ECHO, AUTH, HELLO, SELECT, QUIT, RESET, CLIENT…
    Connection,
    /// Key space and expiry: DEL, EXISTS, EXPIRE, TTL, TYPE, SCAN, RENAME…
    Keys,
    /// String values: SET, GET, MSET…
    Strings,
    /// Hashes: HSET, HGET, HGETALL…
    Hashes,
    /// Lists: LPUSH, LRANGE, BLPOP…
    Lists,
    /// Streams: XADD, XRANGE, XREAD…
    Streams,
    /// Pub/sub: PUBLISH, SUBSCRIBE…
    PubSub,
    /// Transactions: MULTI, EXEC, WATCH…
    Transactions,
    /// Sets, sorted sets, geo and HyperLogLog: members are data (refused until members are
    /// encrypted deterministically).
    Members,
    /// Bitmaps and bitfields.
    Bitmaps,
    /// Scripts and functions.
    Scripting,
    /// Server and operator commands.
    Server,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// Upper-case command name as Redis spells it (for a subcommand: the subcommand alone).
    pub name: &'static str,
    /// Redis arity: `n > 0` exactly n arguments (name included), `n < 0` at least `-n`. For a
    /// subcommand, the container counts: `CLIENT SETNAME name` has arity 3.
    pub arity: i32,
    /// What redcloak does with the command.
    pub action: Action,
    /// Which arguments are values (only meaningful for forwarded commands).
    pub values: ValueArgs,
    /// Which parts of the reply are values.
    pub reply: ReplyRule,
    /// The family, for documentation.
    pub family: Family,
    /// For containers (`CLIENT`, `CONFIG`, `XINFO`…): the subcommands; the container's own
    /// action applies only to subcommands that are not listed (refused).
    pub subcommands: &'static [CommandSpec],
}

impl CommandSpec {
    /// Whether `argc` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }
}

/// Shorthand constructors used by the family files.
pub(crate) const fn forward(
    name: &'static str,
    arity: i32,
    values: ValueArgs,
    reply: &'static Shape,
    family: Family,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        action: Action::Forward,
        values,
        reply: ReplyRule::Shape(reply),
        family,
        subcommands: &[],
    }
}

/// A forwarded command whose arguments and replies hold no value.
pub(crate) const fn pass(name: &'static str, arity: i32, family: Family) -> CommandSpec {
    forward(name, arity, ValueArgs::None, &Shape::Pass, family)
}

pub(crate) const fn refuse(
    name: &'static str,
    arity: i32,
    family: Family,
    reason: &'static str,
    alternative: Option<&'static str>,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        action: Action::Refuse(Refusal {
            reason,
            alternative,
        }),
        values: ValueArgs::None,
        reply: ReplyRule::Shape(&Shape::Pass),
        family,
        subcommands: &[],
    }
}

pub(crate) const fn session(
    name: &'static str,
    arity: i32,
    session: Session,
    family: Family,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        action: Action::Session(session),
        values: ValueArgs::None,
        reply: ReplyRule::Shape(&Shape::Pass),
        family,
        subcommands: &[],
    }
}

pub(crate) const fn container(
    name: &'static str,
    arity: i32,
    family: Family,
    subcommands: &'static [CommandSpec],
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        action: Action::Refuse(Refusal {
            reason: "this subcommand is not one redcloak knows to be safe",
            alternative: Some("see docs/commands.md for the subcommands that work"),
        }),
        values: ValueArgs::None,
        reply: ReplyRule::Shape(&Shape::Pass),
        family,
        subcommands,
    }
}

/// Refusal texts shared by families.
pub(crate) mod reasons {
    /// Operator commands.
    pub const OPERATOR: &str =
        "it would reconfigure, inspect or bypass the secured Redis, which is the operator's job, not the application's";
    /// Operator alternative.
    pub const OPERATOR_ALT: &str =
        "run it against Redis directly with an operator's credentials (redis-cli --tls …)";
    /// Scripts.
    pub const SCRIPTS: &str =
        "scripts and functions run inside Redis on ciphertext, not on your values";
    /// Scripts alternative.
    pub const SCRIPTS_ALT: &str =
        "do the computation in the application, or use MULTI/EXEC (with WATCH) for atomicity";
    /// Cluster.
    pub const CLUSTER: &str = "redcloak speaks to one Redis server; cluster mode is not supported";
}

/// Every top-level row of the table, in no particular order.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    [
        connection::COMMANDS,
        keys::COMMANDS,
        strings::COMMANDS,
        hashes::COMMANDS,
        lists::COMMANDS,
        streams::COMMANDS,
        pubsub::COMMANDS,
        tx::COMMANDS,
        members::COMMANDS,
        scripting::COMMANDS,
        server::COMMANDS,
    ]
    .into_iter()
    .flatten()
}

/// The longest command name in the table; longer names cannot match.
const MAX_NAME: usize = 32;

/// Looks a top-level command up by name, ASCII case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    find(index(), name)
}

/// The result of looking a request up in the table.
#[derive(Debug, Clone, Copy)]
pub enum Resolved {
    /// A known command (or subcommand, with its container).
    Known {
        /// The row that applies.
        spec: &'static CommandSpec,
        /// The container, for a subcommand.
        parent: Option<&'static CommandSpec>,
    },
    /// No such command in the table.
    Unknown,
    /// A known container with a subcommand that is not in the table.
    UnknownSubcommand(&'static CommandSpec),
    /// A container without its subcommand (wrong number of arguments).
    MissingSubcommand(&'static CommandSpec),
}

/// Looks up a request's command, descending into subcommands.
pub fn resolve(args: &[Bytes]) -> Resolved {
    let Some(spec) = args.first().and_then(|name| lookup(name)) else {
        return Resolved::Unknown;
    };
    if spec.subcommands.is_empty() || (args.len() == 1 && spec.arity_ok(1)) {
        // Plain commands, and containers that also work alone (`COMMAND`).
        return Resolved::Known { spec, parent: None };
    }
    let Some(sub) = args.get(1) else {
        return Resolved::MissingSubcommand(spec);
    };
    match spec
        .subcommands
        .iter()
        .find(|s| s.name.as_bytes().eq_ignore_ascii_case(sub))
    {
        Some(child) => Resolved::Known {
            spec: child,
            parent: Some(spec),
        },
        None => Resolved::UnknownSubcommand(spec),
    }
}

fn find(rows: &[&'static CommandSpec], name: &[u8]) -> Option<&'static CommandSpec> {
    if name.is_empty() || name.len() > MAX_NAME {
        return None;
    }
    let mut upper = [0u8; MAX_NAME];
    let upper = &mut upper[..name.len()];
    upper.copy_from_slice(name);
    upper.make_ascii_uppercase();
    rows.binary_search_by(|spec| spec.name.as_bytes().cmp(upper))
        .ok()
        .map(|i| rows[i])
}

/// The rows sorted by name, built once.
fn index() -> &'static [&'static CommandSpec] {
    static INDEX: std::sync::OnceLock<Vec<&'static CommandSpec>> = std::sync::OnceLock::new();
    INDEX.get_or_init(|| {
        let mut rows: Vec<&'static CommandSpec> = all().collect();
        rows.sort_by_key(|spec| spec.name);
        rows
    })
}

pub use keyspecs::KeySpec;

/// The key arguments of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUse {
    /// Indexes of the key arguments (into the request's arguments).
    pub keys: Vec<usize>,
    /// The command may modify data.
    pub write: bool,
    /// The command may touch keys that cannot be listed (FLUSHDB, SWAPDB, unknown movable
    /// keys): a cache must forget everything of the database (or all databases).
    pub touches_all: bool,
    /// The command may block (see [`KeySpec::blocking`]).
    pub blocking: bool,
}

/// The key positions of a command as Redis 7.0 declares them (see `keyspecs.rs`).
pub fn key_spec(spec: &CommandSpec, parent: Option<&CommandSpec>) -> Option<&'static KeySpec> {
    let mut name = [0u8; 2 * MAX_NAME + 1];
    let len = match parent {
        Some(p) => {
            let (a, b) = (p.name.as_bytes(), spec.name.as_bytes());
            name[..a.len()].copy_from_slice(a);
            name[a.len()] = b'|';
            name[a.len() + 1..a.len() + 1 + b.len()].copy_from_slice(b);
            a.len() + 1 + b.len()
        }
        None => {
            name[..spec.name.len()].copy_from_slice(spec.name.as_bytes());
            spec.name.len()
        }
    };
    let name = &name[..len];
    keyspecs::KEY_SPECS
        .binary_search_by(|k| k.name.as_bytes().cmp(name))
        .ok()
        .map(|i| &keyspecs::KEY_SPECS[i])
}

/// Which arguments of this request are keys, and whether it writes.
pub fn keys_of(spec: &CommandSpec, parent: Option<&CommandSpec>, args: &[Bytes]) -> KeyUse {
    let Some(ks) = key_spec(spec, parent) else {
        // Not a Redis 7.0 command (CLIENT SETINFO): it names no keys.
        return KeyUse {
            keys: Vec::new(),
            write: false,
            touches_all: false,
            blocking: false,
        };
    };
    let argc = args.len() as i32;
    let mut keys = Vec::new();
    let mut touches_all = false;
    if ks.movable {
        let is = |i: usize, w: &str| {
            args.get(i)
                .is_some_and(|a| a.eq_ignore_ascii_case(w.as_bytes()))
        };
        let numkeys_at =
            |i: usize| -> Option<usize> { std::str::from_utf8(args.get(i)?).ok()?.parse().ok() };
        match spec.name {
            // … STREAMS key [key …] id [id …]
            "XREAD" | "XREADGROUP" => {
                if let Some(at) = (1..args.len()).find(|&i| is(i, "STREAMS")) {
                    let n = (args.len() - at - 1) / 2;
                    keys.extend(at + 1..at + 1 + n);
                }
            }
            // LMPOP numkeys key …, BLMPOP timeout numkeys key …
            "LMPOP" | "BLMPOP" => {
                let at = if spec.name == "LMPOP" { 1 } else { 2 };
                match numkeys_at(at) {
                    Some(n) => keys.extend((at + 1..at + 1 + n).filter(|&i| i < args.len())),
                    None => touches_all = ks.write,
                }
            }
            _ => touches_all = ks.write,
        }
    } else if ks.first > 0 {
        let last = if ks.last < 0 { argc + ks.last } else { ks.last };
        let mut i = ks.first;
        while i <= last && i < argc {
            keys.push(i as usize);
            i += ks.step.max(1);
        }
    }
    if matches!(spec.name, "FLUSHDB" | "FLUSHALL" | "SWAPDB") && parent.is_none() {
        touches_all = true;
    }
    KeyUse {
        keys,
        write: ks.write,
        touches_all,
        blocking: ks.blocking,
    }
}

/// The display name of a resolved command: `GET`, `CLIENT SETNAME`.
pub fn display_name(spec: &CommandSpec, parent: Option<&CommandSpec>) -> String {
    match parent {
        Some(p) => format!("{} {}", p.name, spec.name),
        None => spec.name.to_owned(),
    }
}

/// `docs/commands.md`, generated from the table (a test keeps the file and the table equal).
pub fn markdown() -> String {
    let mut rows: Vec<&CommandSpec> = all().collect();
    rows.sort_by_key(|s| (s.family, s.name));
    let mut md = String::from(
        "# Commands\n\n\
         <!-- Generated from crates/redcloak-commands/src/table/ by \
         `UPDATE_DOCS=1 cargo test -p redcloak-commands markdown`. Do not edit by hand. -->\n\n\
         Every Redis 7.0 command and subcommand, and what redcloak does with it. A command that is \
         not listed is refused with `-ERR redcloak: command '…' is not supported` (fail closed): \
         redcloak forwards only what it can keep encrypted.\n\n\
         - **forward**: sent to Redis; the listed *encrypted arguments* are encrypted on the way in, \
         and the values in the *reply* are decrypted on the way out.\n\
         - **session**: forwarded, with bookkeeping in redcloak (transactions, pub/sub, protocol).\n\
         - **local**: answered by redcloak, never sent to Redis.\n\
         - **refused**: the error says why and what to do instead.\n",
    );
    let mut family = None;
    for spec in rows {
        if family != Some(spec.family) {
            family = Some(spec.family);
            md.push_str(&format!(
                "\n## {}\n\n| command | arity | action | encrypted arguments | reply |\n|---|---|---|---|---|\n",
                family_title(spec.family)
            ));
        }
        md.push_str(&row(spec, None));
        for sub in spec.subcommands {
            md.push_str(&row(sub, Some(spec)));
        }
        if !spec.subcommands.is_empty() {
            md.push_str(&format!(
                "| `{} <other>` | | refused: not a subcommand redcloak knows | — | — |\n",
                spec.name
            ));
        }
    }
    md
}

fn family_title(f: Family) -> &'static str {
    match f {
        Family::Connection => "Connection",
        Family::Keys => "Keys",
        Family::Strings => "Strings",
        Family::Hashes => "Hashes",
        Family::Lists => "Lists",
        Family::Streams => "Streams",
        Family::PubSub => "Pub/Sub",
        Family::Transactions => "Transactions",
        Family::Members => "Sets, sorted sets, geo, HyperLogLog",
        Family::Bitmaps => "Bitmaps",
        Family::Scripting => "Scripting",
        Family::Server => "Server",
    }
}

fn row(spec: &CommandSpec, parent: Option<&CommandSpec>) -> String {
    if !spec.subcommands.is_empty() {
        return format!(
            "| `{}` | {} | container: see its subcommands | — | — |\n",
            spec.name, spec.arity
        );
    }
    let action = match spec.action {
        Action::Forward => "forward".to_owned(),
        Action::Session(s) => format!("session: {}", session_doc(s)),
        Action::Local(Local::Auth) => {
            "local: `+OK`; the client's credentials are discarded, redcloak authenticates with its own".to_owned()
        }
        Action::Local(Local::Quit) => "local: `+OK`, then close".to_owned(),
        Action::Refuse(r) => match r.alternative {
            Some(alt) => format!("refused: {}; instead, {alt}", r.reason),
            None => format!("refused: {}", r.reason),
        },
    };
    let values = match spec.values {
        ValueArgs::None => "—".to_owned(),
        ValueArgs::At(i) => format!("argument {i}"),
        ValueArgs::EveryOther(i) => format!("every second argument from {i}"),
        ValueArgs::From(i) => format!("every argument from {i}"),
        ValueArgs::Custom(_) => "the field values (positions depend on the options)".to_owned(),
        ValueArgs::Unseal(i) => {
            format!("argument {i} must be a payload sealed by redcloak's `DUMP`")
        }
    };
    let reply = match (spec.action, spec.reply) {
        (Action::Forward | Action::Session(_), ReplyRule::Shape(shape)) => shape_doc(shape),
        (Action::Forward | Action::Session(_), ReplyRule::Custom(_)) => {
            "values decrypted (shape depends on the options)".to_owned()
        }
        _ => "—".to_owned(),
    };
    let name = match parent {
        Some(p) => format!("{} {}", p.name, spec.name),
        None => spec.name.to_owned(),
    };
    format!(
        "| `{name}` | {} | {action} | {values} | {reply} |\n",
        spec.arity
    )
}

fn session_doc(s: Session) -> &'static str {
    match s {
        Session::Multi => "starts queueing; the queued commands' rules decode EXEC's reply",
        Session::Exec => "each element of the reply decoded by its queued command's rule",
        Session::Discard => "drops the queue",
        Session::Hello => {
            "the AUTH part is answered by redcloak and removed; RESP3 works end to end"
        }
        Session::Reset => "forwarded, then redcloak authenticates the connection again",
        Session::PubSub => {
            "confirmations and messages arrive as pushes; message payloads are decrypted"
        }
    }
}

fn shape_doc(shape: &Shape) -> String {
    match shape {
        Shape::Pass => "as Redis sent it".to_owned(),
        Shape::Value => "the value decrypted".to_owned(),
        Shape::Values | Shape::PerKey => "every value decrypted".to_owned(),
        Shape::Tuple(_) | Shape::Each(_) | Shape::Pairs(_) | Shape::Fields(_) => {
            "values decrypted, names kept".to_owned()
        }
        Shape::Seal => "the payload sealed (encrypted) for the client".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(parts: &[&str]) -> Vec<Bytes> {
        parts
            .iter()
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect()
    }

    #[test]
    fn names_are_unique_upper_case_and_short() {
        let mut seen = std::collections::HashSet::new();
        for spec in all() {
            assert!(seen.insert(spec.name), "{} appears twice", spec.name);
            let mut subs = std::collections::HashSet::new();
            for s in spec.subcommands.iter().chain(std::iter::once(spec)) {
                assert_eq!(s.name, s.name.to_ascii_uppercase());
                assert!(s.name.len() <= MAX_NAME);
                assert_ne!(s.arity, 0, "{}: arity 0 is not a Redis arity", s.name);
                assert!(
                    s.subcommands.is_empty() || std::ptr::eq(s, spec),
                    "{}: nested containers",
                    s.name
                );
            }
            for s in spec.subcommands {
                assert!(
                    subs.insert(s.name),
                    "{} {} appears twice",
                    spec.name,
                    s.name
                );
                assert!(
                    s.arity.abs() >= 2,
                    "{} {}: a subcommand's arity counts the container",
                    spec.name,
                    s.name
                );
            }
        }
    }

    #[test]
    fn lookup_is_case_insensitive_and_fails_closed() {
        assert_eq!(lookup(b"get").map(|s| s.name), Some("GET"));
        assert_eq!(lookup(b"GeT").map(|s| s.name), Some("GET"));
        assert_eq!(lookup(b"mset").map(|s| s.name), Some("MSET"));
        assert!(lookup(b"FLUSHALLX").is_none());
        assert!(lookup(b"").is_none());
        assert!(lookup(&[b'A'; 100]).is_none());
    }

    #[test]
    fn subcommands_resolve_and_unknown_ones_are_refused() {
        let Resolved::Known { spec, parent } = resolve(&b(&["client", "setname", "x"])) else {
            panic!()
        };
        assert_eq!(
            (spec.name, parent.map(|p| p.name)),
            ("SETNAME", Some("CLIENT"))
        );
        assert_eq!(display_name(spec, parent), "CLIENT SETNAME");
        assert!(
            matches!(resolve(&b(&["CLIENT", "NOPE"])), Resolved::UnknownSubcommand(p) if p.name == "CLIENT")
        );
        assert!(
            matches!(resolve(&b(&["CONFIG"])), Resolved::MissingSubcommand(p) if p.name == "CONFIG")
        );
        assert!(matches!(resolve(&b(&["NOPE"])), Resolved::Unknown));
        let Resolved::Known { spec, .. } = resolve(&b(&["CONFIG", "GET", "requirepass"])) else {
            panic!()
        };
        assert!(
            matches!(spec.action, Action::Refuse(_)),
            "CONFIG GET would reveal the password"
        );
        let Resolved::Known { spec, .. } = resolve(&b(&["CLIENT", "TRACKING", "on"])) else {
            panic!()
        };
        assert!(matches!(spec.action, Action::Refuse(_)));
    }

    #[test]
    fn every_value_position_is_within_arity() {
        let rows = all().flat_map(|s| std::iter::once(s).chain(s.subcommands));
        for spec in rows {
            match spec.values {
                ValueArgs::None | ValueArgs::Custom(_) => {}
                ValueArgs::At(i)
                | ValueArgs::EveryOther(i)
                | ValueArgs::From(i)
                | ValueArgs::Unseal(i) => {
                    assert!(i >= 1, "{}: the name is never a value", spec.name);
                    assert!(
                        (i as i32) < spec.arity.abs(),
                        "{}: value position {i} is outside arity {}",
                        spec.name,
                        spec.arity
                    );
                    assert_eq!(
                        spec.action,
                        Action::Forward,
                        "{}: values only on forwarded commands",
                        spec.name
                    );
                }
            }
        }
    }

    #[test]
    fn writes_encrypt_and_reads_decrypt() {
        // Every command that stores a value names it; every command that returns one decodes it.
        for (name, value_at) in [
            ("SET", 2),
            ("SETNX", 2),
            ("SETEX", 3),
            ("PSETEX", 3),
            ("GETSET", 2),
            ("MSET", 2),
            ("MSETNX", 2),
            ("HSET", 3),
            ("HMSET", 3),
            ("HSETNX", 3),
            ("LPUSH", 2),
            ("RPUSH", 2),
            ("LPUSHX", 2),
            ("RPUSHX", 2),
            ("LSET", 3),
            ("PUBLISH", 2),
            ("SPUBLISH", 2),
        ] {
            let spec = lookup(name.as_bytes()).unwrap();
            assert!(
                spec.values.is_value(value_at),
                "{name} must encrypt argument {value_at}"
            );
            assert!(!spec.values.is_value(1), "{name} must not encrypt its key");
        }
        for name in [
            "GET",
            "GETDEL",
            "GETEX",
            "GETSET",
            "MGET",
            "HGET",
            "HMGET",
            "HGETALL",
            "HVALS",
            "LRANGE",
            "LINDEX",
            "LPOP",
            "RPOP",
            "LMPOP",
            "BLPOP",
            "BRPOP",
            "BLMPOP",
            "LMOVE",
            "BLMOVE",
            "RPOPLPUSH",
            "BRPOPLPUSH",
            "XRANGE",
            "XREVRANGE",
            "XREAD",
            "XREADGROUP",
            "XCLAIM",
            "XAUTOCLAIM",
            "SET",
            "HSCAN",
            "DUMP",
        ] {
            let spec = lookup(name.as_bytes()).unwrap();
            assert!(
                !spec.reply.is_pass(),
                "{name} returns values and must decode them"
            );
        }
    }

    #[test]
    fn xadd_values_follow_the_id() {
        let spec = lookup(b"XADD").unwrap();
        let cases: &[(&[&str], usize)] = &[
            (&["XADD", "s", "*", "f", "v"], 4),
            (
                &[
                    "XADD",
                    "s",
                    "NOMKSTREAM",
                    "MAXLEN",
                    "~",
                    "10",
                    "*",
                    "f",
                    "v",
                    "g",
                    "w",
                ],
                8,
            ),
            (
                &[
                    "XADD", "s", "MINID", "=", "0-1", "LIMIT", "5", "1-1", "f", "v",
                ],
                9,
            ),
            (&["xadd", "s", "maxlen", "10", "*", "f", "v"], 6),
        ];
        for (args, first) in cases {
            let v = spec.values.resolve(&b(args)).unwrap();
            assert!(v.is_value(*first) && !v.is_value(first - 1), "{args:?}");
            assert!(!v.is_value(first + 1), "{args:?}: field names stay");
        }
        assert!(spec.values.resolve(&b(&["XADD", "s", "*", "f"])).is_err());
        assert!(spec.values.resolve(&b(&["XADD", "s", "MAXLEN"])).is_err());
    }

    #[test]
    fn hrandfield_decrypts_only_with_values() {
        let spec = lookup(b"HRANDFIELD").unwrap();
        assert_eq!(spec.reply.shape(&b(&["HRANDFIELD", "h"])), &Shape::Pass);
        assert_eq!(
            spec.reply.shape(&b(&["HRANDFIELD", "h", "3"])),
            &Shape::Pass
        );
        assert_ne!(
            spec.reply
                .shape(&b(&["HRANDFIELD", "h", "3", "withvalues"])),
            &Shape::Pass
        );
    }

    #[test]
    fn keys_are_found_like_redis_finds_them() {
        let use_of = |parts: &[&str]| match resolve(&b(parts)) {
            Resolved::Known { spec, parent } => keys_of(spec, parent, &b(parts)),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            use_of(&["GET", "k"]),
            KeyUse {
                keys: vec![1],
                write: false,
                touches_all: false,
                blocking: false
            }
        );
        assert_eq!(use_of(&["MSET", "a", "1", "b", "2"]).keys, vec![1, 3]);
        assert_eq!(use_of(&["DEL", "a", "b", "c"]).keys, vec![1, 2, 3]);
        assert_eq!(
            use_of(&["RENAME", "a", "b"]),
            KeyUse {
                keys: vec![1, 2],
                write: true,
                touches_all: false,
                blocking: false
            }
        );
        assert_eq!(
            use_of(&["XREAD", "COUNT", "1", "STREAMS", "s1", "s2", "0", "0"]).keys,
            vec![4, 5]
        );
        assert_eq!(
            use_of(&["BLMPOP", "0", "2", "a", "b", "LEFT"]).keys,
            vec![3, 4]
        );
        assert!(use_of(&["FLUSHDB"]).touches_all);
        assert!(
            use_of(&["BLPOP", "q", "0"]).blocking
                && use_of(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]).blocking
        );
        assert!(use_of(&["SWAPDB", "0", "1"]).touches_all);
        assert_eq!(use_of(&["XINFO", "STREAM", "s"]).keys, vec![2]);
        assert!(!use_of(&["CLIENT", "SETNAME", "x"]).write);
        // Every row names a Redis command (or a known newer one).
        for spec in all() {
            let known = key_spec(spec, None).is_some() || !spec.subcommands.is_empty();
            assert!(known, "{} has no key spec", spec.name);
            for sub in spec.subcommands {
                assert!(
                    key_spec(sub, Some(spec)).is_some() || sub.name == "SETINFO",
                    "{} {}",
                    spec.name,
                    sub.name
                );
            }
        }
    }

    #[test]
    fn markdown_matches_docs_commands_md() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/commands.md");
        let generated = markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "docs/commands.md differs from the command table; regenerate it with \
             `UPDATE_DOCS=1 cargo test -p redcloak-commands markdown`"
        );
    }

    #[test]
    fn value_positions() {
        assert!(ValueArgs::At(2).is_value(2));
        assert!(!ValueArgs::At(2).is_value(3));
        let pairs = ValueArgs::EveryOther(2);
        assert_eq!(
            (0..8).filter(|&i| pairs.is_value(i)).collect::<Vec<_>>(),
            vec![2, 4, 6]
        );
        assert_eq!(
            (0..5)
                .filter(|&i| ValueArgs::From(2).is_value(i))
                .collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
        assert!(!ValueArgs::None.is_value(1));
        assert!(!ValueArgs::Unseal(3).is_value(3));
    }

    #[test]
    fn arity() {
        let get = lookup(b"GET").unwrap();
        assert!(get.arity_ok(2));
        assert!(!get.arity_ok(1));
        assert!(!get.arity_ok(3));
        let set = lookup(b"SET").unwrap();
        assert!(set.arity_ok(3));
        assert!(set.arity_ok(9));
        assert!(!set.arity_ok(2));
    }
}
