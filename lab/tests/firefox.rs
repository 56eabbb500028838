//! The seeds' flow in a real Firefox ESR, driven as a QA team drives one: a fresh profile with the
//! lab's CA trusted, the workstation's PKCS#12 imported with its password and Debian's OpenSC module
//! registered; the operator's CNS card in a vpcd reader of a private pcscd; the PIN typed into
//! Firefox's own "Password Required" dialog (xdotool on an Xvfb display). Firefox chooses each client
//! certificate itself ("Select Automatically"), by the issuing CA each door names.
//!
//! The scenario: the mayor logs in with the card and registers an ALS's card from the security
//! console; the ALS joins envelope half and e-mail half and logs in; the ALS requests a new card for
//! the mayor from the console, after which the mayor's old card is refused; three wrong PINs block an
//! operator's card and the browser's card login fails. Screenshots of the pages are kept in
//! `target/tmp/browser-login/`.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use card_os::{Card, Durability};
use login_lab::Lab;
use personalization::batch::CardProfile;
use support::*;
use testkit::browser::{self, Display, Firefox};
use virtual_reader::testing::{plug_and_wait, Pcscd};

const MODULE: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
/// Firefox's PIN dialog (PK11 password prompt) is a window of its own with this title.
const PIN_DIALOG: &str = "Password Required";
const PAGE: Duration = Duration::from_secs(60);

fn artefacts() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser-login")
}

/// A person at the certified workstation: a fresh Firefox profile (the workstation's PKCS#12
/// installed) on the test's display.
struct Session<'a> {
    firefox: Firefox,
    display: &'a Display,
    lab: &'a Lab,
    secrets: PathBuf,
}

impl<'a> Session<'a> {
    fn open(world: &World, lab: &'a Lab, display: &'a Display, pcscd: &Pcscd, name: &str) -> Self {
        let dir = world.dir.path().join(format!("firefox-{name}"));
        let master = personalization::batch::master_key(&world.batch, None).expect("master key");
        let (pkcs12, password) =
            personalization::workstation::bundle(&world.registry(), &master, &world.workstation)
                .expect("bundle");
        std::fs::create_dir_all(&dir).expect("profile dir");
        let p12 = dir.join("workstation.p12");
        std::fs::write(&p12, &pkcs12).expect("p12");
        let profile = browser::firefox_profile(
            &dir.join("profile"),
            lab.ca_file(),
            &p12,
            &password,
            Path::new(MODULE),
        )
        .expect("profile");
        let firefox = Firefox::start(&profile, display, &pcscd.client_env(0)).expect("firefox");
        Self {
            firefox,
            display,
            lab,
            secrets: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "https://localhost:{}{path}",
            self.lab.workstation_addr().port()
        )
    }

    /// Opens the login page, answering the PIN dialog Firefox shows while it lists the card's
    /// certificates for the first handshake.
    fn open_login_page(&mut self, pin: &str) {
        let file = browser::secret_file(&self.secrets, "pin", pin).expect("pin file");
        let pending = self
            .firefox
            .start_navigation(&self.url("/login"))
            .expect("navigate");
        browser::type_into_window(self.display, PIN_DIALOG, &file, PAGE).expect("PIN dialog");
        std::fs::remove_file(&file).expect("rm pin");
        self.firefox.finish(pending).expect("login page loads");
    }

    fn text(&mut self, css: &str) -> String {
        self.firefox.text(css, PAGE).expect(css)
    }

    fn shot(&mut self, name: &str) {
        self.firefox
            .screenshot(&artefacts().join(format!("{name}.png")))
            .expect("screenshot");
    }
}

/// Takes the card out of the reader and waits until pcscd has seen it gone (a card back faster than
/// pcscd's presence poll would never be seen removed).
fn pull(pcscd: &Pcscd, slot: virtual_reader::SlotHandle) {
    drop(slot);
    let reader = pcscd.reader_name(0);
    assert!(
        virtual_reader::testing::wait_for(
            || !card_transport::PcscReader::card_present(reader).unwrap_or(true),
            Duration::from_secs(15)
        ),
        "the card stays in {reader}"
    );
}

