//! The Italian CNS (Carta Nazionale dei Servizi) operator card, as OpenSC's `itacns` driver and
//! PKCS#15 emulator read it: an ISO 7816-4 file system (MF, DFs, transparent EFs by FID and by
//! path) in the CNS layout, an RSA key generated on the card, a PIN that blocks after its tries and
//! an 8-digit PUK with a counter of its own. Written only against card-os's public applet API.
//!
//! The card is made to be selected at power-up (as a CNS, which has no AID to select); hosts talk
//! to its MF directly. Every status word comes from a `CardError` variant (`card-os/src/error.rs`);
//! malformed commands are refused by [`commands::CnsCommand::parse`] before any handler runs.
//!
//! | CLA INS P1 P2 | command | needs |
//! |---|---|---|
//! | `00 A4 00/01/02/03/08/09 00/04/0C` | SELECT FILE by FID, child DF/EF, parent, path from MF or current DF; FCP (`62`) or nothing | — |
//! | `00 B0 off off` | READ BINARY of the current EF (`62 82` when it ends before Ne) | — |
//! | `00 D6 off off` | UPDATE BINARY (the EF grows up to its capacity) | personalization key |
//! | `00 20 00 10/90` · `11/91` | VERIFY PIN · PUK (8 bytes, `FF`-padded); no data: status (`63 Cx`) | — |
//! | `00 24 00 10/90` · `11/91` | CHANGE REFERENCE DATA: old ‖ new PIN · PUK (8 bytes each, `FF`-padded) | the old value |
//! | `00 24 01 01` | CHANGE REFERENCE DATA: a new personalization key (16 bytes) | personalization key |
//! | `00 2C 00/01 10/90` | RESET RETRY COUNTER: PUK ‖ new PIN (`00`) or PUK alone (`01`, PIN kept) | PUK |
//! | `00 22 F3 03` | MSE RESTORE (OpenSC's `00 22 F3 03 00`) | — |
//! | `00 22 F1/41/81 B6/B8/A4`, `83 01 01` | MSE SET: signature, decipherment, authentication with key 01 | — |
//! | `00 2A 9E 9A` | PSO COMPUTE DIGITAL SIGNATURE: a raw modulus-sized block, or a DigestInfo the card pads (PKCS#1 v1.5) | PIN, SE `B6` |
//! | `00 2A 80 86` | PSO DECIPHER: `00` ‖ cryptogram → the raw block (the host strips the padding) | PIN, SE `B8` |
//! | `00 88 00 00` | INTERNAL AUTHENTICATE: as the signature | PIN |
//! | `00 84 00 00` | GET CHALLENGE, 1 to 256 bytes | — |
//! | `00 82 00 01` | EXTERNAL AUTHENTICATE: AES-128(personalization key, the last 16-byte challenge) | a challenge |
//! | `00 46 00 01` | GENERATE KEY PAIR: RSA 2048 (or the 2-byte bit length 1024/2048); answers `7F49 { 81 n, 82 e }` and writes EF 3F01 | personalization key |
//!
//! The file tree and what each EF holds: [`fs::LAYOUT`]. The personalization key stands in for the
//! secure-messaging keys a real bureau holds: whoever makes the card passes it in the installation
//! parameters ([`InstallParams`]).

pub mod commands;
pub mod fs;

use card_os::apdu::{tlv, Command};
use card_os::crypto::{hazmat, BlockCipher, Crypto, RsaBits, RsaKeyPair};
use card_os::{
    ct_eq, Aid, Applet, CardError, Context, Lifetime, OwnerPin, PinCheck, PinPolicy, Reply,
    Requirement, Secret,
};
use zeroize::Zeroizing;

use commands::{CnsCommand, Operation, PinRef, SelectAnswer};

/// The CNS applet's AID: tessera's proprietary RID (`F0` "tessera") and "CNS". Hosts never select
/// it (the card selects it at power-up); it is how card images name the applet.
pub const CNS_AID: &[u8] = &[
    0xF0, 0x74, 0x65, 0x73, 0x73, 0x65, 0x72, 0x61, 0x43, 0x4E, 0x53,
];

