#!/usr/bin/env python3
"""Draws the book's performance charts (SVG) from the benchmark tables the
READMEs record, so a chart cannot drift from the figures:

  docs/src/perf/vs-native.svg  kv's time per batch of 100 relative to the
                               same native calls written by hand (each
                               backend README's "Benchmark" table, column
                               kv/hand; Redis: kv/(a))
  docs/src/perf/bulk.svg       BulkWriter keys/s against single sets, at
                               1,000,000 entries (the bulk table of
                               docs/src/bulk.md)

  python3 scripts/charts.py           # rewrite the SVGs
  python3 scripts/charts.py --check   # fail if they are out of date (CI)

Standard library only; the output is deterministic.
"""
import math
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "src" / "perf"
BACKENDS = [("Redis", "redis"), ("PostgreSQL", "postgres"), ("MySQL", "mysql"), ("RocksDB", "rocksdb"), ("SQLite", "sqlite"),
            ("etcd", "etcd"), ("MongoDB*", "mongo")]
OPS = ["batch_set", "batch_get", "batch_delete"]
COLORS = {"batch_set": "#4e79a7", "batch_get": "#59a14f", "batch_delete": "#e15759",
          "bulk": "#4e79a7", "singles": "#bab0ac"}


def section(text, heading):
    """The lines of a `## heading` section."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith("## "):
            inside = line[3:].strip() == heading
            continue
        if inside:
            out.append(line)
    return out


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def number(cell):
    return float(re.sub(r"[^0-9.]", "", cell.replace(",", "")))


def vs_native():
    """{backend: {op: ratio}} for batches of 100."""
    data = {}
    for label, crate in BACKENDS:
        text = (ROOT / f"kv-backend-{crate}" / "README.md").read_text()
        rows = {}
        for line in section(text, "Benchmark"):
            if not line.startswith("| batch_"):
                continue
            c = cells(line)
            if c[0] in OPS and c[1] == "100" and c[0] not in rows:
                # kv/hand is the first ratio column after the three keys/s columns.
                ratio_col = 5 if crate == "redis" else 4
                rows[c[0]] = number(c[ratio_col])
        missing = [op for op in OPS if op not in rows]
        if missing:
            sys.exit(f"{crate}: no batch-100 row for {missing} in its Benchmark table")
        data[label] = rows
    return data


def bulk():
    """[(backend, bulk keys/s, singles keys/s)] at 1,000,000 entries."""
    text = (ROOT / "docs" / "src" / "bulk.md").read_text()
    out = []
    for line in section(text, "Loading many keys"):
        c = cells(line) if line.startswith("|") else []
        if len(c) >= 9 and c[1] == "1,000,000":
            out.append((c[0], number(c[2]), number(c[7])))
    if not out:
        sys.exit("docs/src/bulk.md: no 1,000,000-entry rows in the bulk table")
    return out


def svg(width, height, body):
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">\n'
            f'<rect width="{width}" height="{height}" fill="white"/>\n{body}</svg>\n')


def text(x, y, s, anchor="start", size=12, weight="normal", fill="#222"):
    s = s.replace("&", "&amp;").replace("<", "&lt;")
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" '
            f'font-weight="{weight}" fill="{fill}">{s}</text>\n')


def chart_vs_native(data):
    left, top, bar, gap, group_gap, plot_w = 110, 50, 12, 2, 14, 430
    lo, hi = 0.8, 1.2
    x = lambda v: left + (min(max(v, lo), hi) - lo) / (hi - lo) * plot_w
    body = text(left, 22, "kv's time for a batch of 100, relative to the driver by hand (1.00 = same)",
                weight="bold")
    y = top
    groups = []
    for label, rows in data.items():
        groups.append((label, y))
        for op in OPS:
            v = rows[op]
            x0, x1 = x(1.0), x(v)
            body += (f'<rect x="{min(x0, x1):.1f}" y="{y:.1f}" width="{abs(x1 - x0):.1f}" '
                     f'height="{bar}" fill="{COLORS[op]}"/>\n')
            body += text(max(x0, x1) + 4, y + bar - 2, f"{v:.3f}", size=10)
            y += bar + gap
        y += group_gap
    bottom = y
    for label, gy in groups:
        body += text(left - 8, gy + (3 * (bar + gap)) / 2 + 4, label, anchor="end")
    for tick in (0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2):
        tx = x(tick)
        dash = "" if tick == 1.0 else ' stroke-dasharray="3,3"'
        color = "#222" if tick == 1.0 else ("#e15759" if tick == 1.05 else "#ccc")
        body += f'<line x1="{tx:.1f}" y1="{top - 6}" x2="{tx:.1f}" y2="{bottom - 8}" stroke="{color}"{dash}/>\n'
        body += text(tx, bottom + 6, f"{tick:.2f}", anchor="middle", size=10)
    body += text(x(1.05) + 3, top - 10, "+5%", size=10, fill="#e15759")
    lx = left
    for op in OPS:
        body += f'<rect x="{lx}" y="{bottom + 18}" width="10" height="10" fill="{COLORS[op]}"/>\n'
        body += text(lx + 14, bottom + 27, op, size=11)
        lx += 110
    body += text(left, bottom + 46, "Below 1.00: kv was faster in that run; the A/A rows of each README "
                 "(the same code twice) show about ±3% of noise.", size=10, fill="#555")
    body += text(left, bottom + 60, "*MongoDB: on SecantusDB, the MongoDB-compatible test server.",
                 size=10, fill="#555")
    return svg(left + plot_w + 200, bottom + 72, body)


def chart_bulk(rows):
    left, top, bar, gap, group_gap, plot_w = 110, 50, 14, 2, 14, 430
    lo, hi = 1e3, 2e6
    x = lambda v: left + (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * plot_w
    body = text(left, 22, "Writing 1,000,000 entries: keys/s (log scale)", weight="bold")
    y = top
    for label, bulk_rate, singles in rows:
        body += text(left - 8, y + bar + 4, label, anchor="end")
        for kind, v in (("bulk", bulk_rate), ("singles", singles)):
            body += (f'<rect x="{left}" y="{y:.1f}" width="{x(v) - left:.1f}" height="{bar}" '
                     f'fill="{COLORS[kind]}"/>\n')
            body += text(x(v) + 4, y + bar - 3, f"{v:,.0f}", size=10)
            y += bar + gap
        y += group_gap
    bottom = y
    for tick in (1e3, 1e4, 1e5, 1e6):
        tx = x(tick)
        body += f'<line x1="{tx:.1f}" y1="{top - 6}" x2="{tx:.1f}" y2="{bottom - 8}" stroke="#ccc" stroke-dasharray="3,3"/>\n'
        body += text(tx, bottom + 6, f"{tick:,.0f}", anchor="middle", size=10)
    lx = left
    for kind, name in (("bulk", "BulkWriter (native batches, 4 in flight)"),
                       ("singles", "4 tasks looping over set")):
        body += f'<rect x="{lx}" y="{bottom + 18}" width="10" height="10" fill="{COLORS[kind]}"/>\n'
        body += text(lx + 14, bottom + 27, name, size=11)
        lx += 250
    return svg(left + plot_w + 90, bottom + 40, body)


def main():
    charts = {"vs-native.svg": chart_vs_native(vs_native()), "bulk.svg": chart_bulk(bulk())}
    check = "--check" in sys.argv[1:]
    stale = []
    for name, content in charts.items():
        path = OUT / name
        if check:
            if not path.exists() or path.read_text() != content:
                stale.append(name)
        else:
            OUT.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        sys.exit(f"out of date: {', '.join(stale)}; run python3 scripts/charts.py")


if __name__ == "__main__":
    main()
