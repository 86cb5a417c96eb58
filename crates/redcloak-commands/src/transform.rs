//! The value transforms: encrypt value arguments on the way to Redis, decrypt values in its
//! replies on the way back, and the error texts redcloak itself answers with.
//!
//! # Security
//! A reply that should hold a value but does not decrypt is never passed through: it becomes
//! an error reply ([`Undecryptable`]). Error texts never contain arguments or values; a key
//! name appears only in the reply to the client that named it, sanitised and truncated.

use bytes::{Bytes, BytesMut};
use redcloak_crypto::{DecryptError, KeyRing};

use crate::resp::{self, Frame, Limits, ProtocolError};
use crate::table::{CommandSpec, Refusal, ReplyRule};

/// Writes `args` as a RESP array for Redis, each value argument (per the row's
/// [`ValueArgs`](crate::table::ValueArgs)) replaced by its ciphertext. Returns how many values
/// were encrypted.
pub fn encode_request(
    spec: &CommandSpec,
    args: &[Bytes],
    ring: &KeyRing,
    out: &mut BytesMut,
) -> usize {
    resp::write_array_len(out, args.len());
    let mut encrypted = 0;
    for (index, arg) in args.iter().enumerate() {
        if spec.values.is_value(index) {
            resp::write_bulk(out, &ring.encrypt(arg));
            encrypted += 1;
        } else {
            resp::write_bulk(out, arg);
        }
    }
    encrypted
}

/// A value in a reply that no key of the ring opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Undecryptable {
    /// Position of the value in an array reply (`MGET`), `None` for a single value.
    pub index: Option<usize>,
    /// What was wrong with it.
    pub error: DecryptError,
}

/// Why a reply could not be transformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A value did not decrypt; the client gets [`undecryptable_message`] instead of the reply.
    #[error("a stored value could not be decrypted")]
    Undecryptable(Undecryptable),
    /// The reply bytes were not one valid RESP frame (a Redis or framing bug: close the session).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

/// Appends the client's view of one complete reply (`frame` holds exactly its bytes) to `out`,
/// decrypting the parts the rule names. Returns the number of values decrypted. On error
/// nothing is appended.
pub fn decode_reply(
    rule: ReplyRule,
    frame: Bytes,
    ring: &KeyRing,
    limits: &Limits,
    out: &mut BytesMut,
) -> Result<usize, ReplyError> {
    let first = frame.first().copied();
    match (rule, first) {
        (ReplyRule::Value, Some(b'$')) if !frame.starts_with(b"$-1") => {
            let data = match parse_whole(&frame, limits)? {
                Frame::Bulk(data) => data,
                _ => return Err(ProtocolError::Malformed("expected a bulk string").into()),
            };
            let plain = ring
                .decrypt(&data)
                .map_err(|error| ReplyError::Undecryptable(Undecryptable { index: None, error }))?;
            resp::write_bulk(out, &plain);
            Ok(1)
        }
        (ReplyRule::Values, Some(b'*')) if !frame.starts_with(b"*-1") => {
            let items = match parse_whole(&frame, limits)? {
                Frame::Array(items) => items,
                _ => return Err(ProtocolError::Malformed("expected an array").into()),
            };
            // Decrypt everything first so that a failure appends nothing.
            let mut plain = Vec::with_capacity(items.len());
            for (index, item) in items.into_iter().enumerate() {
                plain.push(match item {
                    Frame::Bulk(data) => {
                        Frame::Bulk(Bytes::from(ring.decrypt(&data).map_err(|error| {
                            ReplyError::Undecryptable(Undecryptable {
                                index: Some(index),
                                error,
                            })
                        })?))
                    }
                    other => other,
                });
            }
            let decrypted = plain.iter().filter(|f| matches!(f, Frame::Bulk(_))).count();
            Frame::Array(plain).encode(out);
            Ok(decrypted)
        }
        // Nil, status, integer and error replies carry no value.
        _ => {
            out.extend_from_slice(&frame);
            Ok(0)
        }
    }
}

fn parse_whole(frame: &Bytes, limits: &Limits) -> Result<Frame, ProtocolError> {
    match Frame::parse(frame, limits)? {
        Some((parsed, used)) if used == frame.len() => Ok(parsed),
        _ => Err(ProtocolError::Malformed("reply is not exactly one frame")),
    }
}

