//! Both suites against in-process cards: a card with PIV and the demo applet passes everything; a card
//! without PIV skips the PIV suite with the reason; a broken answer fails with a sentence.

use card_os::{AppletRegistry, Card, CardConfig, Installation, Storage};
use card_transport::InProcessReader;

fn card(with_piv: bool) -> InProcessReader {
    let registry = AppletRegistry::new()
        .register(piv_applet::aid(), piv_applet::factory)
        .register(demo_applet::aid(), demo_applet::factory);
    let mut installations = vec![Installation {
        aid: demo_applet::aid(),
        params: Vec::new(),
        default_selected: !with_piv,
    }];
    if with_piv {
        installations.push(Installation {
            aid: piv_applet::aid(),
            params: piv_applet::InstallParams::default().to_bytes(),
            default_selected: true,
        });
    }
    let card = Card::create(
        CardConfig::default(),
        &registry,
        &installations,
        Storage::Memory,
    )
    .expect("card");
    InProcessReader::new(card_transport::share(card))
}

#[test]
fn a_piv_card_passes_every_check() {
    let mut reader = card(true);
    for suite in conformance::all_suites() {
        let report = conformance::run(&suite, &mut reader);
        assert_eq!(report.failed(), 0, "{}", report.text());
        assert_eq!(report.skipped(), 0, "{}", report.text());
        assert!(report.passed() >= 10, "{}", report.text());
    }
}

#[test]
fn a_card_without_piv_skips_the_piv_suite_with_the_reason() {
    let mut reader = card(false);
    let report = conformance::run(&conformance::piv_suite(), &mut reader);
    assert_eq!(report.skipped(), report.results.len(), "{}", report.text());
    assert!(
        report.text().contains("no PIV application"),
        "{}",
        report.text()
    );
    let runtime = conformance::run(&conformance::runtime_suite(), &mut reader);
    assert_eq!(runtime.failed(), 0, "{}", runtime.text());
}

#[test]
fn junit_holds_every_suite_and_the_totals_line_counts_them() {
    let mut reader = card(true);
    let reports: Vec<_> = conformance::all_suites()
        .iter()
        .map(|s| conformance::run(s, &mut reader))
        .collect();
    let xml = conformance::junit(&reports).expect("junit");
    assert!(
        xml.contains("<testsuite name=\"runtime\"") && xml.contains("<testsuite name=\"piv\""),
        "{xml}"
    );
    let total: usize = reports.iter().map(|r| r.results.len()).sum();
    assert_eq!(
        conformance::totals(&reports),
        format!("conformance: {total} passed, 0 failed, 0 skipped")
    );
}
