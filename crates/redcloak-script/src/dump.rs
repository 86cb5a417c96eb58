//! redcloak's FUNCTION DUMP payload (not Redis's RDB format).
//!
//! ```text
//! "RCFN" | version (1 byte, = 1) | count (u32 BE) | count × (len (u32 BE) | library code)
//!        | SHA1 of everything before it (first 8 bytes)
//! ```
//! Only library sources are stored: FUNCTION RESTORE loads them again. Anything else (wrong
//! magic, version, lengths or checksum) is refused as Redis refuses a bad payload.

use sha1::{Digest, Sha1};

const MAGIC: &[u8; 4] = b"RCFN";
const VERSION: u8 = 1;

pub(crate) fn encode<'a>(codes: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let codes: Vec<&[u8]> = codes.collect();
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(codes.len() as u32).to_be_bytes());
    for c in codes {
        out.extend_from_slice(&(c.len() as u32).to_be_bytes());
        out.extend_from_slice(c);
    }
    let sum = Sha1::digest(&out);
    out.extend_from_slice(&sum[..8]);
    out
}

pub(crate) fn decode(payload: &[u8]) -> Option<Vec<Vec<u8>>> {
    if payload.len() < MAGIC.len() + 1 + 4 + 8 {
        return None;
    }
    let (body, sum) = payload.split_at(payload.len() - 8);
    if Sha1::digest(body)[..8] != *sum || &body[..4] != MAGIC || body[4] != VERSION {
        return None;
    }
    let mut rest = &body[5..];
    let count = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    rest = &rest[4..];
    let mut out = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        rest = &rest[4..];
        out.push(rest.get(..len)?.to_vec());
        rest = &rest[len..];
    }
    rest.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let p = encode([&b"a"[..], b"bc"].into_iter());
        assert_eq!(decode(&p), Some(vec![b"a".to_vec(), b"bc".to_vec()]));
        assert_eq!(decode(b"garbage"), None);
        let mut bad = p.clone();
        bad[6] ^= 1;
        assert_eq!(decode(&bad), None);
        assert_eq!(decode(&encode(std::iter::empty())), Some(vec![]));
    }
}
