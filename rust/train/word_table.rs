//! Distinct words and their counts, stored compactly: the words' bytes end to
//! end in one arena, a 16-byte record per word (where it starts, its count),
//! and a hash table of 4-byte record numbers.
//!
//! A `HashMap<Box<[u8]>, u64>` costs a 24-byte slot (about twice that after
//! the table doubles) plus an allocation of at least 32 bytes per word: 4M
//! distinct words took about 115 bytes each while counting. This layout
//! takes the word's own bytes plus 21 to 27, and keeps the words in the order
//! they were first seen, which does not depend on hashing.

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use std::hash::BuildHasher;

#[derive(Clone, Copy, Debug)]
struct Record {
    /// Where the word starts in the arena; it ends where the next one starts.
    start: u64,
    count: u64,
}

#[derive(Debug, Default)]
pub struct WordTable {
    arena: Vec<u8>,
    records: Vec<Record>,
    /// Record numbers, hashed by their word's bytes.
    index: HashTable<u32>,
}

impl WordTable {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn word<'a>(arena: &'a [u8], records: &[Record], number: u32) -> &'a [u8] {
        let number = number as usize;
        let end = records
            .get(number + 1)
            .map_or(arena.len(), |next| next.start as usize);
        &arena[records[number].start as usize..end]
    }

    /// Adds `count` occurrences of `word`.
    pub fn add(&mut self, word: &[u8], count: u64) {
        let hash = FxBuildHasher.hash_one(word);
        let (arena, records) = (&self.arena, &self.records);
        if let Some(&number) = self
            .index
            .find(hash, |&n| Self::word(arena, records, n) == word)
        {
            self.records[number as usize].count += count;
            return;
        }
        let number = u32::try_from(self.records.len()).expect("fewer than 2^32 distinct words");
        self.records.push(Record {
            start: self.arena.len() as u64,
            count,
        });
        self.arena.extend_from_slice(word);
        let (arena, records) = (&self.arena, &self.records);
        self.index.insert_unique(hash, number, |&n| {
            FxBuildHasher.hash_one(Self::word(arena, records, n))
        });
    }

    /// Words and counts in the order the words were first added.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        (0..self.records.len() as u32).map(|n| {
            (
                Self::word(&self.arena, &self.records, n),
                self.records[n as usize].count,
            )
        })
    }

    /// Keeps the words for which `keep(word, count)` holds, in their order.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], u64) -> bool) {
        let old = std::mem::take(self);
        for (word, count) in old.iter() {
            if keep(word, count) {
                self.add(word, count);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn counts_like_a_map_and_keeps_first_seen_order() {
        let words: Vec<Vec<u8>> = (0..20_000u32)
            .map(|i| format!("w{}", (i * 7919) % 3001).into_bytes())
            .chain([Vec::new(), b"\xff\x00".to_vec()])
            .collect();
        let mut table = WordTable::default();
        let mut map: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut first_seen = Vec::new();
        for (i, word) in words.iter().enumerate() {
            table.add(word, i as u64 % 5 + 1);
            *map.entry(word.clone()).or_insert_with(|| {
                first_seen.push(word.clone());
                0
            }) += i as u64 % 5 + 1;
        }
        assert_eq!(table.len(), map.len());
        let listed: Vec<(Vec<u8>, u64)> = table.iter().map(|(w, c)| (w.to_vec(), c)).collect();
        let expected: Vec<(Vec<u8>, u64)> =
            first_seen.iter().map(|w| (w.clone(), map[w])).collect();
        assert_eq!(listed, expected);

        table.retain(|word, count| count > 40 || word.is_empty());
        let kept: Vec<(Vec<u8>, u64)> = table.iter().map(|(w, c)| (w.to_vec(), c)).collect();
        let expected: Vec<(Vec<u8>, u64)> = expected
            .into_iter()
            .filter(|(w, c)| *c > 40 || w.is_empty())
            .collect();
        assert_eq!(kept, expected);
        let (word, count) = kept[0].clone();
        table.add(&word, 1);
        assert_eq!(table.iter().next(), Some((word.as_slice(), count + 1)));
    }
}
