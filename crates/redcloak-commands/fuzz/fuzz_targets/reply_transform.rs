//! The reply side: `resp::ReplyScanner::scan` against `Frame::parse`, then
//! `transform::decode_reply` with plans from the table's rows, and `transform::decode_pubsub`,
//! with a fixed test key ring. The input's bulks are sometimes sealed with the ring first, so
//! that decryption succeeds and the plaintext round trip can be checked.
//!
//! Invariants: no panic; the scanner and the parser agree on every input, fed whole or in
//! pieces (same length, same acceptance); an accepted reply re-encodes byte for byte; a
//! decoded reply is exactly one frame; pass-through plans change nothing; sealing every bulk
//! and decoding with `Values` gives the plaintext back; on error nothing is written.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use redcloak_commands::resp::{Frame, Limits, ReplyScanner};
use redcloak_commands::table::{ReplyRule, Shape};
use redcloak_commands::transform::{decode_pubsub, decode_reply, Plan, PubSubFrame, Queued};
use redcloak_commands_fuzz::{ring, rows, Input};

/// Every reply shape in the table (rules that depend on arguments: with and without the
/// option that changes them).
fn shapes() -> &'static [&'static Shape] {
    static SHAPES: std::sync::OnceLock<Vec<&'static Shape>> = std::sync::OnceLock::new();
    SHAPES.get_or_init(|| {
        let mut v: Vec<&'static Shape> = vec![&Shape::Pass, &Shape::Values, &Shape::Value];
        let with = [
            Bytes::from_static(b"X"),
            Bytes::from_static(b"k"),
            Bytes::from_static(b"3"),
            Bytes::from_static(b"WITHVALUES"),
        ];
        for (spec, _) in rows() {
            let found = match spec.reply {
                ReplyRule::Shape(s) => vec![s],
                ReplyRule::Custom(f) => vec![f(&[]), f(&with)],
            };
            for s in found {
                if !v.iter().any(|x| std::ptr::eq(*x, s) || *x == s) {
                    v.push(s);
                }
            }
        }
        v
    })
}

fn limits(small: bool) -> Limits {
    if small {
        Limits {
            max_bulk_len: 4096,
            max_array_len: 64,
            max_depth: 6,
            max_inline_len: 128,
        }
    } else {
        Limits::default()
    }
}

/// The frame with every bulk string sealed with the test ring.
fn seal(f: &Frame) -> Frame {
    let all = |v: &[Frame]| v.iter().map(seal).collect::<Vec<_>>();
    let pairs = |p: &[(Frame, Frame)]| {
        p.iter()
            .map(|(k, v)| (seal(k), seal(v)))
            .collect::<Vec<_>>()
    };
    match f {
        Frame::Bulk(b) => Frame::Bulk(Bytes::from(ring().encrypt(b))),
        Frame::Array(v) => Frame::Array(all(v)),
        Frame::Set(v) => Frame::Set(all(v)),
        Frame::Push(v) => Frame::Push(all(v)),
        Frame::Map(p) => Frame::Map(pairs(p)),
        Frame::Attribute { attributes, frame } => Frame::Attribute {
            attributes: attributes.clone(),
            frame: Box::new(seal(frame)),
        },
        other => other.clone(),
    }
}

/// Only arrays, sets, bulks and leaves without bytes: `Values` reaches every bulk of those.
fn values_reach_all(f: &Frame) -> (bool, usize) {
    match f {
        Frame::Bulk(_) => (true, 1),
        Frame::Array(v) | Frame::Set(v) => v.iter().fold((true, 0), |(ok, n), x| {
            let (o, m) = values_reach_all(x);
            (ok && o, n + m)
        }),
        Frame::Integer(_)
        | Frame::NullBulk
        | Frame::NullArray
        | Frame::Null
        | Frame::Boolean(_) => (true, 0),
        _ => (false, 0),
    }
}