// === error texts ===

/// `-ERR` text for a command that is not in the table.
pub fn unknown_command_message(name: &[u8]) -> String {
    format!(
        "ERR redcloak: command '{}' is not supported: redcloak forwards only the commands \
         it can keep encrypted (see docs/commands.md)",
        printable(name)
    )
}

/// `-ERR` text for a refused command.
pub fn refusal_message(spec: &CommandSpec, refusal: &Refusal) -> String {
    let mut msg = format!(
        "ERR redcloak: {} is not supported on encrypted values: {}",
        spec.name, refusal.reason
    );
    if let Some(alternative) = refusal.alternative {
        msg.push_str("; instead, ");
        msg.push_str(alternative);
    }
    msg
}

/// `-ERR` text for a wrong argument count, in Redis's own words.
pub fn arity_message(spec: &CommandSpec) -> String {
    format!(
        "ERR wrong number of arguments for '{}' command",
        spec.name.to_ascii_lowercase()
    )
}

/// `-ERR` text for a value that does not decrypt. `keys` are the key arguments of the command
/// (`args[1..]` for the string commands), used to name the key whose value is unreadable.
pub fn undecryptable_message(spec: &CommandSpec, keys: &[Bytes], problem: Undecryptable) -> String {
    let key = keys.get(problem.index.unwrap_or(0)).map(|k| printable(k));
    let reason = match problem.error {
        DecryptError::NotAToken => {
            "it is not a Fernet token (it was written around redcloak, in plaintext or in another format)"
        }
        DecryptError::NoMatchingKey => {
            "no key in REDIS_ENCRYPTION_KEY opens it (written with another key, or tampered with)"
        }
        DecryptError::FromTheFuture => {
            "its timestamp is more than 60 s ahead of this host's clock (check clock sync)"
        }
        _ => "it is not a value redcloak can read",
    };
    match key {
        Some(key) => format!(
            "ERR redcloak: {}: the value stored at key '{key}' cannot be decrypted: {reason}",
            spec.name
        ),
        None => format!(
            "ERR redcloak: {}: a stored value cannot be decrypted: {reason}",
            spec.name
        ),
    }
}

