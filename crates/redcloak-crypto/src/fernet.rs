//! Fernet (the specification at github.com/fernet/spec), on the RustCrypto
//! primitives the `fernet` crate uses, byte-compatible with it and with
//! Python's `cryptography.fernet`:
//!
//! ```text
//! token = base64url( 0x80 ‖ timestamp (u64 BE) ‖ IV (16) ‖ AES-128-CBC-PKCS7(plaintext) ‖ HMAC-SHA256 (32) )
//! ```
//!
//! Written here rather than called through the `fernet` crate so that the IV
//! comes from the per-thread generator (`rng.rs`) instead of a `getrandom`
//! syscall per token, so that a token is base64-decoded once however many
//! keys are tried, and so that decryption reports which key opened the token
//! and its timestamp. The `fernet` crate stays as the test oracle.
//!
//! # Security
//!
//! The HMAC is verified (in constant time) before anything is decrypted. The
//! timestamp is authenticated but never compared with the clock: stored
//! values have no age.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit};
use aes::Aes128;
use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::keys::RingKey;
use crate::token::{self, URL_SAFE_ANY_PAD};
use crate::{rng, DecryptError, KeyId, Plaintext};

type HmacSha256 = Hmac<Sha256>;

/// Version byte of every Fernet token.
const VERSION: u8 = 0x80;
/// Version (1) + timestamp (8).
const HEADER: usize = 9;
const IV: usize = 16;
const MAC: usize = 32;
const BLOCK: usize = 16;

/// Length of the raw (not yet base64) token for `plain_len` bytes.
fn raw_len(plain_len: usize) -> usize {
    HEADER + IV + (plain_len / BLOCK + 1) * BLOCK + MAC
}

/// Length of the token (padded base64) for `plain_len` bytes.
pub(crate) fn token_len(plain_len: usize) -> usize {
    raw_len(plain_len).div_ceil(3) * 4
}

/// Writes the token for `plain` into `out`, which must be exactly
/// [`token_len`]`(plain.len())` bytes long.
pub(crate) fn encrypt_into(key: &RingKey, plain: &[u8], timestamp: u64, out: &mut [u8]) {
    let mut iv = [0u8; IV];
    rng::fill(&mut iv);
    encrypt_with_iv(key, plain, timestamp, &iv, out);
}

/// [`encrypt_into`] with a given IV (for known-answer tests).
pub(crate) fn encrypt_with_iv(
    key: &RingKey,
    plain: &[u8],
    timestamp: u64,
    iv: &[u8; IV],
    out: &mut [u8],
) {
    assert_eq!(out.len(), token_len(plain.len()), "output size");
    let mut raw = vec![0u8; raw_len(plain.len())];
    raw[0] = VERSION;
    raw[1..HEADER].copy_from_slice(&timestamp.to_be_bytes());
    raw[HEADER..HEADER + IV].copy_from_slice(iv);
    let body_end = raw.len() - MAC;
    let body = &mut raw[HEADER + IV..body_end];
    body[..plain.len()].copy_from_slice(plain);
    cbc::Encryptor::<Aes128>::inner_iv_init(key.fernet_cipher.clone(), iv.into())
        .encrypt_padded_mut::<Pkcs7>(body, plain.len())
        .expect("the buffer has room for the padding");
    let mut mac = hmac(key);
    mac.update(&raw[..body_end]);
    raw[body_end..].copy_from_slice(&mac.finalize().into_bytes());
    let written = URL_SAFE
        .encode_slice(&raw, out)
        .expect("the output is token_len long");
    debug_assert_eq!(written, out.len());
}

/// A token opened by one of `keys`.
pub(crate) struct Opened {
    pub(crate) plaintext: Plaintext,
    pub(crate) key_id: KeyId,
    pub(crate) timestamp: u64,
}

/// Opens a Fernet token with whichever key authenticates it (in ring order).
pub(crate) fn decrypt(keys: &[RingKey], stored: &[u8]) -> Result<Opened, DecryptError> {
    let timestamp = token::classify(stored)?;
    // `classify` accepted the length, alphabet and padding, so this decodes;
    // sized exactly so that it never reallocates (the plaintext lands here).
    let mut plaintext = Plaintext::with_capacity(token::decoded_len(stored));
    let raw = plaintext.vec_mut();
    raw.resize(raw.capacity(), 0);
    let len = URL_SAFE_ANY_PAD
        .decode_slice(stored, &mut raw[..])
        .map_err(|_| DecryptError::NotAToken)?;
    raw.truncate(len);
    let body_end = raw.len() - MAC;
    let key = keys
        .iter()
        .find(|key| {
            let mut mac = hmac(key);
            mac.update(&raw[..body_end]);
            mac.verify_slice(&raw[body_end..]).is_ok()
        })
        .ok_or(DecryptError::NoMatchingKey)?;
    let mut iv = [0u8; IV];
    iv.copy_from_slice(&raw[HEADER..HEADER + IV]);
    let plain_len = cbc::Decryptor::<Aes128>::inner_iv_init(key.fernet_cipher.clone(), &iv.into())
        .decrypt_padded_mut::<Pkcs7>(&mut raw[HEADER + IV..body_end])
        // Authentic but badly padded: only a broken writer holding the key
        // makes these; Python refuses them too.
        .map_err(|_| DecryptError::NoMatchingKey)?
        .len();
    raw.copy_within(HEADER + IV..HEADER + IV + plain_len, 0);
    raw.truncate(plain_len);
    Ok(Opened {
        plaintext,
        key_id: key.id,
        timestamp,
    })
}

/// The id of the first key whose HMAC authenticates the token (no decryption).
pub(crate) fn identify(keys: &[RingKey], stored: &[u8]) -> Option<KeyId> {
    token::classify(stored).ok()?;
    let mut raw = vec![0u8; token::decoded_len(stored)];
    let len = URL_SAFE_ANY_PAD.decode_slice(stored, &mut raw[..]).ok()?;
    raw.truncate(len);
    let body_end = raw.len() - MAC;
    keys.iter()
        .find(|key| {
            let mut mac = hmac(key);
            mac.update(&raw[..body_end]);
            mac.verify_slice(&raw[body_end..]).is_ok()
        })
        .map(|key| key.id)
}

fn hmac(key: &RingKey) -> HmacSha256 {
    <HmacSha256 as Mac>::new_from_slice(&key.fernet_signing[..])
        .expect("HMAC accepts any key length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_match_python() {
        // Python: len(Fernet(k).encrypt(b"x" * n)) for n in (0, 15, 16, 100, 1024)
        assert_eq!(token_len(0), 100);
        assert_eq!(token_len(15), 100);
        assert_eq!(token_len(16), 120);
        assert_eq!(token_len(100), 228);
        assert_eq!(token_len(1024), 1464);
    }

    /// The worked example of the Fernet specification (generate.json).
    #[test]
    fn specification_vector() {
        use base64::engine::general_purpose::URL_SAFE;
        let secret = URL_SAFE
            .decode("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=")
            .unwrap();
        let key = RingKey::new(secret.as_slice().try_into().unwrap());
        let iv: [u8; 16] = (0..16).collect::<Vec<u8>>().try_into().unwrap();
        let mut out = vec![0u8; token_len(5)];
        // 1985-10-26T01:20:00-07:00
        encrypt_with_iv(&key, b"hello", 499_162_800, &iv, &mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA=="
        );
        let opened = decrypt(std::slice::from_ref(&key), &out).unwrap();
        assert_eq!(&opened.plaintext[..], b"hello");
        assert_eq!(opened.timestamp, 499_162_800);
        assert_eq!(opened.key_id, key.id);
    }
}
