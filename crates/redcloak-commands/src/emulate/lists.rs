//! List commands: LPOS, LREM, LINSERT (Redis 7.0 `t_list.c`); LMOVE and RPOPLPUSH while
//! values are written as aes-gcm (an element that moves to another list is encrypted again
//! for its new key: [`Write::Pop`] then [`Write::Push`], under the WATCH of both keys).
//!
//! LREM and LINSERT change the list in place: the write is a [`Write::ReplaceList`] with
//! [`Ttl::Keep`] whose untouched elements are [`ListItem::Existing`] (their ciphertexts can
//! be kept). A list left empty is deleted ([`Write::Delete`]), as Redis does.

use bytes::Bytes;

use super::{
    done, done_with, error, executor_bug, is, parse_ll, Call, Found, ListItem, Read, Step, Ttl,
    Write, NOT_INTEGER, SYNTAX, WRONGTYPE,
};
use crate::resp::Frame;

fn plan_list(args: &[Bytes]) -> Vec<Read> {
    vec![Read::List {
        key: args[1].clone(),
    }]
}

/// The list read: `Ok(None)` if the key is missing.
fn list<'a>(call: &'a Call<'_>) -> Result<Option<&'a [Vec<u8>]>, Step> {
    match call.found(0) {
        Some(Found::Missing) => Ok(None),
        Some(Found::List(items)) => Ok(Some(items)),
        Some(Found::WrongType) => Err(done(error(WRONGTYPE))),
        _ => Err(executor_bug()),
    }
}

// === LPOS ===

struct LposOptions {
    rank: i64,
    /// -1: not given.
    count: i64,
    maxlen: i64,
}

/// `getPositiveLongFromObjectOrReply` with a message: the message answers both a
/// non-number and a negative number.
fn non_negative(arg: &[u8], message: &str) -> Result<i64, Frame> {
    match parse_ll(arg) {
        Some(n) if n >= 0 => Ok(n),
        _ => Err(error(message)),
    }
}

