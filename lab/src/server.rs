//! The relying party: two HTTPS listeners ("doors") over rustls, sessions in memory, and the routes.
//!
//! Why two doors: a TLS client offers one certificate per handshake, and the real system wants two —
//! the workstation's (a software key installed from its PKCS#12) and the operator's card. So:
//! - the **workstation door** (`--listen`, 8443) asks every connection for a certificate and admits
//!   only an active workstation this batch issued; the whole application lives behind it, and every
//!   request is re-checked, so blocking a workstation ends its sessions at once;
//! - the **card door** (`--card-listen`, the next port) serves one thing: the card login. Its
//!   certificate is the card's (the card signs the handshake; the browser asks the PIN). It takes a
//!   one-time ticket the workstation door handed out, so a card login is always bound to the
//!   workstation it started from, then sets the session cookie (cookies ignore ports) and sends the
//!   browser back through the workstation door.
//!
//! Certificates are checked here rather than by rustls's verifier: the verifier only proves the
//! client holds the key (the handshake signature), so that a certificate from another CA, a blocked
//! workstation or a replaced card gets a page saying so, not a TLS alert a person cannot read.

use std::collections::HashMap;
use std::io::{BufReader, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use personalization::batch::{self, BatchOptions};
use personalization::ca::{Issuing, StagingCa};
use personalization::issuer::Issuer;
use personalization::lifecycle::{Batch, Mailer};
use personalization::mail::SmtpConfig;
use personalization::registry::Registry;
use personalization::secrets::MasterKey;
use personalization::workstation;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use serde_json::json;

use crate::gate::{self, Denied, Operator, Refusal, Workstation};
use crate::http::{self, Request, Response};
use crate::pages;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tessera_lab_session";
/// How long a card-login ticket from the workstation door stays usable.
const TICKET_LIFETIME: Duration = Duration::from_secs(120);
/// How long a session lasts without logging out.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Wrong fallback passwords in a row before a codice fiscale is refused for [`PASSWORD_LOCKOUT`].
const PASSWORD_ATTEMPTS: u32 = 5;
const PASSWORD_LOCKOUT: Duration = Duration::from_secs(60);
/// Connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 64;
/// A connection idle this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{0} is not a personalization batch (no registry.sqlite; make one with `tessera bureau personalize`)")]
    NotABatch(PathBuf),
    #[error(transparent)]
    Ca(#[from] personalization::ca::CaError),
    #[error(transparent)]
    Batch(#[from] personalization::batch::BatchError),
    #[error(transparent)]
    Registry(#[from] personalization::registry::RegistryError),
    #[error("TLS set-up: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What `tessera lab serve` is given.
#[derive(Debug, Clone)]
pub struct LabConfig {
    pub batch_dir: PathBuf,
    pub ca_dir: PathBuf,
    /// The bureau master key file (`None`: the batch's own).
    pub master_key: Option<PathBuf>,
    /// The workstation door.
    pub listen: SocketAddr,
    /// The card door (port 0: any free port).
    pub card_listen: SocketAddr,
    /// A fixed clock for expiry tests; `None`: the system clock.
    pub clock: Option<SystemTime>,
    pub smtp: Option<SmtpConfig>,
}

impl LabConfig {
    /// The defaults of `tessera lab serve`: 127.0.0.1:8443 and :8444.
    pub fn new(batch_dir: PathBuf, ca_dir: PathBuf) -> Self {
        Self {
            batch_dir,
            ca_dir,
            master_key: None,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8443)),
            card_listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8444)),
            clock: None,
            smtp: None,
        }
    }
}

/// How a session was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMethod {
    Card,
    Password,
}

impl LoginMethod {
    fn as_str(self) -> &'static str {
        match self {
            LoginMethod::Card => "card",
            LoginMethod::Password => "password",
        }
    }
}

#[derive(Debug, Clone)]
struct Session {
    operator: Operator,
    workstation: String,
    method: LoginMethod,
    opened: Instant,
}

#[derive(Debug, Clone)]
struct Ticket {
    workstation: Workstation,
    expires: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    Workstation,
    Card,
}

