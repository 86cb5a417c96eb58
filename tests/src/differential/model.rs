//! How many reply frames Redis sends for each command: one, except for pub/sub (one
//! confirmation per name, or per subscription for a bare UNSUBSCRIBE), `CLIENT REPLY OFF|SKIP`
//! (none), RESP3 pushes (before the reply) and QUIT (then the connection closes). The model
//! follows the session state that decides this, from Redis's rules — not redcloak's — and is
//! kept per side, from what each side actually answered.

use std::collections::BTreeSet;

use super::gen::Cmd;

/// What to read for one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Exactly this many frames (fewer if the first is an error).
    Frames(usize),
    /// RESP3: any pushes, then one reply that is not a push.
    UntilNonPush,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ReplyMode {
    #[default]
    On,
    Off,
    SkipNext,
}

/// The session state that decides the number of frames.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// The connection speaks RESP3.
    pub resp3: bool,
    /// Between MULTI and EXEC/DISCARD.
    pub in_multi: bool,
    /// The commands queued since MULTI (that Redis accepted).
    pub queued: Vec<Cmd>,
    channels: BTreeSet<Vec<u8>>,
    patterns: BTreeSet<Vec<u8>>,
    shards: BTreeSet<Vec<u8>>,
    reply: ReplyMode,
    /// QUIT was answered.
    pub quit: bool,
}

/// Whether the command name is `name`: Redis looks names up whole, ignoring case.
pub fn is(cmd: &Cmd, name: &str) -> bool {
    cmd.args
        .first()
        .is_some_and(|a| a.eq_ignore_ascii_case(name.as_bytes()))
}

fn is_sub(cmd: &Cmd, name: &str, sub: &str) -> bool {
    is(cmd, name)
        && cmd
            .args
            .get(1)
            .is_some_and(|a| a.eq_ignore_ascii_case(sub.as_bytes()))
}

/// Executed at once even inside MULTI.
fn immediate(cmd: &Cmd) -> bool {
    ["EXEC", "DISCARD", "MULTI", "WATCH", "QUIT", "RESET"]
        .iter()
        .any(|n| is(cmd, n))
}

impl Model {
    /// Whether the connection has any subscription.
    pub fn subscribed(&self) -> bool {
        !(self.channels.is_empty() && self.patterns.is_empty() && self.shards.is_empty())
    }

    fn set_of(&mut self, cmd: &Cmd) -> Option<(&mut BTreeSet<Vec<u8>>, bool)> {
        let (set, sub) = if is(cmd, "SUBSCRIBE") {
            (&mut self.channels, true)
        } else if is(cmd, "UNSUBSCRIBE") {
            (&mut self.channels, false)
        } else if is(cmd, "PSUBSCRIBE") {
            (&mut self.patterns, true)
        } else if is(cmd, "PUNSUBSCRIBE") {
            (&mut self.patterns, false)
        } else if is(cmd, "SSUBSCRIBE") {
            (&mut self.shards, true)
        } else if is(cmd, "SUNSUBSCRIBE") {
            (&mut self.shards, false)
        } else {
            return None;
        };
        Some((set, sub))
    }

    fn client_reply(cmd: &Cmd) -> Option<ReplyMode> {
        if !is_sub(cmd, "CLIENT", "REPLY") || cmd.args.len() != 3 {
            return None;
        }
        if cmd.word_is(2, "on") {
            Some(ReplyMode::On)
        } else if cmd.word_is(2, "off") {
            Some(ReplyMode::Off)
        } else if cmd.word_is(2, "skip") {
            Some(ReplyMode::SkipNext)
        } else {
            None
        }
    }

    /// What Redis sends for `cmd` in this state.
    pub fn expect(&self, cmd: &Cmd) -> Expect {
        let mut reply_mode = Model::client_reply(cmd);
        if !self.resp3 && self.subscribed() {
            // Not allowed in this context: an error, and no change.
            reply_mode = None;
        }
        // Pub/sub confirmations are sent whatever CLIENT REPLY says.
        // (RESET turns replies back on before it answers.)
        let pubsub = self.clone().set_of(cmd).is_some();
        if !self.in_multi && !pubsub && !is(cmd, "RESET") {
            match (self.reply, reply_mode) {
                (ReplyMode::Off, Some(ReplyMode::On)) => return Expect::Frames(1),
                (ReplyMode::Off | ReplyMode::SkipNext, _) => return Expect::Frames(0),
                (_, Some(ReplyMode::Off | ReplyMode::SkipNext)) => return Expect::Frames(0),
                _ => {}
            }
        }
        if self.in_multi && !immediate(cmd) {
            return Expect::Frames(1);
        }
        // RESP2 with subscriptions: anything but these is an error (one frame).
        let allowed = [
            "SUBSCRIBE",
            "PSUBSCRIBE",
            "SSUBSCRIBE",
            "UNSUBSCRIBE",
            "PUNSUBSCRIBE",
            "SUNSUBSCRIBE",
            "PING",
            "QUIT",
            "RESET",
        ];
        if !self.resp3 && self.subscribed() && !allowed.iter().any(|n| is(cmd, n)) {
            return Expect::Frames(1);
        }
        let mut probe = self.clone();
        if let Some((set, subscribe)) = probe.set_of(cmd) {
            let names = cmd.args.len().saturating_sub(1);
            let n = if subscribe || names > 0 {
                names
            } else {
                set.len()
            };
            return Expect::Frames(n.max(1));
        }
        if self.resp3 {
            Expect::UntilNonPush
        } else {
            Expect::Frames(1)
        }
    }

    /// Follows `cmd`, answered successfully (`ok`) or with an error. Returns the queued
    /// commands when an EXEC ran them.
    pub fn after(&mut self, cmd: &Cmd, ok: bool) -> Option<Vec<Cmd>> {
        if !self.in_multi || immediate(cmd) {
            if self.reply == ReplyMode::SkipNext {
                self.reply = ReplyMode::On;
            }
            if let Some(mode) =
                Model::client_reply(cmd).filter(|_| self.resp3 || !self.subscribed())
            {
                if ok {
                    self.reply = mode;
                }
                return None;
            }
        }
        if self.in_multi && !immediate(cmd) {
            if ok {
                self.queued.push(cmd.clone());
            }
            return None;
        }
        if is(cmd, "QUIT") {
            self.quit = true;
            return None;
        }
        if is(cmd, "EXEC") || is(cmd, "DISCARD") {
            let was = std::mem::take(&mut self.in_multi);
            let queued = std::mem::take(&mut self.queued);
            return (was && is(cmd, "EXEC")).then_some(queued);
        }
        if !ok {
            return None;
        }
        if is(cmd, "MULTI") {
            self.in_multi = true;
            self.queued.clear();
        } else if is(cmd, "RESET") {
            *self = Model::default();
        } else if is(cmd, "HELLO") {
            match cmd.args.get(1).map(|v| &v[..]) {
                Some(b"2") => self.resp3 = false,
                Some(b"3") => self.resp3 = true,
                _ => {}
            }
        } else if let Some((set, subscribe)) = self.set_of(cmd) {
            let names = &cmd.args[1..];
            if subscribe {
                set.extend(names.iter().cloned());
            } else if names.is_empty() {
                set.clear();
            } else {
                for n in names {
                    set.remove(n);
                }
            }
        }
        None
    }
}
