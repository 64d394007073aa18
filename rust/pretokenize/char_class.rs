//! The three Unicode classes the GPT-2 pattern distinguishes: `\p{L}`, `\p{N}`
//! and `\s` (everything else is "other"), looked up in a table generated at
//! build time from `regex-syntax`.

mod table {
    include!(concat!(env!("OUT_DIR"), "/unicode_classes.rs"));
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CharClass {
    Other = 0,
    Letter = 1,
    Number = 2,
    Space = 3,
}

const CLASSES: [CharClass; 4] = [
    CharClass::Other,
    CharClass::Letter,
    CharClass::Number,
    CharClass::Space,
];

#[inline(always)]
const fn from_code(code: u8) -> CharClass {
    CLASSES[(code & 3) as usize]
}

/// Classes of the 128 ASCII characters, the hot path of every scan.
pub static ASCII_CLASS: [CharClass; 128] = {
    let mut out = [CharClass::Other; 128];
    let mut i = 0;
    while i < 128 {
        out[i] = from_code(table::BLOCKS[table::BLOCK_INDEX[0] as usize][i]);
        i += 1;
    }
    out
};

#[inline(always)]
fn class_in_block(block: usize, low: usize) -> CharClass {
    let id = table::BLOCK_INDEX[block];
    if id < 4 {
        // The whole block is of one class, numbered by it (see build.rs).
        return from_code(id as u8);
    }
    from_code(table::BLOCKS[id as usize][low])
}

#[inline]
pub fn class_of(c: char) -> CharClass {
    let cp = c as usize;
    class_in_block(cp >> 8, cp & 0xFF)
}

/// Class and UTF-8 length of the character starting at `bytes[i]`.
/// `bytes` must be valid UTF-8 and `i` a character boundary.
#[inline(always)]
pub fn class_at(bytes: &[u8], i: usize) -> (CharClass, usize) {
    let lead = bytes[i] as usize;
    if lead < 0x80 {
        return (ASCII_CLASS[lead], 1);
    }
    let second = bytes[i + 1] as usize & 0x3F;
    if lead < 0xE0 {
        let cp = ((lead & 0x1F) << 6) | second;
        return (class_in_block(cp >> 8, cp & 0xFF), 2);
    }
    // Three- and four-byte characters: the block comes from the first two or
    // three bytes; the last byte is read only for mixed blocks.
    if lead < 0xF0 {
        let block = ((lead & 0x0F) << 4) | (second >> 2);
        let low = ((second & 3) << 6) | (bytes[i + 2] as usize & 0x3F);
        return (class_in_block(block, low), 3);
    }
    let third = bytes[i + 2] as usize & 0x3F;
    let block = ((lead & 0x07) << 10) | (second << 4) | (third >> 2);
    let low = ((third & 3) << 6) | (bytes[i + 3] as usize & 0x3F);
    (class_in_block(block, low), 4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The reference pretokenizer (python/bbpe/reference/) reads its classes
    /// from this file rather than from the installed `regex` release, whose
    /// Unicode version moves on its own.
    const REFERENCE_CLASSES: &str = "python/bbpe/reference/unicode_classes.txt";

    /// The classes as the reference's file spells them: a header, then lines
    /// of a class letter and inclusive hex ranges.
    fn unicode_classes_text() -> String {
        let mut text = String::from(
            "# The character classes of GPT-2's pattern as bbpe's Rust core reads them:\n\
             # regex-syntax 0.8 (Unicode 16.0.0), the tables tiktoken's engine uses.\n\
             # L = \\p{L}, N = \\p{N}, S = \\s; each line: a class, then inclusive hex ranges.\n\
             # Written by `BBPE_WRITE_UNICODE_CLASSES=1 cargo test unicode_classes_file`; cargo test checks it.\n",
        );
        for (name, class) in [
            ('L', CharClass::Letter),
            ('N', CharClass::Number),
            ('S', CharClass::Space),
        ] {
            let mut ranges: Vec<(u32, u32)> = Vec::new();
            for c in (0..=0x10FFFF).filter_map(char::from_u32) {
                if class_of(c) != class {
                    continue;
                }
                match ranges.last_mut() {
                    Some((_, end)) if *end + 1 == c as u32 => *end = c as u32,
                    _ => ranges.push((c as u32, c as u32)),
                }
            }
            for line in ranges.chunks(8) {
                text.push(name);
                for (start, end) in line {
                    text.push_str(&format!(" {start:X}-{end:X}"));
                }
                text.push('\n');
            }
        }
        text
    }

    #[test]
    fn unicode_classes_file_matches_the_table() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(REFERENCE_CLASSES);
        let expected = unicode_classes_text();
        if std::env::var_os("BBPE_WRITE_UNICODE_CLASSES").is_some() {
            std::fs::write(&path, &expected).unwrap();
        }
        let shipped = std::fs::read_to_string(&path).unwrap();
        assert!(
            shipped == expected,
            "{REFERENCE_CLASSES} differs from the table; rewrite it with \
             BBPE_WRITE_UNICODE_CLASSES=1 cargo test unicode_classes_file"
        );
    }

    #[test]
    fn classes_of_known_characters() {
        assert_eq!(class_of('a'), CharClass::Letter);
        assert_eq!(class_of('한'), CharClass::Letter);
        assert_eq!(class_of('漢'), CharClass::Letter);
        assert_eq!(class_of('7'), CharClass::Number);
        assert_eq!(class_of('٣'), CharClass::Number);
        assert_eq!(class_of('Ⅻ'), CharClass::Number);
        assert_eq!(class_of(' '), CharClass::Space);
        assert_eq!(class_of('\u{3000}'), CharClass::Space);
        assert_eq!(class_of('\u{85}'), CharClass::Space);
        assert_eq!(class_of('\u{301}'), CharClass::Other);
        assert_eq!(class_of('😀'), CharClass::Other);
        assert_eq!(class_of('\''), CharClass::Other);
    }

    #[test]
    fn class_at_agrees_with_class_of_for_every_character() {
        let mut buffer = [0u8; 4];
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let encoded = c.encode_utf8(&mut buffer).as_bytes();
            assert_eq!(class_at(encoded, 0), (class_of(c), c.len_utf8()), "{c:?}");
        }
    }

    #[test]
    fn class_at_agrees_with_class_of() {
        let text = "a한😀\u{3000}٣é\u{10FFFF}";
        let mut i = 0;
        for c in text.chars() {
            assert_eq!(class_at(text.as_bytes(), i), (class_of(c), c.len_utf8()));
            i += c.len_utf8();
        }
    }
}