struct Shared {
    config: LabConfig,
    ca: StagingCa,
    master: MasterKey,
    workstation_port: u16,
    card_port: u16,
    sessions: Mutex<HashMap<String, Session>>,
    tickets: Mutex<HashMap<String, Ticket>>,
    password_failures: Mutex<HashMap<String, (u32, Instant)>>,
    connections: AtomicUsize,
    stopping: AtomicBool,
}

/// A running lab: both doors listening until [`Lab::shutdown`] (or drop).
pub struct Lab {
    shared: Arc<Shared>,
    workstation_addr: SocketAddr,
    card_addr: SocketAddr,
    ca_file: PathBuf,
    acceptors: Vec<JoinHandle<()>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A handler that panicked cannot leave these maps half-updated (single inserts and removes).
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy: make the token unusable rather than guessable.
        return String::new();
    }
    hex::encode(bytes)
}

/// The verifier of both doors: proves possession of the offered certificate's key (rustls checks the
/// handshake signature with it) and leaves admission to [`gate`].
#[derive(Debug)]
struct PossessionOnly {
    hints: Vec<DistinguishedName>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PossessionOnly {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        // Without a certificate the person still gets a page saying what is missing.
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The names the lab's server certificate carries: `localhost`, the loopback addresses and the
/// address it listens on when that is a specific one.
fn server_names(listen: &[SocketAddr]) -> (Vec<String>, Vec<IpAddr>) {
    let mut addresses = vec![
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    for addr in listen {
        let ip = addr.ip();
        if !ip.is_unspecified() && !addresses.contains(&ip) {
            addresses.push(ip);
        }
    }
    (vec!["localhost".to_string()], addresses)
}

/// The TLS configuration of each door: one server certificate, and a CertificateRequest naming the
/// issuing CA of the certificate that door wants (hosts-ca for the workstation door, cards-ca for the
/// card door), so a browser choosing automatically offers the right one on each.
fn tls_configs(
    ca: &StagingCa,
    ca_dir: &Path,
    listen: &[SocketAddr],
    now: SystemTime,
) -> Result<[Arc<ServerConfig>; 2], LabError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // A fresh server certificate per start, its serial from the CA's issuance index: browsers trust
    // the CA, so nothing about the server key needs to outlive the process (and no key file exists).
    let serial = Issuer::open(ca_dir)?.allocate_serial(
        "login lab server certificate",
        personalization::lifecycle::unix(now),
    )?;
    let (names, addresses) = server_names(listen);
    let identity = ca.issue_tls_server(&names, &addresses, serial, now)?;
    let mut chain = vec![CertificateDer::from(identity.certificate_der.clone())];
    chain.extend(identity.chain_der.iter().cloned().map(CertificateDer::from));
    let config = |wanted: Issuing| -> Result<Arc<ServerConfig>, LabError> {
        let verifier = Arc::new(PossessionOnly {
            hints: vec![DistinguishedName::from(ca.issuing_subject_der(wanted))],
            algorithms: provider.signature_verification_algorithms,
        });
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_pkcs8_der.to_vec()));
        let config = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key)?;
        Ok(Arc::new(config))
    };
    Ok([config(Issuing::Hosts)?, config(Issuing::Cards)?])
}

fn bind(addr: SocketAddr) -> Result<TcpListener, LabError> {
    TcpListener::bind(addr).map_err(|source| LabError::Listen { addr, source })
}

