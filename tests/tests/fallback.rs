//! When Redis is down: redcloak keeps serving what it knows, journals writes, and applies
//! them when Redis is back. Redis is really killed (SIGKILL) and restarted with its AOF.

use std::time::{Duration, Instant};

use redcloak_e2e::{wait_for, Stack};
use redis::{cmd, Connection, RedisResult};

/// Redis with an AOF fsynced on every write, so its own data survives SIGKILL.
const AOF: &[&str] = &["--appendonly", "yes", "--appendfsync", "always"];

fn is_try_again(r: &RedisResult<redis::Value>) -> bool {
    matches!(r, Err(e) if e.to_string().contains("TRYAGAIN") || e.code() == Some("TRYAGAIN"))
}

/// Waits until commands that need Redis work through `c` again.
fn wait_healthy(c: &mut Connection) {
    let ok = wait_for(Duration::from_secs(20), || {
        cmd("LLEN").arg("health-probe").query::<i64>(c).is_ok()
    });
    assert!(ok, "redcloak did not recover");
}

#[test]
fn outage_reads_writes_and_replay() {
    let mut stack = Stack::start_with(AOF, &[]);
    let mut c = stack.client();
    let _: () = cmd("SET")
        .arg("kept")
        .arg("known value")
        .query(&mut c)
        .unwrap();
    let _: () = cmd("SET")
        .arg("expiring")
        .arg("soon gone")
        .arg("EX")
        .arg(100)
        .query(&mut c)
        .unwrap();
    let _: () = cmd("SET").arg("to-delete").arg("x").query(&mut c).unwrap();
    let _: Option<String> = cmd("GET").arg("read-miss").query(&mut c).unwrap();

    stack.redis.kill9();
    // An idle session notices at once and moves to the fallback (a command in flight at the
    // moment of the kill would get "outcome unknown": see in_flight_commands_…).
    std::thread::sleep(Duration::from_millis(200));

    // Reads of known keys are served.
    let started = Instant::now();
    let v: String = cmd("GET").arg("kept").query(&mut c).unwrap();
    let first_latency = started.elapsed();
    assert_eq!(v, "known value");
    assert!(
        first_latency < Duration::from_secs(2),
        "first command after the outage took {first_latency:?}"
    );
    let missing: Option<String> = cmd("GET").arg("read-miss").query(&mut c).unwrap();
    assert_eq!(missing, None, "a key known to be absent reads as nil");
    let ttl: i64 = cmd("TTL").arg("expiring").query(&mut c).unwrap();
    assert!((95..=100).contains(&ttl), "{ttl}");
    let unknown: RedisResult<redis::Value> = cmd("GET").arg("never-seen").query(&mut c);
    assert!(is_try_again(&unknown), "{unknown:?}");
    let lpush: RedisResult<redis::Value> = cmd("LPUSH").arg("l").arg("x").query(&mut c);
    assert!(is_try_again(&lpush), "{lpush:?}");
    let multi: RedisResult<redis::Value> = cmd("MULTI").query(&mut c);
    assert!(
        is_try_again(&multi),
        "transactions are refused, not faked: {multi:?}"
    );

    // Writes during the outage are readable during the outage.
    let _: () = cmd("SET")
        .arg("outage-write")
        .arg("written while down")
        .arg("EX")
        .arg(300)
        .query(&mut c)
        .unwrap();
    let n: i64 = cmd("DEL").arg("to-delete").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let _: () = cmd("MSET")
        .arg("m1")
        .arg("one")
        .arg("m2")
        .arg("two")
        .query(&mut c)
        .unwrap();
    let n: i64 = cmd("EXPIRE").arg("kept").arg(500).query(&mut c).unwrap();
    assert_eq!(n, 1);
    let got: Vec<Option<String>> = cmd("MGET")
        .arg("outage-write")
        .arg("to-delete")
        .arg("m2")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        got,
        vec![Some("written while down".into()), None, Some("two".into())]
    );
    let n: i64 = cmd("EXISTS")
        .arg("kept")
        .arg("to-delete")
        .arg("m1")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 2);
    // A new client during the outage is served too.
    let mut late = stack.client();
    let v: String = cmd("GET").arg("m1").query(&mut late).unwrap();
    assert_eq!(v, "one");

    stack.redis.restart();
    wait_healthy(&mut c);

    // In Redis: the outage writes, encrypted; the delete not resurrected; TTLs right.
    let mut direct = stack.direct();
    let ring = stack.key_ring();
    let stored = direct.get(b"outage-write").expect("outage write replayed");
    assert_eq!(ring.decrypt(&stored).unwrap(), b"written while down");
    assert_eq!(
        direct.get(b"to-delete"),
        None,
        "the outage delete was applied"
    );
    let redcloak_commands::resp::Frame::Integer(ttl) =
        direct.cmd(&[b"TTL", b"outage-write"]).unwrap()
    else {
        panic!()
    };
    assert!(
        (280..=300).contains(&ttl),
        "absolute expiry preserved: {ttl}"
    );
    let redcloak_commands::resp::Frame::Integer(ttl) = direct.cmd(&[b"TTL", b"kept"]).unwrap()
    else {
        panic!()
    };
    assert!((480..=500).contains(&ttl), "outage EXPIRE applied: {ttl}");
    assert!(stack.assert_all_values_encrypted() >= 5);
    // Normal service, on the same client connections.
    let v: String = cmd("GET").arg("m2").query(&mut c).unwrap();
    assert_eq!(v, "two");
    let n: i64 = cmd("RPUSH").arg("after").arg("x").query(&mut late).unwrap();
    assert_eq!(n, 1);
    let log = stack.proxy.log_text();
    assert!(
        log.contains("entering degraded mode") && log.contains("leaving degraded mode"),
        "{log}"
    );
}

