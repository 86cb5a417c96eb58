//! The generator: command sequences built from redcloak's command table (which commands) and
//! Redis's own `COMMAND DOCS` (which arguments, which option words), with session scenarios
//! around them (pub/sub, transactions, protocols, CLIENT REPLY, RESET, blocking, malformed
//! framing).
//!
//! Values (Redis's `value`, `element`, `member`, `pivot`, a `PUBLISH` message) carry a plaintext
//! marker ([`MARK`]); keys, field names, channels and IDs never do, so a marker found anywhere
//! in Redis is a value that reached it unencrypted.

use redcloak_commands::table::{self, Action, CommandSpec};

use super::docs::{Arg, Docs, Kind};
use super::rng::Rng;

/// The plaintext marker every generated value starts with.
pub const MARK: &str = "plainTXTmark";

/// An argument replaced, per side, by the payload of the last `DUMP` that side answered.
pub const DUMP_PLACEHOLDER: &[u8] = b"\x00redcloak-diff:last-dump\x00";

/// The command sent to the plain Redis in place of one redcloak refused: a command Redis does
/// not know, which it rejects without any effect (and which, inside MULTI, aborts the
/// transaction exactly as redcloak's refusal does).
pub const SUBSTITUTE: &[u8] = b"redcloak-refused";

/// One command, as the client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// Arguments, name first.
    pub args: Vec<Vec<u8>>,
    /// Sent as an inline command line rather than a multibulk.
    pub inline: bool,
}

impl Cmd {
    /// A multibulk command from string arguments.
    pub fn new(args: &[&str]) -> Cmd {
        Cmd {
            args: args.iter().map(|a| a.as_bytes().to_vec()).collect(),
            inline: false,
        }
    }

    /// The upper-case name (lossy), for reports and rules.
    pub fn name(&self) -> String {
        self.args
            .first()
            .map(|n| String::from_utf8_lossy(n).to_ascii_uppercase())
            .unwrap_or_default()
    }

    /// `NAME` or `CONTAINER SUB` as Redis would resolve it (for containers it knows).
    pub fn display(&self, docs: &Docs) -> String {
        let name = self.name();
        if let Some(sub) = self.args.get(1) {
            let sub = String::from_utf8_lossy(sub).to_ascii_uppercase();
            let key = format!("{}|{}", name.to_ascii_lowercase(), sub.to_ascii_lowercase());
            if docs.get(&key).is_some() {
                return format!("{name} {sub}");
            }
        }
        name
    }

    /// Whether argument `i` is, byte for byte up to a NUL and ignoring case, `word` (Redis
    /// compares option words with `strcasecmp`, which stops at a NUL).
    pub fn word_is(&self, i: usize, word: &str) -> bool {
        self.args.get(i).is_some_and(|a| strcasecmp_eq(a, word))
    }
}

/// Redis's `!strcasecmp(arg, word)`: equal ignoring ASCII case, up to the first NUL.
pub fn strcasecmp_eq(arg: &[u8], word: &str) -> bool {
    let arg = arg.split(|&b| b == 0).next().unwrap_or_default();
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// One step of a sequence.
#[derive(Debug, Clone)]
pub enum Step {
    /// Commands written to the client connection in one go (a pipeline), possibly split into
    /// several writes of the given sizes.
    Send {
        /// The commands.
        cmds: Vec<Cmd>,
        /// Write sizes (empty: one write).
        chunks: Vec<usize>,
    },
    /// A command on the second connection (a publisher, or another client writing a key).
    Other(Cmd),
    /// Raw bytes on the client connection (odd or malformed framing), followed by a sentinel.
    Raw {
        /// The bytes.
        bytes: Vec<u8>,
        /// What kind of framing they exercise (names the divergence class).
        label: &'static str,
    },
    /// `blocked` on the client connection; once Redis has it blocked, `unblocker` on the
    /// second connection.
    Unblock {
        /// The blocking command.
        blocked: Cmd,
        /// The command that serves it.
        unblocker: Cmd,
    },
}

/// A command the generator may choose.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// `GET`, `CLIENT SETNAME`.
    pub display: String,
    /// The name in Redis's docs (`get`, `client|setname`).
    pub doc_name: String,
    /// The words that name it (`["CLIENT", "SETNAME"]`).
    pub words: Vec<String>,
    /// Its row.
    pub spec: &'static CommandSpec,
}

/// Commands never generated: if redcloak ever forwarded them by mistake they would stop,
/// reconfigure or hang the Redis under test (their refusal is covered by unit tests). Session
/// commands come from the scenarios instead of the generic generator.
const NEVER: &[&str] = &[
    "SHUTDOWN",
    "DEBUG",
    "MONITOR",
    "SYNC",
    "PSYNC",
    "REPLCONF",
    "REPLICAOF",
    "SLAVEOF",
    "FAILOVER",
    "CLIENT KILL",
    "CLIENT PAUSE",
    "CLIENT UNPAUSE",
    "CONFIG SET",
    "CONFIG REWRITE",
    "CONFIG RESETSTAT",
    "MODULE LOAD",
    "MODULE LOADEX",
    "MODULE UNLOAD",
    "ACL SETUSER",
    "ACL DELUSER",
    "ACL LOAD",
    "ACL SAVE",
    "SAVE",
    "BGSAVE",
    "BGREWRITEAOF",
    "SCRIPT KILL",
    "FUNCTION KILL",
    "CLIENT REPLY",
    // scenarios
    "MULTI",
    "EXEC",
    "DISCARD",
    "HELLO",
    "RESET",
    "QUIT",
    "AUTH",
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
];

/// What the generator chooses from: every row of redcloak's table (and every subcommand),
/// weighted towards the ones that carry values.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The commands.
    pub candidates: Vec<Candidate>,
    weights: Vec<f64>,
}

