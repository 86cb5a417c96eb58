//! String commands end to end: redis crate → redcloak → real TLS Redis, and what Redis stores.

use redcloak_e2e::Stack;
use redis::{cmd, RedisResult};

/// Asserts that Redis holds a Fernet token for `key` that decrypts to `plain`.
fn assert_stored_encrypted(stack: &Stack, key: &str, plain: &[u8]) {
    let stored = stack
        .direct()
        .get(key.as_bytes())
        .unwrap_or_else(|| panic!("{key} missing in Redis"));
    assert!(
        stored.starts_with(b"gAAAAA"),
        "{key}: Redis holds {:?}, not a Fernet token",
        String::from_utf8_lossy(&stored)
    );
    assert_ne!(&stored[..], plain, "{key} is stored in plaintext");
    assert_eq!(
        stack
            .key_ring()
            .decrypt(&stored)
            .expect("decrypts with the configured key"),
        plain
    );
}

#[test]
fn set_get_round_trip_and_redis_holds_only_ciphertext() {
    let stack = Stack::start();
    let mut c = stack.client();
    let _: () = cmd("SET")
        .arg("greeting")
        .arg("hello world")
        .query(&mut c)
        .unwrap();
    let got: String = cmd("GET").arg("greeting").query(&mut c).unwrap();
    assert_eq!(got, "hello world");
    assert_stored_encrypted(&stack, "greeting", b"hello world");
    let missing: Option<String> = cmd("GET").arg("nope").query(&mut c).unwrap();
    assert_eq!(missing, None);
}

#[test]
fn set_with_every_option() {
    let stack = Stack::start();
    let mut c = stack.client();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let _: () = cmd("SET")
        .arg("ex")
        .arg("v")
        .arg("EX")
        .arg(100)
        .query(&mut c)
        .unwrap();
    let ttl: i64 = cmd("TTL").arg("ex").query(&mut c).unwrap();
    assert!((95..=100).contains(&ttl), "EX: ttl {ttl}");

    let _: () = cmd("SET")
        .arg("px")
        .arg("v")
        .arg("PX")
        .arg(100_000)
        .query(&mut c)
        .unwrap();
    let pttl: i64 = cmd("PTTL").arg("px").query(&mut c).unwrap();
    assert!((95_000..=100_000).contains(&pttl), "PX: pttl {pttl}");

    let _: () = cmd("SET")
        .arg("exat")
        .arg("v")
        .arg("EXAT")
        .arg(now + 200)
        .query(&mut c)
        .unwrap();
    let ttl: i64 = cmd("TTL").arg("exat").query(&mut c).unwrap();
    assert!((190..=200).contains(&ttl), "EXAT: ttl {ttl}");

    let _: () = cmd("SET")
        .arg("pxat")
        .arg("v")
        .arg("PXAT")
        .arg((now + 300) * 1000)
        .query(&mut c)
        .unwrap();
    let ttl: i64 = cmd("TTL").arg("pxat").query(&mut c).unwrap();
    assert!((290..=300).contains(&ttl), "PXAT: ttl {ttl}");

    // NX / XX
    let r: Option<String> = cmd("SET")
        .arg("nx")
        .arg("first")
        .arg("NX")
        .query(&mut c)
        .unwrap();
    assert_eq!(r.as_deref(), Some("OK"));
    let r: Option<String> = cmd("SET")
        .arg("nx")
        .arg("second")
        .arg("NX")
        .query(&mut c)
        .unwrap();
    assert_eq!(r, None, "NX on an existing key is nil");
    let r: Option<String> = cmd("SET")
        .arg("xx-missing")
        .arg("v")
        .arg("XX")
        .query(&mut c)
        .unwrap();
    assert_eq!(r, None, "XX on a missing key is nil");
    let r: Option<String> = cmd("SET")
        .arg("nx")
        .arg("third")
        .arg("XX")
        .query(&mut c)
        .unwrap();
    assert_eq!(r.as_deref(), Some("OK"));

    // KEEPTTL keeps the TTL of the old value
    let _: () = cmd("SET")
        .arg("ex")
        .arg("new value")
        .arg("KEEPTTL")
        .query(&mut c)
        .unwrap();
    let ttl: i64 = cmd("TTL").arg("ex").query(&mut c).unwrap();
    assert!(ttl > 0, "KEEPTTL lost the ttl");

    // GET returns the old value, decrypted
    let old: Option<String> = cmd("SET")
        .arg("nx")
        .arg("fourth")
        .arg("GET")
        .query(&mut c)
        .unwrap();
    assert_eq!(old.as_deref(), Some("third"));
    let old: Option<String> = cmd("SET")
        .arg("fresh")
        .arg("v")
        .arg("GET")
        .query(&mut c)
        .unwrap();
    assert_eq!(old, None);
    let old: Option<String> = cmd("SET")
        .arg("nx")
        .arg("fifth")
        .arg("NX")
        .arg("GET")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        old.as_deref(),
        Some("fourth"),
        "NX GET returns the old value and does not set"
    );

    assert_stored_encrypted(&stack, "nx", b"fourth");
    assert_stored_encrypted(&stack, "ex", b"new value");

    // A syntax error from Redis reaches the client unchanged.
    let err: RedisResult<()> = cmd("SET")
        .arg("k")
        .arg("v")
        .arg("EX")
        .arg("nan")
        .query(&mut c);
    assert!(
        err.unwrap_err().to_string().contains("not an integer"),
        "Redis's own error passes through"
    );
}

