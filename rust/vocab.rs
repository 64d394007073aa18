//! The vocabulary: token bytes <-> ids, the ranked merges, and special tokens.

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};
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
        }
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
    fn get(&self, tokens: &[Option<Box<[u8]>>], bytes: &[u8]) -> Option<u32> {
        let same = |&id: &u32| tokens[id as usize].as_deref() == Some(bytes);
        self.0.find(bytes_hash(bytes), same).copied()
    }

    /// Adds `id`, whose bytes are already in `tokens` and in no other entry.
    fn insert(&mut self, tokens: &[Option<Box<[u8]>>], id: u32) {
        let bytes_of = |id: u32| tokens[id as usize].as_deref().expect("a token's bytes");
        let hash = bytes_hash(bytes_of(id));
        self.0
            .insert_unique(hash, id, |&other| bytes_hash(bytes_of(other)));
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
    let regular = entries
        .iter()
        .map(|(bytes, id)| (crate::byte_alphabet::bytes_to_token_string(bytes), *id));
    let special = specials.iter().map(|s| (s.content.clone(), s.id));
    match regular.chain(special).find(|&(_, id)| id > limit) {
        Some((token, id)) => Err(VocabError::IdTooLarge { token, id, tokens }),
        None => Ok(()),
    }
}

/// The end-of-document tokens bbpe knows, in the order they are looked for.
pub const END_OF_DOCUMENT_TOKENS: [&str; 2] = ["</s>", "<|endoftext|>"];

#[derive(Debug, Clone)]
pub struct Vocab {
    /// Bytes of each id; `None` where the id space has a hole.
    tokens: Vec<Option<Box<[u8]>>>,
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
        let mut tokens: Vec<Option<Box<[u8]>>> = vec![None; size];
        let mut ids = TokenIds(HashTable::with_capacity(entries.len()));
        for (bytes, id) in entries {
            if let Some(first) = &tokens[id as usize] {
                return Err(VocabError::DuplicateId {
                    id,
                    first: first.to_vec(),
                    second: bytes,
                });
            }
            if ids.get(&tokens, &bytes).is_some() {
                return Err(VocabError::DuplicateToken(bytes));
            }
            tokens[id as usize] = Some(bytes.into());
            ids.insert(&tokens, id);
        }
        for special in &specials {
            let content = special.content.as_bytes();
            match &tokens[special.id as usize] {
                Some(existing) if existing.as_ref() != content => {
                    return Err(VocabError::SpecialIdClash {
                        content: special.content.clone(),
                        id: special.id,
                    })
                }
                Some(_) => {}
                None => tokens[special.id as usize] = Some(content.into()),
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
            if let Some(&first) = seen.get(&(l, r)) {
                return Err(VocabError::DuplicateMerge {
                    merge: index,
                    first,
                });
            }
            seen.insert((l, r), index);
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
        self.tokens.get(id as usize)?.as_deref()
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
        self.tokens.iter().enumerate().filter_map(|(id, bytes)| {
            let bytes = bytes.as_deref()?;
            (self.ids.get(&self.tokens, bytes) == Some(id as u32)).then_some((bytes, id as u32))
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
