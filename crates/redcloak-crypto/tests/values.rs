//! The value API (`encrypt_value` / `decrypt_value`) in both formats: round
//! trips, reads across formats, bindings, tampering, rotation, inspection.

use redcloak_crypto::{inspect, inspect_member, Binding, DecryptError, KeyRing, ValueFormat};

const KEY_A: &str = "CnoFYelOnLLksjp7Te1342ralzvooKpUtxSZFrasGxA=";
const KEY_B: &str = "ApHo_gwPKEDd59lgnwzd-Fy9eNhj6uJlpHxE3xRcXWs=";
const KEY_C: &str = "zIcpu6AmSJdHx-_ZwlT7uAoP8oOpx6ssvwX9YXYlEIo=";

const FORMATS: [ValueFormat; 2] = [ValueFormat::Fernet, ValueFormat::AesGcm];

fn ring(list: &str, format: ValueFormat) -> KeyRing {
    KeyRing::parse(list).unwrap().with_format(format)
}

fn here() -> Binding<'static> {
    Binding::key(0, b"user:42")
}

fn sizes() -> impl Iterator<Item = Vec<u8>> {
    [0usize, 1, 15, 16, 17, 100, 1024, 65_537]
        .into_iter()
        .map(|n| (0..n).map(|i| (i * 7 + 3) as u8).collect())
}

// === formats ===

#[test]
fn value_format_parses_and_displays() {
    for (text, format) in [
        ("fernet", ValueFormat::Fernet),
        ("aes-gcm", ValueFormat::AesGcm),
        (" AES-GCM\n", ValueFormat::AesGcm),
        ("Fernet", ValueFormat::Fernet),
    ] {
        assert_eq!(text.parse::<ValueFormat>(), Ok(format), "{text:?}");
    }
    for format in FORMATS {
        assert_eq!(format.to_string().parse::<ValueFormat>(), Ok(format));
    }
    assert_eq!(ValueFormat::AesGcm.to_string(), "aes-gcm");
    for bad in ["", "aes", "aesgcm", "gcm", "fernet,aes-gcm", "aes-256-gcm"] {
        let err = bad.parse::<ValueFormat>().unwrap_err();
        assert!(err.to_string().contains("`fernet` or `aes-gcm`"), "{err}");
    }
    assert_eq!(ValueFormat::default(), ValueFormat::Fernet);
    let ring = KeyRing::parse(KEY_A).unwrap();
    assert_eq!(ring.format(), ValueFormat::Fernet);
    assert_eq!(
        ring.with_format(ValueFormat::AesGcm).format(),
        ValueFormat::AesGcm
    );
}

#[test]
fn round_trip_every_format_and_size() {
    for format in FORMATS {
        let ring = ring(KEY_A, format);
        for plain in sizes() {
            let stored = ring.encrypt_value(&plain, &here());
            assert_eq!(stored.len(), ring.encrypted_len(plain.len()), "{format}");
            let opened = ring.decrypt_value(&stored, &here()).unwrap();
            assert_eq!(*opened.plaintext, plain, "{format} {}", plain.len());
            assert_eq!(opened.format, format);
            assert_eq!(opened.key_id, ring.key_ids()[0]);
            assert_eq!(opened.timestamp.is_some(), format == ValueFormat::Fernet);
        }
    }
}

#[test]
fn envelope_layout_and_size() {
    let ring = ring(KEY_A, ValueFormat::AesGcm);
    let stored = ring.encrypt_value(b"hello", &here());
    assert_eq!(stored.len(), 5 + 37);
    assert_eq!(stored[0], 0xC1);
    assert_eq!(stored[1..5], ring.key_ids()[0].to_bytes());
    assert!(std::str::from_utf8(&stored).is_err(), "never valid UTF-8");
    // Random nonces: the same value twice differs.
    assert_ne!(stored, ring.encrypt_value(b"hello", &here()));
}

#[test]
fn fernet_output_is_a_plain_fernet_token() {
    let ring = ring(KEY_A, ValueFormat::Fernet);
    let stored = ring.encrypt_value(b"value", &Binding::field(3, b"k", b"f"));
    // The binding is ignored: the old API and the `fernet` crate read it.
    assert_eq!(ring.decrypt(&stored).unwrap(), b"value");
    let token = std::str::from_utf8(&stored).unwrap();
    assert_eq!(
        fernet::Fernet::new(KEY_A).unwrap().decrypt(token).unwrap(),
        b"value"
    );
    // And it opens under any binding.
    let opened = ring.decrypt_value(&stored, &Binding::key(9, b"x")).unwrap();
    assert_eq!(&opened.plaintext[..], b"value");
}

