//! [`Topology`] and the server limits the store reads at connect.

use mongodb::bson::{Bson, Document};

/// What kind of deployment the store talks to, read from the server's
/// `hello` reply when it connects. It decides atomicity: only replica sets
/// and sharded clusters have multi-document transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topology {
    /// A single `mongod` without a replica set: each batch is still one
    /// command per kind of write, but not atomic (`atomic_batch` is false).
    Standalone,
    /// A replica set (one member or more): every batch is one transaction.
    ReplicaSet,
    /// A sharded cluster through `mongos`: every batch is one transaction.
    Sharded,
}

impl Topology {
    /// Whether the deployment runs multi-document transactions.
    pub fn has_transactions(self) -> bool {
        !matches!(self, Topology::Standalone)
    }
}

/// The server's limits and kind, from `hello`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ServerInfo {
    pub(crate) topology: Topology,
    /// `maxBsonObjectSize`: the largest document (16 MiB).
    pub(crate) max_bson_object_size: usize,
    /// `maxWriteBatchSize`: the most statements in one write command.
    pub(crate) max_write_batch_size: usize,
    /// `maxWireVersion`: 13 is MongoDB 5.0, the first with snapshot reads
    /// outside transactions.
    pub(crate) max_wire_version: i64,
}

/// MongoDB 5.0's wire version.
const WIRE_VERSION_5_0: i64 = 13;

impl ServerInfo {
    pub(crate) fn from_hello(hello: &Document) -> Self {
        let number = |field: &str, default: i64| match hello.get(field) {
            Some(Bson::Int32(n)) => i64::from(*n),
            Some(Bson::Int64(n)) => *n,
            Some(Bson::Double(n)) => *n as i64,
            _ => default,
        };
        let topology = if hello.get_str("setName").is_ok() {
            Topology::ReplicaSet
        } else if hello.get_str("msg") == Ok("isdbgrid") {
            Topology::Sharded
        } else {
            Topology::Standalone
        };
        let size = |field, default| usize::try_from(number(field, default)).unwrap_or(0);
        Self {
            topology,
            max_bson_object_size: size("maxBsonObjectSize", 16 * 1024 * 1024),
            max_write_batch_size: size("maxWriteBatchSize", 100_000).max(1),
            max_wire_version: number("maxWireVersion", 0),
        }
    }

    /// Whether one `find` can read at a snapshot (`readConcern: snapshot`
    /// outside a transaction): replica sets and sharded clusters of
    /// MongoDB 5.0 and later.
    pub(crate) fn snapshot_reads(&self) -> bool {
        self.topology.has_transactions() && self.max_wire_version >= WIRE_VERSION_5_0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn hello_tells_the_topology() {
        let rs = ServerInfo::from_hello(&doc! {"setName": "rs0", "maxWireVersion": 21});
        assert_eq!(rs.topology, Topology::ReplicaSet);
        assert!(rs.snapshot_reads());
        let old = ServerInfo::from_hello(&doc! {"setName": "rs0", "maxWireVersion": 9});
        assert!(!old.snapshot_reads());
        let mongos = ServerInfo::from_hello(&doc! {"msg": "isdbgrid", "maxWireVersion": 21});
        assert_eq!(mongos.topology, Topology::Sharded);
        let single =
            ServerInfo::from_hello(&doc! {"maxBsonObjectSize": 1000, "maxWireVersion": 21});
        assert_eq!(single.topology, Topology::Standalone);
        assert!(!single.topology.has_transactions() && !single.snapshot_reads());
        assert_eq!(single.max_bson_object_size, 1000);
        assert_eq!(single.max_write_batch_size, 100_000);
    }
}
