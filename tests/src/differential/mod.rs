//! Differential testing: the same generated command sequences go to redcloak (in front of a TLS
//! Redis) and to a plain Redis, over raw connections controlled byte for byte, and the reply
//! streams are compared command by command. redcloak may refuse a command (`-ERR redcloak: …
//! is not supported`); anything else must match Redis exactly, after the few normalisations in
//! [`normalise`]. After every sequence the TLS Redis is read around the proxy, and everything
//! redcloak made it execute (MONITOR) is checked, for plaintext value markers.
//!
//! # Layout
//! - [`wire`]: an independent RESP reply parser, request encoders, raw connections.
//! - [`docs`]: Redis's `COMMAND DOCS` / `COMMAND INFO`: grammar, option words, arities.
//! - [`gen`]: sequences from redcloak's table and Redis's grammar, with session scenarios.
//! - [`model`]: how many frames Redis sends per command (pub/sub, CLIENT REPLY, RESP3).
//! - [`run`]: one sequence on both sides in lock step, and the comparison.
//! - [`normalise`]: the non-deterministic replies, and how they are compared instead.
//! - [`leak`]: MONITOR and keyspace checks for plaintext.
//! - [`servers`]: the stack for the long-run binary (the plain Redis is [`crate::diff::PlainRedis`]).
//!
//! Configuration (environment, also flags of the `difffuzz` binary): `REDCLOAK_DIFF_SEED`
//! (run seed; sequence `i` has its own seed derived from it), `REDCLOAK_DIFF_ONLY` (replay one
//! sequence), `REDCLOAK_DIFF_SECONDS`, `REDCLOAK_DIFF_COMMANDS`, `REDCLOAK_DIFF_SEQUENCE_LEN`
//! (commands per sequence, 30), `REDCLOAK_DIFF_MINIMISE=0` (report first occurrences as they
//! are), `REDCLOAK_DIFF_KNOWN` (comma-separated divergence classes to report without failing;
//! by default [`KNOWN`], the classes found and not fixed yet; `none` for none).
//! Debugging: `REDCLOAK_DIFF_FULL=1` (do not cut long texts in reports), `REDCLOAK_DIFF_TRACE=1`
//! (time per sequence), `REDCLOAK_DIFF_SAVE_LOG=<path>` (redcloak's whole log),
//! `REDCLOAK_DIFF_HOLD=<seconds>` (keep both servers up at the end).

pub mod docs;
pub mod gen;
pub mod leak;
pub mod model;
pub mod normalise;
pub mod rng;
pub mod run;
pub mod servers;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use redcloak_commands::table;

use crate::{Direct, Stack};

use self::docs::Docs;
use self::gen::{step_len, Catalog, Cmd, Generator, Step};
use self::leak::Monitor;
use self::normalise::REDIS_ARGS;
use self::run::{compare, plan_for_redis, Divergence, Exchange, Kind, Probe, Side, Which};
use self::wire::{escape, multibulk, Conn, Event};
use crate::diff::PlainRedis;

/// Divergence classes found and not fixed yet, each with what is wrong: reported, not failed
/// on, unless `REDCLOAK_DIFF_KNOWN` says otherwise (`none`: fail on everything). Remove an entry
/// when its class is fixed.
pub const KNOWN: &[(&str, &str)] = &[
    (
        "command redcloak cannot run inside a transaction it runs itself",
        "in a transaction redcloak carries out itself (one holding an emulated command), a \
         command touching every key (SWAPDB, FLUSHDB…) or one whose keys cannot be found (a \
         numkeys Redis rejects: Redis answers its own syntax error) gets redcloak's refusal as \
         its EXEC element. Blocking commands there are fixed (table/blocking.rs)",
    ),
    (
        "reply differs: ZUNION",
        "members with equal scores come back in the order of their ciphertexts \
         (docs/commands.md: a documented difference of member encryption)",
    ),
    (
        "reply differs: ZDIFF",
        "members with equal scores come back in the order of their ciphertexts (documented)",
    ),
    (
        "reply differs: OBJECT IDLETIME",
        "redcloak's own reads of a key (WATCH/GET for emulated commands, scripts) reset the \
         key's idle time, which the client's commands would not have",
    ),
    (
        "reply differs: BZPOPMIN",
        "of members with equal scores, the one popped is the first in the order of their \
         ciphertexts (documented in docs/commands.md, as ZUNION's)",
    ),
    (
        "connection closed by redcloak: EXEC",
        "a Redis 7.0 bug, analysed: a RESP3 transaction that publishes (SPUBLISH/PUBLISH) to a \
         channel its own connection is subscribed to gets the push message written *inside* \
         EXEC's array (`*2 >3 smessage … :1`, the last element after the array; Redis 7.2 \
         defers such pushes). redcloak cannot account for the frame after the array and closes \
         the connection with its error, as it must; Redis's own client gets a malformed reply \
         (seed 0x18ed35e7e5161d08 sequence 1502)",
    ),
    (
        "reply differs: ZINTER",
        "members with equal scores come back in the order of their ciphertexts (documented, as \
         ZUNION's)",
    ),
    (
        "reply differs: EXEC",
        "a command redcloak refuses when it runs it (APPEND on a HyperLogLog key, emulated) \
         as an element of EXEC's reply: Redis ran it, so the harness cannot keep both sides \
         equal with a substitute as it does for a refusal outside a transaction (found \
         2026-12-02, seed 0x6a sequence 610; the HyperLogLog refusals)",
    ),
];

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The run seed.
    pub seed: u64,
    /// Replay only this sequence.
    pub only: Option<u64>,
    /// Stop after this many commands…
    pub max_commands: u64,
    /// …or this much time, whichever comes first.
    pub max_time: Duration,
    /// Commands per sequence (about).
    pub sequence_len: usize,
    /// Divergence classes reported without failing (known bugs being fixed). Empty by default.
    pub known: BTreeSet<String>,
    /// Print progress every so often.
    pub progress: Option<Duration>,
    /// Minimise the first sequence of each class.
    pub minimise: bool,
}

