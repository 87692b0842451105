//! The book (`docs/`) kept true:
//! - its capabilities table says what each backend's `capabilities()`
//!   says, checked against live servers;
//! - every page in `SUMMARY.md` exists, every `{{#include}}` resolves
//!   (file, anchor, lines), and every relative link of every page, included
//!   text too, points at a page or file of the book (and its `#anchor` at a
//!   heading there).
//!
//! Its Rust code blocks are compiled and run as doctests (`kv-tests/src/lib.rs`).

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn book_src() -> PathBuf {
    normalize(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src"))
}

/// A page's text as mdBook renders it: `{{#include path}}`,
/// `{{#include path:anchor}}` and `{{#include path:start:end}}` expanded
/// (paths relative to the page), anchor lines dropped.
fn expanded(page: &Path) -> String {
    let text =
        std::fs::read_to_string(page).unwrap_or_else(|e| panic!("read {}: {e}", page.display()));
    let mut out = String::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("{{#include ") else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let spec = rest.strip_suffix("}}").unwrap().trim();
        let mut parts = spec.split(':');
        let file = page.parent().unwrap().join(parts.next().unwrap());
        let included = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: include {}: {e}", page.display(), file.display()));
        let lines: Vec<&str> = included.lines().collect();
        let picked: Vec<&str> = match (parts.next(), parts.next()) {
            (None, _) => lines,
            (Some(a), b) if a.is_empty() || a.parse::<usize>().is_ok() => {
                let start = a.parse::<usize>().unwrap_or(1).max(1) - 1;
                let end = b
                    .filter(|b| !b.is_empty())
                    .map_or(lines.len(), |b| b.parse().unwrap());
                lines[start.min(lines.len())..end.min(lines.len())].to_vec()
            }
            (Some(anchor), _) => {
                let open = format!("ANCHOR: {anchor}");
                let close = format!("ANCHOR_END: {anchor}");
                let from = lines
                    .iter()
                    .position(|l| l.contains(&open))
                    .unwrap_or_else(|| {
                        panic!(
                            "{}: no anchor {anchor} in {}",
                            page.display(),
                            file.display()
                        )
                    });
                let to = lines[from..]
                    .iter()
                    .position(|l| l.contains(&close))
                    .unwrap_or_else(|| panic!("{}: anchor {anchor} not closed", file.display()));
                lines[from + 1..from + to].to_vec()
            }
        };
        for l in picked {
            if !l.contains("ANCHOR:") && !l.contains("ANCHOR_END:") {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

/// The anchors mdBook gives a page's headings (GitHub's rules: lower case,
/// punctuation dropped, spaces to dashes).
fn heading_ids(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut ids = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let id: String = title
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                ' ' => Some('-'),
                _ => None,
            })
            .collect();
        ids.push(id);
    }
    ids
}

/// The `](target)` links outside code.
fn links(text: &str) -> Vec<String> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if in_code {
            continue;
        }
        // Inline code spans are not links.
        let line: String = line.split('`').step_by(2).collect::<Vec<_>>().join("");
        let mut rest = line.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            found.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    found
}

#[test]
fn every_page_include_and_link_of_the_book_resolves() {
    let src = book_src();
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let pages: Vec<PathBuf> = links(&summary)
        .into_iter()
        .filter(|l| !l.is_empty())
        .map(|l| src.join(l))
        .collect();
    assert!(pages.len() >= 15, "SUMMARY.md lists {} pages", pages.len());
    let mut texts = BTreeMap::new();
    for page in &pages {
        assert!(
            page.exists(),
            "SUMMARY.md lists {} which is missing",
            page.display()
        );
        texts.insert(page.clone(), expanded(page));
    }
    let mut checked = 0;
    for (page, text) in &texts {
        for link in links(text) {
            checked += usize::from(check_link(page, &link, Some(&src), &texts));
        }
    }
    println!("{} pages, {checked} relative links checked", pages.len());
}

