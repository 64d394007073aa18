//! Text → sentences, for `--split-sentences` (a sequence per sentence, as
//! RoBERTa's SENTENCE-PAIR / SEGMENT-PAIR inputs need). Deterministic,
//! linear-time rules for English and Korean that behave reasonably on other
//! scripts; no regex, no dictionary beyond a short abbreviation list.
//!
//! A sentence's range starts at its first non-whitespace character and ends
//! right after its last one; whitespace between sentences belongs to none.
//!
//! # Where sentences end
//!
//! - **Line breaks** (`\n`, `\r`, VT, FF, NEL, U+2028, U+2029) always end a
//!   sentence: corpora hold one paragraph or one sentence per line, and a
//!   sentence never spans a blank line.
//! - **Terminators**: a run of `.` `?` `!` `…` `‼` `⁇` `⁈` `⁉`, other scripts'
//!   marks (`؟` `۔` `।` `॥` `։` `።` `፧` `။`) or CJK `。` `！` `？` `｡` `．`,
//!   together with the closing quotes and brackets right after it
//!   (`"` `'` `”` `’` `»` `)` `]` `」` `』` `》` `）` …; a French spaced ` »`
//!   too). Ambiguous quotes (`"` `'` `“` `‘` `«` `‹`) count as closing only
//!   when no letter or digit follows them directly, so `。"다음` leaves the
//!   `"` to the next sentence. What the run ends on decides what must follow:
//!   - CJK `。！？｡．`: anything; no whitespace needed (CJK text uses none).
//!     A fullwidth `．` between digits is a decimal point.
//!   - `?` `!` and other scripts' marks: whitespace, then anything, except a
//!     lowercase letter right after closing quotes (`"Stop!" he said.`).
//!   - An ellipsis (`…`, or two or more `.`): whitespace, then a sentence
//!     start. *Decision*: a lowercase word after an ellipsis continues the
//!     sentence ("I thought… maybe not."), as after a full stop.
//!   - A single `.`: whitespace, then a sentence start, and the word before
//!     the dot must not be one of the exceptions below.
//! - **A sentence start** is an uppercase or titlecase letter, a letter of a
//!   caseless script (Hangul, Han, kana, Arabic, Hebrew, Thai, …), a digit,
//!   or an opening quote or bracket (`"` `“` `(` `「` `«` `¿` …). A
//!   lowercase letter after `.` continues the sentence ("etc. and more"), and
//!   so does other punctuation or a symbol.
//! - **Words before `.` that do not end a sentence** (the word is the run of
//!   letters, digits and dots before the `.`):
//!   - Abbreviations, case-insensitive: titles (Mr, Mrs, Ms, Mx, Dr, Prof, Sr,
//!     Jr, St, Mt, Rev, Hon, Capt, Col, Lt, Sgt, Gen, Gov, Sen, Rep, Messrs),
//!     Latin (vs, cf, al, viz, approx), companies (Inc, Ltd, Co, Corp, Bros)
//!     and months (Jan … Dec, Sept; not May).
//!   - Numbering abbreviations (No, Nos, Vol, Vols, p, pp, Fig, Figs, Eq,
//!     Eqs, Ch, Sec, Art, Op) only before a number. *Decision*: "No. 5"
//!     continues but "The answer is no. We left." ends.
//!   - *Decision*: `etc.` is no exception: it ends a sentence before a
//!     sentence start ("…, etc. The store") and continues before lowercase
//!     ("etc. and more"), like any word.
//!   - Dotted abbreviations: two or more parts of one or two letters joined
//!     by dots (e.g., i.e., U.S., U.S.A., a.m., p.m., Ph.D.). They are taken
//!     to continue even at a real sentence end ("in the U.S. The") — the
//!     usual trade-off.
//!   - A single uppercase letter: initials ("J. K. Rowling", "U. S."). Single
//!     caseless letters are not initials, so Korean "네. 알겠습니다." splits.
//!   - Numbers: a number before `.` then a digit is a numeric sequence
//!     (Korean dates "2020. 7. 15.", "1. 2. 3."); a 1–2 digit number after
//!     "digits. " ends such a sequence ("2020. 7. 15. 발표"); decimals like
//!     "3.14" have no space and never split.
//!   - List numbers. *Decision*: a number (`1`, `2.3`) that starts a
//!     sentence is a list marker and stays with the text after it
//!     ("1. 서론", "2.3. Results"), not a sentence of its own.
//! - Korean needs nothing special: `다.` `요.` `니다.` `까?` are ordinary
//!   terminators and the next word is caseless, so it starts a sentence.
//! - A text without terminators is one sentence per line; whitespace-only
//!   text has none.
//!
//! Every decision looks at a bounded neighbourhood of the terminator (the
//! word before it is read back at most 16 characters; the spaces after it
//! are read a few times at most), so splitting is linear in the text's length and
//! skips most letters by their first byte.

