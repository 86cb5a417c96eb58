//! Differential tests: our RESP parser against redis-protocol 6 as an oracle.
//!
//! proptest generates frames (RESP2 and RESP3, depth ≤ 4, binary bulk contents), encodes them
//! with our encoder and with redis-protocol's, and checks that [`Frame::parse`],
//! [`ReplyScanner`] and redis-protocol's decoders agree on the structure and on the number of
//! bytes consumed. Requests are checked the same way. Random and mutated byte strings are fed
//! to all three entry points: no panics, the scanner and `Frame::parse` agree, anything
//! accepted re-encodes byte for byte, and whatever we accept that redis-protocol can
//! represent, it decodes to the same frame and length.

use std::fmt;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use redcloak_commands::resp::{
    write_array_len, write_bulk, Frame, Limits, ProtocolError, ReplyScanner, Request, RequestParser,
};
use redis_protocol::bytes_utils::Str;
use redis_protocol::resp2::types::BytesFrame as R2;
use redis_protocol::resp3::types::{BytesFrame as R3, Resp3Frame, VerbatimStringFormat};
use redis_protocol::{resp2, resp3};

// === helpers ===

/// A frame printed in full (its wire form), for proptest's failure reports: `Frame`'s own
/// `Debug` hides payloads on purpose.
#[derive(Clone, PartialEq)]
struct Shown(Frame);

impl fmt::Debug for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", Bytes::from(encode(&self.0)))
    }
}

fn encode(frame: &Frame) -> Vec<u8> {
    let mut out = BytesMut::new();
    frame.encode(&mut out);
    out.to_vec()
}

fn encode_request(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = BytesMut::new();
    write_array_len(&mut out, args.len());
    for arg in args {
        write_bulk(&mut out, arg);
    }
    out.to_vec()
}

fn scan(input: &[u8]) -> Result<Option<usize>, ProtocolError> {
    ReplyScanner::new(Limits::default()).scan(input)
}

/// The scanner fed `input` in pieces ending at `cuts`, like successive reads.
fn scan_chunked(input: &[u8], cuts: &[usize]) -> Result<Option<usize>, ProtocolError> {
    let mut scanner = ReplyScanner::new(Limits::default());
    let mut ends: Vec<usize> = cuts.iter().map(|&c| c % (input.len() + 1)).collect();
    ends.sort_unstable();
    ends.push(input.len());
    for end in ends {
        match scanner.scan(&input[..end]) {
            Ok(None) => continue,
            done => return done,
        }
    }
    Ok(None)
}

