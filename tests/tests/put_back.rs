//! No data lost on a failed decrypt (issue 10, class 5).
//!
//! A destructive read (LPOP, GETDEL…) removes the value in Redis before redcloak can find out
//! that it does not decrypt. Before the fix the client got an error and the value was gone.
//! Now redcloak puts it back: list pops push it back at the same end in the original order,
//! GETDEL sets it again if the key is still absent; LMOVE and friends moved it (it is in the
//! destination, not lost). Each destructive command is run on lists and strings planted
//! around redcloak with three kinds of undecryptable value (plaintext, a token under another
//! key, a truncated token), next to good values; the error must name the right key and the
//! bytes must be back where they were. Fernet tokens have no age: one stamped an hour in the
//! future reads fine.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use redcloak_commands::resp::Frame;
use redcloak_e2e::diff::{error_text, exchange};
use redcloak_e2e::{missing, wait_for, Direct, Stack};

fn bad_values(stack: &Stack) -> Vec<(&'static str, Vec<u8>)> {
    let other = redcloak_crypto::KeyRing::parse(&redcloak_crypto::generate_key()).unwrap();
    let good = stack.key_ring().encrypt(b"cut short");
    vec![
        ("plaintext", b"planted in plaintext".to_vec()),
        ("another key", other.encrypt(b"someone else's value")),
        ("truncated", good[..good.len() - 7].to_vec()),
    ]
}

fn list(direct: &mut Direct, key: &str) -> Vec<Bytes> {
    match direct
        .cmd(&[b"LRANGE", key.as_bytes(), b"0", b"-1"])
        .unwrap()
    {
        Frame::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Frame::Bulk(b) => b,
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("LRANGE {key}: {other:?}"),
    }
}

fn rpush(direct: &mut Direct, key: &str, values: &[Vec<u8>]) {
    direct.cmd(&[b"DEL", key.as_bytes()]).unwrap();
    let mut args: Vec<&[u8]> = vec![b"RPUSH", key.as_bytes()];
    args.extend(values.iter().map(Vec::as_slice));
    direct.cmd(&args).unwrap();
}

/// Runs `cmd` through redcloak; it must fail with an error that names `keys` and not carry
/// the stored bytes.
#[track_caller]
fn expect_undecryptable(stack: &Stack, cmd: &[&str], keys: &[&str], bad: &[u8]) -> String {
    let mut c = stack.raw();
    let mut buf = bytes::BytesMut::new();
    let args: Vec<Vec<u8>> = cmd.iter().map(|a| a.as_bytes().to_vec()).collect();
    let reply = exchange(&mut c, &mut buf, &args);
    let err = error_text(&reply.frame).unwrap_or_else(|| panic!("{cmd:?}: {:?}", reply.raw));
    assert!(err.contains("cannot be decrypted"), "{cmd:?}: {err}");
    for key in keys {
        assert!(
            err.contains(&format!("'{key}'")),
            "{cmd:?} must name {key}: {err}"
        );
    }
    assert!(
        !err.contains(&String::from_utf8_lossy(bad)[..]),
        "{cmd:?}: the stored bytes are in the error: {err}"
    );
    err
}

/// `commands` in MULTI/EXEC through redcloak: EXEC's elements.
fn transaction(stack: &Stack, commands: &[&[&str]]) -> Vec<Frame> {
    let mut c = stack.raw();
    let mut buf = bytes::BytesMut::new();
    for cmd in std::iter::once(&["MULTI"][..]).chain(commands.iter().copied()) {
        let args: Vec<Vec<u8>> = cmd.iter().map(|a| a.as_bytes().to_vec()).collect();
        exchange(&mut c, &mut buf, &args);
    }
    let exec = exchange(&mut c, &mut buf, &[b"EXEC".to_vec()]);
    let Frame::Array(items) = exec.frame else {
        panic!("EXEC: {:?}", exec.raw)
    };
    items
}

