//! Reading a target's inputs for the replay tests (each includes this file with `#[path]`): the named
//! seeds (`fuzz/seeds/<target>/`) and the minimized corpus (`fuzz/corpus/<target>/`).

use std::path::Path;

/// Every file of `<fuzz>/<kind>/<target>/` (`kind`: `seeds` or `corpus`) as (file name, bytes),
/// sorted by name.
pub fn files(fuzz: &Path, kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz.join(kind).join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, bytes)
        })
        .collect();
    files.sort();
    files
}

/// Runs `property` on every seed and corpus input of `target`, naming the input that fails; returns
/// how many ran.
pub fn replay(fuzz: &Path, target: &str, property: fn(&[u8])) -> usize {
    let mut replayed = 0;
    for kind in ["seeds", "corpus"] {
        for (name, data) in files(fuzz, kind, target) {
            let outcome = std::panic::catch_unwind(|| property(&data));
            assert!(outcome.is_ok(), "{kind}/{target}/{name}");
            replayed += 1;
        }
    }
    replayed
}
