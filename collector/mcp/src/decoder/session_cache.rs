//! [`SessionCache`]: a small direct-mapped cache of recent `Mcp-Session-Id`
//! values in front of the session table. The requests of a session come
//! close together, so a value is usually one of the last few seen. For each
//! remembered value (its raw bytes) the cache keeps its text (lossy UTF-8,
//! shared by the spans: no UTF-8 check, copy or allocation per exchange) and,
//! once asked, the table's answer for it: a table look-up hashes the whole id,
//! while the cache finds a recent id with a cheap hash of its length and ends
//! and one comparison of bytes. It remembers misses too (sessions whose
//! `initialize` was not seen). The owner makes it forget every answer whenever
//! the table changes ([`SessionCache::clear_answers`]), so its answers are
//! always the table's, and a text is always the value's lossy text (see the
//! proptest); a crafted id can only make it miss.

use std::sync::Arc;

/// Slots (a power of two).
const SLOTS: usize = 16;

/// One remembered value.
#[derive(Debug)]
struct Slot<V> {
    /// The value as received.
    raw: Vec<u8>,
    /// `String::from_utf8_lossy(raw)`.
    text: Arc<str>,
    /// The table's answer for `text`, once asked (and not forgotten since).
    answer: Option<Option<V>>,
}

/// Recently seen session ids: their texts and what the table answered for them.
#[derive(Debug)]
pub(super) struct SessionCache<V> {
    slots: Vec<Slot<V>>,
}

impl<V: Clone> SessionCache<V> {
    /// An empty cache of [`SLOTS`] slots.
    pub(super) fn new() -> Self {
        SessionCache {
            slots: (0..SLOTS)
                .map(|_| Slot {
                    raw: Vec::new(),
                    text: Arc::from(""),
                    answer: None,
                })
                .collect(),
        }
    }

    /// The text of the value `raw` (`String::from_utf8_lossy`), shared, and
    /// the slot that remembers it (for [`SessionCache::answer`]).
    pub(super) fn text(&mut self, raw: &[u8]) -> (Arc<str>, usize) {
        let i = slot_of(raw);
        let Some(s) = self.slots.get_mut(i) else {
            return (Arc::from(String::from_utf8_lossy(raw)), i);
        };
        if s.raw != raw {
            s.raw.clear();
            s.raw.extend_from_slice(raw);
            s.text = Arc::from(String::from_utf8_lossy(raw));
            s.answer = None;
        }
        (Arc::clone(&s.text), i)
    }

    /// The table's answer for `text`, as [`SessionCache::text`] returned it
    /// with `slot`: remembered, else `lookup(text)` (then remembered). When
    /// the slot holds another value by now, `lookup(text)`, not remembered.
    pub(super) fn answer(
        &mut self,
        slot: usize,
        text: &Arc<str>,
        lookup: impl FnOnce(&str) -> Option<V>,
    ) -> Option<V> {
        let Some(s) = self
            .slots
            .get_mut(slot)
            .filter(|s| Arc::ptr_eq(&s.text, text))
        else {
            return lookup(text);
        };
        if let Some(a) = &s.answer {
            return a.clone();
        }
        let a = lookup(text);
        s.answer = Some(a.clone());
        a
    }

    /// Forgets every answer (the table changed); the texts stay.
    pub(super) fn clear_answers(&mut self) {
        for s in &mut self.slots {
            s.answer = None;
        }
    }
}

/// Slot of a value: Fibonacci hash of its length and its first and last
/// eight bytes (ids of one client usually differ everywhere, UUIDs at both
/// ends).
fn slot_of(key: &[u8]) -> usize {
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
        /// Texts are the lossy texts of the values, and answers are the
        /// table's, whatever the cache held, when every change of the table
        /// clears the answers.
        #[test]
        fn cache_answers_as_the_table(
            ops in proptest::collection::vec(
                (0u8..4, prop_oneof![
                    "[a-c]{0,3}|[0-9a-f-]{36}|x{1,20}".prop_map(String::into_bytes),
                    proptest::collection::vec(any::<u8>(), 0..10),
                ], any::<u16>()),
                0..300,
            )
        ) {
            let mut table: HashMap<String, u16> = HashMap::new();
            let mut cache: SessionCache<u16> = SessionCache::new();
            for (op, raw, v) in ops {
                let key = String::from_utf8_lossy(&raw).into_owned();
                match op {
                    0 => {
                        table.insert(key, v);
                        cache.clear_answers();
                    }
                    1 => {
                        table.remove(&key);
                        cache.clear_answers();
                    }
                    _ => {
                        let (text, slot) = cache.text(&raw);
                        prop_assert_eq!(&*text, key.as_str());
                        let got = cache.answer(slot, &text, |k| table.get(k).copied());
                        prop_assert_eq!(got, table.get(&key).copied());
                    }
                }
            }
        }
    }
}
