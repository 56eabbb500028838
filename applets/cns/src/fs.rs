//! The card's ISO 7816-4 file system: a fixed tree of DFs and transparent EFs in the layout of the
//! CNS functional specification, as OpenSC's `itacns` driver and emulator read it. The tree is code
//! (a card's mask fixes it); each EF's content is one persistent record.

use card_os::apdu::tlv;
use card_os::{CardError, Context, Lifetime};

/// A file identifier.
pub type Fid = u16;

pub const MF: Fid = 0x3F00;

/// Who may do something to a file. The byte is what the FCP's security attributes (tag `86`) say, in
/// the encoding OpenSC's itacns driver decodes: `00` always, `FF` never, anything above `1F` a
/// condition it does not model (here: the personalization key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Always,
    /// After EXTERNAL AUTHENTICATE with the personalization key.
    Personalization,
    Never,
}

impl Access {
    fn byte(self) -> u8 {
        match self {
            Access::Always => 0x00,
            Access::Personalization => 0x81,
            Access::Never => 0xFF,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Df,
    /// A transparent EF of at most `capacity` bytes.
    Ef {
        capacity: u16,
    },
}

/// One file of the tree.
#[derive(Debug)]
pub struct FileSpec {
    pub fid: Fid,
    /// Index of the parent DF in [`LAYOUT`]; `None` for the MF.
    pub parent: Option<usize>,
    pub kind: Kind,
    /// The name the CNS specification gives it (for traces and `tessera card info`).
    pub name: &'static str,
}

/// The index of a file in [`LAYOUT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileIndex(pub usize);

const fn df(fid: Fid, parent: Option<usize>, name: &'static str) -> FileSpec {
    FileSpec {
        fid,
        parent,
        kind: Kind::Df,
        name,
    }
}

const fn ef(fid: Fid, parent: usize, capacity: u16, name: &'static str) -> FileSpec {
    FileSpec {
        fid,
        parent: Some(parent),
        kind: Kind::Ef { capacity },
        name,
    }
}

/// The tree. Indices are stable: they name the content records.
pub const LAYOUT: [FileSpec; 16] = [
    df(MF, None, "MF"),
    ef(0x3F01, 0, 1024, "EF_PublicKey (CNS0, RSAPublicKey DER)"),
    ef(0x3F02, 0, 32, "EF_CardStatus"),
    ef(0x2F02, 0, 64, "EF_GDO"),
    ef(0x0405, 0, 64, "EF_RootInstFile"),
    df(0x1000, Some(0), "DF_1000"),
    ef(0x1002, 5, 64, "EF_DatiProcessore"),
    ef(0x1003, 5, 16, "EF_IDCarta"),
    df(0x1100, Some(0), "DF_1100"),
    ef(0x1101, 8, 4096, "EF_Certificate (CNS0)"),
    ef(0x1102, 8, 400, "EF_DatiPersonali"),
    df(0x1200, Some(0), "DF_1200"),
    ef(0x1201, 11, 256, "EF_DatiPersonaliAggiuntivi"),
    ef(0x1202, 11, 16, "EF_MemoriaResidua"),
    ef(0x1203, 11, 256, "EF_ServiziInstallati"),
    ef(0x4142, 11, 256, "EF_INST_FILE"),
];

pub const MF_INDEX: FileIndex = FileIndex(0);
pub const PUBLIC_KEY: FileIndex = FileIndex(1);
pub const CARD_STATUS: FileIndex = FileIndex(2);
pub const ID_CARTA: FileIndex = FileIndex(7);
pub const CERTIFICATE: FileIndex = FileIndex(9);
pub const DATI_PERSONALI: FileIndex = FileIndex(10);

/// Persistent record of an EF's content.
const REC_CONTENT_BASE: u16 = 0x0100;
/// Transient records of the current DF and EF (one byte: the layout index).
const T_CURRENT_DF: u16 = 0x0001;
const T_CURRENT_EF: u16 = 0x0002;

impl FileIndex {
    pub fn spec(self) -> &'static FileSpec {
        &LAYOUT[self.0]
    }

    /// The persistent record holding the EF's content.
    pub(crate) fn record(self) -> u16 {
        // LAYOUT has 16 entries: the cast cannot truncate.
        REC_CONTENT_BASE + self.0 as u16
    }

    pub fn is_df(self) -> bool {
        self.spec().kind == Kind::Df
    }

    /// Who may read and who may update it. Every file of the CNS is public to read; only the
    /// bureau writes.
    pub fn read_access(self) -> Access {
        Access::Always
    }

    pub fn update_access(self) -> Access {
        Access::Personalization
    }

    pub fn capacity(self) -> usize {
        match self.spec().kind {
            Kind::Df => 0,
            Kind::Ef { capacity } => usize::from(capacity),
        }
    }
}

/// The children of a DF.
fn children(parent: FileIndex) -> impl Iterator<Item = FileIndex> {
    (0..LAYOUT.len())
        .filter(move |&i| LAYOUT[i].parent == Some(parent.0))
        .map(FileIndex)
}

fn child(parent: FileIndex, fid: Fid) -> Option<FileIndex> {
    children(parent).find(|c| c.spec().fid == fid)
}

/// What SELECT names, after parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectTarget<'a> {
    /// P1 `00`: the MF (no data or `3F00`), or a file by identifier near the current DF.
    FileId(Option<Fid>),
    /// P1 `01`: a DF under the current DF.
    ChildDf(Fid),
    /// P1 `02`: an EF under the current DF.
    ChildEf(Fid),
    /// P1 `03`: the parent of the current DF.
    Parent,
    /// P1 `08`: a path from the MF (FIDs, without `3F00`).
    PathFromMf(&'a [u8]),
    /// P1 `09`: a path from the current DF.
    PathFromCurrent(&'a [u8]),
}

/// The current DF (the MF after power-up) and EF.
pub fn current_df(ctx: &mut Context<'_>) -> FileIndex {
    ctx.transient()
        .get(T_CURRENT_DF)
        .and_then(|b| b.first().copied())
        .map(usize::from)
        .filter(|&i| i < LAYOUT.len() && LAYOUT[i].kind == Kind::Df)
        .map_or(MF_INDEX, FileIndex)
}

pub fn current_ef(ctx: &mut Context<'_>) -> Option<FileIndex> {
    ctx.transient()
        .get(T_CURRENT_EF)
        .and_then(|b| b.first().copied())
        .map(usize::from)
        .filter(|&i| i < LAYOUT.len() && LAYOUT[i].kind != Kind::Df)
        .map(FileIndex)
}

/// Finds the file SELECT names, from the current DF.
pub fn resolve(current: FileIndex, target: &SelectTarget<'_>) -> Result<FileIndex, CardError> {
    let found = match *target {
        SelectTarget::FileId(None) | SelectTarget::FileId(Some(MF)) => Some(MF_INDEX),
        SelectTarget::FileId(Some(fid)) => {
            // ISO 7816-4 8.4.1: a child of the current DF, the current DF itself, or a sibling.
            child(current, fid)
                .or((current.spec().fid == fid).then_some(current))
                .or_else(|| current.spec().parent.and_then(|p| child(FileIndex(p), fid)))
        }
        SelectTarget::ChildDf(fid) => child(current, fid).filter(|f| f.is_df()),
        SelectTarget::ChildEf(fid) => child(current, fid).filter(|f| !f.is_df()),
        SelectTarget::Parent => current.spec().parent.map(FileIndex),
        SelectTarget::PathFromMf(path) => walk(MF_INDEX, path)?,
        SelectTarget::PathFromCurrent(path) => walk(current, path)?,
    };
    found.ok_or(CardError::NotFound)
}

/// Follows a path of FIDs down from `from`; every step but the last must be a DF.
fn walk(from: FileIndex, path: &[u8]) -> Result<Option<FileIndex>, CardError> {
    if path.is_empty() || !path.len().is_multiple_of(2) {
        return Err(CardError::InvalidData);
    }
    let mut at = from;
    for pair in path.chunks_exact(2) {
        if !at.is_df() {
            return Ok(None);
        }
        match child(at, u16::from_be_bytes([pair[0], pair[1]])) {
            Some(next) => at = next,
            None => return Ok(None),
        }
    }
    Ok(Some(at))
}

/// Makes `file` the current file: a DF becomes the current DF; an EF the current EF, its parent the
/// current DF.
pub fn make_current(ctx: &mut Context<'_>, file: FileIndex) {
    // LAYOUT has 16 entries: every index fits a byte.
    let byte = |i: usize| [i as u8];
    if file.is_df() {
        ctx.transient()
            .set(T_CURRENT_DF, &byte(file.0), Lifetime::ClearOnReset);
        ctx.transient().clear(T_CURRENT_EF);
    } else {
        let parent = file.spec().parent.unwrap_or(0);
        ctx.transient()
            .set(T_CURRENT_DF, &byte(parent), Lifetime::ClearOnReset);
        ctx.transient()
            .set(T_CURRENT_EF, &byte(file.0), Lifetime::ClearOnReset);
    }
}

/// An EF's length, without copying it.
pub fn content_len(ctx: &mut Context<'_>, file: FileIndex) -> usize {
    ctx.store().get(file.record()).map_or(0, <[u8]>::len)
}

/// An EF's content (empty until personalization writes it).
pub fn content(ctx: &mut Context<'_>, file: FileIndex) -> Vec<u8> {
    ctx.store()
        .get(file.record())
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// Replaces an EF's content.
pub fn set_content(ctx: &mut Context<'_>, file: FileIndex, bytes: &[u8]) -> Result<(), CardError> {
    if bytes.len() > file.capacity() {
        return Err(CardError::NotEnoughMemory);
    }
    ctx.store().put(file.record(), bytes)?;
    Ok(())
}

/// Writes `data` at `offset`: the EF grows up to its capacity (`6A 84` past it); an offset past
/// the end of the content is `6B 00`.
pub fn update(
    ctx: &mut Context<'_>,
    file: FileIndex,
    offset: usize,
    data: &[u8],
) -> Result<(), CardError> {
    let mut bytes = content(ctx, file);
    if offset > bytes.len() {
        return Err(CardError::WrongP1P2);
    }
    let end = offset + data.len();
    if end > file.capacity() {
        return Err(CardError::NotEnoughMemory);
    }
    if end > bytes.len() {
        bytes.resize(end, 0);
    }
    bytes[offset..end].copy_from_slice(data);
    set_content(ctx, file, &bytes)
}

/// FCP tags (ISO 7816-4 table 12).
mod tag {
    pub const FCP: u32 = 0x62;
    pub const SIZE: u32 = 0x80;
    pub const DESCRIPTOR: u32 = 0x82;
    pub const FID: u32 = 0x83;
    pub const SECURITY_ATTRIBUTES: u32 = 0x86;
    pub const LIFE_CYCLE: u32 = 0x8A;
}
/// File descriptor bytes: a DF, a transparent working EF.
const DESCRIPTOR_DF: u8 = 0x38;
const DESCRIPTOR_TRANSPARENT_EF: u8 = 0x01;
/// Life cycle status `05`: operational, activated.
const LIFE_CYCLE_ACTIVATED: u8 = 0x05;

/// The FCP template SELECT answers: descriptor, FID, size (EFs), security attributes, life cycle.
///
/// The size is the EF's content length: OpenSC reads exactly that many bytes. Security attributes
/// are nine access bytes in the order the CNS defines (EF: read, update, write, invalidate,
/// rehabilitate, erase, admin, increase, decrease; DF: life cycle, update, append, invalidate,
/// rehabilitate, delete, admin, create, reserved).
pub fn fcp(ctx: &mut Context<'_>, file: FileIndex) -> Vec<u8> {
    let spec = file.spec();
    let mut inner = Vec::with_capacity(32);
    let personalization = Access::Personalization.byte();
    let never = Access::Never.byte();
    match spec.kind {
        Kind::Df => {
            tlv::write(&mut inner, tag::DESCRIPTOR, &[DESCRIPTOR_DF]);
            tlv::write(&mut inner, tag::FID, &spec.fid.to_be_bytes());
            tlv::write(
                &mut inner,
                tag::SECURITY_ATTRIBUTES,
                &[
                    never,
                    personalization,
                    personalization,
                    never,
                    never,
                    never,
                    personalization,
                    personalization,
                    never,
                ],
            );
        }
        Kind::Ef { .. } => {
            // Capacities are at most 4096: two bytes, and a positive INTEGER as OpenSC decodes it.
            let size = content_len(ctx, file) as u16;
            tlv::write(&mut inner, tag::DESCRIPTOR, &[DESCRIPTOR_TRANSPARENT_EF]);
            tlv::write(&mut inner, tag::FID, &spec.fid.to_be_bytes());
            tlv::write(&mut inner, tag::SIZE, &size.to_be_bytes());
            tlv::write(
                &mut inner,
                tag::SECURITY_ATTRIBUTES,
                &[
                    file.read_access().byte(),
                    file.update_access().byte(),
                    file.update_access().byte(),
                    never,
                    never,
                    never,
                    personalization,
                    never,
                    never,
                ],
            );
        }
    }
    tlv::write(&mut inner, tag::LIFE_CYCLE, &[LIFE_CYCLE_ACTIVATED]);
    tlv::encode(tag::FCP, &inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parent_is_a_df_listed_before_its_children_and_fids_are_unique_per_df() {
        for (i, spec) in LAYOUT.iter().enumerate() {
            if let Some(p) = spec.parent {
                assert!(p < i, "{}", spec.name);
                assert_eq!(LAYOUT[p].kind, Kind::Df, "{}", spec.name);
            }
            let siblings = LAYOUT
                .iter()
                .filter(|s| s.parent == spec.parent && s.fid == spec.fid)
                .count();
            assert_eq!(siblings, 1, "{}", spec.name);
        }
        assert_eq!(ID_CARTA.spec().fid, 0x1003);
        assert_eq!(CERTIFICATE.spec().fid, 0x1101);
        assert_eq!(DATI_PERSONALI.spec().fid, 0x1102);
        assert_eq!(PUBLIC_KEY.spec().fid, 0x3F01);
        assert_eq!(CARD_STATUS.spec().fid, 0x3F02);
    }

    #[test]
    fn selects_resolve_as_iso_7816_4_says() {
        let df_1100 = FileIndex(8);
        let path = |p: &'static [u8]| SelectTarget::PathFromMf(p);
        assert_eq!(
            resolve(MF_INDEX, &path(&[0x11, 0x00, 0x11, 0x01])).ok(),
            Some(CERTIFICATE)
        );
        assert_eq!(
            resolve(MF_INDEX, &path(&[0x10, 0x00, 0x10, 0x03])).ok(),
            Some(ID_CARTA)
        );
        assert_eq!(
            resolve(df_1100, &SelectTarget::FileId(Some(0x1102))).ok(),
            Some(DATI_PERSONALI)
        );
        // A sibling DF by FID, the parent, the MF.
        assert_eq!(
            resolve(df_1100, &SelectTarget::FileId(Some(0x1000))).ok(),
            Some(FileIndex(5))
        );
        assert_eq!(resolve(df_1100, &SelectTarget::Parent).ok(), Some(MF_INDEX));
        assert_eq!(
            resolve(df_1100, &SelectTarget::FileId(None)).ok(),
            Some(MF_INDEX)
        );
        assert!(matches!(
            resolve(MF_INDEX, &SelectTarget::Parent),
            Err(CardError::NotFound)
        ));
        assert!(matches!(
            resolve(MF_INDEX, &SelectTarget::ChildEf(0x1000)),
            Err(CardError::NotFound)
        ));
        assert!(matches!(
            resolve(MF_INDEX, &path(&[0x11, 0x01])),
            Err(CardError::NotFound)
        ));
        // A path through an EF, an odd path.
        assert!(matches!(
            resolve(MF_INDEX, &path(&[0x3F, 0x01, 0x11, 0x01])),
            Err(CardError::NotFound)
        ));
        assert!(matches!(
            resolve(MF_INDEX, &path(&[0x11])),
            Err(CardError::InvalidData)
        ));
    }
}
