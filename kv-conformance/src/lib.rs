//! The kv conformance suite: every rule of the [`KvStore`] contract as a
//! test, for every backend.
//!
//! Each case is a `pub async fn` over a store: the raw-API cases take
//! `&dyn KvStore`, the typed-client and concurrency cases take
//! `Arc<dyn KvStore>`. Each case works under its own random key prefix
//! ([`Space`]), so all cases run in parallel against one server, and removes
//! what it wrote. Cases read [`Capabilities`](kv_core::Capabilities) to decide
//! what applies (a backend without TTL is checked to return `Unsupported`
//! instead).
//!
//! A backend runs the whole suite with one line in `tests/conformance.rs`:
//!
//! ```ignore
//! kv_conformance::suite!(|| async {
//!     std::sync::Arc::new(kv_core::MemoryStore::new()) as std::sync::Arc<dyn kv_core::KvStore>
//! });
//! ```
//!
//! The factory is any expression callable with no argument that returns a
//! future of `Arc<dyn KvStore>`, `Box<dyn KvStore>`, `Arc<S>` or `Box<S>`,
//! or an `Option` of one: `None` skips the case (for a server that
//! `kv-testkit` was allowed to skip, loudly). It is called once per case,
//! inside that case's runtime.
#![forbid(unsafe_code)]
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]
#![warn(missing_debug_implementations, unreachable_pub)]
// A test suite: failures are panics with messages.
#![allow(clippy::unwrap_used)]

pub mod bad_input;
pub mod batch;
pub mod bulk;
pub mod cas;
pub mod concurrency;
pub mod counters;
pub mod crud;
pub mod disruption;
pub mod export;
pub mod ext;
pub mod fault_suite;
pub mod faults;
pub mod foreign;
pub mod keys;
pub mod list;
pub mod load;
pub mod namespace;
pub mod races;
pub mod support;
pub mod transactions;
pub mod ttl;
pub mod typed;
pub mod typed_versions;
pub mod versions;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kv_core::KvStore;

pub use support::{Probe, Space, scale_large_cases};

/// The longest one case may take before it fails: a guard against hangs,
/// not a speed check. The 50,000-key bulk case on the slowest test server
/// (SecantusDB, a Python MongoDB stand-in, ~2,000 upserts/s alone) needed
/// 277 s of its load while the 20,000-key export case ran beside it on
/// the same 2 cores, and its standalone run (50 statements per command)
/// outlasted 900 s in a full `scripts/test.sh`.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(1800);

