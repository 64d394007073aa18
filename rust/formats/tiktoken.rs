//! tiktoken's rank file: `base64(token bytes) rank` per line, where the rank
//! is both the id and the merge priority. Merges are derived from the ranks.
//! The file does not say how text is split into pieces first: the caller
//! gives the pattern.

use super::{build_vocab, display, has_roberta_specials, read_text, Loaded};
use crate::error::Error;
use crate::system::publish::write_durably;
use crate::vocab::{largest_plausible_id, MergePair, SpecialToken, TokenEntry, Vocab};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rustc_hash::{FxHashMap, FxHashSet};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::Path;

/// The base of the polynomial hash that filters lookups (odd, so that powers
/// do not vanish modulo 2^64).
const HASH_BASE: u64 = 0x100_0000_01b3;

/// Ranked tokens, looked up by any byte range of a token being split. A
/// range's polynomial hash comes from prefix hashes in O(1), so only ranges
/// that may be tokens are hashed in full: splitting stays O(n log n) in the
/// token's length even where the parts being joined are long.
struct RankTable<'a> {
    ranks: FxHashMap<&'a [u8], u32>,
    /// (polynomial hash, length) of every token; a collision costs one
    /// exact lookup, never a wrong answer.
    maybe: FxHashSet<(u64, usize)>,
}

/// State for splitting one token, kept between tokens to reuse its memory.
#[derive(Default)]
struct Splitter {
    /// prefix[i]: hash of the token's first i bytes.
    prefix: Vec<u64>,
    powers: Vec<u64>,
    /// Parts of the token as a linked list over their start positions.
    next: Vec<usize>,
    prev: Vec<usize>,
    alive: Vec<bool>,
    /// (rank, start of left part, end of right part): smallest rank first,
    /// leftmost among equals, as tiktoken merges.
    heap: BinaryHeap<Reverse<(u32, usize, usize)>>,
}

fn polynomial_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |h, &b| {
        h.wrapping_mul(HASH_BASE).wrapping_add(b as u64 + 1)
    })
}

impl<'a> RankTable<'a> {
    fn new(entries: &'a [TokenEntry]) -> Self {
        RankTable {
            ranks: entries.iter().map(|(t, r)| (t.as_slice(), *r)).collect(),
            maybe: entries
                .iter()
                .map(|(t, _)| (polynomial_hash(t), t.len()))
                .collect(),
        }
    }
}

impl Splitter {
    /// tiktoken's merging of `token` using only tokens ranked below `limit`;
    /// returns the two parts it ends in, if it ends in two.
    fn split_in_two<'t>(
        &mut self,
        token: &'t [u8],
        table: &RankTable,
        limit: u32,
    ) -> Option<(&'t [u8], &'t [u8])> {
        let n = token.len();
        self.prefix.clear();
        self.prefix.push(0);
        for &b in token {
            let h = *self.prefix.last().unwrap();
            self.prefix
                .push(h.wrapping_mul(HASH_BASE).wrapping_add(b as u64 + 1));
        }
        while self.powers.len() <= n {
            let p = self
                .powers
                .last()
                .map_or(1, |p: &u64| p.wrapping_mul(HASH_BASE));
            self.powers.push(p);
        }
        let (prefix, powers) = (&self.prefix, &self.powers);
        let rank_of = |start: usize, end: usize| {
            let hash = prefix[end].wrapping_sub(prefix[start].wrapping_mul(powers[end - start]));
            if !table.maybe.contains(&(hash, end - start)) {
                return None;
            }
            table
                .ranks
                .get(&token[start..end])
                .copied()
                .filter(|&r| r < limit)
        };

        // Part i is token[i..next[i]]; at first every byte is one.
        self.next.clear();
        self.next.extend(1..=n);
        self.prev.clear();
        self.prev.extend((0..n).map(|i| i.wrapping_sub(1)));
        self.alive.clear();
        self.alive.resize(n, true);
        self.heap.clear();
        for start in 0..n.saturating_sub(1) {
            if let Some(rank) = rank_of(start, start + 2) {
                self.heap.push(Reverse((rank, start, start + 2)));
            }
        }
        while let Some(Reverse((_, start, end))) = self.heap.pop() {
            // Stale unless the pair at `start` still ends at `end`.
            let middle = self.next[start];
            if !self.alive[start] || middle >= end || self.next[middle] != end {
                continue;
            }
            self.alive[middle] = false;
            self.next[start] = end;
            if end < n {
                self.prev[end] = start;
                if let Some(rank) = rank_of(start, self.next[end]) {
                    self.heap.push(Reverse((rank, start, self.next[end])));
                }
            }
            if start > 0 {
                let before = self.prev[start];
                if let Some(rank) = rank_of(before, end) {
                    self.heap.push(Reverse((rank, before, end)));
                }
            }
        }
        let middle = self.next[0];
        (middle < n && self.next[middle] == n).then(|| (&token[..middle], &token[middle..]))
    }
}

