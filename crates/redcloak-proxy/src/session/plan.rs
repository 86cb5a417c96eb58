//! The planner: a pure function from a parsed request and the session's state to a plan —
//! forward (with which transforms, expecting which replies), answer here, or refuse — using
//! only the command table. No I/O, no shared state: the session's I/O loops carry plans out.
//!
//! Request path, in the phases pingora names (request filter → upstream → response filter):
//! [`plan`] is the request filter; `connected.rs` / `degraded.rs` are the upstream; the reply
//! side (`replies.rs`) is the response filter, driven by what the plan says to expect.

use bytes::Bytes;
use redcloak_commands::resp::Frame;
use redcloak_commands::table::{
    self, Action, CacheOp, Channels, CommandSpec, Effect, KeyUse, Local, Resolved, ScriptOp, Shape,
};
use redcloak_commands::transform::{self, Plan, Queued};
use redcloak_commands::words;
use redcloak_crypto::ValueFormat;

use super::state::{ConnState, Transition, TxItem};
use crate::error::DataError;
use crate::fallback::learn;

/// What the planner needs besides the session's state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx {
    /// The database a new connection is in (`REDIS_URL`'s `/db`).
    pub default_db: u32,
    /// Redis can be used now (false while serving from the fallback).
    pub up: bool,
    /// Keys in the ring the request will be encrypted with: during a rotation (more than
    /// one), member lookups carry one candidate per key and their replies are folded
    /// (`transform::reply_plan`).
    pub ring_keys: usize,
    /// The format the ring writes new values in: while it is AES-GCM, commands that make
    /// Redis move values elsewhere are refused (`transform::move_refusal`).
    pub format: ValueFormat,
}

/// The plan for one request.
#[derive(Debug)]
pub(crate) struct Planned {
    /// What to do.
    pub step: Step,
    /// How the request-side state changes once the step is carried out.
    pub then: Transition,
    /// The metrics label: the command's table name (its container's, for a subcommand), or
    /// `unknown`.
    pub label: &'static str,
}

/// What to do with one request.
#[derive(Debug)]
pub(crate) enum Step {
    /// Send it to Redis (or, while Redis is down, to the fallback).
    Forward(Box<Forward>),
    /// Compute it in redcloak, atomically (`atomic::rmw`), after every earlier command.
    Emulate(Box<Forward>),
    /// A script or function command, carried out by redcloak (`scripts`), after every earlier
    /// command.
    Script(Box<Forward>),
    /// `EXEC` of a queued transaction: MULTI, the queued commands and EXEC, sent to Redis in
    /// one write; EXEC's reply decoded by `plan`.
    Exec(Box<ExecBatch>),
    /// `EXEC` of a transaction that redcloak must carry out itself (it contains emulated
    /// commands): atomically, on scratch copies (`atomic::scratch`).
    Transaction(Box<TxRun>),
    /// Answer it here, in order.
    Answer(Local2),
    /// Answer it here, then close the connection once every earlier reply is out.
    Close(Local2),
}

/// A local answer, and the name Redis would use for the command in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Local2 {
    /// The answer.
    pub answer: Answer,
    /// Lower-case full name (`echo`, `command|getkeys`), for the error Redis gives commands
    /// that are not allowed in RESP2 pub/sub mode; `None` when that rule does not apply.
    pub pubsub_name: Option<String>,
}

impl Local2 {
    pub(crate) fn plain(answer: Answer) -> Local2 {
        Local2 {
            answer,
            pubsub_name: None,
        }
    }
}

/// An answer redcloak gives itself. Rendered when its turn comes, with the connection's
/// state at that point (protocol, pub/sub mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// `+OK`.
    Ok,
    /// `+QUEUED`: a command answered here was queued in a transaction.
    Queued,
    /// `PING [message]`: `+PONG`, the message, or (RESP2 pub/sub mode) `["pong", message]`.
    Pong(Option<Bytes>),
    /// A reply already built (ECHO's message, COMMAND GETKEYS's keys).
    Frame(Frame),
    /// The nil array: `EXEC` of a transaction whose WATCH was lost.
    NilArray,
    /// An error.
    Error(DataError),
}

/// A queued transaction for Redis.
#[derive(Debug)]
pub(crate) struct ExecBatch {
    /// The queued commands, as queued (encoded when queued).
    pub items: Vec<TxItem>,
    /// How EXEC's reply is decoded.
    pub plan: Plan,
}

/// A transaction redcloak carries out itself.
#[derive(Debug)]
pub(crate) struct TxRun {
    /// The queued commands.
    pub items: Vec<TxItem>,
    /// The client holds a WATCH: a conflict means EXEC fails (nil), as in Redis.
    pub watching: bool,
}