impl Config {
    /// Defaults overridden by `REDCLOAK_DIFF_*` variables.
    pub fn from_env(default_seed: u64, default_commands: u64, default_seconds: u64) -> Config {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let num = |k: &str| var(k).and_then(|v| parse_u64(&v));
        Config {
            seed: num("REDCLOAK_DIFF_SEED").unwrap_or(default_seed),
            only: num("REDCLOAK_DIFF_ONLY"),
            max_commands: num("REDCLOAK_DIFF_COMMANDS").unwrap_or(default_commands),
            max_time: Duration::from_secs(num("REDCLOAK_DIFF_SECONDS").unwrap_or(default_seconds)),
            sequence_len: num("REDCLOAK_DIFF_SEQUENCE_LEN").unwrap_or(30) as usize,
            known: match var("REDCLOAK_DIFF_KNOWN") {
                Some(v) => v
                    .split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty() && s != "none")
                    .collect(),
                None => KNOWN.iter().map(|(c, _)| (*c).to_owned()).collect(),
            },
            progress: None,
            minimise: var("REDCLOAK_DIFF_MINIMISE").is_none_or(|v| v != "0"),
        }
    }
}

/// Whether a step runs SORT / SORT_RO with a BY or GET pattern that names other keys (a `*`
/// before any NUL, other than `#`). redcloak must then read the keys Redis would read, whose
/// names are the pattern with each *decrypted* element in place of the `*`: key names are
/// plaintext by design (docs/security.md), so the element is visible in them, exactly as when
/// the application builds those key names itself. Those lookups (WATCH, GET, HGET of such a
/// key) are not counted as leaks; markers never go into key names otherwise, so no other leak
/// is hidden — values stored by `SORT … STORE` are still checked in the keyspace.
fn sorts_by_pattern(step: &Step) -> bool {
    let cmds: Vec<&gen::Cmd> = match step {
        Step::Send { cmds, .. } => cmds.iter().collect(),
        Step::Other(c) => vec![c],
        Step::Unblock { blocked, unblocker } => vec![blocked, unblocker],
        Step::Raw { .. } => Vec::new(),
    };
    cmds.iter().any(|c| {
        let name = c.name();
        (name == "SORT" || name == "SORT_RO")
            && c.args.windows(2).any(|w| {
                let word = w[0].split(|&b| b == 0).next().unwrap_or(&[]);
                let pattern = w[1].split(|&b| b == 0).next().unwrap_or(&[]);
                (word.eq_ignore_ascii_case(b"BY") || word.eq_ignore_ascii_case(b"GET"))
                    && pattern.contains(&b'*')
            })
    })
}

/// A decimal or `0x` hexadecimal number.
pub fn parse_u64(v: &str) -> Option<u64> {
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Both systems, and what is needed to drive and check them.
pub struct Harness {
    /// redcloak and its TLS Redis.
    pub stack: Stack,
    /// The plain Redis.
    pub plain: PlainRedis,
    /// Redis's command docs.
    pub docs: Docs,
    /// What the generator chooses from.
    pub catalog: Catalog,
    monitor: Monitor,
    direct: Direct,
    plain_admin: Conn,
    /// Time spent resetting, running steps, scanning the keyspace, draining MONITOR.
    pub profile: [Duration; 4],
    /// Sequences that ended on a missing reply (each costs a reply timeout).
    pub timeouts: u64,
    /// Steps run and time spent, by command (single commands) or kind of step.
    pub step_time: BTreeMap<String, (u64, Duration)>,
}

/// What one sequence produced.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The first divergence.
    pub divergence: Option<Divergence>,
    /// Plaintext markers found in Redis.
    pub leaks: Vec<String>,
    /// Every exchange, in order (redcloak's, Redis's).
    pub exchanges: Vec<(Exchange, Exchange)>,
    /// Commands sent to each side.
    pub commands: u64,
}

