//! Cut connections: batches and compare-and-swaps sent through a
//! [`FaultProxy`] that closes the connection after a random number of
//! client bytes, each checked afterwards over a direct connection. For the
//! network backends' `tests/faults.rs`, which own the proxy.
//!
//! The rules checked after every call, cut or not:
//! - a batch (`batch_set`, `write_batch`, `batch_delete`) is entirely
//!   applied or entirely absent, and applied when the call said `Ok`;
//! - a compare-and-swap applied at most once, and applied exactly when it
//!   answered `Ok(true)`;
//! - every error is temporary (`Unavailable` or `Timeout`): the caller may
//!   retry it;
//! - afterwards the same store object works again, without being rebuilt.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kv_core::{Entry, ErrorKind, Key, KvStore, SetOptions, WriteOp};
use kv_testkit::FaultProxy;

/// What [`cuts_leave_no_partial_batch`] did and found.
#[derive(Debug, Default, Clone)]
pub struct CutReport {
    /// Calls made through the proxy with a cut armed.
    pub calls: u64,
    /// Connections the proxy cut during those calls.
    pub cuts: u64,
    /// Calls that returned an error.
    pub failed: u64,
    /// Calls that failed although the server applied them (the answer was
    /// cut): allowed, and counted to show the cuts fell on both sides.
    pub applied_but_failed: u64,
    /// Batches found applied in part: must be 0.
    pub partial: u64,
    /// Errors by kind.
    pub errors: BTreeMap<&'static str, u64>,
}

impl CutReport {
    /// Adds another run's figures to this one (runs in parallel lanes).
    pub fn add(&mut self, other: &CutReport) {
        self.calls += other.calls;
        self.cuts += other.cuts;
        self.failed += other.failed;
        self.applied_but_failed += other.applied_but_failed;
        self.partial += other.partial;
        for (kind, n) in &other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
    }
}

impl std::fmt::Display for CutReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cuts injected: {}, calls: {}, calls failed: {} (applied but answer lost: {}), \
             partial batches found: {}, errors: {:?}",
            self.cuts, self.calls, self.failed, self.applied_but_failed, self.partial, self.errors
        )
    }
}

const BATCH: usize = 8;

/// The four calls, in turn.
#[derive(Debug, Clone, Copy)]
enum Call {
    BatchSet,
    WriteBatch,
    BatchDelete,
    Cas,
}

const CALLS: [Call; 4] = [
    Call::BatchSet,
    Call::WriteBatch,
    Call::BatchDelete,
    Call::Cas,
];

