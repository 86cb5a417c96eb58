//! Shared helpers for the criterion benches (see resp.rs, crypto.rs).
