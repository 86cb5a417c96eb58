//! Transactions.
use super::{session, CommandSpec, Effect::*, Family::Transactions};

pub(super) const COMMANDS: &[CommandSpec] = &[
    session("MULTI", 1, Multi, Transactions),
    session("EXEC", 1, Exec, Transactions),
    session("DISCARD", 1, Discard, Transactions),
    session("WATCH", -2, Watch, Transactions),
    session("UNWATCH", 1, Unwatch, Transactions),
];
