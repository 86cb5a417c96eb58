//! Pub/sub through redcloak: payloads encrypted on the wire and in Redis's hands, decrypted for
//! subscribers; subscribed mode behaves like Redis's (RESP2 and RESP3).

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use redcloak_commands::resp::{Frame, Limits, ReplyScanner};
use redcloak_e2e::Stack;
use redis::cmd;

/// Reads exactly `n` RESP frames from a raw connection.
fn read_frames(s: &mut TcpStream, n: usize) -> Vec<Frame> {
    use std::io::Read;
    let mut buf = bytes::BytesMut::new();
    let mut frames = Vec::new();
    let mut scanner = ReplyScanner::new(Limits::default());
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while frames.len() < n {
        if let Some(len) = scanner.scan(&buf).unwrap() {
            let f = buf.split_to(len).freeze();
            frames.push(Frame::parse(&f, &Limits::default()).unwrap().unwrap().0);
            continue;
        }
        let mut chunk = [0u8; 4096];
        let read = s.read(&mut chunk).expect("read frames");
        assert!(
            read > 0,
            "connection closed after {} of {n} frames: {frames:?}",
            frames.len()
        );
        buf.extend_from_slice(&chunk[..read]);
    }
    frames
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

#[test]
fn subscribers_get_plaintext_and_redis_only_sees_ciphertext() {
    let stack = Stack::start();
    // A subscriber through redcloak (RESP2) and a spy straight on Redis.
    let mut sub = stack.raw();
    sub.write_all(b"*3\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n$5\r\nalert\r\n*2\r\n$10\r\nPSUBSCRIBE\r\n$2\r\nn*\r\n").unwrap();
    let confirmations = read_frames(&mut sub, 3);
    assert_eq!(
        confirmations[0],
        Frame::Array(vec![bulk("subscribe"), bulk("news"), Frame::Integer(1)])
    );
    assert_eq!(
        confirmations[1],
        Frame::Array(vec![bulk("subscribe"), bulk("alert"), Frame::Integer(2)])
    );
    assert_eq!(
        confirmations[2],
        Frame::Array(vec![bulk("psubscribe"), bulk("n*"), Frame::Integer(3)])
    );
    let mut spy = stack.direct();
    spy.cmd(&[b"SUBSCRIBE", b"news"]).unwrap();

    let mut c = stack.client();
    let receivers: i64 = cmd("PUBLISH")
        .arg("news")
        .arg("hello subscribers")
        .query(&mut c)
        .unwrap();
    assert_eq!(receivers, 3, "two subscriptions through redcloak + the spy");

    let got = read_frames(&mut sub, 2);
    assert!(
        got.contains(&Frame::Array(vec![
            bulk("message"),
            bulk("news"),
            bulk("hello subscribers")
        ])),
        "{got:?}"
    );
    assert!(
        got.contains(&Frame::Array(vec![
            bulk("pmessage"),
            bulk("n*"),
            bulk("news"),
            bulk("hello subscribers")
        ])),
        "{got:?}"
    );

    // PING in subscribed mode, then unsubscribe everything: back to normal commands.
    sub.write_all(b"*1\r\n$4\r\nPING\r\n*1\r\n$11\r\nUNSUBSCRIBE\r\n*1\r\n$12\r\nPUNSUBSCRIBE\r\n*2\r\n$4\r\nECHO\r\n$7\r\nmessage\r\n").unwrap();
    let got = read_frames(&mut sub, 5);
    assert_eq!(got[0], Frame::Array(vec![bulk("pong"), bulk("")]));
    assert!(matches!(&got[1], Frame::Array(a) if a[0] == bulk("unsubscribe")));
    assert!(
        matches!(&got[2], Frame::Array(a) if a[0] == bulk("unsubscribe") && a[2] == Frame::Integer(1))
    );
    assert_eq!(
        got[3],
        Frame::Array(vec![bulk("punsubscribe"), bulk("n*"), Frame::Integer(0)])
    );
    assert_eq!(
        got[4],
        bulk("message"),
        "after the last unsubscribe, an array-looking reply is a reply again"
    );
}

#[test]
fn redis_carries_only_ciphertext_for_published_messages() {
    let stack = Stack::start();
    let mut spy = stack.direct();
    spy.cmd(&[b"SUBSCRIBE", b"secret-channel"]).unwrap();
    let mut c = stack.client();
    let _: i64 = cmd("PUBLISH")
        .arg("secret-channel")
        .arg("the launch code")
        .query(&mut c)
        .unwrap();
    // The spy's next frame is the message as Redis delivered it.
    let Frame::Array(msg) = spy.cmd(&[b"PING"]).unwrap() else {
        panic!("expected the message first")
    };
    let Frame::Bulk(payload) = &msg[2] else {
        panic!("{msg:?}")
    };
    assert!(
        payload.starts_with(b"gAAAAA"),
        "Redis saw {:?}",
        String::from_utf8_lossy(payload)
    );
    assert_eq!(
        stack.key_ring().decrypt(payload).unwrap(),
        b"the launch code"
    );
}

#[test]
fn resp3_pushes_are_decrypted_and_mixed_with_replies() {
    let stack = Stack::start();
    let mut sub = stack.raw();
    sub.write_all(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n")
        .unwrap();
    let got = read_frames(&mut sub, 2);
    assert!(
        matches!(got[0], Frame::Map(_)),
        "HELLO 3 answers with a map: {:?}",
        got[0]
    );
    assert_eq!(
        got[1],
        Frame::Push(vec![bulk("subscribe"), bulk("ch"), Frame::Integer(1)])
    );
    let mut c = stack.client();
    let _: i64 = cmd("PUBLISH")
        .arg("ch")
        .arg("pushed")
        .query(&mut c)
        .unwrap();
    // In RESP3 a subscribed connection runs normal commands too.
    sub.write_all(b"*2\r\n$3\r\nGET\r\n$7\r\nmissing\r\n")
        .unwrap();
    let got = read_frames(&mut sub, 2);
    assert_eq!(
        got[0],
        Frame::Push(vec![bulk("message"), bulk("ch"), bulk("pushed")])
    );
    assert_eq!(got[1], Frame::Null);
}

#[test]
fn a_message_published_around_redcloak_in_plaintext_is_dropped_not_delivered() {
    let stack = Stack::start();
    let mut sub = stack.raw();
    sub.write_all(b"*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n")
        .unwrap();
    read_frames(&mut sub, 1);
    stack
        .direct()
        .cmd(&[b"PUBLISH", b"ch", b"planted plaintext"])
        .unwrap();
    let mut c = stack.client();
    let _: i64 = cmd("PUBLISH").arg("ch").arg("real").query(&mut c).unwrap();
    let got = read_frames(&mut sub, 1);
    assert_eq!(
        got[0],
        Frame::Array(vec![bulk("message"), bulk("ch"), bulk("real")]),
        "the planted message is skipped"
    );
    assert!(stack.proxy.log_text().contains("dropped a pub/sub message"));
}

/// A message that does not decrypt is dropped for the subscriber — and counted:
/// `redcloak_pubsub_messages_dropped_total` and `redcloak_decrypt_failures_total` move with
/// each one, in RESP2 and RESP3; messages that decrypt, and keyspace notifications, are not
/// counted.
#[test]
fn dropped_messages_are_counted_in_metrics() {
    use redcloak_e2e::diff::{metric, metric_sum, scrape, stack_with_admin, wait_metric};
    let (stack, admin) = stack_with_admin(&[], &[]);
    let before = scrape(&admin);
    assert_eq!(
        metric(&before, "redcloak_pubsub_messages_dropped_total"),
        Some(0.0)
    );
    let mut direct = stack.direct();
    direct
        .cmd(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"])
        .unwrap();
    let other_ring = redcloak_crypto::KeyRing::parse(&redcloak_crypto::generate_key()).unwrap();
    let mut subs = Vec::new();
    for hello in [&b""[..], b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"] {
        let mut sub = stack.raw();
        sub.write_all(hello).unwrap();
        sub.write_all(b"*3\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n$16\r\n__keyspace@0__:k\r\n")
            .unwrap();
        read_frames(&mut sub, if hello.is_empty() { 2 } else { 3 });
        subs.push(sub);
    }
    // 3 undecryptable messages (plaintext, another key, truncated), 2 subscribers each.
    let token = stack.key_ring().encrypt(b"cut");
    for bad in [
        b"plaintext message".to_vec(),
        other_ring.encrypt(b"other key"),
        token[..token.len() - 5].to_vec(),
    ] {
        direct.cmd(&[b"PUBLISH", b"ch", &bad]).unwrap();
    }
    let mut c = stack.client();
    let _: () = cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let _: i64 = cmd("PUBLISH").arg("ch").arg("good").query(&mut c).unwrap();
    for (n, sub) in subs.iter_mut().enumerate() {
        let got = read_frames(sub, 2);
        let (note, msg) = (&got[0], &got[1]);
        let items = |f: &Frame| match f {
            Frame::Array(i) | Frame::Push(i) => i.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            items(note)[2],
            bulk("set"),
            "subscriber {n}: the notification passes"
        );
        assert_eq!(items(msg)[2], bulk("good"), "subscriber {n}");
    }
    assert_eq!(
        wait_metric(&admin, "redcloak_pubsub_messages_dropped_total", 6.0),
        6.0
    );
    let after = scrape(&admin);
    assert_eq!(
        metric_sum(&after, "redcloak_decrypt_failures_total"),
        6.0,
        "every reason together: {after}"
    );
    assert_eq!(
        metric(
            &after,
            r#"redcloak_decrypt_failures_total{reason="not_encrypted"}"#
        ),
        Some(4.0),
        "the plaintext and the truncated token, once per subscriber: {after}"
    );
    assert_eq!(
        metric(
            &after,
            r#"redcloak_decrypt_failures_total{reason="no_key"}"#
        ),
        Some(2.0),
        "the other ring's token, once per subscriber: {after}"
    );
}
