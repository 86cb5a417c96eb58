//! What a session knows about its client's connection, as of the requests read so far (the
//! planner's view; the reply side keeps its own view in `replies.rs`).

use bytes::Bytes;
use redcloak_commands::resp::Frame;
use redcloak_commands::table::Shape;
use redcloak_commands::transform::Queued;

/// A command of a transaction, as queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TxItem {
    /// A command for Redis (arguments as the client sent them).
    Command(Vec<Bytes>),
    /// The result of a command redcloak answered itself (ECHO…).
    Local(Frame),
}

/// The client's transaction, mirrored from what Redis will do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tx {
    /// Between MULTI and EXEC/DISCARD.
    pub in_multi: bool,
    /// A command was refused inside MULTI (or the connection holding the transaction was
    /// lost): Redis must not run it (EXECABORT).
    pub poisoned: bool,
    /// The queued commands' reply rules, for decoding EXEC's reply.
    pub queued: Vec<Queued>,
    /// The queued commands themselves: redcloak queues a transaction and sends it to Redis
    /// only at EXEC (MULTI, the commands, EXEC in one write), or runs it itself.
    pub commands: Vec<TxItem>,
    /// A queued command needs redcloak to run the whole transaction (an emulated command).
    pub by_redcloak: bool,
    /// A WATCH was held by a connection that was lost: the next EXEC must fail as if a
    /// watched key had changed (redcloak cannot know that none did).
    pub watch_lost: bool,
}

/// The request-side state of one client connection: what survives from one upstream
/// connection to the next (restored with SELECT, HELLO 3, MULTI on a new one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConnState {
    /// The database the client selected (assumed: SELECT may still fail in Redis).
    pub db: u32,
    /// The transaction.
    pub tx: Tx,
    /// Keys are watched.
    pub watching: bool,
    /// RESP3, as the reply side last confirmed it.
    pub resp3: bool,
    /// Subscribed to something, as the reply side last confirmed it.
    pub subscribed: bool,
}

impl ConnState {
    /// A new connection's state.
    pub(crate) fn new(db: u32) -> ConnState {
        ConnState {
            db,
            tx: Tx::default(),
            watching: false,
            resp3: false,
            subscribed: false,
        }
    }
}

/// A change of the request-side state, applied once the planned step is carried out (a step
/// that is not carried out — a write that could not be journaled — changes nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Nothing changes.
    None,
    /// `SELECT db` was sent.
    Select(u32),
    /// `WATCH` was sent.
    Watch,
    /// `UNWATCH` was sent.
    Unwatch,
    /// `MULTI` was sent outside a transaction.
    Multi,
    /// A command was queued in the transaction; its reply shape decodes EXEC's element;
    /// `by_redcloak`: it can only run in a transaction redcloak carries out.
    Queue {
        args: Vec<Bytes>,
        shape: &'static Shape,
        by_redcloak: bool,
    },
    /// A command answered by redcloak was "queued": its result goes into EXEC's reply.
    QueueLocal(Frame),
    /// A command was refused inside MULTI: the transaction must abort.
    Poison,
    /// EXEC or DISCARD ended the transaction (and the WATCH).
    EndTx,
    /// RESET: back to a new connection's state (in database `default_db`).
    Reset { default_db: u32 },
}

impl ConnState {
    /// Applies a transition.
    pub(crate) fn apply(&mut self, t: Transition) {
        match t {
            Transition::None => {}
            Transition::Select(db) => self.db = db,
            Transition::Watch => self.watching = true,
            Transition::Unwatch => {
                self.watching = false;
                self.tx.watch_lost = false;
            }
            Transition::Multi => {
                self.tx = Tx {
                    in_multi: true,
                    watch_lost: self.tx.watch_lost,
                    ..Tx::default()
                };
            }
            Transition::Queue {
                args,
                shape,
                by_redcloak,
            } => {
                self.tx.queued.push(Queued::Shape(shape));
                self.tx.commands.push(TxItem::Command(args));
                self.tx.by_redcloak |= by_redcloak;
            }
            Transition::QueueLocal(frame) => {
                self.tx.queued.push(Queued::Local(frame.clone()));
                self.tx.commands.push(TxItem::Local(frame));
            }
            Transition::Poison => self.tx.poisoned |= self.tx.in_multi,
            Transition::EndTx => {
                self.tx = Tx::default();
                self.watching = false;
            }
            Transition::Reset { default_db } => *self = ConnState::new(default_db),
        }
    }

    /// The connection to Redis was lost: a WATCH it held cannot be carried over, so EXEC
    /// must fail the way Redis would fail it. (A transaction is queued in redcloak until
    /// EXEC, so it survives.)
    pub(crate) fn lose_connection(&mut self) {
        if self.watching {
            self.watching = false;
            self.tx.watch_lost = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions() {
        let mut st = ConnState::new(0);
        st.apply(Transition::Watch);
        st.apply(Transition::Multi);
        st.apply(Transition::Queue {
            args: vec![Bytes::from_static(b"GET"), Bytes::from_static(b"k")],
            shape: &Shape::Value,
            by_redcloak: false,
        });
        assert!(st.tx.in_multi && st.watching && st.tx.queued.len() == 1);
        assert_eq!(st.tx.commands.len(), 1);
        st.apply(Transition::Poison);
        assert!(st.tx.poisoned);
        st.apply(Transition::EndTx);
        assert_eq!(st, ConnState::new(0));
        st.apply(Transition::Poison);
        assert!(!st.tx.poisoned, "outside MULTI nothing is poisoned");
        st.apply(Transition::Select(3));
        st.apply(Transition::Watch);
        st.lose_connection();
        assert!(st.tx.watch_lost && !st.watching);
        st.apply(Transition::Multi);
        assert!(st.tx.watch_lost, "a lost WATCH survives MULTI");
        st.apply(Transition::Reset { default_db: 1 });
        assert_eq!(st, ConnState::new(1));
    }
}
