//! Census intake: the entities (municipalities, prefectures) and the users to be issued a card,
//! read from a CSV file or an XLSX workbook and checked against every rule of the census
//! (see `personalization/CENSUS.md` for the format).
//!
//! Intake is all or nothing: [`parse_csv`], [`parse_xlsx`] and [`load`] return either a valid
//! [`Census`] or every error found, sorted by sheet, row and column. Nothing is written anywhere.

pub mod codice_fiscale;
pub mod email;
pub mod limits;
mod read;
mod text;
mod validate;

pub use validate::CensusSummary;

#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The columns of a census, in the order of the CSV header.
pub const COLUMNS: [&str; 13] = [
    "record",
    "entity",
    "entity_type",
    "entity_name",
    "monitored_workstations",
    "workstations",
    "employees",
    "email_domains",
    "codice_fiscale",
    "surname",
    "name",
    "email",
    "profiles",
];

/// The columns of the `entities` sheet of a workbook (the entity columns of the CSV).
pub const ENTITY_COLUMNS: [&str; 7] = [
    "entity",
    "entity_type",
    "entity_name",
    "monitored_workstations",
    "workstations",
    "employees",
    "email_domains",
];

/// The columns of the `users` sheet of a workbook (the user columns of the CSV).
pub const USER_COLUMNS: [&str; 6] = [
    "entity",
    "codice_fiscale",
    "surname",
    "name",
    "email",
    "profiles",
];

/// The name of the workbook sheet holding the entities.
pub const ENTITIES_SHEET: &str = "entities";
/// The name of the workbook sheet holding the users.
pub const USERS_SHEET: &str = "users";

/// At most this many users (card holders) in a prefecture.
pub const PREFECTURE_MAX_USERS: usize = 5;
/// At most this many workstations requested by a prefecture.
pub const PREFECTURE_MAX_WORKSTATIONS: u32 = 5;

/// The kind of entity taking part in the census.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntityKind {
    /// A *comune*, identified by its 6-digit ISTAT code.
    #[serde(rename = "comune")]
    Municipality,
    /// A *prefettura*, identified by the 3-digit ISTAT code of its province.
    #[serde(rename = "prefettura")]
    Prefecture,
}

impl fmt::Display for EntityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EntityKind::Municipality => "comune",
            EntityKind::Prefecture => "prefettura",
        })
    }
}

/// A municipality or prefecture, as declared in the census.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// ISTAT code: 6 digits for a municipality, the 3-digit province code for a prefecture.
    pub code: String,
    pub kind: EntityKind,
    pub name: String,
    /// Workstations in the municipality's monitoring sheet (0 for a prefecture).
    pub monitored_workstations: u32,
    /// Workstations requested in this census (for a municipality, one of them is the server).
    pub workstations: u32,
    /// Declared number of employees (caps the card holders of a municipality).
    pub employees: u32,
    /// Institutional e-mail domains, lower case, in the order given.
    pub email_domains: Vec<String>,
}

/// A user profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Profile {
    /// The mayor: first-level administrator; excludes every other profile.
    #[serde(rename = "SINDACO")]
    Sindaco,
    /// Local security administrator.
    #[serde(rename = "ALS")]
    Als,
    /// Local workstation administrator.
    #[serde(rename = "ALP")]
    Alp,
    /// Operator.
    #[serde(rename = "OPERATORE")]
    Operatore,
}

impl Profile {
    /// Every profile, in the order they are documented.
    pub const ALL: [Profile; 4] = [
        Profile::Sindaco,
        Profile::Als,
        Profile::Alp,
        Profile::Operatore,
    ];

    /// The census spelling: `SINDACO`, `ALS`, `ALP`, `OPERATORE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Sindaco => "SINDACO",
            Profile::Als => "ALS",
            Profile::Alp => "ALP",
            Profile::Operatore => "OPERATORE",
        }
    }

    /// Parses a profile name, case-insensitively.
    pub fn parse(s: &str) -> Option<Profile> {
        let s = s.trim();
        Profile::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One registration of a person by one entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Code of the entity that registered the person.
    pub entity: String,
    /// Personal institutional e-mail (lower case) for this entity.
    pub email: String,
    /// Profiles, in the order given, without repetitions.
    pub profiles: Vec<Profile>,
    /// The row of the census (CSV line, or row of the `users` sheet) the registration comes from.
    pub row: usize,
}

/// A person to be issued one card, with every entity that registered them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Normalized (upper-case) codice fiscale.
    pub codice_fiscale: String,
    pub surname: String,
    pub name: String,
    /// Registrations in census order.
    pub registrations: Vec<Registration>,
}

