//! Property tests: arbitrary APDU sequences never panic the CNS card and always get a status word;
//! the PIN try counter only goes down across random VERIFY / CHANGE / RESET RETRY COUNTER / status
//! sequences with power cuts, except on a successful verification or unblock.

#![allow(clippy::unwrap_used)]

// The fuzz target's card; its session property is replayed by `fuzz_corpus.rs`.
#[allow(dead_code)]
#[path = "../../../fuzz/src/cns_properties.rs"]
mod cns_properties;

use card_os::{Card, FaultPlan, Silence};
use proptest::prelude::*;

/// A personalized card (RSA-1024, so the cases stay quick), made once and restored per case: the
/// fuzz target's.
fn card() -> Card {
    cns_properties::personalized()
}

fn tx(card: &mut Card, apdu: &str) -> String {
    let bytes = hex::decode(apdu.replace(' ', "")).unwrap();
    hex::encode_upper(card.transmit(&bytes).unwrap())
}

const PIN: &str = "3132333435FFFFFF"; // 12345
const OTHER_PIN: &str = "3937353331FFFFFF"; // 97531
const WRONG: &str = "3939393939393939";
const PUK: &str = "3132333435363738";

fn status_tries(card: &mut Card) -> u8 {
    let status = tx(card, "00 20 00 10");
    match status.as_str() {
        "6983" => 0,
        "9000" => panic!("the PIN cannot be verified right after power-up"),
        s => u8::from_str_radix(&s[3..], 16).expect("63Cx"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn arbitrary_apdus_always_get_a_status_word(
        apdus in proptest::collection::vec(
            (prop_oneof![Just(0x00u8), any::<u8>()],
             prop_oneof![Just(0xA4u8), Just(0xB0), Just(0xD6), Just(0x20), Just(0x24), Just(0x2C),
                         Just(0x22), Just(0x2A), Just(0x88), Just(0x84), Just(0x82), Just(0x46),
                         Just(0xC0), any::<u8>()],
             prop_oneof![Just(0x00u8), Just(0x08), Just(0x9E), Just(0x80), Just(0xF1), Just(0xF3), any::<u8>()],
             prop_oneof![Just(0x00u8), Just(0x0C), Just(0x10), Just(0x90), Just(0x9A), Just(0x86), Just(0xB6), any::<u8>()],
             proptest::collection::vec(any::<u8>(), 0..300),
             proptest::option::of(any::<u8>())),
            1..24)
    ) {
        let mut card = card();
        tx(&mut card, &format!("00 20 00 10 08 {PIN}"));
        for (cla, ins, p1, p2, data, le) in apdus {
            let mut apdu = vec![cla, ins, p1, p2];
            match (data.len(), le) {
                (0, None) => {}
                (0, Some(le)) => apdu.push(le),
                (n, le) if n <= 255 => {
                    apdu.push(n as u8);
                    apdu.extend_from_slice(&data);
                    apdu.extend(le);
                }
                (n, le) => {
                    apdu.extend_from_slice(&[0, (n >> 8) as u8, n as u8]);
                    apdu.extend_from_slice(&data);
                    if let Some(le) = le {
                        apdu.extend_from_slice(&[0, le]);
                    }
                }
            }
            let response = card.transmit(&apdu).expect("a powered card answers");
            prop_assert!(response.len() >= 2);
        }
    }

    #[test]
    fn pin_counter_only_goes_down_except_on_success(
        ops in proptest::collection::vec(
            (0u8..6, proptest::option::weighted(0.3, 1u32..5), any::<bool>()), 1..24)
    ) {
        let mut card = card();
        let mut pin = PIN;
        for (op, cut, torn) in ops {
            let before = status_tries(&mut card);
            let apdu = match op {
                0 => format!("00 20 00 10 08 {WRONG}"),
                1 => format!("00 20 00 90 08 {pin}"),
                2 => format!("00 24 00 10 10 {WRONG}{OTHER_PIN}"),
                3 => format!("00 24 00 10 10 {pin}{}", if pin == PIN { OTHER_PIN } else { PIN }),
                4 => format!("00 2C 00 10 10 {PUK}{PIN}"),
                _ => "00 20 00 10".to_string(),
            };
            // Changes and unblocks run uncut, so the test always knows the PIN; wrong tries,
            // verifications and status queries are cut at any write.
            let cut = cut.filter(|_| !matches!(op, 3 | 4));
            if let Some(at_write) = cut {
                card.arm_power_cut(FaultPlan { at_write, torn });
            }
            let answer = card.transmit(&hex::decode(apdu.replace(' ', "")).unwrap());
            let succeeded = matches!(&answer, Ok(r) if r.ends_with(&[0x90, 0x00]));
            prop_assert!(answer.is_ok() || answer == Err(Silence::PowerLost));
            // Power-cycle: a cut card recovers, and a verified PIN is forgotten before the next
            // status query.
            card.power_off();
            card.power_on();
            if succeeded && op == 3 {
                pin = if pin == PIN { OTHER_PIN } else { PIN };
            }
            if succeeded && op == 4 {
                pin = PIN;
            }
            let after = status_tries(&mut card);
            // Only presenting the right PIN (op 1, 3) or PUK (op 4) may give tries back — even when
            // the answer was lost to a cut, the comparison succeeded.
            if !matches!(op, 1 | 3 | 4) {
                prop_assert!(after <= before, "op {op}: tries went from {before} to {after}");
            }
            if op == 0 && before > 0 && cut.is_none() {
                prop_assert_eq!(after, before - 1, "a wrong PIN costs exactly one try");
            }
        }
    }
}
