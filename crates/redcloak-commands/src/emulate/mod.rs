//! The pure compute core of the commands redcloak emulates (DESIGN §4a).
//!
//! Redis cannot compute on ciphertext, so for INCR, APPEND, SETRANGE, BITFIELD, LREM, SORT…
//! the proxy reads the current values under WATCH, decrypts them, asks this module what Redis
//! 7.0 would have answered and written, and applies the writes (encrypted) with MULTI/EXEC,
//! retrying if EXEC reports a conflict. This module does no I/O and no encryption.
//!
//! # Protocol with the executor
//! 1. [`start`] checks what can be checked from the arguments alone (arity, syntax, numbers
//!    Redis parses before it looks at the key). `Err(reply)` is the whole answer: nothing
//!    is read, nothing is written. `Ok(reads)` says what to read.
//! 2. The executor performs the reads — every key under WATCH, all reads of one command from
//!    one consistent snapshot — and calls [`compute`] with one [`Found`] per [`Read`], in
//!    order.
//! 3. [`compute`] answers [`Step::Done`] (the reply and the writes to apply in MULTI/EXEC;
//!    no writes means no transaction is needed) or [`Step::Read`] (SORT with BY/GET
//!    patterns: more reads). After a `Step::Read`, call [`compute`] again with the results
//!    of *all* reads so far (the first ones, then the new ones). `compute` is a pure function
//!    of its inputs, so it is simply run again from the start.
//!
//! # Table
//! One [`Emulated`] row per command in [`COMMANDS`]; nothing else matches command names.
//!
//! | command | reads | writes (TTL rule) | round trips |
//! |---|---|---|---|
//! | INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT, APPEND | `String` | `SetString` (Keep) | 2 |
//! | SETRANGE, SETBIT, BITFIELD | `String` | `SetString` (Keep), none if unchanged | 2 |
//! | GETRANGE, SUBSTR, STRLEN, GETBIT, BITCOUNT, BITPOS, BITFIELD_RO | `String` | — | 1 |
//! | LCS | `String` ×2 | — | 1 |
//! | BITOP | `String` per source | `SetString` (Clear) on dest, or `Delete` dest | 2 |
//! | HINCRBY, HINCRBYFLOAT | `HashField` | `HSetField` (hash TTL untouched) | 2 |
//! | HSTRLEN | `HashField` | — | 1 |
//! | LPOS | `List` | — | 1 |
//! | LREM, LINSERT | `List` | `ReplaceList` (Keep) or `Delete` | 2 |
//! | SORT, SORT_RO | `Collection`, then BY/GET keys (`String`, `HashField`) | STORE: `ReplaceList` (Clear) or `Delete` | 1 (2 with STORE), +1 with patterns |
//!
//! Errors write nothing, and a command that ends up writing nothing needs no MULTI/EXEC (an
//! UNWATCH, pipelined, is enough).
//!
//! # Layout
//! - `cfloat`: C `long double`/`double` parsing and formatting, exactly as Redis does.
//! - `strings`: INCR family, INCRBYFLOAT, APPEND, SETRANGE, GETRANGE/SUBSTR, STRLEN, LCS.
//! - `bits`: GETBIT, SETBIT, BITCOUNT, BITPOS, BITFIELD(_RO), BITOP.
//! - `hashes`: HINCRBY, HINCRBYFLOAT, HSTRLEN.
//! - `lists`: LPOS, LREM, LINSERT.
//! - `sort`: SORT, SORT_RO.
//!
//! # Assumptions about the Redis server
//! Redis 7.0 defaults: `proto-max-bulk-len` 512 MiB, `set-max-intset-entries` 512; an x86_64
//! build (80-bit `long double`); `LC_COLLATE` C, POSIX or C.UTF-8 (SORT ALPHA compares with
//! `strcoll`, which is `strcmp` there).
//!
//! # Security
//! `Found`, `Write` and `ListItem` carry plaintext values: their `Debug` prints lengths only.

use std::fmt;

use bytes::Bytes;

use crate::resp::Frame;

mod bits;
pub(crate) mod cfloat;
mod hashes;
mod keys;
mod lists;
mod sort;
mod strings;

// === the interface ===

