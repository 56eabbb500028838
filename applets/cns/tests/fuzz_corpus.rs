//! Replays the `cns_session` fuzz inputs (`fuzz/seeds/cns_session/`, hand-made, and
//! `fuzz/corpus/cns_session/`, a minimized campaign corpus) through the property the target checks
//! (`fuzz/src/cns_properties.rs`).
#![allow(clippy::unwrap_used)]

#[path = "../../../fuzz/src/cns_properties.rs"]
mod cns_properties;
#[path = "../../../fuzz/src/corpus.rs"]
mod corpus;

use std::path::Path;

#[test]
fn the_cns_session_corpus_replays() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let replayed = corpus::replay(&fuzz, "cns_session", cns_properties::cns_session);
    assert!(replayed >= 6, "the seeds are there");
}