/// A request for Redis.
#[derive(Debug)]
pub(crate) struct Forward {
    /// Its row (and container, for a subcommand).
    pub spec: &'static CommandSpec,
    pub parent: Option<&'static CommandSpec>,
    /// The metrics and message name (`GET`, `CLIENT`).
    pub name: &'static str,
    /// What to send (HELLO without its AUTH part; DISCARD for an aborted EXEC).
    pub args: Vec<Bytes>,
    /// Encrypt the row's value arguments (false: send `args` as they are).
    pub encrypt: bool,
    /// How many replies come back.
    pub expect: Expect,
    /// How the reply is decoded.
    pub plan: Plan,
    /// Redis's reply is replaced by this answer (EXEC of an aborted transaction).
    pub replace: Option<Local2>,
    /// What the reply changes on the reply side.
    pub on_reply: OnReply,
    /// Its keys, by the table's key positions.
    pub keys: KeyUse,
    /// The shadow cache learns from its reply (a top-level command outside MULTI).
    pub learn: bool,
    /// RESET: redcloak authenticates the connection again right after it.
    pub reauth: bool,
}

/// How many upstream replies a forwarded command gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// One reply.
    One,
    /// Pub/sub confirmations of this kind: one per name, or (`None`: an UNSUBSCRIBE without
    /// names) one per current subscription of the kind, at least one.
    Confirmations {
        kind: Channels,
        names: Option<usize>,
    },
}

/// What a reply changes on the reply side, when it is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnReply {
    None,
    /// The database.
    Select(u32),
    /// The protocol (`Some(true)`: RESP3).
    Hello(Option<bool>),
    /// Everything back to a new connection's state.
    Reset,
}

/// Plans one request.
/// Whether a request must run on a connection of the client's own rather than one shared
/// with other clients (DESIGN.md §2): anything that leaves state on the connection (SELECT,
/// HELLO, WATCH, CLIENT…), may block it, changes how many replies follow (SUBSCRIBE, `CLIENT
/// REPLY`), or that redcloak carries out with WATCH (emulated commands, scripts, transactions
/// holding them). Refusals and local answers need no connection; a transaction without WATCH
/// is sent whole at EXEC and runs atomically on any connection. `Some(why)`: the command's
/// metrics label, or `state` when the connection's state alone is the reason.
pub(crate) fn needs_own_connection(
    args: &[Bytes],
    st: &ConnState,
    ctx: &Ctx,
) -> Option<&'static str> {
    if st.db != ctx.default_db || st.resp3 || st.subscribed || st.watching {
        return Some("state");
    }
    let Resolved::Known { spec, parent } = table::resolve(args) else {
        return None;
    };
    if !spec.arity_ok(args.len()) {
        return None;
    }
    let own = match transform::action(spec, ctx.format) {
        Action::Refuse(_) | Action::Local(_) => false,
        Action::Emulate | Action::Script(_) => true,
        Action::Forward => match spec.effect {
            Effect::None | Effect::Publish => {
                matches!(
                    parent.unwrap_or(spec).family,
                    table::Family::Connection | table::Family::Transactions
                ) || table::key_spec(spec, parent).is_some_and(|keys| keys.blocking)
            }
            Effect::Multi | Effect::Discard => false,
            Effect::Exec => st.tx.by_redcloak,
            Effect::Select
            | Effect::Watch
            | Effect::Unwatch
            | Effect::Hello
            | Effect::Reset
            | Effect::Subscribe(_)
            | Effect::Unsubscribe(_) => true,
        },
    };
    own.then_some(parent.map_or(spec.name, |p| p.name))
}

pub(crate) fn plan(args: Vec<Bytes>, st: &ConnState, ctx: &Ctx) -> Planned {
    let (spec, parent) = match table::resolve(&args) {
        Resolved::Known { spec, parent } => (spec, parent),
        Resolved::Unknown => {
            return refuse(transform::unknown_command_message(&args), "unknown");
        }
        Resolved::UnknownSubcommand(container) => {
            return refuse(transform::unknown_subcommand_message(&args), container.name);
        }
        Resolved::MissingSubcommand(container) => {
            return refuse(transform::arity_message(container, None), container.name);
        }
    };
    let label = parent.map_or(spec.name, |p| p.name);
    if !spec.arity_ok(args.len()) {
        return refuse(transform::arity_message(spec, parent), label);
    }
    match transform::action(spec, ctx.format) {
        Action::Refuse(refusal) => refuse(
            transform::refusal_message(&table::display_name(spec, parent), &refusal),
            label,
        ),
        Action::Local(local) => plan_local(local, args, spec, parent, st, ctx, label),
        Action::Emulate | Action::Forward | Action::Script(_) if !ctx.up => {
            plan_down(args, spec, parent, st, label)
        }
        Action::Emulate | Action::Forward | Action::Script(_) if st.tx.in_multi => {
            plan_queued(args, spec, parent, st, ctx, label)
        }
        Action::Script(_) => Planned {
            step: Step::Script(Box::new(Forward {
                keys: table::keys_of(spec, parent, &args),
                ..Forward::new(spec, parent, label, args)
            })),
            then: Transition::None,
            label,
        },
        Action::Emulate => Planned {
            step: Step::Emulate(Box::new(Forward {
                keys: table::keys_of(spec, parent, &args),
                ..Forward::new(spec, parent, label, args)
            })),
            then: Transition::None,
            label,
        },
        Action::Forward => plan_forward(args, spec, parent, st, ctx, label),
    }
}