#[test]
fn encrypt_value_into_writes_into_a_larger_buffer() {
    for format in FORMATS {
        let ring = ring(KEY_A, format);
        let mut out = b"$prefix".to_vec();
        let start = out.len();
        out.resize(start + ring.encrypted_len(11), 0);
        ring.encrypt_value_into(b"hello world", &here(), &mut out[start..]);
        assert_eq!(&out[..start], b"$prefix");
        let opened = ring.decrypt_value(&out[start..], &here()).unwrap();
        assert_eq!(&opened.plaintext[..], b"hello world");
    }
}

#[test]
#[should_panic(expected = "output size")]
fn encrypt_value_into_refuses_a_wrong_size() {
    let ring = ring(KEY_A, ValueFormat::AesGcm);
    let mut out = vec![0u8; ring.encrypted_len(3) + 1];
    ring.encrypt_value_into(b"abc", &here(), &mut out);
}

#[test]
fn both_formats_are_read_whatever_the_write_format() {
    let fernet_ring = ring(KEY_A, ValueFormat::Fernet);
    let gcm_ring = ring(KEY_A, ValueFormat::AesGcm);
    let from_fernet = fernet_ring.encrypt_value(b"one", &here());
    let from_gcm = gcm_ring.encrypt_value(b"two", &here());
    for reader in [&fernet_ring, &gcm_ring] {
        let a = reader.decrypt_value(&from_fernet, &here()).unwrap();
        assert_eq!(
            (&a.plaintext[..], a.format),
            (&b"one"[..], ValueFormat::Fernet)
        );
        let b = reader.decrypt_value(&from_gcm, &here()).unwrap();
        assert_eq!(
            (&b.plaintext[..], b.format),
            (&b"two"[..], ValueFormat::AesGcm)
        );
    }
}

#[test]
fn old_api_keeps_writing_fernet() {
    let ring = ring(KEY_A, ValueFormat::AesGcm);
    let token = ring.encrypt(b"v");
    assert!(token.starts_with(b"gAAAAA"));
    assert_eq!(ring.decrypt(&token).unwrap(), b"v");
    // An envelope needs its binding: the Fernet-only `decrypt` refuses it.
    let envelope = ring.encrypt_value(b"v", &here());
    assert_eq!(ring.decrypt(&envelope), Err(DecryptError::NotAToken));
}

// === bindings ===

#[test]
fn envelopes_open_only_where_they_were_written() {
    let ring = ring(KEY_A, ValueFormat::AesGcm);
    let cases: [(Binding<'static>, &[Binding<'static>]); 2] = [
        (
            Binding::key(0, b"user:42"),
            &[
                Binding::key(0, b"user:43"),        // other key name
                Binding::key(0, b"user:4"),         // prefix
                Binding::key(0, b"user:420"),       // extension
                Binding::key(1, b"user:42"),        // other db
                Binding::field(0, b"user:42", b""), // string read as a hash field
                Binding::field(0, b"user:4", b"2"), // same bytes, split differently
            ],
        ),
        (
            Binding::field(2, b"h", b"email"),
            &[
                Binding::field(2, b"h", b"name"),   // other field
                Binding::field(2, b"h2", b"email"), // other hash
                Binding::field(3, b"h", b"email"),  // other db
                Binding::key(2, b"h"),              // hash field read as a string
                Binding::field(2, b"he", b"mail"),  // same bytes, split differently
            ],
        ),
    ];
    for (written, elsewhere) in cases {
        let stored = ring.encrypt_value(b"secret", &written);
        assert_eq!(
            &ring.decrypt_value(&stored, &written).unwrap().plaintext[..],
            b"secret"
        );
        for other in elsewhere {
            assert_eq!(
                ring.decrypt_value(&stored, other).map(|o| o.key_id),
                Err(DecryptError::Binding),
                "{written:?} read as {other:?}"
            );
        }
    }
}

