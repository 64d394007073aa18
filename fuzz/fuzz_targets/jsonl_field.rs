//! The JSONL field extractor against serde_json building the whole value.
//! Where serde_json reads the line as an object, the extractor gives its
//! "text" string (the last of repeated keys), or says the field is missing
//! or not a string; where serde_json refuses the line, the extractor refuses
//! it too, unless the only fault is lone surrogate escapes, which become
//! U+FFFD (and it says so). It never panics.
#![no_main]

mod common;

use bbpe::fuzzing::jsonl_text_field;
use common::LimitedAllocator;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[global_allocator]
static ALLOCATOR: LimitedAllocator = LimitedAllocator;

/// The line with each lone surrogate escape spelled `\ufffd`: what the
/// extractor promises to read such a line as. Written independently of
/// the extractor's own rewriting: escapes are read left to right.
fn surrogates_replaced(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let unit = |i: usize| -> Option<u32> {
        if chars.get(i) != Some(&'\\') || chars.get(i + 1) != Some(&'u') {
            return None;
        }
        let hex: String = chars.get(i + 2..i + 6)?.iter().collect();
        u32::from_str_radix(&hex, 16)
            .ok()
            .filter(|_| hex.len() == 4)
    };
    let (mut out, mut i) = (String::new(), 0);
    while i < chars.len() {
        match unit(i) {
            Some(0xD800..=0xDBFF) if matches!(unit(i + 6), Some(0xDC00..=0xDFFF)) => {
                out.extend(&chars[i..i + 12]);
                i += 12;
            }
            Some(0xD800..=0xDFFF) => {
                out.push_str("\\ufffd");
                i += 6;
            }
            _ if chars[i] == '\\' => {
                out.extend(&chars[i..(i + 2).min(chars.len())]);
                i += 2;
            }
            _ => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// What the extractor should say about `line`, as serde_json reads it:
/// the text, or `Err(true)` for a line with no string field, `Err(false)`
/// for one that is not JSON; `None` where serde_json refuses only a number
/// out of f64's range, which the extractor, like Python, need not parse.
fn expected(line: &str) -> Option<Result<String, bool>> {
    Some(match serde_json::from_str::<Value>(line) {
        Ok(Value::Object(map)) => match map.get("text") {
            Some(Value::String(text)) => Ok(text.clone()),
            _ => Err(true),
        },
        Ok(_) => Err(true),
        Err(e) if e.to_string().starts_with("number out of range") => return None,
        Err(_) => Err(false),
    })
}

fuzz_target!(|line: &str| {
    let mut scratch = String::new();
    let got = jsonl_text_field(line, "text", &mut scratch).map(|(t, r)| (t.to_string(), r));
    let fixed = surrogates_replaced(line);
    let Some(expected_here) = expected(line) else {
        return;
    };
    match (expected_here, got) {
        (Ok(text), Ok((got, replaced))) => {
            assert_eq!(got, text, "{line:?}");
            assert!(!replaced, "{line:?}");
        }
        (Err(true), Err(message)) => {
            assert!(
                !message.starts_with("not valid JSON"),
                "{line:?}: {message}"
            );
        }
        (Err(false), Err(message)) => {
            // Refused as not JSON, unless the line only has lone surrogates
            // and without them it is JSON without a string "text" field.
            let without = if fixed != line {
                expected(&fixed)
            } else {
                Some(Err(false))
            };
            let Some(without) = without else {
                return;
            };
            match without {
                Err(true) => assert!(!message.starts_with("not valid JSON"), "{line:?}"),
                Err(false) => assert!(message.starts_with("not valid JSON"), "{line:?}: {message}"),
                Ok(text) => panic!("{line:?}: refused ({message}) but reads as {text:?}"),
            }
        }
        (Err(false), Ok((got, _))) => {
            // Only lone surrogates may make serde_json refuse a line the
            // extractor reads, and then as U+FFFD (lone surrogates in other
            // fields are skipped unread).
            assert_ne!(fixed, line, "{line:?} read as {got:?}");
            if let Some(without) = expected(&fixed) {
                assert_eq!(without, Ok(got), "{line:?}");
            }
        }
        (Err(true), Ok((got, _))) => panic!("{line:?}: no string field, read as {got:?}"),
        (Ok(text), Err(message)) => panic!("{line:?}: {text:?} refused: {message}"),
    }
});
