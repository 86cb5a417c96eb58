//! Regression tests for the classes of divergence the differential harness
//! (`tests/src/differential/`, `tests/tests/differential.rs`) found in redcloak, each compared
//! byte for byte with a plain Redis: the same conversation through redcloak and straight to
//! Redis must get the same replies.

use redcloak_e2e::diff::{assert_same_replies, PlainRedis, Step};
use redcloak_e2e::Stack;

fn both() -> (Stack, PlainRedis) {
    let stack = Stack::start();
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    (stack, plain)
}

fn cmd(args: &[&str]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.as_bytes().to_vec()).collect()
}

/// Emulated commands (computed by redcloak on decrypted values) read their option words as
/// Redis does: any case, and only up to a NUL (`strcasecmp` on C strings). `LINSERT l
/// BEFORE\0 …` inserted in Redis and was a syntax error in redcloak; so were LCS, LPOS, SORT,
/// BITCOUNT, BITPOS, BITFIELD and BITOP words with a NUL.
#[test]
fn emulated_commands_read_option_words_like_redis() {
    let (stack, plain) = both();
    let mut steps = vec![Step::send(&[
        "RPUSH l b a c a",
        "SET s1 ohmytext",
        "SET s2 mynewtext",
        "SET bits abc",
    ])];
    for nul in ["", "\\0", "\\0zz"] {
        let lines = [
            format!("LINSERT l BEFORE{nul} a x"),
            format!("linsert l after{nul} a y"),
            "LRANGE l 0 -1".to_owned(),
            format!("LPOS l a RANK{nul} 1 COUNT{nul} 0 MAXLEN{nul} 10"),
            format!("LCS s1 s2 IDX{nul} MINMATCHLEN{nul} 2 WITHMATCHLEN{nul}"),
            format!("LCS s1 s2 len{nul}"),
            format!("SORT l ALPHA{nul} DESC{nul} LIMIT{nul} 0 3"),
            format!("SORT_RO l BY{nul} nosort GET{nul} #"),
            format!("BITCOUNT bits 0 -1 BIT{nul}"),
            format!("BITPOS bits 1 0 -1 BYTE{nul}"),
            format!("BITFIELD bits GET{nul} u4 0 OVERFLOW{nul} SAT{nul} INCRBY{nul} u4 0 100"),
            format!("BITOP AND{nul} dest s1 s2"),
            "GET dest".to_owned(),
        ];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        steps.push(Step::send(&lines));
    }
    assert_same_replies(&stack, &plain, &steps);
}

/// In RESP2 pub/sub mode Redis refuses every command but (P|S)(UN)SUBSCRIBE, PING, QUIT and
/// RESET, before it reads any argument. redcloak carries some commands out itself (emulated
/// read-modify-write commands, scripts, functions): it checked their arguments or ran them
/// first, and answered "value is not an integer", "Redis sent a reply redcloak cannot parse"…
/// Sent one at a time and pipelined right behind the SUBSCRIBE.
#[test]
fn commands_redcloak_carries_out_are_refused_in_pubsub_mode_like_redis() {
    let (stack, plain) = both();
    let commands = vec![
        cmd(&["INCR", "n"]),
        cmd(&["INCRBY", "n", "x"]),
        cmd(&["APPEND", "s", "v"]),
        cmd(&["SETRANGE", "s", "-1", "v"]),
        cmd(&["GETBIT", "s", "-1"]),
        cmd(&["LPOS", "l", "a", "COUNT", "-1"]),
        cmd(&["HINCRBYFLOAT", "h", "f", "+inf"]),
        cmd(&["SORT", "l"]),
        cmd(&["BITFIELD", "s", "GET", "s1", "3"]),
        cmd(&["EVAL", "return 1", "0"]),
        cmd(&["EVALSHA", "nosha", "1.5"]),
        cmd(&["SCRIPT", "LOAD", "return 1"]),
        cmd(&["FUNCTION", "LIST"]),
        cmd(&["FCALL", "f", "0"]),
    ];
    let mut steps = vec![Step::send(&["SET s hello", "SUBSCRIBE ch"])];
    for c in &commands {
        steps.push(Step::Pipeline(vec![c.clone()]));
    }
    steps.push(Step::send(&["UNSUBSCRIBE ch", "INCR n", "GET s"]));
    // Pipelined behind the SUBSCRIBE: redcloak must wait for Redis's confirmation.
    let mut pipelined = vec![cmd(&["SUBSCRIBE", "ch"])];
    pipelined.extend(commands.iter().cloned());
    pipelined.push(cmd(&["UNSUBSCRIBE"]));
    pipelined.push(cmd(&["INCR", "n"]));
    steps.push(Step::Pipeline(pipelined));
    assert_same_replies(&stack, &plain, &steps);
}