impl Outcome {
    /// The class of what went wrong, if anything.
    pub fn class(&self) -> Option<String> {
        if let Some(d) = &self.divergence {
            return Some(d.class.clone());
        }
        (!self.leaks.is_empty()).then(|| "plaintext value reached Redis".to_owned())
    }
}

impl Harness {
    /// Starts redcloak + TLS Redis and a plain Redis, reads the docs, starts monitoring.
    pub fn start() -> Harness {
        let stack = servers::start_stack();
        let plain = PlainRedis::start(stack.dir.path(), REDIS_ARGS);
        let mut plain_admin = Conn::connect(plain.addr()).expect("connect to the plain Redis");
        let docs = Docs::load(&mut plain_admin).expect("COMMAND DOCS from the plain Redis");
        let monitor = Monitor::start(&stack);
        let direct = stack.direct();
        Harness {
            stack,
            plain,
            docs,
            catalog: Catalog::new(),
            monitor,
            direct,
            plain_admin,
            profile: [Duration::ZERO; 4],
            timeouts: 0,
            step_time: BTreeMap::new(),
        }
    }

    fn reset(&mut self) {
        // Scripts and functions outlive FLUSHALL in Redis, and in redcloak: it keeps its
        // script cache in memory and its libraries in a Redis function library of its own.
        let flush: [Vec<u8>; 3] = [
            b"FLUSHALL".to_vec(),
            b"SCRIPT".to_vec(),
            b"FUNCTION".to_vec(),
        ];
        if let Ok(mut rc) = Conn::connect(self.stack.proxy.addr) {
            let mut out = Vec::new();
            multibulk(&[flush[1].clone(), b"FLUSH".to_vec()], &mut out);
            multibulk(&[flush[2].clone(), b"FLUSH".to_vec()], &mut out);
            rc.write(&out);
            let _ = rc.next(Duration::from_secs(10));
            let _ = rc.next(Duration::from_secs(10));
        }
        let _ = self.direct.cmd(&[b"FLUSHALL"]);
        let _ = self.direct.cmd(&[b"SELECT", b"0"]);
        let mut out = Vec::new();
        multibulk(&[flush[0].clone()], &mut out);
        multibulk(&[flush[1].clone(), b"FLUSH".to_vec()], &mut out);
        multibulk(&[flush[2].clone(), b"FLUSH".to_vec()], &mut out);
        self.plain_admin.write(&out);
        for _ in 0..3 {
            let _ = self.plain_admin.next(Duration::from_secs(10));
        }
    }

    /// Runs `steps` on both sides from empty databases and fresh connections.
    pub fn run_sequence(&mut self, steps: &[Step]) -> Outcome {
        let log_from = std::fs::metadata(&self.stack.proxy.log).map_or(0, |m| m.len());
        let t0 = Instant::now();
        self.reset();
        let t1 = Instant::now();
        let mut outcome = Outcome::default();
        {
            let Harness {
                stack,
                plain,
                docs,
                direct,
                plain_admin,
                step_time,
                ..
            } = self;
            let (mut rc, mut rd) = match (
                Side::open(Which::Redcloak, stack.proxy.addr, Probe::Direct(direct)),
                Side::open(Which::Redis, plain.addr(), Probe::Plain(plain_admin)),
            ) {
                (Ok(a), Ok(b)) => (a, b),
                (a, b) => panic!(
                    "cannot connect: redcloak {:?}, redis {:?}",
                    a.err(),
                    b.err()
                ),
            };
            run_steps(docs, &mut rc, &mut rd, steps, step_time, &mut outcome);
        }
        if let Some(d) = &mut outcome.divergence {
            if d.first.0 == Event::Closed && d.class.starts_with("connection closed by redcloak") {
                // Name it by the reason redcloak logged, which is the root cause; the
                // command it happened at is incidental.
                if let Some(reason) = self.closing_reason(log_from) {
                    d.class = format!("connection closed by redcloak: \"{reason}\"");
                }
            }
        }
        let timed_out = outcome
            .divergence
            .as_ref()
            .is_some_and(|d| d.first.0 == Event::Timeout);
        if timed_out {
            self.timeouts += 1;
            // A missing reply: is redcloak busy doing nothing useful (a worker thread spinning
            // is invisible to other clients until every worker spins), or not answering
            // anyone? Then name it, and start over with a new stack so the run goes on.
            let t = Instant::now();
            let spinning = self.proxy_spinning();
            let hung = spinning || !self.proxy_answers();
            if std::env::var_os("REDCLOAK_DIFF_TRACE").is_some() {
                eprintln!(
                    "hang check: {:?} spinning={spinning} hung={hung}",
                    t.elapsed()
                );
            }
            if hung {
                if let Some(d) = &mut outcome.divergence {
                    // Not named after the command whose reply is missing: a reader stuck on a
                    // later command of the same pipeline never sends the earlier ones either.
                    d.class = if spinning {
                        "redcloak spins a CPU instead of answering".to_owned()
                    } else {
                        "redcloak stopped answering every client".to_owned()
                    };
                }
                self.restart();
                return outcome;
            }
        }
        let t2 = Instant::now();
        outcome.leaks = leak::scan_keyspace(&mut self.direct);
        let t3 = Instant::now();
        let token = format!("monitor-sync-{}", self.monitor_token());
        let seen = self.monitor.drain(&mut self.direct, &token);
        let sort_patterns = steps.iter().any(sorts_by_pattern);
        outcome.leaks.extend(
            seen.into_iter()
                .filter(|line| !(sort_patterns && leak::is_key_lookup(line))),
        );
        let t4 = Instant::now();
        self.profile[0] += t1 - t0;
        self.profile[1] += t2 - t1;
        self.profile[2] += t3 - t2;
        self.profile[3] += t4 - t3;
        outcome
    }

