//! Workstation (`<ISTAT>-PC-0001`…) and server (`<ISTAT>-CO-9999`, renewal `-CO-9998`) certificates:
//! requested from the census, issued by a batch job as PKCS#12 files with their own random passwords,
//! blocked on request, and downloaded all at once as an archive with a passwords file.

use std::io::Write;
use std::path::Path;

use rusqlite::{params, OptionalExtension as _};

use crate::ca::{StagingCa, WorkstationKind};
use crate::census::{Census, EntityKind};
use crate::issuer::Issuer;
use crate::registry::{append_event, EventKind, Registry, RegistryError};
use crate::secrets::MasterKey;
use crate::{batch::BatchError, dates};

/// One workstation certificate as listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkstationRow {
    pub name: String,
    pub entity: String,
    pub kind: String,
    pub state: WorkstationState,
    pub not_after: Option<i64>,
}

/// Where a workstation certificate is in its life. Stored (and serialized) by its lower-case name;
/// `Expired` is never stored: an active certificate past its `not_after` is listed as expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkstationState {
    Requested,
    Active,
    Blocked,
    Expired,
}

impl WorkstationState {
    const ALL: [WorkstationState; 4] = [
        WorkstationState::Requested,
        WorkstationState::Active,
        WorkstationState::Blocked,
        WorkstationState::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WorkstationState::Requested => "requested",
            WorkstationState::Active => "active",
            WorkstationState::Blocked => "blocked",
            WorkstationState::Expired => "expired",
        }
    }

    /// The state a stored name stands for; `None` for a name this version does not know.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }
}

impl std::fmt::Display for WorkstationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a workstation certificate's kind is stored.
fn kind_name(kind: WorkstationKind) -> &'static str {
    match kind {
        WorkstationKind::Workstation => "workstation",
        WorkstationKind::Server => "server",
    }
}

fn parse_kind(text: &str) -> Option<WorkstationKind> {
    [WorkstationKind::Workstation, WorkstationKind::Server]
        .into_iter()
        .find(|kind| kind_name(*kind) == text)
}

/// Requests the census's workstation certificates (idempotent): `workstations` PC certificates, except
/// that a municipality asking for one more than its monitoring sheet gets that extra one as its server
/// certificate `-CO-9999`.
/// Runs inside the batch's set-up transaction ([`Registry::set_up_batch`]).
pub fn request_from_census(
    tx: &rusqlite::Transaction<'_>,
    census: &Census,
    now: i64,
) -> Result<(), RegistryError> {
    for entity in &census.entities {
        let server = entity.kind == EntityKind::Municipality
            && entity.workstations > entity.monitored_workstations;
        let pcs = if server {
            entity.workstations - 1
        } else {
            entity.workstations
        };
        let mut names: Vec<(String, WorkstationKind)> = (1..=pcs)
            .map(|i| {
                (
                    format!("{}-PC-{i:04}", entity.code),
                    WorkstationKind::Workstation,
                )
            })
            .collect();
        if server {
            names.push((format!("{}-CO-9999", entity.code), WorkstationKind::Server));
        }
        for (name, kind) in names {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO workstations (name, entity, kind, state, requested_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    name,
                    entity.code,
                    kind_name(kind),
                    WorkstationState::Requested.as_str(),
                    now
                ],
            )?;
            if inserted == 1 {
                append_event(
                    tx,
                    now,
                    EventKind::WorkstationRequested,
                    None,
                    Some(&entity.code),
                    None,
                    &name,
                )?;
            }
        }
    }
    Ok(())
}

/// Requests one more certificate for an entity: the next `-PC-` number, or the server certificate
/// (`-CO-9999`, then `-CO-9998` as its renewal).
pub fn request(
    registry: &mut Registry,
    entity: &str,
    server: bool,
    now: i64,
) -> Result<String, BatchError> {
    let conn = registry.connection();
    let existing: Vec<String> = {
        let mut statement = conn.prepare("SELECT name FROM workstations WHERE entity = ?1")?;
        let rows = statement.query_map(params![entity], |r| r.get(0))?;
        rows.collect::<Result<Vec<String>, _>>()
            .map_err(RegistryError::from)?
    };
    let name = if server {
        ["9999", "9998"]
            .iter()
            .map(|n| format!("{entity}-CO-{n}"))
            .find(|n| !existing.contains(n))
            .ok_or_else(|| BatchError::ServerCertificatesExhausted(entity.to_string()))?
    } else {
        let next = existing
            .iter()
            .filter_map(|n| {
                n.strip_prefix(&format!("{entity}-PC-"))
                    .and_then(|x| x.parse::<u32>().ok())
            })
            .max()
            .unwrap_or(0)
            + 1;
        format!("{entity}-PC-{next:04}")
    };
    let tx = registry.transaction()?;
    tx.execute(
        "INSERT INTO workstations (name, entity, kind, state, requested_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            name,
            entity,
            kind_name(if server {
                WorkstationKind::Server
            } else {
                WorkstationKind::Workstation
            }),
            WorkstationState::Requested.as_str(),
            now
        ],
    )?;
    append_event(
        &tx,
        now,
        EventKind::WorkstationRequested,
        None,
        Some(entity),
        None,
        &name,
    )?;
    tx.commit().map_err(RegistryError::from)?;
    Ok(name)
}

