//! Behaviour of the public API: round trips, rotation, every error, and that
//! no key material leaks into `Debug` or error texts.

use std::time::{SystemTime, UNIX_EPOCH};

use redcloak_crypto::{generate_key, DecryptError, KeyRing, KeyRingError};

// Test keys (made with Python's `Fernet.generate_key()`).
const KEY_A: &str = "CnoFYelOnLLksjp7Te1342ralzvooKpUtxSZFrasGxA=";
const KEY_B: &str = "ApHo_gwPKEDd59lgnwzd-Fy9eNhj6uJlpHxE3xRcXWs=";
const KEY_C: &str = "zIcpu6AmSJdHx-_ZwlT7uAoP8oOpx6ssvwX9YXYlEIo=";

fn ring(list: &str) -> KeyRing {
    KeyRing::parse(list).unwrap_or_else(|e| panic!("{list:?} should parse: {e}"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token made by the `fernet` crate directly, with a chosen timestamp.
fn token_at(key: &str, plaintext: &[u8], timestamp: u64) -> Vec<u8> {
    fernet::Fernet::new(key)
        .unwrap()
        .encrypt_at_time(plaintext, timestamp)
        .into_bytes()
}

#[test]
fn keyring_is_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<KeyRing>();
    let ring = ring(KEY_A);
    let clone = ring.clone();
    assert_eq!(clone.decrypt(&ring.encrypt(b"v")).unwrap(), b"v");
}

// === round trips ===

#[test]
fn round_trip_empty() {
    let ring = ring(KEY_A);
    let token = ring.encrypt(b"");
    assert_eq!(ring.decrypt(&token).unwrap(), b"");
}

#[test]
fn round_trip_every_byte_value() {
    let ring = ring(KEY_A);
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(ring.decrypt(&ring.encrypt(&all)).unwrap(), all);
    for b in 0..=255u8 {
        assert_eq!(ring.decrypt(&ring.encrypt(&[b])).unwrap(), [b]);
    }
}

#[test]
fn round_trip_one_mebibyte() {
    let ring = ring(KEY_A);
    let big: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let token = ring.encrypt(&big);
    assert_eq!(ring.decrypt(&token).unwrap(), big);
}

#[test]
fn tokens_are_ascii_fernet_and_randomised() {
    let ring = ring(KEY_A);
    let first = ring.encrypt(b"same value");
    let second = ring.encrypt(b"same value");
    assert_ne!(first, second, "each token must get a fresh IV");
    for token in [&first, &second] {
        assert!(token.starts_with(b"gAAAAA"));
        assert!(token
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(b)));
        // 10 bytes of plaintext → 1 block → 73 bytes → 100 padded characters.
        assert_eq!(token.len(), 100);
    }
}

#[test]
fn unpadded_tokens_are_accepted() {
    let ring = ring(KEY_A);
    let mut token = ring.encrypt(b"some value");
    while token.last() == Some(&b'=') {
        token.pop();
    }
    assert_eq!(ring.decrypt(&token).unwrap(), b"some value");
}

#[test]
fn old_tokens_do_not_expire() {
    let ring = ring(KEY_A);
    assert_eq!(ring.decrypt(&token_at(KEY_A, b"v", 0)).unwrap(), b"v");
}

// === rotation ===

#[test]
fn rotation_new_key_first_decrypts_old_tokens() {
    let old = ring(KEY_A);
    let rotated = ring(&format!("{KEY_B},{KEY_A}"));
    let old_token = old.encrypt(b"written before rotation");
    assert_eq!(
        rotated.decrypt(&old_token).unwrap(),
        b"written before rotation"
    );
}

#[test]
fn rotation_encrypts_with_the_first_key() {
    let rotated = ring(&format!("{KEY_B},{KEY_A}"));
    let new_token = rotated.encrypt(b"written after rotation");
    assert_eq!(
        ring(KEY_B).decrypt(&new_token).unwrap(),
        b"written after rotation"
    );
    assert_eq!(
        ring(KEY_A).decrypt(&new_token),
        Err(DecryptError::NoMatchingKey)
    );
}

#[test]
fn key_ids_are_fingerprints_in_ring_order() {
    let ab = ring(&format!("{KEY_A},{KEY_B}"));
    let ba = ring(&format!("{KEY_B},{KEY_A}"));
    assert_eq!(ab.len(), 2);
    assert!(!ab.is_empty());
    assert_eq!(ab.key_ids()[0], ba.key_ids()[1]);
    assert_eq!(ab.key_ids()[1], ba.key_ids()[0]);
    assert_ne!(ab.key_ids()[0], ab.key_ids()[1]);
    assert_eq!(ab.key_ids()[0], ring(KEY_A).key_ids()[0]);
    for id in ab.key_ids() {
        let shown = id.to_string();
        assert_eq!(shown.len(), 10, "{shown}");
        assert!(shown.starts_with("k:"));
        assert!(shown[2..]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(format!("{id:?}"), shown);
    }
}

// === parsing ===

#[test]
fn parse_accepts_padded_unpadded_and_whitespace() {
    let unpadded_b = KEY_B.trim_end_matches('=');
    let ring = ring(&format!("  {KEY_A} ,\t{unpadded_b}\n"));
    assert_eq!(ring.len(), 2);
    assert_eq!(ring.key_ids()[1], self::ring(KEY_B).key_ids()[0]);
}

#[test]
fn parse_rejects_empty_lists() {
    assert_eq!(KeyRing::parse("").unwrap_err(), KeyRingError::Empty);
    assert_eq!(KeyRing::parse(" \n\t").unwrap_err(), KeyRingError::Empty);
}

#[test]
fn parse_rejects_empty_entries() {
    let cases = [
        (format!("{KEY_A},"), 2),
        (format!(",{KEY_A}"), 1),
        (format!("{KEY_A},,{KEY_B}"), 2),
        (format!("{KEY_A}, \t ,{KEY_B}"), 2),
        (",".to_string(), 1),
    ];
    for (list, position) in cases {
        assert_eq!(
            KeyRing::parse(&list).unwrap_err(),
            KeyRingError::EmptyEntry { position },
            "{list:?}"
        );
    }
}

#[test]
fn parse_rejects_invalid_keys() {
    let unpadded = KEY_A.trim_end_matches('=');
    let invalid = [
        "not-a-key".to_string(),
        "correct horse battery staple".to_string(),
        // 31 and 33 bytes.
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==".to_string(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==".to_string(),
        // Standard base64 alphabet instead of url-safe.
        KEY_B.replace('_', "/").replace('-', "+"),
        // Wrong padding.
        format!("{KEY_A}="),
        format!("{unpadded}=="),
        // A key embedded in a longer string.
        format!("{unpadded}{unpadded}"),
        format!("{unpadded} {unpadded}"),
        // Non-ASCII.
        format!("{}é", &KEY_A[..42]),
    ];
    for bad in &invalid {
        let result = KeyRing::parse(&format!("{KEY_C},{bad}"));
        assert_eq!(
            result.map(|_| ()),
            Err(KeyRingError::Invalid { position: 2 }),
            "{bad:?}"
        );
    }
}

#[test]
fn parse_rejects_duplicates() {
    let err = KeyRing::parse(&format!("{KEY_A},{KEY_B},{KEY_A}")).unwrap_err();
    assert_eq!(
        err,
        KeyRingError::Duplicate {
            first: 1,
            second: 3
        }
    );
    // The same key written padded and unpadded is still the same key.
    let unpadded_b = KEY_B.trim_end_matches('=');
    let err = KeyRing::parse(&format!("{KEY_A},{KEY_B},{unpadded_b}")).unwrap_err();
    assert_eq!(
        err,
        KeyRingError::Duplicate {
            first: 2,
            second: 3
        }
    );
}

#[test]
fn parse_errors_explain_without_the_key() {
    let cases = [
        (KeyRingError::Empty, "redcloak keygen"),
        (
            KeyRingError::EmptyEntry { position: 2 },
            "encryption key #2 is empty",
        ),
        (
            KeyRingError::Invalid { position: 2 },
            "encryption key #2 is not a valid Fernet key (it must be 32 bytes, url-safe base64 \
             encoded, as printed by `redcloak keygen`)",
        ),
        (
            KeyRingError::Duplicate {
                first: 1,
                second: 3,
            },
            "encryption keys #1 and #3 are the same key",
        ),
    ];
    for (err, expected) in cases {
        assert!(err.to_string().contains(expected), "{err}");
    }
    let near_miss = format!("{}!", &KEY_A[..43]);
    let err = KeyRing::parse(&format!("{KEY_B},{near_miss}")).unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(&KEY_A[..43]), "{shown}");
    assert!(!shown.contains(&KEY_B[..43]), "{shown}");
}

// === decryption errors ===

#[test]
fn plaintext_is_not_a_token() {
    let ring = ring(KEY_A);
    let long_g = "g".repeat(120);
    let values: [&[u8]; 8] = [
        b"",
        b"hello",
        b"{\"user\":1}",
        b"gAAAAA",
        b"12345",
        &[0xff, 0xfe, 0x00, 0x80],
        long_g.as_bytes(),
        &[b'g'; 3],
    ];
    for value in values {
        assert_eq!(
            ring.decrypt(value),
            Err(DecryptError::NotAToken),
            "{:?}",
            String::from_utf8_lossy(value)
        );
    }
}

#[test]
fn other_fernet_versions_are_not_tokens() {
    use base64::engine::general_purpose::URL_SAFE;
    use base64::Engine as _;
    let ring = ring(KEY_A);
    let mut raw = URL_SAFE.decode(ring.encrypt(b"value")).unwrap();
    raw[0] = 0x81; // still encodes to a leading 'g'
    let token = URL_SAFE.encode(&raw);
    assert!(token.starts_with('g'));
    assert_eq!(ring.decrypt(token.as_bytes()), Err(DecryptError::NotAToken));
}

#[test]
fn invalid_utf8_is_not_a_token() {
    let ring = ring(KEY_A);
    let mut token = ring.encrypt(b"value");
    token[40] = 0xc3;
    assert_eq!(ring.decrypt(&token), Err(DecryptError::NotAToken));
}

#[test]
fn wrong_key_is_no_matching_key() {
    let token = ring(KEY_A).encrypt(b"secret");
    assert_eq!(
        ring(&format!("{KEY_B},{KEY_C}")).decrypt(&token),
        Err(DecryptError::NoMatchingKey)
    );
}

#[test]
fn every_tampered_character_is_refused() {
    let ring = ring(&format!("{KEY_A},{KEY_B}"));
    let token = ring.encrypt(b"an important value, 32 bytes....");
    let body_len = token.iter().rposition(|&b| b != b'=').unwrap() + 1;
    for i in 0..token.len() {
        for replacement in [b'A', b'z', b'-', b'_', b'0'] {
            if token[i] == replacement {
                continue;
            }
            let mut tampered = token.clone();
            tampered[i] = replacement;
            let result = ring.decrypt(&tampered);
            assert!(
                matches!(
                    result,
                    Err(DecryptError::NoMatchingKey | DecryptError::NotAToken)
                ),
                "position {i}: {result:?}"
            );
            // Past the version/timestamp prefix and before the padding, a
            // tampered token is still shaped like one (except the last
            // character, whose low bits must stay zero).
            if (12..body_len - 1).contains(&i) {
                assert_eq!(result, Err(DecryptError::NoMatchingKey), "position {i}");
            }
        }
    }
}

#[test]
fn truncated_and_extended_tokens_are_refused() {
    let ring = ring(KEY_A);
    let token = ring.encrypt(b"value");
    let body_len = token.iter().rposition(|&b| b != b'=').unwrap() + 1;
    for len in 0..body_len {
        assert!(ring.decrypt(&token[..len]).is_err(), "truncated to {len}");
    }
    let mut longer = token.clone();
    longer.extend_from_slice(b"AAAAAAAAAAAAAAAAAAAAAAAA");
    assert!(ring.decrypt(&longer).is_err());
}

#[test]
fn future_tokens_are_accepted_stored_values_have_no_age() {
    let ring = ring(&format!("{KEY_B},{KEY_A}"));
    let now = unix_now();
    for timestamp in [now + 30, now + 3600, now + 10 * 365 * 86_400, u64::MAX] {
        let future = token_at(KEY_A, b"v", timestamp);
        assert_eq!(ring.decrypt(&future).unwrap(), b"v", "at {timestamp}");
    }
}

#[test]
fn future_tokens_from_unknown_keys_or_forged_are_no_matching_key() {
    let now = unix_now();
    let future = token_at(KEY_C, b"v", now + 3600);
    assert_eq!(
        ring(&format!("{KEY_B},{KEY_A}")).decrypt(&future),
        Err(DecryptError::NoMatchingKey)
    );
    // A forged future timestamp on a real token: the HMAC no longer matches.
    let mut forged = token_at(KEY_A, b"v", now);
    forged[8] = if forged[8] == b'z' { b'y' } else { b'z' };
    assert_eq!(
        ring(KEY_A).decrypt(&forged),
        Err(DecryptError::NoMatchingKey)
    );
}

#[test]
fn decrypt_errors_are_user_facing() {
    for (err, expected) in [
        (DecryptError::NotAToken, "not encrypted by redcloak"),
        (DecryptError::NoMatchingKey, "no configured encryption key"),
        (DecryptError::Binding, "another key, database or hash field"),
        (DecryptError::Tampered, "was modified"),
    ] {
        assert!(err.to_string().contains(expected), "{err}");
    }
}

// === secrets stay secret ===

#[test]
fn debug_shows_key_ids_only() {
    use base64::Engine as _;
    let ring = ring(&format!("{KEY_A}, {KEY_B}"));
    let shown = format!("{ring:?} {ring:#?}");
    for id in ring.key_ids() {
        assert!(shown.contains(&id.to_string()), "{shown}");
    }
    for key in [KEY_A, KEY_B] {
        assert!(!shown.contains(key), "{shown}");
        // No 8-character piece of the base64 text.
        for window in key.as_bytes().windows(8) {
            let piece = std::str::from_utf8(window).unwrap();
            assert!(!shown.contains(piece), "{piece} in {shown}");
        }
        // Nor the raw bytes in the usual renderings.
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(key)
            .unwrap();
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!shown.contains(&hex[..16]), "{shown}");
        assert!(!shown.contains(&format!("{:?}", &raw[..4])[1..]), "{shown}");
        assert!(
            !shown.contains(&format!("{:?}", &raw[16..20])[1..]),
            "{shown}"
        );
    }
}

#[test]
fn generated_keys_are_fernet_keys() {
    let key = generate_key();
    let ring = ring(&key);
    assert_eq!(ring.decrypt(&ring.encrypt(b"x")).unwrap(), b"x");
    // Interoperable with the `fernet` crate's own constructor.
    assert!(fernet::Fernet::new(&key).is_some());
}