impl Catalog {
    /// From redcloak's table.
    pub fn new() -> Catalog {
        let mut candidates = Vec::new();
        let mut weights = Vec::new();
        let mut add = |words: Vec<String>, spec: &'static CommandSpec| {
            let display = words.join(" ");
            if NEVER.contains(&display.as_str()) {
                return;
            }
            let weight = match spec.action {
                Action::Forward if spec.values.any() || !spec.reply.is_pass() => 6.0,
                Action::Forward => 2.0,
                // Computed by redcloak on the decrypted values: as much as the value commands.
                Action::Emulate => 6.0,
                // Arguments from the grammar make scripts that do not compile; the scenario
                // `scripts` runs real ones.
                Action::Script(_) | Action::Local(_) => 1.0,
                Action::Refuse(_) => 0.15,
            };
            candidates.push(Candidate {
                doc_name: words.join("|").to_ascii_lowercase(),
                display,
                words,
                spec,
            });
            weights.push(weight);
        };
        for spec in table::all() {
            if spec.subcommands.is_empty() {
                add(vec![spec.name.to_owned()], spec);
            } else {
                for sub in spec.subcommands {
                    add(vec![spec.name.to_owned(), sub.name.to_owned()], sub);
                }
                // The container alone (COMMAND; the others: an arity error).
                add(vec![spec.name.to_owned()], spec);
            }
        }
        Catalog {
            candidates,
            weights,
        }
    }
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::new()
    }
}

/// Generates sequences.
pub struct Generator<'a> {
    rng: Rng,
    docs: &'a Docs,
    catalog: &'a Catalog,
    /// Values generated so far (each marker is unique within a run of the generator).
    counter: u64,
    /// The millisecond part of the next stream ID.
    stream_ms: u64,
    /// Stream IDs generated so far.
    ids: Vec<String>,
    /// Rough session state, to make sensible choices (the runner keeps the exact one).
    in_multi: bool,
    subscribed: bool,
    /// Wall-clock seconds at generation, for absolute expiry times.
    now: u64,
}

const KEYS: &[&str] = &["k:a", "k:b", "k:c", "k:d", "k:e", "{k}:f"];
const FIELDS: &[&str] = &["f1", "f2", "f3", "field:4"];
const CHANNELS: &[&str] = &["ch1", "ch2", "ch3"];
const PATTERNS: &[&str] = &["ch*", "ch[12]", "*", "nomatch*"];
const SHARD_CHANNELS: &[&str] = &["sch1", "sch2"];
const GROUPS: &[&str] = &["g1", "g2"];
const CONSUMERS: &[&str] = &["c1", "c2"];

/// Redis commands that block: their timeouts are kept short (never 0 = forever).
const BLOCKING: &[&str] = &[
    "BLPOP",
    "BRPOP",
    "BLMOVE",
    "BRPOPLPUSH",
    "BLMPOP",
    "BZPOPMIN",
    "BZPOPMAX",
    "BZMPOP",
    "XREAD",
    "XREADGROUP",
    "WAIT",
];

