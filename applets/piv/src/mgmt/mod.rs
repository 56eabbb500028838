//! The management key (`9B`): mutual and external authentication through GENERAL AUTHENTICATE, SET
//! MANAGEMENT KEY, and its metadata. The record (`REC_MGMT`) is `algorithm, touch policy, key…`.
//!
//! Challenges live in transient memory (`TR_CHALLENGE`: `kind, algorithm, expected…`) and are consumed by
//! the answer, right or wrong; responses are compared in constant time.

use card_os::apdu::tlv;
use card_os::crypto::{BlockCipher, Crypto};
use card_os::{ct_eq, CardError, Context, Lifetime, Reply, Requirement};
use piv_types::{tag, ManagementAlgorithm, TouchPolicy, DEFAULT_MANAGEMENT_KEY};
use zeroize::Zeroizing;

use crate::commands::MgmtStep;
use crate::state::{self, DefaultFlag, REC_MGMT, TR_CHALLENGE, TR_MGMT_AUTHENTICATED};

const WITNESS: u8 = 1;
const CHALLENGE: u8 = 2;

/// The card's block cipher for a management-key algorithm.
pub const fn cipher(algorithm: ManagementAlgorithm) -> BlockCipher {
    match algorithm {
        ManagementAlgorithm::TripleDes => BlockCipher::TripleDes,
        ManagementAlgorithm::Aes128 => BlockCipher::Aes128,
        ManagementAlgorithm::Aes192 => BlockCipher::Aes192,
        ManagementAlgorithm::Aes256 => BlockCipher::Aes256,
    }
}

/// The stored management key.
pub struct ManagementKey {
    pub algorithm: ManagementAlgorithm,
    pub touch: TouchPolicy,
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ManagementKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementKey")
            .field("algorithm", &self.algorithm)
            .field("touch", &self.touch)
            .finish_non_exhaustive()
    }
}

pub fn load(ctx: &mut Context<'_>) -> Result<ManagementKey, CardError> {
    let bytes = Zeroizing::new(
        ctx.store()
            .get(REC_MGMT)
            .ok_or(CardError::ReferenceNotFound)?
            .to_vec(),
    );
    let [alg, touch, key @ ..] = bytes.as_slice() else {
        return Err(CardError::ReferenceNotFound);
    };
    let algorithm = ManagementAlgorithm::from_id(*alg).ok_or(CardError::ReferenceNotFound)?;
    Ok(ManagementKey {
        algorithm,
        touch: TouchPolicy::from_byte(*touch).ok_or(CardError::ReferenceNotFound)?,
        key: Zeroizing::new(key.to_vec()),
    })
}

/// Stores a new management key and whether it is the factory default; drops any authentication.
/// The key has the algorithm's length: SET MANAGEMENT KEY's parser and `InstallParams` check it.
pub fn store(
    ctx: &mut Context<'_>,
    algorithm: ManagementAlgorithm,
    key: &[u8],
    touch: TouchPolicy,
) -> Result<(), CardError> {
    let mut record = Zeroizing::new(vec![algorithm.id(), touch.byte()]);
    record.extend_from_slice(key);
    ctx.store().put(REC_MGMT, &record)?;
    state::set_default(
        ctx,
        DefaultFlag::ManagementKey,
        ct_eq(key, &DEFAULT_MANAGEMENT_KEY),
    )?;
    ctx.transient().clear(TR_CHALLENGE);
    Ok(())
}

/// SET MANAGEMENT KEY (YubiKey `FF`): needs the current key authenticated.
pub fn set(
    ctx: &mut Context<'_>,
    algorithm: ManagementAlgorithm,
    key: &[u8],
    touch_required: bool,
) -> Result<(), CardError> {
    state::require_mgmt(ctx)?;
    let touch = if touch_required {
        TouchPolicy::Always
    } else {
        TouchPolicy::Never
    };
    ctx.store().begin_transaction()?;
    store(ctx, algorithm, key, touch)?;
    ctx.store().commit_transaction()?;
    Ok(())
}

fn encrypt(key: &ManagementKey, data: &[u8]) -> Result<Vec<u8>, CardError> {
    Ok(Crypto::block_encrypt(
        cipher(key.algorithm),
        &key.key,
        data,
    )?)
}

