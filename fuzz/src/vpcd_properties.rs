//! What the `vpcd_framing` target checks of one input. Shared with the replay test
//! (`virtual-reader/tests/fuzz_corpus.rs` includes this file).

use std::io::{Cursor, ErrorKind, Read};

use virtual_reader::vpcd::protocol::{encode_reply, read_frame};
use virtual_reader::vpcd::VpcdMessage;

/// A reader that hands out at most `chunk` bytes per `read`, as a TCP socket may.
struct Chunked {
    inner: Cursor<Vec<u8>>,
    chunk: usize,
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.chunk);
        self.inner.read(&mut buf[..n])
    }
}

/// The first byte is the read size (1–256 bytes per `read`), the rest a byte stream from vpcd. Frames
/// are read until the stream ends: never a panic; a clean end only between frames, a frame cut short is
/// `UnexpectedEof`; each body decodes to a message or a typed error; and a non-empty body framed as a
/// reply reads back as the same body.
pub fn framing(data: &[u8]) {
    let Some((chunk, stream)) = data.split_first() else {
        return;
    };
    let mut reader = Chunked {
        inner: Cursor::new(stream.to_vec()),
        chunk: usize::from(*chunk) + 1,
    };
    let mut body = Vec::new();
    let mut consumed = 0usize;
    loop {
        match read_frame(&mut reader, &mut body, &mut |_| {}) {
            Ok(true) => {
                consumed += 2 + body.len();
                assert_eq!(
                    reader.inner.position() as usize,
                    consumed,
                    "a frame is length + body"
                );
                let _ = VpcdMessage::decode(&body).map(|m| m.expects_reply());
                if let Ok(frame) = encode_reply(&body) {
                    let mut again = Vec::new();
                    let read = read_frame(&mut Cursor::new(frame), &mut again, &mut |_| {});
                    assert!(
                        matches!(read, Ok(true)) && again == body,
                        "reply round trip"
                    );
                } else {
                    assert!(body.is_empty(), "only an empty body cannot be a reply");
                }
            }
            Ok(false) => {
                assert_eq!(consumed, stream.len(), "a clean end only between frames");
                return;
            }
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::UnexpectedEof, "{error}");
                assert!(consumed < stream.len(), "a cut frame has bytes left");
                return;
            }
        }
    }
}