#[track_caller]
fn assert_list_back(direct: &mut Direct, key: &str, expected: &[Vec<u8>], what: &str) {
    let back = wait_for(Duration::from_secs(5), || {
        list(direct, key)
            .iter()
            .map(|b| b.to_vec())
            .collect::<Vec<_>>()
            == expected
    });
    assert!(
        back,
        "{what}: {key} is {:?}, expected {} values back in order",
        list(direct, key),
        expected.len()
    );
}

/// A command, the key(s) its error names, the list under test and its contents.
type Case<'a> = (Vec<&'a str>, Vec<&'a str>, &'a str, Vec<Vec<u8>>);

/// LPOP / RPOP with and without a count, BLPOP / BRPOP and LMPOP / BLMPOP from both ends:
/// the error names the key(s), and the list is as it was, in order.
#[test]
fn list_pops_put_back_what_does_not_decrypt_in_order() {
    let stack = Stack::start();
    let mut direct = stack.direct();
    let ring = stack.key_ring();
    let g1 = ring.encrypt(b"good one");
    let g2 = ring.encrypt(b"good two");
    for (kind, bad) in bad_values(&stack) {
        let what = |cmd: &str| format!("{cmd} with a {kind} value");
        let cases: Vec<Case> = vec![
            (
                vec!["LPOP", "q"],
                vec!["q"],
                "q",
                vec![bad.clone(), g1.clone(), g2.clone()],
            ),
            (
                vec!["LPOP", "q", "2"],
                vec!["q"],
                "q",
                vec![g1.clone(), bad.clone(), g2.clone()],
            ),
            (
                vec!["LPOP", "q", "10"],
                vec!["q"],
                "q",
                vec![g1.clone(), g2.clone(), bad.clone()],
            ),
            (
                vec!["RPOP", "q"],
                vec!["q"],
                "q",
                vec![g1.clone(), g2.clone(), bad.clone()],
            ),
            (
                vec!["RPOP", "q", "2"],
                vec!["q"],
                "q",
                vec![g1.clone(), bad.clone(), g2.clone()],
            ),
            (
                vec!["RPOP", "q", "3"],
                vec!["q"],
                "q",
                vec![bad.clone(), g1.clone(), g2.clone()],
            ),
            (
                vec!["BLPOP", "empty", "q2", "1"],
                vec!["empty", "q2"],
                "q2",
                vec![bad.clone(), g1.clone()],
            ),
            (
                vec!["BRPOP", "empty", "q2", "1"],
                vec!["empty", "q2"],
                "q2",
                vec![g1.clone(), bad.clone()],
            ),
            (
                vec!["LMPOP", "2", "empty", "q2", "LEFT", "COUNT", "2"],
                vec!["empty", "q2"],
                "q2",
                vec![g1.clone(), bad.clone(), g2.clone()],
            ),
            (
                vec!["LMPOP", "2", "empty", "q2", "right", "COUNT", "5"],
                vec!["empty", "q2"],
                "q2",
                vec![bad.clone(), g1.clone(), g2.clone()],
            ),
            (
                vec!["LMPOP", "1", "q2", "LEFT"],
                vec!["q2"],
                "q2",
                vec![bad.clone(), g2.clone()],
            ),
            (
                vec!["BLMPOP", "1", "2", "empty", "q2", "RIGHT", "COUNT", "2"],
                vec!["empty", "q2"],
                "q2",
                vec![g1.clone(), g2.clone(), bad.clone()],
            ),
            (
                vec!["BLMPOP", "1", "1", "q2", "left"],
                vec!["q2"],
                "q2",
                vec![bad.clone(), g1.clone()],
            ),
        ];
        for (cmd, keys, key, contents) in cases {
            rpush(&mut direct, key, &contents);
            expect_undecryptable(&stack, &cmd, &keys, &bad);
            assert_list_back(&mut direct, key, &contents, &what(&cmd.join(" ")));
        }
    }
    // The good values still read, in order, through redcloak.
    let mut c = stack.client();
    rpush(&mut direct, "q", &[g1.clone(), g2.clone()]);
    let got: Vec<String> = redis::cmd("LPOP").arg("q").arg(5).query(&mut c).unwrap();
    assert_eq!(got, ["good one", "good two"]);
    assert!(stack.proxy.log_text().contains("put back a value"));
}