fn remember(ctx: &mut Context<'_>, kind: u8, algorithm: u8, expected: &[u8]) {
    let mut value = Zeroizing::new(vec![kind, algorithm]);
    value.extend_from_slice(expected);
    ctx.transient()
        .set(TR_CHALLENGE, &value, Lifetime::ClearOnReset);
}

/// The pending challenge of this kind (consumed).
fn take(ctx: &mut Context<'_>, kind: u8, algorithm: u8) -> Option<Zeroizing<Vec<u8>>> {
    let pending = ctx
        .transient()
        .get(TR_CHALLENGE)
        .map(|v| Zeroizing::new(v.to_vec()));
    ctx.transient().clear(TR_CHALLENGE);
    let pending = pending?;
    match pending.as_slice() {
        [k, a, expected @ ..] if *k == kind && *a == algorithm => {
            Some(Zeroizing::new(expected.to_vec()))
        }
        _ => None,
    }
}

/// GENERAL AUTHENTICATE with `9B`. The step already has the algorithm's block lengths; here: the
/// algorithm must be the stored key's (`6A 86`), and an answer must match the pending witness or
/// challenge (`69 82`), which it consumes, right or wrong.
pub fn authenticate(
    ctx: &mut Context<'_>,
    algorithm: ManagementAlgorithm,
    step: MgmtStep,
    reply: &mut Reply,
) -> Result<(), CardError> {
    let key = load(ctx)?;
    if algorithm != key.algorithm {
        return Err(CardError::IncorrectP1P2);
    }
    let (block, id) = (algorithm.block_len(), algorithm.id());
    match step {
        MgmtStep::WitnessRequest => {
            ctx.transient().clear(TR_MGMT_AUTHENTICATED);
            let witness = Zeroizing::new(ctx.crypto().random_vec(block)?);
            let encrypted = encrypt(&key, &witness)?;
            remember(ctx, WITNESS, id, &witness);
            reply.push(&tlv::encode(
                tag::DYNAMIC_AUTH,
                &tlv::encode(tag::WITNESS, &encrypted),
            ))
        }
        MgmtStep::MutualResponse { witness, challenge } => {
            let expected = take(ctx, WITNESS, id).ok_or(CardError::SecurityStatusNotSatisfied(
                Requirement::PendingChallenge,
            ))?;
            if !ct_eq(&witness, &expected) {
                return Err(CardError::SecurityStatusNotSatisfied(
                    Requirement::CorrectCryptogram,
                ));
            }
            state::set_mgmt_authenticated(ctx);
            let response = encrypt(&key, &challenge)?;
            reply.push(&tlv::encode(
                tag::DYNAMIC_AUTH,
                &tlv::encode(tag::RESPONSE, &response),
            ))
        }
        MgmtStep::ChallengeRequest => {
            ctx.transient().clear(TR_MGMT_AUTHENTICATED);
            let challenge = ctx.crypto().random_vec(block)?;
            let expected = Zeroizing::new(encrypt(&key, &challenge)?);
            remember(ctx, CHALLENGE, id, &expected);
            reply.push(&tlv::encode(
                tag::DYNAMIC_AUTH,
                &tlv::encode(tag::CHALLENGE, &challenge),
            ))
        }
        MgmtStep::ExternalResponse { response } => {
            let expected = take(ctx, CHALLENGE, id).ok_or(
                CardError::SecurityStatusNotSatisfied(Requirement::PendingChallenge),
            )?;
            if !ct_eq(&response, &expected) {
                return Err(CardError::SecurityStatusNotSatisfied(
                    Requirement::CorrectCryptogram,
                ));
            }
            state::set_mgmt_authenticated(ctx);
            Ok(())
        }
    }
}

/// GET METADATA for `9B`: `01 alg`, `02 00 touch`, `05 is-default`.
pub fn metadata(ctx: &mut Context<'_>, reply: &mut Reply) -> Result<(), CardError> {
    let key = load(ctx)?;
    let is_default = u8::from(state::is_default(ctx, DefaultFlag::ManagementKey));
    let mut out = Vec::new();
    tlv::write(&mut out, tag::META_ALGORITHM, &[key.algorithm.id()]);
    // The management key has no PIN policy: `00`, then its touch policy.
    tlv::write(&mut out, tag::META_POLICY, &[0x00, key.touch.byte()]);
    tlv::write(&mut out, tag::META_IS_DEFAULT, &[is_default]);
    reply.push(&out)
}
