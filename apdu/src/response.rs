//! Response APDUs: data followed by the status word.

use thiserror::Error;

use crate::StatusWord;

#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: StatusWord,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ResponseError {
    #[error("a response APDU needs at least the 2 status bytes, got {0} byte(s)")]
    TooShort(usize),
}

impl Response {
    pub fn new(data: impl Into<Vec<u8>>, sw: StatusWord) -> Self {
        Self {
            data: data.into(),
            sw,
        }
    }

    /// A response with no data, only a status word.
    pub fn status(sw: StatusWord) -> Self {
        Self::new(Vec::new(), sw)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ResponseError> {
        match bytes {
            [data @ .., sw1, sw2] => Ok(Self::new(data, StatusWord::from_bytes(*sw1, *sw2))),
            _ => Err(ResponseError::TooShort(bytes.len())),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.to_bytes());
        out
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Response {{ {} data byte(s), {:?} }}",
            self.data.len(),
            self.sw
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_data_and_status() {
        let r = Response::from_bytes(&[1, 2, 0x90, 0x00]).unwrap();
        assert_eq!(r.data, [1, 2]);
        assert_eq!(r.sw, StatusWord::SUCCESS);
        assert_eq!(r.to_bytes(), [1, 2, 0x90, 0x00]);
        assert_eq!(
            Response::from_bytes(&[0x90]),
            Err(ResponseError::TooShort(1))
        );
    }
}
