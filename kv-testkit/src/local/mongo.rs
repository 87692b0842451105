//! MongoDB: SecantusDB here, or a real mongod (standalone, replica set).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Local, READY_TIMEOUT, dir_for, ready_or_stop, retrying, spawn, strings, wait_ready};
use crate::Kind;
use crate::process::{free_port, wait_until, which};

/// The venv holding SecantusDB.
fn secantus_python() -> PathBuf {
    let venv = std::env::var_os("KV_SECANTUS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| "/root".into());
            home.join(".cache/kv/secantus")
        });
    venv.join("bin/python")
}

/// Starts SecantusDB and prints its port when it listens. Arguments: the
/// replica set name (empty: a standalone server), the port (the same one
/// again after a restart), and a user and password (empty: no
/// authentication), and a TLS certificate and key (empty: no TLS). Without a user the data lives in memory; with one it
/// lives in `./data`: the user is created on a first start without
/// authentication, then the server starts again requiring it (SecantusDB
/// has no localhost exception).
const SECANTUS: &str = r#"
import signal, sys, threading
from secantus import SecantusDBServer
rs, port, user, password = sys.argv[1] or None, int(sys.argv[2]), sys.argv[3], sys.argv[4]
cert, key = sys.argv[5] or None, sys.argv[6] or None
def server(port, **kw):
    return SecantusDBServer(host="127.0.0.1", port=port, ttl_sweep_seconds=1.0,
                            replica_set_name=rs, **kw)
if user:
    import pymongo
    first = server(0, storage_path="data")
    first.start()
    client = pymongo.MongoClient("127.0.0.1", first.port, directConnection=True)
    client.admin.command("createUser", user, pwd=password, roles=[{"role": "root", "db": "admin"}])
    client.close()
    first.stop()
    main = server(port, storage_path="data", require_auth=True, tls_cert_file=cert, tls_key_file=key)
else:
    main = server(port, storage_path=":memory:", tls_cert_file=cert, tls_key_file=key)
main.start()
print("KV-TESTKIT-READY", main.port, flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
threading.Event().wait()
"#;

/// How a MongoDB test server is started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MongoOptions {
    /// A standalone server instead of a one-node replica set.
    pub(crate) standalone: bool,
    /// Require authentication, with this root user and password.
    pub(crate) auth: Option<(String, String)>,
    /// Serve only TLS with these files.
    pub(crate) tls: Option<MongoTls>,
}

/// The files of a TLS MongoDB test server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MongoTls {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    /// Certificate and key in one file (mongod's `--tlsCertificateKeyFile`).
    pub(crate) cert_and_key: PathBuf,
    /// The CA, for `mongosh`.
    pub(crate) ca: PathBuf,
}

impl MongoOptions {
    /// The URL's options after `?`.
    fn url_options(&self) -> &'static str {
        if self.tls.is_some() {
            "directConnection=true&tls=true"
        } else {
            "directConnection=true"
        }
    }
}

pub(crate) fn mongo(options: MongoOptions) -> Result<Local, String> {
    if let Some(mongod) = which("mongod") {
        return mongod_server(&mongod, options);
    }
    let python = secantus_python();
    if !python.is_file() {
        return Err(format!(
            "neither `mongod` is on PATH nor SecantusDB installed in {}",
            python
                .parent()
                .and_then(Path::parent)
                .map_or(String::new(), |p| p.display().to_string())
        ));
    }
    let dir = dir_for("secantus")?;
    let port = free_port().map_err(|e| e.to_string())?;
    let replica_set = if options.standalone { "" } else { "secantus" };
    let (user, password) = options.auth.clone().unwrap_or_default();
    let (cert, key) = options.tls.as_ref().map_or_else(Default::default, |t| {
        (t.cert.display().to_string(), t.key.display().to_string())
    });
    let watched = spawn(
        dir,
        None,
        &python,
        &[
            "-u".into(),
            "-c".into(),
            SECANTUS.into(),
            replica_set.into(),
            port.to_string(),
            user,
            password,
            cert,
            key,
        ],
    )?;
    let ready = wait_until(READY_TIMEOUT, || {
        watched
            .log()
            .lines()
            .any(|l| l.starts_with("KV-TESTKIT-READY "))
    });
    match ready {
        true => Ok(Local {
            url: format!("mongodb://127.0.0.1:{port}/?{}", options.url_options()),
            watched,
        }),
        false => {
            let tail = watched.log_tail();
            watched.stop();
            Err(format!(
                "SecantusDB did not start within {READY_TIMEOUT:?}; its log ends:\n{tail}"
            ))
        }
    }
}

