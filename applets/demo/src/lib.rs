//! The demonstration applet: a persistent counter, transactional multi-record writes, blobs (to fill
//! memory), transient values, an echo (for chaining and long responses), randomness, the clock and a PIN.
//! Written only against card-os's public applet API.
//!
//! | CLA INS | command | answer |
//! |---|---|---|
//! | `80 10` | increment the counter (one atomic write) | counter, 4 bytes BE |
//! | `80 12` | read the counter | counter |
//! | `80 20 n 00 Lc v` | write `v` to records 1..=n (n ≤ 8) and bump the generation, in one transaction | generation |
//! | `80 22 i 00` | read record i | value, or `6A 83` |
//! | `80 30 P1 P2 [data]` | echo the data; with P1P2 ≠ 0, answer P1P2 pattern bytes instead | data |
//! | `80 50 s 00 Lc v` | store blob `v` in slot s (`6A 84` when memory is full) | free bytes, 4 bytes BE |
//! | `80 52 s 00` | delete blob s | |
//! | `80 60 k 00 Lc v` | transient value, k = 0 clear-on-reset, 1 clear-on-deselect | |
//! | `80 62 k 00` | read transient value k | value, or `6A 88` |
//! | `80 70 n 00` | n random bytes (16 if n = 0) | bytes |
//! | `80 72 00 00` | the card's clock | Unix seconds, 8 bytes BE |
//! | `00 30`, `00 50` | echo and store blob in the ISO class, so they can be sent as command chains | |
//! | `00 20 00 81 [Lc pin]` | verify the PIN; without data, ask its status | `90 00`, `63 Cx`, `69 83` |
//! | `00 24 00 81 Lc new` | change the PIN (after verification) | |

use card_os::apdu::Command;
use card_os::{
    Aid, Applet, CardError, Context, Lifetime, OwnerPin, PinCheck, PinPolicy, Reply, Requirement,
};

/// `F0 "tessera" 01`.
pub const DEMO_AID: &[u8] = &[0xF0, 0x74, 0x65, 0x73, 0x73, 0x65, 0x72, 0x61, 0x01];

/// The PIN a demo card gets when installed without parameters.
pub const DEFAULT_DEMO_PIN: &[u8] = b"1234";

const COUNTER: u16 = 1;
const GENERATION: u16 = 2;
const PIN_RECORD: u16 = 3;
const RECORD_BASE: u16 = 0x100;
const BLOB_BASE: u16 = 0x200;
const PIN_VALIDATED: u16 = 1;
const TRANSIENT_BASE: u16 = 0x10;

const PIN: OwnerPin = OwnerPin::new(PIN_RECORD, PIN_VALIDATED);

/// The interindustry class, where VERIFY, CHANGE REFERENCE DATA and command chaining are defined.
const CLA_ISO: u8 = 0x00;
/// The proprietary class of the demo commands.
const CLA_DEMO: u8 = 0x80;
/// CLA bit 8: set in every proprietary class.
const PROPRIETARY_CLASS_BIT: u8 = 0x80;
/// The demo PIN's reference (P2 of VERIFY and CHANGE REFERENCE DATA).
const PIN_REFERENCE: u8 = 0x81;
/// FCI template and its DF name.
const TAG_FCI: u8 = 0x6F;
const TAG_DF_NAME: u8 = 0x84;

/// Instruction bytes, one table (see the module docs for what each does).
mod ins {
    pub const VERIFY: u8 = 0x20;
    pub const CHANGE_REFERENCE: u8 = 0x24;
    pub const INCREMENT: u8 = 0x10;
    pub const READ_COUNTER: u8 = 0x12;
    pub const WRITE_RECORDS: u8 = 0x20;
    pub const READ_RECORD: u8 = 0x22;
    pub const ECHO: u8 = 0x30;
    pub const STORE_BLOB: u8 = 0x50;
    pub const DELETE_BLOB: u8 = 0x52;
    pub const SET_TRANSIENT: u8 = 0x60;
    pub const GET_TRANSIENT: u8 = 0x62;
    pub const RANDOM: u8 = 0x70;
    pub const CLOCK: u8 = 0x72;
}

pub fn aid() -> Aid {
    // DEMO_AID is 9 bytes: always a valid AID.
    Aid::new(DEMO_AID).unwrap_or_else(|| unreachable!())
}

pub fn factory() -> Box<dyn Applet> {
    Box::new(DemoApplet)
}

pub struct DemoApplet;

fn u32_record(ctx: &mut Context<'_>, id: u16) -> u32 {
    ctx.store()
        .get(id)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .unwrap_or(0)
}

fn no_data(command: &Command) -> Result<(), CardError> {
    if command.data.is_empty() {
        Ok(())
    } else {
        Err(CardError::WrongLength)
    }
}

impl Applet for DemoApplet {
    fn install(&mut self, ctx: &mut Context<'_>, params: &[u8]) -> Result<(), CardError> {
        let pin = if params.is_empty() {
            DEFAULT_DEMO_PIN
        } else {
            params
        };
        let policy = PinPolicy {
            try_limit: 3,
            min_len: 4,
            max_len: 8,
        };
        PIN.create(ctx, policy, pin)?;
        ctx.store().put(COUNTER, &0u32.to_be_bytes())?;
        Ok(())
    }

    fn select(&mut self, _ctx: &mut Context<'_>, reply: &mut Reply) -> Result<(), CardError> {
        // FCI: 6F { 84 AID }.
        let mut fci = vec![
            TAG_FCI,
            DEMO_AID.len() as u8 + 2,
            TAG_DF_NAME,
            DEMO_AID.len() as u8,
        ];
        fci.extend_from_slice(DEMO_AID);
        reply.push(&fci)
    }

