//! Shared pieces of the interop matrix: a private pcscd with one served card, a tool runner whose failures
//! explain themselves (command line, exit code, combined output — with the test secrets masked), and the
//! few parsers the checks need (tool fields, OpenSC and ykpiv APDU traces, public keys via openssl).

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use card_transport::PcscReader;
use testkit::tool::Tool;
pub use testkit::tool::{optional, require, Run};
use testkit::{wait_for, Pcscd, Terminating};

pub const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");
pub const OPENSC_PKCS11: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";

/// The card's factory values (`tessera card new` defaults).
pub const PIN: &str = "123456";
pub const PUK: &str = "12345678";
pub const MGM_DEFAULT: &str = "010203040506070801020304050607080102030405060708";
/// Values the tests change to, and wrong values they present on purpose.
pub const NEW_PIN: &str = "654321";
pub const NEW_PIN_2: &str = "24681357";
pub const NEW_PUK: &str = "87654321";
pub const WRONG_PIN: &str = "000000";
pub const WRONG_PUK: &str = "00000000";
pub const MGM_NEW_3DES: &str = "111213141516171821222324252627283132333435363738";
pub const MGM_AES128: &str = "00112233445566778899aabbccddeeff";
pub const MGM_AES192: &str = "00112233445566778899aabbccddeeff0011223344556677";
pub const MGM_AES256: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
pub const WRONG_AES256: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

/// Everything above that must not appear in a failure message (the tools' traces echo PINs as hex).
const SECRETS: &[&str] = &[
    PIN,
    PUK,
    MGM_DEFAULT,
    NEW_PIN,
    NEW_PIN_2,
    NEW_PUK,
    WRONG_PIN,
    WRONG_PUK,
    MGM_NEW_3DES,
    MGM_AES128,
    MGM_AES192,
    MGM_AES256,
    WRONG_AES256,
];

/// Runs `cmd args…` with extra environment `env`, stdin closed, through the workspace's tool runner with
/// every test secret masked. Never panics on a failing tool (only on one that cannot start or hangs):
/// callers assert on the [`Run`].
pub fn run(cmd: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    run_in(None, cmd, args, env)
}

/// [`run`] with a working directory.
pub fn run_in(dir: Option<&Path>, cmd: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut tool = Tool::new(cmd)
        .args(args)
        .envs(env.iter().copied())
        .redact(SECRETS);
    if let Some(dir) = dir {
        tool = tool.current_dir(dir);
    }
    tool.run()
}

/// Prints a step header, so `--nocapture` output reads as a log of the matrix.
pub fn step(name: &str) {
    eprintln!("== {name}");
}

/// A private pcscd with one card image served into its first reader. Dropping it stops `tessera serve`,
/// removes the files, then stops pcscd (field order).
pub struct Rig {
    served: Option<Terminating>,
    dir: tempfile::TempDir,
    pub card: PathBuf,
    pub reader: &'static str,
    pcscd: Pcscd,
}

impl Rig {
    /// Starts pcscd (waiting for the cross-process test lock), makes a card with `tessera card new
    /// --out card.img <card_args>` and serves it until it is present in the reader.
    pub fn start(card_args: &[&str]) -> Self {
        let pcscd = Pcscd::start().expect("start a private pcscd");
        let reader = pcscd.reader_name(0);
        let dir = tempfile::tempdir().expect("tempdir");
        let card = dir.path().join("card.img");
        let mut args = vec!["card", "new", "--out", card.to_str().expect("utf-8 path")];
        args.extend_from_slice(card_args);
        run(TESSERA, &args, &[]).ok();
        let mut rig = Self {
            served: None,
            dir,
            card,
            reader,
            pcscd,
        };
        rig.serve();
        rig
    }

    /// A path inside the test's temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// [`Rig::path`] as a string, for tool arguments.
    pub fn file(&self, name: &str) -> String {
        self.path(name).to_str().expect("utf-8 path").to_owned()
    }

