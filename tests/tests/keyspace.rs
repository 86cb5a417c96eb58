//! Key-space commands that move ciphertext around keep values readable; DUMP/RESTORE only
//! accepts payloads redcloak produced.

use redcloak_e2e::Stack;
use redis::cmd;

#[test]
fn rename_copy_move_swapdb_keep_values_readable() {
    let stack = Stack::start();
    let mut c = stack.client();
    let _: () = cmd("SET").arg("a").arg("alpha").query(&mut c).unwrap();
    let _: () = cmd("RENAME").arg("a").arg("b").query(&mut c).unwrap();
    let v: String = cmd("GET").arg("b").query(&mut c).unwrap();
    assert_eq!(v, "alpha");
    let n: i64 = cmd("COPY").arg("b").arg("c").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let v: String = cmd("GET").arg("c").query(&mut c).unwrap();
    assert_eq!(v, "alpha");
    let n: i64 = cmd("MOVE").arg("c").arg(1).query(&mut c).unwrap();
    assert_eq!(n, 1);
    let _: () = cmd("SWAPDB").arg(0).arg(1).query(&mut c).unwrap();
    let v: String = cmd("GET").arg("c").query(&mut c).unwrap();
    assert_eq!(v, "alpha", "c came back to db 0 with SWAPDB");
    let ttl: i64 = cmd("EXPIRETIME").arg("c").query(&mut c).unwrap();
    assert_eq!(ttl, -1);
    let keys: Vec<String> = cmd("KEYS").arg("*").query(&mut c).unwrap();
    assert_eq!(keys, vec!["c"]);
    let (cursor, found): (String, Vec<String>) = cmd("SCAN").arg(0).query(&mut c).unwrap();
    assert_eq!((cursor.as_str(), found), ("0", vec!["c".to_owned()]));
    let n: i64 = cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 1);
    assert!(stack.assert_all_values_encrypted() >= 2);
}

#[test]
fn dump_restore_round_trips_only_redcloak_payloads() {
    let stack = Stack::start();
    let mut c = stack.client();
    let _: i64 = cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("secret field value")
        .query(&mut c)
        .unwrap();
    let sealed: Vec<u8> = cmd("DUMP").arg("h").query(&mut c).unwrap();
    assert!(
        sealed.starts_with(b"gAAAAA"),
        "DUMP's payload is sealed for the client"
    );
    let _: () = cmd("RESTORE")
        .arg("h2")
        .arg(0)
        .arg(&sealed)
        .query(&mut c)
        .unwrap();
    let v: String = cmd("HGET").arg("h2").arg("f").query(&mut c).unwrap();
    assert_eq!(v, "secret field value");

    // A payload from elsewhere (here: DUMP taken directly from Redis of a plaintext value).
    let mut direct = stack.direct();
    direct.set(b"plain", b"plaintext");
    let redcloak_commands::resp::Frame::Bulk(foreign) = direct.cmd(&[b"DUMP", b"plain"]).unwrap()
    else {
        panic!()
    };
    let err = cmd("RESTORE")
        .arg("smuggled")
        .arg(0)
        .arg(&foreign[..])
        .query::<()>(&mut c)
        .unwrap_err()
        .to_string();
    assert!(err.contains("redcloak") && err.contains("DUMP"), "{err}");
    assert_eq!(direct.get(b"smuggled"), None, "nothing was restored");
    direct.cmd(&[b"DEL", b"plain"]).unwrap();
    assert!(stack.assert_all_values_encrypted() >= 2);
}

#[test]
fn operator_and_member_commands_are_refused_with_reasons() {
    let stack = Stack::start();
    let mut c = stack.client();
    for (args, needle) in [
        (vec!["CONFIG", "SET", "appendonly", "no"], "operator"),
        (vec!["DEBUG", "SLEEP", "0"], "operator"),
        (vec!["SHUTDOWN"], "operator"),
        (vec!["ACL", "LIST"], "operator"),
        (vec!["ZRANGEBYLEX", "z", "-", "+"], "lexicographic"),
        (vec!["ZRANGE", "z", "[a", "[b", "BYLEX"], "BYLEX"),
        (vec!["OBJECT", "ENCODING", "k"], "ciphertext"),
        (vec!["CLUSTER", "INFO"], "cluster"),
    ] {
        let mut q = cmd(args[0]);
        for a in &args[1..] {
            q.arg(*a);
        }
        let err = q.query::<redis::Value>(&mut c).unwrap_err().to_string();
        assert!(
            err.contains("redcloak") && err.contains(needle),
            "{args:?}: {err}"
        );
    }
    // A subcommand Redis does not know gets Redis's own wording.
    let err = cmd("XINFO")
        .arg("NOSUCH")
        .query::<redis::Value>(&mut c)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown subcommand 'NOSUCH'. Try XINFO HELP."),
        "{err}"
    );
    // Nothing was written.
    let n: i64 = cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 0);
}

/// `CONFIG GET` answers like it does for an ACL-restricted user: every parameter but the
/// credentials and key paths, in RESP2 and RESP3, for `*`, patterns that match secrets
/// (`*pass*`, `tls-*`, `*key*`, `master*`), secrets asked by name in any case, and several
/// patterns at once — so tools that read `maxmemory-policy` and friends keep working.
#[test]
fn config_get_answers_without_secrets() {
    use redcloak_commands::resp::Frame;
    let stack = Stack::start();
    // Redis answers a name asked for exactly in the case it was asked (`REQUIREPASS`).
    let is_secret = |name: &str| {
        redcloak_commands::table::SECRET_CONFIG
            .iter()
            .any(|s| s.eq_ignore_ascii_case(name))
    };
    let pairs = |f: Frame| -> Vec<(String, String)> {
        let items: Vec<Frame> = match f {
            Frame::Array(items) => items,
            Frame::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            other => panic!("{other:?}"),
        };
        let text = |f: &Frame| match f {
            Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("{other:?}"),
        };
        let mut out: Vec<(String, String)> = items
            .chunks(2)
            .map(|p| (text(&p[0]), text(&p[1])))
            .collect();
        out.sort();
        out
    };
    let patterns: &[&[&str]] = &[
        &["*"],
        &["*pass*"],
        &["tls-*"],
        &["*key*"],
        &["master*"],
        &["acl*"],
        &["requirepass"],
        &["REQUIREPASS"],
        &["TLS-KEY-FILE"],
        &["requirepass\0*"],
        &["maxmemory*"],
        &["maxmemory-policy", "requirepass", "tls-key-file", "*auth*"],
    ];
    let mut direct = stack.direct();
    for pattern in patterns {
        let mut args: Vec<&[u8]> = vec![b"CONFIG", b"GET"];
        args.extend(pattern.iter().map(|p| p.as_bytes()));
        let expected: Vec<(String, String)> = pairs(direct.cmd(&args).unwrap())
            .into_iter()
            .filter(|(n, _)| !is_secret(n))
            .collect();
        for protocol in [&b"2"[..], b"3"] {
            let mut plain = stack.plain();
            plain.cmd(&[b"HELLO", protocol]).unwrap();
            let got = pairs(plain.cmd(&args).unwrap());
            assert_eq!(got, expected, "CONFIG GET {pattern:?} (RESP{protocol:?})");
            for (name, value) in &got {
                assert!(!is_secret(name), "{name} shown");
                assert!(!value.contains(&stack.password), "the password is shown");
                assert!(
                    !value.ends_with(".key"),
                    "a key path is shown: {name} {value}"
                );
            }
        }
    }
    let mut c = stack.client();
    let policy: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query(&mut c)
        .unwrap();
    assert_eq!(policy[0], "maxmemory-policy");
}
