//! GPT-2 / RoBERTa `vocab.json` (token string -> id, in the byte alphabet)
//! and `merges.txt` (one merge per line, in rank order).

use super::{
    build_vocab, display, has_roberta_specials, read_text, Loaded, GPT2_SPECIALS, ROBERTA_SPECIALS,
};
use crate::byte_alphabet::{bytes_to_token_string, token_string_to_bytes};
use crate::error::Error;
use crate::pretokenize::GPT2_PATTERN;
use crate::system::publish::write_durably;
use crate::vocab::{MergePair, SpecialToken, TokenEntry, Vocab};
use serde::de::{Deserializer, MapAccess, Visitor};
use std::fmt;
use std::path::Path;

/// The entries of a JSON object in file order, duplicates kept (serde_json's
/// own maps would silently keep only the last).
struct Entries(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object of token -> id")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// Token string -> id entries of a vocab.json-style object, checked.
pub(crate) fn parse_vocab_object<'a>(
    entries: impl ExactSizeIterator<Item = (&'a String, &'a serde_json::Value)>,
    file: &str,
    specials: &[String],
) -> Result<(Vec<TokenEntry>, Vec<SpecialToken>), Error> {
    let mut tokens = Vec::with_capacity(entries.len());
    let mut found_specials = Vec::new();
    let mut seen = rustc_hash::FxHashSet::default();
    seen.reserve(entries.len());
    for (token, value) in entries {
        let at = || format!("entry {token:?}");
        let id = value
            .as_u64()
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| {
                Error::file(
                    file,
                    at(),
                    format!("id must be an integer in 0..2^32, got {value}"),
                )
            })?;
        if !seen.insert(token.as_str()) {
            return Err(Error::file(file, at(), "the token appears twice"));
        }
        let special = specials.contains(token);
        if special {
            found_specials.push(SpecialToken::new(token.clone(), id));
        }
        let bytes = match token_string_to_bytes(token) {
            Ok(bytes) => bytes,
            Err(_) if special => continue,
            Err(c) => {
                return Err(Error::file(
                    file,
                    at(),
                    format!(
                        "character {c:?} is not in GPT-2's byte alphabet; \
                         declare the token as a special token if it is one"
                    ),
                ))
            }
        };
        tokens.push((bytes, id));
    }
    Ok((tokens, found_specials))
}

/// Merges from merges.txt text, with the line number each came from.
fn parse_merges(text: &str, file: &str) -> Result<(Vec<MergePair>, Vec<usize>), Error> {
    let mut merges = Vec::new();
    let mut lines = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if (number == 1 && line.starts_with("#version")) || line.trim().is_empty() {
            continue;
        }
        let at = || format!("line {number}");
        let parts = line
            .split_once(' ')
            .filter(|(_, right)| !right.contains(' '));
        let Some((left, right)) = parts else {
            return Err(Error::file(
                file,
                at(),
                format!("expected two tokens separated by one space, got {line:?}"),
            ));
        };
        let decode = |part: &str| {
            token_string_to_bytes(part).map_err(|c| {
                Error::file(
                    file,
                    at(),
                    format!("character {c:?} is not in GPT-2's byte alphabet"),
                )
            })
        };
        merges.push((decode(left)?, decode(right)?));
        lines.push(number);
    }
    Ok((merges, lines))
}

/// Loads vocab.json + merges.txt. `specials` names the special tokens; when
/// `None`, a vocabulary with `<s>` gets RoBERTa's specials, any other GPT-2's
/// (those of them that vocab.json has).
pub fn load(
    vocab_path: &Path,
    merges_path: &Path,
    specials: Option<&[String]>,
) -> Result<Loaded, Error> {
    let vocab_file = display(vocab_path);
    let merges_file = display(merges_path);
    let vocab_text = read_text(vocab_path)?;
    let mut deserializer = serde_json::Deserializer::from_str(&vocab_text);
    let entries: Entries = serde::Deserialize::deserialize(&mut deserializer)
        .and_then(|entries: Entries| deserializer.end().map(|_| entries))
        .map_err(|e| Error::file(&vocab_file, "", format!("not a valid vocabulary: {e}")))?;
    let specials: Vec<String> = match specials {
        Some(given) => given.to_vec(),
        None if entries.0.iter().any(|(token, _)| token == "<s>") => {
            ROBERTA_SPECIALS.iter().map(|s| s.to_string()).collect()
        }
        None => GPT2_SPECIALS.iter().map(|s| s.to_string()).collect(),
    };
    let (tokens, found_specials) = parse_vocab_object(
        entries.0.iter().map(|(token, id)| (token, id)),
        &vocab_file,
        &specials,
    )?;

    let (merges, merge_lines) = parse_merges(&read_text(merges_path)?, &merges_file)?;
    let vocab = build_vocab(
        tokens,
        merges,
        found_specials,
        &vocab_file,
        &merges_file,
        |merge| format!("line {}", merge_lines[merge]),
    )?;
    check_complete(&vocab, &vocab_file, &merges_file)?;
    Ok(Loaded {
        pattern: GPT2_PATTERN.to_string(),
        add_prefix_space: false,
        roberta_template: has_roberta_specials(&vocab),
        vocab,
    })
}

/// Tokens outside BPE that a real vocabulary may carry (roberta-base has
/// fairseq's three `madeupword` fillers).
const TOLERATED_UNREACHABLE: usize = 8;

/// In a BPE vocabulary every multi-byte token comes from a merge; many tokens
/// that none produces mean the merges file is truncated or from another
/// vocabulary.
pub(crate) fn check_complete(
    vocab: &Vocab,
    vocab_file: &str,
    merges_file: &str,
) -> Result<(), Error> {
    let unreachable = vocab.unreachable_tokens();
    if unreachable.len() > TOLERATED_UNREACHABLE {
        let first = unreachable[0];
        let token = bytes_to_token_string(vocab.token_bytes(first).unwrap_or_default());
        return Err(Error::file(
            merges_file,
            format!("after line {}", vocab.merges().len()),
            format!(
                "{} tokens of {vocab_file} are produced by no merge (the first is {token:?}, id {first}); \
                 the merges file looks truncated or belongs to another vocabulary",
                unreachable.len()
            ),
        ));
    }
    Ok(())
}

/// The vocab.json text: token strings in id order (special tokens as written).
pub fn vocab_json(vocab: &Vocab) -> String {
    serde_json::to_string(&vocab.token_strings()).expect("a map of strings to numbers serialises")
}

/// The merges.txt text, with the usual version header.
pub fn merges_txt(vocab: &Vocab) -> String {
    let mut out = String::from("#version: 0.2\n");
    for &(left, right, _) in vocab.merges() {
        for (i, id) in [left, right].into_iter().enumerate() {
            if i == 1 {
                out.push(' ');
            }
            out.push_str(&bytes_to_token_string(
                vocab.token_bytes(id).unwrap_or_default(),
            ));
        }
        out.push('\n');
    }
    out
}

pub fn save(vocab: &Vocab, vocab_path: &Path, merges_path: &Path) -> Result<(), Error> {
    write_durably(vocab_path, vocab_json(vocab).as_bytes())?;
    write_durably(merges_path, merges_txt(vocab).as_bytes())
}