fn lpos_options(args: &[Bytes]) -> Result<LposOptions, Frame> {
    let mut options = LposOptions {
        rank: 1,
        count: -1,
        maxlen: 0,
    };
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        let moreargs = args.len() - 1 - j;
        if is(opt, "RANK") && moreargs > 0 {
            j += 1;
            options.rank = parse_ll(&args[j]).ok_or_else(|| error(NOT_INTEGER))?;
            if options.rank == 0 {
                return Err(error(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(opt, "COUNT") && moreargs > 0 {
            j += 1;
            options.count = non_negative(&args[j], "ERR COUNT can't be negative")?;
        } else if is(opt, "MAXLEN") && moreargs > 0 {
            j += 1;
            options.maxlen = non_negative(&args[j], "ERR MAXLEN can't be negative")?;
        } else {
            return Err(error(SYNTAX));
        }
        j += 1;
    }
    Ok(options)
}

pub(super) fn plan_lpos(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    lpos_options(args)?;
    Ok(plan_list(args))
}

/// `lposCommand`. A RANK of LLONG_MIN stays negative when negated in C: every match then
/// qualifies, searching from the tail; the C arithmetic is reproduced with wrapping.
pub(super) fn lpos(call: &Call<'_>) -> Step {
    let Ok(LposOptions {
        mut rank,
        count,
        maxlen,
    }) = lpos_options(call.args)
    else {
        return executor_bug();
    };
    let from_tail = rank < 0;
    if from_tail {
        rank = rank.wrapping_neg();
    }
    let items = match list(call) {
        Ok(Some(items)) => items,
        Ok(None) => {
            return done(if count != -1 {
                Frame::Array(Vec::new())
            } else {
                call.null()
            })
        }
        Err(step) => return step,
    };
    let element = call.arg(2);
    let llen = items.len() as i64;
    let mut matches: i64 = 0;
    let mut found = Vec::new();
    let mut first: Option<i64> = None;
    let order: Box<dyn Iterator<Item = usize>> = if from_tail {
        Box::new((0..items.len()).rev())
    } else {
        Box::new(0..items.len())
    };
    for (index, at) in order.enumerate() {
        let index = index as i64;
        if maxlen != 0 && index >= maxlen {
            break;
        }
        if items[at] == element.as_ref() {
            matches += 1;
            let matchindex = if from_tail { llen - index - 1 } else { index };
            if matches >= rank {
                if count != -1 {
                    found.push(Frame::Integer(matchindex));
                    if count != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= count {
                        break;
                    }
                } else {
                    first = Some(matchindex);
                    break;
                }
            }
        }
    }
    if count != -1 {
        done(Frame::Array(found))
    } else {
        done(first.map_or_else(|| call.null(), Frame::Integer))
    }
}

// === LREM ===

pub(super) fn plan_lrem(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    parse_ll(&args[2]).ok_or_else(|| error(NOT_INTEGER))?;
    Ok(plan_list(args))
}

pub(super) fn lrem(call: &Call<'_>) -> Step {
    let Some(count) = parse_ll(call.arg(2)) else {
        return executor_bug();
    };
    let items = match list(call) {
        Ok(Some(items)) => items,
        Ok(None) => return done(Frame::Integer(0)),
        Err(step) => return step,
    };
    let element = call.arg(3);
    // A negative count removes from the tail; LLONG_MIN stays negative when negated in C
    // and is never reached: everything matching is removed.
    let from_tail = count < 0;
    let limit = count.wrapping_neg().max(count);
    let mut removed = vec![false; items.len()];
    let mut n: i64 = 0;
    let order: Box<dyn Iterator<Item = usize>> = if from_tail {
        Box::new((0..items.len()).rev())
    } else {
        Box::new(0..items.len())
    };
    for at in order {
        if items[at] == element.as_ref() {
            removed[at] = true;
            n += 1;
            if limit != 0 && n == limit {
                break;
            }
        }
    }
    let key = call.arg(1).clone();
    let writes = if n == 0 {
        Vec::new()
    } else if n as usize == items.len() {
        vec![Write::Delete { key }]
    } else {
        vec![Write::ReplaceList {
            key,
            items: (0..items.len())
                .filter(|&i| !removed[i])
                .map(ListItem::Existing)
                .collect(),
            ttl: Ttl::Keep,
        }]
    };
    done_with(Frame::Integer(n), writes)
}

// === LINSERT ===

/// BEFORE (true) or AFTER (false).
fn linsert_where(args: &[Bytes]) -> Result<bool, Frame> {
    if is(&args[2], "AFTER") {
        Ok(false)
    } else if is(&args[2], "BEFORE") {
        Ok(true)
    } else {
        Err(error(SYNTAX))
    }
}

pub(super) fn plan_linsert(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    linsert_where(args)?;
    Ok(plan_list(args))
}

pub(super) fn linsert(call: &Call<'_>) -> Step {
    let Ok(before) = linsert_where(call.args) else {
        return executor_bug();
    };
    let items = match list(call) {
        Ok(Some(items)) => items,
        Ok(None) => return done(Frame::Integer(0)),
        Err(step) => return step,
    };
    let pivot = call.arg(3);
    let Some(at) = items.iter().position(|item| item == pivot.as_ref()) else {
        return done(Frame::Integer(-1));
    };
    let insert_at = if before { at } else { at + 1 };
    let mut new_items: Vec<ListItem> = (0..items.len()).map(ListItem::Existing).collect();
    new_items.insert(insert_at, ListItem::New(call.arg(4).to_vec()));
    done_with(
        Frame::Integer(new_items.len() as i64),
        vec![Write::ReplaceList {
            key: call.arg(1).clone(),
            items: new_items,
            ttl: Ttl::Keep,
        }],
    )
}

// === LMOVE, RPOPLPUSH ===

/// `getListPositionFromObjectOrReply`: `LEFT` is the head, `RIGHT` the tail.
fn position(arg: &[u8]) -> Result<bool, Frame> {
    if is(arg, "LEFT") {
        Ok(false)
    } else if is(arg, "RIGHT") {
        Ok(true)
    } else {
        Err(error(SYNTAX))
    }
}

fn plan_move(args: &[Bytes], from_tail: bool) -> Vec<Read> {
    vec![
        Read::ListEnd {
            key: args[1].clone(),
            tail: from_tail,
        },
        Read::IsList {
            key: args[2].clone(),
        },
    ]
}

pub(super) fn plan_lmove(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    let from_tail = position(&args[3])?;
    position(&args[4])?;
    Ok(plan_move(args, from_tail))
}

pub(super) fn plan_rpoplpush(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    Ok(plan_move(args, true))
}

/// `lmoveGenericCommand`: the source missing is a null reply before the destination's type
/// is looked at; a source or destination of another type is WRONGTYPE.
fn move_element(call: &Call<'_>, from_tail: bool, to_head: bool) -> Step {
    let element = match call.found(0) {
        Some(Found::Missing) => return done(call.null()),
        Some(Found::WrongType) => return done(error(WRONGTYPE)),
        Some(Found::Element(v)) => v.clone(),
        _ => return executor_bug(),
    };
    match call.found(1) {
        Some(Found::WrongType) => return done(error(WRONGTYPE)),
        Some(Found::Missing | Found::List(_)) => {}
        _ => return executor_bug(),
    }
    done_with(
        Frame::Bulk(Bytes::from(element.clone())),
        // Pushed before the pop: when source and destination are one key, the list is never
        // left empty in between (which would delete it, and its TTL).
        vec![
            Write::Push {
                key: call.arg(2).clone(),
                head: to_head,
                value: element,
            },
            Write::Pop {
                key: call.arg(1).clone(),
                tail: from_tail,
            },
        ],
    )
}

pub(super) fn lmove(call: &Call<'_>) -> Step {
    let (Ok(from_tail), Ok(to_tail)) = (position(call.arg(3)), position(call.arg(4))) else {
        return executor_bug();
    };
    move_element(call, from_tail, !to_tail)
}

pub(super) fn rpoplpush(call: &Call<'_>) -> Step {
    move_element(call, true, true)
}

#[cfg(test)]
mod tests {
    use super::super::tests::args;
    use super::super::*;

    fn list(items: &[&str]) -> Found {
        Found::List(items.iter().map(|s| s.as_bytes().to_vec()).collect())
    }

    fn reply(parts: &[&str], found: Found, resp3: bool) -> Frame {
        match compute(&args(parts), &[found], resp3) {
            Step::Done { reply, .. } => reply,
            Step::Read(_) => panic!(),
        }
    }

    #[test]
    fn lpos_forms() {
        let l = || list(&["a", "b", "c", "1", "2", "3", "c", "c"]);
        assert_eq!(reply(&["LPOS", "k", "c"], l(), false), Frame::Integer(2));
        assert_eq!(
            reply(&["LPOS", "k", "c", "RANK", "2"], l(), false),
            Frame::Integer(6)
        );
        assert_eq!(
            reply(&["LPOS", "k", "c", "RANK", "-1"], l(), false),
            Frame::Integer(7)
        );
        assert_eq!(
            reply(&["LPOS", "k", "c", "COUNT", "2"], l(), false),
            Frame::Array(vec![Frame::Integer(2), Frame::Integer(6)])
        );
        assert_eq!(
            reply(&["LPOS", "k", "c", "RANK", "-1", "COUNT", "2"], l(), false),
            Frame::Array(vec![Frame::Integer(7), Frame::Integer(6)])
        );
        assert_eq!(
            reply(&["LPOS", "k", "c", "COUNT", "0", "MAXLEN", "7"], l(), false),
            Frame::Array(vec![Frame::Integer(2), Frame::Integer(6)])
        );
        assert_eq!(reply(&["LPOS", "k", "x"], l(), true), Frame::Null);
        assert_eq!(
            reply(&["LPOS", "k", "x"], Found::Missing, false),
            Frame::NullBulk
        );
        assert_eq!(
            reply(&["LPOS", "k", "x", "COUNT", "1"], Found::Missing, false),
            Frame::Array(vec![])
        );
        assert_eq!(
            reply(
                &["LPOS", "k", "c", "RANK", "-9223372036854775808"],
                l(),
                false
            ),
            Frame::Integer(7)
        );
    }

    #[test]
    fn lrem_and_linsert() {
        let a = args(&["LREM", "k", "-1", "x"]);
        assert_eq!(
            compute(&a, &[list(&["x", "y", "x"])], false),
            done_with(
                Frame::Integer(1),
                vec![Write::ReplaceList {
                    key: Bytes::from_static(b"k"),
                    items: vec![ListItem::Existing(0), ListItem::Existing(1)],
                    ttl: Ttl::Keep
                }]
            )
        );
        let a = args(&["LREM", "k", "0", "x"]);
        assert_eq!(
            compute(&a, &[list(&["x", "x"])], false),
            done_with(
                Frame::Integer(2),
                vec![Write::Delete {
                    key: Bytes::from_static(b"k")
                }]
            )
        );
        let a = args(&["LINSERT", "k", "after", "y", "z"]);
        assert_eq!(
            compute(&a, &[list(&["x", "y"])], false),
            done_with(
                Frame::Integer(3),
                vec![Write::ReplaceList {
                    key: Bytes::from_static(b"k"),
                    items: vec![
                        ListItem::Existing(0),
                        ListItem::Existing(1),
                        ListItem::New(b"z".to_vec())
                    ],
                    ttl: Ttl::Keep
                }]
            )
        );
        assert_eq!(
            reply(&["LINSERT", "k", "BEFORE", "q", "z"], list(&["x"]), false),
            Frame::Integer(-1)
        );
        assert_eq!(
            reply(&["LINSERT", "k", "BEFORE", "q", "z"], Found::Missing, false),
            Frame::Integer(0)
        );
    }
}
