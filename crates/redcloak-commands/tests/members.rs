//! Members through the transform, as the proxy uses it: which arguments are encrypted (and
//! how, during a key rotation), how replies are decoded in RESP2 and RESP3, how per-candidate
//! answers are folded, and how a scan's `MATCH` is applied after decryption.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use redcloak_commands::resp::{Frame, Limits, RequestParser};
use redcloak_commands::table::{self, Action, Resolved};
use redcloak_commands::transform::{
    decode_reply, encode_request, reply_plan, undecryptable_message, Plan, Queued, ReplyError,
    Stored,
};
use redcloak_crypto::{DecryptError, KeyRing};

fn ring() -> KeyRing {
    KeyRing::parse(&redcloak_crypto::generate_key()).unwrap()
}

fn args(s: &str) -> Vec<Bytes> {
    s.split_whitespace()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

fn spec_of(a: &[Bytes]) -> &'static table::CommandSpec {
    match table::resolve(a) {
        Resolved::Known { spec, .. } => spec,
        other => panic!("{other:?}"),
    }
}

/// What Redis receives for `a`.
fn sent(a: &[Bytes], ring: &KeyRing) -> Vec<Bytes> {
    let mut out = BytesMut::new();
    encode_request(spec_of(a), a, 0, ring, &mut out).unwrap();
    let mut parser = RequestParser::new(Limits::default());
    parser.parse(&mut out).unwrap().unwrap().args
}

fn bulk(b: &[u8]) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(b))
}

fn member(ring: &KeyRing, m: &[u8]) -> Frame {
    Frame::Bulk(Bytes::from(ring.encrypt_member(m)))
}

fn decode(plan: &Plan, reply: Frame, ring: &KeyRing) -> Result<Frame, ReplyError> {
    let mut bytes = BytesMut::new();
    reply.encode(&mut bytes);
    let mut out = BytesMut::new();
    decode_reply(plan, bytes.freeze(), ring, &Limits::default(), &mut out)?;
    Ok(Frame::parse(&out.freeze(), &Limits::default())
        .unwrap()
        .unwrap()
        .0)
}

fn plan(s: &str, ring: &KeyRing) -> Plan {
    let a = args(s);
    reply_plan(spec_of(&a), &a, 0, ring.len())
}

#[test]
fn members_are_encrypted_deterministically_and_nothing_else_is() {
    let ring = ring();
    for (cmd, members) in [
        ("SADD s a b c", &[2, 3, 4][..]),
        ("SREM s a b", &[2, 3]),
        ("SISMEMBER s a", &[2]),
        ("SMISMEMBER s a b", &[2, 3]),
        ("SMOVE s t a", &[3]),
        ("ZADD z NX CH 1 a 2 b", &[5, 7]),
        ("ZADD z 1 nx", &[3]),
        ("ZINCRBY z 1.5 a", &[3]),
        ("ZSCORE z a", &[2]),
        ("ZMSCORE z a b", &[2, 3]),
        ("ZRANK z a", &[2]),
        ("ZREVRANK z a", &[2]),
        ("ZREM z a b", &[2, 3]),
        (
            "GEOADD g CH 13.36 38.11 palermo 15.08 37.50 catania",
            &[5, 8],
        ),
        ("GEODIST g palermo catania km", &[2, 3]),
        ("GEOPOS g palermo catania", &[2, 3]),
        ("GEOHASH g palermo", &[2]),
        ("GEORADIUSBYMEMBER g palermo 200 km WITHDIST", &[2]),
        ("GEOSEARCH g FROMMEMBER palermo BYRADIUS 200 km ASC", &[3]),
        ("GEOSEARCHSTORE d g FROMMEMBER palermo BYBOX 1 1 km", &[4]),
        ("PFADD h a b", &[2, 3]),
        ("ZRANGE z 0 -1 WITHSCORES", &[]),
        ("GEORADIUS g 15 37 200 km WITHCOORD", &[]),
    ] {
        let a = args(cmd);
        let got = sent(&a, &ring);
        assert_eq!(got.len(), a.len(), "{cmd}: no rewrite with one key");
        for (i, (orig, sent)) in a.iter().zip(&got).enumerate() {
            if members.contains(&i) {
                assert_eq!(
                    &sent[..],
                    &ring.encrypt_member(orig)[..],
                    "{cmd}: argument {i} is the member's deterministic ciphertext"
                );
                assert_eq!(&ring.decrypt_member(sent).unwrap().plaintext[..], &orig[..]);
            } else {
                assert_eq!(orig, sent, "{cmd}: argument {i} passes unchanged");
            }
        }
    }
}