use crate::pretokenize::char_class::{class_of, CharClass};
use std::ops::Range;

/// Byte ranges of the sentences of `text`, in order. Each range starts at a sentence's first non-whitespace character and ends right after its last character (its final punctuation and any closing quotes/brackets); whitespace between sentences belongs to no range. Ranges are non-empty, ordered, non-overlapping, on char boundaries; a text with only whitespace has none.
pub fn sentence_spans(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    // First non-whitespace character of the sentence being read.
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if PLAIN_LEAD[b as usize] {
            // Letters, digits and most punctuation are the bulk of any text:
            // skip them by their first byte without decoding.
            start.get_or_insert(i);
            i += utf8_len(b);
            while i < bytes.len() && PLAIN_LEAD[bytes[i] as usize] {
                i += utf8_len(bytes[i]);
            }
            continue;
        }
        if b == b' ' {
            i += 1;
            continue;
        }
        let Some(c) = char_at(text, i) else { break };
        if is_line_break(c) {
            close_sentence(text, &mut spans, start.take(), i);
            i += c.len_utf8();
            continue;
        }
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let sentence_start = *start.get_or_insert(i);
        if terminator_kind(c).is_none() {
            i += c.len_utf8();
            continue;
        }
        let (run_end, kind) = scan_terminators(text, i);
        let (end, closed) = skip_closers(text, run_end);
        let run = Run {
            start: i,
            end: run_end,
            kind,
            closed,
        };
        if ends_sentence(text, sentence_start, &run, end) {
            spans.push(sentence_start..end);
            start = None;
        }
        i = end;
    }
    close_sentence(text, &mut spans, start, bytes.len());
    spans
}

/// The longest word (letters, digits, inner dots) read back before a `.`:
/// longer words are never abbreviations, and the bound keeps the scan linear
/// on text like "a.a.a.a…".
const MAX_WORD_CHARS: usize = 16;

/// Bytes that never start whitespace or a terminator: every byte but ASCII
/// whitespace, `.` `?` `!`, and the lead bytes of the blocks holding non-ASCII
/// whitespace and terminators (U+0080–00BF, U+0580–05BF, U+0600–063F,
/// U+06C0–06FF, U+0800–3FFF, U+F000–FFFF). Hangul syllables, Han and most
/// other letters are skipped on this byte alone.
static PLAIN_LEAD: [bool; 256] = {
    let mut plain = [true; 256];
    let special: &[u8] = b"\t\n\x0B\x0C\r .?!\xC2\xD6\xD8\xDB\xE0\xE1\xE2\xE3\xEF";
    let mut k = 0;
    while k < special.len() {
        plain[special[k] as usize] = false;
        k += 1;
    }
    plain
};

/// The length of the UTF-8 character whose first byte is `lead`.
fn utf8_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0x80..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// What a run of terminators asks of the text after it, weakest first: a run
/// takes the strongest kind among its characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A single `.`: may be an abbreviation, an initial or a number.
    FullStop,
    /// `…` or `..`: trails off as often mid-sentence as at its end.
    Ellipsis,
    /// `?`, `!` and other scripts' sentence marks.
    Strong,
    /// `。！？`: CJK text puts no space after them.
    Cjk,
}

/// A run of terminators (`start..end`) and whether closing quotes or brackets
/// followed it.
struct Run {
    start: usize,
    end: usize,
    kind: Kind,
    closed: bool,
}

fn char_at(text: &str, i: usize) -> Option<char> {
    text.get(i..).and_then(|rest| rest.chars().next())
}

fn char_before(text: &str, i: usize) -> Option<char> {
    text.get(..i).and_then(|head| head.chars().next_back())
}

/// Pushes the sentence that began at `start` (if any) and ends before `end`,
/// without its trailing whitespace.
fn close_sentence(text: &str, spans: &mut Vec<Range<usize>>, start: Option<usize>, end: usize) {
    if let Some(start) = start {
        // `start` is a non-whitespace character, so the range is never empty.
        let trimmed = text[start..end].trim_end().len();
        spans.push(start..start + trimmed);
    }
}

