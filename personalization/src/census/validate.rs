//! The census rules, applied to raw rows; every error is collected.

use std::collections::HashMap;

use super::codice_fiscale::{self, Problem};
use super::read::RawRow;
use super::{
    email, sorted, Census, CensusError, Entity, EntityKind, ErrorKind, Person, Profile,
    Registration, PREFECTURE_MAX_USERS, PREFECTURE_MAX_WORKSTATIONS,
};

const RECORD: usize = 0;
const ENTITY: usize = 1;
const ENTITY_TYPE: usize = 2;
const ENTITY_NAME: usize = 3;
const MONITORED: usize = 4;
const WORKSTATIONS: usize = 5;
const EMPLOYEES: usize = 6;
const DOMAINS: usize = 7;
const CODICE_FISCALE: usize = 8;
const SURNAME: usize = 9;
const NAME: usize = 10;
const EMAIL: usize = 11;
const PROFILES: usize = 12;

/// An entity row, with whatever of it could be parsed.
struct EntityDraft {
    row: RawRow,
    code: Option<String>,
    kind: Option<EntityKind>,
    name: Option<String>,
    monitored: Option<u32>,
    workstations: Option<u32>,
    employees: Option<u32>,
    domains: Option<Vec<String>>,
    /// False when a later row redefines an already defined code.
    first_definition: bool,
}

/// A user row, with whatever of it could be parsed.
struct UserDraft {
    row: RawRow,
    /// Index in the entity drafts of the entity it belongs to.
    entity: Option<usize>,
    codice_fiscale: Option<String>,
    surname: Option<String>,
    name: Option<String>,
    email: Option<String>,
    profiles: Vec<Profile>,
    /// Set when the same person already appears in the same entity.
    duplicate: bool,
}

struct Checker {
    errors: Vec<CensusError>,
}

impl Checker {
    fn error(&mut self, row: &RawRow, column: Option<usize>, kind: ErrorKind, message: String) {
        self.errors
            .push(CensusError::new(row.location(column), kind, message));
    }

    /// A mandatory cell: reports it when empty.
    fn required(&mut self, row: &RawRow, column: usize) -> Option<String> {
        let value = row.cell(column).map(str::to_string);
        if value.is_none() {
            let name = super::COLUMNS[column];
            self.error(
                row,
                Some(column),
                ErrorKind::MissingField,
                format!("{name} is mandatory"),
            );
        }
        value
    }

    /// A count: digits only, fitting 32 bits.
    fn number(&mut self, row: &RawRow, column: usize, value: &str) -> Option<u32> {
        let parsed = if value.bytes().all(|b| b.is_ascii_digit()) {
            value.parse::<u32>().ok()
        } else {
            None
        };
        if parsed.is_none() {
            let name = super::COLUMNS[column];
            self.error(
                row,
                Some(column),
                ErrorKind::BadNumber,
                format!("{name} must be a whole number, not {value:?}"),
            );
        }
        parsed
    }
}

/// An ISTAT code as written (digits; leading zeros possibly dropped by a spreadsheet), padded to
/// the length of the entity kind. Unknown kind: 3 digits if it fits, else 6.
fn normalize_code(raw: &str, kind: Option<EntityKind>) -> Result<String, String> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "entity code {raw:?} must be an ISTAT code (digits)"
        ));
    }
    let width = match kind {
        Some(EntityKind::Municipality) => 6,
        Some(EntityKind::Prefecture) => 3,
        None if raw.len() <= 3 => 3,
        None => 6,
    };
    if raw.len() > width {
        return Err(match kind {
            Some(EntityKind::Prefecture) => format!(
                "a prefecture is identified by the 3-digit ISTAT code of its province, not {raw:?}"
            ),
            _ => format!("a municipality's ISTAT code has 6 digits, not {raw:?}"),
        });
    }
    let code = format!("{raw:0>width$}");
    let zero_part = if width == 6 {
        &code[..3] == "000" || &code[3..] == "000"
    } else {
        code == "000"
    };
    if zero_part {
        return Err(format!("{code} is not a valid ISTAT code"));
    }
    Ok(code)
}

