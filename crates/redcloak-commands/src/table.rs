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

pub mod blocking;
mod connection;
mod hashes;
mod keypos;
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

use crate::resp::Frame;

/// How a command is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Encrypt the value arguments and forward to Redis; transform the reply by the row's rule.
    /// The row's [`Effect`] says what the command does to the connection's state.
    Forward,
    /// Answered by redcloak itself, never forwarded.
    Local(Local),
    /// Computed by redcloak on the decrypted values, atomically: read under WATCH, compute
    /// exactly what Redis would (`emulate/`), write back encrypted in MULTI/EXEC, retry on
    /// conflict.
    Emulate,
    /// Scripts and functions: run by redcloak's script engine, every `redis.call` through
    /// this table, atomically (DESIGN.md §4a).
    Script(ScriptOp),
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
    /// `PING [message]`: a message is application data, so `PING message` is answered here
    /// instead of crossing to Redis in plaintext; a bare `PING` is forwarded (it checks the
    /// whole path), and answered here while Redis is unreachable.
    Ping,
    /// `ECHO message`: answered here (the message is application data).
    Echo,
    /// `COMMAND GETKEYS` / `GETKEYSANDFLAGS`: answered from the table's key positions (the
    /// arguments, values included, never reach Redis).
    GetKeys {
        /// With each key's flags (`GETKEYSANDFLAGS`).
        flags: bool,
    },
}

/// The script and function commands redcloak carries out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptOp {
    /// `EVAL` / `EVAL_RO` (`by_sha`: `EVALSHA` / `EVALSHA_RO`).
    Eval {
        /// The `_RO` form.
        read_only: bool,
        /// By SHA1 of a script redcloak has seen.
        by_sha: bool,
    },
    /// `FCALL` / `FCALL_RO`.
    Fcall {
        /// `FCALL_RO`.
        read_only: bool,
    },
    /// `SCRIPT LOAD`.
    Load,
    /// `SCRIPT EXISTS`.
    Exists,
    /// `SCRIPT FLUSH`.
    Flush,
    /// `SCRIPT KILL` / `FUNCTION KILL`: no script ever holds Redis up.
    Kill,
    /// `FUNCTION LOAD [REPLACE]`.
    FunctionLoad,
    /// `FUNCTION DELETE`.
    FunctionDelete,
    /// `FUNCTION FLUSH`.
    FunctionFlush,
    /// `FUNCTION LIST`.
    FunctionList,
    /// `FUNCTION DUMP`.
    FunctionDump,
    /// `FUNCTION RESTORE`.
    FunctionRestore,
    /// `FUNCTION STATS`.
    FunctionStats,
}

/// What a forwarded command does to the state of the client's connection, which redcloak
/// mirrors to keep replies in step and to restore the state on a new upstream connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing redcloak tracks.
    None,
    /// `SELECT db`: the database changes when Redis accepts it. Refused inside `MULTI`.
    Select,
    /// `WATCH`: keys are watched until `EXEC`, `DISCARD`, `UNWATCH` or `RESET`.
    Watch,
    /// `UNWATCH`.
    Unwatch,
    /// `MULTI`: later commands are queued; their reply rules are kept for `EXEC`.
    Multi,
    /// `EXEC`: the reply is an array decoded element by element by the queued rules.
    Exec,
    /// `DISCARD`: the queue is dropped.
    Discard,
    /// `HELLO`: the `AUTH` part is answered by redcloak (stripped); the protocol changes when
    /// Redis accepts the version. Refused inside `MULTI`.
    Hello,
    /// `RESET`: everything back to a new connection's state; redcloak authenticates again.
    Reset,
    /// `SUBSCRIBE` / `PSUBSCRIBE` / `SSUBSCRIBE`: one confirmation per name.
    Subscribe(Channels),
    /// The `UNSUBSCRIBE`s: one confirmation per name, or (without names) one per current
    /// subscription of that kind, or a single one when there is none.
    Unsubscribe(Channels),
    /// `PUBLISH` / `SPUBLISH`: an effect outside the keyspace. Forwarded as usual; inside an
    /// execution redcloak carries out itself (a transaction with emulated commands, a
    /// script), sent only when its changes are committed.
    Publish,
}

/// The three kinds of pub/sub subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    /// `SUBSCRIBE`, `message`.
    Plain,
    /// `PSUBSCRIBE`, `pmessage`.
    Pattern,
    /// `SSUBSCRIBE`, `smessage`.
    Shard,
}

impl Channels {
    /// The confirmation kinds Redis sends: `(subscribe, unsubscribe)`.
    pub fn confirmations(self) -> (&'static str, &'static str) {
        match self {
            Channels::Plain => ("subscribe", "unsubscribe"),
            Channels::Pattern => ("psubscribe", "punsubscribe"),
            Channels::Shard => ("ssubscribe", "sunsubscribe"),
        }
    }
}

