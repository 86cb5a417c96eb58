//! The degraded phase's I/O: while Redis is unreachable, each request is planned as usual
//! and forwarded requests are served by the fallback's decision core
//! ([`crate::fallback::serve`]). Returns when Redis is healthy again (unhandled bytes stay in
//! the input) or when the client is done.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redcloak_commands::resp::Frame;
use redcloak_commands::table::{self, Resolved};
use redcloak_commands::transform::{self, ReplyError};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::plan::{self, Answer, Ctx, Forward, Local2, Step};
use super::replies::{render, ReplyState};
use super::state::ConnState;
use super::{idle_timer, End, Input, ReadError};
use crate::error::DataError;
use crate::fallback::serve::{self, Cached, Decision};
use crate::fallback::{now_ms, Entry, JournalError, Ttl};
use crate::health::Mode;
use crate::metrics::Outcome;
use crate::Shared;

/// Serves the client from the fallback while Redis is unreachable.
pub(super) async fn serve<R, W>(
    client_r: &mut R,
    client_w: &mut W,
    input: &mut Input,
    st: &mut ConnState,
    shared: &Arc<Shared>,
) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out = BytesMut::with_capacity(super::READ_CHUNK);
    let mut shutdown = shared.shutdown_signal();
    let ctx = Ctx {
        default_db: shared.connector().default_db(),
        up: false,
        ring_keys: shared.key_ring().len(),
        format: shared.key_ring().format(),
    };
    loop {
        loop {
            if shared.health.mode() == Mode::Healthy {
                if !out.is_empty() && client_w.write_all(&out).await.is_err() {
                    return End::ClientDone;
                }
                return End::Healthy;
            }
            let request = match input.next() {
                Ok(Some(request)) => request,
                Ok(None) => break,
                Err(e) => return close(client_w, &mut out, e).await,
            };
            let state = ReplyState::new(st.db, ctx.default_db, st.resp3);
            let planned = plan::plan(request.args, st, &ctx);
            if let Handled::Close = handle(planned, st, shared, &state, &mut out) {
                let _ = client_w.write_all(&out).await;
                let _ = client_w.shutdown().await;
                return End::ClientDone;
            }
        }
        if !out.is_empty() {
            if client_w.write_all(&out).await.is_err() {
                return End::ClientDone;
            }
            out.clear();
        }
        if *shutdown.borrow() {
            let _ = client_w.shutdown().await;
            return End::ClientDone;
        }
        if let Err(e) = input.check_size(shared) {
            return close(client_w, &mut out, e).await;
        }
        tokio::select! {
            biased;
            _ = shutdown.changed() => {}
            read = input.read(client_r) => match read {
                Ok(0) | Err(ReadError::Gone) => return End::ClientDone,
                Ok(_) => {}
                Err(ReadError::Budget(e)) => return close(client_w, &mut out, e).await,
            },
            _ = idle_timer(shared.operations.idle_timeout) => {
                let _ = client_w.shutdown().await;
                return End::ClientDone;
            }
        }
    }
}

/// What the connection does after a command was answered.
enum Handled {
    Next,
    /// The answer is the last thing the client gets (QUIT).
    Close,
}

/// Answers one planned command without Redis: locally, from the fallback, or with an error.
fn handle(
    planned: plan::Planned,
    st: &mut ConnState,
    shared: &Arc<Shared>,
    state: &ReplyState,
    out: &mut BytesMut,
) -> Handled {
    match planned.step {
        Step::Answer(local) => {
            if let Answer::Error(e) = &local.answer {
                shared.metrics.error(e.source().as_str());
            }
            let outcome = match &local.answer {
                Answer::Error(DataError::Refused(_)) => Outcome::Refused,
                Answer::Error(DataError::TryAgain { .. }) => Outcome::Unavailable,
                Answer::Error(_) => Outcome::Error,
                _ => Outcome::Ok,
            };
            shared
                .metrics
                .command(planned.label, outcome, Duration::ZERO);
            render(&local, state, out);
            st.apply(planned.then);
        }
        Step::Close(local) => {
            render(&local, state, out);
            return Handled::Close;
        }
        Step::Exec(_) | Step::Transaction(_) => {
            // The planner ends transactions itself while Redis is down.
            DataError::ExecAbortLost.answer(out, &shared.metrics);
        }
        Step::Emulate(f) | Step::Script(f) => {
            // The planner answers these with TRYAGAIN while Redis is down.
            DataError::TryAgain {
                command: table::display_name(f.spec, f.parent),
            }
            .answer(out, &shared.metrics);
        }
        Step::Forward(f) => {
            let served = from_fallback(&f, st, shared, out);
            shared
                .metrics
                .command(planned.label, served, Duration::ZERO);
            if served == Outcome::Fallback {
                shared
                    .health
                    .served_from_fallback
                    .fetch_add(1, Ordering::Relaxed);
                st.apply(planned.then);
            }
        }
    }
    Handled::Next
}

