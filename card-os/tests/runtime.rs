//! Transcript tests of the card runtime: SELECT, dispatch, response pieces, chaining, channels,
//! transactions, capacity, transient memory, PINs, determinism, snapshots.

mod support;

use card_os::{Card, Silence};
use support::*;

#[test]
fn select_by_full_aid_and_by_prefix_answers_fci() {
    let mut card = demo_card();
    let fci = "6F0B8409F07465737365726101";
    assert_eq!(tx(&mut card, SELECT_DEMO), format!("{fci}9000"));
    assert_eq!(
        tx(&mut card, "00 A4 04 00 05 F0 74 65 73 73 00"),
        format!("{fci}9000")
    );
    // P2 = 0C: no response data.
    assert_eq!(tx(&mut card, "00 A4 04 0C 05 F0 74 65 73 73"), "9000");
}

#[test]
fn unknown_aid_answers_6a82_and_keeps_the_current_selection() {
    let mut card = demo_card();
    tx(&mut card, SELECT_DEMO);
    assert_eq!(tx(&mut card, "00 A4 04 00 07 A0 00 00 03 97 42 54"), "6A82");
    assert_eq!(tx(&mut card, "80 12 00 00 04"), "000000009000");
}

#[test]
fn unknown_class_and_instruction() {
    let mut card = demo_card();
    // Nothing selected yet: no application to take the command.
    assert_eq!(tx(&mut card, "80 12 00 00"), "6D00");
    tx(&mut card, SELECT_DEMO);
    assert_eq!(tx(&mut card, "90 12 00 00"), "6E00");
    assert_eq!(tx(&mut card, "FF 12 00 00"), "6E00");
    assert_eq!(tx(&mut card, "80 EE 00 00"), "6D00");
    assert_eq!(tx(&mut card, "00 EE 00 00"), "6D00");
    // Secure messaging bits in CLA.
    assert_eq!(tx(&mut card, "0C 20 00 81"), "6882");
    // Malformed lengths.
    assert_eq!(tx(&mut card, "80 30 00 00 05 01 02"), "6700");
    assert_eq!(tx(&mut card, "80 30 00"), "6700");
}

#[test]
fn default_applet_is_selected_at_power_up() {
    let mut card = demo_card_with(config(16 * 1024), true);
    assert_eq!(tx(&mut card, "80 12 00 00"), "000000009000");
    card.reset();
    assert_eq!(tx(&mut card, "80 12 00 00"), "000000009000");
    // Empty SELECT picks the default applet.
    assert!(tx(&mut card, "00 A4 04 00").ends_with("9000"));
}

#[test]
fn long_responses_come_in_pieces_with_get_response() {
    let mut card = demo_card();
    tx(&mut card, SELECT_DEMO);
    // 600 pattern bytes, Le = 00 (256).
    let first = tx(&mut card, "80 30 02 58 00");
    assert_eq!(first.len(), 2 * 256 + 4);
    assert_eq!(sw(&first), "6100");
    let second = tx(&mut card, "00 C0 00 00 00");
    assert_eq!(second.len(), 2 * 256 + 4);
    assert_eq!(sw(&second), "6158");
    let third = tx(&mut card, "00 C0 00 00 58");
    assert_eq!((third.len(), sw(&third)), (2 * 88 + 4, "9000"));
    let all = format!("{}{}{}", &first[..512], &second[..512], &third[..176]);
    let expected: String = (0..600).map(|i| format!("{:02X}", i as u8)).collect();
    assert_eq!(all, expected);
    // Nothing left to fetch.
    assert_eq!(tx(&mut card, "00 C0 00 00 00"), "6985");
}

#[test]
fn short_le_probe_returns_that_many_bytes_then_61xx() {
    let mut card = demo_card();
    tx(&mut card, SELECT_DEMO);
    // OpenSC probes with Le = 08 first.
    assert_eq!(
        tx(&mut card, "80 30 00 20 08"),
        "000102030405060761 18".replace(' ', "")
    );
    let rest = tx(&mut card, "00 C0 00 00 18");
    assert_eq!(sw(&rest), "9000");
    assert_eq!(rest.len(), 2 * 24 + 4);
    // Any other command drops the pending bytes.
    tx(&mut card, "80 30 00 20 08");
    tx(&mut card, "80 12 00 00");
    assert_eq!(tx(&mut card, "00 C0 00 00 18"), "6985");
}

#[test]
fn extended_le_gets_the_whole_response_at_once() {
    let mut card = demo_card();
    tx(&mut card, SELECT_DEMO);
    let whole = tx(&mut card, "80 30 02 58 00 00 00");
    assert_eq!((whole.len(), sw(&whole)), (2 * 600 + 4, "9000"));
}