    /// The `reason` of the first "closing the session" line redcloak logged after byte `from`
    /// of its log.
    fn closing_reason(&self, from: u64) -> Option<String> {
        // The line may take a moment to be written.
        std::thread::sleep(Duration::from_millis(20));
        let log = std::fs::read(&self.stack.proxy.log).ok()?;
        let text = String::from_utf8_lossy(log.get(from as usize..)?);
        let line = text.lines().find(|l| l.contains("closing the session"))?;
        let reason = line.split("\"reason\":\"").nth(1)?.split('"').next()?;
        Some(reason.to_owned())
    }

    /// Whether a new client gets an answer to PING within a few seconds.
    pub fn proxy_answers(&self) -> bool {
        let Ok(mut c) = Conn::connect(self.stack.proxy.addr) else {
            return false;
        };
        let mut out = Vec::new();
        multibulk(&[b"PING".to_vec()], &mut out);
        c.write(&out);
        matches!(c.next(Duration::from_secs(3)), Event::Frame(_))
    }

    /// Whether redcloak, with no client sending anything, uses more than half a CPU.
    pub fn proxy_spinning(&self) -> bool {
        let ticks = || -> Option<u64> {
            let stat =
                std::fs::read_to_string(format!("/proc/{}/stat", self.stack.proxy.pid())).ok()?;
            // Fields after the command name (which is in parentheses): utime is 14, stime 15.
            let rest = stat.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        };
        let Some(before) = ticks() else { return false };
        std::thread::sleep(Duration::from_millis(500));
        let Some(after) = ticks() else { return false };
        // Clock ticks are 1/100 s: 25 ticks in 0.5 s is half a core.
        after.saturating_sub(before) >= 25
    }

    /// A new redcloak and TLS Redis (after redcloak hung).
    fn restart(&mut self) {
        // Stop the spinning one first: it would slow everything down meanwhile.
        let _ = self.stack.proxy.child.kill();
        let _ = self.stack.proxy.child.wait();
        let t = Instant::now();
        let stack = servers::start_stack();
        if std::env::var_os("REDCLOAK_DIFF_TRACE").is_some() {
            eprintln!("restart: {:?}", t.elapsed());
        }
        self.monitor = Monitor::start(&stack);
        self.direct = stack.direct();
        self.stack = stack;
    }

    fn monitor_token(&self) -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    }

    /// The generated steps of sequence `index` of a run seeded with `seed`.
    pub fn generate(&self, seed: u64, index: u64, len: usize) -> Vec<Step> {
        Generator::new(rng::sequence_seed(seed, index), &self.docs, &self.catalog).sequence(len)
    }

    /// Removes steps (and commands of pipelines) while the same class still shows.
    pub fn minimise(
        &mut self,
        steps: &[Step],
        original: Outcome,
        class: &str,
        budget: Duration,
    ) -> (Vec<Step>, Outcome) {
        let deadline = Instant::now() + budget;
        let mut best: Vec<Step> = steps.to_vec();
        let mut best_outcome = self.run_sequence(&best);
        if best_outcome.class().as_deref() != Some(class) {
            // Not reproducible on a fresh run (timing): keep the original.
            return (best, original);
        }
        if let Some(d) = &best_outcome.divergence {
            best.truncate(d.at.0 + 1);
        }
        let mut i = best.len();
        while i > 0 && Instant::now() < deadline {
            i -= 1;
            let mut cand = best.clone();
            cand.remove(i);
            let out = self.run_sequence(&cand);
            if out.class().as_deref() == Some(class) {
                best = cand;
                best_outcome = out;
            }
        }
        // Shorten pipelines.
        let mut i = 0;
        while i < best.len() && Instant::now() < deadline {
            if let Step::Send { cmds, chunks } = best[i].clone() {
                let mut j = cmds.len();
                while j > 1 && Instant::now() < deadline {
                    j -= 1;
                    let mut cand = best.clone();
                    if let Step::Send { cmds, .. } = &mut cand[i] {
                        if j < cmds.len() {
                            cmds.remove(j);
                        }
                    }
                    let out = self.run_sequence(&cand);
                    if out.class().as_deref() == Some(class) {
                        best = cand;
                        best_outcome = out;
                    }
                }
                if !chunks.is_empty() {
                    let mut cand = best.clone();
                    if let Step::Send { chunks, .. } = &mut cand[i] {
                        chunks.clear();
                    }
                    let out = self.run_sequence(&cand);
                    if out.class().as_deref() == Some(class) {
                        best = cand;
                        best_outcome = out;
                    }
                }
            }
            i += 1;
        }
        // Replay the final choice, so the outcome shown is the one of these steps.
        let out = self.run_sequence(&best);
        if out.class().as_deref() == Some(class) {
            best_outcome = out;
        }
        (best, best_outcome)
    }

    /// Checks redcloak's table against Redis's arities (a refusal by arity of a valid command
    /// would show as a divergence too; this names the row).
    pub fn table_arity_mismatches(&self) -> Vec<String> {
        let mut out = Vec::new();
        for spec in table::all() {
            let rows: Vec<(String, i32)> = if spec.subcommands.is_empty() {
                vec![(spec.name.to_ascii_lowercase(), spec.arity)]
            } else {
                let mut rows = vec![(spec.name.to_ascii_lowercase(), spec.arity)];
                rows.extend(spec.subcommands.iter().map(|s| {
                    (
                        format!("{}|{}", spec.name, s.name).to_ascii_lowercase(),
                        s.arity,
                    )
                }));
                rows
            };
            for (name, arity) in rows {
                if let Some(doc) = self.docs.get(&name) {
                    if doc.arity != 0 && doc.arity != i64::from(arity) {
                        out.push(format!(
                            "{name}: redcloak's table says {arity}, Redis says {}",
                            doc.arity
                        ));
                    }
                }
            }
        }
        out
    }
}