/// Calls `$callback!` with `$args` and the lists of raw-API and shared-store
/// cases, as `module::case` paths. The single list of every case.
#[doc(hidden)]
#[macro_export]
macro_rules! __for_each_case {
    ($callback:ident!($($args:tt)*)) => {
        $crate::$callback! { $($args)*;
            raw: [
            crud::missing_key_is_none_absent_and_not_deleted,
            crud::set_then_get_round_trips,
            crud::set_overwrites_existing_value,
            crud::delete_returns_whether_a_live_key_existed,
            crud::exists_follows_set_and_delete,
            crud::empty_value_is_present_not_absent,
            crud::binary_value_with_every_byte_round_trips,
            crud::one_mib_value_round_trips,
            crud::value_over_max_is_rejected_and_old_value_stays,
            crud::health_reports_backend_and_latency,
            crud::capabilities_are_consistent,
            keys::empty_key_is_invalid,
            keys::key_with_nul_is_invalid,
            keys::key_of_1025_bytes_is_invalid,
            keys::key_of_1024_bytes_round_trips,
            keys::key_of_1024_multibyte_bytes_round_trips,
            keys::max_key_bytes_is_1024_or_less,
            keys::unicode_keys_round_trip,
            keys::keys_with_whitespace_round_trip,
            keys::keys_with_punctuation_round_trip,
            keys::injection_looking_keys_are_plain_text,
            keys::nearly_equal_keys_are_distinct,
            keys::glob_keys_match_only_themselves,
            keys::invalid_list_prefix_is_rejected,
            bad_input::every_class_of_bad_input_is_typed_and_writes_nothing,
            batch::empty_batches_are_valid,
            batch::batch_get_is_aligned_with_missing_keys,
            batch::batch_get_answers_duplicates_at_each_position,
            batch::batch_get_of_missing_keys_is_all_none,
            batch::batch_set_then_batch_get,
            batch::batch_set_overwrites_and_creates,
            batch::batch_set_duplicate_keys_last_wins,
            batch::batch_set_with_one_oversize_value_writes_nothing,
            batch::batch_set_borrowed_writes_like_batch_set,
            batch::batch_set_borrowed_with_one_invalid_entry_writes_nothing,
            batch::write_batch_borrowed_applies_in_order,
            batch::write_batch_borrowed_with_one_invalid_op_changes_nothing,
            batch::batch_delete_counts_only_live_keys,
            batch::write_batch_mixes_puts_and_deletes,
            batch::write_batch_put_then_delete_same_key_deletes,
            batch::write_batch_delete_then_put_same_key_puts,
            batch::write_batch_with_one_oversize_value_writes_nothing,
            batch::batch_of_10000_keys_is_whole_or_too_large,
            batch::batches_over_max_ops_fail_whole,
            batch::large_batch_get_stays_aligned,
            batch::batch_get_with_ttl_is_aligned_like_batch_get,
            ttl::ttl_on_backend_without_ttl_is_unsupported,
            ttl::ttl_key_is_readable_before_expiry,
            ttl::expired_key_is_gone_for_get_and_exists,
            ttl::expired_key_is_gone_for_batch_get,
            ttl::expired_keys_are_not_listed_and_pages_stay_full,
            ttl::expired_key_is_not_counted_by_delete,
            ttl::expired_key_is_absent_for_cas,
            ttl::batch_set_entries_keep_their_own_ttl,
            ttl::write_batch_put_keeps_its_ttl,
            ttl::overwrite_without_ttl_clears_ttl,
            ttl::overwrite_with_new_ttl_replaces_it,
            ttl::zero_ttl_is_invalid_and_writes_nothing,
            ttl::cas_new_value_keeps_its_ttl,
            ttl::expired_key_can_be_rewritten,
            ttl::batch_get_with_ttl_reports_remaining_ttl,
            ttl::batch_get_with_ttl_round_trips_through_batch_set,
            list::list_of_empty_prefix_is_empty_and_final,
            list::list_is_in_byte_order,
            list::paging_with_every_limit_returns_each_key_once,
            list::short_page_has_no_cursor,
            list::start_after_is_exclusive_and_need_not_exist,
            list::start_after_outside_the_prefix_range,
            list::wildcard_prefixes_are_literal,
            list::prefix_boundaries_are_exact,
            list::prefix_with_highest_characters_bounds_exactly,
            list::unicode_prefixes_select_by_bytes,
            list::keys_changed_between_pages_are_listed_once,
            list::deleted_keys_are_not_listed,
            list::zero_limit_is_invalid,
            list::limit_over_the_maximum_is_invalid,
            list::default_limit_pages_at_1000,
            list::list_stream_yields_every_key,
            list::prefix_matches_only_at_the_start,
            list::listing_without_support_is_unsupported,
            cas::cas_without_support_is_unsupported,
            cas::cas_creates_when_absent,
            cas::cas_create_fails_when_present,
            cas::cas_swaps_on_match,
            cas::cas_mismatch_changes_nothing,
            cas::cas_expecting_value_of_absent_key_fails,
            cas::cas_deletes_when_equal,
            cas::cas_absent_to_absent_holds,
            cas::cas_distinguishes_empty_value_from_absent,
            cas::cas_with_oversize_value_is_rejected,
            cas::cas_compares_binary_values_exactly,
            versions::versions_without_support_are_unsupported,
            versions::versioned_reads_return_values_with_versions,
            versions::every_write_changes_the_version,
            versions::write_if_version_applies_only_at_that_version,
            versions::write_if_absent_and_present,
            versions::write_if_ttl_and_expiry,
            versions::write_if_with_bad_input_changes_nothing,
            transactions::transactions_without_support_are_unsupported,
            transactions::transaction_commits_when_every_check_holds,
            transactions::rejected_transaction_changes_nothing_and_names_failed_checks,
            transactions::transaction_writes_apply_in_order,
            transactions::transaction_sees_expired_keys_as_absent,
            transactions::transaction_with_bad_input_writes_nothing,
            counters::counters_without_support_are_unsupported,
            counters::increment_starts_at_zero_and_adds,
            counters::increment_of_a_non_counter_is_typed_and_changes_nothing,
            counters::increment_overflow_is_typed_and_changes_nothing,
            counters::increment_ttl_applies_on_create_only,
            counters::increment_with_a_zero_ttl_writes_nothing,
            ],
            shared: [
            typed::typed_values_round_trip_through_json,
            typed::typed_values_round_trip_through_msgpack,
            typed::stored_none_is_present_not_absent,
            typed::decode_of_wrong_type_is_decode_error_naming_key,
            typed::decode_error_in_batch_get_names_the_key,
            typed::raw_codec_stores_bytes_and_strings_as_they_are,
            typed::raw_codec_rejects_non_bytes_before_io,
            typed::typed_invalid_keys_are_rejected_before_io,
            typed::typed_batch_get_is_aligned,
            typed::typed_batch_set_and_delete,
            typed::typed_write_batch_applies_puts_ttls_and_deletes,
            typed::typed_write_batch_with_encode_failure_writes_nothing,
            typed::typed_cas_compares_encoded_values,
            typed::typed_cas_against_stored_bytes_updates_foreign_values,
            typed::typed_ttl_writes_expire_or_are_unsupported,
            namespace::namespaces_are_isolated,
            namespace::namespace_clear_removes_only_its_keys,
            namespace::namespace_list_strips_the_prefix,
            namespace::nested_namespaces_compose,
            namespace::namespace_batches_and_cas_stay_inside,
            namespace::foreign_batches_and_writers_are_refused,
            namespace::namespace_key_limit_counts_the_prefix,
            concurrency::concurrent_disjoint_writes_lose_nothing,
            concurrency::cas_counter_with_50_concurrent_tasks_ends_at_50,
            concurrency::concurrent_create_if_absent_has_one_winner,
            concurrency::readers_never_see_half_a_batch,
            ext::batch_exists_is_aligned,
            ext::clear_removes_only_the_prefix,
            bulk::bulk_load_of_many_entries_lands_exactly,
            bulk::bulk_chunk_with_an_invalid_entry_fails_alone,
            bulk::bulk_write_ops_keep_input_order_per_key,
            bulk::bulk_fail_fast_stops_after_the_first_failure,
            export::export_of_many_keys_returns_each_live_key_once_with_its_ttl,
            export::export_resumes_after_a_key,
            export::copy_to_memory_and_back_keeps_values_and_ttls,
            typed_versions::update_changes_values_that_do_not_reencode,
            typed_versions::typed_versions_and_conditional_writes,
            typed_versions::typed_counters_and_transactions,
            races::increments_from_8_tasks_sum_to_1600,
            races::updates_from_8_tasks_lose_none,
            races::bank_transfers_keep_the_total,
            ],
        }
    };
}

