//! Shared upstream connections (`REDCLOAK_SHARED_CONNECTIONS`, issue 15; DESIGN.md §2): the
//! stateless commands of many clients are pipelined onto a few TLS connections and each reply
//! is routed back to its client; a client that does anything stateful moves to a connection of
//! its own. What must hold: every client gets exactly its own replies, in order — with clients
//! on shared and on their own connections side by side, and when Redis kills the shared
//! connections under load — Redis sees a handful of connections for many clients, and what it
//! stores is ciphertext.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redcloak_commands::resp::Frame;
use redcloak_e2e::diff::{metric, metric_sum, scrape, stack_with_admin};
use redcloak_e2e::{Direct, Stack};

const SHARED: &str = "2";

fn stack() -> Stack {
    Stack::start_with(&[], &[("REDCLOAK_SHARED_CONNECTIONS", SHARED)])
}

/// Redis's normal clients other than `direct` itself: redcloak's upstream connections.
fn upstream_connections(direct: &mut Direct) -> usize {
    let Frame::Bulk(list) = direct
        .cmd(&[b"CLIENT", b"LIST", b"TYPE", b"normal"])
        .expect("CLIENT LIST")
    else {
        panic!("CLIENT LIST did not answer a bulk string");
    };
    String::from_utf8_lossy(&list).lines().count() - 1
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn ok() -> Frame {
    Frame::Simple(Bytes::from_static(b"OK"))
}

#[test]
fn many_clients_share_a_few_connections_and_each_gets_its_own_replies() {
    let stack = stack();
    const CLIENTS: usize = 40;
    const ROUNDS: usize = 50;
    // Every client connected and holding its connection while the others work.
    let clients: Vec<_> = (0..CLIENTS).map(|_| stack.plain()).collect();
    let handles: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, mut plain)| {
            thread::spawn(move || {
                for r in 0..ROUNDS {
                    let key = format!("shared:{c}:{}", r % 5);
                    let value = format!("client {c} round {r}");
                    // A pipeline of three, read back in order.
                    plain
                        .send(&[b"SET", key.as_bytes(), value.as_bytes()])
                        .expect("send");
                    plain.send(&[b"GET", key.as_bytes()]).expect("send");
                    plain
                        .send(&[b"EXPIRE", key.as_bytes(), b"1000"])
                        .expect("send");
                    assert_eq!(plain.next_frame().expect("SET reply"), ok());
                    assert_eq!(plain.next_frame().expect("GET reply"), bulk(&value));
                    assert_eq!(plain.next_frame().expect("EXPIRE reply"), Frame::Integer(1));
                }
                plain
            })
        })
        .collect();
    let clients: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect();
    let mut direct = stack.direct();
    let upstream = upstream_connections(&mut direct);
    // The shared connections, the warm pool (4) and redcloak's own side connections — not one
    // per client.
    assert!(
        upstream <= 10,
        "{upstream} upstream connections for {CLIENTS} clients:\n{}",
        stack.proxy.log_text()
    );
    drop(clients);
    assert!(stack.assert_all_values_encrypted() >= CLIENTS * 5);
}

