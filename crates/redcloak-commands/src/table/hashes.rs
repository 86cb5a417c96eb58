//! Hash commands: field names stay as they are (Redis needs them), field values are encrypted.
use bytes::Bytes;

use super::{
    emulated, forward, pass, CommandSpec, Family::Hashes, ReplyRule, Shape, Shape::*, ValueArgs::*,
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
    forward("HSET", -4, EveryOther(3), &Pass, Hashes),
    forward("HMSET", -4, EveryOther(3), &Pass, Hashes),
    forward("HSETNX", 4, At(3), &Pass, Hashes),
    forward("HGET", 3, None, &Value, Hashes),
    forward("HMGET", -3, None, &Values, Hashes),
    forward("HGETALL", 2, None, &Pairs(&Value), Hashes),
    forward("HVALS", 2, None, &Values, Hashes),
    CommandSpec {
        reply: ReplyRule::Custom(hrandfield),
        ..pass("HRANDFIELD", -2, Hashes)
    },
    // HSCAN key cursor …: [cursor, [field, value, …]]
    forward("HSCAN", -3, None, &Tuple(&[Pass, Pairs(&Value)]), Hashes),
    pass("HDEL", -3, Hashes),
    pass("HEXISTS", 3, Hashes),
    pass("HKEYS", 2, Hashes),
    pass("HLEN", 2, Hashes),
    emulated("HSTRLEN", 3, Hashes),
    emulated("HINCRBY", 4, Hashes),
    emulated("HINCRBYFLOAT", 4, Hashes),
];
