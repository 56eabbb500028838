//! The vpcd wire protocol, both directions: every message is a 2-byte big-endian
//! length followed by that many bytes.
//!
//! From vpcd to the card a 1-byte body is a control byte (power off/on, reset,
//! get ATR) and a body of two or more bytes is a command APDU. The card answers
//! get-ATR and APDUs with one framed message and nothing else.

use std::io::{self, Read};

/// The largest body a 2-byte length can announce.
pub const MAX_BODY: usize = 0xFFFF;

/// A control byte sent by vpcd as a 1-byte message. Unknown values are kept so they
/// can be logged, and print as hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Control(pub u8);

impl Control {
    pub const POWER_OFF: Self = Self(0x00);
    pub const POWER_ON: Self = Self(0x01);
    pub const RESET: Self = Self(0x02);
    pub const GET_ATR: Self = Self(0x04);
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match *self {
            Self::POWER_OFF => "POWER_OFF",
            Self::POWER_ON => "POWER_ON",
            Self::RESET => "RESET",
            Self::GET_ATR => "GET_ATR",
            _ => return write!(f, "Control({:#04x})", self.0),
        };
        f.write_str(name)
    }
}

/// One message from vpcd to the card, decoded from a frame body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VpcdMessage<'a> {
    PowerOff,
    PowerOn,
    Reset,
    GetAtr,
    /// A command APDU (always at least 2 bytes). May contain PINs: never log it.
    Apdu(&'a [u8]),
}

impl<'a> VpcdMessage<'a> {
    /// Decodes a frame body. Total: every input is either a message or a typed error.
    pub fn decode(body: &'a [u8]) -> Result<Self, ProtocolError> {
        match body {
            [] => Err(ProtocolError::EmptyMessage),
            [byte] => match Control(*byte) {
                Control::POWER_OFF => Ok(Self::PowerOff),
                Control::POWER_ON => Ok(Self::PowerOn),
                Control::RESET => Ok(Self::Reset),
                Control::GET_ATR => Ok(Self::GetAtr),
                unknown => Err(ProtocolError::UnknownControl(unknown)),
            },
            apdu => Ok(Self::Apdu(apdu)),
        }
    }

    /// Whether vpcd waits for a reply to this message.
    pub fn expects_reply(&self) -> bool {
        matches!(self, Self::GetAtr | Self::Apdu(_))
    }
}

/// What can be wrong with a vpcd message, in either direction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("vpcd sent an empty message")]
    EmptyMessage,
    #[error("vpcd sent an unknown control byte {0:?}")]
    UnknownControl(Control),
    /// vpcd treats an empty reply like EOF and drops the card.
    #[error("refusing to send an empty reply (vpcd would take it as card removal)")]
    EmptyReply,
    #[error("reply of {0} bytes does not fit a 2-byte length (max {MAX_BODY})")]
    ReplyTooLong(usize),
}

