//! The vocabulary: token bytes <-> ids, the ranked merges, and special tokens.

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::collections::hash_map::Entry as MapEntry;
use std::hash::BuildHasher;

/// A regular token: its bytes and its id.
pub type TokenEntry = (Vec<u8>, u32);
/// A merge as the bytes of its left and right parts.
pub type MergePair = (Vec<u8>, Vec<u8>);

/// A token matched in text before pre-tokenization (`<s>`, `<mask>`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialToken {
    pub content: String,
    pub id: u32,
    /// Absorb the whitespace before (`lstrip`) or after (`rstrip`) the token
    /// where it occurs in text, as Hugging Face's added tokens can
    /// (RoBERTa's `<mask>` has `lstrip`, so `"a <mask>"` is two tokens).
    pub lstrip: bool,
    pub rstrip: bool,
}

impl SpecialToken {
    /// A special token with RoBERTa's stripping: `<mask>` absorbs the
    /// whitespace before it, as in roberta-base's own tokenizer.json, every
    /// other token nothing. Trained vocabularies and the files that cannot
    /// record stripping (vocab.json, tiktoken's) all get it, so a vocabulary
    /// encodes alike however it was made or loaded; tokenizer.json, which
    /// records it, overrides it.
    pub fn new(content: impl Into<String>, id: u32) -> Self {
        let content = content.into();
        SpecialToken {
            lstrip: content == "<mask>",
            rstrip: false,
            content,
            id,
        }
    }
}

/// Why a set of tokens and merges does not make a vocabulary. Loaders turn
/// the entry indices into file lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VocabError {
    DuplicateId {
        id: u32,
        first: Vec<u8>,
        second: Vec<u8>,
    },
    DuplicateToken(Vec<u8>),
    MissingByte(u8),
    MergePartUnknown {
        merge: usize,
        part: Vec<u8>,
    },
    MergeResultUnknown {
        merge: usize,
        result: Vec<u8>,
    },
    DuplicateMerge {
        merge: usize,
        first: usize,
    },
    SpecialIdClash {
        content: String,
        id: u32,
    },
    /// An id far beyond the number of tokens: one slot is kept per id, so
    /// a corrupt id of 4 billion would otherwise allocate tens of GiB.
    IdTooLarge {
        token: String,
        id: u32,
        tokens: usize,
    },
    /// Tokens whose bytes add up to more than 4 GiB.
    TooManyBytes(usize),
}

/// Ids above this are refused whatever the vocabulary's size (NumPy and
/// Megatron's shards hold ids as int32).
pub const MAX_ID: u32 = i32::MAX as u32;

/// The largest id a vocabulary of `tokens` entries (special tokens included)
/// may use: room for holes in the id space as large as the tokens
/// themselves (o200k's special tokens sit past a gap), not for billions.
pub fn largest_plausible_id(tokens: usize) -> u32 {
    let room = tokens.saturating_mul(2).saturating_add(1024);
    u32::try_from(room).unwrap_or(u32::MAX).min(MAX_ID)
}

impl std::fmt::Display for VocabError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |b: &[u8]| format!("{:?}", crate::byte_alphabet::bytes_to_token_string(b));
        match self {
            VocabError::DuplicateId { id, first, second } => write!(
                f,
                "id {id} is given to both {} and {}",
                show(first),
                show(second)
            ),
            VocabError::DuplicateToken(t) => write!(f, "token {} appears twice", show(t)),
            VocabError::MissingByte(b) => write!(
                f,
                "byte 0x{b:02X} ({}) has no token: a byte-level vocabulary needs all 256",
                show(&[*b])
            ),
            VocabError::MergePartUnknown { part, .. } => {
                write!(f, "merge part {} is not in the vocabulary", show(part))
            }
            VocabError::MergeResultUnknown { result, .. } => {
                write!(f, "merge result {} is not in the vocabulary", show(result))
            }
            VocabError::DuplicateMerge { first, .. } => {
                write!(f, "repeats merge number {}", first + 1)
            }
            VocabError::SpecialIdClash { content, id } => write!(
                f,
                "special token {content:?} has id {id}, which a different token already has"
            ),
            VocabError::IdTooLarge { token, id, tokens } => write!(
                f,
                "token {token:?} has id {id}, beyond any id {tokens} tokens can use (at most {}); \
                 the file is corrupt",
                largest_plausible_id(*tokens)
            ),
            VocabError::TooManyBytes(bytes) => write!(
                f,
                "the tokens' bytes add up to {bytes}, more than the 4 GiB a vocabulary may hold"
            ),
        }
    }
}