/// `encrypt_args` (redcloak's own transactions and scripts, the journal) sends exactly what
/// `encode_request` sends, rotation rewrites included.
#[test]
fn encrypt_args_is_the_same_request() {
    let (old, ring) = rotation();
    for r in [&old, &ring] {
        for cmd in [
            "SADD s a b",
            "SISMEMBER s a",
            "SREM s a",
            "ZMSCORE z a b",
            "SSCAN s 0 MATCH a* COUNT 5",
            "GEOADD g 1 2 a",
        ] {
            let a = args(cmd);
            assert_eq!(
                redcloak_commands::transform::encrypt_args(spec_of(&a), &a, 0, r).unwrap(),
                sent(&a, r),
                "{cmd}"
            );
        }
    }
}

#[test]
fn what_redis_would_reject_before_finding_the_members_is_answered_here() {
    let ring = ring();
    for (cmd, error) in [
        ("ZADD z 1 a 2", "ERR syntax error"),
        ("ZADD z NX XX", "ERR syntax error"),
        ("GEOADD g 1 2", "ERR syntax error"),
        ("ZRANGE z 0 1 BOGUS", "ERR syntax error"),
        ("ZRANGE z [a [z BYLEX", "BYLEX is not supported"),
        (
            "ZRANGESTORE d z [a [z BYLEX LIMIT 0 1",
            "BYLEX is not supported",
        ),
    ] {
        let a = args(cmd);
        let mut out = BytesMut::new();
        let err = encode_request(spec_of(&a), &a, 0, &ring, &mut out).unwrap_err();
        assert!(err.contains(error), "{cmd}: {err}");
        assert!(out.is_empty(), "{cmd}: nothing is sent");
    }
    for lex in [
        "ZRANGEBYLEX",
        "ZREVRANGEBYLEX",
        "ZLEXCOUNT",
        "ZREMRANGEBYLEX",
    ] {
        let spec = table::lookup(lex.as_bytes()).unwrap();
        let Action::Refuse(refusal) = spec.action else {
            panic!("{lex} must be refused")
        };
        assert!(refusal.reason.contains("lexicographic"), "{lex}");
    }
}

