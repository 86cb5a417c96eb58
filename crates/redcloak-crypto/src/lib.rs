//! Value encryption for redcloak: a ring of keys that encrypts what clients
//! write and decrypts what they read. No I/O.
//!
//! # Layout
//!
//! - [`KeyRing`] (`keyring.rs`): parses the `REDIS_ENCRYPTION_KEY` list (or a
//!   key file), encrypts with the first key and decrypts with any of them;
//!   the one API the proxy uses, for values and for members.
//! - `fernet.rs`: Fernet tokens (the default value format), byte-compatible
//!   with Python's `cryptography.fernet`, including `MultiFernet` rotation.
//! - `envelope.rs`: the opt-in AES-256-GCM value envelope and the
//!   [`Binding`] (database, key, hash field) it is bound to.
//! - `member.rs`: deterministic AES-SIV for set / sorted-set / geo /
//!   HyperLogLog members.
//! - `keys.rs`: one ring key and the per-purpose keys HKDF derives from it.
//! - `rng.rs`: the per-thread AES-CTR generator behind every IV and nonce.
//! - `token.rs`: the cheap structural check that sorts a stored value into
//!   "not a token" or "a token to try keys on", before any cryptography.
//! - [`Plaintext`] (`plaintext.rs`): decrypted bytes that wipe themselves.
//! - [`KeyId`] (`key_id.rs`): non-secret key fingerprints for logs, metrics
//!   and envelope headers.
//! - [`KeyRingError`], [`DecryptError`], [`ParseFormatError`] (`error.rs`):
//!   what went wrong and what to do about it, never with key material in it.
//! - [`generate_key`]: a new random key (`redcloak keygen`).
//!
//! `docs/encryption.md` describes every format byte by byte.
//!
//! # Security
//!
//! - Key material is never formatted: `Debug` of [`KeyRing`] shows only
//!   [`KeyId`]s, errors name keys by position, and key bytes are zeroized on
//!   drop.
//! - Every value is authenticated before it is decrypted; failures are told
//!   apart for metrics ([`DecryptError`]) without ever accepting a forgery.
//! - The "not a token" checks look only at the shape of a value; they can
//!   never make a forged value acceptable.
//! - What each format reveals: Fernet the value's length (to 16 bytes) and
//!   its creation time (to the second); the AES-GCM envelope the exact
//!   length and the key id; members their equality, length and key id.
//!   Stored values have no age: timestamps are never checked.

mod envelope;
mod error;
mod fernet;
mod key_id;
mod keyring;
mod keys;
mod member;
mod plaintext;
mod rng;
mod token;

pub use envelope::Binding;
pub use error::{DecryptError, KeyRingError, ParseFormatError};
pub use key_id::KeyId;
pub use keyring::{inspect, inspect_member, Inspected, KeyRing, Opened, OpenedMember, ValueFormat};
pub use plaintext::Plaintext;

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
    // Keys come straight from the OS, not from the per-thread nonce generator.
    rng::os_random(&mut raw[..]);
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
