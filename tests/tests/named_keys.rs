//! Error messages name the right key (issue 10, class 6).
//!
//! When a stored value does not decrypt, the error names the key it came from — found by the
//! command table's key positions, like Redis finds keys. The review saw `XINFO STREAM s` name
//! `'STREAM'` and `BLMPOP 0 1 k LEFT` name `'1'`. Here every command that returns values is run
//! on keys holding undecryptable data, and the names quoted in its error must be exactly its
//! keys: never an option word, a count, an ID, a group or consumer name.

use bytes::BytesMut;
use redcloak_e2e::diff::{error_text, exchange};
use redcloak_e2e::Stack;

/// The `'…'`-quoted names in an error text.
fn quoted(text: &str) -> Vec<String> {
    text.split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[test]
fn undecryptable_errors_name_exactly_the_command_s_keys() {
    let stack = Stack::start();
    let mut d = stack.direct();
    let plain = b"planted-plaintext";
    for cmd in [
        &[&b"SET"[..], b"k", plain][..],
        &[b"HSET", b"h", b"f", plain],
        &[b"RPUSH", b"l", plain, plain],
        &[b"XADD", b"s", b"1-1", b"f", plain],
        &[b"XGROUP", b"CREATE", b"s", b"grp", b"0"],
    ] {
        d.cmd(cmd).unwrap();
    }
    // (command, the keys its error must name)
    let cases: &[(&[&str], &[&str])] = &[
        (&["GET", "k"], &["k"]),
        (&["GETEX", "k", "EX", "100"], &["k"]),
        (&["GETEX", "k", "persist\0"], &["k"]),
        (&["MGET", "missing", "k", "other"], &["k"]),
        (&["HGET", "h", "f"], &["h"]),
        (&["HMGET", "h", "f", "g"], &["h"]),
        (&["HGETALL", "h"], &["h"]),
        (&["HVALS", "h"], &["h"]),
        (&["HRANDFIELD", "h", "1", "WITHVALUES"], &["h"]),
        (&["HSCAN", "h", "0", "COUNT", "10"], &["h"]),
        (&["LRANGE", "l", "0", "-1"], &["l"]),
        (&["LINDEX", "l", "0"], &["l"]),
        (&["XRANGE", "s", "-", "+", "COUNT", "5"], &["s"]),
        (&["XREVRANGE", "s", "+", "-"], &["s"]),
        (&["XREAD", "COUNT", "5", "STREAMS", "s", "0"], &["s"]),
        (
            &["XREAD", "count", "5", "streams\0", "s", "s2", "0", "0"],
            &["s", "s2"],
        ),
        (
            &[
                "XREADGROUP",
                "GROUP",
                "grp",
                "consumer",
                "COUNT",
                "1",
                "STREAMS",
                "s",
                ">",
            ],
            &["s"],
        ),
        (&["XINFO", "STREAM", "s"], &["s"]),
        (&["XINFO", "STREAM", "s", "FULL", "COUNT", "5"], &["s"]),
        (&["XCLAIM", "s", "grp", "consumer", "0", "1-1"], &["s"]),
        (
            &["XAUTOCLAIM", "s", "grp", "consumer", "0", "0", "COUNT", "5"],
            &["s"],
        ),
        (&["LMOVE", "l", "l2", "RIGHT", "LEFT"], &["l", "l2"]),
        (
            &["LMPOP", "2", "empty", "l", "RIGHT", "COUNT", "1"],
            &["empty", "l"],
        ),
        (&["BLMPOP", "1", "1", "l", "LEFT"], &["l"]),
        (
            &["BLMPOP", "0.5", "2", "empty", "l", "right", "count", "1"],
            &["empty", "l"],
        ),
        (&["BLPOP", "empty", "l", "1"], &["empty", "l"]),
        (&["BRPOP", "l", "1"], &["l"]),
        (&["LPOP", "l", "1"], &["l"]),
        (&["SET", "k", "new", "GET"], &["k"]),
    ];
    let mut c = stack.raw();
    let mut buf = BytesMut::new();
    for (cmd, keys) in cases {
        let args: Vec<Vec<u8>> = cmd.iter().map(|a| a.as_bytes().to_vec()).collect();
        let reply = exchange(&mut c, &mut buf, &args);
        let err = error_text(&reply.frame).unwrap_or_else(|| {
            panic!(
                "{cmd:?}: not an error: {:?}",
                String::from_utf8_lossy(&reply.raw)
            )
        });
        assert!(err.contains("cannot be decrypted"), "{cmd:?}: {err}");
        let named = quoted(&err);
        let expected: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        assert_eq!(named, expected, "{cmd:?}: {err}");
        assert!(!err.contains("planted-plaintext"), "{cmd:?}: {err}");
        // Put the list back to two undecryptable values for the next pops.
        if ["LMOVE", "LMPOP", "BLMPOP", "BLPOP", "BRPOP", "LPOP"].contains(&cmd[0]) {
            redcloak_e2e::wait_for(std::time::Duration::from_secs(5), || {
                matches!(d.cmd(&[b"LLEN", b"l"]).unwrap(),
                    redcloak_commands::resp::Frame::Integer(n) if n >= 1)
            });
            d.cmd(&[b"DEL", b"l", b"l2"]).unwrap();
            d.cmd(&[b"RPUSH", b"l", plain, plain]).unwrap();
        }
        if cmd[0] == "SET" {
            d.cmd(&[b"SET", b"k", plain]).unwrap();
        }
    }
}