/// A valid census.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Census {
    /// Entities in census order.
    pub entities: Vec<Entity>,
    /// One per codice fiscale, in order of first appearance.
    pub people: Vec<Person>,
}

impl Census {
    /// The entity with this ISTAT code.
    pub fn entity(&self, code: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.code == code)
    }

    /// The users registered by an entity, with their registration there, in census (row) order.
    pub fn users_of(&self, code: &str) -> impl Iterator<Item = (&Person, &Registration)> {
        let mut users: Vec<(&Person, &Registration)> = self
            .people
            .iter()
            .flat_map(|p| p.registrations.iter().map(move |r| (p, r)))
            .filter(|(_, r)| r.entity == code)
            .collect();
        users.sort_by_key(|(_, r)| r.row);
        users.into_iter()
    }
}

/// Where an error is: the sheet (workbook only), the 1-based row as a spreadsheet or editor shows
/// it (the header is row 1; 0 = the file as a whole), and the column header.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    pub sheet: Option<String>,
    pub row: usize,
    pub column: Option<String>,
}

impl Location {
    fn column_rank(&self) -> (usize, &str) {
        match &self.column {
            None => (0, ""),
            Some(c) => (
                COLUMNS
                    .iter()
                    .position(|k| k == c)
                    .map_or(COLUMNS.len() + 1, |p| p + 1),
                c.as_str(),
            ),
        }
    }
}

/// Sheet (none first), then row, then column in census column order (row-level errors first).
impl Ord for Location {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sheet
            .cmp(&other.sheet)
            .then(self.row.cmp(&other.row))
            .then_with(|| self.column_rank().cmp(&other.column_rank()))
    }
}

impl PartialOrd for Location {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(sheet) = &self.sheet {
            parts.push(format!("sheet {sheet}"));
        }
        if self.row > 0 {
            parts.push(format!("row {}", self.row));
        }
        if let Some(column) = &self.column {
            parts.push(format!("column {column}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// The rule a census error breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// A mandatory cell is empty, or a header lacks a column.
    MissingField,
    /// A count or an ISTAT code is not a valid number.
    BadNumber,
    /// A codice fiscale does not have the 16-character structure.
    BadCodiceFiscale,
    /// A well-formed codice fiscale with the wrong check character.
    BadCheckCharacter,
    /// An e-mail outside the entity's institutional domains, or a declared domain that is a public
    /// or certified-mail provider.
    EmailNotInstitutional,
    /// An e-mail naming an office or function rather than a person.
    RoleMailbox,
    /// An e-mail address or a domain that is not syntactically valid.
    BadEmail,
    /// SINDACO together with another profile.
    MayorNotExclusive,
    /// A prefecture with more than 5 users.
    PrefectureTooManyUsers,
    /// A prefecture requesting more than 5 workstations.
    PrefectureTooManyWorkstations,
    /// A prefecture without an ALS or without an ALP among its users.
    PrefectureNeedsAlsAndAlp,
    /// A municipality requesting more than its monitored workstations + 1.
    TooManyWorkstations,
    /// A municipality with more card holders than declared employees.
    TooManyCardHolders,
    /// The same codice fiscale twice in one entity.
    DuplicatePerson,
    /// A user row for an entity the census does not define.
    UnknownEntity,
    /// The same entity defined twice.
    DuplicateEntity,
    /// An entity_type other than `comune` / `prefettura`.
    UnknownEntityType,
    /// A record kind other than `entity` / `user`.
    UnknownRecord,
    /// A profile other than SINDACO, ALS, ALP, OPERATORE (or SINDACO in a prefecture).
    UnknownProfile,
    /// The same codice fiscale with a different surname or name in another entity.
    NameMismatch,
    /// The file (or a sheet, or a header) cannot be read as a census.
    Unreadable,
    /// The file is past one of the [`limits`] (size, rows, columns, cells, inflated size).
    TooLarge,
    /// A name, surname, entity name or e-mail holds a control, bidirectional or invisible
    /// character.
    ForbiddenCharacter,
}

/// One error of a census, at one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CensusError {
    pub location: Location,
    pub kind: ErrorKind,
    pub message: String,
}

impl CensusError {
    pub(crate) fn new(location: Location, kind: ErrorKind, message: impl Into<String>) -> Self {
        CensusError {
            location,
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn unreadable(sheet: Option<&str>, message: impl Into<String>) -> Self {
        CensusError::new(
            Location {
                sheet: sheet.map(str::to_string),
                row: 0,
                column: None,
            },
            ErrorKind::Unreadable,
            message,
        )
    }
}

impl fmt::Display for CensusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let location = self.location.to_string();
        if location.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{location}: {}", self.message)
        }
    }
}

impl std::error::Error for CensusError {}

/// Sorts errors by location, keeping the order of detection among errors at the same place.
pub(crate) fn sorted(mut errors: Vec<CensusError>) -> Vec<CensusError> {
    errors.sort_by(|a, b| a.location.cmp(&b.location));
    errors
}

/// Reads a file of at most [`limits::MAX_FILE_BYTES`].
fn read_file(path: &Path) -> Result<Vec<u8>, Vec<CensusError>> {
    use std::io::Read;
    let cannot = |e: std::io::Error| {
        vec![CensusError::unreadable(
            None,
            format!("cannot read {}: {e}", path.display()),
        )]
    };
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(limits::MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limits::MAX_FILE_BYTES {
        return Err(vec![limits::refusal(
            Location {
                sheet: None,
                row: 0,
                column: None,
            },
            format!(
                "{}: a census file may have at most {} bytes",
                path.display(),
                limits::MAX_FILE_BYTES
            ),
        )]);
    }
    Ok(bytes)
}

/// The kind of census file a path names, by its extension.
enum Format {
    Csv,
    Xlsx,
}

fn format_of(path: &Path) -> Result<Format, Vec<CensusError>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("csv") => Ok(Format::Csv),
        Some("xlsx") => Ok(Format::Xlsx),
        _ => Err(vec![CensusError::unreadable(
            None,
            format!("{}: a census is a .csv or .xlsx file", path.display()),
        )]),
    }
}

