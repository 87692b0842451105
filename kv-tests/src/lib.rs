//! The kv workspace's own tests, benchmarks and book doctests: everything
//! that needs live servers, native drivers, `protoc` or Docker, kept out of
//! the facade (`anykv`) so that `cargo run --example quickstart` needs Rust
//! alone. Never published.
//!
//! ```text
//! cargo test -p kv-tests --all-features          # tests/: connect, copy, secrets, examples, book
//! cargo bench -p kv-tests --features full --bench bulk
//! ```

/// The book's pages (`docs/src`), whose Rust code blocks are compiled and
/// run as doctests, so the book cannot rot. The README's blocks run in the
/// facade, and the pages that include a backend's README in that crate.
#[cfg(all(
    doctest,
    feature = "redis",
    feature = "postgres",
    feature = "rocksdb",
    feature = "etcd",
    feature = "mongo"
))]
pub mod book {
    /// `introduction.md`
    #[doc = include_str!("../../docs/src/introduction.md")]
    pub struct Introduction;
    /// `getting-started.md`
    #[doc = include_str!("../../docs/src/getting-started.md")]
    pub struct GettingStarted;
    /// `choosing-a-backend.md`
    #[doc = include_str!("../../docs/src/choosing-a-backend.md")]
    pub struct ChoosingABackend;
    /// `contract.md`
    #[doc = include_str!("../../docs/src/contract.md")]
    pub struct Contract;
    /// `backends/memory.md`
    #[doc = include_str!("../../docs/src/backends/memory.md")]
    pub struct Memory;
    /// `testing.md`
    #[doc = include_str!("../../docs/src/testing.md")]
    pub struct Testing;
    /// `scaling-out.md`
    #[doc = include_str!("../../docs/src/scaling-out.md")]
    pub struct ScalingOut;
    /// `new-backend.md`
    #[doc = include_str!("../../docs/src/new-backend.md")]
    pub struct NewBackend;
    /// `bulk.md`
    #[doc = include_str!("../../docs/src/bulk.md")]
    pub struct Bulk;
    /// `layers.md`
    #[doc = include_str!("../../docs/src/layers.md")]
    pub struct Layers;
    /// `reliability.md`
    #[doc = include_str!("../../docs/src/reliability.md")]
    pub struct Reliability;
    /// `contributing.md`
    #[doc = include_str!("../../docs/src/contributing.md")]
    pub struct Contributing;
}
