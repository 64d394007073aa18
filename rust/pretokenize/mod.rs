//! Stage 1: text -> pretokens.
//!
//! The GPT-2 pattern
//! `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
//! is implemented by a hand-written scanner (no regex engine, an ASCII fast
//! path); any other pattern runs on `fancy-regex`.

mod ascii_window;
pub mod char_class;

use crate::error::Error;
use crate::pretokenize::char_class::{class_at, CharClass, ASCII_CLASS};
use ascii_window::{pretoken_ends, WIDTH};

/// The furthest the scanner goes one pretoken at a time before trying a
/// window of ASCII again.
const MAX_SKIP: usize = 4096;

/// GPT-2's pattern as published with the original encoder.
pub const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// The same pattern as tiktoken spells it.
const GPT2_PATTERN_TIKTOKEN: &str =
    r"'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// The same pattern as tiktoken's r50k_base and p50k_base encodings spell it
/// now (possessive quantifiers; a lone whitespace character is `\s`, which
/// is all `\s+` can match where `\s+(?!\S)` fails).
pub const GPT2_PATTERN_R50K: &str =
    r"'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s";

/// Where [`Pretokenizer::split`] sends each pretoken's byte range. Any
/// `FnMut(start, end)` is one; the encoder has its own, whose method is
/// always inlined into the scanner's loops (a closure is not always).
pub trait PretokenSink {
    fn pretoken(&mut self, start: usize, end: usize);
}

impl<F: FnMut(usize, usize)> PretokenSink for F {
    #[inline(always)]
    fn pretoken(&mut self, start: usize, end: usize) {
        self(start, end)
    }
}

#[derive(Debug, Clone)]
pub enum Pretokenizer {
    Gpt2,
    Pattern(Box<fancy_regex::Regex>),
}

impl Pretokenizer {
    /// The scanner for GPT-2's pattern, a regex for anything else.
    pub fn from_pattern(pattern: &str) -> Result<Self, Error> {
        if [GPT2_PATTERN, GPT2_PATTERN_TIKTOKEN, GPT2_PATTERN_R50K].contains(&pattern) {
            return Ok(Pretokenizer::Gpt2);
        }
        fancy_regex::Regex::new(pattern)
            .map(|re| Pretokenizer::Pattern(Box::new(re)))
            .map_err(|e| Error::Invalid(format!("split pattern {pattern:?}: {e}")))
    }

    pub fn pattern(&self) -> &str {
        match self {
            Pretokenizer::Gpt2 => GPT2_PATTERN,
            Pretokenizer::Pattern(re) => re.as_str(),
        }
    }

    /// Calls `emit` with the byte range of each pretoken, in order. The
    /// ranges cover `text` exactly: text a custom pattern does not match
    /// becomes a pretoken of its own rather than being dropped.
    pub fn split(&self, text: &str, mut emit: impl PretokenSink) -> Result<(), Error> {
        match self {
            Pretokenizer::Gpt2 => scan_gpt2(text.as_bytes(), &mut emit),
            Pretokenizer::Pattern(re) => {
                let mut covered = 0;
                for found in re.find_iter(text) {
                    let found = found.map_err(|e| {
                        Error::Invalid(format!("split pattern {:?} failed: {e}", re.as_str()))
                    })?;
                    if found.start() > covered {
                        emit.pretoken(covered, found.start());
                    }
                    if found.end() > found.start() {
                        emit.pretoken(found.start(), found.end());
                    }
                    covered = found.end();
                }
                if covered < text.len() {
                    emit.pretoken(covered, text.len());
                }
            }
        }
        Ok(())
    }
}

/// GPT-2's pretokens of `bytes` (valid UTF-8), a window of 64 ASCII bytes
/// at a time where it can, else one pretoken at a time.
fn scan_gpt2(bytes: &[u8], emit: &mut impl PretokenSink) {
    // Where to try a window next, and how far to skip when one decides
    // little: further each time, so that text with little ASCII (Korean,
    // say) is not tried every 64 bytes.
    let (mut start, mut next_window, mut skip) = (0, 0, WIDTH);
    while start < bytes.len() {
        if start >= next_window {
            if let Some(window) = bytes.get(start..start + WIDTH) {
                let mut ends = pretoken_ends(window.try_into().unwrap());
                let mut from = 0;
                while ends != 0 {
                    let end = ends.trailing_zeros() as usize;
                    emit.pretoken(start + from, start + end);
                    from = end;
                    ends &= ends - 1;
                }
                start += from;
                if from >= WIDTH / 2 {
                    skip = WIDTH;
                    continue;
                }
                // Non-ASCII text or a long pretoken ahead.
                next_window = start + skip;
                skip = (2 * skip).min(MAX_SKIP);
            }
        }
        let end = gpt2_pretoken_end(bytes, start);
        emit.pretoken(start, end);
        start = end;
    }
}

