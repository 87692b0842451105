//! The whole conformance suite against temporary RocksDB databases (one per
//! case, removed afterwards).

use kv_backend_rocksdb::RocksDbStore;

kv_conformance::suite!(|| async {
    RocksDbStore::temporary()
        .await
        .expect("open a temporary database")
        .into_dyn()
});