/// The code a user row refers to: a 4–6 digit number is a municipality, up to 3 a province.
fn reference_code(raw: &str) -> String {
    if !raw.is_empty() && raw.len() <= 6 && raw.bytes().all(|b| b.is_ascii_digit()) {
        let width = if raw.len() <= 3 { 3 } else { 6 };
        format!("{raw:0>width$}")
    } else {
        raw.to_string()
    }
}

fn parse_kind(value: &str) -> Option<EntityKind> {
    match value.trim().to_ascii_lowercase().as_str() {
        "comune" | "municipality" => Some(EntityKind::Municipality),
        "prefettura" | "prefecture" => Some(EntityKind::Prefecture),
        _ => None,
    }
}

/// Splits a list cell on `;` (also `,` and line breaks).
fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split([';', ',', '\n', '\r'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Names compared for sameness: case and repeated spaces ignored.
fn name_key(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

fn rows_list(rows: &[usize]) -> String {
    rows.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Checker {
    fn entity(&mut self, row: RawRow) -> EntityDraft {
        let code_raw = self.required(&row, ENTITY);
        let kind = self.required(&row, ENTITY_TYPE).and_then(|t| {
            let kind = parse_kind(&t);
            if kind.is_none() {
                self.error(
                    &row,
                    Some(ENTITY_TYPE),
                    ErrorKind::UnknownEntityType,
                    format!("entity_type {t:?} is neither comune nor prefettura"),
                );
            }
            kind
        });
        let code = code_raw.and_then(|raw| match normalize_code(&raw, kind) {
            Ok(code) => Some(code),
            Err(why) => {
                self.error(&row, Some(ENTITY), ErrorKind::BadNumber, why);
                None
            }
        });
        let name = self.required(&row, ENTITY_NAME);
        let monitored = match (kind, row.cell(MONITORED)) {
            (Some(EntityKind::Prefecture), None) => Some(0),
            (_, Some(v)) => {
                let v = v.to_string();
                self.number(&row, MONITORED, &v)
            }
            (_, None) => {
                self.required(&row, MONITORED);
                None
            }
        };
        let workstations = self
            .required(&row, WORKSTATIONS)
            .and_then(|v| self.number(&row, WORKSTATIONS, &v));
        let employees = self
            .required(&row, EMPLOYEES)
            .and_then(|v| self.number(&row, EMPLOYEES, &v));
        let domains = self.required(&row, DOMAINS).and_then(|v| {
            let mut domains = Vec::new();
            let mut ok = true;
            for d in split_list(&v) {
                match email::normalize_domain(d) {
                    Ok(d) => {
                        if let Some(why) = email::non_institutional(&d) {
                            self.error(
                                &row,
                                Some(DOMAINS),
                                ErrorKind::EmailNotInstitutional,
                                format!("{d} is not an institutional domain: it is {why}"),
                            );
                            ok = false;
                        } else if !domains.contains(&d) {
                            domains.push(d);
                        }
                    }
                    Err(why) => {
                        self.error(&row, Some(DOMAINS), ErrorKind::BadEmail, why);
                        ok = false;
                    }
                }
            }
            if domains.is_empty() && ok {
                self.error(
                    &row,
                    Some(DOMAINS),
                    ErrorKind::MissingField,
                    "email_domains is mandatory".into(),
                );
            }
            ok.then_some(domains)
        });
        EntityDraft {
            row,
            code,
            kind,
            name,
            monitored,
            workstations,
            employees,
            domains,
            first_definition: true,
        }
    }

    fn user(&mut self, row: RawRow) -> UserDraft {
        // The entity column is resolved later, once every entity is known.
        self.required(&row, ENTITY);
        let codice_fiscale =
            self.required(&row, CODICE_FISCALE)
                .and_then(|cf| match codice_fiscale::classify(&cf) {
                    Ok(cf) => Some(cf),
                    Err(Problem::Malformed(why)) => {
                        self.error(
                            &row,
                            Some(CODICE_FISCALE),
                            ErrorKind::BadCodiceFiscale,
                            format!("codice fiscale {cf:?} {why}"),
                        );
                        None
                    }
                    Err(Problem::CheckCharacter { found, expected }) => {
                        self.error(
                            &row,
                            Some(CODICE_FISCALE),
                            ErrorKind::BadCheckCharacter,
                            format!(
                                "codice fiscale {cf:?}: check character is {found}, expected {expected}"
                            ),
                        );
                        None
                    }
                });
        let surname = self.required(&row, SURNAME);
        let name = self.required(&row, NAME);
        let address = self
            .required(&row, EMAIL)
            .and_then(|e| match email::parse(&e) {
                Ok(parsed) => Some(parsed),
                Err(why) => {
                    self.error(
                        &row,
                        Some(EMAIL),
                        ErrorKind::BadEmail,
                        format!("not a valid e-mail address: {why}"),
                    );
                    None
                }
            });
        let email = address.map(|(address, local, _)| {
            if let Some(role) = email::role_mailbox(&local) {
                self.error(
                    &row,
                    Some(EMAIL),
                    ErrorKind::RoleMailbox,
                    format!("{address} is an office mailbox ({role}), not a personal one"),
                );
            }
            address
        });
        let mut profiles = Vec::new();
        if let Some(cell) = self.required(&row, PROFILES) {
            let mut unknown = Vec::new();
            for token in split_list(&cell) {
                match Profile::parse(token) {
                    Some(p) if !profiles.contains(&p) => profiles.push(p),
                    Some(_) => {}
                    None => unknown.push(token.to_string()),
                }
            }
            if !unknown.is_empty() {
                self.error(
                    &row,
                    Some(PROFILES),
                    ErrorKind::UnknownProfile,
                    format!(
                        "unknown profile {}: use SINDACO, ALS, ALP or OPERATORE",
                        unknown.join(", ")
                    ),
                );
            } else if profiles.is_empty() {
                self.error(
                    &row,
                    Some(PROFILES),
                    ErrorKind::MissingField,
                    "profiles is mandatory".into(),
                );
            }
            if profiles.contains(&Profile::Sindaco) && profiles.len() > 1 {
                let others: Vec<&str> = profiles
                    .iter()
                    .filter(|p| **p != Profile::Sindaco)
                    .map(|p| p.as_str())
                    .collect();
                self.error(
                    &row,
                    Some(PROFILES),
                    ErrorKind::MayorNotExclusive,
                    format!(
                        "SINDACO excludes every other profile (also given: {})",
                        others.join(", ")
                    ),
                );
            }
        }
        UserDraft {
            row,
            entity: None,
            codice_fiscale,
            surname,
            name,
            email,
            profiles,
            duplicate: false,
        }
    }
}

/// Applies every rule to the rows; a census only if nothing is wrong.
pub(crate) fn validate_rows(rows: Vec<RawRow>) -> Result<Census, Vec<CensusError>> {
    let mut c = Checker { errors: Vec::new() };
    let mut entities = Vec::new();
    let mut users = Vec::new();
    for row in rows {
        match row.cell(RECORD).map(str::to_ascii_lowercase).as_deref() {
            Some("entity") => entities.push(c.entity(row)),
            Some("user") => users.push(c.user(row)),
            Some(other) => {
                let other = other.to_string();
                c.error(
                    &row,
                    Some(RECORD),
                    ErrorKind::UnknownRecord,
                    format!("record {other:?} is neither entity nor user"),
                );
            }
            None => {
                c.required(&row, RECORD);
            }
        }
    }

    // Entities by code, first definition wins.
    let mut by_code: HashMap<String, usize> = HashMap::new();
    for i in 0..entities.len() {
        let Some(code) = entities[i].code.clone() else {
            continue;
        };
        if let Some(&first) = by_code.get(&code) {
            let first_row = entities[first].row.row;
            entities[i].first_definition = false;
            c.error(
                &entities[i].row,
                Some(ENTITY),
                ErrorKind::DuplicateEntity,
                format!("entity {code} is already defined at row {first_row}"),
            );
        } else {
            by_code.insert(code, i);
        }
    }

    // Users: their entity, institutional domain, SINDACO only in a municipality.
    for user in &mut users {
        let Some(raw) = user.row.cell(ENTITY) else {
            continue;
        };
        let code = reference_code(raw);
        let Some(&index) = by_code.get(&code) else {
            c.error(
                &user.row,
                Some(ENTITY),
                ErrorKind::UnknownEntity,
                format!("entity {raw} is not defined in this census"),
            );
            continue;
        };
        user.entity = Some(index);
        let entity = &entities[index];
        if let (Some(address), Some(domains)) = (&user.email, &entity.domains) {
            let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
            if !domains.iter().any(|d| d == domain) {
                c.error(
                    &user.row,
                    Some(EMAIL),
                    ErrorKind::EmailNotInstitutional,
                    format!(
                        "{address} is not in an institutional domain of entity {code} ({})",
                        domains.join(", ")
                    ),
                );
            }
        }
        if entity.kind == Some(EntityKind::Prefecture) && user.profiles.contains(&Profile::Sindaco)
        {
            c.error(
                &user.row,
                Some(PROFILES),
                ErrorKind::UnknownProfile,
                "SINDACO is not a profile of a prefecture".into(),
            );
        }
    }

    // The same person twice in one entity.
    let mut seen: HashMap<(usize, String), usize> = HashMap::new();
    for user in &mut users {
        let (Some(entity), Some(cf)) = (user.entity, &user.codice_fiscale) else {
            continue;
        };
        if let Some(first_row) = seen.get(&(entity, cf.clone())) {
            user.duplicate = true;
            c.error(
                &user.row,
                Some(CODICE_FISCALE),
                ErrorKind::DuplicatePerson,
                format!(
                    "{cf} is already registered for entity {} at row {first_row}",
                    entities[entity].code.as_deref().unwrap_or_default()
                ),
            );
        } else {
            seen.insert((entity, cf.clone()), user.row.row);
        }
    }

    // The same person in several entities: same surname and name.
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    for i in 0..users.len() {
        let Some(cf) = users[i].codice_fiscale.clone() else {
            continue;
        };
        if users[i].duplicate {
            continue;
        }
        let Some(&first) = first_seen.get(&cf) else {
            first_seen.insert(cf, i);
            continue;
        };
        for (column, label) in [(SURNAME, "surname"), (NAME, "name")] {
            let value = |u: &UserDraft| {
                if column == SURNAME {
                    u.surname.clone()
                } else {
                    u.name.clone()
                }
            };
            if let (Some(a), Some(b)) = (value(&users[first]), value(&users[i])) {
                if name_key(&a) != name_key(&b) {
                    c.error(
                        &users[i].row,
                        Some(column),
                        ErrorKind::NameMismatch,
                        format!(
                            "{cf} has {label} {a:?} at row {}, not {b:?}",
                            users[first].row.row
                        ),
                    );
                }
            }
        }
    }

    // Per-entity limits.
    let mut holders_of: Vec<Vec<&UserDraft>> = entities.iter().map(|_| Vec::new()).collect();
    for user in users.iter().filter(|u| !u.duplicate) {
        if let Some(list) = user.entity.and_then(|i| holders_of.get_mut(i)) {
            list.push(user);
        }
    }
    for (entity, holders) in entities.iter().zip(&holders_of) {
        if !entity.first_definition {
            continue;
        }
        let code = entity.code.as_deref().unwrap_or_default();
        match entity.kind {
            Some(EntityKind::Prefecture) => {
                if holders.len() > PREFECTURE_MAX_USERS {
                    let rows: Vec<usize> = holders.iter().map(|u| u.row.row).collect();
                    c.error(
                        &entity.row,
                        None,
                        ErrorKind::PrefectureTooManyUsers,
                        format!(
                            "prefecture {code} has {} users (rows {}), at most {PREFECTURE_MAX_USERS}",
                            holders.len(),
                            rows_list(&rows)
                        ),
                    );
                }
                if let Some(w) = entity.workstations {
                    if w > PREFECTURE_MAX_WORKSTATIONS {
                        c.error(
                            &entity.row,
                            Some(WORKSTATIONS),
                            ErrorKind::PrefectureTooManyWorkstations,
                            format!(
                                "a prefecture requests at most {PREFECTURE_MAX_WORKSTATIONS} workstations, not {w}"
                            ),
                        );
                    }
                }
                let has = |p: Profile| holders.iter().any(|u| u.profiles.contains(&p));
                let missing: Vec<&str> = [Profile::Als, Profile::Alp]
                    .into_iter()
                    .filter(|p| !has(*p))
                    .map(Profile::as_str)
                    .collect();
                if !missing.is_empty() {
                    c.error(
                        &entity.row,
                        None,
                        ErrorKind::PrefectureNeedsAlsAndAlp,
                        format!(
                            "prefecture {code} needs at least one ALS and one ALP among its users; missing: {}",
                            missing.join(", ")
                        ),
                    );
                }
            }
            Some(EntityKind::Municipality) => {
                if let (Some(w), Some(m)) = (entity.workstations, entity.monitored) {
                    if u64::from(w) > u64::from(m) + 1 {
                        c.error(
                            &entity.row,
                            Some(WORKSTATIONS),
                            ErrorKind::TooManyWorkstations,
                            format!(
                                "{w} workstations requested, at most {} ({m} in the monitoring sheet + 1 for the server)",
                                u64::from(m) + 1
                            ),
                        );
                    }
                }
                if let Some(e) = entity.employees {
                    if holders.len() > usize::try_from(e).unwrap_or(usize::MAX) {
                        c.error(
                            &entity.row,
                            Some(EMPLOYEES),
                            ErrorKind::TooManyCardHolders,
                            format!(
                                "municipality {code} has {} card holders but declares {e} employees",
                                holders.len()
                            ),
                        );
                    }
                }
            }
            None => {}
        }
    }

    if !c.errors.is_empty() {
        return Err(sorted(c.errors));
    }
    build(entities, users).map_err(sorted)
}

/// Assembles the census from drafts already known to be complete and valid.
fn build(entities: Vec<EntityDraft>, users: Vec<UserDraft>) -> Result<Census, Vec<CensusError>> {
    let incomplete = |row: &RawRow| {
        vec![CensusError::new(
            row.location(None),
            ErrorKind::Unreadable,
            "internal error: incomplete row after validation",
        )]
    };
    let mut census = Census::default();
    for e in &entities {
        let (Some(code), Some(kind), Some(name), Some(m), Some(w), Some(n), Some(domains)) = (
            &e.code,
            e.kind,
            &e.name,
            e.monitored,
            e.workstations,
            e.employees,
            &e.domains,
        ) else {
            return Err(incomplete(&e.row));
        };
        census.entities.push(Entity {
            code: code.clone(),
            kind,
            name: name.clone(),
            monitored_workstations: m,
            workstations: w,
            employees: n,
            email_domains: domains.clone(),
        });
    }
    let mut person_of: HashMap<String, usize> = HashMap::new();
    for u in users {
        let (Some(index), Some(cf), Some(surname), Some(name), Some(email)) =
            (u.entity, u.codice_fiscale, u.surname, u.name, u.email)
        else {
            return Err(incomplete(&u.row));
        };
        let registration = Registration {
            entity: census.entities[index].code.clone(),
            email,
            profiles: u.profiles,
            row: u.row.row,
        };
        let p = *person_of.entry(cf.clone()).or_insert_with(|| {
            census.people.push(Person {
                codice_fiscale: cf,
                surname,
                name,
                registrations: Vec::new(),
            });
            census.people.len() - 1
        });
        census.people[p].registrations.push(registration);
    }
    Ok(census)
}