/// The ATR of a CNS v1.1 card, as OpenSC 0.23's itacns driver matches it: T=1; historical bytes
/// `00 6B`, IC manufacturer `02` (STMicroelectronics), mask manufacturer `09` (STIncard), OS
/// version `17 17`, `01` (a CNS), `01 01`, "CNS", version `11`, `31 80`. Version 1.1 is what makes
/// OpenSC offer 2048-bit RSA and extended APDUs (a 1.0 card is RSA 1024 only); the STIncard mask
/// makes it add `80` to PIN references, which the card accepts.
pub const CNS_ATR: &[u8] = &[
    0x3B, 0xFF, 0x18, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x55, 0x00, 0x6B, 0x02, 0x09, 0x17, 0x17, 0x01,
    0x01, 0x01, 0x43, 0x4E, 0x53, 0x11, 0x31, 0x80, 0x63,
];

pub fn aid() -> Aid {
    // 11 bytes: a valid AID.
    Aid::new(CNS_AID).unwrap_or_else(|| unreachable!())
}

pub fn factory() -> Box<dyn Applet> {
    Box::new(CnsApplet)
}

/// A CNS card in memory: the CNS applet alone, selected at power-up, behind [`CNS_ATR`];
/// deterministic with a seed. For tests, benches and the bureau's line.
pub fn in_memory_card(
    seed: Option<u64>,
    params: &InstallParams,
) -> Result<card_os::Card, card_os::CardOsError> {
    card_os::Card::create(
        card_os::CardConfig {
            atr: CNS_ATR.to_vec(),
            seed,
            ..card_os::CardConfig::default()
        },
        &card_os::AppletRegistry::new().register(aid(), factory),
        &[card_os::Installation {
            aid: aid(),
            params: params.to_bytes(),
            default_selected: true,
        }],
        card_os::Storage::Memory,
    )
}

/// EXTERNAL AUTHENTICATE's P2: the personalization key.
pub const PERSONALIZATION_KEY_REFERENCE: u8 = 0x01;
/// The personalization key: AES-128.
pub const PERSONALIZATION_KEY_LEN: usize = 16;
/// The challenge EXTERNAL AUTHENTICATE answers: one AES block.
pub const CHALLENGE_LEN: usize = 16;

/// The well-known test secrets of a card made without its own (as PIV's 123456 / 12345678).
pub const DEFAULT_PIN: &[u8] = b"12345";
pub const DEFAULT_PUK: &[u8] = b"12345678";
pub const DEFAULT_PERSONALIZATION_KEY: [u8; 16] = [
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10,
];

/// PIN length bounds of the CNS (OpenSC's emulator says 5 to 8) and the PUK's fixed 8 digits.
pub const PIN_MIN_LEN: u8 = 5;
pub const PIN_MAX_LEN: u8 = 8;
pub const PUK_LEN: u8 = 8;

/// Persistent records (EF contents are `fs`'s, from `0x0100`).
const REC_PIN: u16 = 0x0001;
const REC_PUK: u16 = 0x0002;
const REC_PERSONALIZATION_KEY: u16 = 0x0003;
const REC_PRIVATE_KEY: u16 = 0x0010;

/// Transient records (`fs` has `0x0001`, `0x0002`).
const T_PIN_VERIFIED: u16 = 0x0010;
const T_PUK_VERIFIED: u16 = 0x0011;
const T_SECURITY_ENVIRONMENT: u16 = 0x0012;
const T_CHALLENGE: u16 = 0x0013;
const T_PERSONALIZATION: u16 = 0x0014;

const PIN: OwnerPin = OwnerPin::new(REC_PIN, T_PIN_VERIFIED);
const PUK: OwnerPin = OwnerPin::new(REC_PUK, T_PUK_VERIFIED);

/// How a card is made: its secrets, try limits and card number.
#[derive(Debug, Clone)]
pub struct InstallParams {
    /// 5 to 8 digits.
    pub pin: Secret,
    /// 8 digits.
    pub puk: Secret,
    pub pin_tries: u8,
    pub puk_tries: u8,
    /// AES-128 key for EXTERNAL AUTHENTICATE (personalization).
    pub personalization_key: Secret,
    /// EF_IDCarta: 16 ASCII characters, the card number OpenSC reports as the token serial.
    /// `None`: 16 hex digits drawn from the card's random source at installation.
    pub card_number: Option<String>,
}