fn one_frame(out: &[u8]) -> Frame {
    let out = Bytes::copy_from_slice(out);
    match Frame::parse(&out, &Limits::default()) {
        Ok(Some((f, len))) => {
            assert_eq!(len, out.len(), "decoded reply is more than one frame");
            f
        }
        other => panic!("decoded reply is not one frame: {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mode = input.byte();
    let shape = shapes()[input.below(shapes().len())];
    let exec_len = usize::from(input.byte() % 6);
    let exec: Vec<&'static Shape> = (0..exec_len)
        .map(|_| shapes()[input.below(shapes().len())])
        .collect();
    let step = usize::from(input.byte()) + 1;
    let bytes = Bytes::copy_from_slice(input.rest());
    let limits = limits(mode & 1 == 1);

    // Scanner: whole buffer, then growing prefixes (resumed), then the parser.
    let whole = ReplyScanner::new(limits).scan(&bytes);
    let mut scanner = ReplyScanner::new(limits);
    let mut resumed = Ok(None);
    let mut end = 0;
    while end < bytes.len() {
        end = (end + step).min(bytes.len());
        resumed = scanner.scan(&bytes[..end]);
        if !matches!(resumed, Ok(None)) {
            break;
        }
    }
    let parsed = Frame::parse(&bytes, &limits);
    match (&whole, &parsed) {
        (Ok(Some(n)), Ok(Some((_, m)))) => assert_eq!(n, m, "scanner and parser lengths differ"),
        (Ok(None), Ok(None)) | (Err(_), Err(_)) => {}
        _ => panic!(
            "scanner {whole:?} and parser {:?} disagree",
            parsed.as_ref().map(|p| p.as_ref().map(|x| x.1))
        ),
    }
    match (&whole, &resumed) {
        (Ok(Some(n)), Ok(Some(m))) => assert_eq!(n, m, "resumed scan found another length"),
        (Ok(None), Ok(None)) | (Err(_), Err(_)) => {}
        _ => panic!("whole scan {whole:?} and resumed scan {resumed:?} disagree"),
    }
    let Ok(Some((frame, len))) = parsed else {
        return;
    };
    let raw = bytes.slice(..len);
    let mut again = BytesMut::new();
    frame.encode(&mut again);
    assert_eq!(
        &again[..],
        &raw[..],
        "parsed reply does not re-encode byte for byte"
    );

    // Transform, on the reply as it is or with its bulks sealed.
    let sealed = mode & 2 == 2;
    let input_frame = if sealed { seal(&frame) } else { frame.clone() };
    let mut encoded = BytesMut::new();
    input_frame.encode(&mut encoded);
    let encoded = encoded.freeze();
    let plan = if mode & 4 == 4 {
        Plan::Exec(exec.iter().map(|&s| Queued::Shape(s)).collect())
    } else {
        Plan::Shape(shape)
    };
    let mut out = BytesMut::new();
    match decode_reply(&plan, encoded.clone(), ring(), &Limits::default(), &mut out) {
        Ok(count) => {
            let decoded = one_frame(&out);
            if plan == Plan::Shape(&Shape::Pass) {
                assert_eq!(&out[..], &encoded[..], "Pass changed the reply");
                assert_eq!(count, 0);
            }
            if let (Plan::Exec(_), Frame::Array(items)) = (&plan, &input_frame) {
                match &decoded {
                    Frame::Array(d) => {
                        assert_eq!(d.len(), items.len(), "EXEC reply length changed")
                    }
                    other => panic!("EXEC array became {other:?}"),
                }
            }
            let (reach, bulks) = values_reach_all(&frame);
            if sealed && reach && plan == Plan::Shape(&Shape::Values) {
                assert_eq!(decoded, frame, "sealed then decoded is not the plaintext");
                assert_eq!(count, bulks);
            }
        }
        Err(_) => assert!(out.is_empty(), "an error left bytes in the output"),
    }

    let mut out = BytesMut::new();
    match decode_pubsub(&encoded, ring(), &Limits::default(), &mut out) {
        Ok(PubSubFrame::NotPubSub) | Err(_) => assert!(out.is_empty()),
        Ok(_) => {
            one_frame(&out);
        }
    }
});
