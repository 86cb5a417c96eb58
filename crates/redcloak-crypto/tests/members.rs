//! The deterministic member cipher: equal members give equal ciphertexts
//! under one key (Redis compares them), distinct members never collide, keys
//! differ, and rotation works through `member_candidates`.

use std::collections::HashSet;

use proptest::collection::vec;
use proptest::prelude::*;
use redcloak_crypto::{inspect_member, DecryptError, KeyRing};

const KEY_A: &str = "CnoFYelOnLLksjp7Te1342ralzvooKpUtxSZFrasGxA=";
const KEY_B: &str = "ApHo_gwPKEDd59lgnwzd-Fy9eNhj6uJlpHxE3xRcXWs=";
const KEY_C: &str = "zIcpu6AmSJdHx-_ZwlT7uAoP8oOpx6ssvwX9YXYlEIo=";

fn ring(list: &str) -> KeyRing {
    KeyRing::parse(list).unwrap()
}

fn member() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(vec![]),
        vec(any::<u8>(), 0..4),
        vec(any::<u8>(), 0..200),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn deterministic_and_round_trips(plain in member()) {
        let ring = ring(KEY_A);
        let first = ring.encrypt_member(&plain);
        // Same key: same bytes, also from another ring value with the same key.
        prop_assert_eq!(&first, &ring.encrypt_member(&plain));
        prop_assert_eq!(&first, &self::ring(&format!("{KEY_A},{KEY_B}")).encrypt_member(&plain));
        prop_assert_eq!(first.len(), plain.len() + 21);
        let opened = ring.decrypt_member(&first).unwrap();
        prop_assert_eq!(&*opened.plaintext, &plain);
        prop_assert_eq!(opened.key_id, ring.key_ids()[0]);
    }

    #[test]
    fn injective(a in member(), b in member()) {
        prop_assume!(a != b);
        let ring = ring(KEY_A);
        prop_assert_ne!(ring.encrypt_member(&a), ring.encrypt_member(&b));
    }

    #[test]
    fn keys_give_different_ciphertexts(plain in member()) {
        let a = ring(KEY_A).encrypt_member(&plain);
        let b = ring(KEY_B).encrypt_member(&plain);
        prop_assert_ne!(&a[..5], &b[..5], "key ids differ");
        prop_assert_ne!(&a[5..], &b[5..], "so do SIV and ciphertext");
    }

    #[test]
    fn candidates_one_per_key_primary_first(plain in member()) {
        let ring = ring(&format!("{KEY_C},{KEY_B},{KEY_A}"));
        let candidates = ring.member_candidates(&plain);
        prop_assert_eq!(candidates.len(), ring.len());
        prop_assert_eq!(&candidates[0], &ring.encrypt_member(&plain));
        for (candidate, (list, id)) in candidates.iter().zip([KEY_C, KEY_B, KEY_A].iter().zip(ring.key_ids())) {
            prop_assert_eq!(candidate, &self::ring(list).encrypt_member(&plain));
            prop_assert_eq!(inspect_member(candidate), Some(*id));
            let opened = ring.decrypt_member(candidate).unwrap();
            prop_assert_eq!(&*opened.plaintext, &plain);
            prop_assert_eq!(opened.key_id, *id);
        }
        let distinct: HashSet<_> = candidates.iter().collect();
        prop_assert_eq!(distinct.len(), candidates.len());
    }
}

#[test]
fn many_small_members_never_collide() {
    // Every 0-, 1- and 2-byte member, plus a prefix family.
    let ring = ring(KEY_A);
    let mut members: Vec<Vec<u8>> = vec![vec![]];
    members.extend((0..=255u8).map(|b| vec![b]));
    members.extend((0..=0xffffu16).map(|v| v.to_be_bytes().to_vec()));
    members.extend((0..64).map(|n| vec![0u8; n]));
    members.sort();
    members.dedup();
    let ciphertexts: HashSet<Vec<u8>> = members.iter().map(|m| ring.encrypt_member(m)).collect();
    assert_eq!(ciphertexts.len(), members.len());
}

#[test]
fn rotation_finds_old_members_through_candidates() {
    let old = ring(KEY_A);
    let rotated = ring(&format!("{KEY_B},{KEY_A}"));
    // A set written before rotation.
    let stored: HashSet<Vec<u8>> = [&b"alice"[..], b"bob"]
        .iter()
        .map(|m| old.encrypt_member(m))
        .collect();
    // After rotation the primary ciphertext misses; a candidate hits.
    let candidates = rotated.member_candidates(b"alice");
    assert!(!stored.contains(&candidates[0]));
    assert!(stored.contains(&candidates[1]));
    // Members read back say they need re-encryption (not the primary key).
    for ct in &stored {
        let opened = rotated.decrypt_member(ct).unwrap();
        assert_eq!(opened.key_id, old.key_ids()[0]);
        assert_ne!(opened.key_id, rotated.key_ids()[0]);
    }
}

#[test]
fn member_errors() {
    let ring = ring(KEY_A);
    let ct = ring.encrypt_member(b"member");
    // Not a member ciphertext: plaintext, values, Fernet tokens.
    for other in [
        b"member".to_vec(),
        vec![],
        ct[..20].to_vec(),
        ring.encrypt(b"member"),
        ring.with_format(redcloak_crypto::ValueFormat::AesGcm)
            .encrypt_value(b"member", &redcloak_crypto::Binding::key(0, b"k")),
    ] {
        assert_eq!(
            self::ring(KEY_A).decrypt_member(&other).map(|o| o.key_id),
            Err(DecryptError::NotAToken)
        );
    }
    // Another key.
    assert_eq!(
        self::ring(KEY_B).decrypt_member(&ct).map(|o| o.key_id),
        Err(DecryptError::NoMatchingKey)
    );
    // Every flipped bit after the version byte, every truncation.
    let ring = self::ring(KEY_A);
    for i in 1..ct.len() {
        for bit in 0..8 {
            let mut t = ct.clone();
            t[i] ^= 1 << bit;
            let expected = if i < 5 {
                DecryptError::NoMatchingKey
            } else {
                DecryptError::Tampered
            };
            assert_eq!(
                ring.decrypt_member(&t).map(|o| o.key_id),
                Err(expected),
                "byte {i} bit {bit}"
            );
        }
    }
    for len in 0..ct.len() {
        assert!(ring.decrypt_member(&ct[..len]).is_err(), "{len}");
    }
}

/// Size overhead, as documented in docs/encryption.md.
#[test]
fn member_sizes() {
    let ring = ring(KEY_A);
    for n in [1, 8, 16, 36, 64] {
        assert_eq!(ring.encrypt_member(&vec![b'x'; n]).len(), n + 21);
    }
}
