//! An ECDSA P-256 signature through the whole in-process PIV path (APDU parsing, dispatch, TLV, key
//! load, signing, DER and TLV encoding) against a bare `p256` prehash signature with the same key type
//! (the floor).
//!
//! `cargo bench -p benches --bench piv_sign`

use std::hint::black_box;

use benches::{piv_card_with_9e_key, piv_sign_9e_apdu};
use criterion::{criterion_group, criterion_main, Criterion};
use p256::ecdsa::signature::hazmat::PrehashSigner;

fn piv_sign(c: &mut Criterion) {
    let mut group = c.benchmark_group("ecdsa-p256");
    let hash = [0x5Au8; 32];
    let key = p256::ecdsa::SigningKey::from_slice(&[0x11; 32]).expect("valid scalar");
    group.bench_function("bare p256 sign_prehash (floor)", |b| {
        b.iter(|| {
            let signature: p256::ecdsa::DerSignature =
                key.sign_prehash(black_box(&hash)).expect("sign");
            black_box(signature)
        })
    });
    let pair = card_os::crypto::Crypto::p256_from_private(&[0x11; 32]).expect("valid scalar");
    group.bench_function(
        "card-os hazmat::sign_prehash (the primitive the card calls)",
        |b| {
            b.iter(|| {
                black_box(card_os::crypto::hazmat::sign_prehash(
                    &pair,
                    black_box(&hash),
                ))
            })
        },
    );
    let (mut card, public) = piv_card_with_9e_key(None, false).expect("PIV card");
    let apdu = piv_sign_9e_apdu(&hash);
    // Measure a path that works: the card's answer must be a signature that verifies.
    let answer = card.transmit(&apdu).expect("answer");
    assert_eq!(&answer[answer.len() - 2..], [0x90, 0x00]);
    let der = &answer[4..answer.len() - 2];
    let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public).expect("point");
    let signature = p256::ecdsa::DerSignature::from_bytes(der).expect("DER");
    use p256::ecdsa::signature::hazmat::PrehashVerifier;
    verifying
        .verify_prehash(&hash, &signature)
        .expect("the card's signature verifies");
    group.bench_function("PIV GENERAL AUTHENTICATE, in-process", |b| {
        b.iter(|| black_box(card.transmit(black_box(&apdu)).expect("answer")))
    });
    group.finish();
}

criterion_group!(benches, piv_sign);
criterion_main!(benches);