/// All requests in `input`, fed in pieces ending at `cuts`; stops at the first error.
fn requests_chunked(input: &[u8], cuts: &[usize]) -> (Vec<Request>, Option<ProtocolError>) {
    let mut parser = RequestParser::new(Limits::default());
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut ends: Vec<usize> = cuts.iter().map(|&c| c % (input.len() + 1)).collect();
    ends.sort_unstable();
    ends.push(input.len());
    let mut fed = 0;
    for end in ends {
        buf.extend_from_slice(&input[fed..end]);
        fed = end;
        loop {
            match parser.parse(&mut buf) {
                Ok(Some(request)) => out.push(request),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

/// A normal form for comparing structures: map, set and attribute entries sorted by their
/// encoding (redis-protocol keeps them in hash maps), doubles as the `f64` they denote,
/// RESP2's two nulls merged (redis-protocol has one).
fn canon(frame: &Frame) -> Frame {
    fn sorted_pairs(pairs: &[(Frame, Frame)]) -> Vec<(Frame, Frame)> {
        let mut out: Vec<_> = pairs.iter().map(|(k, v)| (canon(k), canon(v))).collect();
        out.sort_by_key(|(k, v)| (encode(k), encode(v)));
        out
    }
    match frame {
        Frame::NullArray => Frame::NullBulk,
        Frame::Double(text) => {
            let value: f64 = std::str::from_utf8(text).unwrap().parse().unwrap();
            Frame::Double(Bytes::from(format!("{value:?}")))
        }
        Frame::Array(v) => Frame::Array(v.iter().map(canon).collect()),
        Frame::Push(v) => Frame::Push(v.iter().map(canon).collect()),
        Frame::Set(v) => {
            let mut out: Vec<_> = v.iter().map(canon).collect();
            out.sort_by_key(encode);
            Frame::Set(out)
        }
        Frame::Map(pairs) => Frame::Map(sorted_pairs(pairs)),
        Frame::Attribute { attributes, frame } => Frame::Attribute {
            attributes: sorted_pairs(attributes),
            frame: Box::new(canon(frame)),
        },
        other => other.clone(),
    }
}

// === conversions to and from redis-protocol's frames ===

fn to_r2(frame: &Frame) -> R2 {
    match frame {
        Frame::Simple(b) => R2::SimpleString(b.clone()),
        Frame::Error(b) => R2::Error(Str::from(String::from_utf8(b.to_vec()).unwrap())),
        Frame::Integer(n) => R2::Integer(*n),
        Frame::Bulk(b) => R2::BulkString(b.clone()),
        Frame::NullBulk | Frame::NullArray => R2::Null,
        Frame::Array(v) => R2::Array(v.iter().map(to_r2).collect()),
        other => panic!("not RESP2: {:?}", Shown(other.clone())),
    }
}

fn from_r2(frame: R2) -> Frame {
    match frame {
        R2::SimpleString(b) => Frame::Simple(b),
        R2::Error(s) => Frame::Error(Bytes::copy_from_slice(s.as_bytes())),
        R2::Integer(n) => Frame::Integer(n),
        R2::BulkString(b) => Frame::Bulk(b),
        R2::Null => Frame::NullBulk,
        R2::Array(v) => Frame::Array(v.into_iter().map(from_r2).collect()),
    }
}

fn to_r3(frame: &Frame) -> R3 {
    let pairs =
        |pairs: &[(Frame, Frame)]| pairs.iter().map(|(k, v)| (to_r3(k), to_r3(v))).collect();
    match frame {
        Frame::Simple(b) => R3::SimpleString {
            data: b.clone(),
            attributes: None,
        },
        Frame::Error(b) => R3::SimpleError {
            data: Str::from(String::from_utf8(b.to_vec()).unwrap()),
            attributes: None,
        },
        Frame::Integer(n) => R3::Number {
            data: *n,
            attributes: None,
        },
        Frame::Bulk(b) => R3::BlobString {
            data: b.clone(),
            attributes: None,
        },
        Frame::Array(v) => R3::Array {
            data: v.iter().map(to_r3).collect(),
            attributes: None,
        },
        Frame::Null => R3::Null,
        Frame::Boolean(b) => R3::Boolean {
            data: *b,
            attributes: None,
        },
        Frame::Double(text) => R3::Double {
            data: std::str::from_utf8(text).unwrap().parse().unwrap(),
            attributes: None,
        },
        Frame::BigNumber(b) => R3::BigNumber {
            data: b.clone(),
            attributes: None,
        },
        Frame::BulkError(b) => R3::BlobError {
            data: b.clone(),
            attributes: None,
        },
        Frame::Verbatim { format, data } => R3::VerbatimString {
            data: data.clone(),
            format: match format {
                b"txt" => VerbatimStringFormat::Text,
                b"mkd" => VerbatimStringFormat::Markdown,
                other => panic!("format {other:?} not representable"),
            },
            attributes: None,
        },
        Frame::Map(p) => R3::Map {
            data: pairs(p),
            attributes: None,
        },
        Frame::Set(v) => R3::Set {
            data: v.iter().map(to_r3).collect(),
            attributes: None,
        },
        Frame::Push(v) => R3::Push {
            data: v.iter().map(to_r3).collect(),
            attributes: None,
        },
        Frame::Attribute { attributes, frame } => {
            let mut inner = to_r3(frame);
            inner.add_attributes(pairs(attributes)).unwrap();
            inner
        }
        Frame::NullBulk | Frame::NullArray => panic!("RESP2 null in a RESP3 test"),
    }
}

fn from_r3(mut frame: R3) -> Frame {
    let attributes = frame.take_attributes();
    let pairs = |map: std::collections::HashMap<R3, R3>| {
        map.into_iter()
            .map(|(k, v)| (from_r3(k), from_r3(v)))
            .collect()
    };
    let plain = match frame {
        R3::SimpleString { data, .. } => Frame::Simple(data),
        R3::SimpleError { data, .. } => Frame::Error(Bytes::copy_from_slice(data.as_bytes())),
        R3::Number { data, .. } => Frame::Integer(data),
        R3::BlobString { data, .. } => Frame::Bulk(data),
        R3::BlobError { data, .. } => Frame::BulkError(data),
        R3::Array { data, .. } => Frame::Array(data.into_iter().map(from_r3).collect()),
        R3::Null => Frame::Null,
        R3::Boolean { data, .. } => Frame::Boolean(data),
        R3::Double { data, .. } => Frame::Double(Bytes::from(format!("{data:?}"))),
        R3::BigNumber { data, .. } => Frame::BigNumber(data),
        R3::VerbatimString { data, format, .. } => Frame::Verbatim {
            format: match format {
                VerbatimStringFormat::Text => *b"txt",
                VerbatimStringFormat::Markdown => *b"mkd",
            },
            data,
        },
        R3::Map { data, .. } => Frame::Map(pairs(data)),
        R3::Set { data, .. } => Frame::Set(data.into_iter().map(from_r3).collect()),
        R3::Push { data, .. } => Frame::Push(data.into_iter().map(from_r3).collect()),
        other => panic!("unexpected redis-protocol frame {other:?}"),
    };
    match attributes {
        Some(attributes) => Frame::Attribute {
            attributes: pairs(attributes),
            frame: Box::new(plain),
        },
        None => plain,
    }
}

/// Whether redis-protocol's RESP2 decoder can represent `frame` (its errors are `str`).
fn r2_representable(frame: &Frame) -> bool {
    match frame {
        Frame::Simple(_)
        | Frame::Integer(_)
        | Frame::Bulk(_)
        | Frame::NullBulk
        | Frame::NullArray => true,
        Frame::Error(b) => std::str::from_utf8(b).is_ok(),
        Frame::Array(v) => v.iter().all(r2_representable),
        _ => false,
    }
}

/// Whether redis-protocol's RESP3 decoder can represent `frame`: map keys and set members
/// hashable scalars without duplicates, `txt`/`mkd` only, no NaN (NaN != NaN), attributes
/// on anything but null and attributes, no RESP2 nulls, UTF-8 simple errors.
fn r3_representable(frame: &Frame) -> bool {
    fn scalar(frame: &Frame) -> bool {
        !matches!(
            frame,
            Frame::Array(_)
                | Frame::Map(_)
                | Frame::Set(_)
                | Frame::Push(_)
                | Frame::Attribute { .. }
        ) && r3_representable(frame)
    }
    fn distinct<'a>(keys: impl Iterator<Item = &'a Frame>) -> bool {
        let mut seen: Vec<Vec<u8>> = keys.map(|k| encode(&canon(k))).collect();
        let n = seen.len();
        seen.sort();
        seen.dedup();
        seen.len() == n
    }
    fn pairs_ok(pairs: &[(Frame, Frame)]) -> bool {
        pairs.iter().all(|(k, v)| scalar(k) && r3_representable(v))
            && distinct(pairs.iter().map(|(k, _)| k))
    }
    match frame {
        Frame::NullBulk | Frame::NullArray => false,
        Frame::Error(b) => std::str::from_utf8(b).is_ok(),
        Frame::Double(text) => !std::str::from_utf8(text)
            .unwrap()
            .parse::<f64>()
            .unwrap()
            .is_nan(),
        Frame::Verbatim { format, .. } => format == b"txt" || format == b"mkd",
        Frame::Array(v) | Frame::Push(v) => v.iter().all(r3_representable),
        Frame::Set(v) => v.iter().all(scalar) && distinct(v.iter()),
        Frame::Map(pairs) => pairs_ok(pairs),
        Frame::Attribute { attributes, frame } => {
            !matches!(**frame, Frame::Null | Frame::Attribute { .. })
                && pairs_ok(attributes)
                && r3_representable(frame)
        }
        _ => true,
    }
}

/// Whether redis-protocol's encoder must produce exactly our bytes: no hash-ordered
/// collections of two or more entries, no doubles (it re-formats them).
fn r3_byte_stable(frame: &Frame) -> bool {
    match frame {
        Frame::Double(_) => false,
        Frame::Array(v) | Frame::Push(v) => v.iter().all(r3_byte_stable),
        Frame::Set(v) => v.len() < 2 && v.iter().all(r3_byte_stable),
        Frame::Map(p) => {
            p.len() < 2
                && p.iter()
                    .all(|(k, v)| r3_byte_stable(k) && r3_byte_stable(v))
        }
        Frame::Attribute { attributes, frame } => {
            attributes.len() < 2
                && attributes
                    .iter()
                    .all(|(k, v)| r3_byte_stable(k) && r3_byte_stable(v))
                && r3_byte_stable(frame)
        }
        _ => true,
    }
}

// === strategies ===

fn line_bytes() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(
        any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
        0..16,
    )
    .prop_map(Bytes::from)
}

fn error_text() -> impl Strategy<Value = Bytes> {
    "[^\r\n]{0,16}".prop_map(|s| Bytes::from(s.into_bytes()))
}

fn blob() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..48).prop_map(Bytes::from)
}

