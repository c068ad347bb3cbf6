//! [`SessionCache`]: a small direct-mapped cache in front of the session
//! table. Session ids are looked up once per exchange; a table look-up hashes
//! the whole id with SipHash (~250 instructions for a UUID), while the cache
//! finds a recent id with a cheap hash of its length and ends and one string
//! comparison. It remembers misses too (sessions whose `initialize` was not
//! seen). The owner clears it whenever the table changes, so its answers are
//! always the table's (see the proptest); a crafted id can only make it miss.

/// Slots (a power of two).
pub(super) const SLOTS: usize = 16;

/// Recently looked-up session ids and what the table answered for them.
#[derive(Debug)]
pub(super) struct SessionCache<V> {
    slots: Vec<Option<(String, Option<V>)>>,
}

impl<V: Clone> SessionCache<V> {
    /// An empty cache of [`SLOTS`] slots.
    pub(super) fn new() -> Self {
        SessionCache {
            slots: (0..SLOTS).map(|_| None).collect(),
        }
    }

    /// The table's answer for `key`: remembered, else `lookup(key)` (then
    /// remembered in the key's slot, replacing what it held).
    pub(super) fn get_or(
        &mut self,
        key: &str,
        lookup: impl FnOnce(&str) -> Option<V>,
    ) -> Option<V> {
        let Some(slot) = self.slots.get_mut(slot_of(key.as_bytes())) else {
            return lookup(key);
        };
        if let Some((k, v)) = slot
            && k == key
        {
            return v.clone();
        }
        let v = lookup(key);
        *slot = Some((key.to_owned(), v.clone()));
        v
    }

    /// Forgets everything (the table changed).
    pub(super) fn clear(&mut self) {
        for s in &mut self.slots {
            *s = None;
        }
    }
}

/// Slot of a key: Fibonacci hash of its length and its first and last eight
/// bytes (ids of one client usually differ everywhere, UUIDs at both ends).
pub(super) fn slot_of(key: &[u8]) -> usize {
    let word = |b: Option<&[u8]>| -> u64 {
        b.and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_le_bytes)
    };
    let n = key.len();
    let (head, tail) = if n >= 8 {
        (word(key.get(..8)), word(key.get(n - 8..)))
    } else {
        let mut h = 0u64;
        for b in key {
            h = (h << 8) | u64::from(*b);
        }
        (h, 0)
    };
    let h = (head ^ tail.rotate_left(29) ^ n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 60) as usize & (SLOTS - 1)
}

#[cfg(test)]
mod tests {
    use super::SessionCache;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// Answers as the table, whatever the cache held, when cleared on
        /// every change of the table.
        #[test]
        fn cache_answers_as_the_table(
            ops in proptest::collection::vec((0u8..4, "[a-c]{0,3}|[0-9a-f-]{36}|x{1,20}", any::<u16>()), 0..300)
        ) {
            let mut table: HashMap<String, u16> = HashMap::new();
            let mut cache: SessionCache<u16> = SessionCache::new();
            for (op, key, v) in ops {
                match op {
                    0 => {
                        table.insert(key, v);
                        cache.clear();
                    }
                    1 => {
                        table.remove(&key);
                        cache.clear();
                    }
                    _ => {
                        let got = cache.get_or(&key, |k| table.get(k).copied());
                        prop_assert_eq!(got, table.get(&key).copied());
                    }
                }
            }
        }
    }
}