/// What a command means for a string key, as far as the shadow cache (the copy redcloak
/// keeps to serve reads while Redis is unreachable) is concerned: what it learns from the
/// reply while Redis is up, and whether and how the command can be answered from the cache
/// while Redis is down. Commands without one are not answered while Redis is down, and a
/// write without one makes the cache forget the keys it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOp {
    /// Nothing of the cache's concern beyond forgetting what a write touches.
    None,
    /// `GET key`.
    Get,
    /// `MGET key …`.
    MGet,
    /// `EXISTS key …`.
    Exists,
    /// `TYPE key`.
    Type,
    /// `TTL` (`1000`) / `PTTL` (`1`): the remaining time in this many milliseconds.
    Ttl(u64),
    /// `SET key value [NX|XX] [GET] [EX|PX|EXAT|PXAT|KEEPTTL]`.
    Set,
    /// `SETNX key value`.
    SetNx,
    /// `SETEX` (`1000`) / `PSETEX` (`1`) `key ttl value`.
    SetEx(u64),
    /// `GETSET key value`.
    GetSet,
    /// `MSET key value …`.
    MSet,
    /// `MSETNX key value …`.
    MSetNx,
    /// `GETDEL key`.
    GetDel,
    /// `DEL` / `UNLINK key …`.
    Del,
    /// `EXPIRE` family: `(unit in ms, absolute)`.
    Expire(u64, bool),
    /// `PERSIST key`.
    Persist,
    /// The command changes keys in other databases or keys the cache cannot name (`MOVE`,
    /// `COPY`): forget everything.
    ForgetAll,
}

/// Whether a command removes what it returns (so a value redcloak cannot decrypt would be
/// lost), and how to put such a value back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pops {
    /// It does not remove what it returns (or moves it to another key, where it stays).
    None,
    /// `LPOP key [count]`: from the head of `key`.
    Head,
    /// `RPOP key [count]`: from the tail.
    Tail,
    /// `BLPOP`: `[key, value]` from the head.
    KeyedHead,
    /// `BRPOP`: `[key, value]` from the tail.
    KeyedTail,
    /// `LMPOP` / `BLMPOP`: `[key, [values…]]`, from the end the `LEFT`/`RIGHT` argument names.
    Multi,
    /// `GETDEL key`.
    String,
    /// `SPOP key [count]`: set members (put back with `SADD`).
    SetMembers,
    /// `ZPOPMIN` / `ZPOPMAX key [count]`: member/score pairs (put back with `ZADD`).
    Scored,
    /// `BZPOPMIN` / `BZPOPMAX`: `[key, member, score]`.
    KeyedScored,
    /// `ZMPOP` / `BZMPOP`: `[key, [[member, score], …]]`.
    MultiScored,
    /// `GETSET key value`: replaces the value it returns. An old value that does not decrypt
    /// is set again, only while the key still holds what the command wrote (a later write by
    /// anyone wins).
    Overwrite,
    /// `SET key value … GET`: an [`Pops::Overwrite`] when this option word is among the
    /// arguments after key and value.
    OverwriteWith(&'static str),
}

impl Pops {
    /// Whether this call replaces a value it returns (its put-back needs the token it wrote).
    pub fn overwrites(self, args: &[Bytes]) -> bool {
        match self {
            Pops::Overwrite => true,
            Pops::OverwriteWith(word) => args.iter().skip(3).any(|a| crate::words::is(a, word)),
            _ => false,
        }
    }
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

/// Which arguments of a command are set, sorted-set, geo or HyperLogLog *members*: encrypted
/// deterministically (equal members give equal ciphertexts under one key), so that Redis can
/// still compare them. Indexes count the command name as 0.
///
/// # Security
/// A member that is not found here reaches Redis in plaintext. Rows whose member positions
/// depend on options (`ZADD`, `GEOADD`, `GEOSEARCH`…) read the options exactly as Redis 7.0
/// does ([`MemberArgs::Custom`]); whatever cannot be read that way is answered by redcloak
/// and never forwarded.
#[derive(Debug, Clone, Copy)]
pub enum MemberArgs {
    /// No argument is a member.
    None,
    /// Exactly the argument at this index (`SISMEMBER key member` → 2).
    At(usize),
    /// The arguments in `from..to` (`GEODIST key m1 m2 [unit]` → 2..4).
    Span(usize, usize),
    /// Every argument from this index on (`SADD key m m m` → 2…).
    From(usize),
    /// Every `step`-th argument from `from` (`ZADD key score m score m` → 3, 5, …;
    /// `GEOADD key lon lat m …` → 4, 7, …).
    Stride(usize, usize),
    /// The argument at the first index, and every argument from the second: `GEOSEARCH …
    /// FROMMEMBER m …` followed by options redcloak cannot read. Redis cannot read them either
    /// and stops there with an error; they are encrypted so that nothing unread reaches Redis
    /// in plaintext, and Redis answers exactly the error it would have answered.
    AtThenFrom(usize, usize),
    /// Positions that depend on options: computed from the arguments, or Redis's error (or
    /// redcloak's refusal) answered locally, with nothing forwarded. The text says where the
    /// members are, for docs/commands.md.
    Custom(
        fn(&[Bytes]) -> Result<MemberArgs, &'static str>,
        &'static str,
    ),
}

impl MemberArgs {
    /// Whether argument `index` is a member. `Custom` must be resolved first; it answers false.
    pub fn is_member(self, index: usize) -> bool {
        match self {
            MemberArgs::None | MemberArgs::Custom(..) => false,
            MemberArgs::At(i) => index == i,
            MemberArgs::Span(from, to) => (from..to).contains(&index),
            MemberArgs::From(from) => index >= from,
            MemberArgs::Stride(from, step) => index >= from && (index - from) % step == 0,
            MemberArgs::AtThenFrom(at, from) => index == at || index >= from,
        }
    }

    /// Whether the command has member arguments at all.
    pub fn any(self) -> bool {
        !matches!(self, MemberArgs::None)
    }