/// GETDEL sets the undecryptable value again (the same bytes); LMOVE / RPOPLPUSH / BLMOVE /
/// BRPOPLPUSH move it to the destination, where it stays.
#[test]
fn getdel_puts_back_and_moves_keep_the_value() {
    let stack = Stack::start();
    let mut direct = stack.direct();
    for (kind, bad) in bad_values(&stack) {
        direct.set(b"s", &bad);
        expect_undecryptable(&stack, &["GETDEL", "s"], &["s"], &bad);
        assert!(
            wait_for(Duration::from_secs(5), || direct.get(b"s").as_deref()
                == Some(&bad[..])),
            "GETDEL with a {kind} value: the value is not back"
        );
        for cmd in [
            &["LMOVE", "src", "dst", "LEFT", "RIGHT"][..],
            &["RPOPLPUSH", "src", "dst"],
            &["BLMOVE", "src", "dst", "RIGHT", "LEFT", "1"],
            &["BRPOPLPUSH", "src", "dst", "1"],
        ] {
            rpush(&mut direct, "src", std::slice::from_ref(&bad));
            direct.cmd(&[b"DEL", b"dst"]).unwrap();
            expect_undecryptable(&stack, cmd, &["src", "dst"], &bad);
            assert_eq!(
                list(&mut direct, "dst"),
                vec![Bytes::from(bad.clone())],
                "{cmd:?} ({kind})"
            );
            assert!(list(&mut direct, "src").is_empty());
        }
    }
}

/// GETSET and SET … GET replace the value they read: when that old value does not decrypt
/// (planted around redcloak, or a HyperLogLog, whose raw bytes redcloak never returns), the
/// client gets the error and the old bytes are put back — but only while the key still holds
/// what the command wrote, so a later write by anyone else is never undone. SET … NX GET on
/// an existing key writes nothing and changes nothing. The same inside MULTI/EXEC.
#[test]
fn overwrites_put_back_the_old_value_that_does_not_decrypt() {
    let stack = Stack::start();
    let mut direct = stack.direct();
    let mut bad = bad_values(&stack);
    direct.cmd(&[b"DEL", b"hll"]).unwrap();
    direct.cmd(&[b"PFADD", b"hll", b"a", b"b", b"c"]).unwrap();
    let hll = direct.get(b"hll").expect("the HyperLogLog's raw bytes");
    bad.push(("a HyperLogLog", hll.to_vec()));
    let back = |direct: &mut Direct, bad: &[u8]| {
        wait_for(Duration::from_secs(5), || {
            direct.get(b"o").as_deref() == Some(bad)
        })
    };
    for (kind, bad) in &bad {
        for cmd in [
            &["GETSET", "o", "new"][..],
            &["SET", "o", "new", "GET"],
            &["SET", "o", "new", "XX", "GET", "EX", "100"],
            &["SET", "o", "new", "NX", "GET"],
        ] {
            direct.set(b"o", bad);
            expect_undecryptable(&stack, cmd, &["o"], bad);
            assert!(
                back(&mut direct, bad),
                "{cmd:?} ({kind}): the old value is not back"
            );
        }
        // Inside MULTI: EXEC's element is the error, and the value comes back.
        direct.set(b"o", bad);
        let items = transaction(&stack, &[&["GETSET", "o", "new"]]);
        assert!(error_text(&items[0]).is_some(), "{kind}: {:?}", items[0]);
        assert!(
            back(&mut direct, bad),
            "GETSET in MULTI ({kind}): the old value is not back"
        );
    }
    assert_eq!(
        direct.cmd(&[b"PFCOUNT", b"o"]).unwrap(),
        Frame::Integer(3),
        "the HyperLogLog put back counts as before"
    );
    // A write that comes after the overwrite wins: the put-back (on a connection of its own,
    // so in practice after the client's next command) leaves it alone. An unconditional
    // put-back fails here: GET finds the old plaintext again (checked by hand).
    direct.set(b"o", &bad[0].1);
    let mut c = stack.client();
    let _: redis::RedisResult<String> = redis::cmd("GETSET").arg("o").arg("new").query(&mut c);
    let _: () = redis::cmd("SET")
        .arg("o")
        .arg("latest")
        .query(&mut c)
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let got: String = redis::cmd("GET").arg("o").query(&mut c).unwrap();
    assert_eq!(got, "latest", "the put-back undid a later write");
    assert!(stack.proxy.log_text().contains("put back a value"));
}