/// Sends `batch_set`, `write_batch`, `batch_delete` and `compare_and_swap`
/// in turn through `through` (a store connected via `proxy`), arming a cut
/// before each call: after a random number of client bytes (up to 1.5
/// times that call's request, measured first) or, one call in four, on the
/// server's answer. Runs until `proxy` has cut `target_cuts` connections.
///
/// Each batch call works on keys of its own (under `prefix`), so a request
/// the server got whole but applies late (after its cut answer, even after
/// later calls) can still be judged: `direct` (a store on a direct
/// connection to the same server and keyspace) checks every batch right
/// after its call and again once all calls are done; both times its keys
/// must be entirely applied or entirely absent, and applied when the call
/// said `Ok`. The compare-and-swap writes a value of its own each time
/// (its number), expecting the value read after the previous one: `Ok(true)`
/// must leave its value, `Ok(false)` must mean another value was there (an
/// earlier cut call that landed late), and a failed call leaves the old
/// value, its own, or one of an earlier failed call. Keys are removed at
/// the end. Budgets come from `seed`. Panics on the first broken rule,
/// naming the seed; returns the report.
pub async fn cuts_leave_no_partial_batch(
    through: &dyn KvStore,
    direct: &dyn KvStore,
    proxy: &FaultProxy,
    prefix: &str,
    target_cuts: u64,
    seed: u64,
) -> CutReport {
    let counter = Key::new(format!("{prefix}cas")).unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut report = CutReport::default();
    let ctx = |what: &str, n: u64| format!("{what} #{n} (seed {seed})");
    let mut sent: Vec<Sent> = Vec::new();
    // The counter's value as last read, and the values of failed swaps.
    let mut counter_value: Option<u64> = None;
    let mut pending_swaps: Vec<u64> = Vec::new();
    settle(direct, |s| s.delete(&counter)).await;

    // Each call's request size, measured without a cut.
    let mut sizes = [0u64; 4];
    for (i, call) in CALLS.iter().enumerate() {
        let n = i as u64;
        let keys = CallKeys::new(prefix, n);
        keys.prepare(direct, *call).await;
        let before = proxy.client_bytes();
        send(through, *call, n, &keys, &counter, counter_value)
            .await
            .unwrap_or_else(|e| panic!("{call:?} without a cut failed: {e}"));
        sizes[i] = (proxy.client_bytes() - before).max(1);
        if matches!(call, Call::Cas) {
            counter_value = Some(n);
        }
        sent.push(Sent {
            call: *call,
            n,
            keys,
        });
    }
    let started = proxy.cuts();
    let mut n = CALLS.len() as u64;
    while proxy.cuts() - started < target_cuts {
        assert!(
            report.calls < target_cuts * 5 + 100,
            "{} calls made only {} cuts: the budgets miss the requests",
            report.calls,
            proxy.cuts() - started
        );
        let i = (n % 4) as usize;
        let call = CALLS[i];
        let keys = CallKeys::new(prefix, n);
        keys.prepare(direct, call).await;
        // One call in four loses its answer; the others are cut after a
        // random part of their request (a budget past its end leaves the
        // call alone). The previous cut closed a connection: half of the
        // byte cuts and every answer cut first get a live one with a call
        // of their own, so the cut falls in this call's request or answer
        // rather than in a connection handshake.
        let answer = rng.u8(0..4) == 0;
        if answer || rng.bool() {
            settle(through, |s| s.exists(&counter)).await;
            // A pool may test the connection it got back (sqlx does):
            // let that finish before arming.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if answer {
            // Past a pool's liveness ping sometimes (sqlx sends one before
            // handing out a connection).
            proxy.cut_answer_after(rng.u64(0..=sizes[i] / 2));
        } else {
            proxy.cut_after(rng.u64(0..=sizes[i] * 3 / 2));
        }
        let result = send(through, call, n, &keys, &counter, counter_value).await;
        proxy.disarm();
        report.calls += 1;
        if let Err(e) = &result {
            *report.errors.entry(e.kind().as_str()).or_default() += 1;
            assert!(
                e.is_temporary() && matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
                "{}: a cut connection must be a temporary Unavailable or Timeout, got {:?}: {e}",
                ctx("call", n),
                e.kind()
            );
            report.failed += 1;
        }
        let applied = match call {
            Call::Cas => {
                let now = read(direct, &counter).await;
                let applied = now == Some(n);
                match &result {
                    Ok(Done::Swapped(true)) => assert!(
                        applied,
                        "{}: answered true but the counter holds {now:?}",
                        ctx("compare_and_swap", n)
                    ),
                    Ok(Done::Swapped(false)) => assert!(
                        !applied
                            && now != counter_value
                            && pending_swaps.iter().any(|p| Some(*p) == now),
                        "{}: answered false, expecting {counter_value:?}, and the counter holds {now:?} \
                         (failed swaps that may land late: {pending_swaps:?})",
                        ctx("compare_and_swap", n)
                    ),
                    Ok(_) => unreachable!("a swap answers a bool"),
                    Err(_) => {
                        assert!(
                            applied
                                || now == counter_value
                                || pending_swaps.iter().any(|p| Some(*p) == now),
                            "{}: after a failed swap expecting {counter_value:?} the counter holds {now:?}",
                            ctx("compare_and_swap", n)
                        );
                        if !applied {
                            pending_swaps.push(n);
                        }
                    }
                }
                counter_value = now;
                applied
            }
            _ => {
                let state = keys.state(direct, call).await;
                let applied = state.unwrap_or_else(|| {
                    report.partial += 1;
                    panic!("{}: applied in part", ctx(&format!("{call:?}"), n))
                });
                if result.is_ok() {
                    assert!(
                        applied,
                        "{}: Ok but not applied",
                        ctx(&format!("{call:?}"), n)
                    );
                    if let Ok(Done::Deleted(deleted)) = &result {
                        assert_eq!(
                            *deleted,
                            BATCH as u64,
                            "{}: its count",
                            ctx("batch_delete", n)
                        );
                    }
                }
                sent.push(Sent { call, n, keys });
                applied
            }
        };
        if result.is_err() && applied {
            report.applied_but_failed += 1;
        }
        n += 1;
    }

    // The proxy's own count: a cut may register a moment after its call
    // saw the error, so per-call differences could miss one.
    report.cuts = proxy.cuts() - started;

    // Requests that arrived whole may be applied after their call failed:
    // give them time, then check every batch again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for batch in &sent {
        if batch.keys.state(direct, batch.call).await.is_none() {
            report.partial += 1;
            panic!(
                "{}: found applied in part at the end",
                ctx(&format!("{:?}", batch.call), batch.n)
            );
        }
    }

    // The same store works again: the first call may meet a connection the
    // last cut closed under it; after that every call succeeds.
    works_again(through, &counter).await;
    let mut all: Vec<Key> = sent.iter().flat_map(|b| b.keys.all()).collect();
    all.push(counter);
    let chunk = direct.capabilities().max_batch_ops.unwrap_or(100).min(100);
    for part in all.chunks(chunk) {
        settle(direct, |s| s.batch_delete(part)).await;
    }
    report
}