/// Runs `steps` (then the final sentinel) on both sides in lock step, comparing as it goes;
/// stops at the first divergence.
fn run_steps(
    docs: &Docs,
    rc: &mut Side<'_>,
    rd: &mut Side<'_>,
    steps: &[Step],
    step_time: &mut BTreeMap<String, (u64, Duration)>,
    outcome: &mut Outcome,
) {
    let final_step = rc.final_step();
    let mut refusals = BTreeMap::new();
    for (i, step) in steps.iter().chain(std::iter::once(&final_step)).enumerate() {
        if rc.ended() && rd.ended() {
            break;
        }
        outcome.commands += step_len(step) as u64;
        let began = Instant::now();
        let a = rc.step(step, &[]);
        let plan = plan_for_redis(docs, &a, step);
        let b = rd.step(step, &plan);
        let what = match step {
            Step::Send { cmds, .. } if cmds.len() == 1 => cmds[0].display(docs),
            Step::Send { .. } => "(pipeline)".to_owned(),
            Step::Other(_) => "(second connection)".to_owned(),
            Step::Raw { .. } => "(raw)".to_owned(),
            Step::Unblock { blocked, .. } => format!("(unblock {})", blocked.display(docs)),
        };
        let t = step_time.entry(what).or_insert((0, Duration::ZERO));
        t.0 += 1;
        t.1 += began.elapsed();
        let same_frames = run::same_frames(&a, &b);
        for (j, (x, y)) in a.into_iter().zip(b).enumerate() {
            let d = compare(docs, (i, j), &x, &y, &mut refusals);
            outcome.exchanges.push((x, y));
            if let Some(mut d) = d {
                if same_frames && !d.class.starts_with("unknown-") {
                    // Every frame is there on both sides, in another order.
                    d.class = run::REORDERED.to_owned();
                }
                outcome.divergence = Some(d);
                return;
            }
        }
    }
}

/// The harness checking itself: the same generator against *two plain Redis servers*, for
/// `budget`. Any divergence found is a missing normalisation (or a harness bug), since two
/// Redis servers given the same commands must agree.
pub fn self_check(seed: u64, budget: Duration, sequence_len: usize) -> Vec<(String, String)> {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (
        PlainRedis::start(dir.path(), REDIS_ARGS),
        PlainRedis::start(dir.path(), REDIS_ARGS),
    );
    let connect = |r: &PlainRedis| Conn::connect(r.addr()).expect("connect to a plain Redis");
    let (mut admin_a, mut admin_b) = (connect(&a), connect(&b));
    let docs = Docs::load(&mut admin_b).expect("COMMAND DOCS");
    let catalog = Catalog::new();
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    let mut step_time = BTreeMap::new();
    let mut index = 0;
    while started.elapsed() < budget {
        let steps =
            Generator::new(rng::sequence_seed(seed, index), &docs, &catalog).sequence(sequence_len);
        index += 1;
        if subscribes_in_multi(&steps) {
            // Redis 7.0 queues (P|S)SUBSCRIBE in MULTI and then writes its confirmations into
            // EXEC's reply as extra elements, which no client can frame. redcloak refuses
            // them; between two Redis servers they only desynchronise the reader.
            continue;
        }
        for admin in [&mut admin_a, &mut admin_b] {
            let mut out = Vec::new();
            multibulk(&[b"FLUSHALL".to_vec()], &mut out);
            admin.write(&out);
            let _ = admin.next(Duration::from_secs(10));
        }
        let mut outcome = Outcome::default();
        {
            let mut sa = Side::open(Which::Redis, a.addr(), Probe::Plain(&mut admin_a)).expect("A");
            let mut sb = Side::open(Which::Redis, b.addr(), Probe::Plain(&mut admin_b)).expect("B");
            run_steps(
                &docs,
                &mut sa,
                &mut sb,
                &steps,
                &mut step_time,
                &mut outcome,
            );
        }
        if let Some(d) = &outcome.divergence {
            found
                .entry(d.class.clone())
                .or_insert_with(|| render_outcome(&docs, &steps, &outcome));
        }
    }
    found.into_iter().collect()
}

