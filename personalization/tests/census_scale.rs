//! Census intake at the scale of a region and beyond: a generated census of many holders is
//! valid, and the check (no census built) agrees with the full load on it.
//!
//! The large files for measuring `tessera bureau check` are written by the ignored test
//! `write_large_census` (nothing big is committed):
//!
//! ```text
//! CENSUS_ROWS=1000000 CENSUS_OUT=/tmp/census-1m.csv \
//!     cargo test --release -p personalization --test census_scale write_large_census -- --ignored
//! ```
//!
//! `CENSUS_OUT` ending in `.xlsx` writes a workbook instead.
// Test helpers unwrap like the tests they serve (clippy allows it only inside #[test] fns).
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::Path;

use personalization::census::{self, codice_fiscale, COLUMNS, ENTITY_COLUMNS, USER_COLUMNS};

/// Users per municipality: about the size of a mid-sized Italian comune's staff with a card.
const USERS_PER_ENTITY: usize = 120;
/// Every this many people, one is also registered by the next municipality (one card, two
/// registrations), as happens with people who work for two comuni.
const SHARED_EVERY: usize = 1000;

const SURNAMES: [&str; 8] = [
    "Rossi", "Bianchi", "Verdi", "Neri", "Galli", "Conti", "Marino", "Greco",
];
const NAMES: [&str; 6] = ["Mario", "Luigi", "Giuseppe", "Anna", "Laura", "Paola"];

/// The `n`-th distinct, valid codice fiscale.
fn codice_fiscale_of(n: usize) -> String {
    let mut letters = [b'A'; 6];
    let mut rest = n;
    for l in letters.iter_mut().rev() {
        *l = b'A' + u8::try_from(rest % 26).unwrap();
        rest /= 26;
    }
    let months = b"ABCDEHLMPRST";
    let first15 = format!(
        "{}{:02}{}{:02}H{:03}",
        std::str::from_utf8(&letters).unwrap(),
        n % 100,
        char::from(months[n % 12]),
        n % 28 + 1,
        n % 1000
    );
    let check = codice_fiscale::check_character(&first15).unwrap();
    format!("{first15}{check}")
}

/// A municipality's ISTAT code: province 001–107, municipality 001–999 within it.
fn municipality_code(e: usize) -> String {
    format!("{:03}{:03}", e / 999 % 107 + 1, e % 999 + 1)
}

struct Entity {
    code: String,
    name: String,
    domain: String,
    users: usize,
}

struct User {
    entity: usize,
    cf: String,
    surname: &'static str,
    name: &'static str,
    email: String,
    profile: &'static str,
}

/// A valid census of `holders` users (registrations) in municipalities of about
/// [`USERS_PER_ENTITY`] users each.
fn generate(holders: usize) -> (Vec<Entity>, Vec<User>) {
    let entity_count = holders.div_ceil(USERS_PER_ENTITY).max(1);
    let mut entities: Vec<Entity> = (0..entity_count)
        .map(|e| {
            let code = municipality_code(e);
            Entity {
                name: format!("Comune {e}"),
                domain: format!("comune{code}.example.it"),
                code,
                users: 0,
            }
        })
        .collect();
    let mut users = Vec::with_capacity(holders);
    let mut person = 0;
    while users.len() < holders {
        let entity = users.len() / USERS_PER_ENTITY;
        let surname = SURNAMES[person % SURNAMES.len()];
        let name = NAMES[person / SURNAMES.len() % NAMES.len()];
        let cf = codice_fiscale_of(person);
        let first_in_entity = entities[entity].users == 0;
        let profile = if first_in_entity {
            "SINDACO"
        } else if person % 7 == 0 {
            "ALS;OPERATORE"
        } else {
            "OPERATORE"
        };
        let local = format!("{}.{}{person}", name.to_lowercase(), surname.to_lowercase());
        users.push(User {
            entity,
            email: format!("{local}@{}", entities[entity].domain),
            cf: cf.clone(),
            surname,
            name,
            profile,
        });
        entities[entity].users += 1;
        let next = entity + 1;
        if person % SHARED_EVERY == SHARED_EVERY - 1 && next < entity_count && users.len() < holders
        {
            users.push(User {
                entity: next,
                email: format!("{local}@{}", entities[next].domain),
                cf,
                surname,
                name,
                profile: "OPERATORE",
            });
            entities[next].users += 1;
        }
        person += 1;
    }
    (entities, users)
}