#[test]
fn command_chains_are_reassembled_for_the_applet() {
    let mut card = demo_card();
    tx(&mut card, SELECT_DEMO);
    let data: Vec<u8> = (0..600u32).map(|i| (i * 7) as u8).collect();
    let chunks: Vec<&[u8]> = data.chunks(255).collect();
    for chunk in &chunks[..chunks.len() - 1] {
        let mut apdu = vec![0x10, 0x30, 0x00, 0x00, chunk.len() as u8];
        apdu.extend_from_slice(chunk);
        assert_eq!(card.transmit(&apdu), Ok(vec![0x90, 0x00]));
    }
    let last = chunks[chunks.len() - 1];
    let mut apdu = vec![0x00, 0x30, 0x00, 0x00, last.len() as u8];
    apdu.extend_from_slice(last);
    apdu.push(0x00);
    let mut response = card.transmit(&apdu).expect("answer");
    let mut got = Vec::new();
    while response[response.len() - 2] == 0x61 {
        got.extend_from_slice(&response[..response.len() - 2]);
        response = card
            .transmit(&[0x00, 0xC0, 0x00, 0x00, 0x00])
            .expect("answer");
    }
    got.extend_from_slice(&response[..response.len() - 2]);
    assert_eq!(&response[response.len() - 2..], [0x90, 0x00]);
    assert_eq!(got, data);
}

#[test]
fn chains_over_the_limit_or_interrupted_are_refused() {
    let mut config = config(16 * 1024);
    config.max_chain_len = 300;
    let mut card = demo_card_with(config, false);
    tx(&mut card, SELECT_DEMO);
    let link = format!("10 30 00 00 FF {}", "AB".repeat(255));
    assert_eq!(tx(&mut card, &link), "9000");
    assert_eq!(tx(&mut card, &link), "6700");
    assert_eq!(tx(&mut card, &link), "9000");
    assert_eq!(tx(&mut card, "00 50 01 00 01 AA"), "6883");
    // After the refusal the card works normally.
    assert_eq!(tx(&mut card, "80 12 00 00"), "000000009000");
}

#[test]
fn logical_channels_have_their_own_selection() {
    let mut card = demo_card();
    // Open: the card picks channel 1.
    assert_eq!(tx(&mut card, "00 70 00 00 01"), "019000");
    // Nothing selected on channel 1 (no default applet); channel 0 neither.
    assert_eq!(tx(&mut card, "81 12 00 00"), "6D00");
    assert!(tx(&mut card, "01 A4 04 00 09 F07465737365726101").ends_with("9000"));
    assert_eq!(tx(&mut card, "81 10 00 00"), "000000019000");
    assert_eq!(tx(&mut card, "80 12 00 00"), "6D00");
    // Channels 2 and 3, then no more.
    assert_eq!(tx(&mut card, "00 70 00 00 01"), "029000");
    assert_eq!(tx(&mut card, "00 70 00 03"), "9000");
    assert_eq!(tx(&mut card, "00 70 00 00 01"), "6A81");
    // Close channel 1: commands on it are refused.
    assert_eq!(tx(&mut card, "00 70 80 01"), "9000");
    assert_eq!(tx(&mut card, "81 12 00 00"), "6881");
    // The basic channel cannot be closed; channel 4+ is not supported.
    assert_eq!(tx(&mut card, "00 70 80 00"), "6A86");
    assert_eq!(tx(&mut card, "40 12 00 00"), "6881");
    assert_eq!(tx(&mut card, "00 70 00 05"), "6881");
    // A reset closes the supplementary channels.
    card.reset();
    assert_eq!(tx(&mut card, "82 12 00 00"), "6881");
}

#[test]
fn channel_opened_from_the_basic_channel_gets_the_default_applet() {
    let mut card = demo_card_with(config(16 * 1024), true);
    assert_eq!(tx(&mut card, "00 70 00 00 01"), "019000");
    assert_eq!(tx(&mut card, "81 10 00 00"), "000000019000");
}

#[test]
fn transaction_is_all_or_nothing_and_left_open_transactions_are_aborted() {
    let mut card = demo_card_with(config(1024), false);
    tx(&mut card, SELECT_DEMO);
    assert_eq!(tx(&mut card, "80 20 04 00 02 AA AA"), "000000019000");
    for i in 1..=4 {
        assert_eq!(tx(&mut card, &format!("80 22 {i:02X} 00")), "AAAA9000");
    }
    // Eight records of 120 bytes do not fit: the write fails midway with 6A84 and the applet returns
    // with its transaction open; the OS aborts it, so nothing of it remains.
    let big = "BB".repeat(120);
    assert_eq!(tx(&mut card, &format!("80 20 08 00 78 {big}")), "6A84");
    for i in 1..=4 {
        assert_eq!(tx(&mut card, &format!("80 22 {i:02X} 00")), "AAAA9000");
    }
    assert_eq!(tx(&mut card, "80 22 05 00"), "6A83");
    assert_eq!(tx(&mut card, "80 20 01 00 01 CC"), "000000029000");
}

#[test]
fn capacity_exhaustion_answers_6a84_and_loses_nothing() {
    let mut card = demo_card_with(config(2048), false);
    tx(&mut card, SELECT_DEMO);
    tx(&mut card, "80 10 00 00");
    let blob = "5A".repeat(200);
    let mut stored = 0;
    loop {
        let r = tx(&mut card, &format!("80 50 {stored:02X} 00 C8 {blob}"));
        if sw(&r) == "6A84" {
            break;
        }
        assert_eq!(sw(&r), "9000");
        stored += 1;
    }
    assert!(stored >= 5, "only {stored} blobs fit");
    assert_eq!(tx(&mut card, "80 12 00 00"), "000000019000");
    // Deleting one makes room again.
    assert_eq!(tx(&mut card, "80 52 00 00"), "9000");
    assert!(tx(&mut card, &format!("80 50 00 00 C8 {blob}")).ends_with("9000"));
}

