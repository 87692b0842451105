//! URL helpers every backend and the CLI share: one rule for schemes and
//! one for secrets.

use std::borrow::Cow;

/// Query parameters whose value is a secret: any name that contains one of
/// these words, ignoring case (`password`, `sslpassword`,
/// `tlsCertificateKeyFilePassword`, `auth_token`, `secret`, `apikey`, ...).
const SECRET_WORDS: [&str; 4] = ["pass", "secret", "token", "key"];

/// `url` with every secret replaced by `***`: the password of its
/// user-info, and the value of each query parameter whose name says it is
/// one ([`is_secret_param`]). For `Debug` output, logs and error messages.
/// Works on any `scheme://[user[:password]@]hosts[/path][?query]` string,
/// several hosts included, without parsing the rest; a string that is not
/// such a URL but holds an `@` is replaced whole.
///
/// ```
/// use kv_core::redact_url;
///
/// assert_eq!(redact_url("postgres://app:s3cret@db:5432/x"), "postgres://app:***@db:5432/x");
/// assert_eq!(redact_url("redis://:pw@h"), "redis://:***@h");
/// assert_eq!(redact_url("redis://h:6379/0"), "redis://h:6379/0");
/// assert_eq!(
///     redact_url("postgres://app@db/x?password=s3cret&sslmode=require"),
///     "postgres://app@db/x?password=***&sslmode=require",
/// );
/// assert_eq!(
///     redact_url("mongodb://h/db?tls=true&tlsCertificateKeyFilePassword=pw"),
///     "mongodb://h/db?tls=true&tlsCertificateKeyFilePassword=***",
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(parts) = UrlParts::parse(url) else {
        // Not a URL we understand: show nothing that could be a secret.
        return if url.contains('@') || url.contains('?') {
            "<redacted>".to_owned()
        } else {
            url.to_owned()
        };
    };
    let mut out = format!("{}://", parts.scheme);
    match parts.user_password() {
        Some((user, Some(_))) => out.push_str(&format!("{user}:***@")),
        Some((user, None)) => out.push_str(&format!("{user}@")),
        None => {}
    }
    out.push_str(parts.hosts);
    out.push_str(parts.path);
    let (query, fragment) = (parts.query, parts.fragment);
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) if is_secret_param(name) => format!("{name}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

/// Whether a URL query parameter named `name` holds a secret: its name
/// contains `pass`, `secret`, `token` or `key`, ignoring case. Errs on the
/// side of hiding (a key *file* path is hidden too).
pub fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|word| name.contains(word))
}

/// The secrets of `url` as they may show up in text: the user-info
/// password and the secret query values ([`is_secret_param`]), each as
/// written and percent-decoded; values shorter than 2 bytes are left out
/// (hiding every `a` would garble a message for no gain). For scrubbing
/// text that a driver may have built from the URL.
///
/// ```
/// let secrets = kv_core::url_secrets("postgres://app:s3cr%40t@db/x?sslpassword=k2&sslmode=require");
/// assert_eq!(secrets, ["s3cr%40t", "s3cr@t", "k2"]);
/// ```
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut add = |s: &str| {
        for s in [s.to_owned(), percent_decode(s)] {
            if s.len() >= 2 && !found.contains(&s) {
                found.push(s);
            }
        }
    };
    let Some(parts) = UrlParts::parse(url) else {
        return found;
    };
    if let Some((_, Some(password))) = parts.user_password() {
        add(password);
    }
    for (name, value) in parts.query_pairs() {
        if is_secret_param(name) {
            add(value);
        }
    }
    found
}

/// `url` with its scheme in lower case (`POSTGRES://` -> `postgres://`):
/// schemes are case-insensitive (RFC 3986), and every backend compares
/// them with this one rule. The rest of the URL is untouched.
///
/// ```
/// use kv_core::lowercase_scheme;
///
/// assert_eq!(lowercase_scheme("ETCD://h:2379"), "etcd://h:2379");
/// assert_eq!(lowercase_scheme("redis://Host/0"), "redis://Host/0");
/// ```
pub fn lowercase_scheme(url: &str) -> Cow<'_, str> {
    match url.split_once("://") {
        Some((scheme, rest)) if scheme.bytes().any(|b| b.is_ascii_uppercase()) => {
            Cow::Owned(format!("{}://{rest}", scheme.to_ascii_lowercase()))
        }
        _ => Cow::Borrowed(url),
    }
}

