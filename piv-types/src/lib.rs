#![doc = include_str!("../README.md")]

mod algorithm;
mod object;
mod reference;
mod slot;

pub use algorithm::{KeyAlgorithm, ManagementAlgorithm};
pub use object::ObjectId;
pub use reference::PinReference;
pub use slot::{KeySlot, PinPolicy, Retired, TouchPolicy};

/// Application identifiers.
pub mod aid {
    /// The PIV application identifier (NIST SP 800-73-4): RID `A0 00 00 03 08`, PIX `00 00 10 00 01 00`.
    pub const PIV: &[u8] = &[
        0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
    ];
    /// The 5-byte RID yubico-piv-tool selects with (the card matches it as a prefix).
    pub const PIV_PREFIX: &[u8] = &[0xA0, 0x00, 0x00, 0x03, 0x08];
}

/// Instruction bytes, one table (SP 800-73-4 part 2 and the YubiKey extensions).
pub mod ins {
    pub const VERIFY: u8 = 0x20;
    pub const CHANGE_REFERENCE: u8 = 0x24;
    pub const RESET_RETRY_COUNTER: u8 = 0x2C;
    pub const GENERATE_ASYMMETRIC: u8 = 0x47;
    pub const GENERAL_AUTHENTICATE: u8 = 0x87;
    pub const SELECT: u8 = 0xA4;
    pub const GET_RESPONSE: u8 = 0xC0;
    pub const GET_DATA: u8 = 0xCB;
    pub const PUT_DATA: u8 = 0xDB;
    /// YubiKey: move (or delete, P1 `FF`) a key.
    pub const MOVE_KEY: u8 = 0xF6;
    /// YubiKey: metadata of a slot, PIN, PUK or the management key.
    pub const GET_METADATA: u8 = 0xF7;
    /// YubiKey: the 4-byte serial number.
    pub const GET_SERIAL: u8 = 0xF8;
    /// YubiKey: an attestation certificate for a slot's key.
    pub const ATTEST: u8 = 0xF9;
    /// YubiKey: set PIN and PUK retry counts.
    pub const SET_PIN_RETRIES: u8 = 0xFA;
    /// YubiKey: reset the applet (PIN and PUK must both be blocked).
    pub const RESET: u8 = 0xFB;
    /// YubiKey: the firmware version.
    pub const GET_VERSION: u8 = 0xFD;
    /// YubiKey: import a private key.
    pub const IMPORT_KEY: u8 = 0xFE;
    /// YubiKey: set the management key.
    pub const SET_MANAGEMENT_KEY: u8 = 0xFF;
}

/// P1/P2 values that are not key references.
pub mod p {
    /// GET DATA / PUT DATA: P1 P2 = `3F FF` (the current application's objects).
    pub const DATA_OBJECTS: [u8; 2] = [0x3F, 0xFF];
    /// VERIFY P1 `FF`: log out (drop the PIN-verified state).
    pub const VERIFY_LOG_OUT: u8 = 0xFF;
    /// SET MANAGEMENT KEY P1 P2: `FF FF`, or `FF FE` with touch required.
    pub const SET_MGMT_KEY: [u8; 2] = [0xFF, 0xFF];
    pub const SET_MGMT_KEY_TOUCH: [u8; 2] = [0xFF, 0xFE];
    /// MOVE KEY P1 `FF`: delete the key instead of moving it.
    pub const MOVE_KEY_DELETE: u8 = 0xFF;
    /// The management key's reference (`9B`), in P2 of GENERAL AUTHENTICATE and GET METADATA.
    pub const MANAGEMENT_KEY: u8 = 0x9B;
}

/// BER-TLV tags of PIV templates and fields.
pub mod tag {
    /// GET DATA / PUT DATA: the tag list naming the object.
    pub const TAG_LIST: u32 = 0x5C;
    /// The value of a data object.
    pub const DATA: u32 = 0x53;
    /// The Discovery object's own template.
    pub const DISCOVERY: u32 = 0x7E;
    /// Certificate object: the DER certificate, its CertInfo byte, the error-detection code.
    pub const CERTIFICATE: u32 = 0x70;
    pub const CERT_INFO: u32 = 0x71;
    pub const ERROR_DETECTION: u32 = 0xFE;
    /// CHUID fields: FASC-N, GUID (16 bytes), expiry (`YYYYMMDD`), issuer signature.
    pub const CHUID_FASC_N: u32 = 0x30;
    pub const CHUID_GUID: u32 = 0x34;
    pub const CHUID_EXPIRY: u32 = 0x35;
    pub const CHUID_SIGNATURE: u32 = 0x3E;

