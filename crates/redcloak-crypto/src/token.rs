//! Structural check of a stored value: is it shaped like a Fernet token?
//!
//! A Fernet token is the url-safe base64 (padded) of
//! `0x80 ‖ timestamp (u64, big-endian) ‖ IV (16) ‖ AES-128-CBC ciphertext (n × 16, n ≥ 1) ‖ HMAC-SHA256 (32)`.
//!
//! [`classify`] looks only at the length, the alphabet and the first 12
//! characters (version and timestamp), without decoding or allocating, so a
//! value that is not a token is turned away before any key is tried.
//!
//! # Security
//!
//! This check decides nothing about authenticity: a value that passes is
//! still rejected unless a key's HMAC matches. It is built so that every
//! token any Fernet implementation produces passes it, and everything it
//! passes is also parsed by the `fernet` crate, so a failure after it means
//! "no key opens this" and not "malformed".

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine as _};

use crate::DecryptError;

/// Url-safe base64 that accepts canonical padding or none (Python pads
/// Fernet tokens and keys; some tools strip the padding).
pub(crate) const URL_SAFE_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Version (1) + timestamp (8) + IV (16) + HMAC (32).
const OVERHEAD: usize = 57;
/// One AES block.
const BLOCK: usize = 16;

/// The timestamp of a value that is shaped like a Fernet token, or
/// [`DecryptError::NotAToken`].
pub(crate) fn classify(stored: &[u8]) -> Result<u64, DecryptError> {
    // Every token starts with 'g': the top six bits of the version byte 0x80.
    if stored.first() != Some(&b'g') {
        return Err(DecryptError::NotAToken);
    }
    let body = strip_padding(stored).ok_or(DecryptError::NotAToken)?;

    let decoded_len = unpadded_decoded_len(body.len()).ok_or(DecryptError::NotAToken)?;
    if decoded_len < OVERHEAD + BLOCK || (decoded_len - OVERHEAD) % BLOCK != 0 {
        return Err(DecryptError::NotAToken);
    }
    if !is_url_safe_alphabet(body) || !has_canonical_tail(body) {
        return Err(DecryptError::NotAToken);
    }

    // 12 characters decode to exactly 9 bytes: the version and the timestamp.
    let mut head = [0u8; 9];
    match URL_SAFE_ANY_PAD.decode_slice(&body[..12], &mut head) {
        Ok(9) if head[0] == 0x80 => {}
        _ => return Err(DecryptError::NotAToken),
    }
    let mut timestamp = [0u8; 8];
    timestamp.copy_from_slice(&head[1..]);
    Ok(u64::from_be_bytes(timestamp))
}

/// Bytes that a value [`classify`] accepted decodes to.
pub(crate) fn decoded_len(stored: &[u8]) -> usize {
    strip_padding(stored)
        .and_then(|body| unpadded_decoded_len(body.len()))
        .unwrap_or(0)
}

/// Bytes that `len` characters of unpadded base64 decode to, if any.
fn unpadded_decoded_len(len: usize) -> Option<usize> {
    match len % 4 {
        0 => Some(len / 4 * 3),
        2 => Some(len / 4 * 3 + 1),
        3 => Some(len / 4 * 3 + 2),
        _ => None,
    }
}

/// The value without its `=` padding, if the padding is absent or canonical
/// (it completes the last group of four characters).
fn strip_padding(stored: &[u8]) -> Option<&[u8]> {
    let body = match stored {
        [body @ .., b'=', b'='] | [body @ .., b'='] => body,
        body => return Some(body),
    };
    (stored.len() % 4 == 0 && body.last() != Some(&b'=')).then_some(body)
}

/// All bytes in `A–Z a–z 0–9 - _`. Written without early exit inside each
/// chunk so that the compiler can vectorise it.
fn is_url_safe_alphabet(body: &[u8]) -> bool {
    body.chunks(64).all(|chunk| {
        chunk.iter().fold(true, |ok, &b| {
            ok & (b.is_ascii_alphanumeric() | (b == b'-') | (b == b'_'))
        })
    })
}

/// The unused low bits of the last character are zero, as base64 decoders
/// (including the one in `fernet`) require.
fn has_canonical_tail(body: &[u8]) -> bool {
    let unused_bits_mask = match body.len() % 4 {
        2 => 0b1111,
        3 => 0b11,
        _ => return true,
    };
    let Some(&last) = body.last() else {
        return true;
    };
    sextet(last) & unused_bits_mask == 0
}

/// Value of one url-safe base64 character (already known to be valid).
fn sextet(c: u8) -> u8 {
    match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        _ => 63,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};

    fn token_bytes(timestamp: u64, blocks: usize) -> Vec<u8> {
        let mut raw = vec![0x80];
        raw.extend_from_slice(&timestamp.to_be_bytes());
        raw.resize(OVERHEAD + blocks * BLOCK, 0xa5);
        raw
    }

    #[test]
    fn accepts_token_shapes_padded_and_unpadded() {
        for blocks in 1..=5 {
            let raw = token_bytes(1_700_000_000, blocks);
            assert_eq!(
                classify(URL_SAFE.encode(&raw).as_bytes()),
                Ok(1_700_000_000)
            );
            assert_eq!(
                classify(URL_SAFE_NO_PAD.encode(&raw).as_bytes()),
                Ok(1_700_000_000)
            );
        }
    }

    #[test]
    fn rejects_wrong_shapes() {
        let not = Err(DecryptError::NotAToken);
        assert_eq!(classify(b""), not);
        assert_eq!(classify(b"g"), not);
        assert_eq!(classify(b"hello world"), not);
        // Too short: no ciphertext block.
        assert_eq!(classify(URL_SAFE.encode(token_bytes(0, 0)).as_bytes()), not);
        // Ciphertext not a whole number of blocks.
        let mut raw = token_bytes(0, 1);
        raw.push(0);
        assert_eq!(classify(URL_SAFE.encode(&raw).as_bytes()), not);
        // Wrong version byte (0x81 still encodes to a leading 'g').
        let mut raw = token_bytes(0, 1);
        raw[0] = 0x81;
        assert_eq!(classify(URL_SAFE.encode(&raw).as_bytes()), not);
        // Standard (not url-safe) alphabet.
        let good = URL_SAFE.encode(token_bytes(0, 2));
        let std_alphabet = good.replacen(|c: char| c.is_ascii_alphanumeric() && c != 'g', "+", 1);
        assert_eq!(classify(std_alphabet.as_bytes()), not);
        // Non-canonical padding.
        let padded = format!("{}=", URL_SAFE_NO_PAD.encode(token_bytes(0, 1)));
        assert_eq!(classify(padded.as_bytes()), not);
        // Non-ASCII.
        let mut bytes = good.into_bytes();
        bytes[20] = 0xc3;
        assert_eq!(classify(&bytes), not);
    }

    #[test]
    fn rejects_non_canonical_tail() {
        // 73 bytes → 98 characters; 98 % 4 == 2, so the last character has
        // four unused bits.
        let encoded = URL_SAFE_NO_PAD.encode(token_bytes(0, 1));
        assert_eq!(encoded.len() % 4, 2);
        let mut bytes = encoded.into_bytes();
        let last = bytes.len() - 1;
        // The last byte 0xa5 leaves its low two bits, 01, for the last character: 0b010000.
        assert_eq!(bytes[last], b'Q');
        bytes[last] = b'R';
        assert_eq!(classify(&bytes), Err(DecryptError::NotAToken));
    }
}
