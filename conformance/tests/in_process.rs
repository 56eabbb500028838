//! The suites against in-process cards: a card with PIV and the demo applet passes the runtime and PIV
//! suites and skips the CNS one; a personalized CNS card passes the CNS suite; a card without PIV
//! skips the PIV suite with the reason; a broken answer fails with a sentence.

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
    for suite in [conformance::runtime_suite(), conformance::piv_suite()] {
        let report = conformance::run(&suite, &mut reader);
        assert_eq!(report.failed(), 0, "{}", report.text());
        assert_eq!(report.skipped(), 0, "{}", report.text());
        assert!(report.passed() >= 10, "{}", report.text());
    }
    let cns = conformance::run(&conformance::cns_suite(), &mut reader);
    assert_eq!(cns.skipped(), cns.results.len(), "{}", cns.text());
    assert!(cns.text().contains("not a CNS"), "{}", cns.text());
}

/// A CNS card with a key, a certificate-shaped EF and the holder's data, written as the bureau does.
fn personalized_cns() -> InProcessReader {
    let mut card =
        cns_applet::in_memory_card(Some(3), &cns_applet::InstallParams::default()).expect("card");
    {
        let mut reader = card_transport::DirectReader::new(&mut card);
        let mut cns = cns_host::CnsSession::new(&mut reader);
        cns.authenticate(&cns_applet::DEFAULT_PERSONALIZATION_KEY)
            .expect("authenticate");
        cns.generate_key(1024).expect("key");
        cns.write_file(cns_host::path::CERTIFICATE, &[0x30, 0x03, 0x02, 0x01, 0x00])
            .expect("certificate");
        let data = cns_host::PersonalData {
            issuer_code: "058091".into(),
            issuing_date: "01122026".into(),
            expiry_date: "01122032".into(),
            surname: "ROSSI".into(),
            given_name: "MARIO".into(),
            birth_date: String::new(),
            sex: String::new(),
            codice_fiscale: "RSSMRA80A01H501U".into(),
        };
        cns.write_file(
            cns_host::path::DATI_PERSONALI,
            &data.encode().expect("encode"),
        )
        .expect("dati personali");
    }
    InProcessReader::new(card_transport::share(card))
}

#[test]
fn a_personalized_cns_card_passes_the_cns_suite_and_skips_piv() {
    let mut reader = personalized_cns();
    let cns = conformance::run(&conformance::cns_suite(), &mut reader);
    assert_eq!(cns.failed(), 0, "{}", cns.text());
    assert_eq!(cns.skipped(), 0, "{}", cns.text());
    assert_eq!(cns.passed(), cns.results.len(), "{}", cns.text());
    let piv = conformance::run(&conformance::piv_suite(), &mut reader);
    assert_eq!(piv.skipped(), piv.results.len(), "{}", piv.text());
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
    assert!(xml.contains("<testsuite name=\"cns\""), "{xml}");
    // The PIV card passes every runtime and PIV check and skips every CNS one.
    let passed: usize = reports[..2].iter().map(|r| r.results.len()).sum();
    let skipped = reports[2].results.len();
    assert_eq!(
        conformance::totals(&reports),
        format!("conformance: {passed} passed, 0 failed, {skipped} skipped")
    );
}