/// Each id's bytes, all end to end in one buffer, so that the lookups made
/// while loading (three per merge) compare bytes lying close together: with a
/// box per token, a quarter of the time loading GPT-2 went to those lookups.
#[derive(Debug, Clone, Default)]
struct TokenBytes {
    bytes: Vec<u8>,
    /// Start and length in `bytes` of each id's; [`HOLE`] where the id space
    /// has a hole.
    spans: Vec<(u32, u32)>,
}

const HOLE: u32 = u32::MAX;

impl TokenBytes {
    /// Room for ids `0..size`, all holes, and `bytes` bytes of tokens (which
    /// must fit offsets of 32 bits).
    fn new(size: usize, bytes: usize) -> Self {
        TokenBytes {
            bytes: Vec::with_capacity(bytes),
            spans: vec![(0, HOLE); size],
        }
    }

    fn get(&self, id: u32) -> Option<&[u8]> {
        let &(start, len) = self.spans.get(id as usize)?;
        (len != HOLE).then(|| &self.bytes[start as usize..][..len as usize])
    }

    /// Gives the hole `id` its bytes.
    fn set(&mut self, id: u32, token: &[u8]) {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(token);
        self.spans[id as usize] = (start, token.len() as u32);
    }

    fn len(&self) -> usize {
        self.spans.len()
    }
}

/// Regular tokens' ids, found by their bytes. The table holds ids only and
/// hashes the bytes that [`Vocab`] keeps per id, so no token is stored (or
/// allocated) twice.
#[derive(Debug, Clone, Default)]
struct TokenIds(HashTable<u32>);

fn bytes_hash(bytes: &[u8]) -> u64 {
    FxBuildHasher.hash_one(bytes)
}

impl TokenIds {
    fn get(&self, tokens: &TokenBytes, bytes: &[u8]) -> Option<u32> {
        let same = |&id: &u32| tokens.get(id) == Some(bytes);
        self.0.find(bytes_hash(bytes), same).copied()
    }

    /// Adds `id` for `bytes` (not yet in `tokens`) unless another id has
    /// those bytes: one probe for both the check and the insert.
    fn insert_new(&mut self, tokens: &TokenBytes, bytes: &[u8], id: u32) -> bool {
        let bytes_of = |id: u32| tokens.get(id).expect("a token's bytes");
        let same = |&other: &u32| bytes_of(other) == bytes;
        match self.0.entry(bytes_hash(bytes), same, |&other| {
            bytes_hash(bytes_of(other))
        }) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                slot.insert(id);
                true
            }
        }
    }
}

/// Refuses an id too large for the number of tokens before any table is
/// sized by it.
fn check_ids_plausible(
    entries: &[TokenEntry],
    specials: &[SpecialToken],
) -> Result<(), VocabError> {
    let tokens = entries.len() + specials.len();
    let limit = largest_plausible_id(tokens);
    // Spelled only when refused: spelling (and allocating) every token was
    // 3-5% of loading GPT-2.
    let (token, id) = match entries.iter().find(|(_, id)| *id > limit) {
        Some((bytes, id)) => (crate::byte_alphabet::bytes_to_token_string(bytes), *id),
        None => match specials.iter().find(|s| s.id > limit) {
            Some(special) => (special.content.clone(), special.id),
            None => return Ok(()),
        },
    };
    Err(VocabError::IdTooLarge { token, id, tokens })
}

/// The end-of-document tokens bbpe knows, in the order they are looked for.
pub const END_OF_DOCUMENT_TOKENS: [&str; 2] = ["</s>", "<|endoftext|>"];

#[derive(Debug, Clone)]
pub struct Vocab {
    tokens: TokenBytes,
    ids: TokenIds,
    /// Merges in rank order, as (left, right, result) ids.
    merges: Vec<(u32, u32, u32)>,
    specials: Vec<SpecialToken>,
    byte_ids: [u32; 256],
}

