//! Sets, sorted sets, geo and HyperLogLog. Their members are data, but Redis must compare
//! them, so they are encrypted *deterministically* (AES-SIV, docs/encryption.md): equal
//! members give equal ciphertexts under one key, and `SISMEMBER`, `SINTER`, `ZSCORE`,
//! `SMOVE`, `PFADD`… keep working. Scores, coordinates, counts and key names stay as they are.
//!
//! Lexicographic ranges (`ZRANGEBYLEX`, `ZLEXCOUNT`, `… BYLEX`) compare members by their bytes:
//! Redis would compare ciphertexts, whose order is unrelated to your members' order, so they
//! are refused.
//!
//! # Security
//! Where member positions depend on options (`ZADD`, `GEOADD`, `GEOSEARCH`, the `ZRANGE`
//! family, `ZRANDMEMBER`, `ZUNION`…), the options are read exactly as Redis 7.0 reads them
//! (the same loops, the same word matching): redcloak and Redis always agree on which
//! arguments are members and on the shape of the reply. What Redis would reject before it
//! knows where the members are is answered here with Redis's error, never forwarded.
use bytes::Bytes;

use super::{
    forward, pass, reasons, refuse, CommandSpec, Family, MemberArgs, Pops, Reduce, ReplyRule,
    Rewrite, Shape, Shape::*, ValueArgs,
};
use crate::words;

/// This file's family.
const SETS: Family = Family::Members;

const SYNTAX: &str = "ERR syntax error";
const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
const LEX: &str = "lexicographic ranges compare members byte by byte, and Redis would compare \
                   ciphertexts, whose order has nothing to do with your members' order";
const LEX_ALT: Option<&str> = Some(
    "give the members scores that order them and use ZRANGE … BYSCORE, or read the set and sort it in the application",
);
const BYLEX: &str = "ERR redcloak: BYLEX is not supported: lexicographic ranges compare members \
                     byte by byte, and Redis would compare ciphertexts, whose order has nothing \
                     to do with your members' order; instead, give the members scores that \
                     order them and use BYSCORE, or read the set and sort it in the application";
const FROMMEMBER_TWICE: &str = "ERR redcloak: FROMMEMBER given more than once is not supported; \
                                give it once";

const ZADD_DOC: &str =
    "every second argument after the options (`NX`, `XX`, `GT`, `LT`, `CH`, `INCR`), read as Redis reads them";
const RANGE_DOC: &str =
    "none (scores and ranks stay as they are); `BYLEX`, whose bounds are members, is refused";
const GEOADD_DOC: &str =
    "every third argument after the options (`NX`, `XX`, `CH`), read as Redis reads them";
const GEOSEARCH_DOC: &str = "the `FROMMEMBER` member, found as Redis finds it; what Redis would \
                             reject is encrypted too, so Redis rejects it as it would";

/// Set/sorted-set/geo member pairs in replies: `[key, member, score]` (`BZPOPMIN`).
const KEYED_SCORED: Shape = Tuple(&[Pass, Member, Pass]);
/// `[key, [[member, score], …]]` (`ZMPOP`, `BZMPOP`).
const MULTI_SCORED: Shape = Tuple(&[Pass, Scored]);
/// `GEORADIUS` / `GEOSEARCH`: members, or `[member, …]` arrays with `WITH…` options.
const GEO_RESULTS: Shape = Each(&Lead(&Member));

/// A forwarded member command.
const fn member(
    name: &'static str,
    arity: i32,
    members: MemberArgs,
    reply: &'static Shape,
) -> CommandSpec {
    forward(name, arity, ValueArgs::None, reply, SETS).members(members)
}

/// A forwarded command whose reply shape depends on its options.
const fn custom_reply(
    name: &'static str,
    arity: i32,
    members: MemberArgs,
    reply: fn(&[Bytes]) -> &'static Shape,
) -> CommandSpec {
    CommandSpec {
        reply: ReplyRule::Custom(reply),
        ..member(name, arity, members, &Pass)
    }
}

// === ZADD, GEOADD ===

/// `ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member …]`: Redis 7.0's
/// `zaddGenericCommand` option loop (any of the six words, in any order, until the first
/// other argument), then score/member pairs.
fn zadd_members(args: &[Bytes]) -> Result<MemberArgs, &'static str> {
    let mut scoreidx = 2;
    while scoreidx < args.len() {
        let opt = &args[scoreidx];
        if ["nx", "xx", "ch", "incr", "gt", "lt"]
            .iter()
            .any(|w| words::is(opt, w))
        {
            scoreidx += 1;
        } else {
            break;
        }
    }
    let elements = args.len().saturating_sub(scoreidx);
    if elements == 0 || elements % 2 != 0 {
        return Err(SYNTAX);
    }
    Ok(MemberArgs::Stride(scoreidx + 1, 2))
}

