//! Bad command-line calls exit non-zero with one readable sentence.

use std::process::Command;

const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(TESSERA)
        .args(args)
        .output()
        .expect("run tessera");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn missing_card_file_is_named() {
    let (code, err) = run(&["apdu", "--card", "/nonexistent/card.img", "00A40400"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("/nonexistent/card.img") && err.contains("does not exist"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn corrupt_card_file_is_refused_not_reset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.img");
    std::fs::write(&path, b"TESSERA-CARD\nxx").expect("write");
    let (code, err) = run(&["card", "info", path.to_str().expect("utf8")]);
    assert_eq!(code, 2);
    assert!(
        err.contains("bad.img") && err.contains("truncated"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).expect("read"), b"TESSERA-CARD\nxx");
}

#[test]
fn bad_hex_and_short_apdus_are_refused_with_their_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let card = dir.path().join("c.img");
    assert_eq!(
        run(&["card", "new", "--out", card.to_str().expect("utf8")]).0,
        0
    );
    let (code, err) = run(&[
        "apdu",
        "--card",
        card.to_str().expect("utf8"),
        "80100000",
        "zz",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("APDU argument 2") && err.contains("not an APDU in hex"),
        "{err}"
    );
    let (code, err) = run(&["apdu", "--card", card.to_str().expect("utf8"), "8010"]);
    assert_eq!(code, 2);
    assert!(err.contains("at least 4"), "{err}");
}

#[test]
fn existing_card_is_not_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let card = dir.path().join("c.img");
    let path = card.to_str().expect("utf8");
    assert_eq!(run(&["card", "new", "--out", path]).0, 0);
    let (code, err) = run(&["card", "new", "--out", path]);
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn unreachable_vpcd_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let card = dir.path().join("c.img");
    let path = card.to_str().expect("utf8");
    assert_eq!(run(&["card", "new", "--out", path]).0, 0);
    // Port 9 (discard) on loopback: nothing listens there.
    let (code, err) = run(&["serve", "--vpcd", "127.0.0.1:9", "--wait", "1", path]);
    assert_eq!(code, 2);
    assert!(
        err.contains("not reachable") && err.contains("pcscd"),
        "{err}"
    );
    let (code, err) = run(&["serve", "--vpcd", "nonsense", path]);
    assert_eq!(code, 2);
    assert!(err.contains("HOST:PORT"), "{err}");
}

#[test]
fn card_in_use_by_another_process_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let card = dir.path().join("c.img");
    let path = card.to_str().expect("utf8");
    assert_eq!(run(&["card", "new", "--out", path]).0, 0);
    let mut holder = Command::new(TESSERA)
        .args(["apdu", "--card", path])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let (code, err) = run(&["apdu", "--card", path, "80120000"]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(code, 2);
    assert!(err.contains("in use by another process"), "{err}");
}
