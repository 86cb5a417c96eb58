//! `REDCLOAK_VALUE_FORMAT=aes-gcm`: values written as AES-256-GCM envelopes bound to where
//! they are stored (database, key, hash field). Every value command answers as a plain Redis
//! does; what Redis stores opens only at its place; a ciphertext copied elsewhere is an error
//! (counted as `reason="binding"`), never another key's value; commands that would make Redis
//! move values elsewhere are refused and change nothing; both formats are read whatever the
//! write format.

use std::time::Duration;

use bytes::Bytes;
use redcloak_commands::resp::Frame;
use redcloak_crypto::{Binding, ValueFormat};
use redcloak_e2e::diff::{metric, scrape, stack_with_admin};
use redcloak_e2e::plain::{side_by_side, PlainRedis};
use redcloak_e2e::{wait_for, with_var, Redcloak, Stack};

const AES_GCM: (&str, &str) = ("REDCLOAK_VALUE_FORMAT", "aes-gcm");

fn bulk(s: &[u8]) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s))
}

fn words(line: &str) -> Vec<&[u8]> {
    line.split(' ').map(str::as_bytes).collect()
}

fn is_error_containing(f: &Frame, text: &str) -> bool {
    matches!(f, Frame::Error(e) if String::from_utf8_lossy(e).contains(text))
}

/// The plaintext of a stored value opened at `at` (panics if it does not open there).
fn opened(ring: &redcloak_crypto::KeyRing, stored: &[u8], at: &Binding<'_>) -> Vec<u8> {
    ring.decrypt_value(stored, at)
        .expect("opens at its place")
        .plaintext
        .into_vec()
}

/// What Redis stores at `key` in database 0 (a string), read around redcloak.
fn stored(stack: &Stack, key: &[u8]) -> Bytes {
    stack.direct().get(key).expect("a stored value")
}

