//! `tessera demo` and `tessera lab serve` as a user runs them: the demo's whole flow in one process,
//! then the lab served by its own process in front of the demo's batch, and the sentences bad calls get.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use login_lab::client::{self, Identity};

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

fn run_demo(dir: &Path) -> String {
    let (code, out, err) = tessera(&[
        "demo",
        "--once",
        "--listen",
        "127.0.0.1:0",
        "--dir",
        dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    out
}

#[test]
fn the_demo_logs_the_mayor_and_the_als_in_with_their_cards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_demo(&dir.path().join("demo"));
    assert!(
        out.contains("logged in as Ferri Alessandro (FRRLSN71E09D773A), SINDACO of 058040"),
        "{out}"
    );
    assert!(
        out.contains("logged in as Ricci Chiara (RCCCHR84B67H501N), ALS of 058040"),
        "{out}"
    );
    assert!(out.contains("from 058040-PC-0001"), "{out}");
    // What the demo hands a user who wants to try their own browser: private files stay private.
    let demo = dir.path().join("demo");
    for private in ["058040-PC-0001.p12", "058040-PC-0001.password"] {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(demo.join(private))
            .expect(private)
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{private}");
    }
    assert!(demo.join("batch/lab/ca.crt").exists());
}

/// `tessera lab serve` in front of the demo's batch: the first line names both doors, the workstation
/// PKCS#12 the demo wrote opens the login page, a client without it gets the refusal page, and SIGTERM
/// ends the server with exit 0.
#[test]
fn lab_serve_answers_the_workstation_the_demo_issued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = dir.path().join("demo");
    run_demo(&demo);
    let mut child = Command::new(TESSERA)
        .args(["lab", "serve", "--listen", "127.0.0.1:0", "--batch"])
        .arg(demo.join("batch"))
        .arg("--ca")
        .arg(demo.join("ca"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn lab serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lab = testkit::Terminating::new(child);
    let mut first = String::new();
    BufReader::new(stdout)
        .read_line(&mut first)
        .expect("first line");
    let door: SocketAddr = first
        .split("workstation door ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("no workstation door in {first:?}"));
    assert!(first.contains("card door 127.0.0.1:"), "{first}");

    let ca_der = personalization::ca::StagingCa::open(&demo.join("ca"))
        .expect("the demo's CA")
        .certificate_der();
    let password = std::fs::read_to_string(demo.join("058040-PC-0001.password")).expect("password");
    let pkcs12 = std::fs::read(demo.join("058040-PC-0001.p12")).expect("p12");
    let workstation = Identity::from_pkcs12(&pkcs12, password.trim()).expect("the demo's PKCS#12");
    let page = client::request(door, &ca_der, Some(&workstation), "GET", "/login", &[], b"")
        .expect("login page");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("058040-PC-0001"), "{}", page.text());
    // Without a workstation certificate the handshake completes and the page says why it refuses.
    let refused =
        client::request(door, &ca_der, None, "GET", "/login", &[], b"").expect("a refusal page");
    assert_eq!(refused.status, 403);
    assert!(
        refused.text().contains("no-workstation-certificate"),
        "{}",
        refused.text()
    );

    assert_eq!(lab.terminate(), Some(0), "lab serve after SIGTERM");
}

#[test]
fn bad_demo_and_lab_calls_get_one_sentence() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("something"), b"kept").expect("write");
    let (code, _, err) = tessera(&[
        "demo",
        "--once",
        "--dir",
        dir.path().to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("is not empty"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("something")).expect("kept"),
        b"kept"
    );

    let (code, _, err) = tessera(&[
        "lab",
        "serve",
        "--batch",
        "/nonexistent/batch",
        "--ca",
        "/x",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/batch"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let (code, _, err) = tessera(&[
        "lab",
        "serve",
        "--batch",
        "/nonexistent/batch",
        "--ca",
        "/x",
        "--clock",
        "tomorrow",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("RFC 3339"), "{err}");
}