fn double_text() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        (
            -100_000i32..100_000,
            prop::sample::select(vec![1.0f64, 2.0, 8.0, 1000.0])
        )
            .prop_map(|(n, d)| Bytes::from(format!("{}", f64::from(n) / d))),
        prop::sample::select(vec!["inf", "-inf", "1e10", "2.5e-3", "-7E+2"])
            .prop_map(|s: &str| Bytes::from_static(s.as_bytes())),
    ]
}

fn big_number() -> impl Strategy<Value = Bytes> {
    "-?[1-9][0-9]{0,40}".prop_map(|s| Bytes::from(s.into_bytes()))
}

fn resp2_frame() -> impl Strategy<Value = Frame> {
    let leaf = prop_oneof![
        line_bytes().prop_map(Frame::Simple),
        error_text().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        blob().prop_map(Frame::Bulk),
        Just(Frame::NullBulk),
        Just(Frame::NullArray),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop::collection::vec(inner, 0..5).prop_map(Frame::Array)
    })
}

/// RESP3 scalars usable as map keys and set members.
fn resp3_scalar() -> impl Strategy<Value = Frame> {
    prop_oneof![
        line_bytes().prop_map(Frame::Simple),
        error_text().prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        blob().prop_map(Frame::Bulk),
        Just(Frame::Null),
        any::<bool>().prop_map(Frame::Boolean),
        double_text().prop_map(Frame::Double),
        big_number().prop_map(Frame::BigNumber),
        blob().prop_map(Frame::BulkError),
        (prop::sample::select(vec![*b"txt", *b"mkd"]), blob())
            .prop_map(|(format, data)| Frame::Verbatim { format, data }),
    ]
}