impl Vocab {
    /// Builds a vocabulary from `(bytes, id)` entries, merges as byte pairs in
    /// rank order, and special tokens. A special token's content may already
    /// be an entry (RoBERTa's `<s>` is in vocab.json) as long as the ids agree.
    pub fn new(
        entries: Vec<TokenEntry>,
        merges: Vec<MergePair>,
        specials: Vec<SpecialToken>,
    ) -> Result<Self, VocabError> {
        check_ids_plausible(&entries, &specials)?;
        let size = entries
            .iter()
            .map(|(_, id)| *id as usize + 1)
            .chain(specials.iter().map(|s| s.id as usize + 1))
            .max()
            .unwrap_or(0);
        let bytes = entries.iter().map(|(bytes, _)| bytes.len()).sum::<usize>()
            + specials.iter().map(|s| s.content.len()).sum::<usize>();
        if u32::try_from(bytes).is_err() {
            return Err(VocabError::TooManyBytes(bytes));
        }
        let mut tokens = TokenBytes::new(size, bytes);
        let mut ids = TokenIds(HashTable::with_capacity(entries.len()));
        for (bytes, id) in entries {
            if let Some(first) = tokens.get(id) {
                return Err(VocabError::DuplicateId {
                    id,
                    first: first.to_vec(),
                    second: bytes,
                });
            }
            if !ids.insert_new(&tokens, &bytes, id) {
                return Err(VocabError::DuplicateToken(bytes));
            }
            tokens.set(id, &bytes);
        }
        for special in &specials {
            let content = special.content.as_bytes();
            match tokens.get(special.id) {
                Some(existing) if existing != content => {
                    return Err(VocabError::SpecialIdClash {
                        content: special.content.clone(),
                        id: special.id,
                    })
                }
                Some(_) => {}
                None => tokens.set(special.id, content),
            }
        }

        let mut byte_ids = [0u32; 256];
        for byte in 0..=255u8 {
            byte_ids[byte as usize] = ids
                .get(&tokens, &[byte])
                .ok_or(VocabError::MissingByte(byte))?;
        }

        let mut ranked = Vec::with_capacity(merges.len());
        let mut seen: FxHashMap<(u32, u32), usize> = FxHashMap::default();
        seen.reserve(merges.len());
        let mut joined = Vec::new();
        for (index, (left, right)) in merges.into_iter().enumerate() {
            let id_of = |part: &[u8]| {
                ids.get(&tokens, part)
                    .ok_or_else(|| VocabError::MergePartUnknown {
                        merge: index,
                        part: part.to_vec(),
                    })
            };
            let (l, r) = (id_of(&left)?, id_of(&right)?);
            joined.clear();
            joined.extend_from_slice(&left);
            joined.extend_from_slice(&right);
            let result =
                ids.get(&tokens, &joined)
                    .ok_or_else(|| VocabError::MergeResultUnknown {
                        merge: index,
                        result: joined.clone(),
                    })?;
            match seen.entry((l, r)) {
                MapEntry::Occupied(first) => {
                    return Err(VocabError::DuplicateMerge {
                        merge: index,
                        first: *first.get(),
                    })
                }
                MapEntry::Vacant(slot) => {
                    slot.insert(index);
                }
            }
            ranked.push((l, r, result));
        }

        Ok(Vocab {
            tokens,
            ids,
            merges: ranked,
            specials,
            byte_ids,
        })
    }