/// Inside MULTI/EXEC the pops run when EXEC does; what they took and cannot decrypt goes
/// back too.
#[test]
fn pops_inside_a_transaction_put_back_too() {
    let stack = Stack::start();
    let mut direct = stack.direct();
    let good = stack.key_ring().encrypt(b"good");
    for (kind, bad) in bad_values(&stack) {
        rpush(&mut direct, "tq", &[bad.clone(), good.clone()]);
        direct.set(b"ts", &bad);
        let items = transaction(
            &stack,
            &[&["LPOP", "tq"], &["GETDEL", "ts"], &["RPOP", "tq"]],
        );
        assert!(error_text(&items[0]).is_some(), "{kind}: {:?}", items[0]);
        assert!(error_text(&items[1]).is_some(), "{kind}: {:?}", items[1]);
        assert_eq!(items[2], Frame::Bulk("good".into()));
        assert_list_back(
            &mut direct,
            "tq",
            std::slice::from_ref(&bad),
            &format!("LPOP in MULTI ({kind})"),
        );
        assert!(
            wait_for(Duration::from_secs(5), || direct.get(b"ts").as_deref()
                == Some(&bad[..])),
            "GETDEL in MULTI ({kind}): the value is not back"
        );
    }
}

/// A Fernet token stamped in the future (another writer's clock is ahead) is a valid stored
/// value: GET and GETDEL read it; Python's `cryptography` makes it.
#[test]
fn a_token_from_the_future_reads_fine() {
    let stack = Stack::start();
    let script = "import os,sys,time; from cryptography.fernet import Fernet; \
        sys.stdout.buffer.write(Fernet(os.environ['FERNET_KEY']).encrypt_at_time(b'from a fast clock', int(time.time()) + 3600))";
    let check = Command::new("python3")
        .args(["-c", "import cryptography.fernet"])
        .output();
    if !check.is_ok_and(|o| o.status.success()) {
        missing(
            "python3 with the cryptography package is not available",
            "Python's cryptography.fernet to make a token stamped in the future",
            "pip install cryptography",
        );
    }
    let mut child = Command::new("python3")
        .args(["-c", script])
        .env("FERNET_KEY", &stack.keys)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().flush().unwrap();
    let token = child.wait_with_output().unwrap().stdout;
    assert!(token.starts_with(b"gAAAAA"), "{token:?}");
    let mut direct = stack.direct();
    direct.set(b"future", &token);
    direct.set(b"future2", &token);
    let mut c = stack.client();
    let got: String = redis::cmd("GET").arg("future").query(&mut c).unwrap();
    assert_eq!(got, "from a fast clock");
    let got: String = redis::cmd("GETDEL").arg("future2").query(&mut c).unwrap();
    assert_eq!(got, "from a fast clock");
    assert_eq!(direct.get(b"future2"), None);
}