impl Default for InstallParams {
    fn default() -> Self {
        Self {
            pin: Secret::new(DEFAULT_PIN),
            puk: Secret::new(DEFAULT_PUK),
            pin_tries: 3,
            puk_tries: 10,
            personalization_key: Secret::new(DEFAULT_PERSONALIZATION_KEY),
            card_number: None,
        }
    }
}

/// Installation-parameter tags.
mod param {
    pub const PIN: u32 = 0x01;
    pub const PUK: u32 = 0x02;
    pub const PIN_TRIES: u32 = 0x03;
    pub const PUK_TRIES: u32 = 0x04;
    pub const PERSONALIZATION_KEY: u32 = 0x05;
    pub const CARD_NUMBER: u32 = 0x06;
}

impl InstallParams {
    /// Checks what a card would refuse, with a sentence saying why.
    pub fn validate(&self) -> Result<(), String> {
        let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
        let pin = self.pin.expose();
        if !(usize::from(PIN_MIN_LEN)..=usize::from(PIN_MAX_LEN)).contains(&pin.len())
            || !digits(pin)
        {
            return Err(format!(
                "a CNS PIN has {PIN_MIN_LEN} to {PIN_MAX_LEN} digits"
            ));
        }
        if self.puk.expose().len() != usize::from(PUK_LEN) || !digits(self.puk.expose()) {
            return Err(format!("a CNS PUK has exactly {PUK_LEN} digits"));
        }
        for (what, tries) in [("PIN", self.pin_tries), ("PUK", self.puk_tries)] {
            if !(1..=15).contains(&tries) {
                return Err(format!("{what} tries must be 1 to 15, not {tries}"));
            }
        }
        if self.personalization_key.expose().len() != PERSONALIZATION_KEY_LEN {
            return Err("the personalization key is 16 bytes (AES-128)".into());
        }
        if let Some(number) = &self.card_number {
            if number.len() != 16 || !number.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!(
                    "a CNS card number is 16 letters or digits, not {number:?}"
                ));
            }
        }
        Ok(())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        tlv::write(&mut out, param::PIN, self.pin.expose());
        tlv::write(&mut out, param::PUK, self.puk.expose());
        tlv::write(&mut out, param::PIN_TRIES, &[self.pin_tries]);
        tlv::write(&mut out, param::PUK_TRIES, &[self.puk_tries]);
        tlv::write(
            &mut out,
            param::PERSONALIZATION_KEY,
            self.personalization_key.expose(),
        );
        if let Some(number) = &self.card_number {
            tlv::write(&mut out, param::CARD_NUMBER, number.as_bytes());
        }
        out
    }

    /// Parses installation parameters; empty bytes are the defaults.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CardError> {
        let mut params = InstallParams::default();
        for item in tlv::iter(bytes) {
            let item = item?;
            let value = item.value;
            let byte = || match value {
                [b] => Ok(*b),
                _ => Err(CardError::InvalidData),
            };
            match item.tag.0 {
                param::PIN => params.pin = Secret::new(value),
                param::PUK => params.puk = Secret::new(value),
                param::PIN_TRIES => params.pin_tries = byte()?,
                param::PUK_TRIES => params.puk_tries = byte()?,
                param::PERSONALIZATION_KEY => {
                    params.personalization_key = Secret::new(value);
                }
                param::CARD_NUMBER => {
                    params.card_number = Some(
                        String::from_utf8(value.to_vec()).map_err(|_| CardError::InvalidData)?,
                    );
                }
                _ => return Err(CardError::InvalidData),
            }
        }
        params.validate().map_err(|_| CardError::InvalidData)?;
        Ok(params)
    }
}

/// The CNS applet. Stateless: files, PINs and the key live in the card's store.
pub struct CnsApplet;

impl Applet for CnsApplet {
    fn install(&mut self, ctx: &mut Context<'_>, params: &[u8]) -> Result<(), CardError> {
        let params = InstallParams::from_bytes(params)?;
        PIN.create(
            ctx,
            PinPolicy {
                try_limit: params.pin_tries,
                min_len: PIN_MIN_LEN,
                max_len: PIN_MAX_LEN,
            },
            params.pin.expose(),
        )?;
        PUK.create(
            ctx,
            PinPolicy {
                try_limit: params.puk_tries,
                min_len: PUK_LEN,
                max_len: PUK_LEN,
            },
            params.puk.expose(),
        )?;
        ctx.store()
            .put(REC_PERSONALIZATION_KEY, params.personalization_key.expose())?;
        let number = match params.card_number {
            Some(number) => number.into_bytes(),
            None => {
                let random = ctx.crypto().random_vec(8)?;
                random
                    .iter()
                    .flat_map(|b| format!("{b:02X}").into_bytes())
                    .collect()
            }
        };
        fs::set_content(ctx, fs::ID_CARTA, &number)?;
        // EF_CardStatus: the card is issued and operational.
        fs::set_content(ctx, fs::CARD_STATUS, &[0x01])?;
        Ok(())
    }

