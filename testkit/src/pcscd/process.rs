//! The processes behind the guard: refusing to share the machine with a pcscd we did not start, clearing
//! what a killed test run left behind, and signals.

use std::fs;
use std::io;
use std::process::{Command, Stdio};

use tracing::warn;

use super::{PcscdError, DIR_PREFIX, STOP_TIMEOUT};
use crate::wait_for;

/// Refuses to run beside a pcscd we did not start that owns our /run/pcscd (one in another mount
/// namespace has a /run/pcscd of its own and is left alone); kills one a crashed test run left behind
/// (its config dir carries our prefix, in whatever namespace); clears stale files in /run/pcscd.
pub(super) fn clear_leftovers() -> Result<(), PcscdError> {
    let ours = mount_namespace("self");
    for (pid, cmdline) in running_pcscds() {
        if !cmdline.contains(DIR_PREFIX) {
            if ours.is_some() && mount_namespace(&pid.to_string()) != ours {
                continue;
            }
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

/// The mount namespace of a process (`self` or a pid), as the kernel names it (`mnt:[4026531841]`).
fn mount_namespace(process: &str) -> Option<std::path::PathBuf> {
    fs::read_link(format!("/proc/{process}/ns/mnt")).ok()
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
pub(super) fn is_live(pid: u32) -> bool {
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
pub(super) fn signal(pid: u32, name: &str) -> io::Result<()> {
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