/// The client's own next command comes after the put-back: a destructive read whose value
/// does not decrypt is refused, and a command the client pipelined right behind it (sent in
/// the same write, before the refusal could arrive) or sends as soon as it has the refusal
/// finds the key as it was — as if the refused read had never run. Before, the put-back was
/// asynchronous and such a command found the list one shorter, the string gone or the new
/// value of GETSET (the differential fuzzer's "put-back family"). Every kind of destructive
/// read in the command table (`Pops`), blocking or not, and one inside MULTI/EXEC.
#[test]
fn the_clients_next_command_sees_the_value_put_back() {
    let stack = Stack::start();
    let mut direct = stack.direct();
    let bad = b"planted in plaintext".to_vec();
    let plant = |direct: &mut Direct, kind: &str, key: &str| {
        direct.cmd(&[b"DEL", key.as_bytes()]).unwrap();
        let k = key.as_bytes();
        let cmd: Vec<&[u8]> = match kind {
            "string" => vec![b"SET", k, &bad],
            "list" => vec![b"RPUSH", k, &bad],
            "set" => vec![b"SADD", k, &bad],
            _ => vec![b"ZADD", k, b"1", &bad],
        };
        direct.cmd(&cmd).unwrap();
    };
    // (kind of value, the destructive read, the command behind it, what that must answer)
    let cases: &[(&str, &str, &str, Frame)] = &[
        ("string", "GETDEL k", "EXISTS k", Frame::Integer(1)),
        ("string", "GETSET k new", "GET k", Frame::Null),
        ("string", "SET k new GET", "GET k", Frame::Null),
        ("list", "LPOP k", "LLEN k", Frame::Integer(1)),
        ("list", "RPOP k 5", "LLEN k", Frame::Integer(1)),
        ("list", "LMPOP 1 k LEFT", "LLEN k", Frame::Integer(1)),
        ("list", "BLPOP k 1", "LLEN k", Frame::Integer(1)),
        ("list", "BRPOP k 1", "LLEN k", Frame::Integer(1)),
        ("list", "BLMPOP 1 1 k RIGHT", "LLEN k", Frame::Integer(1)),
        ("set", "SPOP k", "SCARD k", Frame::Integer(1)),
        ("zset", "ZPOPMIN k", "ZCARD k", Frame::Integer(1)),
        ("zset", "BZPOPMAX k 1", "ZCARD k", Frame::Integer(1)),
        ("zset", "ZMPOP 1 k MIN", "ZCARD k", Frame::Integer(1)),
    ];
    for (kind, read, next, want) in cases {
        let read_words = redcloak_e2e::diff::words(read);
        let next_words = redcloak_e2e::diff::words(next);
        // `Frame::Null` stands for "the old value is back": GET refuses it as undecryptable
        // (the new value would decrypt).
        let check = |got: &Frame, how: &str| match want {
            Frame::Null => {
                let e = error_text(got).unwrap_or_else(|| panic!("{read} {how}: {got:?}"));
                assert!(e.contains("cannot be decrypted"), "{read} {how}: {e}");
            }
            want => assert_eq!(got, want, "{read} {how}: {next}"),
        };

        // Pipelined: both commands in one write.
        plant(&mut direct, kind, "k");
        let mut c = stack.raw();
        let mut buf = bytes::BytesMut::new();
        let mut both =
            redcloak_e2e::diff::command(&read_words.iter().map(Vec::as_slice).collect::<Vec<_>>());
        both.extend(redcloak_e2e::diff::command(
            &next_words.iter().map(Vec::as_slice).collect::<Vec<_>>(),
        ));
        c.write_all(&both).unwrap();
        let first = redcloak_e2e::diff::read_reply(&mut c, &mut buf)
            .unwrap_or_else(|| panic!("{read}: no reply; log:\n{}", stack.proxy.log_text()));
        let e = error_text(&first.frame).unwrap_or_else(|| panic!("{read}: {:?}", first.raw));
        assert!(e.contains("cannot be decrypted"), "{read}: {e}");
        let second = redcloak_e2e::diff::read_reply(&mut c, &mut buf).expect("a reply");
        check(&second.frame, "pipelined");

        // One after the other: once the client has the refusal, the value is back in Redis.
        plant(&mut direct, kind, "k");
        let first = exchange(&mut c, &mut buf, &read_words);
        assert!(
            error_text(&first.frame).is_some(),
            "{read}: {:?}",
            first.raw
        );
        let now = exchange(&mut c, &mut buf, &next_words);
        check(&now.frame, "after the refusal");
    }

    // Inside a transaction: EXEC's element is the refusal, the command after EXEC finds the
    // value back.
    plant(&mut direct, "list", "k");
    let mut c = stack.raw();
    let mut buf = bytes::BytesMut::new();
    let mut all = Vec::new();
    for line in ["MULTI", "LPOP k", "EXEC", "LLEN k"] {
        let w = redcloak_e2e::diff::words(line);
        all.extend(redcloak_e2e::diff::command(
            &w.iter().map(Vec::as_slice).collect::<Vec<_>>(),
        ));
    }
    c.write_all(&all).unwrap();
    let replies: Vec<Frame> = (0..4)
        .map(|_| {
            redcloak_e2e::diff::read_reply(&mut c, &mut buf)
                .expect("a reply")
                .frame
        })
        .collect();
    assert!(
        matches!(&replies[2], Frame::Array(items) if error_text(&items[0]).is_some()),
        "EXEC: {:?}",
        replies[2]
    );
    assert_eq!(replies[3], Frame::Integer(1), "LLEN after EXEC");
}

