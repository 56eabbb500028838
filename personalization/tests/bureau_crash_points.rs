//! A batch cut at *every* durable step, then rerun: whatever instant the first run died at, the rerun
//! ends with card numbers exactly 1..N (none burnt, none reused), one card per person, one certificate
//! serial per card, every image opening, every envelope half joined with its sealed second half being
//! the PIN the card accepts, and one `personalized` event per card. The cut is the batch's own test hook
//! ([`BatchOptions::crash_after_durable_step`]): the batch stops right after step N exactly as a killed
//! process would, with nothing cleaned up.

mod support;

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::path::Path;
use std::time::SystemTime;

use personalization::batch::{self, BatchError, BatchOptions};
use personalization::ca::StagingCa;
use personalization::census::codice_fiscale;
use personalization::lifecycle::Batch;
use personalization::registry::EventKind;
use personalization::secrets;
use piv_host::{PinOutcome, PivSession};
use support::*;

const PEOPLE: usize = 4;

/// One comune: mayor, ALS, ALP and one operator.
fn census() -> String {
    let mut rows = vec![
        "record,entity,entity_type,entity_name,monitored_workstations,workstations,employees,email_domains,codice_fiscale,surname,name,email,profiles".to_string(),
        format!("entity,058047,comune,Frascati,2,2,{PEOPLE},comune.frascati.rm.it,,,,,"),
    ];
    for (n, profile) in ["SINDACO", "ALS", "ALP", "OPERATORE"].iter().enumerate() {
        let first15 = format!("RSSMRA{:02}A{:02}H501", 50 + n, 1 + n);
        let check = codice_fiscale::check_character(&first15).expect("valid");
        rows.push(format!(
            "user,058047,,,,,,,{first15}{check},Rossi,Utente{n},utente{n}.rossi@comune.frascati.rm.it,{profile}"
        ));
    }
    rows.join("\n") + "\n"
}

/// Cards per group in these tests: 3 makes one full group and one short one, both on two threads.
const GROUP: usize = 3;

fn run(
    census: &Path,
    ca: &Path,
    batch: &Path,
    crash_after: Option<u64>,
) -> Result<batch::BatchSummary, BatchError> {
    run_grouped(census, ca, batch, crash_after, GROUP)
}

fn run_grouped(
    census: &Path,
    ca: &Path,
    batch: &Path,
    crash_after: Option<u64>,
    group_size: usize,
) -> Result<batch::BatchSummary, BatchError> {
    let options = BatchOptions {
        crash_after_durable_step: crash_after,
        group_size: NonZeroUsize::new(group_size).expect("a group holds a card"),
        workers: NonZeroUsize::new(2),
        ..piv_options()
    };
    batch::personalize(census, ca, batch, &options, &mut |_, _, _| {})
}