#[test]
fn replies_are_decrypted_in_resp2_and_resp3() {
    let ring = ring();
    let m = |s: &[u8]| member(&ring, s);
    let score = |s: &[u8]| bulk(s);
    let double = |s: &[u8]| Frame::Double(Bytes::copy_from_slice(s));
    let cases: Vec<(&str, Frame, Frame)> = vec![
        (
            "SMEMBERS s",
            Frame::Array(vec![m(b"a"), m(b"b")]),
            Frame::Array(vec![bulk(b"a"), bulk(b"b")]),
        ),
        (
            "SMEMBERS s",
            Frame::Set(vec![m(b"a"), m(b"")]),
            Frame::Set(vec![bulk(b"a"), bulk(b"")]),
        ),
        ("SPOP s", m(b"x"), bulk(b"x")),
        ("SPOP s", Frame::NullBulk, Frame::NullBulk),
        (
            "SPOP s 2",
            Frame::Array(vec![m(b"x"), m(b"y")]),
            Frame::Array(vec![bulk(b"x"), bulk(b"y")]),
        ),
        (
            "SINTER a b",
            Frame::Set(vec![m(b"x")]),
            Frame::Set(vec![bulk(b"x")]),
        ),
        ("SRANDMEMBER s", m(b"x"), bulk(b"x")),
        (
            "ZRANGE z 0 -1 WITHSCORES",
            Frame::Array(vec![m(b"a"), score(b"1"), m(b"b"), score(b"2")]),
            Frame::Array(vec![bulk(b"a"), score(b"1"), bulk(b"b"), score(b"2")]),
        ),
        (
            "ZRANGE z 0 -1 WITHSCORES",
            Frame::Array(vec![
                Frame::Array(vec![m(b"a"), double(b"1")]),
                Frame::Array(vec![m(b"b"), double(b"2.5")]),
            ]),
            Frame::Array(vec![
                Frame::Array(vec![bulk(b"a"), double(b"1")]),
                Frame::Array(vec![bulk(b"b"), double(b"2.5")]),
            ]),
        ),
        (
            "ZRANGE z (1 +inf BYSCORE LIMIT 0 2",
            Frame::Array(vec![m(b"a"), m(b"b")]),
            Frame::Array(vec![bulk(b"a"), bulk(b"b")]),
        ),
        (
            "ZREVRANGEBYSCORE z +inf -inf WITHSCORES",
            Frame::Array(vec![m(b"a"), score(b"3")]),
            Frame::Array(vec![bulk(b"a"), score(b"3")]),
        ),
        // RESP3 ZPOPMIN without a count: a flat pair.
        (
            "ZPOPMIN z",
            Frame::Array(vec![m(b"a"), double(b"1")]),
            Frame::Array(vec![bulk(b"a"), double(b"1")]),
        ),
        (
            "ZPOPMAX z 2",
            Frame::Array(vec![
                Frame::Array(vec![m(b"b"), double(b"2")]),
                Frame::Array(vec![m(b"a"), double(b"1")]),
            ]),
            Frame::Array(vec![
                Frame::Array(vec![bulk(b"b"), double(b"2")]),
                Frame::Array(vec![bulk(b"a"), double(b"1")]),
            ]),
        ),
        (
            "BZPOPMIN z 0",
            Frame::Array(vec![bulk(b"z"), m(b"a"), score(b"1")]),
            Frame::Array(vec![bulk(b"z"), bulk(b"a"), score(b"1")]),
        ),
        ("BZPOPMIN z 1", Frame::NullArray, Frame::NullArray),
        (
            "ZMPOP 1 z MIN COUNT 2",
            Frame::Array(vec![
                bulk(b"z"),
                Frame::Array(vec![Frame::Array(vec![m(b"a"), score(b"1")])]),
            ]),
            Frame::Array(vec![
                bulk(b"z"),
                Frame::Array(vec![Frame::Array(vec![bulk(b"a"), score(b"1")])]),
            ]),
        ),
        (
            "ZRANDMEMBER z -2 WITHSCORES",
            Frame::Array(vec![m(b"a"), score(b"1"), m(b"a"), score(b"1")]),
            Frame::Array(vec![bulk(b"a"), score(b"1"), bulk(b"a"), score(b"1")]),
        ),
        (
            "ZRANDMEMBER z 2",
            Frame::Array(vec![m(b"a"), m(b"b")]),
            Frame::Array(vec![bulk(b"a"), bulk(b"b")]),
        ),
        (
            "ZUNION 2 a b WITHSCORES",
            Frame::Array(vec![m(b"a"), score(b"2")]),
            Frame::Array(vec![bulk(b"a"), score(b"2")]),
        ),
        (
            "ZSCAN z 0",
            Frame::Array(vec![bulk(b"0"), Frame::Array(vec![m(b"a"), score(b"1")])]),
            Frame::Array(vec![
                bulk(b"0"),
                Frame::Array(vec![bulk(b"a"), score(b"1")]),
            ]),
        ),
        (
            "GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km",
            Frame::Array(vec![m(b"palermo"), m(b"catania")]),
            Frame::Array(vec![bulk(b"palermo"), bulk(b"catania")]),
        ),
        (
            "GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST WITHHASH WITHCOORD",
            Frame::Array(vec![Frame::Array(vec![
                m(b"palermo"),
                bulk(b"190.4424"),
                Frame::Integer(3479099956230698),
                Frame::Array(vec![double(b"13.36"), double(b"38.11")]),
            ])]),
            Frame::Array(vec![Frame::Array(vec![
                bulk(b"palermo"),
                bulk(b"190.4424"),
                Frame::Integer(3479099956230698),
                Frame::Array(vec![double(b"13.36"), double(b"38.11")]),
            ])]),
        ),
        (
            "GEORADIUS g 15 37 200 km STORE d",
            Frame::Integer(2),
            Frame::Integer(2),
        ),
        // No members in these replies: scores, coordinates, hashes pass.
        ("ZSCORE z a", double(b"1.5"), double(b"1.5")),
        (
            "GEOPOS g a",
            Frame::Array(vec![Frame::Array(vec![bulk(b"13.3"), bulk(b"38.1")])]),
            Frame::Array(vec![Frame::Array(vec![bulk(b"13.3"), bulk(b"38.1")])]),
        ),
    ];
    for (cmd, reply, expected) in cases {
        let plan = plan(cmd, &ring);
        assert_eq!(decode(&plan, reply, &ring).unwrap(), expected, "{cmd}");
    }
}

