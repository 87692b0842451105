//! MariaDB (Debian's MySQL): `mariadb-install-db` into a fresh data
//! directory, then `mariadbd` on a free loopback port with a database `kv`.

use std::path::PathBuf;
use std::process::Command;

use super::{Local, dir_for, ready_or_stop, spawn};
use crate::process::{free_port, is_root, which};

/// The database the tests use; created at the server's first start.
pub(crate) const DATABASE: &str = "kv";

/// The user a [`MysqlOptions::password`] is given to (all privileges on
/// the database [`DATABASE`]).
pub(crate) const APP_USER: &str = "kv_app";

/// How a MySQL test server is started.
#[derive(Debug, Clone, Default)]
pub(crate) struct MysqlOptions {
    /// Create the user [`APP_USER`] with this password; the URL is then
    /// theirs (else `root` without a password).
    pub(crate) password: Option<String>,
    /// Serve TLS with this certificate and key; the password user (if any)
    /// is then `REQUIRE SSL`.
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
}

pub(crate) fn mysql(options: &MysqlOptions) -> Result<Local, String> {
    let install_db =
        which("mariadb-install-db").ok_or("MariaDB's `mariadb-install-db` is not on PATH")?;
    let mariadbd = which("mariadbd")
        .or_else(|| {
            let sbin = PathBuf::from("/usr/sbin/mariadbd");
            sbin.is_file().then_some(sbin)
        })
        .ok_or("MariaDB's `mariadbd` is neither on PATH nor in /usr/sbin")?;
    let dir = dir_for("mysql")?;
    let data = dir.join("data");
    // mariadbd runs as root only when told to; the data dir is then root's.
    let user = if is_root() {
        "root".to_owned()
    } else {
        std::env::var("USER").unwrap_or_else(|_| "nobody".to_owned())
    };
    let out = Command::new(install_db)
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--user={user}"))
        .args([
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
        ])
        .output()
        .map_err(|e| format!("cannot run mariadb-install-db: {e}"))?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(format!(
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let init = dir.join("init.sql");
    let mut init_sql = format!("CREATE DATABASE IF NOT EXISTS {DATABASE};\n");
    if let Some(password) = &options.password {
        let require = if options.tls.is_some() {
            " REQUIRE SSL"
        } else {
            ""
        };
        init_sql.push_str(&format!(
            "CREATE USER IF NOT EXISTS '{APP_USER}'@'%' IDENTIFIED BY '{}'{require};\n\
             GRANT ALL PRIVILEGES ON {DATABASE}.* TO '{APP_USER}'@'%';\n",
            password.replace('\\', "\\\\").replace('\'', "\\'")
        ));
    }
    std::fs::write(&init, init_sql).map_err(|e| format!("cannot write init.sql: {e}"))?;
    let port = free_port().map_err(|e| e.to_string())?.to_string();
    let args: Vec<String> = vec![
        // No /etc/mysql configuration: this server is the tests' alone.
        "--no-defaults".into(),
        format!("--datadir={}", data.display()),
        format!("--user={user}"),
        format!("--port={port}"),
        "--bind-address=127.0.0.1".into(),
        format!("--socket={}", dir.join("mysqld.sock").display()),
        format!("--pid-file={}", dir.join("mysqld.pid").display()),
        format!("--init-file={}", init.display()),
        "--skip-log-bin".into(),
        "--skip-name-resolve".into(),
        "--innodb-buffer-pool-size=128M".into(),
        "--max-connections=500".into(),
    ];
    let mut args = args;
    if let Some((cert, key)) = &options.tls {
        args.push(format!("--ssl-cert={}", cert.display()));
        args.push(format!("--ssl-key={}", key.display()));
    }
    let watched = spawn(dir, None, &mariadbd, &args)?;
    let url = match &options.password {
        Some(password) => format!("mysql://{APP_USER}:{password}@127.0.0.1:{port}/{DATABASE}"),
        None => format!("mysql://root@127.0.0.1:{port}/{DATABASE}"),
    };
    let admin = which("mariadb-admin");
    ready_or_stop("mariadbd", watched, url, || match &admin {
        Some(admin) => Command::new(admin)
            .args([
                "--no-defaults",
                "-h",
                "127.0.0.1",
                "-P",
                &port,
                "-u",
                "root",
            ])
            .arg("ping")
            .output()
            .is_ok_and(|o| o.status.success()),
        None => format!("127.0.0.1:{port}").parse().is_ok_and(|a| {
            std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_millis(500)).is_ok()
        }),
    })
}
