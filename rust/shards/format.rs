//! Megatron's indexed dataset format (`prefix.bin` + `prefix.idx`), as
//! Megatron-LM / megatron-core, NeMo and GPT-NeoX read it.
//!
//! `.bin` holds the token ids of all sequences end to end, little-endian, no
//! header. `.idx`, little-endian: the magic `MMIDIDX\0\0`, u64 version 1, u8
//! dtype code, u64 N (sequences), u64 D (documents + 1), then i32[N] sequence
//! lengths, i64[N] byte offsets of the sequences in `.bin`, i64[D] document
//! indices `[0, ..., N]` (entry k+1 is one past document k's last sequence).

use std::io::{self, Write};

pub const MAGIC: &[u8; 9] = b"MMIDIDX\x00\x00";
pub const VERSION: u64 = 1;

/// The id types bbpe writes. Megatron has no u32 code, so vocabularies too
/// big for u16 take i32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenDtype {
    U16,
    I32,
}

impl TokenDtype {
    /// u16 below 65,500 ids (Megatron's own threshold), i32 above.
    pub fn for_vocab_size(size: usize) -> Self {
        if size < 65_500 {
            TokenDtype::U16
        } else {
            TokenDtype::I32
        }
    }

    /// Megatron's dtype code.
    pub fn code(self) -> u8 {
        match self {
            TokenDtype::U16 => 8,
            TokenDtype::I32 => 4,
        }
    }

    pub fn itemsize(self) -> usize {
        match self {
            TokenDtype::U16 => 2,
            TokenDtype::I32 => 4,
        }
    }

    /// The NumPy name, as manifests and readers spell it.
    pub fn name(self) -> &'static str {
        match self {
            TokenDtype::U16 => "uint16",
            TokenDtype::I32 => "int32",
        }
    }

    pub fn max_id(self) -> u32 {
        match self {
            TokenDtype::U16 => u16::MAX as u32,
            TokenDtype::I32 => i32::MAX as u32,
        }
    }

    /// Writes `ids` into `out` (exactly their size) as little-endian values;
    /// the first id that does not fit is returned as the error. Both passes
    /// vectorise (no early exit, no pushes of single bytes).
    pub fn write_bytes(self, ids: &[u32], out: &mut [u8]) -> Result<(), u32> {
        debug_assert_eq!(out.len(), ids.len() * self.itemsize());
        let largest = ids.iter().copied().max().unwrap_or(0);
        if largest > self.max_id() {
            return Err(*ids
                .iter()
                .find(|&&id| id > self.max_id())
                .expect("the largest"));
        }
        match self {
            TokenDtype::U16 => {
                for (to, &id) in out.chunks_exact_mut(2).zip(ids) {
                    to.copy_from_slice(&(id as u16).to_le_bytes());
                }
            }
            TokenDtype::I32 => {
                for (to, &id) in out.chunks_exact_mut(4).zip(ids) {
                    to.copy_from_slice(&(id as i32).to_le_bytes());
                }
            }
        }
        Ok(())
    }
}

/// Writes a complete `.idx` for sequences of `lengths` tokens grouped into
/// documents by `document_indices` (which starts at 0 and ends at N).
pub fn write_index(
    out: &mut impl Write,
    dtype: TokenDtype,
    lengths: &[i32],
    document_indices: &[i64],
) -> io::Result<()> {
    out.write_all(MAGIC)?;
    out.write_all(&VERSION.to_le_bytes())?;
    out.write_all(&[dtype.code()])?;
    out.write_all(&(lengths.len() as u64).to_le_bytes())?;
    out.write_all(&(document_indices.len() as u64).to_le_bytes())?;
    let mut buffer = Vec::with_capacity(lengths.len() * 8);
    buffer.extend(lengths.iter().flat_map(|l| l.to_le_bytes()));
    out.write_all(&buffer)?;
    buffer.clear();
    let mut pointer = 0i64;
    for &length in lengths {
        buffer.extend(pointer.to_le_bytes());
        pointer += length as i64 * dtype.itemsize() as i64;
    }
    out.write_all(&buffer)?;
    buffer.clear();
    buffer.extend(document_indices.iter().flat_map(|d| d.to_le_bytes()));
    out.write_all(&buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_layout_field_by_field() {
        let mut idx = Vec::new();
        write_index(&mut idx, TokenDtype::U16, &[3, 0, 2], &[0, 2, 3]).unwrap();
        assert_eq!(&idx[..9], b"MMIDIDX\x00\x00");
        assert_eq!(u64::from_le_bytes(idx[9..17].try_into().unwrap()), 1);
        assert_eq!(idx[17], 8);
        assert_eq!(u64::from_le_bytes(idx[18..26].try_into().unwrap()), 3);
        assert_eq!(u64::from_le_bytes(idx[26..34].try_into().unwrap()), 3);
        let i32s: Vec<i32> = idx[34..46]
            .chunks(4)
            .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(i32s, [3, 0, 2]);
        let i64s: Vec<i64> = idx[46..]
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(i64s, [0, 6, 6, 0, 2, 3]);
    }

    #[test]
    fn dtype_follows_vocabulary_size_and_refuses_overflow() {
        assert_eq!(TokenDtype::for_vocab_size(50_265), TokenDtype::U16);
        assert_eq!(TokenDtype::for_vocab_size(65_499), TokenDtype::U16);
        assert_eq!(TokenDtype::for_vocab_size(65_500), TokenDtype::I32);
        let mut out = [0; 4];
        TokenDtype::U16.write_bytes(&[1, 0x1234], &mut out).unwrap();
        assert_eq!(out, [1, 0, 0x34, 0x12]);
        assert_eq!(
            TokenDtype::U16.write_bytes(&[5, 70_000], &mut out),
            Err(70_000)
        );
        TokenDtype::I32.write_bytes(&[70_000], &mut out).unwrap();
        assert_eq!(out, 70_000i32.to_le_bytes());
    }
}
