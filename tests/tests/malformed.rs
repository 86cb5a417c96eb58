//! Bad input: malformed RESP, oversized lengths, nesting bombs, unknown commands, values
//! written around the proxy. Each gets a clear error; nothing is lost or leaked; other clients
//! keep working; memory stays bounded.

use std::io::Write;
use std::time::Duration;

use redcloak_e2e::{read_until_closed, Stack};
use redis::cmd;

/// Sends `bytes` on a fresh connection; returns what came back and whether it was closed.
fn send(stack: &Stack, bytes: &[u8]) -> (String, bool) {
    let mut raw = stack.raw();
    raw.write_all(bytes).unwrap();
    let (got, closed) = read_until_closed(&mut raw, Duration::from_secs(5));
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

#[test]
fn protocol_errors_get_an_error_reply_and_a_closed_connection() {
    let stack = Stack::start();
    let mut healthy = stack.client();
    let _: () = cmd("SET")
        .arg("kept")
        .arg("safe")
        .query(&mut healthy)
        .unwrap();

    let cases: &[(&str, Vec<u8>, &str)] = &[
        (
            "bad multibulk length",
            b"*abc\r\n".to_vec(),
            "invalid multibulk length",
        ),
        (
            "bad bulk length",
            b"*1\r\n$x\r\n".to_vec(),
            "invalid bulk length",
        ),
        (
            "negative bulk length",
            b"*1\r\n$-5\r\n".to_vec(),
            "invalid bulk length",
        ),
        (
            "huge declared bulk",
            b"*2\r\n$3\r\nGET\r\n$9999999999\r\n".to_vec(),
            "invalid bulk length",
        ),
        (
            "huge declared array",
            b"*2000000000\r\n".to_vec(),
            "invalid multibulk length",
        ),
        (
            "nested array in a request",
            b"*1\r\n*1\r\n$4\r\nPING\r\n".to_vec(),
            "expected '$'",
        ),
        ("nesting bomb", b"*1\r\n".repeat(100_000), "expected '$'"),
        // (The two bytes after a bulk are skipped whatever they are, as Redis 7.0 does:
        // compat.rs `the_two_bytes_after_a_bulk_are_skipped_like_redis`.)
        (
            "unbalanced quotes",
            b"SET \"abc\r\n".to_vec(),
            "unbalanced quotes",
        ),
    ];
    for (name, bytes, expected) in cases {
        let (reply, closed) = send(&stack, bytes);
        assert!(
            reply.starts_with("-ERR Protocol error"),
            "{name}: got {reply:?}"
        );
        assert!(
            reply.contains(expected),
            "{name}: {reply:?} should mention {expected:?}"
        );
        assert!(
            closed,
            "{name}: the connection must be closed after a protocol error"
        );
    }

    // Replies to commands before the bad bytes are still delivered, in order.
    let (reply, closed) = send(&stack, b"*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n");
    assert_eq!(
        reply,
        "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(closed);

    // Garbage bytes: an inline command that is not known, or a protocol error; never a crash.
    let (reply, _) = send(&stack, &[0xff, 0x00, 0x13, b'\r', b'\n']);
    assert!(reply.starts_with("-ERR"), "garbage: {reply:?}");

    // An endless inline line is cut off at the limit, not buffered forever.
    let (reply, closed) = send(&stack, &vec![b'A'; 1024 * 1024]);
    assert!(reply.contains("too big inline request"), "{reply:?}");
    assert!(closed);

    // The other client never noticed, and nothing was lost.
    let got: String = cmd("GET").arg("kept").query(&mut healthy).unwrap();
    assert_eq!(got, "safe");
    let mut proxy = stack.proxy;
    assert!(proxy.is_running());
}

#[test]
fn huge_declared_sizes_do_not_allocate() {
    let stack = Stack::start();
    let before = stack.proxy.rss_kib();
    // 50 clients each declare a 500 MB bulk but send only a few bytes of it, then stall.
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut raw = stack.raw();
        raw.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$500000000\r\nabc")
            .unwrap();
        stalled.push(raw);
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = stack.proxy.rss_kib();
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB for declared-but-unsent data"
    );
    // Others are still served.
    let mut c = stack.client();
    let pong: String = cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    drop(stalled);
}

#[test]
fn unknown_and_refused_commands_name_redcloak_and_keep_the_connection() {
    let stack = Stack::start();
    let mut c = stack.client();
    // A command Redis does not know gets Redis's own wording (clients and test suites match
    // on it), echoing only to this client what it sent.
    let err = cmd("FLUSHALLX")
        .arg("secret-argument")
        .query::<()>(&mut c)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown command 'FLUSHALLX', with args beginning with: 'secret-argument'"),
        "{err}"
    );
    assert!(
        !stack.proxy.log_text().contains("secret-argument"),
        "arguments never reach the log"
    );
    let err = cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("x")
        .query::<()>(&mut c)
        .unwrap_err()
        .to_string();
    assert!(err.contains("redcloak"), "{err}");
    let err = cmd("OBJECT")
        .arg("ENCODING")
        .arg("counter")
        .query::<()>(&mut c)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("OBJECT ENCODING") && err.contains("ciphertext"),
        "{err}"
    );
    let err = cmd("GET").query::<()>(&mut c).unwrap_err().to_string();
    assert!(
        err.contains("wrong number of arguments for 'get' command"),
        "{err}"
    );
    // The connection is still usable.
    let _: () = cmd("SET").arg("after").arg("errors").query(&mut c).unwrap();
    let got: String = cmd("GET").arg("after").query(&mut c).unwrap();
    assert_eq!(got, "errors");
    // Nothing reached Redis for the refused commands.
    let mut direct = stack.direct();
    assert_eq!(direct.get(b"counter"), None);
}