/// Inside what redcloak carries out itself — a script, a transaction holding an emulated
/// command — a destructive read whose value does not decrypt is refused too, and must change
/// nothing: the value goes back into the execution's view before the next command runs, so
/// the script's own later reads, its `pcall`, and what is committed all find it. Before, the
/// script's GETDEL of a HyperLogLog or of a value under another key was committed as a delete
/// (found by the differential run, seed 0x1d03 sequence 7847).
#[test]
fn destructive_reads_in_scripts_and_transactions_put_back_too() {
    let stack = Stack::start();
    let mut direct = stack.direct();
    let bad = b"planted in plaintext".to_vec();
    let good = stack.key_ring().encrypt(b"good value");
    let mut c = stack.raw();
    let mut buf = bytes::BytesMut::new();
    let mut run = |line: &[&str]| {
        let args: Vec<Vec<u8>> = line.iter().map(|a| a.as_bytes().to_vec()).collect();
        exchange(&mut c, &mut buf, &args).frame
    };
    let get = |direct: &mut Direct, key: &str| direct.cmd(&[b"GET", key.as_bytes()]).unwrap();

    // A script whose GETDEL / GETSET / SET … GET is refused: the key keeps its value.
    for script in [
        "return redis.call('GETDEL', KEYS[1])",
        "return redis.call('GETSET', KEYS[1], 'new')",
        "return redis.call('SET', KEYS[1], 'new', 'GET')",
    ] {
        direct.cmd(&[b"SET", b"s", &bad]).unwrap();
        let reply = run(&["EVAL", script, "1", "s"]);
        let e = error_text(&reply).unwrap_or_else(|| panic!("{script}: {reply:?}"));
        assert!(e.contains("cannot be decrypted"), "{script}: {e}");
        assert_eq!(
            get(&mut direct, "s"),
            Frame::Bulk(Bytes::from(bad.clone())),
            "{script}"
        );
    }
    // The script goes on after a caught refusal and finds the value where it was.
    direct.cmd(&[b"DEL", b"q"]).unwrap();
    direct.cmd(&[b"RPUSH", b"q", &bad, &good]).unwrap();
    let reply = run(&[
        "EVAL",
        "local ok = redis.pcall('LPOP', KEYS[1]); return redis.call('LLEN', KEYS[1])",
        "1",
        "q",
    ]);
    assert_eq!(reply, Frame::Integer(2), "LLEN after the refused LPOP");
    assert_eq!(
        list(&mut direct, "q"),
        vec![Bytes::from(bad.clone()), Bytes::from(good.clone())],
        "in order"
    );
    // A transaction with an emulated command runs on redcloak's view: the refused pop is
    // EXEC's element, the list is as it was.
    let exec = transaction(
        &stack,
        &[&["INCR", "counter"], &["LPOP", "q"], &["LLEN", "q"]],
    );
    assert_eq!(exec[0], Frame::Integer(1));
    assert!(
        error_text(&exec[1]).is_some(),
        "LPOP of a value that does not decrypt: {exec:?}"
    );
    assert_eq!(
        exec[2],
        Frame::Integer(2),
        "LLEN inside the transaction: {exec:?}"
    );
    assert_eq!(
        list(&mut direct, "q"),
        vec![Bytes::from(bad), Bytes::from(good)],
        "after EXEC"
    );
}

