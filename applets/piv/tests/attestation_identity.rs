//! The card's attestation identity (F9 key, `5FFF01` certificate) is made at its first use from a seed
//! drawn at installation: whenever that use comes, and whatever the card did before, the bytes are the
//! same — and a power cut while it is being made leaves either nothing or all of it.
#![allow(clippy::unwrap_used)]

mod support;

use card_os::tearing::{check_every_cut_point, CutPoint};
use card_os::{Card, Clock};
use support::*;

const GET_ATTESTATION_CERT: &str = "00 CB 3F FF 05 5C 03 5F FF 01 00";
const METADATA_F9: &str = "00 F7 00 F9 00";

fn attestation_cert(card: &mut Card) -> Vec<u8> {
    let (value, status) = tx_all(card, &h(GET_ATTESTATION_CERT));
    assert_eq!(status, 0x9000);
    value
}

#[test]
fn the_identity_is_the_same_whenever_it_is_first_used() {
    let mut early = card();
    let first = attestation_cert(&mut early);
    let f9_early = tx(&mut early, METADATA_F9);

    // The same card (same seed), used for a while and at another time before anyone asks.
    let mut late = card();
    default_auth(&mut late);
    generate(&mut late, 0x9A);
    generate(&mut late, 0x9C);
    tx(&mut late, VERIFY_DEFAULT_PIN);
    late.set_clock(Clock::Fixed(1_900_000_000)).unwrap();
    late.reset();
    assert_eq!(tx(&mut late, SELECT_5), SELECT_ANSWER);
    assert_eq!(tx(&mut late, METADATA_F9), f9_early);
    assert_eq!(attestation_cert(&mut late), first);

    // Asked again, nothing changes; a reset of the application keeps it.
    assert_eq!(attestation_cert(&mut early), first);
    for _ in 0..3 {
        tx(&mut early, "00 20 00 80 08 39 39 39 39 39 39 39 39");
        tx(
            &mut early,
            "00 2C 00 80 10 39 39 39 39 39 39 39 39 31 32 33 34 35 36 FF FF",
        );
    }
    assert_eq!(sw(&tx(&mut early, "00 FB 00 00")), "9000");
    assert_eq!(attestation_cert(&mut early), first);

    // Another seed, another identity.
    let mut other = card_with(8, Vec::new());
    assert_eq!(tx(&mut other, SELECT_5), SELECT_ANSWER);
    assert_ne!(attestation_cert(&mut other), first);
}

#[test]
fn a_cut_while_the_identity_is_made_leaves_all_or_nothing() {
    let expected = attestation_cert(&mut card());
    let f9 = tx(&mut card(), METADATA_F9);
    let script = vec![h(GET_ATTESTATION_CERT)];
    let checked = check_every_cut_point(card, &script, |card: &mut Card, _cut: CutPoint| {
        card.reset();
        if tx(card, SELECT_5) != SELECT_ANSWER {
            return Err("SELECT after recovery".into());
        }
        // Whatever the cut left, the next use sees the one identity.
        if tx(card, METADATA_F9) != f9 {
            return Err("F9 metadata differs after recovery".into());
        }
        if attestation_cert(card) != expected {
            return Err("the certificate differs after recovery".into());
        }
        Ok(())
    });
    assert!(
        checked >= 2,
        "making the identity writes: {checked} cut points"
    );
}
