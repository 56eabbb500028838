//! The card image file: one card's whole durable state. Format and commit protocol are in `STORE.md`.
//!
//! ```text
//! magic "TESSERA-CARD\n" (13) | version u16 | body length u32 | body | SHA-256(header ‖ body) (32)
//! ```
//! Saving writes a sibling temporary file, fsyncs it, renames it over the image and fsyncs the directory,
//! so the file on disk is always either the previous image or the new one.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use apdu::Reader;
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::{Eeprom, RecordKey};
use crate::Clock;

const MAGIC: &[u8; 13] = b"TESSERA-CARD\n";
pub const FORMAT_VERSION: u16 = 1;
const HEADER_LEN: usize = MAGIC.len() + 2 + 4;
const CHECKSUM_LEN: usize = 32;

/// Everything a card keeps across power-off.
#[derive(Debug, Clone)]
pub struct CardImage {
    pub atr: Vec<u8>,
    pub max_chain_len: usize,
    pub clock: Clock,
    /// `(seed, stream position)` of a deterministic card.
    pub rng: Option<(u64, u128)>,
    /// Installed applets by owner index: their AIDs.
    pub applets: Vec<Vec<u8>>,
    /// The applet selected on the basic channel at power-up.
    pub default_applet: Option<u8>,
    pub eeprom: Eeprom,
}

#[derive(Debug, Error)]
pub enum ImageError {
    #[error("cannot {action} card image {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a tessera card image (bad magic bytes)")]
    NotACardImage { path: PathBuf },
    #[error(
        "card image {path} has format version {found}; this build reads version {FORMAT_VERSION}"
    )]
    UnsupportedVersion { path: PathBuf, found: u16 },
    #[error("card image {path} is truncated: {expected} bytes expected, {found} present")]
    Truncated {
        path: PathBuf,
        expected: usize,
        found: usize,
    },
    #[error("card image {path} is corrupt: checksum mismatch (the file was changed or damaged; restore it from a copy)")]
    ChecksumMismatch { path: PathBuf },
    #[error("card image {path} is corrupt: {detail}")]
    Malformed { path: PathBuf, detail: String },
    #[error("card image {path} is in use by another process (lock {lock} is held)")]
    InUse { path: PathBuf, lock: PathBuf },
    #[error("card image {path} already exists; refusing to overwrite it")]
    AlreadyExists { path: PathBuf },
}

/// How hard a save tries to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync the file and its directory before the card answers (the default; the invariant holds).
    #[default]
    Full,
    /// Skip fsync: a crash of the machine (not of the process) may lose acknowledged state.
    /// For benchmarks only.
    Relaxed,
}

impl CardImage {
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(256 + self.eeprom.used());
        put_bytes(&mut body, &self.atr);
        body.extend_from_slice(&(self.max_chain_len as u32).to_be_bytes());
        match self.clock {
            Clock::System => body.push(0),
            Clock::Fixed(seconds) => {
                body.push(1);
                body.extend_from_slice(&seconds.to_be_bytes());
            }
        }
        match self.rng {
            None => body.push(0),
            Some((seed, position)) => {
                body.push(1);
                body.extend_from_slice(&seed.to_be_bytes());
                body.extend_from_slice(&position.to_be_bytes());
            }
        }
        body.push(self.applets.len() as u8);
        for aid in &self.applets {
            put_bytes(&mut body, aid);
        }
        body.push(self.default_applet.unwrap_or(0xFF));
        body.extend_from_slice(&(self.eeprom.capacity() as u32).to_be_bytes());
        let records = self.eeprom.records();
        body.extend_from_slice(&(records.len() as u32).to_be_bytes());
        for (key, value) in records {
            put_key(&mut body, *key);
            put_bytes(&mut body, value);
        }
        match self.eeprom.journal() {
            None => body.push(0),
            Some(journal) => {
                body.push(1);
                body.extend_from_slice(&(journal.len() as u32).to_be_bytes());
                for (key, old) in journal {
                    put_key(&mut body, *key);
                    match old {
                        None => body.push(0),
                        Some(value) => {
                            body.push(1);
                            put_bytes(&mut body, value);
                        }
                    }
                }
            }
        }

        let mut out = Vec::with_capacity(HEADER_LEN + body.len() + CHECKSUM_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        let checksum = Sha256::digest(&out);
        out.extend_from_slice(&checksum);
        out
    }

