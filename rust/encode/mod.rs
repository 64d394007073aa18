//! Stage 2: text -> ids. Special tokens are cut out first, the rest is split
//! into pretokens, and each pretoken is looked up among the vocabulary's whole
//! tokens, then in a per-thread cache, and merged only if found in neither.
//! A pretoken with other than ASCII in it is first cut where no token can
//! span (`char_cuts`), and each part is looked up and merged on its own.

pub mod batch;
mod bucket_table;
mod char_cuts;
pub mod merge;
mod part_cache;
mod radix_heap;
mod set_cache;
mod whole_tokens;
mod word_cache;

use crate::error::Error;
#[cfg(doc)]
use crate::pretokenize::gpt2_cut_at_or_after;
use crate::pretokenize::{PretokenSink, Pretokenizer};
use crate::system::threads;
use crate::vocab::Vocab;
use aho_corasick::{AhoCorasick, MatchKind};
use char_cuts::CharCuts;
use merge::{HeapScratch, MergeTable};
use part_cache::{pack_within, PartCache, MAX_PART_LEN};
use std::sync::Mutex;
use whole_tokens::WholeTokens;
use word_cache::{Key, WordCache};

/// A text whose encoding panics in tests, to show where a panic goes.
#[cfg(test)]
pub(crate) const INJECTED_PANIC: &str = "\0bbpe: a panic injected by a test\0";

/// Which special tokens are recognised when they occur in text; the rest of
/// the text, including any special token not recognised, is encoded as text.
#[derive(Debug, Clone, Copy)]
pub enum Specials<'a> {
    None,
    All,
    Only(&'a [u32]),
}

impl<'a> Specials<'a> {
    /// Every special token when `ids` is `None`, else only those listed
    /// (none for an empty list): the form callers give it in.
    pub fn allowed(ids: Option<&'a [u32]>) -> Self {
        match ids {
            None => Specials::All,
            Some([]) => Specials::None,
            Some(ids) => Specials::Only(ids),
        }
    }
}

/// Per-thread state: the word cache and merge buffers, kept between
/// pretokens so that encoding allocates nothing per word.
#[derive(Default)]
struct Scratch {
    words: WordCache,
    parts: PartCache,
    symbols: Vec<u32>,
    ranks: Vec<u64>,
    heap: HeapScratch,
}

/// Appends a few ids: one capacity check and a plain copy loop, cheaper than
/// `extend_from_slice`'s `memcpy` call for the handful of ids of a pretoken.
#[inline(always)]
fn append(ids: &mut Vec<u32>, new: &[u32]) {
    match new {
        [id] => ids.push(*id),
        _ => ids.extend(new.iter().copied()),
    }
}

/// Encodes each pretoken the scanner finds, inlined into its loops.
struct PieceEncoder<'a> {
    encoder: &'a Encoder,
    text: &'a [u8],
    cache: &'a mut Scratch,
    ids: &'a mut Vec<u32>,
}

impl PretokenSink for PieceEncoder<'_> {
    #[inline(always)]
    fn pretoken(&mut self, start: usize, end: usize) {
        self.encoder
            .encode_piece(self.text, start, end, self.cache, self.ids);
    }
}

pub struct Encoder {
    vocab: Vocab,
    merges: MergeTable,
    whole_tokens: WholeTokens,
    char_cuts: CharCuts,
    pretokenizer: Pretokenizer,
    special_matcher: Option<AhoCorasick>,
    /// Encode each stretch of text between special tokens as if it began
    /// with a space (HF's `add_prefix_space`), so a first word is encoded
    /// like any other.
    add_prefix_space: bool,
    /// Slot 0 for callers outside rayon's pool, then one per pool thread.
    scratch: Box<[Mutex<Scratch>]>,
}