/// Line breaks end sentences: corpora put a paragraph or a sentence per line.
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\u{0B}' | '\u{0C}' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Whitespace within a line (space, tab, no-break and ideographic spaces, …).
fn is_horizontal_space(c: char) -> bool {
    c.is_whitespace() && !is_line_break(c)
}

/// `\p{L}`, from the tokenizer's table (std's `is_alphabetic` is a slow
/// search outside ASCII, and this runs for every sentence).
fn is_letter(c: char) -> bool {
    class_of(c) == CharClass::Letter
}

/// `\p{N}`: decimal digits of any script, and other numerals.
fn is_digit(c: char) -> bool {
    class_of(c) == CharClass::Number
}

fn is_alphanumeric(c: char) -> bool {
    matches!(class_of(c), CharClass::Letter | CharClass::Number)
}

/// The first position at or after `i` that is not horizontal whitespace.
fn skip_spaces(text: &str, mut i: usize) -> usize {
    let bytes = text.as_bytes();
    // One space is the usual gap between sentences.
    while bytes.get(i) == Some(&b' ') {
        i += 1;
    }
    while let Some(c) = char_at(text, i) {
        if !is_horizontal_space(c) {
            break;
        }
        i += c.len_utf8();
    }
    i
}

fn terminator_kind(c: char) -> Option<Kind> {
    match c {
        '.' => Some(Kind::FullStop),
        '…' | '⋯' => Some(Kind::Ellipsis),
        // ASCII, double marks, Arabic question mark, Urdu full stop,
        // Devanagari dandas, Armenian full stop, Ethiopic full stop and
        // question mark, Myanmar section mark.
        '?' | '!' | '‼' | '⁇' | '⁈' | '⁉' | '؟' | '۔' | '।' | '॥' | '։' | '።' | '፧' | '။' => {
            Some(Kind::Strong)
        }
        // Ideographic, fullwidth and halfwidth marks.
        '。' | '！' | '？' | '｡' | '．' => Some(Kind::Cjk),
        _ => None,
    }
}

/// The end of the run of terminators starting at `i` and the run's kind;
/// `..` and longer runs of dots are an ellipsis.
fn scan_terminators(text: &str, i: usize) -> (usize, Kind) {
    let mut end = i;
    let mut kind = Kind::FullStop;
    let mut dots = 0usize;
    for c in text[i..].chars() {
        let Some(k) = terminator_kind(c) else { break };
        dots += usize::from(c == '.');
        kind = kind.max(k);
        end += c.len_utf8();
    }
    if kind == Kind::FullStop && dots > 1 {
        kind = Kind::Ellipsis;
    }
    (end, kind)
}

/// Quotes and brackets that only close: after a terminator they belong to
/// its sentence.
fn is_closer(c: char) -> bool {
    matches!(
        c,
        ')' | ']'
            | '}'
            | '»'
            | '›'
            | '”'
            | '’'
            | '」'
            | '』'
            | '》'
            | '〉'
            | '】'
            | '〕'
            | '〗'
            | '〙'
            | '〛'
            | '）'
            | '］'
            | '｝'
            | '｣'
            | '〞'
            | '〟'
            | '⟩'
    )
}

/// Quotes that open in one convention and close in another (`"`, German
/// „…“, Danish »…«): closing after a terminator unless text follows at once.
fn is_ambiguous_quote(c: char) -> bool {
    matches!(c, '"' | '\'' | '“' | '‘' | '«' | '‹' | '＂' | '＇')
}

/// Quotes and brackets that can open a sentence.
fn is_opener(c: char) -> bool {
    is_ambiguous_quote(c)
        || matches!(
            c,
            '(' | '['
                | '{'
                | '„'
                | '‚'
                | '»'
                | '›'
                | '¿'
                | '¡'
                | '「'
                | '『'
                | '《'
                | '〈'
                | '【'
                | '〔'
                | '〖'
                | '〘'
                | '〚'
                | '（'
                | '［'
                | '｛'
                | '｢'
                | '〝'
                | '⟨'
        )
}

fn followed_by_alphanumeric(text: &str, i: usize) -> bool {
    char_at(text, i).is_some_and(is_alphanumeric)
}

