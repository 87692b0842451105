//! Built without the `docker` feature: no container is ever started, and
//! servers come from `KV_TEST_*_URL` or the local binaries.

use std::any::Any;

use crate::Kind;

/// Why no container was used, for the "no server" message.
pub(crate) const NOT_USED: &str =
    "Docker not tried (kv-testkit built without its `docker` feature)";

/// A running container (never built without the `docker` feature).
pub(crate) struct Running {
    pub(crate) url: String,
    pub(crate) keep: Box<dyn Any + Send + Sync>,
}

/// Without the `docker` feature, Docker is never asked.
pub(crate) fn docker_answers() -> bool {
    false
}

/// Never called: [`docker_answers`] is false.
pub(crate) fn start(_kind: Kind) -> Result<Running, String> {
    Err(NOT_USED.to_owned())
}

/// Never called: [`docker_answers`] is false.
pub(crate) fn mongo_standalone() -> Result<Running, String> {
    Err(NOT_USED.to_owned())
}
