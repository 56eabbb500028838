//! The bureau through the command line: census checks, all-or-nothing rejection, and a batch killed
//! midway that a rerun finishes with no duplicate or missing card.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use personalization::census::codice_fiscale;

const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

fn tessera(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(TESSERA)
        .args(args)
        .output()
        .expect("run tessera");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn workspace(path: &str) -> String {
    format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_sample_census_is_valid_in_both_formats() {
    for sample in ["examples/census.csv", "examples/census.xlsx"] {
        let (code, out, err) = tessera(&["bureau", "check", &workspace(sample)]);
        assert_eq!(code, 0, "{sample}: {err}");
        assert!(out.contains("is valid: 3 entities"), "{out}");
    }
}

#[test]
fn a_bad_census_reports_every_error_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let census = workspace("personalization/src/census/testdata/every_error.csv");
    let (code, _, err) = tessera(&["bureau", "check", &census]);
    assert_eq!(code, 1);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("row ")).collect();
    assert!(
        errors.len() >= 15,
        "only {} errors reported:\n{err}",
        errors.len()
    );
    assert!(err.contains("nothing was written"), "{err}");
    for expected in [
        "column codice_fiscale",
        "column email",
        "column profiles",
        "column employees",
        "column entity",
    ] {
        assert!(
            errors.iter().any(|l| l.contains(expected)),
            "no error names {expected}:\n{err}"
        );
    }
    let ca = dir.path().join("ca");
    assert_eq!(
        tessera(&["ca", "init", "--out", ca.to_str().expect("utf8")]).0,
        0
    );
    let ca_before: Vec<_> = std::fs::read_dir(&ca)
        .expect("ca")
        .map(|e| e.expect("entry").file_name())
        .collect();
    let out = dir.path().join("batch");
    let (code, _, err) = tessera(&[
        "bureau",
        "personalize",
        "--quiet",
        "--census",
        &census,
        "--ca",
        ca.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(!out.exists(), "a rejected census must write nothing");
    let ca_after: Vec<_> = std::fs::read_dir(&ca)
        .expect("ca")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(ca_before, ca_after, "nothing written next to the CA either");
}

fn census(people: usize) -> String {
    let mut rows = vec![
        "record,entity,entity_type,entity_name,monitored_workstations,workstations,employees,email_domains,codice_fiscale,surname,name,email,profiles".to_string(),
        format!("entity,058047,comune,Frascati,2,2,{people},comune.frascati.rm.it,,,,,"),
    ];
    for n in 0..people {
        let first15 = format!(
            "RSS{}{:02}A{:02}H501",
            ["MRA", "LGU", "GPP"][n % 3],
            50 + n % 40,
            1 + n % 28
        );
        let check = codice_fiscale::check_character(&first15).expect("valid");
        let profile = match n {
            0 => "SINDACO",
            1 => "ALS",
            2 => "ALP",
            _ => "OPERATORE",
        };
        rows.push(format!(
            "user,058047,,,,,,,{first15}{check},Rossi,Utente{n},utente{n}.rossi@comune.frascati.rm.it,{profile}"
        ));
    }
    rows.join("\n") + "\n"
}

fn count(dir: &Path, extension: &str) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == extension))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_batch_killed_midway_is_finished_by_a_rerun_with_no_duplicate_or_missing_card() {
    let people = 24;
    let dir = tempfile::tempdir().expect("tempdir");
    let census_path = dir.path().join("census.csv");
    std::fs::write(&census_path, census(people)).expect("census");
    let ca = dir.path().join("ca");
    assert_eq!(
        tessera(&["ca", "init", "--out", ca.to_str().expect("utf8")]).0,
        0
    );
    let out = dir.path().join("batch");
    let args = [
        "bureau",
        "personalize",
        "--quiet",
        "--census",
        census_path.to_str().expect("utf8"),
        "--ca",
        ca.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
        // Groups of 5: the kill lands among several group commits, not inside the only one.
        "--group-size",
        "5",
    ];
    let mut child = Command::new(TESSERA)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Kill it once a few cards are done, mid-batch.
    let started = Instant::now();
    while count(&out.join("envelopes"), "json") < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the batch made no progress"
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the batch finished before it could be killed ({status}); use more people");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let done_before = count(&out.join("envelopes"), "json");
    assert!(
        done_before < people,
        "the kill came too late to test anything"
    );

    let (code, stdout, err) = tessera(&args);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains(&format!("{people} in the census")),
        "{stdout}"
    );

    let (code, json, err) = tessera(&[
        "bureau",
        "status",
        "--json",
        "--batch",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 0, "{err}");
    let cards: Vec<serde_json::Value> = serde_json::from_str(&json).expect("status json");
    assert_eq!(cards.len(), people, "one card per person");
    let mut numbers: Vec<String> = cards
        .iter()
        .map(|c| c["card_number"].as_str().expect("number").to_string())
        .collect();
    let mut holders: Vec<String> = cards
        .iter()
        .map(|c| c["codice_fiscale"].as_str().expect("cf").to_string())
        .collect();
    numbers.sort();
    holders.sort();
    holders.dedup();
    assert_eq!(holders.len(), people, "a person got two cards");
    // The numbers are exactly 1..=people: none skipped, none reused (a card interrupted by the kill was
    // remade under the number it had been allocated).
    let expected: Vec<String> = (1..=people).map(|n| format!("058047{n:06}")).collect();
    assert_eq!(numbers, expected);
    assert_eq!(count(&out.join("envelopes"), "json"), people);
    assert_eq!(count(&out.join("envelopes"), "pdf"), people);
    assert_eq!(count(&out.join("cards"), "img"), people);
    // Every card image opens.
    for card in &cards {
        let file = out.join(card["card_file"].as_str().expect("file"));
        let (code, _, err) = tessera(&["card", "info", file.to_str().expect("utf8")]);
        assert_eq!(code, 0, "{}: {err}", file.display());
    }
}