/// What the executor must read (under WATCH) before [`compute`] can run.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Read {
    /// The string at `key` (`GET`). A key of another type is [`Found::WrongType`].
    String {
        /// The key.
        key: Bytes,
    },
    /// One field of the hash at `key` (`HGET`). Missing key or field: [`Found::Missing`].
    HashField {
        /// The key.
        key: Bytes,
        /// The field name.
        field: Bytes,
    },
    /// All elements of the list at `key`, head to tail (`LRANGE key 0 -1`).
    List {
        /// The key.
        key: Bytes,
    },
    /// The element at the head (or tail) of the list at `key` (`LINDEX key 0|-1`): a missing
    /// key is [`Found::Missing`], a list gives [`Found::Element`].
    ListEnd {
        /// The key.
        key: Bytes,
        /// The tail rather than the head.
        tail: bool,
    },
    /// Whether `key` holds a list (`TYPE`): [`Found::Missing`], [`Found::WrongType`], or an
    /// empty [`Found::List`] (no element is read).
    IsList {
        /// The key.
        key: Bytes,
    },
    /// Everything at `key`, whatever its type, and its expiry (`RENAME`'s source): `TYPE`,
    /// then the reading of that type, then `PEXPIRETIME`. A missing key is
    /// [`Found::Missing`]; anything else is [`Found::Whole`].
    Whole {
        /// The key.
        key: Bytes,
    },
    /// The list, set or sorted set at `key` (SORT's input): `TYPE`, then `LRANGE 0 -1`,
    /// `SMEMBERS` or `ZRANGE 0 -1 WITHSCORES`. Strings, hashes and streams are
    /// [`Found::WrongType`].
    Collection {
        /// The key.
        key: Bytes,
    },
}

impl fmt::Debug for Read {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Key and field names are not secret in redcloak's threat model, but they are the
        // application's data: print their lengths only, like `Frame`.
        let n = |b: &Bytes| Redacted(b.len());
        match self {
            Read::String { key } => f.debug_struct("String").field("key", &n(key)).finish(),
            Read::HashField { key, field } => f
                .debug_struct("HashField")
                .field("key", &n(key))
                .field("field", &n(field))
                .finish(),
            Read::List { key } => f.debug_struct("List").field("key", &n(key)).finish(),
            Read::ListEnd { key, tail } => f
                .debug_struct("ListEnd")
                .field("key", &n(key))
                .field("tail", tail)
                .finish(),
            Read::IsList { key } => f.debug_struct("IsList").field("key", &n(key)).finish(),
            Read::Whole { key } => f.debug_struct("Whole").field("key", &n(key)).finish(),
            Read::Collection { key } => f.debug_struct("Collection").field("key", &n(key)).finish(),
        }
    }
}

/// What Redis holds, as the executor found it for one [`Read`] (values already decrypted).
#[derive(Clone, PartialEq)]
pub enum Found {
    /// The key does not exist (for [`Read::HashField`]: the key or the field).
    Missing,
    /// The key holds another type than the read expects.
    WrongType,
    /// A string value ([`Read::String`]).
    String(Vec<u8>),
    /// A hash field's value ([`Read::HashField`]).
    Field(Vec<u8>),
    /// A list, head to tail ([`Read::List`], [`Read::Collection`]; empty for
    /// [`Read::IsList`]).
    List(Vec<Vec<u8>>),
    /// A list element ([`Read::ListEnd`]).
    Element(Vec<u8>),
    /// A whole key ([`Read::Whole`]).
    Whole(Whole),
    /// A set's members, in the order the executor read them ([`Read::Collection`]).
    Set(Vec<Vec<u8>>),
    /// A sorted set's members and scores, in any order ([`Read::Collection`]).
    ZSet(Vec<(Vec<u8>, f64)>),
}

impl fmt::Debug for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Missing => f.write_str("Missing"),
            Found::WrongType => f.write_str("WrongType"),
            Found::String(v) => f.debug_tuple("String").field(&Redacted(v.len())).finish(),
            Found::Field(v) => f.debug_tuple("Field").field(&Redacted(v.len())).finish(),
            Found::Element(v) => f.debug_tuple("Element").field(&Redacted(v.len())).finish(),
            Found::Whole(w) => f.debug_tuple("Whole").field(w).finish(),
            Found::List(v) => write!(f, "List(<{} items>)", v.len()),
            Found::Set(v) => write!(f, "Set(<{} members>)", v.len()),
            Found::ZSet(v) => write!(f, "ZSet(<{} members>)", v.len()),
        }
    }
}

