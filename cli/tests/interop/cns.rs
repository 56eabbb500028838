//! `tessera card new --profile cns` served by `tessera serve`: OpenSC's Italian CNS driver takes
//! the card, reads its card number as the token serial, and the PIN answers VERIFY as a CNS does.
//! (The personalized card — key, certificate, signatures, PUK — is `personalization`'s
//! `cns_opensc` test.)

use crate::support::*;

#[test]
fn a_new_cns_card_is_taken_by_opensc_s_italian_cns_driver() {
    require(&["opensc-tool", "pkcs15-tool"]);
    let rig = Rig::start(&["--profile", "cns", "--card-number", "7310594826153048"]);

    step("opensc-tool -n: the itacns driver names it a CNS card");
    run("opensc-tool", &["-r", rig.reader, "-v", "-n"], &[])
        .ok()
        .has("Italian CNS")
        .has("CNS card");

    step("the token serial is EF_IDCarta; no certificate yet, so no key");
    run("pkcs15-tool", &["-r", rig.reader, "--dump"], &[])
        .ok()
        .has("7310594826153048");

    step("PIN status and a wrong PIN through opensc-tool -s, as OpenSC pads it");
    run(
        "opensc-tool",
        &[
            "-r",
            rig.reader,
            "-s",
            "00 20 00 90",
            "-s",
            "00 20 00 90 08 39 39 39 39 39 FF FF FF",
        ],
        &[],
    )
    .ok()
    .has("SW1=0x63, SW2=0xC3")
    .has("SW1=0x63, SW2=0xC2");

    step("opensc-tool --serial: the itacns driver reads EF_IDCarta");
    run("opensc-tool", &["-r", rig.reader, "--serial"], &[])
        .ok()
        .has("37 33 31 30 35 39 34 38 32 36 31 35 33 30 34 38"); // "7310594826153048" in ASCII
}
