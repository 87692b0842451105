//! The typed client over the store: codecs, decode errors, typed batches.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kv_core::{Codec, ErrorKind, Json, Kv, KvStore, MessagePack, Raw};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::support::{LONG_TTL, Probe, SHORT_TTL, Space, assert_kind, wait_past_short_ttl};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
    email: Option<String>,
    roles: Vec<Role>,
    scores: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Role {
    Admin,
    Member { since: u32 },
    Guest(String),
}

fn ada() -> User {
    User {
        id: 1,
        name: "Ada Lovelace — 数学者 🧮".into(),
        email: Some("ada@example.org".into()),
        roles: vec![
            Role::Admin,
            Role::Member { since: 1843 },
            Role::Guest("x".into()),
        ],
        scores: BTreeMap::from([("math".into(), 99.5), ("poetry".into(), -0.25)]),
    }
}

fn space_kv<C: Codec>(store: &Arc<dyn KvStore>, s: &Space, codec: C) -> Kv<C> {
    Kv::with_codec(store.clone(), codec)
        .namespace(s.prefix())
        .expect("valid namespace")
}

async fn round_trip<C: Codec, T>(kv: &Kv<C>, key: &str, value: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    kv.set(key, value).await.unwrap();
    let back: Option<T> = kv.get(key).await.unwrap();
    assert_eq!(back.as_ref(), Some(value), "{key} through {kv:?}");
}

async fn every_shape<C: Codec>(kv: &Kv<C>) {
    round_trip(kv, "struct", &ada()).await;
    round_trip(kv, "enum-unit", &Role::Admin).await;
    round_trip(kv, "enum-struct", &Role::Member { since: 7 }).await;
    round_trip(kv, "option-some", &Some(5u8)).await;
    round_trip(kv, "option-none", &Option::<u8>::None).await;
    round_trip(
        kv,
        "unicode",
        &"日本語 😀 \u{10ffff} \0 \"quoted\"".to_string(),
    )
    .await;
    round_trip(kv, "empty-string", &String::new()).await;
    round_trip(kv, "empty-vec", &Vec::<u32>::new()).await;
    round_trip(kv, "empty-map", &BTreeMap::<String, u8>::new()).await;
    round_trip(
        kv,
        "hashmap",
        &HashMap::from([("a".to_string(), 1), ("b".to_string(), 2)]),
    )
    .await;
    round_trip(kv, "numbers", &(u64::MAX, i64::MIN, 1.5f64, -0.0f64)).await;
    round_trip(kv, "nested", &vec![vec![Some(ada())], vec![], vec![None]]).await;
    round_trip(kv, "bool", &true).await;
    round_trip(kv, "unit", &()).await;
}

/// Structs, enums, options, maps, unicode, empty collections and numbers
/// round trip through JSON.
pub async fn typed_values_round_trip_through_json(store: Arc<dyn KvStore>) {
    let s = Space::new("typed-json");
    every_shape(&space_kv(&store, &s, Json)).await;
    s.cleanup(&*store).await;
}

/// The same values round trip through MessagePack.
pub async fn typed_values_round_trip_through_msgpack(store: Arc<dyn KvStore>) {
    let s = Space::new("typed-msgpack");
    every_shape(&space_kv(&store, &s, MessagePack)).await;
    s.cleanup(&*store).await;
}

/// `Option::None` stored as a value is present: `get` returns `Some(None)`.
pub async fn stored_none_is_present_not_absent(store: Arc<dyn KvStore>) {
    let s = Space::new("typed-none");
    let kv = space_kv(&store, &s, Json);
    kv.set("n", &Option::<u32>::None).await.unwrap();
    assert_eq!(kv.get::<Option<u32>>("n").await.unwrap(), Some(None));
    assert!(kv.exists("n").await.unwrap());
    assert_eq!(kv.get::<Option<u32>>("absent").await.unwrap(), None);
    s.cleanup(&*store).await;
}