/// The value the keys a call must delete hold before it.
const DELETE_ME: u64 = u64::MAX;

/// What a call returned when it succeeded.
enum Done {
    Written,
    Deleted(u64),
    Swapped(bool),
}

/// A batch call made, for the final check.
struct Sent {
    call: Call,
    n: u64,
    keys: CallKeys,
}

/// The keys of call number `n`: what it writes and what it deletes.
struct CallKeys {
    writes: Vec<Key>,
    deletes: Vec<Key>,
}

impl CallKeys {
    fn new(prefix: &str, n: u64) -> Self {
        let keys = |what: &str| {
            (0..BATCH)
                .map(|i| Key::new(format!("{prefix}{n}/{what}/{i}")).unwrap())
                .collect()
        };
        Self {
            writes: keys("w"),
            deletes: keys("d"),
        }
    }

    fn all(&self) -> impl Iterator<Item = Key> + '_ {
        self.writes.iter().chain(&self.deletes).cloned()
    }

    /// Sets the keys `call` will delete.
    async fn prepare(&self, direct: &dyn KvStore, call: Call) {
        if matches!(call, Call::WriteBatch | Call::BatchDelete) {
            settle(direct, |s| {
                s.batch_set(gen_entries(&self.deletes, DELETE_ME))
            })
            .await;
        }
    }

    /// `Some(true)` when call `call` is entirely applied, `Some(false)` when
    /// entirely absent, `None` for a mix.
    async fn state(&self, direct: &dyn KvStore, call: Call) -> Option<bool> {
        // One read of all the keys: two reads could fall on both sides of a
        // request that lands late (after its cut answer) and see a mix that
        // never existed on the server.
        let all: Vec<Key> = self.all().collect();
        let mut writes = generations(direct, &all).await;
        let deletes = writes.split_off(self.writes.len());
        let written = |w: &[Option<u64>]| {
            if w.iter().all(Option::is_some) {
                Some(true)
            } else if w.iter().all(Option::is_none) {
                Some(false)
            } else {
                None
            }
        };
        let deleted = |d: &[Option<u64>]| {
            if d.iter().all(Option::is_none) {
                Some(true)
            } else if d.iter().all(|v| *v == Some(DELETE_ME)) {
                Some(false)
            } else {
                None
            }
        };
        match call {
            Call::BatchSet => written(&writes),
            Call::BatchDelete => deleted(&deletes),
            Call::WriteBatch => {
                let (w, d) = (written(&writes)?, deleted(&deletes)?);
                (w == d).then_some(w)
            }
            Call::Cas => Some(true),
        }
    }
}

async fn send(
    store: &dyn KvStore,
    call: Call,
    n: u64,
    keys: &CallKeys,
    counter: &Key,
    counter_value: Option<u64>,
) -> kv_core::Result<Done> {
    match call {
        Call::BatchSet => store
            .batch_set(gen_entries(&keys.writes, n))
            .await
            .map(|()| Done::Written),
        Call::WriteBatch => {
            let mut ops: Vec<WriteOp> = gen_entries(&keys.writes, n)
                .into_iter()
                .map(WriteOp::Put)
                .collect();
            ops.extend(keys.deletes.iter().cloned().map(WriteOp::Delete));
            store.write_batch(ops).await.map(|()| Done::Written)
        }
        Call::BatchDelete => store.batch_delete(&keys.deletes).await.map(Done::Deleted),
        Call::Cas => {
            let expected = counter_value.map(|v| Bytes::from(v.to_string()));
            let new = Bytes::from(n.to_string());
            store
                .compare_and_swap(counter, expected, Some(new), SetOptions::default())
                .await
                .map(Done::Swapped)
        }
    }
}

