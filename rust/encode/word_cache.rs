//! The encoder's memo of pretoken -> ids, one per thread, for the words that
//! are not one whole token ([`crate::encode::whole_tokens`] has those). Words repeat
//! (Zipf), so most are found here instead of being merged again.
//!
//! Words of up to 15 bytes and four ids (98% of the English lookups that
//! reach this cache) are kept in a [`SetCache`], key and ids on one cache
//! line, the older of two pushed out by a new word. Replaying 60 MB of
//! English, a 1 MB one merges 396K words where a table of the same size
//! cleared when full merged 449K; per pass, one thread, encoding took 4.5%
//! fewer instructions and 5% fewer L1 misses (cachegrind; multilingual 3%,
//! code 1%, Korean the same). The others, longer or of more ids, are kept in a
//! hash table: a pretoken of up to 16 bytes is fully determined by its
//! length and its bytes 0..8 and 8..16, which its entries hold inline;
//! longer keys and multi-id values live in arenas, so nothing is allocated
//! per entry; the table is cleared when full to bound memory.

use super::set_cache::SetCache;
use crate::system::huge_pages::HugePageAllocator;
use hashbrown::HashTable;
use rustc_hash::FxHasher;
use std::hash::Hasher;

/// Up to four ids per word; 65,536 sets of two (4 MB) hold 131,072 words
/// and merge 289K in 60 MB of English. Against 1 MB, per pass: English 5.7%
/// fewer instructions, 7% fewer L1 misses and 5% fewer misses of a 1 MB
/// cache, code 1-3% fewer, Korean the same (`benches/encode_counts.py`).
/// The memory is zeroed pages, touched only where words land.
type ShortWords = SetCache<u128, 4, 16>;

/// Bounds on the entries kept before the cache is cleared. A small table
/// stays in the CPU's caches; a large one keeps more words but each lookup
/// may wait on main memory, which pays only when nearly every lookup hits.
/// The least fills 2^15 slots (1 MB, hashbrown keeps an eighth free), about
/// one core's L2 cache: against 2^16 entries it merges more words (Korean
/// 2.48M against 2.10M) yet runs faster, Korean 9% and the multilingual
/// set 5% (Rust, one core, one cold pass, median of 9); English and code
/// the same. Larger tables were slower still: 2^18 entries, Korean 50%.
/// (Measured when this table held every word, before most Korean words
/// came to be cut into syllables that `part_cache` keeps and before the
/// short words moved to [`ShortWords`].)
const MIN_CAPACITY: usize = (1 << 15) / 8 * 7;
const MAX_CAPACITY: usize = 1 << 18;
/// Hit rate above which a full cache grows (keeping its entries) rather
/// than being cleared and halved. Measured on the benchmark corpora with
/// GPT-2's vocabulary (words that are not whole tokens): code 0.92 grows;
/// English 0.56-0.70, the multilingual set 0.63-0.70 and Korean 0.55-0.57
/// stay small. Growing from 0.6 made the multilingual set about 10% slower
/// (Rust, one core, one cold pass; measured when this table held every word).
const GROW_ABOVE: f64 = 0.9;
/// Bits of [`WordCache`]'s filter of short words in its table (4 KB).
const SHORT_IN_TABLE_BITS: usize = 1 << 15;
/// Longer pretokens are rare and mostly unique: not worth their memory.
const MAX_KEY_LEN: usize = 48;

/// For each length up to 16, the masks that keep that many bytes of two
/// little-endian words.
const KEEP: [(u64, u64); 17] = {
    const fn low_bytes(bytes: usize) -> u64 {
        if bytes >= 8 {
            u64::MAX
        } else {
            (1 << (8 * bytes)) - 1
        }
    }
    let mut masks = [(0, 0); 17];
    let mut n = 1;
    while n <= 16 {
        masks[n] = (low_bytes(n), if n > 8 { low_bytes(n - 8) } else { 0 });
        n += 1;
    }
    masks
};