/// `GEOADD key [NX|XX] [CH] longitude latitude member …`: `geoaddCommand`'s option loop, then
/// triples.
fn geoadd_members(args: &[Bytes]) -> Result<MemberArgs, &'static str> {
    let (mut nx, mut xx) = (false, false);
    let mut longidx = 2;
    while longidx < args.len() {
        let opt = &args[longidx];
        if words::is(opt, "nx") {
            nx = true;
        } else if words::is(opt, "xx") {
            xx = true;
        } else if !words::is(opt, "ch") {
            break;
        }
        longidx += 1;
    }
    if args.len() < longidx || (args.len() - longidx) % 3 != 0 || (nx && xx) {
        return Err(SYNTAX);
    }
    Ok(MemberArgs::Stride(longidx + 2, 3))
}

// === the ZRANGE family ===

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Auto,
    Reverse,
    Fixed,
}

/// What a `ZRANGE`-family request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    withscores: bool,
    lex: bool,
}

/// Redis 7.0's `zrangeGenericCommand` step 1 (options after `<src> <min> <max>`) and its
/// checks for conflicting options, which come before it touches the key: the same errors.
fn zrange_options(
    args: &[Bytes],
    start: usize,
    store: bool,
    mut rangetype: RangeType,
    mut direction: Direction,
) -> Result<Range, &'static str> {
    let mut withscores = false;
    let mut limit = -1;
    let mut j = start + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let arg = &args[j];
        if !store && words::is(arg, "withscores") {
            withscores = true;
        } else if words::is(arg, "limit") && left >= 2 {
            words::int(&args[j + 1]).ok_or(NOT_AN_INTEGER)?;
            limit = words::int(&args[j + 2]).ok_or(NOT_AN_INTEGER)?;
            j += 2;
        } else if direction == Direction::Auto && words::is(arg, "rev") {
            direction = Direction::Reverse;
        } else if rangetype == RangeType::Auto && words::is(arg, "bylex") {
            rangetype = RangeType::Lex;
        } else if rangetype == RangeType::Auto && words::is(arg, "byscore") {
            rangetype = RangeType::Score;
        } else {
            return Err(SYNTAX);
        }
        j += 1;
    }
    if rangetype == RangeType::Auto {
        rangetype = RangeType::Rank;
    }
    if limit != -1 && rangetype == RangeType::Rank {
        return Err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if withscores && rangetype == RangeType::Lex {
        return Err("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    Ok(Range {
        withscores,
        lex: rangetype == RangeType::Lex,
    })
}

fn zrange(args: &[Bytes]) -> Result<Range, &'static str> {
    zrange_options(args, 1, false, RangeType::Auto, Direction::Auto)
}
fn zrangestore(args: &[Bytes]) -> Result<Range, &'static str> {
    zrange_options(args, 2, true, RangeType::Auto, Direction::Auto)
}
fn zrevrange(args: &[Bytes]) -> Result<Range, &'static str> {
    zrange_options(args, 1, false, RangeType::Rank, Direction::Fixed)
}
fn zrangebyscore(args: &[Bytes]) -> Result<Range, &'static str> {
    zrange_options(args, 1, false, RangeType::Score, Direction::Fixed)
}

/// No member arguments, unless the range is lexicographic (refused: its bounds are members).
fn range_members(range: Result<Range, &'static str>) -> Result<MemberArgs, &'static str> {
    match range? {
        Range { lex: true, .. } => Err(BYLEX),
        _ => Ok(MemberArgs::None),
    }
}

fn range_reply(range: Result<Range, &'static str>) -> &'static Shape {
    match range {
        Ok(Range {
            withscores: true, ..
        }) => &Scored,
        _ => &Members,
    }
}

fn zrange_members(args: &[Bytes]) -> Result<MemberArgs, &'static str> {
    range_members(zrange(args))
}
fn zrange_reply(args: &[Bytes]) -> &'static Shape {
    range_reply(zrange(args))
}
fn zrangestore_members(args: &[Bytes]) -> Result<MemberArgs, &'static str> {
    range_members(zrangestore(args))
}
fn zrevrange_members(args: &[Bytes]) -> Result<MemberArgs, &'static str> {
    range_members(zrevrange(args))
}
fn zrevrange_reply(args: &[Bytes]) -> &'static Shape {
    range_reply(zrevrange(args))
}
fn zrangebyscore_members(args: &[Bytes]) -> Result<MemberArgs, &'static str> {
    range_members(zrangebyscore(args))
}
fn zrangebyscore_reply(args: &[Bytes]) -> &'static Shape {
    range_reply(zrangebyscore(args))
}

