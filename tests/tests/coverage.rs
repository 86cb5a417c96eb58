//! The command table covers the whole command set of the real Redis the tests run against
//! (`COMMAND` lists every command and subcommand), and pass-through commands answer through
//! redcloak exactly as Redis answers directly.

use bytes::Bytes;
use redcloak_commands::resp::Frame;
use redcloak_commands::table::{self, Resolved};
use redcloak_e2e::Stack;

fn text(f: &Frame) -> String {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("not text: {other:?}"),
    }
}

#[test]
fn every_redis_command_and_subcommand_has_a_row() {
    let stack = Stack::start();
    let Frame::Array(commands) = stack.direct().cmd(&[b"COMMAND"]).unwrap() else {
        panic!()
    };
    let mut missing = Vec::new();
    let mut arity_mismatch = Vec::new();
    let mut checked = 0;
    for c in &commands {
        let Frame::Array(info) = c else { panic!() };
        let name = text(&info[0]);
        let Frame::Integer(arity) = info[1] else {
            panic!()
        };
        let args = vec![Bytes::from(name.clone())];
        let subs = match info.get(9) {
            Some(Frame::Array(subs)) => subs.clone(),
            _ => Vec::new(),
        };
        if subs.is_empty() {
            match table::resolve(&args) {
                Resolved::Known { spec, .. } => {
                    if i64::from(spec.arity) != arity {
                        arity_mismatch
                            .push(format!("{name}: table {} vs Redis {arity}", spec.arity));
                    }
                }
                _ => missing.push(name.clone()),
            }
            checked += 1;
        }
        for sub in subs {
            let Frame::Array(sinfo) = sub else { panic!() };
            let full = text(&sinfo[0]); // "client|setname"
            let Frame::Integer(sarity) = sinfo[1] else {
                panic!()
            };
            let (parent, child) = full.split_once('|').unwrap();
            match table::resolve(&[
                Bytes::from(parent.to_owned()),
                Bytes::from(child.to_owned()),
            ]) {
                // CLUSTER: one row refuses every subcommand.
                Resolved::Known { spec, parent: None }
                    if spec.name.eq_ignore_ascii_case(parent) => {}
                Resolved::Known { spec, .. } => {
                    if i64::from(spec.arity) != sarity {
                        arity_mismatch
                            .push(format!("{full}: table {} vs Redis {sarity}", spec.arity));
                    }
                }
                // A container whose every subcommand is refused by one rule (CLUSTER) is a row too.
                Resolved::UnknownSubcommand(p)
                    if matches!(p.action, table::Action::Refuse(_)) && p.subcommands.is_empty() => {
                }
                _ => missing.push(full.clone()),
            }
            checked += 1;
        }
    }
    assert!(
        checked > 300,
        "only {checked} commands listed: is this Redis 7?"
    );
    assert!(
        missing.is_empty(),
        "commands without a row in the table: {missing:?}"
    );
    assert!(
        arity_mismatch.is_empty(),
        "arity differs from Redis: {arity_mismatch:?}"
    );
}

#[test]
fn pass_through_commands_answer_exactly_as_redis_does() {
    let stack = Stack::start();
    let mut proxy = stack.plain();
    let mut direct = stack.direct();
    let setup: &[&[&str]] = &[
        &["SET", "k", "v", "EX", "1000"],
        &["RPUSH", "l", "a", "b"],
        &["HSET", "h", "f", "v"],
    ];
    for args in setup {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        proxy.cmd(&bytes).unwrap();
    }
    let cases: &[&[&str]] = &[
        &["EXISTS", "k", "l", "h", "nope"],
        &["TYPE", "l"],
        &["TYPE", "h"],
        &["TYPE", "nope"],
        &["LLEN", "l"],
        &["HLEN", "h"],
        &["HKEYS", "h"],
        &["HEXISTS", "h", "f"],
        &["DBSIZE"],
        &["SCAN", "0", "COUNT", "100", "TYPE", "list"],
        &["TTL", "nope"],
        &["PERSIST", "l"],
        &["TOUCH", "k", "l"],
        &["OBJECT", "REFCOUNT", "l"],
        &["OBJECT", "FREQ", "l"],
        &["COMMAND", "COUNT"],
        &["COMMAND", "INFO", "GET", "SET"],
        &["COMMAND", "DOCS", "SET"],
        &["COMMAND", "LIST", "FILTERBY", "PATTERN", "x*"],
        &["PING"],
        &["PING", "hello"],
        &["ECHO", "echo"],
        &["SCARD", "nope"],
        &["ZCARD", "nope"],
        &["ZCOUNT", "nope", "0", "1"],
        &["XLEN", "nope"],
        &["PUBSUB", "NUMSUB", "ch"],
        &["PUBSUB", "CHANNELS"],
        &["CLIENT", "GETNAME"],
        &["ACL", "WHOAMI"],
        &["ACL", "CAT", "string"],
        &["MEMORY", "USAGE", "nope"],
        &["SELECT", "99"],
        &["EXPIRE", "l", "notanumber"],
        &["LLEN", "k"],
        &["HLEN", "l"],
        &["WAIT", "0", "0"],
        &["RENAME", "nope", "x"],
        &["ROLE"],
        &["XGROUP", "HELP"],
        &["FUNCTION", "LIST"],
        &[
            "SCRIPT",
            "EXISTS",
            "0000000000000000000000000000000000000000",
        ],
        &["FLUSHDB"],
        &["DBSIZE"],
    ];
    for args in cases {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let through = proxy.cmd(&bytes).unwrap();
        let around = direct.cmd(&bytes).unwrap();
        assert_eq!(
            through,
            around,
            "{args:?}: through redcloak differs from Redis: {}",
            match &through {
                redcloak_commands::resp::Frame::Error(e) => String::from_utf8_lossy(e).into_owned(),
                _ => String::new(),
            }
        );
    }
}
