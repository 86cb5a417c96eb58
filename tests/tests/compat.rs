//! Exactly Redis where redcloak can be (issue 10, class 7): empty and negative multibulk
//! counts, Redis's own wording for commands and subcommands it does not know, `COMMAND
//! GETKEYS` answered locally from the table's key positions, keyspace notifications delivered
//! as they are. Each is compared with a plain Redis fed the same bytes.

use std::collections::BTreeMap;

use redcloak_commands::resp::Frame;
use redcloak_e2e::diff::{
    assert_same_replies, converse_raw, show, Monitor, PlainRedis, Reply, Step,
};
use redcloak_e2e::gen::{command_docs, Gen};
use redcloak_e2e::Stack;

/// `*<n>` with n ≤ 0 is skipped, as Redis does; a count Redis cannot read is its protocol
/// error, and the connection closes. Compared byte for byte.
#[test]
fn empty_and_negative_multibulk_counts_are_ignored_like_redis() {
    let stack = Stack::start();
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    let cases: &[&[u8]] = &[
        b"*-10\r\n",
        b"*0\r\n",
        b"*-1\r\n*0\r\n*-0\r\n*-10\r\n*1\r\n$4\r\nPING\r\n",
        b"*-9223372036854775808\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
        b"*-10\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*0\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
        b"\r\n\r\n*0\r\n\r\n",
        // Not skipped: counts Redis cannot read.
        b"*-99999999999999999999\r\n",
        b"*x\r\n",
        b"*1\r\n$-1\r\n",
        b"*1\r\n$x\r\n",
    ];
    for case in cases {
        assert_same_raw(&stack, &plain, case);
    }
}

/// Sends `case` as raw bytes to the plain Redis and to redcloak: the same bytes come back and
/// both close (or not) alike. Returns Redis's replies and whether it closed.
fn assert_same_raw(stack: &Stack, plain: &PlainRedis, case: &[u8]) -> (Vec<Reply>, bool) {
    let (expected, e_closed) = converse_raw(([127, 0, 0, 1], plain.port).into(), case);
    let (got, g_closed) = converse_raw(stack.proxy.addr, case);
    let readable = String::from_utf8_lossy(case);
    assert_eq!(e_closed, g_closed, "{readable:?}: closed");
    assert_eq!(
        expected.iter().map(|r| &r.raw).collect::<Vec<_>>(),
        got.iter().map(|r| &r.raw).collect::<Vec<_>>(),
        "{readable:?}: Redis {} / redcloak {}",
        show(&expected),
        show(&got)
    );
    (expected, e_closed)
}

/// The two bytes after a bulk's data are skipped whatever they are, as Redis 7.0 skips them
/// (redcloak answered a protocol error and closed): in any argument, before a pipelined
/// command, bytes that look like a frame start, NULs; values written that way read back the
/// same. Compared byte for byte.
#[test]
fn the_two_bytes_after_a_bulk_are_skipped_like_redis() {
    let stack = Stack::start();
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    let cases: &[&[u8]] = &[
        b"*1\r\n$4\r\nPINGxx",
        b"*1\r\n$4\r\nPING\0\0*1\r\n$4\r\nPING\r\n",
        b"*3\r\n$3\r\nSET\r\n$1\r\nk**$5\r\nvalue$$*2\r\n$3\r\nGET\n\n$1\r\nk\r\r",
        b"*2\r\n$4\r\nECHO\r\n$0\r\n:1*2\r\n$6\r\nSTRLEN\r\n$1\r\nk\r\n",
        b"*2\r\n$3\r\nGET\r\n$1\r\nk\n*",
    ];
    for case in cases {
        let (expected, closed) = assert_same_raw(&stack, &plain, case);
        assert!(
            !expected.is_empty() && !closed,
            "{:?}: Redis answers",
            String::from_utf8_lossy(case)
        );
    }
}

/// The table describes the Redis version the tests run against (7.0): `CLIENT SETINFO` (7.2)
/// is unknown there, so redcloak answers it as Redis 7.0 does — alone, in any case, with
/// wrong arities, and inside MULTI (the error while queueing aborts the transaction; redcloak
/// queued it). CLUSTER's subcommands are listed: an unknown one gets Redis's words, a known
/// one with a wrong arity Redis's arity error, a known one redcloak's refusal.
#[test]
fn subcommands_newer_than_redis_7_0_and_cluster_s_get_redis_s_answers() {
    let stack = Stack::start();
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    let steps = vec![
        Step::send(&[
            "CLIENT SETINFO LIB-NAME redis-py",
            "client setinfo lib-ver 1.2.3",
            "CLIENT SETINFO",
            "CLIENT SETINFO LIB-NAME a b c",
        ]),
        Step::send(&[
            "MULTI",
            "SET k v",
            "CLIENT SETINFO LIB-NAME x",
            "EXEC",
            "GET k",
        ]),
        Step::send(&["MULTI", "client setinfo", "INCR n", "EXEC", "EXISTS n"]),
        Step::send(&[
            "CLUSTER NOPE",
            "cluster nope a b",
            "CLUSTER INFO extra",
            "CLUSTER KEYSLOT",
            "CLUSTER GETKEYSINSLOT 1",
            "CLUSTER",
        ]),
        Step::send(&["MULTI", "CLUSTER NOPE", "SET k w", "EXEC", "GET k"]),
    ];
    assert_same_replies(&stack, &plain, &steps);
    // Known subcommands, right arity: redcloak's refusal (Redis: cluster support disabled).
    for line in [
        "CLUSTER INFO",
        "cluster keyslot k",
        "CLUSTER SETSLOT 1 NODE x",
    ] {
        let replies = redcloak_e2e::diff::converse(stack.proxy.addr, &[Step::send(&[line])]);
        let text = replies[0]
            .first()
            .and_then(|r| redcloak_e2e::diff::error_text(&r.frame))
            .unwrap_or_default();
        assert!(
            text.contains("redcloak") && text.contains("cluster mode is not supported"),
            "{line}: {text}"
        );
    }
}