/// A refusal: an error answered here; inside MULTI it aborts the transaction, as Redis does
/// with commands it rejects while queueing.
fn refuse(text: String, label: &'static str) -> Planned {
    Planned {
        step: Step::Answer(Local2::plain(Answer::Error(DataError::Refused(text)))),
        then: Transition::Poison,
        label,
    }
}

fn answer(answer: Answer, then: Transition, label: &'static str) -> Planned {
    Planned {
        step: Step::Answer(Local2::plain(answer)),
        then,
        label,
    }
}

/// Lower-case full name, as Redis names commands in errors.
fn full_name(spec: &CommandSpec, parent: Option<&CommandSpec>) -> String {
    match parent {
        Some(p) => format!("{}|{}", p.name, spec.name),
        None => spec.name.to_owned(),
    }
    .to_ascii_lowercase()
}

fn plan_local(
    local: Local,
    args: Vec<Bytes>,
    spec: &'static CommandSpec,
    parent: Option<&'static CommandSpec>,
    st: &ConnState,
    ctx: &Ctx,
    label: &'static str,
) -> Planned {
    let frame =
        match local {
            Local::Quit => {
                return Planned {
                    step: Step::Close(Local2::plain(Answer::Ok)),
                    then: Transition::None,
                    label,
                }
            }
            Local::Auth if st.tx.in_multi => return refuse(
                "ERR redcloak: AUTH inside MULTI is not supported (redcloak answers AUTH itself)"
                    .into(),
                label,
            ),
            // The client's credentials are dropped here: never forwarded, never logged.
            Local::Auth => {
                return Planned {
                    step: Step::Answer(Local2 {
                        answer: Answer::Ok,
                        pubsub_name: Some(full_name(spec, parent)),
                    }),
                    then: Transition::None,
                    label,
                }
            }
            // PING's arity is -1 in Redis's table: the count is PING's own check, made when
            // it runs (inside MULTI: at EXEC).
            Local::Ping if args.len() > 2 => {
                return failed_when_run(transform::arity_message(spec, parent), st, label);
            }
            Local::Ping if args.len() == 1 && ctx.up => {
                // A bare PING checks the whole path: forwarded (queued, inside MULTI).
                return if st.tx.in_multi {
                    plan_queued(args, spec, parent, st, ctx, label)
                } else {
                    plan_forward(args, spec, parent, st, ctx, label)
                };
            }
            Local::Ping => {
                let msg = args.get(1).cloned();
                if st.tx.in_multi {
                    let reply = match msg {
                        Some(m) => Frame::Bulk(m),
                        None => Frame::Simple(Bytes::from_static(b"PONG")),
                    };
                    return queued_locally(reply, label);
                }
                return Planned {
                    step: Step::Answer(Local2::plain(Answer::Pong(msg))),
                    then: Transition::None,
                    label,
                };
            }
            Local::Echo => Frame::Bulk(args[1].clone()),
            Local::GetKeys { flags } => match table::command_getkeys(&args[2..], flags) {
                Ok(frame) => frame,
                Err(text) => return failed_when_run(text.to_owned(), st, label),
            },
        };
    if st.tx.in_multi {
        return queued_locally(frame, label);
    }
    Planned {
        step: Step::Answer(Local2 {
            answer: Answer::Frame(frame),
            pubsub_name: Some(full_name(spec, parent)),
        }),
        then: Transition::None,
        label,
    }
}

/// An error Redis gives when it runs a command redcloak answers itself, not when it queues
/// it: inside MULTI the command is queued (`+QUEUED`) and the error becomes its element of
/// EXEC's reply, without aborting the transaction; outside, it is the answer.
fn failed_when_run(text: String, st: &ConnState, label: &'static str) -> Planned {
    if st.tx.in_multi {
        queued_locally(Frame::Error(Bytes::from(text)), label)
    } else {
        refuse(text, label)
    }
}

/// A command answered here inside MULTI: `+QUEUED` now, its result in EXEC's reply.
fn queued_locally(reply: Frame, label: &'static str) -> Planned {
    Planned {
        step: Step::Answer(Local2::plain(Answer::Queued)),
        then: Transition::QueueLocal(reply),
        label,
    }
}

