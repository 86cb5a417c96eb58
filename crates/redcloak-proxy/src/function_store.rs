//! Where redcloak keeps its clients' function libraries in Redis: in a Redis *function
//! library* of its own, [`LIBRARY`], whose one function ([`READ`]) returns them.
//!
//! Redis keeps function libraries outside the keyspace: FLUSHALL / FLUSHDB leave them, DBSIZE,
//! RANDOMKEY, SCAN and KEYS do not see them, and they are saved, replicated and restored with
//! the data. Storing the clients' libraries there gives them exactly the life Redis's own
//! functions have. (Before, they were a hash in the keyspace, [`LEGACY_KEY`]: a key the
//! client could see, count and delete with FLUSHALL. It is moved here the first time it is
//! found, and deleted.)
//!
//! # Security
//! The library's source holds, for each client library, its name and its code *sealed* (the
//! same ciphertext the hash held, bound to [`LEGACY_KEY`] and the library name), both
//! hex-encoded: Redis, its logs, `FUNCTION LIST WITHCODE` and `FUNCTION DUMP` on Redis see
//! library names (plaintext by design, like key names) and ciphertext, never code. Clients of
//! redcloak never reach this library: FUNCTION and FCALL are answered by redcloak's own
//! script engine, which does not hold it.

use bytes::Bytes;
use redcloak_commands::resp::Frame;

/// The Redis function library that holds the clients' libraries.
pub const LIBRARY: &str = "redcloak_internal";

/// Its one function: returns `{name, sealed code, name, sealed code, …}`, hex-encoded.
pub const READ: &str = "redcloak_internal_libraries";

/// The hash that held the libraries before (library name → sealed code). The sealed code is
/// still bound to it (and to the library name), so that moving it changes no ciphertext.
pub const LEGACY_KEY: &[u8] = b"redcloak:internal:functions";

fn word(w: &'static [u8]) -> Bytes {
    Bytes::from_static(w)
}

/// The command that reads the stored libraries (answered by [`parse`]).
pub fn read_command() -> Vec<Bytes> {
    vec![
        word(b"FCALL_RO"),
        Bytes::from_static(READ.as_bytes()),
        word(b"0"),
    ]
}

/// The command that stores `sealed` (library name → sealed code) in place of what is
/// stored: FUNCTION LOAD REPLACE of the library, or FUNCTION DELETE of it when there is no
/// library left to store.
pub fn write_command(sealed: &[(Bytes, Bytes)]) -> Vec<Bytes> {
    if sealed.is_empty() {
        return vec![
            word(b"FUNCTION"),
            word(b"DELETE"),
            Bytes::from_static(LIBRARY.as_bytes()),
        ];
    }
    vec![
        word(b"FUNCTION"),
        word(b"LOAD"),
        word(b"REPLACE"),
        Bytes::from(source(sealed)),
    ]
}

/// The Lua source of [`LIBRARY`] holding `sealed`.
pub fn source(sealed: &[(Bytes, Bytes)]) -> String {
    let mut out = format!(
        "#!lua name={LIBRARY}\n\
         -- Written by redcloak: its clients' function libraries (name, encrypted code), \
         hex-encoded. Do not edit: redcloak replaces it whenever its clients change them.\n\
         local stored = {{\n"
    );
    for (name, code) in sealed {
        out.push('\'');
        push_hex(&mut out, name);
        out.push_str("', '");
        push_hex(&mut out, code);
        out.push_str("',\n");
    }
    out.push_str(&format!(
        "}}\nredis.register_function{{function_name = '{READ}', \
         callback = function() return stored end, flags = {{'no-writes'}}}}\n"
    ));
    out
}

/// What [`read_command`] was answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// The stored libraries (library name → sealed code).
    Stored(Vec<(Bytes, Bytes)>),
    /// Redis has no such library: nothing stored yet (or still in [`LEGACY_KEY`]).
    Missing,
    /// Redis refused the read (an ACL without FCALL_RO, a Redis before 7.0…): its error.
    Refused(Bytes),
    /// A reply that is not what [`LIBRARY`] returns (someone else's library of that name).
    Unreadable,
}

