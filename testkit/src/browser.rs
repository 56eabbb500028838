//! A real Firefox for login tests, driven as a QA team drives one:
//! - [`Display`]: a virtual X display (Xvfb), because the PIN dialog is a real window;
//! - [`firefox_profile`]: a fresh profile — an NSS database trusting a CA, a PKCS#12 imported with
//!   its password, a PKCS#11 module (OpenSC) registered, and prefs that keep an offline Firefox quiet
//!   and let it choose client certificates by the CA names the server asks for;
//! - [`Firefox`]: the browser, started on that profile and display, controlled through its own
//!   Marionette protocol (length-prefixed JSON over TCP: `[0, id, command, params]` →
//!   `[1, id, error, result]`);
//! - [`type_into_window`]: xdotool typing a PIN (from a 0600 file, never a command line) into
//!   Firefox's own "Password Required" dialog.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::process::Terminating;
use crate::tool::Tool;
use crate::wait_for;

/// What went wrong driving the browser, in words a failing test can print.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BrowserError(pub String);

fn fail(text: impl Into<String>) -> BrowserError {
    BrowserError(text.into())
}

/// The tools a browser test needs (`scripts/browser-install.sh` and `scripts/pcsc-install.sh`).
pub const TOOLS: &[&str] = &[
    "firefox-esr",
    "Xvfb",
    "xdotool",
    "certutil",
    "pk12util",
    "modutil",
];

/// An Xvfb display, stopped on drop.
pub struct Display {
    _server: Terminating,
    pub name: String,
}

