//! The two error enums: one for building a [`KeyRing`](crate::KeyRing), one
//! for reading a stored value.
//!
//! # Security
//!
//! No variant carries key material or stored data: a key is named only by its
//! 1-based position in the comma-separated list, so these errors can be
//! printed and logged as they are.

/// Why a key list could not be turned into a [`KeyRing`](crate::KeyRing).
///
/// Positions are 1-based, counted in the comma-separated list as the user
/// wrote it (`"A,B"`: `A` is #1).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyRingError {
    /// The list is empty or only whitespace: there is no key to encrypt with.
    #[error(
        "no encryption key was given (set one Fernet key, or a comma-separated list whose \
         first key encrypts; generate a key with `redcloak keygen`)"
    )]
    Empty,

    /// An entry between commas is empty, e.g. a trailing comma (`"A,"`) or a
    /// doubled one (`"A,,B"`). Rejected rather than skipped, because it is
    /// usually a key that was meant to be there and got lost in templating.
    #[error(
        "encryption key #{position} is empty (remove the stray comma, or put the missing \
         key back into the comma-separated list)"
    )]
    EmptyEntry {
        /// 1-based position of the empty entry.
        position: usize,
    },

    /// An entry is not 32 bytes of url-safe base64 (padded as Python's
    /// `Fernet.generate_key()` prints it, or unpadded).
    #[error(
        "encryption key #{position} is not a valid Fernet key (it must be 32 bytes, url-safe \
         base64 encoded, as printed by `redcloak keygen`)"
    )]
    Invalid {
        /// 1-based position of the invalid entry.
        position: usize,
    },

    /// The same key appears twice (also when written once padded and once
    /// unpadded). Most likely a copy-paste slip during rotation, which would
    /// leave the intended new or old key out of the ring.
    #[error(
        "encryption keys #{first} and #{second} are the same key (list each key once: the \
         first key encrypts, the others are older keys that only decrypt)"
    )]
    Duplicate {
        /// 1-based position of the first occurrence.
        first: usize,
        /// 1-based position of the repeat.
        second: usize,
    },
}

/// Why a stored value could not be decrypted.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[non_exhaustive]
pub enum DecryptError {
    /// The value is not a Fernet token at all: not url-safe base64, a version
    /// byte other than `0x80`, or a length no Fernet token can have. Typically
    /// plaintext written to Redis around the proxy, or a key that redcloak
    /// does not manage.
    #[error(
        "the stored value is not a Fernet token (it was probably written to Redis without \
         going through redcloak; rewrite it through the proxy)"
    )]
    NotAToken,

    /// A well-formed token that no key in the ring opens: it was encrypted
    /// with a key that is not configured, or it was modified (the HMAC does
    /// not match).
    #[error(
        "no configured encryption key can decrypt the stored value (it was encrypted with a \
         key that is not in the key list, or it was modified; when rotating keys, keep the \
         old key after the new one)"
    )]
    NoMatchingKey,

    /// A genuine token (a key in the ring authenticates it) whose timestamp
    /// is more than 60 s ahead of this host's clock. Fernet (Rust and Python
    /// alike) refuses such tokens, so it is refused here too.
    #[error(
        "the stored value was encrypted more than 60 s in the future by this host's clock \
         (clock skew between the writer and this host; synchronise the clocks, e.g. with NTP)"
    )]
    FromTheFuture,
}
