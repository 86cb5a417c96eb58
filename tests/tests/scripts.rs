//! Scripts and functions through redcloak (DESIGN.md §4a, docs/scripting.md): their replies
//! and errors side by side with a plain Redis, in RESP2 and RESP3; their atomicity under
//! concurrency, through one redcloak and through two in front of the same Redis; a script
//! that fails half way; scratch keys left by a killed redcloak; and that Redis never receives
//! a script or a plaintext value.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use redcloak_commands::resp::Frame;
use redcloak_e2e::diff::{converse, normalize, show, show_step, Monitor, PlainRedis, Step};
use redcloak_e2e::{wait_for, Redcloak, Stack};

/// `EVAL body numkeys keys… args…` (or another script command) as one command.
fn script(cmd: &str, body: &str, keys: &[&str], args: &[&str]) -> Vec<Vec<u8>> {
    let mut c = vec![
        cmd.as_bytes().to_vec(),
        body.as_bytes().to_vec(),
        keys.len().to_string().into_bytes(),
    ];
    c.extend(keys.iter().map(|k| k.as_bytes().to_vec()));
    c.extend(args.iter().map(|a| a.as_bytes().to_vec()));
    c
}

fn eval(body: &str, keys: &[&str], args: &[&str]) -> Vec<Vec<u8>> {
    script("EVAL", body, keys, args)
}

fn words(line: &str) -> Vec<Vec<u8>> {
    line.split_whitespace()
        .map(|w| w.as_bytes().to_vec())
        .collect()
}

fn sha1_of(stack_or_plain: std::net::SocketAddr, body: &str) -> String {
    let r = converse(
        stack_or_plain,
        &[Step::Pipeline(vec![vec![
            b"SCRIPT".to_vec(),
            b"LOAD".to_vec(),
            body.as_bytes().to_vec(),
        ]])],
    );
    match &r[0][0].frame {
        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("SCRIPT LOAD: {other:?}"),
    }
}

const LIB: &str = "#!lua name=rclib
redis.register_function('rc_set', function(keys, args) return redis.call('SET', keys[1], args[1]) end)
redis.register_function{function_name='rc_get', callback=function(keys, args) return redis.call('GET', keys[1]) end, flags={'no-writes'}}
redis.register_function('rc_incr', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)";