/// Pretokens of `text` as string slices (a convenience for tests and tools).
pub fn pretokens<'a>(pretokenizer: &Pretokenizer, text: &'a str) -> Result<Vec<&'a str>, Error> {
    let mut out = Vec::new();
    pretokenizer.split(text, |s, e| out.push(&text[s..e]))?;
    Ok(out)
}

/// The first position at or after `from` where `text` can be cut in two
/// without changing GPT-2's pretokens: an ASCII whitespace character right
/// after a non-space one. No pretoken crosses from non-space into the
/// whitespace after it, and none looks behind its start, so encoding the two
/// parts one after the other gives the ids of the whole.
pub fn gpt2_cut_at_or_after(text: &str, from: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    (from.max(1)..bytes.len()).find(|&i| {
        bytes[i] < 0x80 && ASCII_CLASS[bytes[i] as usize] == CharClass::Space && {
            // The character before: step back over UTF-8 continuation bytes.
            let mut start = i - 1;
            while bytes[start] & 0xC0 == 0x80 {
                start -= 1;
            }
            class_at(bytes, start).0 != CharClass::Space
        }
    })
}

/// Length of the contraction (`s t re ve m ll d`) after an apostrophe, if any.
#[inline]
fn contraction_len(rest: &[u8]) -> Option<usize> {
    match rest {
        [b's' | b't' | b'm' | b'd', ..] => Some(1),
        [b'r', b'e', ..] | [b'v', b'e', ..] | [b'l', b'l', ..] => Some(2),
        _ => None,
    }
}