/// The end of the closing quotes and brackets after a terminator run ending
/// at `i`, and whether there were any.
fn skip_closers(text: &str, mut i: usize) -> (usize, bool) {
    let start = i;
    while let Some(c) = char_at(text, i) {
        let after = i + c.len_utf8();
        if is_closer(c) || (is_ambiguous_quote(c) && !followed_by_alphanumeric(text, after)) {
            i = after;
        } else if let Some(end) = french_closing_quote(text, i) {
            i = end;
        } else {
            break;
        }
    }
    (i, i > start)
}

/// French sets closing guillemets off with a space ("« Oui. » Puis"); a
/// spaced `»` that opens instead (German "»Komm") has a letter right after.
fn french_closing_quote(text: &str, i: usize) -> Option<usize> {
    let quote = skip_spaces(text, i);
    if quote == i {
        return None;
    }
    let c = char_at(text, quote).filter(|&c| c == '»' || c == '›')?;
    let after = quote + c.len_utf8();
    (!followed_by_alphanumeric(text, after)).then_some(after)
}

/// Whether the terminator `run`, with its closers up to `end`, ends the
/// sentence that began at `sentence_start`.
fn ends_sentence(text: &str, sentence_start: usize, run: &Run, end: usize) -> bool {
    let next_start = skip_spaces(text, end);
    let Some(next) = char_at(text, next_start) else {
        return true;
    };
    if is_line_break(next) {
        return true;
    }
    let spaced = next_start > end;
    match run.kind {
        Kind::Cjk => !is_fullwidth_decimal_point(text, run),
        // "3.14", "e.g.,", "Yahoo!Mail": a terminator needs a space after it.
        _ if !spaced => false,
        Kind::Strong => !(run.closed && next.is_lowercase()),
        Kind::Ellipsis => can_start_sentence(next),
        Kind::FullStop => {
            can_start_sentence(next)
                && !dot_continues_sentence(text, sentence_start, run.start, next)
        }
    }
}

/// "３．１４": a lone fullwidth full stop between digits is a decimal point.
fn is_fullwidth_decimal_point(text: &str, run: &Run) -> bool {
    &text[run.start..run.end] == "．"
        && char_before(text, run.start).is_some_and(is_digit)
        && char_at(text, run.end).is_some_and(is_digit)
}

/// What may begin a sentence after a full stop or an ellipsis: anything but a
/// lowercase letter, punctuation or a symbol.
fn can_start_sentence(c: char) -> bool {
    (is_letter(c) && !c.is_lowercase()) || is_digit(c) || is_opener(c)
}

/// Whether the word before the `.` at `dot` makes it something other than a
/// full stop; `next` is the first character after the following space.
fn dot_continues_sentence(text: &str, sentence_start: usize, dot: usize, next: char) -> bool {
    let Some(word_start) = word_before(text, dot) else {
        return false;
    };
    let word = &text[word_start..dot];
    if word.is_empty() {
        return false;
    }
    (is_number(word) && (word_start == sentence_start || is_digit(next)))
        || ends_numeric_sequence(text, word_start, word)
        || is_initial(word)
        || is_dotted_abbreviation(word)
        || is_abbreviation(word)
        || (is_numbering_abbreviation(word) && is_digit(next))
}

/// The start of the word (letters, digits and inner dots) ending at `dot`,
/// or `None` if it is longer than [`MAX_WORD_CHARS`].
fn word_before(text: &str, dot: usize) -> Option<usize> {
    let mut start = dot;
    let mut chars = text[..dot].chars().rev();
    for _ in 0..=MAX_WORD_CHARS {
        match chars.next() {
            Some(c) if is_alphanumeric(c) || c == '.' => start -= c.len_utf8(),
            _ => {
                // Leading dots belong to an ellipsis before the word ("...Mr").
                let word = text[start..dot].trim_start_matches('.');
                return Some(dot - word.len());
            }
        }
    }
    None
}

/// Digits, possibly with inner dots ("1", "2.3", "2020"); decimals and list
/// numbers.
fn is_number(word: &str) -> bool {
    word.starts_with(is_digit) && word.chars().all(|c| is_digit(c) || c == '.')
}

/// "2020. 7. 15. 발표": a one- or two-digit number after "digits. " is the
/// last part of a date or numbered sequence.
fn ends_numeric_sequence(text: &str, word_start: usize, word: &str) -> bool {
    if word.len() > 2 || !word.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let mut before = text[..word_start].chars().rev();
    let mut spaces = 0;
    let mut c = before.next();
    // A few spaces at most: the check stays constant-time.
    while c.is_some_and(is_horizontal_space) && spaces < 4 {
        spaces += 1;
        c = before.next();
    }
    spaces > 0 && c == Some('.') && before.next().is_some_and(|c| c.is_ascii_digit())
}