impl Lab {
    /// Opens the batch and the CA, issues the server certificate, writes `BATCH/lab/ca.crt` (the
    /// certificate browsers and `curl --cacert` must trust) and starts both doors.
    pub fn start(config: LabConfig) -> Result<Lab, LabError> {
        if !config.batch_dir.join("registry.sqlite").exists() {
            return Err(LabError::NotABatch(config.batch_dir.clone()));
        }
        Registry::open_existing(&config.batch_dir)?;
        let ca = StagingCa::open(&config.ca_dir)?;
        let master = batch::master_key(&config.batch_dir, config.master_key.as_deref())?;
        let workstation_listener = bind(config.listen)?;
        let card_listener = bind(config.card_listen)?;
        let workstation_addr =
            workstation_listener
                .local_addr()
                .map_err(|source| LabError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let card_addr = card_listener
            .local_addr()
            .map_err(|source| LabError::Listen {
                addr: config.card_listen,
                source,
            })?;
        // The server certificate follows the real clock even when the lab's is fixed: clients check
        // it against theirs.
        let [workstation_tls, card_tls] = tls_configs(
            &ca,
            &config.ca_dir,
            &[workstation_addr, card_addr],
            SystemTime::now(),
        )?;

        let lab_dir = config.batch_dir.join("lab");
        std::fs::create_dir_all(&lab_dir).map_err(|source| LabError::Write {
            path: lab_dir.clone(),
            source,
        })?;
        let ca_file = lab_dir.join("ca.crt");
        std::fs::write(&ca_file, ca.certificate_pem()).map_err(|source| LabError::Write {
            path: ca_file.clone(),
            source,
        })?;

        let shared = Arc::new(Shared {
            config,
            ca,
            master,
            workstation_port: workstation_addr.port(),
            card_port: card_addr.port(),
            sessions: Mutex::new(HashMap::new()),
            tickets: Mutex::new(HashMap::new()),
            password_failures: Mutex::new(HashMap::new()),
            connections: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
        });
        let acceptors = [
            (workstation_listener, Door::Workstation, workstation_tls),
            (card_listener, Door::Card, card_tls),
        ]
        .into_iter()
        .map(|(listener, door, tls)| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || accept_loop(&shared, door, listener, &tls))
        })
        .collect();
        tracing::info!(%workstation_addr, %card_addr, "login lab listening");
        Ok(Lab {
            shared,
            workstation_addr,
            card_addr,
            ca_file,
            acceptors,
        })
    }

    pub fn workstation_addr(&self) -> SocketAddr {
        self.workstation_addr
    }

    pub fn card_addr(&self) -> SocketAddr {
        self.card_addr
    }

    /// `BATCH/lab/ca.crt`: what a browser or curl must trust to reach the lab.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The login page's address, as a person types it.
    pub fn url(&self) -> String {
        format!("https://localhost:{}/login", self.workstation_addr.port())
    }

    /// Stops accepting; connections being served finish their current request.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for addr in [self.workstation_addr, self.card_addr] {
            // Wake the blocking accept so the loop sees `stopping`.
            let _ = TcpStream::connect_timeout(&wake_address(addr), Duration::from_secs(1));
        }
        for acceptor in self.acceptors.drain(..) {
            let _ = acceptor.join();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.acceptors.is_empty() {
            self.stop();
        }
    }
}

