//! Regressions for sequences a review found: RESP3 replies that look like pub/sub messages,
//! commands Redis treats specially inside MULTI, HELLO without a protocol version, what the
//! cache may conclude from MGET, an outage that begins while other sessions are connected,
//! and a Redis that stops answering.

use std::time::Duration;

use bytes::Bytes;
use redcloak_commands::resp::Frame;
use redcloak_e2e::{wait_for, Stack};
use redis::{cmd, RedisResult};

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn is_try_again<T: std::fmt::Debug>(r: &RedisResult<T>) -> bool {
    matches!(r, Err(e) if e.to_string().contains("TRYAGAIN") || e.code() == Some("TRYAGAIN"))
}

#[test]
fn resp3_replies_that_look_like_pubsub_messages_stay_replies() {
    let stack = Stack::start();
    let mut p = stack.plain();
    assert!(matches!(p.cmd(&[b"HELLO", b"3"]).unwrap(), Frame::Map(_)));
    // A hash whose field names spell a pub/sub message.
    p.cmd(&[b"HSET", b"h", b"message", b"x", b"a", b"y", b"zz", b"z"])
        .unwrap();
    p.cmd(&[b"SET", b"k", b"value"]).unwrap();
    assert_eq!(
        p.cmd(&[b"SUBSCRIBE", b"chan"]).unwrap(),
        Frame::Push(vec![bulk("subscribe"), bulk("chan"), Frame::Integer(1)])
    );
    let Frame::Array(mut fields) = p.cmd(&[b"HKEYS", b"h"]).unwrap() else {
        panic!("HKEYS")
    };
    fields.sort_by_key(|f| format!("{f:?}").len());
    assert_eq!(fields.len(), 3, "HKEYS answered, not taken for a message");
    assert_eq!(
        p.cmd(&[b"GET", b"k"]).unwrap(),
        bulk("value"),
        "the next reply is the GET's, decrypted"
    );
    assert_eq!(
        p.cmd(&[b"UNSUBSCRIBE"]).unwrap(),
        Frame::Push(vec![bulk("unsubscribe"), bulk("chan"), Frame::Integer(0)])
    );
    assert_eq!(p.cmd(&[b"GET", b"k"]).unwrap(), bulk("value"));
}

#[test]
fn watch_hello_and_select_inside_multi_keep_exec_aligned() {
    let stack = Stack::start();
    let mut p = stack.plain();
    p.cmd(&[b"SET", b"k", b"secret"]).unwrap();
    p.cmd(&[b"MULTI"]).unwrap();
    let Frame::Error(e) = p.cmd(&[b"WATCH", b"x"]).unwrap() else {
        panic!()
    };
    assert_eq!(&e[..], b"ERR WATCH inside MULTI is not allowed");
    p.cmd(&[b"GET", b"k"]).unwrap();
    assert_eq!(
        p.cmd(&[b"EXEC"]).unwrap(),
        Frame::Array(vec![bulk("secret")]),
        "GET's element decrypted"
    );

    for inside in [&[&b"HELLO"[..], b"2"][..], &[b"SELECT", b"1"]] {
        p.cmd(&[b"MULTI"]).unwrap();
        let Frame::Error(e) = p.cmd(inside).unwrap() else {
            panic!("{inside:?}")
        };
        assert!(
            e.starts_with(b"ERR redcloak"),
            "{}",
            String::from_utf8_lossy(&e)
        );
        p.cmd(&[b"GET", b"k"]).unwrap();
        let Frame::Error(e) = p.cmd(&[b"EXEC"]).unwrap() else {
            panic!()
        };
        assert!(
            e.starts_with(b"EXECABORT"),
            "{}",
            String::from_utf8_lossy(&e)
        );
    }
    assert_eq!(p.cmd(&[b"GET", b"k"]).unwrap(), bulk("secret"));
}

#[test]
fn hello_auth_without_a_protocol_version_never_reaches_redis() {
    let stack = Stack::start();
    let mut p = stack.plain();
    let Frame::Error(e) = p
        .cmd(&[b"HELLO", b"AUTH", b"appuser", b"app-secret-password"])
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        &e[..],
        b"ERR Protocol version is not an integer or out of range"
    );
    let Frame::Bulk(stats) = stack.direct().cmd(&[b"INFO", b"commandstats"]).unwrap() else {
        panic!()
    };
    assert!(
        !String::from_utf8_lossy(&stats).contains("cmdstat_hello"),
        "HELLO was not sent to Redis"
    );
}

#[test]
fn mget_nil_for_a_key_of_another_type_is_not_taken_for_absent() {
    let mut stack = Stack::start_with(&["--appendonly", "yes", "--appendfsync", "always"], &[]);
    let mut c = stack.client();
    let _: i64 = cmd("RPUSH")
        .arg("mylist")
        .arg("a")
        .arg("b")
        .query(&mut c)
        .unwrap();
    let v: Vec<Option<String>> = cmd("MGET").arg("mylist").query(&mut c).unwrap();
    assert_eq!(v, vec![None]);
    stack.redis.kill9();
    std::thread::sleep(Duration::from_millis(200));
    let exists: RedisResult<i64> = cmd("EXISTS").arg("mylist").query(&mut c);
    assert!(is_try_again(&exists), "{exists:?}");
    let set: RedisResult<Option<String>> =
        cmd("SET").arg("mylist").arg("x").arg("NX").query(&mut c);
    assert!(
        is_try_again(&set),
        "the list must not be overwritten: {set:?}"
    );
    stack.redis.restart();
    let mut direct = stack.direct();
    let Frame::Simple(t) = direct.cmd(&[b"TYPE", b"mylist"]).unwrap() else {
        panic!()
    };
    assert_eq!(&t[..], b"list");
}

