//! Sets, sorted sets, geo and HyperLogLog. Their members are data, but Redis must compare
//! them; they will get deterministic encryption (DESIGN.md §3). Until then every command that
//! takes or returns members is refused, so members are never stored or read in plaintext.
//! Counting, score-range and server-side set-algebra commands, which neither take nor return
//! members, pass.
use super::{pass, refuse, CommandSpec, Family::Members};

const MEMBERS: &str = "set, sorted-set, geo and HyperLogLog members are data, and redcloak does not encrypt members yet (deterministic encryption is planned), so it refuses them rather than store them in plaintext";
const ALT: Option<&str> =
    Some("keep such data in a hash or list for now (values are encrypted there)");
const LEX: &str = "lexicographic ranges compare members, which encryption cannot preserve";

const fn member(name: &'static str, arity: i32) -> CommandSpec {
    refuse(name, arity, Members, MEMBERS, ALT)
}

pub(super) const COMMANDS: &[CommandSpec] = &[
    // Sets
    member("SADD", -3),
    member("SREM", -3),
    member("SISMEMBER", 3),
    member("SMISMEMBER", -3),
    member("SMEMBERS", 2),
    member("SPOP", -2),
    member("SRANDMEMBER", -2),
    member("SINTER", -2),
    member("SUNION", -2),
    member("SDIFF", -2),
    member("SMOVE", 4),
    member("SSCAN", -3),
    pass("SCARD", 2, Members),
    pass("SINTERCARD", -3, Members),
    pass("SINTERSTORE", -3, Members),
    pass("SUNIONSTORE", -3, Members),
    pass("SDIFFSTORE", -3, Members),
    // Sorted sets
    member("ZADD", -4),
    member("ZINCRBY", 4),
    member("ZSCORE", 3),
    member("ZMSCORE", -3),
    member("ZRANGE", -4),
    member("ZREVRANGE", -4),
    member("ZRANGEBYSCORE", -4),
    member("ZREVRANGEBYSCORE", -4),
    member("ZRANGESTORE", -5),
    member("ZRANK", 3),
    member("ZREVRANK", 3),
    member("ZREM", -3),
    member("ZPOPMIN", -2),
    member("ZPOPMAX", -2),
    member("BZPOPMIN", -3),
    member("BZPOPMAX", -3),
    member("ZMPOP", -4),
    member("BZMPOP", -5),
    member("ZRANDMEMBER", -2),
    member("ZSCAN", -3),
    member("ZUNION", -3),
    member("ZINTER", -3),
    member("ZDIFF", -3),
    refuse("ZRANGEBYLEX", -4, Members, LEX, None),
    refuse("ZREVRANGEBYLEX", -4, Members, LEX, None),
    refuse("ZLEXCOUNT", 4, Members, LEX, None),
    refuse("ZREMRANGEBYLEX", 4, Members, LEX, None),
    pass("ZCARD", 2, Members),
    pass("ZCOUNT", 4, Members),
    pass("ZINTERCARD", -3, Members),
    pass("ZREMRANGEBYRANK", 4, Members),
    pass("ZREMRANGEBYSCORE", 4, Members),
    pass("ZUNIONSTORE", -4, Members),
    pass("ZINTERSTORE", -4, Members),
    pass("ZDIFFSTORE", -4, Members),
    // Geo (members are data, coordinates are not, but every command names or returns members)
    member("GEOADD", -5),
    member("GEODIST", -4),
    member("GEOHASH", -2),
    member("GEOPOS", -2),
    member("GEORADIUS", -6),
    member("GEORADIUS_RO", -6),
    member("GEORADIUSBYMEMBER", -5),
    member("GEORADIUSBYMEMBER_RO", -5),
    member("GEOSEARCH", -7),
    member("GEOSEARCHSTORE", -8),
    // HyperLogLog (PFADD would hash plaintext members in Redis)
    member("PFADD", -2),
    member("PFCOUNT", -2),
    member("PFMERGE", -2),
    refuse(
        "PFDEBUG",
        3,
        Members,
        super::reasons::OPERATOR,
        Some(super::reasons::OPERATOR_ALT),
    ),
    refuse(
        "PFSELFTEST",
        1,
        Members,
        super::reasons::OPERATOR,
        Some(super::reasons::OPERATOR_ALT),
    ),
];
