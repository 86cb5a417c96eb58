//! Reply accounting (issue 10, class 1): every command gets exactly its own replies, however
//! many frames Redis sends for it, in RESP2 and RESP3.
//!
//! The bug this class is about: `UNSUBSCRIBE a b c` gets one confirmation per name from Redis;
//! when redcloak expected one, every later reply on the connection was decoded under the
//! previous command's rule — a stored Fernet token came back as PING's answer. So each
//! conversation below (subscribe / unsubscribe with and without names, with 0, 1 and n
//! subscriptions, PING, PING msg, ECHO, publishes from another client, RESET, HELLO switches,
//! MULTI/EXEC with values, all of it pipelined) is sent to a plain Redis and through
//! redcloak, and every step must get the same replies, byte for byte. Every conversation ends
//! with a GET of a known value and a PING, before and after a RESET: if any frame were handed
//! to the wrong command, those would get someone else's reply.

use redcloak_e2e::diff::{assert_same_replies, words, PlainRedis, Reply, Step};
use redcloak_e2e::Stack;

const KNOWN: &str = "the known value";

/// Both sides hold the same data: `known` (and a list `l`), written through redcloak on one
/// side and in plaintext on the other.
fn setup() -> (Stack, PlainRedis) {
    let stack = Stack::start();
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    let seed = Step::Pipeline(vec![
        vec![
            b"SET".to_vec(),
            b"known".to_vec(),
            KNOWN.as_bytes().to_vec(),
        ],
        words("RPUSH l message ch payload"),
    ]);
    assert_same_replies(&stack, &plain, &[seed]);
    (stack, plain)
}

/// What every conversation ends with: the known value and PONG must come back to their own
/// commands, in whatever state the conversation left the connection, and again after RESET.
fn tail() -> Vec<Step> {
    vec![
        Step::send(&["GET known", "PING"]),
        Step::send(&["RESET", "GET known", "PING", "LRANGE l 0 -1"]),
    ]
}

/// Runs `body` + the tail, in RESP2 (as is) and in RESP3 (after `HELLO 3`), against both.
#[track_caller]
fn both_protocols(stack: &Stack, plain: &PlainRedis, body: &[Step]) {
    for resp3 in [false, true] {
        let mut steps = Vec::new();
        if resp3 {
            steps.push(Step::send(&["HELLO 3"]));
        }
        steps.extend_from_slice(body);
        steps.extend(tail());
        let got = assert_same_replies(stack, plain, &steps);
        no_ciphertext(&got);
        let last = got.last().expect("tail");
        assert_eq!(
            &last[1].raw[..],
            format!("${}\r\n{KNOWN}\r\n", KNOWN.len()).as_bytes(),
            "GET after RESET"
        );
    }
}

/// No reply through redcloak ever carries a Fernet token (a reply decoded by the wrong rule).
#[track_caller]
fn no_ciphertext(steps: &[Vec<Reply>]) {
    for reply in steps.iter().flatten() {
        assert!(
            !reply.raw.windows(6).any(|w| w == b"gAAAAA"),
            "a token reached the client: {:?}",
            String::from_utf8_lossy(&reply.raw)
        );
    }
}

/// The whole conversation, also written as one pipeline (replies compared as one step).
fn pipelined(body: &[Step]) -> Vec<Step> {
    let mut all = Vec::new();
    for step in body {
        match step {
            Step::Pipeline(cmds) => all.extend(cmds.iter().cloned()),
            Step::Side(_) => {}
        }
    }
    vec![Step::Pipeline(all)]
}

