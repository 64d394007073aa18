//! Unicode code points -> UTF-8, four at a time with SIMD where the CPU
//! allows (x86-64 with SSSE3, unless the `portable` feature is on), one at a
//! time elsewhere: the bindings' conversion of Python strings
//! (`python/utf8.rs`), read in place as CPython keeps them, one, two or four
//! bytes per code point.

/// A code point stored in one, two or four bytes (CPython's three kinds
/// of string); `into()` gives its value.
pub trait CodeUnit: Copy + Into<u32> {
    /// The four code points at `at`, each in a 32-bit lane.
    ///
    /// # Safety
    /// `at` must be valid for reading four units; SSE2 (part of x86-64).
    #[cfg(x86_simd)]
    unsafe fn load4(at: *const Self) -> std::arch::x86_64::__m128i;

    /// The sixteen code points at `at` as bytes, if all are ASCII.
    ///
    /// # Safety
    /// `at` must be valid for reading sixteen units; SSE2.
    #[cfg(x86_simd)]
    unsafe fn ascii16(at: *const Self) -> Option<std::arch::x86_64::__m128i>;
}

impl CodeUnit for u8 {
    #[cfg(x86_simd)]
    #[inline(always)]
    unsafe fn load4(at: *const Self) -> std::arch::x86_64::__m128i {
        use std::arch::x86_64::*;
        // SAFETY: the caller's: four bytes to read.
        unsafe {
            let bytes = _mm_cvtsi32_si128(at.cast::<i32>().read_unaligned());
            let zero = _mm_setzero_si128();
            _mm_unpacklo_epi16(_mm_unpacklo_epi8(bytes, zero), zero)
        }
    }

    #[cfg(x86_simd)]
    #[inline(always)]
    unsafe fn ascii16(at: *const Self) -> Option<std::arch::x86_64::__m128i> {
        use std::arch::x86_64::*;
        // SAFETY: the caller's: sixteen bytes to read.
        let bytes = unsafe { _mm_loadu_si128(at.cast()) };
        (_mm_movemask_epi8(bytes) == 0).then_some(bytes)
    }
}

impl CodeUnit for u16 {
    #[cfg(x86_simd)]
    #[inline(always)]
    unsafe fn load4(at: *const Self) -> std::arch::x86_64::__m128i {
        use std::arch::x86_64::*;
        // SAFETY: the caller's: eight bytes to read.
        unsafe { _mm_unpacklo_epi16(_mm_loadl_epi64(at.cast()), _mm_setzero_si128()) }
    }

    #[cfg(x86_simd)]
    #[inline(always)]
    unsafe fn ascii16(at: *const Self) -> Option<std::arch::x86_64::__m128i> {
        use std::arch::x86_64::*;
        // SAFETY: the caller's: thirty-two bytes to read.
        let (a, b) = unsafe {
            (
                _mm_loadu_si128(at.cast()),
                _mm_loadu_si128(at.add(8).cast()),
            )
        };
        let high = _mm_and_si128(_mm_or_si128(a, b), _mm_set1_epi16(!0x7F));
        let ascii = _mm_movemask_epi8(_mm_cmpeq_epi16(high, _mm_setzero_si128())) == 0xFFFF;
        ascii.then(|| _mm_packus_epi16(a, b))
    }
}

impl CodeUnit for u32 {
    #[cfg(x86_simd)]
    #[inline(always)]
    unsafe fn load4(at: *const Self) -> std::arch::x86_64::__m128i {
        // SAFETY: the caller's: sixteen bytes to read.
        unsafe { std::arch::x86_64::_mm_loadu_si128(at.cast()) }
    }

    #[cfg(x86_simd)]
    #[inline(always)]
    unsafe fn ascii16(at: *const Self) -> Option<std::arch::x86_64::__m128i> {
        use std::arch::x86_64::*;
        // SAFETY: the caller's: sixty-four bytes to read.
        let [a, b, c, d] = [0, 4, 8, 12].map(|i| unsafe { Self::load4(at.add(i)) });
        let any = _mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d));
        let high = _mm_and_si128(any, _mm_set1_epi32(!0x7F));
        let ascii = _mm_movemask_epi8(_mm_cmpeq_epi32(high, _mm_setzero_si128())) == 0xFFFF;
        ascii.then(|| _mm_packus_epi16(_mm_packs_epi32(a, b), _mm_packs_epi32(c, d)))
    }
}

/// Surrogates (U+D800 to U+DFFF) have no UTF-8 form.
pub fn is_surrogate(code: u32) -> bool {
    code.wrapping_sub(0xD800) < 0x800
}

/// Bytes of `code` in UTF-8.
#[inline(always)]
fn utf8_len(code: u32) -> usize {
    1 + (code >= 0x80) as usize + (code >= 0x800) as usize + (code >= 0x10000) as usize
}

