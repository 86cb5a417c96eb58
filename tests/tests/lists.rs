//! Lists through redcloak, including blocking commands.

use std::time::{Duration, Instant};

use redcloak_e2e::{wait_for, Stack};
use redis::cmd;

#[test]
fn list_commands_round_trip_and_store_ciphertext() {
    let stack = Stack::start();
    let mut c = stack.client();
    let n: i64 = cmd("RPUSH")
        .arg("l")
        .arg("b")
        .arg("c")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 2);
    let n: i64 = cmd("LPUSH").arg("l").arg("a").query(&mut c).unwrap();
    assert_eq!(n, 3);
    let n: i64 = cmd("RPUSHX").arg("l").arg("d").query(&mut c).unwrap();
    assert_eq!(n, 4);
    let n: i64 = cmd("LPUSHX").arg("missing").arg("x").query(&mut c).unwrap();
    assert_eq!(n, 0);
    let all: Vec<String> = cmd("LRANGE").arg("l").arg(0).arg(-1).query(&mut c).unwrap();
    assert_eq!(all, vec!["a", "b", "c", "d"]);
    let _: () = cmd("LSET").arg("l").arg(1).arg("B").query(&mut c).unwrap();
    let v: String = cmd("LINDEX").arg("l").arg(1).query(&mut c).unwrap();
    assert_eq!(v, "B");
    let len: i64 = cmd("LLEN").arg("l").query(&mut c).unwrap();
    assert_eq!(len, 4);

    let v: String = cmd("LPOP").arg("l").query(&mut c).unwrap();
    assert_eq!(v, "a");
    let v: Vec<String> = cmd("RPOP").arg("l").arg(2).query(&mut c).unwrap();
    assert_eq!(v, vec!["d", "c"]);
    let _: i64 = cmd("RPUSH")
        .arg("l")
        .arg("x")
        .arg("y")
        .arg("z")
        .query(&mut c)
        .unwrap();
    let (key, vals): (String, Vec<String>) = cmd("LMPOP")
        .arg(2)
        .arg("nope")
        .arg("l")
        .arg("LEFT")
        .arg("COUNT")
        .arg(2)
        .query(&mut c)
        .unwrap();
    assert_eq!(
        (key.as_str(), vals),
        ("l", vec!["B".to_owned(), "x".to_owned()])
    );
    let v: String = cmd("LMOVE")
        .arg("l")
        .arg("other")
        .arg("RIGHT")
        .arg("LEFT")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, "z");
    let v: String = cmd("RPOPLPUSH")
        .arg("l")
        .arg("other")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, "y");
    let other: Vec<String> = cmd("LRANGE")
        .arg("other")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    assert_eq!(other, vec!["y", "z"]);
    let _: () = cmd("LTRIM")
        .arg("other")
        .arg(0)
        .arg(0)
        .query(&mut c)
        .unwrap();

    // Matching elements needs the plaintext: redcloak computes LPOS/LREM/LINSERT itself.
    let _: i64 = cmd("RPUSH")
        .arg("m")
        .arg("a")
        .arg("b")
        .arg("a")
        .query(&mut c)
        .unwrap();
    let at: i64 = cmd("LPOS").arg("m").arg("b").query(&mut c).unwrap();
    assert_eq!(at, 1);
    let n: i64 = cmd("LINSERT")
        .arg("m")
        .arg("AFTER")
        .arg("b")
        .arg("c")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 4);
    let n: i64 = cmd("LREM").arg("m").arg(0).arg("a").query(&mut c).unwrap();
    assert_eq!(n, 2);
    let m: Vec<String> = cmd("LRANGE").arg("m").arg(0).arg(-1).query(&mut c).unwrap();
    assert_eq!(m, ["b", "c"]);

    // Blocking forms with data present.
    let _: i64 = cmd("RPUSH")
        .arg("q")
        .arg("one")
        .arg("two")
        .arg("three")
        .arg("four")
        .query(&mut c)
        .unwrap();
    let (k, v): (String, String) = cmd("BLPOP").arg("q").arg(1).query(&mut c).unwrap();
    assert_eq!((k.as_str(), v.as_str()), ("q", "one"));
    let (k, v): (String, String) = cmd("BRPOP").arg("q").arg(1).query(&mut c).unwrap();
    assert_eq!((k.as_str(), v.as_str()), ("q", "four"));
    let (k, v): (String, Vec<String>) = cmd("BLMPOP")
        .arg(1)
        .arg(1)
        .arg("q")
        .arg("LEFT")
        .query(&mut c)
        .unwrap();
    assert_eq!((k.as_str(), v), ("q", vec!["two".to_owned()]));
    let v: String = cmd("BLMOVE")
        .arg("q")
        .arg("q2")
        .arg("LEFT")
        .arg("LEFT")
        .arg(1)
        .query(&mut c)
        .unwrap();
    assert_eq!(v, "three");
    let v: String = cmd("BRPOPLPUSH")
        .arg("q2")
        .arg("q")
        .arg(1)
        .query(&mut c)
        .unwrap();
    assert_eq!(v, "three");
    assert_eq!(
        stack.assert_all_values_encrypted(),
        4,
        "other: [y], q: [three], m: [b, c]"
    );
}