/// While Redis is unreachable: a transaction carried over from the lost connection can only
/// be ended; state changes cannot be honoured; everything else goes to the fallback.
fn plan_down(
    args: Vec<Bytes>,
    spec: &'static CommandSpec,
    parent: Option<&'static CommandSpec>,
    st: &ConnState,
    label: &'static str,
) -> Planned {
    let try_again = || DataError::TryAgain {
        command: table::display_name(spec, parent),
    };
    if st.tx.in_multi {
        return match spec.effect {
            Effect::Exec => answer(
                Answer::Error(DataError::ExecAbortLost),
                Transition::EndTx,
                label,
            ),
            Effect::Discard => answer(Answer::Ok, Transition::EndTx, label),
            _ => answer(Answer::Error(try_again()), Transition::Poison, label),
        };
    }
    if !matches!(spec.effect, Effect::None | Effect::Publish)
        || spec.cache == CacheOp::None
        || parent.is_some()
    {
        return answer(Answer::Error(try_again()), Transition::None, label);
    }
    Planned {
        step: Step::Forward(Box::new(Forward {
            encrypt: true,
            ..Forward::new(spec, parent, label, args)
        })),
        then: Transition::None,
        label,
    }
}

impl Forward {
    /// `args` for Redis as they are, expecting one reply passed on unchanged.
    fn new(
        spec: &'static CommandSpec,
        parent: Option<&'static CommandSpec>,
        name: &'static str,
        args: Vec<Bytes>,
    ) -> Forward {
        Forward {
            spec,
            parent,
            name,
            keys: KeyUse::default(),
            args,
            encrypt: false,
            expect: Expect::One,
            plan: Plan::Shape(&Shape::Pass),
            replace: None,
            on_reply: OnReply::None,
            learn: false,
            reauth: false,
        }
    }
}

fn plan_forward(
    args: Vec<Bytes>,
    spec: &'static CommandSpec,
    parent: Option<&'static CommandSpec>,
    st: &ConnState,
    ctx: &Ctx,
    label: &'static str,
) -> Planned {
    let error = |text: &str| {
        answer(
            Answer::Error(DataError::Refused(text.to_owned())),
            Transition::None,
            label,
        )
    };
    match spec.effect {
        // Redis sees the transaction only at EXEC: MULTI is answered here.
        Effect::Multi => return answer(Answer::Ok, Transition::Multi, label),
        Effect::Exec => return error("ERR EXEC without MULTI"),
        Effect::Discard => return error("ERR DISCARD without MULTI"),
        _ => {}
    }
    if let Some(text) = transform::request_error(spec, &args) {
        // Arguments whose values or members cannot be found are never forwarded.
        return refuse(text.to_owned(), label);
    }
    if let Some(text) = transform::move_refusal(spec, ctx.format) {
        return refuse(text, label);
    }
    let mut f = Forward::new(spec, parent, label, args);
    let then = match spec.effect {
        Effect::None | Effect::Publish => plain(&mut f, st, ctx),
        Effect::Hello => match strip_hello_auth(&f.args) {
            Ok(stripped) => {
                // The protocol changes only if Redis accepts it (the reply side learns that).
                let version = stripped.get(1).and_then(|v| words::int(v));
                f.on_reply = OnReply::Hello(version.map(|v| v == 3));
                f.args = stripped;
                Transition::None
            }
            Err(text) => return refuse(text, label),
        },
        effect => state_change(effect, &mut f, ctx),
    };
    Planned {
        step: Step::Forward(Box::new(f)),
        then,
        label,
    }
}

/// A command between MULTI and EXEC: queued here (Redis sees the whole transaction at
/// EXEC), except what Redis runs at once (EXEC, DISCARD, RESET) or refuses.
fn plan_queued(
    args: Vec<Bytes>,
    spec: &'static CommandSpec,
    parent: Option<&'static CommandSpec>,
    st: &ConnState,
    ctx: &Ctx,
    label: &'static str,
) -> Planned {
    match spec.effect {
        Effect::Exec => return plan_exec(spec, parent, st, ctx, label),
        Effect::Discard => return end_tx(Answer::Ok, spec, parent, st, label),
        Effect::Multi => {
            return answer(
                Answer::Error(DataError::Refused(
                    "ERR MULTI calls can not be nested".into(),
                )),
                Transition::None,
                label,
            )
        }
        Effect::Reset => return plan_forward(args, spec, parent, st, ctx, label),
        _ => {}
    }
    if let Some(refused) = refused_in_multi(spec, label) {
        return refused;
    }
    let by_redcloak = match transform::action(spec, ctx.format) {
        Action::Emulate | Action::Script(ScriptOp::Eval { .. } | ScriptOp::Fcall { .. }) => true,
        Action::Script(_) => {
            return refuse(
                format!(
                    "ERR redcloak: {} inside MULTI is not supported; run it before MULTI",
                    table::display_name(spec, parent)
                ),
                label,
            )
        }
        _ => false,
    };
    if let Some(text) = transform::move_refusal(spec, ctx.format) {
        return refuse(text, label);
    }
    if !by_redcloak {
        if let Some(text) = transform::request_error(spec, &args) {
            // Redis rejects such arguments when it executes the command: queued, with its
            // error as EXEC's element. A refusal aborts the transaction.
            return if transform::is_refusal(text) {
                refuse(text.to_owned(), label)
            } else {
                queued_locally(Frame::Error(Bytes::from_static(text.as_bytes())), label)
            };
        }
    }
    let shape = spec.reply.shape(&args);
    Planned {
        step: Step::Answer(Local2::plain(Answer::Queued)),
        then: Transition::Queue {
            args,
            shape,
            by_redcloak,
        },
        label,
    }
}

