//! Where a pretoken may be cut into parts that are merged one at a time,
//! with the same ids as the whole.
//!
//! Take a character boundary `p` of a pretoken that no token the merges
//! make could span. Then no merge ever joins a symbol before `p` to one
//! after it, and the merges on each side are the ones that side would make
//! alone, in the same order (lowest rank first, and among equal ranks the
//! leftmost; equal ranks on both sides never meet). So the pretoken's ids
//! are its parts' ids, one after the other.
//!
//! A token spanning `p` holds, inside it, the text's byte before `p` and
//! then the byte that starts the next character. A 256 x 256 bitmap marks
//! every such pair found at a character boundary inside a merged token: a
//! boundary whose pair is unmarked is spanned by no token. With GPT-2's
//! vocabulary no token spans two Hangul syllables, so a Korean word parts
//! into its syllables; the commonest few thousand syllables, unlike the
//! words they make, all fit in a small cache (`part_cache`). Vocabularies
//! trained on Korean mark those pairs, and their words stay whole.

use crate::vocab::Vocab;

pub struct CharCuts {
    /// Bit `before << 8 | after`: some merged token holds byte `before`
    /// followed by byte `after`, which starts a character.
    spanned: Box<[u64; 1024]>,
}

/// Whether `byte` starts a UTF-8 character (is not a continuation byte).
#[inline(always)]
fn starts_character(byte: u8) -> bool {
    byte & 0xC0 != 0x80
}

impl CharCuts {
    pub fn new(vocab: &Vocab) -> Self {
        let mut spanned = Box::new([0u64; 1024]);
        let merged = vocab
            .merges()
            .iter()
            .filter_map(|&(_, _, made)| vocab.token_bytes(made));
        for token in merged {
            for pair in token.windows(2) {
                if starts_character(pair[1]) {
                    let bit = (pair[0] as usize) << 8 | pair[1] as usize;
                    spanned[bit >> 6] |= 1 << (bit & 63);
                }
            }
        }
        CharCuts { spanned }
    }

    #[inline(always)]
    fn can_cut_between(&self, before: u8, after: u8) -> bool {
        let bit = (before as usize) << 8 | after as usize;
        starts_character(after) && self.spanned[bit >> 6] & (1 << (bit & 63)) == 0
    }

    /// The first place after `from` and before the end where `piece` (valid
    /// UTF-8, or a part of it that starts a character) may be cut.
    #[inline]
    pub fn next(&self, piece: &[u8], from: usize) -> Option<usize> {
        (from + 1..piece.len()).find(|&at| self.can_cut_between(piece[at - 1], piece[at]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::merge::{HeapScratch, MergeTable};

    /// Byte ids, then `merges` (byte strings) in rank order.
    fn vocab_with(merges: &[(Vec<u8>, Vec<u8>)]) -> Vocab {
        let mut entries: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        for (left, right) in merges {
            entries.push(([&left[..], &right[..]].concat(), entries.len() as u32));
        }
        Vocab::new(entries, merges.to_vec(), Vec::new()).unwrap()
    }

    fn merged(table: &MergeTable, bytes: &[u8]) -> Vec<u32> {
        let (mut symbols, mut ranks, mut heap) = (Vec::new(), Vec::new(), HeapScratch::default());
        table.apply(bytes, &mut symbols, &mut ranks, &mut heap);
        symbols
    }

    fn cuts(char_cuts: &CharCuts, text: &str) -> Vec<usize> {
        let mut found = Vec::new();
        let mut at = 0;
        while let Some(cut) = char_cuts.next(text.as_bytes(), at) {
            found.push(cut);
            at = cut;
        }
        found
    }

    #[test]
    fn cuts_only_where_no_merged_token_spans() {
        // "한" is ED 95 9C, "국" EA B5 AD, "어" EC 96 B4.
        let merges = [
            (&b" "[..], &b"\xED"[..]),
            (b"\x95", b"\x9C"),
            (b"\x9C", b"\xEA"),
        ];
        let merges: Vec<_> = merges
            .iter()
            .map(|(l, r)| (l.to_vec(), r.to_vec()))
            .collect();
        let char_cuts = CharCuts::new(&vocab_with(&merges));
        // Space then ED, and 9C then EA, are spanned; no merge starts a
        // character at its seam in 95 9C.
        assert_eq!(cuts(&char_cuts, " 한국어"), [7]);
        assert_eq!(cuts(&char_cuts, "어한국 어"), [3, 9, 10]);
        assert_eq!(cuts(&char_cuts, "a"), Vec::<usize>::new());
    }

    /// Merges learned as a trainer would pick them, from adjacent symbols
    /// of texts of Korean, Latin and spaces, some spanning characters; then
    /// every text's parts merge to the ids of the whole.
    #[test]
    fn parts_merge_to_the_ids_of_the_whole() {
        const CHARACTERS: [&str; 6] = ["한", "국", "어", " ", "a", "é"];
        let mut random = crate::testing::random_stream(0x9E37_79B9_7F4A_7C15);
        let mut next = move |below: usize| (random() % below as u64) as usize;
        let texts: Vec<String> = (0..300)
            .map(|_| (0..1 + next(6)).map(|_| CHARACTERS[next(6)]).collect())
            .collect();
        let mut merges: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        while merges.len() < 60 {
            let vocab = vocab_with(&merges);
            let text = &texts[next(texts.len())];
            let symbols = merged(&MergeTable::new(&vocab), text.as_bytes());
            if symbols.len() < 2 {
                continue;
            }
            let at = next(symbols.len() - 1);
            let token = |id: u32| vocab.token_bytes(id).unwrap().to_vec();
            let pair = (token(symbols[at]), token(symbols[at + 1]));
            if !merges.contains(&pair) {
                merges.push(pair);
            }
        }
        let vocab = vocab_with(&merges);
        let (table, char_cuts) = (MergeTable::new(&vocab), CharCuts::new(&vocab));
        let (mut cut, mut kept) = (0, 0);
        for text in &texts {
            let found = cuts(&char_cuts, text);
            let mut parts = Vec::new();
            let mut start = 0;
            for end in found.iter().copied().chain([text.len()]) {
                parts.extend(merged(&table, &text.as_bytes()[start..end]));
                start = end;
            }
            assert_eq!(parts, merged(&table, text.as_bytes()), "{text:?}");
            cut += found.len();
            kept += text.chars().count() - 1 - found.len();
        }
        // Both kinds of boundary occur, so both outcomes were checked.
        assert!(cut > 100 && kept > 100, "{cut} cut, {kept} kept");
    }
}
