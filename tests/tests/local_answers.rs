//! ECHO and PING <message> are answered by redcloak (issue 10, class 6).
//!
//! Their message is application data: forwarded, it reached Redis (and its MONITOR, slowlog)
//! in plaintext. Now redcloak answers them itself — exactly as Redis would: in RESP2 and RESP3,
//! inside MULTI (`+QUEUED`, the result at its place in EXEC's reply), and in RESP2 pub/sub
//! mode (PING's `["pong", msg]`, ECHO refused with Redis's words). A bare PING is still
//! forwarded (it checks the whole path).

use redcloak_e2e::diff::{assert_same_replies, Monitor, PlainRedis, Step};
use redcloak_e2e::Stack;

fn cmd(args: &[&[u8]]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.to_vec()).collect()
}

#[test]
fn echo_and_ping_messages_never_reach_redis_and_answer_like_redis() {
    let stack = Stack::start();
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    let mut monitor = Monitor::start(&stack);
    let long = format!("echo-secret-long-{}", "x".repeat(100_000));
    let messages: Vec<Vec<u8>> = vec![
        b"echo-secret-1".to_vec(),
        b"echo-secret-with\0nul".to_vec(),
        b"echo-secret-with\r\nline-break".to_vec(),
        b"".to_vec(),
        long.into_bytes(),
    ];
    let mut normal = Vec::new();
    for m in &messages {
        normal.push(cmd(&[b"ECHO", m]));
        normal.push(cmd(&[b"PING", m]));
    }
    normal.push(cmd(&[b"PING"]));
    normal.push(cmd(&[b"ECHO"]));
    normal.push(cmd(&[b"ECHO", b"echo-secret-a", b"b"]));
    normal.push(cmd(&[b"PING", b"echo-secret-a", b"b"]));
    let mut in_multi = vec![cmd(&[b"MULTI"])];
    in_multi.extend(normal.iter().take(6).cloned());
    in_multi.push(cmd(&[b"SET", b"k", b"v"]));
    in_multi.push(cmd(&[b"ECHO", b"echo-secret-after-set"]));
    in_multi.push(cmd(&[b"GET", b"k"]));
    in_multi.push(cmd(&[b"EXEC"]));
    let mut subscribed = vec![cmd(&[b"SUBSCRIBE", b"ch"])];
    subscribed.extend(normal.iter().take(6).cloned());
    subscribed.push(cmd(&[b"UNSUBSCRIBE"]));
    for resp3 in [false, true] {
        let mut steps = Vec::new();
        if resp3 {
            steps.push(Step::send(&["HELLO 3"]));
        }
        steps.push(Step::Pipeline(normal.clone()));
        steps.push(Step::Pipeline(in_multi.clone()));
        steps.push(Step::Pipeline(subscribed.clone()));
        // One at a time too (not only pipelined).
        for c in normal.iter().take(4) {
            steps.push(Step::Pipeline(vec![c.clone()]));
        }
        assert_same_replies(&stack, &plain, &steps);
    }
    monitor.assert_never_seen(&["echo-secret"]);
    assert!(
        monitor.lines_of("ECHO").is_empty(),
        "{:?}",
        monitor.lines_of("ECHO")
    );
    let pings = monitor.lines_of("PING");
    assert!(
        !pings.is_empty(),
        "bare PINGs are forwarded, and MONITOR sees them"
    );
    for line in pings {
        assert!(
            line.trim_end().ends_with("\"PING\""),
            "PING with a message reached Redis: {line}"
        );
    }
}
