//! Property tests: arbitrary APDUs never panic the applet, and the PIN try counter only goes down across
//! random VERIFY / CHANGE / RESET RETRY / status sequences with power cuts — except on a successful
//! verification or unblock.

#![allow(clippy::unwrap_used)]

mod support;

use card_os::{FaultPlan, Silence};
use proptest::prelude::*;
use support::*;

const PIN_A: &str = "313233343536FFFF"; // 123456
const PIN_B: &str = "363534333231FFFF"; // 654321
const WRONG: &str = "3939393939393939";
const PUK: &str = "3132333435363738";

fn status_tries(card: &mut card_os::Card) -> u8 {
    let status = tx(card, "00 20 00 80");
    match status.as_str() {
        "6983" => 0,
        "9000" => panic!("the PIN cannot be verified right after power-up"),
        s => u8::from_str_radix(&s[3..], 16).expect("63Cx"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_apdus_always_get_a_status_word(
        apdus in proptest::collection::vec(
            (prop_oneof![Just(0x00u8), Just(0x10), any::<u8>()],
             prop_oneof![Just(0x20u8), Just(0x24), Just(0x2C), Just(0x47), Just(0x87), Just(0xCB),
                         Just(0xDB), Just(0xF6), Just(0xF7), Just(0xF8), Just(0xF9), Just(0xFA),
                         Just(0xFB), Just(0xFD), Just(0xFE), Just(0xFF), any::<u8>()],
             any::<u8>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..80)),
            1..20)
    ) {
        let mut card = card();
        default_auth(&mut card);
        tx(&mut card, VERIFY_DEFAULT_PIN);
        for (cla, ins, p1, p2, data) in apdus {
            let mut apdu = vec![cla, ins, p1, p2];
            if !data.is_empty() {
                apdu.push(data.len() as u8);
                apdu.extend_from_slice(&data);
            }
            let response = card.transmit(&apdu).expect("powered card answers");
            prop_assert!(response.len() >= 2);
        }
    }

    #[test]
    fn pin_counter_only_goes_down_except_on_success(
        ops in proptest::collection::vec(
            (0u8..7, proptest::option::weighted(0.3, 1u32..5), any::<bool>()), 1..30)
    ) {
        let mut card = card();
        let mut pin_is_a = true;
        let mut tries = 3u8;
        for (op, cut, torn) in ops {
            let (current, other) = if pin_is_a { (PIN_A, PIN_B) } else { (PIN_B, PIN_A) };
            let apdu = match op {
                0 => format!("00 20 00 80 08 {current}"),
                1 => format!("00 20 00 80 08 {WRONG}"),
                2 => format!("00 24 00 80 10 {current} {other}"),
                3 => format!("00 24 00 80 10 {WRONG} {other}"),
                4 => format!("00 2C 00 80 10 {PUK} {PIN_A}"),
                5 => "00 20 00 80".to_string(),
                _ => "00 20 FF 80".to_string(),
            };
            if let Some(at_write) = cut {
                card.arm_power_cut(FaultPlan { at_write, torn });
            }
            match card.transmit(&h(&apdu)) {
                Ok(response) => {
                    let sw = hex::encode_upper(&response[response.len() - 2..]);
                    match op {
                        0 | 2 if tries > 0 => {
                            prop_assert_eq!(&sw, "9000");
                            tries = 3;
                            if op == 2 { pin_is_a = !pin_is_a; }
                        }
                        1 | 3 if tries > 0 => {
                            tries -= 1;
                            prop_assert_eq!(sw, format!("63C{tries}"));
                        }
                        0..=3 => prop_assert_eq!(&sw, "6983"),
                        // Power cuts after the PUK try was spent can, rarely, block the PUK.
                        4 if sw == "6983" => {}
                        4 => {
                            prop_assert_eq!(&sw, "9000");
                            tries = 3;
                            pin_is_a = true;
                        }
                        _ => {}
                    }
                }
                Err(silence) => {
                    prop_assert_eq!(silence, Silence::PowerLost);
                    card.power_on();
                    prop_assert_eq!(tx(&mut card, SELECT_5), SELECT_ANSWER);
                    let now = status_tries(&mut card);
                    // Only an unacknowledged success may have refilled the counter.
                    let may_refill = matches!(op, 0 | 2 | 4);
                    prop_assert!(now <= tries || (may_refill && now == 3),
                        "tries went up after a cut: {} -> {} (op {})", tries, now, op);
                    tries = now;
                    // Which PIN holds now? An interrupted CHANGE or unblock may or may not have landed.
                    if matches!(op, 2 | 4) {
                        let probe_a = tx(&mut card, &format!("00 20 00 80 08 {PIN_A}"));
                        if probe_a == "9000" {
                            pin_is_a = true;
                            tries = 3;
                        } else if tries > 0 {
                            pin_is_a = false;
                            tries -= 1;
                            prop_assert_eq!(probe_a, format!("63C{tries}"));
                        }
                    }
                }
            }
        }
    }
}