const ONE: &str = "#!lua name=rcone
redis.register_function('rc_one', function(keys, args) return #keys + #args end)";

/// The table: each case is a list of pipelines; each pipeline starts from an empty keyspace
/// (FLUSHALL) on both sides.
fn cases(sha: &str) -> Vec<Vec<Vec<Vec<u8>>>> {
    let marker = "scriptSecretArgv";
    vec![
        // redis.call / redis.pcall, replies and errors.
        vec![
            eval("return redis.call('SET', KEYS[1], ARGV[1])", &["k"], &[marker]),
            eval("return redis.call('GET', KEYS[1])", &["k"], &[]),
            eval("return redis.call('GET', KEYS[1])", &["missing"], &[]),
            eval("return redis.call('INCR', KEYS[1])", &["k"], &[]),
            eval("return redis.pcall('INCR', KEYS[1])", &["k"], &[]),
            eval(
                "local r = redis.pcall('INCR', KEYS[1]); return {type(r), r.err}",
                &["k"],
                &[],
            ),
            eval("return redis.call('LPUSH', KEYS[1], 'x')", &["k"], &[]),
            eval("return redis.call('NOSUCHCOMMAND', KEYS[1])", &["k"], &[]),
            eval("return redis.call('GET')", &[], &[]),
            eval("return redis.call('MULTI')", &[], &[]),
            eval("return redis.call()", &[], &[]),
            eval("return redis.call('SET', KEYS[1], {})", &["k"], &[]),
            eval("error('plain lua error')", &[], &[]),
            eval("return nosuchglobal", &[], &[]),
            eval("return (", &[], &[]),
            eval("return 1", &["a", "b"], &["c"]),
            script("EVAL", "return 1", &[], &[]).into_iter().take(2).collect(),
            vec![b"EVAL".to_vec(), b"return 1".to_vec(), b"x".to_vec()],
            vec![b"EVAL".to_vec(), b"return 1".to_vec(), b"3".to_vec(), b"a".to_vec()],
            vec![b"EVAL".to_vec(), b"return 1".to_vec(), b"-1".to_vec()],
        ],
        // error_reply / status_reply / {ok=} / {err=}.
        vec![
            eval("return redis.error_reply('My Error')", &[], &[]),
            eval("return redis.error_reply('WRONGTHING went wrong')", &[], &[]),
            eval("return redis.status_reply('DONE')", &[], &[]),
            eval("return {ok='fine'}", &[], &[]),
            eval("return {err='Bad\r\nthing'}", &[], &[]),
            eval("return {err='ERR custom'}", &[], &[]),
            eval("error({err='Raised table'})", &[], &[]),
            eval("return redis.pcall('GET', 'k', 'extra')", &[], &[]),
        ],
        // Lua → RESP conversion.
        vec![
            eval("return 3.99", &[], &[]),
            eval("return -2.5", &[], &[]),
            eval("return 1e20", &[], &[]),
            eval("return 0/0", &[], &[]),
            eval("return true", &[], &[]),
            eval("return false", &[], &[]),
            eval("return nil", &[], &[]),
            eval("return {1, 2.7, 'x', false, 'y'}", &[], &[]),
            eval("return {1, nil, 3}", &[], &[]),
            eval("return {1, {2, {3, 'a', {}}}, {}}", &[], &[]),
            eval("return {a=1, b=2}", &[], &[]),
            eval("return 'str'", &[], &[]),
            eval("return {{ok='in'}, {err='inner'}}", &[], &[]),
            eval("return redis.sha1hex('abc')", &[], &[]),
            eval("return {KEYS[1], KEYS[2], ARGV[1], #ARGV}", &["k1", "k2"], &["a1", "a2"]),
            eval("return redis.REDIS_VERSION", &[], &[]),
            eval("return cjson.encode({a={1,2,3}})", &[], &[]),
            eval(
                "return cmsgpack.unpack(cmsgpack.pack({1, 'two', 3.5}))",
                &[],
                &[],
            ),
        ],
        // RESP → Lua and RESP3 inside the script (one-field hashes: the order of a larger
        // hash's fields is the order of its hash table, which ciphertexts change).
        vec![
            eval(
                "redis.call('HSET', KEYS[1], 'f1', 'v1'); return {redis.call('HGETALL', KEYS[1]), redis.call('HSET', KEYS[1], 'f2', 'v2'), redis.call('HMGET', KEYS[1], 'f2', 'f1', 'f3')}",
                &["h"],
                &[],
            ),
            eval("redis.setresp(3); redis.call('HDEL', KEYS[1], 'f2'); return redis.call('HGETALL', KEYS[1])", &["h"], &[]),
            eval(
                "redis.setresp(3); local m = redis.call('HGETALL', KEYS[1]); return m.map.f1",
                &["h"],
                &[],
            ),
            eval("redis.setresp(3); return redis.call('GET', 'nokey')", &[], &[]),
            eval("redis.setresp(3); return {double=3.5}", &[], &[]),
            eval("return {double=3.5}", &[], &[]),
            eval("redis.setresp(3); return redis.call('PING')", &[], &[]),
            eval("local t = redis.call('TYPE', KEYS[1]); return t", &["h"], &[]),
            eval("return redis.call('TYPE', KEYS[1]).ok", &["h"], &[]),
        ],
        // Keys touched without declaring them.
        vec![
            eval(
                "redis.call('SET', 'undeclared', ARGV[1]); redis.call('RPUSH', 'undeclared:list', ARGV[1], 'b'); return {redis.call('GET', 'undeclared'), redis.call('LRANGE', 'undeclared:list', 0, -1)}",
                &[],
                &[marker],
            ),
            words("GET undeclared"),
            words("LRANGE undeclared:list 0 -1"),
            words("DBSIZE"),
        ],
        // Emulated read-modify-write commands inside scripts.
        vec![
            eval(
                "redis.call('SET', KEYS[1], '10'); local a = redis.call('INCRBY', KEYS[1], 5); local b = redis.call('APPEND', KEYS[1], '7'); local c = redis.call('INCR', KEYS[1]); return {a, b, c, redis.call('GET', KEYS[1]), redis.call('STRLEN', KEYS[1])}",
                &["n"],
                &[],
            ),
            eval(
                "return {redis.call('INCRBYFLOAT', KEYS[1], '0.5'), redis.call('HINCRBY', KEYS[2], 'f', 3), redis.call('HINCRBY', KEYS[2], 'f', -1), redis.call('GETRANGE', KEYS[1], 0, 2)}",
                &["n", "h"],
                &[],
            ),
            eval(
                "redis.call('RPUSH', KEYS[1], 'a', 'b', 'a', 'c'); return {redis.call('LREM', KEYS[1], 0, 'a'), redis.call('LPOS', KEYS[1], 'c'), redis.call('LRANGE', KEYS[1], 0, -1)}",
                &["l"],
                &[],
            ),
            eval("return redis.call('APPEND', KEYS[1], 'x')", &["l"], &[]),
            words("GET n"),
            words("HGET h f"),
        ],
        // Member commands inside scripts (deterministic member encryption).
        vec![
            eval(
                "return {redis.call('SADD', KEYS[1], 'a', 'b', 'c', 'a'), redis.call('SISMEMBER', KEYS[1], 'b'), redis.call('SCARD', KEYS[1]), redis.call('SREM', KEYS[1], 'c'), redis.call('SMISMEMBER', KEYS[1], 'a', 'c')}",
                &["s"],
                &[],
            ),
            eval(
                "redis.call('ZADD', KEYS[1], 1, 'one', 2, 'two', 3, 'three'); return {redis.call('ZRANGE', KEYS[1], 0, -1), redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'), redis.call('ZSCORE', KEYS[1], 'two'), redis.call('ZINCRBY', KEYS[1], 5, 'one'), redis.call('ZRANK', KEYS[1], 'one'), redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', 2)}",
                &["z"],
                &[],
            ),
            eval(
                "redis.setresp(3); return {redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES'), redis.call('ZSCORE', KEYS[1], 'two'), redis.call('SMEMBERS', KEYS[2])}",
                &["z", "empty-set"],
                &[],
            ),
            eval("return redis.call('ZPOPMIN', KEYS[1])", &["z"], &[]),
            words("ZRANGE z 0 -1 WITHSCORES"),
            words("SISMEMBER s a"),
        ],
        // Writes with TTLs, as Redis leaves them (absolute times, so no clock enters).
        vec![
            eval(
                "redis.call('SET', KEYS[1], 'v', 'EXAT', 4102444800); redis.call('SET', KEYS[2], 'v'); redis.call('EXPIREAT', KEYS[2], 4102444801); redis.call('SET', KEYS[3], 'v', 'EXAT', 4102444802); redis.call('SET', KEYS[3], 'w'); redis.call('SET', KEYS[4], '1', 'EXAT', 4102444803); redis.call('INCR', KEYS[4]); redis.call('APPEND', KEYS[4], '0'); return {redis.call('EXPIRETIME', KEYS[1]), redis.call('TTL', KEYS[3])}",
                &["t1", "t2", "t3", "t4"],
                &[],
            ),
            words("EXPIRETIME t1"),
            words("EXPIRETIME t2"),
            words("EXPIRETIME t3"),
            words("EXPIRETIME t4"),
            words("GET t4"),
            eval(
                "redis.call('SET', KEYS[1], 'new', 'KEEPTTL'); redis.call('PERSIST', KEYS[2]); redis.call('HSET', KEYS[3], 'f', 'v'); redis.call('EXPIREAT', KEYS[3], 4102444810); redis.call('HINCRBY', KEYS[3], 'n', 1); return 1",
                &["t1", "t2", "h"],
                &[],
            ),
            words("EXPIRETIME t1"),
            words("GET t1"),
            words("EXPIRETIME t2"),
            words("EXPIRETIME h"),
            words("HMGET h f n"),
        ],
        // A script that fails half way: the writes before the error stay.
        vec![
            words("SET text notanumber"),
            eval(
                "redis.call('SET', KEYS[1], 'written'); redis.call('RPUSH', KEYS[3], 'x'); redis.call('INCR', KEYS[2]); redis.call('SET', KEYS[1], 'never'); return 1",
                &["first", "text", "list"],
                &[],
            ),
            words("GET first"),
            words("LRANGE list 0 -1"),
            eval(
                "redis.call('SET', KEYS[1], 'a'); redis.pcall('INCR', KEYS[2]); redis.call('SET', KEYS[1], 'b'); return redis.call('GET', KEYS[1])",
                &["first", "text"],
                &[],
            ),
            eval(
                "redis.call('DEL', KEYS[1]); return redis.error_reply('after a delete')",
                &["first"],
                &[],
            ),
            words("EXISTS first"),
        ],
        // The script cache: SCRIPT LOAD / EXISTS / FLUSH, EVALSHA, NOSCRIPT, EVALSHA_RO.
        vec![
            vec![b"SCRIPT".to_vec(), b"LOAD".to_vec(), b"return 'loaded'".to_vec()],
            vec![b"EVALSHA".to_vec(), sha.as_bytes().to_vec(), b"0".to_vec()],
            vec![
                b"EVALSHA".to_vec(),
                sha.to_ascii_uppercase().into_bytes(),
                b"0".to_vec(),
            ],
            vec![b"EVALSHA_RO".to_vec(), sha.as_bytes().to_vec(), b"0".to_vec()],
            vec![
                b"SCRIPT".to_vec(),
                b"EXISTS".to_vec(),
                sha.as_bytes().to_vec(),
                b"0000000000000000000000000000000000000000".to_vec(),
            ],
            words("EVALSHA 0000000000000000000000000000000000000000 0"),
            words("EVALSHA tooshort 0"),
            words("SCRIPT FLUSH"),
            vec![b"SCRIPT".to_vec(), b"EXISTS".to_vec(), sha.as_bytes().to_vec()],
            vec![b"EVALSHA".to_vec(), sha.as_bytes().to_vec(), b"0".to_vec()],
            eval("return 'loaded'", &[], &[]),
            vec![b"EVALSHA".to_vec(), sha.as_bytes().to_vec(), b"0".to_vec()],
            words("SCRIPT FLUSH ASYNC"),
            words("SCRIPT FLUSH NOW"),
            vec![b"SCRIPT".to_vec(), b"LOAD".to_vec(), b"return (".to_vec()],
        ],
        // EVAL_RO refuses writes; shebang flags.
        vec![
            words("SET k v"),
            script("EVAL_RO", "return redis.call('GET', KEYS[1])", &["k"], &[]),
            script("EVAL_RO", "return redis.call('SET', KEYS[1], 'x')", &["k"], &[]),
            script("EVAL_RO", "return redis.call('INCR', KEYS[1])", &["k"], &[]),
            script("EVAL_RO", "return redis.pcall('DEL', KEYS[1])", &["k"], &[]),
            eval(
                "#!lua flags=no-writes\nreturn redis.call('SET', KEYS[1], 'x')",
                &["k"],
                &[],
            ),
            script("EVAL_RO", "#!lua\nreturn 1", &[], &[]),
            script("EVAL_RO", "#!lua flags=no-writes\nreturn redis.call('GET', KEYS[1])", &["k"], &[]),
            eval("#!lua flags=bogus\nreturn 1", &[], &[]),
            words("GET k"),
        ],
        // Functions: FUNCTION LOAD / FCALL / FCALL_RO / LIST / DELETE.
        vec![
            words("FUNCTION FLUSH"),
            vec![b"FUNCTION".to_vec(), b"LOAD".to_vec(), LIB.as_bytes().to_vec()],
            vec![b"FUNCTION".to_vec(), b"LOAD".to_vec(), LIB.as_bytes().to_vec()],
            vec![b"FUNCTION".to_vec(), b"LOAD".to_vec(), ONE.as_bytes().to_vec()],
            script("FCALL", "rc_set", &["fk"], &[marker]),
            script("FCALL", "rc_get", &["fk"], &[]),
            script("FCALL_RO", "rc_get", &["fk"], &[]),
            script("FCALL_RO", "rc_set", &["fk"], &["x"]),
            script("FCALL", "rc_incr", &["fk"], &["1"]),
            script("FCALL", "rc_incr", &["fn"], &["41"]),
            script("FCALL", "rc_incr", &["fn"], &["1"]),
            script("FCALL", "rc_one", &["a", "b"], &["c"]),
            script("FCALL", "nosuchfunction", &[], &[]),
            words("FUNCTION LIST LIBRARYNAME rcone"),
            words("FUNCTION LIST LIBRARYNAME rcone WITHCODE"),
            words("FUNCTION DELETE rcone"),
            words("FUNCTION DELETE rcone"),
            script("FCALL", "rc_one", &[], &[]),
            words("FUNCTION LIST LIBRARYNAME rcone"),
            words("FUNCTION DELETE rclib"),
            words("FUNCTION LIST"),
        ],
        // Function libraries belong to no database.
        vec![
            words("FUNCTION FLUSH"),
            vec![b"FUNCTION".to_vec(), b"LOAD".to_vec(), ONE.as_bytes().to_vec()],
            words("SELECT 3"),
            words("FUNCTION LIST"),
            script("FCALL", "rc_one", &["x"], &[]),
            words("SELECT 0"),
            words("FUNCTION LIST"),
            words("SELECT 3"),
            words("FUNCTION DELETE rcone"),
            words("SELECT 0"),
            words("FUNCTION LIST"),
            script("FCALL", "rc_one", &["x"], &[]),
            words("SELECT 5"),
            vec![b"FUNCTION".to_vec(), b"LOAD".to_vec(), ONE.as_bytes().to_vec()],
            words("SELECT 0"),
            words("FUNCTION LIST"),
            words("FUNCTION FLUSH"),
        ],
        // A command the script's redis.pcall sends that redcloak answers itself (arguments
        // Redis would reject, a payload it must not forward) leaves its keys as they were.
        vec![
            words("XADD st 1-1 f v"),
            words("SET s keep"),
            eval(
                "local r = redis.pcall('XADD', KEYS[1], 'MAXLEN', 'x', '*', 'f', 'v'); \
                 return {r.err, redis.call('XLEN', KEYS[1])}",
                &["st"],
                &[],
            ),
            eval(
                "redis.pcall('RESTORE', KEYS[1], 0, 'not a payload', 'REPLACE'); \
                 return redis.call('GET', KEYS[1])",
                &["s"],
                &[],
            ),
            words("XLEN st"),
            words("GET s"),
        ],
        // Function libraries are not keys: KEYS, SCAN, DBSIZE, RANDOMKEY do not show where
        // redcloak keeps them, and FLUSHALL / FLUSHDB keep them.
        vec![
            vec![b"FUNCTION".to_vec(), b"LOAD".to_vec(), ONE.as_bytes().to_vec()],
            words("KEYS *"),
            words("SCAN 0"),
            words("DBSIZE"),
            words("RANDOMKEY"),
            words("SET a 1"),
            words("KEYS *"),
            words("SCAN 0 MATCH *"),
            words("DBSIZE"),
            words("RANDOMKEY"),
            words("FLUSHALL"),
            script("FCALL", "rc_one", &["x"], &[]),
            words("FLUSHDB ASYNC"),
            words("DBSIZE"),
            script("FCALL_RO", "rc_one", &[], &[]),
            vec![b"FUNCTION".to_vec(), b"LOAD".to_vec(), ONE.as_bytes().to_vec()],
            words("FUNCTION FLUSH"),
            script("FCALL", "rc_one", &["x"], &[]),
        ],
        // The order of Redis's argument checks: EVALSHA answers NOSCRIPT before numkeys for a
        // SHA that is not 40 characters long, and after it for one that is; FCALL looks the
        // function up before numkeys (whose errors it words its own way), then refuses a
        // write function under FCALL_RO; function names match without regard to case.
        vec![
            words("FUNCTION FLUSH"),
            vec![b"FUNCTION".to_vec(), b"LOAD".to_vec(), LIB.as_bytes().to_vec()],
            words("EVALSHA tooshort x"),
            words("EVALSHA tooshort 5"),
            words("EVALSHA_RO tooshort -1"),
            words("EVALSHA 0000000000000000000000000000000000000000 x"),
            words("EVALSHA_RO 0000000000000000000000000000000000000000 5"),
            words("EVALSHA 0000000000000000000000000000000000000000 1 k"),
            words(&format!("EVALSHA {sha} x")),
            words(&format!("EVALSHA {sha} 2 k")),
            words(&format!("EVALSHA_RO {} -1", sha.to_uppercase())),
            words("EVAL return( x"),
            words("EVAL return( 0"),
            words("FCALL nosuch x"),
            words("FCALL nosuch 5"),
            words("FCALL_RO nosuch -1"),
            words("FCALL rc_set x"),
            words("FCALL rc_set 01"),
            words("FCALL rc_set 3 a"),
            words("FCALL_RO rc_get -1"),
            words("FCALL_RO rc_set x"),
            words("FCALL_RO rc_set 0"),
            words("FCALL RC_GET 1 nokey"),
            words("FCALL_RO Rc_Get 1 nokey"),
            words("FUNCTION FLUSH"),
        ],
        // FUNCTION's own argument checks, each with Redis's words and in Redis's order.
        vec![
            words("FUNCTION FLUSH x"),
            words("FUNCTION FLUSH sync x"),
            words("FuNcTiOn FlUsH a b"),
            words("FUNCTION FLUSH async"),
            words("FUNCTION FLUSH SYNC"),
            words("FUNCTION RESTORE x"),
            words("FUNCTION RESTORE x y"),
            words("FUNCTION RESTORE x append"),
            words("FUNCTION RESTORE x append z"),
            words("FUNCTION restore x y z"),
            words("FUNCTION DUMP x"),
            words("FUNCTION STATS x"),
            words("FUNCTION LIST x"),
            words("FUNCTION LIST WITHCODE withcode"),
            words("FUNCTION LIST LIBRARYNAME"),
            words("FUNCTION LIST libraryname a LIBRARYNAME b"),
            words("FUNCTION LIST WITHCODE LIBRARYNAME x"),
            words("FUNCTION LOAD x"),
            words("FUNCTION LOAD replace"),
            words("FUNCTION LOAD replace replace x"),
            words("FUNCTION LOAD REPLACE x y"),
            words("FUNCTION LOAD x y"),
            words("FUNCTION DELETE"),
            words("FUNCTION DELETE a b"),
            words("FUNCTION DELETE nosuch"),
            words("FUNCTION"),
            words("FUNCTION NOSUCH"),
            vec![b"FUNCTION".to_vec(), b"FLUSH".to_vec(), b"SYNC\0x".to_vec()],
            vec![b"FUNCTION".to_vec(), b"LIST".to_vec(), b"ab\0cd".to_vec()],
            vec![
                b"FUNCTION".to_vec(),
                b"LOAD".to_vec(),
                b"REPLACE\0x".to_vec(),
                b"nope\0y".to_vec(),
                ONE.as_bytes().to_vec(),
            ],
            words("FUNCTION FLUSH"),
        ],
    ]
}

/// Every case of [`cases`] through redcloak and on a plain Redis, RESP2 and RESP3; the
/// replies must be byte for byte the same. Then: Redis received no script and no argument in
/// plaintext, and holds only ciphertext.
#[test]
fn scripts_reply_as_redis_does_resp2_and_resp3() {
    let stack = Stack::start();
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    let mut monitor = Monitor::start(&stack);
    let sha = sha1_of(([127, 0, 0, 1], plain.port).into(), "return 'loaded'");
    assert_eq!(
        sha1_of(stack.proxy.addr, "return 'loaded'"),
        sha,
        "SCRIPT LOAD's SHA1"
    );
    let mut compared = 0;
    for proto in ["2", "3"] {
        for (n, case) in cases(&sha).into_iter().enumerate() {
            let mut steps = vec![Step::Pipeline(vec![
                words(&format!("HELLO {proto}")),
                words("FLUSHALL"),
                words("SCRIPT FLUSH"),
            ])];
            steps.extend(case.into_iter().map(|c| Step::Pipeline(vec![c])));
            let theirs = converse(([127, 0, 0, 1], plain.port).into(), &steps);
            let ours = converse(stack.proxy.addr, &steps);
            for (i, (t, o)) in theirs.iter().zip(&ours).enumerate().skip(1) {
                let same = t.len() == o.len() && t.iter().zip(o).all(|(a, b)| a.raw == b.raw);
                assert!(
                    same || normalize(t) == normalize(o),
                    "RESP{proto}, case #{n}, step {i}: {}\n  Redis:    {}\n  redcloak: {}",
                    show_step(&steps[i]),
                    show(t),
                    show(o)
                );
                compared += 1;
            }
        }
    }
    assert!(compared > 250, "only {compared} replies compared");
    for name in [
        "EVAL",
        "EVALSHA",
        "EVAL_RO",
        "EVALSHA_RO",
        "FCALL",
        "FCALL_RO",
        "SCRIPT",
        "FUNCTION",
    ] {
        // Only redcloak's own reads and writes of its function library (function_store).
        let lines: Vec<String> = monitor
            .lines_of(name)
            .into_iter()
            .filter(|l| !l.contains("redcloak_internal"))
            .collect();
        assert!(
            lines.is_empty(),
            "Redis received {name}: {:?}",
            lines.first()
        );
    }
    monitor.assert_never_seen(&[
        "scriptSecretArgv",
        "register_function('rc",
        "redis.call",
        "rclib",
    ]);
    // The last case leaves nothing; write once more and audit what Redis holds.
    let mut p = stack.plain();
    for (body, keys) in [
        ("redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', 'undeclared', ARGV[1]); return 1", vec!["s1"]),
        ("redis.call('SADD', KEYS[1], ARGV[1]); redis.call('ZADD', KEYS[2], 1, ARGV[1]); redis.call('HSET', KEYS[3], 'f', ARGV[1]); redis.call('RPUSH', KEYS[4], ARGV[1]); redis.call('XADD', KEYS[5], '*', 'f', ARGV[1]); redis.call('INCR', KEYS[6]); return 1", vec!["set", "zset", "hash", "list", "stream", "counter"]),
    ] {
        let c = eval(body, &keys, &["scriptSecretArgv"]);
        let args: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
        assert_eq!(p.cmd(&args).unwrap(), Frame::Integer(1));
    }
    assert_eq!(
        p.cmd(&[b"FUNCTION", b"LOAD", LIB.as_bytes()]).unwrap(),
        Frame::Bulk(Bytes::from_static(b"rclib"))
    );
    assert!(stack.assert_all_values_encrypted() >= 8);
    monitor.assert_never_seen(&["scriptSecretArgv", "register_function('rc", "rclib"]);
}

// === atomicity ===

/// A script run the way client libraries do it: EVALSHA, and EVAL when the SHA is unknown.
struct Script {
    body: &'static str,
    sha: String,
}

impl Script {
    fn new(c: &mut redis::Connection, body: &'static str) -> Script {
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(body)
            .query(c)
            .expect("SCRIPT LOAD");
        Script { body, sha }
    }

    fn run<T: redis::FromRedisValue>(
        &self,
        c: &mut redis::Connection,
        keys: &[&str],
        args: &[String],
    ) -> redis::RedisResult<T> {
        let by_sha = redis::cmd("EVALSHA")
            .arg(&self.sha)
            .arg(keys.len())
            .arg(keys)
            .arg(args)
            .query(c);
        match by_sha {
            Err(e) if e.code() == Some("NOSCRIPT") => redis::cmd("EVAL")
                .arg(self.body)
                .arg(keys.len())
                .arg(keys)
                .arg(args)
                .query(c),
            other => other,
        }
    }
}

const INCR_SCRIPT: &str =
    "local v = tonumber(redis.call('GET', KEYS[1]) or '0') + 1; redis.call('SET', KEYS[1], v); return v";

fn connect(addr: std::net::SocketAddr) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}"))
        .expect("client")
        .get_connection_with_timeout(Duration::from_secs(10))
        .expect("connect through redcloak")
}

