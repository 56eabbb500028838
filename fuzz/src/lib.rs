//! Helpers of the fuzz targets (one target per file under `fuzz_targets/`). The properties each target
//! checks live here, so the replay tests of the owning crates include the same files.

pub mod apdu_properties;
pub mod card_properties;
pub mod cns_properties;
pub mod corpus;
pub mod piv_model;
pub mod vpcd_properties;
pub mod xlsx_parts;
