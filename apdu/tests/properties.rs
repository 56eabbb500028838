//! Property tests: encode∘decode is the identity, and arbitrary bytes never panic any decoder.

use apdu::{tlv, Command, CommandChain, Reader, Response};
use proptest::prelude::*;

fn any_command() -> impl Strategy<Value = Command> {
    (
        any::<[u8; 4]>(),
        prop_oneof![Just(0usize), 1usize..=255, 256usize..=700],
        prop_oneof![Just(None), (1usize..=65536).prop_map(Some)],
        any::<bool>(),
    )
        .prop_map(|(h, nc, ne, force_extended)| {
            let mut c = Command::new(h[0], h[1], h[2], h[3]).with_data(vec![0x5A; nc]);
            if let Some(ne) = ne {
                c = c.with_le(ne).expect("ne in range");
            }
            if force_extended {
                c = c.extended();
            }
            c
        })
}

proptest! {
    #[test]
    fn command_decode_inverts_encode(command in any_command()) {
        let bytes = command.to_bytes();
        prop_assert_eq!(Command::from_bytes(&bytes), Ok(command));
    }

    #[test]
    fn command_encode_inverts_decode(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(command) = Command::from_bytes(&bytes) {
            prop_assert_eq!(command.to_bytes(), bytes);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Command::from_bytes(&bytes);
        let _ = Response::from_bytes(&bytes);
        let _ = tlv::parse_all(&bytes);
        let _ = tlv::find(&bytes, 0x5FC102u32);
        let _ = tlv::read(&mut Reader::new(&bytes));
        let mut chain = CommandChain::new(512);
        for piece in bytes.chunks(9) {
            if let Ok(c) = Command::from_bytes(piece) {
                let _ = chain.push(c);
            }
        }
    }

    #[test]
    fn tlv_agrees_with_iso7816_tlv(
        tag in prop_oneof![0x01u32..=0x1E, 0x5F01u32..=0x5F7F, Just(0x5FC102u32)],
        value in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let ours = tlv::encode(tag, &value);
        let theirs = iso7816_tlv::ber::Tlv::new(
            iso7816_tlv::ber::Tag::try_from(tag).expect("valid tag"),
            iso7816_tlv::ber::Value::Primitive(value.clone()),
        ).expect("valid tlv").to_vec();
        // iso7816-tlv writes a length of exactly 127 as `81 7F`; ISO 7816-4 and we use the one-byte form.
        // Both decode to the same value.
        if value.len() != 127 {
            prop_assert_eq!(&ours, &theirs);
        }
        prop_assert_eq!(tlv::expect(&ours, tag), Ok(value.as_slice()));
        prop_assert_eq!(tlv::expect(&theirs, tag), Ok(value.as_slice()));
    }

    #[test]
    fn chained_links_reassemble(data in proptest::collection::vec(any::<u8>(), 1..1200), size in 1usize..=255) {
        let mut chain = CommandChain::new(4096);
        let pieces: Vec<&[u8]> = data.chunks(size).collect();
        let mut whole = None;
        for (i, piece) in pieces.iter().enumerate() {
            let cla = if i + 1 < pieces.len() { 0x10 } else { 0x00 };
            match chain.push(Command::new(cla, 0xDB, 0x3F, 0xFF).with_data(piece.to_vec())).expect("within limit") {
                apdu::Chained::Pending => prop_assert!(i + 1 < pieces.len()),
                apdu::Chained::Complete(c) => whole = Some(c),
            }
        }
        prop_assert_eq!(whole.map(|c| c.data), Some(data));
    }
}