#[test]
fn a_member_that_does_not_decrypt_is_an_error_never_returned() {
    let ring = ring();
    let other = self::ring();
    for planted in [bulk(b"s3cr3t-member"), member(&other, b"s3cr3t-member")] {
        let reply = Frame::Array(vec![member(&ring, b"a"), planted]);
        let err = decode(&plan("SMEMBERS s", &ring), reply, &ring).unwrap_err();
        let ReplyError::Undecryptable(problem) = err else {
            panic!("{err:?}")
        };
        assert_eq!(problem.what, Stored::Member);
        let msg = undecryptable_message("SMEMBERS", &[b"s"], problem);
        assert!(
            msg.contains("member") && msg.contains("'s'") && !msg.contains("s3cr3t"),
            "{msg}"
        );
    }
    // A Fernet token is not a member either.
    let token = Frame::Bulk(Bytes::from(ring.encrypt(b"v")));
    assert!(decode(&plan("SPOP s", &ring), token, &ring).is_err());
    // Inside EXEC the element becomes an error; the others are delivered.
    let exec = Plan::Exec(vec![
        plan("SMEMBERS s", &ring).into_queued(),
        plan("SCARD s", &ring).into_queued(),
    ]);
    let reply = Frame::Array(vec![
        Frame::Array(vec![bulk(b"planted")]),
        Frame::Integer(1),
    ]);
    let Frame::Array(items) = decode(&exec, reply, &ring).unwrap() else {
        panic!()
    };
    assert!(
        matches!(&items[0], Frame::Error(e) if e.starts_with(b"ERR redcloak") && !e.windows(7).any(|w| w == b"planted"))
    );
    assert_eq!(items[1], Frame::Integer(1));
}

#[test]
fn raw_hyperloglog_bytes_are_refused_with_a_clear_reason() {
    let ring = ring();
    let hll = Frame::Bulk(Bytes::from_static(
        b"HYLL\x01\x00\x00\x00\x80\x00\x00\x00\x00\x00\x00\x00rest",
    ));
    let err = decode(&plan("GET h", &ring), hll, &ring).unwrap_err();
    let ReplyError::Undecryptable(problem) = err else {
        panic!()
    };
    assert_eq!(problem.what, Stored::HyperLogLog);
    let msg = undecryptable_message("GET", &[b"h"], problem);
    assert!(
        msg.contains("HyperLogLog") && msg.contains("PFCOUNT") && msg.contains("'h'"),
        "{msg}"
    );
}

#[test]
fn scans_apply_match_after_decryption_and_keep_the_cursor() {
    let ring = ring();
    let a = args("SSCAN s 17 MATCH a* COUNT 100");
    let got = sent(&a, &ring);
    assert_eq!(
        got,
        args("SSCAN s 17 COUNT 100"),
        "the pattern never reaches Redis"
    );
    let page = Frame::Array(vec![
        bulk(b"42"),
        Frame::Array(vec![
            member(&ring, b"apple"),
            member(&ring, b"banana"),
            member(&ring, b"avocado"),
        ]),
    ]);
    assert_eq!(
        decode(&plan("SSCAN s 17 MATCH a* COUNT 100", &ring), page, &ring).unwrap(),
        Frame::Array(vec![
            bulk(b"42"),
            Frame::Array(vec![bulk(b"apple"), bulk(b"avocado")])
        ])
    );
    // Nothing matches: an empty page with Redis's cursor (legal for SCAN).
    let page = Frame::Array(vec![bulk(b"9"), Frame::Array(vec![member(&ring, b"kiwi")])]);
    assert_eq!(
        decode(&plan("SSCAN s 0 MATCH a*", &ring), page, &ring).unwrap(),
        Frame::Array(vec![bulk(b"9"), Frame::Array(vec![])])
    );
    // ZSCAN: pairs, filtered by member.
    let page = Frame::Array(vec![
        bulk(b"0"),
        Frame::Array(vec![
            member(&ring, b"job:1"),
            bulk(b"1"),
            member(&ring, b"other"),
            bulk(b"2"),
        ]),
    ]);
    assert_eq!(
        decode(&plan("ZSCAN z 0 MATCH job:*", &ring), page, &ring).unwrap(),
        Frame::Array(vec![
            bulk(b"0"),
            Frame::Array(vec![bulk(b"job:1"), bulk(b"1")])
        ])
    );
    // `MATCH *` is no pattern; without MATCH nothing is rewritten.
    assert!(matches!(plan("SSCAN s 0 MATCH *", &ring), Plan::Shape(_)));
    // What redcloak cannot read goes encrypted: Redis rejects it as it would have, and the
    // pattern after it never reaches Redis in plaintext.
    let got = sent(&args("SSCAN s 0 FOO MATCH secret"), &ring);
    assert_eq!(&got[..3], &args("SSCAN s 0")[..]);
    assert_eq!(got.len(), 6);
    for (arg, orig) in got[3..].iter().zip(["FOO", "MATCH", "secret"]) {
        assert_eq!(
            &ring.decrypt_member(arg).unwrap().plaintext[..],
            orig.as_bytes()
        );
    }
}