    /// Resolves `Custom` positions for these arguments.
    pub fn resolve(self, args: &[Bytes]) -> Result<MemberArgs, &'static str> {
        match self {
            MemberArgs::Custom(f, _) => f(args),
            other => Ok(other),
        }
    }
}

/// How redcloak rewrites a member command on its way to Redis, and how it folds Redis's reply
/// back into the reply to the command the client sent.
///
/// **Rotation.** A member is stored as its ciphertext under the key that was primary when it
/// was written. Once a new key is put first, the primary key's ciphertext of an old member
/// differs from the stored one, so a lookup with it would miss. Rows marked [`Rewrite::Every`]
/// or [`Rewrite::Via`] therefore send, while the ring holds more than one key, *every* key's
/// ciphertext of each member (primary first) and reduce Redis's per-candidate answers to one
/// answer per member. With a single key nothing is rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// Sent as the client wrote it (members under the primary key).
    None,
    /// Each member argument is replaced, in place, by its ciphertext under every ring key;
    /// the reply is reduced per member (`SREM`, `SMISMEMBER`, `ZMSCORE`, `GEOPOS`…).
    Every(Reduce),
    /// The command is sent as its multi-member form (`SISMEMBER` → `SMISMEMBER`, `ZSCORE` →
    /// `ZMSCORE`) with every key's ciphertext of the member; the reduced reply's one element is
    /// the reply.
    Via(&'static str, Reduce),
    /// Always sent as this command instead (`HVALS` as `HGETALL`: the fields that bind the
    /// values come back with them); the reply shape makes the client's reply of it.
    As(&'static str),
    /// `SSCAN` / `ZSCAN`: a `MATCH pattern` cannot match ciphertext, so it is taken out of the
    /// request (the pattern never reaches Redis) and applied to the decrypted members of each
    /// page, keeping Redis's cursor (a page may come back shorter, or empty, with a non-zero
    /// cursor, which SCAN's contract allows). `pairs`: the page is `[member, score, …]`.
    Match {
        /// The page holds member/score pairs (`ZSCAN`).
        pairs: bool,
    },
}

/// How the answers for one member's candidates (one per ring key) become one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// The reply is one total (`SREM`, `ZREM`: how many were removed): it passes.
    Total,
    /// `1` if any candidate answered `1` (`SMISMEMBER`).
    Any,
    /// The first candidate's answer that is not nil (`ZMSCORE`, `GEOPOS`, `GEOHASH`).
    First,
}

