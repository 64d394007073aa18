//! GPT-2's reversible map from bytes to printable characters.
//!
//! Vocabulary files store tokens as strings in this alphabet (a space byte is
//! `Ġ`, a newline `Ċ`), so that every byte sequence is a printable string.

/// The character that stands for each byte.
pub const fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut shifted = 0u32;
    let mut byte = 0usize;
    while byte < 256 {
        let printable = (byte >= b'!' as usize && byte <= b'~' as usize)
            || (byte >= 0xA1 && byte <= 0xAC)
            || (byte >= 0xAE && byte <= 0xFF);
        let code = if printable {
            byte as u32
        } else {
            shifted += 1;
            255 + shifted
        };
        table[byte] = match char::from_u32(code) {
            Some(c) => c,
            None => panic!("byte alphabet code points are valid"),
        };
        byte += 1;
    }
    table
}

pub static BYTE_TO_CHAR: [char; 256] = byte_to_char_table();

/// The byte a character of the alphabet stands for, if it is one.
pub fn char_to_byte(c: char) -> Option<u8> {
    let code = c as u32;
    let byte = match code {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => code,
        0x100..=0x143 => {
            // The 68 non-printable bytes, numbered in byte order from U+0100.
            let rank = code - 0x100;
            return NON_PRINTABLE.get(rank as usize).copied();
        }
        _ => return None,
    };
    Some(byte as u8)
}

/// All 256 bytes ordered by the code point of their character: the order in
/// which Hugging Face's trainer (and GPT-2's vocabulary) number them.
pub fn bytes_in_char_order() -> impl Iterator<Item = u8> {
    let mut bytes: Vec<u8> = (0..=255).collect();
    bytes.sort_by_key(|&b| BYTE_TO_CHAR[b as usize]);
    bytes.into_iter()
}

static NON_PRINTABLE: [u8; 68] = non_printable_bytes();

const fn non_printable_bytes() -> [u8; 68] {
    let mut out = [0u8; 68];
    let mut n = 0;
    let mut byte = 0usize;
    while byte < 256 {
        let printable = (byte >= 0x21 && byte <= 0x7E)
            || (byte >= 0xA1 && byte <= 0xAC)
            || (byte >= 0xAE && byte <= 0xFF);
        if !printable {
            out[n] = byte as u8;
            n += 1;
        }
        byte += 1;
    }
    out
}

/// Bytes as a string in the alphabet (how vocabulary files spell a token).
pub fn bytes_to_token_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| BYTE_TO_CHAR[b as usize]).collect()
}

/// The bytes a token string spells, or the first character outside the alphabet.
pub fn token_string_to_bytes(token: &str) -> Result<Vec<u8>, char> {
    let mut bytes = Vec::with_capacity(token.chars().count());
    for c in token.chars() {
        bytes.push(char_to_byte(c).ok_or(c)?);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_characters() {
        assert_eq!(BYTE_TO_CHAR[b' ' as usize], 'Ġ');
        assert_eq!(BYTE_TO_CHAR[b'\n' as usize], 'Ċ');
        assert_eq!(BYTE_TO_CHAR[b'A' as usize], 'A');
        assert_eq!(BYTE_TO_CHAR[0], 'Ā');
        assert_eq!(BYTE_TO_CHAR[0xAD], 'Ń');
    }

    #[test]
    fn round_trip_every_byte() {
        let mut seen = std::collections::HashSet::new();
        for byte in 0..=255u8 {
            let c = BYTE_TO_CHAR[byte as usize];
            assert!(seen.insert(c), "{c} used twice");
            assert_eq!(char_to_byte(c), Some(byte));
        }
        assert_eq!(char_to_byte('Ņ'), None);
        assert_eq!(char_to_byte(' '), None);
    }
}