/// The UTF-8 of `code` in the low bytes of a little-endian word. Selects
/// rather than branches: text mixing ASCII with another script would
/// mispredict a branch on the length every few characters.
#[inline(always)]
fn utf8_word(code: u32) -> u32 {
    // Continuation bytes carry six bits each under a 0b10 tag.
    let tail = |shift: u32| 0x80 | (code >> shift & 0x3F);
    let four = 0xF0 | code >> 18 | tail(12) << 8 | tail(6) << 16 | tail(0) << 24;
    let three = 0xE0 | code >> 12 | tail(6) << 8 | tail(0) << 16;
    let two = 0xC0 | code >> 6 | tail(0) << 8;
    let word = if code < 0x10000 { three } else { four };
    let word = if code < 0x800 { two } else { word };
    if code < 0x80 {
        code
    } else {
        word
    }
}

/// Writes the UTF-8 of `code_points` at the start of `out`, which it
/// enlarges as needed, and returns its length in bytes; bytes past that are
/// scratch. `None` if there is a surrogate, which has no UTF-8 form. Code
/// points are at most U+10FFFF, as in any Python string.
pub fn write_utf8<U: CodeUnit>(code_points: &[U], out: &mut Vec<u8>) -> Option<usize> {
    // Four bytes at most per code point, and room to write a whole vector
    // past the last one.
    let room = 4 * code_points.len() + 16;
    if out.len() < room {
        out.resize(room, 0);
    }
    #[cfg(x86_simd)]
    if let Some(shuffles) = simd::shuffles() {
        // SAFETY: `shuffles` exist only when the CPU has SSSE3.
        return unsafe { simd::write_utf8(code_points, out, shuffles) };
    }
    let surrogate = code_points.iter().any(|&c| is_surrogate(c.into()));
    (!surrogate).then(|| write_utf8_from(code_points, out, 0))
}

/// Writes the UTF-8 of `code_points` into `out` from byte `at` one code
/// point at a time, four bytes each time (`out` has room), and returns
/// where it ends.
#[inline(always)]
fn write_utf8_from<U: CodeUnit>(code_points: &[U], out: &mut [u8], mut at: usize) -> usize {
    for &code in code_points {
        let code: u32 = code.into();
        out[at..at + 4].copy_from_slice(&utf8_word(code).to_le_bytes());
        at += utf8_len(code);
    }
    at
}

#[cfg(x86_simd)]
mod simd {
    use super::{write_utf8_from, CodeUnit};
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    /// For each pattern of the lengths of four code points below U+10000
    /// (bit `i` set when point `i` takes two bytes or more, bit `4 + i`
    /// when three), the shuffle that packs their UTF-8 bytes out of four
    /// little-endian words, and how many bytes that makes.
    pub struct Shuffles {
        masks: [[u8; 16]; 256],
        lens: [u8; 256],
    }