    /// Decodes an image; `path` only names the file in errors.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Self, ImageError> {
        let path_buf = || path.to_path_buf();
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(ImageError::NotACardImage { path: path_buf() });
        }
        if bytes.len() < HEADER_LEN {
            return Err(ImageError::Truncated {
                path: path_buf(),
                expected: HEADER_LEN,
                found: bytes.len(),
            });
        }
        let version = u16::from_be_bytes([bytes[13], bytes[14]]);
        if version != FORMAT_VERSION {
            return Err(ImageError::UnsupportedVersion {
                path: path_buf(),
                found: version,
            });
        }
        let body_len = u32::from_be_bytes([bytes[15], bytes[16], bytes[17], bytes[18]]) as usize;
        let expected = HEADER_LEN + body_len + CHECKSUM_LEN;
        if bytes.len() < expected {
            return Err(ImageError::Truncated {
                path: path_buf(),
                expected,
                found: bytes.len(),
            });
        }
        if bytes.len() > expected {
            return Err(ImageError::Malformed {
                path: path_buf(),
                detail: format!(
                    "{} unexpected bytes after the checksum",
                    bytes.len() - expected
                ),
            });
        }
        let (signed, checksum) = bytes.split_at(HEADER_LEN + body_len);
        if Sha256::digest(signed).as_slice() != checksum {
            return Err(ImageError::ChecksumMismatch { path: path_buf() });
        }
        decode_body(&signed[HEADER_LEN..]).map_err(|detail| ImageError::Malformed {
            path: path_buf(),
            detail,
        })
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_key(out: &mut Vec<u8>, key: RecordKey) {
    out.push(key.owner);
    out.extend_from_slice(&key.id.to_be_bytes());
}

fn decode_body(body: &[u8]) -> Result<CardImage, String> {
    let r = &mut Reader::new(body);
    let err = |e: apdu::ReaderError| e.to_string();
    let u32_of = |r: &mut Reader<'_>| -> Result<u32, String> {
        let b = r.take(4).map_err(err)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_of = |r: &mut Reader<'_>| -> Result<u64, String> {
        let b = r.take(8).map_err(err)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    };
    let bytes_of = |r: &mut Reader<'_>| -> Result<Vec<u8>, String> {
        let len = u32_of(r)? as usize;
        Ok(r.take(len).map_err(err)?.to_vec())
    };
    let key_of = |r: &mut Reader<'_>| -> Result<RecordKey, String> {
        Ok(RecordKey {
            owner: r.u8().map_err(err)?,
            id: r.u16().map_err(err)?,
        })
    };

    let atr = bytes_of(r)?;
    let max_chain_len = u32_of(r)? as usize;
    let clock = match r.u8().map_err(err)? {
        0 => Clock::System,
        1 => Clock::Fixed(u64_of(r)?),
        other => return Err(format!("unknown clock kind {other}")),
    };
    let rng = match r.u8().map_err(err)? {
        0 => None,
        1 => {
            let seed = u64_of(r)?;
            let b = r.take(16).map_err(err)?;
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            Some((seed, u128::from_be_bytes(a)))
        }
        other => return Err(format!("unknown random source kind {other}")),
    };
    let applet_count = r.u8().map_err(err)?;
    let applets = (0..applet_count)
        .map(|_| bytes_of(r))
        .collect::<Result<Vec<_>, _>>()?;
    let default_applet = match r.u8().map_err(err)? {
        0xFF => None,
        index if usize::from(index) < applets.len() => Some(index),
        index => return Err(format!("default applet {index} is not installed")),
    };
    let capacity = u32_of(r)? as usize;
    let record_count = u32_of(r)?;
    let mut records = BTreeMap::new();
    for _ in 0..record_count {
        let key = key_of(r)?;
        records.insert(key, bytes_of(r)?);
    }
    let journal = match r.u8().map_err(err)? {
        0 => None,
        1 => {
            let count = u32_of(r)?;
            let mut journal = Vec::new();
            for _ in 0..count {
                let key = key_of(r)?;
                let old = match r.u8().map_err(err)? {
                    0 => None,
                    1 => Some(bytes_of(r)?),
                    other => return Err(format!("unknown journal entry kind {other}")),
                };
                journal.push((key, old));
            }
            Some(journal)
        }
        other => return Err(format!("unknown journal marker {other}")),
    };
    r.expect_end().map_err(err)?;
    Ok(CardImage {
        atr,
        max_chain_len,
        clock,
        rng,
        applets,
        default_applet,
        eeprom: Eeprom::from_parts(capacity, records, journal),
    })
}