/// "J. K. Rowling", "U. S.": a single uppercase letter is an initial.
/// Caseless letters are not (Korean "네." is a whole sentence).
fn is_initial(word: &str) -> bool {
    let mut chars = word.chars();
    matches!((chars.next(), chars.next()), (Some(c), None) if c.is_uppercase())
}

/// "e.g", "i.e", "U.S.A", "a.m", "Ph.D": parts of one or two letters joined
/// by dots. Longer parts ("example.com", "node.js") are words.
fn is_dotted_abbreviation(word: &str) -> bool {
    word.contains('.')
        && word.split('.').all(|part| {
            let letters = part.chars().count();
            (1..=2).contains(&letters) && part.chars().all(is_letter)
        })
}

/// Abbreviations that are followed by more of the sentence (a name, a date,
/// the rest of a citation), matched case-insensitively. `etc` is not here:
/// it ends sentences more often than it precedes a capital.
#[rustfmt::skip]
const ABBREVIATIONS: &[&str] = &[
    // Titles and ranks.
    "mr", "mrs", "ms", "mx", "dr", "prof", "sr", "jr", "st", "mt", "rev", "hon", "capt", "col",
    "lt", "sgt", "gen", "gov", "sen", "rep", "messrs",
    // Latin.
    "vs", "cf", "al", "viz", "approx",
    // Companies.
    "inc", "ltd", "co", "corp", "bros",
    // Months ("May" is a word).
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
];

/// Abbreviations that precede a number ("No. 5", "pp. 12", "Fig. 3"); before
/// anything else they are ordinary words ("The answer is no. We left.").
const NUMBERING_ABBREVIATIONS: &[&str] = &[
    "no", "nos", "vol", "vols", "p", "pp", "fig", "figs", "eq", "eqs", "ch", "sec", "art", "op",
];

fn is_abbreviation(word: &str) -> bool {
    ABBREVIATIONS.iter().any(|a| a.eq_ignore_ascii_case(word))
}