/// Readers that check, until `stop`, that `key` always holds a whole number between the
/// last one they saw and `max` (never a half-written or torn value, never going back).
fn readers(
    addrs: &[std::net::SocketAddr],
    key: &'static str,
    max: i64,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<usize>> {
    addrs
        .iter()
        .map(|&addr| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = connect(addr);
                let mut last = 0;
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    let v: Option<String> = redis::cmd("GET").arg(key).query(&mut c).unwrap();
                    let n: i64 = v.map_or(0, |v| v.parse().expect("a whole number"));
                    assert!((last..=max).contains(&n), "a reader saw {n} after {last}");
                    last = n;
                    reads += 1;
                }
                reads
            })
        })
        .collect()
}

fn run_incrementers(
    addrs: &[std::net::SocketAddr],
    clients: usize,
    runs: usize,
    key: &'static str,
) {
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let addr = addrs[i % addrs.len()];
            std::thread::spawn(move || {
                let mut c = connect(addr);
                let incr = Script::new(&mut c, INCR_SCRIPT);
                let mut last = 0;
                for _ in 0..runs {
                    let v: i64 = incr.run(&mut c, &[key], &[]).expect("the script");
                    assert!(v > last, "a client's script returned {v} after {last}");
                    last = v;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("an incrementing client failed");
    }
}

/// 20 clients × 500 runs of a read-increment-write script on one key end at exactly 10,000,
/// while readers see only whole numbers that never go back.
#[test]
fn twenty_clients_increment_one_key_by_script_exactly() {
    let stack = Stack::start();
    let stop = Arc::new(AtomicBool::new(false));
    let readers = readers(
        &[stack.proxy.addr, stack.proxy.addr],
        "counter",
        10_000,
        &stop,
    );
    run_incrementers(&[stack.proxy.addr], 20, 500, "counter");
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().expect("a reader failed") > 0);
    }
    let mut c = stack.client();
    let total: i64 = redis::cmd("GET").arg("counter").query(&mut c).unwrap();
    assert_eq!(total, 10_000);
    assert_eq!(stack.assert_all_values_encrypted(), 1);
}

