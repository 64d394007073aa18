//! GPT-2's pretoken boundaries in 64 bytes of ASCII at once. Each byte's
//! class becomes one bit of a mask (letter, digit, whitespace, ...), and
//! the pattern's rules become a few shifts and ands over those masks: a
//! pretoken starts where the class changes, a whitespace run gives up its
//! last character, a space joins what follows it, and a contraction is a
//! pretoken of its own. The scanner then walks the starts with no branch
//! per byte or per class.

use super::contraction_len;

/// Bytes read at once.
pub const WIDTH: usize = 64;

/// The last position whose start a window decides: deciding a start looks
/// one byte ahead (does whitespace go on after it?).
const LAST_DECIDED: usize = WIDTH - 2;

/// One bit per byte of the window, bit `i` for byte `i`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Masks {
    letter: u64,
    digit: u64,
    /// `\s`: tab, line feed, vertical tab, form feed, carriage return, space.
    white: u64,
    space: u64,
    apostrophe: u64,
    non_ascii: u64,
}

#[cfg(x86_simd)]
#[inline(always)]
fn masks(window: &[u8; WIDTH]) -> Masks {
    use std::arch::x86_64::*;
    let mut masks = Masks::default();
    // SAFETY: SSE2 is part of x86-64; each load reads 16 of the window's
    // 64 bytes.
    unsafe {
        let splat = |byte: u8| _mm_set1_epi8(byte as i8);
        // `lowest <= byte < lowest + count`, as one signed compare: the
        // shift maps `lowest` to -128.
        let in_range = |bytes: __m128i, lowest: u8, count: u8| {
            let shifted = _mm_add_epi8(bytes, splat(128u8.wrapping_sub(lowest)));
            _mm_cmplt_epi8(shifted, splat(128u8.wrapping_add(count)))
        };
        for part in 0..WIDTH / 16 {
            let bytes = _mm_loadu_si128(window.as_ptr().add(16 * part).cast());
            let bits = |matches: __m128i| (_mm_movemask_epi8(matches) as u16 as u64) << (16 * part);
            let space = _mm_cmpeq_epi8(bytes, splat(b' '));
            masks.letter |= bits(in_range(_mm_or_si128(bytes, splat(0x20)), b'a', 26));
            masks.digit |= bits(in_range(bytes, b'0', 10));
            masks.white |= bits(_mm_or_si128(space, in_range(bytes, b'\t', 5)));
            masks.space |= bits(space);
            masks.apostrophe |= bits(_mm_cmpeq_epi8(bytes, splat(b'\'')));
            masks.non_ascii |= bits(bytes);
        }
    }
    masks
}

/// The same masks byte by byte, for other processors and the `portable`
/// feature (and as the SSE2 version's check).
#[cfg(any(test, not(x86_simd)))]
fn masks_bytewise(window: &[u8; WIDTH]) -> Masks {
    use crate::pretokenize::char_class::{CharClass, ASCII_CLASS};
    let mut masks = Masks::default();
    for (i, &byte) in window.iter().enumerate() {
        let bit = 1u64 << i;
        if byte >= 0x80 {
            masks.non_ascii |= bit;
            continue;
        }
        match ASCII_CLASS[byte as usize] {
            CharClass::Letter => masks.letter |= bit,
            CharClass::Number => masks.digit |= bit,
            CharClass::Space => masks.white |= bit,
            CharClass::Other => {}
        }
        masks.space |= ((byte == b' ') as u64) << i;
        masks.apostrophe |= ((byte == b'\'') as u64) << i;
    }
    masks
}

#[cfg(not(x86_simd))]
#[inline(always)]
fn masks(window: &[u8; WIDTH]) -> Masks {
    masks_bytewise(window)
}