#[test]
fn stateful_clients_move_to_their_own_connection_beside_shared_ones() {
    let (stack, admin) = stack_with_admin(&[], &[("REDCLOAK_SHARED_CONNECTIONS", SHARED)]);
    let mut direct = stack.direct();
    let before = upstream_connections(&mut direct);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    // Plain clients keep the shared connections busy meanwhile.
    let busy: Vec<_> = (0..4)
        .map(|c| {
            let mut plain = stack.plain();
            let (stop, done) = (stop.clone(), done.clone());
            thread::spawn(move || -> Result<(), String> {
                let mut r = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("busy:{c}");
                    let value = format!("busy {c} {r}");
                    let set = plain.cmd(&[b"SET", key.as_bytes(), value.as_bytes()]);
                    let get = plain.cmd(&[b"GET", key.as_bytes()]);
                    match (set, get) {
                        (Ok(set), Ok(get)) if set == ok() && get == bulk(&value) => {}
                        other => return Err(format!("busy client {c} round {r}: {other:?}")),
                    }
                    r += 1;
                }
                done.fetch_add(r, Ordering::Relaxed);
                Ok(())
            })
        })
        .collect();

    // A client that starts shared, then SELECTs: its commands follow it to database 1.
    let mut selecting = stack.plain();
    assert_eq!(selecting.cmd(&[b"SET", b"where", b"db0"]).unwrap(), ok());
    assert_eq!(selecting.cmd(&[b"SELECT", b"1"]).unwrap(), ok());
    assert_eq!(selecting.cmd(&[b"SET", b"where", b"db1"]).unwrap(), ok());
    assert_eq!(selecting.cmd(&[b"GET", b"where"]).unwrap(), bulk("db1"));
    let mut other = stack.plain();
    assert_eq!(other.cmd(&[b"GET", b"where"]).unwrap(), bulk("db0"));

    // WATCH / MULTI / EXEC with a conflicting write from a shared client: EXEC fails.
    let mut watcher = stack.plain();
    assert_eq!(watcher.cmd(&[b"SET", b"watched", b"1"]).unwrap(), ok());
    assert_eq!(watcher.cmd(&[b"WATCH", b"watched"]).unwrap(), ok());
    assert_eq!(other.cmd(&[b"SET", b"watched", b"2"]).unwrap(), ok());
    assert_eq!(watcher.cmd(&[b"MULTI"]).unwrap(), ok());
    watcher.cmd(&[b"SET", b"watched", b"3"]).unwrap();
    assert_eq!(watcher.cmd(&[b"EXEC"]).unwrap(), Frame::NullArray);
    assert_eq!(other.cmd(&[b"GET", b"watched"]).unwrap(), bulk("2"));

    // A transaction without WATCH stays on the shared connections and is atomic.
    let reply = other.cmd(&[b"MULTI"]).unwrap();
    assert_eq!(reply, ok());
    other.cmd(&[b"SET", b"tx", b"in a transaction"]).unwrap();
    other.cmd(&[b"GET", b"tx"]).unwrap();
    assert_eq!(
        other.cmd(&[b"EXEC"]).unwrap(),
        Frame::Array(vec![ok(), bulk("in a transaction")])
    );

    // An emulated command (INCR is computed by redcloak under WATCH) and a blocking one.
    let mut counter = stack.plain();
    for i in 1..=3 {
        assert_eq!(
            counter.cmd(&[b"INCR", b"count"]).unwrap(),
            Frame::Integer(i)
        );
    }
    let mut blocked = stack.plain();
    let waiter = thread::spawn(move || blocked.cmd(&[b"BLPOP", b"queue", b"10"]).unwrap());
    thread::sleep(Duration::from_millis(300));
    assert_eq!(
        other.cmd(&[b"RPUSH", b"queue", b"job"]).unwrap(),
        Frame::Integer(1)
    );
    assert_eq!(
        waiter.join().unwrap(),
        Frame::Array(vec![bulk("queue"), bulk("job")])
    );

    // Pub/sub: the subscriber moves to its own connection; a shared client publishes.
    let mut sub = stack.plain();
    assert_eq!(sub.cmd(&[b"GET", b"where"]).unwrap(), bulk("db0"));
    let confirm = sub.cmd(&[b"SUBSCRIBE", b"news"]).unwrap();
    assert!(
        matches!(confirm, Frame::Array(ref a) if a.len() == 3),
        "{confirm:?}"
    );
    assert_eq!(
        other.cmd(&[b"PUBLISH", b"news", b"hello"]).unwrap(),
        Frame::Integer(1)
    );
    assert_eq!(
        sub.next_frame().unwrap(),
        Frame::Array(vec![bulk("message"), bulk("news"), bulk("hello")])
    );

    stop.store(true, Ordering::Relaxed);
    for h in busy {
        if let Err(e) = h.join().expect("busy client") {
            panic!("{e}\n{}", stack.proxy.log_text());
        }
    }
    assert!(done.load(Ordering::Relaxed) > 0);
    // Each stateful client has its own connection now (selecting, watcher, counter's
    // emulation uses redcloak's side connections, blocked, sub): more than before, and the
    // shared clients did not add one each.
    let after = upstream_connections(&mut direct);
    assert!(after > before, "before {before}, after {after}");
    // Each move is counted by the command that needed it; the plain clients never moved.
    let metrics = scrape(&admin);
    for command in ["SELECT", "WATCH", "INCR", "BLPOP", "SUBSCRIBE"] {
        let series = format!("redcloak_sessions_pinned_total{{command=\"{command}\"}}");
        assert_eq!(metric(&metrics, &series), Some(1.0), "{series}\n{metrics}");
    }
    assert_eq!(
        metric_sum(&metrics, "redcloak_sessions_pinned_total"),
        5.0,
        "{metrics}"
    );
    stack.assert_all_values_encrypted();
}