/// Reading a value as the wrong type is `Decode` naming the key, not `None`.
pub async fn decode_of_wrong_type_is_decode_error_naming_key(store: Arc<dyn KvStore>) {
    let s = Space::new("typed-decode");
    let kv = space_kv(&store, &s, Json);
    kv.set("user", &ada()).await.unwrap();
    let err = kv.get::<u64>("user").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(err.key(), Some("user"));
    assert!(err.to_string().contains("\"user\""), "{err}");
    let mp = space_kv(&store, &s, MessagePack);
    mp.set("role", &Role::Admin).await.unwrap();
    assert_kind(mp.get::<User>("role").await, ErrorKind::Decode);
    s.cleanup(&*store).await;
}

/// Bytes written raw and read as JSON of another type are `Decode`, and a
/// decode error in a batch names the offending key.
pub async fn decode_error_in_batch_get_names_the_key(store: Arc<dyn KvStore>) {
    let s = Space::new("typed-bdecode");
    let kv = space_kv(&store, &s, Json);
    kv.set("good", &1u32).await.unwrap();
    kv.set("bad", &"not a number").await.unwrap();
    let err = kv.batch_get::<u32, _>(["good", "bad"]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(err.key(), Some("bad"));
    s.cleanup(&*store).await;
}

/// The raw codec stores bytes and strings as they are.
pub async fn raw_codec_stores_bytes_and_strings_as_they_are(store: Arc<dyn KvStore>) {
    let s = Space::new("typed-raw");
    let kv = space_kv(&store, &s, Raw);
    kv.set("bytes", &Bytes::from_static(b"\x00\xffraw"))
        .await
        .unwrap();
    kv.set("vec", &vec![1u8, 2, 3]).await.unwrap();
    kv.set("str", "plain text").await.unwrap();
    let raw_store = kv.store();
    let key = kv_core::Key::new("bytes").unwrap();
    assert_eq!(
        raw_store.get(&key).await.unwrap(),
        Some(Bytes::from_static(b"\x00\xffraw"))
    );
    assert_eq!(kv.get::<Vec<u8>>("vec").await.unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(
        kv.get::<String>("str").await.unwrap().as_deref(),
        Some("plain text")
    );
    assert_kind(kv.get::<String>("bytes").await, ErrorKind::Decode);
    s.cleanup(&*store).await;
}

/// The raw codec refuses non-byte values with `Encode` before any I/O.
pub async fn raw_codec_rejects_non_bytes_before_io(store: Arc<dyn KvStore>) {
    let probe = Probe::new(store);
    let kv = Kv::with_codec(probe.clone(), Raw);
    assert_kind(kv.set("k", &42u32).await, ErrorKind::Encode);
    assert_kind(kv.set("k", &ada()).await, ErrorKind::Encode);
    assert_kind(kv.batch_set([("a", vec![1u32])]).await, ErrorKind::Encode);
    assert_eq!(probe.calls(), 0);
}

/// Invalid keys are `InvalidKey` before any I/O, in every typed operation,
/// and a typed batch with one bad key writes nothing.
pub async fn typed_invalid_keys_are_rejected_before_io(store: Arc<dyn KvStore>) {
    let probe = Probe::new(store);
    let kv = Kv::new(probe.clone());
    let long = "k".repeat(1025);
    for bad in ["", "a\0b", long.as_str()] {
        assert_kind(kv.get::<u8>(bad).await, ErrorKind::InvalidKey);
        assert_kind(kv.set(bad, &1).await, ErrorKind::InvalidKey);
        assert_kind(kv.delete(bad).await, ErrorKind::InvalidKey);
        assert_kind(kv.exists(bad).await, ErrorKind::InvalidKey);
        assert_kind(
            kv.batch_get::<u8, _>(["ok", bad]).await,
            ErrorKind::InvalidKey,
        );
        assert_kind(
            kv.batch_set([("ok", 1), (bad, 2)]).await,
            ErrorKind::InvalidKey,
        );
        assert_kind(kv.batch_delete(["ok", bad]).await, ErrorKind::InvalidKey);
        assert_kind(
            kv.write_batch(kv.batch().put("ok", &1).delete(bad)).await,
            ErrorKind::InvalidKey,
        );
        assert_kind(
            kv.compare_and_swap(bad, None, Some(&1)).await,
            ErrorKind::InvalidKey,
        );
    }
    assert_eq!(probe.calls(), 0, "invalid input reached the store");
}

/// Typed `batch_get` is aligned with its input, duplicates and misses included.
pub async fn typed_batch_get_is_aligned(store: Arc<dyn KvStore>) {
    let s = Space::new("typed-bget");
    let kv = space_kv(&store, &s, Json);
    kv.batch_set([("a", ada()), ("b", User { id: 2, ..ada() })])
        .await
        .unwrap();
    let got: Vec<Option<User>> = kv.batch_get(["b", "zz", "a", "b"]).await.unwrap();
    let ids: Vec<Option<u64>> = got.iter().map(|u| u.as_ref().map(|u| u.id)).collect();
    assert_eq!(ids, [Some(2), None, Some(1), Some(2)]);
    s.cleanup(&*store).await;
}

/// Typed `batch_set` (last duplicate wins) and `batch_delete` (live count).
pub async fn typed_batch_set_and_delete(store: Arc<dyn KvStore>) {
    let s = Space::new("typed-bset");
    let kv = space_kv(&store, &s, Json);
    kv.batch_set([("a", 1), ("b", 2), ("a", 3)]).await.unwrap();
    assert_eq!(kv.get::<i32>("a").await.unwrap(), Some(3));
    assert_eq!(kv.batch_delete(["a", "b", "c"]).await.unwrap(), 2);
    assert_eq!(
        kv.batch_get::<i32, _>(["a", "b"]).await.unwrap(),
        [None, None]
    );
    s.cleanup(&*store).await;
}

/// A typed write batch applies puts with and without TTL and deletes.
pub async fn typed_write_batch_applies_puts_ttls_and_deletes(store: Arc<dyn KvStore>) {
    let s = Space::new("typed-wb");
    let kv = space_kv(&store, &s, Json);
    kv.set("old", &0).await.unwrap();
    let ttl = store.capabilities().ttl;
    let mut batch = kv.batch().put("a", &1).delete("old");
    if ttl {
        batch = batch
            .put_with_ttl("short", &2, SHORT_TTL)
            .put_with_ttl("long", &3, LONG_TTL);
    }
    assert_eq!(batch.len(), if ttl { 4 } else { 2 });
    kv.write_batch(batch).await.unwrap();
    if ttl {
        wait_past_short_ttl().await;
    }
    let got = kv
        .batch_get::<i32, _>(["a", "old", "short", "long"])
        .await
        .unwrap();
    assert_eq!(got, [Some(1), None, None, ttl.then_some(3)]);
    s.cleanup(&*store).await;
}

/// A typed write batch with one value that fails to encode writes nothing.
pub async fn typed_write_batch_with_encode_failure_writes_nothing(store: Arc<dyn KvStore>) {
    let s = Space::new("typed-wbfail");
    let kv = space_kv(&store, &s, Raw);
    kv.set("victim", "here").await.unwrap();
    let batch = kv
        .batch()
        .put("a", "x")
        .delete("victim")
        .put("bad", &1.5f64)
        .put("z", "y");
    assert_kind(kv.write_batch(batch).await, ErrorKind::Encode);
    if store.capabilities().listing {
        assert_eq!(
            kv.list("", Default::default()).await.unwrap().keys,
            ["victim"]
        );
    } else {
        for (name, live) in [("a", false), ("victim", true), ("bad", false), ("z", false)] {
            assert_eq!(kv.exists(name).await.unwrap(), live, "{name}");
        }
    }
    s.cleanup(&*store).await;
}

/// Typed CAS compares encoded values.
pub async fn typed_cas_compares_encoded_values(store: Arc<dyn KvStore>) {
    if !store.capabilities().cas {
        return;
    }
    let s = Space::new("typed-cas");
    let kv = space_kv(&store, &s, Json);
    assert!(kv.compare_and_swap("u", None, Some(&ada())).await.unwrap());
    let changed = User { id: 9, ..ada() };
    assert!(
        !kv.compare_and_swap("u", Some(&changed), Some(&changed))
            .await
            .unwrap()
    );
    assert!(
        kv.compare_and_swap("u", Some(&ada()), Some(&changed))
            .await
            .unwrap()
    );
    assert_eq!(kv.get::<User>("u").await.unwrap(), Some(changed.clone()));
    assert!(
        kv.compare_and_swap::<User>("u", Some(&changed), None)
            .await
            .unwrap()
    );
    assert!(!kv.exists("u").await.unwrap());
    s.cleanup(&*store).await;
}

/// A stored value whose re-encoding differs from its bytes (an unknown
/// field, other spacing, written by another program): a typed
/// `compare_and_swap` with the decoded value never matches, while
/// `get_stored` + `compare_and_swap_stored` compares the bytes read and
/// updates it, and still refuses once another writer changed it.
pub async fn typed_cas_against_stored_bytes_updates_foreign_values(store: Arc<dyn KvStore>) {
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Counter {
        hits: u64,
        #[serde(default)]
        label: String,
    }
    if !store.capabilities().cas {
        return;
    }
    let s = Space::new("typed-cas-stored");
    let kv = space_kv(&store, &s, Json);
    let foreign = Bytes::from_static(br#"{ "hits": 1, "owner": "ada" }"#);
    store
        .set(
            &kv_core::Key::new(format!("{}:c", s.prefix())).unwrap(),
            foreign.clone(),
            Default::default(),
        )
        .await
        .unwrap();

    let decoded: Counter = kv.get("c").await.unwrap().unwrap();
    let next = Counter {
        hits: decoded.hits + 1,
        label: String::new(),
    };
    assert!(
        !kv.compare_and_swap("c", Some(&decoded), Some(&next))
            .await
            .unwrap(),
        "re-encoded values do not match foreign bytes"
    );

    let current = kv.get_stored::<Counter>("c").await.unwrap().unwrap();
    assert_eq!(current.bytes(), &foreign);
    assert_eq!(current.hits, 1);
    assert!(
        kv.compare_and_swap_stored("c", Some(&current), Some(&next))
            .await
            .unwrap()
    );
    assert_eq!(kv.get::<Counter>("c").await.unwrap(), Some(next));
    // The bytes read are stale now: the swap is refused and changes nothing.
    let stale = Counter {
        hits: 99,
        label: "stale".into(),
    };
    assert!(
        !kv.compare_and_swap_stored("c", Some(&current), Some(&stale))
            .await
            .unwrap()
    );
    assert_eq!(
        kv.get::<Counter>("c").await.unwrap().map(|c| c.hits),
        Some(2)
    );
    // Absent expected creates; a stored read deletes.
    assert!(
        kv.compare_and_swap_stored::<_, Counter>("d", None, Some(&stale))
            .await
            .unwrap()
    );
    let current = kv.get_stored::<Counter>("d").await.unwrap().unwrap();
    assert!(
        kv.compare_and_swap_stored::<Counter, _>("d", Some(&current), None)
            .await
            .unwrap()
    );
    assert!(!kv.exists("d").await.unwrap());
    s.cleanup(&*store).await;
}

/// `set_with_ttl` and `batch_set_with_ttl` expire; without TTL support they
/// are `Unsupported`.
pub async fn typed_ttl_writes_expire_or_are_unsupported(store: Arc<dyn KvStore>) {
    let s = Space::new("typed-ttl");
    let kv = space_kv(&store, &s, Json);
    if !store.capabilities().ttl {
        assert_kind(
            kv.set_with_ttl("a", &1, SHORT_TTL).await,
            ErrorKind::Unsupported,
        );
        assert_kind(
            kv.batch_set_with_ttl([("a", 1)], SHORT_TTL).await,
            ErrorKind::Unsupported,
        );
        return;
    }
    let started = std::time::Instant::now();
    kv.set_with_ttl("a", &1, SHORT_TTL).await.unwrap();
    kv.batch_set_with_ttl([("b", 2), ("c", 3)], SHORT_TTL)
        .await
        .unwrap();
    kv.set("d", &4).await.unwrap();
    let a = kv.get::<i32>("a").await.unwrap();
    if crate::support::within_short_ttl(started) {
        assert_eq!(a, Some(1));
    }
    wait_past_short_ttl().await;
    assert_eq!(
        kv.batch_get::<i32, _>(["a", "b", "c", "d"]).await.unwrap(),
        [None, None, None, Some(4)]
    );
    assert_kind(
        kv.set_with_ttl("e", &5, Duration::ZERO).await,
        ErrorKind::InvalidArgument,
    );
    s.cleanup(&*store).await;
}