/// Reads the reply to [`read_command`].
pub fn parse(reply: Frame) -> Read {
    let items = match reply {
        Frame::Error(e) if &e[..] == b"ERR Function not found" => return Read::Missing,
        Frame::Error(e) => return Read::Refused(e),
        Frame::Array(items) => items,
        _ => return Read::Unreadable,
    };
    if items.len() % 2 != 0 {
        return Read::Unreadable;
    }
    let mut decoded = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Frame::Bulk(hex) => match unhex(&hex) {
                Some(bytes) => decoded.push(Bytes::from(bytes)),
                None => return Read::Unreadable,
            },
            _ => return Read::Unreadable,
        }
    }
    let mut it = decoded.into_iter();
    Read::Stored(std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect())
}

/// Whether `reply` to [`write_command`] says the libraries were stored.
pub fn written(reply: &Frame, sealed: &[(Bytes, Bytes)]) -> bool {
    match reply {
        Frame::Bulk(name) => &name[..] == LIBRARY.as_bytes(),
        Frame::Simple(ok) => &ok[..] == b"OK",
        // FUNCTION DELETE of a library that is not there: nothing was stored, as wanted.
        Frame::Error(e) => sealed.is_empty() && &e[..] == b"ERR Library not found",
        _ => false,
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
}

fn unhex(hex: &[u8]) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    hex.chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        let sealed = vec![
            (
                Bytes::from_static(b"lib_a"),
                Bytes::from_static(b"\0\x01'\"]]\n\xff"),
            ),
            (Bytes::from_static(b"b"), Bytes::from_static(b"")),
        ];
        let src = source(&sealed);
        assert!(src.starts_with("#!lua name=redcloak_internal\n"));
        // Only hex between the quotes: no byte of the code can end the string literal.
        assert!(!src.contains("lib_a"));
        // Each entry line is `'NAME', 'CODE',`: the parts at 1 and 3 between quotes.
        let hexes: Vec<Frame> = src
            .lines()
            .filter(|l| l.starts_with('\''))
            .flat_map(|l| {
                let parts: Vec<&str> = l.split('\'').collect();
                [parts[1], parts[3]]
            })
            .map(|s| Frame::Bulk(Bytes::copy_from_slice(s.as_bytes())))
            .collect();
        assert_eq!(hexes.len(), 4);
        assert_eq!(parse(Frame::Array(hexes)), Read::Stored(sealed));
    }

    #[test]
    fn replies_other_than_the_library_are_told_apart() {
        let err = |e: &'static [u8]| Frame::Error(Bytes::from_static(e));
        assert_eq!(parse(err(b"ERR Function not found")), Read::Missing);
        assert_eq!(
            parse(err(b"NOPERM no permissions")),
            Read::Refused(Bytes::from_static(b"NOPERM no permissions"))
        );
        assert_eq!(parse(Frame::Integer(1)), Read::Unreadable);
        let odd = Frame::Array(vec![Frame::Bulk(Bytes::from_static(b"00"))]);
        assert_eq!(parse(odd), Read::Unreadable);
        let not_hex = Frame::Array(vec![
            Frame::Bulk(Bytes::from_static(b"zz")),
            Frame::Bulk(Bytes::from_static(b"00")),
        ]);
        assert_eq!(parse(not_hex), Read::Unreadable);
        assert_eq!(parse(Frame::Array(vec![])), Read::Stored(vec![]));
    }

    #[test]
    fn an_empty_set_of_libraries_deletes_the_library() {
        let cmd = write_command(&[]);
        assert_eq!(&cmd[1][..], b"DELETE");
        assert!(written(
            &Frame::Error(Bytes::from_static(b"ERR Library not found")),
            &[]
        ));
        let one = [(Bytes::from_static(b"a"), Bytes::from_static(b"b"))];
        assert!(!written(
            &Frame::Error(Bytes::from_static(b"ERR Library not found")),
            &one
        ));
        assert!(written(
            &Frame::Bulk(Bytes::from_static(b"redcloak_internal")),
            &one
        ));
    }
}