/// Streams a census file through an intake.
fn read_into(
    bytes: &[u8],
    format: Format,
    source: &str,
    intake: &mut validate::Intake,
) -> Result<(), Vec<CensusError>> {
    match format {
        Format::Csv => read::csv_rows(bytes, intake),
        Format::Xlsx => read::xlsx_rows(bytes, source, intake),
    }
}

/// Reads a census file, by its extension: `.csv` or `.xlsx` (case-insensitive).
pub fn load(path: &Path) -> Result<Census, Vec<CensusError>> {
    let format = format_of(path)?;
    let bytes = read_file(path)?;
    let mut intake = validate::Intake::new(true);
    read_into(&bytes, format, &path.display().to_string(), &mut intake)?;
    drop(bytes);
    intake.census()
}

/// Checks a census file (`.csv` or `.xlsx`) against every rule without building the census: the
/// same errors as [`load`], in a fraction of the memory.
pub fn check(path: &Path) -> Result<CensusSummary, Vec<CensusError>> {
    let format = format_of(path)?;
    let bytes = read_file(path)?;
    let mut intake = validate::Intake::new(false);
    read_into(&bytes, format, &path.display().to_string(), &mut intake)?;
    drop(bytes);
    intake.summary()
}

/// Parses and validates a census in CSV (UTF-8 with or without BOM, UTF-16 with BOM, or
/// Windows-1252; `,`, `;` or tab delimited, sniffed from the header).
pub fn parse_csv(bytes: &[u8]) -> Result<Census, Vec<CensusError>> {
    let mut intake = validate::Intake::new(true);
    read::csv_rows(bytes, &mut intake)?;
    intake.census()
}

/// Checks a CSV census against every rule without building it (see [`check`]).
pub fn check_csv(bytes: &[u8]) -> Result<CensusSummary, Vec<CensusError>> {
    let mut intake = validate::Intake::new(false);
    read::csv_rows(bytes, &mut intake)?;
    intake.summary()
}

/// Parses and validates a census workbook with the sheets `entities` and `users`.
pub fn parse_xlsx(path: &Path) -> Result<Census, Vec<CensusError>> {
    let bytes = read_file(path)?;
    let mut intake = validate::Intake::new(true);
    read::xlsx_rows(&bytes, &path.display().to_string(), &mut intake)?;
    intake.census()
}

/// Parses and validates a census workbook held in memory (see [`parse_xlsx`]).
pub fn parse_xlsx_bytes(bytes: &[u8]) -> Result<Census, Vec<CensusError>> {
    let mut intake = validate::Intake::new(true);
    read::xlsx_rows(bytes, "the workbook", &mut intake)?;
    intake.census()
}

/// Checks a census workbook held in memory against every rule without building it.
pub fn check_xlsx_bytes(bytes: &[u8]) -> Result<CensusSummary, Vec<CensusError>> {
    let mut intake = validate::Intake::new(false);
    read::xlsx_rows(bytes, "the workbook", &mut intake)?;
    intake.summary()
}