/// Two redcloaks in front of the same Redis, their clients interleaving scripts on the same
/// keys: every increment counts, and a transfer between two keys (a script that moves an
/// amount from one to the other) is never seen half done by readers of either redcloak.
#[test]
fn two_redcloaks_interleave_scripts_without_intermediate_state() {
    let stack = Stack::start();
    let second = Redcloak::start(stack.dir.path(), &stack.env);
    let addrs = [stack.proxy.addr, second.addr];
    let mut c = stack.client();
    redis::cmd("MSET")
        .arg(&["a", "1000", "b", "1000"])
        .query::<()>(&mut c)
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let counter_readers = readers(&addrs, "counter", 2_000, &stop);
    let sum_readers: Vec<_> = addrs
        .iter()
        .map(|&addr| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = connect(addr);
                let mut reads = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (a, b): (i64, i64) =
                        redis::cmd("MGET").arg(&["a", "b"]).query(&mut c).unwrap();
                    assert_eq!(
                        a + b,
                        2000,
                        "a reader saw a transfer half done: a={a} b={b}"
                    );
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    const TRANSFER: &str = "local n = tonumber(ARGV[1]); local a = tonumber(redis.call('GET', KEYS[1])); redis.call('SET', KEYS[1], a - n); redis.call('INCRBY', KEYS[2], n); return a - n";
    let movers: Vec<_> = (0..6)
        .map(|i| {
            let addr = addrs[i % 2];
            std::thread::spawn(move || {
                let mut c = connect(addr);
                let transfer = Script::new(&mut c, TRANSFER);
                for j in 0..100 {
                    let (from, to) = if (i + j) % 2 == 0 {
                        ("a", "b")
                    } else {
                        ("b", "a")
                    };
                    let _: i64 = transfer
                        .run(&mut c, &[from, to], &[(1 + j % 7).to_string()])
                        .expect("transfer");
                }
            })
        })
        .collect();
    run_incrementers(&addrs, 10, 200, "counter");
    for m in movers {
        m.join().expect("a transfer client failed");
    }
    stop.store(true, Ordering::Relaxed);
    for r in counter_readers.into_iter().chain(sum_readers) {
        assert!(r.join().expect("a reader failed") > 0);
    }
    let total: i64 = redis::cmd("GET").arg("counter").query(&mut c).unwrap();
    assert_eq!(total, 2_000);
    let (a, b): (i64, i64) = redis::cmd("MGET").arg(&["a", "b"]).query(&mut c).unwrap();
    assert_eq!(a + b, 2000);
    assert_eq!(stack.assert_all_values_encrypted(), 3);
}

/// Mutual exclusion built on a lock script (SET NX PX to acquire, compare-and-delete to
/// release), with a non-atomic read-then-write counter in the critical section: every
/// release finds its own token, no two clients are ever inside at once, no update is lost.
#[test]
fn a_lock_script_gives_mutual_exclusion() {
    let stack = Stack::start();
    let second = Redcloak::start(stack.dir.path(), &stack.env);
    let addrs = [stack.proxy.addr, second.addr];
    const ACQUIRE: &str = "return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])";
    const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
    let inside = Arc::new(AtomicUsize::new(0));
    let (clients, rounds) = (8, 40);
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let inside = inside.clone();
            let addr = addrs[i % 2];
            std::thread::spawn(move || {
                let mut c = connect(addr);
                let (acquire, release) =
                    (Script::new(&mut c, ACQUIRE), Script::new(&mut c, RELEASE));
                for round in 0..rounds {
                    let token = format!("token-{i}-{round}");
                    loop {
                        let got: Option<String> = acquire
                            .run(&mut c, &["lock"], &[token.clone(), "30000".into()])
                            .expect("acquire");
                        if got.is_some() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    assert_eq!(
                        inside.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two holders at once"
                    );
                    let n: Option<i64> = redis::cmd("GET").arg("guarded").query(&mut c).unwrap();
                    redis::cmd("SET")
                        .arg("guarded")
                        .arg(n.unwrap_or(0) + 1)
                        .query::<()>(&mut c)
                        .unwrap();
                    inside.fetch_sub(1, Ordering::SeqCst);
                    let released: i64 = release.run(&mut c, &["lock"], &[token]).expect("release");
                    assert_eq!(released, 1, "the lock was not ours when we released it");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a lock client failed");
    }
    let mut c = stack.client();
    let n: i64 = redis::cmd("GET").arg("guarded").query(&mut c).unwrap();
    assert_eq!(n, (clients * rounds) as i64);
    // A release with the wrong token deletes nothing.
    let _: () = redis::cmd("SET")
        .arg("lock")
        .arg("someone")
        .query(&mut c)
        .unwrap();
    let released: i64 = Script::new(&mut c, RELEASE)
        .run(&mut c, &["lock"], &["me".into()])
        .unwrap();
    assert_eq!(released, 0);
    stack.assert_all_values_encrypted();
}

/// A redcloak killed (SIGKILL) while scripts are in the middle of their work leaves scratch
/// copies in Redis; a restarted redcloak never shows them (KEYS, SCAN)
/// and its janitor deletes them once they are old enough to belong to no running script.
#[test]
fn scratch_keys_of_a_killed_redcloak_are_hidden_and_swept() {
    let mut stack = Stack::start();
    {
        let mut c = stack.client();
        let _: () = redis::cmd("MSET")
            .arg(&["k0", "v", "k1", "v", "k2", "v"])
            .query(&mut c)
            .unwrap();
    }
    // Each script writes its key (so redcloak copies it to a scratch key), then spins (the
    // time limit would end it after 5 s): redcloak is killed while they spin.
    let spin = "redis.call('SET', KEYS[1], ARGV[1]); while true do end";
    let addr = stack.proxy.addr;
    let clients: Vec<_> = (0..3)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = connect(addr);
                let key = format!("k{i}");
                let r: redis::RedisResult<i64> = redis::cmd("EVAL")
                    .arg(spin)
                    .arg(1)
                    .arg(&key)
                    .arg("spinning")
                    .query(&mut c);
                r.is_err()
            })
        })
        .collect();
    let mut direct = stack.direct();
    let scratch = |direct: &mut redcloak_e2e::Direct| {
        direct
            .keys()
            .into_iter()
            .filter(|k| k.starts_with(b"redcloak:scratch:"))
            .count()
    };
    assert!(
        wait_for(Duration::from_secs(20), || scratch(&mut direct) >= 3),
        "the scripts never made their scratch copies"
    );
    let pid = stack.proxy.pid();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    for c in clients {
        assert!(
            c.join().unwrap(),
            "a script survived its redcloak being killed"
        );
    }
    assert_eq!(
        scratch(&mut direct),
        3,
        "the kill left the scratch copies behind"
    );
    // The script's writes were never committed.
    let mut restarted = Redcloak::start(stack.dir.path(), &stack.env);
    std::mem::swap(&mut stack.proxy, &mut restarted);
    drop(restarted);
    let mut c = stack.client();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(sorted, ["k0", "k1", "k2"], "KEYS through redcloak");
    let scanned: Vec<String> = redis::cmd("SCAN")
        .arg(0)
        .arg("COUNT")
        .arg(1000)
        .query::<(String, Vec<String>)>(&mut c)
        .unwrap()
        .1;
    assert!(
        scanned.iter().all(|k| !k.starts_with("redcloak:")),
        "SCAN shows {scanned:?}"
    );
    let scanned: Vec<String> = redis::cmd("SCAN")
        .arg(0)
        .arg("MATCH")
        .arg("redcloak:*")
        .arg("COUNT")
        .arg(1000)
        .query::<(String, Vec<String>)>(&mut c)
        .unwrap()
        .1;
    assert!(
        scanned.is_empty(),
        "SCAN MATCH redcloak:* shows {scanned:?}"
    );
    for i in 0..3 {
        let v: String = redis::cmd("GET")
            .arg(format!("k{i}"))
            .query(&mut c)
            .unwrap();
        assert_eq!(v, "v", "a killed script's write became visible");
    }
    // The janitor: scratch keys older than a minute belong to no running script.
    assert!(
        wait_for(Duration::from_secs(150), || scratch(&mut direct) == 0),
        "the janitor of the restarted redcloak did not delete the scratch keys:\n{}",
        stack.proxy.log_text()
    );
    assert_eq!(direct.keys().len(), 3);
    stack.assert_all_values_encrypted();
}