/// The census as CSV text: entity rows first, then users (as the bureau's template has them).
fn to_csv(entities: &[Entity], users: &[User]) -> String {
    let mut csv = COLUMNS.join(",");
    csv.push('\n');
    for e in entities {
        let workstations = e.users / 10 + 1;
        writeln!(
            csv,
            "entity,{},comune,{},{workstations},{},{},{},,,,,",
            e.code,
            e.name,
            workstations + 1,
            e.users + 5,
            e.domain
        )
        .unwrap();
    }
    for u in users {
        writeln!(
            csv,
            "user,{},,,,,,,{},{},{},{},{}",
            entities[u.entity].code, u.cf, u.surname, u.name, u.email, u.profile
        )
        .unwrap();
    }
    csv
}

/// The census as a workbook with the sheets `entities` and `users`.
fn write_xlsx(entities: &[Entity], users: &[User], path: &Path) {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("entities").unwrap();
    for (c, name) in ENTITY_COLUMNS.iter().enumerate() {
        sheet
            .write_string(0, u16::try_from(c).unwrap(), *name)
            .unwrap();
    }
    for (r, e) in entities.iter().enumerate() {
        let r = u32::try_from(r + 1).unwrap();
        let workstations = e.users / 10 + 1;
        sheet.write_string(r, 0, &e.code).unwrap();
        sheet.write_string(r, 1, "comune").unwrap();
        sheet.write_string(r, 2, &e.name).unwrap();
        sheet.write_number(r, 3, workstations as f64).unwrap();
        sheet.write_number(r, 4, (workstations + 1) as f64).unwrap();
        sheet.write_number(r, 5, (e.users + 5) as f64).unwrap();
        sheet.write_string(r, 6, &e.domain).unwrap();
    }
    let sheet = workbook.add_worksheet();
    sheet.set_name("users").unwrap();
    for (c, name) in USER_COLUMNS.iter().enumerate() {
        sheet
            .write_string(0, u16::try_from(c).unwrap(), *name)
            .unwrap();
    }
    for (r, u) in users.iter().enumerate() {
        let r = u32::try_from(r + 1).unwrap();
        sheet.write_string(r, 0, &entities[u.entity].code).unwrap();
        sheet.write_string(r, 1, &u.cf).unwrap();
        sheet.write_string(r, 2, u.surname).unwrap();
        sheet.write_string(r, 3, u.name).unwrap();
        sheet.write_string(r, 4, &u.email).unwrap();
        sheet.write_string(r, 5, u.profile).unwrap();
    }
    workbook.save(path).unwrap();
}

/// Writes a large census for measurements: `CENSUS_ROWS` users (default 1 000 000) to
/// `CENSUS_OUT` (`.csv`, or `.xlsx` for a workbook).
#[test]
#[ignore = "writes a large file for measuring `tessera bureau check`"]
fn write_large_census() {
    let rows: usize = std::env::var("CENSUS_ROWS")
        .map(|r| r.parse().expect("CENSUS_ROWS is a number"))
        .unwrap_or(1_000_000);
    let out = std::env::var("CENSUS_OUT").expect("CENSUS_OUT names the file to write");
    let (entities, users) = generate(rows);
    if out.ends_with(".xlsx") {
        write_xlsx(&entities, &users, Path::new(&out));
    } else {
        std::fs::write(&out, to_csv(&entities, &users)).unwrap();
    }
    eprintln!("{out}: {} entities, {} users", entities.len(), users.len());
}

#[test]
fn a_region_of_100_000_holders_is_valid() {
    let (entities, users) = generate(100_000);
    let census = census::parse_csv(to_csv(&entities, &users).as_bytes()).unwrap_or_else(|e| {
        panic!(
            "{}",
            e[..e.len().min(5)]
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    assert_eq!(census.entities.len(), entities.len());
    let registrations: usize = census.people.iter().map(|p| p.registrations.len()).sum();
    assert_eq!(registrations, 100_000);
    assert!(
        census.people.len() < registrations,
        "some people work for two comuni"
    );
}