/// Every command that writes or reads values, answered exactly as a plain Redis answers it
/// (RESP2 and RESP3), while what Redis stores is an envelope that opens only where it is.
#[test]
fn every_value_command_answers_as_redis_and_stores_bound_envelopes() {
    let stack = Stack::start_with(&[], &[AES_GCM]);
    let plain = PlainRedis::start(stack.dir.path(), &[]);
    let seq = |lines: &[&'static str]| -> Vec<Vec<&'static [u8]>> {
        lines.iter().map(|l| words(l)).collect()
    };
    let sequences = vec![
        seq(&[
            "SET s one",
            "GET s",
            "SET s two GET",
            "GETSET s three",
            "SETNX s2 x",
            "SETEX s3 100 y",
            "PSETEX s4 100000 z",
            "MSET m1 a m2 b m3 c",
            "MSETNX m4 d m5 e",
            "MGET m1 nope m2 m3 m5 s",
            "GETEX s PERSIST",
            "GETDEL s",
            "GET s",
            "APPEND m1 -tail",
            "GET m1",
            "GETRANGE m1 1 3",
            "SET n 10",
            "INCR n",
            "INCRBY n 5",
            "GET n",
            "SETRANGE m2 3 xyz",
            "GET m2",
            "STRLEN m2",
        ]),
        seq(&[
            "HSET h f1 v1 f2 v2 f3 v3",
            "HSETNX h f4 v4",
            "HGET h f2",
            "HMGET h f3 nope f1",
            "HGETALL h",
            "HVALS h",
            "HVALS missing",
            "HSCAN h 0",
            "HINCRBY h n 7",
            "HGET h n",
            "HSTRLEN h f1",
        ]),
        seq(&[
            "RPUSH l a b c d e",
            "LPUSH l z",
            "LSET l 1 A",
            "LRANGE l 0 -1",
            "LINDEX l 2",
            "LPOP l",
            "RPOP l 2",
            "LPOS l c",
            "LINSERT l BEFORE c ins",
            "LREM l 1 ins",
            "RPUSH l2 x y",
            "BLPOP l 1",
            "BRPOP l2 l 1",
            "LMPOP 2 nope l LEFT COUNT 2",
            "BLMPOP 1 2 l2 l RIGHT",
            "LRANGE l 0 -1",
        ]),
        // Elements that move to another list are encrypted again for it (LMOVE and
        // RPOPLPUSH are carried out by redcloak while the format is aes-gcm).
        seq(&[
            "RPUSH la a b c d",
            "LMOVE la lb LEFT RIGHT",
            "RPOPLPUSH la lb",
            "LMOVE la la RIGHT LEFT",
            "LMOVE la lb left left",
            "LMOVE nope lb LEFT LEFT",
            "RPOPLPUSH nope lb",
            "SET str v",
            "LMOVE la str LEFT LEFT",
            "RPOPLPUSH str la",
            "LMOVE la lb UP LEFT",
            "LRANGE la 0 -1",
            "LRANGE lb 0 -1",
            "MULTI",
            "RPOPLPUSH lb la",
            "LMOVE lb lc RIGHT RIGHT",
            "LRANGE la 0 -1",
            "EXEC",
            "EVAL return{redis.call('RPOPLPUSH',KEYS[1],KEYS[2]),redis.call('LRANGE',KEYS[2],0,-1)} 2 la ld",
            "LRANGE lb 0 -1",
            "LRANGE lc 0 -1",
            "LRANGE ld 0 -1",
            "LMOVE la la LEFT RIGHT",
            "LRANGE la 0 -1",
        ]),
        // Renamed keys are rewritten under their new name (RENAME and RENAMENX are carried
        // out by redcloak while the format is aes-gcm), expiry included.
        seq(&[
            "SET r1 v",
            "EXPIREAT r1 4102444800",
            "RENAME r1 r2",
            "GET r2",
            "EXPIRETIME r2",
            "EXISTS r1",
            "RPUSH rl a b c",
            "RENAME rl rl2",
            "LRANGE rl2 0 -1",
            "HSET rh f1 x f2 y",
            "SET rh2 old",
            "EXPIRE rh2 1000",
            "RENAME rh rh2",
            "HGETALL rh2",
            "TTL rh2",
            "SADD rs m1 m2",
            "RENAMENX rs rh2",
            "RENAMENX rs rs2",
            "SCARD rs2",
            "SISMEMBER rs2 m1",
            "ZADD rz 1 a 2 b",
            "RENAME rz rz2",
            "ZRANGE rz2 0 -1 WITHSCORES",
            "RENAME nope x",
            "RENAMENX nope x",
            "RENAME r2 r2",
            "RENAMENX r2 r2",
            "MULTI",
            "RENAME r2 r3",
            "GET r3",
            "EXEC",
            "EVAL return{redis.call('RENAME',KEYS[1],KEYS[2]),redis.call('GET',KEYS[2])} 2 r3 r4",
            "GET r4",
            "EXISTS r2 r3",
        ]),
        seq(&[
            "XADD st 1-1 f a g b",
            "XADD st 2-1 f c",
            "XADD st2 1-1 h d",
            "XRANGE st - +",
            "XREVRANGE st + - COUNT 1",
            "XREAD COUNT 5 STREAMS st st2 0 0",
            "XGROUP CREATE st grp 0",
            "XREADGROUP GROUP grp alice COUNT 1 STREAMS st >",
            "XCLAIM st grp bob 0 1-1",
            "XAUTOCLAIM st grp carol 0 0",
        ]),
        seq(&[
            "MULTI",
            "SET t1 v1",
            "HSET th f v",
            "GET t1",
            "HGET th f",
            "MGET t1 th",
            "EXEC",
            "SELECT 3",
            "SET in3 three",
            "HSET h3 f three-field",
            "GET in3",
            "HGETALL h3",
            "SELECT 0",
            "GET in3",
        ]),
        seq(&[
            "EVAL return{redis.call('SET',KEYS[1],ARGV[1]),redis.call('GET',KEYS[1])} 1 sk sv",
            "EVAL redis.call('HSET',KEYS[1],'f',ARGV[1]);return{redis.call('HGET',KEYS[1],'f'),redis.call('HVALS',KEYS[1])} 1 sh hv",
            "GET sk",
            "HGETALL sh",
        ]),
    ];
    let compared = side_by_side(&stack, &plain, &sequences);
    assert!(compared > 100, "{compared}");

    // The last sequence's data is still there: every value opens at its place (the audit
    // opens each one with its database, key and field), and is an envelope.
    assert_eq!(stack.assert_all_values_encrypted(), 2, "sk and sh's field");
    assert_eq!(stored(&stack, b"sk")[0], 0xC1, "an AES-GCM envelope");
    let Frame::Array(pairs) = stack.direct().cmd(&[b"HGETALL", b"sh"]).unwrap() else {
        panic!()
    };
    let Frame::Bulk(v) = &pairs[1] else { panic!() };
    let ring = stack.key_ring();
    assert_eq!(opened(&ring, v, &Binding::field(0, b"sh", b"f")), b"hv");
    assert!(
        ring.decrypt_value(v, &Binding::key(0, b"sh")).is_err(),
        "a hash field's value does not open as the key's"
    );
}

/// A ciphertext copied around redcloak to another key, field, database or type reads as an
/// error naming the cause, counted as `reason="binding"`; the original still reads.
#[test]
fn a_copied_ciphertext_does_not_open_elsewhere() {
    let (stack, admin) = stack_with_admin(&[], &[AES_GCM]);
    let mut c = stack.plain();
    for line in [
        "SET alice alice-session",
        "HSET user:1 role admin name alice",
        "RPUSH queue job-1",
        "XADD events 1-1 payload p1",
    ] {
        assert!(!matches!(c.cmd(&words(line)).unwrap(), Frame::Error(_)));
    }
    let mut d = stack.direct();
    let alice = d.get(b"alice").unwrap();
    let Frame::Bulk(admin_role) = d.cmd(&[b"HGET", b"user:1", b"role"]).unwrap() else {
        panic!()
    };
    let Frame::Bulk(job) = d.cmd(&[b"LINDEX", b"queue", b"0"]).unwrap() else {
        panic!()
    };
    // The copies an attacker with write access to Redis would make.
    d.set(b"mallory", &alice);
    d.cmd(&[b"HSET", b"user:2", b"role", &admin_role]).unwrap();
    d.cmd(&[b"HSET", b"user:1", b"name", &admin_role]).unwrap();
    d.cmd(&[b"HSET", b"as-hash", b"f", &alice]).unwrap();
    d.set(b"as-string", &admin_role);
    d.cmd(&[b"RPUSH", b"other-queue", &job]).unwrap();
    d.cmd(&[b"XADD", b"other-events", b"1-1", b"payload", &job])
        .unwrap();
    // Within one stream, an entry's value copied under another field.
    let Frame::Array(entries) = d.cmd(&[b"XRANGE", b"events", b"-", b"+"]).unwrap() else {
        panic!()
    };
    let Frame::Array(entry) = &entries[0] else {
        panic!()
    };
    let Frame::Array(fields) = &entry[1] else {
        panic!()
    };
    let Frame::Bulk(p1) = &fields[1] else {
        panic!()
    };
    d.cmd(&[b"XADD", b"events", b"2-1", b"note", p1]).unwrap();
    d.cmd(&[b"SELECT", b"1"]).unwrap();
    d.set(b"alice", &alice);
    d.cmd(&[b"SELECT", b"0"]).unwrap();

    let before = metric(
        &scrape(&admin),
        r#"redcloak_decrypt_failures_total{reason="binding"}"#,
    )
    .unwrap_or(0.0);
    let cause = "encrypted for another key, database or hash field";
    let reads: &[&str] = &[
        "GET mallory",
        "HGET user:2 role",
        "HGET user:1 name",
        "HGET as-hash f",
        "GET as-string",
        "LRANGE other-queue 0 -1",
        "XRANGE other-events - +",
        "XREVRANGE events + - COUNT 1",
        "MGET alice mallory",
        "HGETALL user:2",
        "HVALS user:2",
    ];
    for line in reads {
        let reply = c.cmd(&words(line)).unwrap();
        assert!(is_error_containing(&reply, cause), "{line}: {reply:?}");
    }
    let mut in1 = stack.plain();
    in1.cmd(&[b"SELECT", b"1"]).unwrap();
    let reply = in1.cmd(&[b"GET", b"alice"]).unwrap();
    assert!(is_error_containing(&reply, cause), "db 1: {reply:?}");

    // The originals are intact.
    assert_eq!(c.cmd(&[b"GET", b"alice"]).unwrap(), bulk(b"alice-session"));
    assert_eq!(
        c.cmd(&[b"HGET", b"user:1", b"role"]).unwrap(),
        bulk(b"admin")
    );
    assert_eq!(
        c.cmd(&[b"LRANGE", b"queue", b"0", b"-1"]).unwrap(),
        Frame::Array(vec![bulk(b"job-1")])
    );
    let after = scrape(&admin);
    let counted = metric(
        &after,
        r#"redcloak_decrypt_failures_total{reason="binding"}"#,
    )
    .unwrap_or(0.0);
    assert_eq!(
        counted - before,
        (reads.len() + 1) as f64,
        "each refused read is counted as a binding failure: {after}"
    );
    assert!(!stack.proxy.log_text().contains("alice-session"));
}

/// Commands that would make Redis move values to another key or database are refused with
/// the reason and the way out, directly, queued in MULTI and from a script; nothing moves.
/// Moves that keep values where they are bound (SMOVE of members, SORT … STORE which
/// redcloak computes, RESTORE at the dumped key) work; RENAME, LMOVE and RPOPLPUSH are
/// carried out by redcloak (side by side with Redis in the first test), but not for a stream.
#[test]
fn moves_are_refused_and_nothing_moves() {
    let stack = Stack::start_with(&[], &[AES_GCM]);
    let mut c = stack.plain();
    for line in [
        "SET a va",
        "RPUSH la x y z",
        "SADD sa m1 m2",
        "RPUSH nums 3 1 2",
    ] {
        c.cmd(&words(line)).unwrap();
    }
    let refused = "is refused while REDCLOAK_VALUE_FORMAT=aes-gcm";
    for line in [
        "COPY a b",
        "COPY a b DB 1",
        "MOVE a 1",
        "SWAPDB 0 1",
        "BLMOVE la lb LEFT RIGHT 1",
        "BRPOPLPUSH la lb 1",
    ] {
        let reply = c.cmd(&words(line)).unwrap();
        assert!(is_error_containing(&reply, refused), "{line}: {reply:?}");
        assert!(is_error_containing(&reply, "REDCLOAK_VALUE_FORMAT=fernet"));
    }
    // Queued in a transaction: refused when queued, and the transaction is discarded.
    assert!(matches!(c.cmd(&[b"MULTI"]).unwrap(), Frame::Simple(_)));
    let queued = c.cmd(&words("COPY a b")).unwrap();
    assert!(is_error_containing(&queued, refused), "{queued:?}");
    let exec = c.cmd(&[b"EXEC"]).unwrap();
    assert!(is_error_containing(&exec, "EXECABORT"), "{exec:?}");
    // From a script (where COPY, MOVE and SWAPDB are refused anyway: a script redcloak runs
    // cannot touch other databases; Redis itself refuses blocking commands in scripts).
    for line in [
        "EVAL return(redis.pcall('COPY',KEYS[1],KEYS[2])) 2 a b",
        "EVAL return(redis.pcall('BLMOVE',KEYS[1],KEYS[2],'LEFT','LEFT',1)) 2 la lb",
    ] {
        let script = c.cmd(&words(line)).unwrap();
        assert!(is_error_containing(&script, "ERR "), "{line}: {script:?}");
    }

    // Nothing moved, everything still reads.
    assert_eq!(c.cmd(&[b"GET", b"a"]).unwrap(), bulk(b"va"));
    assert_eq!(c.cmd(&[b"EXISTS", b"b", b"lb"]).unwrap(), Frame::Integer(0));
    assert_eq!(
        c.cmd(&words("LRANGE la 0 -1")).unwrap(),
        Frame::Array(vec![bulk(b"x"), bulk(b"y"), bulk(b"z")])
    );

    // A stream is not renamed (its entries are bound to its name).
    c.cmd(&words("XADD st 1-1 f v")).unwrap();
    let reply = c.cmd(&words("RENAME st st2")).unwrap();
    assert!(
        is_error_containing(&reply, "RENAME of a stream is refused"),
        "{reply:?}"
    );
    assert_eq!(c.cmd(&words("XLEN st")).unwrap(), Frame::Integer(1));

    // What keeps values at their place works.
    assert_eq!(c.cmd(&words("SMOVE sa sb m1")).unwrap(), Frame::Integer(1));
    assert_eq!(
        c.cmd(&words("SORT nums STORE sorted")).unwrap(),
        Frame::Integer(3)
    );
    assert_eq!(
        c.cmd(&words("LRANGE sorted 0 -1")).unwrap(),
        Frame::Array(vec![bulk(b"1"), bulk(b"2"), bulk(b"3")])
    );
    let Frame::Bulk(payload) = c.cmd(&[b"DUMP", b"a"]).unwrap() else {
        panic!()
    };
    let elsewhere = c.cmd(&[b"RESTORE", b"a-copy", b"0", &payload]).unwrap();
    assert!(
        is_error_containing(&elsewhere, "another key or database"),
        "{elsewhere:?}"
    );
    assert_eq!(c.cmd(&[b"EXISTS", b"a-copy"]).unwrap(), Frame::Integer(0));
    c.cmd(&[b"DEL", b"a"]).unwrap();
    assert!(matches!(
        c.cmd(&[b"RESTORE", b"a", b"0", &payload]).unwrap(),
        Frame::Simple(_)
    ));
    assert_eq!(c.cmd(&[b"GET", b"a"]).unwrap(), bulk(b"va"));
    stack.assert_all_values_encrypted();
}

/// One Redis, a Fernet writer and an AES-GCM writer side by side: each reads what the other
/// wrote (reads accept both formats), and `rewrap` under the aes-gcm configuration turns every
/// value into a bound envelope that both still read.
#[test]
fn both_formats_are_read_whatever_the_write_format() {
    let stack = Stack::start();
    let gcm = Redcloak::start(
        stack.dir.path(),
        &with_var(&stack.env, "REDCLOAK_VALUE_FORMAT", "aes-gcm"),
    );
    let mut fernet = stack.plain();
    let mut bound = redcloak_e2e::Plain::connect(gcm.addr);
    fernet.cmd(&words("SET from-fernet f1")).unwrap();
    fernet.cmd(&words("HSET hf f v-fernet")).unwrap();
    bound.cmd(&words("SET from-gcm g1")).unwrap();
    bound.cmd(&words("RPUSH lg a b")).unwrap();
    assert_eq!(stored(&stack, b"from-fernet")[0], b'g', "a Fernet token");
    assert_eq!(stored(&stack, b"from-gcm")[0], 0xC1, "an envelope");
    for c in [&mut fernet, &mut bound] {
        assert_eq!(c.cmd(&words("GET from-fernet")).unwrap(), bulk(b"f1"));
        assert_eq!(c.cmd(&words("GET from-gcm")).unwrap(), bulk(b"g1"));
        assert_eq!(c.cmd(&words("HGET hf f")).unwrap(), bulk(b"v-fernet"));
        assert_eq!(
            c.cmd(&words("LRANGE lg 0 -1")).unwrap(),
            Frame::Array(vec![bulk(b"a"), bulk(b"b")])
        );
    }
    // The Fernet writer forwards a rename (Fernet values move freely); the aes-gcm one
    // rewrites the value under the new name. Both read both.
    assert!(matches!(
        fernet.cmd(&words("RENAME from-fernet moved")).unwrap(),
        Frame::Simple(_)
    ));
    assert!(matches!(
        bound.cmd(&words("RENAME from-gcm moved-gcm")).unwrap(),
        Frame::Simple(_)
    ));
    assert_eq!(stored(&stack, b"moved-gcm")[0], 0xC1);
    for c in [&mut fernet, &mut bound] {
        assert_eq!(c.cmd(&words("GET moved")).unwrap(), bulk(b"f1"));
        assert_eq!(c.cmd(&words("GET moved-gcm")).unwrap(), bulk(b"g1"));
    }

    let env = with_var(&stack.env, "REDCLOAK_VALUE_FORMAT", "aes-gcm");
    let out = redcloak_e2e::run_redcloak(&env, &["rewrap"]);
    assert!(out.status.success(), "{}", redcloak_e2e::output_text(&out));
    for key in [&b"moved"[..], b"moved-gcm"] {
        assert_eq!(stored(&stack, key)[0], 0xC1, "{key:?} rewrapped");
    }
    let ring = stack.key_ring();
    let Frame::Array(pair) = stack.direct().cmd(&[b"HGETALL", b"hf"]).unwrap() else {
        panic!()
    };
    let Frame::Bulk(v) = &pair[1] else { panic!() };
    let opened = ring
        .decrypt_value(v, &Binding::field(0, b"hf", b"f"))
        .unwrap();
    assert_eq!(opened.format, ValueFormat::AesGcm);
    for c in [&mut fernet, &mut bound] {
        assert_eq!(c.cmd(&words("GET moved")).unwrap(), bulk(b"f1"));
        assert_eq!(c.cmd(&words("HGET hf f")).unwrap(), bulk(b"v-fernet"));
    }
    stack.assert_all_values_encrypted();
}

/// While Redis is down, the fallback serves and journals aes-gcm values at their place; the
/// journal's writes reach Redis bound to their keys.
#[test]
fn the_fallback_serves_and_replays_bound_values() {
    let mut stack = Stack::start_with(
        &["--appendonly", "yes", "--appendfsync", "always"],
        &[AES_GCM],
    );
    let mut c = stack.plain();
    c.cmd(&words("SET known before-outage")).unwrap();
    assert_eq!(c.cmd(&words("GET known")).unwrap(), bulk(b"before-outage"));
    stack.redis.kill9();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.cmd(&words("GET known")).unwrap(), bulk(b"before-outage"));
    assert!(matches!(
        c.cmd(&words("MSET w1 one w2 two")).unwrap(),
        Frame::Simple(_)
    ));
    assert_eq!(
        c.cmd(&words("MGET w1 w2 known")).unwrap(),
        Frame::Array(vec![bulk(b"one"), bulk(b"two"), bulk(b"before-outage")])
    );
    stack.redis.restart();
    assert!(
        wait_for(Duration::from_secs(30), || stack
            .direct()
            .get(b"w2")
            .is_some()),
        "the journal was replayed"
    );
    let ring = stack.key_ring();
    for (key, value) in [(&b"w1"[..], &b"one"[..]), (b"w2", b"two")] {
        let v = stored(&stack, key);
        assert_eq!(v[0], 0xC1);
        assert_eq!(opened(&ring, &v, &Binding::key(0, key)), value);
    }
}

