//! The CNS card as a bureau and a holder use it, through the host client, in process.
#![allow(clippy::unwrap_used)]

use card_os::Card;
use card_transport::DirectReader;
use cns_applet::InstallParams;
use cns_host::{path, CnsSession, PersonalData, PinOutcome, Secret};
use rsa::traits::PublicKeyParts as _;

const KEY: [u8; 16] = cns_applet::DEFAULT_PERSONALIZATION_KEY;

fn new_card(seed: u64, params: &InstallParams) -> Card {
    cns_applet::in_memory_card(Some(seed), params).unwrap()
}

fn sw(error: cns_host::CnsError) -> u16 {
    error.status_word().map_or(0, |s| s.to_u16())
}

fn public_key(modulus: &[u8]) -> rsa::PublicKey {
    rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(modulus),
        rsa::BoxedUint::from(65_537u32),
    )
    .unwrap()
}

/// `DigestInfo` of a SHA-256 hash.
fn digest_info(hash: &[u8]) -> Vec<u8> {
    let mut out = hex::decode("3031300d060960864801650304020105000420").unwrap();
    out.extend_from_slice(hash);
    out
}

#[test]
fn a_bureau_personalizes_and_the_holder_signs_with_the_pin() {
    let params = InstallParams {
        card_number: Some("0000000000000042".into()),
        ..InstallParams::default()
    };
    let mut card = new_card(1, &params);
    let mut reader = DirectReader::new(&mut card);
    let mut cns = CnsSession::new(&mut reader);
    assert_eq!(cns.read_file(path::ID_CARTA).unwrap(), b"0000000000000042");

    // Writing and generating need the personalization key.
    assert_eq!(
        sw(cns.write_file(path::DATI_PERSONALI, b"x").unwrap_err()),
        0x6982
    );
    assert_eq!(sw(cns.generate_key(2048).unwrap_err()), 0x6982);
    assert_eq!(sw(cns.authenticate(&[0; 16]).unwrap_err()), 0x6982);
    assert_eq!(
        sw(cns.generate_key(2048).unwrap_err()),
        0x6982,
        "a wrong cryptogram grants nothing"
    );
    cns.authenticate(&KEY).unwrap();

    let public = cns.generate_key(2048).unwrap();
    assert_eq!(public.modulus.len(), 256);
    assert_eq!(public.exponent, [1, 0, 1]);
    // EF 3F01 holds the same key as PKCS#1 RSAPublicKey DER.
    use rsa::pkcs1::DecodeRsaPublicKey as _;
    let stored = rsa::PublicKey::from_pkcs1_der(&cns.read_file(path::PUBLIC_KEY).unwrap()).unwrap();
    assert_eq!(
        stored.n().as_ref(),
        public_key(&public.modulus).n().as_ref()
    );

    let data = PersonalData {
        issuer_code: "058091".into(),
        issuing_date: "01122026".into(),
        expiry_date: "01122032".into(),
        surname: "ROSSI".into(),
        given_name: "MARIO".into(),
        birth_date: "".into(),
        sex: "".into(),
        codice_fiscale: "RSSMRA80A01H501U".into(),
    };
    let encoded = data.encode().unwrap();
    assert!(
        encoded.starts_with(b"00"),
        "{}",
        String::from_utf8_lossy(&encoded)
    );
    cns.write_file(path::DATI_PERSONALI, &encoded).unwrap();
    let certificate = vec![0x30; 1300];
    cns.write_file(path::CERTIFICATE, &certificate).unwrap();
    assert_eq!(cns.read_file(path::DATI_PERSONALI).unwrap(), encoded);
    assert_eq!(cns.read_file(path::CERTIFICATE).unwrap(), certificate);

    // The holder: no signature without the PIN; a wrong PIN costs a try; the right one signs.
    let hash = <sha2::Sha256 as sha2::Digest>::digest(b"login");
    assert_eq!(
        sw(cns.sign_digest_info(&digest_info(&hash)).unwrap_err()),
        0x6982
    );
    assert_eq!(
        cns.verify(Secret::Pin, "99999").unwrap(),
        PinOutcome::Wrong { tries_left: 2 }
    );
    assert_eq!(
        cns.verify(Secret::Pin, "12345").unwrap(),
        PinOutcome::Verified
    );
    let signature = cns.sign_digest_info(&digest_info(&hash)).unwrap();
    public_key(&public.modulus)
        .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hash, &signature)
        .unwrap();
}

