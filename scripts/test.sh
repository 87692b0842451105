#!/usr/bin/env bash
# The whole kv test suite, servers included, on a fresh machine:
#
#   bash scripts/test.sh
#
# 1. installs what the tests need if anything is missing (scripts/install-test-deps.sh:
#    Debian packages, a Python venv with SecantusDB, mdbook; it says what first);
# 2. checks formatting, clippy (warnings are errors), rustdoc (warnings are errors)
#    and builds the book (docs/, mdBook);
# 3. checks the minimum Rust version against the dependencies (scripts/msrv.py)
#    and packages every publishable crate (cargo package);
# 4. runs every test of the workspace with all features: kv-testkit starts Redis,
#    PostgreSQL, MariaDB, etcd and a MongoDB-compatible server itself on free loopback ports
#    (or uses KV_TEST_*_URL, or Docker when a daemon answers);
# 5. the front door: the quickstart, and kv-core's tests, built from nothing in a
#    fresh target dir with protoc and libclang out of reach (Rust alone must do);
# (Every example runs in step 4: kv-tests/tests/examples.rs.)
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
if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  missing="$missing mariadbd"
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
  echo "test.sh: missing:$missing"
  echo "test.sh: scripts/install-test-deps.sh will now change this machine: apt packages"
  echo "  (servers, protoc, clang; the Redis, etcd and PostgreSQL services apt starts are"
  echo "  stopped again), SecantusDB in a venv under ~/.cache/kv, mdbook under ~/.cache/kv/tools"
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
# The testkit and the suite as a third-party backend author gets them: no
# docker feature, so no Docker client.
cargo clippy -p anykv-testkit -p anykv-conformance -- -D warnings

step "cargo doc (-D warnings, all features, then default features)"
# (No --bins: it would override kv-cli's `doc = false`, and its `kv` binary's
# page would overwrite the facade's `kv/index.html`, cargo#6313.)
RUSTDOCFLAGS="-Dwarnings" cargo doc --workspace --no-deps --all-features --lib --examples
# The facade and kv-core as a user who turns on no feature gets them: links
# to gated items must not break.
RUSTDOCFLAGS="-Dwarnings" cargo doc -p anykv -p anykv-core --no-deps --lib

# The book: charts drawn from the READMEs' benchmark tables are current, and
# mdbook builds it. (Its links, includes and capabilities table are checked
# by tests/book.rs, its Rust blocks as doctests, in the test step.)
step "book (charts up to date, mdbook build)"
python3 scripts/charts.py --check
mdbook build docs

step "minimum Rust version (no dependency needs a newer one)"
python3 scripts/msrv.py

# Every publishable crate packaged in one go (cargo resolves their path
# dependencies among themselves); then verified, that is built from its
# .crate file alone, except the three whose verification would compile
# RocksDB's C++ again or needs anykv-rocksdb in the same run: anykv-rocksdb
# itself, the facade (anykv, which names it as an optional dependency) and
# the CLI.
step "cargo package (every publishable crate; verified but the RocksDB ones)"
cargo package --allow-dirty --workspace --exclude kv-tests --exclude todo-service --no-verify --quiet
# Verification builds each crate against the others as registry crates,
# which cargo takes for immutable: it unpacks one by name and version only
# once, and never rebuilds it. An earlier run's anykv-core 0.1.0 (its
# unpacked source and its compiled library) would be used instead of this
# one. No anykv crate comes from crates.io, so every unpacked one is ours
# and stale; `cargo clean -p` drops the libraries built from them (and the
# workspace's own, which the test step rebuilds anyway when they changed).
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/anykv-* \
  "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/anykv-*
cargo clean --quiet -p anykv-core -p anykv-testkit -p anykv-conformance
cargo package --allow-dirty --quiet -p anykv-core -p anykv-testkit -p anykv-conformance \
  -p anykv-redis -p anykv-postgres -p anykv-mysql -p anykv-sqlite -p anykv-etcd -p anykv-mongo
ls "$CARGO_TARGET_DIR/package/"*.crate

step "cargo test --workspace --all-features"
cargo test --workspace --all-features --no-fail-fast 2>&1 | tee "$TEST_LOG"

# The README's first command on a machine with Rust alone: a fresh target dir
# (nothing prebuilt), protoc and libclang out of reach, no server. It fails
# here if the quickstart, or kv-core's tests, ever need more than Rust again.
step "front door: quickstart and kv-core tests from nothing, with Rust alone"
FRONT_DOOR_DIR="$(mktemp -d)"
front_door() {
  env -u KV_TEST_REDIS_URL -u KV_TEST_POSTGRES_URL -u KV_TEST_ETCD_URL -u KV_TEST_MONGO_URL \
    -u KV_TEST_MYSQL_URL \
    PROTOC=/nonexistent LIBCLANG_PATH=/nonexistent CARGO_TARGET_DIR="$FRONT_DOOR_DIR" "$@"
}
start=$(date +%s)
front_door cargo build --example quickstart 2>"$FRONT_DOOR_DIR/build.log" \
  || { cat "$FRONT_DOOR_DIR/build.log"; exit 1; }
"$FRONT_DOOR_DIR/debug/examples/quickstart" >/dev/null
echo "quickstart from an empty target dir: $(($(date +%s) - start)) s," \
  "$(grep -c '^ *Compiling ' "$FRONT_DOOR_DIR/build.log") crates compiled"
front_door cargo test --quiet -p anykv-core
rm -rf "$FRONT_DOOR_DIR"
