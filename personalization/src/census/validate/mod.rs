//! The census rules, applied to rows as they are read; every error is collected.
//!
//! Rows stream through [`Intake`]: the rules of a row on its own are applied at once (see
//! [`row`]), and of each user only what the rules across rows need is kept, in a few bytes: the
//! entity it refers to, an index for the person (codice fiscale), its profiles and row. Surname
//! and name are kept once per person, to compare with their later rows. Checks that need an
//! entity are done as soon as the entity is known; a user row that precedes its entity's row keeps
//! its e-mail until the end. The e-mails themselves are kept only when the census is to be built.
//!
//! Errors are reported exactly as if every rule ran over the whole census in turn: each error
//! has its place, and errors at the same place come in the order the rules are listed in
//! `CENSUS.md` (the row's own rules first).

mod errors;
mod row;

use std::collections::HashMap;

use self::errors::ErrorList;
use self::row::{name_key, reference_code, EntityFields, RowChecker};
use super::read::{Row, RowSink};
use super::{
    Census, CensusError, Entity, EntityKind, ErrorKind, Location, Person, Profile, Registration,
    COLUMNS, ENTITIES_SHEET, PREFECTURE_MAX_USERS, PREFECTURE_MAX_WORKSTATIONS, USERS_SHEET,
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

/// No index: a `u32` slot that holds nothing.
const NONE: u32 = u32::MAX;

/// A sheet as one byte (a census has at most two, and a CSV none).
fn sheet_tag(sheet: Option<&str>) -> u8 {
    match sheet {
        None => 0,
        Some(ENTITIES_SHEET) => 1,
        Some(_) => 2,
    }
}

fn sheet_of(tag: u8) -> Option<&'static str> {
    match tag {
        0 => None,
        1 => Some(ENTITIES_SHEET),
        _ => Some(USERS_SHEET),
    }
}

fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(NONE)
}

/// Where a row is, for an error about it later.
#[derive(Debug, Clone, Copy)]
struct At {
    sheet: u8,
    row: u32,
}

impl At {
    fn of(row: &Row<'_>) -> At {
        At {
            sheet: sheet_tag(row.sheet),
            row: index(row.row),
        }
    }

    fn row(self) -> usize {
        self.row as usize
    }

    fn error(self, column: Option<usize>, kind: ErrorKind, message: String) -> CensusError {
        let location = Location {
            sheet: sheet_of(self.sheet).map(str::to_string),
            row: self.row(),
            column: column.and_then(|c| COLUMNS.get(c)).map(|c| c.to_string()),
        };
        CensusError::new(location, kind, message)
    }
}

/// An entity row, with whatever of it could be parsed.
struct EntityDraft {
    at: At,
    fields: EntityFields,
    /// False when an earlier row defines the same code.
    first_definition: bool,
}

/// Up to the four profiles of a user, in the order given.
type Profiles = [Option<Profile>; 4];

fn has(profiles: &Profiles, p: Profile) -> bool {
    profiles.contains(&Some(p))
}

/// What the rules across rows need of a user row.
struct UserRecord {
    at: At,
    /// The entity code it refers to (an index in `Intake::refs`), or [`NONE`].
    reference: u32,
    /// The person (an index in `Intake::people`), or [`NONE`] without a valid codice fiscale.
    person: u32,
    profiles: Profiles,
    /// Set at the end when the same person is already registered for the same entity.
    duplicate: bool,
}

/// A person: the first row with their codice fiscale.
struct PersonEntry {
    codice_fiscale: [u8; 16],
    at: At,
    /// Surname and name of that row, in `Intake::names` (start, end), or none.
    surname: Option<(u32, u32)>,
    name: Option<(u32, u32)>,
}

/// A user row whose entity was not yet defined when it was read.
struct Pending {
    user: u32,
    /// The entity cell as written (for the message if it stays undefined).
    raw: Box<str>,
    email: Option<Box<str>>,
}

/// A user row registering a person already registered under the same entity code.
struct Repeat {
    user: u32,
    first_row: u32,
}

