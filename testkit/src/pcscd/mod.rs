//! Private pcscd daemons for tests, with vpcd slots of their own.
//!
//! Only one pcscd can own `/run/pcscd` (pcsc-lite 1.9.9 compiles the daemon's socket path in), so every
//! test that goes through PC/SC holds an exclusive lock on [`LOCK_PATH`] for as long as its `Pcscd`
//! lives: test threads and test binaries running in parallel take turns.
//!
//! Up to [`READERS_PER_PCSCD`] slots are served by one daemon in the machine's own `/run/pcscd`, which
//! every PC/SC client finds without help. Past that, each further daemon runs in a mount namespace of
//! its own (`unshare --mount`, root only) where a private directory is bind-mounted over `/run/pcscd`;
//! its socket is that directory's `pcscd.comm`. A client reaches it with the environment variable
//! [`CSOCK_ENV`] (`PCSCLITE_CSOCK_NAME`), which libpcsclite reads **once per process**: one process talks
//! to one daemon, so tools (and benchmark workers) for another daemon run as child processes with
//! [`Pcscd::client_env`].

mod layout;
mod process;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tracing::{info, warn};

pub use layout::{FIRST_PORT, MAX_SLOTS, READERS_PER_PCSCD, SLOTS_PER_ENTRY};

use crate::wait_for;
use card_transport::PcscReader;

/// Serializes every user of the test daemons, across processes.
pub const LOCK_PATH: &str = "/tmp/tessera-pcscd-tests.lock";
/// Number of vpcd slots [`Pcscd::start`] offers.
pub const SLOTS: usize = 4;
/// The variable libpcsclite's client reads for the daemon's socket path.
pub const CSOCK_ENV: &str = "PCSCLITE_CSOCK_NAME";
/// The socket of the daemon in the machine's own mount namespace.
const SYSTEM_SOCKET: &str = "/run/pcscd/pcscd.comm";
/// Marks our config dirs, so a pcscd left behind by a killed test run is recognised.
const DIR_PREFIX: &str = "tessera-pcscd-";
const READY_TIMEOUT: Duration = Duration::from_secs(15);
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
    #[error(
        "vpcd driver {} missing (run scripts/pcsc-install.sh)",
        layout::VPCD_DRIVER
    )]
    NoVpcd,
    #[error("{asked} slots asked for; the test daemons offer 1 to {MAX_SLOTS}")]
    SlotCount { asked: usize },
    #[error("cannot write the pcscd config: {0}")]
    Config(io::Error),
    #[error("cannot start pcscd (run scripts/pcsc-install.sh; more than {READERS_PER_PCSCD} slots need root for unshare --mount): {0}")]
    Spawn(io::Error),
    #[error("pcscd {instance} exited during startup ({status}); its log:\n{log}")]
    Exited {
        instance: usize,
        status: ExitStatus,
        log: String,
    },
    #[error(
        "pcscd {instance} did not show its vpcd readers within {timeout:?} (last: {last}); its log:\n{log}"
    )]
    NotReady {
        instance: usize,
        timeout: Duration,
        last: String,
        log: String,
    },
    #[error("cannot stop pcscd: {0}")]
    Stop(io::Error),
}

/// One daemon: its config, socket and process.
struct Instance {
    index: usize,
    /// Holds `reader.conf.d/`, driver copies, the log and (instances after the first) `run/`.
    dir: PathBuf,
    readers: Vec<&'static str>,
    child: Option<Child>,
}