/// The batch job: issues every requested certificate. Returns the names issued.
pub fn issue_requested(
    registry: &mut Registry,
    ca: &StagingCa,
    issuer: &mut Issuer,
    master: &MasterKey,
    now: std::time::SystemTime,
) -> Result<Vec<String>, BatchError> {
    let pending: Vec<(String, String)> = {
        let mut statement = registry
            .connection()
            .prepare("SELECT name, kind FROM workstations WHERE state = ?1 ORDER BY name")?;
        let rows = statement.query_map(params![WorkstationState::Requested.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(RegistryError::from)?
    };
    let at = dates::unix(now);
    let mut issued = Vec::new();
    for (name, kind) in pending {
        let kind = parse_kind(&kind).ok_or_else(|| {
            RegistryError::Corrupt(format!("workstation {name} of unknown kind {kind:?}"))
        })?;
        let serial = issuer.allocate_serial(&name, at)?;
        let bundle = ca.issue_workstation(&name, kind, serial, now)?;
        let sealed = master.seal(&name, bundle.password.as_bytes())?;
        let tx = registry.transaction()?;
        tx.execute(
            "UPDATE workstations SET state = ?8, serial = ?1, issued_at = ?2, not_after = ?3,
                certificate = ?4, pkcs12 = ?5, sealed_password = ?6 WHERE name = ?7",
            params![
                hex::encode(serial),
                at,
                dates::unix(bundle.not_after),
                bundle.certificate_der,
                bundle.pkcs12,
                sealed,
                name,
                WorkstationState::Active.as_str()
            ],
        )?;
        tx.execute(
            "INSERT INTO certificates VALUES (?1, NULL, ?2, ?3, ?4, 'valid', ?5)",
            params![
                hex::encode(serial),
                format!("CN={name}"),
                at,
                dates::unix(bundle.not_after),
                bundle.certificate_der
            ],
        )?;
        append_event(
            &tx,
            at,
            EventKind::WorkstationIssued,
            None,
            None,
            None,
            &name,
        )?;
        tx.commit().map_err(RegistryError::from)?;
        issued.push(name);
    }
    Ok(issued)
}

/// Blocks a workstation certificate (and revokes it).
pub fn block(registry: &mut Registry, name: &str, now: i64) -> Result<(), BatchError> {
    let tx = registry.transaction()?;
    let serial: Option<String> = tx
        .query_row(
            "SELECT serial FROM workstations WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )
        .map_err(|_| BatchError::UnknownWorkstation(name.to_string()))?;
    tx.execute(
        "UPDATE workstations SET state = ?2 WHERE name = ?1",
        params![name, WorkstationState::Blocked.as_str()],
    )?;
    if let Some(serial) = serial {
        crate::registry::revoke_certificate(&tx, &serial)?;
    }
    append_event(
        &tx,
        now,
        EventKind::WorkstationBlocked,
        None,
        None,
        None,
        name,
    )?;
    tx.commit().map_err(RegistryError::from)?;
    Ok(())
}

/// The workstation certificates of an entity (all entities if `None`), with effective states.
pub fn list(
    registry: &Registry,
    entity: Option<&str>,
    now: i64,
) -> Result<Vec<WorkstationRow>, RegistryError> {
    let mut statement = registry.connection().prepare(
        "SELECT name, entity, kind, state, not_after FROM workstations WHERE ?1 IS NULL OR entity = ?1 ORDER BY name",
    )?;
    let rows = statement.query_map(params![entity], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<i64>>(4)?,
        ))
    })?;
    rows.map(|row| {
        let (name, entity, kind, state, not_after) = row?;
        let mut state = WorkstationState::parse(&state).ok_or_else(|| {
            RegistryError::Corrupt(format!("workstation {name} in unknown state {state:?}"))
        })?;
        if state == WorkstationState::Active && not_after.is_some_and(|t| now >= t) {
            state = WorkstationState::Expired;
        }
        Ok(WorkstationRow {
            name,
            entity,
            kind,
            state,
            not_after,
        })
    })
    .collect()
}

