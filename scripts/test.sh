#!/usr/bin/env bash
# The whole kv test suite, servers included, on a fresh machine:
#
#   bash scripts/test.sh
#
# 1. installs what the tests need if anything is missing (scripts/install-test-deps.sh);
# 2. checks formatting, clippy (warnings are errors), rustdoc (warnings are errors)
#    and builds the book (docs/, mdBook);
# 3. runs every test of the workspace with all features: kv-testkit starts Redis,
#    PostgreSQL, etcd and a MongoDB-compatible server itself on free loopback ports
#    (or uses KV_TEST_*_URL, or Docker when a daemon answers);
# 4. runs the quickstart and layers examples (the others run in step 3, on
#    real servers: tests/examples.rs).
#
# CARGO_TARGET_DIR defaults to ~/.cache/kv/target, outside the clone, so a
# second run on the same machine is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kv/target}"
export PATH="${KV_TOOLS:-$HOME/.cache/kv/tools}/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

missing=""
for bin in redis-server etcd protoc clang; do
  command -v "$bin" >/dev/null 2>&1 || missing="$missing $bin"
done
[ -f /usr/include/google/protobuf/descriptor.proto ] || missing="$missing libprotobuf-dev"
command -v mdbook >/dev/null 2>&1 || missing="$missing mdbook"
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing="$missing initdb"
fi
if ! command -v mongod >/dev/null 2>&1 \
  && ! "${KV_SECANTUS_VENV:-$HOME/.cache/kv/secantus}/bin/python" -c "import secantus" >/dev/null 2>&1; then
  missing="$missing secantus"
fi
# Each step is timed; the times are printed at the end (also when a step fails),
# so a slow step shows in every CI log.
TIMES=()
STEP=""
STEP_START=0
RUN_START=$(date +%s)
TEST_LOG="$CARGO_TARGET_DIR/kv-test-output.log"
rm -f "$TEST_LOG"
finish_step() {
  if [ -n "$STEP" ]; then
    TIMES+=("$(printf '%6ds  %s' "$(($(date +%s) - STEP_START))" "$STEP")")
    STEP=""
  fi
}
report() {
  local status=$?
  finish_step
  echo
  echo "==> step times"
  printf '%s\n' "${TIMES[@]}"
  printf '%6ds  total (exit %d)\n' "$(($(date +%s) - RUN_START))" "$status"
  # One RocksDB C++ build per target dir is expected (more only after its
  # version or build settings changed); each one is a 10-20 minute compile.
  local rocksdb_builds
  rocksdb_builds=$(find "$CARGO_TARGET_DIR/debug/build" -maxdepth 2 -path '*/librocksdb-sys-*/out' 2>/dev/null | wc -l)
  echo "RocksDB C++ builds in $CARGO_TARGET_DIR: $rocksdb_builds"
  # Tests that could not run here (they need a server this machine cannot
  # have, such as a three-member MongoDB replica set) say so; repeat it.
  if [ -f "$TEST_LOG" ] && grep -q "NOT RUN:" "$TEST_LOG"; then
    echo
    echo "==> tests that did not run (see why above)"
    grep -o "NOT RUN: [^:]*" "$TEST_LOG" | sort -u
  fi
}
trap report EXIT
step() {
  finish_step
  STEP="$*"
  STEP_START=$(date +%s)
  echo
  echo "==> $*"
}

step "install test dependencies (if missing)"
if [ -n "$missing" ]; then
  echo "test.sh: missing:$missing; running scripts/install-test-deps.sh"
  bash scripts/install-test-deps.sh
fi

step "cargo fmt --check"
cargo fmt --all -- --check

# clippy, doc and test resolve features the same way (doc includes the examples,
# so dev-dependencies count in all three) and the workspace profile builds every
# dependency without debug info, so build scripts are shared between the steps:
# RocksDB's C++ is compiled once, by whichever step comes first.
step "cargo clippy (all targets, all features, -D warnings)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo doc (-D warnings, all features, then default features)"
# (No --bins: it would override kv-cli's `doc = false`, and its `kv` binary's
# page would overwrite the facade's `kv/index.html`, cargo#6313.)
RUSTDOCFLAGS="-Dwarnings" cargo doc --workspace --no-deps --all-features --lib --examples
# The facade and kv-core as a user who turns on no feature gets them: links
# to gated items must not break.
RUSTDOCFLAGS="-Dwarnings" cargo doc -p kv -p kv-core --no-deps --lib

# The book: charts drawn from the READMEs' benchmark tables are current, and
# mdbook builds it. (Its links, includes and capabilities table are checked
# by tests/book.rs, its Rust blocks as doctests, in the test step.)
step "book (charts up to date, mdbook build)"
python3 scripts/charts.py --check
mdbook build docs

step "cargo test --workspace --all-features"
cargo test --workspace --all-features 2>&1 | tee "$TEST_LOG"

step "quickstart example"
cargo run --quiet --example quickstart

step "layers example (tracing spans, Prometheus metrics)"
cargo run --quiet --all-features --example layers >/dev/null
