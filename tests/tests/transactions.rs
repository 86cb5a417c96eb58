//! MULTI/EXEC/DISCARD/WATCH through redcloak.

use std::io::Write;
use std::time::Duration;

use redcloak_e2e::{read_until_closed, Stack};
use redis::{cmd, Value};

#[test]
fn exec_replies_are_decrypted_by_each_queued_command() {
    let stack = Stack::start();
    let mut c = stack.client();
    let _: () = cmd("SET").arg("before").arg("old").query(&mut c).unwrap();
    type Replies = (
        String,
        String,
        Vec<Option<String>>,
        i64,
        Vec<String>,
        Vec<String>,
        String,
    );
    let (set, get, mget, hset, hgetall, lrange, getset): Replies = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("a")
        .arg("1")
        .cmd("GET")
        .arg("before")
        .cmd("MGET")
        .arg("a")
        .arg("none")
        .cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("v")
        .cmd("HGETALL")
        .arg("h")
        .cmd("RPUSH")
        .arg("l")
        .arg("x")
        .ignore()
        .cmd("LRANGE")
        .arg("l")
        .arg(0)
        .arg(-1)
        .cmd("GETSET")
        .arg("before")
        .arg("new")
        .query(&mut c)
        .unwrap();
    assert_eq!(set, "OK");
    assert_eq!(get, "old");
    assert_eq!(mget, vec![Some("1".into()), None]);
    assert_eq!(hset, 1);
    assert_eq!(hgetall, vec!["f", "v"]);
    assert_eq!(lrange, vec!["x"]);
    assert_eq!(getset, "old");
    assert!(stack.assert_all_values_encrypted() >= 4);
}

#[test]
fn raw_multi_exec_with_queued_replies_and_errors_inside() {
    let stack = Stack::start();
    let mut raw = stack.raw();
    // LPUSH on a string key fails at EXEC time: the error is an element of EXEC's array.
    raw.write_all(b"MULTI\r\nSET k v\r\nLPUSH k x\r\nGET k\r\nEXEC\r\nQUIT\r\n")
        .unwrap();
    let (got, _) = read_until_closed(&mut raw, Duration::from_secs(5));
    let got = String::from_utf8_lossy(&got);
    assert_eq!(
        got,
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n$1\r\nv\r\n+OK\r\n"
    );
}

#[test]
fn a_refused_command_inside_multi_aborts_the_transaction_like_a_syntax_error() {
    let stack = Stack::start();
    let mut raw = stack.raw();
    raw.write_all(
        b"MULTI\r\nSET k v\r\nOBJECT ENCODING k\r\nNOSUCHCOMMAND\r\nEXEC\r\nGET k\r\nQUIT\r\n",
    )
    .unwrap();
    let (got, _) = read_until_closed(&mut raw, Duration::from_secs(5));
    let got = String::from_utf8_lossy(&got);
    let lines: Vec<&str> = got.split("\r\n").collect();
    assert_eq!(lines[0], "+OK");
    assert_eq!(lines[1], "+QUEUED");
    assert!(
        lines[2].starts_with("-ERR redcloak: OBJECT ENCODING is not supported"),
        "{got}"
    );
    assert!(
        lines[3].starts_with("-ERR unknown command 'NOSUCHCOMMAND'"),
        "Redis's own wording for a command Redis does not know: {got}"
    );
    assert_eq!(
        lines[4],
        "-EXECABORT Transaction discarded because of previous errors."
    );
    assert_eq!(lines[5], "$-1", "the transaction did not run: {got}");
    assert_eq!(lines[6], "+OK");
    // And Redis is not left inside MULTI: the connection works normally (checked by GET above).
}

#[test]
fn watch_discard_and_nested_errors() {
    let stack = Stack::start();
    let mut c = stack.client();
    let mut other = stack.client();
    let _: () = cmd("SET").arg("w").arg("1").query(&mut c).unwrap();
    let _: () = cmd("WATCH").arg("w").query(&mut c).unwrap();
    let _: () = cmd("SET")
        .arg("w")
        .arg("changed")
        .query(&mut other)
        .unwrap();
    let _: () = cmd("MULTI").query(&mut c).unwrap();
    let _: Value = cmd("SET").arg("w").arg("mine").query(&mut c).unwrap();
    let r: Value = cmd("EXEC").query(&mut c).unwrap();
    assert_eq!(r, Value::Nil, "WATCH aborted the transaction");
    let v: String = cmd("GET").arg("w").query(&mut c).unwrap();
    assert_eq!(v, "changed");
    let _: () = cmd("UNWATCH").query(&mut c).unwrap();

    let _: () = cmd("MULTI").query(&mut c).unwrap();
    let _: Value = cmd("SET").arg("w").arg("discarded").query(&mut c).unwrap();
    let _: () = cmd("DISCARD").query(&mut c).unwrap();
    let v: String = cmd("GET").arg("w").query(&mut c).unwrap();
    assert_eq!(v, "changed");
    let err = cmd("EXEC").query::<Value>(&mut c).unwrap_err().to_string();
    assert!(err.contains("EXEC without MULTI"), "{err}");
}

#[test]
fn a_client_that_disconnects_mid_transaction_leaves_nothing_behind() {
    let stack = Stack::start();
    let mut direct = stack.direct();
    // Upstream connections inside MULTI (CLIENT LIST flag "x").
    let in_multi = |d: &mut redcloak_e2e::Direct| match d.cmd(&[b"CLIENT", b"LIST"]).unwrap() {
        redcloak_commands::resp::Frame::Bulk(list) => String::from_utf8_lossy(&list)
            .lines()
            .filter(|l| {
                l.split(' ')
                    .any(|f| f.starts_with("flags=") && f.contains('x'))
            })
            .count(),
        other => panic!("{other:?}"),
    };
    {
        let mut raw = stack.raw();
        raw.write_all(b"MULTI\r\nSET half done\r\n").unwrap();
        let mut reply = [0u8; 64];
        let mut got = Vec::new();
        while got.len() < b"+OK\r\n+QUEUED\r\n".len() {
            let n = std::io::Read::read(&mut raw, &mut reply).unwrap();
            got.extend_from_slice(&reply[..n]);
        }
        assert_eq!(&got[..], b"+OK\r\n+QUEUED\r\n");
        // redcloak queues a transaction itself until EXEC: Redis never sees half of one.
        assert_eq!(
            in_multi(&mut direct),
            0,
            "no upstream connection is inside MULTI"
        );
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(in_multi(&mut direct), 0);
    assert_eq!(direct.get(b"half"), None, "the half transaction never ran");
}