/// The README is a newcomer's first page: each of its relative links (into
/// the book, the licences, the changelog, a crate's README) and anchors
/// must resolve too.
#[test]
fn every_link_of_the_readme_resolves() {
    let root = normalize(&Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    let readme = root.join("README.md");
    let text = std::fs::read_to_string(&readme).unwrap();
    let lines = text.lines().count();
    assert!(
        lines < 200,
        "README.md has {lines} lines: it is a newcomer's page; details go in the book"
    );
    let mut checked = 0;
    for link in links(&text) {
        checked += usize::from(check_link(&readme, &link, None, &BTreeMap::new()));
    }
    assert!(checked >= 10, "README.md has only {checked} relative links");
    println!("README.md: {checked} relative links checked");
}

/// Checks one link of `page`: a relative one must name a file that exists
/// (inside `within`, when given), and its `#anchor` a heading there
/// (`texts`: pages already expanded). Returns whether it was relative, so
/// checked; web and mail links are not.
fn check_link(
    page: &Path,
    link: &str,
    within: Option<&Path>,
    texts: &BTreeMap<PathBuf, String>,
) -> bool {
    if ["http://", "https://", "mailto:"]
        .iter()
        .any(|scheme| link.starts_with(scheme))
    {
        return false;
    }
    let (path, anchor) = link.split_once('#').unwrap_or((link, ""));
    let target = if path.is_empty() {
        page.to_path_buf()
    } else {
        normalize(&page.parent().unwrap().join(path))
    };
    if let Some(within) = within {
        assert!(
            target.starts_with(within),
            "{}: the link {link} leaves the book (link to a page, or name the file in `code`)",
            page.display()
        );
    }
    assert!(
        target.exists(),
        "{}: the link {link} points nowhere",
        page.display()
    );
    if !anchor.is_empty() {
        let text = texts
            .get(&target)
            .cloned()
            .unwrap_or_else(|| expanded(&target));
        assert!(
            heading_ids(&text).iter().any(|id| id == anchor),
            "{}: no heading #{anchor} in {}",
            page.display(),
            target.display()
        );
    }
    true
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(all(
    feature = "redis",
    feature = "postgres",
    feature = "mysql",
    feature = "rocksdb",
    feature = "sqlite",
    feature = "etcd",
    feature = "mongo"
))]
mod capabilities {
    use std::collections::BTreeMap;

    use super::book_src;

    /// The table of `choosing-a-backend.md` against live backends.
    #[tokio::test]
    async fn the_capabilities_table_says_what_each_backend_says() {
        use kv::Capabilities;

        let text = std::fs::read_to_string(book_src().join("choosing-a-backend.md")).unwrap();
        let table = capabilities_table(&text);

        let (
            Some(redis),
            Some(cluster),
            Some(postgres),
            Some(mysql),
            Some(etcd),
            Some(mongo),
            Some(standalone),
        ) = (
            kv_testkit::redis().await,
            kv_testkit::redis_cluster().await,
            kv_testkit::postgres().await,
            kv_testkit::mysql().await,
            kv_testkit::etcd().await,
            kv_testkit::mongo().await,
            kv_testkit::mongo_standalone().await,
        )
        else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let rocksdb = format!("rocksdb://{}", dir.path().join("db").display());
        let sqlite = format!("sqlite://{}", dir.path().join("kv.db").display());
        let mut actual: Vec<(&str, Capabilities)> = Vec::new();
        for (column, url) in [
            ("memory", "memory://".to_owned()),
            ("Redis", redis.url().to_owned()),
            ("Redis Cluster (spread)", cluster.url().to_owned()),
            ("PostgreSQL", postgres.url().to_owned()),
            ("MySQL / MariaDB", mysql.url().to_owned()),
            ("RocksDB", rocksdb),
            ("SQLite", sqlite),
            ("etcd", etcd.kv_url()),
            ("MongoDB replica set", mongo.url().to_owned()),
            ("MongoDB standalone", standalone.url().to_owned()),
        ] {
            let store = kv::connect_store(&url).await.unwrap();
            actual.push((column, store.capabilities()));
        }
        for (column, caps) in &actual {
            println!("{column}: {caps:?}");
        }
        for (column, caps) in &actual {
            let documented = |row: &str| -> &str {
                table
                    .get(row)
                    .and_then(|cells| cells.get(*column))
                    .map(String::as_str)
                    .unwrap_or_else(|| panic!("the table has no row {row:?} or column {column:?}"))
            };
            let yes = |row: &str, value: bool| {
                let cell = documented(row);
                let says = cell.starts_with("yes");
                assert!(
                    says == value && (says || cell.starts_with("no")),
                    "{column}, {row}: the table says {cell:?}, the store {value}"
                );
            };
            yes("atomic batches", caps.atomic_batch);
            yes("TTL", caps.ttl);
            yes("compare-and-swap", caps.cas);
            yes("versions and conditional writes", caps.versions);
            yes("multi-key transactions", caps.transactions);
            yes("counters", caps.counters);
            yes("ordered listing", caps.ordered_list);
            yes("snapshot batch_get", caps.snapshot_batch_get);
            yes("persistent", caps.persistent);
            let batch = documented("max batch (distinct keys)");
            match caps.max_batch_ops {
                None => assert!(
                    batch.starts_with("unlimited"),
                    "{column}: max batch {batch:?}"
                ),
                Some(n) => assert_eq!(
                    first_number(batch),
                    Some(n as u64),
                    "{column}: max batch {batch:?}"
                ),
            }
            assert_eq!(
                bytes(documented("max key")),
                Some(caps.max_key_bytes as u64),
                "{column}: max key"
            );
            assert_eq!(
                bytes(documented("max value")),
                Some(caps.max_value_bytes as u64),
                "{column}: max value"
            );
        }
    }

    /// `row name -> column name -> cell`, from the first table whose header
    /// starts with `| capability |`.
    fn capabilities_table(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        let cells = |line: &str| -> Vec<String> {
            line.trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().replace('`', ""))
                .collect()
        };
        let mut lines = text
            .lines()
            .skip_while(|l| !l.starts_with("| capability |"));
        let header = cells(
            lines
                .next()
                .expect("a table starting with `| capability |`"),
        );
        lines.next(); // |---|
        let mut table = BTreeMap::new();
        for line in lines.take_while(|l| l.starts_with('|')) {
            let row = cells(line);
            let columns = header[1..]
                .iter()
                .cloned()
                .zip(row[1..].iter().cloned())
                .collect();
            table.insert(row[0].clone(), columns);
        }
        table
    }

    fn first_number(cell: &str) -> Option<u64> {
        let digits: String = cell
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .filter(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    }

    /// `1,024 B`, `64 MiB`, `1.5 MiB` -> bytes.
    fn bytes(cell: &str) -> Option<u64> {
        let mut words = cell.split_whitespace();
        let number: f64 = words.next()?.replace(',', "").parse().ok()?;
        let unit = match words.next()? {
            "B" => 1.0,
            "KiB" => 1024.0,
            "MiB" => 1024.0 * 1024.0,
            "GiB" => 1024.0 * 1024.0 * 1024.0,
            _ => return None,
        };
        Some((number * unit).round() as u64)
    }
}
