//! `redcloak rewrap`: key rotation end to end. Values and members are written through
//! redcloak under key A; redcloak restarts with `B,A` (B new and primary); `rewrap`
//! re-encrypts everything under B, directly in Redis, while clients keep writing through
//! redcloak; then A leaves the ring and everything still reads back. What Redis stores is
//! checked around the proxy, value by value, by key id.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use redcloak_commands::resp::Frame;
use redcloak_crypto::{KeyId, KeyRing};
use redcloak_e2e::{output_text, run_redcloak, with_var, Direct, Plain, Redcloak, Stack};

fn cmd(c: &mut Plain, args: &[&str]) -> Frame {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.cmd(&args).unwrap()
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn bulks(f: Frame) -> Vec<Bytes> {
    match f {
        Frame::Array(items) | Frame::Set(items) => items
            .into_iter()
            .map(|i| match i {
                Frame::Bulk(b) => b,
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

/// How many values and members Redis holds per key id (read around redcloak), `None` for
/// what no key of `ring` opens. HyperLogLogs are not counted.
fn census(direct: &mut Direct, ring: &KeyRing) -> BTreeMap<Option<String>, usize> {
    let mut out = BTreeMap::new();
    let value = |v: &[u8], out: &mut BTreeMap<Option<String>, usize>| {
        *out.entry(ring.identify(v).map(|k| k.to_string()))
            .or_default() += 1;
    };
    for key in direct.keys() {
        let Frame::Simple(kind) = direct.cmd(&[b"TYPE", &key]).unwrap() else {
            panic!()
        };
        match &kind[..] {
            b"string" => {
                let v = direct.get(&key).unwrap();
                if !v.starts_with(b"HYLL") {
                    value(&v, &mut out);
                }
            }
            b"hash" => {
                for pair in bulks(direct.cmd(&[b"HGETALL", &key]).unwrap()).chunks(2) {
                    value(&pair[1], &mut out);
                }
            }
            b"list" => {
                for v in bulks(direct.cmd(&[b"LRANGE", &key, b"0", b"-1"]).unwrap()) {
                    value(&v, &mut out);
                }
            }
            b"stream" => {
                let Frame::Array(entries) = direct.cmd(&[b"XRANGE", &key, b"-", b"+"]).unwrap()
                else {
                    panic!()
                };
                for e in entries {
                    let Frame::Array(mut parts) = e else { panic!() };
                    for pair in bulks(parts.pop().unwrap()).chunks(2) {
                        value(&pair[1], &mut out);
                    }
                }
            }
            b"set" | b"zset" => {
                let members = if &kind[..] == b"set" {
                    bulks(direct.cmd(&[b"SMEMBERS", &key]).unwrap())
                } else {
                    bulks(direct.cmd(&[b"ZRANGE", &key, b"0", b"-1"]).unwrap())
                };
                for m in members {
                    let id = ring.decrypt_member(&m).ok().map(|o| o.key_id.to_string());
                    *out.entry(id).or_default() += 1;
                }
            }
            other => panic!("unexpected type {other:?}"),
        }
    }
    // The function libraries' code, in redcloak's Redis function library (hex: name, code…).
    if let Frame::Array(stored) = direct
        .cmd(&[b"FCALL_RO", b"redcloak_internal_libraries", b"0"])
        .unwrap()
    {
        for pair in bulks(Frame::Array(stored)).chunks(2) {
            let code: Vec<u8> = (0..pair[1].len())
                .step_by(2)
                .map(|i| {
                    u8::from_str_radix(std::str::from_utf8(&pair[1][i..i + 2]).unwrap(), 16)
                        .unwrap()
                })
                .collect();
            value(&code, &mut out);
        }
    }
    out
}

fn id(ring: &KeyRing, i: usize) -> KeyId {
    ring.key_ids()[i]
}

/// redcloak restarted with `keys` as its ring.
fn restart_with(stack: &mut Stack, keys: &str) -> Vec<(String, String)> {
    let env = with_var(&stack.env, "REDIS_ENCRYPTION_KEY", keys);
    stack.proxy = Redcloak::start(stack.dir.path(), &env);
    stack.keys = keys.to_owned();
    env
}

#[test]
fn rotation_end_to_end_every_type_then_the_old_key_leaves_the_ring() {
    let mut stack = Stack::start();
    let key_a = stack.keys.clone();
    let key_b = redcloak_crypto::generate_key().to_string();
    let mut c = stack.plain();
    for line in [
        &["SET", "s", "string value", "EX", "1000"][..],
        &["HSET", "h", "f1", "one", "f2", "two"],
        &["RPUSH", "l", "a", "b", "c"],
        &["XADD", "x", "1-1", "f", "stream value"],
        &["XADD", "x", "2-1", "f", "second", "g", "third"],
        &["XDEL", "x", "1-1"],
        &["XADD", "q", "1-0", "job", "first"],
        &["XADD", "q", "2-0", "job", "second"],
        &["XADD", "q", "3-0", "job", "third"],
        &["XGROUP", "CREATE", "q", "workers", "0"],
        &[
            "XREADGROUP",
            "GROUP",
            "workers",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "q",
            ">",
        ],
        &[
            "XREADGROUP",
            "GROUP",
            "workers",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "q",
            ">",
        ],
        &["XACK", "q", "workers", "1-0"],
        &["XGROUP", "CREATECONSUMER", "q", "workers", "bob"],
        &["XGROUP", "CREATE", "q", "audit", "$"],
        &["PEXPIRE", "q", "900000"],
        &["SADD", "set", "alice", "bob"],
        &["ZADD", "z", "1", "alice", "2.5", "bob", "inf", "top"],
        &["GEOADD", "g", "13.361389", "38.115556", "palermo"],
        &["PFADD", "hll", "a", "b"],
        &["SELECT", "3"],
        &["SET", "in-db-3", "three"],
        &["SELECT", "0"],
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\nredis.register_function('answer', function() return 42 end)",
        ],
    ] {
        let r = cmd(&mut c, line);
        assert!(!matches!(r, Frame::Error(_)), "{line:?}: {r:?}");
    }
    drop(c);
    let ttl_before = cmd(&mut stack.plain(), &["PTTL", "s"]);

    // Rotate: B first, A kept for reading. New writes go under B, including a member that
    // already exists under A (a duplicate rewrap must merge).
    let env = restart_with(&mut stack, &format!("{key_b},{key_a}"));
    let ring = stack.key_ring();
    let (b, a) = (id(&ring, 0).to_string(), id(&ring, 1).to_string());
    let mut c = stack.plain();
    assert_eq!(
        cmd(&mut c, &["SADD", "set", "carol", "alice"]),
        Frame::Integer(2)
    );
    assert_eq!(cmd(&mut c, &["SET", "new", "written under B"]), bulk_ok());

    // The dry run counts and changes nothing; exit 3: there is work to do.
    let before = census(&mut stack.direct(), &ring);
    let dry = run_redcloak(&env, &["rewrap", "--dry-run"]);
    let text = output_text(&dry);
    assert_eq!(dry.status.code(), Some(3), "{text}");
    assert!(
        text.contains(&a) && text.contains(&format!("{b} (primary)")),
        "{text}"
    );
    assert!(text.contains("HyperLogLog"), "{text}");
    assert_eq!(
        census(&mut stack.direct(), &ring),
        before,
        "a dry run writes nothing"
    );

    // The real run: exit 0, A can go.
    let run = run_redcloak(&env, &["rewrap"]);
    let text = output_text(&run);
    assert_eq!(run.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("{a} can be removed from the ring")),
        "{text}"
    );
    let after = census(&mut stack.direct(), &ring);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        vec![&Some(b.clone())],
        "{after:?}"
    );
    // The set's duplicate `alice` was merged: one copy, under B.
    assert_eq!(
        cmd(&mut stack.plain(), &["SCARD", "set"]),
        Frame::Integer(3)
    );

    // A leaves the ring: everything reads back, TTLs kept.
    restart_with(&mut stack, &key_b);
    let mut c = stack.plain();
    assert_eq!(cmd(&mut c, &["GET", "s"]), bulk("string value"));
    let Frame::Integer(ttl) = cmd(&mut c, &["PTTL", "s"]) else {
        panic!()
    };
    let Frame::Integer(ttl_before) = ttl_before else {
        panic!()
    };
    assert!(ttl > 0 && ttl <= ttl_before, "{ttl} vs {ttl_before}");
    assert_eq!(cmd(&mut c, &["HGET", "h", "f2"]), bulk("two"));
    assert_eq!(
        cmd(&mut c, &["LRANGE", "l", "0", "-1"]),
        Frame::Array(vec![bulk("a"), bulk("b"), bulk("c")])
    );
    assert_eq!(
        cmd(&mut c, &["XRANGE", "x", "-", "+"]),
        Frame::Array(vec![Frame::Array(vec![
            bulk("2-1"),
            Frame::Array(vec![bulk("f"), bulk("second"), bulk("g"), bulk("third")])
        ])])
    );
    // The consumer groups came through the rebuild: alice still holds 2-0 (delivered once),
    // bob exists, the next new entry for `workers` is 3-0, `audit` starts after 3-0.
    let Frame::Array(pending) = cmd(&mut c, &["XPENDING", "q", "workers", "-", "+", "10"]) else {
        panic!()
    };
    assert_eq!(pending.len(), 1, "{pending:?}");
    let Frame::Array(p) = &pending[0] else {
        panic!()
    };
    assert_eq!(&p[..2], &[bulk("2-0"), bulk("alice")]);
    assert_eq!(p[3], Frame::Integer(1));
    let Frame::Array(consumers) = cmd(&mut c, &["XINFO", "CONSUMERS", "q", "workers"]) else {
        panic!()
    };
    assert_eq!(consumers.len(), 2, "alice and bob: {consumers:?}");
    assert_eq!(
        cmd(
            &mut c,
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                "alice",
                "STREAMS",
                "q",
                "0"
            ]
        ),
        Frame::Array(vec![Frame::Array(vec![
            bulk("q"),
            Frame::Array(vec![Frame::Array(vec![
                bulk("2-0"),
                Frame::Array(vec![bulk("job"), bulk("second")])
            ])])
        ])])
    );
    assert_eq!(
        cmd(
            &mut c,
            &["XREADGROUP", "GROUP", "workers", "bob", "STREAMS", "q", ">"]
        ),
        Frame::Array(vec![Frame::Array(vec![
            bulk("q"),
            Frame::Array(vec![Frame::Array(vec![
                bulk("3-0"),
                Frame::Array(vec![bulk("job"), bulk("third")])
            ])])
        ])])
    );
    assert_eq!(
        cmd(
            &mut c,
            &["XREADGROUP", "GROUP", "audit", "eve", "STREAMS", "q", ">"]
        ),
        Frame::NullArray
    );
    // ...and its expiry.
    let Frame::Integer(q_ttl) = cmd(&mut c, &["PTTL", "q"]) else {
        panic!()
    };
    assert!(q_ttl > 0 && q_ttl <= 900_000, "{q_ttl}");
    // The rebuilt stream kept its last ID: an ID below it is still refused.
    assert!(matches!(
        cmd(&mut c, &["XADD", "x", "1-5", "f", "v"]),
        Frame::Error(_)
    ));
    let mut members: Vec<Bytes> = bulks(cmd(&mut c, &["SMEMBERS", "set"]));
    members.sort();
    assert_eq!(
        members,
        ["alice", "bob", "carol"].map(|s| Bytes::from(s.as_bytes()))
    );
    assert_eq!(cmd(&mut c, &["SISMEMBER", "set", "bob"]), Frame::Integer(1));
    assert_eq!(
        cmd(&mut c, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
        Frame::Array(vec![
            bulk("alice"),
            bulk("1"),
            bulk("bob"),
            bulk("2.5"),
            bulk("top"),
            bulk("inf")
        ])
    );
    assert_eq!(cmd(&mut c, &["ZSCORE", "z", "bob"]), bulk("2.5"));
    assert!(
        matches!(cmd(&mut c, &["GEOPOS", "g", "palermo"]), Frame::Array(p) if matches!(&p[0], Frame::Array(xy) if xy.len() == 2))
    );
    assert_eq!(cmd(&mut c, &["PFCOUNT", "hll"]), Frame::Integer(2));
    assert_eq!(cmd(&mut c, &["FCALL", "answer", "0"]), Frame::Integer(42));
    assert_eq!(cmd(&mut c, &["GET", "new"]), bulk("written under B"));
    cmd(&mut c, &["SELECT", "3"]);
    assert_eq!(cmd(&mut c, &["GET", "in-db-3"]), bulk("three"));
    stack.assert_all_values_encrypted();

    // Nothing left to do with B alone.
    let env_b = with_var(&stack.env, "REDIS_ENCRYPTION_KEY", &key_b);
    let again = run_redcloak(&env_b, &["rewrap", "--dry-run"]);
    assert_eq!(again.status.code(), Some(0), "{}", output_text(&again));
}

fn bulk_ok() -> Frame {
    Frame::Simple(Bytes::from_static(b"OK"))
}

#[test]
fn dry_run_reports_counts_per_key_and_format_and_fernet_timestamps() {
    let mut stack = Stack::start();
    let key_a = stack.keys.clone();
    let mut c = stack.plain();
    cmd(&mut c, &["MSET", "a1", "x", "a2", "y"]);
    cmd(&mut c, &["SADD", "s", "m"]);
    // A token Python wrote in 2020 (stored values have no age: it stays readable).
    let token = python_token(&key_a, 1_600_000_000, "from python");
    stack.direct().set(b"old", token.as_bytes());
    // Plaintext written around redcloak.
    stack.direct().set(b"plain", b"not encrypted");
    let key_b = redcloak_crypto::generate_key().to_string();
    let env = restart_with(&mut stack, &format!("{key_b},{key_a}"));
    let ring = stack.key_ring();
    let a = id(&ring, 1).to_string();
    let out = run_redcloak(&env, &["rewrap", "--dry-run"]);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}:\n{text}"))
            .to_owned()
    };
    let values = line(&format!("fernet            {a}"));
    assert!(
        values.contains(" 3  oldest 2020-09-13 12:26:40 UTC"),
        "{values}"
    );
    let members = line("aes-siv (member)");
    assert!(
        members.contains(&a) && members.trim_end().ends_with(" 1"),
        "{members}"
    );
    assert!(
        line("not encrypted by redcloak")
            .trim_start()
            .starts_with("1 "),
        "{text}"
    );
    // Nothing was written.
    assert_eq!(stack.direct().get(b"old").unwrap(), token.as_bytes());
    // After a rewrap the Python token is under B and still reads back.
    let out = run_redcloak(&env, &["rewrap"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert_eq!(
        cmd(&mut stack.plain(), &["GET", "old"]),
        bulk("from python")
    );
}

fn python_token(key: &str, at: u64, plain: &str) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; from cryptography.fernet import Fernet; \
             print(Fernet(sys.argv[1].encode()).encrypt_at_time(sys.argv[3].encode(), int(sys.argv[2])).decode())",
            key,
            &at.to_string(),
            plain,
        ])
        .output()
        .expect("python3 (scripts/ensure-deps.sh installs it with cryptography)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn a_resumed_run_starts_at_its_cursor() {
    let mut stack = Stack::start();
    let key_a = stack.keys.clone();
    let mut c = stack.plain();
    for i in 0..300 {
        cmd(&mut c, &["SET", &format!("k{i}"), "v"]);
    }
    let key_b = redcloak_crypto::generate_key().to_string();
    let env = restart_with(&mut stack, &format!("{key_b},{key_a}"));
    let ring = stack.key_ring();
    // The first page of a SCAN, read around redcloak: a resumed run must not touch it.
    let mut direct = stack.direct();
    let Frame::Array(mut page) = direct.cmd(&[b"SCAN", b"0", b"COUNT", b"20"]).unwrap() else {
        panic!()
    };
    let first = bulks(page.pop().unwrap());
    let Some(Frame::Bulk(cursor)) = page.pop() else {
        panic!()
    };
    let cursor = String::from_utf8(cursor.to_vec()).unwrap();
    assert!(!first.is_empty() && cursor != "0");
    let out = run_redcloak(
        &env,
        &[
            "rewrap",
            "--cursor",
            &format!("0:{cursor}"),
            "--count",
            "20",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    for k in &first {
        let v = direct.get(k).unwrap();
        assert_eq!(
            ring.identify(&v),
            Some(id(&ring, 1)),
            "the first page is not touched"
        );
    }
    let done = census(&mut direct, &ring);
    assert_eq!(
        done.get(&Some(id(&ring, 0).to_string())),
        Some(&(300 - first.len()))
    );
    // A full run finishes the job.
    let out = run_redcloak(&env, &["rewrap"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert_eq!(
        census(&mut direct, &ring),
        BTreeMap::from([(Some(id(&ring, 0).to_string()), 300)])
    );
}

#[test]
fn concurrent_writers_lose_no_update_and_keep_their_ttls() {
    let mut stack = Stack::start();
    let key_a = stack.keys.clone();
    let mut c = stack.plain();
    const KEYS: usize = 40;
    for i in 0..KEYS {
        cmd(&mut c, &["SET", &format!("n{i}"), "0", "EX", "3600"]);
        cmd(&mut c, &["HSET", &format!("h{i}"), "count", "0"]);
        cmd(&mut c, &["EXPIRE", &format!("h{i}"), "3600"]);
    }
    cmd(&mut c, &["RPUSH", "log", "start"]);
    let key_b = redcloak_crypto::generate_key().to_string();
    let env = restart_with(&mut stack, &format!("{key_b},{key_a}"));
    let ring = stack.key_ring();

    // Writers through redcloak: INCR and HINCRBY (computed by redcloak under WATCH) and
    // RPUSH, counting what Redis acknowledged, until the rewrap is over.
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let stop = stop.clone();
            let rounds = rounds.clone();
            let mut c = stack.plain();
            std::thread::spawn(move || {
                let mut acked = vec![0i64; KEYS];
                let mut pushed = 0;
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) || round < 2 {
                    for (i, n) in acked.iter_mut().enumerate() {
                        let Frame::Integer(_) = cmd(&mut c, &["INCR", &format!("n{i}")]) else {
                            panic!("INCR failed")
                        };
                        let Frame::Integer(_) =
                            cmd(&mut c, &["HINCRBY", &format!("h{i}"), "count", "1"])
                        else {
                            panic!("HINCRBY failed")
                        };
                        *n += 1;
                    }
                    let Frame::Integer(_) = cmd(&mut c, &["RPUSH", "log", &format!("w{w}")]) else {
                        panic!("RPUSH failed")
                    };
                    pushed += 1;
                    round += 1;
                    rounds.fetch_add(1, Ordering::Relaxed);
                }
                (acked, pushed)
            })
        })
        .collect();
    // The writers are all running before the rewrap starts, and until it has ended.
    assert!(
        redcloak_e2e::wait_for(std::time::Duration::from_secs(30), || rounds
            .load(Ordering::Relaxed)
            >= 3),
        "the writers did not start"
    );
    // Small pages, so that the rewrap interleaves with the writers as much as possible.
    let out = run_redcloak(&env, &["rewrap", "--count", "5"]);
    stop.store(true, Ordering::Relaxed);
    let text = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let mut expected = vec![0i64; KEYS];
    let mut pushes = 1;
    for w in writers {
        let (acked, pushed) = w.join().unwrap();
        for (e, a) in expected.iter_mut().zip(acked) {
            *e += a;
        }
        pushes += pushed;
    }
    let mut c = stack.plain();
    for (i, e) in expected.iter().enumerate() {
        assert_eq!(
            cmd(&mut c, &["GET", &format!("n{i}")]),
            bulk(&e.to_string()),
            "n{i}"
        );
        assert_eq!(
            cmd(&mut c, &["HGET", &format!("h{i}"), "count"]),
            bulk(&e.to_string()),
            "h{i}"
        );
        for k in [format!("n{i}"), format!("h{i}")] {
            let Frame::Integer(ttl) = cmd(&mut c, &["TTL", &k]) else {
                panic!()
            };
            assert!(ttl > 3000, "{k} lost its TTL: {ttl}");
        }
    }
    assert_eq!(cmd(&mut c, &["LLEN", "log"]), Frame::Integer(pushes));
    // Whatever the writers wrote after the rewrap passed their key is under B too (they
    // write with the primary key): the old key can go.
    let left = census(&mut stack.direct(), &ring);
    assert_eq!(
        left.keys().collect::<Vec<_>>(),
        vec![&Some(id(&ring, 0).to_string())],
        "{left:?}\n{text}"
    );
}
