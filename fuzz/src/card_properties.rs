//! What the `install_params` and `card_image` targets check of one input. Shared with the replay test
//! (`applets/piv/tests/fuzz_corpus.rs` includes this file).

use std::path::Path;
use std::sync::OnceLock;

use card_os::store::CardImage;
use card_os::{AppletRegistry, Card, CardConfig, Storage};
use piv_applet::InstallParams;
use sha2::{Digest, Sha256};

/// The PIV applet's install parameters: never a panic; accepted parameters round-trip.
pub fn install_params(data: &[u8]) {
    if let Ok(params) = InstallParams::from_bytes(data) {
        let again =
            InstallParams::from_bytes(&params.to_bytes()).expect("re-encoded params decode");
        assert!(
            again == params,
            "install parameters changed in a round trip"
        );
    }
}

/// The card image decoder. A first byte that is even: the rest is the file itself (shallow: the
/// checksum refuses almost everything); odd: the rest is the *body* of an image, framed with the real
/// header and a valid checksum ([`framed`]), so the structural decoder is reached, as with a crafted
/// file someone hands you. Never a panic; an image that decodes re-encodes to bytes that decode to the
/// same image.
pub fn card_image(data: &[u8]) {
    let bytes = match data.split_first() {
        Some((first, body)) if first % 2 == 1 => framed(body),
        Some((_, file)) => file.to_vec(),
        None => Vec::new(),
    };
    let path = Path::new("fuzzed.img");
    if let Ok(image) = CardImage::decode(&bytes, path) {
        let encoded = image.encode();
        let again = CardImage::decode(&encoded, path).expect("a re-encoded image decodes");
        assert_eq!(again.encode(), encoded, "decode and encode disagree");
    }
}

/// The magic and format version every image starts with (15 bytes), from an image card-os writes.
fn magic_and_version() -> &'static [u8] {
    static PREFIX: OnceLock<Vec<u8>> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let mut card = Card::create(
            CardConfig::default(),
            &AppletRegistry::new(),
            &[],
            Storage::Memory,
        )
        .expect("an empty card");
        card.image_bytes()[..15].to_vec()
    })
}

/// `body` as a checksum-valid image file.
pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = magic_and_version().to_vec();
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(body);
    let checksum = Sha256::digest(&out);
    out.extend_from_slice(&checksum);
    out
}