#[test]
fn the_string_family() {
    let stack = Stack::start();
    let mut c = stack.client();

    let _: () = cmd("SETEX")
        .arg("setex")
        .arg(100)
        .arg("a")
        .query(&mut c)
        .unwrap();
    let _: () = cmd("PSETEX")
        .arg("psetex")
        .arg(100_000)
        .arg("b")
        .query(&mut c)
        .unwrap();
    let n: i64 = cmd("SETNX").arg("setnx").arg("c").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let n: i64 = cmd("SETNX")
        .arg("setnx")
        .arg("other")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 0);
    let old: Option<String> = cmd("GETSET").arg("setnx").arg("d").query(&mut c).unwrap();
    assert_eq!(old.as_deref(), Some("c"));
    for (k, v) in [("setex", "a"), ("psetex", "b"), ("setnx", "d")] {
        let got: String = cmd("GET").arg(k).query(&mut c).unwrap();
        assert_eq!(got, v);
        assert_stored_encrypted(&stack, k, v.as_bytes());
    }
    let ttl: i64 = cmd("TTL").arg("setex").query(&mut c).unwrap();
    assert!((95..=100).contains(&ttl));

    // GETEX with options, GETDEL
    let v: String = cmd("GETEX")
        .arg("setnx")
        .arg("EX")
        .arg(50)
        .query(&mut c)
        .unwrap();
    assert_eq!(v, "d");
    let ttl: i64 = cmd("TTL").arg("setnx").query(&mut c).unwrap();
    assert!((45..=50).contains(&ttl));
    let v: String = cmd("GETEX")
        .arg("setnx")
        .arg("PERSIST")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, "d");
    let ttl: i64 = cmd("TTL").arg("setnx").query(&mut c).unwrap();
    assert_eq!(ttl, -1);
    let v: Option<String> = cmd("GETDEL").arg("setnx").query(&mut c).unwrap();
    assert_eq!(v.as_deref(), Some("d"));
    let v: Option<String> = cmd("GETDEL").arg("setnx").query(&mut c).unwrap();
    assert_eq!(v, None);

    // MSET / MSETNX / MGET
    let _: () = cmd("MSET")
        .arg("m1")
        .arg("one")
        .arg("m2")
        .arg("two")
        .query(&mut c)
        .unwrap();
    let n: i64 = cmd("MSETNX")
        .arg("m3")
        .arg("three")
        .arg("m4")
        .arg("four")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1);
    let n: i64 = cmd("MSETNX")
        .arg("m4")
        .arg("x")
        .arg("m5")
        .arg("y")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 0);
    let got: Vec<Option<String>> = cmd("MGET")
        .arg("m1")
        .arg("missing")
        .arg("m2")
        .arg("m3")
        .arg("m4")
        .arg("m5")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        got,
        vec![
            Some("one".into()),
            None,
            Some("two".into()),
            Some("three".into()),
            Some("four".into()),
            None
        ]
    );
    for (k, v) in [
        ("m1", "one"),
        ("m2", "two"),
        ("m3", "three"),
        ("m4", "four"),
    ] {
        assert_stored_encrypted(&stack, k, v.as_bytes());
    }

    // Keys and expiry
    let n: i64 = cmd("EXISTS")
        .arg("m1")
        .arg("m2")
        .arg("missing")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 2);
    let t: String = cmd("TYPE").arg("m1").query(&mut c).unwrap();
    assert_eq!(t, "string");
    let n: i64 = cmd("EXPIRE").arg("m1").arg(100).query(&mut c).unwrap();
    assert_eq!(n, 1);
    let n: i64 = cmd("EXPIRE")
        .arg("m1")
        .arg(10)
        .arg("GT")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 0, "EXPIRE options pass through");
    let n: i64 = cmd("PEXPIRE").arg("m2").arg(100_000).query(&mut c).unwrap();
    assert_eq!(n, 1);
    let pttl: i64 = cmd("PTTL").arg("m2").query(&mut c).unwrap();
    assert!(pttl > 90_000);
    let n: i64 = cmd("PERSIST").arg("m2").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let ttl: i64 = cmd("TTL").arg("m2").query(&mut c).unwrap();
    assert_eq!(ttl, -1);
    let n: i64 = cmd("DEL")
        .arg("m1")
        .arg("m2")
        .arg("missing")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 2);
    let n: i64 = cmd("UNLINK").arg("m3").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let n: i64 = cmd("EXISTS").arg("m1").arg("m3").query(&mut c).unwrap();
    assert_eq!(n, 0);
}