/// Two rings: `old` (key A alone) and `rotated` (new key B first, A second).
fn rotation() -> (KeyRing, KeyRing) {
    let a = redcloak_crypto::generate_key();
    let b = redcloak_crypto::generate_key();
    let old = KeyRing::parse(&a).unwrap();
    let rotated = KeyRing::parse(&format!("{},{}", &*b, &*a)).unwrap();
    assert_eq!(rotated.key_ids()[1], old.key_ids()[0]);
    (old, rotated)
}

#[test]
fn during_a_rotation_lookups_try_every_key_and_fold_the_answers() {
    let (old, ring) = rotation();
    // SISMEMBER goes as SMISMEMBER with the member under both keys, primary first.
    let got = sent(&args("SISMEMBER s alice"), &ring);
    assert_eq!(&got[0][..], b"SMISMEMBER");
    assert_eq!(&got[1][..], b"s");
    assert_eq!(&got[2][..], &ring.encrypt_member(b"alice")[..]);
    assert_eq!(&got[3][..], &old.encrypt_member(b"alice")[..]);
    assert_eq!(got.len(), 4);
    let p = plan("SISMEMBER s alice", &ring);
    let answers = |a: &[i64]| Frame::Array(a.iter().map(|&n| Frame::Integer(n)).collect());
    assert_eq!(
        decode(&p, answers(&[0, 1]), &ring).unwrap(),
        Frame::Integer(1)
    );
    assert_eq!(
        decode(&p, answers(&[1, 1]), &ring).unwrap(),
        Frame::Integer(1)
    );
    assert_eq!(
        decode(&p, answers(&[0, 0]), &ring).unwrap(),
        Frame::Integer(0)
    );
    // Errors pass (WRONGTYPE).
    let wrong = Frame::Error(Bytes::from_static(b"WRONGTYPE x"));
    assert_eq!(decode(&p, wrong.clone(), &ring).unwrap(), wrong);
    // SMISMEMBER: one answer per member.
    let got = sent(&args("SMISMEMBER s a b"), &ring);
    assert_eq!(got.len(), 2 + 4);
    assert_eq!(
        decode(
            &plan("SMISMEMBER s a b", &ring),
            answers(&[0, 1, 0, 0]),
            &ring
        )
        .unwrap(),
        answers(&[1, 0])
    );
    // ZSCORE → ZMSCORE: the first score found, nil when none (RESP2 and RESP3).
    assert_eq!(&sent(&args("ZSCORE z a"), &ring)[0][..], b"ZMSCORE");
    let p = plan("ZSCORE z a", &ring);
    assert_eq!(
        decode(&p, Frame::Array(vec![Frame::NullBulk, bulk(b"1.5")]), &ring).unwrap(),
        bulk(b"1.5")
    );
    let d = Frame::Double(Bytes::from_static(b"2"));
    assert_eq!(
        decode(&p, Frame::Array(vec![Frame::Null, d.clone()]), &ring).unwrap(),
        d
    );
    assert_eq!(
        decode(&p, Frame::Array(vec![Frame::Null, Frame::Null]), &ring).unwrap(),
        Frame::Null
    );
    // GEOPOS: per member, the first position found.
    let pos = Frame::Array(vec![bulk(b"13.3"), bulk(b"38.1")]);
    assert_eq!(
        decode(
            &plan("GEOPOS g a b", &ring),
            Frame::Array(vec![
                Frame::NullArray,
                pos.clone(),
                Frame::NullArray,
                Frame::NullArray
            ]),
            &ring
        )
        .unwrap(),
        Frame::Array(vec![pos, Frame::NullArray])
    );
    // Removal: every candidate goes; a member stored under both keys is counted once.
    let got = sent(&args("SREM s a b"), &ring);
    assert_eq!(got.len(), 2 + 4);
    let p = plan("SREM s a b a", &ring);
    assert_eq!(
        decode(&p, Frame::Integer(1), &ring).unwrap(),
        Frame::Integer(1)
    );
    assert_eq!(
        decode(&p, Frame::Integer(3), &ring).unwrap(),
        Frame::Integer(2)
    );
    // Writes go under the primary key only.
    let got = sent(&args("SADD s a"), &ring);
    assert_eq!(
        got,
        vec![
            got[0].clone(),
            got[1].clone(),
            Bytes::from(ring.encrypt_member(b"a"))
        ]
    );
    // Members stored under the old key decrypt.
    assert_eq!(
        decode(
            &plan("SMEMBERS s", &ring),
            Frame::Array(vec![member(&old, b"a"), member(&ring, b"b")]),
            &ring
        )
        .unwrap(),
        Frame::Array(vec![bulk(b"a"), bulk(b"b")])
    );
    // Inside MULTI the queued plan folds EXEC's element the same way.
    let exec = Plan::Exec(vec![
        Queued::Shape(&table::Shape::Pass),
        plan("SISMEMBER s a", &ring).into_queued(),
    ]);
    assert_eq!(
        decode(
            &exec,
            Frame::Array(vec![Frame::Integer(1), answers(&[0, 1])]),
            &ring
        )
        .unwrap(),
        Frame::Array(vec![Frame::Integer(1), Frame::Integer(1)])
    );
    // A reply whose length does not fit the candidates is malformed, never guessed at.
    assert!(matches!(
        decode(&plan("SMISMEMBER s a b", &ring), answers(&[1, 0, 1]), &ring),
        Err(ReplyError::Protocol(_))
    ));
    // With one key nothing is rewritten.
    assert_eq!(sent(&args("SISMEMBER s a"), &old).len(), 3);
    assert!(matches!(plan("SISMEMBER s a", &old), Plan::Shape(_)));
}

