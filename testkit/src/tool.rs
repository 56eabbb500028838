//! One runner for the external tools tests drive (opensc-tool, pkcs11-tool, yubico-piv-tool, ykman,
//! certutil, openssl, tessera itself): a timeout, captured output, secrets masked, and assertions whose
//! failure message names the command line, the exit code and everything the tool printed.
//!
//! ```no_run
//! use testkit::tool::Tool;
//! let listed = Tool::new("opensc-tool").arg("-l").run().ok().has("Virtual PCD 00 00");
//! # let _ = listed;
//! ```

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one tool invocation may take unless [`Tool::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);

/// A tool invocation being put together.
#[derive(Debug, Clone)]
pub struct Tool {
    program: String,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    dir: Option<PathBuf>,
    timeout: Duration,
    secrets: Vec<String>,
    separate_stderr: bool,
    quiet: bool,
}

impl Tool {
    pub fn new(program: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            dir: None,
            timeout: DEFAULT_TIMEOUT,
            secrets: Vec::new(),
            separate_stderr: false,
            quiet: false,
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// After this long the tool is killed and the test fails, naming it.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Values that must never appear in a failure message or log line (see [`redact`]).
    pub fn redact<S: AsRef<str>>(mut self, secrets: &[S]) -> Self {
        self.secrets
            .extend(secrets.iter().map(|s| s.as_ref().to_owned()));
        self
    }

    /// Keeps stderr apart ([`Run::err`]) instead of interleaving it into [`Run::out`]: for tools whose
    /// stdout is parsed (JSON answers).
    pub fn separate_stderr(mut self) -> Self {
        self.separate_stderr = true;
        self
    }

    /// Does not log the invocation line to stderr.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// The command line as a shell would take it, environment first.
    pub fn cmdline(&self) -> String {
        self.env
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    k.to_string_lossy(),
                    shell_quote(&v.to_string_lossy())
                )
            })
            .chain(std::iter::once(self.program.clone()))
            .chain(self.args.iter().map(|a| shell_quote(&a.to_string_lossy())))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs the tool with stdin closed. Never panics on a failing tool — callers assert on the [`Run`] —
    /// only on one that cannot start or outlives its timeout.
    pub fn run(&self) -> Run {
        let cmdline = self.cmdline();
        let (out_reader, out_writer) = std::io::pipe().expect("pipe");
        let (err_reader, err_writer) = std::io::pipe().expect("pipe");
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        if self.separate_stderr {
            command.stdout(out_writer).stderr(err_writer);
        } else {
            command
                .stdout(out_writer.try_clone().expect("pipe clone"))
                .stderr(out_writer);
            drop(err_writer);
        }
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        let started = Instant::now();
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {} (is it installed?): {e}\n$ {}",
                self.program,
                redact(&cmdline, &self.secrets)
            )
        });
        // The Command holds the write ends: drop it so the readers see EOF when the tool exits.
        drop(command);
        let collect = |mut reader: std::io::PipeReader| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = reader.read_to_end(&mut bytes);
                bytes
            })
        };
        let out_thread = collect(out_reader);
        let err_thread = collect(err_reader);
        // A watchdog kills the tool when the timeout passes; this thread waits for it without polling,
        // so `elapsed` is exact (benchmarks time whole tool runs).
        let (done, watch) = std::sync::mpsc::channel::<()>();
        let pid = child.id();
        let timeout = self.timeout;
        let timed_out = Arc::new(AtomicBool::new(false));
        let watchdog = {
            let timed_out = Arc::clone(&timed_out);
            std::thread::spawn(move || {
                if let Err(RecvTimeoutError::Timeout) = watch.recv_timeout(timeout) {
                    timed_out.store(true, Ordering::SeqCst);
                    let _ = Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .stderr(Stdio::null())
                        .status();
                }
            })
        };
        let status = child.wait().expect("wait for tool");
        let elapsed = started.elapsed();
        let _ = done.send(());
        let _ = watchdog.join();
        if timed_out.load(Ordering::SeqCst) {
            let out = out_thread.join().unwrap_or_default();
            let err = err_thread.join().unwrap_or_default();
            panic!(
                "{} hung for {:?} and was killed:\n$ {}\n{}{}",
                self.program,
                self.timeout,
                redact(&cmdline, &self.secrets),
                redact(&String::from_utf8_lossy(&out), &self.secrets),
                redact(&String::from_utf8_lossy(&err), &self.secrets)
            );
        }
        let out = out_thread.join().unwrap_or_default();
        let err = err_thread.join().unwrap_or_default();
        let run = Run {
            code: status.code(),
            out: String::from_utf8_lossy(&out).into_owned(),
            err: String::from_utf8_lossy(&err).into_owned(),
            cmdline,
            elapsed,
            secrets: self.secrets.clone(),
        };
        if !self.quiet {
            eprintln!(
                "  [{:>6.2?}] exit {:?}: {}",
                run.elapsed,
                run.code,
                redact(&run.cmdline, &run.secrets)
            );
        }
        run
    }
}

/// Runs `program args…` with the default timeout and no secrets.
pub fn run(program: &str, args: &[&str]) -> Run {
    Tool::new(program).args(args).run()
}

/// One finished tool run.
#[derive(Debug, Clone)]
pub struct Run {
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// stdout and stderr interleaved as the tool wrote them, or stdout alone with
    /// [`Tool::separate_stderr`].
    pub out: String,
    /// stderr, with [`Tool::separate_stderr`]; empty otherwise.
    pub err: String,
    cmdline: String,
    elapsed: Duration,
    secrets: Vec<String>,
}

impl Run {
    /// The command line, exit code and output, secrets masked: what every failed assertion prints.
    pub fn describe(&self) -> String {
        let err = if self.err.is_empty() {
            String::new()
        } else {
            format!("[stderr]\n{}\n", redact(&self.err, &self.secrets))
        };
        format!(
            "\n$ {}\n[exit {:?} after {:.2?}]\n{}\n{err}",
            redact(&self.cmdline, &self.secrets),
            self.code,
            self.elapsed,
            redact(&self.out, &self.secrets)
        )
    }

    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Asserts exit code 0.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "expected success:{}", self.describe());
        self
    }

    /// Asserts a non-zero exit code.
    #[track_caller]
    pub fn fails(self) -> Self {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "expected failure:{}",
            self.describe()
        );
        self
    }

    /// Asserts exit code `code`.
    #[track_caller]
    pub fn exits(self, code: i32) -> Self {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}:{}",
            self.describe()
        );
        self
    }

    /// Asserts that the output contains `needle`.
    #[track_caller]
    pub fn has(self, needle: &str) -> Self {
        assert!(
            self.out.contains(needle) || self.err.contains(needle),
            "expected {:?} in the output:{}",
            redact(needle, &self.secrets),
            self.describe()
        );
        self
    }

    /// Asserts that the output does not contain `needle`.
    #[track_caller]
    pub fn lacks(self, needle: &str) -> Self {
        assert!(
            !self.out.contains(needle) && !self.err.contains(needle),
            "did not expect {:?} in the output:{}",
            redact(needle, &self.secrets),
            self.describe()
        );
        self
    }

    /// The value after `key` on the first line that starts with it (leading blanks ignored), trimmed:
    /// `field("PIN tries left:")` on "PIN tries left:\t3" is "3".
    #[track_caller]
    pub fn field(&self, key: &str) -> String {
        self.out
            .lines()
            .find_map(|line| line.trim_start().strip_prefix(key))
            .map(|rest| rest.trim().to_owned())
            .unwrap_or_else(|| panic!("no {key:?} line in the output:{}", self.describe()))
    }
}

/// Masks every secret in `text`: as given, upper-cased, as hex of its ASCII bytes (PINs inside APDU
/// traces), and — for hex keys of 16 bytes or more — as spaced or colon-separated bytes.
pub fn redact<S: AsRef<str>>(text: &str, secrets: &[S]) -> String {
    let mut forms: Vec<String> = Vec::new();
    for secret in secrets {
        let secret = secret.as_ref();
        if secret.is_empty() {
            continue;
        }
        forms.push(secret.to_owned());
        forms.push(secret.to_uppercase());
        let ascii: Vec<String> = secret.bytes().map(|b| format!("{b:02x}")).collect();
        forms.push(ascii.join(" "));
        forms.push(ascii.join(" ").to_uppercase());
        if secret.len() >= 32 {
            if let Ok(bytes) = hex::decode(secret) {
                let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
                for sep in [" ", ":"] {
                    forms.push(pairs.join(sep));
                    forms.push(pairs.join(sep).to_uppercase());
                }
            }
        }
    }
    // Longest first, so a PIN inside a PUK cannot leave half of the PUK behind.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    let mut out = text.to_owned();
    for form in &forms {
        out = out.replace(form.as_str(), "<secret>");
    }
    out
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:,@%+".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Whether `tool` is an executable on PATH.
pub fn have(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            fs::metadata(dir.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Panics with an install hint unless every tool is on PATH: these come with scripts/pcsc-install.sh
/// (plus openssl), so a missing one is a broken environment, not a reason to skip.
pub fn require(tools: &[&str]) {
    for tool in tools {
        assert!(
            have(tool),
            "{tool} is not installed (bash scripts/pcsc-install.sh installs the interop tools)"
        );
    }
}

/// Prints a loud SKIP line and returns false when `tool` is missing, unless TESSERA_INTEROP_REQUIRE_ALL is
/// set (then it panics). For tools the tests may run without on a developer's machine.
pub fn optional(tool: &str, hint: &str) -> bool {
    if have(tool) {
        return true;
    }
    assert!(
        std::env::var_os("TESSERA_INTEROP_REQUIRE_ALL").is_none(),
        "{tool} is not installed and TESSERA_INTEROP_REQUIRE_ALL is set ({hint})"
    );
    eprintln!("SKIPPED: {tool} is not installed ({hint})");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_exit_code_and_masks_secrets() {
        let run = Tool::new("sh")
            .args(["-c", "echo pin 123456; echo oops >&2; exit 3"])
            .redact(&["123456"])
            .quiet()
            .run()
            .exits(3)
            .has("oops");
        assert!(
            run.describe().contains("pin <secret>"),
            "{}",
            run.describe()
        );
        assert!(!run.describe().contains("123456"));
    }

    #[test]
    fn stderr_can_be_kept_apart() {
        let run = Tool::new("sh")
            .args(["-c", "echo answer; echo noise >&2"])
            .separate_stderr()
            .quiet()
            .run()
            .ok();
        assert_eq!(run.out, "answer\n");
        assert_eq!(run.err, "noise\n");
    }

    #[test]
    #[should_panic(expected = "hung for")]
    fn a_hanging_tool_fails_the_test_by_name() {
        Tool::new("sleep")
            .arg("5")
            .timeout(Duration::from_millis(100))
            .quiet()
            .run();
    }

    #[test]
    fn redacts_ascii_hex_and_key_forms() {
        let key = "00112233445566778899aabbccddeeff";
        let text = "31 32 33 34 35 36 and 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
        let masked = redact(text, &["123456", key]);
        assert_eq!(masked, "<secret> and <secret>");
    }
}
