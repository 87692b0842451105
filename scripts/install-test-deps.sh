#!/usr/bin/env bash
# Installs what the kv test suite needs on Debian/Ubuntu. Idempotent: a second
# run installs nothing that is already there.
#
#   redis-server            Redis for kv-backend-redis tests
#   etcd-server etcd-client etcd for kv-backend-etcd tests
#   postgresql              initdb/pg_ctl/postgres for kv-backend-postgres tests
#   mariadb-server          mariadb-install-db/mariadbd for the MySQL tests
#   protobuf-compiler       protoc, needed to build the etcd-client crate
#   libprotobuf-dev         protoc's well-known types (google/protobuf/*.proto) it imports
#   clang libclang-dev      bindgen, needed to build the rocksdb crate
#   openssl                 to make the certificates of the etcd TLS test
#   python3-venv            to install SecantusDB (MongoDB-wire-compatible test
#                           server, GPL-2.0, run only as a separate process)
#   mdbook                  (from crates.io, into ~/.cache/kv/tools) to build the book
#
# Environment:
#   KV_SECANTUS_VENV   where to put the SecantusDB venv (default ~/.cache/kv/secantus)
#   KV_TOOLS           where to install mdbook (default ~/.cache/kv/tools; bin/ under it)
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

APT_PACKAGES=(redis-server etcd-server etcd-client postgresql mariadb-server protobuf-compiler libprotobuf-dev clang libclang-dev openssl python3-venv)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "install-test-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # Debian starts packaged services on install; the tests start their own
  # servers on free ports, so stop the system ones (best effort, no systemd in
  # containers).
  for svc in redis-server etcd postgresql mariadb; do
    $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
else
  echo "install-test-deps: apt packages already installed"
fi

SECANTUS_VENV="${KV_SECANTUS_VENV:-$HOME/.cache/kv/secantus}"
SECANTUS_VERSION="0.7.0b3"
if "$SECANTUS_VENV/bin/python" -c "import secantus" >/dev/null 2>&1; then
  echo "install-test-deps: SecantusDB already in $SECANTUS_VENV"
else
  echo "install-test-deps: installing SecantusDB $SECANTUS_VERSION into $SECANTUS_VENV"
  mkdir -p "$(dirname "$SECANTUS_VENV")"
  python3 -m venv "$SECANTUS_VENV"
  "$SECANTUS_VENV/bin/pip" install --quiet --disable-pip-version-check "SecantusDB==$SECANTUS_VERSION"
fi
TOOLS="${KV_TOOLS:-$HOME/.cache/kv/tools}"
MDBOOK_VERSION="0.5.4"
if "$TOOLS/bin/mdbook" --version 2>/dev/null | grep -q "v$MDBOOK_VERSION"; then
  echo "install-test-deps: mdbook $MDBOOK_VERSION already in $TOOLS"
else
  # About 3 minutes on 2 cores; in its own target dir, removed afterwards.
  echo "install-test-deps: installing mdbook $MDBOOK_VERSION into $TOOLS"
  cargo install --quiet --locked --version "$MDBOOK_VERSION" --root "$TOOLS" mdbook
fi
echo "install-test-deps: done"
