//! The typed client's versions, `update`, counters and transactions.

use std::sync::Arc;

use bytes::Bytes;
use kv_core::{Condition, ErrorKind, Json, Key, Kv, KvStore, TxnOutcome};
use serde::{Deserialize, Serialize};

use crate::support::{Space, assert_kind};

fn space_kv(store: &Arc<dyn KvStore>, s: &Space) -> Kv<Json> {
    Kv::new(store.clone())
        .namespace(s.prefix())
        .expect("valid namespace")
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Profile {
    visits: u64,
    #[serde(default)]
    nickname: String,
}

/// `update` changes a value whose stored bytes would not re-encode the
/// same (written by another program with a field the type does not have,
/// other spacing, before a field was added): no byte comparison, no
/// endless conflict.
pub async fn update_changes_values_that_do_not_reencode(store: Arc<dyn KvStore>) {
    if !store.capabilities().versions {
        return;
    }
    let s = Space::new("typed-update-foreign");
    let kv = space_kv(&store, &s);
    let foreign = Bytes::from_static(br#"{ "visits": 41, "legacy": true }"#);
    let full = Key::new(format!("{}:p", s.prefix())).unwrap();
    store.set(&full, foreign, Default::default()).await.unwrap();
    let updated = kv
        .update("p", |p: Option<Profile>| {
            let mut p = p.expect("the foreign value decodes");
            p.visits += 1;
            Some(p)
        })
        .await
        .unwrap();
    assert_eq!(updated.map(|p| p.visits), Some(42));
    assert_eq!(
        kv.get::<Profile>("p").await.unwrap().map(|p| p.visits),
        Some(42)
    );
    // `None` from the closure deletes; on an absent key it writes nothing.
    assert_eq!(
        kv.update("p", |_: Option<Profile>| None).await.unwrap(),
        None
    );
    assert!(!kv.exists("p").await.unwrap());
    assert_eq!(
        kv.update("p", |_: Option<Profile>| None).await.unwrap(),
        None
    );
    assert!(!kv.exists("p").await.unwrap());
    // A value that is not a `T` is a decode error, and stays.
    kv.set("n", &7).await.unwrap();
    assert_kind(
        kv.update("n", |p: Option<Profile>| p).await,
        ErrorKind::Decode,
    );
    assert_eq!(kv.get::<i64>("n").await.unwrap(), Some(7));
    s.cleanup(&*store).await;
}

/// Typed versioned reads, `set_if` and `delete_if` over a namespace.
pub async fn typed_versions_and_conditional_writes(store: Arc<dyn KvStore>) {
    if !store.capabilities().versions {
        return;
    }
    let s = Space::new("typed-versions");
    let kv = space_kv(&store, &s);
    assert!(
        kv.set_if("p", Condition::Absent, &Profile::default())
            .await
            .unwrap()
    );
    assert!(
        !kv.set_if("p", Condition::Absent, &Profile::default())
            .await
            .unwrap()
    );
    let read = kv.get_versioned::<Profile>("p").await.unwrap().unwrap();
    assert_eq!(read.value, Profile::default());
    let next = Profile {
        visits: 1,
        ..Profile::default()
    };
    assert!(
        kv.set_if("p", Condition::Version(read.version.clone()), &next)
            .await
            .unwrap()
    );
    assert!(
        !kv.set_if("p", Condition::Version(read.version.clone()), &next)
            .await
            .unwrap()
    );
    assert!(
        !kv.delete_if("p", Condition::Version(read.version))
            .await
            .unwrap()
    );
    let both = kv
        .batch_get_versioned::<Profile, _>(["p", "missing"])
        .await
        .unwrap();
    assert_eq!(both[0].as_ref().map(|v| v.value.visits), Some(1));
    assert!(both[1].is_none());
    let current = both[0].as_ref().unwrap().version.clone();
    assert!(
        kv.delete_if("p", Condition::Version(current))
            .await
            .unwrap()
    );
    assert!(!kv.exists("p").await.unwrap());
    s.cleanup(&*store).await;
}

/// Typed counters read back as JSON integers; typed transactions commit
/// or name their failed checks, inside the namespace.
pub async fn typed_counters_and_transactions(store: Arc<dyn KvStore>) {
    let caps = store.capabilities();
    let s = Space::new("typed-ctr-txn");
    let kv = space_kv(&store, &s);
    if caps.counters {
        assert_eq!(kv.increment("hits", 2).await.unwrap(), 2);
        assert_eq!(kv.increment("hits", 40).await.unwrap(), 42);
        assert_eq!(kv.get::<i64>("hits").await.unwrap(), Some(42));
        kv.set("text", "forty-two").await.unwrap();
        assert_kind(kv.increment("text", 1).await, ErrorKind::NotACounter);
    }
    if caps.transactions {
        kv.batch_set([("alice", 100), ("bob", 0)]).await.unwrap();
        let alice = kv.get_versioned::<i64>("alice").await.unwrap().unwrap();
        let bob = kv.get_versioned::<i64>("bob").await.unwrap().unwrap();
        let outcome = kv
            .transaction()
            .check_version("alice", &alice.version)
            .check_version("bob", &bob.version)
            .check_absent("carol")
            .put("alice", &(alice.value - 30))
            .put("bob", &(bob.value + 30))
            .commit()
            .await
            .unwrap();
        assert_eq!(outcome, TxnOutcome::Committed);
        let again = kv
            .transaction()
            .check_version("alice", &alice.version)
            .check_present("bob")
            .delete("bob")
            .commit()
            .await
            .unwrap();
        assert_eq!(again, TxnOutcome::Rejected(vec![0]));
        assert_eq!(
            kv.batch_get::<i64, _>(["alice", "bob"]).await.unwrap(),
            [Some(70), Some(30)]
        );
        assert_kind(
            kv.transaction().put("", &1).commit().await,
            ErrorKind::InvalidKey,
        );
        let raw = store
            .batch_get(&[Key::new(format!("{}:alice", s.prefix())).unwrap()])
            .await
            .unwrap();
        assert_eq!(
            raw,
            [Some(Bytes::from_static(b"70"))],
            "written inside the namespace"
        );
    }
    s.cleanup(&*store).await;
}
