//! BER-TLV as ISO 7816-4 uses it: tags of 1 to 3 bytes, definite lengths in the 1-, 2- and 3-byte forms
//! (`xx`, `81 xx`, `82 xx xx`) and `83 xx xx xx`. Decoding goes through the bounded [`Reader`], is
//! iterative (no recursion, so nesting depth cannot exhaust the stack) and borrows the value bytes.
//!
//! Encoding writes the shortest length form. The `iso7816-tlv` crate is the reference the tests check
//! this module against.

use thiserror::Error;

use crate::Reader;

/// A BER-TLV tag, held as its wire bytes read big-endian (`5F C1 02` is `Tag(0x5FC102)`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u32);

impl Tag {
    /// The wire bytes of the tag.
    pub fn to_bytes(self) -> Vec<u8> {
        let bytes = self.0.to_be_bytes();
        let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
        bytes[skip..].to_vec()
    }

    /// Bit 6 of the first byte: the value is itself a sequence of TLVs.
    pub fn is_constructed(self) -> bool {
        self.to_bytes()[0] & 0x20 != 0
    }
}

impl From<u32> for Tag {
    fn from(value: u32) -> Self {
        Tag(value)
    }
}

impl std::fmt::Debug for Tag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tag({})", crate::hex_spaced(&self.to_bytes()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TlvError {
    #[error("TLV ends early at offset {0}")]
    Truncated(usize),
    #[error("tag longer than 3 bytes at offset {0}")]
    TagTooLong(usize),
    #[error("unsupported length form {byte:02X} at offset {offset}")]
    BadLengthForm { offset: usize, byte: u8 },
    #[error("expected tag {expected:?}, found {found:?}")]
    UnexpectedTag { expected: Tag, found: Tag },
    #[error("{0} trailing byte(s) after the TLV")]
    TrailingBytes(usize),
}

/// One decoded TLV; the value borrows the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: Tag,
    pub value: &'a [u8],
}

impl<'a> Tlv<'a> {
    /// The TLVs inside this one's value.
    pub fn children(&self) -> TlvIter<'a> {
        iter(self.value)
    }
}

fn truncated(r: &Reader<'_>) -> TlvError {
    TlvError::Truncated(r.offset())
}

/// Reads one TLV from the reader.
pub fn read<'a>(r: &mut Reader<'a>) -> Result<Tlv<'a>, TlvError> {
    let start = r.offset();
    let first = r.u8().map_err(|_| truncated(r))?;
    let mut tag = u32::from(first);
    if first & 0x1F == 0x1F {
        let mut count = 1;
        loop {
            let next = r.u8().map_err(|_| truncated(r))?;
            count += 1;
            if count > 3 {
                return Err(TlvError::TagTooLong(start));
            }
            tag = tag << 8 | u32::from(next);
            if next & 0x80 == 0 {
                break;
            }
        }
    }
    let len_offset = r.offset();
    let len_byte = r.u8().map_err(|_| truncated(r))?;
    let len = match len_byte {
        0x00..=0x7F => usize::from(len_byte),
        0x81..=0x83 => {
            let n = usize::from(len_byte & 0x7F);
            let bytes = r.take(n).map_err(|_| truncated(r))?;
            bytes
                .iter()
                .fold(0usize, |acc, b| acc << 8 | usize::from(*b))
        }
        byte => {
            return Err(TlvError::BadLengthForm {
                offset: len_offset,
                byte,
            })
        }
    };
    let value = r.take(len).map_err(|_| truncated(r))?;
    Ok(Tlv {
        tag: Tag(tag),
        value,
    })
}

/// Decodes exactly one TLV with the expected tag; trailing bytes are an error.
pub fn expect(bytes: &[u8], tag: impl Into<Tag>) -> Result<&[u8], TlvError> {
    let tag = tag.into();
    let mut r = Reader::new(bytes);
    let tlv = read(&mut r)?;
    if tlv.tag != tag {
        return Err(TlvError::UnexpectedTag {
            expected: tag,
            found: tlv.tag,
        });
    }
    if !r.is_empty() {
        return Err(TlvError::TrailingBytes(r.remaining()));
    }
    Ok(tlv.value)
}

/// Iterates over a sequence of TLVs. Stops after the first error.
pub fn iter(bytes: &[u8]) -> TlvIter<'_> {
    TlvIter {
        reader: Reader::new(bytes),
        failed: false,
    }
}

