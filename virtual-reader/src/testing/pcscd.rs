//! A private pcscd for tests, with four vpcd slots of its own.
//!
//! There is only one pcscd per machine (it owns /run/pcscd), so every test that goes
//! through PC/SC holds an exclusive lock on [`LOCK_PATH`] for as long as its `Pcscd`
//! lives: test threads and test binaries running in parallel take turns.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::wait_for;
use card_transport::PcscReader;

/// Serializes every user of the test daemon, across processes.
pub const LOCK_PATH: &str = "/tmp/tessera-pcscd-tests.lock";
/// Number of vpcd slots the test daemon offers.
pub const SLOTS: usize = 4;
/// Slot `i` listens on `FIRST_PORT + i`. Not Debian's 35963/35964, so a `tessera
/// serve` left running by hand cannot plug itself into a test's slot.
const FIRST_PORT: u16 = 35973;
/// pcscd names readers "FRIENDLYNAME XX YY" but does not number two config entries
/// that share a FRIENDLYNAME (both would be "Virtual PCD 00 00"), so the second entry
/// has a name of its own. Slots 0 and 1 match Debian's default reader names.
const READER_NAMES: [&str; SLOTS] = [
    "Virtual PCD 00 00",
    "Virtual PCD 00 01",
    "Virtual PCD B 00 00",
    "Virtual PCD B 00 01",
];
const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";
/// Marks our config dirs, so a pcscd left behind by a killed test run is recognised.
const DIR_PREFIX: &str = "tessera-pcscd-";
const READY_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum PcscdError {
    #[error("cannot take the test lock {LOCK_PATH}: {0}")]
    Lock(io::Error),
    #[error(
        "another pcscd is already running (pid {pid}: {cmdline}); stop it first \
         (scripts/pcscd.sh stop, or kill {pid}) — tests need a pcscd of their own"
    )]
    AlreadyRunning { pid: u32, cmdline: String },
    #[error("vpcd driver {VPCD_DRIVER} missing (run scripts/pcsc-install.sh)")]
    NoVpcd,
    #[error("cannot write the pcscd config: {0}")]
    Config(io::Error),
    #[error("cannot start pcscd (run scripts/pcsc-install.sh?): {0}")]
    Spawn(io::Error),
    #[error("pcscd exited during startup ({status}); its log:\n{log}")]
    Exited { status: ExitStatus, log: String },
    #[error(
        "pcscd did not show its vpcd readers within {timeout:?} (last: {last}); its log:\n{log}"
    )]
    NotReady {
        timeout: Duration,
        last: String,
        log: String,
    },
    #[error("cannot stop pcscd: {0}")]
    Stop(io::Error),
}

/// A running private pcscd; dropping it stops the daemon and releases the lock.
pub struct Pcscd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    // Last field: released only after the daemon is gone.
    _lock: File,
}

impl Pcscd {
    /// Waits for the test lock, then starts pcscd with [`SLOTS`] vpcd slots and waits
    /// until PC/SC lists them.
    pub fn start() -> Result<Self, PcscdError> {
        let lock = take_lock()?;
        if !Path::new(VPCD_DRIVER).exists() {
            return Err(PcscdError::NoVpcd);
        }
        clear_leftovers()?;
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .map_err(PcscdError::Config)?;
        write_config(dir.path()).map_err(PcscdError::Config)?;
        let mut pcscd = Self {
            child: None,
            dir,
            _lock: lock,
        };
        pcscd.launch()?;
        Ok(pcscd)
    }

    /// Stops the daemon (SIGTERM) and starts it again with the same slots. Plugged
    /// cards see EOF and must find their way back by themselves.
    pub fn restart(&mut self) -> Result<(), PcscdError> {
        self.stop()?;
        self.launch()
    }