/// `ZRANDMEMBER key [count [WITHSCORES]]`: scores only with exactly `WITHSCORES` as the fourth
/// argument (anything else there is a syntax error in Redis).
fn zrandmember_reply(args: &[Bytes]) -> &'static Shape {
    if args.len() == 4 && words::is(&args[3], "withscores") {
        &Scored
    } else {
        &Members
    }
}

/// `ZUNION` / `ZINTER` / `ZDIFF numkeys key … [WEIGHTS w …] [AGGREGATE …] [WITHSCORES]`:
/// `zunionInterDiffGenericCommand`'s option loop (`WEIGHTS` and `AGGREGATE` are not options of
/// `ZDIFF`). Whatever Redis rejects gets an error, whose shape does not matter.
fn zsetop_reply(args: &[Bytes], diff: bool) -> &'static Shape {
    let Some(setnum) = args
        .get(1)
        .and_then(|n| words::int(n))
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n >= 1 && n <= args.len() - 2)
    else {
        return &Members;
    };
    let mut withscores = false;
    let mut j = 2 + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        if !diff && remaining > setnum && words::is(&args[j], "weights") {
            j += 1 + setnum;
        } else if !diff && remaining >= 2 && words::is(&args[j], "aggregate") {
            j += 2;
        } else if words::is(&args[j], "withscores") {
            withscores = true;
            j += 1;
        } else {
            return &Members;
        }
    }
    if withscores {
        &Scored
    } else {
        &Members
    }
}
fn zunion_inter_reply(args: &[Bytes]) -> &'static Shape {
    zsetop_reply(args, false)
}
fn zdiff_reply(args: &[Bytes]) -> &'static Shape {
    zsetop_reply(args, true)
}

// === GEOSEARCH ===

/// `GEOSEARCH key …` / `GEOSEARCHSTORE dst src …`: `georadiusGeneric`'s option loop, which
/// takes `FROMMEMBER member` among the options. From the first argument Redis would reject on,
/// everything is encrypted (see [`MemberArgs::AtThenFrom`]): Redis stops there with exactly
/// the error it would have given.
fn geosearch_options(args: &[Bytes], base: usize) -> Result<MemberArgs, &'static str> {
    let store = base == 3;
    let remaining = args.len().saturating_sub(base);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (None, false, false, false);
    let mut unread = None;
    let mut i = 0;
    while i < remaining {
        let arg = &args[base + i];
        let is = |w| words::is(arg, w);
        let flag = ["withdist", "withhash", "withcoord", "any", "asc", "desc"]
            .iter()
            .any(|w| is(w));
        if flag {
        } else if is("count") && i + 1 < remaining {
            i += 1;
        } else if is("storedist") && store {
        } else if is("frommember") && i + 1 < remaining && !fromloc {
            if frommember.is_some() {
                return Err(FROMMEMBER_TWICE);
            }
            frommember = Some(base + i + 1);
            i += 1;
        } else if is("fromlonlat") && i + 2 < remaining && frommember.is_none() {
            fromloc = true;
            i += 2;
        } else if is("byradius") && i + 2 < remaining && !bybox {
            byradius = true;
            i += 2;
        } else if is("bybox") && i + 3 < remaining && !byradius {
            bybox = true;
            i += 3;
        } else {
            unread = Some(base + i);
            break;
        }
        i += 1;
    }
    Ok(match (frommember, unread) {
        (None, None) => MemberArgs::None,
        (Some(at), None) => MemberArgs::At(at),
        (None, Some(from)) => MemberArgs::From(from),
        (Some(at), Some(from)) => MemberArgs::AtThenFrom(at, from),
    })
}
fn geosearch_members(args: &[Bytes]) -> Result<MemberArgs, &'static str> {
    geosearch_options(args, 2)
}
fn geosearchstore_members(args: &[Bytes]) -> Result<MemberArgs, &'static str> {
    geosearch_options(args, 3)
}

// === SSCAN / ZSCAN ===