// === where the function libraries live ===

fn bulk(b: &'static [u8]) -> Frame {
    Frame::Bulk(Bytes::from_static(b))
}

fn text(f: Frame) -> String {
    redcloak_e2e::diff::show_frames(&[f])
}

fn err_text(f: &Frame) -> String {
    match f {
        Frame::Error(e) => String::from_utf8_lossy(e).into_owned(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// What the client's keyspace shows through redcloak: DBSIZE, RANDOMKEY, KEYS, SCAN.
fn keyspace(p: &mut redcloak_e2e::Plain) -> (Frame, Frame, Frame, Frame) {
    let scan = match p.cmd(&[b"SCAN", b"0", b"COUNT", b"1000"]).unwrap() {
        Frame::Array(mut parts) => parts.pop().unwrap(),
        other => panic!("SCAN: {other:?}"),
    };
    (
        p.cmd(&[b"DBSIZE"]).unwrap(),
        p.cmd(&[b"RANDOMKEY"]).unwrap(),
        p.cmd(&[b"KEYS", b"*"]).unwrap(),
        scan,
    )
}

/// Function libraries live as Redis's own do: they survive FLUSHALL and FLUSHDB (in every
/// database), are no key of the client's keyspace (DBSIZE, RANDOMKEY, KEYS, SCAN, through
/// redcloak and in Redis), are seen by another redcloak in front of the same Redis, are
/// removed by FUNCTION FLUSH and FUNCTION DELETE; redcloak's own Redis library, where they
/// are kept, cannot be seen, called, deleted or dumped by a client; and libraries an older
/// redcloak kept in the hash `redcloak:internal:functions` are moved out of the keyspace the
/// first time they are needed.
#[test]
fn function_libraries_survive_flushall_and_are_no_keys() {
    let stack = Stack::start();
    let mut p = stack.plain();
    let mut direct = stack.direct();
    assert_eq!(
        p.cmd(&[b"FUNCTION", b"LOAD", LIB.as_bytes()]).unwrap(),
        bulk(b"rclib")
    );
    // An empty keyspace, with a library loaded, in both places.
    let empty = (
        Frame::Integer(0),
        Frame::NullBulk,
        Frame::Array(vec![]),
        Frame::Array(vec![]),
    );
    assert_eq!(keyspace(&mut p), empty, "a library is no key");
    assert_eq!(direct.cmd(&[b"DBSIZE"]).unwrap(), Frame::Integer(0));
    for flush in [&b"FLUSHALL"[..], b"FLUSHDB", b"FLUSHALL"] {
        assert_eq!(
            p.cmd(&[b"FCALL", b"rc_set", b"1", b"k", b"v"]).unwrap(),
            Frame::Simple(Bytes::from_static(b"OK"))
        );
        assert_eq!(
            keyspace(&mut p),
            (
                Frame::Integer(1),
                bulk(b"k"),
                Frame::Array(vec![bulk(b"k")]),
                Frame::Array(vec![bulk(b"k")])
            ),
            "only the client's key"
        );
        assert_eq!(
            p.cmd(&[flush]).unwrap(),
            Frame::Simple(Bytes::from_static(b"OK"))
        );
        assert_eq!(
            keyspace(&mut p),
            empty,
            "after {}",
            String::from_utf8_lossy(flush)
        );
        assert_eq!(
            p.cmd(&[b"FCALL_RO", b"rc_get", b"1", b"k"]).unwrap(),
            Frame::NullBulk,
            "the library survived {}",
            String::from_utf8_lossy(flush)
        );
        assert!(
            err_text(&p.cmd(&[b"FUNCTION", b"LOAD", LIB.as_bytes()]).unwrap())
                .contains("already exists"),
            "Redis's answer for a library it still has"
        );
    }
    // FLUSHALL in another database, and from another redcloak, which reads them from Redis.
    assert_eq!(
        p.cmd(&[b"SELECT", b"3"]).unwrap(),
        Frame::Simple(Bytes::from_static(b"OK"))
    );
    p.cmd(&[b"FLUSHALL"]).unwrap();
    let second = Redcloak::start(stack.dir.path(), &stack.env);
    let mut q = redcloak_e2e::Plain::connect(second.addr);
    assert_eq!(
        q.cmd(&[b"FCALL", b"rc_one", b"0"]).unwrap(),
        Frame::Error(Bytes::from_static(b"ERR Function not found"))
    );
    assert_eq!(
        q.cmd(&[b"FCALL", b"rc_incr", b"1", b"n", b"2"]).unwrap(),
        Frame::Integer(2)
    );
    // redcloak's own library: invisible and untouchable for clients.
    for c in [&mut p, &mut q] {
        let list = text(c.cmd(&[b"FUNCTION", b"LIST"]).unwrap());
        assert!(
            list.contains("rclib") && !list.contains("redcloak_internal"),
            "{list}"
        );
        let stats = text(c.cmd(&[b"FUNCTION", b"STATS"]).unwrap());
        assert!(!stats.contains("redcloak_internal"), "{stats}");
        assert_eq!(
            c.cmd(&[b"FCALL_RO", b"redcloak_internal_libraries", b"0"])
                .unwrap(),
            Frame::Error(Bytes::from_static(b"ERR Function not found"))
        );
        assert_eq!(
            c.cmd(&[b"FUNCTION", b"DELETE", b"redcloak_internal"])
                .unwrap(),
            Frame::Error(Bytes::from_static(b"ERR Library not found"))
        );
    }
    // FUNCTION DUMP holds the client's libraries only: restored with FLUSH, the same list.
    let dump = match p.cmd(&[b"FUNCTION", b"DUMP"]).unwrap() {
        Frame::Bulk(d) => d,
        other => panic!("FUNCTION DUMP: {other:?}"),
    };
    let before = p.cmd(&[b"FUNCTION", b"LIST"]).unwrap();
    assert_eq!(
        p.cmd(&[b"FUNCTION", b"RESTORE", &dump, b"FLUSH"]).unwrap(),
        Frame::Simple(Bytes::from_static(b"OK"))
    );
    assert_eq!(p.cmd(&[b"FUNCTION", b"LIST"]).unwrap(), before);
    // In Redis: a library of redcloak's, no key, no library name or code in plaintext.
    let in_redis = text(direct.cmd(&[b"FUNCTION", b"LIST", b"WITHCODE"]).unwrap());
    assert!(in_redis.contains("redcloak_internal"), "{in_redis}");
    assert!(
        !in_redis.contains("rclib") && !in_redis.contains("rc_set"),
        "{in_redis}"
    );
    assert!(
        direct.keys().iter().all(|k| k.starts_with(b"n")),
        "only the client's key n"
    );
    // FUNCTION DELETE and FUNCTION FLUSH reach the stored library.
    assert_eq!(
        q.cmd(&[b"FUNCTION", b"DELETE", b"rclib"]).unwrap(),
        Frame::Simple(Bytes::from_static(b"OK"))
    );
    assert_eq!(
        q.cmd(&[b"FCALL", b"rc_set", b"1", b"k", b"v"]).unwrap(),
        Frame::Error(Bytes::from_static(b"ERR Function not found")),
    );
    let list = text(p.cmd(&[b"FUNCTION", b"LIST"]).unwrap());
    assert!(
        !list.contains("rclib"),
        "deleted through the other redcloak: {list}"
    );
    assert_eq!(
        p.cmd(&[b"FUNCTION", b"LOAD", ONE.as_bytes()]).unwrap(),
        bulk(b"rcone")
    );
    // The stored form, kept to play an older redcloak's hash below.
    let stored = direct
        .cmd(&[b"FCALL_RO", b"redcloak_internal_libraries", b"0"])
        .unwrap();
    assert_eq!(
        p.cmd(&[b"FUNCTION", b"FLUSH"]).unwrap(),
        Frame::Simple(Bytes::from_static(b"OK"))
    );
    assert_eq!(
        q.cmd(&[b"FCALL", b"rc_one", b"0"]).unwrap(),
        Frame::Error(Bytes::from_static(b"ERR Function not found"))
    );
    assert_eq!(
        direct.cmd(&[b"FUNCTION", b"LIST"]).unwrap(),
        Frame::Array(vec![]),
        "FUNCTION FLUSH leaves no library in Redis"
    );
    // An older redcloak's hash (the same ciphertext, in the keyspace of the upstream's db):
    // moved into the library and deleted the first time a redcloak needs the libraries.
    let Frame::Array(hex) = stored else {
        panic!("the stored libraries: {stored:?}")
    };
    let unhex = |f: &Frame| -> Vec<u8> {
        let Frame::Bulk(h) = f else { panic!("{f:?}") };
        (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(std::str::from_utf8(&h[i..i + 2]).unwrap(), 16).unwrap())
            .collect()
    };
    assert_eq!(unhex(&hex[0]), b"rcone");
    let code = unhex(&hex[1]);
    assert_eq!(
        direct
            .cmd(&[b"HSET", b"redcloak:internal:functions", b"rcone", &code])
            .unwrap(),
        Frame::Integer(1)
    );
    assert_eq!(
        q.cmd(&[b"FCALL", b"rc_one", b"1", b"a", b"b"]).unwrap(),
        Frame::Integer(2),
        "the library from the old hash"
    );
    assert_eq!(
        direct
            .cmd(&[b"EXISTS", b"redcloak:internal:functions"])
            .unwrap(),
        Frame::Integer(0),
        "the old hash is deleted once moved"
    );
    assert_eq!(
        p.cmd(&[b"FCALL", b"rc_one", b"0"]).unwrap(),
        Frame::Integer(0),
        "the moved library, seen by the other redcloak"
    );
    p.cmd(&[b"FLUSHALL"]).unwrap();
    assert_eq!(
        q.cmd(&[b"FCALL", b"rc_one", b"0"]).unwrap(),
        Frame::Integer(0),
        "and it survives FLUSHALL"
    );
}