impl Encoder {
    pub fn new(vocab: Vocab, pretokenizer: Pretokenizer, add_prefix_space: bool) -> Self {
        let special_matcher = (!vocab.specials().is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(vocab.specials().iter().map(|s| s.content.as_bytes()))
                .expect("special tokens form a valid automaton")
        });
        // Asking rayon for its thread count would start its global pool.
        let slots = threads::available() + 1;
        let merges = MergeTable::new(&vocab);
        Encoder {
            whole_tokens: WholeTokens::new(&vocab, &merges),
            char_cuts: CharCuts::new(&vocab),
            merges,
            vocab,
            pretokenizer,
            special_matcher,
            add_prefix_space,
            scratch: (0..slots).map(|_| Mutex::default()).collect(),
        }
    }

    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    pub fn pretokenizer(&self) -> &Pretokenizer {
        &self.pretokenizer
    }

    pub fn add_prefix_space(&self) -> bool {
        self.add_prefix_space
    }

    /// Whether a text may be cut where [`gpt2_cut_at_or_after`] allows and
    /// its parts encoded one after the other: GPT-2's pattern, no prefix
    /// space added to each part, and no special token that could straddle a
    /// cut or absorb the whitespace after it.
    pub fn can_cut_texts(&self, specials: Specials) -> bool {
        matches!(self.pretokenizer, Pretokenizer::Gpt2)
            && !self.add_prefix_space
            && (self.special_matcher.is_none() || matches!(specials, Specials::None))
    }

    pub fn encode(&self, text: &str, specials: Specials) -> Result<Vec<u32>, Error> {
        // A piece never has more ids than bytes: reserving that much means no
        // reallocation, and pages never written cost nothing.
        let mut ids = Vec::with_capacity(text.len());
        self.encode_into(text, specials, &mut ids, None)?;
        Ok(ids)
    }

    /// Appends the ids of `text` to `ids`, and when `spans` is given the byte
    /// range in `text` of each id (ids inside one pretoken get consecutive
    /// ranges of their own bytes; a token may end inside a character).
    pub fn encode_into(
        &self,
        text: &str,
        specials: Specials,
        ids: &mut Vec<u32>,
        mut spans: Option<&mut Vec<(usize, usize)>>,
    ) -> Result<(), Error> {
        #[cfg(test)]
        assert!(text != INJECTED_PANIC, "injected panic");
        let slot = rayon::current_thread_index().map_or(0, |i| 1 + i % (self.scratch.len() - 1));
        // Another caller on this slot (a thread outside the pool): start empty.
        let mut guard = self.scratch[slot].try_lock().ok();
        let mut own;
        let cache = match guard.as_deref_mut() {
            Some(cache) => cache,
            None => {
                own = Scratch::default();
                &mut own
            }
        };

        let mut text_start = 0;
        if let (Some(matcher), false) = (&self.special_matcher, matches!(specials, Specials::None))
        {
            for found in matcher.find_iter(text) {
                let special = &self.vocab.specials()[found.pattern().as_usize()];
                let allowed = match specials {
                    Specials::Only(allowed) => allowed.contains(&special.id),
                    _ => true,
                };
                if !allowed || found.start() < text_start {
                    continue;
                }
                let (mut start, mut end) = (found.start(), found.end());
                if special.lstrip {
                    let before = &text[text_start..start];
                    start = text_start + before.trim_end_matches(char::is_whitespace).len();
                }
                if special.rstrip {
                    let after = &text[end..];
                    end = text.len() - after.trim_start_matches(char::is_whitespace).len();
                }
                let segment = &text[text_start..start];
                self.encode_text(segment, text_start, cache, ids, spans.as_deref_mut())?;
                ids.push(special.id);
                if let Some(spans) = spans.as_deref_mut() {
                    spans.push((start, end));
                }
                text_start = end;
            }
        }
        self.encode_text(&text[text_start..], text_start, cache, ids, spans)
    }

    /// Encodes text without special tokens; `base` is its offset for spans.
    fn encode_text(
        &self,
        text: &str,
        base: usize,
        cache: &mut Scratch,
        ids: &mut Vec<u32>,
        spans: Option<&mut Vec<(usize, usize)>>,
    ) -> Result<(), Error> {
        if self.add_prefix_space && !text.is_empty() && !text.starts_with(' ') {
            // The added space belongs to no character: spans start at the text.
            let prefixed = format!(" {text}");
            return self.encode_pretokens(&prefixed, base as isize - 1, cache, ids, spans);
        }
        self.encode_pretokens(text, base as isize, cache, ids, spans)
    }

    fn encode_pretokens(
        &self,
        text: &str,
        base: isize,
        cache: &mut Scratch,
        ids: &mut Vec<u32>,
        spans: Option<&mut Vec<(usize, usize)>>,
    ) -> Result<(), Error> {
        let bytes = text.as_bytes();
        let Some(spans) = spans else {
            // The common case, inlined whole into the scanner's loops.
            let pieces = PieceEncoder {
                encoder: self,
                text: bytes,
                cache,
                ids,
            };
            return self.pretokenizer.split(text, pieces);
        };
        let floor = base.max(0) as usize;
        self.pretokenizer.split(text, |start, end| {
            let first = ids.len();
            self.encode_piece(bytes, start, end, cache, ids);
            let mut at = base + start as isize;
            for &id in &ids[first..] {
                let len = self.vocab.token_bytes(id).map_or(0, <[u8]>::len) as isize;
                spans.push((
                    (at.max(0) as usize).max(floor),
                    ((at + len).max(0) as usize).max(floor),
                ));
                at += len;
            }
        })
    }

    /// Appends the ids of the pretoken `text[start..end]`.
    #[inline(always)]
    fn encode_piece(
        &self,
        text: &[u8],
        start: usize,
        end: usize,
        cache: &mut Scratch,
        ids: &mut Vec<u32>,
    ) {
        let piece = &text[start..end];
        if let [byte] = piece {
            ids.push(self.vocab.byte_id(*byte));
            return;
        }
        let key = Key::within(text, start, end);
        if !key.is_ascii() {
            let first_cut = self.char_cuts.next(piece, 0).map_or(end, |cut| start + cut);
            self.encode_parts(text, start, first_cut, end, cache, ids);
            return;
        }
        self.encode_uncut(piece, &key, cache, ids);
    }

    /// Appends the ids of `text[start..end]`, a pretoken with other than
    /// ASCII in it, cut at `first_cut` (its end if it cannot be cut) and
    /// wherever else [`CharCuts`] allows, one part at a time. Short parts,
    /// uncut short pretokens among them, are kept in the part cache.
    #[inline(never)]
    fn encode_parts(
        &self,
        text: &[u8],
        start: usize,
        first_cut: usize,
        end: usize,
        cache: &mut Scratch,
        ids: &mut Vec<u32>,
    ) {
        let pretoken = &text[start..end];
        let (mut from, mut to) = (start, first_cut);
        loop {
            match &text[from..to] {
                [byte] => ids.push(self.vocab.byte_id(*byte)),
                part if part.len() <= MAX_PART_LEN => {
                    let key = pack_within(text, from, to);
                    if !cache.parts.append_to(key, part_cache::hash(key), ids) {
                        self.encode_new_part(part, key, cache, ids);
                    }
                }
                part => self.encode_uncut(part, &Key::within(text, from, to), cache, ids),
            }
            if to == end {
                return;
            }
            from = to;
            to = self
                .char_cuts
                .next(pretoken, from - start)
                .map_or(end, |cut| start + cut);
        }
    }

    /// Appends the ids of a short `part` not in the part cache, and keeps
    /// them there if they are few enough: only a part of seven bytes none of
    /// which merge has more, and merging it again costs six byte-pair
    /// lookups.
    #[cold]
    fn encode_new_part(&self, part: &[u8], key: u64, cache: &mut Scratch, ids: &mut Vec<u32>) {
        self.merges
            .apply(part, &mut cache.symbols, &mut cache.ranks, &mut cache.heap);
        append(ids, &cache.symbols);
        cache
            .parts
            .insert(key, part_cache::hash(key), &cache.symbols);
    }

    /// Appends the ids of `piece` (two bytes or more, `key` its key): a
    /// whole token, else cached, else merged and cached.
    #[inline(always)]
    fn encode_uncut(&self, piece: &[u8], key: &Key, cache: &mut Scratch, ids: &mut Vec<u32>) {
        if let Some(id) = self.whole_tokens.get(key) {
            ids.push(id);
            return;
        }
        self.encode_word(piece, key, cache, ids);
    }

    /// Appends the ids of `piece`, not a whole token: cached, else merged
    /// and cached. Kept out of the scanner's loops, which it would crowd.
    #[inline(never)]
    fn encode_word(&self, piece: &[u8], key: &Key, cache: &mut Scratch, ids: &mut Vec<u32>) {
        if cache.words.append_to(key, ids) {
            return;
        }
        self.merges
            .apply(piece, &mut cache.symbols, &mut cache.ranks, &mut cache.heap);
        append(ids, &cache.symbols);
        cache.words.insert(key, &cache.symbols);
    }

    /// The ids of `text` and each id's span in characters (see [`char_spans`]).
    pub fn encode_with_char_spans(
        &self,
        text: &str,
        specials: Specials,
    ) -> Result<(Vec<u32>, Vec<CharSpan>), Error> {
        let (mut ids, mut spans) = (Vec::new(), Vec::new());
        self.encode_into(text, specials, &mut ids, Some(&mut spans))?;
        Ok((ids, char_spans(text, &spans)))
    }

    /// Bytes of `ids`; special tokens are left out when `skip_special`.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let bytes = self.vocab.token_bytes(id).ok_or(Error::UnknownId(id))?;
            if !(skip_special && self.vocab.is_special(id)) {
                out.extend_from_slice(bytes);
            }
        }
        Ok(out)
    }
}