#[test]
fn transient_memory_clears_on_reset_and_on_deselect() {
    let mut card = demo_card();
    tx(&mut card, SELECT_DEMO);
    assert_eq!(tx(&mut card, "80 60 00 00 02 11 22"), "9000");
    assert_eq!(tx(&mut card, "80 60 01 00 02 33 44"), "9000");
    // Re-selecting deselects first: clear-on-deselect goes, clear-on-reset stays.
    tx(&mut card, SELECT_DEMO);
    assert_eq!(tx(&mut card, "80 62 00 00"), "11229000");
    assert_eq!(tx(&mut card, "80 62 01 00"), "6A88");
    card.reset();
    tx(&mut card, SELECT_DEMO);
    assert_eq!(tx(&mut card, "80 62 00 00"), "6A88");
    card.power_off();
    assert_eq!(card.transmit(&h(SELECT_DEMO)), Err(Silence::NotPowered));
}

#[test]
fn pin_blocks_after_three_wrong_tries_and_status_never_decrements() {
    let mut card = demo_card();
    tx(&mut card, SELECT_DEMO);
    assert_eq!(tx(&mut card, "00 20 00 81"), "63C3");
    assert_eq!(tx(&mut card, "00 20 00 81"), "63C3");
    assert_eq!(tx(&mut card, "00 20 00 81 04 31323335"), "63C2");
    assert_eq!(tx(&mut card, "00 20 00 81 04 31323334"), "9000");
    assert_eq!(tx(&mut card, "00 20 00 81"), "9000");
    // Verified state survives re-selection but not reset.
    tx(&mut card, SELECT_DEMO);
    assert_eq!(tx(&mut card, "00 20 00 81"), "9000");
    card.reset();
    tx(&mut card, SELECT_DEMO);
    assert_eq!(tx(&mut card, "00 20 00 81"), "63C3");
    for expected in ["63C2", "63C1", "63C0", "6983", "6983"] {
        assert_eq!(tx(&mut card, "00 20 00 81 04 30303030"), expected);
    }
    // Blocked: even the right PIN is refused.
    assert_eq!(tx(&mut card, "00 20 00 81 04 31323334"), "6983");
    assert_eq!(tx(&mut card, "00 20 00 81"), "6983");
}

#[test]
fn pin_change_needs_verification() {
    let mut card = demo_card();
    tx(&mut card, SELECT_DEMO);
    assert_eq!(tx(&mut card, "00 24 00 81 04 39393939"), "6982");
    tx(&mut card, "00 20 00 81 04 31323334");
    assert_eq!(tx(&mut card, "00 24 00 81 04 39393939"), "9000");
    // Outside the length bounds.
    assert_eq!(tx(&mut card, "00 24 00 81 02 3939"), "6A80");
    card.reset();
    tx(&mut card, SELECT_DEMO);
    assert_eq!(tx(&mut card, "00 20 00 81 04 39393939"), "9000");
}

#[test]
fn seeded_cards_with_a_fixed_clock_give_identical_transcripts() {
    let script = [
        SELECT_DEMO,
        "80 70 20 00",
        "80 72 00 00",
        "80 70 08 00",
        "80 10 00 00",
    ];
    let run = || {
        let mut card = demo_card();
        script.iter().map(|a| tx(&mut card, a)).collect::<Vec<_>>()
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    assert_ne!(a[1], a[3][..16].to_string() + "9000");
    // The fixed clock: 1_700_000_000.
    assert_eq!(a[2], "000000006553F1009000");
}

#[test]
fn snapshot_and_restore_bring_back_the_whole_state() {
    let mut card = demo_card();
    tx(&mut card, SELECT_DEMO);
    tx(&mut card, "80 10 00 00");
    let snapshot = card.snapshot();
    let random_after_snapshot = tx(&mut card, "80 70 08 00");
    tx(&mut card, "80 10 00 00");
    tx(&mut card, "00 20 00 81 04 30303030");
    card.restore(&snapshot).expect("restore");
    tx(&mut card, SELECT_DEMO);
    assert_eq!(tx(&mut card, "80 12 00 00"), "000000019000");
    assert_eq!(tx(&mut card, "00 20 00 81"), "63C3");
    // Deterministic cards replay their random stream from the snapshot: golden traces stay golden.
    assert_eq!(tx(&mut card, "80 70 08 00"), random_after_snapshot);
}

#[test]
fn card_without_power_says_nothing() {
    let mut card: Card = demo_card();
    card.power_off();
    assert_eq!(card.transmit(&h("80 12 00 00")), Err(Silence::NotPowered));
    card.power_on();
    assert!(card.transmit(&h(SELECT_DEMO)).is_ok());
}