/// `EXEC` of the queued transaction.
fn plan_exec(
    spec: &'static CommandSpec,
    parent: Option<&'static CommandSpec>,
    st: &ConnState,
    ctx: &Ctx,
    label: &'static str,
) -> Planned {
    if st.tx.poisoned {
        let abort = "EXECABORT Transaction discarded because of previous errors.";
        return end_tx(
            Answer::Error(DataError::Refused(abort.into())),
            spec,
            parent,
            st,
            label,
        );
    }
    if st.tx.watch_lost {
        // As if a watched key had changed: the transaction does not run.
        return end_tx(Answer::NilArray, spec, parent, st, label);
    }
    let step = if st.tx.by_redcloak {
        Step::Transaction(Box::new(TxRun {
            items: st.tx.commands.clone(),
            watching: st.watching,
        }))
    } else {
        Step::Exec(Box::new(ExecBatch {
            items: st.tx.commands.clone(),
            plan: Plan::Exec(exec_plans(&st.tx.commands, st.db, ctx)),
        }))
    };
    Planned {
        step,
        then: Transition::EndTx,
        label,
    }
}

/// How each element of EXEC's reply is decoded: by the plan of the command queued there, made
/// now, with the ring the transaction is encrypted with as it is sent (rotation rewrites).
fn exec_plans(items: &[TxItem], db: u32, ctx: &Ctx) -> Vec<Queued> {
    items
        .iter()
        .map(|item| match item {
            TxItem::Local(frame) => Queued::Local(frame.clone()),
            TxItem::Command(args) => match table::resolve(args) {
                Resolved::Known { spec, .. } => {
                    transform::reply_plan(spec, args, db, ctx.ring_keys).into_queued()
                }
                _ => Queued::Shape(&Shape::Pass),
            },
        })
        .collect()
}

/// A transaction that ends without running (DISCARD, or EXEC of one that must not run):
/// answered as Redis would; a WATCH the client holds in Redis ends too (UNWATCH).
fn end_tx(
    reply: Answer,
    spec: &'static CommandSpec,
    parent: Option<&'static CommandSpec>,
    st: &ConnState,
    label: &'static str,
) -> Planned {
    if !st.watching {
        return answer(reply, Transition::EndTx, label);
    }
    Planned {
        step: Step::Forward(Box::new(Forward {
            replace: Some(Local2::plain(reply)),
            ..Forward::new(spec, parent, label, vec![Bytes::from_static(b"UNWATCH")])
        })),
        then: Transition::EndTx,
        label,
    }
}

/// What Redis (or redcloak) refuses inside MULTI.
fn refused_in_multi(spec: &CommandSpec, label: &'static str) -> Option<Planned> {
    Some(match spec.effect {
        // Redis refuses it without queueing it or aborting the transaction.
        Effect::Watch => answer(
            Answer::Error(DataError::Refused(
                "ERR WATCH inside MULTI is not allowed".into(),
            )),
            Transition::None,
            label,
        ),
        // Which database the connection is in after EXEC would depend on the transaction's
        // outcome; redcloak must know it (reconnects, the cache).
        Effect::Select => refuse(
            "ERR redcloak: SELECT inside MULTI is not supported; SELECT before MULTI".into(),
            label,
        ),
        Effect::Hello => refuse(
            "ERR redcloak: HELLO inside MULTI is not supported".into(),
            label,
        ),
        Effect::Subscribe(_) | Effect::Unsubscribe(_) => refuse(
            format!("ERR redcloak: {} inside MULTI is not supported", spec.name),
            label,
        ),
        _ => return None,
    })
}

/// A command without session effect: its values encrypted, its reply decoded by its row (or
/// queued, inside MULTI).
fn plain(f: &mut Forward, st: &ConnState, ctx: &Ctx) -> Transition {
    let plan = transform::reply_plan(f.spec, &f.args, st.db, ctx.ring_keys);
    f.keys = table::keys_of(f.spec, f.parent, &f.args);
    f.encrypt = true;
    debug_assert!(
        !st.tx.in_multi,
        "queued commands are planned by plan_queued"
    );
    f.plan = plan;
    f.learn = f.parent.is_none() && learn::follows(f.spec.cache);
    Transition::None
}

