//! Hash commands: field names stay as they are (Redis needs them), field values are encrypted.
use bytes::Bytes;

use super::{
    forward, pass, refuse, CommandSpec, Family::Hashes, ReplyRule, Shape, Shape::*, ValueArgs::*,
};

const COMPUTES: &str = "Redis would compute on the ciphertext, not on your value";
const READ_MODIFY_WRITE: &str = "read the field with HGET, change it in the application, and write it back with HSET (in MULTI/EXEC with WATCH for atomicity)";

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
    refuse(
        "HSTRLEN",
        3,
        Hashes,
        "Redis would measure the ciphertext, which is longer than your value",
        Some("read the field with HGET and measure it in the application"),
    ),
    refuse("HINCRBY", 4, Hashes, COMPUTES, Some(READ_MODIFY_WRITE)),
    refuse("HINCRBYFLOAT", 4, Hashes, COMPUTES, Some(READ_MODIFY_WRITE)),
];