/// A real `mongod`: a one-node replica set (transactions need one),
/// initiated with `mongosh`, or a standalone server; with `--auth` when
/// asked (a replica set then authenticates its members with a key file).
fn mongod_server(mongod: &Path, options: MongoOptions) -> Result<Local, String> {
    let mongosh = which("mongosh")
        .ok_or("`mongod` is on PATH but `mongosh` (needed to initiate the replica set) is not")?;
    let port = free_port().map_err(|e| e.to_string())?.to_string();
    let dir = dir_for("mongod")?;
    let db = dir.join("db");
    std::fs::create_dir_all(&db).map_err(|e| e.to_string())?;
    let mut args = vec![
        "--port".into(),
        port.clone(),
        "--bind_ip".into(),
        "127.0.0.1".into(),
        "--dbpath".into(),
        db.display().to_string(),
    ];
    if options.auth.is_some() {
        args.push("--auth".into());
    }
    let mut shell_tls = Vec::new();
    if let Some(tls) = &options.tls {
        args.extend(["--tlsMode".into(), "requireTLS".into()]);
        args.extend([
            "--tlsCertificateKeyFile".into(),
            tls.cert_and_key.display().to_string(),
        ]);
        shell_tls = vec![
            "--tls".to_owned(),
            "--tlsCAFile".to_owned(),
            tls.ca.display().to_string(),
        ];
    }
    if !options.standalone {
        args.extend(["--replSet".into(), "kvtest".into()]);
        if options.auth.is_some() {
            let key_file = dir.join("keyfile");
            std::fs::write(&key_file, "kvtestkeyfilekvtestkeyfile").map_err(|e| e.to_string())?;
            set_owner_only(&key_file)?;
            args.extend(["--keyFile".into(), key_file.display().to_string()]);
        }
    }
    let url = format!("mongodb://127.0.0.1:{port}/?{}", options.url_options());
    let watched = spawn(dir, None, mongod, &args)?;
    let create_user = options.auth.as_ref().map(|(user, password)| {
        format!(
            "try {{ db.getSiblingDB('admin').createUser({{user: {user:?}, pwd: {password:?}, \
             roles: [{{role: 'root', db: 'admin'}}]}}); print(true) }} \
             catch (e) {{ print(e.codeName === 'DuplicateKey' || e.code === 51003) }}"
        )
    });
    let eval = |script: &str| {
        Command::new(&mongosh)
            .args(["--quiet", "--port", &port])
            .args(&shell_tls)
            .args(["--eval", script])
            .output()
            .is_ok_and(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).contains("true")
            })
    };
    let init = format!(
        "try {{ rs.initiate({{_id: 'kvtest', members: [{{_id: 0, host: '127.0.0.1:{port}'}}]}}); print(true) }} \
         catch (e) {{ print(e.codeName === 'AlreadyInitialized') }}"
    );
    // Under --auth, the localhost exception allows rs.initiate and the
    // first createUser; a standalone server needs no initiation.
    ready_or_stop("mongod", watched, url, || {
        (options.standalone || eval(&init))
            && match &create_user {
                Some(create) => eval(create),
                None => options.standalone || eval("print(db.hello().isWritablePrimary)"),
            }
            && wait_ready(Kind::Mongo, &format!("mongodb://127.0.0.1:{port}"))
    })
}

/// A real replica set of `members` `mongod`s on loopback (`--replSet
/// kvrs`), initiated together with `mongosh`; ready once one member is a
/// writable primary. `None` when `mongod` or `mongosh` is not on PATH.
pub(crate) fn mongod_replica_set(members: usize) -> Option<Result<Vec<Local>, String>> {
    let mongod = which("mongod")?;
    let mongosh = which("mongosh")?;
    Some(retrying(2, || {
        start_mongod_replica_set(&mongod, &mongosh, members)
    }))
}

fn start_mongod_replica_set(
    mongod: &Path,
    mongosh: &Path,
    members: usize,
) -> Result<Vec<Local>, String> {
    let mut started: Vec<Local> = Vec::new();
    let mut ports = Vec::new();
    let stop_all = |started: Vec<Local>| started.into_iter().for_each(|l| l.watched.stop());
    for _ in 0..members {
        let port = free_port().map_err(|e| e.to_string())?.to_string();
        let dir = dir_for("mongod-rs")?;
        let db = dir.join("db");
        std::fs::create_dir_all(&db).map_err(|e| e.to_string())?;
        let args = strings(&[
            "--port",
            &port,
            "--bind_ip",
            "127.0.0.1",
            "--dbpath",
            &db.display().to_string(),
            "--replSet",
            "kvrs",
        ]);
        match spawn(dir, None, mongod, &args) {
            Ok(watched) => started.push(Local {
                url: format!("mongodb://127.0.0.1:{port}/?directConnection=true"),
                watched,
            }),
            Err(e) => {
                stop_all(started);
                return Err(e);
            }
        }
        ports.push(port);
    }
    let eval = |port: &str, script: &str| {
        Command::new(mongosh)
            .args(["--quiet", "--port", port, "--eval", script])
            .output()
            .is_ok_and(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).contains("true")
            })
    };
    let hosts = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{{_id: {i}, host: '127.0.0.1:{p}'}}"))
        .collect::<Vec<_>>()
        .join(", ");
    let init = format!(
        "try {{ rs.initiate({{_id: 'kvrs', members: [{hosts}]}}); print(true) }} \
         catch (e) {{ print(e.codeName === 'AlreadyInitialized') }}"
    );
    let first = &ports[0];
    let ready = wait_until(READY_TIMEOUT, || eval(first, &init))
        && wait_until(READY_TIMEOUT, || {
            ports
                .iter()
                .any(|p| eval(p, "print(db.hello().isWritablePrimary)"))
        });
    if ready {
        Ok(started)
    } else {
        let tail = started[0].watched.log_tail();
        stop_all(started);
        Err(format!(
            "the mongod replica set did not elect a primary within {READY_TIMEOUT:?}; a log ends:\n{tail}"
        ))
    }
}

/// `chmod 600`: mongod refuses a key file others can read.
fn set_owner_only(path: &Path) -> Result<(), String> {
    let status = Command::new("chmod")
        .arg("600")
        .arg(path)
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err("chmod 600 on the mongod key file failed".into())
    }
}
