//! Property tests: arbitrary input never panics the card, and a reference model of the demo applet's
//! counter and PIN holds across random command sequences with random power cuts.

mod support;

use card_os::{FaultPlan, Silence};
use proptest::prelude::*;
use support::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_apdus_always_get_a_status_word(
        apdus in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20)
    ) {
        let mut card = demo_card_with(config(4096), true);
        for apdu in apdus {
            let response = card.transmit(&apdu).expect("powered card answers");
            prop_assert!(response.len() >= 2);
        }
    }

    #[test]
    fn counter_and_pin_follow_the_model_across_power_cuts(
        ops in proptest::collection::vec((0u8..5, proptest::option::weighted(0.3, 1u32..4), any::<bool>()), 1..40)
    ) {
        let mut card = demo_card_with(config(8192), true);
        let mut counter = 0u32;
        let mut tries = 3u8;
        for (op, cut, torn) in ops {
            let apdu = match op {
                0 => "80 10 00 00",
                1 => "00 20 00 81 04 30303030",
                2 => "00 20 00 81 04 31323334",
                3 => "80 20 03 00 01 77",
                _ => "00 20 00 81",
            };
            if let Some(at_write) = cut {
                card.arm_power_cut(FaultPlan { at_write, torn });
            }
            match card.transmit(&h(apdu)) {
                Ok(response) => {
                    let sw = hex::encode_upper(&response[response.len() - 2..]);
                    match op {
                        0 => {
                            counter += 1;
                            prop_assert_eq!(&response[..4], &counter.to_be_bytes()[..]);
                        }
                        1 if tries > 0 => {
                            tries -= 1;
                            prop_assert_eq!(sw, format!("63C{tries}"));
                        }
                        2 if tries > 0 => {
                            tries = 3;
                            prop_assert_eq!(sw, "9000");
                        }
                        1 | 2 => prop_assert_eq!(sw, "6983"),
                        _ => {}
                    }
                }
                Err(silence) => {
                    prop_assert_eq!(silence, Silence::PowerLost);
                    card.power_on();
                    // The try counter may only have gone down (spent before the comparison).
                    let status = hex::encode_upper(card.transmit(&h("00 20 00 81")).expect("answer"));
                    let now = if status == "6983" { 0 } else { u8::from_str_radix(&status[3..], 16).expect("hex") };
                    prop_assert!(now <= tries, "tries went up after a cut: {} -> {}", tries, now);
                    tries = now;
                    // An unacknowledged command committed nothing: the counter's one write was cut.
                    let read = card.transmit(&h("80 12 00 00")).expect("answer");
                    prop_assert_eq!(&read[..4], &counter.to_be_bytes()[..]);
                }
            }
        }
    }
}
