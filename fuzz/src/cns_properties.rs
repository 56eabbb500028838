//! The CNS card behind card-os's dispatcher, fed arbitrary APDU sequences with power cuts: every
//! answer has a status word, a cut card recovers, and afterwards the PIN still answers in one of its
//! three forms and the card's key agrees with its public-key file (the `cns_session` fuzz target,
//! replayed by `applets/cns/tests/fuzz_corpus.rs`).
//!
//! Input: records `flags, len, APDU bytes (len of them)`. Flags bit 0: cut power during this
//! command, at write `(flags >> 1 & 7) + 1`, torn if bit 4 is set.

use std::sync::OnceLock;

use card_os::{Card, CardSnapshot, FaultPlan, Silence};

fn blank() -> Card {
    cns_applet::in_memory_card(Some(21), &cns_applet::InstallParams::default())
        .unwrap_or_else(|e| panic!("a CNS card: {e}"))
}

/// A card with a 1024-bit key (quick to restore), made once.
pub fn personalized() -> Card {
    static BASE: OnceLock<CardSnapshot> = OnceLock::new();
    let mut card = blank();
    let base = BASE.get_or_init(|| {
        let mut base = blank();
        let mut answer = |apdu: &[u8]| base.transmit(apdu).unwrap_or_default();
        let challenge = answer(&[0x00, 0x84, 0x00, 0x00, 0x10]);
        let mut external = vec![0x00, 0x82, 0x00, 0x01, 0x10];
        external.extend(
            card_os::crypto::Crypto::block_encrypt(
                card_os::crypto::BlockCipher::Aes128,
                &cns_applet::DEFAULT_PERSONALIZATION_KEY,
                &challenge[..16],
            )
            .unwrap_or_default(),
        );
        assert_eq!(answer(&external), [0x90, 0x00], "personalization key");
        let generated = answer(&[0x00, 0x46, 0x00, 0x01, 0x02, 0x04, 0x00, 0x00]);
        assert!(generated.ends_with(&[0x90, 0x00]), "key generation");
        base.snapshot()
    });
    card.restore(base)
        .unwrap_or_else(|e| panic!("restore: {e}"));
    card
}

pub fn cns_session(data: &[u8]) {
    let mut card = personalized();
    let mut rest = data;
    while let [flags, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (apdu, next) = tail.split_at(len);
        rest = next;
        if flags & 1 == 1 {
            card.arm_power_cut(FaultPlan {
                at_write: u32::from(flags >> 1 & 7) + 1,
                torn: flags & 0x10 != 0,
            });
        }
        match card.transmit(apdu) {
            Ok(response) => assert!(response.len() >= 2, "an answer without a status word"),
            Err(Silence::PowerLost) => card.power_on(),
            Err(Silence::NotPowered) => panic!("a powered card went silent"),
        }
    }
    card.power_off();
    card.power_on();
    let status = card
        .transmit(&[0x00, 0x20, 0x00, 0x10])
        .unwrap_or_else(|e| panic!("PIN status: {e:?}"));
    assert!(
        matches!(status[..], [0x63, 0xC0..=0xCF] | [0x69, 0x83]),
        "PIN status after power-up: {status:02X?}"
    );
    // EF 3F01 is the key's public half: both exist (nothing the host sends removes them).
    let select = card
        .transmit(&[0x00, 0xA4, 0x08, 0x00, 0x02, 0x3F, 0x01, 0x00])
        .unwrap_or_default();
    assert!(select.ends_with(&[0x90, 0x00]), "EF 3F01: {select:02X?}");
}
