//! [`KeyId`]: a short, non-secret fingerprint that names a key in logs and
//! metrics.

use std::fmt;

use sha2::{Digest, Sha256};

/// Non-secret fingerprint of a ring key: the first 4 bytes of the SHA-256 of
/// the raw 32-byte key, shown as `k:3fa9c2d1`. The same 4 bytes name the key
/// inside AES-GCM value envelopes and member ciphertexts.
///
/// # Security
///
/// 32 bits of a hash of a 256-bit random key reveal nothing usable about the
/// key, so ids may be logged and exported. They are for telling keys apart
/// during rotation, not for authentication: two keys may (rarely) share an id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 4]);

impl KeyId {
    /// Fingerprints a raw 32-byte key.
    pub(crate) fn of(raw_key: &[u8; 32]) -> KeyId {
        let digest = Sha256::digest(raw_key);
        KeyId([digest[0], digest[1], digest[2], digest[3]])
    }

    /// The id as it is written into binary envelopes (4 bytes).
    pub fn to_bytes(self) -> [u8; 4] {
        self.0
    }

    /// The id read back from a binary envelope.
    pub fn from_bytes(bytes: [u8; 4]) -> KeyId {
        KeyId(bytes)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "k:{a:02x}{b:02x}{c:02x}{d:02x}")
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_fingerprint() {
        // sha256 of 32 zero bytes = 66687aadf862bd776c8fc18b8e9f8e20...
        assert_eq!(KeyId::of(&[0; 32]).to_string(), "k:66687aad");
        assert_eq!(format!("{:?}", KeyId::of(&[0; 32])), "k:66687aad");
    }
}