/// End of the run of ASCII letters starting at `i`, eight bytes at a time
/// (SWAR: a word's bytes tested at once with carry-free arithmetic). Stops at
/// the first byte that is not an ASCII letter, or with fewer than eight left.
#[inline(always)]
fn ascii_letters_end(bytes: &[u8], mut i: usize) -> usize {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const fn splat(byte: u8) -> u64 {
        u64::from_le_bytes([byte; 8])
    }
    while let Some(chunk) = bytes.get(i..i + 8) {
        let word = u64::from_le_bytes(chunk.try_into().unwrap());
        // Folding case with 0x20 and dropping the top bit keeps every byte
        // at most 0x7F, so neither sum borrows or carries into its neighbour.
        let folded = (word | splat(0x20)) & splat(0x7F);
        let at_least_a = folded + splat(0x80 - b'a');
        let at_most_z = splat(0x80 + b'z') - folded;
        let letters = at_least_a & at_most_z & !word & HIGH;
        if letters != HIGH {
            return i + ((!letters & HIGH).trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i
}

/// End of the run of characters of `class` starting at `i`.
#[inline(always)]
fn run_end(bytes: &[u8], mut i: usize, class: CharClass) -> usize {
    if class == CharClass::Letter {
        i = ascii_letters_end(bytes, i);
    }
    while let Some(&byte) = bytes.get(i) {
        if byte < 0x80 {
            if ASCII_CLASS[byte as usize] != class {
                break;
            }
            i += 1;
        } else {
            let (c, len) = class_at(bytes, i);
            if c != class {
                break;
            }
            i += len;
        }
    }
    i
}

/// `\s+(?!\S)|\s+` from `start`, whose first character (`first_len` bytes)
/// is whitespace: a run followed by a non-space gives up its last character
/// (which then prefixes the next pretoken), unless that would leave it empty.
#[inline]
fn whitespace_end(bytes: &[u8], start: usize, first_len: usize) -> usize {
    let mut end = start + first_len;
    let mut last_len = first_len;
    while end < bytes.len() {
        let (c, l) = class_at(bytes, end);
        if c != CharClass::Space {
            break;
        }
        end += l;
        last_len = l;
    }
    if end < bytes.len() && end - start > last_len {
        end - last_len
    } else {
        end
    }
}

/// End of the GPT-2 pretoken that starts at `start` (a character boundary
/// of valid UTF-8, before the end). ASCII is decided without decoding.
#[inline(always)]
fn gpt2_pretoken_end(bytes: &[u8], start: usize) -> usize {
    let first = bytes[start];
    let (class, len) = if first < 0x80 {
        (ASCII_CLASS[first as usize], 1)
    } else {
        class_at(bytes, start)
    };
    match class {
        CharClass::Space => {
            // ` ?X+`: a single ASCII space joins a following run of letters,
            // digits or other characters.
            if first == b' ' && start + 1 < bytes.len() {
                let (next, next_len) = class_at(bytes, start + 1);
                if next != CharClass::Space {
                    return run_end(bytes, start + 1 + next_len, next);
                }
            }
            whitespace_end(bytes, start, len)
        }
        CharClass::Other if first == b'\'' => match contraction_len(&bytes[start + 1..]) {
            Some(contraction) => start + 1 + contraction,
            None => run_end(bytes, start + 1, class),
        },
        _ => run_end(bytes, start + len, class),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Vec<&str> {
        pretokens(&Pretokenizer::Gpt2, text).unwrap()
    }

    #[test]
    fn words_and_contractions() {
        assert_eq!(
            split("It's a great day, isn't it?"),
            ["It", "'s", " a", " great", " day", ",", " isn", "'t", " it", "?"]
        );
        assert_eq!(split("'sam 'LL 're"), ["'s", "am", " '", "LL", " '", "re"]);
    }

    #[test]
    fn whitespace_gives_up_its_last_character() {
        assert_eq!(split("a  b"), ["a", " ", " b"]);
        assert_eq!(split("a \n\nb"), ["a", " \n", "\n", "b"]);
        assert_eq!(split("a\tb"), ["a", "\t", "b"]);
        assert_eq!(split("end   "), ["end", "   "]);
        assert_eq!(
            split("a\u{3000}\u{3000}b"),
            ["a", "\u{3000}", "\u{3000}", "b"]
        );
    }

    #[test]
    fn scripts_and_digits() {
        assert_eq!(split("안녕하세요 세계!"), ["안녕하세요", " 세계", "!"]);
        assert_eq!(split("x123 ٣٤"), ["x", "123", " ٣٤"]);
        assert_eq!(split("e\u{301}t\u{e9}"), ["e", "\u{301}", "t\u{e9}"]);
    }

    #[test]
    fn ascii_letter_runs_stop_at_the_first_other_byte() {
        let text = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        assert_eq!(ascii_letters_end(text.as_bytes(), 0), text.len() / 8 * 8);
        // Every byte value in every position of a word: the neighbours of
        // 'a'..'z' and 'A'..'Z' ('@', '[', '`', '{'), digits, non-ASCII.
        for stop in 0..=255u8 {
            for at in 0..8 {
                let mut bytes = *b"xxxxxxxxxxxxxxxx";
                bytes[at] = stop;
                let expected = if stop.is_ascii_alphabetic() { 16 } else { at };
                assert_eq!(ascii_letters_end(&bytes, 0), expected, "{stop:#x} at {at}");
            }
        }
    }

    #[test]
    fn cut_texts_keep_their_pretokens() {
        let texts = [
            "Hello world.\n\nA  second   paragraph\t here, \u{3000} and\u{3000}more ",
            "x\u{85} y \u{a0}\nz",
            "é \u{301} 한국어 \n\n  ٣٤ 'll",
        ];
        for text in texts {
            let whole = split(text);
            let mut cuts = 0;
            for from in 0..text.len() {
                let Some(cut) = gpt2_cut_at_or_after(text, from) else {
                    continue;
                };
                assert!(cut >= from && text.is_char_boundary(cut));
                let mut parts = split(&text[..cut]);
                parts.extend(split(&text[cut..]));
                assert_eq!(parts, whole, "{text:?} cut at {cut}");
                cuts += 1;
            }
            assert!(cuts > 0);
        }
        assert_eq!(gpt2_cut_at_or_after("no-space-at-all", 0), None);
        assert_eq!(gpt2_cut_at_or_after("   leading", 0), None);
    }

    #[test]
    fn custom_pattern_keeps_unmatched_text() {
        let p = Pretokenizer::from_pattern(r"\d+").unwrap();
        assert_eq!(pretokens(&p, "ab12cd").unwrap(), ["ab", "12", "cd"]);
        assert!(matches!(
            Pretokenizer::from_pattern(GPT2_PATTERN_TIKTOKEN).unwrap(),
            Pretokenizer::Gpt2
        ));
    }

    #[test]
    fn bad_pattern_is_an_error() {
        let err = Pretokenizer::from_pattern("(unclosed").unwrap_err();
        assert!(err.to_string().contains("(unclosed"));
    }
}