/// Merges equivalent to tiktoken's ranks: for each multi-byte token in rank
/// order, the two lower-ranked parts tiktoken would join to make it.
fn derive_merges(entries: &[TokenEntry]) -> Result<Vec<MergePair>, u32> {
    let table = RankTable::new(entries);
    let mut splitter = Splitter::default();
    let mut by_rank: Vec<&(Vec<u8>, u32)> = entries.iter().filter(|(t, _)| t.len() > 1).collect();
    by_rank.sort_by_key(|(_, r)| *r);
    by_rank
        .into_iter()
        .map(|(token, rank)| {
            splitter
                .split_in_two(token, &table, *rank)
                .map(|(l, r)| (l.to_vec(), r.to_vec()))
                .ok_or(*rank)
        })
        .collect()
}

/// Loads a rank file; `pattern` is the split pattern its ranks were made
/// with (the file does not record it, and another gives other ids).
pub fn load(path: &Path, specials: &[SpecialToken], pattern: &str) -> Result<Loaded, Error> {
    let file = display(path);
    let text = read_text(path)?;
    let at_line =
        |line: usize, message: String| Error::file(&file, format!("line {line}"), message);
    let mut entries = Vec::new();
    // 1-based, as editors number lines.
    let mut lines = Vec::new();
    let mut line_of_rank = FxHashMap::default();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.is_empty() {
            continue;
        }
        let parsed = line.split_once(' ').and_then(|(token, rank)| {
            Some((STANDARD.decode(token).ok()?, rank.parse::<u32>().ok()?))
        });
        let (token, rank) = parsed.ok_or_else(|| {
            at_line(
                number,
                format!("expected \"<base64 token> <rank>\", got {line:?}"),
            )
        })?;
        if let Some(first) = line_of_rank.insert(rank, number) {
            return Err(at_line(
                number,
                format!("rank {rank} is already given on line {first}"),
            ));
        }
        entries.push((token, rank));
        lines.push(number);
    }
    let mut line_of_token: FxHashMap<&[u8], usize> = FxHashMap::default();
    for ((token, _), &number) in entries.iter().zip(&lines) {
        if let Some(first) = line_of_token.insert(token, number) {
            return Err(at_line(
                number,
                format!("the token is already on line {first}"),
            ));
        }
    }
    // Before any table is sized by a rank.
    let limit = largest_plausible_id(entries.len() + specials.len());
    if let Some(((_, rank), number)) = entries.iter().zip(&lines).find(|((_, r), _)| *r > limit) {
        return Err(at_line(
            *number,
            format!(
                "rank {rank} is beyond any id {} tokens can use (at most {limit}); the file is corrupt",
                entries.len() + specials.len()
            ),
        ));
    }
    let merges = derive_merges(&entries).map_err(|rank| {
        at_line(
            line_of_rank[&rank],
            "this token cannot be made by joining two lower-ranked tokens".into(),
        )
    })?;
    let mut merged_ranks: Vec<u32> = entries
        .iter()
        .filter(|(t, _)| t.len() > 1)
        .map(|(_, r)| *r)
        .collect();
    merged_ranks.sort_unstable();
    let vocab = build_vocab(entries, merges, specials.to_vec(), &file, &file, |merge| {
        format!("line {}", line_of_rank[&merged_ranks[merge]])
    })?;
    Ok(Loaded {
        pattern: pattern.to_string(),
        add_prefix_space: false,
        roberta_template: has_roberta_specials(&vocab),
        vocab,
    })
}

