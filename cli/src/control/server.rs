//! The listening side of the control socket: accepts clients, reads request lines (bounded), hands each to
//! the handler and writes its answer. Nothing a client sends ends `serve`: bad lines are answered, a
//! panicking handler is answered, too-long lines and too many clients are refused.

use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tracing::{debug, warn};

use super::protocol::{ControlAddr, Request, Response, MAX_REQUEST_LEN};

/// More concurrent clients than this are turned away (each holds a thread).
const MAX_CLIENTS: usize = 32;
/// A client silent for this long is disconnected.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Answers one request.
pub type Handler = dyn Fn(Request) -> Response + Send + Sync;

/// A running control listener; dropping it removes the Unix socket file.
pub struct ControlServer {
    socket_file: Option<PathBuf>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        if let Some(path) = &self.socket_file {
            let _ = fs::remove_file(path);
        }
    }
}

/// Starts listening on `addr` and serves clients on background threads.
pub fn listen(addr: &ControlAddr, handler: Arc<Handler>) -> anyhow::Result<ControlServer> {
    let clients = Arc::new(AtomicUsize::new(0));
    match addr {
        ControlAddr::Tcp(tcp) => {
            let listener = TcpListener::bind(tcp)
                .with_context(|| format!("cannot listen for control clients on {tcp}"))?;
            std::thread::Builder::new()
                .name("control".into())
                .spawn(move || {
                    for stream in listener.incoming().flatten() {
                        let reader = match stream.try_clone() {
                            Ok(reader) => reader,
                            Err(_) => continue,
                        };
                        let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
                        spawn_client(reader, stream, &handler, &clients);
                    }
                })
                .context("cannot start the control thread")?;
            Ok(ControlServer { socket_file: None })
        }
        ControlAddr::Unix(path) => {
            let listener = bind_private(path)?;
            std::thread::Builder::new()
                .name("control".into())
                .spawn(move || {
                    for stream in listener.incoming().flatten() {
                        let reader = match stream.try_clone() {
                            Ok(reader) => reader,
                            Err(_) => continue,
                        };
                        let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
                        spawn_client(reader, stream, &handler, &clients);
                    }
                })
                .context("cannot start the control thread")?;
            Ok(ControlServer {
                socket_file: Some(path.clone()),
            })
        }
    }
}

/// Binds a Unix socket that only this user can connect to: bound under a temporary name, made 0600,
/// then renamed into place, so it is never reachable with looser permissions at its real path. An
/// existing socket nobody answers on (a killed serve's) is replaced; anything else is refused.
fn bind_private(path: &Path) -> anyhow::Result<UnixListener> {
    if let Ok(meta) = fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            anyhow::bail!(
                "control socket {} exists and is not a socket; choose another path",
                path.display()
            );
        }
        if UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "control socket {} is in use by another tessera serve",
                path.display()
            );
        }
        fs::remove_file(path)
            .with_context(|| format!("cannot replace stale socket {}", path.display()))?;
    }
    let name = path
        .file_name()
        .with_context(|| format!("control socket path {} has no file name", path.display()))?;
    let temp = path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = fs::remove_file(&temp);
    let listener = UnixListener::bind(&temp)
        .with_context(|| format!("cannot create control socket {}", path.display()))?;
    let placed = fs::set_permissions(&temp, fs::Permissions::from_mode(0o600))
        .and_then(|()| fs::rename(&temp, path));
    if let Err(error) = placed {
        let _ = fs::remove_file(&temp);
        return Err(error)
            .with_context(|| format!("cannot create control socket {}", path.display()));
    }
    Ok(listener)
}

fn spawn_client<R, W>(reader: R, writer: W, handler: &Arc<Handler>, clients: &Arc<AtomicUsize>)
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let mut writer = writer;
    if clients.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
        clients.fetch_sub(1, Ordering::SeqCst);
        let busy = Response::refused(format!(
            "too many control clients (at most {MAX_CLIENTS} at once); try again later"
        ));
        let _ = writeln!(writer, "{}", busy.to_line());
        return;
    }
    let handler = Arc::clone(handler);
    let count = Arc::clone(clients);
    let spawned = std::thread::Builder::new()
        .name("control client".into())
        .spawn(move || {
            if let Err(error) = serve_client(reader, writer, handler.as_ref()) {
                debug!(%error, "control client gone");
            }
            count.fetch_sub(1, Ordering::SeqCst);
        });
    if spawned.is_err() {
        clients.fetch_sub(1, Ordering::SeqCst);
        warn!("cannot start a thread for a control client");
    }
}