fn conversations() -> Vec<Vec<Step>> {
    vec![
        // UNSUBSCRIBE with several names, subscribed or not, and duplicates.
        vec![
            Step::send(&["SUBSCRIBE a b c"]),
            Step::send(&["UNSUBSCRIBE a x b"]),
            Step::send(&["GET known", "PING", "PING m", "ECHO e"]),
            Step::send(&["UNSUBSCRIBE c c nope"]),
            Step::send(&["GET known", "PING"]),
        ],
        vec![
            Step::send(&["SUBSCRIBE a a b"]),
            Step::send(&["UNSUBSCRIBE a a"]),
            Step::send(&["PUNSUBSCRIBE p* q*", "SUNSUBSCRIBE s1 s2 s3"]),
            Step::send(&["PING", "UNSUBSCRIBE b"]),
        ],
        // Without names: 0 subscriptions (one confirmation with a nil name each).
        vec![Step::send(&[
            "UNSUBSCRIBE",
            "PUNSUBSCRIBE",
            "SUNSUBSCRIBE",
            "GET known",
            "PING",
        ])],
        // Without names: 1 subscription of each kind.
        vec![
            Step::send(&["SUBSCRIBE a", "PSUBSCRIBE p*", "SSUBSCRIBE s1"]),
            Step::send(&["UNSUBSCRIBE", "PING"]),
            Step::send(&["PUNSUBSCRIBE", "PING x"]),
            Step::send(&["SUNSUBSCRIBE", "GET known"]),
        ],
        // Without names: n subscriptions of each kind, and of the other kinds meanwhile.
        vec![
            Step::send(&["SUBSCRIBE a b c", "PSUBSCRIBE p* q* r*", "SSUBSCRIBE s1 s2"]),
            Step::send(&["PUNSUBSCRIBE", "ECHO e", "PING m"]),
            Step::send(&["UNSUBSCRIBE", "PING"]),
            Step::send(&["SUNSUBSCRIBE", "SUNSUBSCRIBE", "UNSUBSCRIBE"]),
        ],
        // Publishes from another client between the steps (plain and pattern matches, a
        // message whose payload looks like a pub/sub frame, a shard message).
        vec![
            Step::send(&["SUBSCRIBE news other", "PSUBSCRIBE n*", "SSUBSCRIBE s1"]),
            Step::side("PUBLISH news hello"),
            Step::side("PUBLISH other message"),
            Step::side("SPUBLISH s1 shard-news"),
            Step::send(&["PING", "PING m", "UNSUBSCRIBE news"]),
            Step::side("PUBLISH news after"),
            Step::send(&["PUNSUBSCRIBE"]),
            Step::side("PUBLISH news nobody"),
            Step::side("PUBLISH other still"),
            Step::send(&["UNSUBSCRIBE", "SUNSUBSCRIBE", "GET known"]),
        ],
        // RESET while subscribed ends every subscription; then normal replies again.
        vec![
            Step::send(&["SUBSCRIBE a b", "PSUBSCRIBE p*"]),
            Step::send(&["RESET", "GET known", "PING m", "ECHO e"]),
            Step::side("PUBLISH a lost"),
            Step::send(&["LRANGE l 0 -1", "UNSUBSCRIBE"]),
        ],
        // Local answers in and out of subscribed mode (Redis's RESP2 rule: "Can't execute").
        vec![
            Step::send(&["ECHO before", "PING before"]),
            Step::send(&["SUBSCRIBE a"]),
            Step::send(&[
                "ECHO e",
                "PING m",
                "PING",
                "COMMAND GETKEYS GET k",
                "GET known",
            ]),
            Step::send(&["UNSUBSCRIBE a", "ECHO after", "PING after"]),
        ],
        // MULTI/EXEC with values, local answers at their place in EXEC's reply.
        vec![
            Step::send(&["SET v1 one", "DEL l2"]),
            Step::send(&[
                "MULTI",
                "GET known",
                "SET v2 two",
                "ECHO inside",
                "GET v2",
                "PING m",
                "PING",
                "RPUSH l2 x y",
                "LRANGE l2 0 -1",
                "GETSET v1 uno",
                "EXEC",
            ]),
            Step::send(&["MULTI", "GET v1", "DISCARD", "GET v1"]),
            Step::send(&["MULTI", "GET known", "NOSUCHCOMMAND", "EXEC", "PING"]),
        ],
    ]
}

#[test]
fn pubsub_sequences_get_exactly_their_replies_in_resp2_and_resp3() {
    let (stack, plain) = setup();
    for body in conversations() {
        both_protocols(&stack, &plain, &body);
    }
    assert!(
        !stack.proxy.log_text().contains("cannot be matched"),
        "{}",
        stack.proxy.log_text()
    );
}

#[test]
fn the_same_sequences_pipelined_in_one_write() {
    let (stack, plain) = setup();
    for body in conversations() {
        both_protocols(&stack, &plain, &pipelined(&body));
    }
    // Everything at once, on one connection.
    let all: Vec<Step> = conversations().iter().flat_map(|b| pipelined(b)).collect();
    both_protocols(&stack, &plain, &pipelined(&all));
}