/// A pretoken prepared for lookup. Up to 16 bytes, `first` and `last` are
/// its bytes 0..8 and 8..16, zero-padded: equal lengths and words mean equal
/// keys. Longer keys keep their first and last 8 bytes there, and are
/// compared in full too.
pub struct Key<'a> {
    bytes: &'a [u8],
    first: u64,
    last: u64,
    hash: u64,
}

impl<'a> Key<'a> {
    #[inline(always)]
    pub fn new(bytes: &'a [u8]) -> Self {
        let n = bytes.len();
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let half = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
        let (first, last) = match n {
            0..=3 => (bytes.iter().rev().fold(0, |acc, &b| acc << 8 | b as u64), 0),
            // Two overlapping reads; the shared bytes are the same in both.
            4..=7 => (half(0) | half(n - 4) << (8 * (n - 4)), 0),
            8 => (word(0), 0),
            // The last eight bytes, shifted so that byte 8 comes first.
            9..=16 => (word(0), word(n - 8) >> (8 * (16 - n))),
            _ => (word(0), word(n - 8)),
        };
        Key {
            bytes,
            first,
            last,
            hash: Self::hash_of(first, last, n, (n > 16).then_some(bytes)),
        }
    }

    /// The key's length and bytes in one word, never 0, for keys of 1 to
    /// 15 bytes (whose `last` leaves the top byte free for the length).
    #[inline(always)]
    pub fn packed(&self) -> Option<u128> {
        let n = self.bytes.len() as u64;
        (1..=15)
            .contains(&n)
            .then_some(self.first as u128 | ((self.last | n << 56) as u128) << 64)
    }

    /// The key's length and bytes in one `u64`, never `u64::MAX`, for keys
    /// of 1 to 7 bytes (`first` leaves the top byte free for the length).
    #[inline(always)]
    pub fn packed_short(&self) -> Option<u64> {
        let n = self.bytes.len() as u64;
        (1..=7).contains(&n).then_some(self.first | n << 56)
    }

    /// The key of `text[start..end]`. When the text goes on for 16 bytes
    /// from `start`, a key of up to 16 bytes is read as two whole words and
    /// masked: no branch on its length, which varies from word to word.
    #[inline(always)]
    pub fn within(text: &'a [u8], start: usize, end: usize) -> Self {
        let n = end - start;
        let bytes = &text[start..end];
        if let (Some(&(keep_first, keep_last)), Some(window)) =
            (KEEP.get(n), text.get(start..start + 16))
        {
            // Both words from one checked window: reading each through its
            // own checked slice took 8% more instructions per pass of
            // English, 3% of Korean (`benches/encode_counts.py`).
            let word = |at: usize| u64::from_le_bytes(window[at..at + 8].try_into().unwrap());
            let (first, last) = (word(0) & keep_first, word(8) & keep_last);
            return Key {
                bytes,
                first,
                last,
                hash: Self::hash_of(first, last, n, None),
            };
        }
        Key::new(bytes)
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Whether every byte of the key is ASCII.
    #[inline(always)]
    pub fn is_ascii(&self) -> bool {
        match self.bytes.len() {
            // The words hold exactly the key's bytes, zero-padded.
            0..=16 => (self.first | self.last) & 0x8080_8080_8080_8080 == 0,
            _ => self.bytes.is_ascii(),
        }
    }

    /// The hash of a key of `n` bytes with these words; `bytes`, the whole
    /// key, is needed (and given) only over 16 bytes. Up to 15 bytes it is
    /// a hash of [`Key::packed`] alone.
    #[inline(always)]
    fn hash_of(first: u64, last: u64, n: usize, bytes: Option<&[u8]>) -> u64 {
        match bytes {
            None => {
                // One folded 64x64->128 multiply mixes all the key's bytes.
                let product = ((first ^ 0x243F_6A88_85A3_08D3) as u128)
                    * ((last ^ (n as u64) << 56 ^ 0x1319_8A2E_0370_7344) as u128);
                (product as u64) ^ ((product >> 64) as u64)
            }
            Some(bytes) => {
                let mut hasher = FxHasher::default();
                hasher.write(bytes);
                hasher.finish()
            }
        }
    }
}

/// 32 bytes, two to a cache line; the hash is not kept (hashbrown keeps 7
/// bits of it, and recomputing it when the table grows is cheap).
#[derive(Clone, Copy)]
struct Entry {
    first: u64,
    last: u64,
    len: u32,
    /// Start of the key in `long_keys`, for keys over 16 bytes.
    long_key: u32,
    /// The id itself when there is one, else the start in `id_arena`.
    ids: u32,
    ids_len: u32,
}

impl Entry {
    fn rehash(&self, long_keys: &[u8]) -> u64 {
        let n = self.len as usize;
        let bytes = (n > 16).then(|| &long_keys[self.long_key as usize..][..n]);
        Key::hash_of(self.first, self.last, n, bytes)
    }
}

pub struct WordCache {
    short: ShortWords,
    /// The other words.
    table: HashTable<Entry, HugePageAllocator>,
    /// A bit per value of a hash's low bits, set for the short words in
    /// `table`: a short word that `short` lacks is looked for there only
    /// when its bit is set (otherwise every miss would read the table).
    short_in_table: Box<[u64]>,
    long_keys: Vec<u8>,
    id_arena: Vec<u32>,
    capacity: usize,
    hits: u64,
    misses: u64,
}

impl Default for WordCache {
    fn default() -> Self {
        WordCache {
            short: ShortWords::default(),
            table: HashTable::new_in(HugePageAllocator),
            short_in_table: vec![0; SHORT_IN_TABLE_BITS / 64].into_boxed_slice(),
            long_keys: Vec::new(),
            id_arena: Vec::new(),
            capacity: MIN_CAPACITY,
            hits: 0,
            misses: 0,
        }
    }
}

impl WordCache {
    /// Appends the ids kept for `key` to `ids`; false if none are kept.
    #[inline(always)]
    pub fn append_to(&mut self, key: &Key, ids: &mut Vec<u32>) -> bool {
        if let Some(packed) = key.packed() {
            if self.short.append_to(packed, key.hash, ids) {
                return true;
            }
            if !self.is_short_in_table(key.hash) {
                return false;
            }
        }
        match self.get_other(key) {
            Some(found) => {
                ids.extend_from_slice(found);
                true
            }
            None => false,
        }
    }

