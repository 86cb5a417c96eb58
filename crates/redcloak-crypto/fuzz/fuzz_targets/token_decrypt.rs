//! The token decoder, `KeyRing::decrypt`, on arbitrary bytes and on genuine tokens that were
//! then mutated (bits flipped, bytes replaced, cut, extended, re-padded), with a fixed ring of
//! two test keys.
//!
//! Invariants: no panic; a genuine token decrypts to its plaintext, with either key of the
//! ring; a mutated token either fails or decrypts to the very same plaintext (base64 has
//! spellings that decode to the same bytes) — never to anything else; a genuine token dated
//! an hour ahead decrypts too (stored values have no freshness meaning: Fernet's clock-skew
//! rule is not applied to them), so `FromTheFuture` never comes back; bytes that are not
//! shaped like a token are `NotAToken` before any key is tried.
#![no_main]

use fernet::Fernet;
use libfuzzer_sys::fuzz_target;
use redcloak_crypto::{DecryptError, KeyRing};

/// Url-safe base64 with padding, for the fixed test keys (no key material in the source).
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

struct Keys {
    ring: KeyRing,
    fernets: [Fernet; 2],
    stranger: Fernet,
}

fn keys() -> &'static Keys {
    static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let key = |fill: u8| {
            let raw: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(13) ^ fill).collect();
            base64_url(&raw)
        };
        let (a, b, c) = (key(0x11), key(0x22), key(0x33));
        Keys {
            ring: KeyRing::parse(&format!("{a}, {b}")).expect("test ring"),
            fernets: [
                Fernet::new(&a).expect("key a"),
                Fernet::new(&b).expect("key b"),
            ],
            stranger: Fernet::new(&c).expect("key c"),
        }
    })
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fuzz_target!(|data: &[u8]| {
    let k = keys();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        // Raw bytes.
        0 => {
            let r = k.ring.decrypt(rest);
            if rest.first() != Some(&b'g') {
                assert_eq!(
                    r,
                    Err(DecryptError::NotAToken),
                    "only tokens start with 'g'"
                );
            }
            if let Ok(plain) = r {
                // Only a key of the ring makes tokens that open; the fuzzer cannot forge one.
                panic!("arbitrary bytes decrypted ({} bytes)", plain.len());
            }
        }
        // A genuine token, then mutated.
        _ => {
            let split = rest.len() / 2;
            let (plain, edits) = rest.split_at(split);
            let which = usize::from(mode / 4 % 2);
            let future = mode & 0x40 != 0;
            let stranger = mode & 0x80 != 0 && mode % 4 == 3;
            let at = if future {
                now() + 3600
            } else {
                now().saturating_sub(u64::from(mode))
            };
            let token = if stranger {
                k.stranger.encrypt_at_time(plain, at)
            } else {
                k.fernets[which].encrypt_at_time(plain, at)
            };
            let mut bytes = token.into_bytes();
            let original = bytes.clone();
            let mut e = edits.iter().copied();
            while let (Some(op), Some(arg)) = (e.next(), e.next()) {
                if bytes.is_empty() {
                    break;
                }
                let pos = usize::from(arg) % bytes.len();
                match op % 6 {
                    0 => bytes[pos] ^= 1 << (op % 8),
                    1 => bytes[pos] = arg,
                    2 => bytes.truncate(pos),
                    3 => bytes.push(arg),
                    4 => {
                        bytes.retain(|&c| c != b'=');
                    }
                    _ => bytes.insert(pos, arg),
                }
            }
            let result = k.ring.decrypt(&bytes);
            match &result {
                Ok(p) => {
                    assert!(!stranger, "a token from a key outside the ring decrypted");
                    assert_eq!(&p[..], plain, "a token decrypted to something else");
                }
                Err(DecryptError::FromTheFuture) => {
                    panic!("FromTheFuture: stored values have no clock-skew rule");
                }
                Err(_) => {}
            }
            if bytes == original && !stranger {
                let _ = future;
                assert_eq!(
                    result.as_deref(),
                    Ok(plain),
                    "a genuine token did not decrypt"
                );
            }
            if bytes == original && stranger {
                assert_eq!(result, Err(DecryptError::NoMatchingKey));
            }
        }
    }
});