#[test]
fn an_outage_moves_every_session_to_the_journal_so_replay_loses_no_update() {
    let stack = Stack::start_with(&[], &[("REDCLOAK_POOL_SIZE", "0")]);
    let mut a = stack.client();
    let _: () = cmd("SET").arg("race").arg("initial").query(&mut a).unwrap();
    // Redis refuses new connections (but keeps A's): the next new session cannot connect.
    let mut direct = stack.direct();
    direct
        .cmd(&[b"CONFIG", b"SET", b"maxclients", b"2"])
        .unwrap();
    let mut b = stack.client();
    let _: () = cmd("SET")
        .arg("race")
        .arg("from-B-earlier")
        .query(&mut b)
        .unwrap();
    // A is moved off Redis too: its later write is journaled after B's, not sent directly.
    assert!(wait_for(Duration::from_secs(5), || {
        let _: RedisResult<()> = cmd("SET").arg("race").arg("from-A-later").query(&mut a);
        stack.proxy.log_text().contains("entering degraded mode")
    }));
    let _: () = cmd("SET")
        .arg("race")
        .arg("from-A-later")
        .query(&mut a)
        .unwrap();
    direct
        .cmd(&[b"CONFIG", b"SET", b"maxclients", b"10000"])
        .unwrap();
    assert!(wait_for(Duration::from_secs(20), || stack
        .proxy
        .log_text()
        .contains("leaving degraded mode")));
    let stored = direct.get(b"race").unwrap();
    assert_eq!(
        stack.key_ring().decrypt(&stored).unwrap(),
        b"from-A-later",
        "the last write wins"
    );
}

#[test]
fn a_redis_that_stops_answering_does_not_hang_clients() {
    let stack = Stack::start_with(
        &[],
        &[
            ("REDCLOAK_REPLY_TIMEOUT", "1"),
            ("REDCLOAK_CONNECT_TIMEOUT_MS", "1000"),
        ],
    );
    let mut c = stack.client();
    let _: () = cmd("SET").arg("known").arg("v").query(&mut c).unwrap();
    let pid = stack.redis.pid().to_string();
    std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap();
    let started = std::time::Instant::now();
    let r: RedisResult<String> = cmd("GET").arg("known").query(&mut c);
    let first = started.elapsed();
    let later: RedisResult<String> = cmd("GET").arg("known").query(&mut c);
    let total = started.elapsed();
    std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status()
        .unwrap();
    assert!(
        first < Duration::from_secs(3),
        "first reply after {first:?}: {r:?}"
    );
    assert!(
        r.is_err_and(|e| e.to_string().contains("did not answer")),
        "in-flight GET: outcome unknown"
    );
    assert_eq!(
        later.as_deref().ok(),
        Some("v"),
        "then served from the cache ({total:?}): {later:?}"
    );
}

/// A client that stops sending (half-closes its socket, as ioredis's `disconnect()` does)
/// while one of its commands is blocked: Redis drops it without a reply, after answering the
/// commands it had read before. redcloak does the same — it does not invent an error for the
/// blocked command, nor take Redis's close for an outage. Side by side with a plain Redis;
/// found through BullMQ, whose Worker and QueueEvents disconnect a blocked BZPOPMIN / XREAD.
#[test]
fn a_client_that_hangs_up_while_blocked_gets_what_redis_gives() {
    use redcloak_e2e::diff::{command, PlainRedis};
    use std::io::Write;
    use std::net::Shutdown;
    let stack = Stack::start();
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    let hang_up = |mut s: std::net::TcpStream, commands: &[&[&[u8]]]| {
        let mut bytes = Vec::new();
        for c in commands {
            bytes.extend(command(c));
        }
        s.write_all(&bytes).unwrap();
        // Let every command reach Redis (and the blocking one block) before hanging up.
        std::thread::sleep(Duration::from_millis(300));
        s.shutdown(Shutdown::Write).unwrap();
        let (got, closed) = redcloak_e2e::read_until_closed(&mut s, Duration::from_secs(10));
        assert!(
            closed,
            "the connection was not closed after the client hung up"
        );
        got
    };
    let cases: [&[&[&[u8]]]; 4] = [
        &[&[b"BLPOP", b"list", b"5"]],
        &[
            &[b"SET", b"k", b"v"],
            &[b"GET", b"k"],
            &[b"BZPOPMIN", b"z", b"5"],
        ],
        &[&[b"XREAD", b"BLOCK", b"5000", b"STREAMS", b"s", b"$"]],
        &[&[b"SET", b"k", b"v"], &[b"INCR", b"n"], &[b"GET", b"k"]],
    ];
    for case in cases {
        let theirs = hang_up(plain.raw(), case);
        let ours = hang_up(stack.raw(), case);
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs),
            "after {case:?} and a hang-up"
        );
    }
    let log = stack.proxy.log_text();
    assert!(
        !log.contains("probing it"),
        "a client's hang-up was taken for trouble with Redis:\n{log}"
    );
}
