//! Commands that compute on values (INCR, APPEND, SETRANGE, BIT*, LCS, HINCRBY, LPOS, LREM,
//! LINSERT, SORT…) are emulated by redcloak: read under WATCH, computed on the decrypted
//! value exactly as Redis would, written back encrypted in MULTI/EXEC. Checked side by side
//! with a plain Redis (same commands, same replies, RESP2 and RESP3), under contention, and
//! around the proxy (Redis holds only ciphertext).

use std::time::{Duration, Instant};

use redcloak_commands::resp::Frame;
use redcloak_e2e::plain::{side_by_side, PlainRedis};
use redcloak_e2e::Stack;
use redis::cmd;

fn seq(commands: &[&str]) -> Vec<Vec<&'static [u8]>> {
    commands
        .iter()
        .map(|c| {
            let c: &'static str = Box::leak(c.to_string().into_boxed_str());
            c.split(' ').map(str::as_bytes).collect()
        })
        .collect()
}

#[test]
fn emulated_commands_answer_exactly_like_redis() {
    let stack = Stack::start();
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    let sequences = [
        // Counters: missing keys, existing values, errors, overflow, TTL kept.
        seq(&[
            "INCR c",
            "INCR c",
            "INCRBY c 40",
            "DECR c",
            "DECRBY c -5",
            "GET c",
        ]),
        seq(&["SET c 9223372036854775806", "INCR c", "INCR c", "GET c"]),
        seq(&[
            "SET c -9223372036854775807",
            "DECRBY c 1",
            "DECRBY c 1",
            "DECRBY c -9223372036854775808",
        ]),
        seq(&["SET c abc", "INCR c", "INCRBY c x", "INCRBY c 1.5", "GET c"]),
        seq(&["SET c 10 EX 100", "INCR c", "TTL c", "GET c"]),
        seq(&[
            "SET f 10.5",
            "INCRBYFLOAT f 0.1",
            "INCRBYFLOAT f -5e3",
            "INCRBYFLOAT f 1.0e-5",
            "GET f",
        ]),
        seq(&[
            "INCRBYFLOAT f 3.0e3",
            "INCRBYFLOAT f .5",
            "INCRBYFLOAT f abc",
            "INCRBYFLOAT f inf",
        ]),
        seq(&[
            "LPUSH l x",
            "INCR l",
            "APPEND l x",
            "GETRANGE l 0 1",
            "HINCRBY l f 1",
        ]),
        // Strings in place.
        seq(&[
            "APPEND s hello",
            "APPEND s ' world'",
            "STRLEN s",
            "GETRANGE s 0 4",
            "GETRANGE s -5 -1",
            "SUBSTR s 1 3",
            "GET s",
        ]),
        seq(&[
            "SET s Hello",
            "SETRANGE s 6 World",
            "GET s",
            "SETRANGE s 20 x",
            "STRLEN s",
            "SETRANGE missing 0 ''",
            "EXISTS missing",
            "SETRANGE s -1 x",
        ]),
        seq(&[
            "SET a ohmytext",
            "SET b mynewtext",
            "LCS a b",
            "LCS a b LEN",
            "LCS a b IDX MINMATCHLEN 2 WITHMATCHLEN",
        ]),
        // Bits.
        seq(&[
            "SETBIT b 7 1",
            "GETBIT b 7",
            "GETBIT b 100",
            "BITCOUNT b",
            "SETBIT b 100 1",
            "BITCOUNT b 0 -1 BIT",
            "BITPOS b 1",
            "BITPOS b 0 2",
            "GET b",
        ]),
        seq(&[
            "SET x foobar",
            "BITCOUNT x",
            "BITCOUNT x 1 1",
            "BITOP AND d x x",
            "BITOP NOT n x",
            "GET n",
            "BITOP OR d missing1 missing2",
            "EXISTS d",
        ]),
        seq(&[
            "BITFIELD bf SET i8 0 100 GET u4 0 INCRBY i5 100 1",
            "BITFIELD bf OVERFLOW SAT INCRBY u2 102 1 OVERFLOW FAIL INCRBY u2 102 5",
            "BITFIELD_RO bf GET i8 0",
            "BITFIELD bf GET i64 0 GET u63 0",
        ]),
        // Hashes.
        seq(&[
            "HSET h f 10",
            "HINCRBY h f 5",
            "HINCRBY h g -3",
            "HINCRBYFLOAT h f 0.25",
            "HSTRLEN h f",
            "HSTRLEN h nope",
            "HGET h f",
            "HGET h g",
            "HSET h s x",
            "HINCRBY h s 1",
        ]),
        // Lists, by element equality on decrypted values.
        seq(&[
            "RPUSH l a b c b d b",
            "LPOS l b",
            "LPOS l b RANK -1",
            "LPOS l b COUNT 0",
            "LPOS l b RANK 2 COUNT 2 MAXLEN 5",
            "LREM l 2 b",
            "LRANGE l 0 -1",
            "LINSERT l BEFORE c z",
            "LINSERT l AFTER nope y",
            "LRANGE l 0 -1",
            "LREM l 0 a",
            "LREM l -1 b",
            "LRANGE l 0 -1",
        ]),
        seq(&[
            "RPUSH l x",
            "LREM l 0 x",
            "EXISTS l",
            "LINSERT l BEFORE a b",
            "LPOS l x RANK 0",
        ]),
        // SORT on decrypted values.
        seq(&[
            "RPUSH n 3 1 10 2",
            "SORT n",
            "SORT n DESC LIMIT 1 2",
            "SORT n ALPHA",
            "RPUSH w a b",
            "SORT w",
            "SORT w ALPHA DESC",
        ]),
        seq(&[
            "RPUSH ids 1 2 3",
            "SET weight_1 30",
            "SET weight_2 10",
            "SET weight_3 20",
            "SET obj_1 one",
            "SET obj_2 two",
            "SORT ids BY weight_*",
            "SORT ids BY weight_* GET obj_* GET #",
            "SORT ids BY nosort GET obj_*",
            "SORT ids BY weight_* STORE out",
            "LRANGE out 0 -1",
            "SORT_RO ids BY weight_* DESC",
        ]),
    ];
    let compared = side_by_side(&stack, &plain, &sequences);
    assert!(compared > 100, "{compared} commands compared");
    // What stayed in Redis is ciphertext.
    assert!(stack.assert_all_values_encrypted() > 0);
}

