//! Rotating the member key without downtime. Members are written under key A; then the key
//! file becomes `B, A` (B new and primary) and redcloak reloads it while clients stay
//! connected. Until `rewrap` re-encrypts the members under B, every lookup tries both keys:
//! old members are still found, counted once and removable, new ones are written under B.

use std::time::Duration;

use bytes::Bytes;
use redcloak_commands::resp::Frame;
use redcloak_crypto::{inspect_member, KeyRing};
use redcloak_e2e::{wait_for, without_var, Plain, Redcloak, Stack};

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn cmd(c: &mut Plain, line: &str) -> Frame {
    let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    c.cmd(&args).unwrap()
}

fn sorted(f: Frame) -> Vec<Frame> {
    let (Frame::Array(mut items) | Frame::Set(mut items)) = f else {
        panic!("{f:?}")
    };
    items.sort_by_key(|i| match i {
        Frame::Bulk(b) => b.to_vec(),
        other => panic!("{other:?}"),
    });
    items
}

#[test]
fn members_under_the_old_key_are_found_counted_once_and_removable() {
    let mut stack = Stack::start();
    let key_a = stack.keys.clone();
    let key_b = redcloak_crypto::generate_key().to_string();
    // redcloak reads its keys from a file, as in production, so that they can rotate live.
    let key_file = stack.dir.path().join("keys");
    std::fs::write(&key_file, format!("{key_a}\n")).unwrap();
    let mut env = without_var(&stack.env, "REDIS_ENCRYPTION_KEY");
    env.push((
        "REDIS_ENCRYPTION_KEY_FILE".into(),
        key_file.display().to_string(),
    ));
    stack.proxy = Redcloak::start(stack.dir.path(), &env);

    let mut before = stack.plain();
    for line in [
        "SADD s alice bob",
        "ZADD z 1 alice 2 bob",
        "GEOADD g 13.361389 38.115556 alice 15.087269 37.502669 bob",
    ] {
        cmd(&mut before, line);
    }

    // Rotate: B first, A kept for reading.
    std::fs::write(&key_file, format!("{key_b}\n{key_a}\n")).unwrap();
    let pid = stack.proxy.pid().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    assert!(
        wait_for(Duration::from_secs(15), || stack
            .proxy
            .log_text()
            .contains("reloaded certificates, password and keys")),
        "{}",
        stack.proxy.log_text()
    );
    stack.keys = format!("{key_b},{key_a}");
    let ring = stack.key_ring();
    let (id_b, id_a) = (ring.key_ids()[0], ring.key_ids()[1]);

    // The connection opened before the rotation and a new one see the same thing; so does a
    // RESP3 connection.
    let mut after = stack.plain();
    let mut resp3 = stack.plain();
    cmd(&mut resp3, "HELLO 3");
    for c in [&mut before, &mut after] {
        assert_eq!(cmd(c, "SISMEMBER s alice"), Frame::Integer(1));
        assert_eq!(cmd(c, "SISMEMBER s nobody"), Frame::Integer(0));
        assert_eq!(
            cmd(c, "SMISMEMBER s alice nobody bob"),
            Frame::Array(vec![
                Frame::Integer(1),
                Frame::Integer(0),
                Frame::Integer(1)
            ])
        );
        assert_eq!(cmd(c, "ZSCORE z bob"), bulk("2"));
        assert_eq!(
            cmd(c, "ZMSCORE z alice nobody"),
            Frame::Array(vec![bulk("1"), Frame::NullBulk])
        );
        assert_eq!(cmd(c, "SCARD s"), Frame::Integer(2));
        assert_eq!(
            sorted(cmd(c, "SMEMBERS s")),
            vec![bulk("alice"), bulk("bob")]
        );
        assert_eq!(
            cmd(c, "ZRANGE z 0 -1 WITHSCORES"),
            Frame::Array(vec![bulk("alice"), bulk("1"), bulk("bob"), bulk("2")])
        );
        let Frame::Array(pos) = cmd(c, "GEOPOS g alice nobody") else {
            panic!()
        };
        assert!(matches!(&pos[0], Frame::Array(xy) if xy.len() == 2));
        assert_eq!(pos[1], Frame::NullArray);
        assert_eq!(
            cmd(c, "GEOHASH g bob"),
            Frame::Array(vec![bulk("sqdtr74hyu0")])
        );
    }
    assert_eq!(cmd(&mut resp3, "SISMEMBER s bob"), Frame::Integer(1));
    assert_eq!(
        cmd(&mut resp3, "ZSCORE z alice"),
        Frame::Double(Bytes::from_static(b"1"))
    );
    assert_eq!(cmd(&mut resp3, "ZSCORE z nobody"), Frame::Null);
    // Inside a transaction too.
    cmd(&mut after, "MULTI");
    cmd(&mut after, "SISMEMBER s alice");
    cmd(&mut after, "ZSCORE z alice");
    cmd(&mut after, "GEOPOS g nobody");
    assert_eq!(
        cmd(&mut after, "EXEC"),
        Frame::Array(vec![
            Frame::Integer(1),
            bulk("1"),
            Frame::Array(vec![Frame::NullArray])
        ])
    );

    // New members are written under B; old ones stay under A until rewrap.
    assert_eq!(cmd(&mut after, "SADD s carol"), Frame::Integer(1));
    assert_eq!(cmd(&mut after, "SISMEMBER s carol"), Frame::Integer(1));
    let mut direct = stack.direct();
    let Frame::Array(stored) = direct.cmd(&[b"SMEMBERS", b"s"]).unwrap() else {
        panic!()
    };
    let mut ids: Vec<_> = stored
        .iter()
        .map(|m| match m {
            Frame::Bulk(m) => inspect_member(m).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    ids.sort_by_key(|id| id.to_string());
    let mut want = vec![id_a, id_a, id_b];
    want.sort_by_key(|id| id.to_string());
    assert_eq!(ids, want, "alice and bob under A, carol under B");

    // Removable under either key, counted once.
    assert_eq!(cmd(&mut after, "SREM s alice nobody"), Frame::Integer(1));
    assert_eq!(cmd(&mut after, "SISMEMBER s alice"), Frame::Integer(0));
    assert_eq!(cmd(&mut after, "ZREM z alice"), Frame::Integer(1));
    assert_eq!(cmd(&mut after, "ZCARD z"), Frame::Integer(1));
    assert_eq!(cmd(&mut after, "ZREM g alice"), Frame::Integer(1));

    // Before rewrap, adding a member that is stored under A adds a second copy under B (the
    // documented limit of phase 1): it is still found once, and one SREM removes both copies
    // and counts one.
    assert_eq!(cmd(&mut after, "SADD s bob"), Frame::Integer(1));
    assert_eq!(cmd(&mut after, "SCARD s"), Frame::Integer(3));
    assert_eq!(cmd(&mut after, "SISMEMBER s bob"), Frame::Integer(1));
    assert_eq!(cmd(&mut after, "SREM s bob"), Frame::Integer(1));
    assert_eq!(cmd(&mut after, "SISMEMBER s bob"), Frame::Integer(0));
    assert_eq!(sorted(cmd(&mut after, "SMEMBERS s")), vec![bulk("carol")]);

    // Everything Redis holds opens with the rotated ring; the old ring alone cannot open what
    // was written under B.
    assert_eq!(
        stack.assert_all_values_encrypted(),
        3,
        "carol, and bob in z and g"
    );
    let old = KeyRing::parse(&key_a).unwrap();
    let Frame::Array(stored) = direct.cmd(&[b"SMEMBERS", b"s"]).unwrap() else {
        panic!()
    };
    let Frame::Bulk(carol) = &stored[0] else {
        panic!()
    };
    assert!(old.decrypt_member(carol).is_err());
}