    /// Writes `content` to a 0600 file in the temporary directory and returns its path.
    pub fn secret_file(&self, name: &str, content: &str) -> String {
        let path = self.path(name);
        fs::write(&path, content).expect("write file");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod 600");
        self.file(name)
    }

    fn present(&self) -> bool {
        PcscReader::card_present(self.reader).unwrap_or(false)
    }

    /// Starts `tessera serve` on the card image and waits until pcscd sees the card.
    pub fn serve(&mut self) {
        assert!(self.served.is_none(), "already serving");
        let log = File::create(self.path("serve.log")).expect("serve log");
        let child = Command::new(TESSERA)
            .arg("serve")
            .arg("--vpcd")
            .arg(self.pcscd.vpcd_addr(0).to_string())
            .arg(&self.card)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tessera serve");
        self.served = Some(Terminating::new(child));
        assert!(
            wait_for(|| self.present(), Duration::from_secs(15)),
            "card never appeared in {}\nserve log:\n{}\npcscd log:\n{}",
            self.reader,
            fs::read_to_string(self.path("serve.log")).unwrap_or_default(),
            self.pcscd.log()
        );
    }

    /// Stops `tessera serve` (SIGTERM, must exit 0) and waits until the card is gone from the reader.
    pub fn stop_serving(&mut self) {
        let mut served = self.served.take().expect("serving");
        assert_eq!(
            served.terminate(),
            Some(0),
            "tessera serve did not exit cleanly; its log:\n{}",
            fs::read_to_string(self.path("serve.log")).unwrap_or_default()
        );
        assert!(
            wait_for(|| !self.present(), Duration::from_secs(10)),
            "card still present after tessera serve stopped"
        );
    }

    /// `yubico-piv-tool -r <reader> args…`.
    pub fn ykpiv(&self, args: &[&str]) -> Run {
        let mut all = vec!["-r", self.reader];
        all.extend_from_slice(args);
        run("yubico-piv-tool", &all, &[])
    }

    /// `ykman --reader <reader> args…`.
    pub fn ykman(&self, args: &[&str]) -> Run {
        let mut all = vec!["--reader", self.reader];
        all.extend_from_slice(args);
        run("ykman", &all, &[])
    }

    /// `pkcs11-tool --module <OpenSC> args…` (the card is the only token in this pcscd).
    pub fn pkcs11(&self, args: &[&str]) -> Run {
        let mut all = vec!["--module", OPENSC_PKCS11];
        all.extend_from_slice(args);
        run("pkcs11-tool", &all, &[])
    }

    /// `openssl args…`, run inside the temporary directory.
    pub fn openssl(&self, args: &[&str]) -> Run {
        run_in(Some(self.dir.path()), "openssl", args, &[])
    }

    /// The uncompressed point (65 bytes on P-256, 97 on P-384) of a PEM public key
    /// (SubjectPublicKeyInfo).
    pub fn pubkey_point(&self, pem: &str) -> Vec<u8> {
        let der = format!("{pem}.der");
        self.openssl(&[
            "pkey", "-pubin", "-in", pem, "-outform", "DER", "-out", &der,
        ])
        .ok();
        let der = fs::read(&der).expect("read DER public key");
        // SEQUENCE { SEQUENCE { ecPublicKey, curve }, BIT STRING 00 04‖X‖Y }: 26 header bytes before
        // a P-256 point (prime256v1), 23 before a P-384 one (secp384r1, a shorter OID).
        match der.len() {
            91 => der[26..].to_vec(),
            120 => der[23..].to_vec(),
            _ => panic!("not a P-256 or P-384 public key: {}", hex::encode(&der)),
        }
    }

    /// `yubico-piv-tool -a verify-pin -P <PIN> args…`: an action that needs the PIN verified first.
    pub fn ykpiv_after_pin(&self, args: &[&str]) -> Run {
        let mut all = vec!["-a", "verify-pin", "-P", PIN];
        all.extend_from_slice(args);
        self.ykpiv(&all)
    }