/// The options of `SSCAN` / `ZSCAN key cursor [MATCH pattern] [COUNT count]`, read as Redis
/// 7.0's `scanGenericCommand` reads them (pairs; the last `MATCH` wins; `*` alone matches
/// everything; `TYPE` is not an option of these commands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanOptions {
    /// The argument holding the pattern to apply (not `*`), if any.
    pub pattern: Option<usize>,
    /// Arguments that are `MATCH` and its pattern (taken out of the request).
    pub matches: Vec<usize>,
    /// The first argument Redis would reject (it and everything after are encrypted, so that
    /// Redis answers exactly what it would have — an empty page for a missing key, a syntax
    /// error otherwise — and nothing unread reaches it in plaintext).
    pub unread: Option<usize>,
}

/// Reads the options of a scan over a key's members (options start at index 3).
pub fn scan_options(args: &[Bytes]) -> ScanOptions {
    let mut found = ScanOptions {
        pattern: None,
        matches: Vec::new(),
        unread: None,
    };
    let mut i = 3;
    while i < args.len() {
        let left = args.len() - i;
        if words::is(&args[i], "count") && left >= 2 {
            i += 2;
        } else if words::is(&args[i], "match") && left >= 2 {
            let pattern = &args[i + 1];
            found.pattern = (&pattern[..] != b"*").then_some(i + 1);
            found.matches.extend([i, i + 1]);
            i += 2;
        } else {
            found.unread = Some(i);
            break;
        }
    }
    found
}

