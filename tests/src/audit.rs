//! The ciphertext audit: read everything Redis holds, around redcloak, and check that every
//! value is a token the key ring opens and every set, sorted-set and geo member is a member
//! ciphertext it opens.

use bytes::Bytes;
use redcloak_commands::resp::Frame;
use redcloak_crypto::{Binding, KeyRing};

use crate::Direct;

/// Checks every string, hash, list and stream value and every set, sorted-set (and so geo)
/// member in every database that has keys; panics on the first one that is not ciphertext.
/// A HyperLogLog (a string Redis built from member ciphertexts with PFADD) is accepted once
/// Redis itself confirms it is one (PFCOUNT). Returns how many values and members were
/// checked.
pub fn assert_all_values_encrypted(direct: &mut Direct, ring: &KeyRing) -> usize {
    let Frame::Bulk(info) = direct.cmd(&[b"INFO", b"keyspace"]).expect("INFO keyspace") else {
        panic!("INFO reply")
    };
    let dbs: Vec<String> = String::from_utf8_lossy(&info)
        .lines()
        .filter_map(|l| {
            l.strip_prefix("db")
                .and_then(|r| r.split(':').next())
                .map(str::to_owned)
        })
        .collect();
    let mut checked = 0;
    for db in dbs {
        direct.cmd(&[b"SELECT", db.as_bytes()]).expect("SELECT");
        for key in direct.keys() {
            let Frame::Simple(kind) = direct.cmd(&[b"TYPE", &key]).expect("TYPE") else {
                panic!("TYPE reply")
            };
            let members: Vec<Bytes> = match &kind[..] {
                b"set" => bulks(direct.cmd(&[b"SMEMBERS", &key]).expect("SMEMBERS")),
                b"zset" => bulks(direct.cmd(&[b"ZRANGE", &key, b"0", b"-1"]).expect("ZRANGE")),
                _ => Vec::new(),
            };
            for member in &members {
                assert!(
                    ring.decrypt_member(member).is_ok(),
                    "db{db} key {key:?} ({}) holds a member that is not redcloak ciphertext: {:?}",
                    String::from_utf8_lossy(&kind),
                    String::from_utf8_lossy(&member[..member.len().min(40)])
                );
                checked += 1;
            }
            if !members.is_empty() {
                continue;
            }
            // Each value with the hash or stream field it is stored under (None: the key's own).
            let values: Vec<(Option<Bytes>, Bytes)> = match &kind[..] {
                b"string" => match direct.get(&key) {
                    Some(v) if v.starts_with(b"HYLL") && is_hyperloglog(direct, &key) => {
                        checked += 1;
                        continue;
                    }
                    other => other.into_iter().map(|v| (None, v)).collect(),
                },
                b"hash" => pairs(direct.cmd(&[b"HGETALL", &key]).expect("HGETALL"))
                    .into_iter()
                    .map(|(f, v)| (Some(f), v))
                    .collect(),
                b"list" => bulks(direct.cmd(&[b"LRANGE", &key, b"0", b"-1"]).expect("LRANGE"))
                    .into_iter()
                    .map(|v| (None, v))
                    .collect(),
                b"stream" => match direct.cmd(&[b"XRANGE", &key, b"-", b"+"]).expect("XRANGE") {
                    Frame::Array(entries) => entries
                        .into_iter()
                        .flat_map(|e| match e {
                            Frame::Array(mut parts) if parts.len() == 2 => {
                                pairs(parts.pop().unwrap_or(Frame::Null))
                            }
                            _ => Vec::new(),
                        })
                        .map(|(f, v)| (Some(f), v))
                        .collect(),
                    other => panic!("XRANGE {other:?}"),
                },
                other => panic!(
                    "db{db} key {key:?} is a {}: redcloak never writes that type",
                    String::from_utf8_lossy(other)
                ),
            };
            let db_index: u32 = db.parse().expect("database index");
            for (field, value) in values {
                let at = match &field {
                    Some(f) => Binding::field(db_index, &key, f),
                    None => Binding::key(db_index, &key),
                };
                // Either format; an AES-GCM envelope only where it is stored.
                assert!(
                    ring.decrypt_value(&value, &at).is_ok(),
                    "db{db} key {key:?} ({}) holds a value that is not redcloak ciphertext \
                     opening at its place: {:?}",
                    String::from_utf8_lossy(&kind),
                    String::from_utf8_lossy(&value[..value.len().min(40)])
                );
                checked += 1;
            }
        }
    }
    direct.cmd(&[b"SELECT", b"0"]).expect("SELECT 0");
    checked
}

/// Redis counts it: it is a HyperLogLog, not a value someone wrote around redcloak.
fn is_hyperloglog(direct: &mut Direct, key: &[u8]) -> bool {
    matches!(direct.cmd(&[b"PFCOUNT", key]), Ok(Frame::Integer(_)))
}

fn bulks(frame: Frame) -> Vec<Bytes> {
    match frame {
        Frame::Array(items) => items
            .into_iter()
            .filter_map(|f| {
                if let Frame::Bulk(b) = f {
                    Some(b)
                } else {
                    None
                }
            })
            .collect(),
        other => panic!("expected an array, got {other:?}"),
    }
}

/// `[name, value, …]` as (name, value) pairs.
fn pairs(frame: Frame) -> Vec<(Bytes, Bytes)> {
    let mut items = bulks(frame).into_iter();
    std::iter::from_fn(|| Some((items.next()?, items.next()?))).collect()
}
