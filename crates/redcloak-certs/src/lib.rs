//! Development PKI for redcloak: a CA, a Redis server certificate and a
//! client certificate, generated with rcgen (ECDSA P-256).
//!
//! Used by the `redcloak certs` subcommand and by the end-to-end test
//! harness, which starts a real `redis-server` with mutual TLS.
//!
//! # Layout
//!
//! - [`Ca`], [`CertifiedKey`] (`ca.rs`): a self-signed CA that issues server
//!   (EKU `serverAuth`, IP and DNS SANs) and client (EKU `clientAuth`)
//!   certificates.
//! - [`Validity`] (`validity.rs`): when certificates are valid, including an
//!   already-expired period for tests.
//! - [`write_dev_pki`], [`DevPki`] (`dev_pki.rs`): the six PEM files on disk.
//! - [`CertError`] (`error.rs`).
//!
//! # Security
//!
//! - Private keys are never formatted by `Debug`, are zeroized on drop, and
//!   are written to files created with mode 0600 (never chmod-ed after the
//!   fact).
//! - [`write_dev_pki`] never overwrites an existing PKI unless told to:
//!   replacing the CA silently would lock Redis and every client out.
//! - The CA can sign end-entity certificates only (path length 0); leaves are
//!   marked `CA:FALSE` and carry exactly one extended key usage, so a client
//!   certificate cannot serve as a server certificate and vice versa.
//! - This is a development and test PKI: the CA key sits next to the
//!   certificates. In production, use certificates from your own PKI.

mod ca;
mod dev_pki;
mod error;
mod validity;

pub use ca::{Ca, CertifiedKey};
pub use dev_pki::{write_dev_pki, DevPki};
pub use error::CertError;
pub use validity::Validity;
