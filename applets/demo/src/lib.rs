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

use card_os::apdu::{Command, StatusWord};
use card_os::{Aid, Applet, CardError, Context, Lifetime, OwnerPin, PinCheck, PinPolicy, Reply};

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
        let mut fci = vec![0x6F, DEMO_AID.len() as u8 + 2, 0x84, DEMO_AID.len() as u8];
        fci.extend_from_slice(DEMO_AID);
        reply.push(&fci)
    }

    fn is_sensitive(&self, command: &Command) -> bool {
        command.cla & 0x80 == 0 && matches!(command.ins, 0x20 | 0x24)
    }

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        command: &Command,
        reply: &mut Reply,
    ) -> Result<(), CardError> {
        match (command.cla, command.ins) {
            // Echo and blobs also answer in the ISO class, where command chaining is defined.
            (0x00, 0x30 | 0x50) => self.process_proprietary(ctx, command, reply),
            (0x00, _) => self.process_iso(ctx, command, reply),
            (0x80, _) => self.process_proprietary(ctx, command, reply),
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
            0x20 => {
                if command.p1 != 0 || command.p2 != 0x81 {
                    return Err(CardError::IncorrectP1P2);
                }
                if command.data.is_empty() {
                    // Status query: never spends a try.
                    return match PIN.tries_left(ctx)? {
                        0 => Err(CardError::AuthenticationBlocked),
                        _ if PIN.is_validated(ctx) => Ok(()),
                        tries => Err(CardError::Status(StatusWord::remaining_retries(tries))),
                    };
                }
                match PIN.check(ctx, &command.data)? {
                    PinCheck::Verified => Ok(()),
                    PinCheck::Wrong { tries_left } => {
                        Err(CardError::Status(StatusWord::remaining_retries(tries_left)))
                    }
                    PinCheck::Blocked => Err(CardError::AuthenticationBlocked),
                }
            }
            0x24 => {
                if command.p1 != 0 || command.p2 != 0x81 {
                    return Err(CardError::IncorrectP1P2);
                }
                if !PIN.is_validated(ctx) {
                    return Err(CardError::SecurityStatusNotSatisfied);
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
            0x10 | 0x12 => {
                no_data(command)?;
                let mut counter = u32_record(ctx, COUNTER);
                if command.ins == 0x10 {
                    counter = counter.wrapping_add(1);
                    ctx.store().put(COUNTER, &counter.to_be_bytes())?;
                }
                reply.push(&counter.to_be_bytes())
            }
            0x20 => {
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
            0x22 => {
                no_data(command)?;
                let value = ctx
                    .store()
                    .get(RECORD_BASE + u16::from(p1))
                    .map(<[u8]>::to_vec)
                    .ok_or(CardError::Status(StatusWord::RECORD_NOT_FOUND))?;
                reply.push(&value)
            }
            0x30 => {
                let wanted = usize::from(u16::from_be_bytes([p1, p2]));
                if wanted == 0 {
                    reply.push(&command.data)
                } else {
                    let pattern: Vec<u8> = (0..wanted).map(|i| i as u8).collect();
                    reply.push(&pattern)
                }
            }
            0x50 => {
                ctx.store().put(BLOB_BASE + u16::from(p1), &command.data)?;
                let free = ctx.store().free() as u32;
                reply.push(&free.to_be_bytes())
            }
            0x52 => {
                no_data(command)?;
                ctx.store().remove(BLOB_BASE + u16::from(p1))?;
                Ok(())
            }
            0x60 => {
                let lifetime = match p1 {
                    0 => Lifetime::ClearOnReset,
                    1 => Lifetime::ClearOnDeselect,
                    _ => return Err(CardError::IncorrectP1P2),
                };
                ctx.transient()
                    .set(TRANSIENT_BASE + u16::from(p1), &command.data, lifetime);
                Ok(())
            }
            0x62 => {
                no_data(command)?;
                let value = ctx
                    .transient()
                    .get(TRANSIENT_BASE + u16::from(p1))
                    .map(<[u8]>::to_vec)
                    .ok_or(CardError::ReferenceNotFound)?;
                reply.push(&value)
            }
            0x70 => {
                no_data(command)?;
                let n = if p1 == 0 { 16 } else { usize::from(p1) };
                let bytes = ctx.crypto().random_vec(n)?;
                reply.push(&bytes)
            }
            0x72 => {
                no_data(command)?;
                reply.push(&ctx.clock().unix_seconds().to_be_bytes())
            }
            _ => Err(CardError::InsNotSupported),
        }
    }
}
