//! The indexed LRU of the flow table ([`Lru`]): a binary min-heap of slot
//! indexes ordered by the flows' `(lru_ts, flow id)`, each flow knowing its
//! own position in the heap (`heap_pos`), so that re-keying or removing a
//! flow costs O(log n).

use super::flow::Flow;
use crate::TimestampNs;

/// Binary min-heap of slot indexes ordered by the flows' `(lru_ts, flow
/// id)` (unique keys, so the minimum is the same flow a sorted index would
/// give first); each flow knows its position (`heap_pos`). 4 bytes per flow
/// instead of a B-tree entry. The keys live in the flows: every operation
/// takes the table's slots.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Lru {
    heap: Vec<u32>,
}

impl Lru {
    /// The slot of the least recently active flow (by its possibly stale key).
    #[inline]
    pub(super) fn first(&self) -> Option<u32> {
        self.heap.first().copied()
    }

    /// Flows in the heap.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    /// The slot at heap index `pos`.
    #[inline]
    pub(super) fn get(&self, pos: usize) -> Option<u32> {
        self.heap.get(pos).copied()
    }

    /// The slots in heap order.
    pub(super) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.heap.iter().copied()
    }

    /// Heap index of `slot`, by a linear search (for repairs only).
    pub(super) fn position(&self, slot: usize) -> Option<usize> {
        self.heap.iter().position(|&s| s as usize == slot)
    }

    /// Adds the flow in `slot` (`slot <= u32::MAX`, see `FlowTable::open`).
    pub(super) fn push<T>(&mut self, slots: &mut [Option<Box<Flow<T>>>], slot: u32) {
        self.heap.push(slot);
        self.sift_up(slots, self.heap.len() - 1);
    }

    /// The LRU key `(lru_ts, flow id)` of the flow in `slot` (`(MAX, MAX)`
    /// for an empty slot, which cannot be in the heap).
    pub(super) fn key<T>(slots: &[Option<Box<Flow<T>>>], slot: u32) -> (TimestampNs, u64) {
        slots
            .get(slot as usize)
            .and_then(Option::as_deref)
            .map_or((u64::MAX, u64::MAX), |f| (f.lru_ts, f.id.0))
    }

    /// Records that the flow in `slot` sits at heap index `pos`.
    fn set_pos<T>(slots: &mut [Option<Box<Flow<T>>>], slot: u32, pos: usize) {
        if let Some(f) = slots.get_mut(slot as usize).and_then(Option::as_mut) {
            // `pos < heap.len() <= slots.len() <= u32::MAX` (see `FlowTable::open`).
            f.heap_pos = pos as u32;
        }
    }

    /// Moves the entry at heap index `pos` towards the root while it is
    /// smaller than its parent.
    pub(super) fn sift_up<T>(&mut self, slots: &mut [Option<Box<Flow<T>>>], mut pos: usize) {
        let Some(&item) = self.heap.get(pos) else {
            return;
        };
        let key = Self::key(slots, item);
        while pos > 0 {
            let parent = (pos - 1) / 2;
            let p = self.heap[parent];
            if Self::key(slots, p) <= key {
                break;
            }
            self.heap[pos] = p;
            Self::set_pos(slots, p, pos);
            pos = parent;
        }
        self.heap[pos] = item;
        Self::set_pos(slots, item, pos);
    }

    /// Moves the entry at heap index `pos` towards the leaves while a child
    /// is smaller.
    pub(super) fn sift_down<T>(&mut self, slots: &mut [Option<Box<Flow<T>>>], mut pos: usize) {
        let Some(&item) = self.heap.get(pos) else {
            return;
        };
        let key = Self::key(slots, item);
        let n = self.heap.len();
        loop {
            let left = 2 * pos + 1;
            if left >= n {
                break;
            }
            let mut child = left;
            let mut child_key = Self::key(slots, self.heap[left]);
            if left + 1 < n {
                let right_key = Self::key(slots, self.heap[left + 1]);
                if right_key < child_key {
                    child = left + 1;
                    child_key = right_key;
                }
            }
            if key <= child_key {
                break;
            }
            let c = self.heap[child];
            self.heap[pos] = c;
            Self::set_pos(slots, c, pos);
            pos = child;
        }
        self.heap[pos] = item;
        Self::set_pos(slots, item, pos);
    }

    /// Removes the entry at heap index `pos`.
    pub(super) fn remove<T>(&mut self, slots: &mut [Option<Box<Flow<T>>>], pos: usize) {
        let Some(last) = self.heap.pop() else {
            return;
        };
        if pos < self.heap.len() {
            self.heap[pos] = last;
            Self::set_pos(slots, last, pos);
            self.sift_down(slots, pos);
            let pos = slots
                .get(last as usize)
                .and_then(Option::as_deref)
                .map_or(pos, |f| f.heap_pos as usize);
            self.sift_up(slots, pos);
        }
    }
}