/// Everything a finished batch must be, whatever happened to earlier runs.
fn check_finished(batch_dir: &Path, cut: u64) {
    let batch = Batch::open(batch_dir, None, SystemTime::now()).expect("open batch");
    let cards = batch.registry.cards().expect("cards");
    let numbers: Vec<&str> = cards.iter().map(|c| c.card_number.as_str()).collect();
    let expected: Vec<String> = (1..=PEOPLE).map(|n| format!("058047{n:06}")).collect();
    assert_eq!(
        numbers, expected,
        "cut after step {cut}: numbers are exactly 1..N"
    );
    let holders: BTreeSet<&str> = cards.iter().map(|c| c.codice_fiscale.as_str()).collect();
    assert_eq!(
        holders.len(),
        PEOPLE,
        "cut after step {cut}: one card per person"
    );
    let serials: BTreeSet<&str> = cards
        .iter()
        .map(|c| c.certificate_serial.as_str())
        .collect();
    assert_eq!(
        serials.len(),
        PEOPLE,
        "cut after step {cut}: one serial per card"
    );

    let personalized: Vec<String> = batch
        .registry
        .events()
        .expect("events")
        .into_iter()
        .filter(|e| e.kind == EventKind::Personalized)
        .filter_map(|e| e.card_number)
        .collect();
    assert_eq!(
        personalized, expected,
        "cut after step {cut}: one personalized event per card, in order"
    );

    for card in &cards {
        let sealed = batch
            .registry
            .sealed_halves(&card.card_number)
            .expect("escrow")
            .expect("sealed halves");
        let (pin_second, _, _) =
            secrets::unseal_second_halves(&batch.master, &card.card_number, &sealed)
                .expect("unseal");
        let envelope = envelope(batch_dir, &card.card_number);
        assert_eq!(envelope["card_number"], card.card_number.as_str());
        let pin = format!(
            "{}{}",
            envelope["pin_first_half"].as_str().expect("pin half"),
            pin_second.expose()
        );
        let mut reader = in_process(open_card(batch_dir, &card.card_file));
        let mut session = PivSession::open(&mut reader).expect("PIV selects");
        assert_eq!(
            verify(&mut session, &pin),
            PinOutcome::Verified,
            "cut after step {cut}: card {} takes its envelope's PIN",
            card.card_number
        );
    }
    // Nothing left over: one image and one envelope per card, no temporary file.
    for (dir, extension) in [
        ("cards", "img"),
        ("envelopes", "json"),
        ("envelopes", "pdf"),
    ] {
        let names: BTreeSet<String> = std::fs::read_dir(batch_dir.join(dir))
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(extension))
            .collect();
        let wanted: BTreeSet<String> = expected
            .iter()
            .map(|n| format!("{n}.{extension}"))
            .collect();
        assert_eq!(names, wanted, "cut after step {cut}: {dir}/*.{extension}");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// Setup steps before the first group: the batch's set-up (id, census import, workstation requests:
/// one registry transaction), then the master key.
const SETUP_STEPS: u64 = 2;
/// Steps of each group: numbers and serials claimed, files durable, cards committed. The batch claims a
/// group while the line makes the one before and the previous one commits, so the steps run: claims 1,
/// claims 2, durable 1, committed 1, claims 3, durable 2, committed 2, …
const GROUP_STEPS: u64 = 3;

/// With groups of [`GROUP`]: right after the first group's commit — the second group claimed and made,
/// its files written but not made durable.
const AFTER_FIRST_COMMIT: u64 = SETUP_STEPS + 2 * GROUP_STEPS - 2;

fn cut_at_every_step(group_size: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let census_path = dir.path().join("census.csv");
    std::fs::write(&census_path, census()).expect("census");
    let pristine_ca = dir.path().join("ca");
    StagingCa::init(&pristine_ca, SystemTime::now()).expect("ca init");

    // An uncut run says how many durable steps a batch of this census takes.
    let reference = dir.path().join("reference");
    let ref_ca = dir.path().join("reference-ca");
    copy_dir(&pristine_ca, &ref_ca);
    let summary =
        run_grouped(&census_path, &ref_ca, &reference, None, group_size).expect("uncut batch");
    assert_eq!(summary.personalized, PEOPLE);
    let steps = summary.durable_steps;
    let groups = PEOPLE.div_ceil(group_size) as u64;
    assert_eq!(
        steps,
        SETUP_STEPS + GROUP_STEPS * groups,
        "groups of {group_size}: every group takes its durable steps"
    );
    check_finished(&reference, 0);

    for cut in 1..=steps {
        let ca = dir.path().join(format!("ca-{cut}"));
        let out = dir.path().join(format!("batch-{cut}"));
        copy_dir(&pristine_ca, &ca);
        match run_grouped(&census_path, &ca, &out, Some(cut), group_size) {
            Err(BatchError::InjectedCrash { step, .. }) => assert_eq!(step, cut),
            other => panic!("cut after step {cut}: expected the injected crash, got {other:?}"),
        }
        let rerun = run_grouped(&census_path, &ca, &out, None, group_size).expect("rerun");
        assert_eq!(rerun.personalized + rerun.already_done, PEOPLE);
        check_finished(&out, cut);
        // Keep the disk small: each cut's directories are checked and gone.
        std::fs::remove_dir_all(&ca).expect("rm ca");
        std::fs::remove_dir_all(&out).expect("rm batch");
    }
}

#[test]
fn a_batch_cut_after_every_durable_step_is_finished_exactly_by_a_rerun() {
    cut_at_every_step(GROUP);
}

#[test]
fn a_batch_of_one_card_groups_cut_after_every_durable_step_is_finished_exactly_by_a_rerun() {
    cut_at_every_step(1);
}

#[test]
fn a_rerun_with_another_group_size_keeps_the_numbers_the_first_run_claimed() {
    // Cut a run by threes after its first commit, finish by ones: the claims, not the grouping,
    // decide the numbers.
    let dir = tempfile::tempdir().expect("tempdir");
    let census_path = dir.path().join("census.csv");
    std::fs::write(&census_path, census()).expect("census");
    let ca = dir.path().join("ca");
    StagingCa::init(&ca, SystemTime::now()).expect("ca init");
    let out = dir.path().join("batch");
    assert!(matches!(
        run_grouped(&census_path, &ca, &out, Some(AFTER_FIRST_COMMIT), GROUP),
        Err(BatchError::InjectedCrash { .. })
    ));
    run_grouped(&census_path, &ca, &out, None, 1).expect("rerun by ones");
    check_finished(&out, AFTER_FIRST_COMMIT);
}

#[test]
fn a_rerun_cut_again_at_every_step_still_converges() {
    // A crash during the recovery run itself: cut the first run after its first commit, then cut the
    // rerun at each of its own steps in turn (until a cut lies past its last step), then finish.
    let dir = tempfile::tempdir().expect("tempdir");
    let census_path = dir.path().join("census.csv");
    std::fs::write(&census_path, census()).expect("census");
    let pristine_ca = dir.path().join("ca");
    StagingCa::init(&pristine_ca, SystemTime::now()).expect("ca init");
    let first_cut = AFTER_FIRST_COMMIT;
    let mut second_cut = 1;
    loop {
        let ca = dir.path().join(format!("ca-{second_cut}"));
        let out = dir.path().join(format!("batch-{second_cut}"));
        copy_dir(&pristine_ca, &ca);
        assert!(matches!(
            run(&census_path, &ca, &out, Some(first_cut)),
            Err(BatchError::InjectedCrash { .. })
        ));
        match run(&census_path, &ca, &out, Some(second_cut)) {
            Err(BatchError::InjectedCrash { step, .. }) => {
                assert_eq!(step, second_cut);
                run(&census_path, &ca, &out, None).expect("final run");
                check_finished(&out, second_cut);
            }
            Ok(summary) => {
                // The rerun has fewer steps than the cut: it finished, and what it did is complete.
                assert_eq!(summary.durable_steps, second_cut - 1);
                // Setup (a rerun takes the set-up step too, finding the census recorded), then the
                // second group only.
                assert_eq!(summary.durable_steps, SETUP_STEPS + GROUP_STEPS);
                check_finished(&out, second_cut);
                break;
            }
            Err(other) => panic!("rerun cut after step {second_cut}: {other:?}"),
        }
        second_cut += 1;
    }
}