/// Whether a sequence subscribes between MULTI and EXEC/DISCARD (roughly: by command names).
fn subscribes_in_multi(steps: &[Step]) -> bool {
    let mut in_multi = false;
    for step in steps {
        let Step::Send { cmds, .. } = step else {
            continue;
        };
        for c in cmds {
            if model::is(c, "MULTI") {
                in_multi = true;
            } else if model::is(c, "EXEC") || model::is(c, "DISCARD") || model::is(c, "RESET") {
                in_multi = false;
            } else if in_multi && c.name().contains("SUBSCRIBE") {
                return true;
            }
        }
    }
    false
}

/// One class of divergence.
#[derive(Debug, Clone)]
pub struct Found {
    /// How many sequences showed it.
    pub count: u64,
    /// The sequence it was first seen in.
    pub sequence: u64,
    /// Minimal steps reproducing it.
    pub steps: Vec<Step>,
    /// Their outcome.
    pub outcome: Outcome,
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The run seed.
    pub seed: u64,
    /// Sequences run.
    pub sequences: u64,
    /// Commands sent to each side.
    pub commands: u64,
    /// By class.
    pub found: BTreeMap<String, Found>,
    /// Static findings (table against Redis's docs).
    pub table: Vec<String>,
    /// redcloak's refusals by command.
    pub refusals: BTreeMap<String, u64>,
    /// Commands generated by display name.
    pub generated: BTreeMap<String, u64>,
    /// Distinct (command, option word) pairs sent.
    pub tokens: BTreeSet<(String, String)>,
    /// Option words in Redis's grammar of the commands generated.
    pub tokens_possible: u64,
    /// Commands sent inline, in pipelines of several, after `HELLO 3`, as raw framing.
    pub forms: BTreeMap<&'static str, u64>,
    /// Wall time.
    pub elapsed: Duration,
    /// Divergence classes listed as known.
    pub known: BTreeSet<String>,
    /// The end of redcloak's log (shown when something was found).
    pub log_tail: Vec<String>,
    /// Time generating, running, counting, minimising.
    pub phases: [Duration; 4],
}

impl Report {
    /// Classes that fail the run (not in the known list).
    pub fn failing(&self) -> Vec<&String> {
        self.found
            .keys()
            .filter(|c| !self.known.contains(*c))
            .chain(self.table.iter().filter(|t| !self.known.contains(*t)))
            .collect()
    }

    fn count(&mut self, docs: &Docs, outcome: &Outcome) {
        let mut resp3 = false;
        for (rc, _) in &outcome.exchanges {
            match rc.kind {
                Kind::Raw(_) => {
                    *self.forms.entry("raw framing steps").or_default() += 1;
                    continue;
                }
                Kind::Other => *self.forms.entry("second-connection commands").or_default() += 1,
                Kind::Main => {}
            }
            let cmd = &rc.cmd;
            let display = cmd.display(docs);
            *self.generated.entry(display.clone()).or_default() += 1;
            if cmd.inline {
                *self.forms.entry("inline commands").or_default() += 1;
            }
            if model::is(cmd, "HELLO") && cmd.args.get(1).map(|a| &a[..]) == Some(b"3") {
                resp3 = true;
            }
            if resp3 {
                *self.forms.entry("commands in RESP3").or_default() += 1;
            }
            if rc.refused {
                *self.refusals.entry(display.clone()).or_default() += 1;
            }
            let name = display.replace(' ', "|");
            if let Some(doc) = docs.get(&name) {
                for t in doc.tokens() {
                    if cmd.args.iter().skip(1).any(|a| gen::strcasecmp_eq(a, &t)) {
                        self.tokens.insert((display.clone(), t));
                    }
                }
            }
        }
    }

