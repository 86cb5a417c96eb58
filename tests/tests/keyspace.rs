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
        (vec!["EVAL", "return 1", "0"], "scripts"),
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
/// credentials and key paths, in RESP2 and RESP3, so tools that read `maxmemory-policy` and
/// friends keep working.
#[test]
fn config_get_answers_without_secrets() {
    use redcloak_commands::resp::Frame;
    let stack = Stack::start();
    let direct = match stack.direct().cmd(&[b"CONFIG", b"GET", b"*"]).unwrap() {
        Frame::Array(items) => items,
        other => panic!("{other:?}"),
    };
    let names = |items: &[Frame]| -> Vec<String> {
        items
            .iter()
            .step_by(2)
            .map(|f| match f {
                Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    let secrets = redcloak_commands::table::SECRET_CONFIG;
    let mut expected: Vec<String> = names(&direct)
        .into_iter()
        .filter(|n| !secrets.contains(&n.as_str()))
        .collect();
    expected.sort();
    for protocol in [&b"2"[..], b"3"] {
        let mut plain = stack.plain();
        plain.cmd(&[b"HELLO", protocol]).unwrap();
        let items = match plain.cmd(&[b"CONFIG", b"GET", b"*"]).unwrap() {
            Frame::Array(items) => items,
            Frame::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            other => panic!("{other:?}"),
        };
        let mut got = names(&items);
        got.sort();
        assert_eq!(got, expected, "every parameter but the secret ones");
        for secret in secrets {
            assert!(!got.iter().any(|n| n == secret), "{secret} shown");
        }
        let by_name = plain.cmd(&[b"CONFIG", b"GET", b"requirepass"]).unwrap();
        assert!(
            matches!(&by_name, Frame::Array(a) if a.is_empty())
                || matches!(&by_name, Frame::Map(m) if m.is_empty()),
            "asking for the password by name gets nothing: {by_name:?}"
        );
    }
    let mut c = stack.client();
    let policy: Vec<String> = cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query(&mut c)
        .unwrap();
    assert_eq!(policy[0], "maxmemory-policy");
}
