//! redcloak's own Fernet code against the `fernet` crate (the reference it
//! replaced): each reads what the other writes, for every length class.

use proptest::collection::vec;
use proptest::prelude::*;
use redcloak_crypto::{generate_key, Binding, KeyRing, ValueFormat};

const KEY_A: &str = "CnoFYelOnLLksjp7Te1342ralzvooKpUtxSZFrasGxA=";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn the_fernet_crate_reads_ours(plain in vec(any::<u8>(), 0..300)) {
        let token = KeyRing::parse(KEY_A).unwrap().encrypt(&plain);
        let theirs = fernet::Fernet::new(KEY_A).unwrap();
        prop_assert_eq!(theirs.decrypt(std::str::from_utf8(&token).unwrap()).unwrap(), plain);
    }

    #[test]
    fn we_read_the_fernet_crates(plain in vec(any::<u8>(), 0..300), timestamp in any::<u64>()) {
        let token = fernet::Fernet::new(KEY_A).unwrap().encrypt_at_time(&plain, timestamp);
        let ring = KeyRing::parse(KEY_A).unwrap().with_format(ValueFormat::AesGcm);
        let opened = ring.decrypt_value(token.as_bytes(), &Binding::key(0, b"k")).unwrap();
        prop_assert_eq!(&*opened.plaintext, &plain);
        prop_assert_eq!(opened.timestamp, Some(timestamp));
        prop_assert_eq!(opened.format, ValueFormat::Fernet);
    }
}

#[test]
fn tokens_carry_the_current_time() {
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ring = KeyRing::parse(KEY_A).unwrap();
    let opened = ring
        .decrypt_value(&ring.encrypt(b"v"), &Binding::key(0, b"k"))
        .unwrap();
    let stamped = opened.timestamp.unwrap();
    assert!(
        (before..=before + 5).contains(&stamped),
        "{stamped} vs {before}"
    );
}

#[test]
fn random_keys_interoperate() {
    for _ in 0..20 {
        let key = generate_key();
        let token = KeyRing::parse(&key).unwrap().encrypt(b"x");
        let theirs = fernet::Fernet::new(&key).unwrap();
        assert_eq!(
            theirs
                .decrypt(std::str::from_utf8(&token).unwrap())
                .unwrap(),
            b"x"
        );
    }
}