    fn get_other(&mut self, key: &Key) -> Option<&[u32]> {
        let n = key.bytes.len();
        let entry = self.table.find(key.hash, |e| {
            e.len as usize == n
                && e.first == key.first
                && e.last == key.last
                && (n <= 16 || &self.long_keys[e.long_key as usize..][..n] == key.bytes)
        });
        let Some(entry) = entry else {
            self.misses += 1;
            return None;
        };
        self.hits += 1;
        Some(if entry.ids_len == 1 {
            std::slice::from_ref(&entry.ids)
        } else {
            &self.id_arena[entry.ids as usize..][..entry.ids_len as usize]
        })
    }

    /// Keeps `ids` for `key`, unless the key is too long to be worth it.
    pub fn insert(&mut self, key: &Key, ids: &[u32]) {
        if let Some(packed) = key.packed() {
            if self.short.insert(packed, key.hash, ids) {
                return;
            }
        }
        if key.bytes.len() > MAX_KEY_LEN {
            return;
        }
        if self.table.len() >= self.capacity {
            let hit_rate = self.hits as f64 / (self.hits + self.misses).max(1) as f64;
            (self.hits, self.misses) = (0, 0);
            if hit_rate > GROW_ABOVE && self.capacity < MAX_CAPACITY {
                // Worth more room: keep what is here and grow.
                self.capacity *= 2;
            } else {
                self.capacity = (self.capacity / 2).max(MIN_CAPACITY);
                self.table.clear();
                self.short_in_table.fill(0);
                self.long_keys.clear();
                self.id_arena.clear();
            }
        }
        let long_key = self.long_keys.len() as u32;
        if key.bytes.len() > 16 {
            self.long_keys.extend_from_slice(key.bytes);
        }
        let stored = if let [id] = ids {
            *id
        } else {
            self.id_arena.extend_from_slice(ids);
            (self.id_arena.len() - ids.len()) as u32
        };
        let entry = Entry {
            first: key.first,
            last: key.last,
            len: key.bytes.len() as u32,
            long_key,
            ids: stored,
            ids_len: ids.len() as u32,
        };
        if key.packed().is_some() {
            let bit = key.hash as usize % SHORT_IN_TABLE_BITS;
            self.short_in_table[bit / 64] |= 1 << (bit % 64);
        }
        let long_keys = &self.long_keys;
        self.table
            .insert_unique(key.hash, entry, |e| e.rehash(long_keys));
    }

