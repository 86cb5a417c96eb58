//! RESP3 end to end: HELLO 3 (with AUTH and SETNAME), maps, nulls, values decrypted inside.

use std::io::{Read, Write};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redcloak_commands::resp::{Frame, Limits, ReplyScanner};
use redcloak_e2e::Stack;

fn exchange(s: &mut std::net::TcpStream, req: &[u8], n: usize) -> Vec<Frame> {
    s.write_all(req).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = BytesMut::new();
    let mut scanner = ReplyScanner::new(Limits::default());
    let mut frames = Vec::new();
    while frames.len() < n {
        if let Some(len) = scanner.scan(&buf).unwrap() {
            let f = buf.split_to(len).freeze();
            frames.push(Frame::parse(&f, &Limits::default()).unwrap().unwrap().0);
            continue;
        }
        let mut chunk = [0u8; 8192];
        let r = s.read(&mut chunk).unwrap();
        assert!(r > 0, "closed after {frames:?}");
        buf.extend_from_slice(&chunk[..r]);
    }
    frames
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

#[test]
fn hello_3_with_auth_and_setname_then_resp3_types() {
    let stack = Stack::start();
    let mut s = stack.raw();
    let got = exchange(
        &mut s,
        b"HELLO 3 AUTH someone client-secret-pw SETNAME my-app\r\n",
        1,
    );
    let Frame::Map(info) = &got[0] else {
        panic!("HELLO 3 must answer with a map: {:?}", got[0])
    };
    assert!(
        info.contains(&(bulk("proto"), Frame::Integer(3))),
        "{info:?}"
    );

    let got = exchange(
        &mut s,
        b"CLIENT GETNAME\r\nHSET h a 1 b 2\r\nHGETALL h\r\nGET nothing\r\nSET s v\r\nMGET s nothing\r\nHRANDFIELD h 2 WITHVALUES\r\nRPUSH l x y\r\nLPOP l 2\r\n",
        9,
    );
    assert_eq!(got[0], bulk("my-app"), "SETNAME was forwarded");
    assert_eq!(got[1], Frame::Integer(2));
    let Frame::Map(pairs) = &got[2] else {
        panic!("RESP3 HGETALL is a map: {:?}", got[2])
    };
    let mut pairs = pairs.clone();
    pairs.sort_by_key(|(k, _)| match k {
        Frame::Bulk(b) => b.clone(),
        _ => Bytes::new(),
    });
    assert_eq!(pairs, vec![(bulk("a"), bulk("1")), (bulk("b"), bulk("2"))]);
    assert_eq!(got[3], Frame::Null, "RESP3 null");
    assert_eq!(got[5], Frame::Array(vec![bulk("v"), Frame::Null]));
    let Frame::Array(rand) = &got[6] else {
        panic!("{:?}", got[6])
    };
    for pair in rand {
        let Frame::Array(kv) = pair else {
            panic!("RESP3 HRANDFIELD WITHVALUES pairs: {pair:?}")
        };
        assert!(
            kv == &vec![bulk("a"), bulk("1")] || kv == &vec![bulk("b"), bulk("2")],
            "{kv:?}"
        );
    }
    assert_eq!(got[8], Frame::Array(vec![bulk("x"), bulk("y")]));

    // The client's credentials never reached Redis: CLIENT LIST shows redcloak's user.
    let log = stack.proxy.log_text();
    assert!(!log.contains("client-secret-pw"));
    // Back to RESP2 with HELLO 2.
    let got = exchange(&mut s, b"HELLO 2\r\nGET nothing\r\n", 2);
    assert!(matches!(got[0], Frame::Array(_)), "{:?}", got[0]);
    assert_eq!(got[1], Frame::NullBulk);
    assert_eq!(stack.assert_all_values_encrypted(), 3, "h: 2 values, s: 1");
}

#[test]
fn hello_with_a_malformed_auth_is_a_syntax_error_and_reset_keeps_the_connection_authenticated() {
    let stack = Stack::start();
    let mut s = stack.raw();
    let got = exchange(
        &mut s,
        b"HELLO 3 AUTH onlyuser\r\nRESET\r\nSET after-reset ok\r\nGET after-reset\r\n",
        4,
    );
    assert!(
        matches!(&got[0], Frame::Error(e) if e.starts_with(b"ERR Syntax error")),
        "{:?}",
        got[0]
    );
    assert_eq!(got[1], Frame::Simple(Bytes::from_static(b"RESET")));
    assert_eq!(
        got[2],
        Frame::Simple(Bytes::from_static(b"OK")),
        "RESET logged Redis out; redcloak re-authenticated"
    );
    assert_eq!(got[3], bulk("ok"));
    assert!(!stack.proxy.log_text().contains(&stack.password));
}

#[test]
fn client_tracking_is_refused_with_a_reason() {
    let stack = Stack::start();
    let mut s = stack.raw();
    let got = exchange(
        &mut s,
        b"CLIENT TRACKING on\r\nCLIENT REPLY OFF\r\nPING\r\n",
        3,
    );
    for (i, name) in [(0, "CLIENT TRACKING"), (1, "CLIENT REPLY")] {
        let Frame::Error(e) = &got[i] else {
            panic!("{:?}", got[i])
        };
        let e = String::from_utf8_lossy(e);
        assert!(e.contains("redcloak") && e.contains(name), "{e}");
    }
    assert_eq!(got[2], Frame::Simple(Bytes::from_static(b"PONG")));
}