impl Instance {
    fn socket(&self) -> PathBuf {
        if self.index == 0 {
            PathBuf::from(SYSTEM_SOCKET)
        } else {
            self.dir.join("run").join("pcscd.comm")
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("pcscd.log")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

/// Running private pcscd daemons; dropping the guard stops them and releases the lock.
pub struct Pcscd {
    slots: usize,
    instances: Vec<Instance>,
    _dir: tempfile::TempDir,
    // Last field: released only after the daemons are gone.
    _lock: File,
}

impl Pcscd {
    /// Waits for the test lock, then starts pcscd with [`SLOTS`] vpcd slots and waits until PC/SC lists
    /// them.
    pub fn start() -> Result<Self, PcscdError> {
        Self::with_slots(SLOTS)
    }

    /// Like [`Pcscd::start`] with `slots` slots (1..=[`MAX_SLOTS`]): one daemon per
    /// [`READERS_PER_PCSCD`] slots. Slot `i` is reader [`Pcscd::reader_name`]`(i)`, its card connects to
    /// [`Pcscd::vpcd_addr`]`(i)`, and ports are consecutive across daemons.
    pub fn with_slots(slots: usize) -> Result<Self, PcscdError> {
        if slots == 0 || slots > MAX_SLOTS {
            return Err(PcscdError::SlotCount { asked: slots });
        }
        let lock = take_lock()?;
        if !Path::new(layout::VPCD_DRIVER).exists() {
            return Err(PcscdError::NoVpcd);
        }
        process::clear_leftovers()?;
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .map_err(PcscdError::Config)?;
        let mut instances = Vec::new();
        for index in 0..layout::instances_for(slots) {
            let instance_dir = dir.path().join(format!("pcscd-{index}"));
            write_config(index, slots, &instance_dir).map_err(PcscdError::Config)?;
            let first = index * READERS_PER_PCSCD;
            let readers = (first..slots.min(first + READERS_PER_PCSCD))
                .map(layout::reader_name)
                .collect();
            instances.push(Instance {
                index,
                dir: instance_dir,
                readers,
                child: None,
            });
        }
        let mut pcscd = Self {
            slots,
            instances,
            _dir: dir,
            _lock: lock,
        };
        pcscd.launch_all()?;
        Ok(pcscd)
    }

    /// Stops every daemon (SIGTERM) and starts them again with the same slots. Plugged cards see EOF and
    /// must find their way back by themselves.
    pub fn restart(&mut self) -> Result<(), PcscdError> {
        self.stop_all()?;
        self.launch_all()
    }

    pub fn slots(&self) -> usize {
        self.slots
    }

    /// How many daemons serve the slots.
    pub fn instances(&self) -> usize {
        self.instances.len()
    }

    /// The daemon serving `slot`.
    pub fn instance_of(&self, slot: usize) -> usize {
        self.check(slot);
        layout::instance_of(slot)
    }

    /// The PC/SC reader name of `slot` (panics if `slot >= slots()`).
    pub fn reader_name(&self, slot: usize) -> &'static str {
        self.check(slot);
        layout::reader_name(slot)
    }

    /// The readers daemon `instance` serves.
    pub fn readers_of(&self, instance: usize) -> &[&'static str] {
        &self.instances[instance].readers
    }

    /// Where a card for `slot` connects (panics if `slot >= slots()`).
    pub fn vpcd_addr(&self, slot: usize) -> SocketAddr {
        self.check(slot);
        layout::vpcd_addr(slot)
    }

    /// The socket of daemon `instance`.
    pub fn socket(&self, instance: usize) -> PathBuf {
        self.instances[instance].socket()
    }

    /// Environment for a PC/SC client process of daemon `instance`: nothing for the first (it owns the
    /// machine's socket), [`CSOCK_ENV`] for the others.
    pub fn client_env(&self, instance: usize) -> Vec<(String, String)> {
        if instance == 0 {
            Vec::new()
        } else {
            vec![(
                CSOCK_ENV.to_owned(),
                self.socket(instance).display().to_string(),
            )]
        }
    }

    /// Every daemon's stdout/stderr, each under a header line.
    pub fn log(&self) -> String {
        self.instances
            .iter()
            .map(|i| format!("--- pcscd {} ---\n{}", i.index, i.log()))
            .collect()
    }

    /// The first daemon's process id.
    pub fn pid(&self) -> Option<u32> {
        self.instances[0].child.as_ref().map(Child::id)
    }

    fn check(&self, slot: usize) {
        assert!(
            slot < self.slots,
            "slot {slot} out of range (0..{})",
            self.slots
        );
    }

    fn launch_all(&mut self) -> Result<(), PcscdError> {
        for index in 0..self.instances.len() {
            if let Err(error) = self.launch(index) {
                let _ = self.stop_all();
                return Err(error);
            }
        }
        Ok(())
    }

    fn launch(&mut self, index: usize) -> Result<(), PcscdError> {
        let instance = &mut self.instances[index];
        let log = File::create(instance.log_path()).map_err(PcscdError::Config)?;
        let log_err = log.try_clone().map_err(PcscdError::Config)?;
        let config = instance.dir.join("reader.conf.d");
        let debug = std::env::var_os("TESSERA_PCSCD_DEBUG").is_some();
        let mut command = if index == 0 {
            let mut command = Command::new("pcscd");
            command.arg("--foreground").arg("--config").arg(&config);
            if debug {
                command.arg("--debug");
            }
            command
        } else {
            // A mount namespace of its own, with a private directory over /run/pcscd, so this daemon's
            // socket and pid file do not collide with the first one's. `unshare` and `sh` exec, so the
            // child's pid is pcscd's.
            let run = instance.dir.join("run");
            fs::create_dir_all(&run).map_err(PcscdError::Config)?;
            fs::create_dir_all("/run/pcscd").map_err(PcscdError::Config)?;
            let mut command = Command::new("unshare");
            command
                .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
                .arg(r#"mount --bind "$0" /run/pcscd && exec pcscd --foreground --config "$1" $2"#)
                .arg(&run)
                .arg(&config)
                .arg(if debug { "--debug" } else { "" });
            command
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(PcscdError::Spawn)?;
        info!(pid = child.id(), index, "started test pcscd");
        instance.child = Some(child);
        self.wait_ready(index)
    }

    fn wait_ready(&mut self, index: usize) -> Result<(), PcscdError> {
        let started = Instant::now();
        let instance = &mut self.instances[index];
        let env = if index == 0 {
            Vec::new()
        } else {
            vec![(
                CSOCK_ENV.to_owned(),
                instance.socket().display().to_string(),
            )]
        };
        let mut last = String::from("nothing yet");
        let mut exited = None;
        let ready = wait_for(
            || {
                if let Some(Ok(Some(status))) = instance.child.as_mut().map(Child::try_wait) {
                    exited = Some(status);
                    return true;
                }
                match list_readers(index, &env) {
                    Ok(names)
                        if instance
                            .readers
                            .iter()
                            .all(|r| names.iter().any(|n| n == r)) =>
                    {
                        true
                    }
                    Ok(names) => {
                        last = format!("readers {names:?}");
                        false
                    }
                    Err(e) => {
                        last = e;
                        false
                    }
                }
            },
            READY_TIMEOUT,
        );
        if let Some(status) = exited {
            instance.child = None;
            return Err(PcscdError::Exited {
                instance: index,
                status,
                log: instance.log(),
            });
        }
        if !ready {
            let log = instance.log();
            return Err(PcscdError::NotReady {
                instance: index,
                timeout: READY_TIMEOUT,
                last,
                log,
            });
        }
        info!(elapsed = ?started.elapsed(), index, "test pcscd ready");
        Ok(())
    }

    fn stop_all(&mut self) -> Result<(), PcscdError> {
        let mut result = Ok(());
        // The namespaced daemons first; the first one last, as it owns the machine's /run/pcscd.
        for instance in self.instances.iter_mut().rev() {
            if let Err(error) = stop(instance) {
                result = Err(error);
            }
        }
        result
    }
}

impl Drop for Pcscd {
    fn drop(&mut self) {
        if let Err(e) = self.stop_all() {
            warn!(error = %e, "test pcscd not stopped cleanly");
        }
    }
}

/// The readers daemon `index` lists: in-process for the first (this process's libpcsclite talks to it),
/// through `opensc-tool -l` with the daemon's socket for the others (libpcsclite reads the socket path
/// once per process).
fn list_readers(index: usize, env: &[(String, String)]) -> Result<Vec<String>, String> {
    if index == 0 {
        return PcscReader::list().map_err(|e| e.to_string());
    }
    let output = Command::new("opensc-tool")
        .arg("-l")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("opensc-tool (scripts/pcsc-install.sh installs it): {e}"))?;
    // "Nr.  Card  Features  Name" then one line per reader: number, Yes/No, features, name.
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.next()?.parse::<usize>().ok()?;
            let rest = line.trim_start().split_once(char::is_whitespace)?.1.trim();
            let name = rest
                .strip_prefix("Yes")
                .or_else(|| rest.strip_prefix("No"))?
                .trim();
            Some(name.to_owned())
        })
        .collect())
}

/// SIGTERM (pcscd then removes its socket and pid file), SIGKILL if it lingers.
fn stop(instance: &mut Instance) -> Result<(), PcscdError> {
    let Some(mut child) = instance.child.take() else {
        return Ok(());
    };
    if child.try_wait().map_err(PcscdError::Stop)?.is_some() {
        return Ok(());
    }
    process::signal(child.id(), "TERM").map_err(PcscdError::Stop)?;
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

/// Writes daemon `index`'s `reader.conf.d/vpcd` and the driver copies it loads.
fn write_config(index: usize, slots: usize, dir: &Path) -> io::Result<()> {
    let conf = dir.join("reader.conf.d");
    fs::create_dir_all(&conf)?;
    let (text, copies) = layout::reader_config(index, slots, dir);
    for copy in copies {
        fs::copy(layout::VPCD_DRIVER, copy)?;
    }
    fs::write(conf.join("vpcd"), text)
}
