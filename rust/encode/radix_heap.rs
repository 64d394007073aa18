//! A monotone priority queue: every key pushed is at least the last key
//! popped. Merging a long piece pops its pairs in rank order, and a merge
//! only creates pairs of higher rank (in a vocabulary whose merges come
//! after the merges that make their parts), so the merge heap is monotone.
//! Keys go into buckets by the highest bit in which they differ from the
//! last key popped; a key moves down at most once per bit, so a push or pop
//! costs O(1) amortized plus at most 64 moves per key, all sequential
//! memory. A binary heap of millions of pairs spends most of its time in
//! cache misses as it sifts.

/// Bucket 0 holds keys equal to `last`; bucket `i` those whose highest bit
/// differing from `last` is bit `i - 1`.
#[derive(Debug)]
pub struct RadixHeap {
    last: u64,
    len: usize,
    buckets: [Vec<u64>; 65],
}

impl Default for RadixHeap {
    fn default() -> Self {
        RadixHeap {
            last: 0,
            len: 0,
            buckets: std::array::from_fn(|_| Vec::new()),
        }
    }
}

#[inline(always)]
fn bucket(key: u64, last: u64) -> usize {
    64 - (key ^ last).leading_zeros() as usize
}

impl RadixHeap {
    /// Empties the queue, keeping its memory; keys may start again from 0.
    pub fn clear(&mut self) {
        self.buckets.iter_mut().for_each(Vec::clear);
        self.last = 0;
        self.len = 0;
    }

    /// Adds `key`, which must not be below the last key popped.
    #[inline]
    pub fn push(&mut self, key: u64) {
        debug_assert!(
            key >= self.last,
            "a radix heap takes no key below the last popped"
        );
        self.buckets[bucket(key, self.last)].push(key);
        self.len += 1;
    }

    /// Removes and returns the least key.
    #[inline]
    pub fn pop(&mut self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        if self.buckets[0].is_empty() {
            let from = (1..65)
                .find(|&i| !self.buckets[i].is_empty())
                .expect("a key in some bucket");
            let mut moving = std::mem::take(&mut self.buckets[from]);
            self.last = *moving.iter().min().expect("a non-empty bucket");
            // Every key of the bucket now differs from `last` in a lower bit.
            for key in moving.drain(..) {
                self.buckets[bucket(key, self.last)].push(key);
            }
            self.buckets[from] = moving;
        }
        self.len -= 1;
        self.buckets[0].pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    #[test]
    fn pops_in_order_like_a_binary_heap() {
        let mut random = crate::testing::random_stream(0x9E37_79B9_7F4A_7C15);
        for round in 0..50 {
            let (mut radix, mut binary) = (RadixHeap::default(), BinaryHeap::new());
            let mut last = 0u64;
            for step in 0..2000 {
                // Pushes never go below the last pop; small ranges make
                // many equal keys.
                if !random().is_multiple_of(3) || binary.is_empty() {
                    let spread = if round % 2 == 0 {
                        16
                    } else {
                        u64::MAX >> (step % 60)
                    };
                    let key = last.saturating_add(random() % spread);
                    radix.push(key);
                    binary.push(Reverse(key));
                } else {
                    let popped = radix.pop();
                    assert_eq!(popped, binary.pop().map(|Reverse(k)| k));
                    last = popped.unwrap();
                }
            }
            while let Some(Reverse(key)) = binary.pop() {
                assert_eq!(radix.pop(), Some(key));
            }
            assert_eq!(radix.pop(), None);
            radix.clear();
            radix.push(3);
            assert_eq!(radix.pop(), Some(3));
        }
    }
}