#[test]
fn blocking_commands_wait_as_long_as_the_client_asked() {
    let stack = Stack::start();
    let mut c = stack.client();
    // A timeout that expires: nil after the time the client asked for, not earlier.
    let started = Instant::now();
    let r: Option<(String, String)> = cmd("BLPOP").arg("empty").arg("1.5").query(&mut c).unwrap();
    assert_eq!(r, None);
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "returned after {:?}",
        started.elapsed()
    );

    // BLPOP 0 waits until another client pushes, however long that takes.
    std::thread::scope(|s| {
        let pusher = s.spawn(|| {
            std::thread::sleep(Duration::from_millis(1500));
            let mut p = stack.client();
            let _: i64 = cmd("RPUSH")
                .arg("wake")
                .arg("good morning")
                .query(&mut p)
                .unwrap();
        });
        let (k, v): (String, String) = cmd("BLPOP").arg("wake").arg(0).query(&mut c).unwrap();
        assert_eq!((k.as_str(), v.as_str()), ("wake", "good morning"));
        pusher.join().unwrap();
    });
}

#[test]
fn a_client_that_disconnects_while_blocked_leaves_no_upstream_connection_behind() {
    let stack = Stack::start();
    let mut direct = stack.direct();
    // Upstream connections blocked in a command (CLIENT LIST flag "b").
    let blocked = |d: &mut redcloak_e2e::Direct| match d.cmd(&[b"CLIENT", b"LIST"]).unwrap() {
        redcloak_commands::resp::Frame::Bulk(list) => String::from_utf8_lossy(&list)
            .lines()
            .filter(|l| {
                l.split(' ')
                    .any(|f| f.starts_with("flags=") && f.contains('b'))
            })
            .count(),
        other => panic!("{other:?}"),
    };
    {
        use std::io::Write;
        let mut raw = stack.raw();
        raw.write_all(b"*3\r\n$5\r\nBLPOP\r\n$7\r\nnothing\r\n$1\r\n0\r\n")
            .unwrap();
        assert!(
            wait_for(Duration::from_secs(5), || blocked(&mut direct) == 1),
            "the client is blocked upstream"
        );
        // dropped here: the client goes away while blocked
    }
    assert!(
        wait_for(Duration::from_secs(5), || blocked(&mut direct) == 0),
        "the upstream connection of the vanished client must be closed"
    );
    // A value pushed now is not swallowed by a leftover blocked connection.
    let mut c = stack.client();
    let _: i64 = cmd("RPUSH")
        .arg("nothing")
        .arg("still here")
        .query(&mut c)
        .unwrap();
    let len: i64 = cmd("LLEN").arg("nothing").query(&mut c).unwrap();
    assert_eq!(len, 1);
}