/// An unknown format stops redcloak at startup with what is wrong and how to fix it.
#[test]
fn an_unknown_format_is_a_startup_error() {
    let stack = Stack::start();
    let env = with_var(&stack.env, "REDCLOAK_VALUE_FORMAT", "aes-cbc");
    let out = redcloak_e2e::run_redcloak(&env, &["check"]);
    let text = redcloak_e2e::output_text(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("REDCLOAK_VALUE_FORMAT"), "{text}");
    assert!(text.contains("aes-gcm"), "{text}");
    // A known one is shown with the encrypting key.
    let env = with_var(&stack.env, "REDCLOAK_VALUE_FORMAT", "AES-GCM");
    let out = redcloak_e2e::run_redcloak(&env, &["check"]);
    let text = redcloak_e2e::output_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("(encrypts, aes-gcm)"), "{text}");
}

/// A SELECT that Redis refuses leaves the connection in its database: the commands pipelined
/// after it are bound to (and cached for) the database Redis really used, not the one named.
#[test]
fn commands_after_a_refused_select_stay_in_the_right_database() {
    use std::io::Write;
    let stack = Stack::start_with(&[], &[AES_GCM]);
    let mut raw = stack.raw();
    raw.write_all(
        b"*2\r\n$6\r\nSELECT\r\n$2\r\n99\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n\
          *2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv2\r\n\
          *2\r\n$6\r\nSELECT\r\n$1\r\nx\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
    )
    .unwrap();
    let mut buf = bytes::BytesMut::new();
    let replies: Vec<Frame> = (0..6)
        .map(|_| redcloak_e2e::read_frame(&mut raw, &mut buf).unwrap())
        .collect();
    assert!(is_error_containing(&replies[0], "DB index is out of range"));
    assert!(matches!(replies[1], Frame::Simple(_)));
    assert!(matches!(replies[2], Frame::Simple(_)));
    assert!(matches!(replies[3], Frame::Simple(_)));
    assert!(is_error_containing(&replies[4], "not an integer"));
    assert_eq!(replies[5], bulk(b"v2"), "still in database 2");
    // Where Redis stored them, each opens at its own database.
    let ring = stack.key_ring();
    let mut d = stack.direct();
    let v0 = d.get(b"k").unwrap();
    assert_eq!(opened(&ring, &v0, &Binding::key(0, b"k")), b"v");
    d.cmd(&[b"SELECT", b"2"]).unwrap();
    let v2 = d.get(b"k").unwrap();
    assert_eq!(opened(&ring, &v2, &Binding::key(2, b"k")), b"v2");
    assert_eq!(stack.plain().cmd(&[b"GET", b"k"]).unwrap(), bulk(b"v"));
}