#[test]
fn counters_under_contention_end_exact_and_readers_see_valid_values() {
    let stack = Stack::start();
    let clients = 50;
    let each = 200;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        let mut c = stack.client();
        std::thread::spawn(move || {
            let mut seen = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let v: Option<i64> = cmd("GET").arg("hot").query(&mut c).unwrap();
                let f: Option<i64> = cmd("HGET").arg("hash").arg("field").query(&mut c).unwrap();
                assert!(v.unwrap_or(0) >= 0 && f.unwrap_or(0) >= 0);
                seen += 1;
            }
            seen
        })
    };
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let mut c = stack.client();
            std::thread::spawn(move || {
                for _ in 0..each {
                    let _: i64 = cmd("INCR").arg("hot").query(&mut c).unwrap();
                    let _: i64 = cmd("HINCRBY")
                        .arg("hash")
                        .arg("field")
                        .arg(1)
                        .query(&mut c)
                        .unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let elapsed = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    let mut c = stack.client();
    let total: i64 = cmd("GET").arg("hot").query(&mut c).unwrap();
    let field: i64 = cmd("HGET").arg("hash").arg("field").query(&mut c).unwrap();
    assert_eq!(
        (total, field),
        (clients * each, clients * each),
        "after {elapsed:?}"
    );
    assert!(stack.assert_all_values_encrypted() >= 2);
}

/// What redcloak carries out itself on a key (an emulated command, a script, a transaction
/// it runs) takes that key's turn in redcloak only once Redis has answered what the client
/// sent before. A client that pipelines a blocking command in front of such a command must
/// not hold every other client's work on the key while its own command blocks.
#[test]
fn a_clients_pipelined_blocking_command_does_not_hold_other_clients_keys() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let stack = Stack::start();
    // What client A pipelines behind `BLPOP <empty list> 4`, on the counter `key`.
    type Add = fn(&mut redis::Pipeline, &str);
    let behind: [(&str, Add); 3] = [
        ("an emulated command", |p, key| {
            p.cmd("INCR").arg(key);
        }),
        ("a script", |p, key| {
            p.cmd("EVAL")
                .arg("return redis.call('INCR', KEYS[1])")
                .arg(1)
                .arg(key);
        }),
        ("a transaction redcloak runs", |p, key| {
            p.cmd("MULTI").cmd("INCR").arg(key).cmd("EXEC");
        }),
    ];
    std::thread::scope(|s| {
        for (i, (what, add)) in behind.into_iter().enumerate() {
            let stack = &stack;
            s.spawn(move || {
                let key = format!("turn:{i}");
                let a_done = AtomicBool::new(false);
                std::thread::scope(|s| {
                    let a = s.spawn(|| {
                        let mut a = stack.client();
                        let mut p = redis::pipe();
                        p.cmd("BLPOP").arg(format!("empty:{i}")).arg(4);
                        add(&mut p, &key);
                        let replies: Vec<redis::Value> = p.query(&mut a).unwrap();
                        a_done.store(true, Ordering::SeqCst);
                        replies
                    });
                    // Give A's pipeline time to reach redcloak (B going first is the
                    // failure this test is about, so an early B cannot make it pass).
                    std::thread::sleep(Duration::from_millis(500));
                    let mut b = stack.client();
                    let n: i64 = cmd("INCR").arg(&key).query(&mut b).unwrap();
                    assert!(
                        !a_done.load(Ordering::SeqCst),
                        "{what}: B's INCR waited for A's BLPOP to time out"
                    );
                    assert_eq!(n, 1, "{what}: B's INCR came after A's");
                    let replies = a.join().unwrap();
                    // INCR's and the script's reply, or EXEC's array of one.
                    let last = match replies.last() {
                        Some(redis::Value::Array(items)) => items.first(),
                        other => other,
                    };
                    assert_eq!(
                        last,
                        Some(&redis::Value::Int(2)),
                        "{what}: A's replies {replies:?}"
                    );
                });
            });
        }
    });
    let mut c = stack.client();
    for i in 0..3 {
        let n: i64 = cmd("GET").arg(format!("turn:{i}")).query(&mut c).unwrap();
        assert_eq!(n, 2);
    }
    assert_eq!(stack.assert_all_values_encrypted(), 3);
}

#[test]
fn emulation_keeps_ttls_and_honours_the_clients_watch() {
    let stack = Stack::start();
    let mut c = stack.client();
    let _: () = cmd("SET")
        .arg("t")
        .arg("1")
        .arg("PX")
        .arg(60_000)
        .query(&mut c)
        .unwrap();
    let _: i64 = cmd("INCR").arg("t").query(&mut c).unwrap();
    let pttl: i64 = cmd("PTTL").arg("t").query(&mut c).unwrap();
    assert!(
        (50_000..=60_000).contains(&pttl),
        "INCR kept the TTL: {pttl}"
    );
    let _: () = cmd("RPUSH")
        .arg("l")
        .arg("a")
        .arg("b")
        .arg("a")
        .query(&mut c)
        .unwrap();
    let _: bool = cmd("PEXPIRE").arg("l").arg(60_000).query(&mut c).unwrap();
    let _: i64 = cmd("LREM").arg("l").arg(0).arg("a").query(&mut c).unwrap();
    let pttl: i64 = cmd("PTTL").arg("l").query(&mut c).unwrap();
    assert!(
        (50_000..=60_000).contains(&pttl),
        "LREM kept the TTL: {pttl}"
    );
    // WATCH k, then the client's own INCR k: like Redis, its EXEC then fails.
    let mut plain = stack.plain();
    plain.cmd(&[b"WATCH", b"t"]).unwrap();
    assert_eq!(plain.cmd(&[b"INCR", b"t"]).unwrap(), Frame::Integer(3));
    plain.cmd(&[b"MULTI"]).unwrap();
    plain.cmd(&[b"SET", b"other", b"x"]).unwrap();
    assert!(
        matches!(
            plain.cmd(&[b"EXEC"]).unwrap(),
            Frame::NullArray | Frame::Null
        ),
        "a watched key changed by the client's own INCR aborts its transaction, as in Redis"
    );
    // A pipeline: SET, INCR, GET in one write see each other in order.
    let mut raw = stack.plain();
    raw.cmd(&[b"SET", b"p", b"41"]).unwrap();
    let (a, b): (i64, i64) = redis::pipe()
        .cmd("INCR")
        .arg("p")
        .cmd("GET")
        .arg("p")
        .query(&mut c)
        .unwrap();
    assert_eq!((a, b), (42, 42));
    let stored = stack.direct().get(b"p").unwrap();
    assert!(stored.starts_with(b"gAAAAA"), "stored encrypted");
}

/// A transaction with emulated commands is atomic for everyone: 20 writers each run MULTI /
/// INCR a / INCR b / EXEC while readers (plain transactions) must always see a == b.
#[test]
fn transactions_with_emulated_commands_are_atomic() {
    let stack = Stack::start();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            let mut c = stack.client();
            std::thread::spawn(move || {
                let mut seen = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (a, b): (Option<i64>, Option<i64>) = redis::pipe()
                        .atomic()
                        .cmd("GET")
                        .arg("a")
                        .cmd("GET")
                        .arg("b")
                        .query(&mut c)
                        .unwrap();
                    assert_eq!(a, b, "a transaction was seen half done");
                    seen += 1;
                }
                seen
            })
        })
        .collect();
    let writers: Vec<_> = (0..20)
        .map(|_| {
            let mut c = stack.client();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let (a, b): (i64, i64) = redis::pipe()
                        .atomic()
                        .cmd("INCR")
                        .arg("a")
                        .cmd("INCR")
                        .arg("b")
                        .query(&mut c)
                        .unwrap();
                    assert_eq!(a, b);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    let mut c = stack.client();
    let (a, b): (i64, i64) = redis::pipe()
        .cmd("GET")
        .arg("a")
        .cmd("GET")
        .arg("b")
        .query(&mut c)
        .unwrap();
    assert_eq!((a, b), (500, 500));
    // No scratch copy is left behind, and Redis holds only ciphertext.
    let keys = stack.direct().keys();
    assert!(
        keys.iter().all(|k| !k.starts_with(b"redcloak:scratch:")),
        "{keys:?}"
    );
    assert_eq!(stack.assert_all_values_encrypted(), 2);
}

/// The client's own WATCH is honoured by a transaction redcloak carries out.
#[test]
fn a_watched_key_changed_elsewhere_aborts_a_transaction_with_emulated_commands() {
    let stack = Stack::start();
    let mut c = stack.plain();
    let mut other = stack.client();
    c.cmd(&[b"WATCH", b"w"]).unwrap();
    let _: () = cmd("SET")
        .arg("w")
        .arg("changed")
        .query(&mut other)
        .unwrap();
    c.cmd(&[b"MULTI"]).unwrap();
    c.cmd(&[b"INCR", b"n"]).unwrap();
    assert!(matches!(
        c.cmd(&[b"EXEC"]).unwrap(),
        Frame::NullArray | Frame::Null
    ));
    let n: Option<i64> = cmd("GET").arg("n").query(&mut other).unwrap();
    assert_eq!(n, None, "the transaction did not run");
    // Without the change, it runs.
    c.cmd(&[b"WATCH", b"w"]).unwrap();
    c.cmd(&[b"MULTI"]).unwrap();
    c.cmd(&[b"INCR", b"n"]).unwrap();
    assert_eq!(
        c.cmd(&[b"EXEC"]).unwrap(),
        Frame::Array(vec![Frame::Integer(1)])
    );
}

/// Scratch copies are invisible through redcloak, and the janitor deletes those a dead
/// execution left behind (a redcloak killed mid-transaction) — but not a live one's.
#[test]
fn scratch_keys_are_hidden_and_left_overs_are_cleaned() {
    let stack = Stack::start();
    let mut direct = stack.direct();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let old = format!("redcloak:scratch:{}:deadbeef:1", now - 10 * 60 * 1000);
    let live = format!("redcloak:scratch:{now}:deadbeef:2");
    direct.set(old.as_bytes(), b"x");
    direct.set(live.as_bytes(), b"x");
    direct.set(b"mine", b"x");
    let mut c = stack.client();
    let keys: Vec<String> = cmd("KEYS").arg("*").query(&mut c).unwrap();
    assert_eq!(keys, ["mine"], "KEYS never shows scratch keys");
    let (_, page): (String, Vec<String>) = cmd("SCAN")
        .arg(0)
        .arg("COUNT")
        .arg(100)
        .query(&mut c)
        .unwrap();
    assert_eq!(page, ["mine"], "nor does SCAN");
    // A new redcloak in front of the same Redis sweeps at start.
    let env: Vec<(String, String)> = stack.env.clone();
    let second = redcloak_e2e::Redcloak::start(stack.dir.path(), &env);
    assert!(
        redcloak_e2e::wait_for(std::time::Duration::from_secs(10), || direct
            .get(old.as_bytes())
            .is_none()),
        "the left-over scratch key was deleted:\n{}",
        second.log_text()
    );
    assert!(direct.get(live.as_bytes()).is_some(), "a live one is kept");
}