proptest! {
    /// The member cipher as the transform uses it: deterministic under one key (so Redis can
    /// compare), injective (different members never collide, so counts are right), different
    /// across keys, and what Redis returns decrypts to what was sent.
    #[test]
    fn member_cipher_is_deterministic_injective_and_keyed(
        a in proptest::collection::vec(any::<u8>(), 0..48),
        b in proptest::collection::vec(any::<u8>(), 0..48),
    ) {
        let (old, ring) = rotation();
        let sadd = |r: &KeyRing, m: &[u8]| {
            let cmd = vec![Bytes::from_static(b"SADD"), Bytes::from_static(b"s"), Bytes::copy_from_slice(m)];
            sent(&cmd, r)[2].clone()
        };
        prop_assert_eq!(sadd(&ring, &a), sadd(&ring, &a));
        prop_assert_eq!(sadd(&old, &a), sadd(&old, &a));
        prop_assert_eq!(sadd(&ring, &a) == sadd(&ring, &b), a == b);
        prop_assert_ne!(sadd(&ring, &a), sadd(&old, &a));
        prop_assert_eq!(sadd(&ring, &a).len(), a.len() + 21);
        // The candidates a rotated ring looks up include what the old ring stored.
        let cmd = vec![Bytes::from_static(b"SISMEMBER"), Bytes::from_static(b"s"), Bytes::copy_from_slice(&a)];
        let lookup = sent(&cmd, &ring);
        prop_assert_eq!(&lookup[3], &sadd(&old, &a));
        prop_assert_eq!(&lookup[2], &sadd(&ring, &a));
        let reply = Frame::Array(vec![Frame::Bulk(sadd(&old, &a)), Frame::Bulk(sadd(&ring, &b))]);
        let decoded = decode(&plan("SMEMBERS s", &ring), reply, &ring).unwrap();
        prop_assert_eq!(decoded, Frame::Array(vec![Frame::Bulk(Bytes::from(a.clone())), Frame::Bulk(Bytes::from(b.clone()))]));
    }
}

#[test]
fn a_member_from_another_ring_is_refused_not_returned() {
    let (old, _) = rotation();
    let stranger = ring();
    let err = decode(&plan("SPOP s", &old), member(&stranger, b"x"), &old).unwrap_err();
    assert!(matches!(
        err,
        ReplyError::Undecryptable(u) if u.error == DecryptError::NoMatchingKey && u.what == Stored::Member
    ));
}
