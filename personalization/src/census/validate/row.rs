//! The rules of one row on its own: mandatory cells, numbers, codes, codice fiscale, e-mail,
//! profiles, printable text.

use super::errors::ErrorList;
use super::{CODICE_FISCALE, NAME, SURNAME};
use super::{
    DOMAINS, EMAIL, EMPLOYEES, ENTITY, ENTITY_NAME, ENTITY_TYPE, MONITORED, PROFILES, WORKSTATIONS,
};
use crate::census::codice_fiscale::{self, Problem};
use crate::census::read::Row;
use crate::census::text;
use crate::census::{email, CensusError, EntityKind, ErrorKind, Location, Profile, COLUMNS};

/// The location of a cell of a row.
pub(crate) fn location(row: &Row<'_>, column: Option<usize>) -> Location {
    Location {
        sheet: row.sheet.map(str::to_string),
        row: row.row,
        column: column.and_then(|c| COLUMNS.get(c)).map(|c| c.to_string()),
    }
}

/// What an entity row gives, parsed as far as it could be.
pub(crate) struct EntityFields {
    pub code: Option<String>,
    pub kind: Option<EntityKind>,
    pub name: Option<String>,
    pub monitored: Option<u32>,
    pub workstations: Option<u32>,
    pub employees: Option<u32>,
    pub domains: Option<Vec<String>>,
}

/// What a user row gives, parsed as far as it could be.
pub(crate) struct UserFields {
    pub codice_fiscale: Option<String>,
    pub surname: Option<String>,
    pub name: Option<String>,
    /// The normalized address.
    pub email: Option<String>,
    /// In the order given, without repetitions.
    pub profiles: Vec<Profile>,
}

/// Applies the rules of one row, reporting into an error list.
pub(crate) struct RowChecker<'e> {
    pub errors: &'e mut ErrorList,
}

