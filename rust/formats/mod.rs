//! Vocabulary files other tools read and write: GPT-2's `vocab.json` +
//! `merges.txt`, Hugging Face's `tokenizer.json`, and tiktoken's rank file.
//! Every loading error names the file and the line or entry at fault.

pub mod gpt2;
pub mod hf_json;
pub mod tiktoken;

use crate::error::Error;
use crate::vocab::{MergePair, SpecialToken, TokenEntry, Vocab, VocabError};

use std::path::Path;

/// RoBERTa's special tokens, in fairseq's order.
pub const ROBERTA_SPECIALS: [&str; 5] = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"];
/// GPT-2's one special token.
pub const GPT2_SPECIALS: [&str; 1] = ["<|endoftext|>"];

/// A vocabulary as loaded from files, with the settings the files carry.
#[derive(Debug)]
pub struct Loaded {
    pub vocab: Vocab,
    pub pattern: String,
    pub add_prefix_space: bool,
    /// Whether inputs are wrapped as `<s> A </s></s> B </s>`: a tokenizer.json
    /// says so in its post-processor, other files by having `<s>` and `</s>`.
    pub roberta_template: bool,
}

/// The template rule for files that do not record one: RoBERTa's whenever
/// the vocabulary has `<s>` and `</s>`.
pub fn has_roberta_specials(vocab: &Vocab) -> bool {
    vocab.special_id("<s>").is_some() && vocab.special_id("</s>").is_some()
}

pub(crate) fn display(path: &Path) -> String {
    path.display().to_string()
}

pub(crate) fn read_text(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(&display(path), e))?;
    String::from_utf8(bytes).map_err(|e| {
        let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        Error::file(&display(path), format!("line {line}"), "invalid UTF-8")
    })
}

/// Builds the vocabulary, reporting a bad merge at its place in `merges_file`
/// (`merge_place(i)` says where merge `i` was read; it is asked only on an
/// error, so loading formats no place for the merges that are fine) and
/// anything else against `vocab_file`.
pub(crate) fn build_vocab(
    entries: Vec<TokenEntry>,
    merges: Vec<MergePair>,
    specials: Vec<SpecialToken>,
    vocab_file: &str,
    merges_file: &str,
    merge_place: impl Fn(usize) -> String,
) -> Result<Vocab, Error> {
    Vocab::new(entries, merges, specials).map_err(|e| match &e {
        VocabError::MergePartUnknown { merge, .. }
        | VocabError::MergeResultUnknown { merge, .. }
        | VocabError::DuplicateMerge { merge, .. } => {
            Error::file(merges_file, merge_place(*merge), e.to_string())
        }
        _ => Error::file(vocab_file, "", e.to_string()),
    })
}
