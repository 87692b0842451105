//! Certificates made at test time, for servers started with TLS.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::process::server_dir;

/// A private CA, a server certificate it signed for `127.0.0.1` and
/// `localhost`, and a second CA that signed nothing (to prove an untrusted
/// server is refused). PEM files in a temp dir removed when dropped. Made
/// with the `openssl` command (`scripts/install-test-deps.sh` installs it).
#[derive(Debug)]
pub struct TestCerts {
    dir: PathBuf,
}

impl TestCerts {
    /// Makes a new CA, server certificate and unrelated CA.
    ///
    /// # Panics
    ///
    /// When `openssl` is missing or fails: the test cannot run.
    pub fn generate() -> TestCerts {
        let dir = server_dir("tls").unwrap_or_else(|e| panic!("a temp dir for certificates: {e}"));
        let days = ["-days", "2"];
        for (key, pem, cn) in [
            ("ca.key", "ca.pem", "kv-test-ca"),
            ("other-ca.key", "other-ca.pem", "kv-other-ca"),
        ] {
            let subject = format!("/CN={cn}");
            openssl(
                &dir,
                &[
                    &[
                        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
                        pem, "-subj", &subject,
                    ][..],
                    &days,
                ]
                .concat(),
            );
        }
        openssl(
            &dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap_or_else(|e| panic!("write san.ext: {e}"));
        openssl(
            &dir,
            &[
                &[
                    "x509",
                    "-req",
                    "-in",
                    "server.csr",
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    "server.pem",
                    "-extfile",
                    "san.ext",
                ][..],
                &days,
            ]
            .concat(),
        );
        // mongod wants the certificate and its key in one file.
        let mut both = std::fs::read(dir.join("server.pem")).unwrap_or_default();
        both.extend(std::fs::read(dir.join("server.key")).unwrap_or_default());
        std::fs::write(dir.join("server-both.pem"), both)
            .unwrap_or_else(|e| panic!("write server-both.pem: {e}"));
        TestCerts { dir }
    }

    /// The CA that signed the server certificate (PEM).
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A CA that signed nothing here: a client trusting only it must refuse
    /// the server.
    pub fn other_ca(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }

    /// The server certificate (PEM), for `127.0.0.1` and `localhost`.
    pub fn cert(&self) -> PathBuf {
        self.dir.join("server.pem")
    }

    /// The server certificate's private key (PEM, unencrypted).
    pub fn key(&self) -> PathBuf {
        self.dir.join("server.key")
    }

    /// The certificate followed by its key, in one PEM file.
    pub fn cert_and_key(&self) -> PathBuf {
        self.dir.join("server-both.pem")
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run openssl ({e}); scripts/install-test-deps.sh installs it")
        });
    assert!(status.success(), "openssl {args:?} failed");
}
