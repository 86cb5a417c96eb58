//! Transactions.
use super::{pass, session, CommandSpec, Family::Transactions, Session};

pub(super) const COMMANDS: &[CommandSpec] = &[
    session("MULTI", 1, Session::Multi, Transactions),
    session("EXEC", 1, Session::Exec, Transactions),
    session("DISCARD", 1, Session::Discard, Transactions),
    pass("WATCH", -2, Transactions),
    pass("UNWATCH", 1, Transactions),
];