pub(super) const COMMANDS: &[CommandSpec] = &[
    // Sets
    member("SADD", -3, MemberArgs::From(2), &Pass),
    member("SREM", -3, MemberArgs::From(2), &Pass).rewrite(Rewrite::Every(Reduce::Total)),
    member("SISMEMBER", 3, MemberArgs::At(2), &Pass)
        .rewrite(Rewrite::Via("SMISMEMBER", Reduce::Any)),
    member("SMISMEMBER", -3, MemberArgs::From(2), &Pass).rewrite(Rewrite::Every(Reduce::Any)),
    member("SMEMBERS", 2, MemberArgs::None, &Members),
    // A bulk without a count, an array with one: Members covers both.
    member("SPOP", -2, MemberArgs::None, &Members).pops(Pops::SetMembers),
    member("SRANDMEMBER", -2, MemberArgs::None, &Members),
    member("SINTER", -2, MemberArgs::None, &Members),
    member("SUNION", -2, MemberArgs::None, &Members),
    member("SDIFF", -2, MemberArgs::None, &Members),
    member("SMOVE", 4, MemberArgs::At(3), &Pass),
    // [cursor, [member, …]]
    member("SSCAN", -3, MemberArgs::None, &Tuple(&[Pass, Members]))
        .rewrite(Rewrite::Match { pairs: false }),
    pass("SCARD", 2, SETS),
    pass("SINTERCARD", -3, SETS),
    pass("SINTERSTORE", -3, SETS),
    pass("SUNIONSTORE", -3, SETS),
    pass("SDIFFSTORE", -3, SETS),
    // Sorted sets
    member(
        "ZADD",
        -4,
        MemberArgs::Custom(zadd_members, ZADD_DOC),
        &Pass,
    ),
    member("ZINCRBY", 4, MemberArgs::At(3), &Pass),
    member("ZSCORE", 3, MemberArgs::At(2), &Pass).rewrite(Rewrite::Via("ZMSCORE", Reduce::First)),
    member("ZMSCORE", -3, MemberArgs::From(2), &Pass).rewrite(Rewrite::Every(Reduce::First)),
    custom_reply(
        "ZRANGE",
        -4,
        MemberArgs::Custom(zrange_members, RANGE_DOC),
        zrange_reply,
    ),
    custom_reply(
        "ZREVRANGE",
        -4,
        MemberArgs::Custom(zrevrange_members, RANGE_DOC),
        zrevrange_reply,
    ),
    custom_reply(
        "ZRANGEBYSCORE",
        -4,
        MemberArgs::Custom(zrangebyscore_members, RANGE_DOC),
        zrangebyscore_reply,
    ),
    custom_reply(
        "ZREVRANGEBYSCORE",
        -4,
        MemberArgs::Custom(zrangebyscore_members, RANGE_DOC),
        zrangebyscore_reply,
    ),
    member(
        "ZRANGESTORE",
        -5,
        MemberArgs::Custom(zrangestore_members, RANGE_DOC),
        &Pass,
    ),
    member("ZRANK", 3, MemberArgs::At(2), &Pass),
    member("ZREVRANK", 3, MemberArgs::At(2), &Pass),
    member("ZREM", -3, MemberArgs::From(2), &Pass).rewrite(Rewrite::Every(Reduce::Total)),
    // Flat [member, score, …] in RESP2 (and RESP3 without a count), nested with a count.
    member("ZPOPMIN", -2, MemberArgs::None, &Scored).pops(Pops::Scored),
    member("ZPOPMAX", -2, MemberArgs::None, &Scored).pops(Pops::Scored),
    member("BZPOPMIN", -3, MemberArgs::None, &KEYED_SCORED).pops(Pops::KeyedScored),
    member("BZPOPMAX", -3, MemberArgs::None, &KEYED_SCORED).pops(Pops::KeyedScored),
    member("ZMPOP", -4, MemberArgs::None, &MULTI_SCORED).pops(Pops::MultiScored),
    member("BZMPOP", -5, MemberArgs::None, &MULTI_SCORED).pops(Pops::MultiScored),
    custom_reply("ZRANDMEMBER", -2, MemberArgs::None, zrandmember_reply),
    // [cursor, [member, score, …]] (flat in RESP3 too)
    member("ZSCAN", -3, MemberArgs::None, &Tuple(&[Pass, Scored]))
        .rewrite(Rewrite::Match { pairs: true }),
    custom_reply("ZUNION", -3, MemberArgs::None, zunion_inter_reply),
    custom_reply("ZINTER", -3, MemberArgs::None, zunion_inter_reply),
    custom_reply("ZDIFF", -3, MemberArgs::None, zdiff_reply),
    refuse("ZRANGEBYLEX", -4, SETS, LEX, LEX_ALT),
    refuse("ZREVRANGEBYLEX", -4, SETS, LEX, LEX_ALT),
    refuse("ZLEXCOUNT", 4, SETS, LEX, LEX_ALT),
    refuse("ZREMRANGEBYLEX", 4, SETS, LEX, LEX_ALT),
    pass("ZCARD", 2, SETS),
    pass("ZCOUNT", 4, SETS),
    pass("ZINTERCARD", -3, SETS),
    pass("ZREMRANGEBYRANK", 4, SETS),
    pass("ZREMRANGEBYSCORE", 4, SETS),
    pass("ZUNIONSTORE", -4, SETS),
    pass("ZINTERSTORE", -4, SETS),
    pass("ZDIFFSTORE", -4, SETS),
    // Geo: members encrypted, coordinates, distances and geohashes kept.
    member(
        "GEOADD",
        -5,
        MemberArgs::Custom(geoadd_members, GEOADD_DOC),
        &Pass,
    ),
    member("GEODIST", -4, MemberArgs::Span(2, 4), &Pass),
    member("GEOHASH", -2, MemberArgs::From(2), &Pass).rewrite(Rewrite::Every(Reduce::First)),
    member("GEOPOS", -2, MemberArgs::From(2), &Pass).rewrite(Rewrite::Every(Reduce::First)),
    member("GEORADIUS", -6, MemberArgs::None, &GEO_RESULTS),
    member("GEORADIUS_RO", -6, MemberArgs::None, &GEO_RESULTS),
    member("GEORADIUSBYMEMBER", -5, MemberArgs::At(2), &GEO_RESULTS),
    member("GEORADIUSBYMEMBER_RO", -5, MemberArgs::At(2), &GEO_RESULTS),
    member(
        "GEOSEARCH",
        -7,
        MemberArgs::Custom(geosearch_members, GEOSEARCH_DOC),
        &GEO_RESULTS,
    ),
    member(
        "GEOSEARCHSTORE",
        -8,
        MemberArgs::Custom(geosearchstore_members, GEOSEARCH_DOC),
        &Pass,
    ),
    // HyperLogLog: Redis hashes the member ciphertexts; the mapping is injective, so counts
    // are those of your members.
    member("PFADD", -2, MemberArgs::From(2), &Pass),
    pass("PFCOUNT", -2, SETS),
    pass("PFMERGE", -2, SETS),
    refuse(
        "PFDEBUG",
        3,
        SETS,
        reasons::OPERATOR,
        Some(reasons::OPERATOR_ALT),
    ),
    refuse(
        "PFSELFTEST",
        1,
        SETS,
        reasons::OPERATOR,
        Some(reasons::OPERATOR_ALT),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Vec<Bytes> {
        s.split_whitespace()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    /// Found by the `encode_request` fuzz target: `ZADD k` (fewer arguments than the arity,
    /// which the proxy checks first, but these are public functions) underflowed
    /// `args.len() - scoreidx`. Every row's member and value reading takes any argument count.
    #[test]
    fn every_row_reads_short_argument_lists_without_panicking() {
        let mut rows = Vec::new();
        for spec in crate::table::all() {
            rows.push(spec);
            rows.extend(spec.subcommands.iter());
        }
        for spec in rows {
            for n in 0..=4 {
                let mut args = vec![Bytes::from_static(spec.name.as_bytes())];
                args.extend((1..n).map(|_| Bytes::from_static(b"k")));
                let _ = spec.members.resolve(&args);
                let _ = spec.values.resolve(&args);
                let _ = crate::transform::request_error(spec, &args);
            }
        }
        assert!(matches!(zadd_members(&b("ZADD")), Err(SYNTAX)));
        assert!(matches!(zadd_members(&b("ZADD k")), Err(SYNTAX)));
        assert!(matches!(geoadd_members(&b("GEOADD")), Err(SYNTAX)));
    }

    fn positions(m: MemberArgs, argc: usize) -> Vec<usize> {
        (0..argc).filter(|&i| m.is_member(i)).collect()
    }

    fn members_of(f: fn(&[Bytes]) -> Result<MemberArgs, &'static str>, s: &str) -> Vec<usize> {
        let args = b(s);
        positions(f(&args).unwrap(), args.len())
    }

    #[test]
    fn zadd_reads_options_like_redis() {
        assert_eq!(members_of(zadd_members, "ZADD z 1 a 2 b"), vec![3, 5]);
        assert_eq!(
            members_of(zadd_members, "ZADD z xx gt ch 1 a 2 b"),
            vec![6, 8]
        );
        assert_eq!(members_of(zadd_members, "zadd z INCR 1 a"), vec![4]);
        // An option word after the first score is a member.
        assert_eq!(members_of(zadd_members, "ZADD z 1 nx"), vec![3]);
        assert_eq!(members_of(zadd_members, "ZADD z nx 1 nx"), vec![4]);
        // NUL ends an option word, as strcasecmp reads it.
        let nul = vec![
            Bytes::from_static(b"ZADD"),
            Bytes::from_static(b"z"),
            Bytes::from_static(b"NX\0junk"),
            Bytes::from_static(b"1"),
            Bytes::from_static(b"m"),
        ];
        assert_eq!(positions(zadd_members(&nul).unwrap(), 5), vec![4]);
        for bad in ["ZADD z 1 a 2", "ZADD z nx xx", "ZADD z 1"] {
            assert_eq!(zadd_members(&b(bad)).unwrap_err(), SYNTAX, "{bad}");
        }
    }

    #[test]
    fn geoadd_reads_options_like_redis() {
        assert_eq!(
            members_of(geoadd_members, "GEOADD g 13.3 38.1 a 15.0 37.5 b"),
            vec![4, 7]
        );
        assert_eq!(
            members_of(geoadd_members, "GEOADD g ch xx 13.3 38.1 a"),
            vec![6]
        );
        for bad in ["GEOADD g 1 2", "GEOADD g nx xx 1 2 a", "GEOADD g 1 2 a 3"] {
            assert_eq!(geoadd_members(&b(bad)).unwrap_err(), SYNTAX, "{bad}");
        }
    }

    #[test]
    fn zrange_family_reads_options_like_redis() {
        let shape = |s: &str| zrange_reply(&b(s));
        assert_eq!(shape("ZRANGE z 0 -1"), &Members);
        assert_eq!(shape("ZRANGE z 0 -1 withscores"), &Scored);
        assert_eq!(
            shape("ZRANGE z -inf +inf BYSCORE REV LIMIT 0 10 WITHSCORES"),
            &Scored
        );
        assert_eq!(shape("ZRANGE z 0 -1 LIMIT 0 -1 WITHSCORES"), &Scored);
        assert_eq!(zrevrange_reply(&b("ZREVRANGE z 0 -1 WITHSCORES")), &Scored);
        assert_eq!(
            zrangebyscore_reply(&b("ZRANGEBYSCORE z 0 10 LIMIT 1 2 WITHSCORES")),
            &Scored
        );
        assert_eq!(zrangebyscore_reply(&b("ZRANGEBYSCORE z 0 10")), &Members);
        let err =
            |f: fn(&[Bytes]) -> Result<MemberArgs, &'static str>, s: &str| f(&b(s)).unwrap_err();
        assert_eq!(err(zrange_members, "ZRANGE z [a [z BYLEX"), BYLEX);
        assert_eq!(err(zrange_members, "ZRANGE z [a [z bylex limit 0 1"), BYLEX);
        assert_eq!(
            err(zrangestore_members, "ZRANGESTORE d z [a [z BYLEX"),
            BYLEX
        );
        assert_eq!(err(zrange_members, "ZRANGE z 0 1 BYSCORE BYLEX"), SYNTAX);
        assert_eq!(err(zrange_members, "ZRANGE z 0 1 REV REV"), SYNTAX);
        assert_eq!(
            err(zrangestore_members, "ZRANGESTORE d z 0 1 WITHSCORES"),
            SYNTAX
        );
        assert_eq!(
            err(zrevrange_members, "ZREVRANGE z 0 1 REV"),
            SYNTAX,
            "the direction is fixed"
        );
        assert_eq!(
            err(zrangebyscore_members, "ZRANGEBYSCORE z 0 1 BYSCORE"),
            SYNTAX
        );
        assert_eq!(
            err(zrange_members, "ZRANGE z 0 1 LIMIT 0 x"),
            NOT_AN_INTEGER
        );
        assert!(err(zrange_members, "ZRANGE z 0 1 LIMIT 0 5").contains("LIMIT is only"));
        assert!(err(zrange_members, "ZRANGE z a b BYLEX WITHSCORES").contains("WITHSCORES"));
        assert_eq!(
            err(zrange_members, "ZRANGE z 0 1 LIMIT 0"),
            SYNTAX,
            "LIMIT without two numbers is not an option"
        );
        assert!(zrange_members(&b("ZRANGE z 0 1 BYSCORE LIMIT 0 5 REV")).is_ok());
    }

    #[test]
    fn zrandmember_and_set_operations_know_their_scores() {
        assert_eq!(zrandmember_reply(&b("ZRANDMEMBER z")), &Members);
        assert_eq!(zrandmember_reply(&b("ZRANDMEMBER z -5")), &Members);
        assert_eq!(zrandmember_reply(&b("ZRANDMEMBER z 5 WithScores")), &Scored);
        assert_eq!(zunion_inter_reply(&b("ZUNION 2 a b")), &Members);
        assert_eq!(
            zunion_inter_reply(&b("ZUNION 2 a b WEIGHTS 1 2 AGGREGATE MAX WITHSCORES")),
            &Scored
        );
        // `withscores` as a key, or as a weight, is not the option.
        assert_eq!(zunion_inter_reply(&b("ZINTER 1 withscores")), &Members);
        assert_eq!(
            zunion_inter_reply(&b("ZINTER 2 a b WEIGHTS withscores 1")),
            &Members
        );
        assert_eq!(zdiff_reply(&b("ZDIFF 2 a b WITHSCORES")), &Scored);
        assert_eq!(
            zdiff_reply(&b("ZDIFF 2 a b WEIGHTS 1 2 WITHSCORES")),
            &Members,
            "ZDIFF has no WEIGHTS: a syntax error"
        );
        assert_eq!(zunion_inter_reply(&b("ZUNION 3 a b")), &Members);
    }

    #[test]
    fn geosearch_finds_frommember_and_encrypts_what_redis_rejects() {
        assert_eq!(
            members_of(
                geosearch_members,
                "GEOSEARCH g FROMMEMBER m BYRADIUS 10 km WITHDIST"
            ),
            vec![3]
        );
        assert_eq!(
            members_of(
                geosearch_members,
                "GEOSEARCH g BYBOX 1 2 km ASC COUNT 3 ANY FROMMEMBER m"
            ),
            vec![11]
        );
        assert_eq!(
            members_of(
                geosearch_members,
                "GEOSEARCH g FROMLONLAT 1 2 BYRADIUS 10 km"
            ),
            Vec::<usize>::new()
        );
        assert_eq!(
            members_of(
                geosearchstore_members,
                "GEOSEARCHSTORE d g FROMMEMBER m BYRADIUS 10 km STOREDIST"
            ),
            vec![4]
        );
        // STOREDIST is not an option of GEOSEARCH: from there on, encrypted.
        assert_eq!(
            members_of(
                geosearch_members,
                "GEOSEARCH g FROMMEMBER m BYRADIUS 10 km STOREDIST x y"
            ),
            vec![3, 7, 8, 9]
        );
        // FROMMEMBER after FROMLONLAT is a syntax error in Redis: its member is encrypted.
        assert_eq!(
            members_of(
                geosearch_members,
                "GEOSEARCH g FROMLONLAT 1 2 FROMMEMBER m BYRADIUS 1 km"
            ),
            vec![5, 6, 7, 8, 9]
        );
        assert_eq!(
            geosearch_members(&b("GEOSEARCH g FROMMEMBER a FROMMEMBER b BYRADIUS 1 km"))
                .unwrap_err(),
            FROMMEMBER_TWICE
        );
    }

    #[test]
    fn scans_take_match_out_and_keep_the_rest() {
        let o = scan_options(&b("SSCAN s 0 MATCH a* COUNT 10"));
        assert_eq!(
            o,
            ScanOptions {
                pattern: Some(4),
                matches: vec![3, 4],
                unread: None
            }
        );
        // The last MATCH wins; `*` alone is no pattern.
        let o = scan_options(&b("SSCAN s 0 MATCH a* match *"));
        assert_eq!((o.pattern, o.matches), (None, vec![3, 4, 5, 6]));
        let o = scan_options(&b("SSCAN s 0 COUNT 5 MATCH"));
        assert_eq!((o.pattern, o.unread), (None, Some(5)));
        let o = scan_options(&b("SSCAN s 0 TYPE set MATCH x"));
        assert_eq!(o.unread, Some(3));
    }

    #[test]
    fn member_positions_are_within_arity_and_never_values() {
        for spec in super::super::all().flat_map(|s| std::iter::once(s).chain(s.subcommands)) {
            assert!(
                !(spec.values.any() && spec.members.any()),
                "{}: an argument is either a value or a member",
                spec.name
            );
            let first = match spec.members {
                MemberArgs::At(i)
                | MemberArgs::Span(i, _)
                | MemberArgs::From(i)
                | MemberArgs::Stride(i, _)
                | MemberArgs::AtThenFrom(i, _) => i,
                MemberArgs::None | MemberArgs::Custom(..) => continue,
            };
            assert!(
                first >= 2 && (spec.arity < 0 || (first as i32) < spec.arity),
                "{}: member position {first} (arity {})",
                spec.name,
                spec.arity
            );
        }
    }

    #[test]
    fn every_member_command_names_its_members_and_reply() {
        // Commands that take members encrypt them; commands that return members decode them.
        for name in [
            "SADD",
            "SREM",
            "SISMEMBER",
            "SMISMEMBER",
            "SMOVE",
            "ZADD",
            "ZINCRBY",
            "ZSCORE",
            "ZMSCORE",
            "ZRANK",
            "ZREVRANK",
            "ZREM",
            "GEOADD",
            "GEODIST",
            "GEOHASH",
            "GEOPOS",
            "GEORADIUSBYMEMBER",
            "GEORADIUSBYMEMBER_RO",
            "GEOSEARCH",
            "GEOSEARCHSTORE",
            "PFADD",
        ] {
            let row = COMMANDS.iter().find(|c| c.name == name).unwrap();
            assert!(row.members.any(), "{name} must encrypt its members");
        }
        for row in COMMANDS {
            if matches!(row.action, super::super::Action::Forward) && !row.members.any() {
                // Forwarded without member arguments: only these, which take none.
                assert!(
                    [
                        "SMEMBERS",
                        "SPOP",
                        "SRANDMEMBER",
                        "SINTER",
                        "SUNION",
                        "SDIFF",
                        "SSCAN",
                        "SCARD",
                        "SINTERCARD",
                        "SINTERSTORE",
                        "SUNIONSTORE",
                        "SDIFFSTORE",
                        "ZPOPMIN",
                        "ZPOPMAX",
                        "BZPOPMIN",
                        "BZPOPMAX",
                        "ZMPOP",
                        "BZMPOP",
                        "ZRANDMEMBER",
                        "ZSCAN",
                        "ZUNION",
                        "ZINTER",
                        "ZDIFF",
                        "ZCARD",
                        "ZCOUNT",
                        "ZINTERCARD",
                        "ZREMRANGEBYRANK",
                        "ZREMRANGEBYSCORE",
                        "ZUNIONSTORE",
                        "ZINTERSTORE",
                        "ZDIFFSTORE",
                        "GEORADIUS",
                        "GEORADIUS_RO",
                        "PFCOUNT",
                        "PFMERGE",
                    ]
                    .contains(&row.name),
                    "{} is forwarded without member arguments",
                    row.name
                );
            }
        }
    }
}
