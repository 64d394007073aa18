//! tiktoken's rank file: `base64(token bytes) rank` per line, where the rank
//! is both the id and the merge priority. Merges are derived from the ranks.

use super::{build_vocab, display, read_text, write_atomically, Loaded};
use crate::error::Error;
use crate::pretokenize::GPT2_PATTERN;
use crate::vocab::{MergePair, SpecialToken, TokenEntry, Vocab};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rustc_hash::FxHashMap;
use std::path::Path;

/// tiktoken's merging of `token` using only tokens ranked below `limit`;
/// returns the two parts it ends in, if it ends in two.
fn split_in_two<'a>(
    token: &'a [u8],
    ranks: &FxHashMap<&[u8], u32>,
    limit: u32,
) -> Option<(&'a [u8], &'a [u8])> {
    let mut bounds: Vec<usize> = (0..=token.len()).collect();
    loop {
        let mut best: Option<(u32, usize)> = None;
        for i in 0..bounds.len().saturating_sub(2) {
            if let Some(&rank) = ranks.get(&token[bounds[i]..bounds[i + 2]]) {
                if rank < limit && best.is_none_or(|(r, _)| rank < r) {
                    best = Some((rank, i));
                }
            }
        }
        match best {
            Some((_, i)) => {
                bounds.remove(i + 1);
            }
            None => break,
        }
    }
    (bounds.len() == 3).then(|| (&token[..bounds[1]], &token[bounds[1]..]))
}

/// Merges equivalent to tiktoken's ranks: for each multi-byte token in rank
/// order, the two lower-ranked parts tiktoken would join to make it.
fn derive_merges(entries: &[TokenEntry]) -> Result<Vec<MergePair>, u32> {
    let ranks: FxHashMap<&[u8], u32> = entries.iter().map(|(t, r)| (t.as_slice(), *r)).collect();
    let mut by_rank: Vec<&(Vec<u8>, u32)> = entries.iter().filter(|(t, _)| t.len() > 1).collect();
    by_rank.sort_by_key(|(_, r)| *r);
    by_rank
        .into_iter()
        .map(|(token, rank)| {
            split_in_two(token, &ranks, *rank)
                .map(|(l, r)| (l.to_vec(), r.to_vec()))
                .ok_or(*rank)
        })
        .collect()
}

pub fn load(path: &Path, specials: &[SpecialToken]) -> Result<Loaded, Error> {
    let file = display(path);
    let text = read_text(path)?;
    let mut entries = Vec::new();
    let mut line_of_rank = FxHashMap::default();
    for (index, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let parsed = line.split_once(' ').and_then(|(token, rank)| {
            Some((STANDARD.decode(token).ok()?, rank.parse::<u32>().ok()?))
        });
        let (token, rank) = parsed.ok_or_else(|| {
            Error::file(
                &file,
                format!("line {}", index + 1),
                format!("expected \"<base64 token> <rank>\", got {line:?}"),
            )
        })?;
        line_of_rank.insert(rank, index + 1);
        entries.push((token, rank));
    }
    let merges = derive_merges(&entries).map_err(|rank| {
        Error::file(
            &file,
            format!("line {}", line_of_rank[&rank]),
            "this token cannot be made by joining two lower-ranked tokens",
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
        vocab,
        pattern: GPT2_PATTERN.to_string(),
        add_prefix_space: false,
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
    write_atomically(path, to_text(vocab)?.as_bytes())
}