/// The workstation (or server) whose issued certificate is exactly `certificate_der`, with its
/// effective state as of `now`; `None` when this batch never issued that certificate.
pub fn by_certificate(
    registry: &Registry,
    certificate_der: &[u8],
    now: i64,
) -> Result<Option<WorkstationRow>, RegistryError> {
    let name: Option<String> = registry
        .connection()
        .query_row(
            "SELECT name FROM workstations WHERE certificate = ?1",
            params![certificate_der],
            |r| r.get(0),
        )
        .optional()?;
    let Some(name) = name else {
        return Ok(None);
    };
    Ok(list(registry, None, now)?
        .into_iter()
        .find(|row| row.name == name))
}

/// One issued certificate's PKCS#12 bundle and its installation password, as "download" hands them
/// to the entity's security officer.
pub fn bundle(
    registry: &Registry,
    master: &MasterKey,
    name: &str,
) -> Result<(Vec<u8>, zeroize::Zeroizing<String>), BatchError> {
    /// `(pkcs12, sealed_password)`: both absent until the certificate is issued.
    type Issued = (Option<Vec<u8>>, Option<Vec<u8>>);
    let row: Option<Issued> = registry
        .connection()
        .query_row(
            "SELECT pkcs12, sealed_password FROM workstations WHERE name = ?1",
            params![name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(RegistryError::from)?;
    match row {
        None => Err(BatchError::UnknownWorkstation(name.to_string())),
        Some((Some(pkcs12), Some(sealed))) => {
            let password = master.unseal(name, &sealed)?;
            let password = String::from_utf8(password.to_vec()).map_err(|_| {
                RegistryError::Corrupt(format!("workstation {name}: password is not text"))
            })?;
            Ok((pkcs12, zeroize::Zeroizing::new(password)))
        }
        Some(_) => Err(BatchError::WorkstationNotIssued(name.to_string())),
    }
}

/// "Download all": a zip with every active certificate of the entity as `<name>.p12` and a
/// `passwords.txt` of `<name>: <password>` lines. The archive is written 0600.
pub fn download_all(
    registry: &Registry,
    master: &MasterKey,
    entity: &str,
    out: &Path,
) -> Result<usize, BatchError> {
    let mut statement = registry.connection().prepare(
        "SELECT name, pkcs12, sealed_password FROM workstations WHERE entity = ?1 AND state = ?2 ORDER BY name",
    )?;
    let rows: Vec<(String, Vec<u8>, Vec<u8>)> = statement
        .query_map(params![entity, WorkstationState::Active.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(RegistryError::from)?;
    if rows.is_empty() {
        return Err(BatchError::NoWorkstationCertificates(entity.to_string()));
    }
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default().unix_permissions(0o600);
        let mut passwords = zeroize::Zeroizing::new(String::new());
        for (name, pkcs12, sealed) in &rows {
            let password = master.unseal(name, sealed)?;
            passwords.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(&password)));
            zip.start_file(format!("{name}.p12"), options)
                .map_err(zip_error)?;
            zip.write_all(pkcs12)
                .map_err(|e| BatchError::Archive(e.to_string()))?;
        }
        zip.start_file("passwords.txt", options)
            .map_err(zip_error)?;
        zip.write_all(passwords.as_bytes())
            .map_err(|e| BatchError::Archive(e.to_string()))?;
        zip.finish().map_err(zip_error)?;
    }
    crate::batch::write_private(out, buffer.get_ref())?;
    Ok(rows.len())
}

fn zip_error(error: zip::result::ZipError) -> BatchError {
    BatchError::Archive(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_kinds_round_trip_and_unknown_names_are_refused() {
        for state in WorkstationState::ALL {
            assert_eq!(WorkstationState::parse(state.as_str()), Some(state));
            let json = serde_json::to_string(&state).expect("json");
            assert_eq!(json, format!("\"{state}\""));
        }
        for kind in [WorkstationKind::Workstation, WorkstationKind::Server] {
            assert_eq!(parse_kind(kind_name(kind)), Some(kind));
        }
        for text in ["", "Active", "revoked", "requested "] {
            assert_eq!(WorkstationState::parse(text), None, "{text:?}");
        }
        assert_eq!(parse_kind("Server"), None);
        assert_eq!(parse_kind("pc"), None);
    }
}
