//! Sets, sorted sets, geo and HyperLogLog through redcloak, against real Redis, in RESP2 and
//! RESP3. Every command runs twice: through redcloak (database 0, members encrypted) and
//! straight to the same Redis in database 15 with plaintext members (the reference). The
//! replies must be the same — byte for byte where Redis's order is defined, as sets where it
//! is not — and afterwards Redis holds no plaintext member in database 0.

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use redcloak_commands::resp::Frame;
use redcloak_e2e::{Direct, Plain, Stack};

/// Splits a command line into arguments: words separated by spaces; `''` is the empty
/// argument and `\xNN` a byte.
fn words(cmd: &str) -> Vec<Vec<u8>> {
    cmd.split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| {
            if w == "''" {
                return Vec::new();
            }
            let mut out = Vec::new();
            let bytes = w.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'x') {
                    let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 4;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            out
        })
        .collect()
}

fn encoded(f: &Frame) -> Vec<u8> {
    let mut b = BytesMut::new();
    f.encode(&mut b);
    b.to_vec()
}

/// The frame with its top-level elements sorted (replies whose order Redis does not define).
fn unordered(f: Frame) -> Frame {
    let sort = |mut items: Vec<Frame>| {
        items.sort_by_key(encoded);
        items
    };
    match f {
        Frame::Array(items) => Frame::Array(sort(items)),
        Frame::Set(items) => Frame::Set(sort(items)),
        other => other,
    }
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

/// redcloak and the plaintext reference, side by side.
struct Twin {
    proxy: Plain,
    reference: Direct,
    resp3: bool,
}

impl Twin {
    fn new(stack: &Stack, resp3: bool) -> Twin {
        let mut twin = Twin {
            proxy: stack.plain(),
            reference: stack.direct(),
            resp3,
        };
        twin.reference.cmd(&[b"SELECT", b"15"]).unwrap();
        if resp3 {
            twin.both("HELLO 3");
        }
        twin.both("FLUSHDB");
        twin
    }

    fn both(&mut self, cmd: &str) -> (Frame, Frame) {
        let args = words(cmd);
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let proxy = self.proxy.cmd(&args).unwrap();
        let reference = self.reference.cmd(&args).unwrap();
        (proxy, reference)
    }

    /// The same reply as Redis gives for plaintext members.
    fn same(&mut self, cmd: &str) -> Frame {
        let (proxy, reference) = self.both(cmd);
        assert_eq!(
            proxy,
            reference,
            "RESP{}: {cmd}: redcloak (left) and Redis (right) differ",
            if self.resp3 { 3 } else { 2 }
        );
        proxy
    }

    /// The same reply up to the order of its elements.
    fn same_set(&mut self, cmd: &str) -> Frame {
        let (proxy, reference) = self.both(cmd);
        let (proxy, reference) = (unordered(proxy), unordered(reference));
        assert_eq!(
            proxy,
            reference,
            "RESP{}: {cmd}: redcloak (left) and Redis (right) differ as sets",
            if self.resp3 { 3 } else { 2 }
        );
        proxy
    }

    /// Through redcloak only.
    fn proxy(&mut self, cmd: &str) -> Frame {
        let args = words(cmd);
        let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        self.proxy.cmd(&args).unwrap()
    }

    fn proxy_error(&mut self, cmd: &str) -> String {
        match self.proxy(cmd) {
            Frame::Error(e) => String::from_utf8_lossy(&e).into_owned(),
            other => panic!("{cmd}: expected an error, got {other:?}"),
        }
    }
}

fn sets(t: &mut Twin) {
    t.same("SADD s1 a b c d");
    t.same("SADD s1 a e \\x00\\xff ''");
    t.same("SADD s2 c d e f");
    t.same("SCARD s1");
    t.same("SISMEMBER s1 a");
    t.same("SISMEMBER s1 ''");
    t.same("SISMEMBER s1 \\x00\\xff");
    t.same("SISMEMBER s1 zz");
    t.same("SISMEMBER nosuch a");
    t.same("SMISMEMBER s1 a zz e");
    t.same_set("SMEMBERS s1");
    t.same("SMEMBERS nosuch");
    t.same_set("SINTER s1 s2");
    t.same_set("SUNION s1 s2 nosuch");
    t.same_set("SDIFF s1 s2");
    t.same("SINTERSTORE s3 s1 s2");
    t.same_set("SMEMBERS s3");
    t.same("SUNIONSTORE s4 s1 s2");
    t.same("SDIFFSTORE s5 s1 s2");
    t.same_set("SMEMBERS s5");
    t.same("SINTERCARD 2 s1 s2");
    t.same("SINTERCARD 2 s1 s2 LIMIT 1");
    t.same("SMOVE s1 s2 a");
    t.same("SMOVE s1 s2 zz");
    t.same("SISMEMBER s2 a");
    t.same("SISMEMBER s1 a");
    t.same("SREM s1 b zz");
    t.same("SREM s1 b");
    t.same("SPOP nosuch");
    t.same("SPOP nosuch 3");
    t.same("SRANDMEMBER nosuch");
    t.same("SRANDMEMBER nosuch 2");
    // Random replies: members of the set.
    let all: BTreeSet<Vec<u8>> = ["a", "b", "c", "d", "e", "f", "\u{0}"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([vec![0, 0xff], vec![]])
        .collect();
    let members = |f: Frame| -> Vec<Vec<u8>> {
        match f {
            Frame::Bulk(b) => vec![b.to_vec()],
            Frame::Array(items) | Frame::Set(items) => items
                .into_iter()
                .map(|i| match i {
                    Frame::Bulk(b) => b.to_vec(),
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    };
    for m in members(t.proxy("SRANDMEMBER s4 -7")) {
        assert!(all.contains(&m), "{m:?}");
    }
    let popped = members(t.proxy("SPOP s4 2"));
    assert_eq!(popped.len(), 2);
    for m in &popped {
        assert!(all.contains(m), "{m:?}");
        let m = String::from_utf8_lossy(m).into_owned();
        if !m.is_empty() && !m.contains('\u{0}') && !m.contains('\u{fffd}') {
            assert_eq!(t.proxy(&format!("SISMEMBER s4 {m}")), Frame::Integer(0));
        }
    }
    let one = members(t.proxy("SPOP s4"));
    assert!(all.contains(&one[0]));
    // A scan small enough for one page.
    let (proxy, reference) = t.both("SSCAN s2 0 COUNT 100");
    let page = |f: Frame| match f {
        Frame::Array(mut parts) => {
            let page = parts.pop().unwrap();
            (parts.pop().unwrap(), unordered(page))
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(page(proxy), page(reference), "SSCAN");
    // Type errors are Redis's.
    t.same("SET str v");
    t.same("SADD str x");
    t.same("SISMEMBER str x");
    t.same("SMEMBERS str");
    t.same("SINTER s1 str");
}

fn sorted_sets(t: &mut Twin) {
    t.same("ZADD z 1 a 2 b 3 c");
    t.same("ZADD z NX 10 a 4 d");
    t.same("ZSCORE z a");
    t.same("ZADD z XX 10 a 5 e");
    t.same("ZSCORE z a");
    t.same("ZSCORE z e");
    t.same("ZADD z XX CH 11 a");
    t.same("ZADD z GT 5 a");
    t.same("ZADD z LT CH 5 a");
    t.same("ZADD z GT CH 8 a");
    t.same("ZADD z INCR 2 a");
    t.same("ZADD z NX INCR 1 a");
    t.same("ZADD z XX INCR 1 nosuch");
    t.same("ZADD z gt lt 1 a");
    t.same("ZADD z NX XX 1 a");
    t.same("ZADD z INCR 1 a 2 b");
    t.same("ZADD z 1");
    t.same("ZADD z 1 a 2");
    t.same("ZADD z notafloat a");
    t.same("ZADD z 6 nx");
    t.same("ZINCRBY z 1.5 b");
    t.same("ZINCRBY z 7 new");
    t.same("ZMSCORE z a b nosuch nx");
    t.same("ZMSCORE nosuch a");
    t.same("ZRANK z a");
    t.same("ZREVRANK z a");
    t.same("ZRANK z nosuch");
    t.same("ZCARD z");
    t.same("ZCOUNT z 2 5");
    t.same("ZRANGE z 0 -1");
    t.same("ZRANGE z 0 -1 WITHSCORES");
    t.same("ZRANGE z 0 1 REV WITHSCORES");
    t.same("ZRANGE z (2 +inf BYSCORE LIMIT 0 2 WITHSCORES");
    t.same("ZRANGE z +inf -inf BYSCORE REV");
    t.same("ZRANGE z 0 1 LIMIT 0 1");
    t.same("ZRANGE z 0 1 LIMIT 0 -1 withscores");
    t.same("ZRANGE z 0 1 BOGUS");
    t.same("ZREVRANGE z 0 -1 WITHSCORES");
    t.same("ZRANGEBYSCORE z -inf +inf WITHSCORES LIMIT 1 2");
    t.same("ZREVRANGEBYSCORE z +inf (3");
    t.same("ZRANGESTORE zdst z 0 -1");
    t.same("ZRANGESTORE zdst z 2 +inf BYSCORE LIMIT 0 2");
    t.same("ZRANGE zdst 0 -1 WITHSCORES");
    t.same("ZREM z d nosuch");
    t.same("ZADD z2 1 a 20 b 30 x");
    t.same("ZUNION 2 z z2 WITHSCORES");
    t.same("ZUNION 2 z z2");
    t.same("ZINTER 2 z z2 WEIGHTS 1 2 AGGREGATE MAX WITHSCORES");
    t.same("ZDIFF 2 z z2 WITHSCORES");
    t.same("ZUNIONSTORE zu 2 z z2 AGGREGATE MIN");
    t.same("ZINTERSTORE zi 2 z z2");
    t.same("ZDIFFSTORE zd 2 z z2");
    t.same("ZRANGE zu 0 -1 WITHSCORES");
    t.same("ZINTERCARD 2 z z2");
    t.same("ZPOPMIN z");
    t.same("ZPOPMAX z 2");
    t.same("ZPOPMIN nosuch");
    t.same("ZPOPMIN nosuch 2");
    t.same("ZMPOP 1 zu MIN COUNT 2");
    t.same("ZMPOP 2 nosuch zu MAX");
    t.same("ZMPOP 1 nosuch MAX");
    t.same("BZPOPMIN zu 1");
    t.same("BZPOPMAX nosuch zd 1");
    t.same("BZMPOP 1 1 zi MIN COUNT 5");
    t.same("ZREMRANGEBYSCORE z2 0 1");
    t.same("ZREMRANGEBYRANK z2 0 0");
    t.same("ZRANGE z2 0 -1 WITHSCORES");
    t.same("ZSCORE str a");
    t.same("ZADD str 1 a");
    // ZSCAN: one page here.
    let (proxy, reference) = t.both("ZSCAN z 0 COUNT 100");
    assert_eq!(proxy, reference, "ZSCAN of a small sorted set");
    // Random members come from the set, with their scores.
    let (Frame::Array(got), _) = t.both("ZRANDMEMBER z -4 WITHSCORES") else {
        panic!()
    };
    let all = t.same("ZRANGE z 0 -1 WITHSCORES");
    let pairs = |items: Vec<Frame>| -> Vec<(Frame, Frame)> {
        if matches!(items.first(), Some(Frame::Array(_))) {
            items
                .into_iter()
                .map(|p| match p {
                    Frame::Array(mut p) => {
                        let s = p.pop().unwrap();
                        (p.pop().unwrap(), s)
                    }
                    other => panic!("{other:?}"),
                })
                .collect()
        } else {
            items
                .chunks(2)
                .map(|c| (c[0].clone(), c[1].clone()))
                .collect()
        }
    };
    let Frame::Array(all) = all else { panic!() };
    let all = pairs(all);
    let got = pairs(got);
    assert_eq!(got.len(), 4);
    for p in got {
        assert!(all.contains(&p), "{p:?} not in {all:?}");
    }
    match t.proxy("ZRANDMEMBER z") {
        Frame::Bulk(m) => assert!(all.iter().any(|(a, _)| a == &Frame::Bulk(m.clone()))),
        other => panic!("{other:?}"),
    }
    // Equal scores: Redis orders such members by their bytes, which for redcloak are
    // ciphertexts. The members and scores are the same; their order among equal scores
    // differs from plaintext Redis (docs/security.md).
    t.same("ZADD ties 5 x 5 y 5 z 5 w 1 first 9 last");
    t.same_set("ZRANGE ties 0 -1");
    let Frame::Array(order) = t.proxy("ZRANGE ties 0 -1") else {
        panic!()
    };
    assert_eq!(order.first(), Some(&bulk("first")));
    assert_eq!(order.last(), Some(&bulk("last")));
    // Lexicographic ranges are refused with the reason; nothing reaches Redis.
    for cmd in [
        "ZRANGEBYLEX ties [a [z",
        "ZREVRANGEBYLEX ties [z [a",
        "ZLEXCOUNT ties - +",
        "ZREMRANGEBYLEX ties [a [z",
        "ZRANGE ties [a [z BYLEX",
        "ZRANGESTORE d ties [a [z BYLEX",
    ] {
        let e = t.proxy_error(cmd);
        assert!(
            e.contains("redcloak") && e.contains("lexicographic"),
            "{cmd}: {e}"
        );
    }
    assert_eq!(
        t.proxy("ZCARD ties"),
        Frame::Integer(6),
        "nothing was removed"
    );
}

fn geo(t: &mut Twin) {
    t.same("GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania");
    t.same("GEOADD g NX CH 13.361389 38.115556 Palermo 12.496366 41.902782 Rome");
    t.same("GEOADD g XX CH 13.4 38.2 Palermo 1 1 Nowhere");
    t.same("GEOADD g 1 2");
    t.same("GEOADD g 500 2 bad");
    t.same("GEOPOS g Palermo nosuch Rome");
    t.same("GEODIST g Palermo Catania km");
    t.same("GEODIST g Palermo nosuch");
    t.same("GEOHASH g Palermo Catania nosuch");
    t.same("GEORADIUS g 15 37 200 km WITHDIST WITHCOORD WITHHASH ASC");
    t.same("GEORADIUS_RO g 15 37 300 km DESC COUNT 1");
    t.same_set("GEORADIUS g 15 37 1000 km");
    t.same("GEORADIUSBYMEMBER g Palermo 500 km WITHDIST ASC COUNT 2");
    t.same("GEORADIUSBYMEMBER_RO g Catania 500 km ASC");
    t.same("GEORADIUSBYMEMBER g nosuch 500 km");
    t.same("GEOSEARCH g FROMMEMBER Catania BYRADIUS 300 km ASC WITHDIST WITHHASH WITHCOORD");
    t.same("GEOSEARCH g FROMLONLAT 15 37 BYBOX 600 600 km ASC");
    t.same("GEOSEARCH g FROMMEMBER nosuch BYRADIUS 1 km");
    t.same("GEOSEARCH g FROMMEMBER Catania BYRADIUS 1 km BOGUS");
    t.same("GEOSEARCH g FROMMEMBER Catania FROMLONLAT 1 2 BYRADIUS 1 km");
    t.same("GEOSEARCH g BYRADIUS 1 km");
    t.same("GEOSEARCHSTORE g2 g FROMMEMBER Catania BYRADIUS 300 km ASC COUNT 2 STOREDIST");
    t.same("ZRANGE g2 0 -1 WITHSCORES");
    t.same("GEORADIUS g 15 37 200 km STORE g3");
    t.same("ZRANGE g3 0 -1 WITHSCORES");
    t.same("ZREM g Rome");
    t.same("GEOPOS g Rome");
}

fn hyperloglog(t: &mut Twin) {
    t.same("PFADD h a b c");
    t.same("PFADD h a");
    t.same("PFADD h");
    t.same("PFCOUNT h");
    t.same("PFADD h2 c d \\x00");
    t.same("PFCOUNT h h2");
    t.same("PFMERGE h3 h h2");
    t.same("PFCOUNT h3");
    t.same("TYPE h");
    t.same("PFADD str a");
    // The raw HyperLogLog bytes are never returned.
    let e = t.proxy_error("GET h");
    assert!(
        e.contains("HyperLogLog") && e.contains("PFCOUNT") && e.contains("'h'"),
        "{e}"
    );
}

fn transactions(t: &mut Twin) {
    for cmd in [
        "MULTI",
        "SADD tx:s a b",
        "SISMEMBER tx:s a",
        "ZADD tx:z 1 a 2 b",
        "ZRANGE tx:z 0 -1 WITHSCORES",
        "ZSCORE tx:z b",
        "ZPOPMIN tx:z",
        "SMISMEMBER tx:s a x",
        "GEOADD tx:g 13.36 38.11 a",
        "GEOSEARCH tx:g FROMMEMBER a BYRADIUS 1 km WITHCOORD",
    ] {
        t.same(cmd);
    }
    t.same("EXEC");
    // What Redis rejects when it executes (ZADD without pairs) is queued and fails alone.
    t.same("MULTI");
    t.same("ZADD tx:z 1 a 2");
    t.same("SADD tx:s q");
    t.same("EXEC");
    // A refused command inside MULTI aborts the transaction, as Redis does with its own
    // syntax errors.
    t.proxy("MULTI");
    t.proxy("SADD tx:s c");
    assert!(t.proxy_error("ZRANGEBYLEX tx:z - +").contains("redcloak"));
    assert!(t.proxy_error("EXEC").starts_with("EXECABORT"));
    assert_eq!(t.proxy("SISMEMBER tx:s c"), Frame::Integer(0));
}

fn run_all(stack: &Stack, resp3: bool) {
    let mut t = Twin::new(stack, resp3);
    sets(&mut t);
    sorted_sets(&mut t);
    geo(&mut t);
    hyperloglog(&mut t);
    transactions(&mut t);
    // The reference (plaintext members) is not audited.
    t.reference.cmd(&[b"FLUSHDB"]).unwrap();
}

#[test]
fn member_commands_answer_like_redis_in_resp2_and_resp3() {
    let stack = Stack::start();
    run_all(&stack, false);
    let checked = stack.assert_all_values_encrypted();
    assert!(checked > 40, "{checked}");
    run_all(&stack, true);
    assert!(stack.assert_all_values_encrypted() > 40);
}

/// `MATCH` through redcloak selects what Redis selects on plaintext, over whole iterations;
/// pages may be shorter or empty with a non-zero cursor, as SCAN allows.
#[test]
fn scan_match_selects_what_redis_selects() {
    let stack = Stack::start();
    let mut t = Twin::new(&stack, false);
    let mut members: Vec<String> = (0..300).map(|i| format!("user:{i}")).collect();
    members.extend(
        [
            "job:1:done",
            "job:22:failed",
            "a*b",
            "a?b",
            "[x]",
            "h\\llo",
            "hello",
            "hallo",
            "\\",
        ]
        .map(str::to_owned),
    );
    for chunk in members.chunks(50) {
        t.same(&format!("SADD big {}", chunk.join(" ")));
        let scored: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| format!("{i} {m}"))
            .collect();
        t.same(&format!("ZADD bigz {}", scored.join(" ")));
    }
    let scan = |plain: &mut dyn FnMut(&[&[u8]]) -> Frame,
                key: &str,
                pattern: &str,
                pairs: bool|
     -> (BTreeSet<Vec<u8>>, usize) {
        let mut cursor = b"0".to_vec();
        let mut found = BTreeSet::new();
        let mut empty_pages = 0;
        loop {
            let reply = plain(&[
                if pairs { b"ZSCAN" } else { b"SSCAN" },
                key.as_bytes(),
                &cursor,
                b"MATCH",
                pattern.as_bytes(),
                b"COUNT",
                b"10",
            ]);
            let Frame::Array(mut parts) = reply else {
                panic!("{reply:?}")
            };
            let Frame::Array(page) = parts.pop().unwrap() else {
                panic!()
            };
            let Frame::Bulk(next) = parts.pop().unwrap() else {
                panic!()
            };
            let page: Vec<Frame> = if pairs {
                page.into_iter().step_by(2).collect()
            } else {
                page
            };
            if page.is_empty() && &next[..] != b"0" {
                empty_pages += 1;
            }
            for m in page {
                let Frame::Bulk(m) = m else { panic!() };
                found.insert(m.to_vec());
            }
            if &next[..] == b"0" {
                return (found, empty_pages);
            }
            cursor = next.to_vec();
        }
    };
    let mut empty_seen = 0;
    for pattern in [
        "user:1?",
        "user:*7",
        "*:*:*",
        "job:*",
        "a\\*b",
        "a?b",
        "[ah]?llo",
        "[^u]*",
        "h\\\\llo",
        "\\\\",
        "\\[x\\]",
        "[x]",
        "*",
        "user:[0-1][0-9]",
        "nothing*",
    ] {
        for (key, pairs) in [("big", false), ("bigz", true)] {
            let (proxy, empty) = scan(&mut |a| t.proxy.cmd(a).unwrap(), key, pattern, pairs);
            let (reference, _) = scan(&mut |a| t.reference.cmd(a).unwrap(), key, pattern, pairs);
            assert_eq!(proxy, reference, "{key} MATCH {pattern}");
            empty_seen += empty;
        }
    }
    assert!(
        empty_seen > 0,
        "some pages came back empty with a non-zero cursor"
    );
    // The pattern never reached Redis: its slow log and command stats only saw SSCAN.
    t.reference.cmd(&[b"FLUSHDB"]).unwrap();
    assert!(stack.assert_all_values_encrypted() > 600);
}

/// Blocking pops wait as long as the client asked and return the decrypted member.
#[test]
fn blocking_pops_wait_and_decrypt() {
    let stack = Stack::start();
    let mut waiter = stack.plain();
    let mut writer = stack.client();
    let handle = std::thread::spawn(move || {
        let first = waiter.cmd(&[b"BZPOPMIN", b"q", b"5"]).unwrap();
        let second = waiter
            .cmd(&[b"BZMPOP", b"5", b"1", b"q", b"MAX", b"COUNT", b"2"])
            .unwrap();
        (first, second)
    });
    std::thread::sleep(Duration::from_millis(300));
    let _: i64 = redis::cmd("ZADD")
        .arg("q")
        .arg(1)
        .arg("job-1")
        .query(&mut writer)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let _: i64 = redis::cmd("ZADD")
        .arg("q")
        .arg(2)
        .arg("job-2")
        .arg(3)
        .arg("job-3")
        .query(&mut writer)
        .unwrap();
    let (first, second) = handle.join().unwrap();
    assert_eq!(
        first,
        Frame::Array(vec![bulk("q"), bulk("job-1"), bulk("1")])
    );
    assert_eq!(
        second,
        Frame::Array(vec![
            bulk("q"),
            Frame::Array(vec![
                Frame::Array(vec![bulk("job-3"), bulk("3")]),
                Frame::Array(vec![bulk("job-2"), bulk("2")]),
            ])
        ])
    );
}

/// A real client library, typed: redis-rs.
#[test]
fn redis_rs_uses_sets_and_sorted_sets() {
    use redis::Commands;
    let stack = Stack::start();
    let mut c = stack.client();
    let added: i64 = c.sadd("tags", &["rust", "redis", "crypto"]).unwrap();
    assert_eq!(added, 3);
    let is: bool = c.sismember("tags", "rust").unwrap();
    assert!(is);
    let mut tags: Vec<String> = c.smembers("tags").unwrap();
    tags.sort();
    assert_eq!(tags, vec!["crypto", "redis", "rust"]);
    let _: i64 = c
        .zadd_multiple("board", &[(10, "ada"), (20, "grace"), (15, "alan")])
        .unwrap();
    let top: Vec<(String, f64)> = c.zrevrange_withscores("board", 0, 1).unwrap();
    assert_eq!(
        top,
        vec![("grace".to_owned(), 20.0), ("alan".to_owned(), 15.0)]
    );
    let score: Option<f64> = c.zscore("board", "ada").unwrap();
    assert_eq!(score, Some(10.0));
    let rank: Option<i64> = c.zrank("board", "alan").unwrap();
    assert_eq!(rank, Some(1));
    let byscore: Vec<String> = c.zrangebyscore("board", 12, "+inf").unwrap();
    assert_eq!(byscore, vec!["alan", "grace"]);
    let _: i64 = c.pfadd("visitors", &["a", "b", "a"]).unwrap();
    let n: i64 = c.pfcount("visitors").unwrap();
    assert_eq!(n, 2);
    assert!(stack.assert_all_values_encrypted() >= 6);
}

/// A member written around redcloak (in plaintext) is an error naming the key, never
/// returned; a destructive read puts it back where it was.
#[test]
fn planted_members_are_errors_and_are_not_lost() {
    let stack = Stack::start();
    let mut c = stack.plain();
    c.cmd(&[b"SADD", b"s", b"fine"]).unwrap();
    let mut direct = stack.direct();
    direct.cmd(&[b"SADD", b"s", b"planted"]).unwrap();
    direct.cmd(&[b"ZADD", b"z", b"1", b"planted-z"]).unwrap();
    let Frame::Error(e) = c.cmd(&[b"SMEMBERS", b"s"]).unwrap() else {
        panic!()
    };
    let e = String::from_utf8_lossy(&e).into_owned();
    assert!(
        e.contains("redcloak")
            && e.contains("'s'")
            && e.contains("member")
            && !e.contains("planted"),
        "{e}"
    );
    // SPOP until the planted member comes out: an error, and it is put back.
    for _ in 0..2 {
        let _ = c.cmd(&[b"SPOP", b"s"]).unwrap();
    }
    let Frame::Error(_) = c.cmd(&[b"ZPOPMIN", b"z"]).unwrap() else {
        panic!("ZPOPMIN of a planted member is an error")
    };
    let ok = redcloak_e2e::wait_for(Duration::from_secs(5), || {
        direct.cmd(&[b"SISMEMBER", b"s", b"planted"]).unwrap() == Frame::Integer(1)
            && direct.cmd(&[b"ZSCORE", b"z", b"planted-z"]).unwrap() == bulk("1")
    });
    assert!(ok, "the planted members were put back");
}
