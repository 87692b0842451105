//! How the command ends badly: one line on stderr, an exit code, and no
//! secret in either.

use std::fmt;
use std::process::ExitCode;

use kv::ErrorKind;

/// Exit code of an error.
pub(crate) const EXIT_ERROR: u8 = 1;
/// Exit code of a usage error (clap uses it too).
pub(crate) const EXIT_USAGE: u8 = 2;

/// An error that ends the command.
#[derive(Debug)]
pub(crate) struct Failure {
    /// The kv error kind, when the error came from a store.
    pub(crate) kind: Option<ErrorKind>,
    /// The one line shown.
    pub(crate) message: String,
    /// More lines for `--verbose` (the error's `Debug` form).
    pub(crate) detail: Option<String>,
    /// The exit code.
    pub(crate) code: u8,
    /// The reader of stdout went away (`kv list | head`): end quietly,
    /// successfully.
    pub(crate) broken_pipe: bool,
}

impl Failure {
    /// An error of the command itself (a missing key, a bad file).
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            kind: None,
            message: message.into(),
            detail: None,
            code: EXIT_ERROR,
            broken_pipe: false,
        }
    }

    /// A usage error: exit code 2.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USAGE,
            ..Self::new(message)
        }
    }

    /// A store error with what the command was doing.
    pub(crate) fn store(context: &str, error: &kv::Error) -> Self {
        Self {
            kind: Some(error.kind()),
            message: format!("{context}: {error}"),
            detail: Some(format!("{error:?}")),
            code: EXIT_ERROR,
            broken_pipe: false,
        }
    }

    /// A file or terminal error with what the command was doing.
    pub(crate) fn io(context: &str, error: &std::io::Error) -> Self {
        Self {
            broken_pipe: error.kind() == std::io::ErrorKind::BrokenPipe,
            ..Self::new(format!("{context}: {error}"))
        }
    }

    /// The exit code.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Some(kind) => write!(f, "kv: error [{}]: {}", kind.code(), self.message),
            None if self.code == EXIT_USAGE => write!(f, "kv: usage: {}", self.message),
            None => write!(f, "kv: error: {}", self.message),
        }
    }
}

/// `Result` of a command.
pub(crate) type Outcome<T = ()> = Result<T, Failure>;

/// The secrets of the URLs on the command line: user-info passwords and
/// password-like query values, raw and percent-decoded. Every line the CLI
/// writes to stderr passes through [`Secrets::scrub`], whatever produced
/// it, so a driver that echoed a URL could not leak one either.
#[derive(Debug, Default)]
pub(crate) struct Secrets(Vec<String>);

impl Secrets {
    /// Collects the secrets of `urls`.
    pub(crate) fn of<'a>(urls: impl IntoIterator<Item = &'a str>) -> Self {
        let mut found = Vec::new();
        for url in urls {
            found.extend(kv::url_secrets(url));
        }
        // Longest first, so a secret containing another is replaced whole.
        found.sort_by_key(|s: &String| std::cmp::Reverse(s.len()));
        found.dedup();
        Self(found)
    }

    /// `text` with every secret replaced by `***`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.0 {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "***");
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_of_every_url_shape_are_scrubbed() {
        let secrets = Secrets::of([
            "postgres://app:s3cr%40t@db:5432/x?sslmode=require",
            "etcd://root:etcd-pw@h1:2379,h2:2379",
            "mongodb://h/db?collection=c&password=q-pw&authSource=admin",
        ]);
        let text = "s3cr%40t s3cr@t etcd-pw q-pw sslmode=require";
        assert_eq!(secrets.scrub(text), "*** *** *** *** sslmode=require");
    }

    #[test]
    fn urls_without_secrets_change_nothing() {
        let secrets = Secrets::of(["redis://127.0.0.1:6379/0", "rocksdb:///tmp/x", "memory://"]);
        assert_eq!(
            secrets.scrub("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
    }

    #[test]
    fn a_failure_is_one_line_with_its_kind() {
        let error = kv::Error::new(ErrorKind::Unavailable, "redis", kv::Operation::Get)
            .with_message("connection refused");
        let line = Failure::store("get users/1", &error).to_string();
        assert!(
            line.starts_with("kv: error [unavailable]: get users/1: redis get"),
            "{line}"
        );
        assert!(!line.contains('\n'));
        assert_eq!(Failure::usage("no store").code, EXIT_USAGE);
    }
}
