#![doc = include_str!("../README.md")]

mod commands;
mod keys;
mod mgmt;
mod objects;
mod params;
mod personalize;
mod pin;
mod state;
mod yubico;

use card_os::apdu::Command;
use card_os::{Aid, Applet, CardError, Context, Reply};
use piv_types::{ins, p};

use commands::PivCommand;

pub use objects::MAX_OBJECT_LEN;
pub use params::{InstallParams, ParamsError, DEFAULT_RETRIES};
pub use piv_types::aid::PIV as PIV_AID;
pub use piv_types::{
    KeySlot, ManagementAlgorithm, PinPolicy, TouchPolicy, DEFAULT_MANAGEMENT_KEY, DEFAULT_PIN,
    DEFAULT_PUK,
};
pub use yubico::attest::ATTESTATION_SUBJECT;
pub use yubico::VERSION;

/// The SELECT answer: application property template (`61`) with the PIX (`4F`) and the coexistent tag
/// allocation authority (`79 { 4F RID }`). No secure-messaging algorithms are advertised.
pub const SELECT_RESPONSE: &[u8] = &[
    0x61, 0x11, 0x4F, 0x06, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x79, 0x07, 0x4F, 0x05, 0xA0, 0x00,
    0x00, 0x03, 0x08,
];

pub fn aid() -> Aid {
    // PIV_AID is 11 bytes: always a valid AID.
    Aid::new(PIV_AID).unwrap_or_else(|| unreachable!())
}

pub fn factory() -> Box<dyn Applet> {
    Box::new(PivApplet)
}

/// PIV commands are all in the interindustry class (channel bits stripped by the OS).
const CLA_ISO: u8 = 0x00;

/// The PIV applet. Stateless: everything lives in the card's store and transient memory.
pub struct PivApplet;

impl Applet for PivApplet {
    fn install(&mut self, ctx: &mut Context<'_>, params: &[u8]) -> Result<(), CardError> {
        let params = InstallParams::from_bytes(params).map_err(|error| {
            tracing::error!(%error, "PIV installation parameters rejected");
            CardError::InvalidData
        })?;
        let serial = match params.serial {
            0 => {
                let mut bytes = [0u8; 4];
                ctx.crypto().fill_random(&mut bytes)?;
                // A positive, non-zero 31-bit number, like YubiKey serials.
                (u32::from_be_bytes(bytes) & 0x7FFF_FFFF).max(1)
            }
            serial => serial,
        };
        ctx.store().put(state::REC_SERIAL, &serial.to_be_bytes())?;
        personalize::personalize(ctx, &params)?;
        yubico::attest::plant_attestation_seed(ctx)
    }

    fn select(&mut self, _ctx: &mut Context<'_>, reply: &mut Reply) -> Result<(), CardError> {
        // Security state (PIN verified, management key) survives re-SELECT: only reset clears it.
        reply.push(SELECT_RESPONSE)
    }

    fn is_sensitive(&self, command: &Command) -> bool {
        match command.ins {
            ins::VERIFY
            | ins::CHANGE_REFERENCE
            | ins::RESET_RETRY_COUNTER
            | ins::SET_MANAGEMENT_KEY
            | ins::IMPORT_KEY => true,
            ins::GENERAL_AUTHENTICATE => command.p2 == p::MANAGEMENT_KEY,
            _ => false,
        }
    }

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        command: &Command,
        reply: &mut Reply,
    ) -> Result<(), CardError> {
        if command.cla != CLA_ISO {
            return Err(CardError::ClaNotSupported);
        }
        let command = PivCommand::parse(command)?;
        if command.uses_attestation_identity() {
            yubico::attest::ensure_attestation_identity(ctx)?;
        }
        match command {
            PivCommand::Verify { reference, action } => pin::verify(ctx, reference, action),
            PivCommand::ChangeReference {
                reference,
                old,
                new,
            } => pin::change(ctx, reference, &old, &new),
            PivCommand::ResetRetryCounter { puk, new_pin } => pin::unblock(ctx, &puk, &new_pin),
            PivCommand::GetData(object) => objects::get_data(ctx, object, reply),
            PivCommand::PutData { object, value } => {
                objects::put_data(ctx, object, value.as_deref())
            }
            PivCommand::Generate {
                slot,
                algorithm,
                pin_policy,
                touch_policy,
            } => keys::generate(ctx, slot, algorithm, pin_policy, touch_policy, reply),
            PivCommand::MgmtAuth { alg, step } => mgmt::authenticate(ctx, alg, step, reply),
            PivCommand::SlotAuth { slot, alg, op } => keys::authenticate(ctx, slot, alg, op, reply),
            PivCommand::GetVersion => yubico::version(reply),
            PivCommand::GetSerial => yubico::serial(ctx, reply),
            PivCommand::SetManagementKey {
                algorithm,
                key,
                touch_required,
            } => mgmt::set(ctx, algorithm, key.expose(), touch_required),
            PivCommand::Reset => yubico::reset(ctx),
            PivCommand::SetPinRetries { pin, puk } => yubico::set_pin_retries(ctx, pin, puk),
            PivCommand::Attest(slot) => yubico::attest_slot(ctx, slot, reply),
            PivCommand::GetMetadata(target) => yubico::metadata(ctx, target, reply),
            PivCommand::MoveKey { to, from } => keys::move_key(ctx, to, from),
            PivCommand::ImportKey {
                slot,
                algorithm,
                private,
                pin_policy,
                touch_policy,
            } => keys::import(ctx, slot, algorithm, &private, pin_policy, touch_policy),
        }
    }
}
