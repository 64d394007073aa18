//! The sentence splitter on arbitrary UTF-8: its spans are non-empty,
//! ordered, on character boundaries, start and end on non-whitespace, and
//! only whitespace lies outside them; the pieces `--split-sentences` encodes
//! one by one concatenate to the document and keep its GPT-2 pretokens.
#![no_main]

mod common;

use bbpe::fuzzing::sentence_pieces;
use bbpe::pretokenize::{pretokens, Pretokenizer};
use bbpe::shards::sentences::sentence_spans;
use common::LimitedAllocator;
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOCATOR: LimitedAllocator = LimitedAllocator;

fn is_blank(text: &str) -> bool {
    text.chars().all(char::is_whitespace)
}

fuzz_target!(|text: &str| {
    let spans = sentence_spans(text);
    let mut covered = 0;
    for span in &spans {
        assert!(
            span.start >= covered && span.start < span.end,
            "{text:?}: {spans:?}"
        );
        assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
        let sentence = &text[span.clone()];
        assert_eq!(sentence.trim(), sentence, "{text:?}: {spans:?}");
        assert!(is_blank(&text[covered..span.start]), "{text:?}: {spans:?}");
        covered = span.end;
    }
    assert!(is_blank(&text[covered..]), "{text:?}: {spans:?}");

    let pieces = sentence_pieces(&Pretokenizer::Gpt2, text).unwrap();
    assert_eq!(pieces.concat(), text);
    assert!(pieces.len() <= spans.len().max(1));
    let whole = pretokens(&Pretokenizer::Gpt2, text).unwrap();
    let mut split = Vec::new();
    for piece in &pieces {
        split.extend(pretokens(&Pretokenizer::Gpt2, piece).unwrap());
    }
    assert_eq!(split, whole, "{text:?}: {pieces:?}");
});