fn dedup_pairs(pairs: Vec<(Frame, Frame)>) -> Vec<(Frame, Frame)> {
    let mut seen = Vec::new();
    pairs
        .into_iter()
        .filter(|(k, _)| {
            let key = encode(&canon(k));
            let new = !seen.contains(&key);
            seen.push(key);
            new
        })
        .collect()
}

fn resp3_frame() -> impl Strategy<Value = Frame> {
    resp3_scalar().prop_recursive(4, 48, 5, |inner| {
        let pairs =
            || prop::collection::vec((resp3_scalar(), inner.clone()), 0..4).prop_map(dedup_pairs);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Frame::Array),
            prop::collection::vec(inner.clone(), 0..5).prop_map(Frame::Push),
            pairs().prop_map(Frame::Map),
            prop::collection::vec(resp3_scalar(), 0..5).prop_map(|v| {
                let pairs = dedup_pairs(v.into_iter().map(|f| (f, Frame::Null)).collect());
                Frame::Set(pairs.into_iter().map(|(f, _)| f).collect())
            }),
            (
                pairs(),
                inner.clone().prop_filter("annotatable", |f| !matches!(
                    f,
                    Frame::Null | Frame::Attribute { .. }
                ))
            )
                .prop_map(|(attributes, frame)| Frame::Attribute {
                    attributes,
                    frame: Box::new(frame),
                }),
        ]
    })
}

fn request_args() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..8)
}

/// Quotes an argument the way redis-cli's `sdscatrepr` would, so that Redis's inline
/// splitting gives it back.
fn quote(arg: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    for &b in arg {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
        }
    }
    out.push(b'"');
    out
}

// === the checks shared by generated and mutated input ===

