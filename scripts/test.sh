#!/usr/bin/env bash
# The whole kv test suite, servers included, on a fresh machine:
#
#   bash scripts/test.sh
#
# 1. installs what the tests need if anything is missing (scripts/install-test-deps.sh);
# 2. checks formatting, clippy (warnings are errors) and rustdoc (warnings are errors);
# 3. runs every test of the workspace with all features: kv-testkit starts Redis,
#    PostgreSQL, etcd and a MongoDB-compatible server itself on free loopback ports
#    (or uses KV_TEST_*_URL, or Docker when a daemon answers);
# 4. runs the quickstart example.
#
# CARGO_TARGET_DIR defaults to ~/.cache/kv/target, outside the clone, so a
# second run on the same machine is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kv/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

missing=""
for bin in redis-server etcd protoc clang; do
  command -v "$bin" >/dev/null 2>&1 || missing="$missing $bin"
done
[ -f /usr/include/google/protobuf/descriptor.proto ] || missing="$missing libprotobuf-dev"
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing="$missing initdb"
fi
if ! command -v mongod >/dev/null 2>&1 \
  && ! "${KV_SECANTUS_VENV:-$HOME/.cache/kv/secantus}/bin/python" -c "import secantus" >/dev/null 2>&1; then
  missing="$missing secantus"
fi
if [ -n "$missing" ]; then
  echo "test.sh: missing:$missing; running scripts/install-test-deps.sh"
  bash scripts/install-test-deps.sh
fi

step() { echo; echo "==> $*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, all features, -D warnings)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo doc (-D warnings)"
RUSTDOCFLAGS="-Dwarnings" cargo doc --workspace --no-deps --all-features

step "cargo test --workspace --all-features"
cargo test --workspace --all-features

step "quickstart example"
cargo run --quiet --example quickstart
