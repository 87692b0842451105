//! Server processes that cannot outlive the test process.
//!
//! Every local server runs under a small `sh` watchdog in its own process
//! group. The watchdog polls the test process; when it is gone (normal exit,
//! panic, even SIGKILL) it stops the whole group, removes the server's temp
//! dir and exits. No signal handler, `atexit` or `unsafe` is needed, and
//! statics that are never dropped leak nothing.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use std::{fs, thread};

/// Runs `"$@"` with output to `$dir/server.log`, watches the owner, then
/// stops the group and removes `$dir`. `$1` = owner pid, `$2` = dir, `$3` =
/// whether to remove the dir. When the server exits while `$dir/restart`
/// exists, the marker is removed and the server started again with the same
/// arguments (see [`Watched::restart`]).
const WATCHDOG: &str = r#"
owner=$1; dir=$2; cleanup=$3; shift 3
while :; do
  "$@" >>"$dir/server.log" 2>&1 </dev/null &
  child=$!
  echo "$child" >"$dir/server.pid"
  while kill -0 "$owner" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.1; done
  if kill -0 "$owner" 2>/dev/null && [ -f "$dir/restart" ]; then
    wait "$child" 2>/dev/null
    rm -f "$dir/restart"
    continue
  fi
  break
done
trap '' TERM INT HUP
kill -TERM 0 2>/dev/null
i=0
while kill -0 "$child" 2>/dev/null && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i+1)); done
[ "$cleanup" = yes ] && rm -rf "$dir"
kill -KILL 0
"#;

/// A server process under a watchdog, and its directory.
#[derive(Debug)]
pub(crate) struct Watched {
    watchdog: Child,
    pub(crate) dir: PathBuf,
}

impl Watched {
    /// Stops the server now (used when it failed to become ready).
    pub(crate) fn stop(mut self) {
        let group = format!("-{}", self.watchdog.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.watchdog.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }

    /// Stops the server process with `signal` (`TERM`, or `INT` for
    /// PostgreSQL's fast shutdown) and lets the watchdog start it again with
    /// the same arguments, so on the same port. Returns once the old process
    /// is gone; the caller waits for readiness.
    pub(crate) fn restart(&self, signal: &str) -> Result<(), String> {
        let pid = fs::read_to_string(self.dir.join("server.pid"))
            .map_err(|e| format!("no server.pid: {e}"))?
            .trim()
            .to_owned();
        fs::write(self.dir.join("restart"), b"")
            .map_err(|e| format!("cannot write the restart marker: {e}"))?;
        // A server started through `runuser` is its child: signal the
        // children when there are any, the process itself otherwise.
        let mut targets = children_of(&pid);
        if targets.is_empty() {
            targets.push(pid.clone());
        }
        for target in &targets {
            let killed = Command::new("kill")
                .args([format!("-{signal}").as_str(), target])
                .status();
            if !killed.is_ok_and(|s| s.success()) {
                return Err(format!("cannot signal server process {target}"));
            }
        }
        let gone = wait_until(Duration::from_secs(30), || {
            !Command::new("kill")
                .args(["-0", &pid])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        let restarted = wait_until(Duration::from_secs(30), || {
            !self.dir.join("restart").exists()
        });
        match (gone, restarted) {
            (true, true) => Ok(()),
            (false, _) => Err(format!(
                "server process {pid} was still running 30 s after SIG{signal}; its log ends:\n{}",
                self.log_tail()
            )),
            (true, false) => Err(format!(
                "server process {pid} stopped but the watchdog did not start it again within 30 s; \
                 its log ends:\n{}",
                self.log_tail()
            )),
        }
    }

    /// Sends `signal` (`STOP`, `CONT`, ...) to the server process.
    pub(crate) fn signal(&self, signal: &str) -> Result<(), String> {
        let pid = fs::read_to_string(self.dir.join("server.pid"))
            .map_err(|e| format!("no server.pid: {e}"))?
            .trim()
            .to_owned();
        let sent = Command::new("kill")
            .args([format!("-{signal}").as_str(), &pid])
            .status();
        if sent.is_ok_and(|s| s.success()) {
            Ok(())
        } else {
            Err(format!("cannot send SIG{signal} to server process {pid}"))
        }
    }

    /// The last lines of the server's log, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        log_tail(&self.dir.join("server.log"))
    }

    /// The server's whole log so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

/// The PIDs whose parent is `pid`, from `/proc/*/stat`.
fn children_of(pid: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let stat = fs::read_to_string(format!("/proc/{name}/stat")).ok()?;
            // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
            let ppid = stat.rsplit_once(')')?.1.split_whitespace().nth(1)?;
            (ppid == pid).then_some(name)
        })
        .collect()
}

pub(crate) fn log_tail(path: &Path) -> String {
    let log = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// A fresh directory for one server: `$TMPDIR/kv-testkit-<name>-<pid>-<n>`.
pub(crate) fn server_dir(name: &str) -> std::io::Result<PathBuf> {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kv-testkit-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Starts `program args` under a watchdog, in `dir`, as the current user or,
/// with `as_user`, through `runuser -u <user> --`.
pub(crate) fn spawn_watched(
    dir: PathBuf,
    as_user: Option<&str>,
    program: &Path,
    args: &[String],
) -> std::io::Result<Watched> {
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(WATCHDOG)
        .arg("kv-testkit-watchdog")
        .arg(std::process::id().to_string())
        .arg(&dir)
        .arg("yes");
    if let Some(user) = as_user {
        command.args(["runuser", "-u", user, "--"]);
    }
    command
        .arg(program)
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    let watchdog = command.spawn()?;
    Ok(Watched { watchdog, dir })
}

/// Starts a watchdog that runs `on_owner_exit` (a shell command) once the
/// test process is gone. Used to remove containers.
#[cfg(feature = "docker")]
pub(crate) fn on_owner_exit(on_owner_exit: &str) -> std::io::Result<Child> {
    let script = format!(
        "owner=$1; while kill -0 \"$owner\" 2>/dev/null; do sleep 0.5; done; {on_owner_exit}"
    );
    Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg("kv-testkit-watchdog")
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
}

/// A port that was free on 127.0.0.1 a moment ago.
pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls `ready` every 100 ms until it returns `true` or `timeout` passes.
pub(crate) fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Sends `request` to `addr` and returns what the server answers before it
/// closes the connection or 2 s pass.
pub(crate) fn tcp_exchange(addr: &str, request: &[u8]) -> Option<String> {
    let addr = addr.parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(request).ok()?;
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// The path of `program` on PATH, if any.
pub(crate) fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Whether this process runs as root.
pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