    fn is_sensitive(&self, command: &Command) -> bool {
        command.cla & PROPRIETARY_CLASS_BIT == 0
            && matches!(command.ins, ins::VERIFY | ins::CHANGE_REFERENCE)
    }

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        command: &Command,
        reply: &mut Reply,
    ) -> Result<(), CardError> {
        match (command.cla, command.ins) {
            // Echo and blobs also answer in the ISO class, where command chaining is defined.
            (CLA_ISO, ins::ECHO | ins::STORE_BLOB) => self.process_proprietary(ctx, command, reply),
            (CLA_ISO, _) => self.process_iso(ctx, command, reply),
            (CLA_DEMO, _) => self.process_proprietary(ctx, command, reply),
            _ => Err(CardError::ClaNotSupported),
        }
    }
}

impl DemoApplet {
    fn process_iso(
        &mut self,
        ctx: &mut Context<'_>,
        command: &Command,
        _reply: &mut Reply,
    ) -> Result<(), CardError> {
        match command.ins {
            ins::VERIFY => {
                if command.p1 != 0 || command.p2 != PIN_REFERENCE {
                    return Err(CardError::IncorrectP1P2);
                }
                if command.data.is_empty() {
                    // Status query: never spends a try.
                    return match PIN.tries_left(ctx)? {
                        0 => Err(CardError::AuthenticationBlocked),
                        _ if PIN.is_validated(ctx) => Ok(()),
                        tries_left => Err(CardError::NotVerified { tries_left }),
                    };
                }
                match PIN.check(ctx, &command.data)? {
                    PinCheck::Verified => Ok(()),
                    PinCheck::Wrong { tries_left } => Err(CardError::WrongPin { tries_left }),
                    PinCheck::Blocked => Err(CardError::AuthenticationBlocked),
                }
            }
            ins::CHANGE_REFERENCE => {
                if command.p1 != 0 || command.p2 != PIN_REFERENCE {
                    return Err(CardError::IncorrectP1P2);
                }
                if !PIN.is_validated(ctx) {
                    return Err(CardError::SecurityStatusNotSatisfied(Requirement::Pin));
                }
                PIN.update(ctx, &command.data)
            }
            _ => Err(CardError::InsNotSupported),
        }
    }

    fn process_proprietary(
        &mut self,
        ctx: &mut Context<'_>,
        command: &Command,
        reply: &mut Reply,
    ) -> Result<(), CardError> {
        let (p1, p2) = (command.p1, command.p2);
        match command.ins {
            ins::INCREMENT | ins::READ_COUNTER => {
                no_data(command)?;
                let mut counter = u32_record(ctx, COUNTER);
                if command.ins == ins::INCREMENT {
                    counter = counter.wrapping_add(1);
                    ctx.store().put(COUNTER, &counter.to_be_bytes())?;
                }
                reply.push(&counter.to_be_bytes())
            }
            ins::WRITE_RECORDS => {
                if !(1..=8).contains(&p1) || p2 != 0 {
                    return Err(CardError::IncorrectP1P2);
                }
                let generation = u32_record(ctx, GENERATION).wrapping_add(1);
                let mut store = ctx.store();
                store.begin_transaction()?;
                for i in 1..=u16::from(p1) {
                    store.put(RECORD_BASE + i, &command.data)?;
                }
                store.put(GENERATION, &generation.to_be_bytes())?;
                store.commit_transaction()?;
                reply.push(&generation.to_be_bytes())
            }
            ins::READ_RECORD => {
                no_data(command)?;
                let value = ctx
                    .store()
                    .get(RECORD_BASE + u16::from(p1))
                    .map(<[u8]>::to_vec)
                    .ok_or(CardError::RecordNotFound)?;
                reply.push(&value)
            }
            ins::ECHO => {
                let wanted = usize::from(u16::from_be_bytes([p1, p2]));
                if wanted == 0 {
                    reply.push(&command.data)
                } else {
                    let pattern: Vec<u8> = (0..wanted).map(|i| i as u8).collect();
                    reply.push(&pattern)
                }
            }
            ins::STORE_BLOB => {
                ctx.store().put(BLOB_BASE + u16::from(p1), &command.data)?;
                let free = ctx.store().free() as u32;
                reply.push(&free.to_be_bytes())
            }
            ins::DELETE_BLOB => {
                no_data(command)?;
                ctx.store().remove(BLOB_BASE + u16::from(p1))?;
                Ok(())
            }
            ins::SET_TRANSIENT => {
                let lifetime = match p1 {
                    0 => Lifetime::ClearOnReset,
                    1 => Lifetime::ClearOnDeselect,
                    _ => return Err(CardError::IncorrectP1P2),
                };
                ctx.transient()
                    .set(TRANSIENT_BASE + u16::from(p1), &command.data, lifetime);
                Ok(())
            }
            ins::GET_TRANSIENT => {
                no_data(command)?;
                let value = ctx
                    .transient()
                    .get(TRANSIENT_BASE + u16::from(p1))
                    .map(<[u8]>::to_vec)
                    .ok_or(CardError::ReferenceNotFound)?;
                reply.push(&value)
            }
            ins::RANDOM => {
                no_data(command)?;
                let n = if p1 == 0 { 16 } else { usize::from(p1) };
                let bytes = ctx.crypto().random_vec(n)?;
                reply.push(&bytes)
            }
            ins::CLOCK => {
                no_data(command)?;
                reply.push(&ctx.clock().unix_seconds().to_be_bytes())
            }
            _ => Err(CardError::InsNotSupported),
        }
    }
}
