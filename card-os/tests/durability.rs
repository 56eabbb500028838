//! Power cuts at every persistent write, durability of the card image, and refusal of damaged images.

mod support;

use card_os::tearing::{check_every_cut_point, CutPoint};
use card_os::{Card, CardOsError, Durability, ImageError, Storage};
use support::*;

/// Records 1..=4 all hold the value of the same (last committed) WRITE RECORDS, or none of them exist.
fn records_consistent(card: &mut Card, cut: CutPoint) -> Result<(), String> {
    tx(card, SELECT_DEMO);
    let values: Vec<String> = (1..=4)
        .map(|i| tx(card, &format!("80 22 {i:02X} 00")))
        .collect();
    if values.iter().any(|v| v != &values[0]) {
        return Err(format!("records differ: {values:?}"));
    }
    match values[0].as_str() {
        "6A83" | "AAAA9000" | "BBBB9000" => Ok(()),
        other => Err(format!("unexpected record value {other} at {cut:?}")),
    }
}

#[test]
fn every_cut_point_of_a_multi_write_transaction_recovers_to_the_last_commit() {
    let script: Vec<Vec<u8>> = [
        SELECT_DEMO,
        "80 20 04 00 02 AA AA",
        "80 20 04 00 02 BB BB",
        "80 10 00 00",
    ]
    .iter()
    .map(|a| h(a))
    .collect();
    let checked = check_every_cut_point(demo_card, &script, |card, cut| {
        records_consistent(card, cut)?;
        // The generation written with the records must match them exactly: a fresh transaction
        // reports generation+1.
        let before = tx(card, "80 22 01 00");
        let next = tx(card, "80 20 01 00 01 00");
        let expected_next = match before.as_str() {
            "6A83" => "000000019000",
            "AAAA9000" => "000000029000",
            "BBBB9000" => "000000039000",
            _ => unreachable!(),
        };
        if next != expected_next {
            return Err(format!("generation {next} after records {before}"));
        }
        // The counter is 0 unless the increment command committed (it cannot have: it was cut).
        if cut.command == 3 && tx(card, "80 12 00 00") != "000000009000" {
            return Err("counter changed although its only write was cut".into());
        }
        Ok(())
    });
    // 2 commands × (4 records + generation + commit) + 1 counter write, each clean and torn.
    assert_eq!(checked, 2 * (2 * 6 + 1));
}

#[test]
fn cut_points_recover_from_the_file_after_the_process_reopens_the_card() {
    let dir = tempfile::tempdir().expect("tempdir");
    let counter = std::cell::Cell::new(0);
    let script: Vec<Vec<u8>> = [SELECT_DEMO, "80 20 04 00 02 AA AA", "80 20 04 00 02 BB BB"]
        .iter()
        .map(|a| h(a))
        .collect();
    let make = || {
        counter.set(counter.get() + 1);
        let path = dir.path().join(format!("card-{}.img", counter.get()));
        Card::create(
            config(16 * 1024),
            &registry(),
            &[installation(false)],
            Storage::File {
                path: &path,
                durability: Durability::Relaxed,
            },
        )
        .expect("card")
    };
    let checked = check_every_cut_point(make, &script, |card, cut| {
        // Reopen from disk, as a new process would: the file holds the torn medium and its journal.
        let path = card.path().expect("file-backed").to_path_buf();
        card.power_off();
        let placeholder = demo_card();
        drop(std::mem::replace(card, placeholder));
        *card = Card::open(&path, &registry(), Durability::Relaxed).map_err(|e| e.to_string())?;
        records_consistent(card, cut)
    });
    assert_eq!(checked, 2 * 2 * 6);
}