/// A short printable rendering of client-supplied bytes for an error message (ASCII graphic
/// characters kept, everything else `?`, at most 64 characters).
pub fn printable(bytes: &[u8]) -> String {
    const MAX: usize = 64;
    let mut s: String = bytes
        .iter()
        .take(MAX)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect();
    if bytes.len() > MAX {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::lookup;

    /// A fresh key ring per test: no key material lives in the source.
    fn ring() -> KeyRing {
        KeyRing::parse(&redcloak_crypto::generate_key()).unwrap()
    }

    fn args(parts: &[&[u8]]) -> Vec<Bytes> {
        parts.iter().map(|p| Bytes::copy_from_slice(p)).collect()
    }

    fn parse_request(bytes: &[u8]) -> Vec<Bytes> {
        let mut buf = BytesMut::from(bytes);
        let mut parser = resp::RequestParser::new(Limits::default());
        parser.parse(&mut buf).unwrap().unwrap().args
    }

    #[test]
    fn set_encrypts_only_the_value() {
        let ring = ring();
        let mut out = BytesMut::new();
        let n = encode_request(
            lookup(b"SET").unwrap(),
            &args(&[b"SET", b"k", b"secret", b"EX", b"10"]),
            &ring,
            &mut out,
        );
        assert_eq!(n, 1);
        let sent = parse_request(&out);
        assert_eq!(&sent[0][..], b"SET");
        assert_eq!(&sent[1][..], b"k");
        assert!(
            sent[2].starts_with(b"gAAAAA"),
            "value must be a Fernet token"
        );
        assert_eq!(ring.decrypt(&sent[2]).unwrap(), b"secret");
        assert_eq!(&sent[3][..], b"EX");
        assert_eq!(&sent[4][..], b"10");
    }

    #[test]
    fn mset_encrypts_every_value_and_no_key() {
        let ring = ring();
        let mut out = BytesMut::new();
        let n = encode_request(
            lookup(b"MSET").unwrap(),
            &args(&[b"MSET", b"a", b"1", b"b", b"2"]),
            &ring,
            &mut out,
        );
        assert_eq!(n, 2);
        let sent = parse_request(&out);
        assert_eq!((&sent[1][..], &sent[3][..]), (&b"a"[..], &b"b"[..]));
        assert_eq!(ring.decrypt(&sent[2]).unwrap(), b"1");
        assert_eq!(ring.decrypt(&sent[4]).unwrap(), b"2");
    }

    #[test]
    fn get_reply_is_decrypted_and_nil_passes() {
        let ring = ring();
        let mut reply = BytesMut::new();
        resp::write_bulk(&mut reply, &ring.encrypt(b"hello"));
        let mut out = BytesMut::new();
        let n = decode_reply(
            ReplyRule::Value,
            reply.freeze(),
            &ring,
            &Limits::default(),
            &mut out,
        )
        .unwrap();
        assert_eq!((n, &out[..]), (1, &b"$5\r\nhello\r\n"[..]));

        for passthrough in [&b"$-1\r\n"[..], b"+OK\r\n", b":3\r\n", b"-ERR x\r\n"] {
            let mut out = BytesMut::new();
            decode_reply(
                ReplyRule::Value,
                Bytes::copy_from_slice(passthrough),
                &ring,
                &Limits::default(),
                &mut out,
            )
            .unwrap();
            assert_eq!(&out[..], passthrough);
        }
    }

    #[test]
    fn plaintext_in_redis_is_an_error_not_a_value() {
        let ring = ring();
        let mut out = BytesMut::new();
        let err = decode_reply(
            ReplyRule::Value,
            Bytes::from_static(b"$5\r\nhello\r\n"),
            &ring,
            &Limits::default(),
            &mut out,
        )
        .unwrap_err();
        assert!(out.is_empty());
        let ReplyError::Undecryptable(problem) = err else {
            panic!("{err:?}")
        };
        assert_eq!(problem.error, DecryptError::NotAToken);
        let msg = undecryptable_message(lookup(b"GET").unwrap(), &args(&[b"user:1"]), problem);
        assert!(
            msg.contains("user:1") && msg.contains("redcloak") && !msg.contains("hello"),
            "{msg}"
        );
    }

    #[test]
    fn mget_decrypts_each_element_and_names_the_failing_key() {
        let ring = ring();
        let mut reply = BytesMut::new();
        resp::write_array_len(&mut reply, 3);
        resp::write_bulk(&mut reply, &ring.encrypt(b"one"));
        reply.extend_from_slice(b"$-1\r\n");
        resp::write_bulk(&mut reply, &ring.encrypt(b""));
        let mut out = BytesMut::new();
        let n = decode_reply(
            ReplyRule::Values,
            reply.freeze(),
            &ring,
            &Limits::default(),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            (n, &out[..]),
            (2, &b"*3\r\n$3\r\none\r\n$-1\r\n$0\r\n\r\n"[..])
        );

        let other = self::ring();
        let mut reply = BytesMut::new();
        resp::write_array_len(&mut reply, 2);
        resp::write_bulk(&mut reply, &ring.encrypt(b"one"));
        resp::write_bulk(&mut reply, &other.encrypt(b"two"));
        let err = decode_reply(
            ReplyRule::Values,
            reply.freeze(),
            &ring,
            &Limits::default(),
            &mut out,
        )
        .unwrap_err();
        let ReplyError::Undecryptable(problem) = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            problem,
            Undecryptable {
                index: Some(1),
                error: DecryptError::NoMatchingKey
            }
        );
        let msg = undecryptable_message(lookup(b"MGET").unwrap(), &args(&[b"a", b"b"]), problem);
        assert!(msg.contains("'b'"), "{msg}");
    }

    #[test]
    fn messages_name_redcloak_and_never_arguments() {
        let msg = unknown_command_message(b"FOO\r\nBAR");
        assert!(
            msg.starts_with("ERR redcloak:") && !msg.contains('\n'),
            "{msg}"
        );
        let incr = lookup(b"INCR").unwrap();
        let crate::table::Action::Refuse(refusal) = incr.action else {
            panic!()
        };
        let msg = refusal_message(incr, &refusal);
        assert!(msg.contains("INCR") && msg.contains("instead"), "{msg}");
        assert_eq!(
            arity_message(lookup(b"GET").unwrap()),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(printable(&[b'a'; 100]).chars().count(), 65);
    }
}
