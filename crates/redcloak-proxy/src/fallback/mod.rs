//! The fallback: what redcloak does while Redis is unreachable (DESIGN.md §5).
//!
//! # Layout
//! - `store`: the shadow cache of recently written or read string values (ciphertext, as
//!   Redis holds it) and the bounded outage journal.
//! - `shadow`: the shadow cache's byte-bounded, sharded map (one ring of records per shard,
//!   SIEVE eviction, expiry on read).
//! - [`learn`]: what the cache learns from each reply while Redis is up (pure).
//! - [`serve`]: the decision core — how a command is answered from the cache while Redis is
//!   down (pure, table-driven by each row's `CacheOp`).
//! - [`replay`]: applying the journal, in order, when Redis is back.
//!
//! Every encryption and decryption of the fallback goes through the transform layer: a
//! journaled write is encrypted like any request, a cached value is decoded like any reply.

pub(crate) mod learn;
pub(crate) mod replay;
pub(crate) mod serve;
mod shadow;
mod store;

pub(crate) use store::{now_ms, Entry, Fallback, JournalError, Ttl};
