//! The management key (`9B`): mutual and external authentication through GENERAL AUTHENTICATE, SET
//! MANAGEMENT KEY, and its metadata. The record (`REC_MGMT`) is `algorithm, touch policy, key…`.
//!
//! Challenges live in transient memory (`TR_CHALLENGE`: `kind, algorithm, expected…`) and are consumed by
//! the answer, right or wrong; responses are compared in constant time.

use card_os::apdu::tlv;
use card_os::crypto::Crypto;
use card_os::{ct_eq, CardError, Context, Lifetime, Reply};
use zeroize::Zeroizing;

use crate::commands::AuthRequest;
use crate::keys::TouchPolicy;
use crate::params::{ManagementAlgorithm, DEFAULT_MANAGEMENT_KEY};
use crate::state::{self, DefaultFlag, REC_MGMT, TR_CHALLENGE, TR_MGMT_AUTHENTICATED};

const WITNESS: u8 = 1;
const CHALLENGE: u8 = 2;

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
pub fn store(
    ctx: &mut Context<'_>,
    algorithm: ManagementAlgorithm,
    key: &[u8],
    touch: TouchPolicy,
) -> Result<(), CardError> {
    if key.len() != algorithm.key_len() {
        return Err(CardError::InvalidData);
    }
    let mut record = Zeroizing::new(vec![algorithm.id(), touch as u8]);
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
        key.algorithm.cipher(),
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

/// GENERAL AUTHENTICATE with `9B`.
pub fn authenticate(
    ctx: &mut Context<'_>,
    algorithm: u8,
    request: AuthRequest,
    reply: &mut Reply,
) -> Result<(), CardError> {
    let key = load(ctx)?;
    // SP 800-78 gives 3-key Triple DES two identifiers, `03` and `00`; OpenSC asks for a challenge
    // (C_GenerateRandom) with `00`.
    let algorithm = match (algorithm, key.algorithm) {
        (0x00, ManagementAlgorithm::TripleDes) => ManagementAlgorithm::TripleDes.id(),
        (other, _) => other,
    };
    if algorithm != key.algorithm.id() {
        // The P1 algorithm must be the stored key's.
        return Err(CardError::IncorrectP1P2);
    }
    let block = key.algorithm.block_len();
    match request {
        AuthRequest::WitnessRequest => {
            ctx.transient().clear(TR_MGMT_AUTHENTICATED);
            let witness = Zeroizing::new(ctx.crypto().random_vec(block)?);
            let encrypted = encrypt(&key, &witness)?;
            remember(ctx, WITNESS, algorithm, &witness);
            reply.push(&tlv::encode(0x7Cu32, &tlv::encode(0x80u32, &encrypted)))
        }
        AuthRequest::MutualResponse { witness, challenge } => {
            let expected = take(ctx, WITNESS, algorithm);
            if witness.len() != block || challenge.len() != block {
                return Err(CardError::InvalidData);
            }
            let expected = expected.ok_or(CardError::SecurityStatusNotSatisfied)?;
            if !ct_eq(&witness, &expected) {
                return Err(CardError::SecurityStatusNotSatisfied);
            }
            state::set_mgmt_authenticated(ctx);
            let response = encrypt(&key, &challenge)?;
            reply.push(&tlv::encode(0x7Cu32, &tlv::encode(0x82u32, &response)))
        }
        AuthRequest::ChallengeRequest => {
            ctx.transient().clear(TR_MGMT_AUTHENTICATED);
            let challenge = ctx.crypto().random_vec(block)?;
            let expected = Zeroizing::new(encrypt(&key, &challenge)?);
            remember(ctx, CHALLENGE, algorithm, &expected);
            reply.push(&tlv::encode(0x7Cu32, &tlv::encode(0x81u32, &challenge)))
        }
        AuthRequest::ExternalResponse { response } => {
            let expected = take(ctx, CHALLENGE, algorithm);
            if response.len() != block {
                return Err(CardError::InvalidData);
            }
            let expected = expected.ok_or(CardError::SecurityStatusNotSatisfied)?;
            if !ct_eq(&response, &expected) {
                return Err(CardError::SecurityStatusNotSatisfied);
            }
            state::set_mgmt_authenticated(ctx);
            Ok(())
        }
        AuthRequest::Sign { .. } | AuthRequest::Ecdh { .. } => Err(CardError::InvalidData),
    }
}

/// GET METADATA for `9B`: `01 alg`, `02 00 touch`, `05 is-default`.
pub fn metadata(ctx: &mut Context<'_>, reply: &mut Reply) -> Result<(), CardError> {
    let key = load(ctx)?;
    let is_default = u8::from(state::is_default(ctx, DefaultFlag::ManagementKey));
    reply.push(&[
        0x01,
        0x01,
        key.algorithm.id(),
        0x02,
        0x02,
        0x00,
        key.touch as u8,
        0x05,
        0x01,
        is_default,
    ])
}
