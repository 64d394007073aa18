//! Merging and encoding with vocabularies made from the input, against the
//! plain merge loop. The merges join tokens over a four-letter alphabet in
//! any order (parts made after the merge that joins them, one token made by
//! several merges), so every queue the merger picks between is reached:
//! the scan (short pieces), the binary heap, and the radix heap (pieces
//! over 1 KB, when every merge comes after those making its parts).
//!
//! Input: a merge count, then two bytes per merge (which of the tokens so
//! far to join), then the text; a first byte with its high bit set repeats
//! the text to over 1 KB.
#![no_main]

mod common;

use bbpe::encode::merge::{HeapScratch, MergeTable};
use bbpe::pretokenize::{pretokens, Pretokenizer};
use bbpe::{Encoder, Specials, Vocab};
use common::{LimitedAllocator, ReferenceMerges};
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;

#[global_allocator]
static ALLOCATOR: LimitedAllocator = LimitedAllocator;

const ALPHABET: &[u8] = b"abcd";

/// A byte-level vocabulary with the merges the input picks.
fn vocab_from(picks: &[u8]) -> Vocab {
    let mut entries: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
    // The tokens merges may join: the alphabet's letters, then each result.
    let mut joinable: Vec<Vec<u8>> = ALPHABET.iter().map(|&b| vec![b]).collect();
    let mut pairs = HashSet::new();
    let mut merges = Vec::new();
    for pick in picks.chunks_exact(2) {
        let left = joinable[pick[0] as usize % joinable.len()].clone();
        let right = joinable[pick[1] as usize % joinable.len()].clone();
        if !pairs.insert((left.clone(), right.clone())) {
            continue;
        }
        let joined = [left.as_slice(), &right].concat();
        if !entries.iter().any(|(token, _)| *token == joined) {
            entries.push((joined.clone(), entries.len() as u32));
            joinable.push(joined);
        }
        merges.push((left, right));
    }
    Vocab::new(entries, merges, Vec::new()).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let picks = &rest[..rest.len().min(2 * (head & 0x7F) as usize)];
    let text_bytes: Vec<u8> = rest[picks.len()..]
        .iter()
        // Mostly the alphabet, so that merges apply; now and then a space.
        .map(|&b| {
            if b >= 0xF0 {
                b' '
            } else {
                ALPHABET[b as usize % 4]
            }
        })
        .collect();
    let text = if head & 0x80 != 0 && !text_bytes.is_empty() {
        let times = 1025 / text_bytes.len() + 1;
        String::from_utf8(text_bytes.repeat(times)).unwrap()
    } else {
        String::from_utf8(text_bytes).unwrap()
    };
    let vocab = vocab_from(picks);
    let reference = ReferenceMerges::new(&vocab);

    // The whole text as one piece, through each queue its length picks.
    let table = MergeTable::new(&vocab);
    let (mut symbols, mut ranks, mut heap) = (Vec::new(), Vec::new(), HeapScratch::default());
    table.apply(text.as_bytes(), &mut symbols, &mut ranks, &mut heap);
    assert_eq!(symbols, reference.merge(text.as_bytes()), "{text:?}");

    // Encoding: whole tokens, the word cache, then merging, per pretoken.
    let expected: Vec<u32> = pretokens(&Pretokenizer::Gpt2, &text)
        .unwrap()
        .into_iter()
        .flat_map(|piece| reference.merge(piece.as_bytes()))
        .collect();
    let encoder = Encoder::new(vocab, Pretokenizer::Gpt2, false);
    for _ in 0..2 {
        // Twice: the second time pretokens come from the word cache.
        assert_eq!(
            encoder.encode(&text, Specials::None).unwrap(),
            expected,
            "{text:?}"
        );
    }
    assert_eq!(encoder.decode(&expected, false).unwrap(), text.as_bytes());
});