/// While requests wait behind a blocking command — behind a destructive read (above), or
/// behind a SELECT whose answer they need — redcloak still reads the client: one that hangs up,
/// or only closes its sending half (Redis treats both as gone), does not leave its connection
/// to Redis blocked until the command's timeout, and a value pushed later stays in the list
/// instead of being popped for nobody. Found by the differential run: a hung-up client's
/// `WAIT 1 0` stayed blocked in Redis for good.
#[test]
fn a_client_that_hangs_up_behind_a_blocking_command_leaves_nothing_blocked() {
    use std::net::Shutdown;
    let stack = Stack::start();
    let mut direct = stack.direct();
    let blocked = |direct: &mut Direct| match direct.cmd(&[b"INFO", b"clients"]).unwrap() {
        Frame::Bulk(b) => String::from_utf8_lossy(&b)
            .lines()
            .find_map(|l| {
                l.strip_prefix("blocked_clients:")
                    .map(|n| n.trim().to_owned())
            })
            .unwrap(),
        other => panic!("{other:?}"),
    };
    let cases = [
        ("BLPOP nothing-here 30", "PING"),
        ("BLMOVE nothing-here elsewhere LEFT RIGHT 30", "SELECT 1"),
        ("WAIT 1 0", "SELECT 1"),
        // Behind it, work redcloak carries out itself: an emulated command, a script.
        ("WAIT 1 0", "INCR counter"),
        (
            "BLMOVE nothing-here elsewhere LEFT RIGHT 30",
            "EVAL return 0",
        ),
    ];
    for ((blocking, behind), close) in cases
        .iter()
        .flat_map(|c| [(c, "hang up"), (c, "close the sending half")])
    {
        direct.cmd(&[b"DEL", b"nothing-here"]).unwrap();
        let mut bytes = Vec::new();
        for line in [*blocking, *behind] {
            let words = redcloak_e2e::diff::words(line);
            bytes.extend(redcloak_e2e::diff::command(
                &words.iter().map(Vec::as_slice).collect::<Vec<_>>(),
            ));
        }
        bytes.extend(redcloak_e2e::diff::command(&[b"PING"]));
        let mut c = stack.raw();
        c.write_all(&bytes).unwrap();
        assert!(
            wait_for(Duration::from_secs(5), || blocked(&mut direct) == "1"),
            "{blocking}: never blocked"
        );
        match close {
            "hang up" => drop(c),
            _ => c.shutdown(Shutdown::Write).unwrap(),
        }
        assert!(
            wait_for(Duration::from_secs(5), || blocked(&mut direct) == "0"),
            "{blocking}, {behind}, {close}: the connection to Redis stayed blocked"
        );
        let good = stack.key_ring().encrypt(b"pushed later");
        direct.cmd(&[b"RPUSH", b"nothing-here", &good]).unwrap();
        assert_eq!(
            list(&mut direct, "nothing-here"),
            vec![Bytes::from(good)],
            "{blocking}, {close}: the value pushed later was taken"
        );
    }
}
