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

const fn from_code(code: u8) -> CharClass {
    match code {
        1 => CharClass::Letter,
        2 => CharClass::Number,
        3 => CharClass::Space,
        _ => CharClass::Other,
    }
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

#[inline]
pub fn class_of(c: char) -> CharClass {
    let cp = c as usize;
    let block = table::BLOCK_INDEX[cp >> 8] as usize;
    from_code(table::BLOCKS[block][cp & 0xFF])
}

/// Class and UTF-8 length of the character starting at `bytes[i]`.
/// `bytes` must be valid UTF-8 and `i` a character boundary.
#[inline(always)]
pub fn class_at(bytes: &[u8], i: usize) -> (CharClass, usize) {
    let lead = bytes[i];
    if lead < 0x80 {
        return (ASCII_CLASS[lead as usize], 1);
    }
    let (cp, len) = if lead < 0xE0 {
        (
            ((lead as u32 & 0x1F) << 6) | (bytes[i + 1] as u32 & 0x3F),
            2,
        )
    } else if lead < 0xF0 {
        (
            ((lead as u32 & 0x0F) << 12)
                | ((bytes[i + 1] as u32 & 0x3F) << 6)
                | (bytes[i + 2] as u32 & 0x3F),
            3,
        )
    } else {
        (
            ((lead as u32 & 0x07) << 18)
                | ((bytes[i + 1] as u32 & 0x3F) << 12)
                | ((bytes[i + 2] as u32 & 0x3F) << 6)
                | (bytes[i + 3] as u32 & 0x3F),
            4,
        )
    };
    let block = table::BLOCK_INDEX[(cp >> 8) as usize] as usize;
    (from_code(table::BLOCKS[block][(cp & 0xFF) as usize]), len)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn class_at_agrees_with_class_of() {
        let text = "a한😀\u{3000}٣é\u{10FFFF}";
        let mut i = 0;
        for c in text.chars() {
            assert_eq!(class_at(text.as_bytes(), i), (class_of(c), c.len_utf8()));
            i += c.len_utf8();
        }
    }
}
