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

/// Why a stored value (or member) could not be decrypted.
///
/// The variants are distinct so that metrics can count them apart
/// (`redcloak_decrypt_failures_total{reason}`): plaintext written around the
/// proxy, a key missing from the ring, a value moved at the Redis level, and
/// modification are different incidents.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[non_exhaustive]
pub enum DecryptError {
    /// The value is not in any format redcloak writes: not a Fernet token
    /// (url-safe base64, version byte `0x80`, a possible length), not an
    /// AES-GCM envelope (`0xC1`, at least 37 bytes), or, for members, not a
    /// member ciphertext (`0xF5`, at least 21 bytes). Typically plaintext
    /// written to Redis around the proxy, or a key that redcloak does not
    /// manage.
    #[error(
        "the stored value is not encrypted by redcloak (it is neither a Fernet token nor a \
         redcloak envelope; it was probably written to Redis without going through redcloak; \
         rewrite it through the proxy)"
    )]
    NotAToken,

    /// No key in the ring opens the value. For an envelope or a member
    /// ciphertext, its key id names no key in the ring (it was written with a
    /// key that is not configured). For a Fernet token, which carries no key
    /// id, this also covers a modified token: no key's HMAC matches.
    #[error(
        "no configured encryption key can decrypt the stored value (it was encrypted with a \
         key that is not in the key list, or it was modified; when rotating keys, keep the \
         old key after the new one)"
    )]
    NoMatchingKey,

    /// No longer returned: stored values have no age, so a genuine token is
    /// accepted whatever its timestamp. Kept so that existing `match`es
    /// compile.
    #[error(
        "the stored value was encrypted more than 60 s in the future by this host's clock \
         (clock skew between the writer and this host; synchronise the clocks, e.g. with NTP)"
    )]
    FromTheFuture,

    /// A genuine AES-GCM envelope made by a key in the ring for another
    /// location: another Redis key name, another database, another hash
    /// field, or a string value read as a hash field (or the reverse). The
    /// value was copied or moved at the Redis level (`RENAME`, `COPY`,
    /// `MOVE`, `SWAPDB`, `LMOVE`, `RESTORE`…) or swapped by someone with
    /// access to Redis. "Genuine" is judged by the envelope's 4-byte origin
    /// check over the GCM tag (see `docs/encryption.md`), so a value whose
    /// ciphertext was modified but whose tag and check were kept is reported
    /// here too; either way it is refused.
    #[error(
        "the stored value was encrypted for another key, database or hash field (it was \
         renamed, copied or moved inside Redis, or swapped; key-bound values only open where \
         they were written: rewrite it through the proxy)"
    )]
    Binding,

    /// The value names a key in the ring (by its key id) but does not
    /// authenticate under it, and is not a genuine value from elsewhere: it
    /// was modified, truncated or forged.
    #[error(
        "the stored value was modified (it names a configured key but does not authenticate; \
         it was truncated, altered or forged in Redis)"
    )]
    Tampered,
}

/// The text given for a value format is neither `fernet` nor `aes-gcm`.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
#[error("unknown value format (expected `fernet` or `aes-gcm`)")]
pub struct ParseFormatError;
