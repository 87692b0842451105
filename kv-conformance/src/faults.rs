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
/// server's answer. Runs until `proxy` has cut `target_cuts` connections. After each call `direct` (a store on a direct
/// connection to the same server and keyspace) checks the rules of the
/// [module docs](self). Keys live under `prefix`, removed at the end.
/// Budgets come from `seed`. Panics on the first broken rule, naming the
/// seed; returns the report.
pub async fn cuts_leave_no_partial_batch(
    through: &dyn KvStore,
    direct: &dyn KvStore,
    proxy: &FaultProxy,
    prefix: &str,
    target_cuts: u64,
    seed: u64,
) -> CutReport {
    let key = |s: String| Key::new(format!("{prefix}{s}")).unwrap();
    let set_keys: Vec<Key> = (0..BATCH).map(|i| key(format!("set/{i}"))).collect();
    let put_keys: Vec<Key> = (0..BATCH).map(|i| key(format!("wb-put/{i}"))).collect();
    let del_keys: Vec<Key> = (0..BATCH).map(|i| key(format!("wb-del/{i}"))).collect();
    let gone_keys: Vec<Key> = (0..BATCH).map(|i| key(format!("del/{i}"))).collect();
    let counter = key("cas".into());
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut report = CutReport::default();
    let ctx = |what: &str, generation: u64| format!("{what} #{generation} (seed {seed})");

    // Start from a known state, then measure each call's request size.
    let mut sizes = [0u64; 4];
    let mut count: u64 = 0;
    settle(direct, |s| s.batch_set(gen_entries(&set_keys, 0))).await;
    settle(direct, |s| s.batch_set(gen_entries(&put_keys, 0))).await;
    settle(direct, |s| s.delete(&counter)).await;
    for (i, call) in CALLS.iter().enumerate() {
        prepare(direct, *call, &del_keys, &gone_keys).await;
        let before = proxy.client_bytes();
        let result = send(
            through, *call, 1, &set_keys, &put_keys, &del_keys, &gone_keys, &counter, count,
        )
        .await;
        result.unwrap_or_else(|e| panic!("{:?} without a cut failed: {e}", call));
        if matches!(call, Call::Cas) {
            count += 1;
        }
        sizes[i] = (proxy.client_bytes() - before).max(1);
    }
    let mut set_gen: u64 = 1;
    let mut put_gen: u64 = 1;
    let mut generation: u64 = 1;
    let started = proxy.cuts();
    while proxy.cuts() - started < target_cuts {
        generation += 1;
        assert!(
            report.calls < target_cuts * 5 + 100,
            "{} calls made only {} cuts: the budgets miss the requests",
            report.calls,
            proxy.cuts() - started
        );
        let i = (generation % 4) as usize;
        let call = CALLS[i];
        prepare(direct, call, &del_keys, &gone_keys).await;
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
        let cuts_before = proxy.cuts();
        if answer {
            // Past a pool's liveness ping sometimes (sqlx sends one before
            // handing out a connection).
            proxy.cut_answer_after(rng.u64(0..=sizes[i] / 2));
        } else {
            proxy.cut_after(rng.u64(0..=sizes[i] * 3 / 2));
        }
        let result = send(
            through, call, generation, &set_keys, &put_keys, &del_keys, &gone_keys, &counter, count,
        )
        .await;
        proxy.disarm();
        report.calls += 1;
        report.cuts += proxy.cuts() - cuts_before;
        let failed = match &result {
            Ok(_) => false,
            Err(e) => {
                *report.errors.entry(e.kind().as_str()).or_default() += 1;
                assert!(
                    e.is_temporary()
                        && matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
                    "{}: a cut connection must be a temporary Unavailable or Timeout, got {:?}: {e}",
                    ctx("call", generation),
                    e.kind()
                );
                report.failed += 1;
                true
            }
        };
        let applied = match call {
            Call::BatchSet => {
                let state = generations(direct, &set_keys).await;
                let applied = whole(&state, Some(generation), Some(set_gen), &mut report);
                assert!(
                    applied.is_some(),
                    "{}: batch_set applied in part: {state:?}",
                    ctx("batch_set", generation)
                );
                if applied == Some(true) {
                    set_gen = generation;
                }
                applied
            }
            Call::WriteBatch => {
                let puts = generations(direct, &put_keys).await;
                let dels = generations(direct, &del_keys).await;
                let puts_done = whole(&puts, Some(generation), Some(put_gen), &mut report);
                let dels_done = whole(&dels, None, Some(DELETE_ME), &mut report);
                assert!(
                    puts_done.is_some() && puts_done == dels_done,
                    "{}: write_batch applied in part: puts {puts:?}, deletes {dels:?}",
                    ctx("write_batch", generation)
                );
                if puts_done == Some(true) {
                    put_gen = generation;
                }
                puts_done
            }
            Call::BatchDelete => {
                let state = generations(direct, &gone_keys).await;
                let applied = whole(&state, None, Some(DELETE_ME), &mut report);
                assert!(
                    applied.is_some(),
                    "{}: batch_delete applied in part: {state:?}",
                    ctx("batch_delete", generation)
                );
                if let Ok(Done::Deleted(n)) = &result {
                    assert_eq!(
                        *n,
                        BATCH as u64,
                        "{}: batch_delete's count",
                        ctx("batch_delete", generation)
                    );
                }
                applied
            }
            Call::Cas => {
                let now = read(direct, &counter).await;
                let before = (count > 0).then_some(count);
                let applied = now == Some(count + 1);
                assert!(
                    applied || now == before,
                    "{}: the counter went from {before:?} to {now:?}",
                    ctx("compare_and_swap", generation)
                );
                if let Ok(Done::Swapped(swapped)) = &result {
                    assert_eq!(
                        *swapped,
                        applied,
                        "{}: compare_and_swap answered {swapped} but {} (counter {count} -> {now:?})",
                        ctx("compare_and_swap", generation),
                        if applied { "applied" } else { "did not apply" }
                    );
                }
                if applied {
                    count += 1;
                }
                Some(applied)
            }
        };
        if failed && applied == Some(true) {
            report.applied_but_failed += 1;
        }
        if !failed {
            assert_eq!(
                applied,
                Some(true),
                "{}: Ok but not applied",
                ctx("call", generation)
            );
        }
    }

    // The same store works again: the first call may meet a connection the
    // last cut closed under it; after that every call succeeds.
    settle(through, |s| s.batch_set(gen_entries(&set_keys, 0))).await;
    for round in 0..20 {
        through
            .batch_set(gen_entries(&set_keys, round))
            .await
            .unwrap_or_else(|e| panic!("after the cuts, call {round} failed: {e}"));
        let got = through
            .batch_get(&set_keys)
            .await
            .unwrap_or_else(|e| panic!("after the cuts: {e}"));
        assert!(
            got.iter()
                .all(|v| v.as_deref() == Some(round.to_string().as_bytes()))
        );
    }
    let mut all = vec![counter];
    for keys in [&set_keys, &put_keys, &del_keys, &gone_keys] {
        all.extend(keys.iter().cloned());
    }
    settle(direct, |s| s.batch_delete(&all)).await;
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

#[allow(clippy::too_many_arguments)]
async fn send(
    store: &dyn KvStore,
    call: Call,
    generation: u64,
    set_keys: &[Key],
    put_keys: &[Key],
    del_keys: &[Key],
    gone_keys: &[Key],
    counter: &Key,
    count: u64,
) -> kv_core::Result<Done> {
    match call {
        Call::BatchSet => store
            .batch_set(gen_entries(set_keys, generation))
            .await
            .map(|()| Done::Written),
        Call::WriteBatch => {
            let mut ops: Vec<WriteOp> = gen_entries(put_keys, generation)
                .into_iter()
                .map(WriteOp::Put)
                .collect();
            ops.extend(del_keys.iter().cloned().map(WriteOp::Delete));
            store.write_batch(ops).await.map(|()| Done::Written)
        }
        Call::BatchDelete => store.batch_delete(gone_keys).await.map(Done::Deleted),
        Call::Cas => {
            let expected = (count > 0).then(|| Bytes::from(count.to_string()));
            let new = Bytes::from((count + 1).to_string());
            store
                .compare_and_swap(counter, expected, Some(new), SetOptions::default())
                .await
                .map(Done::Swapped)
        }
    }
}

/// Sets the keys a delete call will remove.
async fn prepare(direct: &dyn KvStore, call: Call, del_keys: &[Key], gone_keys: &[Key]) {
    match call {
        Call::WriteBatch => settle(direct, |s| s.batch_set(gen_entries(del_keys, DELETE_ME))).await,
        Call::BatchDelete => {
            settle(direct, |s| s.batch_set(gen_entries(gone_keys, DELETE_ME))).await
        }
        Call::BatchSet | Call::Cas => {}
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

/// `Some(true)` when every key holds `after`, `Some(false)` when every key
/// holds `before`, `None` (and counted) for a mix.
fn whole(
    state: &[Option<u64>],
    after: Option<u64>,
    before: Option<u64>,
    report: &mut CutReport,
) -> Option<bool> {
    if state.iter().all(|s| *s == after) {
        Some(true)
    } else if state.iter().all(|s| *s == before) {
        Some(false)
    } else {
        report.partial += 1;
        None
    }
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