/// A transaction redcloak runs itself (it holds an emulated command) whose WATCHed key changed
/// answers EXEC with a null in the client's protocol: RESP3 `_`, not RESP2's `*-1`.
#[test]
fn an_aborted_transaction_answers_null_in_the_clients_protocol() {
    let (stack, plain) = both();
    for hello in ["HELLO 3", "HELLO 2"] {
        let steps = vec![
            Step::send(&[hello, "SET n 1", "WATCH w"]),
            Step::side("SET w changed"),
            Step::send(&["MULTI", "INCR n", "APPEND s x", "EXEC", "GET n"]),
        ];
        assert_same_replies(&stack, &plain, &steps);
    }
}

/// A blocking command queued in a transaction that redcloak carries out itself (one holding
/// an emulated command, here APPEND) runs as Redis runs it inside MULTI: without blocking —
/// what there is to pop, or a null; WRONGTYPE from the first key of another type; a timeout
/// Redis rejects gets Redis's error (checked in Redis's order with the other arguments). Every
/// blocking command that names keys, in both protocols; the last EXEC would block forever if
/// anything blocked.
#[test]
fn blocking_commands_in_a_transaction_redcloak_runs_do_not_block_like_redis() {
    let (stack, plain) = both();
    for hello in ["HELLO 2", "HELLO 3"] {
        let steps = vec![
            Step::send(&[
                hello,
                "FLUSHALL",
                "RPUSH l1 a b c",
                "RPUSH l2 x",
                "ZADD z 1 m1 2 m2 3 m3",
                "SET str v",
                "XADD s 1-1 f v",
            ]),
            Step::send(&[
                "MULTI",
                "APPEND t x",
                "BLPOP none l1 0",
                "BRPOP l1 l2 1.5",
                "BLPOP none1 none2 0",
                "BLPOP str l1 0",
                "BLPOP none l1 -1",
                "BLPOP l1 x",
                "BZPOPMIN none z 0",
                "BZPOPMAX z 0",
                "BZPOPMIN none 0",
                "BZPOPMIN str 0",
                "BLMPOP 0 2 none l1 LEFT COUNT 5",
                "BLMPOP 0 1 none RIGHT",
                "BLMPOP x 1 none LEFT",
                "BLMPOP 0 0 none LEFT",
                "BZMPOP 0 1 z MAX COUNT 2",
                "BZMPOP 0 1 none MIN",
                "BLMOVE l2 l3 LEFT RIGHT 0",
                "BLMOVE l2 l3 LEFT RIGHT 0",
                "BLMOVE l2 l3 NOWHERE RIGHT -1",
                "BRPOPLPUSH l3 l1 0",
                "BRPOPLPUSH none l1 0",
                "XREAD BLOCK 0 STREAMS s 0",
                "XREAD block 0 COUNT 1 STREAMS s $",
                "XREAD BLOCK -5 STREAMS s 0",
                "XREAD BLOCK 0 STREAMS s",
                "LRANGE l1 0 -1",
                "EXEC",
            ]),
            Step::send(&[
                "MULTI",
                "APPEND t y",
                "BLPOP l1 l2 l3 0",
                "BZPOPMIN z 0",
                "EXEC",
            ]),
        ];
        assert_same_replies(&stack, &plain, &steps);
    }
}

/// A reply redcloak makes itself must not overtake what Redis sent before it would have
/// answered that command. A subscribed connection gets a large message from another client
/// (its decryption takes time), then asks for answers redcloak gives itself — `PING
/// <message>`, `ECHO` (RESP2: Redis's `Can't execute`), COMMAND GETKEYS, a wrong arity, QUIT: each
/// comes after the message, as from Redis. RESP2 and RESP3.
#[test]
fn local_answers_do_not_overtake_pubsub_messages() {
    let (stack, plain) = both();
    let big = "m".repeat(400 << 10);
    for hello in ["HELLO 2", "HELLO 3"] {
        let publish_big = Step::Side(cmd(&["PUBLISH", "ch", &big]));
        let steps = vec![
            Step::send(&[hello, "SUBSCRIBE ch"]),
            publish_big.clone(),
            Step::send(&["PING x"]),
            publish_big.clone(),
            Step::send(&["ECHO y", "PING"]),
            publish_big.clone(),
            Step::send(&["PING a b"]),
            Step::side("PUBLISH ch small"),
            publish_big.clone(),
            Step::send(&["COMMAND GETKEYS SET k v"]),
            publish_big,
            Step::send(&["QUIT"]),
        ];
        assert_same_replies(&stack, &plain, &steps);
    }
}