#[test]
fn killing_the_shared_connections_under_load_sends_no_reply_to_the_wrong_client() {
    let stack = stack();
    const CLIENTS: usize = 12;
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let addr = stack.proxy.addr;
            let (stop, errors, answered) = (stop.clone(), errors.clone(), answered.clone());
            thread::spawn(move || {
                let mut plain = redcloak_e2e::Plain::connect(addr);
                let mut r = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("kill:{c}");
                    let value = format!("client {c} value {r}");
                    plain
                        .send(&[b"SET", key.as_bytes(), value.as_bytes()])
                        .expect("send SET");
                    plain.send(&[b"GET", key.as_bytes()]).expect("send GET");
                    let set = plain.next_frame().expect("a reply to SET");
                    let get = plain.next_frame().expect("a reply to GET");
                    match (&set, &get) {
                        (Frame::Simple(_), Frame::Bulk(v)) => assert_eq!(
                            v.as_ref(),
                            value.as_bytes(),
                            "client {c} got another command's value"
                        ),
                        // A command in flight when the connection died: its outcome is
                        // unknown, and it says so. Never someone else's reply.
                        (Frame::Error(e), _) | (_, Frame::Error(e)) => {
                            let e = String::from_utf8_lossy(e);
                            assert!(
                                e.contains("connection to Redis was lost")
                                    || e.contains("redcloak"),
                                "client {c}: {e}"
                            );
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("client {c}: unexpected replies {other:?}"),
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                    r += 1;
                }
            })
        })
        .collect();
    let mut direct = stack.direct();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut kills = 0;
    while Instant::now() < deadline {
        thread::sleep(Duration::from_millis(300));
        // Every normal client but this one: the shared connections among them.
        if let Ok(Frame::Integer(n)) = direct.cmd(&[b"CLIENT", b"KILL", b"TYPE", b"normal"]) {
            kills += n;
        }
    }
    let before_stop = answered.load(Ordering::Relaxed);
    thread::sleep(Duration::from_millis(500));
    assert!(
        answered.load(Ordering::Relaxed) > before_stop,
        "clients stopped being answered after the kills:\n{}",
        stack.proxy.log_text()
    );
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        if h.join().is_err() {
            panic!("a client failed:\n{}", stack.proxy.log_text());
        }
    }
    println!(
        "{kills} connections killed; {} pipelines answered, {} with an error",
        answered.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed)
    );
    assert!(kills > 0);
    stack.assert_all_values_encrypted();
}

/// Reads a slow client's replies until its connection ends: whole values of `len` bytes,
/// then "not read" errors (never a reply of another client). Returns the values, the errors,
/// those naming the budget, and how the connection ended.
fn read_to_the_end(
    s: &mut std::net::TcpStream,
    len: usize,
) -> (usize, usize, usize, std::io::Error) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = bytes::BytesMut::new();
    let (mut whole, mut errors, mut by_budget) = (0, 0, 0);
    loop {
        match redcloak_e2e::read_frame(s, &mut buf) {
            Ok(Frame::Bulk(b)) => {
                assert_eq!(b.len(), len);
                whole += 1;
            }
            Ok(Frame::Error(e)) => {
                let e = String::from_utf8_lossy(&e);
                assert!(e.contains("its replies were not read"), "{e}");
                by_budget += usize::from(e.contains("REDCLOAK_MAX_BUFFERED_BYTES"));
                errors += 1;
            }
            Ok(other) => panic!("a slow client got {other:?}"),
            Err(e) => return (whole, errors, by_budget, e),
        }
    }
}

/// A client beside slow readers, on the same shared connection, served for five seconds:
/// how many SET + GET pairs it got (each answered right).
fn serve_for_five_seconds(stack: &Stack) -> usize {
    let mut other = stack.plain();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut served = 0;
    while Instant::now() < deadline {
        let v = format!("other {served}");
        assert_eq!(other.cmd(&[b"SET", b"other", v.as_bytes()]).unwrap(), ok());
        assert_eq!(other.cmd(&[b"GET", b"other"]).unwrap(), bulk(&v));
        served += 1;
    }
    served
}