    /// One past the largest id.
    pub fn size(&self) -> usize {
        self.tokens.len()
    }

    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.tokens.get(id)
    }

    /// The id of a token given by its bytes (special tokens by their content).
    pub fn id_of(&self, bytes: &[u8]) -> Option<u32> {
        self.ids.get(&self.tokens, bytes).or_else(|| {
            self.specials
                .iter()
                .find(|s| s.content.as_bytes() == bytes)
                .map(|s| s.id)
        })
    }

    /// How vocabulary files spell a token: in GPT-2's byte alphabet
    /// (`"Ġthe"`), special tokens as written (`"<mask>"`).
    pub fn token_string(&self, id: u32) -> Option<String> {
        let bytes = self.token_bytes(id)?;
        Some(if self.is_special(id) {
            String::from_utf8_lossy(bytes).into_owned()
        } else {
            crate::byte_alphabet::bytes_to_token_string(bytes)
        })
    }

    /// Token string -> id for every token, in id order.
    pub fn token_strings(&self) -> serde_json::Map<String, serde_json::Value> {
        (0..self.size() as u32)
            .filter_map(|id| Some((self.token_string(id)?, serde_json::Value::from(id))))
            .collect()
    }

    pub fn byte_id(&self, byte: u8) -> u32 {
        self.byte_ids[byte as usize]
    }

    pub fn merges(&self) -> &[(u32, u32, u32)] {
        &self.merges
    }

    pub fn specials(&self) -> &[SpecialToken] {
        &self.specials
    }

    pub fn is_special(&self, id: u32) -> bool {
        self.specials.iter().any(|s| s.id == id)
    }

    /// For every id, whether its token starts a word and whether it ends one,
    /// from its bytes: a leading space starts a word, a newline anywhere starts
    /// and ends one (the masked-LM masker's whole words and spans). Special
    /// tokens and holes in the id space have neither flag: they are not text
    /// (the masker makes each special token a word of its own).
    pub fn word_boundaries(&self) -> (Vec<bool>, Vec<bool>) {
        (0..self.size() as u32)
            .map(|id| match self.token_bytes(id) {
                Some(bytes) if !self.is_special(id) => {
                    let newline = bytes.contains(&b'\n');
                    (bytes.first() == Some(&b' ') || newline, newline)
                }
                _ => (false, false),
            })
            .unzip()
    }

    pub fn special_id(&self, content: &str) -> Option<u32> {
        self.specials
            .iter()
            .find(|s| s.content == content)
            .map(|s| s.id)
    }

    /// The token that ends a document: RoBERTa's `</s>`, else GPT-2's
    /// `<|endoftext|>` (special or not); `None` where there is neither.
    pub fn end_of_document_id(&self) -> Option<u32> {
        END_OF_DOCUMENT_TOKENS.iter().find_map(|token| {
            self.special_id(token)
                .or_else(|| self.id_of(token.as_bytes()))
        })
    }

    /// Regular entries `(bytes, id)` in id order (special tokens excluded
    /// unless they are also regular entries).
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], u32)> + '_ {
        (0..self.tokens.len() as u32).filter_map(|id| {
            let bytes = self.tokens.get(id)?;
            (self.ids.get(&self.tokens, bytes) == Some(id)).then_some((bytes, id))
        })
    }

    /// Multi-byte regular tokens that no merge produces. In a vocabulary
    /// trained by BPE there are none; a truncated merges file leaves some.
    pub fn unreachable_tokens(&self) -> Vec<u32> {
        let mut produced = vec![false; self.tokens.len()];
        for &(_, _, result) in &self.merges {
            produced[result as usize] = true;
        }
        self.entries()
            .filter(|&(bytes, id)| {
                bytes.len() > 1 && !produced[id as usize] && !self.is_special(id)
            })
            .map(|(_, id)| id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn byte_entries() -> Vec<(Vec<u8>, u32)> {
        (0..=255u8).map(|b| (vec![b], b as u32)).collect()
    }

    #[test]
    fn builds_and_looks_up() {
        let mut entries = byte_entries();
        entries.push((b"ab".to_vec(), 256));
        let specials = vec![SpecialToken::new("<s>", 257)];
        let vocab = Vocab::new(entries, vec![(b"a".to_vec(), b"b".to_vec())], specials).unwrap();
        assert_eq!(vocab.size(), 258);
        assert_eq!(vocab.id_of(b"ab"), Some(256));
        assert_eq!(vocab.id_of(b"<s>"), Some(257));
        assert_eq!(vocab.token_bytes(257), Some(b"<s>".as_slice()));
        assert_eq!(vocab.merges(), &[(97, 98, 256)]);
        assert!(vocab.unreachable_tokens().is_empty());
    }

    #[test]
    fn the_end_of_document_token_is_robertas_else_gpt2s() {
        let with = |specials: &[(&str, u32)]| {
            let specials = specials.iter().map(|&(c, id)| SpecialToken::new(c, id));
            Vocab::new(byte_entries(), vec![], specials.collect()).unwrap()
        };
        let both = with(&[("<|endoftext|>", 256), ("</s>", 257)]);
        assert_eq!(both.end_of_document_id(), Some(257));
        assert_eq!(
            with(&[("<|endoftext|>", 256)]).end_of_document_id(),
            Some(256)
        );
        assert_eq!(with(&[("<s>", 256)]).end_of_document_id(), None);
        // An ordinary token spelled so counts too, as the shard writer always took it.
        let mut entries = byte_entries();
        entries.push((b"</s>".to_vec(), 256));
        let plain = Vocab::new(entries, vec![], vec![]).unwrap();
        assert_eq!(plain.end_of_document_id(), Some(256));
    }

    #[test]
    fn rejects_inconsistent_parts() {
        let mut entries = byte_entries();
        entries.push((b"ab".to_vec(), 97));
        assert!(matches!(
            Vocab::new(entries, vec![], vec![]),
            Err(VocabError::DuplicateId { id: 97, .. })
        ));
        let mut entries = byte_entries();
        entries.extend([(b"ab".to_vec(), 256), (b"ab".to_vec(), 257)]);
        assert_eq!(
            Vocab::new(entries, vec![], vec![]).unwrap_err(),
            VocabError::DuplicateToken(b"ab".to_vec())
        );
        let merge = vec![(b"a".to_vec(), b"b".to_vec())];
        assert!(matches!(
            Vocab::new(byte_entries(), merge, vec![]),
            Err(VocabError::MergeResultUnknown { merge: 0, .. })
        ));
        let missing: Vec<_> = byte_entries().into_iter().skip(1).collect();
        assert_eq!(
            Vocab::new(missing, vec![], vec![]).unwrap_err(),
            VocabError::MissingByte(0)
        );
    }

    #[test]
    fn word_boundaries_follow_spaces_and_newlines() {
        let mut entries = byte_entries();
        let words: [&[u8]; 4] = [b" a", b"a ", b"a\nb", b"\n "];
        for (k, word) in words.iter().enumerate() {
            entries.push((word.to_vec(), 256 + k as u32));
        }
        // A special token is not text, even one spelled with a space or newline.
        let specials = vec![SpecialToken::new(" <s>\n", 261)];
        let vocab = Vocab::new(entries, vec![], specials).unwrap();
        let (starts, ends) = vocab.word_boundaries();
        assert_eq!(starts.len(), 262);
        let flags = |id: usize| (starts[id], ends[id]);
        assert_eq!(flags(b' ' as usize), (true, false));
        assert_eq!(flags(b'\n' as usize), (true, true));
        assert_eq!(flags(b'a' as usize), (false, false));
        assert_eq!(flags(256), (true, false)); // " a"
        assert_eq!(flags(257), (false, false)); // "a ": the space is not leading
        assert_eq!(flags(258), (true, true)); // "a\nb"
        assert_eq!(flags(259), (true, true)); // "\n "
        assert_eq!(flags(260), (false, false)); // a hole in the id space
        assert_eq!(flags(261), (false, false)); // the special token
    }

    #[test]
    fn each_ids_bytes_and_the_holes_between_them_are_kept() {
        let mut entries = byte_entries();
        entries.push((b"ab".to_vec(), 300));
        let specials = vec![SpecialToken::new("<s>", 302)];
        let vocab = Vocab::new(entries, vec![], specials).unwrap();
        assert_eq!(vocab.size(), 303);
        for byte in 0..=255u8 {
            assert_eq!(
                vocab.token_bytes(vocab.byte_id(byte)),
                Some([byte].as_slice())
            );
        }
        assert_eq!(vocab.token_bytes(256), None);
        assert_eq!(vocab.token_bytes(299), None);
        assert_eq!(vocab.token_bytes(300), Some(b"ab".as_slice()));
        assert_eq!(vocab.token_bytes(301), None);
        assert_eq!(vocab.token_bytes(302), Some(b"<s>".as_slice()));
        assert_eq!(vocab.token_bytes(303), None);
        assert_eq!(vocab.id_of(b"ab"), Some(300));
        assert_eq!(vocab.id_of(b"<s>"), Some(302));
        assert_eq!(vocab.entries().count(), 257);
    }

    /// Would allocate 64 GiB (one slot per id) if the id were trusted.
    #[test]
    fn refuses_ids_the_entries_cannot_justify() {
        let mut entries = byte_entries();
        entries.push((b"ab".to_vec(), 4_000_000_000));
        let error = Vocab::new(entries, vec![], vec![]).unwrap_err();
        assert!(matches!(
            &error,
            VocabError::IdTooLarge { id: 4_000_000_000, token, tokens: 257 } if token == "ab"
        ));
        assert!(error.to_string().contains("\"ab\""));
        let specials = vec![SpecialToken::new("<s>", 3_000_000_000)];
        assert!(matches!(
            Vocab::new(byte_entries(), vec![], specials),
            Err(VocabError::IdTooLarge {
                id: 3_000_000_000,
                ..
            })
        ));
        // A gap before the special tokens, as o200k has, is fine.
        let specials = vec![SpecialToken::new("<|end|>", 256 + 300)];
        assert!(Vocab::new(byte_entries(), vec![], specials).is_ok());
    }
}