fn gen_entries(keys: &[Key], generation: u64) -> Vec<Entry> {
    keys.iter()
        .map(|k| Entry::new(k.clone(), generation.to_string()))
        .collect()
}

/// Each key's generation (`None` = absent), read directly.
async fn generations(direct: &dyn KvStore, keys: &[Key]) -> Vec<Option<u64>> {
    let values = settle(direct, |s| s.batch_get(keys)).await;
    values
        .into_iter()
        .map(|v| v.map(|v| std::str::from_utf8(&v).unwrap().parse().unwrap()))
        .collect()
}

async fn read(direct: &dyn KvStore, key: &Key) -> Option<u64> {
    settle(direct, |s| s.get(key))
        .await
        .map(|v| std::str::from_utf8(&v).unwrap().parse().unwrap())
}

/// Runs `call` on `store` until it succeeds, retrying temporary errors for
/// up to about ten seconds (the direct store never meets a cut, but the
/// server may be busy).
async fn settle<'s, T, F, Fut>(store: &'s dyn KvStore, call: F) -> T
where
    F: Fn(&'s dyn KvStore) -> Fut,
    Fut: Future<Output = kv_core::Result<T>>,
{
    let mut attempts = 0;
    loop {
        match call(store).await {
            Ok(value) => return value,
            Err(e) if e.is_temporary() && attempts < 100 => attempts += 1,
            Err(e) => panic!("a call outside the cuts failed: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// After a fault ended: `store` answers again within about ten seconds
/// (the first calls may meet connections the fault closed), and then
/// twenty calls in a row succeed. Uses and removes `key`.
pub async fn works_again(store: &dyn KvStore, key: &Key) {
    settle(store, |s| s.set(key, "again".into(), SetOptions::default())).await;
    for round in 0..20 {
        let value = Bytes::from(round.to_string());
        store
            .set(key, value.clone(), SetOptions::default())
            .await
            .unwrap_or_else(|e| panic!("after the fault, call {round} failed: {e}"));
        let got = store
            .get(key)
            .await
            .unwrap_or_else(|e| panic!("after the fault: {e}"));
        assert_eq!(got, Some(value));
    }
    store
        .delete(key)
        .await
        .unwrap_or_else(|e| panic!("after the fault: {e}"));
}

/// On a stalled connection (`proxy` forwards nothing), `get` and
/// `batch_set` through `store` fail with a temporary `Timeout` no sooner
/// than `timeout` and well before a hang (`timeout` + 5 s); after
/// [`FaultProxy::resume`] the same store [works again](works_again).
/// Uses and removes `key`; returns how long each call took.
pub async fn stalls_end_in_timeout(
    store: &dyn KvStore,
    proxy: &FaultProxy,
    timeout: Duration,
    key: &Key,
) -> Vec<Duration> {
    settle(store, |s| s.set(key, "1".into(), SetOptions::default())).await;
    proxy.stall();
    let mut took = Vec::new();
    for call in ["get", "batch_set"] {
        let started = Instant::now();
        let result = match call {
            "get" => store.get(key).await.map(drop),
            _ => store.batch_set(vec![Entry::new(key.clone(), "2")]).await,
        };
        let elapsed = started.elapsed();
        let err = result.expect_err("a call on a stalled connection succeeded");
        assert_eq!(
            err.kind(),
            ErrorKind::Timeout,
            "{call} on a stalled connection: {err}"
        );
        assert!(err.is_temporary(), "{err}");
        assert!(
            elapsed >= timeout,
            "{call} gave up before its timeout: {elapsed:?}"
        );
        assert!(
            elapsed < timeout + Duration::from_secs(5),
            "{call} hung: {elapsed:?}"
        );
        took.push(elapsed);
    }
    proxy.resume();
    works_again(store, key).await;
    took
}

/// Times `connecting` (a connect to a refused port, or to a server that
/// never answers) and checks that it fails with a temporary `Unavailable`
/// within `limit`. Returns how long it took.
pub async fn connect_fails_fast<T>(
    limit: Duration,
    connecting: impl Future<Output = kv_core::Result<T>>,
) -> Duration {
    let started = Instant::now();
    let result = connecting.await;
    let took = started.elapsed();
    let Err(err) = result else {
        panic!("the connect succeeded")
    };
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_temporary(), "{err}");
    assert!(took < limit, "the connect took {took:?} to fail: {err}");
    took
}