/// The census being read: rows go in, a census (or a summary, or every error) comes out.
pub(crate) struct Intake {
    /// Whether to keep what building the census needs (the e-mails).
    build: bool,
    errors: ErrorList,
    entities: Vec<EntityDraft>,
    /// Entity code → its first definition.
    by_code: HashMap<String, u32>,
    /// Entity codes user rows refer to, and their index.
    refs: Vec<Box<str>>,
    ref_index: HashMap<Box<str>, u32>,
    users: Vec<UserRecord>,
    /// The e-mail of each user, when building.
    emails: Vec<Box<str>>,
    people: Vec<PersonEntry>,
    person_index: HashMap<[u8; 16], u32>,
    /// Surnames and names of the people, one after the other.
    names: String,
    /// (entity code, person) → the first row registering them.
    registered: HashMap<(u32, u32), u32>,
    pending: Vec<Pending>,
    repeats: Vec<Repeat>,
    /// Name mismatches, reported unless the row turns out to be a repeat.
    mismatches: Vec<(u32, CensusError)>,
}

/// What a valid census amounts to, without building it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CensusSummary {
    pub entities: usize,
    /// User rows: one registration of a person by an entity each.
    pub registrations: usize,
    /// Distinct people (one card each).
    pub people: usize,
}

impl RowSink for Intake {
    fn row(&mut self, row: &Row<'_>) {
        match row.cell(RECORD).map(str::to_ascii_lowercase).as_deref() {
            Some("entity") => self.entity(row),
            Some("user") => self.user(row),
            Some(other) => {
                let other = other.to_string();
                self.checker().error(
                    row,
                    Some(RECORD),
                    ErrorKind::UnknownRecord,
                    format!("record {other:?} is neither entity nor user"),
                );
            }
            None => {
                self.checker().required(row, RECORD);
            }
        }
    }
}

impl Intake {
    pub fn new(build: bool) -> Intake {
        Intake {
            build,
            errors: ErrorList::default(),
            entities: Vec::new(),
            by_code: HashMap::new(),
            refs: Vec::new(),
            ref_index: HashMap::new(),
            users: Vec::new(),
            emails: Vec::new(),
            people: Vec::new(),
            person_index: HashMap::new(),
            names: String::new(),
            registered: HashMap::new(),
            pending: Vec::new(),
            repeats: Vec::new(),
            mismatches: Vec::new(),
        }
    }

