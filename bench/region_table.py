#!/usr/bin/env python3
"""Medians of the OpenMP regions that bench/region_trace.c recorded.

    python3 bench/region_table.py BINARY TRACE [TRACE2]

A benchmark repeats one forward (or training step), so its regions come
in a fixed sequence: the table finds that sequence's length, keeps the
repeats in the second half of the run (after warm-up) that follow the
same sequence, each starting where the run's first region recurs, and
prints each position's median gap before it and median duration, in
microseconds (threads 0: the default team, an `omp parallel` without
num_threads), then the totals by function. With a second trace (the same
workload on another thread count) it prints both traces' totals by
function side by side. A region is named after the function that opened
it, from BINARY's symbol table (`nm`). Work a layer does outside regions
(the one-thread paths of some layers) counts in the gap before the next
region.
"""
import bisect
import collections
import statistics
import subprocess
import sys


def read_trace(path):
    rows = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4:
                rows.append((parts[0], int(parts[1]), float(parts[2]), float(parts[3])))
    return rows


def names_of(binary, offsets):
    """Each offset's function in BINARY's symbol table (`nm -n`: the last
    symbol at or before it), without GCC's suffixes (._omp_fn.0, the
    target clones' .arch_...)."""
    table = []
    for line in subprocess.run(["nm", "-n", "--defined-only", binary], capture_output=True,
                               text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            table.append((int(parts[0], 16), parts[2]))
    addrs = [a for a, _ in table]
    names = {}
    for o in set(offsets):
        i = bisect.bisect_right(addrs, int(o, 16)) - 1
        names[o] = table[i][1].split(".")[0] if i >= 0 else "0x" + o
    return names


def period_of(keys):
    """The length of the repeating sequence: the shortest shift under which
    the second half of the run matches itself almost everywhere."""
    half = keys[len(keys) // 2:]
    for period in range(1, len(half) // 3):
        same = sum(a == b for a, b in zip(half, half[period:]))
        if same >= 0.95 * (len(half) - period):
            return period
    return 0


def repeats(rows, names):
    """The region names of one repeat, and the repeats (lists of rows) that
    follow that sequence, each starting where the run's first region recurs
    (the first region of a forward: warm-up starts with one)."""
    keys = [r[0] for r in rows]
    period = period_of(keys)
    if not period:
        sys.exit("region_table: no repeating sequence of regions in the trace")
    start = len(keys) // 2
    while start < len(keys) and keys[start] != keys[0]:
        start += 1
    reference = keys[start:start + period]
    blocks = [rows[i:i + period] for i in range(start, len(rows) - period + 1, period)
              if keys[i:i + period] == reference]
    if not blocks:
        sys.exit("region_table: no whole repeat in the second half of the trace")
    return [names[k] for k in reference], blocks


def positions(labels, blocks):
    """Per position: (name, threads, median gap, median duration)."""
    return [(name, blocks[0][i][1], statistics.median(b[i][2] for b in blocks),
             statistics.median(b[i][3] for b in blocks)) for i, name in enumerate(labels)]


def by_function(rows):
    totals = collections.OrderedDict()
    for name, _, gap, dur in rows:
        t = totals.setdefault(name, [0, 0.0, 0.0])
        t[0] += 1
        t[1] += gap
        t[2] += dur
    return totals


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    binary, traces = sys.argv[1], sys.argv[2:]
    data = [read_trace(t) for t in traces]
    names = names_of(binary, [r[0] for rows in data for r in rows])
    labels, blocks = repeats(data[0], names)
    rows = positions(labels, blocks)
    print(f"{traces[0]}: {len(labels)} regions a repeat, {len(blocks)} repeats kept")
    print(f"{'#':>3} {'region':40} {'threads':>7} {'gap us':>8} {'region us':>10}")
    for i, (name, threads, gap, dur) in enumerate(rows):
        print(f"{i:3d} {name:40} {threads:7d} {gap:8.1f} {dur:10.1f}")
    tables = [by_function(rows)]
    if len(data) > 1:
        tables.append(by_function(positions(*repeats(data[1], names))))
    print()
    head = "".join(f" {'count':>5} {'gaps us':>8} {'regions us':>10}" for _ in tables)
    print(f"{'by function':40}{head}")
    for name in dict.fromkeys(n for t in tables for n in t):
        cells = ""
        for t in tables:
            c = t.get(name, [0, 0.0, 0.0])
            cells += f" {c[0]:5d} {c[1]:8.1f} {c[2]:10.1f}"
        print(f"{name:40}{cells}")
    cells = "".join(f" {'':5} {sum(c[1] for c in t.values()):8.1f} "
                    f"{sum(c[2] for c in t.values()):10.1f}" for t in tables)
    print(f"{'all':40}{cells}")


if __name__ == "__main__":
    main()