    /// Card Capability Container fields (SP 800-73-4 part 1, table 8).
    pub const CCC_CARD_IDENTIFIER: u32 = 0xF0;
    pub const CCC_CONTAINER_VERSION: u32 = 0xF1;
    pub const CCC_GRAMMAR_VERSION: u32 = 0xF2;
    pub const CCC_APPLICATIONS_URL: u32 = 0xF3;
    pub const CCC_PKCS15: u32 = 0xF4;
    pub const CCC_DATA_MODEL: u32 = 0xF5;
    pub const CCC_ACCESS_CONTROL_RULES: u32 = 0xF6;
    pub const CCC_CARD_APDUS: u32 = 0xF7;
    pub const CCC_REDIRECTION: u32 = 0xFA;
    pub const CCC_CAPABILITY_TUPLES: u32 = 0xFB;
    pub const CCC_STATUS_TUPLES: u32 = 0xFC;
    pub const CCC_NEXT_CCC: u32 = 0xFD;

    /// Discovery object fields: the PIV AID and the PIN usage policy.
    pub const APPLICATION_ID: u32 = 0x4F;
    pub const PIN_USAGE_POLICY: u32 = 0x5F2F;
    /// SELECT answer: the application property template and its coexistent tag allocation authority.
    pub const APPLICATION_PROPERTY: u32 = 0x61;
    pub const TAG_ALLOCATION_AUTHORITY: u32 = 0x79;

    /// GENERAL AUTHENTICATE: the dynamic authentication template and its items.
    pub const DYNAMIC_AUTH: u32 = 0x7C;
    pub const WITNESS: u32 = 0x80;
    pub const CHALLENGE: u32 = 0x81;
    pub const RESPONSE: u32 = 0x82;
    pub const EXPONENTIATION: u32 = 0x85;

    /// GENERATE ASYMMETRIC KEY PAIR: the control reference template and its items.
    pub const GENERATE_CONTROL: u32 = 0xAC;
    pub const ALGORITHM: u32 = 0x80;
    pub const PIN_POLICY: u32 = 0xAA;
    pub const TOUCH_POLICY: u32 = 0xAB;
    /// The public key template and its items (EC point; RSA modulus and exponent).
    pub const PUBLIC_KEY: u32 = 0x7F49;
    pub const EC_POINT: u32 = 0x86;
    pub const RSA_MODULUS: u32 = 0x81;
    pub const RSA_EXPONENT: u32 = 0x82;

    /// IMPORT KEY: the EC private scalar, the Ed25519 seed, the X25519 scalar; an RSA key's CRT parts
    /// (p, q, dP, dQ, qInv).
    pub const EC_PRIVATE: u32 = 0x06;
    pub const ED25519_PRIVATE: u32 = 0x07;
    pub const X25519_PRIVATE: u32 = 0x08;
    pub const RSA_PRIME_P: u32 = 0x01;
    pub const RSA_PRIME_Q: u32 = 0x02;
    pub const RSA_EXPONENT_P: u32 = 0x03;
    pub const RSA_EXPONENT_Q: u32 = 0x04;
    pub const RSA_COEFFICIENT: u32 = 0x05;

    /// GET METADATA items.
    pub const META_ALGORITHM: u32 = 0x01;
    pub const META_POLICY: u32 = 0x02;
    pub const META_ORIGIN: u32 = 0x03;
    pub const META_PUBLIC_KEY: u32 = 0x04;
    pub const META_IS_DEFAULT: u32 = 0x05;
    pub const META_RETRIES: u32 = 0x06;
    /// The `META_ALGORITHM` value of a PIN or PUK (they have no key algorithm).
    pub const META_PIN_ALGORITHM: u8 = 0xFF;

    /// Printed information (SP 800-73-4 §3.1.4).
    pub const PRINTED_NAME: u32 = 0x01;
    pub const PRINTED_AFFILIATION: u32 = 0x02;
    pub const PRINTED_EXPIRY: u32 = 0x04;
    pub const PRINTED_SERIAL: u32 = 0x05;
    pub const PRINTED_ISSUER: u32 = 0x06;
}

/// The factory management key of every PIV card and YubiKey: `01 02 … 08` three times (3DES).
pub const DEFAULT_MANAGEMENT_KEY: [u8; 24] = [
    1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
];
/// The factory PIN and PUK.
pub const DEFAULT_PIN: &str = "123456";
pub const DEFAULT_PUK: &str = "12345678";
/// PINs and PUKs travel padded with `FF` to this length.
pub const PIN_FIELD_LEN: usize = 8;