/// What happens to the key's time to live when a write is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// The key keeps its TTL (`SET … KEEPTTL`; for a list, restore it after rewriting).
    /// A key that did not exist has none.
    Keep,
    /// The key ends up without a TTL (plain `SET`; `DEL` then `RPUSH` for a list).
    Clear,
}

/// A whole key as [`Read::Whole`] found it: its values decrypted, with its expiry.
#[derive(Clone, PartialEq)]
pub struct Whole {
    /// What it holds.
    pub held: Held,
    /// When it expires (Unix time in ms, `PEXPIRETIME`), or -1.
    pub expire_at: i64,
}

/// What a key holds, for [`Whole`].
#[derive(Clone, PartialEq)]
pub enum Held {
    /// A string value.
    String(Vec<u8>),
    /// A list's elements, head to tail.
    List(Vec<Vec<u8>>),
    /// A hash's fields and values.
    Hash(Vec<(Bytes, Vec<u8>)>),
    /// A type whose contents are not bound to the key's name (sets, sorted sets: members;
    /// a HyperLogLog): Redis can move it as it is.
    Unbound,
    /// A stream (its entries' values are bound to its name; not rewritten here).
    Stream,
}

impl fmt::Debug for Whole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held = match &self.held {
            Held::String(v) => format!("String(<{} bytes>)", v.len()),
            Held::List(v) => format!("List(<{} items>)", v.len()),
            Held::Hash(v) => format!("Hash(<{} fields>)", v.len()),
            Held::Unbound => "Unbound".to_owned(),
            Held::Stream => "Stream".to_owned(),
        };
        f.debug_struct("Whole")
            .field("held", &held)
            .field("expire_at", &self.expire_at)
            .finish()
    }
}

/// An element of a list being rewritten.
#[derive(Clone, PartialEq, Eq)]
pub enum ListItem {
    /// The element at this index of the list that was read for the same key
    /// ([`Found::List`]): the executor may keep its ciphertext as it is.
    Existing(usize),
    /// A new element (plaintext; the executor encrypts it).
    New(Vec<u8>),
}

impl fmt::Debug for ListItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListItem::Existing(i) => f.debug_tuple("Existing").field(i).finish(),
            ListItem::New(v) => f.debug_tuple("New").field(&Redacted(v.len())).finish(),
        }
    }
}

/// A write the executor applies in MULTI/EXEC, in order, encrypting values.
#[derive(Clone, PartialEq)]
pub enum Write {
    /// The key becomes this string, whatever it held (`SET key value`, with `KEEPTTL` for
    /// [`Ttl::Keep`]).
    SetString {
        /// The key.
        key: Bytes,
        /// The new value (plaintext).
        value: Vec<u8>,
        /// TTL rule.
        ttl: Ttl,
    },
    /// One hash field is set (`HSET key field value`); the hash keeps its TTL, a new hash
    /// has none.
    HSetField {
        /// The key.
        key: Bytes,
        /// The field name.
        field: Bytes,
        /// The new value (plaintext).
        value: Vec<u8>,
    },
    /// The key becomes a list of exactly these items, head to tail (never empty: an empty
    /// result is a [`Write::Delete`]). For [`Ttl::Keep`] the list existed and keeps its TTL
    /// (e.g. read `PEXPIRETIME` with the list under the same WATCH, rewrite with `DEL` +
    /// `RPUSH`, then `PEXPIREAT` if it had one); for [`Ttl::Clear`] the key (of any type) is
    /// replaced and has no TTL.
    ReplaceList {
        /// The key.
        key: Bytes,
        /// The items.
        items: Vec<ListItem>,
        /// TTL rule.
        ttl: Ttl,
    },
    /// The key is deleted (`DEL`).
    Delete {
        /// The key.
        key: Bytes,
    },
    /// The list's head (or tail) element is removed (`LPOP`/`RPOP`: the one a
    /// [`Read::ListEnd`] under the same WATCH found); the list keeps its TTL, and goes when
    /// it is left empty.
    Pop {
        /// The key.
        key: Bytes,
        /// The tail rather than the head.
        tail: bool,
    },
    /// The key expires at this Unix time in ms (`PEXPIREAT`).
    ExpireAt {
        /// The key.
        key: Bytes,
        /// When.
        at: i64,
    },
    /// Redis renames the key as it is (`RENAME from to`), for contents not bound to the name.
    Rename {
        /// The key.
        from: Bytes,
        /// Its new name.
        to: Bytes,
    },
    /// An element is pushed at the head (or tail) of the list at `key` (`LPUSH`/`RPUSH`),
    /// which is created if missing and keeps its TTL otherwise.
    Push {
        /// The key.
        key: Bytes,
        /// The head rather than the tail.
        head: bool,
        /// The element (plaintext).
        value: Vec<u8>,
    },
}