    /// A human-readable summary, with a reproduction per class.
    pub fn render(&self, docs: &Docs) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "differential run: seed 0x{:x}, {} sequences, {} commands per side, {:.1} s (generating {:.1} s, running {:.1} s, counting {:.1} s, minimising {:.1} s)",
            self.seed,
            self.sequences,
            self.commands,
            self.elapsed.as_secs_f64(),
            self.phases[0].as_secs_f64(),
            self.phases[1].as_secs_f64(),
            self.phases[2].as_secs_f64(),
            self.phases[3].as_secs_f64(),
        );
        let _ = writeln!(
            s,
            "coverage: {} distinct commands/subcommands; {} of {} option words of those commands; {:?}",
            self.generated.len(),
            self.tokens.len(),
            self.tokens_possible,
            self.forms
        );
        let refused: u64 = self.refusals.values().sum();
        let _ = writeln!(
            s,
            "redcloak refusals: {refused} ({} commands): {:?}",
            self.refusals.len(),
            self.refusals
        );
        for t in &self.table {
            let _ = writeln!(s, "\n== table arity: {t}");
        }
        if !self.found.is_empty() || !self.table.is_empty() {
            let _ = writeln!(s, "\nend of redcloak's log:");
            for l in &self.log_tail {
                let _ = writeln!(s, "  {}", clip(l.clone()));
            }
        }
        for (class, f) in &self.found {
            let known = if self.known.contains(class) {
                " [KNOWN]"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "\n== {class}{known} ({} sequence(s); first: sequence {}, replay with REDCLOAK_DIFF_SEED=0x{:x} REDCLOAK_DIFF_ONLY={})",
                f.count, f.sequence, self.seed, f.sequence
            );
            s.push_str(&render_outcome(docs, &f.steps, &f.outcome));
        }
        s
    }
}

/// Long texts are cut in reports unless `REDCLOAK_DIFF_FULL=1`.
fn clip(s: String) -> String {
    if std::env::var_os("REDCLOAK_DIFF_FULL").is_none() && s.chars().count() > 600 {
        let mut c: String = s.chars().take(600).collect();
        c.push('…');
        c
    } else {
        s
    }
}

fn render_cmd(cmd: &Cmd) -> String {
    let mut out = Vec::new();
    if !(cmd.inline && wire::inline(&cmd.args, &mut out).is_some()) {
        out.clear();
        multibulk(&cmd.args, &mut out);
    }
    clip(escape(&out))
}

fn render_events(events: &[Event]) -> String {
    let parts: Vec<String> = events.iter().map(|e| clip(format!("{e:?}"))).collect();
    if parts.is_empty() {
        "(nothing)".to_owned()
    } else {
        parts.join(" ")
    }
}

/// The steps and both reply streams, command by command.
pub fn render_outcome(docs: &Docs, steps: &[Step], outcome: &Outcome) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "steps ({}):", steps.len());
    for (i, step) in steps.iter().enumerate() {
        let line = match step {
            Step::Send { cmds, chunks } => {
                let c: Vec<String> = cmds.iter().map(render_cmd).collect();
                let how = if cmds.len() > 1 { "pipeline" } else { "send" };
                let split = if chunks.is_empty() {
                    String::new()
                } else {
                    format!(" in writes of {chunks:?}")
                };
                format!("{how}{split}: \"{}\"", c.join(""))
            }
            Step::Other(c) => format!("second connection: \"{}\"", render_cmd(c)),
            Step::Raw { bytes, label } => format!(
                "raw bytes ({label}): \"{}\" + PING sentinel",
                clip(escape(bytes))
            ),
            Step::Unblock { blocked, unblocker } => format!(
                "send \"{}\"; once blocked, second connection: \"{}\"",
                render_cmd(blocked),
                render_cmd(unblocker)
            ),
        };
        let _ = writeln!(s, "  {}. {line}", i + 1);
    }
    let _ = writeln!(s, "replies:");
    for (rc, rd) in &outcome.exchanges {
        let who = match rc.kind {
            Kind::Main => "",
            Kind::Other => "(second connection) ",
            Kind::Raw(_) => "(raw) ",
        };
        let _ = writeln!(s, "  {who}{}", clip(rc.cmd.display(docs)));
        if !rc.messages.is_empty() || !rd.messages.is_empty() {
            let _ = writeln!(s, "    messages redcloak: {}", render_events(&rc.messages));
            let _ = writeln!(s, "    messages redis:    {}", render_events(&rd.messages));
        }
        let sub = if rd.cmd != rc.cmd {
            format!(" (sent: \"{}\")", render_cmd(&rd.cmd))
        } else {
            String::new()
        };
        let _ = writeln!(s, "    redcloak: {}", render_events(&rc.replies));
        let _ = writeln!(s, "    redis:    {}{sub}", render_events(&rd.replies));
    }
    if let Some(d) = &outcome.divergence {
        let _ = writeln!(
            s,
            "first difference (step {}, command {}): redcloak {} / redis {}",
            d.at.0 + 1,
            d.at.1 + 1,
            clip(format!("{:?}", d.first.0)),
            clip(format!("{:?}", d.first.1))
        );
    }
    for l in &outcome.leaks {
        let _ = writeln!(s, "plaintext in Redis: {l}");
    }
    s
}