/// A transaction redcloak carries out itself (it holds an emulated command) runs on scratch
/// copies of its keys; Redis names the key in some errors (`NOGROUP No such key '…'`), and
/// the client must see its own key's name there, not the copy's.
#[test]
fn errors_inside_a_transaction_redcloak_runs_name_the_clients_keys() {
    let (stack, plain) = both();
    let steps = vec![
        Step::send(&["XADD st 1-1 f v", "SET s abc"]),
        Step::send(&[
            "MULTI",
            "SORT_RO st LIMIT 0 3",
            "XCLAIM st g1 c1 0 1-1",
            "BITCOUNT s 0 -1 BIT",
            "XCLAIM nosuch g1 c1 0 1-1",
            "EXEC",
        ]),
    ];
    assert_same_replies(&stack, &plain, &steps);
}

/// A RESTORE in a transaction redcloak carries out itself (one holding an emulated command)
/// fails as Redis fails it at EXEC; and the emulated commands that follow are still answered.
#[test]
fn a_restore_in_a_transaction_redcloak_runs_leaves_the_session_working() {
    let (stack, plain) = both();
    let mut restore = cmd(&["RESTORE", "k", "-5"]);
    restore.push(b"\0not-a-payload\0".to_vec());
    restore.push(b"REPLACE".to_vec());
    let steps = vec![
        Step::Pipeline(vec![
            cmd(&["MULTI"]),
            cmd(&["SETRANGE", "k", "-2", "x"]),
            restore,
            cmd(&["EXEC"]),
        ]),
        Step::send(&["HINCRBY h f 0"]),
        Step::send(&["SETRANGE k 0 abc", "SETBIT k 100 1", "GETRANGE k 0 2"]),
    ];
    assert_same_replies(&stack, &plain, &steps);
}

/// In RESP2 pub/sub mode Redis refuses every command but the subscribe family, PING, QUIT
/// and RESET before anything else: redcloak refuses them the same way first — what it
/// answers itself (MULTI, then EXEC without MULTI; HELLO; COMMAND GETKEYS), what it checks
/// before forwarding (XADD and ZRANGEBYSCORE options, HELLO's arguments), what it refuses
/// (CLIENT TRACKING), AUTH — pipelined right behind the SUBSCRIBE and one at a time, and
/// after leaving pub/sub mode everything runs again.
#[test]
fn every_command_is_refused_first_in_resp2_pubsub_mode_like_redis() {
    let (stack, plain) = both();
    let lines = [
        "MULTI",
        "SET k v",
        "EXEC",
        "HELLO 2",
        "HELLO 9",
        "HELLO 3 SETNAME",
        "ECHO x",
        "COMMAND GETKEYS GET k",
        "XADD s LIMIT 5 * f v",
        "XADD s MAXLEN ~ 1 LIMIT x * f v",
        "ZRANGEBYSCORE z 0 1 LIMIT 0",
        "CLIENT TRACKING on",
        "AUTH secret",
        "AUTH user secret",
        "GET k",
        "NOPE",
        "GET",
    ];
    let mut steps = vec![Step::send(&["SUBSCRIBE ch"])];
    for line in lines {
        steps.push(Step::send(&[line]));
    }
    let mut pipelined = vec!["UNSUBSCRIBE", "SUBSCRIBE ch"];
    pipelined.extend(lines);
    pipelined.extend(["PING", "UNSUBSCRIBE", "MULTI", "SET k v", "EXEC", "GET k"]);
    steps.push(Step::send(&pipelined));
    assert_same_replies(&stack, &plain, &steps);
}

