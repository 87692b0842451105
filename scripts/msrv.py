#!/usr/bin/env python3
"""Checks the minimum supported Rust version we declare against what the
dependencies declare.

Every package a published crate of ours reaches in the resolved graph (all
features, all targets, its dev-dependencies too) that states a
`rust-version` must state one no newer than ours (`[workspace.package]
rust-version`); otherwise a user on our MSRV could not build kv. What only
a never-published member pulls in (kv-tests' OpenDAL, for the peer bench)
is not checked: no user builds it (kv's own test suite needs what it
needs: the newest such version is printed). Our own code is held to the
MSRV by clippy's `incompatible_msrv` lint, which reads the same field
(scripts/test.sh runs clippy with -D warnings).

  python3 scripts/msrv.py      # prints the newest dependency rust-version

Standard library only.
"""

import json
import subprocess
import sys


def version(text):
    """"1.88" and "1.88.0" alike: (1, 88, 0)."""
    parts = [int(part) for part in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def main():
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    members = set(meta["workspace_members"])
    packages = {p["id"]: p for p in meta["packages"]}
    deps = {node["id"]: [d["pkg"] for d in node["deps"]] for node in meta["resolve"]["nodes"]}
    # `publish = false` is an empty list in cargo metadata.
    published = {m for m in members if packages[m]["publish"] != []}
    used, todo = set(), list(published)
    while todo:
        node = todo.pop()
        if node in used:
            continue
        used.add(node)
        todo.extend(d for d in deps.get(node, []) if d not in used)
    unpublished_only = {
        p["id"]
        for p in meta["packages"]
        if p["id"] in deps and p["id"] not in used and p["id"] not in members and p["rust_version"]
    }
    ours = {p["rust_version"] for p in meta["packages"] if p["id"] in members}
    if len(ours) != 1 or None in ours:
        sys.exit(f"msrv: every workspace member must inherit one rust-version, found {sorted(map(str, ours))}")
    msrv = ours.pop()
    newer, newest = [], ("0", "", "")
    for p in meta["packages"]:
        if p["id"] in members or p["id"] not in used or not p["rust_version"]:
            continue
        if version(p["rust_version"]) > version(newest[0]):
            newest = (p["rust_version"], p["name"], p["version"])
        if version(p["rust_version"]) > version(msrv):
            newer.append(f"{p['name']} {p['version']} needs Rust {p['rust_version']}")
    if newer:
        sys.exit(f"msrv: our rust-version is {msrv}, but:\n  " + "\n  ".join(sorted(newer)))
    print(f"msrv: rust-version {msrv}; the newest among the dependencies is {newest[0]} ({newest[1]} {newest[2]})")
    if unpublished_only:
        top = max(unpublished_only, key=lambda i: version(packages[i]["rust_version"]))
        print(
            f"msrv: kv's own tests and benches (never published) need Rust "
            f"{packages[top]['rust_version']} ({packages[top]['name']} {packages[top]['version']})"
        )


if __name__ == "__main__":
    main()
