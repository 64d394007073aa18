//! The hand-written GPT-2 scanner against a real regex engine (fancy-regex,
//! the engine tiktoken uses) on generated Unicode strings.

use bbpe::pretokenize::{
    gpt2_cut_at_or_after, pretokens, Pretokenizer, GPT2_PATTERN, GPT2_PATTERN_R50K,
};

/// Characters chosen to hit every branch of the pattern: apostrophes and
/// contraction letters, every kind of space, digits and letters of several
/// scripts, combining marks, emoji, controls.
const POOL: &[char] = &[
    'a',
    'Z',
    's',
    't',
    'r',
    'e',
    'v',
    'm',
    'l',
    'd',
    'S',
    '\'',
    '\'',
    ' ',
    ' ',
    ' ',
    '\t',
    '\n',
    '\r',
    '\u{0B}',
    '\u{0C}',
    '\u{1C}',
    '\u{1F}',
    '\u{85}',
    '\u{A0}',
    '\u{1680}',
    '\u{2000}',
    '\u{200B}',
    '\u{2028}',
    '\u{2029}',
    '\u{202F}',
    '\u{3000}',
    '\u{FEFF}',
    '0',
    '9',
    '٣',
    '१',
    '²',
    'Ⅻ',
    '〇',
    '한',
    '국',
    'ㄱ',
    '漢',
    'ア',
    'é',
    '\u{301}',
    '\u{5D0}',
    'ب',
    '😀',
    '👍',
    '\u{1F3FD}',
    '\u{200D}',
    '.',
    ',',
    '!',
    '?',
    '-',
    '"',
    '\u{2019}',
    '_',
    '$',
    '\u{0}',
    '\u{7F}',
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn char(&mut self) -> char {
        if self.next().is_multiple_of(8) {
            // Any scalar value, from any plane.
            loop {
                if let Some(c) = char::from_u32((self.next() % 0x11_0000) as u32) {
                    return c;
                }
            }
        }
        POOL[(self.next() % POOL.len() as u64) as usize]
    }
}

/// The pieces the real regex engine finds.
fn regex_pretokens<'a>(regex: &fancy_regex::Regex, text: &'a str) -> Vec<&'a str> {
    regex.find_iter(text).map(|m| m.unwrap().as_str()).collect()
}

#[test]
fn scanner_equals_regex_on_generated_text() {
    let regex = fancy_regex::Regex::new(GPT2_PATTERN).unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in 0..200_000 {
        let len = (rng.next() % 24) as usize;
        let text: String = (0..len).map(|_| rng.char()).collect();
        let expected = regex_pretokens(&regex, &text);
        let got = pretokens(&Pretokenizer::Gpt2, &text).unwrap();
        assert_eq!(got, expected, "case {case}: {text:?}");
    }
}

/// tiktoken's r50k spelling, which loads as GPT-2's pattern, finds the same
/// pieces.
#[test]
fn tiktoken_r50k_spelling_equals_gpt2_pattern() {
    let gpt2 = fancy_regex::Regex::new(GPT2_PATTERN).unwrap();
    let r50k = fancy_regex::Regex::new(GPT2_PATTERN_R50K).unwrap();
    assert!(matches!(
        Pretokenizer::from_pattern(GPT2_PATTERN_R50K),
        Ok(Pretokenizer::Gpt2)
    ));
    let mut rng = Rng(0x0BAD_5EED_1234_5678);
    for case in 0..100_000 {
        let len = (rng.next() % 24) as usize;
        let text: String = (0..len).map(|_| rng.char()).collect();
        let expected = regex_pretokens(&gpt2, &text);
        assert_eq!(
            regex_pretokens(&r50k, &text),
            expected,
            "case {case}: {text:?}"
        );
    }
}

/// Mostly ASCII, and long enough that the scanner reads whole windows of
/// 64 bytes: every ASCII byte, with the pattern's own characters (letters,
/// digits, apostrophes, contraction letters, spaces) most often, and now
/// and then a character from the pool above.
#[test]
fn scanner_equals_regex_on_long_ascii_text() {
    const FAVOURED: &[u8] = b"aZ09'''stmdrevl    \n\t.,";
    let regex = fancy_regex::Regex::new(GPT2_PATTERN).unwrap();
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    for case in 0..40_000 {
        let len = 60 + (rng.next() % 200) as usize;
        let non_ascii_odds = [0, 0, 50, 400][case % 4];
        let text: String = (0..len)
            .map(|_| match rng.next() % 1000 {
                r if r < non_ascii_odds / 20 => rng.char(),
                r if r < 600 => FAVOURED[(rng.next() % FAVOURED.len() as u64) as usize] as char,
                _ => (rng.next() % 128) as u8 as char,
            })
            .collect();
        let expected = regex_pretokens(&regex, &text);
        let got = pretokens(&Pretokenizer::Gpt2, &text).unwrap();
        assert_eq!(got, expected, "case {case}: {text:?}");
    }
}

#[test]
fn scanner_equals_regex_on_long_runs() {
    let regex = fancy_regex::Regex::new(GPT2_PATTERN).unwrap();
    for text in [
        "a".repeat(5000),
        " ".repeat(5000) + "x",
        "\n".repeat(3000) + " " + &"9".repeat(3000),
        "한국어 ".repeat(1000),
        "!?".repeat(2000) + "'s",
    ] {
        let expected = regex_pretokens(&regex, &text);
        assert_eq!(pretokens(&Pretokenizer::Gpt2, &text).unwrap(), expected);
    }
}

#[test]
fn cutting_where_allowed_keeps_the_regex_pretokens() {
    let regex = fancy_regex::Regex::new(GPT2_PATTERN).unwrap();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut cuts = 0;
    for case in 0..50_000 {
        let len = (rng.next() % 24) as usize;
        let text: String = (0..len).map(|_| rng.char()).collect();
        let from = (rng.next() % (text.len() as u64 + 1)) as usize;
        let Some(cut) = gpt2_cut_at_or_after(&text, from) else {
            continue;
        };
        cuts += 1;
        let whole = regex_pretokens(&regex, &text);
        let mut parts = pretokens(&Pretokenizer::Gpt2, &text[..cut]).unwrap();
        parts.extend(pretokens(&Pretokenizer::Gpt2, &text[cut..]).unwrap());
        assert_eq!(parts, whole, "case {case}: {text:?} cut at {cut}");
    }
    assert!(cuts > 5_000, "only {cuts} cuts were tried");
}