/// Answers an error, then closes the connection.
async fn close<W: AsyncWrite + Unpin>(client_w: &mut W, out: &mut BytesMut, e: DataError) -> End {
    e.write(out);
    let _ = client_w.write_all(out).await;
    let _ = client_w.shutdown().await;
    End::ClientDone
}

/// Journals a write (encrypted by the transform layer, like any request) and records what
/// its keys now hold.
fn journal(
    command: Vec<Bytes>,
    cache: Vec<(Bytes, Cached, Ttl)>,
    db: u32,
    shared: &Shared,
) -> Result<(), (DataError, Outcome)> {
    let fallback = &shared.fallback;
    let Resolved::Known { spec, .. } = table::resolve(&command) else {
        unreachable!("the fallback journals only commands of the table")
    };
    let encrypted = transform::encrypt_args(spec, &command, db, &shared.key_ring())
        .map_err(|text| (DataError::Refused(text), Outcome::Refused))?;
    fallback.journal(db, encrypted.clone()).map_err(|e| {
        let e = match e {
            JournalError::Full { entries } => DataError::JournalFull { entries },
            JournalError::Disabled => DataError::JournalDisabled,
            JournalError::Recovered => DataError::Recovered,
        };
        (e, Outcome::Unavailable)
    })?;
    for (key, cached, ttl) in cache {
        match cached {
            Cached::Arg(i) => fallback.record(
                db,
                &key,
                &Entry {
                    value: Some(encrypted[i].clone()),
                    ttl,
                },
            ),
            Cached::Absent => fallback.record(db, &key, &Entry::ABSENT),
            Cached::Same => fallback.set_ttl(db, &key, ttl),
        }
    }
    Ok(())
}

/// Serves one forwarded request from the fallback; returns how it ended.
fn from_fallback(f: &Forward, st: &ConnState, shared: &Shared, out: &mut BytesMut) -> Outcome {
    let fallback = &shared.fallback;
    let db = st.db;
    let lookup = |key: &Bytes| fallback.lookup(db, key);
    let decision = serve::decide(f.spec.cache, &f.args, &lookup, now_ms(), st.resp3);
    let ring = shared.key_ring();
    let reply = match decision {
        Decision::TryAgain => {
            DataError::TryAgain {
                command: table::display_name(f.spec, f.parent),
            }
            .answer(out, &shared.metrics);
            return Outcome::Unavailable;
        }
        Decision::Error(text) => {
            DataError::Refused(text.to_owned()).answer(out, &shared.metrics);
            return Outcome::Fallback;
        }
        Decision::Reply(reply) => reply,
        Decision::Write {
            command,
            cache,
            reply,
        } => match journal(command, cache, db, shared) {
            Ok(()) => reply,
            Err((e, outcome)) => {
                e.answer(out, &shared.metrics);
                return outcome;
            }
        },
    };
    // What Redis would have replied, decoded like any reply.
    let mut encoded = BytesMut::new();
    reply.encode(&mut encoded);
    let plan = transform::shape_plan(f.spec, &f.args, db);
    match transform::decode_reply(&plan, encoded.freeze(), &ring, &shared.reply_limits, out) {
        Ok(_) => {}
        Err(ReplyError::Undecryptable(problem)) => {
            shared.metrics.decrypt_failure(problem.error, false);
            let keys = table::keys_of(f.spec, f.parent, &f.args);
            let keys: Vec<&[u8]> = keys.positions().map(|i| &f.args[i][..]).collect();
            DataError::Undecryptable(transform::undecryptable_message(f.name, &keys, problem))
                .answer(out, &shared.metrics);
        }
        Err(_) => {
            render(
                &Local2 {
                    answer: Answer::Frame(Frame::Error(Bytes::from_static(
                        b"ERR redcloak: the local cache holds a malformed value",
                    ))),
                    pubsub_name: None,
                },
                &ReplyState::new(0, 0, false),
                out,
            );
        }
    }
    Outcome::Fallback
}