    #[inline(always)]
    fn is_short_in_table(&self, hash: u64) -> bool {
        let bit = hash as usize % SHORT_IN_TABLE_BITS;
        self.short_in_table[bit / 64] & 1 << (bit % 64) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_what_was_stored() {
        fn lookup(cache: &mut WordCache, word: &[u8]) -> Option<Vec<u32>> {
            let mut ids = vec![7];
            let found = cache.append_to(&Key::new(word), &mut ids);
            assert_eq!(ids[0], 7, "ids before it are kept");
            assert_eq!(found, ids.len() > 1);
            found.then(|| ids[1..].to_vec())
        }
        let mut cache = WordCache::default();
        // Every length, short and long keys, one id to six: both of the
        // cache's stores, and keys too long to keep.
        let words: Vec<Vec<u8>> = (1..60usize)
            .map(|len| (0..len).map(|i| (i * 7 + len) as u8).collect())
            .collect();
        let ids_of =
            |i: usize| -> Vec<u32> { (0..(i % 6) as u32 + 1).map(|k| k + i as u32).collect() };
        for (i, word) in words.iter().enumerate() {
            cache.insert(&Key::new(word), &ids_of(i));
        }
        for (i, word) in words.iter().enumerate() {
            let kept = word.len() <= MAX_KEY_LEN;
            assert_eq!(lookup(&mut cache, word), kept.then(|| ids_of(i)), "{i}");
            // Same length and ends, different middle: a different key.
            if word.len() > 16 {
                let mut other = word.clone();
                other[10] ^= 1;
                assert_eq!(lookup(&mut cache, &other), None);
            }
        }
        assert_eq!(lookup(&mut cache, b"absent"), None);
    }

    #[test]
    fn keys_read_within_a_text_are_the_keys_of_its_pieces() {
        let text: Vec<u8> = (0..64u32).map(|i| (i * 151 % 256) as u8).collect();
        for start in 0..text.len() {
            for end in start..text.len().min(start + 20) {
                let (within, alone) = (Key::within(&text, start, end), Key::new(&text[start..end]));
                assert_eq!(
                    (within.bytes, within.first, within.last, within.hash),
                    (alone.bytes, alone.first, alone.last, alone.hash),
                    "{start}..{end}"
                );
            }
        }
    }

    #[test]
    fn packed_keys_are_equal_only_for_equal_bytes() {
        // Zero bytes and lengths that pad alike must still tell keys apart.
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for len in 0..=17usize {
            keys.push(vec![0; len]);
            keys.push((0..len).map(|i| (i * 37 + 1) as u8).collect());
            keys.push((0..len).map(|i| if i + 1 == len { 1 } else { 0 }).collect());
        }
        for a in &keys {
            let (key_a, packed_a) = (Key::new(a), Key::new(a).packed());
            assert_eq!(packed_a.is_some(), (1..=15).contains(&a.len()));
            assert_ne!(packed_a, Some(0));
            for b in &keys {
                let key_b = Key::new(b);
                if a.len() <= 16 && b.len() <= 16 {
                    let same = key_a.first == key_b.first
                        && key_a.last == key_b.last
                        && a.len() == b.len();
                    assert_eq!(same, a == b, "{a:?} {b:?}");
                }
                if packed_a.is_some() && key_b.packed().is_some() {
                    assert_eq!(packed_a == key_b.packed(), a == b, "{a:?} {b:?}");
                }
                if a == b {
                    assert_eq!(key_a.hash, key_b.hash);
                }
            }
        }
    }
}
