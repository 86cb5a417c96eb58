//! Running one sequence on both sides, in lock step, and comparing the reply streams command
//! by command.
//!
//! Each step runs on redcloak first. A command redcloak refused is then replaced, on the plain
//! Redis, by [`SUBSTITUTE`] (an unknown command: no effect, and inside MULTI the same abort as
//! redcloak's refusal), so that both servers keep the same state; for a command Redis does not
//! know either, the plain Redis gets the original, and the two replies must be equal (a refusal
//! is allowed only where Redis would have run the command).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use redcloak_commands::table::{self, Action, Resolved, ScriptOp};

use crate::Direct;

use super::docs::Docs;
use super::gen::{Cmd, Step, DUMP_PLACEHOLDER, SUBSTITUTE};
use super::model::{is, Expect, Model};
use super::normalise::{is_refusal, reconcile};
use super::wire::{inline, multibulk, Conn, Event, Reply};

/// How long to wait for one reply (redcloak answers in milliseconds; a missing reply is a
/// desynchronisation, reported as `<no reply (timeout)>`).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// One command's exchange on one side.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// What was sent (after placeholders and substitution).
    pub cmd: Cmd,
    /// Pub/sub messages delivered before the reply (published by the other connection).
    pub messages: Vec<Event>,
    /// The reply frames (several for pub/sub, none under CLIENT REPLY OFF).
    pub replies: Vec<Event>,
    /// redcloak refused it.
    pub refused: bool,
    /// For an EXEC that ran: the queued commands.
    pub queued: Option<Vec<Cmd>>,
    /// Where it was sent.
    pub kind: Kind,
    /// Which side answered.
    pub which: Which,
}

/// Where an exchange happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A command on the client connection.
    Main,
    /// A command on the second connection.
    Other,
    /// Raw bytes on the client connection (the command holds them as its only argument),
    /// with the generator's label.
    Raw(&'static str),
}

/// Which side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// redcloak in front of the TLS Redis.
    Redcloak,
    /// The plain Redis.
    Redis,
}