/// Our two reply entry points must agree with each other on any input; whatever they accept
/// re-encodes byte for byte; and the scanner gives the same answer fed in pieces.
fn check_ours(input: &[u8], cuts: &[usize]) -> Result<Option<(Frame, usize)>, TestCaseError> {
    let parsed = Frame::parse(&Bytes::copy_from_slice(input), &Limits::default());
    let scanned = scan(input);
    match (&parsed, &scanned) {
        (Ok(Some((frame, n))), Ok(Some(m))) => {
            prop_assert_eq!(n, m);
            prop_assert_eq!(
                Bytes::from(encode(frame)),
                Bytes::copy_from_slice(&input[..*n])
            );
        }
        (Ok(None), Ok(None)) => {}
        (Err(a), Err(b)) => prop_assert_eq!(a, b),
        _ => prop_assert!(
            false,
            "Frame::parse {:?} but scanner {:?}",
            parsed
                .as_ref()
                .map(|o| o.as_ref().map(|(f, n)| (Shown(f.clone()), *n))),
            scanned
        ),
    }
    prop_assert_eq!(scan_chunked(input, cuts), scanned.clone());
    Ok(parsed.ok().flatten())
}

/// Whatever we accept that redis-protocol can represent, it must decode identically.
fn check_against_oracle(input: &[u8], ours: &Option<(Frame, usize)>) -> Result<(), TestCaseError> {
    let Some((frame, n)) = ours else {
        return Ok(());
    };
    let input = Bytes::copy_from_slice(input);
    if r3_representable(frame) {
        let (theirs, m) = resp3::decode::complete::decode_bytes(&input)
            .map_err(|e| {
                TestCaseError::fail(format!(
                    "redis-protocol RESP3 refused {:?}: {e:?}",
                    Shown(frame.clone())
                ))
            })?
            .ok_or_else(|| TestCaseError::fail("redis-protocol RESP3: incomplete"))?;
        prop_assert_eq!(m, *n);
        prop_assert_eq!(Shown(canon(&from_r3(theirs))), Shown(canon(frame)));
    }
    if r2_representable(frame) {
        let (theirs, m) = resp2::decode::decode_bytes(&input)
            .map_err(|e| {
                TestCaseError::fail(format!(
                    "redis-protocol RESP2 refused {:?}: {e:?}",
                    Shown(frame.clone())
                ))
            })?
            .ok_or_else(|| TestCaseError::fail("redis-protocol RESP2: incomplete"))?;
        prop_assert_eq!(m, *n);
        prop_assert_eq!(Shown(canon(&from_r2(theirs))), Shown(canon(frame)));
    }
    Ok(())
}

/// Random edits of a valid encoding: replaced, inserted and removed bytes.
fn mutate(mut input: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    const SYNTAX: &[u8] = b"+-:$*_,#!=(%~>|;.?0123456789\r\n-tf";
    for &(at, op, byte) in edits {
        let at = at % (input.len() + 1);
        let byte = if byte % 2 == 0 {
            SYNTAX[usize::from(byte) % SYNTAX.len()]
        } else {
            byte
        };
        match op % 3 {
            0 if at < input.len() => input[at] = byte,
            1 => input.insert(at, byte),
            _ if at < input.len() => {
                input.remove(at);
            }
            _ => input.push(byte),
        }
    }
    input
}

