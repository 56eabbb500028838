//! A bounded byte reader: every read checks the remaining length, nested structures are read through
//! [`Reader::sub`], and leftover bytes are an error the caller must ask for ([`Reader::expect_end`]).

use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ReaderError {
    #[error("input ends early: needed {needed} more byte(s) at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("{count} unexpected trailing byte(s) at offset {offset}")]
    TrailingBytes { offset: usize, count: usize },
}

#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn offset(&self) -> usize {
        self.pos
    }

    /// The next byte without consuming it.
    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub fn take(&mut self, len: usize) -> Result<&'a [u8], ReaderError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.buf.len())
            .ok_or(ReaderError::Truncated {
                offset: self.pos,
                needed: len - self.remaining().min(len),
            })?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, ReaderError> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, ReaderError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A reader over the next `len` bytes; the outer reader moves past them.
    pub fn sub(&mut self, len: usize) -> Result<Reader<'a>, ReaderError> {
        Ok(Reader::new(self.take(len)?))
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    pub fn expect_end(&self) -> Result<(), ReaderError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ReaderError::TrailingBytes {
                offset: self.pos,
                count: self.remaining(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(
            r.take(5),
            Err(ReaderError::Truncated {
                offset: 1,
                needed: 3
            })
        );
        assert_eq!(r.u16(), Ok(0x0203));
        assert_eq!(r.expect_end(), Ok(()));
        assert!(r.u8().is_err());
    }

    #[test]
    fn sub_reader_moves_outer_past_nested_bytes() {
        let mut r = Reader::new(&[9, 8, 7, 6]);
        let mut inner = r.sub(2).unwrap();
        assert_eq!(inner.rest(), &[9, 8]);
        assert_eq!(r.u8(), Ok(7));
        assert!(r.expect_end().is_err());
    }
}
