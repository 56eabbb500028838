//! The staging world the lab tests log into: the sample census personalized, Frascati delivered,
//! a workstation issued, and helpers to open cards and join their halves.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use card_os::{AppletRegistry, Card, Durability};
use card_transport::{InProcessReader, Transport};
use login_lab::client::{Identity, LabClient, Reply};
use login_lab::{Lab, LabConfig};
use personalization::batch::{self, BatchOptions, CardProfile};
use personalization::ca::StagingCa;
use personalization::registry::Registry;
use personalization::workstation;

#[allow(unused_imports)]
pub use login_lab::staging::{SAMPLE_ALS as ALS, SAMPLE_ENTITY as ENTITY, SAMPLE_MAYOR as MAYOR};
pub const OPERATOR: &str = "GLLFNC90T45D773N";

pub struct World {
    pub dir: tempfile::TempDir,
    pub batch: PathBuf,
    pub ca: PathBuf,
    pub workstation: String,
}

/// The applets bureau cards carry.
pub fn card_registry() -> AppletRegistry {
    AppletRegistry::new()
        .register(piv_applet::aid(), piv_applet::factory)
        .register(cns_applet::aid(), cns_applet::factory)
}

pub fn census() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/census.csv")
}

/// The sample census personalized, the Frascati parcel delivered to its mayor (whose card is then
/// active) and one workstation certificate of Frascati issued.
pub fn world(profile: CardProfile) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = BatchOptions {
        profile,
        ..BatchOptions::default()
    };
    let staged = login_lab::staging::stage(
        &census(),
        &dir.path().join("ca"),
        &dir.path().join("batch"),
        &options,
        ENTITY,
        MAYOR,
    )
    .expect("the staged world");
    World {
        batch: staged.batch_dir,
        ca: staged.ca_dir,
        workstation: staged.workstation,
        dir,
    }
}

impl World {
    pub fn lab(&self, clock: Option<SystemTime>) -> Lab {
        let mut config = LabConfig::new(self.batch.clone(), self.ca.clone());
        config.listen = "127.0.0.1:0".parse().expect("addr");
        config.card_listen = "127.0.0.1:0".parse().expect("addr");
        config.clock = clock;
        Lab::start(config).expect("lab starts")
    }

    pub fn registry(&self) -> Registry {
        Registry::open_existing(&self.batch).expect("registry")
    }

    pub fn workstation_identity(&self, name: &str) -> Identity {
        let master = batch::master_key(&self.batch, None).expect("master key");
        let (pkcs12, password) =
            workstation::bundle(&self.registry(), &master, name).expect("bundle");
        Identity::from_pkcs12(&pkcs12, &password).expect("PKCS#12 opens with its password")
    }

    pub fn client(&self, lab: &Lab) -> LabClient {
        LabClient::new(
            lab.workstation_addr(),
            StagingCa::open(&self.ca).expect("ca").certificate_der(),
            self.workstation_identity(&self.workstation),
        )
    }

    pub fn card_of(&self, codice_fiscale: &str) -> personalization::registry::CardRow {
        self.registry()
            .current_card(codice_fiscale)
            .expect("registry")
            .expect("a card")
    }

    pub fn reader(&self, codice_fiscale: &str) -> Box<dyn Transport + Send> {
        let card = self.card_of(codice_fiscale);
        let card = Card::open(
            &self.batch.join(&card.card_file),
            &card_registry(),
            Durability::Relaxed,
        )
        .expect("card image opens");
        Box::new(InProcessReader::new(card_transport::share(card)))
    }

    pub fn envelope(&self, card_number: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(
            self.batch
                .join("envelopes")
                .join(format!("{card_number}.json")),
        )
        .expect("envelope");
        serde_json::from_str(&text).expect("json")
    }

    pub fn joined(&self, codice_fiscale: &str) -> login_lab::holder::Joined {
        login_lab::holder::join(&self.batch, &self.card_of(codice_fiscale).card_number)
            .expect("envelope half and e-mail half")
    }

    pub fn pin(&self, codice_fiscale: &str) -> String {
        self.joined(codice_fiscale).pin.to_string()
    }

    pub fn password(&self, codice_fiscale: &str) -> String {
        self.joined(codice_fiscale).password.to_string()
    }

    /// The PIN of a card whose second half has not been released yet (the bureau's escrow, opened
    /// with the master key): what someone holding the PIN of an unregistered card would type.
    pub fn escrowed_pin(&self, card_number: &str) -> String {
        let master = batch::master_key(&self.batch, None).expect("master key");
        let sealed = self
            .registry()
            .sealed_halves(card_number)
            .expect("registry")
            .expect("escrow");
        let (second, _, _) =
            personalization::secrets::unseal_second_halves(&master, card_number, &sealed)
                .expect("unseal");
        format!(
            "{}{}",
            self.envelope(card_number)["pin_first_half"]
                .as_str()
                .expect("half"),
            second.expose()
        )
    }

    pub fn card_identity(&self, codice_fiscale: &str) -> Identity {
        Identity::from_card(self.reader(codice_fiscale), &self.pin(codice_fiscale))
            .expect("the card takes its joined PIN")
    }
}

pub fn refusal_code(reply: &Reply) -> String {
    assert_eq!(reply.status, 403, "{}", reply.text());
    reply.json().expect("json")["error"]
        .as_str()
        .expect("code")
        .to_string()
}

pub fn assert_logged_in(
    reply: &Reply,
    codice_fiscale: &str,
    workstation: &str,
) -> serde_json::Value {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let whoami = reply.json().expect("json");
    assert_eq!(whoami["codice_fiscale"], codice_fiscale);
    assert_eq!(whoami["workstation"], workstation);
    whoami
}

pub fn card_login(world: &World, lab: &Lab, codice_fiscale: &str) -> (LabClient, Reply) {
    let mut client = world.client(lab);
    let reply = client
        .login_with_card(&world.card_identity(codice_fiscale))
        .expect("the card login is answered");
    (client, reply)
}
