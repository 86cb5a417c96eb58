//! String commands.
use super::{forward, refuse, CommandSpec, Family::Strings, ReplyRule::*, ValueArgs::*};

const COMPUTES: &str = "Redis would compute on the ciphertext, not on your value";
const ENCRYPT_CLIENT_SIDE: &str =
    "read the value with GET, change it in the application, and write it back with SET";

pub(super) const COMMANDS: &[CommandSpec] = &[
    // SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]: with GET the reply is the
    // old value (a bulk), otherwise +OK or nil: the Value rule covers both.
    forward("SET", -3, At(2), Value, Strings),
    forward("SETNX", 3, At(2), Pass, Strings),
    forward("SETEX", 4, At(3), Pass, Strings),
    forward("PSETEX", 4, At(3), Pass, Strings),
    forward("GET", 2, None, Value, Strings),
    forward("GETSET", 3, At(2), Value, Strings),
    forward("GETDEL", 2, None, Value, Strings),
    forward("GETEX", -2, None, Value, Strings),
    forward("MSET", -3, EveryOther(2), Pass, Strings),
    forward("MSETNX", -3, EveryOther(2), Pass, Strings),
    forward("MGET", -2, None, Values, Strings),
    refuse("APPEND", 3, Strings, COMPUTES, Some(ENCRYPT_CLIENT_SIDE)),
    refuse("SETRANGE", 4, Strings, COMPUTES, Some(ENCRYPT_CLIENT_SIDE)),
    refuse(
        "GETRANGE",
        4,
        Strings,
        "Redis would slice the ciphertext, not your value",
        Some("read the value with GET and slice it in the application"),
    ),
    refuse(
        "SUBSTR",
        4,
        Strings,
        "Redis would slice the ciphertext, not your value",
        Some("read the value with GET and slice it in the application"),
    ),
    refuse(
        "STRLEN",
        2,
        Strings,
        "Redis would measure the ciphertext, which is longer than your value",
        Some("read the value with GET and measure it in the application"),
    ),
    refuse("INCR", 2, Strings, COMPUTES, Some(ENCRYPT_CLIENT_SIDE)),
    refuse("DECR", 2, Strings, COMPUTES, Some(ENCRYPT_CLIENT_SIDE)),
    refuse("INCRBY", 3, Strings, COMPUTES, Some(ENCRYPT_CLIENT_SIDE)),
    refuse("DECRBY", 3, Strings, COMPUTES, Some(ENCRYPT_CLIENT_SIDE)),
    refuse(
        "INCRBYFLOAT",
        3,
        Strings,
        COMPUTES,
        Some(ENCRYPT_CLIENT_SIDE),
    ),
    refuse(
        "LCS",
        -3,
        Strings,
        "Redis would compare ciphertexts, which share nothing even for equal values",
        Option::None,
    ),
];
