//! How a store's keys are laid out: one bucket on a single server, several
//! on a Redis Cluster.
//!
//! A MULTI/EXEC or a script may only touch keys of one hash slot. A bucket
//! is a store's keys together with their index and expiry schedule, all in
//! one slot, so each bucket works exactly as a whole store does on a single
//! server (one atomic MULTI/EXEC per batch, scripts for listing and CAS).
//!
//! - On a single server, or on a cluster when the key prefix carries a hash
//!   tag (`{users}:`), a store is **one bucket**: `prefix + key`, every key
//!   in the tag's slot. Batches are atomic.
//! - On a cluster without a tag in the prefix, a store is **`n` buckets**:
//!   key `k` lives in bucket `b = fnv1a(k) % n` as `{prefix#bb}k`, beside its
//!   bucket's index and schedule under the same tag. The buckets' tags land
//!   on different slots, so the store spreads over the cluster's nodes. A
//!   batch is one MULTI/EXEC per bucket it touches (atomic per bucket, not
//!   as a whole); a listing merges the buckets' ordered pages.

use kv_core::Key;

use crate::index::Layout;

/// The buckets of one store.
#[derive(Debug, Clone)]
pub(crate) struct Buckets {
    /// The key prefix the user gave.
    pub(crate) prefix: String,
    layouts: Vec<Layout>,
}

impl Buckets {
    /// One bucket: `prefix + key` (a single server, or a tagged prefix).
    pub(crate) fn one(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
            layouts: vec![Layout::new(prefix)],
        }
    }

    /// The buckets of a cluster store: one when `prefix` has a hash tag,
    /// else `n` (at least 1), each under a tag of its own.
    pub(crate) fn cluster(prefix: &str, n: usize) -> Self {
        if has_hash_tag(prefix) || n <= 1 {
            return Self::one(prefix);
        }
        Self {
            prefix: prefix.to_owned(),
            layouts: (0..n)
                .map(|b| Layout::new(&format!("{{{prefix}#{b:02}}}")))
                .collect(),
        }
    }

    /// How many buckets.
    pub(crate) fn len(&self) -> usize {
        self.layouts.len()
    }

    /// Every bucket's layout.
    pub(crate) fn all(&self) -> &[Layout] {
        &self.layouts
    }

    /// The bucket number of `key`.
    pub(crate) fn index_of(&self, key: &Key) -> usize {
        match self.layouts.len() {
            1 => 0,
            n => (fnv1a(key.as_bytes()) % n as u64) as usize,
        }
    }

    /// The layout of `key`'s bucket.
    pub(crate) fn of(&self, key: &Key) -> &Layout {
        &self.layouts[self.index_of(key)]
    }

    /// The layout of bucket `b` (from [`Buckets::index_of`] or
    /// [`Buckets::group`]).
    pub(crate) fn get(&self, b: usize) -> &Layout {
        &self.layouts[b]
    }

    /// `items` split by bucket, in bucket order, each group keeping the
    /// items' order; buckets with no item are left out.
    pub(crate) fn group<'k, T>(
        &self,
        items: impl IntoIterator<Item = T>,
        key: impl Fn(&T) -> &'k Key,
    ) -> Vec<(usize, Vec<T>)> {
        if self.layouts.len() == 1 {
            // Collecting a `Vec`'s own iterator reuses its buffer.
            let all: Vec<T> = items.into_iter().collect();
            return if all.is_empty() {
                Vec::new()
            } else {
                vec![(0, all)]
            };
        }
        let mut groups: Vec<Vec<T>> = (0..self.layouts.len()).map(|_| Vec::new()).collect();
        for item in items {
            let b = self.index_of(key(&item));
            groups[b].push(item);
        }
        groups
            .into_iter()
            .enumerate()
            .filter(|(_, g)| !g.is_empty())
            .collect()
    }
}

/// Whether `name` carries a Redis Cluster hash tag: a `{` followed later by
/// a `}` with at least one byte between them (Redis hashes only that part).
pub(crate) fn has_hash_tag(name: &str) -> bool {
    name.find('{')
        .and_then(|open| name[open + 1..].find('}'))
        .is_some_and(|len| len > 0)
}

// FNV-1a: a fixed hash, so a key stays in its bucket across versions and
// machines.
use kv_core::backend::fnv1a;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hash_tags_follow_redis_rules() {
        assert!(has_hash_tag("{users}:"));
        assert!(has_hash_tag("app:{u}"));
        assert!(!has_hash_tag("{}:"), "an empty tag hashes the whole name");
        assert!(!has_hash_tag("app:"));
        assert!(!has_hash_tag("}{"));
    }

    #[test]
    fn a_tagged_prefix_is_one_bucket_and_others_are_spread() {
        assert_eq!(Buckets::cluster("{users}:", 16).len(), 1);
        let spread = Buckets::cluster("app:", 16);
        assert_eq!(spread.len(), 16);
        // Each bucket's data key, index and schedule share one tag.
        let key = Key::new("k").unwrap();
        let layout = spread.of(&key);
        assert!(layout.prefix.starts_with("{app:#") && layout.prefix.ends_with('}'));
        let tag = &layout.prefix[1..layout.prefix.len() - 1];
        let index = String::from_utf8_lossy(&layout.index).into_owned();
        assert!(index.contains(&format!("{{{tag}}}")), "{index}");
        // Keys spread over every bucket.
        let mut used = [false; 16];
        for i in 0..1000 {
            used[spread.index_of(&Key::new(format!("key{i}")).unwrap())] = true;
        }
        assert!(used.iter().all(|u| *u));
    }

    #[test]
    fn groups_keep_order_within_a_bucket() {
        let buckets = Buckets::cluster("app:", 4);
        let keys: Vec<Key> = (0..50)
            .map(|i| Key::new(format!("k{i}")).unwrap())
            .collect();
        let groups = buckets.group(keys.iter(), |k| *k);
        assert_eq!(groups.iter().map(|(_, g)| g.len()).sum::<usize>(), 50);
        for (b, group) in &groups {
            assert!(group.iter().all(|k| buckets.index_of(k) == *b));
            assert!(
                group
                    .windows(2)
                    .all(|w| keys.iter().position(|k| k == w[0])
                        < keys.iter().position(|k| k == w[1]))
            );
        }
    }
}
