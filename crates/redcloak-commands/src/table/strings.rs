//! String commands.
use super::{forward, refuse, CacheOp, CommandSpec, Family::Strings, Pops, Shape::*, ValueArgs::*};

const COMPUTES: &str = "Redis would compute on the ciphertext, not on your value";
const READ_MODIFY_WRITE: &str = "read the value with GET, change it in the application, and write it back with SET (in MULTI/EXEC with WATCH for atomicity)";
const SLICES: &str = "Redis would slice the ciphertext, not your value";
const SLICE_IN_APP: &str = "read the value with GET and slice it in the application";

pub(super) const COMMANDS: &[CommandSpec] = &[
    // SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]: with GET the reply is the
    // old value (a bulk), otherwise +OK or nil: the Value shape covers both.
    forward("SET", -3, At(2), &Value, Strings).cache(CacheOp::Set),
    forward("SETNX", 3, At(2), &Pass, Strings).cache(CacheOp::SetNx),
    forward("SETEX", 4, At(3), &Pass, Strings).cache(CacheOp::SetEx(1000)),
    forward("PSETEX", 4, At(3), &Pass, Strings).cache(CacheOp::SetEx(1)),
    forward("GET", 2, None, &Value, Strings).cache(CacheOp::Get),
    forward("GETSET", 3, At(2), &Value, Strings).cache(CacheOp::GetSet),
    forward("GETDEL", 2, None, &Value, Strings)
        .cache(CacheOp::GetDel)
        .pops(Pops::String),
    forward("GETEX", -2, None, &Value, Strings),
    forward("MSET", -3, EveryOther(2), &Pass, Strings).cache(CacheOp::MSet),
    forward("MSETNX", -3, EveryOther(2), &Pass, Strings).cache(CacheOp::MSetNx),
    forward("MGET", -2, None, &PerKey, Strings).cache(CacheOp::MGet),
    refuse("APPEND", 3, Strings, COMPUTES, Some(READ_MODIFY_WRITE)),
    refuse("SETRANGE", 4, Strings, COMPUTES, Some(READ_MODIFY_WRITE)),
    refuse("GETRANGE", 4, Strings, SLICES, Some(SLICE_IN_APP)),
    refuse("SUBSTR", 4, Strings, SLICES, Some(SLICE_IN_APP)),
    refuse(
        "STRLEN",
        2,
        Strings,
        "Redis would measure the ciphertext, which is longer than your value",
        Some("read the value with GET and measure it in the application"),
    ),
    refuse("INCR", 2, Strings, COMPUTES, Some(READ_MODIFY_WRITE)),
    refuse("DECR", 2, Strings, COMPUTES, Some(READ_MODIFY_WRITE)),
    refuse("INCRBY", 3, Strings, COMPUTES, Some(READ_MODIFY_WRITE)),
    refuse("DECRBY", 3, Strings, COMPUTES, Some(READ_MODIFY_WRITE)),
    refuse("INCRBYFLOAT", 3, Strings, COMPUTES, Some(READ_MODIFY_WRITE)),
    refuse(
        "LCS",
        -3,
        Strings,
        "Redis would compare ciphertexts, which share nothing even for equal values",
        Option::None,
    ),
    // Bitmaps operate on the bits of the stored bytes: the ciphertext's.
    refuse(
        "GETBIT",
        3,
        super::Family::Bitmaps,
        "Redis would read the bits of the ciphertext",
        Some(READ_MODIFY_WRITE),
    ),
    refuse(
        "SETBIT",
        4,
        super::Family::Bitmaps,
        "Redis would set bits of the ciphertext",
        Some(READ_MODIFY_WRITE),
    ),
    refuse(
        "BITCOUNT",
        -2,
        super::Family::Bitmaps,
        "Redis would count the bits of the ciphertext",
        Option::None,
    ),
    refuse(
        "BITPOS",
        -3,
        super::Family::Bitmaps,
        "Redis would search the bits of the ciphertext",
        Option::None,
    ),
    refuse(
        "BITOP",
        -4,
        super::Family::Bitmaps,
        "Redis would combine ciphertexts bit by bit",
        Option::None,
    ),
    refuse(
        "BITFIELD",
        -2,
        super::Family::Bitmaps,
        "Redis would read and write bits of the ciphertext",
        Option::None,
    ),
    refuse(
        "BITFIELD_RO",
        -2,
        super::Family::Bitmaps,
        "Redis would read bits of the ciphertext",
        Option::None,
    ),
];
