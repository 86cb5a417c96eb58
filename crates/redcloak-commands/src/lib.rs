//! The command side of redcloak: RESP framing, the command table and the value transforms.
//!
//! # Layout
//! - [`resp`]: the bounded, resumable RESP parser and encoder.
//! - [`table`]: one row per known command: forwarded (with its value positions and reply
//!   rule), answered locally, or refused with a reason. Anything else is refused.
//! - [`transform`]: encrypting requests and decrypting replies by a row's rules, and the
//!   error texts redcloak answers with.
//! - [`words`]: reading option words and numbers exactly the way Redis reads them.
//!
//! This crate does no I/O and has no async runtime, so it can be unit-tested and fuzzed alone.

pub mod emulate;
pub mod resp;
pub mod table;
pub mod transform;
pub mod words;