    /// A key pair made by `openssl genpkey <genpkey_args>` in `<name>.key`, its public key in
    /// `<name>.pub`; returns both paths.
    pub fn openssl_key(&self, name: &str, genpkey_args: &[&str]) -> (String, String) {
        let (key, public) = (
            self.file(&format!("{name}.key")),
            self.file(&format!("{name}.pub")),
        );
        let mut args = vec!["genpkey"];
        args.extend_from_slice(genpkey_args);
        args.extend_from_slice(&["-out", &key]);
        self.openssl(&args).ok();
        self.openssl(&["pkey", "-in", &key, "-pubout", "-out", &public])
            .ok();
        (key, public)
    }

    /// The public key of a PEM certificate, written to `<cert>.pub.pem`; returns that path.
    pub fn cert_public_key(&self, cert: &str) -> String {
        let pem = format!("{cert}.pub.pem");
        self.openssl(&["x509", "-in", cert, "-pubkey", "-noout", "-out", &pem])
            .ok();
        pem
    }

    /// Asserts that `sig` is a SHA-256 signature of the file `msg` by `public_pem` (`openssl dgst
    /// -verify`), and that it is not one of another message.
    pub fn assert_sha256_signature(&self, public_pem: &str, sig: &str, msg: &str) {
        let verify = |data: &str| {
            self.openssl(&[
                "dgst",
                "-sha256",
                "-verify",
                public_pem,
                "-signature",
                sig,
                data,
            ])
        };
        verify(msg).ok().has("Verified OK");
        let other = format!("{msg}.other");
        fs::write(&other, "a different message\n").expect("write other");
        verify(&other).fails().has("Verification failure");
    }

    /// The DER SubjectPublicKeyInfo of a PEM public key, whatever its algorithm: 91 bytes for P-256,
    /// 120 for P-384, 294 for RSA-2048.
    pub fn spki(&self, pem: &str) -> Vec<u8> {
        let der = format!("{pem}.spki.der");
        self.openssl(&[
            "pkey", "-pubin", "-in", pem, "-outform", "DER", "-out", &der,
        ])
        .ok();
        fs::read(&der).expect("read DER public key")
    }

    /// [`Rig::spki`] of a PEM certificate's public key.
    pub fn cert_spki(&self, cert: &str) -> Vec<u8> {
        self.spki(&self.cert_public_key(cert))
    }

    /// The modulus size in bits of a PEM RSA public key, as openssl reads it ("Public-Key: (2048 bit)").
    pub fn rsa_bits(&self, pem: &str) -> u32 {
        let run = self
            .openssl(&["rsa", "-pubin", "-in", pem, "-noout", "-text"])
            .ok();
        run.out
            .lines()
            .find_map(|l| l.trim().strip_prefix("Public-Key: ("))
            .and_then(|rest| rest.strip_suffix(" bit)"))
            .and_then(|bits| bits.parse().ok())
            .unwrap_or_else(|| panic!("not an RSA public key:{}", run.describe()))
    }

    /// The point of a PEM certificate's public key.
    pub fn cert_point(&self, cert: &str) -> Vec<u8> {
        let pem = format!("{cert}.pub.pem");
        self.openssl(&["x509", "-in", cert, "-pubkey", "-noout", "-out", &pem])
            .ok();
        self.pubkey_point(&pem)
    }

    /// The SHA-256 fingerprint of a PEM certificate, lowercase hex without separators (the form
    /// `yubico-piv-tool -a status` prints).
    pub fn cert_fingerprint(&self, cert: &str) -> String {
        let run = self
            .openssl(&["x509", "-in", cert, "-noout", "-fingerprint", "-sha256"])
            .ok();
        let value = run
            .out
            .lines()
            .find_map(|l| l.split_once('=').map(|(_, v)| v.to_owned()))
            .unwrap_or_else(|| panic!("no fingerprint:{}", run.describe()));
        value.trim().replace(':', "").to_lowercase()
    }

