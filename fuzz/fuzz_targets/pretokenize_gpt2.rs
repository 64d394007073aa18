//! The hand-written GPT-2 scanner against a real regex engine (fancy-regex,
//! with GPT-2's published pattern) on arbitrary UTF-8; and cutting a text
//! where `gpt2_cut_at_or_after` allows keeps its pretokens.
#![no_main]

use bbpe::pretokenize::{gpt2_cut_at_or_after, pretokens, Pretokenizer, GPT2_PATTERN};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static REGEX: LazyLock<fancy_regex::Regex> =
    LazyLock::new(|| fancy_regex::Regex::new(GPT2_PATTERN).unwrap());

fuzz_target!(|text: &str| {
    // The engine's own limits (backtracking) are no finding of ours.
    let Ok(expected) = REGEX
        .find_iter(text)
        .map(|m| m.map(|m| m.as_str()))
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    let got = pretokens(&Pretokenizer::Gpt2, text).unwrap();
    assert_eq!(got, expected, "{text:?}");

    for from in [0, text.len() / 3, text.len() / 2] {
        let Some(cut) = gpt2_cut_at_or_after(text, from) else {
            continue;
        };
        assert!(cut >= from && cut < text.len() && text.is_char_boundary(cut));
        let mut parts = pretokens(&Pretokenizer::Gpt2, &text[..cut]).unwrap();
        parts.extend(pretokens(&Pretokenizer::Gpt2, &text[cut..]).unwrap());
        assert_eq!(parts, expected, "{text:?} cut at {cut}");
    }
});