fn is_numbering_abbreviation(word: &str) -> bool {
    NUMBERING_ABBREVIATIONS
        .iter()
        .any(|a| a.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sentences of `text` as strings.
    fn split(text: &str) -> Vec<&str> {
        let spans = sentence_spans(text);
        check_invariants(text, &spans);
        spans.into_iter().map(|r| &text[r]).collect()
    }

    /// Ranges non-empty, ordered, non-overlapping, on char boundaries,
    /// trimmed, free of line breaks, and covering every non-whitespace
    /// character of `text` exactly once.
    fn check_invariants(text: &str, spans: &[Range<usize>]) {
        let mut covered_to = 0;
        for span in spans {
            assert!(span.start < span.end, "empty span {span:?} in {text:?}");
            assert!(span.end <= text.len(), "{span:?} past the end of {text:?}");
            assert!(
                text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
                "{span:?} off char boundaries in {text:?}"
            );
            assert!(
                covered_to <= span.start,
                "{span:?} overlaps or is out of order in {text:?}"
            );
            let gap = &text[covered_to..span.start];
            assert!(
                gap.chars().all(char::is_whitespace),
                "non-space {gap:?} left out of {text:?}"
            );
            let sentence = &text[span.clone()];
            assert_eq!(
                sentence.trim(),
                sentence,
                "untrimmed {sentence:?} in {text:?}"
            );
            assert!(
                !sentence.contains(is_line_break),
                "line break in {sentence:?} of {text:?}"
            );
            covered_to = span.end;
        }
        let tail = &text[covered_to..];
        assert!(
            tail.chars().all(char::is_whitespace),
            "non-space {tail:?} left out of {text:?}"
        );
    }

    #[test]
    fn empty_and_whitespace_only_texts_have_no_sentences() {
        assert!(split("").is_empty());
        assert!(split(" \t\n\r\n\u{3000}\u{a0}\u{2028}  ").is_empty());
    }

    #[test]
    fn text_without_terminator_is_one_sentence() {
        assert_eq!(split("  no terminator here  "), ["no terminator here"]);
        let spans = sentence_spans("  abc  ");
        assert_eq!((spans.len(), spans[0].clone()), (1, 2..5));
        assert_eq!(split("한국어 문장 부호 없음"), ["한국어 문장 부호 없음"]);
    }

    #[test]
    fn terminator_at_end_with_trailing_spaces() {
        assert_eq!(split("The end.   "), ["The end."]);
        assert_eq!(split("One. Two!  \t"), ["One.", "Two!"]);
        assert_eq!(sentence_spans(" Hi.  Yo. "), [1..4, 6..9]);
    }

    #[test]
    fn english_prose() {
        assert_eq!(
            split("Mr. Smith met Dr. Jones at 5 p.m. on Tuesday. They talked about pi, e.g. 3.14. Then they left."),
            [
                "Mr. Smith met Dr. Jones at 5 p.m. on Tuesday.",
                "They talked about pi, e.g. 3.14.",
                "Then they left."
            ]
        );
        assert_eq!(
            split("The U.S. Army and the U.K. Navy met. Both agreed."),
            ["The U.S. Army and the U.K. Navy met.", "Both agreed."]
        );
        assert_eq!(
            split("J. K. Rowling wrote it. So did U. S. Grant? No."),
            ["J. K. Rowling wrote it.", "So did U. S. Grant?", "No."]
        );
        assert_eq!(
            split("Prices rose 2.5 percent. Costs fell 1.25. Done."),
            ["Prices rose 2.5 percent.", "Costs fell 1.25.", "Done."]
        );
        assert_eq!(
            split(
                "See Smith et al. (2020) and cf. Jones. Also vs. Brown Inc. and Acme Corp. Fine."
            ),
            [
                "See Smith et al. (2020) and cf. Jones.",
                "Also vs. Brown Inc. and Acme Corp. Fine."
            ]
        );
        assert_eq!(
            split("It opened Jan. 5 at St. Mary's."),
            ["It opened Jan. 5 at St. Mary's."]
        );
        assert_eq!(
            split("He holds a Ph.D. From Yale."),
            ["He holds a Ph.D. From Yale."]
        );
    }

    #[test]
    fn lowercase_after_full_stop_continues() {
        assert_eq!(
            split("apples, pears, etc. and more."),
            ["apples, pears, etc. and more."]
        );
        assert_eq!(split("We ate, etc. The end."), ["We ate, etc.", "The end."]);
        assert_eq!(
            split("Visit example.com. It works."),
            ["Visit example.com.", "It works."]
        );
    }

    #[test]
    fn numbering_abbreviations_only_before_numbers() {
        assert_eq!(
            split("See No. 5 and Fig. 3 on pp. 12-14. Done."),
            ["See No. 5 and Fig. 3 on pp. 12-14.", "Done."]
        );
        assert_eq!(
            split("The answer is no. We left."),
            ["The answer is no.", "We left."]
        );
        assert_eq!(
            split("Is it vol. 2? No. It is vol. 3."),
            ["Is it vol. 2?", "No.", "It is vol. 3."]
        );
    }

    #[test]
    fn ellipses() {
        assert_eq!(
            split("Wait... What? Nothing."),
            ["Wait...", "What?", "Nothing."]
        );
        assert_eq!(split("I thought… maybe not."), ["I thought… maybe not."]);
        assert_eq!(split("Well… 그래."), ["Well…", "그래."]);
        assert_eq!(split("...and so on"), ["...and so on"]);
    }

    #[test]
    fn quotes_and_brackets() {
        assert_eq!(
            split("He said \"Stop.\" Then left."),
            ["He said \"Stop.\"", "Then left."]
        );
        assert_eq!(
            split("\"Stop!\" he said. \"Why?\" She asked."),
            ["\"Stop!\" he said.", "\"Why?\"", "She asked."]
        );
        assert_eq!(
            split("He said ‘no.’ Then “yes.” Fine (really.) Ok."),
            ["He said ‘no.’", "Then “yes.”", "Fine (really.)", "Ok."]
        );
        assert_eq!(
            split("It ended. (Or did it?) Yes."),
            ["It ended.", "(Or did it?)", "Yes."]
        );
        assert_eq!(
            split("Er ging. »Komm!« rief sie."),
            ["Er ging.", "»Komm!« rief sie."]
        );
        assert_eq!(
            split("Il a dit « Oui. » Puis rien."),
            ["Il a dit « Oui. »", "Puis rien."]
        );
        assert_eq!(
            split("Sie sagte „Ja.“ Dann ging sie."),
            ["Sie sagte „Ja.“", "Dann ging sie."]
        );
    }

    #[test]
    fn questions_and_exclamations() {
        assert_eq!(
            split("Is it? Yes! Really?! Sure!!! ok then."),
            ["Is it?", "Yes!", "Really?!", "Sure!!!", "ok then."]
        );
        assert_eq!(
            split("Yahoo!Mail is one word?No."),
            ["Yahoo!Mail is one word?No."]
        );
        assert_eq!(split("¿Qué? ¡Nada! Bien."), ["¿Qué?", "¡Nada!", "Bien."]);
    }

    #[test]
    fn korean_paragraphs() {
        assert_eq!(
            split("오늘은 날씨가 좋다. 내일은 비가 올까? 그렇다고 합니다."),
            [
                "오늘은 날씨가 좋다.",
                "내일은 비가 올까?",
                "그렇다고 합니다."
            ]
        );
        assert_eq!(
            split("정말요? 네. 알겠습니다! 그렇죠. 좋아요."),
            ["정말요?", "네.", "알겠습니다!", "그렇죠.", "좋아요."]
        );
        assert_eq!(
            split("“가자!”라고 말했다. “왜?” 그가 물었다."),
            ["“가자!”라고 말했다.", "“왜?”", "그가 물었다."]
        );
    }

    #[test]
    fn korean_list_numbers_and_dates() {
        assert_eq!(
            split("1. 서론\n2. 본론\n2.1. 배경 설명입니다. 다음 문장."),
            ["1. 서론", "2. 본론", "2.1. 배경 설명입니다.", "다음 문장."]
        );
        assert_eq!(
            split("1. Introduction. This paper."),
            ["1. Introduction.", "This paper."]
        );
        assert_eq!(
            split("2020. 7. 15. 발표했다. 끝."),
            ["2020. 7. 15. 발표했다.", "끝."]
        );
        assert_eq!(
            split("발표일은 2020. 7. 15. 이다."),
            ["발표일은 2020. 7. 15. 이다."]
        );
        assert_eq!(split("1.\n서론"), ["1.", "서론"]);
    }

    #[test]
    fn mixed_korean_and_english() {
        assert_eq!(
            split("나는 Rust를 좋아한다. It is fast. 그리고 safe하다! Dr. Kim이 말했다."),
            [
                "나는 Rust를 좋아한다.",
                "It is fast.",
                "그리고 safe하다!",
                "Dr. Kim이 말했다."
            ]
        );
        assert_eq!(split("I love 김치. 맛있다."), ["I love 김치.", "맛있다."]);
    }

    #[test]
    fn cjk_terminators_need_no_space() {
        assert_eq!(
            split("今日は晴れです。明日は雨です！本当？はい。"),
            ["今日は晴れです。", "明日は雨です！", "本当？", "はい。"]
        );
        assert_eq!(split("他说：“好。”“不好。”"), ["他说：“好。”", "“不好。”"]);
        assert_eq!(
            split("「行こう。」「うん！」"),
            ["「行こう。」", "「うん！」"]
        );
        assert_eq!(
            split("他说\"好。\"\"不好。\""),
            ["他说\"好。\"", "\"不好。\""]
        );
        assert_eq!(
            split("值为３．１４。下一句．完"),
            ["值为３．１４。", "下一句．", "完"]
        );
    }

    #[test]
    fn other_scripts() {
        assert_eq!(
            split("Привет. Как дела? Хорошо."),
            ["Привет.", "Как дела?", "Хорошо."]
        );
        assert_eq!(
            split("مرحبا. كيف حالك؟ بخير."),
            ["مرحبا.", "كيف حالك؟", "بخير."]
        );
        assert_eq!(
            split("यह एक वाक्य है। यह दूसरा है।"),
            ["यह एक वाक्य है।", "यह दूसरा है।"]
        );
    }

    #[test]
    fn unicode_spaces_separate_sentences() {
        assert_eq!(
            split("One.\u{3000}Two.\u{a0}Three!\u{2009}Four\tfive."),
            ["One.", "Two.", "Three!", "Four\tfive."]
        );
        assert_eq!(split("끝났다.\u{3000}\u{3000}다음."), ["끝났다.", "다음."]);
    }

    #[test]
    fn line_breaks_end_sentences() {
        assert_eq!(
            split("First line\nsecond line"),
            ["First line", "second line"]
        );
        assert_eq!(
            split("Para one.\n\nPara two\r\nstill two?\n"),
            ["Para one.", "Para two", "still two?"]
        );
        assert_eq!(split("Mr.\nSmith"), ["Mr.", "Smith"]);
        assert_eq!(
            split("a\u{2028}b\u{2029}c\u{85}d\u{0C}e"),
            ["a", "b", "c", "d", "e"]
        );
        assert_eq!(sentence_spans("  x \n\n  y  "), [2..3, 8..9]);
    }

    #[test]
    fn lone_punctuation_and_marks() {
        assert_eq!(split("."), ["."]);
        assert_eq!(split(" ? ! . "), ["?", "!", "."]);
        assert_eq!(split("\u{301}. \u{301}"), ["\u{301}. \u{301}"]);
        assert_eq!(split("Cafe\u{301}. Ok"), ["Cafe\u{301}.", "Ok"]);
        assert_eq!(split("» « “ ” ."), ["» « “ ” ."]);
        assert_eq!(split("𝔸. 𝔹? 😀! x"), ["𝔸. 𝔹?", "😀!", "x"]);
    }

    #[test]
    fn plain_lead_bytes_never_start_whitespace_or_terminators() {
        for c in (0..=0x10_FFFFu32).filter_map(char::from_u32) {
            let mut buf = [0; 4];
            let lead = c.encode_utf8(&mut buf).as_bytes()[0];
            assert_eq!(utf8_len(lead), c.len_utf8());
            if PLAIN_LEAD[lead as usize] {
                assert!(!c.is_whitespace() && terminator_kind(c).is_none(), "{c:?}");
            }
        }
    }

    /// SplitMix64: a tiny deterministic generator for the property test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn invariants_hold_on_generated_text() {
        const PIECES: &[&str] = &[
            "a", "b", "Z", "Mr", "etc", "e.g", "U.S", "J", "no", "1", "2020", "3.14", "가", "다",
            "中", "ア", "é", "e\u{301}", "\u{301}", "𝔸", "😀", "Я", "ß", "ǅ", ".", ".", ".", "?",
            "!", "…", "。", "！", "？", "．", "１", "؟", "।", " ", " ", " ", "  ", "\t", "\n",
            "\r\n", "\n\n", "\u{a0}", "\u{3000}", "\u{2028}", "\u{85}", "\"", "'", "“", "”", "‘",
            "’", "«", "»", "„", "(", ")", "[", "]", "「", "」", "『", "』", ",", "-", "\u{feff}",
            "\u{200b}", "\0",
        ];
        let mut rng = Rng(0x5EED);
        for _ in 0..20_000 {
            let len = rng.below(40);
            let text: String = (0..len).map(|_| PIECES[rng.below(PIECES.len())]).collect();
            let spans = sentence_spans(&text);
            check_invariants(&text, &spans);
            assert_eq!(
                spans,
                sentence_spans(&text),
                "not deterministic on {text:?}"
            );
        }
        // Arbitrary code points, not just the interesting ones.
        for _ in 0..5_000 {
            let len = rng.below(30);
            let text: String = (0..len)
                .map(|_| {
                    let cp = match rng.below(4) {
                        0 => rng.below(0x80),
                        1 => rng.below(0x3100),
                        2 => 0xAC00 + rng.below(0x2BA4),
                        _ => rng.below(0x11_0000),
                    };
                    char::from_u32(cp as u32).unwrap_or('.')
                })
                .collect();
            check_invariants(&text, &sentence_spans(&text));
        }
    }

    #[test]
    fn pathological_megabyte_inputs_are_linear() {
        const MB: usize = 1 << 20;
        let units = [
            ".",
            " ",
            "\n",
            "?",
            "。",
            "…",
            ". ",
            "? ",
            "a.",
            "A. ",
            "1. ",
            "Mr. ",
            "a.a",
            " »",
            "« ",
            "\" ",
            "'",
            ")",
            "。\"",
            "abcdefghijklmnopqrstuvwxyz.",
            "가. ",
            "\u{301}",
            "．１",
            "e.g. ",
        ];
        for unit in units {
            let text = unit.repeat(MB / unit.len());
            let started = std::time::Instant::now();
            let spans = sentence_spans(&text);
            check_invariants(&text, &spans);
            // Generous: quadratic behaviour would take minutes on a megabyte.
            assert!(
                started.elapsed().as_secs() < 20,
                "{unit:?} took {:?}",
                started.elapsed()
            );
        }
        let long_word = format!("{}. Next", "x".repeat(MB));
        assert_eq!(sentence_spans(&long_word).len(), 2);
    }
}
