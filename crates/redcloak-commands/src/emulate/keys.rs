//! RENAME and RENAMENX while values are written as aes-gcm (Redis 7.0 `db.c`,
//! `renameGenericCommand`): every value of the key is encrypted again for its new name, so
//! the key is rewritten under that name (with its expiry) and the old one deleted, in one
//! MULTI under the WATCH of both names. Sets and sorted sets, whose members are not bound to
//! the name, are renamed by Redis as they are; a stream is refused.

use bytes::Bytes;

use super::{
    done, done_with, error, executor_bug, Call, Found, Held, ListItem, Read, Step, Ttl, Write,
};
use crate::resp::Frame;

pub(super) fn plan_rename(args: &[Bytes]) -> Result<Vec<Read>, Frame> {
    Ok(vec![
        Read::Whole {
            key: args[1].clone(),
        },
        Read::IsList {
            key: args[2].clone(),
        },
    ])
}

pub(super) fn rename(call: &Call<'_>) -> Step {
    rename_generic(call, false)
}

pub(super) fn renamenx(call: &Call<'_>) -> Step {
    rename_generic(call, true)
}

fn rename_generic(call: &Call<'_>, nx: bool) -> Step {
    let answer = |moved: bool| {
        if !nx {
            Frame::Simple(Bytes::from_static(b"OK"))
        } else {
            Frame::Integer(i64::from(moved))
        }
    };
    let whole = match call.found(0) {
        Some(Found::Missing) => return done(error("ERR no such key")),
        Some(Found::Whole(w)) => w,
        _ => return executor_bug(),
    };
    let (from, to) = (call.arg(1), call.arg(2));
    if from == to {
        // The same name: nothing moves (RENAMENX answers 0, RENAME +OK).
        return done(answer(false));
    }
    let target_exists = match call.found(1) {
        Some(Found::Missing) => false,
        Some(Found::List(_) | Found::WrongType) => true,
        _ => return executor_bug(),
    };
    if nx && target_exists {
        return done(answer(false));
    }
    let mut writes = Vec::new();
    match &whole.held {
        Held::Unbound => {
            writes.push(Write::Rename {
                from: from.clone(),
                to: to.clone(),
            });
            return done_with(answer(true), writes);
        }
        Held::Stream => {
            return done(error(
                "ERR redcloak: RENAME of a stream is refused while REDCLOAK_VALUE_FORMAT=aes-gcm: \
                 its entries' values are bound to its name and a stream cannot be rewritten \
                 under another one with its consumer groups; add the entries to the new stream \
                 through redcloak, or use REDCLOAK_VALUE_FORMAT=fernet",
            ))
        }
        Held::String(value) => writes.push(Write::SetString {
            key: to.clone(),
            value: value.clone(),
            ttl: Ttl::Clear,
        }),
        Held::List(items) => writes.push(Write::ReplaceList {
            key: to.clone(),
            items: items.iter().cloned().map(ListItem::New).collect(),
            ttl: Ttl::Clear,
        }),
        Held::Hash(fields) => {
            writes.push(Write::Delete { key: to.clone() });
            writes.extend(fields.iter().map(|(field, value)| Write::HSetField {
                key: to.clone(),
                field: field.clone(),
                value: value.clone(),
            }));
        }
    }
    if whole.expire_at >= 0 {
        writes.push(Write::ExpireAt {
            key: to.clone(),
            at: whole.expire_at,
        });
    }
    writes.push(Write::Delete { key: from.clone() });
    done_with(answer(true), writes)
}