#[test]
fn three_wrong_pins_block_and_the_puk_unblocks_with_a_new_pin() {
    let mut card = new_card(2, &InstallParams::default());
    let mut reader = DirectReader::new(&mut card);
    let mut cns = CnsSession::new(&mut reader);
    for tries_left in [2, 1, 0] {
        assert_eq!(
            cns.verify(Secret::Pin, "00000").unwrap(),
            PinOutcome::Wrong { tries_left }
        );
    }
    assert_eq!(
        cns.verify(Secret::Pin, "12345").unwrap(),
        PinOutcome::Blocked
    );
    assert_eq!(
        cns.unblock_pin("87654321", "24680").unwrap(),
        PinOutcome::Wrong { tries_left: 9 },
        "the PUK has its own counter"
    );
    assert_eq!(
        cns.unblock_pin("12345678", "24680").unwrap(),
        PinOutcome::Verified
    );
    assert_eq!(
        cns.verify(Secret::Pin, "12345").unwrap(),
        PinOutcome::Wrong { tries_left: 2 }
    );
    assert_eq!(
        cns.verify(Secret::Pin, "24680").unwrap(),
        PinOutcome::Verified
    );
    // The PUK counter went back to full on success.
    assert_eq!(
        cns.verify(Secret::Puk, "12345678").unwrap(),
        PinOutcome::Verified
    );
    // Change: the old PIN is needed; a malformed new PIN costs no try.
    assert_eq!(sw(cns.change_pin("24680", "1234").unwrap_err()), 0x6A80);
    assert_eq!(
        cns.change_pin("11111", "13579").unwrap(),
        PinOutcome::Wrong { tries_left: 2 }
    );
    assert_eq!(
        cns.change_pin("24680", "13579").unwrap(),
        PinOutcome::Verified
    );
    assert_eq!(
        cns.verify(Secret::Pin, "13579").unwrap(),
        PinOutcome::Verified
    );
}

fn tx(card: &mut Card, apdu: &str) -> String {
    let bytes = hex::decode(apdu.replace(' ', "")).unwrap();
    hex::encode_upper(card.transmit(&bytes).unwrap())
}

#[test]
fn select_answers_the_fcp_opensc_decodes_and_read_binary_ends_with_62_82() {
    let params = InstallParams {
        card_number: Some("ABCDEF0123456789".into()),
        ..InstallParams::default()
    };
    let mut card = new_card(3, &params);
    // SELECT 3F00 1000 1003 by path: FCP with descriptor, FID, size 16, access bytes, life cycle.
    assert_eq!(
        tx(&mut card, "00 A4 08 00 04 1000 1003 00"),
        "6219 820101 83021003 80020010 8609 008181FFFFFF81FFFF 8A0105 9000".replace(' ', "")
    );
    assert_eq!(
        tx(&mut card, "00 B0 00 00 FF"),
        format!("{}6282", hex::encode_upper(b"ABCDEF0123456789"))
    );
    assert_eq!(
        tx(&mut card, "00 B0 00 08 08"),
        format!("{}9000", hex::encode_upper(b"23456789"))
    );
    assert_eq!(
        tx(&mut card, "00 B0 00 10 01"),
        "6282",
        "at the end: nothing, and end of file"
    );
    assert_eq!(tx(&mut card, "00 B0 00 11 01"), "6B00", "past the end");
    // The MF by FID; a DF's FCP; no current EF after selecting a DF.
    assert_eq!(tx(&mut card, "00 A4 00 0C 02 3F00"), "9000");
    assert!(tx(&mut card, "00 A4 00 00 02 1100 00").starts_with("6215820138830211008609"));
    assert_eq!(tx(&mut card, "00 B0 00 00 01"), "6986");
    // A missing file, an unknown AID (the OS answers; the MF stays selected).
    assert_eq!(tx(&mut card, "00 A4 08 0C 04 1100 1199"), "6A82");
    assert_eq!(tx(&mut card, "00 A4 04 00 05 A000000308"), "6A82");
    assert_eq!(
        tx(&mut card, "00 A4 02 0C 02 1102"),
        "9000",
        "still in DF 1100"
    );
    // PIN status without data, after the MSE RESTORE OpenSC sends.
    assert_eq!(tx(&mut card, "00 20 00 90"), "63C3");
    assert_eq!(tx(&mut card, "00 22 F3 03 00"), "9000");
    // Signing without a security environment set: 69 85.
    assert_eq!(tx(&mut card, "00 20 00 90 08 3132333435FFFFFF"), "9000");
    assert_eq!(tx(&mut card, "00 20 00 90"), "9000");
    assert_eq!(tx(&mut card, "00 2A 9E 9A 03 010203 00"), "6985");
    // With it, but no key generated yet: 6A 88.
    assert_eq!(tx(&mut card, "00 22 F1 B6 03 830101"), "9000");
    assert_eq!(tx(&mut card, "00 2A 9E 9A 03 010203 00"), "6A88");
}