#[test]
fn binding_is_reported_under_the_right_key_of_a_rotated_ring() {
    let old = ring(KEY_A, ValueFormat::AesGcm);
    let rotated = ring(&format!("{KEY_B},{KEY_A}"), ValueFormat::AesGcm);
    let stored = old.encrypt_value(b"v", &Binding::key(0, b"a"));
    assert_eq!(
        rotated
            .decrypt_value(&stored, &Binding::key(0, b"b"))
            .map(|_| ()),
        Err(DecryptError::Binding)
    );
}

// === tampering ===

#[test]
fn every_flipped_bit_of_an_envelope_is_refused() {
    let ring = ring(&format!("{KEY_A},{KEY_B}"), ValueFormat::AesGcm);
    let stored = ring.encrypt_value(b"an important value", &here());
    let len = stored.len();
    for i in 0..len {
        for bit in 0..8 {
            let mut tampered = stored.clone();
            tampered[i] ^= 1 << bit;
            let result = ring.decrypt_value(&tampered, &here()).map(|o| o.key_id);
            let expected = match i {
                0 => DecryptError::NotAToken,
                1..=4 => DecryptError::NoMatchingKey,
                // The ciphertext body is not covered by the origin check:
                // key id, nonce and tag are still genuine (see DecryptError::Binding).
                _ if (17..len - 20).contains(&i) => DecryptError::Binding,
                // Nonce, tag or check changed.
                _ => DecryptError::Tampered,
            };
            assert_eq!(result, Err(expected), "byte {i} bit {bit}");
        }
    }
}

#[test]
fn every_truncation_and_extension_of_an_envelope_is_refused() {
    let ring = ring(KEY_A, ValueFormat::AesGcm);
    for plain in [&b""[..], b"x", b"a longer value of some bytes"] {
        let stored = ring.encrypt_value(plain, &here());
        for len in 0..stored.len() {
            let result = ring
                .decrypt_value(&stored[..len], &here())
                .map(|o| o.key_id);
            assert!(
                matches!(
                    result,
                    Err(DecryptError::NotAToken | DecryptError::Tampered)
                ),
                "truncated to {len}: {result:?}"
            );
            if len < 37 {
                assert_eq!(result, Err(DecryptError::NotAToken), "{len}");
            }
        }
        let mut longer = stored.clone();
        longer.push(0);
        assert_eq!(
            ring.decrypt_value(&longer, &here()).map(|o| o.key_id),
            Err(DecryptError::Tampered)
        );
    }
}

#[test]
fn tampered_fernet_tokens_stay_no_matching_key() {
    let ring = ring(KEY_A, ValueFormat::Fernet);
    let mut token = ring.encrypt_value(b"value", &here());
    token[40] = if token[40] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        ring.decrypt_value(&token, &here()).map(|o| o.key_id),
        Err(DecryptError::NoMatchingKey)
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let ring = ring(&format!("{KEY_A},{KEY_B}"), ValueFormat::AesGcm);
    let genuine = ring.encrypt_value(b"value", &here());
    let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0xC1], vec![0xF5; 40], b"g".to_vec()];
    for len in (0..80).filter(|&len| len != genuine.len()) {
        let mut v = genuine.clone();
        v.resize(len, 0xAA);
        inputs.push(v);
        inputs.push((0..len).map(|i| (i * 37) as u8).collect());
    }
    for input in inputs {
        assert!(ring.decrypt_value(&input, &here()).is_err());
        let _ = ring.decrypt_member(&input);
        let _ = ring.identify(&input);
        let _ = inspect(&input);
        let _ = inspect_member(&input);
    }
}

// === keys ===

#[test]
fn wrong_key_id_is_no_matching_key() {
    let stored = ring(KEY_A, ValueFormat::AesGcm).encrypt_value(b"v", &here());
    let other = ring(&format!("{KEY_B},{KEY_C}"), ValueFormat::AesGcm);
    assert_eq!(
        other.decrypt_value(&stored, &here()).map(|o| o.key_id),
        Err(DecryptError::NoMatchingKey)
    );
    // A key id rewritten to one of this ring's keys does not help.
    let mut forged = stored.clone();
    forged[1..5].copy_from_slice(&other.key_ids()[0].to_bytes());
    assert_eq!(
        other.decrypt_value(&forged, &here()).map(|o| o.key_id),
        Err(DecryptError::Tampered)
    );
}

