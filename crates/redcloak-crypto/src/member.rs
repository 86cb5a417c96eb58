//! Deterministic encryption of set, sorted-set, geo and HyperLogLog members:
//! AES-SIV (RFC 5297, AES-CMAC-SIV with two AES-256 keys), so that equal
//! members under one key give equal ciphertexts and Redis can still compare
//! them.
//!
//! ```text
//! offset  size  field
//! 0       1     version 0xF5 (never valid UTF-8, never base64)
//! 1       4     key id
//! 5       16    SIV (the synthetic IV, which is also the authentication tag)
//! 21      n     AES-CTR ciphertext (n = member length)
//! ```
//!
//! S2V gets one associated-data component, the same for every member:
//! `"redcloak/v1/member/aes-256-siv" ‖ 0xF5 ‖ key id`. Members are not bound
//! to their Redis key, so `SINTER`, `SUNION`, `SMOVE`, `ZUNIONSTORE`… across
//! keys keep working.
//!
//! # Security
//!
//! Reveals equality of members (under the same key), their length, and the
//! key id; nothing else. That is the point: Redis must compare them.

use aes_siv::aead::KeyInit;
use aes_siv::siv::Aes256Siv;
use aes_siv::Tag;

use crate::keys::{RingKey, LABEL_MEMBER_SIV};
use crate::{DecryptError, KeyId, Plaintext};

/// First byte of every member ciphertext.
pub(crate) const VERSION: u8 = 0xF5;
const HEADER: usize = 1 + 4;
const SIV: usize = 16;
/// Bytes a member ciphertext adds to the member.
pub(crate) const OVERHEAD: usize = HEADER + SIV;
const AD_LEN: usize = LABEL_MEMBER_SIV.len() + HEADER;

fn header(id: KeyId) -> [u8; HEADER] {
    let [a, b, c, d] = id.to_bytes();
    [VERSION, a, b, c, d]
}

fn associated_data(header: &[u8; HEADER]) -> [u8; AD_LEN] {
    let mut ad = [0u8; AD_LEN];
    ad[..LABEL_MEMBER_SIV.len()].copy_from_slice(LABEL_MEMBER_SIV);
    ad[LABEL_MEMBER_SIV.len()..].copy_from_slice(header);
    ad
}

/// A cipher for one call: `Siv` needs `&mut self`, and building it is a key
/// expansion (its key halves are wiped on drop).
fn cipher(key: &RingKey) -> Aes256Siv {
    Aes256Siv::new(aes_siv::aead::generic_array::GenericArray::from_slice(
        &key.member_key[..],
    ))
}

/// The member ciphertext of `plain` under `key`.
pub(crate) fn encrypt(key: &RingKey, plain: &[u8]) -> Vec<u8> {
    let header = header(key.id);
    let mut out = Vec::with_capacity(OVERHEAD + plain.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&[0; SIV]);
    out.extend_from_slice(plain);
    let siv = cipher(key)
        .encrypt_in_place_detached([associated_data(&header)], &mut out[OVERHEAD..])
        .expect("one associated-data component is within S2V's limit");
    out[HEADER..OVERHEAD].copy_from_slice(&siv);
    out
}

/// The key id of a value shaped like a member ciphertext.
pub(crate) fn key_id(stored: &[u8]) -> Option<KeyId> {
    if stored.len() < OVERHEAD || stored[0] != VERSION {
        return None;
    }
    Some(KeyId::from_bytes([
        stored[1], stored[2], stored[3], stored[4],
    ]))
}

/// Opens a member ciphertext with the ring key(s) its key id names.
pub(crate) fn decrypt(keys: &[RingKey], stored: &[u8]) -> Result<(Plaintext, KeyId), DecryptError> {
    let id = key_id(stored).ok_or(DecryptError::NotAToken)?;
    let mut header = [0u8; HEADER];
    header.copy_from_slice(&stored[..HEADER]);
    let siv = Tag::clone_from_slice(&stored[HEADER..OVERHEAD]);
    let ciphertext = &stored[OVERHEAD..];
    let mut candidates = keys.iter().filter(|key| key.id == id).peekable();
    if candidates.peek().is_none() {
        return Err(DecryptError::NoMatchingKey);
    }
    let mut plaintext = Plaintext::with_capacity(ciphertext.len());
    for key in candidates {
        let buf = plaintext.vec_mut();
        buf.clear();
        buf.extend_from_slice(ciphertext);
        if cipher(key)
            .decrypt_in_place_detached([associated_data(&header)], &mut buf[..], &siv)
            .is_ok()
        {
            return Ok((plaintext, key.id));
        }
    }
    Err(DecryptError::Tampered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_siv::siv::Aes128Siv;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 5297 appendix A.1 (deterministic authenticated encryption), to pin
    /// the `aes-siv` crate's S2V/CTR to the RFC; our format uses the same
    /// code with AES-256 keys.
    #[test]
    fn rfc5297_a1() {
        let key = hex("fffefdfc fbfaf9f8 f7f6f5f4 f3f2f1f0 f0f1f2f3 f4f5f6f7 f8f9fafb fcfdfeff");
        let ad = hex("10111213 14151617 18191a1b 1c1d1e1f 20212223 24252627");
        let mut buf = hex("11223344 55667788 99aabbcc ddee");
        let tag = Aes128Siv::new(aes_siv::aead::generic_array::GenericArray::from_slice(&key))
            .encrypt_in_place_detached([&ad], &mut buf)
            .unwrap();
        assert_eq!(tag.to_vec(), hex("85632d07 c6e8f37f 950acd32 0a2ecc93"));
        assert_eq!(buf, hex("40c02b96 90c4dc04 daef7f6a fe5c"));
    }

    /// Pins our member format: a change here breaks every stored set.
    #[test]
    fn golden_member_ciphertext() {
        let key = RingKey::new(&[0x42; 32]);
        let ct = encrypt(&key, b"alice");
        let shown: String = ct.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(shown.len(), 2 * (OVERHEAD + 5));
        assert_eq!(&shown[..10], format!("f5{}", &key.id.to_string()[2..]));
        assert_eq!(shown, GOLDEN, "member format changed");
        let (plain, id) = decrypt(std::slice::from_ref(&key), &ct).unwrap();
        assert_eq!(&plain[..], b"alice");
        assert_eq!(id, key.id);
    }

    /// Computed independently with Python `cryptography` (HKDF + `AESSIV`)
    /// from `docs/encryption.md`; `tests/python_interop.rs` checks the same
    /// for random members.
    const GOLDEN: &str = "f5425ed4e47b9074ac9ec29a3d3fe6c5989ba968085660e23475";
}
