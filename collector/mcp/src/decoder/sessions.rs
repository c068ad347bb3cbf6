//! The legacy session table: client identity per `Mcp-Session-Id`
//! ([`SessionInfo`]), at most `max_sessions` entries (oldest evicted first),
//! with a small cache in front of it.
//!
//! The cache ([`SessionCache`]) is direct-mapped over recent `Mcp-Session-Id`
//! values. The requests of a session come close together, so a value is
//! usually one of the last few seen. For each remembered value (its raw
//! bytes) the cache keeps its text (lossy UTF-8, shared by the spans: no
//! UTF-8 check, copy or allocation per exchange) and, once asked, the
//! table's answer for it: a table look-up hashes the whole id, while the
//! cache finds a recent id with a cheap hash of its length and ends and one
//! comparison of bytes. It remembers misses too (sessions whose `initialize`
//! was not seen). [`SessionTable`] makes it forget every answer whenever the
//! table changes, so its answers are always the table's, and a text is always
//! the value's lossy text (see the proptests); a crafted id can only make it
//! miss.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Client identity remembered per legacy session.
#[derive(Debug, Clone, Default)]
pub(super) struct SessionInfo {
    pub(super) seq: u64,
    /// Shared by the spans of the session.
    pub(super) client_name: Option<Arc<str>>,
    pub(super) client_version: Option<Arc<str>>,
    pub(super) capabilities: Option<Vec<String>>,
    pub(super) protocol_version: Option<String>,
}

/// Client identity per legacy session id, bounded, with its cache.
#[derive(Debug)]
pub(super) struct SessionTable {
    /// Keyed by session id. Ids come off the wire, so the hash is foldhash
    /// with a random per-process seed (like the wire crate's flow table):
    /// crafted ids cannot be made to collide.
    map: HashMap<String, Arc<SessionInfo>, foldhash::fast::RandomState>,
    /// Insertion order (by [`SessionInfo::seq`]), for eviction.
    order: BTreeMap<u64, String>,
    next_seq: u64,
    /// Texts of recent session ids and recent answers of `map` (the answers
    /// cleared whenever it changes).
    cache: SessionCache<Arc<SessionInfo>>,
}

impl SessionTable {
    /// An empty table.
    pub(super) fn new() -> Self {
        SessionTable {
            map: HashMap::with_hasher(foldhash::fast::RandomState::default()),
            order: BTreeMap::new(),
            next_seq: 0,
            cache: SessionCache::new(),
        }
    }

    /// The text of the session id `raw` (`String::from_utf8_lossy`), shared,
    /// and its cache slot (for [`SessionTable::get`]).
    pub(super) fn text(&mut self, raw: &[u8]) -> (Arc<str>, usize) {
        self.cache.text(raw)
    }

    /// The entry of the session id `text`, as [`SessionTable::text`]
    /// returned it with `slot`.
    pub(super) fn get(&mut self, slot: usize, text: &Arc<str>) -> Option<Arc<SessionInfo>> {
        let map = &self.map;
        self.cache.answer(slot, text, |k| map.get(k).cloned())
    }

    /// Whether `id` has an entry.
    pub(super) fn contains(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }

    /// Sets the entry of `id` to `entry` (its `seq` is assigned here),
    /// evicting the oldest entries first so that at most `max` (at least 1)
    /// remain; returns how many were evicted.
    pub(super) fn insert(&mut self, id: &str, mut entry: SessionInfo, max: usize) -> u64 {
        self.cache.clear_answers();
        if let Some(old) = self.map.remove(id) {
            self.order.remove(&old.seq);
        }
        let mut evicted = 0;
        while self.map.len() >= max.max(1) {
            let Some((_, k)) = self.order.pop_first() else {
                break;
            };
            self.map.remove(&k);
            evicted += 1;
        }
        entry.seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(entry.seq, id.to_string());
        self.map.insert(id.to_string(), Arc::new(entry));
        evicted
    }
}

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
struct SessionCache<V> {
    slots: Vec<Slot<V>>,
}

impl<V: Clone> SessionCache<V> {
    /// An empty cache of [`SLOTS`] slots.
    fn new() -> Self {
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
    fn text(&mut self, raw: &[u8]) -> (Arc<str>, usize) {
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
    fn answer(
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
    fn clear_answers(&mut self) {
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
    use super::{SessionCache, SessionInfo, SessionTable};
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

    proptest! {
        /// The table answers as a bounded map that evicts its oldest entry,
        /// through the cache, whatever the cache held.
        #[test]
        fn table_answers_as_a_bounded_map(
            ops in proptest::collection::vec((any::<bool>(), 0u8..6), 0..200),
            max in 1usize..4,
        ) {
            let mut t = SessionTable::new();
            let mut model: Vec<(String, u64)> = Vec::new();
            for (n, (insert, id)) in ops.into_iter().enumerate() {
                let key = format!("s{id}");
                if insert {
                    model.retain(|(k, _)| *k != key);
                    let mut evicted = 0;
                    while model.len() >= max {
                        model.remove(0);
                        evicted += 1;
                    }
                    model.push((key.clone(), n as u64));
                    let entry = SessionInfo { protocol_version: Some(n.to_string()), ..SessionInfo::default() };
                    prop_assert_eq!(t.insert(&key, entry, max), evicted);
                } else {
                    let (text, slot) = t.text(key.as_bytes());
                    let got = t.get(slot, &text).and_then(|i| i.protocol_version.clone());
                    let want = model.iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string());
                    prop_assert_eq!(got, want);
                    prop_assert_eq!(t.contains(&key), model.iter().any(|(k, _)| *k == key));
                }
            }
        }
    }
}