/// The rank file text. Refused unless tiktoken's rank-based merging gives
/// exactly this vocabulary's merges, i.e. the same ids on every input.
pub fn to_text(vocab: &Vocab) -> Result<String, Error> {
    let entries: Vec<(Vec<u8>, u32)> = vocab
        .entries()
        .filter(|&(_, id)| !vocab.is_special(id))
        .map(|(bytes, id)| (bytes.to_vec(), id))
        .collect();
    let derived = derive_merges(&entries).ok();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = vocab
        .merges()
        .iter()
        .map(|&(l, r, _)| {
            let bytes = |id| vocab.token_bytes(id).unwrap_or_default().to_vec();
            (bytes(l), bytes(r))
        })
        .collect();
    if derived.as_ref() != Some(&expected) {
        return Err(Error::Invalid(
            "tiktoken uses ids as merge ranks, and this vocabulary's ids are not in merge order \
             (as with fairseq-ordered RoBERTa ids); tiktoken would encode differently"
                .into(),
        ));
    }
    let mut out = String::new();
    for (bytes, id) in entries {
        out.push_str(&STANDARD.encode(bytes));
        out.push(' ');
        out.push_str(&id.to_string());
        out.push('\n');
    }
    Ok(out)
}

pub fn save(vocab: &Vocab, path: &Path) -> Result<(), Error> {
    write_durably(path, to_text(vocab)?.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tiktoken's merge loop as written there: the lowest-ranked adjacent
    /// pair, leftmost among equals, joined until none is left.
    fn split_as_tiktoken(
        token: &[u8],
        ranks: &FxHashMap<&[u8], u32>,
        limit: u32,
    ) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut bounds: Vec<usize> = (0..=token.len()).collect();
        loop {
            let mut best: Option<(u32, usize)> = None;
            for i in 0..bounds.len().saturating_sub(2) {
                let rank = ranks.get(&token[bounds[i]..bounds[i + 2]]).copied();
                if let Some(rank) = rank.filter(|&r| r < limit) {
                    if best.is_none_or(|(r, _)| rank < r) {
                        best = Some((rank, i));
                    }
                }
            }
            match best {
                Some((_, i)) => bounds.remove(i + 1),
                None => break,
            };
        }
        (bounds.len() == 3).then(|| (token[..bounds[1]].to_vec(), token[bounds[1]..].to_vec()))
    }

    #[test]
    fn splits_as_tiktoken_merges() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % n
        };
        let mut entries: Vec<TokenEntry> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        let mut seen: FxHashSet<Vec<u8>> = entries.iter().map(|(t, _)| t.clone()).collect();
        while entries.len() < 600 {
            let token: Vec<u8> = (0..2 + next(6)).map(|_| b'a' + next(3) as u8).collect();
            // Mostly longer tokens after shorter ones, as BPE ranks them.
            let rank = 256 + 1000 * token.len() as u32 + next(3000) as u32;
            if seen.insert(token.clone()) {
                entries.push((token, rank));
            }
        }
        let ranks: FxHashMap<&[u8], u32> =
            entries.iter().map(|(t, r)| (t.as_slice(), *r)).collect();
        let table = RankTable::new(&entries);
        let mut splitter = Splitter::default();
        let mut ended_in_two = 0;
        for (token, rank) in &entries {
            for limit in [*rank, next(10_000) as u32] {
                let ours = splitter
                    .split_in_two(token, &table, limit)
                    .map(|(l, r)| (l.to_vec(), r.to_vec()));
                ended_in_two += ours.is_some() as usize;
                assert_eq!(
                    ours,
                    split_as_tiktoken(token, &ranks, limit),
                    "{token:?} {limit}"
                );
            }
        }
        assert!(
            ended_in_two > 100,
            "the vocabulary splits too few tokens: {ended_in_two}"
        );
    }
}
