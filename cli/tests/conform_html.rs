//! `tessera conform --html`: the page beside JUnit, naming the card by ATR and PIV identity.

use testkit::tool::Tool;

const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

#[test]
fn conform_writes_an_html_report_beside_junit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let card = dir.path().join("card.img");
    let html = dir.path().join("report.html");
    let junit = dir.path().join("report.xml");
    Tool::new(TESSERA)
        .args(["card", "new", "--serial", "4242", "--out"])
        .arg(&card)
        .run()
        .ok();
    Tool::new(TESSERA)
        .args(["conform", "--in-process", "--card"])
        .arg(&card)
        .arg("--html")
        .arg(&html)
        .arg("--junit")
        .arg(&junit)
        .run()
        .ok()
        .has("0 failed");
    let page = std::fs::read_to_string(&html).expect("html written");
    assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
    assert!(
        page.contains("Suite runtime") && page.contains("Suite piv"),
        "{page}"
    );
    assert!(
        page.contains("3B FB 13 00 00 81 31 FE 15 80 F9 A0 00 00 03 08 00 00 10 00 71"),
        "the ATR: {page}"
    );
    assert!(
        page.contains("<dt>serial</dt><dd>4242</dd>"),
        "the identity: {page}"
    );
    assert!(
        page.contains("<dt>PIV version</dt><dd>5.7.1</dd>"),
        "{page}"
    );
    assert!(std::fs::read_to_string(&junit)
        .expect("junit")
        .contains("<testsuite"));
}
