//! `scripts/migrate-to-secure-redis.sh`: a plaintext redis-server's strings, hashes, lists,
//! streams, sets and sorted sets (binary values, large values, TTLs) are copied into the secure
//! Redis *through* redcloak — readable through redcloak, ciphertext around it — HyperLogLogs
//! are reported as skipped with the reason; the plaintext Redis is only read; a
//! re-run copies nothing twice; the full flow moves the plaintext settings out of `.env`.

use std::collections::HashMap;
use std::time::Duration;

use redcloak_e2e::scripts::{alive, DotEnv, PlainRedis, TempRepo};
use redcloak_e2e::{assert_no_secret, audit, random_secret, Direct, Redcloak, Stack};
use redis::Commands;

/// What the plaintext Redis holds before the migration.
struct Fixture {
    strings: Vec<(Vec<u8>, Vec<u8>)>,
    hash_small: Vec<(Vec<u8>, Vec<u8>)>,
    hash_big: HashMap<String, String>,
    list: Vec<Vec<u8>>,
}

fn fill(c: &mut redis::Connection) -> Fixture {
    let binary: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let big: Vec<u8> = (0..2 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let strings = vec![
        (b"s:text".to_vec(), b"hello, world".to_vec()),
        (b"s:binary".to_vec(), binary.clone()),
        (b"s:crlf".to_vec(), b"line1\r\nline2\r\n$5\r\n".to_vec()),
        (b"s:big".to_vec(), big),
        (b"s:counter".to_vec(), b"42".to_vec()),
        (b"s:ttl".to_vec(), b"expires".to_vec()),
        (b"bin\xffkey\x00name".to_vec(), b"binary key name".to_vec()),
    ];
    for (k, v) in &strings {
        let _: () = c.set(k, v).unwrap();
    }
    let _: () = c.pexpire("s:ttl", 600_000).unwrap();

    let hash_small = vec![
        (b"name".to_vec(), b"Ada".to_vec()),
        (b"avatar".to_vec(), binary.clone()),
        (b"empty".to_vec(), b"".to_vec()),
    ];
    let _: () = c.hset_multiple("h:user", &hash_small).unwrap();
    let hash_big: HashMap<String, String> = (0..1500)
        .map(|i| (format!("f{i}"), format!("value {i}")))
        .collect();
    let pairs: Vec<(&String, &String)> = hash_big.iter().collect();
    let _: () = c.hset_multiple("h:big", &pairs).unwrap();
    let _: () = c.expire("h:big", 3600).unwrap();

    let mut list: Vec<Vec<u8>> = (0..2500).map(|i| format!("job {i}").into_bytes()).collect();
    list.push(binary);
    let _: () = c.rpush("l:queue", &list).unwrap();
    let _: () = c.pexpire("l:queue", 900_000).unwrap();

    let _: () = redis::cmd("XADD")
        .arg("x:events")
        .arg("1-1")
        .arg("kind")
        .arg("signup")
        .arg("user")
        .arg("ada")
        .query(c)
        .unwrap();
    let _: () = redis::cmd("XADD")
        .arg("x:events")
        .arg("2-1")
        .arg("kind")
        .arg("login")
        .query(c)
        .unwrap();
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("x:events")
        .arg("workers")
        .arg("0")
        .query(c)
        .unwrap();

    let _: () = c.sadd("set:tags", &["a", "b", "c"]).unwrap();
    let _: () = c.zadd("z:rank", "ada", 1).unwrap();
    let _: () = redis::cmd("PFADD")
        .arg("hll:visits")
        .arg("a")
        .arg("b")
        .query(c)
        .unwrap();
    Fixture {
        strings,
        hash_small,
        hash_big,
        list,
    }
}

/// Checks through redcloak that everything copyable arrived, with its TTL.
fn check_copied(c: &mut redis::Connection, f: &Fixture) {
    for (k, v) in &f.strings {
        let got: Vec<u8> = c.get(k).unwrap();
        assert!(
            got == *v,
            "{} differs ({} vs {} bytes)",
            String::from_utf8_lossy(k),
            got.len(),
            v.len()
        );
    }
    let got: HashMap<Vec<u8>, Vec<u8>> = c.hgetall("h:user").unwrap();
    assert_eq!(got, f.hash_small.iter().cloned().collect());
    let got: HashMap<String, String> = c.hgetall("h:big").unwrap();
    assert_eq!(got, f.hash_big);
    let got: Vec<Vec<u8>> = c.lrange("l:queue", 0, -1).unwrap();
    assert_eq!(got, f.list);
    let entries: redis::Value = redis::cmd("XRANGE")
        .arg("x:events")
        .arg("-")
        .arg("+")
        .query(c)
        .unwrap();
    let text = format!("{entries:?}");
    for needle in ["1-1", "signup", "ada", "2-1", "login"] {
        assert!(
            text.contains(needle),
            "stream entry {needle} missing: {text}"
        );
    }

    // TTLs: what remained at copy time, so a little less than what was set.
    let mut within = |key: &str, set_ms: i64| {
        let pttl: i64 = c.pttl(key).unwrap();
        assert!(
            pttl <= set_ms && pttl > set_ms - 30_000,
            "{key}: PTTL {pttl} ms, set {set_ms} ms"
        );
    };
    within("s:ttl", 600_000);
    within("h:big", 3_600_000);
    within("l:queue", 900_000);
    for key in ["s:text", "h:user", "x:events"] {
        let pttl: i64 = c.pttl(key).unwrap();
        assert_eq!(pttl, -1, "{key} got a TTL it did not have");
    }
    let mut tags: Vec<String> = c.smembers("set:tags").unwrap();
    tags.sort();
    assert_eq!(tags, vec!["a", "b", "c"]);
    let score: Option<f64> = c.zscore("z:rank", "ada").unwrap();
    assert_eq!(score, Some(1.0));
    // A HyperLogLog is skipped: it is not in the secure Redis at all.
    let n: i64 = c.exists("hll:visits").unwrap();
    assert_eq!(n, 0, "hll:visits must not be copied");
}

fn count_line(out: &str, kind: &str) -> Vec<u64> {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{kind} ")))
        .unwrap_or_else(|| panic!("no {kind} row in the summary:\n{out}"));
    line.split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn copy_data_through_redcloak_keeps_values_types_and_ttls() {
    let stack = Stack::start();
    let source_password = random_secret(24);
    let plain = PlainRedis::start(stack.dir.path(), Some(&source_password));
    let mut src = plain.client();
    let fixture = fill(&mut src);
    let before: i64 = redis::cmd("DBSIZE").query(&mut src).unwrap();

    let repo = TempRepo::new();
    let via = stack.proxy_url();
    let from = plain.url();
    let run = |args: &[&str]| {
        let mut all = vec!["--copy-data", "--from", &from, "--via", &via];
        all.extend_from_slice(args);
        repo.run(
            "migrate-to-secure-redis.sh",
            &all,
            &[("MIGRATE_FROM_PASSWORD", &source_password)],
            "",
        )
    };
    let first = run(&["--progress-every", "4"]);
    first.assert_ok();
    let out = first.text();
    assert!(
        out.matches("==> progress:").count() >= 2,
        "progress lines:\n{out}"
    );
    assert!(out.contains("==> summary: 14 keys scanned"), "{out}");
    assert_eq!(count_line(&out, "string"), [8, 7, 1, 0], "{out}"); // the HyperLogLog is a string
    assert_eq!(count_line(&out, "hash"), [2, 2, 0, 0], "{out}");
    assert_eq!(count_line(&out, "list"), [1, 1, 0, 0], "{out}");
    assert_eq!(count_line(&out, "stream"), [1, 1, 0, 0], "{out}");
    assert_eq!(count_line(&out, "set"), [1, 1, 0, 0], "{out}");
    assert_eq!(count_line(&out, "zset"), [1, 1, 0, 0], "{out}");
    assert_eq!(count_line(&out, "total"), [14, 13, 1, 0], "{out}");
    for needle in [
        "hll:visits (string)",
        "HyperLogLog",
        "warning: 1 string key(s) hold integers (e.g. s:counter)",
        "stream x:events has 1 consumer group(s)",
    ] {
        assert!(out.contains(needle), "missing {needle:?}:\n{out}");
    }
    assert_no_secret(&out, &[&source_password, &stack.password, &stack.keys]);

    let mut c = stack.client();
    check_copied(&mut c, &fixture);
    // Around redcloak, Redis holds only ciphertext: 7 strings + 3 + 1500 hash values + 2501
    // list items + 3 stream values + 3 set members + 1 sorted-set member.
    assert_eq!(
        stack.assert_all_values_encrypted(),
        7 + 3 + 1500 + 2501 + 3 + 3 + 1
    );
    // The source was only read.
    let after: i64 = redis::cmd("DBSIZE").query(&mut src).unwrap();
    assert_eq!(after, before);
    assert_eq!(src.get::<_, String>("s:text").unwrap(), "hello, world");

    // A re-run copies nothing twice: everything is already there.
    let again = run(&[]);
    again.assert_ok();
    let out = again.text();
    assert_eq!(count_line(&out, "total"), [14, 0, 14, 0], "{out}");
    assert!(
        out.contains("13 × already in the secure Redis (re-run with --replace to overwrite)"),
        "{out}"
    );
    let len: i64 = c.llen("l:queue").unwrap();
    assert_eq!(len, 2501, "a re-run must not append to lists");

    // --replace overwrites (here: only the strings, with --match).
    let _: () = src.set("s:text", "changed").unwrap();
    let replaced = run(&["--replace", "--match", "s:*"]);
    replaced.assert_ok();
    assert_eq!(count_line(&replaced.text(), "total"), [6, 6, 0, 0]);
    assert_eq!(c.get::<_, String>("s:text").unwrap(), "changed");
    assert!(stack.assert_all_values_encrypted() > 4000);
}

#[test]
fn migration_moves_the_plaintext_settings_and_copies_with_its_own_redcloak() {
    let repo = TempRepo::new();
    let old_password = random_secret(20);
    let plain = PlainRedis::start(repo.scratch(), Some(&old_password));
    let mut src = plain.client();
    let _: () = src.set_ex("session:1", "payload", 1200).unwrap();
    let _: () = src.hset("user:1", "name", "Ada").unwrap();
    let _: () = src.rpush("jobs", &["one", "two"]).unwrap();
    let _: () = src.sadd("tags", "x").unwrap();
    let old_env = format!(
        "APP_NAME=demo\nREDIS_URL={}\nREDIS_PASSWORD={old_password}\n",
        plain.url()
    );
    std::fs::write(repo.path(".env"), &old_env).unwrap();

    // --dry-run changes nothing anywhere.
    let dry = repo.run("migrate-to-secure-redis.sh", &["--dry-run"], &[], "");
    dry.assert_ok();
    assert!(dry.text().contains("nothing is written"), "{}", dry.text());
    assert_eq!(std::fs::read_to_string(repo.path(".env")).unwrap(), old_env);
    assert!(!repo.path("certs/ca.crt").exists());

    let r = repo.run("migrate-to-secure-redis.sh", &["--copy-data"], &[], "");
    r.assert_ok();
    let out = r.text();
    let source = format!("plaintext Redis: {} (from REDIS_URL in .env)", plain.url());
    for needle in [
        source.as_str(),
        "step 1: moved REDIS_PASSWORD REDIS_URL from .env to .run/env.insecure.bak (0600)",
        "step 2: the secure configuration",
        "step 3: copying through a temporary redcloak",
    ] {
        assert!(out.contains(needle), "missing {needle:?}:\n{out}");
    }
    assert_eq!(count_line(&out, "total"), [4, 4, 0, 0], "{out}");

    // .env: the secure settings, the developer's own line kept; the old ones in the backup.
    let env = repo.env();
    assert_no_secret(
        &out,
        &[
            &old_password,
            env.req("REDIS_PASSWORD"),
            env.req("REDIS_ENCRYPTION_KEY"),
        ],
    );
    assert_eq!(env.req("APP_NAME"), "demo");
    assert!(env.req("REDIS_URL").starts_with("rediss://localhost:"));
    assert_ne!(env.req("REDIS_PASSWORD"), old_password);
    let backup = DotEnv::read(&repo.path(".run/env.insecure.bak"));
    assert_eq!(backup.req("REDIS_URL"), plain.url());
    assert_eq!(backup.req("REDIS_PASSWORD"), old_password);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(repo.path(".run/env.insecure.bak"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // The temporary redcloak is gone.
    let pid: u32 = out
        .split("temporary redcloak on ")
        .nth(1)
        .and_then(|s| s.split("(pid ").nth(1))
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no pid in:\n{out}"));
    assert!(!alive(pid), "the temporary redcloak (pid {pid}) still runs");

    // A redcloak from the new .env reads everything; Redis holds ciphertext.
    let proxy = Redcloak::start(repo.scratch(), &env.vars);
    let mut c = redis::Client::open(format!("redis://{}", proxy.addr))
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(10))
        .unwrap();
    assert_eq!(c.get::<_, String>("session:1").unwrap(), "payload");
    let ttl: i64 = c.ttl("session:1").unwrap();
    assert!(ttl > 1100 && ttl <= 1200, "TTL {ttl}");
    assert_eq!(c.hget::<_, _, String>("user:1", "name").unwrap(), "Ada");
    assert_eq!(
        c.lrange::<_, Vec<String>>("jobs", 0, -1).unwrap(),
        ["one", "two"]
    );
    let port: u16 = env
        .req("REDIS_URL")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut direct = Direct::connect(&env.pki(), port, env.req("REDIS_PASSWORD")).unwrap();
    let ring = redcloak_crypto::KeyRing::parse(env.req("REDIS_ENCRYPTION_KEY")).unwrap();
    assert_eq!(audit::assert_all_values_encrypted(&mut direct, &ring), 5);

    // Running it again: nothing left to move, nothing copied twice.
    let again = repo.run("migrate-to-secure-redis.sh", &["--copy-data"], &[], "");
    again.assert_ok();
    let t = again.text();
    assert!(
        t.contains("from REDIS_URL in .run/env.insecure.bak")
            && t.contains("step 1: .env has no plaintext Redis settings"),
        "{t}"
    );
    assert_eq!(count_line(&t, "total"), [4, 0, 4, 0], "{t}");
}