/// XADD's argument errors come in Redis's order: the options' own errors, then LIMIT without
/// a trimming strategy or without `~`, then the arity of what follows the ID.
#[test]
fn xadd_argument_errors_come_in_redis_s_order() {
    let (stack, plain) = both();
    let steps = vec![Step::send(&[
        "XADD s MINID 3 LIMIT 3",
        "XADD s MAXLEN 3 LIMIT 3",
        "XADD s LIMIT 0 MAXLEN 5",
        "XADD s LIMIT 5 * f v",
        "XADD s LIMIT 0 * f v",
        "XADD s LIMIT 5 * f",
        "XADD s MAXLEN ~ 1 LIMIT 2 * f",
        "XADD s MAXLEN = 1 LIMIT 2 * f v",
        "XADD s MAXLEN ~ 1 LIMIT 2",
        "XADD s MINID ~ 0 LIMIT x * f v",
        "XADD s MAXLEN ~ 1 MAXLEN 2 LIMIT 2 * f v",
        "XADD s NOMKSTREAM MAXLEN ~ 1 LIMIT 2 * f v",
        "XADD s MAXLEN ~ 1 LIMIT 2 1-1 f v",
        "XLEN s",
    ])];
    assert_same_replies(&stack, &plain, &steps);
}

/// Commands redcloak answers itself get their errors when Redis would give them: an argument
/// check the command makes when it runs (PING with too many arguments, COMMAND GETKEYS of a
/// command or an arity it cannot read) is, inside MULTI, queued and EXEC's element — redcloak
/// refused it while queueing, which aborted the transaction (difffuzz seed 0x107, sequence
/// 2062); an arity of the command table (ECHO's) is checked while queueing, as in Redis.
#[test]
fn errors_of_commands_redcloak_answers_come_when_redis_gives_them() {
    let (stack, plain) = both();
    let steps = vec![Step::send(&[
        "PING a b",
        "COMMAND GETKEYS NOSUCHCMD k",
        "COMMAND GETKEYS GET",
        "MULTI",
        "PING a b",
        "PING x",
        "COMMAND GETKEYS NOSUCHCMD k",
        "COMMAND GETKEYS GET",
        "COMMAND GETKEYS GET k",
        "SET k v",
        "EXEC",
        "GET k",
        "MULTI",
        "ECHO",
        "PING a b c",
        "EXEC",
    ])];
    assert_same_replies(&stack, &plain, &steps);
}

/// SORT and SORT_RO (carried out by redcloak on decrypted values) of a key of every type:
/// WRONGTYPE for strings, hashes and streams, the elements of lists, sets and sorted sets, an
/// empty reply for a missing key — alone, with BY/LIMIT/ALPHA, and inside MULTI.
#[test]
fn sort_of_every_type_answers_like_redis() {
    let (stack, plain) = both();
    let mut lines = vec![
        "SET str 3".to_owned(),
        "HSET h f 1".to_owned(),
        "XADD x 1-1 f v".to_owned(),
        "RPUSH l 3 1 2".to_owned(),
        "SADD s 3 1 2".to_owned(),
        "ZADD z 1 3 2 1 3 2".to_owned(),
        "PFADD hll a".to_owned(),
    ];
    for key in ["str", "h", "x", "l", "s", "z", "hll", "none"] {
        for cmd in ["SORT", "SORT_RO"] {
            lines.push(format!("{cmd} {key}"));
            lines.push(format!("{cmd} {key} ALPHA LIMIT 0 2 DESC"));
            lines.push(format!("{cmd} {key} BY nosort"));
        }
    }
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let steps = vec![
        Step::send(&lines),
        Step::send(&["MULTI", "SORT_RO str", "SORT_RO h", "SORT_RO l", "EXEC"]),
    ];
    assert_same_replies(&stack, &plain, &steps);
}

/// FUNCTION RESTORE of what DUMP returned for a key (not for functions): Redis reads the
/// payload and answers `given type is not a function`; redcloak's engine did not know the
/// payload and said `payload version or checksum are wrong` (difffuzz seed 0x107, sequence
/// 5428). Each side restores its own DUMP; policy words are checked first, as in Redis.
#[test]
fn function_restore_of_a_key_dump_answers_like_redis() {
    let (stack, plain) = both();
    let answers = |c: &mut redis::Connection| -> Vec<String> {
        let _: () = redis::cmd("SET").arg("k").arg("v").query(c).unwrap();
        let payload: Vec<u8> = redis::cmd("DUMP").arg("k").query(c).unwrap();
        [&[][..], &["FLUSH"], &["REPLACE"], &["NOSUCHPOLICY"]]
            .iter()
            .map(|policy| {
                let r: redis::RedisResult<String> = redis::cmd("FUNCTION")
                    .arg("RESTORE")
                    .arg(&payload[..])
                    .arg(*policy)
                    .query(c);
                format!("{r:?}")
            })
            .collect()
    };
    let ours = answers(&mut stack.client());
    let theirs = answers(&mut plain.client());
    assert_eq!(ours, theirs);
    assert!(ours[0].contains("given type is not a function"), "{ours:?}");
}