impl fmt::Debug for Write {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Write::SetString { key, value, ttl } => f
                .debug_struct("SetString")
                .field("key", &Redacted(key.len()))
                .field("value", &Redacted(value.len()))
                .field("ttl", ttl)
                .finish(),
            Write::HSetField { key, field, value } => f
                .debug_struct("HSetField")
                .field("key", &Redacted(key.len()))
                .field("field", &Redacted(field.len()))
                .field("value", &Redacted(value.len()))
                .finish(),
            Write::ReplaceList { key, items, ttl } => f
                .debug_struct("ReplaceList")
                .field("key", &Redacted(key.len()))
                .field("items", items)
                .field("ttl", ttl)
                .finish(),
            Write::Delete { key } => f
                .debug_struct("Delete")
                .field("key", &Redacted(key.len()))
                .finish(),
            Write::ExpireAt { key, at } => f
                .debug_struct("ExpireAt")
                .field("key", &Redacted(key.len()))
                .field("at", at)
                .finish(),
            Write::Rename { from, to } => f
                .debug_struct("Rename")
                .field("from", &Redacted(from.len()))
                .field("to", &Redacted(to.len()))
                .finish(),
            Write::Pop { key, tail } => f
                .debug_struct("Pop")
                .field("key", &Redacted(key.len()))
                .field("tail", tail)
                .finish(),
            Write::Push { key, head, value } => f
                .debug_struct("Push")
                .field("key", &Redacted(key.len()))
                .field("head", head)
                .field("value", &Redacted(value.len()))
                .finish(),
        }
    }
}

/// The outcome of [`compute`].
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Redis's reply, and the writes that make Redis hold what it would hold (empty when
    /// nothing changes, including on every error reply).
    Done {
        /// The reply to send to the client.
        reply: Frame,
        /// The writes, in order.
        writes: Vec<Write>,
    },
    /// More reads are needed (SORT BY/GET patterns). Call [`compute`] again with the
    /// results of all reads so far.
    Read(Vec<Read>),
}

/// Whether a command only reads or also writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Never writes.
    ReadOnly,
    /// May write.
    ReadWrite,
}

/// One emulated command: a row of the table.
pub struct Emulated {
    /// The command name, upper case.
    pub name: &'static str,
    /// Redis's arity: `n` exactly n arguments (name included), `-n` at least n.
    pub arity: i32,
    /// Whether it may write.
    pub access: Access,
    /// Round trips to Redis in the common case, without conflicts: 1 for a read-only command
    /// (its reads, in one MULTI/EXEC when there are several keys), 2 for one that writes
    /// (WATCH + reads, then MULTI/writes/EXEC). SORT without STORE writes nothing and costs
    /// 1; BY/GET patterns that name keys add one more (see the table in the module docs).
    pub round_trips: u8,
    plan: fn(&[Bytes]) -> Result<Vec<Read>, Frame>,
    run: fn(&Call<'_>) -> Step,
}

impl fmt::Debug for Emulated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulated")
            .field("name", &self.name)
            .field("arity", &self.arity)
            .field("access", &self.access)
            .field("round_trips", &self.round_trips)
            .finish()
    }
}

