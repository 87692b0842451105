//! PostgreSQL: initdb, then the server (TLS, scram-sha-256).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Local, dir_for, ready_or_stop, spawn};
use crate::process::{free_port, is_root, which};

/// The directory holding `initdb`, `postgres` and `pg_isready`: PATH first,
/// else Debian's `/usr/lib/postgresql/<newest>/bin`.
fn postgres_bin_dir() -> Option<PathBuf> {
    if let Some(initdb) = which("initdb") {
        let resolved = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        return resolved.parent().map(Path::to_path_buf);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// How a PostgreSQL test server is started.
#[derive(Debug, Clone, Default)]
pub(crate) struct PostgresOptions {
    /// Require `scram-sha-256` with this password for the `postgres` user
    /// (else `trust`).
    pub(crate) password: Option<String>,
    /// Serve TLS (`ssl = on`) with this certificate and key.
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
}

pub(crate) fn postgres(options: &PostgresOptions) -> Result<Local, String> {
    let bin = postgres_bin_dir()
        .ok_or("PostgreSQL's `initdb` is neither on PATH nor under /usr/lib/postgresql/*/bin")?;
    let dir = dir_for("postgres")?;
    // initdb and postgres refuse to run as root: use the `postgres` user.
    let as_user = if is_root() {
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status();
        if !chown.is_ok_and(|s| s.success()) {
            return Err("running as root, but cannot hand the data dir to a `postgres` user (does it exist?)".into());
        }
        Some("postgres")
    } else {
        None
    };
    let data = dir.join("data");
    let mut initdb = match as_user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(bin.join("initdb"));
            c
        }
        None => Command::new(bin.join("initdb")),
    };
    let auth = match &options.password {
        Some(password) => {
            let file = dir.join("pwfile");
            std::fs::write(&file, password).map_err(|e| format!("cannot write the pwfile: {e}"))?;
            if as_user.is_some() {
                let _ = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&file)
                    .status();
            }
            initdb.arg(format!("--pwfile={}", file.display()));
            "scram-sha-256"
        }
        None => "trust",
    };
    let out = initdb
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-A",
            auth,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = free_port().map_err(|e| e.to_string())?.to_string();
    let mut tls_args = Vec::new();
    if let Some((cert, key)) = &options.tls {
        // The key must belong to the server's user and be private to it.
        for (from, to) in [(cert, "server.crt"), (key, "server.key")] {
            std::fs::copy(from, data.join(to)).map_err(|e| format!("cannot copy {to}: {e}"))?;
            if as_user.is_some() {
                let _ = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(data.join(to))
                    .status();
            }
        }
        let _ = Command::new("chmod")
            .arg("600")
            .arg(data.join("server.key"))
            .status();
        for setting in [
            "ssl=on",
            "ssl_cert_file=server.crt",
            "ssl_key_file=server.key",
        ] {
            tls_args.push("-c".to_owned());
            tls_args.push(setting.to_owned());
        }
    }
    let mut args = vec![
        "-D".into(),
        data.display().to_string(),
        "-p".into(),
        port.clone(),
        "-k".into(),
        dir.display().to_string(),
        "-h".into(),
        "127.0.0.1".into(),
        "-F".into(),
        "-c".into(),
        "max_connections=500".into(),
        "-c".into(),
        "shared_buffers=128MB".into(),
    ];
    args.extend(tls_args);
    let watched = spawn(dir, as_user, &bin.join("postgres"), &args)?;
    let user = match &options.password {
        Some(password) => format!("postgres:{password}"),
        None => "postgres".to_owned(),
    };
    let url = format!("postgres://{user}@127.0.0.1:{port}/postgres");
    let pg_isready = bin.join("pg_isready");
    ready_or_stop("postgres", watched, url, || {
        Command::new(&pg_isready)
            .args(["-q", "-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
            .status()
            .is_ok_and(|s| s.success())
    })
}
