//! The request side: `table::resolve`, `table::keys_of` and `transform::encode_request` for
//! random rows of the table and random arguments, with a fixed test key ring.
//!
//! Invariants: no panic and no hang (run with `-timeout`); key positions are within the
//! arguments; on success the output is exactly one request with the same number of
//! arguments, every value position holds a token that decrypts to the argument, every other
//! argument is unchanged (a sealed `RESTORE` payload is opened), and the count returned is the
//! number of values; on error nothing is written and the message does not echo a value.
//! Member commands (sets, sorted sets, geo, HyperLogLog; rewritten during a key rotation, the
//! test ring has two keys): one request whose every argument is either a non-data argument
//! of the client's, the (renamed) command name, or a token or member ciphertext that opens to
//! one of the client's arguments (a scan encrypts what it cannot read), with at least as many
//! of those as data arguments.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use redcloak_commands::resp::{Limits, RequestParser};
use redcloak_commands::table::{self, Rewrite, ValueArgs};
use redcloak_commands::transform::encode_request;
use redcloak_commands_fuzz::{ring, rows, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let (spec, parent) = rows()[input.below(rows().len())];
    let seal_at = input.byte();
    let mut args: Vec<Bytes> = Vec::new();
    if let Some(p) = parent {
        args.push(Bytes::from_static(p.name.as_bytes()));
    }
    args.push(Bytes::from_static(spec.name.as_bytes()));
    let count = usize::from(input.byte() % 16);
    for _ in 0..count {
        let len = usize::from(input.byte() % 48);
        let arg: Vec<u8> = (0..len).map(|_| input.byte()).collect();
        args.push(Bytes::from(arg));
    }
    // Sometimes a payload sealed by the ring, where RESTORE expects one.
    if let ValueArgs::Unseal(i) = spec.values {
        if seal_at & 1 == 1 && i < args.len() {
            args[i] = Bytes::from(ring().encrypt(&args[i]));
        }
    }

    let _ = table::resolve(&args);
    let keys = table::keys_of(spec, parent, &args);
    for k in keys.positions() {
        assert!(
            k < args.len(),
            "key position {k} outside {} arguments",
            args.len()
        );
    }

    let mut out = BytesMut::new();
    let member_row = spec.members.any() || spec.rewrite != Rewrite::None;
    match encode_request(spec, &args, 0, ring(), &mut out) {
        Ok(_) if member_row => {
            let mut parser = RequestParser::new(Limits::default());
            let sent = parser
                .parse(&mut out)
                .expect("encoded request parses")
                .expect("encoded request is complete");
            assert!(out.is_empty(), "encoded request is more than one request");
            let values = spec.values.resolve(&args).expect("resolved once already");
            let members = spec.members.resolve(&args).expect("resolved once already");
            let is_data = |i: usize| values.is_value(i) || members.is_member(i);
            let data: Vec<&Bytes> = (0..args.len()).filter(|&i| is_data(i)).map(|i| &args[i]).collect();
            let plain: Vec<&Bytes> = (0..args.len()).filter(|&i| !is_data(i)).map(|i| &args[i]).collect();
            let mut opened = 0;
            for (j, s) in sent.args.iter().enumerate() {
                let p: Option<Vec<u8>> = ring()
                    .decrypt(s)
                    .ok()
                    .or_else(|| ring().decrypt_member(s).ok().map(|m| m.plaintext.to_vec()));
                if let Some(p) = p {
                    // (A scan also encrypts the arguments it cannot read.)
                    assert!(
                        args.iter().any(|d| d[..] == p[..]),
                        "{}: argument {j} opens to no argument of the client's",
                        spec.name
                    );
                    opened += 1;
                } else {
                    assert!(
                        j == 0 || plain.iter().any(|a| a[..] == s[..]),
                        "argument {j} is neither encrypted nor a non-data argument"
                    );
                }
            }
            assert!(opened >= data.len(), "a data argument was not encrypted");
        }
        Ok(n) => {
            let mut parser = RequestParser::new(Limits::default());
            let sent = parser
                .parse(&mut out)
                .expect("encoded request parses")
                .expect("encoded request is complete");
            assert!(out.is_empty(), "encoded request is more than one request");
            assert_eq!(sent.args.len(), args.len(), "argument count changed");
            let values = spec.values.resolve(&args).expect("resolved once already");
            let mut encrypted = 0;
            for (i, (orig, sent)) in args.iter().zip(&sent.args).enumerate() {
                match values {
                    ValueArgs::Unseal(at) if at == i => {
                        let opened = ring().decrypt(orig).expect("accepted payload opens");
                        assert_eq!(&sent[..], &opened[..], "RESTORE payload not opened");
                    }
                    _ if values.is_value(i) => {
                        let plain = ring().decrypt(sent).expect("a value was not encrypted");
                        assert_eq!(&plain[..], &orig[..], "value does not decrypt to itself");
                        encrypted += 1;
                    }
                    _ => assert_eq!(orig, sent, "argument {i} that is not a value changed"),
                }
            }
            assert_eq!(n, encrypted, "count of encrypted values");
        }
        Err(msg) => {
            assert!(out.is_empty(), "an error left bytes in the output");
            assert!(!msg.is_empty());
            for (i, a) in args.iter().enumerate().skip(1) {
                if a.len() >= 12 && spec.values.resolve(&args).is_ok_and(|v| v.is_value(i)) {
                    assert!(
                        !msg.as_bytes().windows(a.len()).any(|w| w == &a[..]),
                        "error message echoes a value"
                    );
                }
            }
        }
    }
});
