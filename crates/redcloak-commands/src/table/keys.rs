//! Key space and expiry commands: they name keys, never values. Fernet ciphertext moves with
//! its key (RENAME, COPY, MOVE, SWAPDB) and stays readable; an AES-GCM envelope is bound to
//! its key and database, so these are refused while the ring writes `aes-gcm` ([`Bind::Moves`]).
use super::reasons::{OPERATOR, OPERATOR_ALT};
use super::{
    container, emulated, forward, pass, refuse, Bind, CacheOp, CommandSpec, Family::Keys, Shape,
    ValueArgs,
};

const OBJECT: &[CommandSpec] = &[
    pass("FREQ", 3, Keys),
    pass("IDLETIME", 3, Keys),
    pass("REFCOUNT", 3, Keys),
    pass("HELP", 2, Keys),
    refuse(
        "ENCODING",
        3,
        Keys,
        "it would describe how Redis stores the ciphertext, not your value",
        None,
    ),
];

pub(super) const COMMANDS: &[CommandSpec] = &[
    pass("DEL", -2, Keys).cache(CacheOp::Del),
    pass("UNLINK", -2, Keys).cache(CacheOp::Del),
    pass("EXISTS", -2, Keys).cache(CacheOp::Exists),
    pass("TOUCH", -2, Keys),
    pass("TYPE", 2, Keys).cache(CacheOp::Type),
    pass("EXPIRE", -3, Keys).cache(CacheOp::Expire(1000, false)),
    pass("PEXPIRE", -3, Keys).cache(CacheOp::Expire(1, false)),
    pass("EXPIREAT", -3, Keys).cache(CacheOp::Expire(1000, true)),
    pass("PEXPIREAT", -3, Keys).cache(CacheOp::Expire(1, true)),
    pass("EXPIRETIME", 2, Keys),
    pass("PEXPIRETIME", 2, Keys),
    pass("TTL", 2, Keys).cache(CacheOp::Ttl(1000)),
    pass("PTTL", 2, Keys).cache(CacheOp::Ttl(1)),
    pass("PERSIST", 2, Keys).cache(CacheOp::Persist),
    // redcloak's own scratch keys (transient copies of a transaction it carries out) are
    // left out of the listings.
    forward("KEYS", 2, ValueArgs::None, &Shape::Keys, Keys),
    forward(
        "SCAN",
        -2,
        ValueArgs::None,
        &Shape::Tuple(&[Shape::Pass, Shape::Keys]),
        Keys,
    ),
    pass("RANDOMKEY", 1, Keys),
    pass("RENAME", 3, Keys).bind(Bind::Moves),
    pass("RENAMENX", 3, Keys).bind(Bind::Moves),
    // They write keys in other databases (COPY … DB n, MOVE): the cache forgets everything.
    pass("COPY", -3, Keys)
        .cache(CacheOp::ForgetAll)
        .bind(Bind::Moves),
    pass("MOVE", 3, Keys)
        .cache(CacheOp::ForgetAll)
        .bind(Bind::Moves),
    pass("SWAPDB", 3, Keys).bind(Bind::Moves),
    pass("DBSIZE", 1, Keys),
    pass("FLUSHDB", -1, Keys),
    pass("FLUSHALL", -1, Keys),
    pass("WAIT", 3, Keys),
    // DUMP's payload holds the ciphertext; redcloak seals it so that RESTORE can tell a payload
    // it produced from one made elsewhere (which could hold plaintext).
    forward("DUMP", 2, ValueArgs::None, &Shape::Seal, Keys),
    forward("RESTORE", -4, ValueArgs::Unseal(3), &Shape::Pass, Keys),
    refuse("RESTORE-ASKING", -4, Keys, super::reasons::CLUSTER, None),
    refuse("MIGRATE", -6, Keys, OPERATOR, Some(OPERATOR_ALT)),
    emulated("SORT", -2, Keys),
    emulated("SORT_RO", -2, Keys),
    container("OBJECT", -2, Keys, OBJECT),
];