/// How a side finds out whether a client is blocked.
pub enum Probe<'a> {
    /// Through a direct TLS connection (redcloak's Redis).
    Direct(&'a mut Direct),
    /// Through a plain connection.
    Plain(&'a mut Conn),
}

impl Probe<'_> {
    fn blocked_clients(&mut self) -> usize {
        let text = match self {
            Probe::Direct(d) => match d.cmd(&[b"INFO", b"clients"]) {
                Ok(redcloak_commands::resp::Frame::Bulk(b)) => {
                    String::from_utf8_lossy(&b).into_owned()
                }
                _ => return 0,
            },
            Probe::Plain(c) => {
                let mut out = Vec::new();
                multibulk(&[b"INFO".to_vec(), b"clients".to_vec()], &mut out);
                c.write(&out);
                match c.next(REPLY_TIMEOUT) {
                    Event::Frame(Reply::Bulk(b)) => String::from_utf8_lossy(&b).into_owned(),
                    _ => return 0,
                }
            }
        };
        text.lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

/// One side of the comparison, for one sequence.
pub struct Side<'a> {
    which: Which,
    main: Conn,
    other: Conn,
    model: Model,
    /// Messages the other connection published to this connection, not read yet: one count
    /// per PUBLISH.
    pending: Vec<usize>,
    last_dump: Option<Vec<u8>>,
    /// A reply timed out: the connection is out of step; read nothing more.
    dead: bool,
    probe: Probe<'a>,
    sentinels: u64,
}

impl<'a> Side<'a> {
    /// Opens the two connections of a side.
    pub fn open(which: Which, addr: SocketAddr, probe: Probe<'a>) -> std::io::Result<Side<'a>> {
        Ok(Side {
            which,
            main: Conn::connect(addr)?,
            other: Conn::connect(addr)?,
            model: Model::default(),
            pending: Vec::new(),
            last_dump: None,
            dead: false,
            probe,
            sentinels: 0,
        })
    }

    fn next(&mut self) -> Event {
        if self.dead {
            return Event::Timeout;
        }
        let e = self.main.next(REPLY_TIMEOUT);
        if e == Event::Timeout {
            self.dead = true;
        }
        e
    }

    fn bytes_of(&self, cmd: &Cmd, out: &mut Vec<u8>) -> Cmd {
        let args: Vec<Vec<u8>> = cmd
            .args
            .iter()
            .map(|a| {
                if a == DUMP_PLACEHOLDER {
                    self.last_dump.clone().unwrap_or_else(|| b"nodump".to_vec())
                } else {
                    a.clone()
                }
            })
            .collect();
        let sent = Cmd {
            args,
            inline: cmd.inline,
        };
        if !(sent.inline && inline(&sent.args, out).is_some()) {
            multibulk(&sent.args, out);
        }
        sent
    }

    /// Runs one step. `plan[i]` is what to send for command `i` (`None`: the generated one).
    pub fn step(&mut self, step: &Step, plan: &[Option<Cmd>]) -> Vec<Exchange> {
        let pick = |i: usize, cmd: &Cmd| plan.get(i).cloned().flatten().unwrap_or(cmd.clone());
        match step {
            Step::Send { cmds, chunks } => {
                let mut bytes = Vec::new();
                let sent: Vec<Cmd> = cmds
                    .iter()
                    .enumerate()
                    .map(|(i, c)| self.bytes_of(&pick(i, c), &mut bytes))
                    .collect();
                if chunks.is_empty() {
                    self.main.write(&bytes);
                } else {
                    self.main.write_chunked(&bytes, chunks);
                }
                sent.into_iter().map(|c| self.exchange(c)).collect()
            }
            Step::Other(cmd) => vec![self.other_exchange(pick(0, cmd))],
            Step::Raw { bytes, label } => {
                self.sentinels += 1;
                let token = format!("sentinel-{}", self.sentinels);
                let mut out = bytes.clone();
                multibulk(&[b"PING".to_vec(), token.clone().into_bytes()], &mut out);
                self.main.write(&out);
                let mut ex = Exchange {
                    cmd: Cmd {
                        args: vec![bytes.clone()],
                        inline: true,
                    },
                    messages: self.read_pending(),
                    replies: Vec::new(),
                    refused: false,
                    queued: None,
                    kind: Kind::Raw(label),
                    which: self.which,
                };
                loop {
                    let e = self.next();
                    let done = match &e {
                        Event::Frame(r) => is_sentinel(r, &token),
                        _ => true,
                    };
                    ex.replies.push(e);
                    if done || ex.replies.len() > 64 {
                        break;
                    }
                }
                self.settle(&ex);
                vec![ex]
            }
            Step::Unblock { blocked, unblocker } => {
                let mut bytes = Vec::new();
                let blocked = self.bytes_of(&pick(0, blocked), &mut bytes);
                // Messages already published come first; read them now, so that any byte that
                // arrives next is the blocked command's reply.
                let messages = self.read_pending();
                self.main.write(&bytes);
                let deadline = Instant::now() + Duration::from_secs(1);
                while Instant::now() < deadline
                    && !self.main.has_data()
                    && self.probe.blocked_clients() == 0
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let first = self.other_exchange(pick(1, unblocker));
                let mut second = self.exchange(blocked);
                second.messages.splice(0..0, messages);
                vec![second, first]
            }
        }
    }

    /// The messages published since the last read. Within one PUBLISH, the order in which
    /// a connection's matching patterns get it is the order of Redis's pattern dictionary
    /// (per-process random seed): each PUBLISH's messages are sorted (normalisation).
    fn read_pending(&mut self) -> Vec<Event> {
        let batches = std::mem::take(&mut self.pending);
        let mut all = Vec::new();
        for n in batches {
            let mut batch: Vec<Event> = (0..n).map(|_| self.next()).collect();
            batch.sort_by_key(sort_key);
            all.extend(batch);
        }
        all
    }

    fn other_exchange(&mut self, cmd: Cmd) -> Exchange {
        let mut bytes = Vec::new();
        multibulk(&cmd.args, &mut bytes);
        self.other.write(&bytes);
        let reply = self.other.next(REPLY_TIMEOUT);
        if let Event::Frame(Reply::Integer(n)) = &reply {
            if is(&cmd, "PUBLISH") || is(&cmd, "SPUBLISH") {
                let n = std::str::from_utf8(n)
                    .ok()
                    .and_then(|n| n.parse::<usize>().ok())
                    .unwrap_or(0);
                if n > 0 {
                    self.pending.push(n);
                }
            }
        }
        Exchange {
            cmd,
            messages: Vec::new(),
            replies: vec![reply],
            refused: false,
            queued: None,
            kind: Kind::Other,
            which: self.which,
        }
    }

    fn exchange(&mut self, cmd: Cmd) -> Exchange {
        let messages = self.read_pending();
        let mut expect = self.model.expect(&cmd);
        if expect == Expect::Frames(0) && self.which == Which::Redcloak && refuses(&cmd) {
            // redcloak answers a refusal where Redis would stay silent (CLIENT REPLY OFF).
            expect = Expect::Frames(1);
        }
        let mut replies = Vec::new();
        match expect {
            Expect::Frames(n) => {
                for i in 0..n {
                    let e = self.next();
                    let frame = matches!(e, Event::Frame(_));
                    let error = matches!(&e, Event::Frame(r) if r.error_text().is_some());
                    replies.push(e);
                    if !frame || (i == 0 && error) {
                        break;
                    }
                }
            }
            Expect::UntilNonPush => loop {
                let e = self.next();
                let push = matches!(&e, Event::Frame(r) if r.is_push());
                replies.push(e);
                if !push || replies.len() > 256 {
                    break;
                }
            },
        }
        let first = replies.iter().find_map(|e| match e {
            Event::Frame(r) if !r.is_push() || expect != Expect::UntilNonPush => Some(r),
            _ => None,
        });
        let refused = self.which == Which::Redcloak && first.is_some_and(is_refusal);
        let ok = match (expect, first) {
            (Expect::Frames(0), _) => true,
            (_, Some(r)) => r.error_text().is_none() && !refused,
            (_, None) => false,
        };
        if is(&cmd, "DUMP") {
            if let Some(Reply::Bulk(b)) = first {
                self.last_dump = Some(b.clone());
            }
        }
        let queued = self.model.after(&cmd, ok);
        let ex = Exchange {
            cmd,
            messages,
            replies,
            refused,
            queued,
            kind: Kind::Main,
            which: self.which,
        };
        self.settle(&ex);
        ex
    }

    /// A closed connection ends the session on that side.
    fn settle(&mut self, ex: &Exchange) {
        if ex
            .replies
            .iter()
            .any(|e| matches!(e, Event::Closed | Event::Garbage(_)))
        {
            self.model.quit = true;
        }
    }

    /// Whether the session has ended (QUIT, closed, out of step).
    pub fn ended(&self) -> bool {
        self.dead || self.model.quit
    }

    /// The final sentinel: a PING that flushes out any extra frame a side sent.
    pub fn final_step(&self) -> Step {
        Step::Send {
            cmds: vec![Cmd::new(&["PING", "final-sentinel"])],
            chunks: Vec::new(),
        }
    }
}

fn sort_key(e: &Event) -> Option<Reply> {
    match e {
        Event::Frame(r) => Some(r.clone()),
        _ => None,
    }
}

/// Whether a frame is a pub/sub message (RESP2 array or RESP3 push).
fn is_message(e: &Event) -> bool {
    let Event::Frame(Reply::Array(v) | Reply::Push(v)) = e else {
        return false;
    };
    matches!(
        v.first().and_then(|k| k.text()),
        Some(b"message" | b"pmessage" | b"smessage")
    )
}

/// Sorts each run of consecutive messages (RESP3: a connection's own PUBLISH delivers its
/// messages, in pattern-dictionary order, before the reply).
fn sort_message_runs(events: &mut [Event]) {
    let mut i = 0;
    while i < events.len() {
        let start = i;
        while i < events.len() && is_message(&events[i]) {
            i += 1;
        }
        events[start..i].sort_by_key(sort_key);
        i = i.max(start + 1);
    }
}

fn is_sentinel(r: &Reply, token: &str) -> bool {
    match r {
        Reply::Bulk(b) => b == token.as_bytes(),
        Reply::Array(v) | Reply::Push(v) => {
            v.last().and_then(|x| x.text()) == Some(token.as_bytes())
        }
        _ => false,
    }
}

/// The request's row in redcloak's table.
fn resolved(cmd: &Cmd) -> Resolved {
    let args: Vec<bytes::Bytes> = cmd
        .args
        .iter()
        .map(|a| bytes::Bytes::copy_from_slice(a))
        .collect();
    table::resolve(&args)
}

/// Whether redcloak's table refuses this request (used only to know that a frame will come
/// where Redis would send none).
fn refuses(cmd: &Cmd) -> bool {
    match resolved(cmd) {
        Resolved::Known { spec, .. } => {
            !spec.arity_ok(cmd.args.len()) || matches!(spec.action, Action::Refuse(_))
        }
        _ => true,
    }
}

/// Whether both sides got the same frames in a step, in any order (after the per-command
/// normalisations that do not depend on order).
pub fn same_frames(a: &[Exchange], b: &[Exchange]) -> bool {
    // Refusals on redcloak's side and the substitutes' errors on Redis's are left out.
    let frames = |x: &[Exchange]| {
        let mut v: Vec<Option<Reply>> = x
            .iter()
            .filter(|e| e.kind != Kind::Other)
            .flat_map(|e| e.messages.iter().chain(&e.replies))
            .filter(|e| match e {
                Event::Frame(r) => {
                    !is_refusal(r)
                        && !r.error_text().is_some_and(|t| {
                            t.starts_with(b"ERR unknown command 'redcloak-refused'")
                        })
                }
                _ => true,
            })
            .map(sort_key)
            .collect();
        v.sort();
        v
    };
    frames(a) == frames(b)
}

/// What the plain Redis gets in place of what redcloak refused.
pub fn plan_for_redis(docs: &Docs, redcloak: &[Exchange], step: &Step) -> Vec<Option<Cmd>> {
    let originals: Vec<&Cmd> = match step {
        Step::Send { cmds, .. } => cmds.iter().collect(),
        Step::Other(c) => vec![c],
        Step::Raw { .. } => vec![],
        Step::Unblock { blocked, unblocker } => vec![blocked, unblocker],
    };
    // (Unblock exchanges come back as [blocked, unblocker] too.)
    originals
        .iter()
        .zip(redcloak)
        .map(|(orig, ex)| {
            // AUTH is answered by redcloak by design (its credentials are its own): Redis gets
            // `ECHO` instead — a command that succeeds, except where Redis refuses every
            // command (RESP2 pub/sub mode) — and redcloak's answer is checked in `compare`.
            let local = ex.which == Which::Redcloak && ex.kind == Kind::Main && is(orig, "AUTH");
            if local && !ex.refused && docs.knows(&orig.args) {
                return Some(Cmd {
                    args: vec![b"ECHO".to_vec(), b"auth-substitute".to_vec()],
                    inline: false,
                });
            }
            (ex.refused && docs.knows(&orig.args)).then(|| Cmd {
                args: vec![SUBSTITUTE.to_vec()],
                inline: false,
            })
        })
        .collect()
}

/// The class of replies delivered out of order.
pub const REORDERED: &str = "reply order: a reply redcloak made itself overtook frames from Redis";

/// A difference between the two reply streams.
#[derive(Debug, Clone)]
pub struct Divergence {
    /// What kind, for grouping (`reply differs: XADD`).
    pub class: String,
    /// Index of the step and of the command within it.
    pub at: (usize, usize),
    /// redcloak's exchange.
    pub redcloak: Exchange,
    /// Redis's exchange.
    pub redis: Exchange,
    /// Redis's and redcloak's first differing events, normalised.
    pub first: (Event, Event),
}

/// Compares one command's exchanges. Counts refusals into `refusals`.
pub fn compare(
    docs: &Docs,
    at: (usize, usize),
    rc: &Exchange,
    redis: &Exchange,
    refusals: &mut BTreeMap<String, u64>,
) -> Option<Divergence> {
    let display = rc.cmd.display(docs);
    let diverge = |class: String, first: (Event, Event)| {
        Some(Divergence {
            class,
            at,
            redcloak: rc.clone(),
            redis: redis.clone(),
            first,
        })
    };
    // Messages: exact.
    for i in 0..rc.messages.len().max(redis.messages.len()) {
        let a = rc.messages.get(i).cloned().unwrap_or(Event::Timeout);
        let b = redis.messages.get(i).cloned().unwrap_or(Event::Timeout);
        if a != b {
            let local_first = rc.messages.iter().any(|m| !is_message(m));
            let class = if local_first {
                // A reply redcloak made itself went out before messages Redis had already
                // delivered (they were still on their way from Redis).
                REORDERED.to_owned()
            } else {
                format!("pub/sub message differs: {display}")
            };
            return diverge(class, (a, b));
        }
    }
    if rc.which == Which::Redcloak && is(&rc.cmd, "AUTH") && !rc.refused {
        // Where Redis refused the substitute as it refuses everything in RESP2 pub/sub mode,
        // AUTH must be refused in the same words.
        let refused_there = matches!(redis.replies.first(),
            Some(Event::Frame(Reply::Error(e))) if e.starts_with(b"ERR Can't execute 'echo'"));
        let ok = match rc.replies.first() {
            Some(Event::Frame(Reply::Error(e))) if refused_there => {
                e.starts_with(b"ERR Can't execute 'auth': only (P|S)SUBSCRIBE")
            }
            _ if refused_there => false,
            Some(Event::Frame(Reply::Simple(s))) => s == b"OK",
            Some(Event::Frame(Reply::Error(e))) => e.starts_with(b"ERR wrong number of arguments"),
            _ => false,
        };
        if !ok {
            let a = rc.replies.first().cloned().unwrap_or(Event::Timeout);
            return diverge(format!("reply differs: {display}"), (a, Event::Timeout));
        }
        return None;
    }
    if rc.refused {
        *refusals.entry(display.clone()).or_default() += 1;
        // A refusal names its command: one naming another belongs to another command (a reply
        // redcloak made itself went out ahead of frames still coming from Redis).
        let name: String = rc
            .cmd
            .name()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        let text = rc.replies.first().and_then(|e| match e {
            Event::Frame(r) => r
                .error_text()
                .map(|t| String::from_utf8_lossy(t).to_uppercase()),
            _ => None,
        });
        // (A refusal of an option names the option word: `BYLEX is not supported`.)
        let names_own_word = |t: &str| {
            t.contains(&name)
                || rc.cmd.args.iter().skip(1).any(|a| {
                    let word = String::from_utf8_lossy(a.split(|&b| b == 0).next().unwrap_or(&[]))
                        .to_uppercase();
                    word.len() >= 2
                        && word.chars().all(|c| c.is_ascii_alphanumeric())
                        && t.contains(&word)
                })
        };
        // A script's error names the command inside it that failed (`INCR: the value … cannot
        // be decrypted`), not EVAL.
        let script = matches!(
            resolved(&rc.cmd),
            Resolved::Known { spec, .. } if matches!(
                spec.action,
                Action::Script(ScriptOp::Eval { .. } | ScriptOp::Fcall { .. })
            )
        );
        if !name.is_empty() && !script && text.is_some_and(|t| !names_own_word(&t)) {
            let a = rc.replies.first().cloned().unwrap_or(Event::Timeout);
            let b = redis.replies.first().cloned().unwrap_or(Event::Timeout);
            return diverge(REORDERED.to_owned(), (a, b));
        }
        if redis.cmd.args.first().map(|a| &a[..]) == Some(SUBSTITUTE) {
            return None;
        }
        // Redis does not know this command either. Clients recognise Redis's "unknown command"
        // and "unknown subcommand" errors (redis-py does, to skip CLIENT SETINFO on older
        // servers): redcloak's error must start the same way. (What follows may differ: Redis
        // echoes the arguments, redcloak does not repeat values.)
        let a = rc.replies.first().cloned().unwrap_or(Event::Timeout);
        let b = redis.replies.first().cloned().unwrap_or(Event::Timeout);
        let starts = |e: &Event, p: &[u8]| matches!(e, Event::Frame(r) if r.error_text().is_some_and(|t| t.starts_with(p)));
        for (prefix, class) in [
            (&b"ERR unknown command"[..], "unknown-command wording"),
            (b"ERR unknown subcommand", "unknown-subcommand wording"),
        ] {
            if starts(&b, prefix) && !starts(&a, prefix) {
                return diverge(class.to_owned(), (a, b));
            }
        }
        return None;
    }
    // An arity error names its command: one naming another command belongs to another
    // command's place in the stream.
    if let (Kind::Main, Some(Event::Frame(Reply::Error(e)))) = (rc.kind, rc.replies.first()) {
        let text = String::from_utf8_lossy(e);
        if let Some(named) = text
            .strip_prefix("ERR wrong number of arguments for '")
            .and_then(|t| t.split('\'').next())
        {
            let own = display.to_ascii_lowercase().replace(' ', "|");
            let own_name = rc.cmd.name().to_ascii_lowercase();
            if named != own && named != own_name {
                let b = redis.replies.first().cloned().unwrap_or(Event::Timeout);
                return diverge(
                    REORDERED.to_owned(),
                    (Event::Frame(Reply::Error(e.clone())), b),
                );
            }
        }
    }
    let (mut ra, mut rb) = (rc.replies.clone(), redis.replies.clone());
    sort_message_runs(&mut ra);
    sort_message_runs(&mut rb);
    let bare = ["UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"]
        .iter()
        .any(|n| is(&rc.cmd, n));
    if bare && rc.cmd.args.len() == 1 {
        super::normalise::bare_unsubscribe(&mut ra);
        super::normalise::bare_unsubscribe(&mut rb);
    }
    let n = ra.len().max(rb.len());
    for i in 0..n {
        let mut a = ra.get(i).cloned().unwrap_or(Event::Timeout);
        let mut b = rb.get(i).cloned().unwrap_or(Event::Timeout);
        if let (Event::Frame(x), Event::Frame(y)) = (&mut a, &mut b) {
            if !x.is_push() {
                reconcile(docs, &rc.cmd, rc.queued.as_deref(), x, y);
            }
        }
        if a != b {
            let class = classify(&display, rc, &a, &b);
            return diverge(class, (a, b));
        }
    }
    None
}

fn classify(display: &str, rc: &Exchange, a: &Event, b: &Event) -> String {
    let unknown = |e: &Event, what: &[u8]| matches!(e, Event::Frame(r) if r.error_text().is_some_and(|t| t.starts_with(what)));
    if unknown(b, b"ERR unknown command") && !unknown(a, b"ERR unknown command") {
        return "unknown-command wording".to_owned();
    }
    if let Kind::Raw(label) = rc.kind {
        return format!("raw framing: {label}");
    }
    let cant_execute = |e: &Event| {
        matches!(e, Event::Frame(r) if r.error_text().is_some_and(|t| {
            t.starts_with(b"ERR Can't execute")
                || t.starts_with(b"EXECABORT Transaction discarded because of: Can't execute")
        }))
    };
    let mut texts = Vec::new();
    if let Event::Frame(r) = a {
        r.for_each_bytes(&mut |t| texts.push(t.to_vec()));
        if let Some(t) = r.error_text() {
            texts.push(t.to_vec());
        }
    }
    if texts.iter().any(|t| {
        t.windows(45)
            .any(|w| w == b"cannot run inside a transaction or script tha")
    }) {
        return "command redcloak cannot run inside a transaction it runs itself".to_owned();
    }
    if cant_execute(b) && !cant_execute(a) {
        // One class whatever the command: redcloak answered (checked arguments, queued,
        // answered locally) a command that Redis refuses in RESP2 pub/sub mode.
        return "pub/sub mode (RESP2): redcloak answers a command Redis refuses there".to_owned();
    }
    match (a, b) {
        (Event::Timeout, _) => format!("missing reply (desync): {display}"),
        (Event::Closed, _) => format!("connection closed by redcloak: {display}"),
        (Event::Frame(r), _)
            if r.error_text().is_some_and(|t| {
                t.starts_with(b"ERR redcloak")
                    && t.windows(21).any(|w| w == b"cannot be decrypted: ")
            }) =>
        {
            // With every value written through redcloak, a value that does not decrypt is a
            // reply decoded by another command's rule (or a plaintext Redis reply taken for
            // a value).
            "redcloak error: a reply did not decrypt (decoded by the wrong command's rule?)"
                .to_owned()
        }
        (Event::Frame(r), _)
            if r.error_text()
                .is_some_and(|t| t.starts_with(b"ERR redcloak")) =>
        {
            format!("redcloak error: {display}")
        }
        (_, Event::Timeout) => format!("extra reply (desync): {display}"),
        _ => format!("reply differs: {display}"),
    }
}