impl<'a> Generator<'a> {
    /// A generator for one sequence.
    pub fn new(seed: u64, docs: &'a Docs, catalog: &'a Catalog) -> Generator<'a> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut rng = Rng::new(seed);
        let counter = rng.next_u64() % 1_000_000;
        Generator {
            rng,
            docs,
            catalog,
            counter,
            stream_ms: 1,
            ids: Vec::new(),
            in_multi: false,
            subscribed: false,
            now,
        }
    }

    /// A whole sequence of about `len` commands.
    pub fn sequence(&mut self, len: usize) -> Vec<Step> {
        let mut steps = Vec::new();
        if self.rng.chance(0.3) {
            steps.push(send(Cmd::new(&["HELLO", "3"])));
        }
        let mut count = 0;
        while count < len {
            let before = steps.len();
            self.scenario(&mut steps);
            count += steps[before..].iter().map(step_len).sum::<usize>();
        }
        if self.in_multi && self.rng.chance(0.8) {
            steps.push(send(Cmd::new(&[if self.rng.chance(0.5) {
                "EXEC"
            } else {
                "DISCARD"
            }])));
        }
        if self.rng.chance(0.05) {
            // QUIT, sometimes with commands pipelined after it (never answered).
            let mut cmds = vec![Cmd::new(&["QUIT"])];
            if self.rng.chance(0.5) {
                cmds.push(self.command());
            }
            steps.push(Step::Send {
                cmds,
                chunks: Vec::new(),
            });
        }
        steps
    }

    fn scenario(&mut self, steps: &mut Vec<Step>) {
        let weights = [
            60.0, // data commands
            8.0,  // pub/sub
            8.0,  // transactions
            2.0,  // SELECT
            3.0,  // HELLO
            1.5,  // RESET
            1.5,  // CLIENT REPLY
            3.0,  // raw framing
            3.0,  // blocking
            2.0,  // DUMP / RESTORE
            1.0,  // AUTH
            2.0,  // unknown commands
            4.0,  // scripts and functions
        ];
        match self.rng.weighted(&weights) {
            0 => {
                let n = if self.rng.chance(0.7) {
                    1
                } else {
                    self.rng.range(2, 8) as usize
                };
                let cmds = (0..n).map(|_| self.command()).collect();
                let chunks = self.chunks();
                steps.push(Step::Send { cmds, chunks });
            }
            1 => self.pubsub(steps),
            2 => self.transaction(steps),
            3 => {
                let db = *self.rng.pick(&["0", "1", "2", "3", "0", "16", "-1", "x"]);
                steps.push(send(self.named(&["SELECT", db])));
            }
            4 => self.hello(steps),
            5 => {
                steps.push(send(Cmd::new(&["RESET"])));
                self.in_multi = false;
                self.subscribed = false;
            }
            6 => {
                let mode = *self.rng.pick(&["OFF", "ON", "SKIP", "maybe"]);
                let mut cmds = vec![self.named(&["CLIENT", "REPLY", mode])];
                cmds.push(self.command());
                if self.rng.chance(0.5) {
                    cmds.push(self.named(&["CLIENT", "REPLY", "ON"]));
                }
                steps.push(Step::Send {
                    cmds,
                    chunks: Vec::new(),
                });
            }
            7 if !self.in_multi => {
                let (label, bytes) = self.raw();
                steps.push(Step::Raw { bytes, label });
            }
            8 if !self.in_multi && !self.subscribed => self.blocking(steps),
            9 => {
                let (a, b) = (self.key(), self.key());
                steps.push(send(self.named(&["DUMP", &a])));
                let mut restore = vec![
                    "RESTORE".as_bytes().to_vec(),
                    b.into_bytes(),
                    b"0".to_vec(),
                    DUMP_PLACEHOLDER.to_vec(),
                ];
                if self.rng.chance(0.5) {
                    restore.push(self.word("REPLACE"));
                }
                steps.push(send(Cmd {
                    args: restore,
                    inline: false,
                }));
            }
            10 => {
                let cmd = if self.rng.chance(0.5) {
                    Cmd::new(&["AUTH", "some-password"])
                } else {
                    Cmd::new(&["AUTH", "default", "some-password"])
                };
                steps.push(send(cmd));
            }
            12 if !self.subscribed => self.scripts(steps),
            _ => {
                // No NUL in a command or subcommand name: Redis finds commands by a hash over
                // all the bytes (seeded per process) but compares them up to the NUL, so
                // `GET\0x` is GET to one Redis and unknown to another (two plain servers
                // disagree; redcloak always calls it unknown). tests/tests/compat.rs covers it.
                let names: [&[u8]; 7] = [
                    b"NOSUCHCOMMAND",
                    b"GET_",
                    b"get ",
                    b"",
                    b"CLIENT",
                    b"OBJECT",
                    b"XINFO",
                ];
                let name = *self.rng.pick(&names);
                let mut args = vec![name.to_vec()];
                if name == b"CLIENT" || name == b"OBJECT" || name == b"XINFO" {
                    let subs: [&[u8]; 3] = [b"NOSUCH", b"SETNAME_", b"help"];
                    args.push(self.rng.pick(&subs).to_vec());
                }
                for _ in 0..self.rng.below(3) {
                    args.push(self.value());
                }
                steps.push(send(Cmd {
                    args,
                    inline: false,
                }));
            }
        }
    }

    fn chunks(&mut self) -> Vec<usize> {
        if self.rng.chance(0.1) {
            (0..self.rng.range(2, 12))
                .map(|_| self.rng.range(1, 40) as usize)
                .collect()
        } else {
            Vec::new()
        }
    }

    /// A command from the catalog, with arguments from Redis's grammar.
    pub fn command(&mut self) -> Cmd {
        let i = self.rng.weighted(&self.catalog.weights);
        let cand = &self.catalog.candidates[i];
        let mut args: Vec<Vec<u8>> = cand.words.iter().map(|w| self.name_case(w)).collect();
        let name = cand.words.join(" ");
        match self.docs.get(&cand.doc_name).cloned() {
            Some(doc) if cand.words.len() == 1 && !cand.spec.subcommands.is_empty() => {
                // A container alone (COMMAND lists everything; the others want a subcommand).
                let _ = doc;
            }
            Some(doc) => {
                let mut out = Vec::new();
                self.args(&name, &doc.args, &mut out);
                args.extend(out);
            }
            None => {
                // A row without Redis 7.0 docs (none today): random arguments around its arity.
                let n = cand.spec.arity.unsigned_abs() as usize;
                for _ in args.len()..n {
                    args.push(self.string());
                }
            }
        }
        if self.rng.chance(0.12) {
            self.mutate(&name, &mut args, cand.words.len());
            // A mutation can move a value to where Redis expects a name (a dropped field makes
            // the next value a field): the values of a mutated command carry no marker.
            for a in &mut args {
                unmark(a);
            }
        }
        let inline = self.rng.chance(0.08);
        Cmd { args, inline }
    }

    /// `words` with the generator's casing and markers (option words get random case).
    fn named(&mut self, words: &[&str]) -> Cmd {
        let args = words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if i == 0 || w.chars().all(|c| c.is_ascii_alphabetic()) {
                    self.name_case(w)
                } else {
                    w.as_bytes().to_vec()
                }
            })
            .collect();
        Cmd {
            args,
            inline: false,
        }
    }

    fn mutate(&mut self, name: &str, args: &mut Vec<Vec<u8>>, fixed: usize) {
        let tokens = self
            .docs
            .get(&name.replace(' ', "|"))
            .map(|d| d.tokens())
            .unwrap_or_default();
        match self.rng.below(6) {
            0 if args.len() > fixed => {
                let i = self.rng.range(fixed as i64, args.len() as i64 - 1) as usize;
                args.remove(i);
            }
            1 if args.len() > fixed => {
                let i = self.rng.range(fixed as i64, args.len() as i64 - 1) as usize;
                let a = args[i].clone();
                args.insert(i, a);
            }
            2 if !tokens.is_empty() => {
                let t = self.rng.pick(&tokens).clone();
                // Through `token`, as when generating: XADD's `*` becomes an explicit ID
                // (seed 0x1d04 sequence 15893 inserted a bare `*`, and the IDs the two
                // servers made from their clocks differed by a millisecond).
                let w = self.token(name, &t);
                let i = self.rng.range(fixed as i64, args.len() as i64) as usize;
                args.insert(i, w);
            }
            3 => {
                let v = self.value();
                args.push(v);
            }
            4 if args.len() > fixed + 1 => {
                let i = self.rng.range(fixed as i64, args.len() as i64 - 1) as usize;
                let j = self.rng.range(fixed as i64, args.len() as i64 - 1) as usize;
                args.swap(i, j);
            }
            _ => {
                let keep = self.rng.range(fixed as i64, args.len() as i64) as usize;
                args.truncate(keep);
            }
        }
    }

    /// Arguments for a sequence of grammar nodes (a command's, or a block's).
    fn args(&mut self, cmd: &str, list: &[Arg], out: &mut Vec<Vec<u8>>) {
        let mut numkeys_at: Option<usize> = None;
        let mut last_keys: Option<usize> = None;
        for a in list {
            if a.optional && self.rng.chance(0.55) {
                continue;
            }
            let reps = if a.multiple {
                match (a.name.as_str(), last_keys) {
                    // STREAMS key … id …: as many IDs as keys, usually.
                    ("id", Some(n)) if self.rng.chance(0.85) => n,
                    _ => self.rng.range(1, 3) as usize,
                }
            } else {
                1
            };
            let start = out.len();
            for i in 0..reps {
                if let Some(t) = &a.token {
                    if i == 0 || a.multiple_token {
                        let w = self.token(cmd, t);
                        out.push(w);
                    }
                }
                self.arg(cmd, a, out);
            }
            if a.name == "numkeys" {
                numkeys_at = Some(start);
            }
            if a.kind == Kind::Key && a.multiple {
                last_keys = Some(reps);
                if let Some(at) = numkeys_at.take() {
                    if self.rng.chance(0.85) && at < out.len() {
                        out[at] = reps.to_string().into_bytes();
                    }
                }
            }
        }
    }

    fn arg(&mut self, cmd: &str, a: &Arg, out: &mut Vec<Vec<u8>>) {
        match a.kind {
            Kind::PureToken => {}
            Kind::OneOf => {
                if !a.children.is_empty() {
                    let c = self.rng.pick(&a.children).clone();
                    if let Some(t) = &c.token {
                        let w = self.token(cmd, t);
                        out.push(w);
                    }
                    self.arg(cmd, &c, out);
                }
            }
            Kind::Block => {
                let children = a.children.clone();
                self.args(cmd, &children, out);
            }
            _ => {
                let v = self.scalar(cmd, a);
                out.push(v);
            }
        }
    }

    /// An option word. `*` as XADD's ID becomes an explicit ID (IDs made from the clock
    /// differ between two servers).
    fn token(&mut self, cmd: &str, t: &str) -> Vec<u8> {
        if t == "*" && cmd == "XADD" {
            return self.new_id().into_bytes();
        }
        self.word(t)
    }

    /// An option word in random case, sometimes followed by a NUL (and junk after it):
    /// Redis compares option words with `strcasecmp`, so both are still the same word to it.
    fn word(&mut self, t: &str) -> Vec<u8> {
        let mut w = self.case(t);
        if t.chars().any(|c| c.is_ascii_alphabetic()) {
            if self.rng.chance(0.08) {
                w.push(0);
                if self.rng.chance(0.5) {
                    w.extend_from_slice(b"zz");
                }
            } else if self.rng.chance(0.01) {
                w.push(b'X');
            }
        }
        w
    }

    fn case(&mut self, t: &str) -> Vec<u8> {
        match self.rng.below(4) {
            0 | 1 => t.as_bytes().to_vec(),
            2 => t.to_ascii_lowercase().into_bytes(),
            _ => t
                .bytes()
                .map(|b| {
                    if self.rng.chance(0.5) {
                        b.to_ascii_lowercase()
                    } else {
                        b.to_ascii_uppercase()
                    }
                })
                .collect(),
        }
    }

    /// A command or subcommand name in random case.
    fn name_case(&mut self, t: &str) -> Vec<u8> {
        self.case(t)
    }

    fn scalar(&mut self, cmd: &str, a: &Arg) -> Vec<u8> {
        let blocking = BLOCKING.contains(&cmd);
        let n = a.name.as_str();
        let stream = cmd.starts_with('X');
        let s = |x: &str| x.as_bytes().to_vec();
        match (a.kind, n) {
            (Kind::Key, _) => self.key().into_bytes(),
            (_, "value" | "element" | "member" | "member1" | "member2" | "pivot") => self.value(),
            (_, "message") if cmd == "PUBLISH" || cmd == "SPUBLISH" => self.value(),
            (_, "message") => self.one(&["hello", "", "a b"]),
            (_, "field") => self.one(FIELDS),
            (_, "channel") => self.one(CHANNELS),
            (_, "shardchannel") => self.one(SHARD_CHANNELS),
            (Kind::Pattern, _) if cmd.contains("SUBSCRIBE") || cmd.starts_with("PUBSUB") => {
                self.one(PATTERNS)
            }
            (Kind::Pattern, _) => self.one(&["k:*", "*", "k:[ab]", "nomatch*", "f*"]),
            (_, "timeout") if blocking && cmd == "WAIT" => self.one(&["1", "2"]),
            (_, "timeout") if blocking => self.one(&["0.001", "0.002"]),
            (_, "milliseconds") if blocking => self.one(&["1", "2"]),
            (_, "numreplicas") => self.one(&["0", "1"]),
            (_, "id" | "last-id" | "max_deleted_entry_id") if stream => {
                self.some_id(cmd).into_bytes()
            }
            (Kind::String, "start" | "end") if stream => {
                let ends = ["-", "+", "0", "0-1"];
                if self.rng.chance(0.5) {
                    self.one(&ends)
                } else {
                    let id = self.some_id(cmd);
                    if self.rng.chance(0.2) {
                        format!("({id}").into_bytes()
                    } else {
                        id.into_bytes()
                    }
                }
            }
            (_, "group" | "groupname") => self.one(GROUPS),
            (_, "consumer" | "consumername") => self.one(CONSUMERS),
            (_, "min-idle-time") => self.one(&["0", "0", "100000"]),
            (_, "threshold") => {
                if self.rng.chance(0.5) {
                    self.some_id(cmd).into_bytes()
                } else {
                    self.one(&["0", "1", "3", "100"])
                }
            }
            (_, "connection-name" | "clientname") => self.one(&["cn1", "cn-2", "bad name"]),
            (_, "section") => self.one(&["server", "keyspace", "default", "nosuch"]),
            (_, "command-name") => self.one(&["get", "SET", "xadd", "client|setname", "nosuch"]),
            (_, "sha1") => self.one(&[
                "e0e1f9fabfc9d4800c877a703b823ac0578ff8db",
                "0000000000000000000000000000000000000000",
                "nosha",
            ]),
            (_, "script" | "function-code") => s("return 1"),
            (_, "type") => self.one(&["string", "hash", "list", "stream", "set", "zset", "nosuch"]),
            (_, "category" | "categoryname") => self.one(&["string", "keyspace", "nosuch"]),
            (_, "event") => s("command"),
            (_, "library-name" | "library-name-pattern") => self.one(&["mylib", "*"]),
            (_, "module-name") => s("nosuch"),
            (_, "username") => s("default"),
            (_, "password") => s("some-password"),
            (_, "serialized-value") => DUMP_PLACEHOLDER.to_vec(),
            (_, "index" | "db" | "destination-db" | "index1" | "index2")
                if matches!(cmd, "SELECT" | "MOVE" | "COPY" | "SWAPDB") =>
            {
                self.one(&["0", "1", "2", "3", "16"])
            }
            // Expiry times: long, or already past. A TTL of a few milliseconds would expire
            // between two commands on one server and not on the other (they run one after the
            // other): timing, not behaviour.
            (_, "seconds") => self.one(&["100", "1000", "0", "-1", "x"]),
            (_, "milliseconds" | "ttl") => self.one(&["100000", "1000000", "0", "-5"]),
            (_, "cursor") => self.one(&["0", "0", "0", "1", "x"]),
            (_, "count") => self.one(&["1", "2", "3", "10", "0", "-1", "-3"]),
            (_, "unix-time-seconds") | (Kind::UnixTime, _) if !n.contains("milli") => {
                if self.rng.chance(0.8) {
                    (self.now + 1000).to_string().into_bytes()
                } else {
                    self.one(&["1", "0", "-1"])
                }
            }
            (_, "unix-time-milliseconds") | (Kind::UnixTime, _) => {
                if self.rng.chance(0.8) {
                    ((self.now + 1000) * 1000).to_string().into_bytes()
                } else {
                    self.one(&["1", "0", "-1"])
                }
            }
            (Kind::Integer, _) => self.one(&[
                "0",
                "1",
                "2",
                "3",
                "5",
                "10",
                "100",
                "-1",
                "-2",
                "-100",
                "x",
                "1.5",
                "9223372036854775807",
                "-9223372036854775808",
                "99999999999999999999",
            ]),
            (Kind::Double, _) => self.one(&[
                "0", "1", "1.5", "-2.5", "inf", "-inf", "+inf", "1e3", "x", "nan",
            ]),
            _ => self.string(),
        }
    }

    fn one(&mut self, items: &[&str]) -> Vec<u8> {
        self.rng.pick(items).as_bytes().to_vec()
    }

    /// A key from the small pool (so that commands collide, across types too).
    fn key(&mut self) -> String {
        self.rng.pick(KEYS).to_string()
    }

    /// A short string that is not a value.
    fn string(&mut self) -> Vec<u8> {
        self.rng
            .pick(&["s1", "s2", "", "x y", "0", "-", "+", "$"])
            .as_bytes()
            .to_vec()
    }

    /// A value: usually a fresh marker, sometimes with binary bytes, long, empty or numeric.
    pub fn value(&mut self) -> Vec<u8> {
        self.counter += 1;
        let mut v = format!("{MARK}{:x}", self.counter).into_bytes();
        match self.rng.below(20) {
            0 | 1 => v.extend_from_slice(" with spaces\r\n\0\x01\u{e9}\"'\\".as_bytes()),
            2 => v.extend(std::iter::repeat_n(
                b'x',
                self.rng.range(100, 3000) as usize,
            )),
            3 => v.push(0),
            4 => return Vec::new(),
            5 | 6 => return self.rng.range(-5, 50).to_string().into_bytes(),
            _ => {}
        }
        v
    }

    fn new_id(&mut self) -> String {
        let id = if self.rng.chance(0.1) && !self.ids.is_empty() {
            // An ID that is not above the last one (an error).
            self.rng.pick(&self.ids).clone()
        } else if self.rng.chance(0.1) {
            self.stream_ms += 1;
            format!("{}-*", self.stream_ms)
        } else {
            self.stream_ms += 1;
            format!("{}-{}", self.stream_ms, self.rng.below(3))
        };
        if !id.ends_with('*') {
            self.ids.push(id.clone());
        }
        id
    }

    /// An ID to read, acknowledge, claim or delete.
    fn some_id(&mut self, cmd: &str) -> String {
        let special: &[&str] = match cmd {
            "XREADGROUP" => &[">", "0"],
            "XREAD" => &["0", "0-0", "$"],
            "XGROUP" | "XGROUP CREATE" | "XGROUP SETID" => &["$", "0"],
            _ => &["0-1", "1-0"],
        };
        if self.ids.is_empty() || self.rng.chance(0.4) {
            self.rng.pick(special).to_string()
        } else {
            self.rng.pick(&self.ids).clone()
        }
    }

    fn pubsub(&mut self, steps: &mut Vec<Step>) {
        let kinds = [
            ("SUBSCRIBE", "UNSUBSCRIBE", CHANNELS, "PUBLISH"),
            ("PSUBSCRIBE", "PUNSUBSCRIBE", PATTERNS, "PUBLISH"),
            ("SSUBSCRIBE", "SUNSUBSCRIBE", SHARD_CHANNELS, "SPUBLISH"),
        ];
        let (sub, unsub, names, publish) = *self.rng.pick(&kinds);
        let mut cmd = vec![self.case(sub)];
        for _ in 0..self.rng.range(1, 3) {
            cmd.push(self.rng.pick(names).as_bytes().to_vec());
        }
        steps.push(send(Cmd {
            args: cmd,
            inline: false,
        }));
        if !self.in_multi {
            self.subscribed = true;
        }
        for _ in 0..self.rng.range(0, 3) {
            let channels = if publish == "SPUBLISH" {
                SHARD_CHANNELS
            } else {
                CHANNELS
            };
            let ch = self.rng.pick(channels).to_string();
            let v = self.value();
            steps.push(Step::Other(Cmd {
                args: vec![publish.as_bytes().to_vec(), ch.into_bytes(), v],
                inline: false,
            }));
        }
        match self.rng.below(5) {
            0 => steps.push(send(Cmd::new(&["PING"]))),
            1 => steps.push(send(Cmd::new(&["PING", "hello"]))),
            2 => {
                let c = self.command();
                steps.push(send(c));
            }
            _ => {}
        }
        if self.rng.chance(0.7) {
            let mut cmd = vec![self.case(unsub)];
            let all = [CHANNELS, PATTERNS, SHARD_CHANNELS];
            for _ in 0..self.rng.range(0, 3) {
                // Mostly names of this kind, sometimes of another (never subscribed).
                let pool = if self.rng.chance(0.8) {
                    names
                } else {
                    *self.rng.pick(&all)
                };
                cmd.push(self.rng.pick(pool).as_bytes().to_vec());
            }
            let chunks = self.chunks();
            let mut cmds = vec![Cmd {
                args: cmd,
                inline: self.rng.chance(0.1),
            }];
            if self.rng.chance(0.5) {
                // A pipeline right behind the unsubscription: its replies must still line up.
                cmds.push(self.command());
                cmds.push(Cmd::new(&["PING"]));
            }
            steps.push(Step::Send { cmds, chunks });
        }
    }

    fn transaction(&mut self, steps: &mut Vec<Step>) {
        let key = self.key();
        if self.rng.chance(0.4) {
            steps.push(send(self.named(&["WATCH", &key])));
            if self.rng.chance(0.5) {
                let v = self.value();
                steps.push(Step::Other(Cmd {
                    args: vec![b"SET".to_vec(), key.clone().into_bytes(), v],
                    inline: false,
                }));
            }
        }
        let mut cmds = vec![self.named(&["MULTI"])];
        for _ in 0..self.rng.range(0, 5) {
            match self.rng.below(12) {
                0 => cmds.push(self.named(&["WATCH", &key])),
                1 => cmds.push(self.named(&["MULTI"])),
                2 => cmds.push(self.named(&["SUBSCRIBE", "ch1"])),
                3 => cmds.push(self.named(&["SELECT", "1"])),
                _ => cmds.push(self.command()),
            }
        }
        let end = *self.rng.pick(&["EXEC", "EXEC", "EXEC", "DISCARD", "none"]);
        if end != "none" {
            cmds.push(self.named(&[end]));
        } else {
            self.in_multi = true;
        }
        if self.rng.chance(0.5) {
            steps.push(Step::Send {
                cmds,
                chunks: Vec::new(),
            });
        } else {
            steps.extend(cmds.into_iter().map(send));
        }
        if self.rng.chance(0.1) {
            let end = *self.rng.pick(&["EXEC", "DISCARD"]);
            steps.push(send(self.named(&[end])));
        }
    }

    /// EVAL / EVALSHA / EVAL_RO of simple scripts (values in ARGV marked: redcloak runs the
    /// script, so they must reach Redis only encrypted), the script cache, and function
    /// libraries with FCALL / FCALL_RO.
    fn scripts(&mut self, steps: &mut Vec<Step>) {
        let n = self.rng.range(1, 4);
        let mut cmds = Vec::new();
        for _ in 0..n {
            let cmd = match self.rng.below(10) {
                0..=4 => {
                    let (script, read_only) = *self.rng.pick(SCRIPTS);
                    let by_sha = self.rng.chance(0.25);
                    let name = match (by_sha, read_only && self.rng.chance(0.5)) {
                        (false, false) => "EVAL",
                        (false, true) => "EVAL_RO",
                        (true, false) => "EVALSHA",
                        (true, true) => "EVALSHA_RO",
                    };
                    let body = if by_sha {
                        sha1_hex(script.as_bytes()).into_bytes()
                    } else {
                        script.as_bytes().to_vec()
                    };
                    let nkeys = self.rng.range(0, 2) as usize;
                    let mut args = vec![self.name_case(name), body];
                    args.push(nkeys.to_string().into_bytes());
                    for _ in 0..nkeys {
                        args.push(self.key().into_bytes());
                    }
                    for _ in 0..self.rng.range(0, 2) {
                        args.push(self.value());
                    }
                    Cmd {
                        args,
                        inline: false,
                    }
                }
                5 => {
                    let (script, _) = *self.rng.pick(SCRIPTS);
                    match self.rng.below(3) {
                        0 => self.named(&["SCRIPT", "LOAD", script]),
                        1 => {
                            let sha = sha1_hex(script.as_bytes());
                            self.named(&["SCRIPT", "EXISTS", &sha, "0000"])
                        }
                        _ => self.named(&["SCRIPT", "FLUSH"]),
                    }
                }
                6 => {
                    let lib = *self.rng.pick(LIBRARIES);
                    if self.rng.chance(0.3) {
                        self.named(&["FUNCTION", "LOAD", "REPLACE", lib])
                    } else {
                        self.named(&["FUNCTION", "LOAD", lib])
                    }
                }
                7 => {
                    let (f, nkeys, read_only) = *self.rng.pick(FUNCTIONS);
                    let name = if read_only && self.rng.chance(0.5) {
                        "FCALL_RO"
                    } else {
                        "FCALL"
                    };
                    let mut args = vec![self.name_case(name), f.as_bytes().to_vec()];
                    args.push(nkeys.to_string().into_bytes());
                    for _ in 0..nkeys {
                        args.push(self.key().into_bytes());
                    }
                    for _ in 0..self.rng.range(0, 2) {
                        args.push(self.value());
                    }
                    Cmd {
                        args,
                        inline: false,
                    }
                }
                8 => match self.rng.below(5) {
                    0 => self.named(&["FUNCTION", "LIST"]),
                    1 => self.named(&["FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "dlib*"]),
                    2 => self.named(&["FUNCTION", "DELETE", "dlib"]),
                    3 => self.named(&["FUNCTION", "STATS"]),
                    _ => self.named(&["FUNCTION", "FLUSH"]),
                },
                _ => self.command(),
            };
            cmds.push(cmd);
        }
        steps.push(Step::Send {
            cmds,
            chunks: Vec::new(),
        });
    }

    fn hello(&mut self, steps: &mut Vec<Step>) {
        let variants: &[&[&[u8]]] = &[
            &[b"HELLO"],
            &[b"HELLO", b"2"],
            &[b"HELLO", b"3"],
            &[b"HELLO", b"3"],
            &[b"HELLO", b"3", b"SETNAME", b"cn3"],
            &[b"HELLO", b"2", b"AUTH", b"default", b"some-password"],
            &[b"HELLO", b"3", b"AUTH\0", b"default", b"some-password"],
            &[b"HELLO", b"3", b"auth", b"default"],
            &[b"HELLO", b"4"],
            &[b"HELLO", b"x"],
            &[b"HELLO", b"3", b"SETNAME"],
            &[b"HELLO", b"3", b"NOSUCH"],
            &[b"HELLO", b"3", b"SETNAME\0", b"cn4"],
        ];
        let v = self.rng.pick(variants);
        steps.push(send(Cmd {
            args: v.iter().map(|a| a.to_vec()).collect(),
            inline: false,
        }));
    }

    fn blocking(&mut self, steps: &mut Vec<Step>) {
        let (k, k2) = (self.key(), self.key());
        // (A destination of another type would keep the command blocked until its timeout.)
        steps.push(send(Cmd::new(&["DEL", &k, &k2])));
        let v = self.value();
        let list_push = |cmd: &str| Cmd {
            args: vec![cmd.as_bytes().to_vec(), k.clone().into_bytes(), v.clone()],
            inline: false,
        };
        let (blocked, unblocker) = match self.rng.below(7) {
            0 => (Cmd::new(&["BLPOP", &k, "0.5"]), list_push("RPUSH")),
            1 => (Cmd::new(&["BRPOP", &k2, &k, "0.5"]), list_push("LPUSH")),
            2 => (
                Cmd::new(&["BLMOVE", &k, &k2, "LEFT", "RIGHT", "0.5"]),
                list_push("RPUSH"),
            ),
            3 => (
                Cmd::new(&["BRPOPLPUSH", &k, &k2, "0.5"]),
                list_push("LPUSH"),
            ),
            4 => (
                Cmd::new(&["BLMPOP", "0.5", "1", &k, "LEFT", "COUNT", "2"]),
                list_push("RPUSH"),
            ),
            5 => {
                let id = self.new_id();
                (
                    Cmd::new(&["XREAD", "BLOCK", "500", "STREAMS", &k, "$"]),
                    Cmd {
                        args: vec![
                            b"XADD".to_vec(),
                            k.clone().into_bytes(),
                            id.into_bytes(),
                            b"f1".to_vec(),
                            v.clone(),
                        ],
                        inline: false,
                    },
                )
            }
            _ => {
                steps.push(send(Cmd::new(&[
                    "XGROUP", "CREATE", &k, "g1", "$", "MKSTREAM",
                ])));
                let id = self.new_id();
                (
                    Cmd::new(&[
                        "XREADGROUP",
                        "GROUP",
                        "g1",
                        "c1",
                        "BLOCK",
                        "500",
                        "STREAMS",
                        &k,
                        ">",
                    ]),
                    Cmd {
                        args: vec![
                            b"XADD".to_vec(),
                            k.clone().into_bytes(),
                            id.into_bytes(),
                            b"f1".to_vec(),
                            v.clone(),
                        ],
                        inline: false,
                    },
                )
            }
        };
        steps.push(Step::Unblock { blocked, unblocker });
    }

    /// Odd and malformed framing. Every case completes (no case leaves either server waiting
    /// for bytes that never come): a sentinel follows it.
    fn raw(&mut self) -> (&'static str, Vec<u8>) {
        let v = self.value();
        let mut set = Vec::new();
        super::wire::multibulk(
            &[b"SET".to_vec(), self.key().into_bytes(), v.clone()],
            &mut set,
        );
        let n = self.rng.range(2, 1_000_000_000);
        let cases: Vec<(&'static str, Vec<u8>)> = vec![
            ("negative multibulk count *-N", b"*-10\r\n".to_vec()),
            (
                "negative multibulk count *-N",
                format!("*-{n}\r\n").into_bytes(),
            ),
            (
                "negative multibulk count *-N",
                b"*-9223372036854775808\r\n".to_vec(),
            ),
            (
                "negative multibulk count *-N between two commands",
                [&set[..], b"*-10\r\n", &set[..]].concat(),
            ),
            ("*0", b"*0\r\n".to_vec()),
            ("*-1", b"*-1\r\n".to_vec()),
            ("empty inline line", b"\r\n".to_vec()),
            ("blank inline line", b"   \r\n".to_vec()),
            ("bare LF", b"\n".to_vec()),
            ("inline command ending in LF", b"PING\n".to_vec()),
            ("inline quoting", b"ping  \"a b\" 'c'\r\n".to_vec()),
            ("bulk not followed by CRLF", b"*1\r\n$4\r\nPINGxx".to_vec()),
            ("bad multibulk count", b"*abc\r\n".to_vec()),
            ("non-bulk element in a request", b"*1\r\n:1\r\n".to_vec()),
            ("negative bulk length", b"*1\r\n$-5\r\n".to_vec()),
            ("bad bulk length", b"*1\r\n$abc\r\n".to_vec()),
            ("empty command name", b"*1\r\n$0\r\n\r\n".to_vec()),
            ("unbalanced quotes", b"ECHO \"unbalanced\r\n".to_vec()),
            (
                "closing quote not followed by a space",
                b"ECHO \"a\"b\r\n".to_vec(),
            ),
            ("multibulk count with +", b"*+1\r\n$4\r\nPING\r\n".to_vec()),
            (
                "multibulk count with a leading zero",
                b"*01\r\n$4\r\nPING\r\n".to_vec(),
            ),
            (
                "bulk length with a leading zero",
                b"*1\r\n$04\r\nPING\r\n".to_vec(),
            ),
            ("plain SET", set.clone()),
        ];
        self.rng.pick(&cases).clone()
    }
}

/// Replaces each marker by bytes of the same length that are not one.
fn unmark(arg: &mut [u8]) {
    let mark = MARK.as_bytes();
    let mut i = 0;
    while i + mark.len() <= arg.len() {
        if &arg[i..i + mark.len()] == mark {
            arg[i..i + mark.len()].copy_from_slice(b"mutatedvalue");
            i += mark.len();
        } else {
            i += 1;
        }
    }
}

/// Scripts for EVAL (and whether they only read). `ARGV` holds values, `KEYS` keys of the pool.
const SCRIPTS: &[(&str, bool)] = &[
    ("return redis.call('SET', KEYS[1], ARGV[1])", false),
    ("return redis.call('GET', KEYS[1])", true),
    ("return redis.call('INCR', KEYS[1])", false),
    ("return redis.pcall('INCR', KEYS[1])", false),
    (
        "redis.call('RPUSH', KEYS[1], ARGV[1]) return redis.call('LRANGE', KEYS[1], 0, -1)",
        false,
    ),
    ("return redis.call('HSET', KEYS[1], 'f1', ARGV[1])", false),
    ("return redis.call('HGETALL', KEYS[1])", true),
    ("return redis.call('SADD', KEYS[1], ARGV[1])", false),
    ("return redis.call('SISMEMBER', KEYS[1], ARGV[1])", true),
    ("return redis.call('ZADD', KEYS[1], 1, ARGV[1])", false),
    (
        "return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')",
        true,
    ),
    ("return {1, 2, 'x', ARGV[1], {KEYS[1]}}", true),
    ("return redis.status_reply('FINE')", true),
    ("return redis.error_reply('my error')", true),
    ("return 3.99", true),
    ("return nil", true),
    ("return false", true),
    ("return true", true),
    (
        "local v = redis.call('GET', KEYS[1]) if v then return string.len(v) end return -1",
        true,
    ),
    ("return redis.call('TYPE', KEYS[1])", true),
    ("return redis.call('EXISTS', KEYS[1], KEYS[2])", true),
    ("return redis.call('APPEND', KEYS[1], ARGV[1])", false),
    ("return #ARGV + #KEYS", true),
    ("return redis.sha1hex(ARGV[1])", true),
    ("return tostring(tonumber(ARGV[1]))", true),
    (
        "redis.call('DEL', KEYS[1]) return redis.call('EXISTS', KEYS[1])",
        false,
    ),
    ("return redis.call('NOSUCH', KEYS[1])", true),
    ("return redis.call('GET', KEYS[1]) .. '!'", true),
    ("return redis.call('SET', KEYS[1], ARGV[1])", true),
    ("return cjson.encode({ARGV[1], 2})", true),
    ("x = 1", true),
    (
        "return redis.call('LPUSH', KEYS[1], ARGV[1], ARGV[1])",
        false,
    ),
    ("return redis.call('SMEMBERS', KEYS[1])", true),
    ("return redis.call('GETDEL', KEYS[1])", false),
    ("return", true),
    ("return (", true),
];

/// The bodies of the scripts EVAL is generated with (the normaliser recognises EVALSHA's).
pub fn script_bodies() -> impl Iterator<Item = &'static str> {
    SCRIPTS.iter().map(|(body, _)| *body)
}