#[test]
fn a_client_that_never_reads_its_replies_is_cut_off_and_the_others_go_on() {
    // Largest bulk 1 MiB: a client may leave 2 MiB (one largest reply) + 64 MiB unread.
    let stack = Stack::start_with(
        &[],
        &[
            ("REDCLOAK_SHARED_CONNECTIONS", "1"),
            ("REDCLOAK_MAX_BULK_BYTES", "1048576"),
        ],
    );
    let value = vec![b'v'; 1_000_000];
    let mut writer = stack.plain();
    assert_eq!(writer.cmd(&[b"SET", b"big", &value]).unwrap(), ok());
    let rss_before = stack.proxy.rss_kib();

    // 200 GETs of 1 MB, never read: 200 MB of replies.
    let mut slow = stack.raw();
    let mut get = bytes::BytesMut::new();
    for _ in 0..200 {
        get.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
    }
    std::io::Write::write_all(&mut slow, &get).expect("pipeline");

    // Meanwhile a client on the same (only) shared connection is served.
    let served = serve_for_five_seconds(&stack);
    let grown_mib = stack.proxy.rss_kib().saturating_sub(rss_before) / 1024;
    println!("{served} commands served beside the slow client; RSS grew {grown_mib} MiB");
    // Without the cut the 200 MB would sit in redcloak; with it, about the 66 MiB allowed,
    // plus what the sockets hold.
    assert!(
        grown_mib < 150,
        "redcloak held {grown_mib} MiB for a client that does not read:\n{}",
        stack.proxy.log_text()
    );
    // The slow client, once it reads, gets whole replies and then an error or the end —
    // never a reply that belongs to another client.
    let (whole, errors, _, end) = read_to_the_end(&mut slow, value.len());
    assert_eq!(
        end.kind(),
        std::io::ErrorKind::UnexpectedEof,
        "the slow client is closed, not left waiting"
    );
    assert_eq!(whole + errors, 200, "one reply per command, then the end");
    assert!(whole < 200, "all 200 replies were held for the slow client");
    // Redis was never suspected: a slow client is not an outage.
    assert!(!stack.proxy.log_text().contains("degraded mode"));
    println!("the slow client read {whole} whole replies before being cut off");
}

#[test]
fn clients_that_never_read_are_cut_off_at_the_process_wide_budget() {
    // Four clients each leave 40 replies of 1 MB unread: 40 MB each is under the per-client
    // limit (one largest reply, 1 MiB, + 64 MiB), 160 MB together is far over a 32 MiB
    // process budget, of which unread replies may take three quarters. The connection's reader must go
    // on reading for the others, so only the budget can stop redcloak from holding it all.
    let budget: usize = 32 * 1024 * 1024;
    let stack = Stack::start_with(
        &[],
        &[
            ("REDCLOAK_SHARED_CONNECTIONS", "1"),
            ("REDCLOAK_MAX_BULK_BYTES", "1048576"),
            ("REDCLOAK_MAX_BUFFERED_BYTES", &budget.to_string()),
        ],
    );
    let value = vec![b'v'; 1_000_000];
    let mut writer = stack.plain();
    assert_eq!(writer.cmd(&[b"SET", b"big", &value]).unwrap(), ok());
    let rss_before = stack.proxy.rss_kib();

    let mut get = bytes::BytesMut::new();
    for _ in 0..40 {
        get.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
    }
    let mut slow: Vec<_> = (0..4).map(|_| stack.raw()).collect();
    for s in &mut slow {
        std::io::Write::write_all(s, &get).expect("pipeline");
    }

    // Meanwhile a client on the same (only) shared connection is served.
    let served = serve_for_five_seconds(&stack);
    let grown_mib = stack.proxy.rss_kib().saturating_sub(rss_before) / 1024;
    println!("{served} commands served beside the slow clients; RSS grew {grown_mib} MiB");
    // Held without the budget: the 160 MB. With it: the 32 MiB, the reader's buffer and
    // what each session has in hand.
    assert!(
        grown_mib < 110,
        "redcloak held {grown_mib} MiB for clients that do not read:\n{}",
        stack.proxy.log_text()
    );

    // Each slow client, once it reads, gets whole replies and then the error or the end —
    // never a reply that belongs to another client; at least one was cut by the budget.
    let mut cut_by_budget = 0;
    for s in &mut slow {
        let (whole, errors, by_budget, end) = read_to_the_end(s, value.len());
        cut_by_budget += by_budget;
        if errors > 0 {
            assert_eq!(
                end.kind(),
                std::io::ErrorKind::UnexpectedEof,
                "a cut client is closed, not left waiting"
            );
            assert_eq!(whole + errors, 40, "one reply per command, then the end");
        } else {
            assert_eq!(whole, 40, "a client not cut gets every reply");
        }
    }
    assert!(cut_by_budget > 0, "no client was cut by the budget");
    // What was held is given back once the clients are gone: a client may again leave 12
    // replies (12 MB, under the three quarters of the budget that unread replies may take)
    // unread for a while and then read them all.
    drop(slow);
    thread::sleep(Duration::from_secs(1));
    let mut late = stack.raw();
    let mut get12 = bytes::BytesMut::new();
    for _ in 0..12 {
        get12.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n");
    }
    std::io::Write::write_all(&mut late, &get12).expect("pipeline");
    thread::sleep(Duration::from_secs(2));
    late.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = bytes::BytesMut::new();
    for i in 0..12 {
        match redcloak_e2e::read_frame(&mut late, &mut buf) {
            Ok(Frame::Bulk(b)) => assert_eq!(b.len(), value.len()),
            other => panic!("reply {i} after the slow clients left: {other:?}"),
        }
    }
    // Redis was never suspected: clients that do not read are not an outage.
    assert!(!stack.proxy.log_text().contains("degraded mode"));
}