impl Display {
    /// Starts Xvfb (1280×900, 24 bit, no TCP) on the first free display from :90.
    pub fn start() -> Result<Self, BrowserError> {
        for number in 90..140 {
            // Xvfb refuses a display whose lock file exists; checking first keeps the log clean.
            if Path::new(&format!("/tmp/.X{number}-lock")).exists() {
                continue;
            }
            let child = Command::new("Xvfb")
                .args([
                    format!(":{number}").as_str(),
                    "-screen",
                    "0",
                    "1280x900x24",
                    "-nolisten",
                    "tcp",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| fail(format!("cannot start Xvfb: {e}")))?;
            let mut server = Terminating::new(child);
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
            if wait_for(
                || socket.exists() || !server.running(),
                Duration::from_secs(10),
            ) && server.running()
            {
                return Ok(Self {
                    _server: server,
                    name: format!(":{number}"),
                });
            }
        }
        Err(fail("no free X display between :90 and :139"))
    }
}

/// Prefs of a test profile: choose client certificates automatically (by the CA names the server
/// sends), nothing that reaches for the network (this machine has none), no first-run pages, and a
/// Marionette server on a free port (Firefox writes it to `MarionetteActivePort`).
const USER_JS: &str = r#"user_pref("security.default_personal_cert", "Select Automatically");
user_pref("security.osclientcerts.autoload", false);
user_pref("marionette.port", 0);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("browser.safebrowsing.downloads.enabled", false);
user_pref("browser.safebrowsing.update.enabled", false);
user_pref("app.normandy.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("datareporting.healthreport.uploadEnabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("app.update.enabled", false);
user_pref("app.update.auto", false);
user_pref("extensions.update.enabled", false);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("browser.aboutwelcome.enabled", false);
user_pref("datareporting.policy.firstRunURL", "");
user_pref("browser.startup.page", 0);
user_pref("network.dns.disablePrefetch", true);
user_pref("network.prefetch-next", false);
user_pref("browser.newtabpage.enabled", false);
user_pref("extensions.getAddons.cache.enabled", false);
user_pref("extensions.blocklist.enabled", false);
user_pref("services.settings.server", "http://127.0.0.1:9/");
user_pref("security.OCSP.enabled", 0);
user_pref("browser.tabs.warnOnClose", false);
user_pref("toolkit.startup.max_resumed_crashes", -1);
user_pref("browser.sessionstore.resume_from_crash", false);
user_pref("browser.translations.automaticallyPopup", false);
"#;

/// Makes a fresh Firefox profile in `dir`: an NSS database that trusts `ca_pem` for web sites, holds
/// the PKCS#12 `pkcs12` (imported with `password`, as a person installs a workstation certificate) and
/// loads the PKCS#11 `module` (the card middleware).
pub fn firefox_profile(
    dir: &Path,
    ca_pem: &Path,
    pkcs12: &Path,
    password: &str,
    module: &Path,
) -> Result<PathBuf, BrowserError> {
    std::fs::create_dir_all(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let db = format!("sql:{}", dir.display());
    let run = |tool: Tool| {
        let run = tool.timeout(Duration::from_secs(60)).run();
        if run.code == Some(0) {
            Ok(())
        } else {
            Err(fail(run.describe()))
        }
    };
    run(Tool::new("certutil").args(["-N", "-d", &db, "--empty-password"]))?;
    run(Tool::new("certutil")
        .args(["-A", "-d", &db, "-n", "login-lab-ca", "-t", "C,,", "-i"])
        .arg(ca_pem))?;
    run(Tool::new("pk12util")
        .args(["-d", &db, "-i"])
        .arg(pkcs12)
        .args(["-W", password, "-K", ""])
        .redact(&[password]))?;
    // modutil asks to confirm when a browser might be running; there is none yet.
    run(Tool::new("modutil")
        .args(["-dbdir", &db, "-add", "card middleware", "-libfile"])
        .arg(module)
        .arg("-force"))?;
    std::fs::write(dir.join("user.js"), USER_JS)
        .map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    Ok(dir.to_path_buf())
}

/// A running Firefox and its Marionette session; quit (then SIGTERM) on drop.
pub struct Firefox {
    process: Terminating,
    marionette: Marionette,
}

impl Firefox {
    /// Starts Firefox on `profile` and `display` with `env` added (e.g. the private pcscd's socket
    /// for the card middleware), and opens a Marionette session.
    pub fn start(
        profile: &Path,
        display: &Display,
        env: &[(String, String)],
    ) -> Result<Self, BrowserError> {
        let home = profile.join("home");
        std::fs::create_dir_all(&home).map_err(|e| fail(format!("{}: {e}", home.display())))?;
        let _ = std::fs::remove_file(profile.join("MarionetteActivePort"));
        let log = std::fs::File::create(profile.join("firefox.log"))
            .map_err(|e| fail(format!("firefox.log: {e}")))?;
        let child = Command::new("firefox-esr")
            .args(["--no-remote", "--marionette", "--profile"])
            .arg(profile)
            .arg("about:blank")
            .env("DISPLAY", &display.name)
            .env("HOME", &home)
            .env("MOZ_CRASHREPORTER_DISABLE", "1")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(log.try_clone().map_err(|e| fail(e.to_string()))?)
            .stderr(log)
            .spawn()
            .map_err(|e| fail(format!("cannot start firefox-esr: {e}")))?;
        let mut process = Terminating::new(child);
        let port_file = profile.join("MarionetteActivePort");
        let mut port = None;
        wait_for(
            || {
                port = std::fs::read_to_string(&port_file)
                    .ok()
                    .and_then(|text| text.trim().parse::<u16>().ok());
                port.is_some() || !process.running()
            },
            Duration::from_secs(60),
        );
        let port = port.ok_or_else(|| {
            fail(format!(
                "Firefox did not start Marionette within 60 s (log: {})",
                profile.join("firefox.log").display()
            ))
        })?;
        let marionette = Marionette::connect(port)?;
        let mut firefox = Self {
            process,
            marionette,
        };
        firefox.call("WebDriver:NewSession", json!({"capabilities": {}}))?;
        // Page loads wait for TLS handshakes, which wait for the card (and the PIN dialog).
        firefox.call(
            "WebDriver:SetTimeouts",
            json!({"implicit": 0, "pageLoad": 120_000, "script": 30_000}),
        )?;
        Ok(firefox)
    }

    /// One Marionette command and its result.
    pub fn call(&mut self, command: &str, params: Value) -> Result<Value, BrowserError> {
        let id = self.marionette.send(command, params)?;
        self.marionette.receive(id)
    }

    /// Starts loading `url` and returns at once; [`Firefox::finish`] waits for the load. Between
    /// the two the test answers what the load waits for (the PIN dialog).
    pub fn start_navigation(&mut self, url: &str) -> Result<Pending, BrowserError> {
        let id = self
            .marionette
            .send("WebDriver:Navigate", json!({ "url": url }))?;
        Ok(Pending(id))
    }

    pub fn finish(&mut self, pending: Pending) -> Result<(), BrowserError> {
        self.marionette.receive(pending.0).map(|_| ())
    }

    pub fn navigate(&mut self, url: &str) -> Result<(), BrowserError> {
        self.call("WebDriver:Navigate", json!({ "url": url }))
            .map(|_| ())
    }

    pub fn current_url(&mut self) -> Result<String, BrowserError> {
        let value = self.call("WebDriver:GetCurrentURL", json!({}))?;
        Ok(value["value"].as_str().unwrap_or_default().to_string())
    }

    /// The element matching `css`, or `None` when the page has none.
    pub fn find(&mut self, css: &str) -> Result<Option<String>, BrowserError> {
        let id = self.marionette.send(
            "WebDriver:FindElement",
            json!({"using": "css selector", "value": css}),
        )?;
        match self.marionette.receive(id) {
            Ok(value) => Ok(value["value"]
                .as_object()
                .and_then(|element| element.values().next())
                .and_then(Value::as_str)
                .map(str::to_string)),
            Err(BrowserError(text)) if text.starts_with("no such element") => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The text of the element matching `css` (waiting up to `timeout` for it to appear).
    pub fn text(&mut self, css: &str, timeout: Duration) -> Result<String, BrowserError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(element) = self.find(css)? {
                let value = self.call("WebDriver:GetElementText", json!({ "id": element }))?;
                return Ok(value["value"].as_str().unwrap_or_default().to_string());
            }
            if Instant::now() >= deadline {
                let url = self.current_url().unwrap_or_default();
                let source = self.source().unwrap_or_default();
                return Err(fail(format!(
                    "no {css} on {url} within {timeout:?}; the page:\n{source}"
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element matching `css` (a link or a form button), waiting up to a minute for it
    /// to appear; returns once Firefox has handled the click (a navigation it starts may still be
    /// loading: wait for what the next page shows).
    pub fn click(&mut self, css: &str) -> Result<(), BrowserError> {
        self.text(css, Duration::from_secs(60))?;
        let element = self
            .find(css)?
            .ok_or_else(|| fail(format!("{css} went away before the click")))?;
        self.call("WebDriver:ElementClick", json!({ "id": element }))
            .map(|_| ())
    }

    /// [`Firefox::click`] that returns at once; [`Firefox::finish`] waits for the click to be
    /// handled (which may wait on a dialog the test answers in between).
    pub fn start_click(&mut self, css: &str) -> Result<Pending, BrowserError> {
        self.text(css, Duration::from_secs(60))?;
        let element = self
            .find(css)?
            .ok_or_else(|| fail(format!("{css} went away before the click")))?;
        let id = self
            .marionette
            .send("WebDriver:ElementClick", json!({ "id": element }))?;
        Ok(Pending(id))
    }

    pub fn source(&mut self) -> Result<String, BrowserError> {
        let value = self.call("WebDriver:GetPageSource", json!({}))?;
        Ok(value["value"].as_str().unwrap_or_default().to_string())
    }

    /// Saves a PNG of the page as Firefox renders it.
    pub fn screenshot(&mut self, path: &Path) -> Result<(), BrowserError> {
        use base64::Engine as _;
        let value = self.call(
            "WebDriver:TakeScreenshot",
            json!({"full": true, "hash": false}),
        )?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value["value"].as_str().unwrap_or_default())
            .map_err(|e| fail(format!("screenshot: {e}")))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(e.to_string()))?;
        }
        std::fs::write(path, png).map_err(|e| fail(format!("{}: {e}", path.display())))
    }

    /// Quits Firefox; true when it exited by itself.
    pub fn quit(mut self) -> bool {
        let _ = self
            .marionette
            .send("Marionette:Quit", json!({"flags": ["eForceQuit"]}));
        wait_for(|| !self.process.running(), Duration::from_secs(20))
    }
}

/// A command sent whose answer is still to be read.
#[must_use]
pub struct Pending(u64);

struct Marionette {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    next_id: u64,
}

impl Marionette {
    fn connect(port: u16) -> Result<Self, BrowserError> {
        let mut stream = None;
        wait_for(
            || {
                stream = TcpStream::connect(("127.0.0.1", port)).ok();
                stream.is_some()
            },
            Duration::from_secs(30),
        );
        let stream =
            stream.ok_or_else(|| fail(format!("cannot reach Marionette on port {port}")))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(180)))
            .map_err(|e| fail(e.to_string()))?;
        let writer = stream.try_clone().map_err(|e| fail(e.to_string()))?;
        let mut marionette = Self {
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
        };
        let hello = marionette.read_message()?;
        if hello["marionetteProtocol"].as_u64() != Some(3) {
            return Err(fail(format!("unexpected Marionette greeting {hello}")));
        }
        Ok(marionette)
    }

    fn read_message(&mut self) -> Result<Value, BrowserError> {
        let mut length = Vec::new();
        self.reader
            .read_until(b':', &mut length)
            .map_err(|e| fail(format!("Marionette: {e}")))?;
        let length: usize = std::str::from_utf8(&length)
            .ok()
            .and_then(|text| text.trim_end_matches(':').parse().ok())
            .ok_or_else(|| fail("Marionette: a message without its length"))?;
        let mut body = vec![0u8; length];
        self.reader
            .read_exact(&mut body)
            .map_err(|e| fail(format!("Marionette: {e}")))?;
        serde_json::from_slice(&body).map_err(|e| fail(format!("Marionette: {e}")))
    }

    fn send(&mut self, command: &str, params: Value) -> Result<u64, BrowserError> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!([0, id, command, params]).to_string();
        self.writer
            .write_all(format!("{}:{body}", body.len()).as_bytes())
            .map_err(|e| fail(format!("Marionette {command}: {e}")))?;
        Ok(id)
    }

    fn receive(&mut self, id: u64) -> Result<Value, BrowserError> {
        loop {
            let message = self.read_message()?;
            if message[0].as_u64() != Some(1) || message[1].as_u64() != Some(id) {
                continue; // an answer to a command given up on, or an event
            }
            if !message[2].is_null() {
                return Err(fail(format!(
                    "{}: {}",
                    message[2]["error"].as_str().unwrap_or("error"),
                    message[2]["message"].as_str().unwrap_or_default()
                )));
            }
            return Ok(message[3].clone());
        }
    }
}

/// Waits up to `timeout` for a window whose title starts with `title` on `display`, focuses it and
/// types the contents of `text_file` followed by Return — what a person does at the browser's PIN
/// dialog. The text never appears on a command line.
pub fn type_into_window(
    display: &Display,
    title: &str,
    text_file: &Path,
    timeout: Duration,
) -> Result<(), BrowserError> {
    let mode = std::fs::metadata(text_file)
        .map_err(|e| fail(format!("{}: {e}", text_file.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(fail(format!(
            "{} must be private (0600) to hold a PIN",
            text_file.display()
        )));
    }
    let mut window = None;
    wait_for(
        || {
            window = find_window(display, title);
            window.is_some()
        },
        timeout,
    );
    let window =
        window.ok_or_else(|| fail(format!("no window titled {title:?} within {timeout:?}")))?;
    let file = text_file.to_string_lossy().into_owned();
    for step in [
        vec!["windowfocus", "--sync", window.as_str()],
        vec!["type", "--delay", "30", "--file", file.as_str()],
        vec!["key", "Return"],
    ] {
        let run = xdotool(display, &step);
        if run.code != Some(0) {
            return Err(fail(run.describe()));
        }
    }
    Ok(())
}

/// Closes the window titled `title…` as a person giving up does (Escape); false when there is none.
pub fn dismiss_window(display: &Display, title: &str) -> bool {
    let Some(window) = find_window(display, title) else {
        return false;
    };
    xdotool(display, &["windowfocus", "--sync", &window]);
    xdotool(display, &["key", "Escape"]).code == Some(0)
}

/// Whether a window titled `title…` is on `display` now.
pub fn window_present(display: &Display, title: &str) -> bool {
    find_window(display, title).is_some()
}

/// The first window on `display` whose title starts with `title`.
fn find_window(display: &Display, title: &str) -> Option<String> {
    xdotool(display, &["search", "--name", &format!("^{title}")])
        .out
        .lines()
        .next()
        .map(str::to_string)
}

fn xdotool(display: &Display, args: &[&str]) -> crate::tool::Run {
    Tool::new("xdotool")
        .args(args)
        .env("DISPLAY", &display.name)
        .timeout(Duration::from_secs(20))
        .separate_stderr()
        .quiet()
        .run()
}

/// Writes `secret` to a new 0600 file in `dir` (for [`type_into_window`]).
pub fn secret_file(dir: &Path, name: &str, secret: &str) -> Result<PathBuf, BrowserError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| fail(format!("{}: {e}", path.display())))?;
    file.write_all(secret.as_bytes())
        .map_err(|e| fail(format!("{}: {e}", path.display())))?;
    Ok(path)
}