#[test]
fn the_crash_hook_cuts_a_batch_from_the_command_line_and_a_rerun_finishes_it() {
    let people = 4;
    let dir = tempfile::tempdir().expect("tempdir");
    let census_path = dir.path().join("census.csv");
    std::fs::write(&census_path, census(people)).expect("census");
    let ca = dir.path().join("ca");
    assert_eq!(
        tessera(&["ca", "init", "--out", ca.to_str().expect("utf8")]).0,
        0
    );
    let out = dir.path().join("batch");
    let args = [
        "bureau",
        "personalize",
        "--quiet",
        "--census",
        census_path.to_str().expect("utf8"),
        "--ca",
        ca.to_str().expect("utf8"),
        "--out",
        out.to_str().expect("utf8"),
    ];
    let with_hook = |value: &str| {
        let out = Command::new(TESSERA)
            .args(args)
            .env("TESSERA_CRASH_AFTER_DURABLE_STEP", value)
            .output()
            .expect("run tessera");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // A bad value is one readable sentence, and nothing runs.
    let (code, err) = with_hook("soon");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("TESSERA_CRASH_AFTER_DURABLE_STEP"), "{err}");
    assert!(!out.exists(), "nothing written for a bad hook value");
    // Cut after the 5th step: the first card's number is claimed but not yet recorded in the batch.
    let (code, err) = with_hook("5");
    assert_eq!(code, 2, "every failed command exits 2: {err}");
    assert!(err.contains("injected crash after durable step 5"), "{err}");
    let (code, _, err) = tessera(&args);
    assert_eq!(code, 0, "{err}");
    let (code, json, err) = tessera(&[
        "bureau",
        "status",
        "--json",
        "--batch",
        out.to_str().expect("utf8"),
    ]);
    assert_eq!(code, 0, "{err}");
    let cards: Vec<serde_json::Value> = serde_json::from_str(&json).expect("status json");
    let mut numbers: Vec<String> = cards
        .iter()
        .map(|c| c["card_number"].as_str().expect("number").to_string())
        .collect();
    numbers.sort();
    let expected: Vec<String> = (1..=people).map(|n| format!("058047{n:06}")).collect();
    assert_eq!(numbers, expected, "no number burnt by the cut");
}
