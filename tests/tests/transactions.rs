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

/// A transaction redcloak carries out itself (it holds a script or an emulated command)
/// answers in the client's protocol from redcloak's first command on the connection: a
/// script's nil is RESP3's null for a RESP3 client, and a script's `redis.call` gets RESP2
/// replies (a flat HGETALL), as in Redis — side by side with a plain Redis, RESP2 and RESP3.
/// (redcloak once took the client's protocol for RESP2 until its first reply inside the
/// transaction: a RESP3 client got `$-1` in the EXEC array, and redis-py waited forever.)
#[test]
fn transactions_redcloak_runs_answer_in_the_clients_protocol() {
    use redcloak_e2e::plain::{side_by_side, PlainRedis};
    let stack = Stack::start();
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    let c = |parts: &[&'static str]| -> Vec<&'static [u8]> {
        parts.iter().map(|p| p.as_bytes()).collect()
    };
    let sequences = vec![
        vec![
            c(&["MULTI"]),
            c(&[
                "EVAL",
                "redis.call('SADD', KEYS[1], ARGV[1])",
                "1",
                "s",
                "m",
            ]),
            c(&["EVAL", "return false", "0"]),
            c(&["EXEC"]),
            c(&["SMEMBERS", "s"]),
        ],
        vec![
            c(&["HSET", "h", "f", "v"]),
            c(&["MULTI"]),
            c(&["EVAL", "return #redis.call('HGETALL', KEYS[1])", "1", "h"]),
            c(&["EVAL", "return redis.call('HGETALL', KEYS[1])", "1", "h"]),
            c(&["EXEC"]),
        ],
        vec![
            c(&["MULTI"]),
            c(&["LPOS", "missing", "x"]),
            c(&["INCR", "n"]),
            c(&["EVAL", "return redis.call('GET', KEYS[1])", "1", "n"]),
            c(&["EXEC"]),
        ],
    ];
    assert!(side_by_side(&stack, &plain, &sequences) >= 28);

    // HELLO 3 and a transaction, or a script, in one write: the protocol changes while
    // redcloak still owes the HELLO's reply when EXEC or EVAL comes.
    let pipelines: [Vec<Vec<&[u8]>>; 2] = [
        vec![
            c(&["HELLO", "3"]),
            c(&["MULTI"]),
            c(&["EVAL", "return nil", "0"]),
            c(&[
                "EVAL",
                "return redis.call('HGETALL', KEYS[1])",
                "1",
                "nohash",
            ]),
            c(&["EXEC"]),
        ],
        vec![
            c(&["HELLO", "3"]),
            c(&["EVAL", "return nil", "0"]),
            c(&["HSET", "h2", "f", "v"]),
            c(&["EVAL", "return #redis.call('HGETALL', KEYS[1])", "1", "h2"]),
        ],
    ];
    for pipelined in pipelines {
        let mut out = Vec::new();
        for command in &pipelined {
            out.extend(redcloak_e2e::diff::command(command));
        }
        let mut replies = Vec::new();
        for port in [stack.proxy.addr.port(), plain.port] {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(&out).unwrap();
            let mut buf = bytes::BytesMut::new();
            let frames: Vec<_> = (0..pipelined.len())
                .map(|_| redcloak_e2e::read_frame(&mut s, &mut buf).expect("a reply"))
                .collect();
            replies.push(frames[1..].to_vec()); // HELLO's server details differ
        }
        assert_eq!(replies[0], replies[1], "pipelined after HELLO 3");
    }
}

/// A RESTORE whose payload redcloak did not make (it could hold plaintext, so it never
/// reaches Redis), queued in a transaction: queued as Redis queues it, and failed at EXEC
/// with Redis's own error after Redis's own checks of its other arguments (BUSYKEY, options,
/// TTL); the rest of the transaction runs. Side by side with a plain Redis, RESP2 and RESP3.
#[test]
fn a_restore_of_a_foreign_payload_fails_at_exec_as_in_redis() {
    use redcloak_e2e::diff::{converse, normalize, show, show_step, Monitor, PlainRedis, Step};
    let stack = Stack::start();
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    let mut monitor = Monitor::start(&stack);
    let w = |line: &str| -> Vec<Vec<u8>> {
        line.split_whitespace()
            .map(|s| s.as_bytes().to_vec())
            .collect()
    };
    let payload = b"foreignPayloadMarker\x00\x0a\x00\x00\x00\x00\x00\x00\x00\x00".to_vec();
    let restore = |key: &str, ttl: &str, extra: &[&str]| -> Vec<Vec<u8>> {
        let mut c = w(&format!("RESTORE {key} {ttl}"));
        c.push(payload.clone());
        c.extend(extra.iter().map(|e| e.as_bytes().to_vec()));
        c
    };
    for proto in ["2", "3"] {
        let steps = vec![
            Step::Pipeline(vec![w(&format!("HELLO {proto}")), w("FLUSHALL")]),
            Step::Pipeline(vec![
                w("MULTI"),
                w("SET a 1"),
                restore("k", "0", &[]),
                restore("a", "0", &[]),
                restore("a", "0", &["REPLACE"]),
                restore("k", "0", &["NOSUCHOPTION"]),
                restore("k", "-5", &[]),
                restore("k", "0", &["REPLACE", "ABSTTL", "IDLETIME", "5"]),
                w("GET a"),
                w("EXEC"),
            ]),
            Step::Pipeline(vec![w("EXISTS k"), w("GET a")]),
        ];
        let theirs = converse(([127, 0, 0, 1], plain.port).into(), &steps);
        let ours = converse(stack.proxy.addr, &steps);
        for (i, (t, o)) in theirs.iter().zip(&ours).enumerate().skip(1) {
            assert_eq!(
                normalize(t),
                normalize(o),
                "RESP{proto}, step {i}: {}\n  Redis:    {}\n  redcloak: {}",
                show_step(&steps[i]),
                show(t),
                show(o)
            );
        }
        let exec = show(&ours[1]);
        assert!(
            exec.contains("DUMP payload version or checksum are wrong") && exec.contains("BUSYKEY"),
            "{exec}"
        );
    }
    monitor.assert_never_seen(&["foreignPayloadMarker"]);
    stack.assert_all_values_encrypted();
}