/// Where a command's values live in Redis: the location (besides the database) an AES-GCM
/// value envelope is bound to when it is written, and checked against when it is read
/// (`redcloak_crypto::Binding`). Fernet tokens carry no location; both formats are read
/// whatever the write format.
///
/// # Security
/// A value is opened only under the location it is read from, so a ciphertext copied to
/// another key, database or hash field does not decrypt there. Rows whose command makes Redis
/// move values to another location are [`Bind::Moves`]: refused while the ring writes AES-GCM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bind {
    /// The key at this argument (`GET key` → 1, `XINFO STREAM key` → 2); in a reply that names
    /// its key (`BLPOP`, `LMPOP`, `XREAD`: [`Shape::Keyed`], [`Shape::KeyedPairs`]), that key.
    Key(usize),
    /// One key per value: each value argument to the key before it (`MSET k v k v`), reply
    /// element `i` to key argument `1 + i` (`MGET`).
    Keys,
    /// Field values of the key at argument 1: each value argument to the field before it
    /// (`HSET key f v`, `XADD key id f v`), reply element `i` to field argument `2 + i`
    /// (`HGET`, `HMGET`). In field/value replies ([`Shape::Pairs`]: `HGETALL`, `HSCAN`, a
    /// stream entry's fields) every row binds each value to its pair's field.
    Fields,
    /// Like `Key(1)` for its own reply, but Redis moves the values it touches to another key
    /// or database (`RENAME`, `COPY`, `MOVE`, `SWAPDB`, `LMOVE`…), where an AES-GCM envelope
    /// would no longer open: while the ring writes `aes-gcm`, carried out by redcloak when an
    /// emulation exists (`RENAME`, `RENAMENX`, `LMOVE`, `RPOPLPUSH`: `transform::rebinds`),
    /// refused otherwise.
    Moves,
    /// Not stored (`PUBLISH` payloads): always a Fernet token, bound to nothing.
    Transit,
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
    /// `[key, x]`: `x` (this shape) holds values stored under `key` (`BLPOP`, `LMPOP`).
    Keyed(&'static Shape),
    /// Like [`Shape::Pairs`], but each name is the key its values are stored under (`XREAD`:
    /// a RESP3 map or `[[key, entries], …]`).
    KeyedPairs(&'static Shape),
    /// The values of a field/value reply, without the fields: `HVALS`, which redcloak sends as
    /// `HGETALL` ([`Rewrite::As`]) so that each value is read at its field.
    PairValues,
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
    /// A bulk string is a set / sorted-set / geo member (`SPOP` without a count).
    Member,
    /// Every bulk string anywhere in the reply is a member (`SMEMBERS`, a RESP3 set, `ZRANGE`
    /// without scores, `SPOP` with or without a count).
    Members,
    /// Member/score pairs: flat `[member, score, …]` (RESP2, and RESP3 `ZPOPMIN` without a
    /// count) or nested `[[member, score], …]` (RESP3); the members are decrypted, the scores
    /// pass.
    Scored,
    /// A bulk string of this shape, or an array whose first element has it and the rest pass
    /// (`GEOSEARCH`: `member`, or `[member, distance?, hash?, [lon, lat]?]` with `WITH…`).
    Lead(&'static Shape),
    /// The bulk reply is sealed (encrypted) for the client: `DUMP` payloads, which redcloak
    /// later accepts back in `RESTORE` and nothing else does.
    Seal,
    /// Key names (`KEYS`, `SCAN`'s page): redcloak's own keys (`redcloak:scratch:…`, transient
    /// copies of a transaction or script it is carrying out, and `redcloak:internal:…`) are
    /// left out.
    Keys,
    /// `CONFIG GET`'s name/value pairs (a RESP3 map or a flat array) without the parameters
    /// that hold credentials or key material ([`SECRET_CONFIG`]), as an ACL-restricted user
    /// would see them.
    Config,
}

/// The prefix of redcloak's own scratch keys (see the proxy's `atomic/scratch.rs`).
pub const SCRATCH_PREFIX: &[u8] = b"redcloak:scratch:";

/// The prefix of keys redcloak keeps for itself (function libraries, encrypted).
pub const INTERNAL_PREFIX: &[u8] = b"redcloak:internal:";

/// Redis configuration parameters that hold credentials or point at private keys: never
/// shown through redcloak.
pub const SECRET_CONFIG: &[&str] = &[
    "requirepass",
    "masterauth",
    "masteruser",
    "aclfile",
    "tls-key-file",
    "tls-key-file-pass",
    "tls-client-key-file",
    "tls-client-key-file-pass",
];

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
    /// Sets, sorted sets, geo and HyperLogLog: members are data, encrypted deterministically
    /// so that Redis can compare them.
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
    /// Which arguments are members (encrypted deterministically).
    pub members: MemberArgs,
    /// How the request is rewritten for Redis and the reply folded back (rotation lookups,
    /// `MATCH` applied after decryption).
    pub rewrite: Rewrite,
    /// Which parts of the reply are values.
    pub reply: ReplyRule,
    /// The family, for documentation.
    pub family: Family,
    /// For containers (`CLIENT`, `CONFIG`, `XINFO`…): the subcommands; the container's own
    /// action applies only to subcommands that are not listed (refused).
    pub subcommands: &'static [CommandSpec],
    /// What the command does to the connection's state.
    pub effect: Effect,
    /// What it means for the shadow cache (learning while Redis is up, serving while down).
    pub cache: CacheOp,
    /// Whether it removes what it returns, and how a value that does not decrypt is put back.
    pub pops: Pops,
    /// Where its values live: what an AES-GCM envelope in its arguments or reply is bound to.
    pub bind: Bind,
}

impl CommandSpec {
    /// This row with a session effect.
    pub(crate) const fn effect(mut self, effect: Effect) -> CommandSpec {
        self.effect = effect;
        self
    }

    /// This row with a shadow-cache rule.
    pub(crate) const fn cache(mut self, cache: CacheOp) -> CommandSpec {
        self.cache = cache;
        self
    }

    /// This row removes what it returns.
    pub(crate) const fn pops(mut self, pops: Pops) -> CommandSpec {
        self.pops = pops;
        self
    }

    /// This row's member arguments.
    pub(crate) const fn members(mut self, members: MemberArgs) -> CommandSpec {
        self.members = members;
        self
    }

    /// Where this row's values live.
    pub(crate) const fn bind(mut self, bind: Bind) -> CommandSpec {
        self.bind = bind;
        self
    }

    /// This row's request rewrite.
    pub(crate) const fn rewrite(mut self, rewrite: Rewrite) -> CommandSpec {
        self.rewrite = rewrite;
        self
    }

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
        members: MemberArgs::None,
        rewrite: Rewrite::None,
        reply: ReplyRule::Shape(reply),
        family,
        subcommands: &[],
        effect: Effect::None,
        cache: CacheOp::None,
        pops: Pops::None,
        bind: Bind::Key(1),
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
        members: MemberArgs::None,
        rewrite: Rewrite::None,
        reply: ReplyRule::Shape(&Shape::Pass),
        family,
        subcommands: &[],
        effect: Effect::None,
        cache: CacheOp::None,
        pops: Pops::None,
        bind: Bind::Key(1),
    }
}

/// A forwarded command that changes the connection's state.
pub(crate) const fn session(
    name: &'static str,
    arity: i32,
    effect: Effect,
    family: Family,
) -> CommandSpec {
    pass(name, arity, family).effect(effect)
}

/// A command redcloak computes itself on decrypted values (see [`Action::Emulate`]).
pub(crate) const fn emulated(name: &'static str, arity: i32, family: Family) -> CommandSpec {
    CommandSpec {
        action: Action::Emulate,
        ..pass(name, arity, family)
    }
}

/// A script or function command.
pub(crate) const fn scripted(name: &'static str, arity: i32, op: ScriptOp) -> CommandSpec {
    CommandSpec {
        action: Action::Script(op),
        ..pass(name, arity, Family::Scripting)
    }
}