#[test]
fn rotation_reads_old_values_and_writes_with_the_new_key() {
    for format in FORMATS {
        let old = ring(KEY_A, format);
        let rotated = ring(&format!("{KEY_B},{KEY_A}"), format);
        let before = old.encrypt_value(b"before", &here());
        let after = rotated.encrypt_value(b"after", &here());

        let opened = rotated.decrypt_value(&before, &here()).unwrap();
        assert_eq!(&opened.plaintext[..], b"before");
        assert_eq!(opened.key_id, old.key_ids()[0], "{format}");

        let opened = rotated.decrypt_value(&after, &here()).unwrap();
        assert_eq!(&opened.plaintext[..], b"after");
        assert_eq!(opened.key_id, rotated.key_ids()[0], "{format}");
        assert_ne!(opened.key_id, old.key_ids()[0]);
        assert_eq!(
            old.decrypt_value(&after, &here()).map(|o| o.key_id),
            Err(DecryptError::NoMatchingKey),
            "{format}"
        );
        assert_eq!(
            ring(KEY_B, format).identify(&after),
            Some(rotated.key_ids()[0])
        );
        assert_eq!(rotated.identify(&before), Some(old.key_ids()[0]));
        assert_eq!(ring(KEY_C, format).identify(&before), None);
    }
}

#[test]
fn timestamps_are_reported_and_unchecked() {
    let ring = ring(KEY_A, ValueFormat::Fernet);
    let far_future = fernet::Fernet::new(KEY_A)
        .unwrap()
        .encrypt_at_time(b"v", 4_000_000_000);
    let opened = ring.decrypt_value(far_future.as_bytes(), &here()).unwrap();
    assert_eq!(opened.timestamp, Some(4_000_000_000));
    let epoch = fernet::Fernet::new(KEY_A).unwrap().encrypt_at_time(b"v", 0);
    let opened = ring.decrypt_value(epoch.as_bytes(), &here()).unwrap();
    assert_eq!(opened.timestamp, Some(0));
}

// === inspection ===

#[test]
fn inspect_reads_headers_without_keys() {
    let fernet_ring = ring(KEY_A, ValueFormat::Fernet);
    let gcm_ring = ring(KEY_B, ValueFormat::AesGcm);
    let token = fernet::Fernet::new(KEY_A)
        .unwrap()
        .encrypt_at_time(b"v", 1_700_000_000);
    let seen = inspect(token.as_bytes()).unwrap();
    assert_eq!(seen.format, ValueFormat::Fernet);
    assert_eq!(seen.key_id, None);
    assert_eq!(seen.timestamp, Some(1_700_000_000));

    let envelope = gcm_ring.encrypt_value(b"v", &here());
    let seen = inspect(&envelope).unwrap();
    assert_eq!(seen.format, ValueFormat::AesGcm);
    assert_eq!(seen.key_id, Some(gcm_ring.key_ids()[0]));
    assert_eq!(seen.timestamp, None);

    let member = gcm_ring.encrypt_member(b"m");
    assert_eq!(inspect(&member), None);
    assert_eq!(inspect_member(&member), Some(gcm_ring.key_ids()[0]));
    assert_eq!(inspect_member(&envelope), None);
    for plain in [&b""[..], b"hello", b"gAAAA", &[0xC1, 1, 2]] {
        assert_eq!(inspect(plain), None);
    }
    // identify: only the ring that made it says so.
    assert_eq!(
        fernet_ring.identify(token.as_bytes()),
        Some(fernet_ring.key_ids()[0])
    );
    assert_eq!(gcm_ring.identify(token.as_bytes()), None);
    assert_eq!(gcm_ring.identify(&envelope), Some(gcm_ring.key_ids()[0]));
    assert_eq!(fernet_ring.identify(&envelope), None);
}

// === secrets stay secret ===

