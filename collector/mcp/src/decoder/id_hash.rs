//! [`IdHashState`]: the hasher of the session table. Session ids are looked
//! up, inserted or removed about once per exchange whose session the small
//! [`super::SessionCache`] does not know; std's SipHash-1-3 spends ~250
//! instructions on a 32-character id, this one ~40.
//!
//! The ids come from the wire, so the hash is keyed: a per-process random
//! seed (taken from std's `RandomState`, the keys `HashMap::new` uses) starts
//! every hash, and each 8-byte word is folded in with a full 64×64→128-bit
//! multiply whose halves are xored (the "folded multiply" of foldhash and
//! wyhash). Without the seed an id's bucket cannot be predicted, so crafted
//! ids cannot be made to collide on purpose any more easily than with
//! foldhash, which the wire crate's flow table uses for the same reason.

use std::hash::{BuildHasher, Hasher};

/// Multiplier of each word (the 64-bit golden ratio, odd).
const MUL: u64 = 0x9e37_79b9_7f4a_7c15;
/// Multiplier of the last (partial) word and of the finish.
const MUL_LAST: u64 = 0xd1b5_4a32_d192_ed03;

/// Builds [`IdHasher`]s under one random seed (per table).
#[derive(Debug, Clone)]
pub(super) struct IdHashState {
    seed: u64,
}

impl IdHashState {
    /// A state with a fresh random seed.
    pub(super) fn new() -> Self {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x6d63_7074_6170_u64);
        IdHashState { seed }
    }
}

impl BuildHasher for IdHashState {
    type Hasher = IdHasher;
    #[inline]
    fn build_hasher(&self) -> IdHasher {
        IdHasher { h: self.seed }
    }
}

/// The running state of one hash.
#[derive(Debug)]
pub(super) struct IdHasher {
    h: u64,
}

/// The 128-bit product of `a` and `b`, its halves xored.
#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let (words, tail) = bytes.as_chunks::<8>();
        let mut h = self.h;
        for w in words {
            h = fold_mul(h ^ u64::from_le_bytes(*w), MUL);
        }
        // The tail (0 to 7 bytes) with its length in the top byte, so that
        // texts differing only by trailing zero bytes differ.
        let mut last = [0u8; 8];
        if let Some(dst) = last.get_mut(..tail.len()) {
            dst.copy_from_slice(tail);
        }
        let last = u64::from_le_bytes(last) | ((tail.len() as u64) << 56);
        self.h = fold_mul(h ^ last, MUL_LAST);
    }

    #[inline]
    fn write_u8(&mut self, b: u8) {
        self.h = fold_mul(self.h ^ u64::from(b), MUL);
    }

    #[inline]
    fn finish(&self) -> u64 {
        fold_mul(self.h, MUL_LAST)
    }
}

#[cfg(test)]
mod tests {
    use super::IdHashState;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::hash::BuildHasher;

    proptest! {
        /// A table under this hasher holds what a table under std's does,
        /// whatever the keys (equal texts hash alike; the map compares keys).
        #[test]
        fn table_agrees_with_std(
            ops in proptest::collection::vec((any::<bool>(), "[a-c\\x00]{0,9}|[0-9a-f]{32}", any::<u16>()), 0..200)
        ) {
            let mut ours: HashMap<String, u16, IdHashState> = HashMap::with_hasher(IdHashState::new());
            let mut std_map: HashMap<String, u16> = HashMap::new();
            for (insert, key, v) in ops {
                if insert {
                    prop_assert_eq!(ours.insert(key.clone(), v), std_map.insert(key, v));
                } else {
                    prop_assert_eq!(ours.remove(&key), std_map.remove(&key));
                }
                prop_assert_eq!(ours.len(), std_map.len());
            }
            for (k, v) in &std_map {
                prop_assert_eq!(ours.get(k), Some(v));
            }
        }
    }

    /// Texts that differ only in trailing zero bytes or in one byte hash
    /// differently, and so do the same texts under two seeds (almost surely).
    #[test]
    fn near_texts_differ() {
        let s = IdHashState::new();
        let h = |t: &str| s.hash_one(t);
        assert_ne!(h("ab"), h("ab\0"));
        assert_ne!(h("abcdefgh"), h("abcdefgh\0"));
        assert_ne!(
            h("d7db4a5d90ff46159f61c7f4d3fe0660"),
            h("d7db4a5d90ff46159f61c7f4d3fe0661")
        );
        assert_eq!(h("same"), h("same"));
        let other = IdHashState::new();
        assert_ne!(s.hash_one("d7db4a5d"), other.hash_one("d7db4a5d"));
    }
}