const fn row(
    name: &'static str,
    arity: i32,
    access: Access,
    plan: fn(&[Bytes]) -> Result<Vec<Read>, Frame>,
    run: fn(&Call<'_>) -> Step,
) -> Emulated {
    let round_trips = match access {
        Access::ReadOnly => 1,
        Access::ReadWrite => 2,
    };
    Emulated {
        name,
        arity,
        access,
        round_trips,
        plan,
        run,
    }
}

use Access::{ReadOnly, ReadWrite};

/// Every emulated command.
pub static COMMANDS: &[Emulated] = &[
    // strings
    row("INCR", 2, ReadWrite, strings::plan_incr, strings::incr),
    row("DECR", 2, ReadWrite, strings::plan_incr, strings::decr),
    row(
        "INCRBY",
        3,
        ReadWrite,
        strings::plan_incrby,
        strings::incrby,
    ),
    row(
        "DECRBY",
        3,
        ReadWrite,
        strings::plan_decrby,
        strings::decrby,
    ),
    row(
        "INCRBYFLOAT",
        3,
        ReadWrite,
        strings::plan_incrbyfloat,
        strings::incrbyfloat,
    ),
    row("APPEND", 3, ReadWrite, strings::plan_key, strings::append),
    row(
        "SETRANGE",
        4,
        ReadWrite,
        strings::plan_setrange,
        strings::setrange,
    ),
    row(
        "GETRANGE",
        4,
        ReadOnly,
        strings::plan_getrange,
        strings::getrange,
    ),
    row(
        "SUBSTR",
        4,
        ReadOnly,
        strings::plan_getrange,
        strings::getrange,
    ),
    row("STRLEN", 2, ReadOnly, strings::plan_key, strings::strlen),
    row("LCS", -3, ReadOnly, strings::plan_lcs, strings::lcs),
    // bitmaps
    row("GETBIT", 3, ReadOnly, bits::plan_getbit, bits::getbit),
    row("SETBIT", 4, ReadWrite, bits::plan_setbit, bits::setbit),
    row("BITCOUNT", -2, ReadOnly, strings::plan_key, bits::bitcount),
    row("BITPOS", -3, ReadOnly, bits::plan_bitpos, bits::bitpos),
    row(
        "BITFIELD",
        -2,
        ReadWrite,
        bits::plan_bitfield,
        bits::bitfield,
    ),
    row(
        "BITFIELD_RO",
        -2,
        ReadOnly,
        bits::plan_bitfield_ro,
        bits::bitfield,
    ),
    row("BITOP", -4, ReadWrite, bits::plan_bitop, bits::bitop),
    // hashes
    row(
        "HINCRBY",
        4,
        ReadWrite,
        hashes::plan_hincrby,
        hashes::hincrby,
    ),
    row(
        "HINCRBYFLOAT",
        4,
        ReadWrite,
        hashes::plan_hincrbyfloat,
        hashes::hincrbyfloat,
    ),
    row("HSTRLEN", 3, ReadOnly, hashes::plan_field, hashes::hstrlen),
    // lists
    row("LPOS", -3, ReadOnly, lists::plan_lpos, lists::lpos),
    row("LREM", 4, ReadWrite, lists::plan_lrem, lists::lrem),
    row("LINSERT", 5, ReadWrite, lists::plan_linsert, lists::linsert),
    // Only while values are written as aes-gcm (`transform::rebinds`): the element moves
    // to another list, where it must be encrypted for its new key.
    row("LMOVE", 5, ReadWrite, lists::plan_lmove, lists::lmove),
    row(
        "RPOPLPUSH",
        3,
        ReadWrite,
        lists::plan_rpoplpush,
        lists::rpoplpush,
    ),
    // Only while values are written as aes-gcm (`transform::rebinds`): the values are
    // encrypted again for the new name.
    row("RENAME", 3, ReadWrite, keys::plan_rename, keys::rename),
    row("RENAMENX", 3, ReadWrite, keys::plan_rename, keys::renamenx),
    // sort
    row("SORT", -2, ReadWrite, sort::plan_sort, sort::sort),
    row("SORT_RO", -2, ReadOnly, sort::plan_sort_ro, sort::sort),
];

/// The row of an emulated command (name in any case).
pub fn lookup(name: &[u8]) -> Option<&'static Emulated> {
    COMMANDS
        .iter()
        .find(|row| row.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Whether redcloak emulates this command.
pub fn is_emulated(name: &[u8]) -> bool {
    lookup(name).is_some()
}

/// Step 1: what to read for `args` (the command name first), or the reply if the arguments
/// alone decide it (unknown command, arity, syntax and number errors Redis reports before it
/// looks at any key). Never writes.
pub fn start(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    let row = resolve(args)?;
    (row.plan)(args)
}

/// Step 2: Redis 7.0's reply and the writes, from the values found for the reads that
/// [`start`] (and any earlier [`Step::Read`]) asked for, in order. `resp3` selects the RESP3
/// forms of nulls and maps (`HELLO 3`).
///
/// If `found` does not match the reads asked for (an executor bug), the reply is an error
/// and nothing is written.
pub fn compute(args: &[Bytes], found: &[Found], resp3: bool) -> Step {
    let row = match resolve(args) {
        Ok(row) => row,
        Err(reply) => return done(reply),
    };
    if let Err(reply) = (row.plan)(args) {
        return done(reply);
    }
    (row.run)(&Call { args, found, resp3 })
}

fn resolve(args: &[Bytes]) -> Result<&'static Emulated, Frame> {
    let name = args.first().ok_or_else(|| error("ERR empty command"))?;
    let row = lookup(name).ok_or_else(|| {
        error(&format!(
            "ERR redcloak: {} is not an emulated command",
            String::from_utf8_lossy(name).to_ascii_uppercase()
        ))
    })?;
    let n = args.len() as i64;
    let arity = i64::from(row.arity);
    if (arity > 0 && n != arity) || (arity < 0 && n < -arity) {
        return Err(error(&format!(
            "ERR wrong number of arguments for '{}' command",
            row.name.to_ascii_lowercase()
        )));
    }
    Ok(row)
}

// === shared by the families ===

/// One computation: the arguments, what was read, and the protocol.
pub(crate) struct Call<'a> {
    pub(crate) args: &'a [Bytes],
    pub(crate) found: &'a [Found],
    pub(crate) resp3: bool,
}