/// What Redis does not know gets Redis's own words: arguments cut at 128 bytes in all, each
/// at its first NUL, line breaks as spaces; unknown subcommands of every container; wrong
/// arities; inside MULTI the transaction is aborted.
#[test]
fn unknown_commands_and_subcommands_get_redis_s_words() {
    let stack = Stack::start();
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    let long = "a".repeat(300);
    let fifty = "b".repeat(50);
    let name_200 = "n".repeat(200);
    let lines: Vec<Vec<Vec<u8>>> = vec![
        vec![b"NOPE".to_vec()],
        vec![
            b"NOPE".to_vec(),
            b"a".to_vec(),
            b"b".to_vec(),
            b"c".to_vec(),
        ],
        vec![
            b"nope".to_vec(),
            b"a\0hidden".to_vec(),
            b"\0".to_vec(),
            b"c".to_vec(),
        ],
        vec![b"NOPE".to_vec(), b"with\r\nline\rbreaks\n".to_vec()],
        vec![b"NOPE".to_vec(), long.clone().into_bytes()],
        vec![
            b"NOPE".to_vec(),
            fifty.clone().into_bytes(),
            fifty.clone().into_bytes(),
            fifty.clone().into_bytes(),
            fifty.into_bytes(),
        ],
        vec![name_200.into_bytes(), b"x".to_vec()],
        vec![b"".to_vec()],
        vec![b"foo bar".to_vec(), b"x".to_vec()],
        vec!["ünïcödé".as_bytes().to_vec(), "ärg".as_bytes().to_vec()],
        vec![b"XINFO".to_vec(), b"NOSUCH".to_vec()],
        vec![b"xinfo".to_vec(), b"nosuch".to_vec(), b"a".to_vec()],
        vec![b"CONFIG".to_vec(), b"nosuch".to_vec(), long.into_bytes()],
        vec![b"CLIENT".to_vec(), b"NOSUCH".to_vec(), b"x\r\ny".to_vec()],
        vec![b"OBJECT".to_vec(), b"NOSUCH".to_vec(), b"k".to_vec()],
        vec![b"COMMAND".to_vec(), b"NOSUCH".to_vec()],
        vec![b"SCRIPT".to_vec(), b"nope".to_vec()],
        vec![b"MEMORY".to_vec(), b"nope".to_vec()],
        vec![
            b"XGROUP".to_vec(),
            b"nope".to_vec(),
            b"a".to_vec(),
            b"b".to_vec(),
        ],
        vec![b"PUBSUB".to_vec(), b"nope".to_vec()],
        vec![b"FUNCTION".to_vec(), b"nope".to_vec()],
        vec![b"LATENCY".to_vec(), b"nope".to_vec()],
        vec![b"ACL".to_vec(), b"nope".to_vec()],
        vec![b"SLOWLOG".to_vec(), b"nope".to_vec()],
        vec![b"MODULE".to_vec(), b"nope".to_vec()],
        vec![b"XINFO".to_vec(), "s".repeat(200).into_bytes()],
        vec![b"GET".to_vec()],
        vec![b"SET".to_vec(), b"k".to_vec()],
        vec![b"XINFO".to_vec()],
        vec![b"XINFO".to_vec(), b"STREAM".to_vec()],
        vec![b"CONFIG".to_vec()],
        vec![b"PING".to_vec(), b"a".to_vec(), b"b".to_vec()],
    ];
    // Each on its own, all pipelined, and inside MULTI (the transaction aborts).
    let mut steps: Vec<Step> = lines
        .iter()
        .map(|l| Step::Pipeline(vec![l.clone()]))
        .collect();
    steps.push(Step::Pipeline(lines.clone()));
    steps.push(Step::Pipeline(
        std::iter::once(vec![b"MULTI".to_vec()])
            .chain(lines.iter().take(3).cloned())
            .chain([vec![b"GET".to_vec(), b"k".to_vec()], vec![b"EXEC".to_vec()]])
            .collect(),
    ));
    assert_same_replies(&stack, &plain, &steps);
}

