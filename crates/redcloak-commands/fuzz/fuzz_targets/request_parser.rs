//! The client request parser (`resp::RequestParser`): arbitrary bytes, fed whole and in
//! random chunks.
//!
//! Invariants: no panic; the requests and the error are the same however the bytes are split
//! (resumption never misframes); every request is non-empty and within the limits; a multibulk
//! request re-encoded parses back to the same arguments.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use redcloak_commands::resp::{
    write_array_len, write_bulk, Limits, ProtocolError, Request, RequestParser,
};
use redcloak_commands_fuzz::Input;

/// Small limits make every limit reachable; the defaults are what redcloak runs with.
fn limits(small: bool) -> Limits {
    if small {
        Limits {
            max_bulk_len: 64,
            max_array_len: 16,
            max_depth: 8,
            max_inline_len: 128,
        }
    } else {
        Limits::default()
    }
}

/// Feeds `data` in pieces of the given sizes (the rest at the end), taking every request.
fn parse_all(
    limits: Limits,
    data: &[u8],
    chunks: &[usize],
) -> (Vec<Request>, Option<ProtocolError>) {
    let mut parser = RequestParser::new(limits);
    let mut buf = BytesMut::new();
    let mut requests = Vec::new();
    let mut at = 0;
    let mut sizes = chunks.iter().copied().chain(std::iter::once(usize::MAX));
    while at < data.len() {
        let n = sizes.next().unwrap_or(usize::MAX).max(1);
        let end = at.saturating_add(n).min(data.len());
        buf.extend_from_slice(&data[at..end]);
        at = end;
        loop {
            match parser.parse(&mut buf) {
                Ok(Some(r)) => requests.push(r),
                Ok(None) => break,
                Err(e) => return (requests, Some(e)),
            }
        }
    }
    (requests, None)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let small = input.byte() & 1 == 1;
    let pieces = usize::from(input.byte() % 16);
    let chunks: Vec<usize> = (0..pieces).map(|_| usize::from(input.byte()) + 1).collect();
    let bytes = input.rest();
    let limits = limits(small);

    let (whole, whole_err) = parse_all(limits, bytes, &[]);
    let (split, split_err) = parse_all(limits, bytes, &chunks);
    assert_eq!(whole, split, "chunking changed the requests");
    assert_eq!(whole_err, split_err, "chunking changed the error");
    let (bytewise, bytewise_err) = parse_all(limits, bytes, &[1; 64]);
    assert_eq!(whole, bytewise);
    assert_eq!(whole_err, bytewise_err);

    for r in &whole {
        assert!(!r.args.is_empty(), "an empty request was returned");
        if r.inline {
            let total: usize = r.args.iter().map(|a| a.len()).sum();
            assert!(
                total <= limits.max_inline_len,
                "inline request over the limit"
            );
        } else {
            assert!(r.args.len() <= limits.max_array_len, "too many arguments");
            for a in &r.args {
                assert!(a.len() <= limits.max_bulk_len, "bulk over the limit");
            }
        }
        // Round trip through the encoder.
        let mut out = BytesMut::new();
        write_array_len(&mut out, r.args.len());
        for a in &r.args {
            write_bulk(&mut out, a);
        }
        let mut again = RequestParser::new(Limits::default());
        let parsed = again.parse(&mut out).expect("re-encoded request parses");
        assert_eq!(parsed.map(|p| p.args), Some(r.args.clone()));
        assert!(out.is_empty(), "re-encoded request left bytes behind");
    }
});