impl Call<'_> {
    /// The `i`-th found value, or `None` if the executor gave fewer.
    pub(crate) fn found(&self, i: usize) -> Option<&Found> {
        self.found.get(i)
    }

    /// Redis's null reply for the protocol (`$-1` or `_`).
    pub(crate) fn null(&self) -> Frame {
        if self.resp3 {
            Frame::Null
        } else {
            Frame::NullBulk
        }
    }

    /// The argument at `i` (checked by arity or the plan).
    pub(crate) fn arg(&self, i: usize) -> &Bytes {
        &self.args[i]
    }
}

/// Prints `<n bytes>` in place of a payload.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

pub(crate) const WRONGTYPE: &str =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
pub(crate) const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
pub(crate) const NOT_FLOAT: &str = "ERR value is not a valid float";
pub(crate) const SYNTAX: &str = "ERR syntax error";
pub(crate) const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub(crate) const NAN_OR_INF: &str = "ERR increment would produce NaN or Infinity";
pub(crate) const TOO_BIG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
pub(crate) const EXECUTOR: &str =
    "ERR redcloak: internal error (the values read do not match the reads asked for)";

/// Redis's `proto-max-bulk-len` default.
pub(crate) const PROTO_MAX_BULK_LEN: u64 = 512 * 1024 * 1024;

pub(crate) fn error(text: &str) -> Frame {
    Frame::Error(Bytes::copy_from_slice(text.as_bytes()))
}

pub(crate) fn bulk(value: impl Into<Bytes>) -> Frame {
    Frame::Bulk(value.into())
}

pub(crate) fn done(reply: Frame) -> Step {
    Step::Done {
        reply,
        writes: Vec::new(),
    }
}

pub(crate) fn done_with(reply: Frame, writes: Vec<Write>) -> Step {
    Step::Done { reply, writes }
}

pub(crate) fn executor_bug() -> Step {
    done(error(EXECUTOR))
}

/// Redis's `string2ll` (and `string2l`: `long` is 64 bits): no sign other than `-`, no
/// leading zeros or spaces, no `-0`, no overflow.
pub(crate) fn parse_ll(s: &[u8]) -> Option<i64> {
    crate::resp::parse_i64(s)
}

/// `getLongLongFromObjectOrReply`.
pub(crate) fn ll_arg(s: &[u8]) -> Result<i64, Frame> {
    parse_ll(s).ok_or_else(|| error(NOT_INTEGER))
}

/// A string read's value: `Ok(None)` for a missing key, `Err(reply)` for the wrong type or
/// an executor mismatch.
pub(crate) enum StringRead<'a> {
    Missing,
    Value(&'a [u8]),
}

pub(crate) fn string_at<'a>(call: &'a Call<'_>, i: usize) -> Result<StringRead<'a>, Step> {
    match call.found(i) {
        Some(Found::Missing) => Ok(StringRead::Missing),
        Some(Found::String(v)) => Ok(StringRead::Value(v)),
        Some(Found::WrongType) => Err(done(error(WRONGTYPE))),
        _ => Err(executor_bug()),
    }
}