    /// The shuffles, if this CPU has SSSE3 to apply them.
    pub fn shuffles() -> Option<&'static Shuffles> {
        static SHUFFLES: OnceLock<Option<Shuffles>> = OnceLock::new();
        let build = || {
            let mut table = Shuffles {
                masks: [[0x80; 16]; 256],
                lens: [0; 256],
            };
            for pattern in 0..256 {
                let mut at = 0;
                for lane in 0..4 {
                    let len = 1 + (pattern >> lane & 1) + (pattern >> (4 + lane) & 1);
                    for byte in 0..len {
                        table.masks[pattern][at] = (lane * 4 + byte) as u8;
                        at += 1;
                    }
                }
                table.lens[pattern] = at as u8;
            }
            table
        };
        SHUFFLES
            .get_or_init(|| is_x86_feature_detected!("ssse3").then(build))
            .as_ref()
    }

    /// [`super::write_utf8`] four code points at a time: each lane gets its
    /// one-, two- and three-byte forms, the right one is selected by masks,
    /// and a shuffle packs the four. Sixteen ASCII ones are copied at once;
    /// four holding one above U+FFFF are written one by one.
    ///
    /// # Safety
    /// The CPU must have SSSE3; `out` must have 16 bytes to spare past the
    /// UTF-8.
    #[target_feature(enable = "ssse3")]
    pub unsafe fn write_utf8<U: CodeUnit>(
        code_points: &[U],
        out: &mut [u8],
        shuffles: &Shuffles,
    ) -> Option<usize> {
        let mut at = 0;
        // Lanes that held a surrogate, ORed together.
        let mut surrogates = _mm_setzero_si128();
        let mut blocks = code_points.chunks_exact(16);
        for block in &mut blocks {
            // SAFETY: the block has sixteen code points; `out` has 16
            // bytes to spare past `at`.
            if let Some(ascii) = unsafe { U::ascii16(block.as_ptr()) } {
                unsafe { _mm_storeu_si128(out[at..at + 16].as_mut_ptr().cast(), ascii) };
                at += 16;
                continue;
            }
            for four in block.chunks_exact(4) {
                // SAFETY: the load reads the four code points of `four`.
                let c = unsafe { U::load4(four.as_ptr()) };
                // Signed compares suffice: code points are below 2^31.
                let two = _mm_cmpgt_epi32(c, _mm_set1_epi32(0x7F));
                let three = _mm_cmpgt_epi32(c, _mm_set1_epi32(0x7FF));
                let top5 = _mm_and_si128(c, _mm_set1_epi32(!0x7FF));
                let surrogate = _mm_cmpeq_epi32(top5, _mm_set1_epi32(0xD800));
                surrogates = _mm_or_si128(surrogates, surrogate);
                if _mm_movemask_epi8(_mm_cmpgt_epi32(c, _mm_set1_epi32(0xFFFF))) != 0 {
                    at = write_utf8_from(four, out, at);
                    continue;
                }
                // Continuation bytes: six bits each under a 0b10 tag.
                let (low6, tag) = (_mm_set1_epi32(0x3F), _mm_set1_epi32(0x80));
                let tail0 = _mm_or_si128(_mm_and_si128(c, low6), tag);
                let tail6 = _mm_or_si128(_mm_and_si128(_mm_srli_epi32(c, 6), low6), tag);
                let lead2 = _mm_or_si128(_mm_srli_epi32(c, 6), _mm_set1_epi32(0xC0));
                let lead3 = _mm_or_si128(_mm_srli_epi32(c, 12), _mm_set1_epi32(0xE0));
                let form2 = _mm_or_si128(lead2, _mm_slli_epi32(tail0, 8));
                let form3 = _mm_or_si128(
                    lead3,
                    _mm_or_si128(_mm_slli_epi32(tail6, 8), _mm_slli_epi32(tail0, 16)),
                );
                let select = |mask: __m128i, yes: __m128i, no: __m128i| {
                    _mm_or_si128(_mm_and_si128(mask, yes), _mm_andnot_si128(mask, no))
                };
                let words = select(three, form3, select(two, form2, c));
                let pattern = (_mm_movemask_ps(_mm_castsi128_ps(two))
                    | _mm_movemask_ps(_mm_castsi128_ps(three)) << 4)
                    as usize;
                // SAFETY: the mask is 16 bytes; `out` has 16 bytes to spare
                // past `at`, which never passes the UTF-8's length.
                unsafe {
                    let mask = _mm_loadu_si128(shuffles.masks[pattern].as_ptr().cast());
                    let packed = _mm_shuffle_epi8(words, mask);
                    _mm_storeu_si128(out[at..at + 16].as_mut_ptr().cast(), packed);
                }
                at += shuffles.lens[pattern] as usize;
            }
        }
        let rest = blocks.remainder();
        if _mm_movemask_epi8(surrogates) != 0 || rest.iter().any(|&c| super::is_surrogate(c.into()))
        {
            return None;
        }
        Some(write_utf8_from(rest, out, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Code points of every UTF-8 length, at the edges of each, in runs of
    /// every alignment against the blocks of sixteen and the lanes of four.
    #[test]
    fn writes_what_the_standard_library_writes() {
        let edges = [
            0x0, 0x41, 0x7F, 0x80, 0xE9, 0x7FF, 0x800, 0xAC00, 0xD7FF, 0xE000, 0xFFFD, 0xFFFF,
            0x10000, 0x1F600, 0x10FFFF,
        ];
        let mut texts: Vec<Vec<u32>> = Vec::new();
        for &edge in &edges {
            for ascii_before in 0..20 {
                let mut text: Vec<u32> = (0..ascii_before).map(|i| 0x61 + i % 26).collect();
                text.push(edge);
                text.extend(edges.iter().rev());
                texts.push(text);
            }
        }
        texts.push((0..1000).map(|i| edges[(i * 7) % edges.len()]).collect());
        texts.push((0..1000).map(|i| 0x20 + i % 90).collect());
        let mut out = Vec::new();
        for text in texts {
            let expected: String = text.iter().map(|&c| char::from_u32(c).unwrap()).collect();
            let len = write_utf8(&text, &mut out).unwrap();
            assert_eq!(&out[..len], expected.as_bytes(), "{text:x?}");
            assert_narrower_kinds_agree(&text, &expected);
            // The one-at-a-time writer, which CPUs without SSSE3 use throughout.
            let mut scalar = vec![0; len + 16];
            assert_eq!(write_utf8_from(&text, &mut scalar, 0), len);
            assert_eq!(&scalar[..len], expected.as_bytes());
        }
    }

    /// Random runs of code points, each run's script (ASCII, two-, three-
    /// or four-byte UTF-8, or any of these) drawn anew, so blocks of sixteen
    /// and lanes of four see every mix of lengths.
    #[test]
    fn writes_what_the_standard_library_writes_on_random_text() {
        let mut random = crate::testing::random_stream(0x9E37_79B9_7F4A_7C15);
        let mut next = move |below: u32| (random() % below as u64) as u32;
        let ranges = [
            (0, 0x80),
            (0x80, 0x800),
            (0x800, 0x1_0000),
            (0x1_0000, 0x11_0000),
        ];
        let mut out = Vec::new();
        for _ in 0..2_000 {
            let mut text = Vec::new();
            for _ in 0..next(8) {
                let script = next(5) as usize;
                for _ in 0..next(40) {
                    // The fifth script mixes the other four.
                    let (low, high) = ranges[if script < 4 { script } else { next(4) as usize }];
                    let code = low + next(high - low);
                    text.push(if is_surrogate(code) { 0xFFFD } else { code });
                }
            }
            let expected: String = text.iter().map(|&c| char::from_u32(c).unwrap()).collect();
            let len = write_utf8(&text, &mut out).unwrap();
            assert_eq!(&out[..len], expected.as_bytes(), "{text:x?}");
            assert_narrower_kinds_agree(&text, &expected);
        }
    }

    /// The same code points stored two or one bytes each, where they fit
    /// (as CPython stores a string of them), give the same UTF-8.
    fn assert_narrower_kinds_agree(text: &[u32], expected: &str) {
        let mut out = Vec::new();
        if text.iter().all(|&c| c <= 0xFFFF) {
            let units: Vec<u16> = text.iter().map(|&c| c as u16).collect();
            let len = write_utf8(&units, &mut out).unwrap();
            assert_eq!(&out[..len], expected.as_bytes(), "{text:x?} as u16");
        }
        if text.iter().all(|&c| c <= 0xFF) {
            let units: Vec<u8> = text.iter().map(|&c| c as u8).collect();
            let len = write_utf8(&units, &mut out).unwrap();
            assert_eq!(&out[..len], expected.as_bytes(), "{text:x?} as u8");
        }
    }

    /// Latin-1 and BMP text of every length up to 80, mostly ASCII or not,
    /// read as CPython's one- and two-byte strings.
    #[test]
    fn narrow_strings_write_what_the_standard_library_writes() {
        let mut random = crate::testing::random_stream(0x2545_F491_4F6C_DD1D);
        let mut next = move |below: u32| (random() % below as u64) as u32;
        let mut out = Vec::new();
        for len in 0..80 {
            for _ in 0..50 {
                let ascii_share = next(4);
                let code = |high: u32, next: &mut dyn FnMut(u32) -> u32| {
                    if next(4) < ascii_share {
                        next(0x80)
                    } else {
                        let code = next(high);
                        if is_surrogate(code) {
                            0xAC00
                        } else {
                            code
                        }
                    }
                };
                let latin: Vec<u8> = (0..len).map(|_| code(0x100, &mut next) as u8).collect();
                let bmp: Vec<u16> = (0..len).map(|_| code(0x1_0000, &mut next) as u16).collect();
                let expected: String = latin.iter().map(|&c| char::from(c)).collect();
                let written = write_utf8(&latin, &mut out).unwrap();
                assert_eq!(&out[..written], expected.as_bytes(), "{latin:x?}");
                let expected = String::from_utf16(&bmp).unwrap();
                let written = write_utf8(&bmp, &mut out).unwrap();
                assert_eq!(&out[..written], expected.as_bytes(), "{bmp:x?}");
            }
        }
    }

    #[test]
    fn refuses_surrogates_wherever_they_are() {
        for surrogate in [0xD800, 0xDBFF, 0xDC00, 0xDFFF] {
            for at in 0..40 {
                let mut text: Vec<u32> = (0..40)
                    .map(|i| if i % 3 == 0 { 0xAC00 } else { 0x61 })
                    .collect();
                text[at] = surrogate;
                assert_eq!(
                    write_utf8(&text, &mut Vec::new()),
                    None,
                    "{surrogate:x} at {at}"
                );
                let units: Vec<u16> = text.iter().map(|&c| c as u16).collect();
                assert_eq!(
                    write_utf8(&units, &mut Vec::new()),
                    None,
                    "{surrogate:x} at {at}"
                );
            }
        }
        assert!(write_utf8(&[0xD7FFu32, 0xE000], &mut Vec::new()).is_some());
    }
}
