//! One key of the ring and the per-purpose keys derived from it.
//!
//! A ring key is the 32 bytes of a Fernet key. Fernet uses them as the
//! specification says (first half HMAC-SHA256 key, second half AES-128 key);
//! every other purpose gets its own key from HKDF-SHA256 (RFC 5869):
//!
//! ```text
//! PRK      = HKDF-Extract(salt = "redcloak key ring v1", IKM = the 32-byte ring key)
//! value    = HKDF-Expand(PRK, "redcloak/v1/value/aes-256-gcm",   32)
//! origin   = HKDF-Expand(PRK, "redcloak/v1/value/origin-check",  32)
//! member   = HKDF-Expand(PRK, "redcloak/v1/member/aes-256-siv",  64)
//! ```
//!
//! Distinct labels make the derived keys independent: knowing one says
//! nothing about the others or about the Fernet halves. New purposes (e.g. a
//! `DUMP` seal, reserved as `redcloak/v1/dump/seal`) take new labels; never
//! reuse one.
//!
//! # Security
//!
//! - Every long-lived secret here zeroizes itself on drop: raw bytes in
//!   [`Zeroizing`], AES key schedules through the `aes` crate's `zeroize`
//!   feature. There is no `Debug`.
//! - Per-call state (ring's AES-GCM key schedule, HMAC pads, AES-SIV's CMAC
//!   state) lives on the stack for one call and is not wiped; ring does not
//!   zeroize, which is why its keys are not kept between calls.

use aes::cipher::generic_array::GenericArray;
use aes::cipher::KeyInit;
use aes::{Aes128, Aes256};
use ring::hkdf;
use zeroize::Zeroizing;

use crate::KeyId;

/// HKDF-Extract salt: fixed, so that a ring key always derives the same keys.
const SALT: &[u8] = b"redcloak key ring v1";
/// HKDF-Expand label of the AES-256-GCM value key.
pub(crate) const LABEL_VALUE_GCM: &[u8] = b"redcloak/v1/value/aes-256-gcm";
/// HKDF-Expand label of the envelope's origin-check key.
pub(crate) const LABEL_ORIGIN_CHECK: &[u8] = b"redcloak/v1/value/origin-check";
/// HKDF-Expand label of the AES-SIV member key.
pub(crate) const LABEL_MEMBER_SIV: &[u8] = b"redcloak/v1/member/aes-256-siv";

/// One key of the ring.
pub(crate) struct RingKey {
    pub(crate) id: KeyId,
    /// Fernet: HMAC-SHA256 key (first half of the Fernet key).
    pub(crate) fernet_signing: Zeroizing<[u8; 16]>,
    /// Fernet: AES-128-CBC key (second half), expanded.
    pub(crate) fernet_cipher: Aes128,
    /// AES-256-GCM key for value envelopes (ring expands it per call).
    pub(crate) value_key: Zeroizing<[u8; 32]>,
    /// AES-256 block cipher of the envelope's origin check.
    pub(crate) origin: Aes256,
    /// AES-SIV key (CMAC half ‖ CTR half) for members.
    pub(crate) member_key: Zeroizing<[u8; 64]>,
}

impl RingKey {
    /// Derives every per-purpose key from the raw 32-byte ring key.
    pub(crate) fn new(raw: &[u8; 32]) -> RingKey {
        let mut signing = Zeroizing::new([0u8; 16]);
        signing.copy_from_slice(&raw[..16]);
        let fernet_cipher = Aes128::new(GenericArray::from_slice(&raw[16..]));

        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(raw);
        let mut value_key = Zeroizing::new([0u8; 32]);
        expand(&prk, LABEL_VALUE_GCM, &mut value_key[..]);
        let mut origin_key = Zeroizing::new([0u8; 32]);
        expand(&prk, LABEL_ORIGIN_CHECK, &mut origin_key[..]);
        let mut member_key = Zeroizing::new([0u8; 64]);
        expand(&prk, LABEL_MEMBER_SIV, &mut member_key[..]);

        RingKey {
            id: KeyId::of(raw),
            fernet_signing: signing,
            fernet_cipher,
            value_key,
            origin: Aes256::new(GenericArray::from_slice(&origin_key[..])),
            member_key,
        }
    }
}

/// `HKDF-Expand(prk, label, out.len())`.
fn expand(prk: &hkdf::Prk, label: &[u8], out: &mut [u8]) {
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let info = [label];
    // Fails only for lengths over 255 × 32 bytes; ours are at most 64.
    prk.expand(&info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .expect("HKDF-Expand of at most 64 bytes");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5869 test case 1, through the same `expand` helper.
    #[test]
    fn hkdf_rfc5869_case_1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0x00..=0x0c).collect();
        let info: Vec<u8> = (0xf0..=0xf9).collect();
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(&ikm);
        let mut okm = [0u8; 42];
        expand(&prk, &info, &mut okm);
        let expected = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf\
                        34007208d5b887185865";
        let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn purposes_get_distinct_keys() {
        let key = RingKey::new(&[7; 32]);
        assert_ne!(key.value_key[..], key.member_key[..32]);
        assert_ne!(key.value_key[..], key.member_key[32..]);
        assert_ne!(&key.value_key[..16], &key.fernet_signing[..]);
        let other = RingKey::new(&[8; 32]);
        assert_ne!(key.value_key[..], other.value_key[..]);
        assert_ne!(key.member_key[..], other.member_key[..]);
    }
}