/// An option word as Redis compares it (`strcasecmp`: any case, up to the first NUL), by the
/// one helper every parser uses ([`crate::words::is`]): `LINSERT k BEFORE\0x p v` inserts.
pub(crate) fn is(arg: &[u8], keyword: &str) -> bool {
    crate::words::is(arg, keyword)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn args(parts: &[&str]) -> Vec<Bytes> {
        parts
            .iter()
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect()
    }

    #[test]
    fn table_is_consistent() {
        for (i, row) in COMMANDS.iter().enumerate() {
            assert_eq!(row.name, row.name.to_ascii_uppercase());
            assert!(
                COMMANDS[i + 1..].iter().all(|other| other.name != row.name),
                "{} twice",
                row.name
            );
            assert!(lookup(row.name.to_ascii_lowercase().as_bytes()).is_some());
        }
        assert!(is_emulated(b"incrbyfloat"));
        assert!(!is_emulated(b"GET"));
    }

    #[test]
    fn arity_is_checked_first() {
        assert_eq!(
            start(&args(&["incrbyfloat", "k"])),
            Err(error(
                "ERR wrong number of arguments for 'incrbyfloat' command"
            ))
        );
        assert_eq!(
            start(&args(&["BITOP", "AND", "d"])),
            Err(error("ERR wrong number of arguments for 'bitop' command"))
        );
        assert!(start(&args(&["GET", "k"])).is_err());
        assert_eq!(
            compute(&args(&["INCR", "k"]), &[], false),
            done(error(EXECUTOR))
        );
    }

    /// Any arguments and any values read: a reply, never a panic (the executor passes
    /// whatever Redis held, the client whatever it likes).
    #[test]
    fn never_panics() {
        let words: &[&[u8]] = &[
            b"0",
            b"1",
            b"-1",
            b"7",
            b"63",
            b"64",
            b"#2",
            b"x",
            b"",
            b"-9223372036854775808",
            b"9223372036854775807",
            b"1e3",
            b"inf",
            b"BIT",
            b"BYTE",
            b"GET",
            b"SET",
            b"INCRBY",
            b"OVERFLOW",
            b"FAIL",
            b"SAT",
            b"i8",
            b"u63",
            b"i64",
            b"IDX",
            b"LEN",
            b"WITHMATCHLEN",
            b"MINMATCHLEN",
            b"RANK",
            b"COUNT",
            b"MAXLEN",
            b"BEFORE",
            b"AFTER",
            b"BY",
            b"w_*",
            b"h_*->f",
            b"*->",
            b"#",
            b"LIMIT",
            b"ALPHA",
            b"DESC",
            b"STORE",
            b"AND",
            b"NOT",
            b"nosort",
            b"a\0*",
        ];
        let values: &[&[u8]] = &[
            b"",
            b"0",
            b"12",
            b"-3.5",
            b"abc",
            b"\xff\x00\x81",
            b"1e4000",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for _ in 0..20_000 {
            let row = &COMMANDS[next(COMMANDS.len())];
            let mut args = vec![Bytes::from_static(row.name.as_bytes())];
            for _ in 0..next(7) {
                args.push(Bytes::from_static(words[next(words.len())]));
            }
            let mut found = Vec::new();
            for _ in 0..next(4) {
                let value = values[next(values.len())].to_vec();
                found.push(match next(8) {
                    0 => Found::Missing,
                    1 => Found::WrongType,
                    2 => Found::String(value),
                    3 => Found::Field(value),
                    4 => Found::List(vec![value.clone(), b"1".to_vec(), value]),
                    5 => Found::Set(vec![value, b"2".to_vec()]),
                    6 => Found::ZSet(vec![(value, 1.5), (b"z".to_vec(), -1.0)]),
                    _ => Found::List(Vec::new()),
                });
            }
            let _ = start(&args);
            for resp3 in [false, true] {
                let _ = compute(&args, &found, resp3);
            }
        }
    }

    #[test]
    fn debug_hides_values() {
        let shown = format!(
            "{:?}",
            (
                Found::String(b"hunter2".to_vec()),
                Write::SetString {
                    key: Bytes::from_static(b"secretkey"),
                    value: b"hunter2".to_vec(),
                    ttl: Ttl::Keep
                },
                ListItem::New(b"hunter2".to_vec()),
                Read::String {
                    key: Bytes::from_static(b"secretkey")
                }
            )
        );
        assert!(
            !shown.contains("hunter2") && !shown.contains("secretkey"),
            "{shown}"
        );
    }
}