#[test]
fn a_cut_verify_never_gives_a_free_try() {
    let script: Vec<Vec<u8>> = [
        SELECT_DEMO,
        "00 20 00 81 04 30303030",
        "00 20 00 81 04 31323334",
        "00 20 00 81 04 30303030",
    ]
    .iter()
    .map(|a| h(a))
    .collect();
    // Tries left before each command in an uninterrupted run.
    let before = [3u8, 3, 2, 3];
    let checked = check_every_cut_point(demo_card, &script, |card, cut| {
        tx(card, SELECT_DEMO);
        let status = tx(card, "00 20 00 81");
        let tries = u8::from_str_radix(&status[3..4], 16).map_err(|e| e.to_string())?;
        // Write 1 is the decrement itself: cut there, it is rolled back, and the comparison never ran.
        // Any later cut comes after the decrement was durable and before the counter was restored:
        // the try is spent. Never more tries than that.
        let expected = if cut.write == 1 {
            before[cut.command]
        } else {
            before[cut.command] - 1
        };
        if tries != expected {
            return Err(format!("{tries} tries left, expected {expected}"));
        }
        Ok(())
    });
    assert!(checked >= 4, "only {checked} cut points");
}

#[test]
fn acknowledged_state_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("card.img");
    let storage = Storage::File {
        path: &path,
        durability: Durability::Full,
    };
    let mut card = Card::create(
        config(16 * 1024),
        &registry(),
        &[installation(true)],
        storage,
    )
    .expect("card");
    for _ in 0..3 {
        tx(&mut card, "80 10 00 00");
    }
    tx(&mut card, "00 20 00 81 04 30303030");
    let random_before = tx(&mut card, "80 70 08 00");
    drop(card);
    let mut card = Card::open(&path, &registry(), Durability::Full).expect("reopen");
    assert_eq!(tx(&mut card, "80 12 00 00"), "000000039000");
    assert_eq!(tx(&mut card, "00 20 00 81"), "63C2");
    // A deterministic card continues its random stream; it never replays bytes it gave out.
    assert_ne!(tx(&mut card, "80 70 08 00"), random_before);
}

#[test]
fn damaged_images_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("card.img");
    let storage = Storage::File {
        path: &path,
        durability: Durability::Full,
    };
    drop(
        Card::create(
            config(16 * 1024),
            &registry(),
            &[installation(true)],
            storage,
        )
        .expect("card"),
    );
    let good = std::fs::read(&path).expect("read");

    let open = || Card::open(&path, &registry(), Durability::Full);
    std::fs::write(&path, &good[..good.len() - 10]).expect("write");
    let err = open().expect_err("truncated image must be refused");
    assert!(
        matches!(err, CardOsError::Image(ImageError::Truncated { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("card.img"), "{err}");

    let mut flipped = good.clone();
    flipped[40] ^= 0x10;
    std::fs::write(&path, &flipped).expect("write");
    let err = open().expect_err("corrupt image must be refused");
    assert!(err.to_string().contains("checksum"), "{err}");

    std::fs::write(&path, b"hello").expect("write");
    let err = open().expect_err("foreign file must be refused");
    assert!(
        err.to_string().contains("not a tessera card image"),
        "{err}"
    );

    // Nothing was "repaired" behind our back.
    assert_eq!(std::fs::read(&path).expect("read"), b"hello");
    std::fs::write(&path, &good).expect("write");
    assert!(open().is_ok());
}

#[test]
fn a_card_needing_an_applet_this_build_lacks_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("card.img");
    let storage = Storage::File {
        path: &path,
        durability: Durability::Relaxed,
    };
    drop(Card::create(config(4096), &registry(), &[installation(true)], storage).expect("card"));
    let err = Card::open(&path, &card_os::AppletRegistry::new(), Durability::Relaxed)
        .expect_err("unknown applet");
    assert!(
        err.to_string().contains("F0 74 65 73 73 65 72 61 01"),
        "{err}"
    );
}

#[test]
fn a_card_built_in_memory_is_saved_once_and_reopens_with_its_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("built.img");
    let mut card = demo_card_with(config(16 * 1024), true);
    tx(&mut card, "80 10 00 00");
    tx(&mut card, "00 20 00 81 04 30303030");
    card.save_new(&path).expect("save");
    assert!(
        card.save_new(&path).is_err(),
        "an existing image is never overwritten"
    );
    drop(card);
    let mut reopened = Card::open(&path, &registry(), Durability::Full).expect("reopen");
    assert_eq!(tx(&mut reopened, "80 12 00 00"), "000000019000");
    assert_eq!(tx(&mut reopened, "00 20 00 81"), "63C2");
}
