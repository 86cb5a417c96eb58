//! The stored-value decoders — `KeyRing::decrypt_value` (Fernet tokens and AES-GCM envelopes),
//! `decrypt_member` (AES-SIV members), `inspect`, `inspect_member`, `identify` — on arbitrary
//! bytes and on genuine ciphertexts that were then mutated (bits flipped, bytes replaced, cut,
//! extended), with a fixed ring of two test keys, opened at their own location or elsewhere.
//!
//! Invariants: no panic; bytes no key made never open (a member that opens is exactly its
//! key's ciphertext of its plaintext); a genuine envelope opens to its plaintext
//! at its own location, and is `Binding` anywhere else; a mutated envelope or member either is
//! byte-for-byte the original or does not open — never to anything else; a genuine member
//! opens with either key of the ring.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redcloak_crypto::{inspect, inspect_member, Binding, DecryptError, KeyRing, ValueFormat};

fn ring() -> &'static (KeyRing, KeyRing) {
    static RING: std::sync::OnceLock<(KeyRing, KeyRing)> = std::sync::OnceLock::new();
    RING.get_or_init(|| {
        // Fixed test keys (url-safe base64 of 32 bytes), no key material of any deployment.
        let a = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let b = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
        let both = KeyRing::parse(&format!("{a},{b}")).expect("test ring");
        let second = KeyRing::parse(&format!("{b},{a}")).expect("test ring");
        (
            both.with_format(ValueFormat::AesGcm),
            second.with_format(ValueFormat::AesGcm),
        )
    })
}

/// A location from fuzz bytes: database, key name and maybe a field.
fn location(bytes: &[u8]) -> Binding<'_> {
    let db = u32::from(*bytes.first().unwrap_or(&0) % 4);
    let rest = bytes.get(1..).unwrap_or_default();
    let cut = rest.len() / 2;
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        Binding::field(db, &rest[..cut], &rest[cut..])
    } else {
        Binding::key(db, rest)
    }
}

fn mutate(bytes: &mut Vec<u8>, edits: &[u8]) {
    let mut e = edits.iter().copied();
    while let (Some(op), Some(arg)) = (e.next(), e.next()) {
        if bytes.is_empty() {
            break;
        }
        let pos = usize::from(arg) % bytes.len();
        match op % 5 {
            0 => bytes[pos] ^= 1 << (op % 8),
            1 => bytes[pos] = arg,
            2 => bytes.truncate(pos),
            3 => bytes.push(arg),
            _ => bytes.insert(pos, arg),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (ring, other_order) = ring();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // rest = location bytes (≤ 16) | plaintext | edits
    let loc_len = usize::from(mode >> 4).min(rest.len());
    let (loc, rest) = rest.split_at(loc_len);
    let at = location(loc);
    let split = rest.len() / 2;
    let (plain, edits) = rest.split_at(split);
    match mode % 4 {
        // Arbitrary bytes, read as a value and as a member.
        0 => {
            let _ = inspect(rest);
            let _ = inspect_member(rest);
            let _ = ring.identify(rest);
            // libFuzzer lifts genuine ciphertexts made in the other modes out of comparisons
            // and replays them here, so "never opens" cannot be the rule. What opens must be
            // genuine: no Fernet token is made in this process at all, and a member that opens
            // is exactly what its key makes of its plaintext (members are deterministic).
            if ring.decrypt_value(rest, &at).is_ok() {
                assert_eq!(rest.first(), Some(&0xC1), "bytes no key made opened as a value");
            }
            if let Ok(m) = ring.decrypt_member(rest) {
                let maker = if m.key_id == ring.key_ids()[0] { ring } else { other_order };
                assert_eq!(maker.encrypt_member(&m.plaintext), rest, "a forged member opened");
            }
        }
        // A genuine envelope, mutated; opened at its location.
        1 => {
            let original = ring.encrypt_value(plain, &at);
            let mut bytes = original.clone();
            mutate(&mut bytes, edits);
            let _ = inspect(&bytes);
            let _ = ring.identify(&bytes);
            match ring.decrypt_value(&bytes, &at) {
                Ok(o) => {
                    assert_eq!(bytes, original, "a modified envelope opened");
                    assert_eq!(&o.plaintext[..], plain);
                }
                Err(e) => assert_ne!(bytes, original, "a genuine envelope did not open: {e:?}"),
            }
            // The ring in the other order opens it too (the key id picks the key).
            if bytes == original {
                let o = other_order.decrypt_value(&bytes, &at).expect("either ring order");
                assert_eq!(&o.plaintext[..], plain);
            }
        }
        // A genuine envelope, unmodified, opened somewhere else.
        2 => {
            let elsewhere_bytes: Vec<u8> = edits.to_vec();
            let elsewhere = location(&elsewhere_bytes);
            let sealed = ring.encrypt_value(plain, &at);
            let r = ring.decrypt_value(&sealed, &elsewhere);
            if elsewhere == at {
                assert!(r.is_ok());
            } else {
                assert_eq!(r.err(), Some(DecryptError::Binding), "opened at another location");
            }
        }
        // A genuine member, mutated.
        _ => {
            let original = ring.encrypt_member(plain);
            assert_eq!(original, ring.encrypt_member(plain), "members are deterministic");
            let mut bytes = original.clone();
            mutate(&mut bytes, edits);
            let _ = inspect_member(&bytes);
            match ring.decrypt_member(&bytes) {
                Ok(m) => {
                    assert_eq!(bytes, original, "a modified member opened");
                    assert_eq!(&m.plaintext[..], plain);
                }
                Err(e) => assert_ne!(bytes, original, "a genuine member did not open: {e:?}"),
            }
        }
    }
});
