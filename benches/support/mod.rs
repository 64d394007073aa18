//! What the Rust benches share: argument parsing, the GPT-2 encoder.

/// The numbers of a comma-separated option value, such as `--threads 1,2,4`.
pub fn numbers(value: Option<String>, option: &str) -> Vec<usize> {
    let value = value.unwrap_or_else(|| panic!("{option} takes a value such as 1,2,4"));
    value
        .split(',')
        .map(|n| {
            n.parse()
                .unwrap_or_else(|_| panic!("{option}: {n:?} is not a number"))
        })
        .collect()
}

/// The number an option such as `--repeats 3` is given.
pub fn number(value: Option<String>, option: &str) -> usize {
    match numbers(value, option)[..] {
        [n] => n,
        _ => panic!("{option} takes one number"),
    }
}

/// GPT-2's encoder from the bundled vocabulary (not every bench encodes).
#[allow(dead_code)]
pub fn gpt2_encoder() -> bbpe::Encoder {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/bbpe/vocabularies/gpt2");
    let loaded = bbpe::formats::gpt2::load(&dir.join("vocab.json"), &dir.join("merges.txt"), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let pretokenizer =
        bbpe::Pretokenizer::from_pattern(&loaded.pattern).unwrap_or_else(|e| panic!("{e}"));
    bbpe::Encoder::new(loaded.vocab, pretokenizer, loaded.add_prefix_space)
}