/// Reads request lines until EOF; answers each.
fn serve_client(reader: impl Read, mut writer: impl Write, handler: &Handler) -> io::Result<()> {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = u64::try_from(MAX_REQUEST_LEN + 1).unwrap_or(u64::MAX);
        let read = (&mut reader).take(limit).read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok(());
        }
        if line.len() > MAX_REQUEST_LEN {
            let refused = Response::refused(format!(
                "request longer than {MAX_REQUEST_LEN} bytes; closing the connection"
            ));
            writeln!(writer, "{}", refused.to_line())?;
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() {
            continue;
        }
        let response = match Request::parse(&text) {
            Ok(request) => {
                debug!(?request, "control request");
                panic::catch_unwind(AssertUnwindSafe(|| handler(request))).unwrap_or_else(|_| {
                    Response::refused(
                        "the request failed inside serve (a bug); serve keeps running",
                    )
                })
            }
            Err(error) => Response::refused(error),
        };
        writeln!(writer, "{}", response.to_line())?;
        writer.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(input: &[u8]) -> Vec<Response> {
        let handler = |request: Request| match request {
            Request::List => Response::done("listed"),
            Request::Reset { .. } => panic!("handler bug"),
            _ => Response::refused("no"),
        };
        let mut out = Vec::new();
        serve_client(input, &mut out, &handler).expect("serve");
        String::from_utf8(out)
            .expect("utf-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON answer per line"))
            .collect()
    }

    #[test]
    fn every_line_gets_one_answer_and_a_panic_is_answered_too() {
        let got = answers(b"{\"verb\":\"list\"}\n\nnot json\n{\"verb\":\"reset\",\"slot\":0}\n{\"verb\":\"list\"}");
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got[0].ok);
        assert!(
            !got[1].ok
                && got[1]
                    .error
                    .as_deref()
                    .unwrap_or("")
                    .contains("bad request")
        );
        assert!(!got[2].ok && got[2].error.as_deref().unwrap_or("").contains("a bug"));
        assert!(got[3].ok, "serve goes on after a panic");
    }

    proptest::proptest! {
        /// Whatever a client sends, every non-blank line gets exactly one JSON answer.
        #[test]
        fn any_bytes_get_one_answer_per_line(lines in proptest::collection::vec(
            proptest::prop_oneof![
                "[ -~]{0,80}",
                r#"\{"verb":"(list|remove|insert|tear|clock|trace-start|x)","slot":[0-9]{1,3}(,"[a-z_]{1,8}":("[ -~]{0,10}"|[0-9]{1,4}|null|true))?\}"#,
            ],
            0..8,
        )) {
            let input = lines.join("\n");
            let expected = lines.iter().filter(|l| !l.trim().is_empty()).count();
            let got = answers(input.as_bytes());
            proptest::prop_assert_eq!(got.len(), expected);
        }
    }

    #[test]
    fn an_overlong_line_is_refused_and_ends_the_connection() {
        let mut input = vec![b'x'; MAX_REQUEST_LEN + 10];
        input.extend_from_slice(b"\n{\"verb\":\"list\"}\n");
        let got = answers(&input);
        assert_eq!(got.len(), 1);
        assert!(got[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("longer than"));
    }

    #[test]
    fn the_unix_socket_is_private_and_a_stale_one_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ctl.sock");
        let first = bind_private(&path).expect("bind");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let in_use = bind_private(&path).expect_err("in use");
        assert!(in_use.to_string().contains("in use"), "{in_use}");
        drop(first);
        bind_private(&path).expect("a stale socket is replaced");
        let file = dir.path().join("plain");
        fs::write(&file, b"x").expect("write");
        assert!(bind_private(&file)
            .expect_err("not a socket")
            .to_string()
            .contains("not a socket"));
    }
}