/// The pretokens that start at `window[0]` (a pretoken's start) and end
/// inside the window, as a mask of their ends: bit `i` set when a pretoken
/// ends before byte `i`. Ends are given only where the window decides them
/// (not near its end, not near a non-ASCII byte); 0 when none is.
#[inline(always)]
pub fn pretoken_ends(window: &[u8; WIDTH]) -> u64 {
    let m = masks(window);
    let other = !(m.letter | m.digit | m.white);
    // Where the class changes from the byte before (byte 0 always counts).
    let mut starts = (m.letter ^ m.letter << 1)
        | (m.digit ^ m.digit << 1)
        | (m.white ^ m.white << 1)
        | (other ^ other << 1);
    // `\s+(?!\S)`: a whitespace run followed by something else gives up its
    // last character, which starts a pretoken; if it is a space, it joins
    // the run that follows (` ?\p{L}+` and the like).
    let last_white = m.white & !(m.white >> 1);
    starts |= last_white;
    starts &= !((last_white & m.space) << 1);
    // `'s|'t|'re|'ve|'m|'ll|'d`, tried first where a pretoken starts. One
    // at `LAST_DECIDED` or later changes only starts after it.
    let mut apostrophes = m.apostrophe & starts & ((1u64 << LAST_DECIDED) - 1);
    while apostrophes != 0 {
        let at = apostrophes.trailing_zeros() as usize;
        if let Some(len) = contraction_len(&window[at + 1..]) {
            starts &= !(((1 << len) - 1) << (at + 1));
            // Shifted in two steps: the next start may lie past bit 63.
            starts |= 1 << (at + len) << 1;
        }
        apostrophes &= apostrophes - 1;
    }
    // A start is decided by the byte after it, which must be ASCII too.
    let decided = LAST_DECIDED.min((m.non_ascii.trailing_zeros() as usize).saturating_sub(2));
    starts & ((2u64 << decided) - 2)
}

#[cfg(test)]
mod tests {
    use super::super::gpt2_pretoken_end;
    use super::*;
    use crate::pretokenize::char_class::{CharClass, ASCII_CLASS};

    /// At every pretoken start of each text, the window gives exactly the
    /// ends that scanning one pretoken at a time finds, in order, and all of
    /// them up to its limit: byte 62 of pure ASCII, two bytes before the
    /// first non-ASCII one.
    #[test]
    fn windows_end_pretokens_where_the_scanner_does() {
        let unit = "It's a day, isn't it?\n\n  Yes'll 're 'd\t\tx12 3.5 ''s  'S Z'VE ";
        let texts = [
            unit.repeat(8),
            format!("{} é{}", unit.repeat(2), unit.repeat(3)),
            format!("{}'re{}", "a".repeat(60), unit.repeat(2)),
            format!("{}\u{3000} b{}", " ".repeat(50), unit.repeat(2)),
            "x'".repeat(100),
        ];
        for text in &texts {
            let bytes = text.as_bytes();
            let mut starts = vec![0];
            while let Some(&last) = starts.last().filter(|&&last| last < bytes.len()) {
                starts.push(gpt2_pretoken_end(bytes, last));
            }
            for (i, &start) in starts.iter().enumerate() {
                let Some(window) = bytes.get(start..start + WIDTH) else {
                    break;
                };
                let first_non_ascii = window.iter().position(|&b| b >= 0x80).unwrap_or(WIDTH);
                let limit = 62.min(first_non_ascii.saturating_sub(2));
                let expected = (starts[i + 1..].iter())
                    .map(|&end| end - start)
                    .take_while(|&end| end <= limit)
                    .fold(0u64, |ends, end| ends | 1 << end);
                let got = pretoken_ends(window.try_into().unwrap());
                assert_eq!(got, expected, "{text:?} from {start}");
            }
        }
    }

    #[test]
    fn masks_match_the_ascii_classes() {
        for byte in 0..=255u8 {
            for at in [0, 15, 16, 33, 63] {
                let mut window = [b'x'; WIDTH];
                window[at] = byte;
                let m = masks(&window);
                assert_eq!(m, masks_bytewise(&window), "{byte:#x} at {at}");
                let bit = |mask: u64| mask >> at & 1 == 1;
                assert_eq!(bit(m.non_ascii), byte >= 0x80, "{byte:#x} at {at}");
                if byte >= 0x80 {
                    continue;
                }
                let class = ASCII_CLASS[byte as usize];
                assert_eq!(bit(m.letter), class == CharClass::Letter, "{byte:#x}");
                assert_eq!(bit(m.digit), class == CharClass::Number, "{byte:#x}");
                assert_eq!(bit(m.white), class == CharClass::Space, "{byte:#x}");
                assert_eq!(bit(m.space), byte == b' ', "{byte:#x}");
                assert_eq!(bit(m.apostrophe), byte == b'\'', "{byte:#x}");
            }
        }
    }
}
