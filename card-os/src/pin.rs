//! The PIN object, after Java Card's `OwnerPIN`: a try limit, length bounds, a try counter that is spent
//! and made durable *before* the comparison and restored only on success, a validated flag in transient
//! memory, and a constant-time comparison.

use crate::applet::Context;
use crate::secret::ct_eq;
use crate::transient::Lifetime;
use crate::CardError;

/// Limits of a PIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinPolicy {
    /// Wrong tries before the PIN blocks (1..=15: hosts read only the low nibble of `63 Cx`).
    pub try_limit: u8,
    pub min_len: u8,
    pub max_len: u8,
}

/// The outcome of [`OwnerPin::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinCheck {
    Verified,
    /// Wrong value; this many tries remain (0: now blocked).
    Wrong {
        tries_left: u8,
    },
    /// The PIN was already blocked; nothing was compared.
    Blocked,
}

/// A PIN stored in one persistent record, with its validated flag in one transient record.
///
/// Record layout: `try_limit, tries_left, min_len, max_len, value…`.
#[derive(Debug, Clone, Copy)]
pub struct OwnerPin {
    record: u16,
    validated_flag: u16,
}

const HEADER: usize = 4;

struct PinRecord {
    try_limit: u8,
    tries_left: u8,
    min_len: u8,
    max_len: u8,
}

impl OwnerPin {
    /// `record` is the persistent record id; `validated_flag` the transient record id.
    pub const fn new(record: u16, validated_flag: u16) -> Self {
        Self {
            record,
            validated_flag,
        }
    }

    fn read(&self, ctx: &mut Context<'_>) -> Result<(PinRecord, Vec<u8>), CardError> {
        let store = ctx.store();
        let bytes = store.get(self.record).ok_or(CardError::ReferenceNotFound)?;
        if bytes.len() < HEADER {
            return Err(CardError::ReferenceNotFound);
        }
        let header = PinRecord {
            try_limit: bytes[0],
            tries_left: bytes[1],
            min_len: bytes[2],
            max_len: bytes[3],
        };
        Ok((header, bytes[HEADER..].to_vec()))
    }

    fn write(
        &self,
        ctx: &mut Context<'_>,
        header: &PinRecord,
        value: &[u8],
    ) -> Result<(), CardError> {
        let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(HEADER + value.len()));
        bytes.extend_from_slice(&[
            header.try_limit,
            header.tries_left,
            header.min_len,
            header.max_len,
        ]);
        bytes.extend_from_slice(value);
        ctx.store().put(self.record, &bytes)?;
        Ok(())
    }

    /// Creates (or replaces) the PIN with a full try counter.
    pub fn create(
        &self,
        ctx: &mut Context<'_>,
        policy: PinPolicy,
        value: &[u8],
    ) -> Result<(), CardError> {
        if policy.try_limit == 0 || policy.try_limit > 15 || policy.min_len > policy.max_len {
            return Err(CardError::InvalidData);
        }
        Self::check_len(&policy, value)?;
        let header = PinRecord {
            try_limit: policy.try_limit,
            tries_left: policy.try_limit,
            min_len: policy.min_len,
            max_len: policy.max_len,
        };
        self.write(ctx, &header, value)?;
        ctx.transient().clear(self.validated_flag);
        Ok(())
    }

    fn check_len(policy: &PinPolicy, value: &[u8]) -> Result<(), CardError> {
        if value.len() < usize::from(policy.min_len) || value.len() > usize::from(policy.max_len) {
            return Err(CardError::InvalidData);
        }
        Ok(())
    }

    pub fn policy(&self, ctx: &mut Context<'_>) -> Result<PinPolicy, CardError> {
        let (h, _) = self.read(ctx)?;
        Ok(PinPolicy {
            try_limit: h.try_limit,
            min_len: h.min_len,
            max_len: h.max_len,
        })
    }

    pub fn tries_left(&self, ctx: &mut Context<'_>) -> Result<u8, CardError> {
        Ok(self.read(ctx)?.0.tries_left)
    }

    pub fn is_blocked(&self, ctx: &mut Context<'_>) -> Result<bool, CardError> {
        Ok(self.tries_left(ctx)? == 0)
    }

    pub fn is_validated(&self, ctx: &mut Context<'_>) -> bool {
        ctx.transient().get(self.validated_flag).is_some()
    }

    /// Forgets a successful verification (log out).
    pub fn log_out(&self, ctx: &mut Context<'_>) {
        ctx.transient().clear(self.validated_flag);
    }

    /// Compares `candidate` with the PIN, spending a try first.
    ///
    /// Refused (`69 85`) inside a transaction: the spent try must commit on its own, or a power cut
    /// would roll it back together with the transaction and give a free try.
    pub fn check(&self, ctx: &mut Context<'_>, candidate: &[u8]) -> Result<PinCheck, CardError> {
        if ctx.store().in_transaction() {
            return Err(CardError::ConditionsNotSatisfied);
        }
        let (mut header, value) = self.read(ctx)?;
        let value = zeroize::Zeroizing::new(value);
        ctx.transient().clear(self.validated_flag);
        if header.tries_left == 0 {
            return Ok(PinCheck::Blocked);
        }
        // INVARIANT: decrement first — the try is spent and durable before the comparison, so cutting
        // power during or after the comparison cannot give a free try.
        header.tries_left -= 1;
        self.write(ctx, &header, &value)?;
        ctx.make_durable()?;
        if !ct_eq(candidate, &value) {
            return Ok(PinCheck::Wrong {
                tries_left: header.tries_left,
            });
        }
        // INVARIANT: the counter goes back up only on success.
        header.tries_left = header.try_limit;
        self.write(ctx, &header, &value)?;
        ctx.transient()
            .set(self.validated_flag, &[1], Lifetime::ClearOnReset);
        Ok(PinCheck::Verified)
    }

    /// Gives the PIN a full try counter again and keeps its value (Java Card's `resetAndUnblock`):
    /// an unblock that does not change the PIN. The caller must have authorized this.
    pub fn reset_tries(&self, ctx: &mut Context<'_>) -> Result<(), CardError> {
        let (mut header, value) = self.read(ctx)?;
        let value = zeroize::Zeroizing::new(value);
        header.tries_left = header.try_limit;
        self.write(ctx, &header, &value)
    }

    /// Sets a new value and a full try counter. The caller must have authorized this.
    pub fn update(&self, ctx: &mut Context<'_>, new_value: &[u8]) -> Result<(), CardError> {
        let (mut header, _) = self.read(ctx)?;
        Self::check_len(
            &PinPolicy {
                try_limit: header.try_limit,
                min_len: header.min_len,
                max_len: header.max_len,
            },
            new_value,
        )?;
        header.tries_left = header.try_limit;
        self.write(ctx, &header, new_value)
    }
}
