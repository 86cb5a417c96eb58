//! What a script run by redcloak costs Redis, counted by Redis itself (`INFO commandstats`):
//! the commands a script needs and nothing per run beyond them.

use redcloak_commands::resp::Frame;
use redcloak_e2e::{Direct, Stack};

/// Calls of `command` Redis has counted so far (`cmdstat_<command>:calls=N`).
fn calls(direct: &mut Direct, command: &str) -> u64 {
    let Frame::Bulk(info) = direct.cmd(&[b"INFO", b"commandstats"]).expect("INFO") else {
        panic!("INFO reply")
    };
    let prefix = format!("cmdstat_{command}:calls=");
    String::from_utf8_lossy(&info)
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a count"))
}

/// A RESP3 client's scripts run in RESP2 (as in Redis) on a connection of redcloak's own: no
/// protocol switch per run (redcloak once switched that connection to the client's protocol
/// and back, two extra round trips for every script of a RESP3 client such as redis-py under
/// kombu), and one commit per run.
#[test]
fn a_resp3_clients_scripts_switch_no_protocol() {
    let stack = Stack::start();
    let mut client = stack.plain();
    client.cmd(&[b"HELLO", b"3"]).expect("HELLO 3");
    client.cmd(&[b"SET", b"k", b"v"]).expect("SET");
    // The first run opens redcloak's connection (and learns the script).
    let script: &[u8] = b"return redis.call('GET', KEYS[1])";
    assert_eq!(
        client.cmd(&[b"EVAL", script, b"1", b"k"]).unwrap(),
        Frame::Bulk("v".into())
    );
    let mut direct = stack.direct();
    let (hello, exec, get) = (
        calls(&mut direct, "hello"),
        calls(&mut direct, "exec"),
        calls(&mut direct, "get"),
    );
    for _ in 0..20 {
        assert_eq!(
            client.cmd(&[b"EVAL", script, b"1", b"k"]).unwrap(),
            Frame::Bulk("v".into())
        );
    }
    assert_eq!(calls(&mut direct, "hello") - hello, 0, "HELLO per script");
    assert_eq!(
        calls(&mut direct, "exec") - exec,
        20,
        "one commit per script"
    );
    assert_eq!(calls(&mut direct, "get") - get, 20, "one GET per script");
}