/// AUTH is answered by redcloak (never forwarded, `+OK` whatever the password, where a plain
/// Redis without a password refuses it) — except in RESP2 pub/sub mode, where Redis's rule
/// comes first and both refuse it the same way.
#[test]
fn auth_follows_the_pubsub_rule() {
    let (stack, plain) = setup();
    let body = [
        Step::send(&["SUBSCRIBE a", "AUTH x", "AUTH user pass", "PING"]),
        Step::send(&["UNSUBSCRIBE"]),
    ];
    let got = assert_same_replies(&stack, &plain, &body);
    assert!(got[0][1].raw.starts_with(b"-ERR Can't execute 'auth'"));
    let got = redcloak_e2e::diff::converse(stack.proxy.addr, &[Step::send(&["AUTH x"])]);
    assert_eq!(&got[0][0].raw[..], b"+OK\r\n");
}

/// HELLO switches the protocol mid-stream, also while subscribed (RESP3 → RESP2 puts the
/// connection in RESP2 pub/sub mode, where PING's reply is an array and ECHO is refused).
#[test]
fn hello_switches_mid_stream() {
    let (stack, plain) = setup();
    let body = vec![
        Step::send(&["SUBSCRIBE a", "HELLO 3", "PING m"]),
        Step::send(&[
            "UNSUBSCRIBE",
            "HELLO 3",
            "SUBSCRIBE a b",
            "GET known",
            "PING m",
        ]),
        Step::side("PUBLISH a pushed"),
        Step::send(&["HELLO 2", "PING m", "GET known", "ECHO e"]),
        Step::side("PUBLISH b as-an-array"),
        Step::send(&["UNSUBSCRIBE a", "PING"]),
        Step::send(&["HELLO 3", "UNSUBSCRIBE b", "HELLO 3", "GET known"]),
        Step::send(&["HELLO 2", "LRANGE l 0 -1", "HELLO 3", "LRANGE l 0 -1"]),
    ];
    both_protocols(&stack, &plain, &body);
    both_protocols(&stack, &plain, &pipelined(&body));
}

/// Many clients doing one command at a time (the way most client libraries work): every
/// reply goes to its own command. The session's writer waited for "a new entry or an upstream
/// frame" by polling the queue first and the socket second; a reply could arrive between the
/// two polls — its entry queued after the first poll — and was then taken for a reply nobody
/// asked for (the session closed: "Redis sent a reply to a command nobody sent").
#[test]
fn one_command_at_a_time_from_many_clients_never_loses_track() {
    use std::io::{BufRead, BufReader, Write};
    use std::time::{Duration, Instant};
    let stack = Stack::start();
    let addr = stack.proxy.addr;
    let clients: Vec<_> = (0..8)
        .map(|n| {
            std::thread::spawn(move || -> Result<usize, String> {
                let s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
                s.set_nodelay(true).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let key = format!("seq{n}");
                let deadline = Instant::now() + Duration::from_secs(6);
                let mut rounds = 0;
                while Instant::now() < deadline {
                    let v = rounds.to_string();
                    let set = format!(
                        "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{v}\r\n",
                        key.len(),
                        v.len()
                    );
                    w.write_all(set.as_bytes()).map_err(|e| e.to_string())?;
                    let mut line = String::new();
                    r.read_line(&mut line).map_err(|e| e.to_string())?;
                    if line != "+OK\r\n" {
                        return Err(format!("client {n} round {rounds}: SET got {line:?}"));
                    }
                    let get = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
                    w.write_all(get.as_bytes()).map_err(|e| e.to_string())?;
                    line.clear();
                    r.read_line(&mut line).map_err(|e| e.to_string())?;
                    let mut value = String::new();
                    r.read_line(&mut value).map_err(|e| e.to_string())?;
                    if line != format!("${}\r\n", v.len()) || value != format!("{v}\r\n") {
                        return Err(format!(
                            "client {n} round {rounds}: GET got {line:?} {value:?}"
                        ));
                    }
                    rounds += 1;
                }
                Ok(rounds)
            })
        })
        .collect();
    let results: Vec<_> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let rounds: usize = results.iter().filter_map(|r| r.as_ref().ok()).sum();
    eprintln!("{rounds} SET+GET round trips from 8 clients");
    assert!(!stack.proxy.log_text().contains("cannot be matched"));
}