#[test]
fn connection_commands() {
    let stack = Stack::start();
    let mut c = stack.client();
    let pong: String = cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let echo: String = cmd("PING").arg("hi").query(&mut c).unwrap();
    assert_eq!(echo, "hi");
    let echo: String = cmd("ECHO").arg("echo me").query(&mut c).unwrap();
    assert_eq!(echo, "echo me");
    // AUTH is answered by redcloak: the client's credentials never reach Redis.
    let ok: String = cmd("AUTH").arg("anything").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    let ok: String = cmd("AUTH").arg("user").arg("pass").query(&mut c).unwrap();
    assert_eq!(ok, "OK");
    // SELECT switches this connection's database, as with Redis.
    let _: () = cmd("SELECT").arg(3).query(&mut c).unwrap();
    let _: () = cmd("SET").arg("in-db-3").arg("v3").query(&mut c).unwrap();
    let mut direct = stack.direct();
    assert_eq!(direct.get(b"in-db-3"), None, "db 0 must not see it");
    direct.cmd(&[b"SELECT", b"3"]).unwrap();
    let stored = direct.get(b"in-db-3").expect("stored in db 3");
    assert_eq!(stack.key_ring().decrypt(&stored).unwrap(), b"v3");
    let err: RedisResult<()> = cmd("SELECT").arg(99_999).query(&mut c);
    assert!(err.is_err());
    let got: String = cmd("GET").arg("in-db-3").query(&mut c).unwrap();
    assert_eq!(got, "v3", "a failed SELECT keeps the database");
}

#[test]
fn binary_safe_values() {
    let stack = Stack::start();
    let mut c = stack.client();
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let big: Vec<u8> = (0..1024 * 1024).map(|i| (i * 31 % 251) as u8).collect();
    let cases: [(&str, &[u8]); 4] = [
        ("all-bytes", &all_bytes),
        ("empty", b""),
        ("crlf", b"\r\n$3\r\n*1\r\n"),
        ("one-mib", &big),
    ];
    for (key, value) in cases {
        let _: () = cmd("SET").arg(key).arg(value).query(&mut c).unwrap();
        let got: Vec<u8> = cmd("GET").arg(key).query(&mut c).unwrap();
        assert_eq!(got, value, "{key} round trip");
        assert_stored_encrypted(&stack, key, value);
    }
    let got: Vec<Vec<u8>> = cmd("MGET")
        .arg("all-bytes")
        .arg("empty")
        .arg("one-mib")
        .query(&mut c)
        .unwrap();
    assert_eq!(got, vec![all_bytes.clone(), Vec::new(), big.clone()]);
}

#[test]
fn quit_answers_ok_then_closes() {
    let stack = Stack::start();
    let mut raw = stack.raw();
    use std::io::Write;
    raw.write_all(
        b"*3\r\n$3\r\nSET\r\n$1\r\nq\r\n$1\r\nv\r\n*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n",
    )
    .unwrap();
    let (got, closed) =
        redcloak_e2e::read_until_closed(&mut raw, std::time::Duration::from_secs(5));
    assert!(closed, "QUIT closes the connection");
    assert_eq!(
        got, b"+OK\r\n+OK\r\n",
        "SET answered, QUIT answered, nothing after QUIT"
    );
}