    fn select(&mut self, ctx: &mut Context<'_>, _reply: &mut Reply) -> Result<(), CardError> {
        fs::make_current(ctx, fs::MF_INDEX);
        ctx.transient().clear(T_SECURITY_ENVIRONMENT);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        command: &Command,
        reply: &mut Reply,
    ) -> Result<(), CardError> {
        match CnsCommand::parse(command)? {
            CnsCommand::Select { target, answer } => {
                let file = fs::resolve(fs::current_df(ctx), &target)?;
                fs::make_current(ctx, file);
                if answer == SelectAnswer::Fcp {
                    let fcp = fs::fcp(ctx, file);
                    reply.push(&fcp)?;
                }
                Ok(())
            }
            CnsCommand::ReadBinary { offset, ne } => read_binary(ctx, offset, ne, reply),
            CnsCommand::UpdateBinary { offset, data } => {
                let file = fs::current_ef(ctx).ok_or(CardError::NoCurrentEf)?;
                require_personalization(ctx)?;
                fs::update(ctx, file, offset, data)
            }
            CnsCommand::Verify { reference, value } => verify(ctx, reference, value),
            CnsCommand::ChangeReference {
                reference,
                old,
                new,
            } => {
                let object = match reference {
                    PinRef::Pin => PIN,
                    PinRef::Puk => PUK,
                };
                check_new_value(ctx, object, new)?;
                spend(ctx, object, old)?;
                object.update(ctx, new)
            }
            CnsCommand::ChangePersonalizationKey { new } => {
                require_personalization(ctx)?;
                ctx.store().put(REC_PERSONALIZATION_KEY, new)?;
                // The old key's session ends with it.
                ctx.transient().clear(T_PERSONALIZATION);
                Ok(())
            }
            CnsCommand::UnblockPin { puk, new_pin } => {
                if let Some(new) = new_pin {
                    check_new_value(ctx, PIN, new)?;
                }
                spend(ctx, PUK, puk)?;
                PUK.log_out(ctx);
                match new_pin {
                    Some(new) => PIN.update(ctx, new),
                    None => PIN.reset_tries(ctx),
                }
            }
            CnsCommand::RestoreSecurityEnvironment => {
                ctx.transient().clear(T_SECURITY_ENVIRONMENT);
                Ok(())
            }
            CnsCommand::SetSecurityEnvironment { operation } => {
                ctx.transient().set(
                    T_SECURITY_ENVIRONMENT,
                    &[operation.byte()],
                    Lifetime::ClearOnReset,
                );
                Ok(())
            }
            CnsCommand::Sign { input } => {
                require_environment(ctx, Operation::Sign)?;
                private_operation(ctx, input, Padding::SignatureIfShort, reply)
            }
            CnsCommand::InternalAuthenticate { input } => {
                private_operation(ctx, input, Padding::SignatureIfShort, reply)
            }
            CnsCommand::Decipher { cryptogram } => {
                require_environment(ctx, Operation::Decipher)?;
                private_operation(ctx, cryptogram, Padding::None, reply)
            }
            CnsCommand::GetChallenge { len } => {
                let challenge = ctx.crypto().random_vec(len)?;
                ctx.transient()
                    .set(T_CHALLENGE, &challenge, Lifetime::ClearOnReset);
                reply.push(&challenge)
            }
            CnsCommand::ExternalAuthenticate { cryptogram } => {
                external_authenticate(ctx, cryptogram)
            }
            CnsCommand::GenerateKeyPair { bits } => {
                require_personalization(ctx)?;
                generate_key_pair(ctx, bits, reply)
            }
        }
    }

    fn is_sensitive(&self, command: &Command) -> bool {
        command.cla == 0x00
            && matches!(
                command.ins,
                commands::ins::VERIFY
                    | commands::ins::CHANGE_REFERENCE_DATA
                    | commands::ins::RESET_RETRY_COUNTER
                    | commands::ins::EXTERNAL_AUTHENTICATE
            )
    }
}