/// A card image on disk, locked for this process while it is open.
#[derive(Debug)]
pub struct ImageFile {
    path: PathBuf,
    durability: Durability,
    /// Held for the lifetime of this value: a second process opening the same card is refused.
    _lock: File,
}

impl ImageFile {
    fn lock_path(path: &Path) -> PathBuf {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        path.with_file_name(name)
    }

    fn acquire(path: &Path, durability: Durability) -> Result<Self, ImageError> {
        let lock_path = Self::lock_path(path);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|source| ImageError::Io {
                action: "lock",
                path: path.to_path_buf(),
                source,
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(ImageError::InUse {
                    path: path.to_path_buf(),
                    lock: lock_path,
                })
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(ImageError::Io {
                    action: "lock",
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            durability,
            _lock: lock,
        })
    }

    /// Creates a new image file (refusing to overwrite one) and writes `image` to it.
    pub fn create(
        path: &Path,
        durability: Durability,
        image: &CardImage,
    ) -> Result<Self, ImageError> {
        if path.exists() {
            return Err(ImageError::AlreadyExists {
                path: path.to_path_buf(),
            });
        }
        let file = Self::acquire(path, durability)?;
        file.save(&image.encode())?;
        Ok(file)
    }

    /// Opens and decodes an existing image.
    pub fn open(path: &Path, durability: Durability) -> Result<(Self, CardImage), ImageError> {
        let mut bytes = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|source| ImageError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            })?;
        let image = CardImage::decode(&bytes, path)?;
        let file = Self::acquire(path, durability)?;
        Ok((file, image))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the image on disk atomically.
    pub fn save(&self, bytes: &[u8]) -> Result<(), ImageError> {
        let io = |action: &'static str| {
            let path = self.path.clone();
            move |source| ImageError::Io {
                action,
                path,
                source,
            }
        };
        let mut tmp_name = self.path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".tmp");
        let tmp = self.path.with_file_name(tmp_name);
        {
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io("write"))?;
            file.write_all(bytes).map_err(io("write"))?;
            if self.durability == Durability::Full {
                // INVARIANT: the new image's bytes are on disk before it replaces the old one.
                file.sync_data().map_err(io("sync"))?;
            }
        }
        std::fs::rename(&tmp, &self.path).map_err(io("replace"))?;
        if self.durability == Durability::Full {
            // INVARIANT: the rename itself is durable before the card answers.
            let dir = self
                .path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io("sync the directory of"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CardImage {
        let mut eeprom = Eeprom::new(4096);
        eeprom
            .write(RecordKey { owner: 0, id: 7 }, Some(b"value"))
            .unwrap();
        eeprom.begin().unwrap();
        eeprom
            .write(RecordKey { owner: 1, id: 2 }, Some(b"in flight"))
            .unwrap();
        CardImage {
            atr: vec![0x3B, 0x00],
            max_chain_len: 4096,
            clock: Clock::Fixed(1_700_000_000),
            rng: Some((42, 1234)),
            applets: vec![vec![0xA0, 0x01], vec![0xF0, 0x02]],
            default_applet: Some(1),
            eeprom,
        }
    }

    #[test]
    fn encode_decode_round_trip_keeps_journal() {
        let image = sample();
        let bytes = image.encode();
        let decoded = CardImage::decode(&bytes, Path::new("x")).unwrap();
        assert_eq!(decoded.encode(), bytes);
        assert!(decoded.eeprom.needs_recovery());
        assert_eq!(decoded.rng, Some((42, 1234)));
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            assert!(
                CardImage::decode(&bytes[..len], Path::new("x")).is_err(),
                "len {len}"
            );
        }
        for i in 0..bytes.len() {
            let mut corrupt = bytes.clone();
            corrupt[i] ^= 0x01;
            assert!(
                CardImage::decode(&corrupt, Path::new("x")).is_err(),
                "byte {i}"
            );
        }
        let err = CardImage::decode(&bytes[..bytes.len() - 1], Path::new("card.img")).unwrap_err();
        assert!(err.to_string().contains("card.img"), "{err}");
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn saved_file_is_private_and_second_opener_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.img");
        let file = ImageFile::create(&path, Durability::Full, &sample()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(
            ImageFile::open(&path, Durability::Full),
            Err(ImageError::InUse { .. })
        ));
        assert!(matches!(
            ImageFile::create(&path, Durability::Full, &sample()),
            Err(ImageError::AlreadyExists { .. })
        ));
        drop(file);
        let (_file, image) = ImageFile::open(&path, Durability::Full).unwrap();
        assert_eq!(image.applets.len(), 2);
    }
}