/// Stored values modified or cut short in Redis, in both formats, read as errors that say so
/// (never as a value), each counted under its reason.
#[test]
fn tampered_and_truncated_values_are_errors_in_both_formats() {
    let (stack, admin) = stack_with_admin(&[], &[AES_GCM]);
    let fernet = Redcloak::start(
        stack.dir.path(),
        &redcloak_e2e::without_var(&stack.env, "REDCLOAK_VALUE_FORMAT"),
    );
    let mut c = stack.plain();
    let mut f = redcloak_e2e::Plain::connect(fernet.addr);
    f.cmd(&words("SET fernet-v the-fernet-value")).unwrap();
    c.cmd(&words("SET gcm-v the-gcm-value")).unwrap();
    let mut d = stack.direct();
    let token = d.get(b"fernet-v").unwrap();
    let envelope = d.get(b"gcm-v").unwrap();
    assert_eq!(token[0], b'g');
    assert_eq!(envelope[0], 0xC1);
    let flip = |v: &Bytes, at: usize| {
        let mut v = v.to_vec();
        v[at] ^= 0x01;
        v
    };
    let n = envelope.len();
    let cases: Vec<(&[u8], Vec<u8>)> = vec![
        (b"token-flipped", {
            // A base64 character in the HMAC changed to another valid one.
            let mut t = token.to_vec();
            let at = t.len() - 10;
            t[at] = if t[at] == b'A' { b'B' } else { b'A' };
            t
        }),
        (b"token-cut", token[..token.len() - 7].to_vec()),
        (b"envelope-body", flip(&envelope, 20)),
        (b"envelope-tag", flip(&envelope, n - 10)),
        (b"envelope-check", flip(&envelope, n - 1)),
        (b"envelope-key-id", flip(&envelope, 2)),
        (b"envelope-cut", envelope[..n - 5].to_vec()),
        (b"envelope-header-only", envelope[..20].to_vec()),
    ];
    for (key, bad) in &cases {
        d.set(key, bad);
    }
    let before = scrape(&admin);
    for (key, _) in &cases {
        for client in [&mut c, &mut f] {
            let reply = client.cmd(&[b"GET", key]).unwrap();
            assert!(
                is_error_containing(&reply, "cannot be decrypted"),
                "{}: {reply:?}",
                String::from_utf8_lossy(key)
            );
        }
    }
    let after = scrape(&admin);
    let delta = |reason: &str| {
        let series = format!("redcloak_decrypt_failures_total{{reason=\"{reason}\"}}");
        metric(&after, &series).unwrap_or(0.0) - metric(&before, &series).unwrap_or(0.0)
    };
    let total: f64 = ["not_encrypted", "no_key", "binding", "tampered"]
        .iter()
        .map(|r| delta(r))
        .sum();
    assert_eq!(
        total,
        cases.len() as f64,
        "every refused read counted once: {after}"
    );
    assert!(
        delta("tampered") >= 1.0,
        "a changed tag or check is tampering: {after}"
    );
    // The originals still read, and nothing of them leaked into the logs.
    assert_eq!(c.cmd(&words("GET gcm-v")).unwrap(), bulk(b"the-gcm-value"));
    assert_eq!(
        f.cmd(&words("GET fernet-v")).unwrap(),
        bulk(b"the-fernet-value")
    );
    for log in [stack.proxy.log_text(), fernet.log_text()] {
        assert!(!log.contains("the-gcm-value") && !log.contains("the-fernet-value"));
    }
}