#[test]
fn a_value_written_around_the_proxy_is_an_error_not_plaintext() {
    let stack = Stack::start();
    let mut direct = stack.direct();
    direct.set(b"planted", b"plaintext-written-around-redcloak");
    let other_ring = redcloak_crypto::KeyRing::parse(&redcloak_crypto::generate_key()).unwrap();
    direct.set(b"other-key", &other_ring.encrypt(b"someone else's secret"));

    let mut c = stack.client();
    let _: () = cmd("SET").arg("good").arg("fine").query(&mut c).unwrap();
    let err = cmd("GET")
        .arg("planted")
        .query::<String>(&mut c)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("redcloak")
            && err.contains("planted")
            && err.contains("neither a Fernet token nor a redcloak envelope"),
        "{err}"
    );
    assert!(
        !err.contains("plaintext-written"),
        "the stored bytes are never returned: {err}"
    );
    let err = cmd("GET")
        .arg("other-key")
        .query::<String>(&mut c)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no key in REDIS_ENCRYPTION_KEY opens it"),
        "{err}"
    );
    let err = cmd("MGET")
        .arg("good")
        .arg("planted")
        .query::<Vec<String>>(&mut c)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("planted") && !err.contains("plaintext-written"),
        "{err}"
    );
    // The connection stays usable and good values still read.
    let got: String = cmd("GET").arg("good").query(&mut c).unwrap();
    assert_eq!(got, "fine");
    // And the log says what happened without the value or the key name.
    let log = stack.proxy.log_text();
    assert!(log.contains("could not be decrypted"), "{log}");
    assert!(
        !log.contains("plaintext-written") && !log.contains("planted"),
        "{log}"
    );
}

#[test]
fn inline_commands_work_like_redis() {
    let stack = Stack::start();
    let mut raw = stack.raw();
    raw.write_all(
        // Empty lines and empty arrays (`*0`, `*-1`) are skipped, as Redis does.
        b"PING\r\n*0\r\nSET inline \"hello world\"\r\n*-1\r\nGET inline\r\n\r\nECHO 'it\\'s'\r\nQUIT\r\n",
    )
    .unwrap();
    let (got, closed) = read_until_closed(&mut raw, Duration::from_secs(5));
    let got = String::from_utf8_lossy(&got);
    assert_eq!(
        got,
        "+PONG\r\n+OK\r\n$11\r\nhello world\r\n$4\r\nit's\r\n+OK\r\n"
    );
    assert!(closed);
    let stored = stack.direct().get(b"inline").unwrap();
    assert_eq!(stack.key_ring().decrypt(&stored).unwrap(), b"hello world");
}