/// Function libraries for FUNCTION LOAD (the last one has no function: an error).
const LIBRARIES: &[&str] = &[
    "#!lua name=dlib\nredis.register_function('dset', function(keys, args) return redis.call('SET', keys[1], args[1]) end)\nredis.register_function{function_name='dget', callback=function(keys, args) return redis.call('GET', keys[1]) end, flags={'no-writes'}}",
    "#!lua name=dlib2\nredis.register_function('dlen', function(keys, args) return #args end)",
    "#!lua name=dbad\nreturn 1",
];

/// Functions for FCALL: name, number of keys, read only.
const FUNCTIONS: &[(&str, usize, bool)] = &[
    ("dset", 1, false),
    ("dget", 1, true),
    ("dlen", 0, true),
    ("nosuch", 0, true),
];

/// The SHA1 of a script, hexadecimal (what EVALSHA names it by).
fn sha1_hex(script: &[u8]) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(script)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn send(cmd: Cmd) -> Step {
    Step::Send {
        cmds: vec![cmd],
        chunks: Vec::new(),
    }
}

/// How many commands a step sends.
pub fn step_len(step: &Step) -> usize {
    match step {
        Step::Send { cmds, .. } => cmds.len(),
        Step::Other(_) | Step::Raw { .. } => 1,
        Step::Unblock { .. } => 2,
    }
}
