//! Bookkeeping of the decoder's pending exchanges: [`Pending`], a hash table
//! of exchanges by (flow, request index), and [`Order`], their keys in arrival
//! order (for eviction of the oldest and for draining at the end). Both give
//! the same answers as the `BTreeMap`s they replace; proptests check that.

use std::collections::{HashMap, VecDeque};

use mcptap_wire::FlowId;

/// Pending exchanges by flow: a hash table keyed by [`FlowId`] (a counter the
/// flow table assigns, not chosen by the traffic, so a plain multiplicative
/// hash is safe), each flow holding its exchanges in request-index order,
/// the usual single one inline. Same answers as the
/// `BTreeMap<(FlowId, index), T>` it replaces (see the proptest), with one
/// cheap hash instead of a tree walk per event.
#[derive(Debug)]
pub(super) struct Pending<T> {
    flows: HashMap<FlowId, FlowPending<T>, std::hash::BuildHasherDefault<FlowHasher>>,
    len: usize,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Pending {
            flows: HashMap::default(),
            len: 0,
        }
    }
}

/// One flow's pending entries, `(index, value)` in increasing index order.
#[derive(Debug)]
enum FlowPending<T> {
    One(u64, T),
    Many(Vec<(u64, T)>),
}

/// Multiplicative hash of a [`FlowId`] (Fibonacci hashing).
#[derive(Debug, Default)]
struct FlowHasher(u64);

impl std::hash::Hasher for FlowHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl<T> Pending<T> {
    /// Number of entries.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn get_mut(&mut self, flow: FlowId, index: u64) -> Option<&mut T> {
        match self.flows.get_mut(&flow)? {
            FlowPending::One(i, v) => (*i == index).then_some(v),
            FlowPending::Many(list) => list.iter_mut().find(|e| e.0 == index).map(|e| &mut e.1),
        }
    }

    pub(super) fn remove(&mut self, flow: FlowId, index: u64) -> Option<T> {
        let std::collections::hash_map::Entry::Occupied(mut slot) = self.flows.entry(flow) else {
            return None;
        };
        let v = match slot.get_mut() {
            FlowPending::One(i, _) => {
                if *i != index {
                    return None;
                }
                match slot.remove() {
                    FlowPending::One(_, v) => v,
                    FlowPending::Many(_) => return None,
                }
            }
            FlowPending::Many(list) => {
                let pos = list.iter().position(|e| e.0 == index)?;
                let (_, v) = list.remove(pos);
                if list.is_empty() {
                    slot.remove();
                }
                v
            }
        };
        self.len -= 1;
        Some(v)
    }

    /// Adds `value` under `(flow, index)`, which must not be present.
    pub(super) fn insert(&mut self, flow: FlowId, index: u64, value: T) {
        self.len += 1;
        match self.flows.entry(flow) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(FlowPending::One(index, value));
            }
            std::collections::hash_map::Entry::Occupied(mut e) => {
                let slot = e.get_mut();
                let mut list = match std::mem::replace(slot, FlowPending::Many(Vec::new())) {
                    FlowPending::One(i, v) => vec![(i, v)],
                    FlowPending::Many(list) => list,
                };
                // Indexes grow on a connection: almost always the end.
                let pos = list.partition_point(|e| e.0 < index);
                list.insert(pos, (index, value));
                *slot = FlowPending::Many(list);
            }
        }
    }

    /// Removes and returns every entry of `flow`, in index order.
    pub(super) fn take_flow(&mut self, flow: FlowId) -> Vec<T> {
        let out: Vec<T> = match self.flows.remove(&flow) {
            None => Vec::new(),
            Some(FlowPending::One(_, v)) => vec![v],
            Some(FlowPending::Many(list)) => list.into_iter().map(|e| e.1).collect(),
        };
        self.len -= out.len();
        out
    }
}