/// A `scheme://[userinfo@]hosts[/path][?query][#fragment]` URL cut into
/// its parts by kv's one rule, which every backend, the redaction and the
/// CLI share (the `url` crate refuses several hosts, as etcd, MongoDB and
/// Redis Cluster URLs have):
///
/// - the fragment starts at the first `#`;
/// - the user-info ends at the **last** `@` (a password may hold `/`, `?`
///   or `@` unescaped; an `@` in a path or query must then be written
///   `%40`);
/// - the hosts end at the first `/` or `?` after it, the path at the first
///   `?`.
///
/// Nothing is decoded.
///
/// ```
/// use kv_core::UrlParts;
///
/// let url = UrlParts::parse("etcd://app:p/w@h1:2379,h2:2379/?prefix=a%40b").unwrap();
/// assert_eq!(url.scheme, "etcd");
/// assert_eq!(url.user_password(), Some(("app", Some("p/w"))));
/// assert_eq!(url.hosts, "h1:2379,h2:2379");
/// assert_eq!(url.path, "/");
/// assert_eq!(url.query_pairs().collect::<Vec<_>>(), [("prefix", "a%40b")]);
/// assert!(UrlParts::parse("no scheme").is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// The scheme, as written.
    pub scheme: &'a str,
    /// What comes before the last `@`, if there is one.
    pub userinfo: Option<&'a str>,
    /// The host or hosts (`host:port[,host:port...]`).
    pub hosts: &'a str,
    /// From the first `/` after the hosts to the query (may be empty).
    pub path: &'a str,
    /// After the first `?`.
    pub query: Option<&'a str>,
    /// After the first `#`.
    pub fragment: Option<&'a str>,
}

impl<'a> UrlParts<'a> {
    /// Cuts `url`; `None` without `://`.
    pub fn parse(url: &'a str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let (rest, fragment) = match rest.split_once('#') {
            Some((rest, fragment)) => (rest, Some(fragment)),
            None => (rest, None),
        };
        let (userinfo, rest) = match rest.rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let hosts_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (hosts, rest) = rest.split_at(hosts_end);
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        Some(Self {
            scheme,
            userinfo,
            hosts,
            path,
            query,
            fragment,
        })
    }

    /// The user and the password (split at the first `:` of the
    /// user-info), as written.
    pub fn user_password(&self) -> Option<(&'a str, Option<&'a str>)> {
        self.userinfo.map(|info| match info.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (info, None),
        })
    }

    /// The query's `name=value` pairs (`name` alone gives an empty value),
    /// as written.
    pub fn query_pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.query
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
    }
}

/// Decodes `%XX` escapes (and nothing else); an invalid escape or a result
/// that is not UTF-8 is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                // Two hex digits: at most 0xFF, fits in a byte.
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_form_is_redacted() {
        for (url, want) in [
            (
                "etcd://root:pw@h1:2379,h2:2379?prefix=a/",
                "etcd://root:***@h1:2379,h2:2379?prefix=a/",
            ),
            (
                "postgres://u:p%2Fq@db/x?sslmode=require",
                "postgres://u:***@db/x?sslmode=require",
            ),
            ("postgres://u:a/b?c@db/x", "postgres://u:***@db/x"),
            (
                "postgres://db/x?user=u&password=pw",
                "postgres://db/x?user=u&password=***",
            ),
            (
                "postgres://db/x?PassWord=pw#frag",
                "postgres://db/x?PassWord=***#frag",
            ),
            (
                "mongodb://h/?tlsCertificateKeyFilePassword=x&w=1",
                "mongodb://h/?tlsCertificateKeyFilePassword=***&w=1",
            ),
            ("redis://h?auth_token=t", "redis://h?auth_token=***"),
            (
                "rocksdb:///var/lib/kv?sync=false",
                "rocksdb:///var/lib/kv?sync=false",
            ),
            ("memory://", "memory://"),
            ("user:pw@host", "<redacted>"),
            ("host?password=x", "<redacted>"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn secrets_are_found_raw_and_decoded() {
        assert_eq!(
            url_secrets(
                "mongodb://u:p%40ss@h/db?collection=c&password=q-pw&tlsCertificateKeyFilePassword=k%2B1"
            ),
            ["p%40ss", "p@ss", "q-pw", "k%2B1", "k+1"]
        );
        assert!(url_secrets("redis://127.0.0.1:6379/0?x=1").is_empty());
        assert!(url_secrets("not a url").is_empty());
    }

    #[test]
    fn schemes_are_lowered_and_nothing_else() {
        assert_eq!(
            lowercase_scheme("POSTGRES://U:P@DB/X"),
            "postgres://U:P@DB/X"
        );
        assert_eq!(lowercase_scheme("MongoDB+SRV://h"), "mongodb+srv://h");
        assert!(matches!(lowercase_scheme("redis://h"), Cow::Borrowed(_)));
        assert_eq!(lowercase_scheme("no scheme"), "no scheme");
    }

    #[test]
    fn percent_decoding_keeps_what_it_cannot_decode() {
        assert_eq!(percent_decode("a%40b"), "a@b");
        assert_eq!(percent_decode("a%4"), "a%4");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%ff"), "%ff");
    }

    #[test]
    fn redacts_only_the_password() {
        for (url, shown) in [
            (
                "rediss://alice:p%40ss@cache:6380/3",
                "rediss://alice:***@cache:6380/3",
            ),
            (
                "postgres://u:p@h/db?sslmode=require",
                "postgres://u:***@h/db?sslmode=require",
            ),
            (
                "mongodb://u:p@a:1,b:2/?replicaSet=rs",
                "mongodb://u:***@a:1,b:2/?replicaSet=rs",
            ),
            ("postgres://u:p:with:colons@h/db", "postgres://u:***@h/db"),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
            ("postgres://h/db?user=u", "postgres://h/db?user=u"),
            ("memory://", "memory://"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        assert_eq!(redact_url("user:secret@host"), "<redacted>");
    }
}
