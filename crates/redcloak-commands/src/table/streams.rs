//! Stream commands: field values of entries are values (bound, in `aes-gcm`, to the stream
//! and the field); stream keys, IDs, field names, group and consumer names stay as they are.
use bytes::Bytes;

use super::{
    container, forward, pass, Bind, CommandSpec, Family::Streams, Shape, Shape::*, ValueArgs,
};
use crate::words;

/// One entry: `[id, [field, value, …]]` (the field list is nil for a deleted entry).
const ENTRY: Shape = Tuple(&[Pass, Pairs(&Value)]);
/// A list of entries.
const ENTRIES: Shape = Each(&ENTRY);

/// `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold] [LIMIT count] <*|id> field value …`:
/// the values are every second argument after the ID.
///
/// # Security
/// The options are read exactly as Redis 7.0's `streamParseAddOrTrimArgsOrReply` reads them
/// (the same loop, the same word matching, the same ID parser), so redcloak and Redis always
/// agree on where the ID is and therefore on which arguments are values. Whatever Redis would
/// reject before it knows the ID is answered here, with Redis's error, and never forwarded.
fn xadd_values(args: &[Bytes]) -> Result<ValueArgs, &'static str> {
    const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
    const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
    const BOTH: &str =
        "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
    let argc = args.len();
    let mut trimming = false;
    // The last MAXLEN/MINID was approximate (`~`); LIMIT was given, and its value.
    let mut approx = false;
    let mut limit: Option<i64> = None;
    let mut i = 2;
    while i < argc {
        let more = argc - 1 - i;
        let opt = &args[i];
        if words::is_exact(opt, "*") {
            break;
        } else if (words::is(opt, "maxlen") || words::is(opt, "minid")) && more > 0 {
            if trimming {
                return Err(BOTH);
            }
            let next = &args[i + 1];
            approx = more >= 2 && words::is_exact(next, "~");
            if more >= 2 && (words::is_exact(next, "~") || words::is_exact(next, "=")) {
                i += 1;
            }
            let threshold = &args[i + 1];
            if words::is(opt, "maxlen") {
                let n = words::int(threshold).ok_or(NOT_AN_INTEGER)?;
                if n < 0 {
                    return Err("ERR The MAXLEN argument must be >= 0.");
                }
            } else if words::stream_id(threshold, false).is_none() {
                return Err(INVALID_ID);
            }
            i += 1;
            trimming = true;
        } else if words::is(opt, "limit") && more > 0 {
            let n = words::int(&args[i + 1]).ok_or(NOT_AN_INTEGER)?;
            if n < 0 {
                return Err("ERR The LIMIT argument must be >= 0.");
            }
            limit = Some(n);
            i += 1;
        } else if words::is(opt, "nomkstream") {
        } else {
            // Not an option: it must be the ID.
            words::stream_id(opt, true).ok_or(INVALID_ID)?;
            break;
        }
        i += 1;
    }
    // After the options, before the arity (streamParseAddOrTrimArgsOrReply, then xaddCommand).
    if limit.is_some_and(|n| n != 0) && !trimming {
        return Err(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        );
    }
    if limit.is_some() && !approx {
        return Err("ERR syntax error, LIMIT cannot be used without the special ~ option");
    }
    // args[i] is the ID; field/value pairs follow.
    let pairs = argc.saturating_sub(i + 1);
    if i >= argc || pairs < 2 || pairs % 2 != 0 {
        return Err("ERR wrong number of arguments for 'xadd' command");
    }
    Ok(ValueArgs::EveryOther(i + 2))
}

const XINFO: &[CommandSpec] = &[
    // XINFO STREAM key [FULL [COUNT n]]: first-entry / last-entry, or all entries with FULL.
    forward(
        "STREAM",
        -3,
        ValueArgs::None,
        &Fields(&[
            ("first-entry", ENTRY),
            ("last-entry", ENTRY),
            ("entries", ENTRIES),
        ]),
        Streams,
    )
    .bind(Bind::Key(2)),
    pass("GROUPS", 3, Streams),
    pass("CONSUMERS", 4, Streams),
    pass("HELP", 2, Streams),
];

const XGROUP: &[CommandSpec] = &[
    pass("CREATE", -5, Streams),
    pass("CREATECONSUMER", 5, Streams),
    pass("DELCONSUMER", 5, Streams),
    pass("DESTROY", 4, Streams),
    pass("SETID", -5, Streams),
    pass("HELP", 2, Streams),
];

pub(super) const COMMANDS: &[CommandSpec] = &[
    // Each value bound to the stream and its field.
    forward("XADD", -5, ValueArgs::Custom(xadd_values), &Pass, Streams).bind(Bind::Fields),
    forward("XRANGE", -4, ValueArgs::None, &ENTRIES, Streams),
    forward("XREVRANGE", -4, ValueArgs::None, &ENTRIES, Streams),
    // [[stream, entries], …] (RESP2) or {stream: entries} (RESP3); nil on timeout.
    forward("XREAD", -4, ValueArgs::None, &KeyedPairs(&ENTRIES), Streams),
    forward(
        "XREADGROUP",
        -7,
        ValueArgs::None,
        &KeyedPairs(&ENTRIES),
        Streams,
    ),
    // Entries, or IDs only with JUSTID (which pass: an ID is not an array).
    forward("XCLAIM", -6, ValueArgs::None, &ENTRIES, Streams),
    // [next-cursor, entries, deleted-ids]
    forward(
        "XAUTOCLAIM",
        -6,
        ValueArgs::None,
        &Tuple(&[Pass, ENTRIES, Pass]),
        Streams,
    ),
    pass("XLEN", 2, Streams),
    pass("XDEL", -3, Streams),
    pass("XTRIM", -4, Streams),
    pass("XACK", -4, Streams),
    pass("XPENDING", -3, Streams),
    pass("XSETID", -3, Streams),
    container("XINFO", -2, Streams, XINFO),
    container("XGROUP", -2, Streams, XGROUP),
];
