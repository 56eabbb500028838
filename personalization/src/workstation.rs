//! Workstation (`<ISTAT>-PC-0001`…) and server (`<ISTAT>-CO-9999`, renewal `-CO-9998`) certificates:
//! requested from the census, issued by a batch job as PKCS#12 files with their own random passwords,
//! blocked on request, and downloaded all at once as an archive with a passwords file.

use std::io::Write;
use std::path::Path;

use rusqlite::params;

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
    /// requested, active, blocked, expired.
    pub state: String,
    pub not_after: Option<i64>,
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
        let mut names: Vec<(String, &str)> = (1..=pcs)
            .map(|i| (format!("{}-PC-{i:04}", entity.code), "workstation"))
            .collect();
        if server {
            names.push((format!("{}-CO-9999", entity.code), "server"));
        }
        for (name, kind) in names {
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO workstations (name, entity, kind, state, requested_at) VALUES (?1, ?2, ?3, 'requested', ?4)",
                params![name, entity.code, kind, now],
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
        "INSERT INTO workstations (name, entity, kind, state, requested_at) VALUES (?1, ?2, ?3, 'requested', ?4)",
        params![name, entity, if server { "server" } else { "workstation" }, now],
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
        let mut statement = registry.connection().prepare(
            "SELECT name, kind FROM workstations WHERE state = 'requested' ORDER BY name",
        )?;
        let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(RegistryError::from)?
    };
    let at = dates::unix(now);
    let mut issued = Vec::new();
    for (name, kind) in pending {
        let kind = if kind == "server" {
            WorkstationKind::Server
        } else {
            WorkstationKind::Workstation
        };
        let serial = issuer.allocate_serial(&name, at)?;
        let bundle = ca.issue_workstation(&name, kind, serial, now)?;
        let sealed = master.seal(&name, bundle.password.as_bytes())?;
        let tx = registry.transaction()?;
        tx.execute(
            "UPDATE workstations SET state = 'active', serial = ?1, issued_at = ?2, not_after = ?3,
                certificate = ?4, pkcs12 = ?5, sealed_password = ?6 WHERE name = ?7",
            params![
                hex::encode(serial),
                at,
                dates::unix(bundle.not_after),
                bundle.certificate_der,
                bundle.pkcs12,
                sealed,
                name
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
        "UPDATE workstations SET state = 'blocked' WHERE name = ?1",
        params![name],
    )?;
    if let Some(serial) = serial {
        tx.execute(
            "UPDATE certificates SET state = 'revoked' WHERE serial = ?1",
            params![serial],
        )?;
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
        let not_after: Option<i64> = r.get(4)?;
        let mut state: String = r.get(3)?;
        if state == "active" && not_after.is_some_and(|t| now >= t) {
            state = "expired".into();
        }
        Ok(WorkstationRow {
            name: r.get(0)?,
            entity: r.get(1)?,
            kind: r.get(2)?,
            state,
            not_after,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
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
        "SELECT name, pkcs12, sealed_password FROM workstations WHERE entity = ?1 AND state = 'active' ORDER BY name",
    )?;
    let rows: Vec<(String, Vec<u8>, Vec<u8>)> = statement
        .query_map(params![entity], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
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