/// A token's place in its text in characters: `start..end`.
pub type CharSpan = (usize, usize);

/// Character offsets of byte spans in `text` (what Python's `str` indexes): a
/// span starting or ending inside a character is widened to the whole
/// character.
pub fn char_spans(text: &str, spans: &[(usize, usize)]) -> Vec<CharSpan> {
    let mut char_index = vec![0usize; text.len() + 1];
    let mut count = 0;
    for (i, c) in text.char_indices() {
        for slot in &mut char_index[i..i + c.len_utf8()] {
            *slot = count;
        }
        count += 1;
    }
    char_index[text.len()] = count;
    spans
        .iter()
        .map(|&(start, end)| {
            let end_char = if end > start {
                char_index[end - 1] + 1
            } else {
                char_index[end]
            };
            (char_index[start], end_char)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::SpecialToken;

    #[test]
    fn char_spans_widen_to_whole_characters() {
        // "a" 1 byte, "한" 3 bytes (1..4), "😀" 4 bytes (4..8), "b" at 8.
        let text = "a한😀b";
        let spans = [(0, 1), (1, 3), (3, 4), (4, 8), (8, 9), (9, 9)];
        let expected = [(0, 1), (1, 2), (1, 2), (2, 3), (3, 4), (4, 4)];
        assert_eq!(char_spans(text, &spans), expected);
    }

    fn toy_encoder() -> Encoder {
        let mut entries: Vec<(Vec<u8>, u32)> = (0..=255u8).map(|b| (vec![b], b as u32)).collect();
        for (i, token) in ["he", "hel", "hell", "hello", " w", " wo"]
            .iter()
            .enumerate()
        {
            entries.push((token.as_bytes().to_vec(), 256 + i as u32));
        }
        let merges = [
            ("h", "e"),
            ("he", "l"),
            ("hel", "l"),
            ("hell", "o"),
            (" ", "w"),
            (" w", "o"),
        ]
        .iter()
        .map(|(l, r)| (l.as_bytes().to_vec(), r.as_bytes().to_vec()))
        .collect();
        let mut mask = SpecialToken::new("<mask>", 301);
        mask.lstrip = true;
        let specials = vec![SpecialToken::new("<s>", 300), mask];
        Encoder::new(
            Vocab::new(entries, merges, specials).unwrap(),
            Pretokenizer::Gpt2,
            false,
        )
    }

    #[test]
    fn encodes_pretokens_and_specials() {
        let enc = toy_encoder();
        assert_eq!(
            enc.encode("hello world", Specials::None).unwrap(),
            vec![259, 261, b'r' as u32, b'l' as u32, b'd' as u32]
        );
        assert_eq!(
            enc.encode("<s>hello", Specials::All).unwrap(),
            vec![300, 259]
        );
        assert_eq!(
            enc.encode("<s>hello", Specials::Only(&[])).unwrap(),
            enc.encode("<s>hello", Specials::None).unwrap()
        );
        // `<mask>` absorbs the whitespace before it, `<s>` does not.
        assert_eq!(
            enc.encode("hello \t<mask> <s>", Specials::All).unwrap(),
            vec![259, 301, b' ' as u32, 300]
        );
        // Cached and uncached encodings agree.
        let first = enc.encode("hello hello", Specials::None).unwrap();
        assert_eq!(enc.encode("hello hello", Specials::None).unwrap(), first);
    }

    #[test]
    fn texts_are_cut_only_when_parts_encode_like_the_whole() {
        let enc = toy_encoder();
        assert!(enc.can_cut_texts(Specials::None));
        // "<s>" could straddle a cut, "<mask>" swallows the whitespace before it.
        assert!(!enc.can_cut_texts(Specials::All));
        assert!(!enc.can_cut_texts(Specials::Only(&[300])));
        let prefixed = Encoder::new(enc.vocab().clone(), Pretokenizer::Gpt2, true);
        assert!(!prefixed.can_cut_texts(Specials::None));
        let custom = Pretokenizer::from_pattern(r"\w+|\s+").unwrap();
        assert!(!Encoder::new(enc.vocab().clone(), custom, false).can_cut_texts(Specials::None));
    }

    #[test]
    fn spans_cover_the_text() {
        let enc = toy_encoder();
        let text = "<s>hello wé";
        let (mut ids, mut spans) = (Vec::new(), Vec::new());
        enc.encode_into(text, Specials::All, &mut ids, Some(&mut spans))
            .unwrap();
        assert_eq!(ids.len(), spans.len());
        assert_eq!(spans[0], (0, 3));
        assert_eq!(spans.last().unwrap().1, text.len());
        for pair in spans.windows(2) {
            assert_eq!(pair[0].1, pair[1].0);
        }
    }

    #[test]
    fn decode_round_trips_and_rejects_unknown_ids() {
        let enc = toy_encoder();
        let text = "<s>hello wörld";
        let ids = enc.encode(text, Specials::All).unwrap();
        assert_eq!(enc.decode(&ids, false).unwrap(), text.as_bytes());
        assert_eq!(enc.decode(&ids, true).unwrap(), "hello wörld".as_bytes());
        assert!(matches!(
            enc.decode(&[9999], false),
            Err(Error::UnknownId(9999))
        ));
    }
}
