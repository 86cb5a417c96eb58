//! Value encryption for redcloak: a ring of Fernet keys that encrypts what
//! clients write and decrypts what they read. No I/O.
//!
//! # Layout
//!
//! - [`KeyRing`] (`keyring.rs`): parses the `REDIS_ENCRYPTION_KEY` list,
//!   encrypts with the first key and decrypts with any of them.
//! - `token.rs`: the cheap structural check that sorts a stored value into
//!   "not a token" or "a token to try keys on", before any cryptography.
//! - [`KeyId`] (`key_id.rs`): non-secret key fingerprints for logs and metrics.
//! - [`KeyRingError`], [`DecryptError`] (`error.rs`): what went wrong and
//!   what to do about it, never with key material in it.
//! - [`generate_key`]: a new random key (`redcloak keygen`).
//!
//! Tokens are standard Fernet (AES-128-CBC + HMAC-SHA256, via the `fernet`
//! crate), byte-compatible with Python's `cryptography.fernet`, including
//! `MultiFernet` rotation: applications that already encrypt with Python can
//! share data with redcloak.
//!
//! # Security
//!
//! - Key material is never formatted: `Debug` of [`KeyRing`] shows only
//!   [`KeyId`]s, errors name keys by position, and decoded key bytes are
//!   zeroized after use.
//! - Every token is authenticated before it is decrypted. A modified token
//!   and a token from a key that is not configured are indistinguishable
//!   ([`DecryptError::NoMatchingKey`]) by design.
//! - The "not a token" check looks only at the shape of the value; it can
//!   never make a forged token acceptable. A future-dated token is reported
//!   as [`DecryptError::FromTheFuture`] only if a key authenticates it.
//! - Fernet tokens carry their creation time in clear (to the second).

mod error;
mod key_id;
mod keyring;
mod token;

pub use error::{DecryptError, KeyRingError};
pub use key_id::KeyId;
pub use keyring::KeyRing;

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use zeroize::Zeroizing;

/// A new random Fernet key (the `redcloak keygen` output): 32 bytes from the
/// operating system's random number generator, url-safe base64 with padding,
/// exactly as Python's `Fernet.generate_key()` prints it. Zeroized when dropped.
///
/// # Panics
///
/// If the operating system's random number generator fails; there is no safe
/// fallback for key generation.
pub fn generate_key() -> Zeroizing<String> {
    let mut raw = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(&mut raw[..])
        .expect("the operating system's random number generator failed");
    // Sized up front so that encoding never reallocates (which would leave an
    // unzeroized copy behind).
    let mut key = Zeroizing::new(String::with_capacity(44));
    URL_SAFE.encode_string(&raw[..], &mut key);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_differ() {
        let a = generate_key();
        let b = generate_key();
        assert_eq!(a.len(), 44);
        assert!(a.ends_with('='));
        assert_ne!(*a, *b);
        assert_eq!(KeyRing::parse(&a).unwrap().len(), 1);
    }
}