#[test]
fn the_seeds_flow_in_firefox_with_cns_cards() {
    if !testkit::browser::TOOLS
        .iter()
        .all(|tool| testkit::tool::optional(tool, "bash scripts/browser-install.sh"))
    {
        return;
    }
    let world = world(CardProfile::Cns);
    let lab = world.lab(None);
    let display = Display::start().expect("Xvfb");
    let pcscd = Pcscd::start().expect("private pcscd");
    let card_image = |codice_fiscale: &str| {
        Card::open(
            &world.batch.join(&world.card_of(codice_fiscale).card_file),
            &card_registry(),
            Durability::Relaxed,
        )
        .expect("card image")
    };

    // The mayor logs in with the card.
    let slot = plug_and_wait(&pcscd, card_image(MAYOR));
    let mut mayor = Session::open(&world, &lab, &display, &pcscd, "mayor");
    mayor.open_login_page(&world.pin(MAYOR));
    assert!(mayor.text("#workstation").contains(&world.workstation));
    mayor.shot("1-login-page");
    mayor.firefox.click("#card-login").expect("card login");
    assert_eq!(mayor.text("#whoami-codice-fiscale"), MAYOR);
    assert_eq!(mayor.text("#whoami-method"), "card");
    assert_eq!(mayor.text("#whoami-workstation"), world.workstation);
    mayor.shot("2-mayor-logged-in");

    // … and registers the delivery of the ALS's card from the security console.
    let als_card = world.card_of(ALS).card_number;
    mayor.firefox.click("#console-link").expect("console");
    mayor.shot("3-console");
    mayor
        .firefox
        .click(&format!("#register-{als_card}"))
        .expect("register");
    assert!(
        mayor.text("#notice").contains(&als_card),
        "a notice names the card"
    );
    assert_eq!(
        mayor.text(&format!("#card-{als_card} .state")),
        "active",
        "the registered card is active"
    );
    mayor.shot("4-console-registered");
    assert!(mayor.firefox.quit(), "Firefox quits");
    pull(&pcscd, slot);

    // The ALS joins the envelope half and the e-mail half the registration released, and logs in
    // at the same workstation.
    let slot = plug_and_wait(&pcscd, card_image(ALS));
    let mut als = Session::open(&world, &lab, &display, &pcscd, "als");
    als.open_login_page(&world.pin(ALS));
    als.firefox.click("#card-login").expect("card login");
    assert_eq!(als.text("#whoami-codice-fiscale"), ALS);
    assert_eq!(als.text("#whoami-card"), als_card);
    als.shot("5-als-logged-in");

    // The ALS requests a new card for the mayor: the mayor's current card is blocked at once.
    let mayor_card = world.card_of(MAYOR).card_number;
    als.firefox.click("#console-link").expect("console");
    als.firefox
        .click(&format!("#replace-{mayor_card}"))
        .expect("replace");
    assert!(
        als.text("#notice").contains(&mayor_card),
        "a notice names the card"
    );
    assert_eq!(als.text(&format!("#card-{mayor_card} .state")), "blocked");
    als.shot("6-console-replaced");
    assert!(als.firefox.quit(), "Firefox quits");
    pull(&pcscd, slot);

    // The mayor's old card still takes its PIN, but the lab refuses it by name.
    let old_card = Card::open(
        &world.batch.join("cards").join(format!("{mayor_card}.img")),
        &card_registry(),
        Durability::Relaxed,
    )
    .expect("the old card's image");
    let slot = plug_and_wait(&pcscd, old_card);
    let mut old = Session::open(&world, &lab, &display, &pcscd, "old-card");
    old.open_login_page(
        &login_lab::holder::join(&world.batch, &mayor_card)
            .expect("halves")
            .pin,
    );
    old.firefox.click("#card-login").expect("card login");
    assert_eq!(old.text("#refusal-code"), "card-blocked");
    assert!(old.text("#refusal-reason").contains(&mayor_card));
    old.shot("7-old-card-refused");
    assert!(old.firefox.quit(), "Firefox quits");
    pull(&pcscd, slot);

    // Three wrong PINs typed into Firefox's dialog block an operator's card; the card login then
    // finds no card certificate Firefox can use.
    let operator = world.card_of(OPERATOR).card_number;
    let slot = plug_and_wait(&pcscd, card_image(OPERATOR));
    let mut blocked = Session::open(&world, &lab, &display, &pcscd, "wrong-pin");
    let wrong = browser::secret_file(&blocked.secrets, "wrong-pin", "00000000").expect("pin file");
    let pending = blocked
        .firefox
        .start_navigation(&blocked.url("/login"))
        .expect("navigate");
    for attempt in 1..=3 {
        browser::type_into_window(&display, PIN_DIALOG, &wrong, PAGE)
            .unwrap_or_else(|e| panic!("PIN dialog, attempt {attempt}: {e}"));
        // Firefox asks again in a new dialog: wait for this one to go first.
        virtual_reader::testing::wait_for(
            || !browser::window_present(&display, PIN_DIALOG),
            Duration::from_secs(5),
        );
    }
    // The card is blocked now; if Firefox asks once more, the person gives up.
    virtual_reader::testing::wait_for(
        || browser::dismiss_window(&display, PIN_DIALOG),
        Duration::from_secs(5),
    );
    blocked.firefox.finish(pending).expect("login page loads");
    assert!(blocked.text("#workstation").contains(&world.workstation));
    // At the card door Firefox looks for the card's key, which needs the PIN again: the person
    // gives up on every prompt.
    let click = blocked
        .firefox
        .start_click("#card-login")
        .expect("card login");
    let mut prompts = 0;
    let until = std::time::Instant::now() + Duration::from_secs(8);
    while std::time::Instant::now() < until {
        if browser::dismiss_window(&display, PIN_DIALOG) {
            prompts += 1;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    blocked.firefox.finish(click).expect("card login handled");
    eprintln!("PIN prompts dismissed at the card door: {prompts}");
    assert_eq!(blocked.text("#refusal-code"), "no-card-certificate");
    blocked.shot("8-blocked-card-no-certificate");
    assert!(blocked.firefox.quit(), "Firefox quits");
    pull(&pcscd, slot);
    // The card itself is blocked: even its right PIN is refused now.
    let mut card = card_image(OPERATOR);
    let mut reader = card_transport::DirectReader::new(&mut card);
    let outcome = cns_host::CnsSession::new(&mut reader)
        .verify(cns_host::Secret::Pin, &world.escrowed_pin(&operator))
        .expect("VERIFY");
    assert_eq!(
        outcome,
        cns_host::PinOutcome::Blocked,
        "card {operator} after three wrong PINs"
    );
}
