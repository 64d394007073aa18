//! The vocabulary loaders on arbitrary files: vocab.json + merges.txt,
//! tokenizer.json and tiktoken rank files. Loading must fail with an error
//! or give a vocabulary that saves and loads back the same, whose merging
//! equals the plain merge loop, and that encodes and decodes any text; no
//! panic, and no allocation over 1 GiB (see `common`).
//!
//! The first byte picks the format; the rest is the file, and for GPT-2's
//! two files vocab.json comes first, then a NUL byte, then merges.txt.
#![no_main]

mod common;

use bbpe::formats::{gpt2, hf_json, tiktoken, Loaded};
use bbpe::encode::merge::{HeapScratch, MergeTable};
use bbpe::pretokenize::{Pretokenizer, GPT2_PATTERN};
use bbpe::{Encoder, Specials, Vocab};
use common::{LimitedAllocator, ReferenceMerges};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::LazyLock;

#[global_allocator]
static ALLOCATOR: LimitedAllocator = LimitedAllocator;

/// A directory of this process's own for the files.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("bbpe-fuzz-vocab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
});

fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = DIR.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Everything a loader read, in comparable form.
fn contents(loaded: &Loaded) -> impl PartialEq + std::fmt::Debug {
    let vocab = &loaded.vocab;
    let entries: Vec<(Vec<u8>, u32)> = vocab.entries().map(|(t, id)| (t.to_vec(), id)).collect();
    (
        entries,
        vocab.merges().to_vec(),
        vocab.specials().to_vec(),
        loaded.pattern.clone(),
        loaded.add_prefix_space,
    )
}

/// Saved in the format it came from and loaded again: `None` where saving
/// refuses (a tiktoken file holds only vocabularies whose ranks give the
/// same merges).
fn reloaded(format: u8, loaded: &Loaded) -> Option<Loaded> {
    let vocab = &loaded.vocab;
    Some(match format {
        0 => gpt2::load(
            &file("saved.json", gpt2::vocab_json(vocab).as_bytes()),
            &file("saved.txt", gpt2::merges_txt(vocab).as_bytes()),
            None,
        )
        .unwrap(),
        1 => hf_json::parse(
            &hf_json::to_json(
                vocab,
                &loaded.pattern,
                loaded.add_prefix_space,
                loaded.roberta_template,
            ),
            "saved",
        )
        .unwrap(),
        _ => {
            let text = tiktoken::to_text(vocab).ok()?;
            tiktoken::load(
                &file("saved.tiktoken", text.as_bytes()),
                vocab.specials(),
                GPT2_PATTERN,
            )
            .unwrap()
        }
    })
}

fn check_merging(vocab: &Vocab, piece: &[u8]) {
    let table = MergeTable::new(vocab);
    let (mut symbols, mut ranks, mut heap) = (Vec::new(), Vec::new(), HeapScratch::default());
    table.apply(piece, &mut symbols, &mut ranks, &mut heap);
    assert_eq!(symbols, ReferenceMerges::new(vocab).merge(piece));
}

fuzz_target!(|data: &[u8]| {
    let Some((&format, file_bytes)) = data.split_first() else {
        return;
    };
    let format = format % 3;
    let loaded = match format {
        0 => {
            let (vocab, merges) = match file_bytes.iter().position(|&b| b == 0) {
                Some(nul) => (&file_bytes[..nul], &file_bytes[nul + 1..]),
                None => (file_bytes, &b""[..]),
            };
            gpt2::load(
                &file("vocab.json", vocab),
                &file("merges.txt", merges),
                None,
            )
        }
        1 => hf_json::load(&file("tokenizer.json", file_bytes)),
        _ => tiktoken::load(&file("ranks.tiktoken", file_bytes), &[], GPT2_PATTERN),
    };
    let Ok(loaded) = loaded else {
        return;
    };
    if let Some(again) = reloaded(format, &loaded) {
        assert_eq!(contents(&again), contents(&loaded));
    }
    // Merging any bytes (the file itself, as one long piece) is the plain
    // loop's, and encoding any text decodes back to it.
    check_merging(&loaded.vocab, file_bytes);
    let text = String::from_utf8_lossy(file_bytes);
    let Ok(pretokenizer) = Pretokenizer::from_pattern(&loaded.pattern) else {
        return;
    };
    let add_prefix_space = loaded.add_prefix_space;
    let encoder = Encoder::new(loaded.vocab, pretokenizer, add_prefix_space);
    // A custom pattern may fail on the text (backtracking limit).
    if let Ok(ids) = encoder.encode(&text, Specials::None) {
        let mut expected = String::new();
        if add_prefix_space && !text.is_empty() && !text.starts_with(' ') {
            expected.push(' ');
        }
        expected.push_str(&text);
        assert_eq!(encoder.decode(&ids, false).unwrap(), expected.as_bytes());
    }
});