    /// The PC/SC reader name of `slot` (panics if `slot >= SLOTS`).
    pub fn reader_name(&self, slot: usize) -> &'static str {
        READER_NAMES[slot]
    }

    /// Where a card for `slot` connects (panics if `slot >= SLOTS`).
    pub fn vpcd_addr(&self, slot: usize) -> SocketAddr {
        assert!(slot < SLOTS, "slot {slot} out of range (0..{SLOTS})");
        // `slot < SLOTS` (4), so the cast cannot truncate.
        SocketAddr::from((Ipv4Addr::LOCALHOST, FIRST_PORT + slot as u16))
    }

    /// The daemon's stdout/stderr.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("pcscd.log")
    }

    fn launch(&mut self) -> Result<(), PcscdError> {
        let log = File::create(self.log_path()).map_err(PcscdError::Config)?;
        let log_err = log.try_clone().map_err(PcscdError::Config)?;
        let mut command = Command::new("pcscd");
        command
            .arg("--foreground")
            .arg("--config")
            .arg(self.dir.path().join("reader.conf.d"));
        if std::env::var_os("TESSERA_PCSCD_DEBUG").is_some() {
            command.arg("--debug");
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(PcscdError::Spawn)?;
        info!(pid = child.id(), "started test pcscd");
        self.child = Some(child);
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), PcscdError> {
        let started = Instant::now();
        let mut last = String::from("nothing yet");
        let mut exited = None;
        let ready = wait_for(
            || {
                if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                    exited = Some(status);
                    return true;
                }
                match PcscReader::list() {
                    Ok(names) if READER_NAMES.iter().all(|r| names.iter().any(|n| n == r)) => true,
                    Ok(names) => {
                        last = format!("readers {names:?}");
                        false
                    }
                    Err(e) => {
                        last = e.to_string();
                        false
                    }
                }
            },
            READY_TIMEOUT,
        );
        if let Some(status) = exited {
            self.child = None;
            return Err(PcscdError::Exited {
                status,
                log: self.log(),
            });
        }
        if !ready {
            let log = self.log();
            let _ = self.stop();
            return Err(PcscdError::NotReady {
                timeout: READY_TIMEOUT,
                last,
                log,
            });
        }
        info!(elapsed = ?started.elapsed(), "test pcscd ready");
        Ok(())
    }

    /// SIGTERM (pcscd then removes /run/pcscd), SIGKILL if it lingers.
    fn stop(&mut self) -> Result<(), PcscdError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if child.try_wait().map_err(PcscdError::Stop)?.is_some() {
            return Ok(());
        }
        signal(child.id(), "TERM").map_err(PcscdError::Stop)?;
        let mut exited = false;
        wait_for(
            || {
                exited = matches!(child.try_wait(), Ok(Some(_)));
                exited
            },
            STOP_TIMEOUT,
        );
        if !exited {
            warn!(pid = child.id(), "pcscd ignored SIGTERM; killing it");
            child.kill().map_err(PcscdError::Stop)?;
            child.wait().map_err(PcscdError::Stop)?;
        }
        Ok(())
    }
}

impl Drop for Pcscd {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            warn!(error = %e, "test pcscd not stopped cleanly");
        }
    }
}

fn take_lock() -> Result<File, PcscdError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_PATH)
        .map_err(PcscdError::Lock)?;
    match file.try_lock() {
        Ok(()) => return Ok(file),
        Err(fs::TryLockError::WouldBlock) => {
            info!("waiting for another test's pcscd ({LOCK_PATH})");
        }
        Err(fs::TryLockError::Error(e)) => return Err(PcscdError::Lock(e)),
    }
    file.lock().map_err(PcscdError::Lock)?;
    Ok(file)
}

/// Refuses to run beside a pcscd we did not start; kills one a crashed test run left
/// behind (its config dir carries our prefix); clears stale files in /run/pcscd.
fn clear_leftovers() -> Result<(), PcscdError> {
    for (pid, cmdline) in running_pcscds() {
        if !cmdline.contains(DIR_PREFIX) {
            return Err(PcscdError::AlreadyRunning { pid, cmdline });
        }
        warn!(pid, "killing a test pcscd left behind by an earlier run");
        signal(pid, "KILL").map_err(PcscdError::Stop)?;
        wait_for(|| !is_live(pid), STOP_TIMEOUT);
    }
    // A SIGKILLed pcscd leaves these; a new one refuses to start while the old pid is
    // still a zombie. No live pcscd exists now, so they are stale.
    for stale in ["/run/pcscd/pcscd.comm", "/run/pcscd/pcscd.pid"] {
        match fs::remove_file(stale) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(PcscdError::Stop(e)),
        }
    }
    Ok(())
}

/// Live (non-zombie) processes named pcscd, with their command lines.
fn running_pcscds() -> Vec<(u32, String)> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "pcscd")
                && is_live(*pid)
        })
        .map(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
                .unwrap_or_default();
            (pid, cmdline.trim().to_owned())
        })
        .collect()
}

/// Whether `pid` exists and is not a zombie.
fn is_live(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) S ...": the state follows the last ')'.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}

/// Sends a signal with kill(1): std only offers SIGKILL, and we forbid unsafe.
fn signal(pid: u32, name: &str) -> io::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()?;
    if status.success() || !is_live(pid) {
        Ok(())
    } else {
        Err(io::Error::other(format!("kill -{name} {pid}: {status}")))
    }
}

/// Two vpcd entries; each listens on its port and the next, giving slots 2n, 2n+1.
///
/// The vpcd driver keeps its connections in a global array indexed by slot number, and
/// pcscd loads a LIBPATH only once, so two entries naming the same library overwrite
/// each other's slots and the readers hang. The second entry gets a copy of the library
/// (a different file is a separate dlopen, with globals of its own).
fn write_config(dir: &Path) -> io::Result<()> {
    let conf = dir.join("reader.conf.d");
    fs::create_dir(&conf)?;
    let second_driver = dir.join("libifdvpcd-b.so");
    fs::copy(VPCD_DRIVER, &second_driver)?;
    let entries = [
        ("Virtual PCD", PathBuf::from(VPCD_DRIVER)),
        ("Virtual PCD B", second_driver),
    ];
    let mut text = String::new();
    for (entry, (name, driver)) in entries.iter().enumerate() {
        // entry < 2, so the cast cannot truncate.
        let port = FIRST_PORT + 2 * entry as u16;
        text.push_str(&format!(
            "FRIENDLYNAME \"{name}\"\nDEVICENAME /dev/null:{port}\nLIBPATH {}\nCHANNELID {port}\n\n",
            driver.display()
        ));
    }
    fs::write(conf.join("vpcd"), text)
}
