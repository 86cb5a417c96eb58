//! Hash commands: field names stay as they are (Redis needs them), field values are encrypted.
use bytes::Bytes;

use super::{
    emulated, forward, pass, Bind, CommandSpec, Family::Hashes, ReplyRule, Rewrite, Shape,
    Shape::*, ValueArgs::*,
};

/// `HRANDFIELD key [count [WITHVALUES]]`: values only with WITHVALUES.
fn hrandfield(args: &[Bytes]) -> &'static Shape {
    if args
        .get(3)
        .is_some_and(|a| crate::words::is(a, "WITHVALUES"))
    {
        &Pairs(&Value)
    } else {
        &Pass
    }
}

pub(super) const COMMANDS: &[CommandSpec] = &[
    forward("HSET", -4, EveryOther(3), &Pass, Hashes).bind(Bind::Fields),
    forward("HMSET", -4, EveryOther(3), &Pass, Hashes).bind(Bind::Fields),
    forward("HSETNX", 4, At(3), &Pass, Hashes).bind(Bind::Fields),
    forward("HGET", 3, None, &Value, Hashes).bind(Bind::Fields),
    forward("HMGET", -3, None, &Values, Hashes).bind(Bind::Fields),
    forward("HGETALL", 2, None, &Pairs(&Value), Hashes).bind(Bind::Fields),
    // Sent as HGETALL: each value is opened at its field, which HVALS would not name.
    forward("HVALS", 2, None, &PairValues, Hashes)
        .bind(Bind::Fields)
        .rewrite(Rewrite::As("HGETALL")),
    CommandSpec {
        reply: ReplyRule::Custom(hrandfield),
        ..pass("HRANDFIELD", -2, Hashes).bind(Bind::Fields)
    },
    // HSCAN key cursor …: [cursor, [field, value, …]]
    forward("HSCAN", -3, None, &Tuple(&[Pass, Pairs(&Value)]), Hashes).bind(Bind::Fields),
    pass("HDEL", -3, Hashes),
    pass("HEXISTS", 3, Hashes),
    pass("HKEYS", 2, Hashes),
    pass("HLEN", 2, Hashes),
    emulated("HSTRLEN", 3, Hashes),
    emulated("HINCRBY", 4, Hashes),
    emulated("HINCRBYFLOAT", 4, Hashes),
];
