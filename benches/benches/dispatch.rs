//! In-process APDU dispatch: parse, route to the applet, answer — and the cost of durability.
//!
//! `cargo bench -p benches --bench dispatch`

use std::hint::black_box;

use apdu::{Command, Response};
use benches::{demo_card, INCREMENT, READ_COUNTER};
use card_os::Durability;
use criterion::{criterion_group, criterion_main, Criterion};

fn dispatch(c: &mut Criterion) {
    let mut group = c.benchmark_group("dispatch");
    // The floor: decoding the command and encoding a response, with no card behind it.
    group.bench_function("codec only (floor)", |b| {
        b.iter(|| {
            let command = Command::from_bytes(black_box(READ_COUNTER)).ok();
            let response = Response::new(vec![0, 0, 0, 1], apdu::StatusWord::SUCCESS);
            black_box((command, response.to_bytes()))
        })
    });
    let mut card = demo_card(None);
    group.bench_function("read counter, in memory", |b| {
        b.iter(|| black_box(card.transmit(black_box(READ_COUNTER))))
    });
    group.bench_function("increment, in memory", |b| {
        b.iter(|| black_box(card.transmit(black_box(INCREMENT))))
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let relaxed_path = dir.path().join("relaxed.img");
    let mut relaxed = demo_card(Some((&relaxed_path, Durability::Relaxed)));
    group.bench_function("increment, file without fsync", |b| {
        b.iter(|| black_box(relaxed.transmit(black_box(INCREMENT))))
    });
    let full_path = dir.path().join("full.img");
    let mut full = demo_card(Some((&full_path, Durability::Full)));
    group.sample_size(20);
    group.bench_function("increment, file with fsync (default)", |b| {
        b.iter(|| black_box(full.transmit(black_box(INCREMENT))))
    });
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