#[test]
fn decipher_gives_back_the_raw_block_the_host_unpads() {
    let mut card = new_card(4, &InstallParams::default());
    let mut reader = DirectReader::new(&mut card);
    let public = {
        let mut cns = CnsSession::new(&mut reader);
        cns.authenticate(&KEY).unwrap();
        cns.generate_key(1024).unwrap()
    };
    let key = public_key(&public.modulus);
    let mut rng = rand_free_rng();
    let cryptogram = key
        .encrypt(&mut rng, rsa::Pkcs1v15Encrypt, b"session key")
        .unwrap();
    let mut card_apdus = |apdu: Vec<u8>| hex::encode_upper(reader_transmit(&mut reader, &apdu));
    assert_eq!(
        card_apdus(hex::decode("00200010083132333435FFFFFF").unwrap()),
        "9000"
    );
    assert_eq!(card_apdus(hex::decode("0022F1B803830101").unwrap()), "9000");
    let mut decipher = hex::decode("002A808681").unwrap();
    decipher.push(0x00);
    decipher.extend_from_slice(&cryptogram);
    decipher.push(0x00);
    let answer = card_apdus(decipher);
    assert!(answer.ends_with("9000"), "{answer}");
    let block = hex::decode(&answer[..answer.len() - 4]).unwrap();
    assert_eq!(block.len(), 128);
    assert_eq!(&block[..2], [0x00, 0x02]);
    assert!(block.ends_with(b"\x00session key"));
}

fn reader_transmit(reader: &mut DirectReader<'_, Card>, apdu: &[u8]) -> Vec<u8> {
    use card_transport::Transport as _;
    reader.transmit_raw(apdu).unwrap()
}

/// A deterministic generator for the host's encryption padding (test only).
fn rand_free_rng() -> impl rsa::rand_core::CryptoRng {
    struct Counter(u8);
    impl rsa::rand_core::TryRng for Counter {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(u32::from(self.next()))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(u64::from(self.next()))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            dst.iter_mut().for_each(|b| *b = self.next());
            Ok(())
        }
    }
    impl Counter {
        fn next(&mut self) -> u8 {
            self.0 = self.0.wrapping_add(37) | 1;
            self.0
        }
    }
    impl rsa::rand_core::TryCryptoRng for Counter {}
    Counter(0)
}

/// Power cut at every write of GENERATE KEY PAIR: after recovery the key and EF 3F01 agree —
/// both absent, or both the new key.
#[test]
fn a_torn_key_generation_leaves_key_and_public_key_file_in_agreement() {
    let make = || new_card(5, &InstallParams::default());
    // The seeded card's challenge is the same on every fresh card: answer it once.
    let mut probe = make();
    let challenge = hex::decode(&tx(&mut probe, "00 84 00 00 10")[..32]).unwrap();
    let cryptogram = {
        use aes::cipher::{BlockCipherEncrypt, KeyInit};
        let mut block = aes::Block::try_from(challenge.as_slice()).unwrap();
        aes::Aes128::new(&KEY.into()).encrypt_block(&mut block);
        block.to_vec()
    };
    let mut auth = hex::decode("0082000110").unwrap();
    auth.extend_from_slice(&cryptogram);
    let script = vec![
        hex::decode("0084000010").unwrap(),
        auth,
        hex::decode("0046000102040000").unwrap(),
    ];
    let checked = card_os::tearing::check_every_cut_point(make, &script, |card, _cut| {
        let pubkey = tx(card, "00 A4 08 00 02 3F01 00");
        let empty = pubkey.contains("80020000");
        // Sign with the PIN: 6A 88 (no key) exactly when the public-key file is empty.
        tx(card, "00 20 00 10 08 3132333435FFFFFF");
        tx(card, "00 22 F1 B6 03 830101");
        let sign = tx(card, "00 2A 9E 9A 03 010203 00");
        match (empty, sign.ends_with("9000")) {
            (true, false) if sign == "6A88" => Ok(()),
            (false, true) => Ok(()),
            _ => Err(format!("public key file {pubkey}, signature {sign}")),
        }
    });
    assert!(checked >= 4, "{checked} cut points");
}

#[test]
fn the_puk_and_the_personalization_key_can_be_replaced_by_whoever_holds_them() {
    let mut card = new_card(6, &InstallParams::default());
    let mut reader = DirectReader::new(&mut card);
    let mut cns = CnsSession::new(&mut reader);
    // The PUK: old ‖ new, 8 digits.
    assert_eq!(
        sw(cns.change(Secret::Puk, "12345678", "1234567").unwrap_err()),
        0x6A80
    );
    assert_eq!(
        cns.change(Secret::Puk, "12345678", "86420975").unwrap(),
        PinOutcome::Verified
    );
    assert_eq!(
        cns.verify(Secret::Puk, "12345678").unwrap(),
        PinOutcome::Wrong { tries_left: 9 }
    );
    assert_eq!(
        cns.verify(Secret::Puk, "86420975").unwrap(),
        PinOutcome::Verified
    );
    // The personalization key: only after authenticating with the current one; then the new one
    // is the only one that works.
    let new_key = [0x5A; 16];
    assert_eq!(
        sw(cns.change_personalization_key(&new_key).unwrap_err()),
        0x6982
    );
    cns.authenticate(&KEY).unwrap();
    cns.change_personalization_key(&new_key).unwrap();
    assert_eq!(
        sw(cns.generate_key(1024).unwrap_err()),
        0x6982,
        "the old session ended"
    );
    assert_eq!(sw(cns.authenticate(&KEY).unwrap_err()), 0x6982);
    cns.authenticate(&new_key).unwrap();
    cns.generate_key(1024).unwrap();
}
