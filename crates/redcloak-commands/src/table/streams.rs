//! Stream commands: field values of entries are values; stream keys, IDs, field names, group
//! and consumer names stay as they are.
use bytes::Bytes;

use super::{container, forward, pass, CommandSpec, Family::Streams, Shape, Shape::*, ValueArgs};

/// One entry: `[id, [field, value, …]]` (the field list is nil for a deleted entry).
const ENTRY: Shape = Tuple(&[Pass, Pairs(&Value)]);
/// A list of entries.
const ENTRIES: Shape = Each(&ENTRY);

/// `XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] <*|id> field value …`:
/// the values are every second argument after the ID.
fn xadd_values(args: &[Bytes]) -> Result<ValueArgs, &'static str> {
    const SYNTAX: &str = "ERR syntax error";
    let is = |i: usize, word: &str| {
        args.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    };
    let mut i = 2;
    loop {
        if is(i, "NOMKSTREAM") {
            i += 1;
        } else if is(i, "MAXLEN") || is(i, "MINID") {
            i += 1;
            if is(i, "=") || is(i, "~") {
                i += 1;
            }
            i += 1; // threshold
            if is(i, "LIMIT") {
                i += 2;
            }
        } else {
            break;
        }
    }
    // args[i] is the ID; field/value pairs follow.
    let pairs = args.len().checked_sub(i + 1).ok_or(SYNTAX)?;
    if pairs == 0 || pairs % 2 != 0 {
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
    ),
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
    forward("XADD", -5, ValueArgs::Custom(xadd_values), &Pass, Streams),
    forward("XRANGE", -4, ValueArgs::None, &ENTRIES, Streams),
    forward("XREVRANGE", -4, ValueArgs::None, &ENTRIES, Streams),
    // [[stream, entries], …] (RESP2) or {stream: entries} (RESP3); nil on timeout.
    forward("XREAD", -4, ValueArgs::None, &Pairs(&ENTRIES), Streams),
    forward("XREADGROUP", -7, ValueArgs::None, &Pairs(&ENTRIES), Streams),
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