/// Frames a reply as length || body, ready to go out in ONE write (vpcd's own
/// two-write framing is what costs 44 ms per APDU; we do not repeat it).
pub fn encode_reply(body: &[u8]) -> Result<Vec<u8>, ProtocolError> {
    if body.is_empty() {
        return Err(ProtocolError::EmptyReply);
    }
    let len = u16::try_from(body.len()).map_err(|_| ProtocolError::ReplyTooLong(body.len()))?;
    let mut frame = Vec::with_capacity(2 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    Ok(frame)
}

/// Reads one frame body into `body` (replacing its contents).
///
/// Returns `Ok(false)` on a clean EOF before the first length byte (vpcd closed the
/// connection between messages) and an `UnexpectedEof` error on EOF inside a frame.
/// `around_read` runs before and after every `read` call; the slot uses it to re-arm
/// TCP_QUICKACK, which Linux does not keep set.
pub fn read_frame<R: Read>(
    reader: &mut R,
    body: &mut Vec<u8>,
    around_read: &mut dyn FnMut(&R),
) -> io::Result<bool> {
    let mut len = [0u8; 2];
    match read_full(reader, &mut len, around_read)? {
        0 => return Ok(false),
        2 => {}
        _ => return Err(io::ErrorKind::UnexpectedEof.into()),
    }
    body.clear();
    body.resize(usize::from(u16::from_be_bytes(len)), 0);
    if read_full(reader, body, around_read)? != body.len() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(true)
}

/// Fills `buf` unless EOF comes first; returns how many bytes were read.
fn read_full<R: Read>(
    reader: &mut R,
    buf: &mut [u8],
    around_read: &mut dyn FnMut(&R),
) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        around_read(reader);
        let result = reader.read(&mut buf[filled..]);
        around_read(reader);
        match result {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_control_bytes() {
        assert_eq!(VpcdMessage::decode(&[0x00]), Ok(VpcdMessage::PowerOff));
        assert_eq!(VpcdMessage::decode(&[0x01]), Ok(VpcdMessage::PowerOn));
        assert_eq!(VpcdMessage::decode(&[0x02]), Ok(VpcdMessage::Reset));
        assert_eq!(VpcdMessage::decode(&[0x04]), Ok(VpcdMessage::GetAtr));
    }

    #[test]
    fn unknown_control_bytes_are_typed_errors() {
        for byte in [0x03u8, 0x05, 0x80, 0xFF] {
            assert_eq!(
                VpcdMessage::decode(&[byte]),
                Err(ProtocolError::UnknownControl(Control(byte)))
            );
        }
        assert_eq!(format!("{:?}", Control(0x03)), "Control(0x03)");
        assert_eq!(format!("{:?}", Control::GET_ATR), "GET_ATR");
    }

    #[test]
    fn two_or_more_bytes_are_an_apdu_even_if_they_start_like_a_control() {
        assert_eq!(
            VpcdMessage::decode(&[0x00, 0xA4]),
            Ok(VpcdMessage::Apdu(&[0x00, 0xA4]))
        );
        let select = [0x00, 0xA4, 0x04, 0x00, 0x00];
        assert_eq!(VpcdMessage::decode(&select), Ok(VpcdMessage::Apdu(&select)));
    }

    #[test]
    fn empty_message_is_an_error() {
        assert_eq!(VpcdMessage::decode(&[]), Err(ProtocolError::EmptyMessage));
    }

    #[test]
    fn only_get_atr_and_apdus_expect_replies() {
        assert!(VpcdMessage::GetAtr.expects_reply());
        assert!(VpcdMessage::Apdu(&[0, 0]).expects_reply());
        assert!(!VpcdMessage::PowerOn.expects_reply());
        assert!(!VpcdMessage::PowerOff.expects_reply());
        assert!(!VpcdMessage::Reset.expects_reply());
    }

    #[test]
    fn encodes_length_then_body() {
        assert_eq!(
            encode_reply(&[0x90, 0x00]),
            Ok(vec![0x00, 0x02, 0x90, 0x00])
        );
        let max = vec![0xAB; MAX_BODY];
        let frame = encode_reply(&max).expect("max size fits");
        assert_eq!(&frame[..2], &[0xFF, 0xFF]);
        assert_eq!(frame.len(), 2 + MAX_BODY);
    }

    #[test]
    fn refuses_empty_and_oversize_replies() {
        assert_eq!(encode_reply(&[]), Err(ProtocolError::EmptyReply));
        assert_eq!(
            encode_reply(&vec![0; MAX_BODY + 1]),
            Err(ProtocolError::ReplyTooLong(MAX_BODY + 1))
        );
    }

    fn frames(input: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        let mut reader = input;
        let mut out = Vec::new();
        let mut body = Vec::new();
        while read_frame(&mut reader, &mut body, &mut |_| {})? {
            out.push(body.clone());
        }
        Ok(out)
    }

    #[test]
    fn reads_consecutive_frames_until_clean_eof() {
        let wire = [0, 1, 4, 0, 1, 1, 0, 3, 0xA, 0xB, 0xC];
        let got = frames(&wire).expect("well-formed");
        assert_eq!(got, vec![vec![4], vec![1], vec![0xA, 0xB, 0xC]]);
    }

    #[test]
    fn reads_zero_length_frame_as_empty_body() {
        let got = frames(&[0, 0, 0, 1, 4]).expect("well-formed");
        assert_eq!(got, vec![vec![], vec![4]]);
        assert_eq!(
            VpcdMessage::decode(&got[0]),
            Err(ProtocolError::EmptyMessage)
        );
    }

    #[test]
    fn reads_max_length_frame() {
        let mut wire = vec![0xFF, 0xFF];
        wire.extend(std::iter::repeat_n(7u8, MAX_BODY));
        let got = frames(&wire).expect("well-formed");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), MAX_BODY);
    }

    #[test]
    fn eof_inside_a_frame_is_an_error() {
        for wire in [&[0u8][..], &[0, 5, 1, 2], &[0, 1]] {
            let err = frames(wire).expect_err("truncated");
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{wire:?}");
        }
    }

    /// A reader that hands out one byte per call, like a slow socket.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((first, rest)) = self.0.split_first() else {
                return Ok(0);
            };
            if buf.is_empty() {
                return Ok(0);
            }
            buf[0] = *first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn short_reads_are_reassembled_and_hook_runs_around_each_read() {
        let mut reader = Trickle(&[0, 2, 0x90, 0x00]);
        let mut body = Vec::new();
        let mut calls = 0;
        let got = read_frame(&mut reader, &mut body, &mut |_| calls += 1).expect("ok");
        assert!(got);
        assert_eq!(body, [0x90, 0x00]);
        assert_eq!(calls, 8, "before and after each of the 4 reads");
    }
}
