//! Files only their owner may read (card images, envelopes, keys, the registries, the outbox), made one
//! of these ways — [`create_new`] for a file written once, [`ensure_private`] before a database opens
//! its file — or written one of two ways:
//! - [`write_atomic`]: on its own, durable when it returns (temporary file created 0600, written,
//!   fsync, rename over the target, fsync of the directory) — for a file that matters by itself;
//! - [`write_unsynced`] for each file of a group, then one [`sync_filesystem`] for all of them — for
//!   files that count only once a later commit names them (a batch's cards), so a group of cards pays
//!   one durability barrier instead of three syncs per card. A crash before the barrier leaves files
//!   nothing refers to; whoever remakes them overwrites them.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `path` (and its parents) as a directory only its owner may enter.
pub fn create_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Writes `bytes` to `path` (0600) durably and atomically: a reader sees the old file or the new one,
/// never a part, and the new one is on disk when this returns.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix)
        .map_err(|_| io::Error::other("the operating system's random generator failed"))?;
    let temp = path.with_file_name(format!(".{file_name}.{}.tmp", hex::encode(suffix)));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        // The umask may have taken bits from `mode`; it cannot have added any, but say exactly 0600.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        // INVARIANT: the new bytes are on disk before they replace the old file.
        file.sync_all()?;
        fs::rename(&temp, path)?;
        // INVARIANT: the rename itself is durable before we say the file is written.
        sync_dir_of(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Creates `path` with `bytes`, never replacing a file, durably (file and directory synced): for files
/// written once (the CA's key, 0600; its certificate is the one public file the bureau writes, 0644).
/// The mode is exact, whatever the umask.
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    sync_dir_of(path)
}

/// Makes `path` a file only its owner may read: created empty (0600) if missing, narrowed to 0600 if
/// not. For a database about to be opened by SQLite, which gives its WAL and shared-memory files the
/// main file's mode: so no moment exists at which any of them is readable by others.
pub fn ensure_private(path: &Path) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))
}

/// Makes durable the directory entries of `path`'s directory (a new name, a rename, a link).
pub fn sync_dir_of(path: &Path) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` (created 0600, or truncated) with no sync: durable only after a later
/// [`sync_filesystem`].
pub fn write_unsynced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)
}

/// The durability barrier for files written by [`write_unsynced`]: when it returns, every file and
/// directory entry written before it on the filesystem holding `dir` is on disk.
#[cfg(target_os = "linux")]
pub fn sync_filesystem(dir: &Path, _written: &[&Path]) -> io::Result<()> {
    // syncfs(2): one flush of the whole filesystem, and it reports writeback errors (Linux ≥ 5.8).
    let dir = File::open(dir)?;
    rustix::fs::syncfs(&dir).map_err(io::Error::from)
}

/// The durability barrier where `syncfs` does not exist: every file, then every directory holding one.
#[cfg(not(target_os = "linux"))]
pub fn sync_filesystem(_dir: &Path, written: &[&Path]) -> io::Result<()> {
    let mut dirs = std::collections::BTreeSet::new();
    for path in written {
        File::open(path)?.sync_all()?;
        dirs.insert(path.parent().unwrap_or(Path::new(".")).to_path_buf());
    }
    dirs.iter().try_for_each(|dir| File::open(dir)?.sync_all())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn create_new_never_replaces_and_ensure_private_narrows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("ca.key");
        create_new(&key, b"secret", 0o600).expect("created");
        assert_eq!(mode(&key), 0o600);
        let again = create_new(&key, b"other", 0o600).expect_err("exists");
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&key).expect("read"), b"secret");

        let db = dir.path().join("registry.sqlite");
        ensure_private(&db).expect("created");
        assert_eq!((mode(&db), fs::read(&db).expect("read").len()), (0o600, 0));
        fs::write(&db, b"rows").expect("write");
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).expect("chmod");
        ensure_private(&db).expect("narrowed");
        assert_eq!(mode(&db), 0o600);
        assert_eq!(fs::read(&db).expect("read"), b"rows", "never truncated");
    }

    #[test]
    fn both_ways_leave_a_0600_file_with_the_bytes_and_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let atomic = dir.path().join("a.json");
        let grouped = dir.path().join("b.img");
        fs::write(&atomic, b"old").expect("old");
        fs::set_permissions(&atomic, fs::Permissions::from_mode(0o644)).expect("chmod");
        write_atomic(&atomic, b"new").expect("atomic");
        write_unsynced(&grouped, b"longer first").expect("grouped");
        write_unsynced(&grouped, b"short").expect("grouped again");
        sync_filesystem(dir.path(), &[&grouped]).expect("barrier");
        assert_eq!(fs::read(&atomic).expect("read"), b"new");
        assert_eq!(fs::read(&grouped).expect("read"), b"short", "truncated");
        assert_eq!((mode(&atomic), mode(&grouped)), (0o600, 0o600));
        let names: Vec<String> = fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }

    #[test]
    fn a_failed_atomic_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("sub");
        create_dir(&target).expect("dir");
        // Renaming a file over a directory fails: the write must fail cleanly.
        let error = write_atomic(&target, b"x").expect_err("cannot replace a directory");
        assert!(!error.to_string().is_empty());
        assert!(target.is_dir());
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 1);
    }
}