    /// A certificate for the public key in `pubkey_pem`, issued by a throwaway CA: the stand-in for
    /// `yubico-piv-tool -a selfsign-certificate` (see the known-issue list). keyUsage digitalSignature, so
    /// OpenSC gives a 9A key CKA_SIGN. Returns the certificate's path.
    pub fn issue_cert(&self, pubkey_pem: &str, cn: &str) -> String {
        self.issue_cert_with(pubkey_pem, cn, "keyUsage=critical,digitalSignature")
    }

    /// [`Rig::issue_cert`] with the given `openssl x509 -extfile` lines.
    pub fn issue_cert_with(&self, pubkey_pem: &str, cn: &str, extensions: &str) -> String {
        let (ca_key, ca_pem) = (self.file("ca.key"), self.file("ca.pem"));
        if !Path::new(&ca_pem).exists() {
            self.openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &ca_key,
                "-out",
                &ca_pem,
                "-subj",
                "/CN=tessera interop test CA",
                "-days",
                "30",
            ])
            .ok();
        }
        let (csr_key, csr) = (
            self.file(&format!("{cn}.csr.key")),
            self.file(&format!("{cn}.csr")),
        );
        self.openssl(&[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &csr_key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ])
        .ok();
        let ext = self.file(&format!("{cn}.ext.cnf"));
        fs::write(&ext, format!("{extensions}\n")).expect("write extensions");
        let cert = self.file(&format!("{cn}.crt"));
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-set_serial",
            "1",
            "-force_pubkey",
            pubkey_pem,
            "-extfile",
            &ext,
            "-days",
            "30",
            "-out",
            &cert,
        ])
        .ok();
        assert_eq!(self.cert_spki(&cert), self.spki(pubkey_pem));
        cert
    }
}

/// The commands of a `yubico-piv-tool --verbose=2` trace (`> …` lines) after the first one starting with
/// `marker` (lowercase spaced hex, e.g. "00 20 00 80 08"): what the tool sent to the card from then on.
pub fn ykpiv_commands_after(trace: &str, marker: &str) -> Option<Vec<String>> {
    let mut lines = trace
        .lines()
        .filter_map(|l| l.strip_prefix("> "))
        .map(|l| l.trim().to_owned());
    lines.find(|l| l.starts_with(marker))?;
    Some(lines.collect())
}

/// From an `OPENSC_DEBUG=3` log: the response bytes (data ‖ SW), in order, to every outgoing APDU whose
/// bytes start with `command` (spaced hex, e.g. "00 47 00 9D").
pub fn opensc_responses_to(log: &str, command: &str) -> Vec<Vec<u8>> {
    let wanted = hex::decode(command.replace(' ', "")).expect("hex command");
    let lines: Vec<&str> = log.lines().collect();
    let mut found = Vec::new();
    let mut pending = false;
    let mut i = 0;
    while i < lines.len() {
        let Some((direction, bytes, next)) = hex_dump(&lines, i) else {
            i += 1;
            continue;
        };
        match direction {
            "Outgoing" => pending = bytes.starts_with(&wanted),
            _ if pending => {
                found.push(bytes);
                pending = false;
            }
            _ => {}
        }
        i = next;
    }
    found
}

/// Parses the dump starting at `lines[at]` if it is an "Outgoing/Incoming APDU (N bytes):" header: each
/// following line holds up to 16 hex bytes, then their ASCII rendering. Returns direction, bytes and the
/// index after the dump.
fn hex_dump<'a>(lines: &[&'a str], at: usize) -> Option<(&'a str, Vec<u8>, usize)> {
    let (direction, rest) = lines[at].split_once(" APDU (")?;
    if direction != "Outgoing" && direction != "Incoming" {
        return None;
    }
    let count: usize = rest.strip_suffix(" bytes):")?.parse().ok()?;
    let mut bytes = Vec::with_capacity(count);
    let mut next = at + 1;
    while bytes.len() < count && next < lines.len() {
        let take = (count - bytes.len()).min(16);
        for token in lines[next].split_whitespace().take(take) {
            bytes.push(u8::from_str_radix(token, 16).ok()?);
        }
        next += 1;
    }
    (bytes.len() == count).then_some((direction, bytes, next))
}