    fn checker(&mut self) -> RowChecker<'_> {
        RowChecker {
            errors: &mut self.errors,
        }
    }

    fn entity(&mut self, row: &Row<'_>) {
        let fields = self.checker().entity(row);
        let at = At::of(row);
        let mut first_definition = true;
        if let Some(code) = &fields.code {
            if let Some(&first) = self.by_code.get(code) {
                first_definition = false;
                let first_row = self.entities[first as usize].at.row;
                self.errors.push(at.error(
                    Some(ENTITY),
                    ErrorKind::DuplicateEntity,
                    format!("entity {code} is already defined at row {first_row}"),
                ));
            } else {
                self.by_code
                    .insert(code.clone(), index(self.entities.len()));
            }
        }
        self.entities.push(EntityDraft {
            at,
            fields,
            first_definition,
        });
    }

    fn user(&mut self, row: &Row<'_>) {
        let fields = self.checker().user(row);
        let at = At::of(row);
        let user = index(self.users.len());
        let mut profiles: Profiles = [None; 4];
        for (slot, p) in profiles.iter_mut().zip(&fields.profiles) {
            *slot = Some(*p);
        }

        // The entity: checked now if already defined, else at the end.
        let mut reference = NONE;
        if let Some(raw) = row.cell(ENTITY) {
            let code = reference_code(raw);
            reference = match self.ref_index.get(code.as_str()) {
                Some(&r) => r,
                None => {
                    let r = index(self.refs.len());
                    self.refs.push(code.clone().into_boxed_str());
                    self.ref_index.insert(code.clone().into_boxed_str(), r);
                    r
                }
            };
            match self.by_code.get(&code) {
                Some(&entity) => {
                    self.entity_rules(at, entity, &code, fields.email.as_deref(), &profiles)
                }
                None => self.pending.push(Pending {
                    user,
                    raw: raw.into(),
                    email: fields.email.as_deref().map(Into::into),
                }),
            }
        }

        // The person: first row, or compared with it.
        let mut person = NONE;
        if let Some(cf) = &fields.codice_fiscale {
            let key: [u8; 16] = cf.as_bytes().try_into().unwrap_or([0; 16]);
            person = match self.person_index.get(&key) {
                Some(&p) => {
                    self.compare_names(user, at, p, cf, &fields);
                    p
                }
                None => {
                    let p = index(self.people.len());
                    let surname = push_name(&mut self.names, fields.surname.as_deref());
                    let name = push_name(&mut self.names, fields.name.as_deref());
                    self.people.push(PersonEntry {
                        codice_fiscale: key,
                        at,
                        surname,
                        name,
                    });
                    self.person_index.insert(key, p);
                    p
                }
            };
            if reference != NONE {
                match self.registered.get(&(reference, person)) {
                    Some(&first_row) => self.repeats.push(Repeat { user, first_row }),
                    None => {
                        self.registered.insert((reference, person), at.row);
                    }
                }
            }
        }

        if self.build {
            self.emails
                .push(fields.email.unwrap_or_default().into_boxed_str());
        }
        self.users.push(UserRecord {
            at,
            reference,
            person,
            profiles,
            duplicate: false,
        });
    }

    /// The rules of a user row that need its entity: institutional domain, SINDACO only in a
    /// municipality.
    fn entity_rules(
        &mut self,
        at: At,
        entity: u32,
        code: &str,
        email: Option<&str>,
        profiles: &Profiles,
    ) {
        let entity = &self.entities[entity as usize].fields;
        if let (Some(address), Some(domains)) = (email, &entity.domains) {
            let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
            if !domains.iter().any(|d| d == domain) {
                let message = format!(
                    "{address} is not in an institutional domain of entity {code} ({})",
                    domains.join(", ")
                );
                self.errors
                    .push(at.error(Some(EMAIL), ErrorKind::EmailNotInstitutional, message));
            }
        }
        if entity.kind == Some(EntityKind::Prefecture) && has(profiles, Profile::Sindaco) {
            self.errors.push(at.error(
                Some(PROFILES),
                ErrorKind::UnknownProfile,
                "SINDACO is not a profile of a prefecture".into(),
            ));
        }
    }

    /// A later row of a person: the same surname and name as their first row.
    fn compare_names(
        &mut self,
        user: u32,
        at: At,
        person: u32,
        cf: &str,
        fields: &row::UserFields,
    ) {
        let first = &self.people[person as usize];
        for (column, label, first_value, value) in [
            (SURNAME, "surname", first.surname, &fields.surname),
            (NAME, "name", first.name, &fields.name),
        ] {
            let (Some((start, end)), Some(b)) = (first_value, value) else {
                continue;
            };
            let a = &self.names[start as usize..end as usize];
            if name_key(a) != name_key(b) {
                let message = format!("{cf} has {label} {a:?} at row {}, not {b:?}", first.at.row);
                let error = at.error(Some(column), ErrorKind::NameMismatch, message);
                self.mismatches.push((user, error));
            }
        }
    }

    /// The rules across rows that needed every row: entities defined after their users, repeated
    /// registrations, per-entity limits.
    fn finish_rules(&mut self) {
        // Users whose entity came later, or never.
        for p in std::mem::take(&mut self.pending) {
            let record = &self.users[p.user as usize];
            let (at, profiles) = (record.at, record.profiles);
            let code = self.refs[record.reference as usize].to_string();
            match self.by_code.get(&code) {
                Some(&entity) => {
                    self.entity_rules(at, entity, &code, p.email.as_deref(), &profiles)
                }
                None => self.errors.push(at.error(
                    Some(ENTITY),
                    ErrorKind::UnknownEntity,
                    format!("entity {} is not defined in this census", p.raw),
                )),
            }
        }

        // The same person twice under one entity (an undefined entity is reported above).
        for r in std::mem::take(&mut self.repeats) {
            let record = &mut self.users[r.user as usize];
            let code = &self.refs[record.reference as usize];
            if !self.by_code.contains_key(&**code) {
                continue;
            }
            record.duplicate = true;
            let cf = String::from_utf8_lossy(&self.people[record.person as usize].codice_fiscale)
                .into_owned();
            let error = record.at.error(
                Some(CODICE_FISCALE),
                ErrorKind::DuplicatePerson,
                format!(
                    "{cf} is already registered for entity {code} at row {}",
                    r.first_row
                ),
            );
            self.errors.push(error);
        }

        // Name mismatches of rows that are not repeats.
        for (user, error) in std::mem::take(&mut self.mismatches) {
            if !self.users[user as usize].duplicate {
                self.errors.push(error);
            }
        }

        self.entity_limits();
    }

    /// The entity each user belongs to, or [`NONE`].
    fn entity_of_refs(&self) -> Vec<u32> {
        self.refs
            .iter()
            .map(|code| self.by_code.get(&**code).copied().unwrap_or(NONE))
            .collect()
    }

    fn entity_limits(&mut self) {
        #[derive(Default, Clone)]
        struct Holders {
            count: usize,
            als: bool,
            alp: bool,
            rows: Vec<usize>,
        }
        let entity_of = self.entity_of_refs();
        let mut holders = vec![Holders::default(); self.entities.len()];
        for user in self.users.iter().filter(|u| !u.duplicate) {
            let Some(&entity) = entity_of.get(user.reference as usize) else {
                continue;
            };
            let Some(h) = holders.get_mut(entity as usize) else {
                continue;
            };
            h.count += 1;
            h.als |= has(&user.profiles, Profile::Als);
            h.alp |= has(&user.profiles, Profile::Alp);
            if self.entities[entity as usize].fields.kind == Some(EntityKind::Prefecture) {
                h.rows.push(user.at.row());
            }
        }
        for (entity, holders) in self.entities.iter().zip(&holders) {
            if !entity.first_definition {
                continue;
            }
            let f = &entity.fields;
            let code = f.code.as_deref().unwrap_or_default();
            let at = entity.at;
            match f.kind {
                Some(EntityKind::Prefecture) => {
                    if holders.count > PREFECTURE_MAX_USERS {
                        self.errors.push(at.error(
                            None,
                            ErrorKind::PrefectureTooManyUsers,
                            format!(
                                "prefecture {code} has {} users (rows {}), at most {PREFECTURE_MAX_USERS}",
                                holders.count,
                                rows_list(&holders.rows)
                            ),
                        ));
                    }
                    if let Some(w) = f.workstations {
                        if w > PREFECTURE_MAX_WORKSTATIONS {
                            self.errors.push(at.error(
                                Some(WORKSTATIONS),
                                ErrorKind::PrefectureTooManyWorkstations,
                                format!(
                                    "a prefecture requests at most {PREFECTURE_MAX_WORKSTATIONS} workstations, not {w}"
                                ),
                            ));
                        }
                    }
                    let missing: Vec<&str> =
                        [(Profile::Als, holders.als), (Profile::Alp, holders.alp)]
                            .into_iter()
                            .filter(|(_, present)| !present)
                            .map(|(p, _)| p.as_str())
                            .collect();
                    if !missing.is_empty() {
                        self.errors.push(at.error(
                            None,
                            ErrorKind::PrefectureNeedsAlsAndAlp,
                            format!(
                                "prefecture {code} needs at least one ALS and one ALP among its users; missing: {}",
                                missing.join(", ")
                            ),
                        ));
                    }
                }
                Some(EntityKind::Municipality) => {
                    if let (Some(w), Some(m)) = (f.workstations, f.monitored) {
                        if u64::from(w) > u64::from(m) + 1 {
                            self.errors.push(at.error(
                                Some(WORKSTATIONS),
                                ErrorKind::TooManyWorkstations,
                                format!(
                                    "{w} workstations requested, at most {} ({m} in the monitoring sheet + 1 for the server)",
                                    u64::from(m) + 1
                                ),
                            ));
                        }
                    }
                    if let Some(e) = f.employees {
                        if holders.count > usize::try_from(e).unwrap_or(usize::MAX) {
                            self.errors.push(at.error(
                                Some(EMPLOYEES),
                                ErrorKind::TooManyCardHolders,
                                format!(
                                    "municipality {code} has {} card holders but declares {e} employees",
                                    holders.count
                                ),
                            ));
                        }
                    }
                }
                None => {}
            }
        }
    }

    /// Every rule applied: the summary of a valid census, or every error.
    pub fn summary(mut self) -> Result<CensusSummary, Vec<CensusError>> {
        self.finish_rules();
        if !self.errors.is_empty() {
            return Err(self.errors.into_sorted());
        }
        Ok(CensusSummary {
            entities: self.entities.len(),
            registrations: self.users.len(),
            people: self.people.len(),
        })
    }

    /// Every rule applied: the census, or every error. (Needs an intake that builds.)
    pub fn census(mut self) -> Result<Census, Vec<CensusError>> {
        self.finish_rules();
        if !self.errors.is_empty() {
            return Err(self.errors.into_sorted());
        }
        self.build()
    }

    /// Assembles the census from rows already known to be complete and valid.
    fn build(self) -> Result<Census, Vec<CensusError>> {
        let incomplete = |at: At| {
            vec![at.error(
                None,
                ErrorKind::Unreadable,
                "internal error: incomplete row after validation".into(),
            )]
        };
        let entity_of = self.entity_of_refs();
        let mut census = Census::default();
        for e in self.entities {
            let f = e.fields;
            let (Some(code), Some(kind), Some(name), Some(m), Some(w), Some(n), Some(domains)) = (
                f.code,
                f.kind,
                f.name,
                f.monitored,
                f.workstations,
                f.employees,
                f.domains,
            ) else {
                return Err(incomplete(e.at));
            };
            census.entities.push(Entity {
                code,
                kind,
                name,
                monitored_workstations: m,
                workstations: w,
                employees: n,
                email_domains: domains,
            });
        }
        let text = |range: Option<(u32, u32)>| {
            range.map(|(start, end)| self.names[start as usize..end as usize].to_string())
        };
        // Person index → index in `census.people`, in order of first appearance.
        let mut person_at = vec![NONE; self.people.len()];
        for (u, email) in self.users.iter().zip(self.emails) {
            let entity = entity_of.get(u.reference as usize).copied().unwrap_or(NONE);
            let (Some(entity), Some(person)) = (
                census.entities.get(entity as usize),
                self.people.get(u.person as usize),
            ) else {
                return Err(incomplete(u.at));
            };
            let registration = Registration {
                entity: entity.code.clone(),
                email: email.into_string(),
                profiles: u.profiles.iter().flatten().copied().collect(),
                row: u.at.row(),
            };
            let slot = &mut person_at[u.person as usize];
            if *slot == NONE {
                let (Some(surname), Some(name)) = (text(person.surname), text(person.name)) else {
                    return Err(incomplete(u.at));
                };
                *slot = index(census.people.len());
                census.people.push(Person {
                    codice_fiscale: String::from_utf8_lossy(&person.codice_fiscale).into_owned(),
                    surname,
                    name,
                    registrations: Vec::new(),
                });
            }
            census.people[*slot as usize]
                .registrations
                .push(registration);
        }
        Ok(census)
    }
}

/// Appends a name to the arena; its range.
fn push_name(names: &mut String, name: Option<&str>) -> Option<(u32, u32)> {
    let name = name?;
    let start = index(names.len());
    names.push_str(name);
    Some((start, index(names.len())))
}

fn rows_list(rows: &[usize]) -> String {
    rows.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