/// A command redcloak answers itself.
pub(crate) const fn local(
    name: &'static str,
    arity: i32,
    local: Local,
    family: Family,
) -> CommandSpec {
    CommandSpec {
        action: Action::Local(local),
        ..pass(name, arity, family)
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
        members: MemberArgs::None,
        rewrite: Rewrite::None,
        reply: ReplyRule::Shape(&Shape::Pass),
        family,
        subcommands,
        effect: Effect::None,
        cache: CacheOp::None,
        pops: Pops::None,
        bind: Bind::Key(1),
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

impl Resolved {
    /// The row and its container, for a known command.
    pub fn known(self) -> Option<(&'static CommandSpec, Option<&'static CommandSpec>)> {
        match self {
            Resolved::Known { spec, parent } => Some((spec, parent)),
            _ => None,
        }
    }
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

pub use keypos::{flag_names, CommandKeys, KeyUse, K_RO};
pub use members::{scan_options, ScanOptions};

/// Redis 7.0's key specification of a command (see `keyspecs.rs`): where its keys are, and
/// whether it writes or blocks.
pub fn key_spec(spec: &CommandSpec, parent: Option<&CommandSpec>) -> Option<&'static CommandKeys> {
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

/// Which arguments of this request are keys (with Redis's key flags), and whether it writes
/// or may block (every row is a Redis 7.0 command, described in `keyspecs`).
pub fn keys_of(spec: &CommandSpec, parent: Option<&CommandSpec>, args: &[Bytes]) -> KeyUse {
    match key_spec(spec, parent) {
        Some(keys) => keypos::find(keys, spec.arity, args),
        None => KeyUse::default(),
    }
}

/// `COMMAND GETKEYS` / `GETKEYSANDFLAGS` for `inner` (the command whose keys are asked for),
/// answered from the table exactly as Redis 7.0 answers it: the keys (with their flags), or
/// Redis's error text. The arguments never reach Redis.
pub fn command_getkeys(inner: &[Bytes], with_flags: bool) -> Result<Frame, &'static str> {
    const INVALID: &str = "ERR Invalid command specified";
    let (spec, parent) = match resolve(inner) {
        Resolved::Known { spec, parent } => (spec, parent),
        // A container alone is a command without keys.
        Resolved::MissingSubcommand(spec) => (spec, None),
        Resolved::Unknown | Resolved::UnknownSubcommand(_) => return Err(INVALID),
    };
    let keys = key_spec(spec, parent).ok_or(INVALID)?;
    if keys.specs.iter().all(|s| s.flags & keypos::K_NOT_KEY != 0) {
        return Err("ERR The command has no key arguments");
    }
    if !spec.arity_ok(inner.len()) {
        return Err("ERR Invalid number of arguments specified for command");
    }
    let found = keypos::find(keys, spec.arity, inner);
    if found.keys.is_empty() || found.invalid {
        return if keys.optional_keys {
            Ok(Frame::Array(Vec::new()))
        } else {
            Err("ERR Invalid arguments specified for command")
        };
    }
    Ok(Frame::Array(
        found
            .keys
            .iter()
            .map(|&(i, flags)| {
                let key = Frame::Bulk(inner[i].clone());
                if with_flags {
                    let names = flag_names(flags & !keypos::K_VARIABLE_FLAGS)
                        .map(|n| Frame::Simple(Bytes::from_static(n.as_bytes())))
                        .collect();
                    Frame::Array(vec![key, Frame::Array(names)])
                } else {
                    key
                }
            })
            .collect(),
    ))
}

/// Whether Redis runs the command on a connection in RESP2 pub/sub mode: the subscribe
/// family, PING, QUIT and RESET (`processCommand`); every other command gets `Can't
/// execute`, after the unknown-command and arity checks and before anything else.
pub fn allowed_in_pubsub(spec: &CommandSpec) -> bool {
    matches!(
        spec.effect,
        Effect::Subscribe(_) | Effect::Unsubscribe(_) | Effect::Reset
    ) || matches!(spec.action, Action::Local(Local::Ping | Local::Quit))
}

/// Redis's refusal of a command in RESP2 pub/sub mode; `full_name` as Redis names it
/// (`client|tracking`). EXEC's is an EXECABORT, as every rejection of EXEC in Redis.
pub fn pubsub_refusal(spec: &CommandSpec, full_name: &str) -> String {
    let text = format!(
        "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are \
         allowed in this context",
        full_name.to_ascii_lowercase()
    );
    if spec.effect == Effect::Exec {
        format!("EXECABORT Transaction discarded because of: {text}")
    } else {
        format!("ERR {text}")
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
         - **local**: answered by redcloak, never sent to Redis. On a connection that has \
         subscribed, a local answer keeps its place among the messages Redis sends: a bare `PING` \
         (a `QUIT` for the last answer before closing) goes to Redis in its place and its reply \
         is replaced by the answer. In RESP2 pub/sub mode every command but the subscribe \
         family, PING, QUIT and RESET gets Redis's `Can't execute` before redcloak answers, \
         checks or queues anything.\n\
         - The table is Redis 7.0's, the version redcloak is tested against: a newer subcommand \
         such as `CLIENT SETINFO` (7.2) gets Redis 7.0's `unknown subcommand`.\n\
         - **refused**: the error says why and what to do instead.\n\
         - *connection state*: what redcloak tracks to keep every reply with its command and to \
         restore the connection on a new upstream link (database, transaction, subscriptions, \
         protocol).\n\
         - *while Redis is down*: how the command is answered from the shadow cache \
         (docs/operations.md); `TRYAGAIN` means it gets `-TRYAGAIN redcloak: …` at once.\n\
         - A destructive read (a pop, `GETDEL`, `GETSET`, `SET … GET`, also inside MULTI/EXEC) \
         removes or overwrites the value in Redis before redcloak can find out that it does not \
         decrypt. Such a value is *put back* where it was taken from (an overwritten one only \
         while the key still holds what the command wrote), and the client gets the refusal \
         only once it is back; a command the client pipelined behind the read waits for that \
         too. So the client's own commands find the key as if the refused read had never run; \
         other clients may see the key without the value for that one round trip.\n",
    );
    let mut family = None;
    for spec in rows {
        if family != Some(spec.family) {
            family = Some(spec.family);
            md.push_str(&format!("\n## {}\n\n", family_title(spec.family)));
            if let Some(note) = family_note(spec.family) {
                md.push_str(note);
                md.push_str("\n\n");
            }
            md.push_str(
                "| command | arity | action | encrypted arguments | reply | connection state | while Redis is down |\n|---|---|---|---|---|---|---|\n",
            );
        }
        md.push_str(&row(spec, None));
        for sub in spec.subcommands {
            md.push_str(&row(sub, Some(spec)));
        }
        if !spec.subcommands.is_empty() {
            md.push_str(&format!(
                "| `{} <other>` | | refused: not a subcommand redcloak knows | — | — | — | — |\n",
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

/// What a family's table needs said before it.
fn family_note(f: Family) -> Option<&'static str> {
    match f {
        Family::Members => Some(
            "Members are encrypted **deterministically** (AES-SIV: the same member always gives \
             the same ciphertext under one key), so Redis can still compare them; scores, \
             coordinates and counts stay in clear. What that reveals: \
             [security.md](security.md#members-deterministic-encryption). Differences from \
             Redis: members with **equal scores** come back in the order of their ciphertexts, \
             not of their bytes, and `ZPOPMIN`/`BZPOPMIN`/`ZMPOP`… pop the first of them in that \
             order (give members distinct scores where their order matters); a set's members \
             (`SMEMBERS`…, also returned by a script) come in the order of their ciphertexts; \
             lexicographic ranges are refused; `SSCAN`/`ZSCAN … MATCH` is applied by redcloak \
             after decryption, so a page may be shorter or empty with a non-zero cursor; during \
             a key rotation, lookups and removals try every key of the ring \
             ([encryption.md](encryption.md#member-ciphertexts-deterministic-aes-siv)). A \
             HyperLogLog's raw bytes are never returned (`GET` on its key is refused).",
        ),
        _ => None,
    }
}

fn row(spec: &CommandSpec, parent: Option<&CommandSpec>) -> String {
    if !spec.subcommands.is_empty() {
        return format!(
            "| `{}` | {} | container: see its subcommands | — | — | — | — |\n",
            spec.name, spec.arity
        );
    }
    let action = match spec.action {
        Action::Forward => "forward".to_owned(),
        Action::Local(local) => format!("local: {}", local_doc(local)),
        Action::Script(op) => format!("script engine: {}", script_doc(op)),
        Action::Emulate => {
            let trips = crate::emulate::lookup(spec.name.as_bytes()).map_or(2, |e| e.round_trips);
            format!(
                "emulated: read under WATCH, computed by redcloak, written back encrypted in \
                 MULTI/EXEC ({trips} round trip{} without contention)",
                if trips == 1 { "" } else { "s" }
            )
        }
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
            format!(
                "argument {i} must be a payload sealed by redcloak's `DUMP` (another is \
                 refused; queued in MULTI, Redis gets a payload it rejects at EXEC with its own \
                 error, as it would reject the client's)"
            )
        }
    };
    let values = match (spec.members, values.as_str()) {
        (MemberArgs::None, _) => values,
        (members, "—") => format!("members (deterministic): {}", members_doc(members)),
        (members, _) => format!("{values}; members: {}", members_doc(members)),
    };
    let mut reply = match (spec.action, spec.reply) {
        (Action::Forward, ReplyRule::Shape(shape)) => shape_doc(shape),
        (Action::Forward, ReplyRule::Custom(_)) if spec.family == Family::Members => {
            "members decrypted, scores kept (the shape depends on `WITHSCORES`)".to_owned()
        }
        (Action::Forward, ReplyRule::Custom(_)) => {
            "values decrypted (shape depends on the options)".to_owned()
        }
        _ => "—".to_owned(),
    };
    if spec.bind == Bind::Moves && crate::emulate::is_emulated(spec.name.as_bytes()) {
        reply.push_str(
            "; while `REDCLOAK_VALUE_FORMAT=aes-gcm`, carried out by redcloak, what moves \
             encrypted again for its new key",
        );
    } else if spec.bind == Bind::Moves {
        reply.push_str(
            "; refused while `REDCLOAK_VALUE_FORMAT=aes-gcm` (Redis would move values to a \
             location where an aes-gcm value does not open)",
        );
    }
    let overwrite = " an old value that does not decrypt is set again while the key still \
                     holds what the command wrote (not lost; its expiry is not restored)";
    if spec.pops == Pops::Overwrite {
        reply.push(';');
        reply.push_str(overwrite);
    } else if let Pops::OverwriteWith(word) = spec.pops {
        reply.push_str(&format!("; with {word},{overwrite}"));
    } else if spec.pops != Pops::None {
        reply.push_str(if spec.family == Family::Members {
            "; a member that does not decrypt is put back where it was taken from (not lost)"
        } else {
            "; a value that does not decrypt is put back where it was taken from (not lost)"
        });
    }
    match spec.rewrite {
        Rewrite::None => {}
        Rewrite::Every(_) => reply.push_str(
            "; during a key rotation each member is looked up under every key of the ring",
        ),
        Rewrite::Via(name, _) => reply.push_str(&format!(
            "; during a key rotation sent as `{name}` with the member under every key of the ring"
        )),
        Rewrite::As(name) => reply.push_str(&format!(
            "; sent as `{name}`, so that each value is opened at its field"
        )),
        Rewrite::Match { .. } => reply.push_str(
            "; `MATCH` is applied by redcloak to the decrypted members (the pattern never \
             reaches Redis; a page may be shorter, or empty, with a non-zero cursor)",
        ),
    }
    let name = match parent {
        Some(p) => format!("{} {}", p.name, spec.name),
        None => spec.name.to_owned(),
    };
    format!(
        "| `{name}` | {} | {action} | {values} | {reply} | {} | {} |\n",
        spec.arity,
        effect_doc(spec.effect),
        outage_doc(spec),
    )
}

/// Whether a reply of this shape holds members.
fn holds_members(shape: &Shape) -> bool {
    match shape {
        Shape::Member | Shape::Members | Shape::Scored | Shape::Lead(_) => true,
        Shape::Tuple(shapes) => shapes.iter().any(holds_members),
        Shape::Each(inner)
        | Shape::Pairs(inner)
        | Shape::Keyed(inner)
        | Shape::KeyedPairs(inner) => holds_members(inner),
        Shape::Fields(fields) => fields.iter().any(|(_, s)| holds_members(s)),
        _ => false,
    }
}

fn members_doc(members: MemberArgs) -> String {
    match members {
        MemberArgs::None => "—".to_owned(),
        MemberArgs::At(i) => format!("argument {i}"),
        MemberArgs::Span(from, to) => {
            let list: Vec<String> = (from..to).map(|i| i.to_string()).collect();
            format!("arguments {}", list.join(" and "))
        }
        MemberArgs::From(i) => format!("every argument from {i}"),
        MemberArgs::Stride(from, 2) => format!("every second argument from {from}"),
        MemberArgs::Stride(from, 3) => format!("every third argument from {from}"),
        MemberArgs::Stride(from, step) => format!("every {step}th argument from {from}"),
        MemberArgs::AtThenFrom(at, from) => {
            format!("argument {at} and every argument from {from}")
        }
        MemberArgs::Custom(_, doc) => doc.to_owned(),
    }
}

fn local_doc(local: Local) -> &'static str {
    match local {
        Local::Auth => {
            "`+OK`; the client's credentials are discarded, redcloak authenticates with its own"
        }
        Local::Quit => "`+OK`, then close",
        Local::Ping => "with a message: the message, by redcloak; a bare `PING` is forwarded",
        Local::Echo => "the message, by redcloak",
        Local::GetKeys { .. } => "from the command table's key positions",
    }
}

fn script_doc(op: ScriptOp) -> &'static str {
    match op {
        ScriptOp::Eval { .. } | ScriptOp::Fcall { .. } => {
            "run by redcloak (Lua 5.1, Redis's sandbox and libraries); every redis.call goes \
             through this table; atomic (scratch copies under WATCH, committed in MULTI/EXEC)"
        }
        ScriptOp::Load | ScriptOp::Exists | ScriptOp::Flush => {
            "redcloak's script cache (per redcloak; clients fall back to EVAL on NOSCRIPT)"
        }
        ScriptOp::Kill => "`NOTBUSY`: scripts never hold Redis up",
        _ => {
            "redcloak's function libraries, stored encrypted in Redis in a function \
             library of redcloak's own (`redcloak_internal`; no key, kept by FLUSHALL), shared \
             by every redcloak"
        }
    }
}

fn effect_doc(effect: Effect) -> &'static str {
    match effect {
        Effect::None => "—",
        Effect::Select => "database (refused inside MULTI)",
        Effect::Watch => "watching",
        Effect::Unwatch => "not watching",
        Effect::Multi => "starts queueing; the queued commands' rules decode EXEC's reply",
        Effect::Exec => "each element of the reply decoded by its queued command's rule",
        Effect::Discard => "drops the queue",
        Effect::Hello => {
            "protocol; the AUTH part is answered by redcloak and removed (refused inside MULTI)"
        }
        Effect::Reset => "everything reset; redcloak authenticates the connection again",
        Effect::Subscribe(_) => {
            "subscriptions: one confirmation per name; message payloads are decrypted"
        }
        Effect::Unsubscribe(_) => {
            "subscriptions: one confirmation per name, or per current subscription"
        }
        Effect::Publish => "— (inside an execution redcloak carries out: sent at commit)",
    }
}

fn outage_doc(spec: &CommandSpec) -> &'static str {
    match (spec.action, spec.cache) {
        (Action::Local(_), _) => "answered",
        (Action::Emulate, _) => "TRYAGAIN (needs the current value)",
        (Action::Script(_), _) => "TRYAGAIN",
        (Action::Refuse(_), _) => "refused",
        (Action::Forward, CacheOp::None | CacheOp::ForgetAll) => "TRYAGAIN",
        (Action::Forward, CacheOp::Get | CacheOp::MGet | CacheOp::Exists | CacheOp::Type) => {
            "from the cache when every key is known, else TRYAGAIN"
        }
        (Action::Forward, CacheOp::Ttl(_)) => "from the cache when the expiry is known",
        (Action::Forward, CacheOp::Set) => {
            "journaled; with NX/XX/GET/KEEPTTL only when the key is known"
        }
        (Action::Forward, CacheOp::SetNx | CacheOp::MSetNx | CacheOp::GetSet | CacheOp::GetDel) => {
            "journaled when the keys are known"
        }
        (Action::Forward, CacheOp::SetEx(_) | CacheOp::MSet | CacheOp::Del) => "journaled",
        (Action::Forward, CacheOp::Expire(..) | CacheOp::Persist) => {
            "journaled when the key is known (no NX/XX/GT/LT)"
        }
    }
}

fn shape_doc(shape: &Shape) -> String {
    match shape {
        Shape::Pass => "as Redis sent it".to_owned(),
        Shape::Value => "the value decrypted".to_owned(),
        Shape::Values | Shape::PerKey | Shape::PairValues => "every value decrypted".to_owned(),
        shape if holds_members(shape) => {
            "members decrypted; cursors, keys, scores, distances and coordinates kept".to_owned()
        }
        Shape::Tuple(_)
        | Shape::Each(_)
        | Shape::Pairs(_)
        | Shape::Fields(_)
        | Shape::Keyed(_)
        | Shape::KeyedPairs(_) => "values decrypted, names kept".to_owned(),
        Shape::Member | Shape::Members => "every member decrypted".to_owned(),
        Shape::Scored => "members decrypted, scores kept".to_owned(),
        Shape::Lead(_) => "members decrypted, distances, hashes and coordinates kept".to_owned(),
        Shape::Seal => "the payload sealed (encrypted) for the client".to_owned(),
        Shape::Config => {
            "as Redis sent it, without credentials and key paths (requirepass, masterauth, \
             tls-key-file…)"
                .to_owned()
        }
        Shape::Keys => "as Redis sent it, without redcloak's own keys".to_owned(),
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
        assert_eq!(
            spec.reply.shape(&[]),
            &Shape::Config,
            "CONFIG GET would reveal the password unless its reply is filtered"
        );
        let Resolved::Known { spec, .. } = resolve(&b(&["CONFIG", "SET", "a", "b"])) else {
            panic!()
        };
        assert!(matches!(spec.action, Action::Refuse(_)));
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
                    "XADD", "s", "MINID", "~", "0-1", "LIMIT", "5", "1-1", "f", "v",
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
        // LIMIT needs `~` (Redis checks it before the pairs).
        let exact = [
            "XADD", "s", "MINID", "=", "0-1", "LIMIT", "5", "1-1", "f", "v",
        ];
        assert!(spec.values.resolve(&b(&exact)).is_err());
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
        let at = |parts: &[&str]| use_of(parts).positions().collect::<Vec<_>>();
        let get = use_of(&["GET", "k"]);
        assert_eq!(at(&["GET", "k"]), vec![1]);
        assert!(!get.write && !get.touches_all && !get.blocking && !get.invalid);
        assert_eq!(at(&["MSET", "a", "1", "b", "2"]), vec![1, 3]);
        assert_eq!(at(&["DEL", "a", "b", "c"]), vec![1, 2, 3]);
        let rename = use_of(&["RENAME", "a", "b"]);
        assert_eq!(at(&["RENAME", "a", "b"]), vec![1, 2]);
        assert!(rename.write && !rename.touches_all);
        assert_eq!(
            at(&["XREAD", "COUNT", "1", "STREAMS", "s1", "s2", "0", "0"]),
            vec![4, 5]
        );
        assert_eq!(at(&["BLMPOP", "0", "2", "a", "b", "LEFT"]), vec![3, 4]);
        assert!(use_of(&["FLUSHDB"]).touches_all);
        assert!(
            use_of(&["BLPOP", "q", "0"]).blocking
                && use_of(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]).blocking
        );
        assert!(use_of(&["SWAPDB", "0", "1"]).touches_all);
        assert_eq!(at(&["XINFO", "STREAM", "s"]), vec![2]);
        assert!(!use_of(&["CLIENT", "SETNAME", "x"]).write);
        // Every row names a Redis 7.0 command.
        for spec in all() {
            let known = key_spec(spec, None).is_some() || !spec.subcommands.is_empty();
            assert!(known, "{} has no key spec", spec.name);
            for sub in spec.subcommands {
                assert!(
                    key_spec(sub, Some(spec)).is_some(),
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
    fn overwrites_are_read_from_the_option_words() {
        let args = |s: &str| -> Vec<Bytes> {
            s.split(' ')
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect()
        };
        let set = lookup(b"SET").unwrap().pops;
        assert!(set.overwrites(&args("SET k v GET")));
        assert!(set.overwrites(&args("SET k v nx get EX 10")));
        assert!(set.overwrites(&[
            Bytes::from_static(b"SET"),
            Bytes::from_static(b"k"),
            Bytes::from_static(b"v"),
            Bytes::from_static(b"GET\0x"),
        ]));
        assert!(
            !set.overwrites(&args("SET k GET")),
            "GET as the value is no option"
        );
        assert!(!set.overwrites(&args("SET k v EX 10")));
        assert!(lookup(b"GETSET")
            .unwrap()
            .pops
            .overwrites(&args("GETSET k v")));
        assert!(!lookup(b"GETDEL")
            .unwrap()
            .pops
            .overwrites(&args("GETDEL k")));
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
