//! [`CertError`]: everything that can go wrong while making or writing
//! certificates.

use std::io;
use std::path::PathBuf;

/// Why certificates could not be generated or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// A common name is empty or longer than X.509 allows (64 characters).
    #[error(
        "invalid certificate common name {name:?}: {reason} (use a short name such as \
         `redis`)"
    )]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A subject alternative name is neither an IP address nor a valid DNS
    /// name.
    #[error(
        "invalid subject alternative name {san:?}: {reason} (use a DNS name such as \
         `redis.internal` or an IP address such as `10.0.0.5`)"
    )]
    InvalidSan {
        /// The name as given.
        san: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The validity period is empty, inverted, or outside what a
    /// certificate can express (years 1..=9999).
    #[error("invalid certificate validity: {reason}")]
    InvalidValidity {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Key generation, signing or encoding failed inside rcgen (not expected
    /// with valid input).
    #[error("could not generate the certificate: {0}")]
    Generate(#[from] rcgen::Error),

    /// A file of the PKI already exists and overwriting was not requested.
    /// Nothing was written.
    #[error(
        "{} already exists; refusing to overwrite it (Redis and clients set up with the \
         current certificates would stop working). Use the existing files, choose another \
         directory, or re-run with --force to replace the whole set",
        path.display()
    )]
    AlreadyExists {
        /// The first existing file found.
        path: PathBuf,
    },

    /// Creating the directory or writing a file failed.
    #[error("could not write {}: {source}", path.display())]
    Io {
        /// The directory or file being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}
