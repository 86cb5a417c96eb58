//! Argument words read like Redis reads them (issue 10, class 2).
//!
//! Redis compares option words with `strcasecmp`, which stops at the first NUL byte: to Redis
//! `NOMKSTREAM\0`, `maxLEN` and `AUTH\0junk` are `NOMKSTREAM`, `MAXLEN` and `AUTH`. When
//! redcloak compared bytes instead, it disagreed with Redis about which argument was the
//! stream ID, so a value sat where redcloak expected a field name and reached Redis in
//! plaintext; `HELLO 2 AUTH\0 user pass` was forwarded and switched the upstream connection to
//! another ACL user. These tests watch what Redis receives (MONITOR on a direct TLS connection)
//! and what it stores, whether the command succeeds or fails, and compare every outcome with a
//! plain Redis fed the same command.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::BytesMut;
use redcloak_commands::resp::Frame;
use redcloak_e2e::diff::{error_text, exchange, keyspace_dump, show, Monitor, PlainRedis, Reply};
use redcloak_e2e::gen::{command_docs, Gen};
use redcloak_e2e::{wait_for, Stack};

/// Sends the same commands to a plain Redis and through redcloak. Each must succeed on both,
/// fail on both with the same text, or be refused by redcloak (an error naming redcloak);
/// returns how many redcloak refused.
fn same_outcomes(stack: &Stack, plain: &PlainRedis, cmds: &[Vec<Vec<u8>>]) -> usize {
    let (mut p, mut r) = (plain.raw(), stack.raw());
    let (mut pb, mut rb) = (BytesMut::new(), BytesMut::new());
    let mut refused = 0;
    for cmd in cmds {
        let expected = exchange(&mut p, &mut pb, cmd);
        let got = exchange(&mut r, &mut rb, cmd);
        match (error_text(&expected.frame), error_text(&got.frame)) {
            (_, Some(e)) if e.contains("redcloak") => refused += 1,
            (Some(a), Some(b)) => assert_eq!(a, b, "{}", line(cmd)),
            (None, None) => {}
            _ => panic!(
                "{}: Redis {} / redcloak {}",
                line(cmd),
                show(&[expected]),
                show(&[got])
            ),
        }
    }
    refused
}