#[test]
fn opened_values_do_not_print_their_plaintext() {
    let ring = ring(KEY_A, ValueFormat::AesGcm);
    let opened = ring
        .decrypt_value(&ring.encrypt_value(b"hunter2", &here()), &here())
        .unwrap();
    let shown = format!("{opened:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("104, 117"), "{shown}");
    assert!(shown.contains("plaintext_len: 7"), "{shown}");
    let member = ring
        .decrypt_member(&ring.encrypt_member(b"hunter2"))
        .unwrap();
    let shown = format!("{member:?}");
    assert!(
        !shown.contains("hunter2") && shown.contains("plaintext_len: 7"),
        "{shown}"
    );
    let shown = format!("{ring:?}");
    assert!(shown.contains("AesGcm") && shown.contains(&ring.key_ids()[0].to_string()));
}

#[test]
fn key_files_skip_comments_and_blank_lines() {
    let file = format!(
        "# redcloak keys, newest first\n\n{KEY_B}   # rotated in 2026-11\n  {KEY_A}\n\n# old:\n#{KEY_C}\n"
    );
    let ring = KeyRing::parse_file(&file).unwrap();
    let expected = KeyRing::parse(&format!("{KEY_B},{KEY_A}")).unwrap();
    assert_eq!(ring.key_ids(), expected.key_ids());
    // Comma-separated lines and CRLF, as redcloak-config accepts today.
    let ring = KeyRing::parse_file(&format!("{KEY_B},{KEY_A},\r\n{KEY_C}\r\n")).unwrap();
    assert_eq!(ring.len(), 3);
    use redcloak_crypto::KeyRingError;
    assert_eq!(
        KeyRing::parse_file("# nothing\n\n").unwrap_err(),
        KeyRingError::Empty
    );
    assert_eq!(
        KeyRing::parse_file(&format!("{KEY_A}\nnot-a-key\n")).unwrap_err(),
        KeyRingError::Invalid { position: 2 }
    );
    assert_eq!(
        KeyRing::parse_file(&format!("{KEY_A}\n# x\n{KEY_A}\n")).unwrap_err(),
        KeyRingError::Duplicate {
            first: 1,
            second: 2
        }
    );
}

/// Two different keys whose ids collide (found by a birthday search over
/// SHA-256("redcloak key-id collision N")): both must be tried.
#[test]
fn keys_sharing_an_id_are_both_tried() {
    const TWIN_1: &str = "g8IQG5DABc5OLOmsFwqI6sbtbl7R4S-kdb0LoxUPaLc=";
    const TWIN_2: &str = "-VlK-TT__bZ2vzzOBNZQJoOYBHXFdpW5g6jMkMRYo_4=";
    let both = ring(&format!("{TWIN_1},{TWIN_2}"), ValueFormat::AesGcm);
    assert_eq!(both.key_ids()[0], both.key_ids()[1]);
    assert_eq!(both.key_ids()[0].to_string(), "k:2ec5e8fa");
    let second = ring(TWIN_2, ValueFormat::AesGcm);
    let value = second.encrypt_value(b"v", &here());
    let opened = both.decrypt_value(&value, &here()).unwrap();
    assert_eq!(&opened.plaintext[..], b"v");
    assert_eq!(both.identify(&value), Some(both.key_ids()[1]));
    // Bound elsewhere: the second twin's origin check still says "genuine".
    assert_eq!(
        both.decrypt_value(&value, &Binding::key(0, b"other"))
            .map(|o| o.key_id),
        Err(DecryptError::Binding)
    );
    // Under the first twin alone, it names a key but does not authenticate.
    assert_eq!(
        ring(TWIN_1, ValueFormat::AesGcm)
            .decrypt_value(&value, &here())
            .map(|o| o.key_id),
        Err(DecryptError::Tampered)
    );
    let member = second.encrypt_member(b"m");
    assert_eq!(&both.decrypt_member(&member).unwrap().plaintext[..], b"m");
}

mod random_input {
    use super::*;
    use proptest::prelude::*;

    fn shaped() -> impl Strategy<Value = Vec<u8>> {
        (
            prop_oneof![Just(0xC1u8), Just(0xF5), Just(b'g'), any::<u8>()],
            proptest::collection::vec(any::<u8>(), 0..120),
        )
            .prop_map(|(first, mut rest)| {
                rest.insert(0, first);
                rest
            })
    }

    proptest! {
        #[test]
        fn never_panics_never_opens(input in shaped()) {
            let ring = ring(&format!("{KEY_A},{KEY_B}"), ValueFormat::AesGcm);
            prop_assert!(ring.decrypt_value(&input, &here()).is_err());
            prop_assert!(ring.decrypt_member(&input).is_err());
            prop_assert_eq!(ring.identify(&input), None);
            let _ = (inspect(&input), inspect_member(&input));
        }
    }
}