#[test]
fn kill_under_load_every_command_gets_exactly_one_reply() {
    let mut stack = Stack::start_with(AOF, &[("REDCLOAK_FALLBACK_CACHE_BYTES", "2000000")]);
    let deadline = Instant::now() + Duration::from_secs(6);
    let url = stack.proxy_url();
    let results = std::thread::scope(|s| {
        let workers: Vec<_> = (0..50)
            .map(|t| {
                let url = &url;
                s.spawn(move || {
                    let client = redis::Client::open(url.as_str()).unwrap();
                    let mut c = client
                        .get_connection_with_timeout(Duration::from_secs(5))
                        .unwrap();
                    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let (mut ok, mut redcloak_errors, mut other) = (0u32, 0u32, Vec::new());
                    let mut i = 0u32;
                    while Instant::now() < deadline {
                        let key = format!("w{t}:{}", i % 20);
                        let r: RedisResult<redis::Value> = if i % 3 == 0 {
                            cmd("GET").arg(&key).query(&mut c)
                        } else {
                            cmd("SET").arg(&key).arg(format!("v{i}")).query(&mut c)
                        };
                        match r {
                            Ok(_) => ok += 1,
                            Err(e)
                                if e.to_string().contains("redcloak")
                                    || e.code() == Some("TRYAGAIN") =>
                            {
                                redcloak_errors += 1
                            }
                            Err(e) => {
                                other.push(e.to_string());
                                // A dropped connection: reconnect (the client library would).
                                match client.get_connection_with_timeout(Duration::from_secs(5)) {
                                    Ok(n) => c = n,
                                    Err(e) => other.push(format!("reconnect: {e}")),
                                }
                            }
                        }
                        i += 1;
                    }
                    (ok, redcloak_errors, other)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1500));
        stack.redis.kill9();
        std::thread::sleep(Duration::from_millis(1500));
        stack.redis.restart();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    });
    let ok: u32 = results.iter().map(|r| r.0).sum();
    let errors: u32 = results.iter().map(|r| r.1).sum();
    let other: Vec<&String> = results.iter().flat_map(|r| &r.2).collect();
    // Every command got a reply (a timeout or a reset would be an "other" error).
    assert!(
        other.is_empty(),
        "commands without a proper reply: {:?}",
        &other[..other.len().min(5)]
    );
    assert!(ok > 1000 && errors > 0, "ok {ok}, redcloak errors {errors}");
    let rss_mib = stack.proxy.rss_kib() / 1024;
    assert!(rss_mib < 200, "redcloak RSS {rss_mib} MiB");
    let mut c = stack.client();
    wait_healthy(&mut c);
    assert!(stack.assert_all_values_encrypted() > 0);
}

#[test]
fn a_full_journal_refuses_writes_instead_of_losing_them() {
    let mut stack = Stack::start_with(AOF, &[("REDCLOAK_JOURNAL_MAX_ENTRIES", "3")]);
    let mut c = stack.client();
    let _: Option<String> = cmd("GET").arg("x").query(&mut c).unwrap();
    stack.redis.kill9();
    std::thread::sleep(Duration::from_millis(200));
    let _: Option<String> = cmd("GET").arg("x").query(&mut c).unwrap();
    for i in 0..3 {
        let _: () = cmd("SET")
            .arg(format!("j{i}"))
            .arg(i)
            .query(&mut c)
            .unwrap();
    }
    let refused: RedisResult<()> = cmd("SET").arg("j3").arg(3).query(&mut c);
    let err = refused.unwrap_err().to_string();
    assert!(
        err.contains("journal is full") && err.contains("not accepted"),
        "{err}"
    );
    stack.redis.restart();
    wait_healthy(&mut c);
    let mut direct = stack.direct();
    for i in 0..3 {
        assert!(
            direct.get(format!("j{i}").as_bytes()).is_some(),
            "accepted write j{i} was applied"
        );
    }
    assert_eq!(direct.get(b"j3"), None, "the refused write was not applied");
}

#[test]
fn the_shadow_cache_expires_by_ttl_and_is_bounded_by_size() {
    let mut stack = Stack::start_with(&[], &[("REDCLOAK_FALLBACK_CACHE_BYTES", "40000")]);
    let mut c = stack.client();
    let _: () = cmd("SET")
        .arg("short")
        .arg("v")
        .arg("PX")
        .arg(300)
        .query(&mut c)
        .unwrap();
    let big = "x".repeat(1000);
    for i in 0..100 {
        let _: () = cmd("SET")
            .arg(format!("big{i}"))
            .arg(&big)
            .query(&mut c)
            .unwrap();
    }
    stack.redis.kill9();
    std::thread::sleep(Duration::from_millis(400));
    let v: Option<String> = cmd("GET")
        .arg("short")
        .query(&mut c)
        .unwrap_or(Some("TRYAGAIN".into()));
    assert!(
        v.is_none() || v.as_deref() == Some("TRYAGAIN"),
        "an expired key is never served: {v:?}"
    );
    let served = (0..100)
        .filter(|i| {
            cmd("GET")
                .arg(format!("big{i}"))
                .query::<String>(&mut c)
                .is_ok()
        })
        .count();
    // Each entry weighs ~1.5 KB of ciphertext: a 40 KB bound holds a few dozen at most.
    assert!(
        served > 0 && served < 40,
        "{served} of 100 large values still cached"
    );
}

#[test]
fn flapping_redis_ends_healthy_with_every_write_applied_once() {
    let mut stack = Stack::start_with(AOF, &[]);
    let mut c = stack.client();
    let _: () = cmd("SET")
        .arg("counter-ish")
        .arg("0")
        .query(&mut c)
        .unwrap();
    for round in 0..3 {
        stack.redis.kill9();
        std::thread::sleep(Duration::from_millis(200));
        let _: () = cmd("SET")
            .arg(format!("flap{round}"))
            .arg(round)
            .query(&mut c)
            .unwrap();
        let _: i64 = cmd("DEL")
            .arg(format!("flap{}", round.max(1) - 1))
            .query(&mut c)
            .unwrap_or(0);
        let _: () = cmd("SET")
            .arg("counter-ish")
            .arg(round + 1)
            .query(&mut c)
            .unwrap();
        stack.redis.restart();
        wait_healthy(&mut c);
    }
    let v: String = cmd("GET").arg("counter-ish").query(&mut c).unwrap();
    assert_eq!(v, "3");
    let mut direct = stack.direct();
    assert!(direct.get(b"flap2").is_some());
    assert_eq!(
        direct.get(b"flap1"),
        None,
        "deleted in round 2, not resurrected"
    );
    let log = stack.proxy.log_text();
    assert_eq!(
        log.matches("leaving degraded mode").count(),
        log.matches("entering degraded mode").count(),
        "{log}"
    );
}

#[test]
fn invalidate_recovery_drops_outage_writes() {
    let mut stack = Stack::start_with(AOF, &[("REDCLOAK_RECOVERY", "invalidate")]);
    let mut c = stack.client();
    let _: Option<String> = cmd("GET").arg("x").query(&mut c).unwrap();
    stack.redis.kill9();
    std::thread::sleep(Duration::from_millis(200));
    let _: Option<String> = cmd("GET").arg("x").query(&mut c).unwrap();
    let _: () = cmd("SET").arg("x").arg("outage").query(&mut c).unwrap();
    stack.redis.restart();
    wait_healthy(&mut c);
    let v: Option<String> = cmd("GET").arg("x").query(&mut c).unwrap();
    assert_eq!(
        v, None,
        "with REDCLOAK_RECOVERY=invalidate the outage write is dropped"
    );
    assert!(stack.proxy.log_text().contains("were dropped"));
}

#[test]
fn unreachable_at_startup_serves_degraded_then_replays() {
    let mut stack = Stack::start_with(AOF, &[]);
    stack.redis.kill9();
    // A fresh redcloak against the dead Redis.
    let proxy = redcloak_e2e::Redcloak::start(stack.dir.path(), &stack.env);
    let client = redis::Client::open(format!("redis://{}", proxy.addr)).unwrap();
    let mut c = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap();
    let _: () = cmd("SET")
        .arg("born-in-outage")
        .arg("hello")
        .query(&mut c)
        .unwrap();
    let v: String = cmd("GET").arg("born-in-outage").query(&mut c).unwrap();
    assert_eq!(v, "hello");
    stack.redis.restart();
    wait_healthy(&mut c);
    let stored = stack.direct().get(b"born-in-outage").expect("replayed");
    assert_eq!(stack.key_ring().decrypt(&stored).unwrap(), b"hello");
}

#[test]
fn in_flight_commands_get_an_unknown_outcome_error() {
    let mut stack = Stack::start_with(AOF, &[]);
    let mut blocked = stack.client();
    std::thread::scope(|s| {
        let waiter = s.spawn(move || {
            cmd("BLPOP")
                .arg("never")
                .arg(0)
                .query::<Option<(String, String)>>(&mut blocked)
        });
        std::thread::sleep(Duration::from_millis(300));
        stack.redis.kill9();
        let err = waiter.join().unwrap().unwrap_err().to_string();
        assert!(
            err.contains("redcloak") && err.contains("outcome of this BLPOP is unknown"),
            "{err}"
        );
    });
}