/// Runs sequences until the budget is spent; returns what was found.
pub fn run(config: &Config) -> (Report, Harness) {
    let started = Instant::now();
    let mut h = Harness::start();
    let mut report = Report {
        seed: config.seed,
        known: config.known.clone(),
        table: h.table_arity_mismatches(),
        ..Report::default()
    };
    report.tokens_possible = h
        .catalog
        .candidates
        .iter()
        .filter_map(|c| h.docs.get(&c.doc_name))
        .map(|d| d.tokens().len() as u64)
        .sum();
    let mut last_progress = Instant::now();
    let mut index = config.only.unwrap_or(0);
    loop {
        if report.commands >= config.max_commands || started.elapsed() >= config.max_time {
            break;
        }
        let t0 = Instant::now();
        let steps = h.generate(config.seed, index, config.sequence_len);
        let t1 = Instant::now();
        let outcome = h.run_sequence(&steps);
        let t2 = Instant::now();
        report.sequences += 1;
        report.commands += outcome.commands;
        report.count(&h.docs, &outcome);
        let t3 = Instant::now();
        report.phases[0] += t1 - t0;
        report.phases[1] += t2 - t1;
        if std::env::var_os("REDCLOAK_DIFF_TRACE").is_some() {
            eprintln!("sequence {index}: {:?} {:?}", t2 - t1, outcome.class());
        }
        report.phases[2] += t3 - t2;
        if let Some(class) = outcome.class() {
            let seen = report.found.contains_key(&class);
            if seen {
                if let Some(f) = report.found.get_mut(&class) {
                    f.count += 1;
                }
            } else {
                let t4 = Instant::now();
                let left = config.max_time.saturating_sub(started.elapsed());
                let (steps, outcome) = if config.minimise && !left.is_zero() {
                    h.minimise(&steps, outcome, &class, left.min(Duration::from_secs(30)))
                } else {
                    (steps, outcome)
                };
                report.found.insert(
                    class,
                    Found {
                        count: 1,
                        sequence: index,
                        steps,
                        outcome,
                    },
                );
                report.phases[3] += t4.elapsed();
            }
        }
        if let Some(every) = config.progress {
            if last_progress.elapsed() >= every {
                last_progress = Instant::now();
                eprintln!(
                    "[{:>6.0} s] {} sequences, {} commands, {} classes: {:?}",
                    started.elapsed().as_secs_f64(),
                    report.sequences,
                    report.commands,
                    report.found.len(),
                    report
                        .found
                        .iter()
                        .map(|(c, f)| format!("{c} ×{}", f.count))
                        .collect::<Vec<_>>()
                );
            }
        }
        if config.only.is_some() {
            break;
        }
        index += 1;
    }
    if let Ok(Some(status)) = h.stack.proxy.child.try_wait() {
        report.found.insert(
            format!("redcloak exited ({status})"),
            Found {
                count: 1,
                sequence: index,
                steps: Vec::new(),
                outcome: Outcome::default(),
            },
        );
    }
    let log = h.stack.proxy.log_text();
    if let Ok(path) = std::env::var("REDCLOAK_DIFF_SAVE_LOG") {
        let _ = std::fs::write(path, &log);
    }
    let lines: Vec<&str> = log.lines().collect();
    report.log_tail = lines[lines.len().saturating_sub(40)..]
        .iter()
        .map(|l| l.to_string())
        .collect();
    if log.contains("panicked") {
        report.found.insert(
            "redcloak panicked".to_owned(),
            Found {
                count: 1,
                sequence: index,
                steps: Vec::new(),
                outcome: Outcome {
                    leaks: log
                        .lines()
                        .filter(|l| l.contains("panicked"))
                        .map(str::to_owned)
                        .collect(),
                    ..Outcome::default()
                },
            },
        );
    }
    if log.contains(gen::MARK) {
        report.found.insert(
            "plaintext value in redcloak's log".to_owned(),
            Found {
                count: 1,
                sequence: index,
                steps: Vec::new(),
                outcome: Outcome::default(),
            },
        );
    }
    report.elapsed = started.elapsed();
    if let Some(hold) = std::env::var("REDCLOAK_DIFF_HOLD")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        // Debugging: keep both servers up for a while to poke at them.
        eprintln!(
            "holding {hold} s: redcloak on {}, TLS Redis on port {}, plain Redis on {}, dir {}",
            h.stack.proxy.addr,
            h.stack.redis.port,
            h.plain.addr(),
            h.stack.dir.path().display()
        );
        std::thread::sleep(Duration::from_secs(hold));
    }
    (report, h)
}

impl Harness {
    /// Writes `value` under `k:planted` straight to Redis (around redcloak) and returns what
    /// the plaintext checks report (for the harness's own test).
    pub fn plant_and_check(&mut self, value: &[u8]) -> Vec<String> {
        self.reset();
        self.direct.set(b"k:planted", value);
        let mut found = leak::scan_keyspace(&mut self.direct);
        found.extend(self.monitor.drain(&mut self.direct, "plant-sync"));
        found
    }
}