/// The other effects on the connection's state.
fn state_change(effect: Effect, f: &mut Forward, ctx: &Ctx) -> Transition {
    match effect {
        Effect::Watch => Transition::Watch,
        Effect::Unwatch => Transition::Unwatch,
        Effect::Select => match words::int(&f.args[1]).and_then(|n| u32::try_from(n).ok()) {
            Some(db) => {
                f.on_reply = OnReply::Select(db);
                Transition::Select(db)
            }
            None => Transition::None, // Redis answers the error
        },
        Effect::Reset => {
            f.on_reply = OnReply::Reset;
            f.reauth = true;
            Transition::Reset {
                default_db: ctx.default_db,
            }
        }
        Effect::Subscribe(kind) => {
            f.expect = Expect::Confirmations {
                kind,
                names: Some(f.args.len() - 1),
            };
            Transition::None
        }
        Effect::Unsubscribe(kind) => {
            f.expect = Expect::Confirmations {
                kind,
                names: (f.args.len() > 1).then(|| f.args.len() - 1),
            };
            Transition::None
        }
        Effect::Multi
        | Effect::Discard
        | Effect::None
        | Effect::Exec
        | Effect::Hello
        | Effect::Publish => Transition::None,
    }
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]` without its AUTH part,
/// read exactly as Redis 7.0's `helloCommand` reads it: whatever Redis would reject before it
/// reads (and redacts) the credentials is answered here with Redis's error, so a password
/// never reaches Redis, its MONITOR or its slowlog.
pub(crate) fn strip_hello_auth(args: &[Bytes]) -> Result<Vec<Bytes>, String> {
    if let Some(version) = args.get(1) {
        let v =
            words::int(version).ok_or("ERR Protocol version is not an integer or out of range")?;
        if !(2..=3).contains(&v) {
            return Err("NOPROTO unsupported protocol version".into());
        }
    }
    let mut kept = Vec::with_capacity(args.len());
    kept.extend(args.iter().take(2).cloned());
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if words::is(opt, "AUTH") && more >= 2 {
            i += 3;
        } else if words::is(opt, "SETNAME") && more >= 1 {
            kept.extend(args[i..i + 2].iter().cloned());
            i += 2;
        } else {
            return Err(format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(words::c_str(opt)).replace(['\r', '\n'], " ")
            ));
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redcloak_commands::transform::Queued;

    fn args(s: &str) -> Vec<Bytes> {
        s.split_whitespace()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    const UP: Ctx = Ctx {
        default_db: 0,
        up: true,
        ring_keys: 1,
        format: ValueFormat::Fernet,
    };
    const DOWN: Ctx = Ctx {
        default_db: 0,
        up: false,
        ring_keys: 1,
        format: ValueFormat::Fernet,
    };

    fn run(s: &str, st: &ConnState, ctx: &Ctx) -> Planned {
        plan(args(s), st, ctx)
    }

    fn forward(p: &Planned) -> &Forward {
        match &p.step {
            Step::Forward(f) => f,
            other => panic!("not forwarded: {other:?}"),
        }
    }

    fn error_text(p: &Planned) -> String {
        match &p.step {
            Step::Answer(Local2 {
                answer: Answer::Error(e),
                ..
            }) => e.text(),
            other => panic!("not an error: {other:?}"),
        }
    }

    /// The planner's decisions for a table of requests, outside any transaction.
    #[test]
    fn requests_are_planned_by_their_rows() {
        let st = ConnState::new(0);
        let get = run("GET k", &st, &UP);
        let f = forward(&get);
        assert!(f.encrypt && f.learn && f.expect == Expect::One);
        assert_eq!(
            f.plan,
            transform::shape_plan(table::lookup(b"GET").unwrap(), &args("GET k"), 0),
            "values are opened where they are stored: database 0, key k"
        );
        assert!(matches!(f.plan, Plan::At(Shape::Value, _)));
        assert_eq!(f.keys.positions().collect::<Vec<_>>(), vec![1]);
        let sub = run("SUBSCRIBE a b c", &st, &UP);
        assert_eq!(
            forward(&sub).expect,
            Expect::Confirmations {
                kind: Channels::Plain,
                names: Some(3)
            }
        );
        let unsub = run("PUNSUBSCRIBE", &st, &UP);
        assert_eq!(
            forward(&unsub).expect,
            Expect::Confirmations {
                kind: Channels::Pattern,
                names: None
            }
        );
        let select = run("SELECT 3", &st, &UP);
        assert_eq!(select.then, Transition::Select(3));
        assert_eq!(forward(&select).on_reply, OnReply::Select(3));
        assert_eq!(run("SELECT x", &st, &UP).then, Transition::None);
        let reset = run("RESET", &st, &UP);
        assert!(forward(&reset).reauth);
        assert_eq!(reset.then, Transition::Reset { default_db: 0 });
        // Local answers.
        assert!(matches!(
            run("ECHO hi", &st, &UP).step,
            Step::Answer(Local2 { answer: Answer::Frame(Frame::Bulk(_)), pubsub_name: Some(ref n) }) if n == "echo"
        ));
        assert!(matches!(
            run("PING hi", &st, &UP).step,
            Step::Answer(Local2 {
                answer: Answer::Pong(Some(_)),
                ..
            })
        ));
        assert_eq!(forward(&run("PING", &st, &UP)).name, "PING");
        assert!(matches!(run("QUIT", &st, &UP).step, Step::Close(_)));
        assert!(matches!(
            run("AUTH secret", &st, &UP).step,
            Step::Answer(Local2 {
                answer: Answer::Ok,
                ..
            })
        ));
        let keys = run("COMMAND GETKEYS MSET a 1 b 2", &st, &UP);
        assert!(matches!(
            keys.step,
            Step::Answer(Local2 { answer: Answer::Frame(Frame::Array(ref k)), .. }) if k.len() == 2
        ));
        // Refusals and Redis's own wording for what Redis does not know.
        assert!(error_text(&run("CONFIG SET maxmemory 1", &st, &UP)).contains("redcloak"));
        assert_eq!(
            error_text(&run("NOPE a", &st, &UP)),
            "ERR unknown command 'NOPE', with args beginning with: 'a' "
        );
        assert_eq!(
            error_text(&run("GET", &st, &UP)),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            error_text(&run("PING a b", &st, &UP)),
            "ERR wrong number of arguments for 'ping' command"
        );
    }

    /// During a key rotation (two keys), member lookups are planned as rewrites whose reply is
    /// folded per member — outside MULTI, and at EXEC for the queued ones; with one key they
    /// are plain.
    #[test]
    fn member_lookups_follow_the_ring() {
        let rotating = Ctx { ring_keys: 2, ..UP };
        let st = ConnState::new(0);
        let p = run("SISMEMBER s m", &st, &rotating);
        let Plan::Members(m) = &forward(&p).plan else {
            panic!("{:?}", forward(&p).plan)
        };
        let r = m.reduce.expect("folded");
        assert_eq!((r.group, r.single), (2, true));
        assert!(matches!(
            forward(&run("SISMEMBER s m", &st, &UP)).plan,
            Plan::Shape(_)
        ));
        // Writes are never rewritten; scans with MATCH always are.
        assert!(matches!(
            forward(&run("SADD s m", &st, &rotating)).plan,
            Plan::Shape(_)
        ));
        assert!(matches!(
            forward(&run("SSCAN s 0 MATCH a*", &st, &UP)).plan,
            Plan::Members(_)
        ));
        let mut st = ConnState::new(0);
        st.apply(Transition::Multi);
        let queued = run("ZSCORE z m", &st, &rotating);
        st.apply(queued.then);
        st.apply(run("GET k", &st, &rotating).then);
        let exec = run("EXEC", &st, &rotating);
        let Step::Exec(batch) = &exec.step else {
            panic!("{:?}", exec.step)
        };
        assert!(
            matches!(&batch.plan, Plan::Exec(q) if matches!(q[..], [Queued::Members(_), Queued::At(..)])),
            "{:?}",
            batch.plan
        );
    }

    /// Arguments Redis would reject at execution (a ZADD without pairs) are answered here;
    /// inside MULTI they are queued with their error, as Redis queues them, while a refusal
    /// aborts the transaction.
    #[test]
    fn unreadable_arguments_are_answered_here_like_redis() {
        let st = ConnState::new(0);
        assert_eq!(
            error_text(&run("ZADD z 1 a 2", &st, &UP)),
            "ERR syntax error"
        );
        assert!(error_text(&run("ZRANGE z [a [b BYLEX", &st, &UP)).contains("redcloak"));
        let mut st = ConnState::new(0);
        st.apply(Transition::Multi);
        let queued = run("ZADD z 1 a 2", &st, &UP);
        assert!(matches!(
            queued.step,
            Step::Answer(Local2 {
                answer: Answer::Queued,
                ..
            })
        ));
        assert_eq!(
            queued.then,
            Transition::QueueLocal(Frame::Error(Bytes::from_static(b"ERR syntax error")))
        );
        assert_eq!(
            run("ZRANGE z [a [b BYLEX", &st, &UP).then,
            Transition::Poison
        );
    }

    #[test]
    fn transactions_queue_shapes_and_local_answers() {
        let mut st = ConnState::new(0);
        let multi = run("MULTI", &st, &UP);
        assert_eq!(multi.then, Transition::Multi);
        assert!(matches!(
            multi.step,
            Step::Answer(Local2 {
                answer: Answer::Ok,
                ..
            })
        ));
        st.apply(multi.then);
        let get = run("GET k", &st, &UP);
        assert_eq!(
            get.then,
            Transition::Queue {
                args: args("GET k"),
                shape: &Shape::Value,
                by_redcloak: false
            }
        );
        st.apply(get.then);
        let echo = run("ECHO hi", &st, &UP);
        assert!(matches!(
            echo.step,
            Step::Answer(Local2 {
                answer: Answer::Queued,
                ..
            })
        ));
        st.apply(echo.then);
        assert_eq!(
            run("WATCH k", &st, &UP).then,
            Transition::None,
            "WATCH inside MULTI is an error that does not abort"
        );
        assert_eq!(run("MULTI", &st, &UP).then, Transition::None);
        assert_eq!(run("SELECT 1", &st, &UP).then, Transition::Poison);
        assert_eq!(run("SUBSCRIBE a", &st, &UP).then, Transition::Poison);
        assert!(
            matches!(run("PING", &st, &UP).then, Transition::Queue { .. }),
            "a bare PING is queued like any command"
        );
        // Errors Redis gives when it runs a command redcloak answers itself: queued, as EXEC's
        // element, not a refusal that aborts the transaction.
        assert_eq!(
            run("PING a b", &st, &UP).then,
            Transition::QueueLocal(Frame::Error(Bytes::from_static(
                b"ERR wrong number of arguments for 'ping' command"
            )))
        );
        assert!(matches!(
            run("COMMAND GETKEYS NOSUCHCMD k", &st, &UP).then,
            Transition::QueueLocal(Frame::Error(_))
        ));
        assert_eq!(
            run("XADD s MAXLEN x * f v", &st, &UP).then,
            Transition::QueueLocal(Frame::Error(Bytes::from_static(
                b"ERR value is not an integer or out of range"
            ))),
            "options that cannot be read are answered here, queued with Redis's error as \
             Redis queues them (the arguments never reach Redis)"
        );
        let exec = run("EXEC", &st, &UP);
        assert_eq!(exec.then, Transition::EndTx);
        let Step::Exec(batch) = &exec.step else {
            panic!("{:?}", exec.step)
        };
        assert!(
            matches!(&batch.plan, Plan::Exec(q) if matches!(
                &q[..],
                [Queued::At(Shape::Value, _), Queued::Local(Frame::Bulk(hi))] if &hi[..] == b"hi"
            )),
            "{:?}",
            batch.plan
        );
        assert_eq!(batch.items.len(), 2);
        // An emulated command makes redcloak carry the whole transaction out.
        let incr = run("INCR n", &st, &UP);
        assert!(matches!(
            incr.then,
            Transition::Queue {
                by_redcloak: true,
                ..
            }
        ));
        let mut with_incr = st.clone();
        with_incr.apply(incr.then);
        assert!(matches!(
            run("EXEC", &with_incr, &UP).step,
            Step::Transaction(_)
        ));
        // A poisoned transaction never reaches Redis.
        st.apply(Transition::Poison);
        assert!(error_text(&run("EXEC", &st, &UP)).starts_with("EXECABORT"));
        // ...but the WATCH it held there must end: UNWATCH, answered as EXEC would be.
        st.apply(Transition::Watch);
        let aborted = run("EXEC", &st, &UP);
        let f = forward(&aborted);
        assert_eq!(f.args, args("UNWATCH"));
        assert!(matches!(
            f.replace,
            Some(Local2 {
                answer: Answer::Error(_),
                ..
            })
        ));
        let st = ConnState::new(0);
        assert_eq!(error_text(&run("EXEC", &st, &UP)), "ERR EXEC without MULTI");
    }

    #[test]
    fn while_redis_is_down() {
        let st = ConnState::new(0);
        assert!(matches!(run("GET k", &st, &DOWN).step, Step::Forward(_)));
        assert!(matches!(
            run("PING", &st, &DOWN).step,
            Step::Answer(Local2 {
                answer: Answer::Pong(None),
                ..
            })
        ));
        for cmd in ["MULTI", "SELECT 1", "SUBSCRIBE a", "LPUSH l x", "CLIENT ID"] {
            assert!(
                error_text(&run(cmd, &st, &DOWN)).starts_with("TRYAGAIN"),
                "{cmd}"
            );
        }
        let mut st = ConnState::new(0);
        st.apply(Transition::Multi);
        assert_eq!(run("GET k", &st, &DOWN).then, Transition::Poison);
        assert_eq!(
            error_text(&run("EXEC", &st, &DOWN)),
            "EXECABORT Transaction discarded: the connection to Redis was lost"
        );
        assert_eq!(run("DISCARD", &st, &DOWN).then, Transition::EndTx);
    }

    #[test]
    fn hello_is_read_exactly_like_redis() {
        assert_eq!(
            strip_hello_auth(&args("HELLO 3 AUTH u p SETNAME n")).unwrap(),
            args("HELLO 3 SETNAME n")
        );
        let nul = [
            Bytes::from_static(b"HELLO"),
            Bytes::from_static(b"2"),
            Bytes::from_static(b"AUTH\0"),
            Bytes::from_static(b"user"),
            Bytes::from_static(b"pass"),
        ];
        assert_eq!(
            strip_hello_auth(&nul).unwrap(),
            args("HELLO 2"),
            "AUTH\\0 is AUTH to Redis: stripped"
        );
        assert_eq!(
            strip_hello_auth(&args("HELLO 3 AUTH u")).unwrap_err(),
            "ERR Syntax error in HELLO option 'AUTH'"
        );
        assert_eq!(
            strip_hello_auth(&args("HELLO 4 AUTH u p")).unwrap_err(),
            "NOPROTO unsupported protocol version"
        );
        assert_eq!(
            strip_hello_auth(&args("HELLO x AUTH u p")).unwrap_err(),
            "ERR Protocol version is not an integer or out of range"
        );
        assert_eq!(strip_hello_auth(&args("HELLO")).unwrap(), args("HELLO"));
    }
}