/// `COMMAND GETKEYS` and `GETKEYSANDFLAGS`, for every command and subcommand in the table,
/// with arguments generated from Redis's docs (option words in any case, with NUL
/// suffixes), and the errors (unknown command, no keys, wrong arity, bad arguments): the same
/// answer as a plain Redis, byte for byte, and the arguments never reach the TLS Redis.
#[test]
fn command_getkeys_answers_like_redis_without_telling_redis() {
    let stack = Stack::start();
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    let docs = command_docs(plain.port);
    let mut monitor = Monitor::start(&stack);
    let mut gen = Gen::new(99);
    gen.nul_percent = 25;
    let mut names = Vec::new();
    for spec in redcloak_commands::table::all() {
        let name = spec.name.to_ascii_lowercase();
        if spec.subcommands.is_empty() || spec.arity_ok(1) {
            names.push(name.clone());
        }
        for sub in spec.subcommands {
            names.push(format!("{name}|{}", sub.name.to_ascii_lowercase()));
        }
    }
    let mut per_command = BTreeMap::new();
    let mut cases: Vec<Vec<Vec<u8>>> = Vec::new();
    for name in &names {
        // A row without Redis 7.0 docs (none today) is skipped.
        let Some(doc) = docs.get(name) else {
            continue;
        };
        let mut n = 0;
        for i in 0..12 {
            let mut inner = gen.command(name, doc);
            if i == 11 && inner.len() > 1 {
                inner.pop(); // wrong arity, or an argument short
            }
            let sub = if i % 2 == 0 {
                "GETKEYS"
            } else {
                "GETKEYSANDFLAGS"
            };
            let mut full = vec![b"COMMAND".to_vec(), sub.as_bytes().to_vec()];
            full.extend(inner);
            cases.push(full);
            n += 1;
        }
        per_command.insert(name.clone(), n);
    }
    for extra in [
        "COMMAND GETKEYS NOSUCH a b",
        "COMMAND GETKEYS PING",
        "COMMAND GETKEYS GET",
        "COMMAND GETKEYS XINFO NOSUCH s",
        "COMMAND GETKEYSANDFLAGS LMOVE a b LEFT RIGHT",
        "COMMAND GETKEYS EVAL return 2 a b c",
        "COMMAND GETKEYS SORT k BY x STORE\\0junk dst",
        "COMMAND GETKEYS XREAD COUNT 1 STREAMS\\0 a b 0 0",
        "COMMAND GETKEYS MIGRATE h 1 \"\" 0 5 AUTH\\0 p KEYS a b",
        "COMMAND GETKEYS ZUNIONSTORE d 2 a b WEIGHTS 1 2",
        "COMMAND GETKEYS GEORADIUS k 0 0 1 m STORE\\0 d",
    ] {
        cases.push(redcloak_e2e::diff::words(extra));
    }
    let steps: Vec<Step> = cases
        .chunks(50)
        .map(|c| Step::Pipeline(c.to_vec()))
        .collect();
    assert_same_replies(&stack, &plain, &steps);
    eprintln!(
        "{} GETKEYS cases over {} commands and subcommands",
        cases.len(),
        names.len()
    );
    assert!(
        monitor.lines_of("COMMAND").is_empty(),
        "{:?}",
        monitor.lines_of("COMMAND")
    );
}

/// Keyspace and keyevent notifications carry key and event names, not values: delivered as
/// they are, through SUBSCRIBE and PSUBSCRIBE, in RESP2 and RESP3.
#[test]
fn keyspace_notifications_are_delivered_as_they_are() {
    let stack = Stack::start();
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    stack
        .direct()
        .cmd(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"])
        .unwrap();
    let mut p = plain.raw();
    let mut buf = bytes::BytesMut::new();
    let set = redcloak_e2e::diff::exchange(
        &mut p,
        &mut buf,
        &redcloak_e2e::diff::words("CONFIG SET notify-keyspace-events KEA"),
    );
    assert_eq!(set.frame, Frame::Simple("OK".into()));
    for resp3 in [false, true] {
        let mut steps = Vec::new();
        if resp3 {
            steps.push(Step::send(&["HELLO 3"]));
        }
        steps.extend([
            Step::send(&[
                "SUBSCRIBE __keyspace@0__:k __keyevent@0__:del",
                "PSUBSCRIBE __keyevent@0__:* __key*@0__:l",
            ]),
            Step::side("SET k value-is-not-in-notifications"),
            Step::side("EXPIRE k 100"),
            Step::side("RPUSH l a b"),
            Step::side("DEL k l"),
            Step::send(&["PING"]),
            Step::send(&["UNSUBSCRIBE", "PUNSUBSCRIBE"]),
        ]);
        let got = assert_same_replies(&stack, &plain, &steps);
        let n: usize = got.iter().map(Vec::len).sum();
        assert!(n > 15, "notifications arrived: {got:?}");
    }
}
