//! Encoding with the bundled GPT-2 vocabulary against a plain merge loop
//! over fancy-regex's pretokens; the byte spans of the ids; and
//! decode(encode(text)) == text, with special tokens cut out or not.
#![no_main]

mod common;

use bbpe::formats::gpt2;
use bbpe::pretokenize::{Pretokenizer, GPT2_PATTERN};
use bbpe::{Encoder, Specials};
use common::{LimitedAllocator, ReferenceMerges};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::LazyLock;

#[global_allocator]
static ALLOCATOR: LimitedAllocator = LimitedAllocator;

const ENDOFTEXT: &str = "<|endoftext|>";

struct Fixture {
    encoder: Encoder,
    reference: ReferenceMerges,
    regex: fancy_regex::Regex,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../python/bbpe/vocabularies/gpt2");
    let loaded = gpt2::load(&dir.join("vocab.json"), &dir.join("merges.txt"), None).unwrap();
    let reference = ReferenceMerges::new(&loaded.vocab);
    Fixture {
        encoder: Encoder::new(loaded.vocab, Pretokenizer::Gpt2, false),
        reference,
        regex: fancy_regex::Regex::new(GPT2_PATTERN).unwrap(),
    }
});

impl Fixture {
    /// The ids of text without special tokens, the plain way; `None` where
    /// the regex engine gives up (backtracking limit).
    fn reference_ids(&self, text: &str) -> Option<Vec<u32>> {
        let mut ids = Vec::new();
        for found in self.regex.find_iter(text) {
            ids.extend(self.reference.merge(found.ok()?.as_str().as_bytes()));
        }
        Some(ids)
    }
}

fuzz_target!(|text: &str| {
    let f = &*FIXTURE;
    let Some(expected) = f.reference_ids(text) else {
        return;
    };
    let mut ids = Vec::new();
    let mut spans = Vec::new();
    f.encoder
        .encode_into(text, Specials::None, &mut ids, Some(&mut spans))
        .unwrap();
    assert_eq!(ids, expected, "{text:?}");
    assert_eq!(f.encoder.encode(text, Specials::None).unwrap(), ids);
    assert_eq!(f.encoder.decode(&ids, false).unwrap(), text.as_bytes());

    // Each id's span holds its bytes, and the spans tile the text.
    assert_eq!(spans.len(), ids.len());
    let mut at = 0;
    for (&id, &(start, end)) in ids.iter().zip(&spans) {
        assert_eq!(start, at, "{text:?}");
        let token = f.encoder.vocab().token_bytes(id).unwrap();
        assert_eq!(&text.as_bytes()[start..end], token, "{text:?}");
        at = end;
    }
    assert_eq!(at, text.len());

    // With special tokens recognised: the text between them encodes alone.
    let endoftext = f.encoder.vocab().special_id(ENDOFTEXT).unwrap();
    let mut expected = Vec::new();
    for (i, segment) in text.split(ENDOFTEXT).enumerate() {
        if i > 0 {
            expected.push(endoftext);
        }
        let Some(segment_ids) = f.reference_ids(segment) else {
            return;
        };
        expected.extend(segment_ids);
    }
    let ids = f.encoder.encode(text, Specials::All).unwrap();
    assert_eq!(ids, expected, "{text:?}");
    assert_eq!(f.encoder.decode(&ids, false).unwrap(), text.as_bytes());
});
