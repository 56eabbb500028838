//! Helpers of the fuzz targets (one target per file under `fuzz_targets/`).

pub mod xlsx_parts;
