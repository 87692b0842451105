//! No password in any output: for Redis (`requirepass`), PostgreSQL
//! (`scram-sha-256`), MySQL (a password user), etcd (auth enabled, a root user) and MongoDB (SCRAM),
//! a client built by `kv::connect`
//! from a URL with the password, wrapped in the tracing and metrics layers,
//! runs calls that succeed and calls that fail; then every span and event
//! the fmt subscriber wrote, the rendered Prometheus metrics, the client's
//! `Debug`, and every error's `Display` and `Debug` (a wrong password's
//! too) are scanned for the password. (The CLI's test scans its output.)

#![cfg(all(
    feature = "redis",
    feature = "postgres",
    feature = "mysql",
    feature = "etcd",
    feature = "mongo",
    feature = "tracing",
    feature = "metrics"
))]
#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::io::Write;
use std::sync::{Arc, Mutex};

use kv::{MetricsLayer, TracingLayer};

const PASSWORD: &str = "Sup3r-s3cret-pw-81";
const WRONG: &str = "Wr0ng-s3cret-pw-27";

/// Everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn exercise(url: &str, out: &mut Vec<String>) {
    let kv = kv::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
        .layer(MetricsLayer::new())
        .layer(TracingLayer::new());
    out.push(format!("{kv:?}"));
    kv.set("secrets/a", &1).await.unwrap();
    kv.batch_set([("secrets/b", 2), ("secrets/c", 3)])
        .await
        .unwrap();
    let _: Vec<Option<i32>> = kv.batch_get(["secrets/a", "secrets/x"]).await.unwrap();
    let big = vec![0u8; kv.store().capabilities().max_value_bytes.min(1 << 28) + 1];
    if let Err(e) = kv
        .store()
        .set(
            &kv::Key::new("secrets/big").unwrap(),
            big.into(),
            Default::default(),
        )
        .await
    {
        out.push(format!("{e} {e:?}"));
    }
    if let Err(e) = kv.get::<String>("secrets/a").await {
        out.push(format!("{e} {e:?}")); // a decode error: the value is a number
    }
    kv.batch_delete(["secrets/a", "secrets/b", "secrets/c"])
        .await
        .unwrap();
    let wrong = url.replace(PASSWORD, WRONG);
    let err = kv::connect(&wrong).await.map(drop).unwrap_err();
    out.push(format!("{err} {err:?}"));
}

#[tokio::test]
async fn no_password_shows_in_spans_metrics_debug_or_errors() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .unwrap();

    let mut out = Vec::new();
    let Some(redis) = kv_testkit::private_redis_secured(Some(PASSWORD), None).await else {
        return;
    };
    let Some(postgres) = kv_testkit::private_postgres_secured(Some(PASSWORD), None).await else {
        return;
    };
    let Some(mysql) = kv_testkit::private_mysql_secured(Some(PASSWORD), None).await else {
        return;
    };
    let Some(mongo) = kv_testkit::private_mongo_with_auth("kvuser", PASSWORD).await else {
        return;
    };
    let Some(etcd) = kv_testkit::private(kv_testkit::Kind::Etcd).await else {
        return;
    };
    let mut admin = etcd_client::Client::connect([etcd.url()], None)
        .await
        .unwrap();
    admin.user_add("root", PASSWORD, None).await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.auth_enable().await.unwrap();
    let etcd_url = etcd
        .kv_url()
        .replace("etcd://", &format!("etcd://root:{PASSWORD}@"));
    let mongo_url = mongo
        .url()
        .replace("mongodb://", &format!("mongodb://kvuser:{PASSWORD}@"))
        .replace("/?", "/kv?authSource=admin&");
    // The password as a query parameter, which sqlx accepts too.
    let postgres_query_url = {
        let url = postgres.url().replace(&format!(":{PASSWORD}@"), "@");
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}password={PASSWORD}")
    };
    // MongoDB's key-file password, in a config's and a builder's Debug
    // (connecting needs a client certificate the test server lacks).
    let key_file_url = format!("{mongo_url}&tls=true&tlsCertificateKeyFilePassword={PASSWORD}");
    let config = kv::mongo::MongoConfig::from_url(&key_file_url).unwrap();
    out.push(format!("{config:?}"));
    out.push(format!(
        "{:?}",
        kv::mongo::MongoStore::builder().url(&key_file_url)
    ));
    out.push(kv::redact_url(&key_file_url));
    for url in [
        redis.url().to_owned(),
        postgres.url().to_owned(),
        postgres_query_url,
        mysql.url().to_owned(),
        etcd_url,
        mongo_url,
    ] {
        assert!(url.contains(PASSWORD), "{url}");
        exercise(&url, &mut out).await;
    }
    let logged = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("batch_set"),
        "the subscriber saw no spans: {logged}"
    );
    out.push(logged);
    out.push(metrics.render());
    for text in &out {
        for secret in [PASSWORD, WRONG] {
            assert!(!text.contains(secret), "a password shows in: {text}");
        }
    }
    println!(
        "scanned {} outputs ({} bytes): no password",
        out.len(),
        out.iter().map(String::len).sum::<usize>()
    );
}
