//! Workstation and server certificates: requested from the census, issued as PKCS#12 with their own
//! passwords, blocked, and downloaded all at once with a passwords file that really opens each bundle.

mod support;

use std::io::Read;
use std::process::Command;
use std::time::SystemTime;

use personalization::batch::{self, BatchOptions};
use personalization::ca::StagingCa;
use personalization::issuer::Issuer;
use personalization::lifecycle::Batch;
use personalization::workstation::{self, WorkstationState};
use support::*;

#[test]
fn workstation_certificates_from_request_to_download() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 058047: 3 in the monitoring sheet, 4 requested → PC-0001..0003 and the server CO-9999.
    let (csv, _) = big_census(1);
    let census = dir.path().join("census.csv");
    std::fs::write(&census, csv).expect("census");
    let ca_dir = dir.path().join("ca");
    let ca = StagingCa::init(&ca_dir, SystemTime::now()).expect("ca");
    let batch_dir = dir.path().join("batch");
    batch::personalize(
        &census,
        &ca_dir,
        &batch_dir,
        &BatchOptions::default(),
        &mut |_, _, _| {},
    )
    .expect("personalize");
    let mut batch = Batch::open(&batch_dir, None, SystemTime::now()).expect("batch");
    let now = 1_800_000_000;
    let requested = workstation::list(&batch.registry, Some("058047"), now).expect("list");
    let names: Vec<&str> = requested.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "058047-CO-9999",
            "058047-PC-0001",
            "058047-PC-0002",
            "058047-PC-0003"
        ]
    );
    assert!(requested
        .iter()
        .all(|w| w.state == WorkstationState::Requested));
    // One more on request, and the server renewal.
    assert_eq!(
        workstation::request(&mut batch.registry, "058047", false, now).expect("request"),
        "058047-PC-0004"
    );
    assert_eq!(
        workstation::request(&mut batch.registry, "058047", true, now).expect("renewal"),
        "058047-CO-9998"
    );
    assert!(
        workstation::request(&mut batch.registry, "058047", true, now).is_err(),
        "no third server certificate"
    );

    let mut issuer = Issuer::open(&ca_dir).expect("issuer");
    let issued = workstation::issue_requested(
        &mut batch.registry,
        &ca,
        &mut issuer,
        &batch.master,
        SystemTime::now(),
    )
    .expect("issue");
    assert!(issued.len() >= 6);
    workstation::block(&mut batch.registry, "058047-PC-0002", now).expect("block");
    let states: Vec<(String, WorkstationState)> =
        workstation::list(&batch.registry, Some("058047"), now)
            .expect("list")
            .into_iter()
            .map(|w| (w.name, w.state))
            .collect();
    assert!(states.contains(&("058047-PC-0002".into(), WorkstationState::Blocked)));
    assert!(states.contains(&("058047-PC-0001".into(), WorkstationState::Active)));
    // Six years later they have expired.
    let later = now + 7 * 365 * 86_400;
    assert!(workstation::list(&batch.registry, Some("058047"), later)
        .expect("list")
        .iter()
        .all(|w| w.state != WorkstationState::Active));

    let archive = dir.path().join("058047.zip");
    let count = workstation::download_all(&batch.registry, &batch.master, "058047", &archive)
        .expect("download");
    assert_eq!(count, 5, "active ones only (PC-0002 is blocked)");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&archive)
            .expect("zip")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&archive).expect("open")).expect("zip");
    let mut passwords = String::new();
    zip.by_name("passwords.txt")
        .expect("passwords.txt")
        .read_to_string(&mut passwords)
        .expect("read");
    assert_eq!(passwords.lines().count(), 5);
    for line in passwords.lines() {
        let (name, password) = line.split_once(": ").expect("name: password");
        let mut bundle = Vec::new();
        zip.by_name(&format!("{name}.p12"))
            .expect("p12")
            .read_to_end(&mut bundle)
            .expect("read");
        let path = dir.path().join(format!("{name}.p12"));
        std::fs::write(&path, &bundle).expect("write");
        let out = Command::new("openssl")
            .args([
                "pkcs12",
                "-in",
                path.to_str().expect("utf8"),
                "-passin",
                &format!("pass:{password}"),
                "-nokeys",
                "-clcerts",
            ])
            .output()
            .expect("openssl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success()
                && (text.contains(&format!("CN = {name}")) || text.contains(&format!("CN={name}"))),
            "{name}: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
        let wrong = Command::new("openssl")
            .args([
                "pkcs12",
                "-in",
                path.to_str().expect("utf8"),
                "-passin",
                "pass:wrong",
                "-nokeys",
            ])
            .output()
            .expect("openssl");
        assert!(
            !wrong.status.success(),
            "{name} opened with a wrong password"
        );
    }
}