fn read_binary(
    ctx: &mut Context<'_>,
    offset: usize,
    ne: usize,
    reply: &mut Reply,
) -> Result<(), CardError> {
    let file = fs::current_ef(ctx).ok_or(CardError::NoCurrentEf)?;
    if file.read_access() != fs::Access::Always {
        return Err(CardError::SecurityStatusNotSatisfied(Requirement::Never));
    }
    // Borrowed from the store, not copied: OpenSC reads a certificate in 255-byte chunks.
    let store = ctx.store();
    let content = store.get(file.record()).unwrap_or(&[]);
    // Past the end is `6B 00`; *at* the end is zero bytes and `62 82`, which is how OpenSC's
    // `sc_read_binary` learns that a file it reads in chunks has ended.
    if offset > content.len() {
        return Err(CardError::WrongP1P2);
    }
    let end = content.len().min(offset + ne);
    reply.push(&content[offset..end])?;
    if end - offset < ne {
        reply.warn(card_os::Warning::EndOfFile);
    }
    Ok(())
}

fn require_personalization(ctx: &mut Context<'_>) -> Result<(), CardError> {
    if ctx.transient().get(T_PERSONALIZATION).is_some() {
        Ok(())
    } else {
        Err(CardError::SecurityStatusNotSatisfied(
            Requirement::KeyAuthentication,
        ))
    }
}

/// The challenge is used once, right or wrong, so a cryptogram cannot be replayed or guessed twice
/// against the same challenge.
fn external_authenticate(ctx: &mut Context<'_>, cryptogram: &[u8]) -> Result<(), CardError> {
    let challenge = ctx
        .transient()
        .get(T_CHALLENGE)
        .map(<[u8]>::to_vec)
        .filter(|c| c.len() == CHALLENGE_LEN);
    ctx.transient().clear(T_CHALLENGE);
    ctx.transient().clear(T_PERSONALIZATION);
    let challenge = challenge.ok_or(CardError::SecurityStatusNotSatisfied(
        Requirement::PendingChallenge,
    ))?;
    let key = Zeroizing::new(
        ctx.store()
            .get(REC_PERSONALIZATION_KEY)
            .ok_or(CardError::ReferenceNotFound)?
            .to_vec(),
    );
    let expected = Crypto::block_encrypt(BlockCipher::Aes128, &key, &challenge)?;
    if !ct_eq(&expected, cryptogram) {
        return Err(CardError::SecurityStatusNotSatisfied(
            Requirement::CorrectCryptogram,
        ));
    }
    ctx.transient()
        .set(T_PERSONALIZATION, &[1], Lifetime::ClearOnReset);
    Ok(())
}

fn verify(ctx: &mut Context<'_>, reference: PinRef, value: Option<&[u8]>) -> Result<(), CardError> {
    let pin = match reference {
        PinRef::Pin => PIN,
        PinRef::Puk => PUK,
    };
    match value {
        None if pin.is_validated(ctx) => Ok(()),
        None if pin.is_blocked(ctx)? => Err(CardError::AuthenticationBlocked),
        None => Err(CardError::NotVerified {
            tries_left: pin.tries_left(ctx)?,
        }),
        Some(value) => spend(ctx, pin, value),
    }
}

/// Compares a PIN or PUK (a try is spent and durable first: [`OwnerPin::check`]).
fn spend(ctx: &mut Context<'_>, pin: OwnerPin, value: &[u8]) -> Result<(), CardError> {
    match pin.check(ctx, value)? {
        PinCheck::Verified => Ok(()),
        PinCheck::Wrong { tries_left } => Err(CardError::WrongPin { tries_left }),
        PinCheck::Blocked => Err(CardError::AuthenticationBlocked),
    }
}

/// A new PIN or PUK must fit its policy. It is checked before the old value (or the PUK) is
/// compared, so a malformed new value costs no try.
fn check_new_value(ctx: &mut Context<'_>, object: OwnerPin, new: &[u8]) -> Result<(), CardError> {
    let policy = object.policy(ctx)?;
    if (usize::from(policy.min_len)..=usize::from(policy.max_len)).contains(&new.len()) {
        Ok(())
    } else {
        Err(CardError::InvalidData)
    }
}