/// Expands every conformance case into a `#[test]` against stores made by
/// `$factory`.
///
/// Each test builds a multi-threaded Tokio runtime, calls the factory in it,
/// and runs the case with a timeout of [`CASE_TIMEOUT`].
#[macro_export]
macro_rules! suite {
    ($factory:expr $(,)?) => {
        $crate::__for_each_case!(__suite_tests!($factory));
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __suite_tests {
    ($factory:expr; raw: [$($rm:ident::$rc:ident),* $(,)?], shared: [$($sm:ident::$sc:ident),* $(,)?] $(,)?) => {
        $(
            #[test]
            fn $rc() {
                $crate::run(stringify!($rc), async {
                    let Some(store) = $crate::FactoryOutput::into_store(($factory)().await) else { return };
                    $crate::$rm::$rc(&*store).await;
                });
            }
        )*
        $(
            #[test]
            fn $sc() {
                $crate::run(stringify!($sc), async {
                    let Some(store) = $crate::FactoryOutput::into_store(($factory)().await) else { return };
                    $crate::$sm::$sc($crate::IntoSharedStore::into_shared(store)).await;
                });
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __case_names {
    (; raw: [$($rm:ident::$rc:ident),* $(,)?], shared: [$($sm:ident::$sc:ident),* $(,)?] $(,)?) => {
        &[$(concat!(stringify!($rm), "::", stringify!($rc)),)* $(concat!(stringify!($sm), "::", stringify!($sc)),)*]
    };
}

/// Every case of the suite, as `module::case`.
pub const CASES: &[&str] = __for_each_case!(__case_names!());

/// Runs one case on a fresh multi-threaded runtime with [`CASE_TIMEOUT`].
/// Used by [`suite!`].
#[doc(hidden)]
pub fn run(name: &str, case: impl Future<Output = ()>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build a Tokio runtime");
    runtime.block_on(async {
        if tokio::time::timeout(CASE_TIMEOUT, case).await.is_err() {
            panic!("conformance case {name} did not finish within {CASE_TIMEOUT:?}");
        }
    });
}

/// What a [`suite!`] factory may return: a store, or `Option` of one (`None`
/// skips the case).
pub trait FactoryOutput {
    /// The store type.
    type Store;
    /// The store, or `None` to skip.
    fn into_store(self) -> Option<Self::Store>;
}

impl<T> FactoryOutput for Option<T> {
    type Store = T;
    fn into_store(self) -> Option<T> {
        self
    }
}

macro_rules! always_some {
    ($($ty:ty $(where $param:ident)?),*) => {$(
        impl$(<$param: KvStore>)? FactoryOutput for $ty {
            type Store = Self;
            fn into_store(self) -> Option<Self> {
                Some(self)
            }
        }
    )*};
}

always_some!(Arc<dyn KvStore>, Box<dyn KvStore>, Arc<S> where S, Box<S> where S);

/// Turns what a factory returns into the `Arc<dyn KvStore>` the shared cases
/// take.
pub trait IntoSharedStore {
    /// The store as `Arc<dyn KvStore>`.
    fn into_shared(self) -> Arc<dyn KvStore>;
}

impl IntoSharedStore for Arc<dyn KvStore> {
    fn into_shared(self) -> Arc<dyn KvStore> {
        self
    }
}

impl IntoSharedStore for Box<dyn KvStore> {
    fn into_shared(self) -> Arc<dyn KvStore> {
        Arc::from(self)
    }
}

impl<S: KvStore> IntoSharedStore for Arc<S> {
    fn into_shared(self) -> Arc<dyn KvStore> {
        self
    }
}

impl<S: KvStore> IntoSharedStore for Box<S> {
    fn into_shared(self) -> Arc<dyn KvStore> {
        Arc::new(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::CASES;

    /// Every `pub async fn` of a case module is in the suite, exactly once.
    #[test]
    fn every_case_is_in_the_suite() {
        let modules = [
            ("crud", include_str!("crud.rs")),
            ("keys", include_str!("keys.rs")),
            ("batch", include_str!("batch.rs")),
            ("ttl", include_str!("ttl.rs")),
            ("list", include_str!("list.rs")),
            ("cas", include_str!("cas.rs")),
            ("typed", include_str!("typed.rs")),
            ("namespace", include_str!("namespace.rs")),
            ("concurrency", include_str!("concurrency.rs")),
            ("ext", include_str!("ext.rs")),
            ("bulk", include_str!("bulk.rs")),
            ("export", include_str!("export.rs")),
            ("bad_input", include_str!("bad_input.rs")),
            ("versions", include_str!("versions.rs")),
            ("transactions", include_str!("transactions.rs")),
            ("counters", include_str!("counters.rs")),
            ("typed_versions", include_str!("typed_versions.rs")),
            ("races", include_str!("races.rs")),
        ];
        let mut defined: Vec<String> = modules
            .iter()
            .flat_map(|(module, src)| {
                src.lines()
                    .filter_map(|l| l.trim_start().strip_prefix("pub async fn "))
                    .map(move |rest| {
                        format!("{module}::{}", rest.split('(').next().unwrap_or_default())
                    })
            })
            .collect();
        defined.sort();
        let mut listed: Vec<String> = CASES.iter().map(|c| c.to_string()).collect();
        listed.sort();
        assert_eq!(defined, listed);
        assert!(CASES.len() >= 80, "the contract needs at least 80 cases");
    }
}
