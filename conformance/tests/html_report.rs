//! The HTML report in a real browser: both suites run against a good card and against a broken one (so
//! the page has failures with their APDU exchanges), the page is rendered by headless Chromium, and the
//! screenshot is kept as an artefact: `target/tmp/conformance-report/report.png` (beside `report.html`).

use std::path::PathBuf;
use std::time::Duration;

use card_os::{AppletRegistry, Card, CardConfig, Installation, Storage};
use card_transport::{InProcessReader, VirtualCard};
use testkit::tool::{optional, Tool};

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 1800;

fn good_card() -> InProcessReader {
    let registry = AppletRegistry::new()
        .register(piv_applet::aid(), piv_applet::factory)
        .register(demo_applet::aid(), demo_applet::factory);
    let installations = [
        Installation {
            aid: piv_applet::aid(),
            params: piv_applet::InstallParams::default().to_bytes(),
            default_selected: true,
        },
        Installation {
            aid: demo_applet::aid(),
            params: Vec::new(),
            default_selected: false,
        },
    ];
    let config = CardConfig {
        seed: Some(11),
        ..CardConfig::default()
    };
    let card = Card::create(config, &registry, &installations, Storage::Memory).expect("card");
    InProcessReader::new(card_transport::share(card))
}

/// Answers `6F 00` to everything: every check that needs an answer fails.
struct BrokenCard;

impl VirtualCard for BrokenCard {
    fn atr(&self) -> Vec<u8> {
        vec![0x3B, 0x80, 0x01, 0x81]
    }
    fn power_on(&mut self) {}
    fn power_off(&mut self) {}
    fn reset(&mut self) {}
    fn transmit(&mut self, _command: &[u8]) -> Vec<u8> {
        vec![0x6F, 0x00]
    }
}

fn run(transport: &mut InProcessReader) -> (Vec<conformance::Report>, conformance::RunInfo) {
    let card = conformance::identify(transport);
    let started = std::time::Instant::now();
    let reports = conformance::all_suites()
        .iter()
        .map(|suite| conformance::run(suite, transport))
        .collect();
    let info = conformance::RunInfo {
        card,
        started: "2030-01-01T00:00:00Z".into(),
        duration: started.elapsed(),
    };
    (reports, info)
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !bytes.starts_with(SIGNATURE) || bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let word = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    Some((word(16)?, word(20)?))
}

#[test]
fn the_report_of_a_good_and_a_broken_card_renders_in_chromium() {
    let (good, good_info) = run(&mut good_card());
    assert!(good.iter().all(|r| r.failed() == 0));
    assert!(
        good_info.card.fields.iter().any(|(k, _)| k == "serial"),
        "{:?}",
        good_info.card
    );
    let (broken, broken_info) = run(&mut InProcessReader::new(card_transport::share(BrokenCard)));
    assert!(broken.iter().any(|r| r.failed() > 0));
    assert!(broken_info.card.fields.is_empty());

    let page = conformance::html(&broken, &broken_info);
    assert!(page.contains("class=\"status fail\">FAIL"));
    assert!(
        page.contains("<pre>-- reset\n&gt; 00 A4 04 00"),
        "a failure shows its exchange:\n{page}"
    );
    assert!(page.contains("6F00 (no precise diagnosis)"), "{page}");
    let good_page = conformance::html(&good, &good_info);
    assert!(!good_page.contains(">FAIL<"));

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("conformance-report");
    std::fs::create_dir_all(&dir).expect("artefact dir");
    let html = dir.join("report.html");
    let png = dir.join("report.png");
    std::fs::write(&html, &page).expect("write report");
    std::fs::write(dir.join("report-good.html"), &good_page).expect("write report");
    let _ = std::fs::remove_file(&png);

    let Some(chromium) = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| testkit::tool::have(b))
    else {
        optional(
            "chromium",
            "scripts/browser-install.sh installs Debian's chromium",
        );
        return;
    };
    let profile = tempfile::tempdir().expect("profile dir");
    Tool::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(format!("file://{}", html.display()))
        .env("HOME", profile.path())
        .timeout(Duration::from_secs(120))
        .run()
        .ok();
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert_eq!(
        png_size(&bytes),
        Some((WIDTH, HEIGHT)),
        "not a {WIDTH}x{HEIGHT} PNG"
    );
    // A blank page compresses to a few kilobytes; tables, colours and text do not.
    assert!(
        bytes.len() > 30_000,
        "screenshot is only {} bytes: an empty page?",
        bytes.len()
    );
    eprintln!("screenshot: {} ({} bytes)", png.display(), bytes.len());
}