fn require_environment(ctx: &mut Context<'_>, operation: Operation) -> Result<(), CardError> {
    let set = ctx
        .transient()
        .get(T_SECURITY_ENVIRONMENT)
        .and_then(|b| b.first().copied())
        .and_then(Operation::from_byte);
    if set == Some(operation) {
        Ok(())
    } else {
        Err(CardError::ConditionsNotSatisfied)
    }
}

enum Padding {
    /// The input is one whole block (decipherment).
    None,
    /// A whole block is used as is; a shorter input is a DigestInfo the card pads as PKCS#1 v1.5
    /// block type 1 (`00 01 FF… 00 ‖ input`).
    SignatureIfShort,
}

/// PKCS#1 v1.5 needs 8 bytes of `FF` at least, plus `00 01` and `00`.
const PKCS1_OVERHEAD: usize = 11;

fn private_operation(
    ctx: &mut Context<'_>,
    input: &[u8],
    padding: Padding,
    reply: &mut Reply,
) -> Result<(), CardError> {
    if !PIN.is_validated(ctx) {
        return Err(CardError::SecurityStatusNotSatisfied(Requirement::Pin));
    }
    let stored = Zeroizing::new(
        ctx.store()
            .get(REC_PRIVATE_KEY)
            .ok_or(CardError::ReferenceNotFound)?
            .to_vec(),
    );
    let key = Crypto::rsa_from_private(&stored)?;
    let k = key.size().modulus_len();
    let block = match padding {
        _ if input.len() == k => Zeroizing::new(input.to_vec()),
        Padding::SignatureIfShort if input.len() + PKCS1_OVERHEAD <= k => {
            let mut block = Zeroizing::new(Vec::with_capacity(k));
            block.extend_from_slice(&[0x00, 0x01]);
            block.resize(k - input.len() - 1, 0xFF);
            block.push(0x00);
            block.extend_from_slice(input);
            block
        }
        _ => return Err(CardError::WrongLength),
    };
    let result = hazmat::rsa_private(ctx.crypto(), &key, &block).map_err(|e| match e {
        // A block not below the modulus.
        card_os::crypto::CryptoError::BadBlockLength => CardError::InvalidData,
        other => CardError::Crypto(other),
    })?;
    reply.push(&result)
}

fn generate_key_pair(
    ctx: &mut Context<'_>,
    bits: usize,
    reply: &mut Reply,
) -> Result<(), CardError> {
    let size = RsaBits::from_bits(bits).ok_or(CardError::InvalidData)?;
    let key = ctx.crypto().generate_rsa(size)?;
    let public_key_file = rsa_public_key_der(&key);
    // INVARIANT: the key and the public-key EF change together, or a torn generation would leave
    // a certificate-less card advertising a public key it cannot use.
    ctx.store().begin_transaction()?;
    ctx.store().put(REC_PRIVATE_KEY, &key.private_bytes())?;
    fs::set_content(ctx, fs::PUBLIC_KEY, &public_key_file)?;
    ctx.store().commit_transaction()?;
    let mut answer = Vec::with_capacity(key.size().modulus_len() + 16);
    tlv::write_nested(&mut answer, 0x7F49u32, |inner| {
        tlv::write(inner, 0x81u32, &key.modulus());
        tlv::write(inner, 0x82u32, &key.public_exponent());
    });
    reply.push(&answer)
}

/// PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`, DER: what
/// OpenSC decodes from EF 3F01.
fn rsa_public_key_der(key: &RsaKeyPair) -> Vec<u8> {
    fn integer(out: &mut Vec<u8>, magnitude: &[u8]) {
        let start = magnitude.iter().take_while(|&&b| b == 0).count();
        let digits = &magnitude[start.min(magnitude.len().saturating_sub(1))..];
        let mut value = Vec::with_capacity(digits.len() + 1);
        if digits.first().is_some_and(|&b| b & 0x80 != 0) {
            value.push(0x00);
        }
        value.extend_from_slice(digits);
        tlv::write(out, 0x02u32, &value);
    }
    let mut out = Vec::with_capacity(key.size().modulus_len() + 16);
    tlv::write_nested(&mut out, 0x30u32, |inner| {
        integer(inner, &key.modulus());
        integer(inner, &key.public_exponent());
    });
    out
}
