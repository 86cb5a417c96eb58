//! [`KeyRing`]: the configured Fernet keys, newest first.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use fernet::Fernet;
use zeroize::Zeroizing;

use crate::token::{self, URL_SAFE_ANY_PAD};
use crate::{DecryptError, KeyId, KeyRingError};

/// How far in the future a token's timestamp may be (Fernet's rule, the
/// same in the `fernet` crate and in Python's `cryptography`).
const MAX_CLOCK_SKEW_SECS: u64 = 60;

/// Fernet key ring: the first key encrypts, every key decrypts (rotation
/// without downtime).
///
/// To rotate, put the new key first and keep the old one after it
/// (`NEW,OLD`); once every value has been rewritten, drop `OLD`.
///
/// Cloning is cheap (the keys are shared, not copied).
///
/// # Security
///
/// - `Debug` prints only [`KeyId`]s, never key material.
/// - Keys live only inside [`fernet::Fernet`] values, which zeroize
///   themselves on drop; the decoded bytes used while parsing are zeroized too.
/// - Decryption authenticates (HMAC-SHA256) before it decrypts and never
///   accepts a token dated more than 60 s ahead of this clock. Tokens do not
///   expire: stored values have no TTL of their own.
#[derive(Clone)]
pub struct KeyRing {
    inner: Arc<Inner>,
}

struct Inner {
    /// Same order as `ids`; the first one encrypts.
    fernets: Vec<Fernet>,
    ids: Vec<KeyId>,
}

impl KeyRing {
    /// Parses a comma-separated list of Fernet keys (the
    /// `REDIS_ENCRYPTION_KEY` format): whitespace around keys is trimmed,
    /// empty entries (e.g. a trailing comma) are rejected. Each must be a
    /// valid Fernet key: url-safe base64 of 32 bytes, padded as Python's
    /// `Fernet.generate_key()` prints it, or unpadded. Duplicates are
    /// rejected.
    ///
    /// Errors name the key's position (1-based), never its value.
    pub fn parse(list: &str) -> Result<KeyRing, KeyRingError> {
        if list.trim().is_empty() {
            return Err(KeyRingError::Empty);
        }
        let mut raws: Vec<Zeroizing<[u8; 32]>> = Vec::new();
        let mut fernets = Vec::new();
        let mut ids = Vec::new();
        for (index, entry) in list.split(',').enumerate() {
            let position = index + 1;
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(KeyRingError::EmptyEntry { position });
            }
            let raw = decode_key(entry).ok_or(KeyRingError::Invalid { position })?;
            if let Some(first) = raws.iter().position(|seen| **seen == *raw) {
                return Err(KeyRingError::Duplicate {
                    first: first + 1,
                    second: position,
                });
            }
            // `decode_key` accepted it, so `Fernet::new` (which is more
            // lenient about padding) does too.
            let fernet = Fernet::new(entry).ok_or(KeyRingError::Invalid { position })?;
            ids.push(KeyId::of(&raw));
            fernets.push(fernet);
            raws.push(raw);
        }
        Ok(KeyRing {
            inner: Arc::new(Inner { fernets, ids }),
        })
    }

    /// Encrypts `plaintext` with the primary (first) key. Returns the Fernet
    /// token's ASCII bytes, which Python's `Fernet(key).decrypt` accepts.
    ///
    /// # Panics
    ///
    /// If the operating system's random number generator fails (the IV
    /// cannot be drawn); continuing without randomness would be unsafe.
    pub fn encrypt(&self, plaintext: &[u8]) -> Vec<u8> {
        // `encrypt_at_time` with the real clock is `Fernet::encrypt` minus its
        // panic on a clock set before 1970.
        self.inner.fernets[0]
            .encrypt_at_time(plaintext, unix_now())
            .into_bytes()
    }

    /// Decrypts a stored Fernet token with whichever key opens it, trying the
    /// primary key first.
    ///
    /// Values that are not shaped like a token are rejected as
    /// [`DecryptError::NotAToken`] before any key is tried.
    pub fn decrypt(&self, stored: &[u8]) -> Result<Vec<u8>, DecryptError> {
        let timestamp = token::classify(stored)?;
        // `classify` accepted only ASCII, so this cannot fail.
        let token = std::str::from_utf8(stored).map_err(|_| DecryptError::NotAToken)?;
        let now = unix_now();
        for fernet in &self.inner.fernets {
            if let Ok(plaintext) = fernet.decrypt_at_time(token, None, now) {
                return Ok(plaintext);
            }
        }
        Err(self.diagnose_failure(token, timestamp, now))
    }

    /// After every key failed: was the token genuine but dated in the future
    /// (clock skew), or is it not ours / modified?
    ///
    /// A future timestamp alone proves nothing (anyone can write one), so it
    /// is reported as [`DecryptError::FromTheFuture`] only if a key
    /// authenticates the token when checked at its own timestamp. The
    /// plaintext of that check is discarded.
    #[cold]
    fn diagnose_failure(&self, token: &str, timestamp: u64, now: u64) -> DecryptError {
        if timestamp <= now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return DecryptError::NoMatchingKey;
        }
        // `fernet` computes `current_time + 60`: keep that from overflowing.
        let at = timestamp.min(u64::MAX - MAX_CLOCK_SKEW_SECS);
        let genuine = self.inner.fernets.iter().any(|fernet| {
            fernet
                .decrypt_at_time(token, None, at)
                .map(Zeroizing::new)
                .is_ok()
        });
        if genuine {
            DecryptError::FromTheFuture
        } else {
            DecryptError::NoMatchingKey
        }
    }

    /// Non-secret fingerprints of the keys, primary first.
    pub fn key_ids(&self) -> &[KeyId] {
        &self.inner.ids
    }

    /// Number of keys (at least 1).
    pub fn len(&self) -> usize {
        self.inner.ids.len()
    }

    /// Always `false`: [`KeyRing::parse`] refuses an empty list.
    pub fn is_empty(&self) -> bool {
        self.inner.ids.is_empty()
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("keys", &self.inner.ids)
            .finish()
    }
}

/// The raw 32 bytes of one key, or `None` if it is not url-safe base64 of
/// exactly 32 bytes (padding optional, but canonical if present).
fn decode_key(entry: &str) -> Option<Zeroizing<[u8; 32]>> {
    // Room for one byte too many, so an over-long key is an error rather than
    // a truncation. A 32-byte key is at most 44 characters.
    if entry.len() > 44 {
        return None;
    }
    let mut buf = Zeroizing::new([0u8; 33]);
    let len = URL_SAFE_ANY_PAD.decode_slice(entry, &mut buf[..]).ok()?;
    if len != 32 {
        return None;
    }
    let mut raw = Zeroizing::new([0u8; 32]);
    raw.copy_from_slice(&buf[..32]);
    Some(raw)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}