#[cfg(test)]
mod pending_tests {
    use super::Pending;
    use mcptap_wire::FlowId;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// `Pending` answers as a `BTreeMap<(flow, index), value>`.
        #[test]
        fn pending_matches_btreemap(ops in proptest::collection::vec((0u8..5, 0u64..4, 0u64..6), 0..300)) {
            let mut p: Pending<u32> = Pending::default();
            let mut m: BTreeMap<(FlowId, u64), u32> = BTreeMap::new();
            for (n, (op, f, i)) in ops.into_iter().enumerate() {
                let (f, v) = (FlowId(f), n as u32);
                match op {
                    0 | 1 => {
                        if let std::collections::btree_map::Entry::Vacant(e) = m.entry((f, i)) {
                            e.insert(v);
                            p.insert(f, i, v);
                        }
                    }
                    2 => prop_assert_eq!(p.remove(f, i), m.remove(&(f, i))),
                    3 => prop_assert_eq!(p.get_mut(f, i).copied(), m.get(&(f, i)).copied()),
                    _ => {
                        let want: Vec<u32> = m.range((f, 0)..=(f, u64::MAX)).map(|(_, v)| *v).collect();
                        m.retain(|k, _| k.0 != f);
                        prop_assert_eq!(p.take_flow(f), want);
                    }
                }
                prop_assert_eq!(p.len(), m.len());
            }
        }
    }
}

/// The keys of the pending exchanges in arrival order: a deque of
/// `(seq, key)` with strictly increasing `seq`. Removing marks an entry dead
/// (found by binary search); dead entries leave when they reach either end,
/// or all at once when they outnumber the live ones, so the deque holds at
/// most about twice the pending exchanges. Same order and answers as a
/// `BTreeMap<seq, key>` (see the proptest), without tree nodes: exchanges
/// usually end in the order they began, so the entry removed is at the front.
#[derive(Debug, Default)]
pub(super) struct Order {
    q: VecDeque<(u64, Option<(FlowId, u64)>)>,
    dead: usize,
}

impl Order {
    /// Appends `key` with sequence number `seq` (larger than any before).
    pub(super) fn push(&mut self, seq: u64, key: (FlowId, u64)) {
        self.q.push_back((seq, Some(key)));
    }

    /// Forgets the entry of `seq`, if live.
    pub(super) fn remove(&mut self, seq: u64) {
        let Ok(i) = self.q.binary_search_by_key(&seq, |e| e.0) else {
            return;
        };
        if self.q.get_mut(i).and_then(|e| e.1.take()).is_some() {
            self.dead += 1;
            self.trim();
        }
    }

    /// Drops dead entries at both ends; compacts when most entries are dead.
    fn trim(&mut self) {
        while self.q.front().is_some_and(|e| e.1.is_none()) {
            self.q.pop_front();
            self.dead = self.dead.saturating_sub(1);
        }
        while self.q.back().is_some_and(|e| e.1.is_none()) {
            self.q.pop_back();
            self.dead = self.dead.saturating_sub(1);
        }
        if self.dead > 32 && self.dead * 2 > self.q.len() {
            self.q.retain(|e| e.1.is_some());
            self.dead = 0;
        }
    }

    /// Removes and returns the oldest live key.
    pub(super) fn pop_first(&mut self) -> Option<(FlowId, u64)> {
        while let Some((_, k)) = self.q.pop_front() {
            match k {
                Some(k) => {
                    self.trim();
                    return Some(k);
                }
                None => self.dead = self.dead.saturating_sub(1),
            }
        }
        None
    }

    /// The live keys, oldest first.
    pub(super) fn keys(&self) -> impl Iterator<Item = (FlowId, u64)> + '_ {
        self.q.iter().filter_map(|e| e.1)
    }
}

#[cfg(test)]
mod order_tests {
    use super::Order;
    use mcptap_wire::FlowId;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// `Order` answers as the `BTreeMap<seq, key>` it replaces, and stays
        /// bounded.
        #[test]
        fn order_matches_btreemap(ops in proptest::collection::vec((0u8..4, any::<u16>()), 0..400)) {
            let mut o = Order::default();
            let mut m: BTreeMap<u64, (FlowId, u64)> = BTreeMap::new();
            let mut seq = 0u64;
            for (op, x) in ops {
                match op {
                    0 | 1 => {
                        let key = (FlowId(u64::from(x % 7)), u64::from(x));
                        o.push(seq, key);
                        m.insert(seq, key);
                        seq += 1;
                    }
                    2 => {
                        // Remove a live, a dead or an unknown sequence number.
                        let s = if seq == 0 { 0 } else { u64::from(x) % (seq + 2) };
                        o.remove(s);
                        m.remove(&s);
                    }
                    _ => {
                        prop_assert_eq!(o.pop_first(), m.pop_first().map(|(_, k)| k));
                    }
                }
                prop_assert!(o.keys().eq(m.values().copied()));
                prop_assert!(o.q.len() <= 2 * m.len() + 33);
            }
        }
    }
}