fn wake_address(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

fn accept_loop(shared: &Arc<Shared>, door: Door, listener: TcpListener, tls: &Arc<ServerConfig>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        if shared.connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            drop(stream);
            continue;
        }
        let shared = Arc::clone(shared);
        let tls = Arc::clone(tls);
        std::thread::spawn(move || {
            if let Err(error) = serve_connection(&shared, door, stream, tls) {
                tracing::debug!(?door, %error, "connection ended");
            }
            shared.connections.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

fn serve_connection(
    shared: &Shared,
    door: Door,
    mut stream: TcpStream,
    tls: Arc<ServerConfig>,
) -> Result<(), Box<dyn std::error::Error>> {
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_nodelay(true)?;
    let mut connection = rustls::ServerConnection::new(tls)?;
    while connection.is_handshaking() {
        connection.complete_io(&mut stream)?;
    }
    let peer: Option<Vec<u8>> = connection
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|certificate| certificate.to_vec());
    let mut reader = BufReader::new(rustls::StreamOwned::new(connection, stream));
    loop {
        let request = match http::read_request(&mut reader) {
            Ok(Some(request)) => request,
            Ok(None) => break,
            Err(error) => {
                let response = Response::html(
                    error.status(),
                    pages::message("Bad request", &error.to_string()),
                );
                let _ = response.write_to(reader.get_mut(), false);
                break;
            }
        };
        let keep_alive = request.keep_alive() && !shared.stopping.load(Ordering::SeqCst);
        let response = route(shared, door, peer.as_deref(), &request);
        tracing::info!(
            ?door,
            method = %request.method,
            path = %request.path,
            status = response.status,
            "request"
        );
        response.write_to(reader.get_mut(), keep_alive)?;
        if !keep_alive {
            break;
        }
    }
    let tls = reader.get_mut();
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

fn refused(request: &Request, refusal: &Refusal) -> Response {
    tracing::info!(code = refusal.code(), reason = %refusal, "refused");
    if request.wants_json() {
        Response::json(
            403,
            &json!({"error": refusal.code(), "reason": refusal.to_string()}),
        )
    } else {
        Response::html(403, pages::refusal(refusal))
    }
}

/// A request the lab could not carry out for a reason of the bureau's (a card already registered,
/// the last mayor's card): 409 with the library's sentence.
fn conflict(request: &Request, reason: &str) -> Response {
    if request.wants_json() {
        Response::json(409, &json!({"error": "refused", "reason": reason}))
    } else {
        Response::html(409, pages::message("Not done", reason))
    }
}

fn fault(request: &Request, reason: &str) -> Response {
    tracing::error!(%reason, "lab fault");
    if request.wants_json() {
        Response::json(500, &json!({"error": "fault", "reason": reason}))
    } else {
        Response::html(500, pages::message("Lab error", reason))
    }
}

fn not_found(request: &Request) -> Response {
    if request.wants_json() {
        Response::json(404, &json!({"error": "not-found", "path": request.path}))
    } else {
        Response::html(404, pages::message("Not found", &request.path))
    }
}

fn denied(request: &Request, denied: Denied) -> Response {
    match denied {
        Denied::Refused(refusal) => refused(request, &refusal),
        Denied::Fault(reason) => fault(request, &reason),
    }
}

fn url_host(request: &Request) -> String {
    let host = request.host().unwrap_or("localhost");
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

fn session_cookie(token: &str) -> String {
    format!("{SESSION_COOKIE}={token}; Path=/; Secure; HttpOnly; SameSite=Lax")
}

fn whoami_json(session: &Session) -> serde_json::Value {
    json!({
        "codice_fiscale": session.operator.codice_fiscale,
        "name": session.operator.name,
        "entity": session.operator.entity,
        "entity_name": session.operator.entity_name,
        "profiles": session.operator.profiles,
        "card_number": session.operator.card_number,
        "workstation": session.workstation,
        "method": session.method.as_str(),
    })
}

impl Shared {
    fn now(&self) -> SystemTime {
        self.config.clock.unwrap_or_else(SystemTime::now)
    }

    fn registry(&self) -> Result<Registry, Denied> {
        Registry::open_existing(&self.config.batch_dir).map_err(Denied::from)
    }

    fn workstation(&self, peer: Option<&[u8]>) -> Result<Workstation, Denied> {
        gate::workstation(&self.ca, &self.registry()?, peer, self.now())
    }

    fn open_session(
        &self,
        operator: Operator,
        workstation: &str,
        method: LoginMethod,
    ) -> (String, Session) {
        let token = random_token();
        let session = Session {
            operator,
            workstation: workstation.to_string(),
            method,
            opened: Instant::now(),
        };
        lock(&self.sessions).insert(token.clone(), session.clone());
        tracing::info!(
            codice_fiscale = %session.operator.codice_fiscale,
            workstation,
            method = method.as_str(),
            "logged in"
        );
        (token, session)
    }

    /// The request's session, re-checked: same workstation, card still active. A session whose card
    /// was blocked (a new card requested) or expired ends here.
    fn session(&self, request: &Request, at: &Workstation) -> Result<(String, Session), Denied> {
        let token = request
            .cookie(SESSION_COOKIE)
            .or_else(|| {
                request
                    .header("authorization")
                    .and_then(|h| h.strip_prefix("Bearer "))
            })
            .ok_or(Refusal::NotLoggedIn)?
            .to_string();
        let session = lock(&self.sessions)
            .get(&token)
            .cloned()
            .filter(|s| s.opened.elapsed() < SESSION_LIFETIME)
            .ok_or(Refusal::NotLoggedIn)?;
        if session.workstation != at.name {
            return Err(Refusal::OtherWorkstation {
                opened: session.workstation,
                now: at.name.clone(),
            }
            .into());
        }
        let registry = self.registry()?;
        let card = registry
            .card(&session.operator.card_number)?
            .ok_or(Refusal::UnknownCard)?;
        if let Err(refusal) = gate::check_card_state(&card, self.now()) {
            lock(&self.sessions).remove(&token);
            return Err(refusal.into());
        }
        Ok((token, session))
    }

    fn lifecycle(&self) -> Result<Batch<'_>, Denied> {
        Batch::open(
            &self.config.batch_dir,
            self.config.master_key.as_deref(),
            self.now(),
        )
        .map_err(|e| Denied::Fault(e.to_string()))
    }

    fn mailer(&self) -> Mailer {
        Mailer::for_batch(&self.config.batch_dir, self.config.smtp.clone())
    }
}

fn route(shared: &Shared, door: Door, peer: Option<&[u8]>, request: &Request) -> Response {
    match door {
        Door::Workstation => workstation_door(shared, peer, request),
        Door::Card => card_door(shared, peer, request),
    }
}

fn card_door(shared: &Shared, peer: Option<&[u8]>, request: &Request) -> Response {
    let api = match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/login/card") => false,
        ("GET" | "POST", "/api/login/card") => true,
        _ => {
            // Everything else lives behind the workstation door.
            return Response::redirect(&format!(
                "https://{}:{}/login",
                url_host(request),
                shared.workstation_port
            ));
        }
    };
    // The ticket is spent only by a login that succeeds: a browser that first offered the wrong
    // certificate (and retries, as Firefox does within milliseconds) must see that refusal, not a
    // spent ticket.
    let name = request
        .query("ticket")
        .map(str::to_string)
        .or_else(|| request.field("ticket"));
    let ticket = name
        .as_ref()
        .and_then(|t| lock(&shared.tickets).get(t).cloned())
        .filter(|t| t.expires > Instant::now());
    let (Some(name), Some(ticket)) = (name, ticket) else {
        return refused(request, &Refusal::BadTicket);
    };
    let operator = match shared.registry().and_then(|registry| {
        gate::card(
            &shared.ca,
            &registry,
            peer,
            &ticket.workstation,
            shared.now(),
        )
    }) {
        Ok(operator) => operator,
        Err(error) => return denied(request, error),
    };
    // Two logins racing on one ticket: only the one that removes it gets a session.
    if lock(&shared.tickets).remove(&name).is_none() {
        return refused(request, &Refusal::BadTicket);
    }
    let (token, session) =
        shared.open_session(operator, &ticket.workstation.name, LoginMethod::Card);
    if api {
        let mut body = whoami_json(&session);
        body["session"] = json!(token);
        Response::json(200, &body).with_header("Set-Cookie", &session_cookie(&token))
    } else {
        Response::redirect(&format!(
            "https://{}:{}/",
            url_host(request),
            shared.workstation_port
        ))
        .with_header("Set-Cookie", &session_cookie(&token))
    }
}

fn workstation_door(shared: &Shared, peer: Option<&[u8]>, request: &Request) -> Response {
    let workstation = match shared.workstation(peer) {
        Ok(workstation) => workstation,
        Err(error) => return denied(request, error),
    };
    let method = request.method.as_str();
    let path = request.path.as_str();
    match (method, path) {
        ("GET", "/login") | ("GET", "/api/login") => {
            let ticket = random_token();
            lock(&shared.tickets).retain(|_, t| t.expires > Instant::now());
            lock(&shared.tickets).insert(
                ticket.clone(),
                Ticket {
                    workstation: workstation.clone(),
                    expires: Instant::now() + TICKET_LIFETIME,
                },
            );
            let host = url_host(request);
            if path == "/api/login" {
                Response::json(
                    200,
                    &json!({
                        "workstation": workstation.name,
                        "entity": workstation.entity,
                        "ticket": ticket,
                        "card_login": format!("https://{host}:{}/api/login/card?ticket={ticket}", shared.card_port),
                    }),
                )
            } else {
                let url = format!(
                    "https://{host}:{}/login/card?ticket={ticket}",
                    shared.card_port
                );
                Response::html(200, pages::login(&workstation, &url))
            }
        }
        ("POST", "/login/password") | ("POST", "/api/login/password") => {
            password_login(shared, &workstation, request)
        }
        ("POST", "/logout") | ("POST", "/api/logout") => {
            if let Some(token) = request.cookie(SESSION_COOKIE) {
                lock(&shared.sessions).remove(token);
            }
            if request.wants_json() {
                Response::json(200, &json!({"logged_out": true}))
            } else {
                Response::redirect("/login").with_header(
                    "Set-Cookie",
                    &format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; Max-Age=0"),
                )
            }
        }
        _ => {
            let session = match shared.session(request, &workstation) {
                Ok((_, session)) => session,
                Err(Denied::Refused(Refusal::NotLoggedIn))
                    if !request.wants_json() && method == "GET" =>
                {
                    return Response::redirect("/login")
                }
                Err(error) => return denied(request, error),
            };
            logged_in(shared, &session, request)
        }
    }
}

fn password_login(shared: &Shared, workstation: &Workstation, request: &Request) -> Response {
    let codice_fiscale = request
        .field("codice_fiscale")
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase();
    let password = zeroize::Zeroizing::new(request.field("password").unwrap_or_default());
    {
        let failures = lock(&shared.password_failures);
        if let Some((count, last)) = failures.get(&codice_fiscale) {
            if *count >= PASSWORD_ATTEMPTS && last.elapsed() < PASSWORD_LOCKOUT {
                return refused(request, &Refusal::WrongPassword);
            }
        }
    }
    let checked = (|| -> Result<Operator, Denied> {
        let registry = shared.registry()?;
        let card = registry
            .current_card(&codice_fiscale)?
            .ok_or(Refusal::WrongPassword)?;
        let verifier = registry
            .password_verifier(&card.card_number)?
            .ok_or(Refusal::WrongPassword)?;
        if !shared
            .master
            .check_password(&card.card_number, &password, &verifier)
        {
            return Err(Refusal::WrongPassword.into());
        }
        gate::check_card_state(&card, shared.now())?;
        gate::operator(&registry, &card, workstation)
    })();
    let operator = match checked {
        Ok(operator) => operator,
        Err(error) => {
            if matches!(error, Denied::Refused(Refusal::WrongPassword)) {
                let mut failures = lock(&shared.password_failures);
                let entry = failures
                    .entry(codice_fiscale)
                    .or_insert((0, Instant::now()));
                *entry = (entry.0 + 1, Instant::now());
            }
            return denied(request, error);
        }
    };
    lock(&shared.password_failures).remove(&codice_fiscale);
    let (token, session) = shared.open_session(operator, &workstation.name, LoginMethod::Password);
    if request.wants_json() {
        let mut body = whoami_json(&session);
        body["session"] = json!(token);
        Response::json(200, &body).with_header("Set-Cookie", &session_cookie(&token))
    } else {
        Response::redirect("/").with_header("Set-Cookie", &session_cookie(&token))
    }
}

fn logged_in(shared: &Shared, session: &Session, request: &Request) -> Response {
    let method = request.method.as_str();
    let path = request.path.as_str();
    match (method, path) {
        ("GET", "/") => Response::html(
            200,
            pages::home(
                &session.operator,
                &session.workstation,
                session.method.as_str(),
            ),
        ),
        ("GET", "/api/whoami") => Response::json(200, &whoami_json(session)),
        _ if path.starts_with("/console") || path.starts_with("/api/console") => {
            if !session.operator.is_security_officer() {
                return refused(
                    request,
                    &Refusal::NotSecurityOfficer(session.operator.entity.clone()),
                );
            }
            console(shared, session, request)
        }
        _ => not_found(request),
    }
}

/// Which console action a path names, HTML and JSON forms alike.
fn console_action(path: &str) -> &str {
    path.strip_prefix("/api").unwrap_or(path)
}

fn console(shared: &Shared, session: &Session, request: &Request) -> Response {
    let operator = &session.operator;
    let by = operator.codice_fiscale.as_str();
    let action = console_action(&request.path);
    let done = |notice: String, detail: serde_json::Value| {
        if request.wants_json() {
            let mut body = detail;
            body["done"] = json!(notice);
            Response::json(200, &body)
        } else {
            console_page(shared, operator, Some(&notice), request)
        }
    };
    match (request.method.as_str(), action) {
        ("GET", "/console") => console_page(shared, operator, None, request),
        ("POST", "/console/register" | "/console/resend" | "/console/replace") => {
            let Some(card) = request.field("card") else {
                return conflict(request, "which card? (field `card`)");
            };
            if !entity_cards(shared, &operator.entity)
                .is_ok_and(|cards| cards.iter().any(|(c, _)| c.card_number == card))
            {
                return conflict(
                    request,
                    &format!("card {card} is not a card of entity {}", operator.entity),
                );
            }
            let mut lifecycle = match shared.lifecycle() {
                Ok(lifecycle) => lifecycle,
                Err(error) => return denied(request, error),
            };
            let mailer = shared.mailer();
            let result = match action {
                "/console/register" => lifecycle
                    .register(&card, by, &mailer)
                    .map(|_| (format!("card {card} is registered and active; the holder's second halves were e-mailed"), json!({"card": card, "state": "active"}))),
                "/console/resend" => lifecycle
                    .resend(&card, by, &mailer)
                    .map(|_| (format!("the second halves of card {card} were e-mailed again"), json!({"card": card}))),
                _ => {
                    let options = BatchOptions {
                        master_key: shared.config.master_key.clone(),
                        now: shared.now(),
                        ..BatchOptions::default()
                    };
                    let force = request.field("force").is_some_and(|f| f == "true");
                    lifecycle
                        .replace(&card, by, force, &shared.config.ca_dir, &options)
                        .map(|new| (format!("card {card} is blocked; new card {new} is personalized"), json!({"card": card, "state": "blocked", "new_card": new})))
                }
            };
            match result {
                Ok((notice, detail)) => done(notice, detail),
                Err(error) => conflict(request, &error.to_string()),
            }
        }
        ("POST", "/console/workstations/request") => {
            match request_workstation(shared, &operator.entity) {
                Ok(name) => done(
                    format!("workstation certificate {name} is issued: download it below"),
                    json!({"workstation": name}),
                ),
                Err(reason) => conflict(request, &reason),
            }
        }
        ("POST", "/console/workstations/block") => {
            let name = request.field("name").unwrap_or_default();
            if let Err(reason) = own_workstation(shared, &operator.entity, &name) {
                return conflict(request, &reason);
            }
            let result = shared
                .registry()
                .map_err(|_| "the registry cannot be opened".to_string())
                .and_then(|mut registry| {
                    workstation::block(
                        &mut registry,
                        &name,
                        personalization::lifecycle::unix(shared.now()),
                    )
                    .map_err(|e| e.to_string())
                });
            match result {
                Ok(()) => done(
                    format!("workstation {name} is blocked"),
                    json!({"workstation": name, "state": "blocked"}),
                ),
                Err(reason) => conflict(request, &reason),
            }
        }
        ("GET", "/console/workstations/download") => {
            let name = request.query("name").unwrap_or_default().to_string();
            match workstation_bundle(shared, &operator.entity, &name) {
                Ok((pkcs12, password)) => {
                    if request.wants_json() {
                        Response::json(
                            200,
                            &json!({"workstation": name, "password": password.as_str(), "pkcs12_hex": hex::encode(pkcs12)}),
                        )
                    } else {
                        Response::html(200, pages::download(&name, &password))
                    }
                }
                Err(reason) => conflict(request, &reason),
            }
        }
        ("GET", path) if path.starts_with("/console/workstations/") && path.ends_with(".p12") => {
            let name = path
                .trim_start_matches("/console/workstations/")
                .trim_end_matches(".p12")
                .to_string();
            match workstation_bundle(shared, &operator.entity, &name) {
                Ok((pkcs12, _)) => Response::new(200, "application/x-pkcs12", pkcs12).with_header(
                    "Content-Disposition",
                    &format!("attachment; filename=\"{name}.p12\""),
                ),
                Err(reason) => conflict(request, &reason),
            }
        }
        _ => not_found(request),
    }
}

/// The entity's cards with their effective states (a card belongs to every entity it serves).
fn entity_cards(
    shared: &Shared,
    entity: &str,
) -> Result<Vec<(personalization::registry::CardRow, String)>, Denied> {
    let lifecycle = shared.lifecycle()?;
    let rows = lifecycle
        .status()
        .map_err(|e| Denied::Fault(e.to_string()))?;
    Ok(rows
        .into_iter()
        .filter(|(card, _)| card.entities.iter().any(|e| e == entity))
        .map(|(card, state)| (card, state.as_str().to_string()))
        .collect())
}

fn console_page(
    shared: &Shared,
    operator: &Operator,
    notice: Option<&str>,
    request: &Request,
) -> Response {
    let cards = match entity_cards(shared, &operator.entity) {
        Ok(cards) => cards,
        Err(error) => return denied(request, error),
    };
    let workstations = match shared.registry().and_then(|registry| {
        workstation::list(
            &registry,
            Some(&operator.entity),
            personalization::lifecycle::unix(shared.now()),
        )
        .map_err(Denied::from)
    }) {
        Ok(rows) => rows,
        Err(error) => return denied(request, error),
    };
    if request.wants_json() {
        let cards: Vec<serde_json::Value> = cards
            .iter()
            .map(|(card, state)| {
                json!({
                    "card_number": card.card_number, "codice_fiscale": card.codice_fiscale,
                    "holder": card.holder, "state": state, "replaces": card.replaces,
                })
            })
            .collect();
        return Response::json(
            200,
            &json!({"entity": operator.entity, "cards": cards, "workstations": workstations}),
        );
    }
    Response::html(200, pages::console(operator, &cards, &workstations, notice))
}

fn own_workstation(shared: &Shared, entity: &str, name: &str) -> Result<(), String> {
    let registry = shared
        .registry()
        .map_err(|_| "the registry cannot be opened".to_string())?;
    let rows = workstation::list(
        &registry,
        Some(entity),
        personalization::lifecycle::unix(shared.now()),
    )
    .map_err(|e| e.to_string())?;
    if rows.iter().any(|row| row.name == name) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a workstation certificate of entity {entity}"
        ))
    }
}

fn workstation_bundle(
    shared: &Shared,
    entity: &str,
    name: &str,
) -> Result<(Vec<u8>, zeroize::Zeroizing<String>), String> {
    own_workstation(shared, entity, name)?;
    let registry = shared
        .registry()
        .map_err(|_| "the registry cannot be opened".to_string())?;
    workstation::bundle(&registry, &shared.master, name).map_err(|e| e.to_string())
}

/// "Request" from the console, then the issuing job at once (the staging bureau's convenience: the
/// real one issues overnight), so the certificate can be downloaded right away.
fn request_workstation(shared: &Shared, entity: &str) -> Result<String, String> {
    let mut registry = shared
        .registry()
        .map_err(|_| "the registry cannot be opened".to_string())?;
    let now = shared.now();
    let name = workstation::request(
        &mut registry,
        entity,
        false,
        personalization::lifecycle::unix(now),
    )
    .map_err(|e| e.to_string())?;
    let mut issuer = Issuer::open(&shared.config.ca_dir).map_err(|e| e.to_string())?;
    workstation::issue_requested(&mut registry, &shared.ca, &mut issuer, &shared.master, now)
        .map_err(|e| e.to_string())?;
    Ok(name)
}