impl RowChecker<'_> {
    pub fn error(
        &mut self,
        row: &Row<'_>,
        column: Option<usize>,
        kind: ErrorKind,
        message: String,
    ) {
        self.errors
            .push(CensusError::new(location(row, column), kind, message));
    }

    /// A mandatory cell: reports it when empty.
    pub fn required<'a>(&mut self, row: &Row<'a>, column: usize) -> Option<&'a str> {
        let value = row.cell(column);
        if value.is_none() {
            let name = COLUMNS[column];
            self.error(
                row,
                Some(column),
                ErrorKind::MissingField,
                format!("{name} is mandatory"),
            );
        }
        value
    }

    /// A mandatory text cell that may be printed or mailed: no control, bidirectional or
    /// invisible character; tabs and line breaks folded into a space.
    fn printable(&mut self, row: &Row<'_>, column: usize) -> Option<String> {
        let value = self.required(row, column)?;
        match text::printable(value) {
            Ok(text) => Some(text.into_owned()),
            Err(forbidden) => {
                self.forbidden(row, column, &forbidden);
                None
            }
        }
    }

    fn forbidden(&mut self, row: &Row<'_>, column: usize, forbidden: &text::Forbidden) {
        self.error(
            row,
            Some(column),
            ErrorKind::ForbiddenCharacter,
            format!(
                "{}: {}, which must never reach an envelope, a card or an e-mail",
                COLUMNS[column],
                forbidden.describe()
            ),
        );
    }

    /// A count: digits only, fitting 32 bits.
    fn number(&mut self, row: &Row<'_>, column: usize, value: &str) -> Option<u32> {
        let parsed = if value.bytes().all(|b| b.is_ascii_digit()) {
            value.parse::<u32>().ok()
        } else {
            None
        };
        if parsed.is_none() {
            let name = COLUMNS[column];
            self.error(
                row,
                Some(column),
                ErrorKind::BadNumber,
                format!("{name} must be a whole number, not {value:?}"),
            );
        }
        parsed
    }

    pub fn entity(&mut self, row: &Row<'_>) -> EntityFields {
        let code_raw = self.required(row, ENTITY);
        let kind = self.required(row, ENTITY_TYPE).and_then(|t| {
            let kind = parse_kind(t);
            if kind.is_none() {
                self.error(
                    row,
                    Some(ENTITY_TYPE),
                    ErrorKind::UnknownEntityType,
                    format!("entity_type {t:?} is neither comune nor prefettura"),
                );
            }
            kind
        });
        let code = code_raw.and_then(|raw| match normalize_code(raw, kind) {
            Ok(code) => Some(code),
            Err(why) => {
                self.error(row, Some(ENTITY), ErrorKind::BadNumber, why);
                None
            }
        });
        let name = self.printable(row, ENTITY_NAME);
        let monitored = match (kind, row.cell(MONITORED)) {
            (Some(EntityKind::Prefecture), None) => Some(0),
            (_, Some(v)) => self.number(row, MONITORED, v),
            (_, None) => {
                self.required(row, MONITORED);
                None
            }
        };
        let workstations = self
            .required(row, WORKSTATIONS)
            .and_then(|v| self.number(row, WORKSTATIONS, v));
        let employees = self
            .required(row, EMPLOYEES)
            .and_then(|v| self.number(row, EMPLOYEES, v));
        let domains = self.required(row, DOMAINS).and_then(|v| {
            if let Err(forbidden) = text::printable(v) {
                self.forbidden(row, DOMAINS, &forbidden);
                return None;
            }
            let mut domains = Vec::new();
            let mut ok = true;
            for d in split_list(v) {
                match email::normalize_domain(d) {
                    Ok(d) => {
                        if let Some(why) = email::non_institutional(&d) {
                            self.error(
                                row,
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
                        self.error(row, Some(DOMAINS), ErrorKind::BadEmail, why);
                        ok = false;
                    }
                }
            }
            if domains.is_empty() && ok {
                self.error(
                    row,
                    Some(DOMAINS),
                    ErrorKind::MissingField,
                    "email_domains is mandatory".into(),
                );
            }
            ok.then_some(domains)
        });
        EntityFields {
            code,
            kind,
            name,
            monitored,
            workstations,
            employees,
            domains,
        }
    }

    fn codice_fiscale(&mut self, row: &Row<'_>) -> Option<String> {
        let cf = self.required(row, CODICE_FISCALE)?;
        match codice_fiscale::classify(cf) {
            Ok(cf) => Some(cf),
            Err(Problem::Malformed(why)) => {
                self.error(
                    row,
                    Some(CODICE_FISCALE),
                    ErrorKind::BadCodiceFiscale,
                    format!("codice fiscale {cf:?} {why}"),
                );
                None
            }
            Err(Problem::CheckCharacter { found, expected }) => {
                self.error(
                    row,
                    Some(CODICE_FISCALE),
                    ErrorKind::BadCheckCharacter,
                    format!(
                        "codice fiscale {cf:?}: check character is {found}, expected {expected}"
                    ),
                );
                None
            }
        }
    }

    fn email(&mut self, row: &Row<'_>) -> Option<String> {
        let value = self.required(row, EMAIL)?;
        if let Err(forbidden) = text::printable(value) {
            self.forbidden(row, EMAIL, &forbidden);
            return None;
        }
        let (address, local, _) = match email::parse(value) {
            Ok(parsed) => parsed,
            Err(why) => {
                self.error(
                    row,
                    Some(EMAIL),
                    ErrorKind::BadEmail,
                    format!("not a valid e-mail address: {why}"),
                );
                return None;
            }
        };
        if let Some(role) = email::role_mailbox(&local) {
            self.error(
                row,
                Some(EMAIL),
                ErrorKind::RoleMailbox,
                format!("{address} is an office mailbox ({role}), not a personal one"),
            );
        }
        Some(address)
    }

    fn profiles(&mut self, row: &Row<'_>) -> Vec<Profile> {
        let mut profiles = Vec::new();
        let Some(cell) = self.required(row, PROFILES) else {
            return profiles;
        };
        let mut unknown = Vec::new();
        for token in split_list(cell) {
            match Profile::parse(token) {
                Some(p) if !profiles.contains(&p) => profiles.push(p),
                Some(_) => {}
                None => unknown.push(token),
            }
        }
        if !unknown.is_empty() {
            self.error(
                row,
                Some(PROFILES),
                ErrorKind::UnknownProfile,
                format!(
                    "unknown profile {}: use SINDACO, ALS, ALP or OPERATORE",
                    unknown.join(", ")
                ),
            );
        } else if profiles.is_empty() {
            self.error(
                row,
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
                row,
                Some(PROFILES),
                ErrorKind::MayorNotExclusive,
                format!(
                    "SINDACO excludes every other profile (also given: {})",
                    others.join(", ")
                ),
            );
        }
        profiles
    }

    pub fn user(&mut self, row: &Row<'_>) -> UserFields {
        // The entity column is resolved by the caller, against every entity.
        self.required(row, ENTITY);
        let codice_fiscale = self.codice_fiscale(row);
        let surname = self.printable(row, SURNAME);
        let name = self.printable(row, NAME);
        let email = self.email(row);
        let profiles = self.profiles(row);
        UserFields {
            codice_fiscale,
            surname,
            name,
            email,
            profiles,
        }
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
pub(crate) fn reference_code(raw: &str) -> String {
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
pub(crate) fn name_key(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}
