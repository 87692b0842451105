//! The layers' own rules, over MemoryStore wrapped in a store that fails or
//! stalls on purpose: temporary errors are retried exactly as often as they
//! happen, permanent ones never, a CAS that reached the store is not
//! repeated, deadlines end in `Timeout`, the concurrency limit holds, and
//! the layers forward everything unchanged. (The conformance suite runs
//! against MemoryStore and Redis wrapped in every layer.)

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use kv_core::{
    Capabilities, ConcurrencyLimitLayer, ConcurrencyLimitStore, Condition, Entry, Error, ErrorKind,
    Health, Key, KvStore, Layer, ListOptions, MemoryStore, Operation, Page, Result, RetryLayer,
    SetOptions, TimeoutLayer, Transaction, TxnOutcome, Versioned, WriteOp,
};

/// MemoryStore whose calls fail while `failures` lasts, with errors of
/// `kind` (marked unsent when `unsent`), after a `delay`; it counts calls.
/// With `apply_then_fail`, a failing call is applied first, then fails: the
/// answer was lost on the way back.
#[derive(Debug)]
struct Flaky {
    inner: MemoryStore,
    failures: AtomicU32,
    kind: ErrorKind,
    unsent: bool,
    apply_then_fail: bool,
    /// Calls that sleep `stall` before answering (the first ones).
    stalls: AtomicU32,
    stall: Duration,
    delay: Duration,
    calls: AtomicU32,
    /// Batches that arrived lent (`*_borrowed`) rather than owned.
    lent: AtomicU32,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

impl Flaky {
    fn new(failures: u32, kind: ErrorKind) -> Self {
        Self {
            inner: MemoryStore::new(),
            failures: AtomicU32::new(failures),
            kind,
            unsent: false,
            apply_then_fail: false,
            stalls: AtomicU32::new(0),
            stall: Duration::ZERO,
            delay: Duration::ZERO,
            calls: AtomicU32::new(0),
            lent: AtomicU32::new(0),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
        }
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Counts the call, waits, and says whether it must fail.
    async fn enter(&self) -> bool {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(running, Ordering::SeqCst);
        let stalled = self
            .stalls
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        tokio::time::sleep(if stalled { self.stall } else { self.delay }).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn error(&self, op: Operation) -> Error {
        let error = Error::new(self.kind, "memory", op).with_message("injected");
        if self.unsent {
            error.with_request_unsent()
        } else {
            error
        }
    }

    async fn run<T>(
        &self,
        op: Operation,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let fail = self.enter().await;
        if fail && !self.apply_then_fail {
            return Err(self.error(op));
        }
        let result = call.await;
        if fail { Err(self.error(op)) } else { result }
    }
}

#[async_trait]
impl KvStore for Flaky {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &Key) -> Result<Option<Bytes>> {
        self.run(Operation::Get, self.inner.get(key)).await
    }
    async fn set(&self, key: &Key, value: Bytes, options: SetOptions) -> Result<()> {
        self.run(Operation::Set, self.inner.set(key, value, options))
            .await
    }
    async fn delete(&self, key: &Key) -> Result<bool> {
        self.run(Operation::Delete, self.inner.delete(key)).await
    }
    async fn exists(&self, key: &Key) -> Result<bool> {
        self.run(Operation::Exists, self.inner.exists(key)).await
    }
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<Page> {
        self.run(Operation::List, self.inner.list(prefix, options))
            .await
    }
    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Option<Bytes>>> {
        self.run(Operation::BatchGet, self.inner.batch_get(keys))
            .await
    }
    async fn batch_get_with_ttl(&self, keys: &[Key]) -> Result<Vec<Option<Entry>>> {
        self.run(
            Operation::BatchGetWithTtl,
            self.inner.batch_get_with_ttl(keys),
        )
        .await
    }
    async fn batch_set(&self, entries: Vec<Entry>) -> Result<()> {
        self.run(Operation::BatchSet, self.inner.batch_set(entries))
            .await
    }
    async fn batch_set_borrowed(&self, entries: &[Entry]) -> Result<()> {
        self.lent.fetch_add(1, Ordering::SeqCst);
        let call = self.inner.batch_set_borrowed(entries);
        self.run(Operation::BatchSet, call).await
    }
    async fn write_batch_borrowed(&self, ops: &[WriteOp]) -> Result<()> {
        self.lent.fetch_add(1, Ordering::SeqCst);
        let call = self.inner.write_batch_borrowed(ops);
        self.run(Operation::WriteBatch, call).await
    }
    async fn batch_delete(&self, keys: &[Key]) -> Result<u64> {
        self.run(Operation::BatchDelete, self.inner.batch_delete(keys))
            .await
    }
    async fn write_batch(&self, ops: Vec<WriteOp>) -> Result<()> {
        self.run(Operation::WriteBatch, self.inner.write_batch(ops))
            .await
    }
    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Option<Bytes>,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        let call = self.inner.compare_and_swap(key, expected, new, options);
        self.run(Operation::CompareAndSwap, call).await
    }
    async fn batch_get_versioned(&self, keys: &[Key]) -> Result<Vec<Option<Versioned>>> {
        let call = self.inner.batch_get_versioned(keys);
        self.run(Operation::BatchGetVersioned, call).await
    }
    async fn write_if(
        &self,
        key: &Key,
        condition: Condition,
        new: Option<Bytes>,
        options: SetOptions,
    ) -> Result<bool> {
        let call = self.inner.write_if(key, condition, new, options);
        self.run(Operation::WriteIf, call).await
    }
    async fn transact(&self, txn: &Transaction) -> Result<TxnOutcome> {
        let call = self.inner.transact(txn);
        self.run(Operation::Transact, call).await
    }
    async fn increment(&self, key: &Key, delta: i64, options: SetOptions) -> Result<i64> {
        let call = self.inner.increment(key, delta, options);
        self.run(Operation::Increment, call).await
    }
    async fn health(&self) -> Result<Health> {
        self.run(Operation::Health, self.inner.health()).await
    }
}

fn key(k: &str) -> Key {
    Key::new(k).unwrap()
}

/// Retries with 1 ms pauses, so the tests are quick.
fn quick_retry(max: u32) -> RetryLayer {
    RetryLayer::new()
        .max_retries(max)
        .backoff(Duration::from_millis(1), Duration::from_millis(2))
}

fn wrap(flaky: &Arc<Flaky>, layer: impl Layer) -> Arc<dyn KvStore> {
    layer.layer(flaky.clone() as Arc<dyn KvStore>)
}

#[tokio::test(start_paused = true)]
async fn temporary_errors_are_retried_exactly_as_often_as_they_happen() {
    for failures in [0, 1, 3] {
        let flaky = Arc::new(Flaky::new(failures, ErrorKind::Unavailable));
        let store = wrap(&flaky, quick_retry(5));
        store
            .set(&key("a"), Bytes::from_static(b"1"), SetOptions::default())
            .await
            .unwrap();
        assert_eq!(flaky.calls(), failures + 1, "set after {failures} failures");

        flaky.failures.store(failures, Ordering::SeqCst);
        flaky.calls.store(0, Ordering::SeqCst);
        let entries = vec![Entry::new(key("b"), "2"), Entry::new(key("c"), "3")];
        store.batch_set(entries).await.unwrap();
        assert_eq!(flaky.calls(), failures + 1, "batch_set");

        flaky.failures.store(failures, Ordering::SeqCst);
        flaky.calls.store(0, Ordering::SeqCst);
        let got = store.batch_get(&[key("a"), key("c")]).await.unwrap();
        assert_eq!(got, [Some(Bytes::from("1")), Some(Bytes::from("3"))]);
        assert_eq!(flaky.calls(), failures + 1, "batch_get");

        flaky.failures.store(failures, Ordering::SeqCst);
        flaky.calls.store(0, Ordering::SeqCst);
        let ops = vec![WriteOp::Delete(key("b")), Entry::new(key("d"), "4").into()];
        store.write_batch(ops).await.unwrap();
        assert_eq!(flaky.calls(), failures + 1, "write_batch");
        assert!(!store.exists(&key("b")).await.unwrap());
    }
}

#[tokio::test(start_paused = true)]
async fn retries_stop_after_max_retries_with_the_last_error() {
    let flaky = Arc::new(Flaky::new(10, ErrorKind::Timeout));
    let store = wrap(&flaky, quick_retry(2));
    let err = store.get(&key("a")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.message(), Some("injected"));
    assert_eq!(flaky.calls(), 3, "one call and two retries");
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried() {
    for kind in [
        ErrorKind::PermissionDenied,
        ErrorKind::Backend,
        ErrorKind::Decode,
    ] {
        let flaky = Arc::new(Flaky::new(1, kind));
        let store = wrap(&flaky, quick_retry(5));
        let err = store.get(&key("a")).await.unwrap_err();
        assert_eq!(err.kind(), kind);
        assert_eq!(flaky.calls(), 1, "{kind:?} was retried");
    }
}

#[tokio::test(start_paused = true)]
async fn bad_input_fails_once_without_retry() {
    let flaky = Arc::new(Flaky::new(0, ErrorKind::Unavailable));
    let store = wrap(&flaky, quick_retry(5));
    let err = store
        .set(
            &key("a"),
            Bytes::from_static(b"1"),
            SetOptions::ttl(Duration::ZERO),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(flaky.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_cas_that_reached_the_store_is_not_repeated() {
    // The swap is applied, then its answer is lost: a retry would compare
    // against its own write and report `false` for a swap that happened.
    let mut flaky = Flaky::new(1, ErrorKind::Unavailable);
    flaky.apply_then_fail = true;
    let flaky = Arc::new(flaky);
    let store = wrap(&flaky, quick_retry(5));
    let err = store
        .compare_and_swap(&key("lock"), None, Some("me".into()), SetOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(flaky.calls(), 1, "the CAS was repeated");
    assert_eq!(
        flaky.inner.get(&key("lock")).await.unwrap(),
        Some("me".into())
    );
}

#[tokio::test(start_paused = true)]
async fn a_cas_whose_request_was_never_sent_is_retried() {
    let mut flaky = Flaky::new(2, ErrorKind::Unavailable);
    flaky.unsent = true;
    let flaky = Arc::new(flaky);
    let store = wrap(&flaky, quick_retry(5));
    let swapped = store
        .compare_and_swap(&key("lock"), None, Some("me".into()), SetOptions::default())
        .await
        .unwrap();
    assert!(swapped);
    assert_eq!(flaky.calls(), 3);
}

/// `write_if`, `transact` and `increment` that reached the store are not
/// repeated: a repeat would check against its own write, or count twice.
#[tokio::test(start_paused = true)]
async fn conditional_writes_transactions_and_increments_that_reached_the_store_are_not_repeated() {
    let mut flaky = Flaky::new(3, ErrorKind::Unavailable);
    flaky.apply_then_fail = true;
    let flaky = Arc::new(flaky);
    let store = wrap(&flaky, quick_retry(5));
    let options = SetOptions::default();
    let err = store.increment(&key("n"), 1, options).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(flaky.calls(), 1, "the increment was repeated");
    assert_eq!(flaky.inner.get(&key("n")).await.unwrap(), Some("1".into()));
    let err = store
        .write_if(&key("lock"), Condition::Absent, Some("me".into()), options)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(flaky.calls(), 2, "the conditional write was repeated");
    let txn = Transaction::new()
        .check_absent(key("a"))
        .put(Entry::new(key("a"), "1"));
    let err = store.transact(&txn).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(flaky.calls(), 3, "the transaction was repeated");
    assert_eq!(flaky.inner.get(&key("a")).await.unwrap(), Some("1".into()));
    // Reads with versions are retried like any read.
    let mut reads = Flaky::new(2, ErrorKind::Unavailable);
    reads.apply_then_fail = true;
    let reads = Arc::new(reads);
    let store = wrap(&reads, quick_retry(5));
    assert_eq!(store.get_versioned(&key("a")).await.unwrap(), None);
    assert_eq!(reads.calls(), 3);
}

/// The same calls are retried when nothing was sent.
#[tokio::test(start_paused = true)]
async fn increments_whose_request_was_never_sent_are_retried() {
    let mut flaky = Flaky::new(2, ErrorKind::Unavailable);
    flaky.unsent = true;
    let flaky = Arc::new(flaky);
    let store = wrap(&flaky, quick_retry(5));
    let n = store
        .increment(&key("n"), 5, SetOptions::default())
        .await
        .unwrap();
    assert_eq!((n, flaky.calls()), (5, 3));
}

#[tokio::test(start_paused = true)]
async fn deletes_are_retried_and_may_count_low() {
    // The documented cost: the first attempt removed the key, its answer
    // was lost, the retry finds nothing to remove.
    let mut flaky = Flaky::new(1, ErrorKind::Unavailable);
    flaky.apply_then_fail = true;
    let flaky = Arc::new(flaky);
    flaky
        .inner
        .set(&key("a"), "1".into(), SetOptions::default())
        .await
        .unwrap();
    let store = wrap(&flaky, quick_retry(5));
    assert!(!store.delete(&key("a")).await.unwrap());
    assert_eq!(flaky.calls(), 2);
    assert!(!flaky.inner.exists(&key("a")).await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn max_elapsed_bounds_the_time_spent_retrying() {
    let flaky = Arc::new(Flaky::new(1000, ErrorKind::Unavailable));
    let retry = RetryLayer::new()
        .max_retries(1000)
        .backoff(Duration::from_millis(20), Duration::from_millis(20))
        .max_elapsed(Duration::from_millis(100));
    let store = wrap(&flaky, retry);
    let started = Instant::now();
    let err = store.get(&key("a")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    // Paused time: the bound holds exactly, whatever the machine's load;
    // no retry starts a sleep that would end past it.
    let spent = started.elapsed();
    assert!(spent <= Duration::from_millis(100), "{spent:?}");
    assert!(
        flaky.calls() > 1 && flaky.calls() < 1000,
        "{}",
        flaky.calls()
    );
}

#[tokio::test(start_paused = true)]
async fn a_stalled_call_ends_in_timeout_at_its_deadline() {
    let mut flaky = Flaky::new(0, ErrorKind::Unavailable);
    flaky.delay = Duration::from_secs(30);
    let flaky = Arc::new(flaky);
    let store = wrap(&flaky, TimeoutLayer::new(Duration::from_millis(100)));
    let started = Instant::now();
    let err = store.get(&key("a")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.is_temporary());
    assert_eq!(err.key(), Some("a"));
    assert_eq!(err.operation(), Operation::Get);
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(100),
        "paused time: exact"
    );
}

#[tokio::test(start_paused = true)]
async fn batches_have_their_own_deadline() {
    let mut flaky = Flaky::new(0, ErrorKind::Unavailable);
    flaky.delay = Duration::from_millis(200);
    let flaky = Arc::new(flaky);
    let timeouts = TimeoutLayer::new(Duration::from_millis(20)).batch(Duration::from_secs(10));
    let store = wrap(&flaky, timeouts);
    assert_eq!(
        store.get(&key("a")).await.unwrap_err().kind(),
        ErrorKind::Timeout
    );
    assert_eq!(store.batch_get(&[key("a")]).await.unwrap(), [None]);
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_is_retried_inside_the_retry_layer() {
    let mut flaky = Flaky::new(0, ErrorKind::Unavailable);
    flaky.stalls = AtomicU32::new(2);
    flaky.stall = Duration::from_secs(30);
    let flaky = Arc::new(flaky);
    let inner = TimeoutLayer::new(Duration::from_millis(50)).layer(flaky.clone());
    let store = quick_retry(3).layer(inner);
    assert_eq!(store.get(&key("a")).await.unwrap(), None);
    assert_eq!(flaky.calls(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_bounds_calls_in_flight() {
    let mut flaky = Flaky::new(0, ErrorKind::Unavailable);
    flaky.delay = Duration::from_millis(20);
    let flaky = Arc::new(flaky);
    let limited = Arc::new(ConcurrencyLimitStore::new(flaky.clone(), 3));
    assert_eq!(limited.limit(), 3);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = limited.clone();
        tasks.push(tokio::spawn(async move {
            store.get(&key(&format!("k{i}"))).await.unwrap()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), None);
    }
    assert_eq!(flaky.calls(), 24);
    assert_eq!(flaky.max_running.load(Ordering::SeqCst), 3);
    assert_eq!(limited.available_permits(), 3);
}

#[tokio::test(start_paused = true)]
async fn layers_forward_backend_capabilities_and_results() {
    let memory = MemoryStore::builder().max_batch_ops(Some(7)).build();
    let caps = memory.capabilities();
    let store: Arc<dyn KvStore> = Arc::new(memory);
    let store = ConcurrencyLimitLayer::new(2).layer(store);
    let store = TimeoutLayer::new(Duration::from_secs(5)).layer(store);
    let store = RetryLayer::new().layer(store);
    assert_eq!(store.backend(), "memory");
    assert_eq!(store.capabilities(), caps);
    let too_many: Vec<Key> = (0..8).map(|i| key(&format!("k{i}"))).collect();
    let err = store.batch_get(&too_many).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BatchTooLarge);
    assert_eq!(err.backend(), "memory");
}

/// The retry layer lends a batch to every attempt instead of copying it;
/// the other layers pass an owned batch on as owned and a lent one as lent.
#[tokio::test(start_paused = true)]
async fn batches_reach_the_store_lent_through_the_retry_layer() {
    let flaky = Arc::new(Flaky::new(2, ErrorKind::Unavailable));
    let store = wrap(&flaky, quick_retry(5));
    let store = TimeoutLayer::new(Duration::from_secs(5)).layer(store);
    let entries = vec![Entry::new(key("a"), "1"), Entry::new(key("b"), "2")];
    store.batch_set(entries.clone()).await.unwrap();
    assert_eq!(
        (flaky.calls(), flaky.lent.load(Ordering::SeqCst)),
        (3, 3),
        "two failures and a success, each attempt lent the caller's batch"
    );
    let ops = vec![
        WriteOp::Delete(key("a")),
        WriteOp::Put(Entry::new(key("c"), "3")),
    ];
    store.write_batch_borrowed(&ops).await.unwrap();
    assert_eq!(flaky.lent.load(Ordering::SeqCst), 4);
    let got = store
        .batch_get(&[key("a"), key("b"), key("c")])
        .await
        .unwrap();
    assert_eq!(got, [None, Some(Bytes::from("2")), Some(Bytes::from("3"))]);

    // Without a retry layer an owned batch stays owned.
    let flaky = Arc::new(Flaky::new(0, ErrorKind::Unavailable));
    let store = wrap(&flaky, TimeoutLayer::new(Duration::from_secs(5)));
    store.batch_set(entries).await.unwrap();
    store.write_batch(ops).await.unwrap();
    assert_eq!((flaky.calls(), flaky.lent.load(Ordering::SeqCst)), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn dropping_a_retrying_call_stops_it() {
    let flaky = Arc::new(Flaky::new(1000, ErrorKind::Unavailable));
    let retry = RetryLayer::new()
        .max_retries(1000)
        .backoff(Duration::from_millis(10), Duration::from_millis(10))
        .max_elapsed(Duration::from_secs(60));
    let store = wrap(&flaky, retry);
    let done = Arc::new(AtomicBool::new(false));
    let finished = done.clone();
    let call = async move {
        let _ = store.get(&key("a")).await;
        finished.store(true, Ordering::SeqCst);
    };
    assert!(
        tokio::time::timeout(Duration::from_millis(100), call)
            .await
            .is_err()
    );
    let calls = flaky.calls();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(flaky.calls(), calls, "a dropped call kept retrying");
    assert!(!done.load(Ordering::SeqCst));
}

/// What the tracing and metrics layers report, captured by a test
/// subscriber and a test recorder.
#[cfg(all(feature = "tracing", feature = "metrics"))]
mod observed {
    use std::collections::HashMap;
    use std::fmt::Debug;
    use std::sync::Mutex;

    use kv_core::{MetricsLayer, TracingLayer};
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;

    use super::*;

    type Fields = Vec<(String, String)>;
    /// Events with the operation of the span they happened in.
    type Events = Vec<(Option<String>, Fields)>;

    /// Closed spans' fields in order, and events with their span's
    /// operation.
    #[derive(Clone, Default)]
    struct Captured {
        open: Arc<Mutex<HashMap<u64, Fields>>>,
        closed: Arc<Mutex<Vec<Fields>>>,
        events: Arc<Mutex<Events>>,
    }

    struct Visitor<'a>(&'a mut Fields);

    impl Visit for Visitor<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
            self.0.push((field.name().to_owned(), format!("{value:?}")));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.push((field.name().to_owned(), value.to_owned()));
        }
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Captured {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
            let mut fields = Fields::new();
            attrs.record(&mut Visitor(&mut fields));
            self.open.lock().unwrap().insert(id.into_u64(), fields);
        }
        fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
            let mut open = self.open.lock().unwrap();
            values.record(&mut Visitor(open.get_mut(&id.into_u64()).unwrap()));
        }
        fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
            let mut fields = Fields::new();
            event.record(&mut Visitor(&mut fields));
            let operation = ctx.event_span(event).and_then(|span| {
                let open = self.open.lock().unwrap();
                field(&open[&span.id().into_u64()], "db.operation.name").map(str::to_owned)
            });
            self.events.lock().unwrap().push((operation, fields));
        }
        fn on_close(&self, id: Id, _: Context<'_, S>) {
            let fields = self.open.lock().unwrap().remove(&id.into_u64()).unwrap();
            self.closed.lock().unwrap().push(fields);
        }
    }

    fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a str> {
        fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    const VALUE: &str = "VALUE-BYTES-never-shown";
    const KEY: &str = "user/private-key-name";

    /// Runs calls through every layer over a store whose first `get` fails
    /// once; returns the spans, the events and the metrics' debug dump.
    fn observe(keys: bool) -> (Vec<Fields>, Events, String) {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(captured.clone());
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        metrics::with_local_recorder(&recorder, || {
            tracing::subscriber::with_default(subscriber, || {
                runtime.block_on(async {
                    let flaky = Arc::new(Flaky::new(0, ErrorKind::Unavailable));
                    let store: Arc<dyn KvStore> = flaky.clone();
                    let store = ConcurrencyLimitLayer::new(8).layer(store);
                    let store = TimeoutLayer::new(Duration::from_secs(5)).layer(store);
                    let store = quick_retry(3).layer(store);
                    let store = MetricsLayer::new().layer(store);
                    let store = TracingLayer::new().with_keys(keys).layer(store);

                    store
                        .set(&key(KEY), VALUE.into(), SetOptions::default())
                        .await
                        .unwrap();
                    let batch = (0..3).map(|i| Entry::new(key(&format!("b{i}")), VALUE));
                    store.batch_set(batch.collect()).await.unwrap();
                    flaky.failures.store(1, Ordering::SeqCst);
                    assert_eq!(store.get(&key(KEY)).await.unwrap(), Some(VALUE.into()));
                    let zero_ttl = SetOptions::ttl(Duration::ZERO);
                    let err = store.set(&key(KEY), VALUE.into(), zero_ttl).await;
                    assert_eq!(err.unwrap_err().kind(), ErrorKind::InvalidArgument);
                    store.list("user/", ListOptions::default()).await.unwrap();
                });
            });
        });
        let mut dump = String::new();
        for (key, _unit, _description, value) in snapshotter.snapshot().into_vec() {
            let value = match value {
                DebugValue::Counter(n) => format!("counter {n}"),
                DebugValue::Gauge(g) => format!("gauge {}", g.into_inner()),
                DebugValue::Histogram(h) => format!(
                    "histogram {:?}",
                    h.iter().map(|v| v.into_inner()).collect::<Vec<_>>()
                ),
            };
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            dump.push_str(&format!("{}{{{}}} {value}\n", key.name(), labels.join(",")));
        }
        let closed = captured.closed.lock().unwrap().clone();
        let events = captured.events.lock().unwrap().clone();
        (closed, events, dump)
    }

    #[test]
    fn one_span_per_call_with_database_fields_and_no_value() {
        let (spans, events, _) = observe(false);
        let operations: Vec<&str> = spans
            .iter()
            .map(|s| field(s, "db.operation.name").unwrap())
            .collect();
        assert_eq!(operations, ["set", "batch_set", "get", "set", "list"]);
        for span in &spans {
            assert_eq!(field(span, "db.system"), Some("memory"));
            assert_eq!(field(span, "otel.kind"), Some("client"));
            assert!(field(span, "kv.latency_us").is_some());
            assert!(field(span, "kv.key").is_none() && field(span, "kv.prefix").is_none());
        }
        assert_eq!(field(&spans[1], "db.operation.batch.size"), Some("3"));
        assert_eq!(field(&spans[0], "db.operation.batch.size"), None);
        assert_eq!(field(&spans[2], "kv.outcome"), Some("ok"));
        assert_eq!(field(&spans[3], "kv.outcome"), Some("invalid_argument"));
        assert_eq!(field(&spans[3], "error.type"), Some("invalid_argument"));
        assert_eq!(field(&spans[3], "otel.status_code"), Some("ERROR"));

        // The retry of the failed `get` is one event inside the get's span.
        assert_eq!(events.len(), 1, "{events:?}");
        let (operation, retry) = &events[0];
        assert_eq!(operation.as_deref(), Some("get"));
        assert_eq!(field(retry, "error.type"), Some("unavailable"));
        assert_eq!(field(retry, "retry"), Some("1"));

        let everything = format!("{spans:?}{events:?}");
        assert!(!everything.contains("VALUE-BYTES"), "{everything}");
        assert!(!everything.contains("private-key"), "{everything}");
    }

    #[test]
    fn keys_appear_in_spans_only_when_asked_for() {
        let (spans, _, _) = observe(true);
        assert_eq!(field(&spans[0], "kv.key"), Some(KEY));
        assert_eq!(field(&spans[4], "kv.prefix"), Some("user/"));
        assert!(!format!("{spans:?}").contains("VALUE-BYTES"));
    }

    #[test]
    fn metrics_count_calls_by_outcome_time_them_and_count_retries() {
        let (_, _, dump) = observe(false);
        let has = |line: &str| {
            assert!(
                dump.lines().any(|l| l == line),
                "{line} missing from:\n{dump}"
            );
        };
        has("kv_operations_total{backend=memory,operation=set,outcome=ok} counter 1");
        has("kv_operations_total{backend=memory,operation=set,outcome=invalid_argument} counter 1");
        has("kv_operations_total{backend=memory,operation=batch_set,outcome=ok} counter 1");
        has("kv_operations_total{backend=memory,operation=get,outcome=ok} counter 1");
        has("kv_retries_total{backend=memory,operation=get} counter 1");
        has("kv_batch_size{backend=memory,operation=batch_set} histogram [3.0]");
        let durations = dump
            .lines()
            .filter(|l| l.starts_with("kv_operation_duration_seconds{backend=memory,"))
            .filter(|l| !l.ends_with("histogram []"))
            .count();
        assert_eq!(durations, 4, "set, batch_set, get, list:\n{dump}");
        assert!(!dump.contains("VALUE-BYTES") && !dump.contains("private-key"));
    }
}