fn line(cmd: &[Vec<u8>]) -> String {
    cmd.iter()
        .map(|a| format!("{:?}", String::from_utf8_lossy(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn args(parts: &[&str]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.as_bytes().to_vec()).collect()
}

/// No marker in anything Redis received or holds.
#[track_caller]
fn assert_no_marker(stack: &Stack, monitor: &mut Monitor, marker: &str) {
    monitor.assert_never_seen(&[marker]);
    let dump = keyspace_dump(&mut stack.direct());
    assert!(
        !dump.windows(marker.len()).any(|w| w == marker.as_bytes()),
        "Redis stores a marker: {}",
        String::from_utf8_lossy(&dump)
    );
}

/// XADD's options in every spelling Redis accepts, and broken ones: the values (every second
/// argument after the ID) never reach Redis in plaintext, whether the command is accepted,
/// rejected by Redis, or rejected by redcloak — and every outcome is Redis's.
#[test]
fn xadd_option_words_never_shift_a_value_into_plaintext() {
    let stack = Stack::start();
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    let mut monitor = Monitor::start(&stack);
    let cases: &[&[&str]] = &[
        &[
            "XADD",
            "s",
            "NOMKSTREAM\0",
            "MAXLEN\0",
            "~",
            "10",
            "*",
            "f",
            "SECRET-A",
        ],
        &["XADD", "s", "MAXLEN", "10", "*", "f", "SECRET-B"],
        &[
            "XADD", "s", "maxLEN", "=\0", "10", "*", "f", "SECRET-C", "g", "SECRET-D",
        ],
        &[
            "XADD", "s", "MiNiD", "~\0x", "0-1", "LIMIT\0", "5", "*", "f", "SECRET-E",
        ],
        &[
            "XADD",
            "s",
            "nomkstream",
            "limit",
            "5",
            "maxlen",
            "~",
            "10",
            "*",
            "f",
            "SECRET-F",
        ],
        &[
            "XADD",
            "s",
            "MAXLEN\0junk",
            "~",
            "10",
            "LIMIT",
            "5",
            "99-*",
            "f",
            "SECRET-G",
        ],
        &["XADD", "s", "minid\0", "=", "1-1", "100-1", "f", "SECRET-H"],
        &["XADD", "s", "MAXLEN", "~\0", "10", "*\0", "f", "SECRET-I"],
        // Rejected by Redis (or by redcloak with Redis's words): still no plaintext.
        &["XADD", "s", "MAXLEN", "10", "bad-id", "f", "SECRET-J"],
        &["XADD", "s", "MAXLEN", "10", "1-1\0zz", "f", "SECRET-K"],
        &["XADD", "s", "MAXLEN", "-1", "*", "f", "SECRET-L"],
        &["XADD", "s", "MAXLEN", "x", "*", "f", "SECRET-M"],
        &[
            "XADD", "s", "MAXLEN", "1", "MINID", "1", "*", "f", "SECRET-N",
        ],
        &["XADD", "s", "LIMIT", "5", "*", "f", "SECRET-O"],
        &["XADD", "s", "LIMIT\0", "-5", "*", "f", "SECRET-P"],
        &[
            "XADD",
            "s",
            "NOMKSTREAM",
            "NOMKSTREAM\0",
            "*",
            "f",
            "SECRET-Q",
        ],
        &["XADD", "s", "*", "f", "SECRET-R", "g"],
        &["XADD", "s", "MAXLEN", "~", "*", "f", "SECRET-S"],
        &["XADD", "s", "MINID", "~", "-", "*", "f", "SECRET-T"],
        &["XADD", "s", "0-0", "f", "SECRET-U"],
        &["XADD", "s", "1-\0", "f", "SECRET-V"],
        &[
            "XADD",
            "s",
            "18446744073709551615-18446744073709551615",
            "f",
            "SECRET-W",
        ],
        &["XADD", "s", "nomkstream\0", "SECRET-X"],
        &["XADD", "s", "maxlen\0", "SECRET-Y", "*", "f", "SECRET-Z"],
    ];
    let cmds: Vec<Vec<Vec<u8>>> = cases.iter().map(|c| args(c)).collect();
    same_outcomes(&stack, &plain, &cmds);
    // Generated: XADD from Redis's own argument docs, option words in any case and with NUL
    // suffixes.
    let docs = command_docs(plain.port);
    let mut gen = Gen::new(10);
    gen.marker = Some("XSECRET".into());
    gen.nul_percent = 40;
    let generated: Vec<_> = (0..300)
        .map(|_| gen.command("xadd", &docs["xadd"]))
        .collect();
    let refused = same_outcomes(&stack, &plain, &generated);
    eprintln!("XADD: 300 generated, {refused} refused by redcloak");
    assert_no_marker(&stack, &mut monitor, "SECRET");
    // The stream's values are ciphertext redcloak reads back.
    stack.assert_all_values_encrypted();
}

/// `HELLO … AUTH user pass` in any spelling Redis reads as AUTH: the credentials never reach
/// Redis (not even redacted), and the upstream connection stays redcloak's own user, even with
/// the credentials of a real ACL user.
#[test]
fn hello_auth_never_reaches_redis_nor_switches_the_user() {
    let stack = Stack::start();
    let mut direct = stack.direct();
    let ok = direct
        .cmd(&[
            b"ACL",
            b"SETUSER",
            b"intruder",
            b"on",
            b">intruder-pass",
            b"~*",
            b"&*",
            b"+@all",
        ])
        .unwrap();
    assert_eq!(ok, Frame::Simple("OK".into()));
    let mut monitor = Monitor::start(&stack);
    let cases: &[&[&str]] = &[
        &["HELLO", "2", "AUTH\0", "intruder", "intruder-pass"],
        &[
            "HELLO",
            "3",
            "auth",
            "intruder",
            "intruder-pass",
            "SETNAME",
            "x",
        ],
        &["HELLO", "2", "AuTh\0junk", "intruder", "intruder-pass"],
        &[
            "HELLO",
            "3",
            "SETNAME",
            "y",
            "AUTH",
            "intruder",
            "intruder-pass",
        ],
        &[
            "HELLO",
            "2",
            "AUTH",
            "default",
            "wrong",
            "AUTH\0",
            "intruder",
            "intruder-pass",
        ],
        &[
            "HELLO",
            "3",
            "setname\0",
            "z",
            "auth",
            "intruder",
            "intruder-pass",
        ],
    ];
    let mut c = stack.raw();
    let mut buf = BytesMut::new();
    for case in cases {
        let reply = exchange(&mut c, &mut buf, &args(case));
        assert!(
            matches!(reply.frame, Frame::Map(_) | Frame::Array(_)),
            "{case:?}: {}",
            show(&[reply])
        );
        let who = exchange(&mut c, &mut buf, &args(&["ACL", "WHOAMI"]));
        assert_eq!(
            who.frame,
            Frame::Bulk("default".into()),
            "{case:?} switched the upstream user"
        );
    }
    // What Redis must still answer itself is refused before anything reaches it.
    for (case, error) in [
        (
            &["HELLO", "3", "AUTH", "intruder"][..],
            "ERR Syntax error in HELLO option 'AUTH'",
        ),
        (
            &["HELLO", "4", "AUTH", "intruder", "intruder-pass"],
            "NOPROTO unsupported protocol version",
        ),
        (
            &["HELLO", "AUTH", "intruder", "intruder-pass"],
            "ERR Protocol version is not an integer or out of range",
        ),
        (
            &["HELLO", "3", "AUTH\0", "intruder"],
            "ERR Syntax error in HELLO option 'AUTH'",
        ),
    ] {
        let reply = exchange(&mut c, &mut buf, &args(case));
        assert_eq!(error_text(&reply.frame).as_deref(), Some(error), "{case:?}");
    }
    let hellos = monitor.lines_of("HELLO");
    assert_eq!(hellos.len(), cases.len(), "{hellos:?}");
    for l in &hellos {
        let lower = l.to_ascii_lowercase();
        assert!(
            !lower.contains("auth") && !lower.contains("redacted") && !lower.contains("intruder"),
            "credentials reached Redis: {l}"
        );
    }
    monitor.assert_never_seen(&["intruder"]);
}

/// Every forwarded command that carries values (the table's rows with value arguments), with
/// arguments generated from Redis's docs: option words in random case and with NUL suffixes,
/// every value a marker. No marker reaches Redis (MONITOR) or its keyspace, and every outcome
/// is Redis's own or a refusal by redcloak.
#[test]
fn every_command_with_values_keeps_markers_out_of_redis() {
    let stack = Stack::start();
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    let docs = command_docs(plain.port);
    let mut monitor = Monitor::start(&stack);
    let mut gen = Gen::new(4711);
    gen.marker = Some("MARKER".into());
    gen.nul_percent = 30;
    let mut tried: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let rows: Vec<_> = redcloak_commands::table::all()
        .filter(|s| s.values.any())
        .collect();
    assert!(rows.len() >= 15, "{} rows with values", rows.len());
    for spec in rows {
        let name = spec.name.to_ascii_lowercase();
        let doc = docs
            .get(&name)
            .unwrap_or_else(|| panic!("no COMMAND DOCS for {name}"));
        gen.key_prefix = format!("{name}-key");
        let cmds: Vec<_> = (0..60).map(|_| gen.command(&name, doc)).collect();
        let refused = same_outcomes(&stack, &plain, &cmds);
        tried.insert(spec.name, (cmds.len(), refused));
    }
    eprintln!("generated / refused by redcloak: {tried:?}");
    assert!(gen.markers.len() > 500, "{} markers", gen.markers.len());
    assert_no_marker(&stack, &mut monitor, "MARKER");
    stack.assert_all_values_encrypted();
}

/// The shadow cache learns from SET's reply by the options as Redis read them (`ex\0`, `nX\0`,
/// `Px\0junk` are EX, NX, PX): during an outage it serves exactly what Redis stored, with the
/// expiry Redis applied, and never a value a conditional SET did not store.
#[test]
fn set_options_are_learned_the_way_redis_reads_them() {
    let mut stack = Stack::start();
    let mut c = stack.raw();
    let mut buf = BytesMut::new();
    let mut send = |parts: &[&str]| -> Reply { exchange(&mut c, &mut buf, &args(parts)) };
    let ok = Frame::Simple("OK".into());
    assert_eq!(send(&["SET", "a", "value-a", "ex\0", "100"]).frame, ok);
    assert_eq!(
        send(&["SET", "b", "value-b", "Px\0junk", "100000", "nX\0"]).frame,
        ok
    );
    assert_eq!(send(&["SET", "c", "value-c"]).frame, ok);
    // Not stored (c exists): NX read as NX, the nil reply means nothing changed.
    assert_eq!(
        send(&["SET", "c", "never-stored", "nx\0"]).frame,
        Frame::NullBulk
    );
    assert_eq!(
        send(&["SET", "missing", "never-stored", "XX\0junk"]).frame,
        Frame::NullBulk
    );
    // Expires within the outage.
    assert_eq!(send(&["SET", "e", "value-e", "EX\0", "1"]).frame, ok);
    assert_eq!(
        send(&["SET", "f", "value-f", "kEePtTl\0", "GET\0"]).frame,
        Frame::NullBulk
    );
    assert_eq!(
        stack
            .key_ring()
            .decrypt(&stack.direct().get(b"c").unwrap())
            .unwrap(),
        b"value-c"
    );
    stack.redis.kill9();
    assert!(
        wait_for(Duration::from_secs(10), || stack
            .proxy
            .log_text()
            .contains("degraded mode")),
        "redcloak never noticed the outage"
    );
    std::thread::sleep(Duration::from_millis(1200));
    let mut c = stack.client();
    let get = |c: &mut redis::Connection, k: &str| -> redis::RedisResult<Option<String>> {
        redis::cmd("GET").arg(k).query(c)
    };
    assert_eq!(get(&mut c, "a").unwrap().as_deref(), Some("value-a"));
    let ttl: i64 = redis::cmd("TTL").arg("a").query(&mut c).unwrap();
    assert!((1..=100).contains(&ttl), "TTL a = {ttl}");
    assert_eq!(get(&mut c, "b").unwrap().as_deref(), Some("value-b"));
    assert_eq!(get(&mut c, "c").unwrap().as_deref(), Some("value-c"));
    assert_eq!(get(&mut c, "f").unwrap().as_deref(), Some("value-f"));
    // Never stored, or expired: nil, or not known to the cache — never the value.
    for key in ["missing", "e"] {
        match get(&mut c, key) {
            Ok(v) => assert_eq!(v, None, "{key}"),
            Err(e) => assert!(
                e.to_string().to_ascii_uppercase().contains("TRYAGAIN"),
                "{key}: {e}"
            ),
        }
    }
}