/// Decodes a whole sequence of TLVs.
pub fn parse_all(bytes: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    iter(bytes).collect()
}

/// The value of the first TLV with this tag in a sequence (malformed input is an error, not "absent").
pub fn find(bytes: &[u8], tag: impl Into<Tag>) -> Result<Option<&[u8]>, TlvError> {
    let tag = tag.into();
    for tlv in iter(bytes) {
        let tlv = tlv?;
        if tlv.tag == tag {
            return Ok(Some(tlv.value));
        }
    }
    Ok(None)
}

pub struct TlvIter<'a> {
    reader: Reader<'a>,
    failed: bool,
}

impl<'a> Iterator for TlvIter<'a> {
    type Item = Result<Tlv<'a>, TlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.reader.is_empty() {
            return None;
        }
        let item = read(&mut self.reader);
        self.failed = item.is_err();
        Some(item)
    }
}

/// Appends a BER length in its shortest form.
pub fn write_len(out: &mut Vec<u8>, len: usize) {
    match len {
        0..=0x7F => out.push(len as u8),
        0x80..=0xFF => out.extend_from_slice(&[0x81, len as u8]),
        0x100..=0xFFFF => {
            out.push(0x82);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x83);
            out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        }
    }
}

/// Appends one TLV.
pub fn write(out: &mut Vec<u8>, tag: impl Into<Tag>, value: &[u8]) {
    out.extend_from_slice(&tag.into().to_bytes());
    write_len(out, value.len());
    out.extend_from_slice(value);
}

/// One TLV as a new vector.
pub fn encode(tag: impl Into<Tag>, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    write(&mut out, tag, value);
    out
}

/// Appends a constructed TLV whose value `build` writes.
pub fn write_nested(out: &mut Vec<u8>, tag: impl Into<Tag>, build: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    build(&mut inner);
    write(out, tag, &inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_forms() {
        for (len, prefix) in [
            (5usize, vec![0x05]),
            (0x80, vec![0x81, 0x80]),
            (0x1234, vec![0x82, 0x12, 0x34]),
            (0x012345, vec![0x83, 0x01, 0x23, 0x45]),
        ] {
            let value = vec![0xAB; len];
            let bytes = encode(0x53u32, &value);
            assert_eq!(&bytes[1..1 + prefix.len()], prefix.as_slice());
            assert_eq!(expect(&bytes, 0x53u32), Ok(value.as_slice()));
        }
    }

    #[test]
    fn multi_byte_tags() {
        let bytes = encode(0x5FC102u32, &[1]);
        assert_eq!(bytes, [0x5F, 0xC1, 0x02, 0x01, 0x01]);
        let bytes = encode(0x7F49u32, &[]);
        let tlv = read(&mut Reader::new(&bytes)).unwrap();
        assert_eq!(tlv.tag, Tag(0x7F49));
        assert!(tlv.tag.is_constructed());
        assert_eq!(
            read(&mut Reader::new(&[0x5F, 0x81, 0x82, 0x03, 0])),
            Err(TlvError::TagTooLong(0))
        );
    }

    #[test]
    fn nested_values() {
        let mut out = Vec::new();
        write_nested(&mut out, 0x7Cu32, |inner| {
            write(inner, 0x82u32, &[]);
            write(inner, 0x81u32, &[9, 9]);
        });
        let outer = expect(&out, 0x7Cu32).unwrap();
        assert_eq!(find(outer, 0x81u32), Ok(Some(&[9u8, 9][..])));
        assert_eq!(find(outer, 0x85u32), Ok(None));
    }

    #[test]
    fn malformed_is_an_error() {
        assert_eq!(
            expect(&[0x53, 0x05, 1, 2], 0x53u32),
            Err(TlvError::Truncated(2))
        );
        assert!(matches!(
            expect(&[0x53, 0x80], 0x53u32),
            Err(TlvError::BadLengthForm { .. })
        ));
        assert!(matches!(
            expect(&[0x53, 0x84, 0, 0, 0, 1, 0], 0x53u32),
            Err(TlvError::BadLengthForm { .. })
        ));
        assert_eq!(
            expect(&[0x53, 0x00, 0x00], 0x53u32),
            Err(TlvError::TrailingBytes(1))
        );
        assert!(matches!(
            expect(&[0x54, 0x00], 0x53u32),
            Err(TlvError::UnexpectedTag { .. })
        ));
        assert!(find(&[0x81, 0x01, 0x00, 0x82, 0x05], 0x99u32).is_err());
    }
}
