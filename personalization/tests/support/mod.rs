//! Test helpers: a generated census of many valid users, and reading cards, envelopes and e-mails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use card_os::{AppletRegistry, Card, Durability};
use card_transport::InProcessReader;
use personalization::census::codice_fiscale;
use piv_host::{PinOutcome, PinValue, PivSession};

/// A valid codice fiscale built from parts (surname/name codes, birth, municipality), check letter added.
pub fn cf(surname: &str, name: &str, year: u32, month: char, day: u32, place: &str) -> String {
    let first15 = format!("{surname}{name}{year:02}{month}{day:02}{place}");
    let check = codice_fiscale::check_character(&first15).expect("15 valid characters");
    format!("{first15}{check}")
}

pub struct Person {
    pub cf: String,
    pub surname: String,
    pub name: String,
}

/// `n`-th synthetic person: distinct codici fiscali, realistic shape.
pub fn person(n: usize) -> Person {
    const SURNAMES: [(&str, &str); 8] = [
        ("RSS", "Rossi"),
        ("BNC", "Bianchi"),
        ("VRD", "Verdi"),
        ("NRE", "Neri"),
        ("GLL", "Galli"),
        ("CNT", "Conti"),
        ("MRN", "Marino"),
        ("GRC", "Greco"),
    ];
    const NAMES: [(&str, &str); 6] = [
        ("MRA", "Mario"),
        ("LGU", "Luigi"),
        ("GPP", "Giuseppe"),
        ("NNA", "Anna"),
        ("LRA", "Laura"),
        ("PLA", "Paola"),
    ];
    let (sc, surname) = SURNAMES[n % SURNAMES.len()];
    let (nc, name) = NAMES[(n / SURNAMES.len()) % NAMES.len()];
    let women = nc == "NNA" || nc == "LRA" || nc == "PLA";
    let day = 1 + (n % 28) as u32 + if women { 40 } else { 0 };
    Person {
        cf: cf(
            sc,
            nc,
            60 + (n % 40) as u32,
            "ABCDEHLMPRST".chars().nth(n % 12).unwrap_or('A'),
            day,
            "H501",
        ),
        surname: surname.to_string(),
        name: name.to_string(),
    }
}

pub const HEADER: &str = "record,entity,entity_type,entity_name,monitored_workstations,workstations,employees,email_domains,codice_fiscale,surname,name,email,profiles";

pub fn entity_row(
    code: &str,
    kind: &str,
    name: &str,
    monitored: u32,
    workstations: u32,
    employees: u32,
    domain: &str,
) -> String {
    format!("entity,{code},{kind},{name},{monitored},{workstations},{employees},{domain},,,,,")
}

pub fn user_row(entity: &str, p: &Person, domain: &str, profiles: &str) -> String {
    let email = format!(
        "{}.{}@{domain}",
        p.name.to_lowercase(),
        p.surname.to_lowercase()
    );
    format!(
        "user,{entity},,,,,,,{},{},{},{email},{profiles}",
        p.cf, p.surname, p.name
    )
}

/// A prefecture (058: ALS, ALP, operator) and two municipalities (058047, 058050: mayor, ALS, ALP and
/// `operators` operators each), with person 100 registered in both municipalities.
/// Returns the CSV and (prefecture ALS, mayor of 058047, ALS of 058047, an operator of 058047, the shared person).
pub fn big_census(operators: usize) -> (String, [String; 5]) {
    let mut rows = vec![HEADER.to_string()];
    rows.push(entity_row(
        "058",
        "prefettura",
        "Prefettura di Roma",
        0,
        2,
        5,
        "prefettura.roma.it",
    ));
    rows.push(entity_row(
        "058047",
        "comune",
        "Frascati",
        3,
        4,
        40,
        "comune.frascati.rm.it",
    ));
    rows.push(entity_row(
        "058050",
        "comune",
        "Genzano di Roma",
        2,
        2,
        40,
        "comune.genzano.rm.it",
    ));
    let mut n = 0;
    let mut next = || {
        n += 1;
        person(n)
    };
    let (pa, pb, pc) = (next(), next(), next());
    rows.push(user_row("058", &pa, "prefettura.roma.it", "ALS"));
    rows.push(user_row("058", &pb, "prefettura.roma.it", "ALP"));
    rows.push(user_row("058", &pc, "prefettura.roma.it", "OPERATORE"));
    let shared = person(100);
    let mut keys = vec![pa.cf.clone()];
    for (code, domain) in [
        ("058047", "comune.frascati.rm.it"),
        ("058050", "comune.genzano.rm.it"),
    ] {
        let (mayor, als, alp) = (next(), next(), next());
        rows.push(user_row(code, &mayor, domain, "SINDACO"));
        rows.push(user_row(code, &als, domain, "ALS"));
        rows.push(user_row(code, &alp, domain, "ALP;OPERATORE"));
        let mut first_operator = None;
        for _ in 0..operators {
            let op = next();
            rows.push(user_row(code, &op, domain, "OPERATORE"));
            first_operator.get_or_insert(op.cf.clone());
        }
        rows.push(user_row(code, &shared, domain, "OPERATORE"));
        if code == "058047" {
            keys.push(mayor.cf.clone());
            keys.push(als.cf.clone());
            keys.push(first_operator.unwrap_or_default());
        }
    }
    keys.push(shared.cf.clone());
    let keys: [String; 5] = keys.try_into().unwrap_or_else(|_| panic!("five keys"));
    (rows.join("\n") + "\n", keys)
}

/// The applets bureau cards carry (PIV or CNS).
pub fn card_registry() -> AppletRegistry {
    AppletRegistry::new()
        .register(piv_applet::aid(), piv_applet::factory)
        .register(cns_applet::aid(), cns_applet::factory)
}

pub fn open_card(batch: &Path, card_file: &str) -> Card {
    Card::open(
        &batch.join(card_file),
        &card_registry(),
        Durability::Relaxed,
    )
    .expect("card opens")
}

/// Options for a batch of PIV cards (the tests of PIV specifics and of the line's numbering,
/// which does not depend on the card: RSA-2048 generation per card would only slow them down).
pub fn piv_options() -> personalization::batch::BatchOptions {
    personalization::batch::BatchOptions {
        profile: personalization::batch::CardProfile::Piv,
        ..personalization::batch::BatchOptions::default()
    }
}

/// A card in an in-process reader (powered on).
pub fn in_process(card: Card) -> InProcessReader {
    InProcessReader::new(card_transport::share(card))
}

pub fn pin_value(text: &str) -> PinValue {
    PinValue::new(text).expect("a PIN of 1 to 8 bytes")
}

/// VERIFY the PIN.
pub fn verify(card: &mut PivSession<'_>, pin: &str) -> PinOutcome {
    card.verify_pin(&pin_value(pin)).expect("VERIFY answered")
}

pub fn envelope(batch: &Path, card: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(batch.join("envelopes").join(format!("{card}.json")))
        .expect("envelope json");
    serde_json::from_str(&text).expect("json")
}

/// The released e-mails (outbox) for a card, oldest first.
pub fn emails(batch: &Path, card: &str) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(batch.join("outbox"))
        .expect("outbox")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read_to_string(p).expect("eml"))
        .filter(|text| {
            text.lines()
                .any(|l| l.trim() == format!("X-Tessera-Card: {card}"))
        })
        .collect()
}

pub fn email_field(email: &str, field: &str) -> String {
    email
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(&format!("{field}: "))
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no {field} line in the e-mail"))
}
