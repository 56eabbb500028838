//! A staged world to log into, made with the bureau's own calls: a staging CA, a census personalized,
//! one entity's parcel delivered to its mayor (whose card is then active and whose second halves are
//! in the outbox) and one workstation certificate of that entity issued. `tessera demo`, the lab's
//! tests and the login bench all start from it.

use std::path::{Path, PathBuf};

use personalization::batch::{self, BatchError, BatchOptions};
use personalization::ca::StagingCa;
use personalization::issuer::Issuer;
use personalization::lifecycle::{self, Batch, LifecycleError, Mailer};
use personalization::workstation;

/// The sample census's entity the demo and the tests log into, its mayor and one of its ALS.
pub const SAMPLE_ENTITY: &str = "058040";
pub const SAMPLE_MAYOR: &str = "FRRLSN71E09D773A";
pub const SAMPLE_ALS: &str = "RCCCHR84B67H501N";

/// What [`stage`] made.
#[derive(Debug)]
pub struct Staged {
    pub ca_dir: PathBuf,
    pub batch_dir: PathBuf,
    /// Cards personalized.
    pub personalized: usize,
    /// Card numbers of the delivered parcel.
    pub delivered: Vec<String>,
    /// The issued workstation certificate's name (`<ISTAT>-PC-0001`).
    pub workstation: String,
}

/// Makes the CA in `ca_dir` and the batch in `batch_dir` (both new) from `census`, delivers
/// `entity`'s parcel to `mayor`, and issues a workstation certificate of `entity` (the census's own
/// workstation request, or a new one).
pub fn stage(
    census: &Path,
    ca_dir: &Path,
    batch_dir: &Path,
    options: &BatchOptions,
    entity: &str,
    mayor: &str,
) -> Result<Staged, LifecycleError> {
    StagingCa::init(ca_dir, options.now).map_err(BatchError::from)?;
    let summary = batch::personalize(census, ca_dir, batch_dir, options, &mut |_, _, _| {})?;
    let mut batch = Batch::open(batch_dir, options.master_key.as_deref(), options.now)?;
    let (delivered, _) = batch.deliver(entity, mayor, &Mailer::for_batch(batch_dir, None))?;
    let now = lifecycle::unix(options.now);
    let workstation = match workstation::list(&batch.registry, Some(entity), now)?
        .into_iter()
        .find(|w| w.kind == "workstation")
    {
        Some(row) => row.name,
        None => workstation::request(&mut batch.registry, entity, false, now)?,
    };
    workstation::issue_requested(
        &mut batch.registry,
        &StagingCa::open(ca_dir).map_err(BatchError::from)?,
        &mut Issuer::open(ca_dir)?,
        &batch.master,
        options.now,
    )?;
    Ok(Staged {
        ca_dir: ca_dir.to_path_buf(),
        batch_dir: batch_dir.to_path_buf(),
        personalized: summary.personalized,
        delivered,
        workstation,
    })
}