proptest! {
    // No regression files: this test owns no files beyond itself.
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn resp2_frames_agree_with_redis_protocol(
        Shown(frame) in resp2_frame().prop_map(Shown),
        Shown(next) in resp2_frame().prop_map(Shown),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let ours = encode(&frame);
        let mut theirs = BytesMut::new();
        resp2::encode::extend_encode(&mut theirs, &to_r2(&frame), false).unwrap();
        // redis-protocol has one null, which it writes as `$-1`.
        prop_assert_eq!(Bytes::from(encode(&canon(&frame))), theirs.freeze());

        // A second reply behind the first (pipelining) must not change the first.
        let mut input = ours.clone();
        input.extend(encode(&next));
        let parsed = check_ours(&input, &cuts)?;
        prop_assert_eq!(parsed.as_ref().map(|(f, n)| (Shown(f.clone()), *n)), Some((Shown(frame.clone()), ours.len())));
        check_against_oracle(&input, &parsed)?;
    }

    #[test]
    fn resp3_frames_agree_with_redis_protocol(
        Shown(frame) in resp3_frame().prop_map(Shown),
        Shown(next) in resp3_frame().prop_map(Shown),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        prop_assert!(r3_representable(&frame));
        let ours = encode(&frame);
        let mut input = ours.clone();
        input.extend(encode(&next));
        let parsed = check_ours(&input, &cuts)?;
        prop_assert_eq!(parsed.as_ref().map(|(f, n)| (Shown(f.clone()), *n)), Some((Shown(frame.clone()), ours.len())));
        check_against_oracle(&input, &parsed)?;

        // redis-protocol's encoding (hash-map order, its own double format) parses to the
        // same structure, with its length.
        let mut theirs = BytesMut::new();
        resp3::encode::complete::extend_encode(&mut theirs, &to_r3(&frame), false).unwrap();
        if r3_byte_stable(&frame) {
            prop_assert_eq!(Bytes::from(ours), theirs.clone().freeze());
        }
        let theirs_len = theirs.len();
        theirs.extend_from_slice(&encode(&next));
        let reparsed = check_ours(&theirs, &cuts)?;
        let (reparsed, n) = reparsed.ok_or_else(|| TestCaseError::fail("redis-protocol's encoding not parsed"))?;
        prop_assert_eq!(n, theirs_len);
        prop_assert_eq!(Shown(canon(&reparsed)), Shown(canon(&frame)));
    }

    #[test]
    fn mutated_replies_never_panic_and_agree(
        Shown(frame) in prop_oneof![resp2_frame(), resp3_frame()].prop_map(Shown),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let input = mutate(encode(&frame), &edits);
        let parsed = check_ours(&input, &cuts)?;
        check_against_oracle(&input, &parsed)?;
    }

    #[test]
    fn random_bytes_never_panic(
        input in prop::collection::vec(any::<u8>(), 0..300),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let parsed = check_ours(&input, &cuts)?;
        check_against_oracle(&input, &parsed)?;
        let whole = requests_chunked(&input, &[]);
        prop_assert_eq!(requests_chunked(&input, &cuts), whole);
    }

    #[test]
    fn requests_agree_with_redis_protocol(args in request_args(), cuts in prop::collection::vec(any::<usize>(), 0..4)) {
        let ours = encode_request(&args);
        let mut theirs = BytesMut::new();
        let array = R2::Array(args.iter().map(|a| R2::BulkString(Bytes::copy_from_slice(a))).collect());
        resp2::encode::extend_encode(&mut theirs, &array, false).unwrap();
        prop_assert_eq!(Bytes::from(ours.clone()), theirs.freeze());

        let (decoded, n) = resp2::decode::decode_bytes(&Bytes::from(ours.clone())).unwrap().unwrap();
        prop_assert_eq!(n, ours.len());
        prop_assert_eq!(decoded, array);

        let expected: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let (requests, err) = requests_chunked(&ours, &cuts);
        prop_assert_eq!(err, None);
        prop_assert_eq!(requests, vec![Request { args: expected, inline: false }]);
    }

    #[test]
    fn pipelines_split_anywhere(
        batch in prop::collection::vec((request_args(), any::<bool>()), 1..6),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        // Multibulk and quoted inline requests, interleaved with things Redis skips.
        let mut input = Vec::new();
        let mut expected = Vec::new();
        for (args, inline) in &batch {
            if *inline {
                let quoted: Vec<Vec<u8>> = args.iter().map(|a| quote(a)).collect();
                input.extend(quoted.join(&b" \t"[..]));
                input.extend_from_slice(b"\r\n");
            } else {
                input.extend(encode_request(args));
            }
            input.extend_from_slice(b"*0\r\n\r\n");
            expected.push(Request {
                args: args.iter().map(|a| Bytes::copy_from_slice(a)).collect(),
                inline: *inline,
            });
        }
        let whole = requests_chunked(&input, &[]);
        prop_assert_eq!(&whole, &(expected, None));
        prop_assert_eq!(requests_chunked(&input, &cuts), whole);
    }

    #[test]
    fn unquoted_inline_arguments(args in prop::collection::vec("[a-zA-Z0-9:_.{}-]{1,12}", 1..8)) {
        let line = format!("{}\n", args.join(" "));
        let (requests, err) = requests_chunked(line.as_bytes(), &[]);
        prop_assert_eq!(err, None);
        let expected: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        prop_assert_eq!(requests, vec![Request { args: expected, inline: true }]);
    }

    #[test]
    fn mutated_requests_never_panic(
        batch in prop::collection::vec(request_args(), 1..3),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let input = mutate(batch.iter().flat_map(|a| encode_request(a)).collect(), &edits);
        let whole = requests_chunked(&input, &[]);
        prop_assert_eq!(requests_chunked(&input, &cuts), whole);
    }
}
