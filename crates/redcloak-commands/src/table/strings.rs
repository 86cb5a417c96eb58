//! String commands. Those that compute on the value (INCR, APPEND, GETRANGE, BIT*…) are
//! emulated: redcloak reads, decrypts, computes exactly what Redis would, and writes back
//! encrypted under WATCH/MULTI/EXEC (see `emulate/`).
use super::{
    emulated, forward, Bind, CacheOp, CommandSpec, Family::Strings, Pops, Shape::*, ValueArgs::*,
};

pub(super) const COMMANDS: &[CommandSpec] = &[
    // SET key value [NX|XX] [GET] [EX s|PX ms|EXAT t|PXAT t|KEEPTTL]: with GET the reply is the
    // old value (a bulk), otherwise +OK or nil: the Value shape covers both.
    forward("SET", -3, At(2), &Value, Strings)
        .cache(CacheOp::Set)
        .pops(Pops::OverwriteWith("GET")),
    forward("SETNX", 3, At(2), &Pass, Strings).cache(CacheOp::SetNx),
    forward("SETEX", 4, At(3), &Pass, Strings).cache(CacheOp::SetEx(1000)),
    forward("PSETEX", 4, At(3), &Pass, Strings).cache(CacheOp::SetEx(1)),
    forward("GET", 2, None, &Value, Strings).cache(CacheOp::Get),
    forward("GETSET", 3, At(2), &Value, Strings)
        .cache(CacheOp::GetSet)
        .pops(Pops::Overwrite),
    forward("GETDEL", 2, None, &Value, Strings)
        .cache(CacheOp::GetDel)
        .pops(Pops::String),
    forward("GETEX", -2, None, &Value, Strings),
    forward("MSET", -3, EveryOther(2), &Pass, Strings)
        .cache(CacheOp::MSet)
        .bind(Bind::Keys),
    forward("MSETNX", -3, EveryOther(2), &Pass, Strings)
        .cache(CacheOp::MSetNx)
        .bind(Bind::Keys),
    forward("MGET", -2, None, &PerKey, Strings)
        .cache(CacheOp::MGet)
        .bind(Bind::Keys),
    emulated("APPEND", 3, Strings),
    emulated("SETRANGE", 4, Strings),
    emulated("GETRANGE", 4, Strings),
    emulated("SUBSTR", 4, Strings),
    emulated("STRLEN", 2, Strings),
    emulated("INCR", 2, Strings),
    emulated("DECR", 2, Strings),
    emulated("INCRBY", 3, Strings),
    emulated("DECRBY", 3, Strings),
    emulated("INCRBYFLOAT", 3, Strings),
    emulated("LCS", -3, Strings),
    // Bitmaps operate on the bits of the stored bytes: the ciphertext's.
    emulated("GETBIT", 3, super::Family::Bitmaps),
    emulated("SETBIT", 4, super::Family::Bitmaps),
    emulated("BITCOUNT", -2, super::Family::Bitmaps),
    emulated("BITPOS", -3, super::Family::Bitmaps),
    emulated("BITOP", -4, super::Family::Bitmaps),
    emulated("BITFIELD", -2, super::Family::Bitmaps),
    emulated("BITFIELD_RO", -2, super::Family::Bitmaps),
];
