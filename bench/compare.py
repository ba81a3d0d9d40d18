#!/usr/bin/env python3
"""heed against its PyTorch peer on the whole benchmark matrix.

    bench/compare.py                          # 5 s per case, 1 thread
    bench/compare.py --seconds 2 --threads 2
    bench/compare.py --filter fmnist          # only the fmnist cases
    bench/compare.py --interleave             # heed, PyTorch, heed, ... case by case
    bench/compare.py --interleave --rounds 3  # each case 3 times, the median run of each side
    bench/compare.py --threads 2 --darknet --scaling   # issue 5's whole report
    make bench BENCH_ARGS="--seconds 2"

Runs `heed bench --all --json` and `/usr/bin/python3 peer_torch.py --all`
(shared/bench/, beside the repository) with the same --seconds and
--threads -- both time each case the same way (warm-up, then the median
step) and run every case in a fresh process -- and prints a markdown table:
images per second and milliseconds per batch of each, their ratio (heed
images/s over PyTorch's: above 1, heed is faster) and each side's peak
resident memory. The two run one after the other, never at once; on a
shared machine the figures are only as steady as the machine (--interleave
alternates the two case by case, so a change of load hits both alike).

Needs nothing beyond the Python standard library here; the peer needs
Debian's python3-torch, which lives in /usr/bin/python3 (--python), with a
tuned BLAS beside it: `apt-get install python3-torch libopenblas-dev`.
python3-torch takes its BLAS from libblas.so.3, and with only the
reference BLAS installed its convolutions on small inputs run about 5x
slower; the table's first line names the BLAS PyTorch ran on, and a run
on the reference one says so in a warning.
"""

import argparse
import json
import math
import os
import platform
import subprocess
import sys

import torch_blas  # beside this script; imports no torch itself

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# peer_torch.py's MATRIX (and heed bench --all's), for --filter runs of the
# peer, which has no filter of its own.
MATRIX = (
    [(w, m, b) for w in ("fmnist-plain", "fmnist-se", "fmnist-cbam")
     for m, b in (("infer", 1), ("infer", 64), ("train", 64))]
    + [(w, "infer", b) for w in ("resnet18-plain", "resnet18-se", "resnet18-cbam")
       for b in (1, 8)]
    + [("ram", "train", 64), ("ram", "infer", 64)]
)


def run_lines(cmd, label, cwd=None, cpu=None):
    """Runs cmd (on logical CPU `cpu` alone, if given), yielding each JSON
    object it prints on stdout as it comes."""
    print("running: " + ("" if cpu is None else f"(on CPU {cpu}) ") + " ".join(cmd),
          file=sys.stderr, flush=True)
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=cwd, preexec_fn=pin) as p:
        for line in p.stdout:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                print(f"{label}: not JSON: {line}", file=sys.stderr)
                continue
            print(f"  {label}: {r.get('workload')} {r.get('mode')} {r.get('batch')}: "
                  f"{r.get('images_per_s')} images/s", file=sys.stderr, flush=True)
            yield r
    if p.returncode:
        print(f"{label}: exited with status {p.returncode} (cases that failed are left out)",
              file=sys.stderr)


def key(r):
    return (r.get("workload"), r.get("mode"), r.get("batch"))


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def peer_blas(python):
    """The BLAS the peer's PyTorch runs on (torch_blas.py, run in the peer's
    Python): (name, is_reference)."""
    try:
        out = subprocess.run([python, os.path.join(REPO, "bench", "torch_blas.py")],
                             capture_output=True, text=True, timeout=120).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return torch_blas.describe(out if out.startswith("/") else None)


def fmt(v, digits):
    return "—" if v is None else f"{v:.{digits}f}"


def median_run(rows):
    """The run with the median ms_per_batch (the upper middle one of an even
    count), so that every figure printed for a case comes from one run."""
    rows = sorted((r for r in rows if r and r.get("ms_per_batch")), key=lambda r: r["ms_per_batch"])
    return rows[len(rows) // 2] if rows else None


def heed_one(heed, workload, mode, batch, threads, seconds, cpu=None):
    """One heed bench case in its own process (on CPU `cpu` alone, if
    given), or None."""
    cmd = [heed, "bench", "--json", "--workload", workload, "--mode", mode, "--batch", str(batch),
           "--threads", str(threads), "--seconds", f"{seconds:g}"]
    return next(iter(run_lines(cmd, "heed", cpu=cpu)), None)


def heed_together(heed, workload, mode, batch, seconds, cpus):
    """One single-thread heed bench process per CPU of `cpus`, each pinned to
    its CPU, all started at once: what the machine gives work that shares
    nothing. Each process's result, in the order of cpus (None if one
    failed)."""
    cmd = [heed, "bench", "--json", "--workload", workload, "--mode", mode, "--batch", str(batch),
           "--threads", "1", "--seconds", f"{seconds:g}"]
    print(f"running: (at once, one on each of CPUs {', '.join(map(str, cpus))}) " + " ".join(cmd),
          file=sys.stderr, flush=True)
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                              preexec_fn=lambda c=c: os.sched_setaffinity(0, {c}))
             for c in cpus]
    results = []
    for c, proc in zip(cpus, procs):
        out, _ = proc.communicate()
        rows = []
        for line in out.splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        r = rows[-1] if rows and proc.returncode == 0 else None
        print(f"  heed (CPU {c}, beside the others): {workload} {mode} {batch}: "
              f"{r and r.get('images_per_s')} images/s", file=sys.stderr, flush=True)
        results.append(r)
    return results


def darknet_seconds(cfg):
    """darknet's own `speed` figure for cfg (seconds per image), or None."""
    try:
        r = subprocess.run(["darknet", "speed", cfg, "10"], capture_output=True, text=True,
                           check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"darknet: not run ({e})", file=sys.stderr)
        return None
    secs = [float(l.split()[1]) for l in (r.stdout + r.stderr).splitlines()
            if l.startswith("Speed:") and "sec/eval" in l]
    return secs[0] if secs else None


def darknet_line(heed, peer, seconds, rounds):
    """Darknet's own `speed` command (single-threaded: Debian builds it without
    OpenMP) on the ResNet-18 cfg beside peer_torch.py, against heed's batch-1
    ResNet-18 inference on one thread too, as issue 5 asks: the two in turn,
    `rounds` times, and the median of each."""
    cfg = os.path.join(os.path.dirname(peer), "darknet_resnet18_224.cfg")
    dark, rows = [], []
    for _ in range(rounds):
        dark.append(darknet_seconds(cfg))
        rows.append(heed_one(heed, "resnet18-plain", "infer", 1, 1, seconds))
    dark = sorted(d for d in dark if d)
    row = median_run(rows)
    if not dark or not row:
        print("\ndarknet: no figure (its output, or heed's resnet18-plain infer 1, is missing)")
        return
    dark_ms, heed_ms = dark[len(dark) // 2] * 1e3, row["ms_per_batch"]
    of = f" (median of {rounds} runs each, in turn)" if rounds > 1 else ""
    print(f"\ndarknet (`darknet speed {os.path.basename(cfg)} 10`, 1 thread): {dark_ms:.1f} ms "
          f"per image; heed resnet18-plain infer 1 (1 thread): {heed_ms:.1f} ms{of}: "
          f"{dark_ms / heed_ms:.1f}x darknet's speed")


def scaling_lines(heed, cases, threads, seconds, rounds):
    """heed's W2 cases on `threads` threads against one thread, measured in
    rounds: one-thread runs pinned to each of the first `threads` CPUs, then
    the `threads`-thread run, each in its own process. The machine's speed
    drifts by a quarter between runs minutes apart (a ratio of runs far
    apart takes that drift for scaling), and on a shared host one CPU is
    often slower than another for minutes (a neighbour on its core): a
    one-thread run on the slow CPU would flatter the speed-up. So each
    round's speed-up is taken against its fastest one-thread run, and the
    median over rounds reported; "of the CPUs' sum" relates the threaded
    speed to the one-thread speeds of all the CPUs it ran on added up (1.00:
    nothing lost to threading, whatever each CPU's speed). Each round also
    runs one single-thread process on every one of those CPUs at once: their
    images/s added up, over the fastest CPU alone, is what the machine gives
    work that shares nothing (cores slow each other down through the host,
    the shared cache and memory), the ceiling for the threads' speed-up."""
    cpus = sorted(os.sched_getaffinity(0))[:threads]
    if len(cpus) < threads:
        print(f"\nscaling: {threads} threads asked for, this process may run on "
              f"{len(cpus)} CPUs: not measured")
        return
    print(f"\n| case | heed img/s, 1 thread on CPU {', '.join(map(str, cpus))} | heed img/s, "
          f"{threads} threads | speed-up over the fastest CPU | of the CPUs' sum "
          f"| {threads} one-thread processes at once, over the fastest CPU |")
    print("|---|---:|---:|---:|---:|---:|")
    for (w, m, b) in cases:
        if not w.startswith("resnet18"):
            continue
        singles = {c: [] for c in cpus}
        manys, ratios, shares, ceilings = [], [], [], []
        for _ in range(rounds):
            ones = [heed_one(heed, w, m, b, 1, seconds, cpu=c) for c in cpus]
            together = heed_together(heed, w, m, b, seconds, cpus)
            many = heed_one(heed, w, m, b, threads, seconds)
            if all(ones) and all(together):
                ceilings.append(sum(r["images_per_s"] for r in together) /
                                max(one["images_per_s"] for one in ones))
            if all(ones) and many:
                for c, one in zip(cpus, ones):
                    singles[c].append(one)
                manys.append(many)
                speeds = [one["images_per_s"] for one in ones]
                ratios.append(many["images_per_s"] / max(speeds))
                shares.append(many["images_per_s"] / sum(speeds))
        if ratios:
            ratios.sort()
            shares.sort()
            ceilings.sort()
            per_cpu = " / ".join(f"{median_run(singles[c])['images_per_s']:.2f}" for c in cpus)
            ceiling = f"{ceilings[len(ceilings) // 2]:.2f}×" if ceilings else "—"
            print(f"| {w} {m} {b} | {per_cpu} | {median_run(manys)['images_per_s']:.2f} | "
                  f"{ratios[len(ratios) // 2]:.2f}× | {shares[len(shares) // 2]:.2f} | "
                  f"{ceiling} |")
    print(f"\n(medians over {rounds} round{'s' if rounds > 1 else ''}; each round's speed-ups "
          f"are over its fastest one-thread run)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=5.0, help="timed seconds per case [5]")
    p.add_argument("--threads", type=int, default=1, help="threads on both sides [1]")
    p.add_argument("--filter", help="only the workloads whose name contains this")
    p.add_argument("--heed", default=os.environ.get("HEED_BIN"),
                   help="the heed binary [$HEED_BIN, else build/heed, built if missing]")
    p.add_argument("--peer", default=os.environ.get("HEED_PEER"),
                   help="peer_torch.py [$HEED_PEER, else ../shared/bench/peer_torch.py "
                        "from the repository root]")
    p.add_argument("--python", default="/usr/bin/python3",
                   help="the Python that has torch [/usr/bin/python3]")
    p.add_argument("--interleave", action="store_true",
                   help="alternate heed and PyTorch case by case (fairer on a machine whose "
                        "load drifts) instead of running each side's --all")
    p.add_argument("--rounds", type=int, default=1,
                   help="with --interleave: run each case this many times (heed, PyTorch, "
                        "heed, ...) and report each side's median run; also the darknet "
                        "and one-thread runs [1]")
    p.add_argument("--json", metavar="FILE", help="also write every raw result line to FILE")
    p.add_argument("--darknet", action="store_true",
                   help="also time Debian's darknet (`darknet speed`, one thread) on "
                        "../shared/bench/darknet_resnet18_224.cfg against heed's "
                        "resnet18-plain infer 1, also on one thread")
    p.add_argument("--scaling", action="store_true",
                   help="with --threads above 1: also run heed's ResNet-18 cases on one "
                        "thread, pinned to each CPU in turn, and on --threads (--rounds "
                        "rounds), and print the median speed-up over the fastest CPU")
    args = p.parse_args(argv)
    if args.seconds <= 0 or args.threads < 1 or args.rounds < 1:
        p.error("--seconds, --threads and --rounds must be positive")
    if args.rounds > 1 and not args.interleave:
        p.error("--rounds needs --interleave")

    heed = args.heed
    if not heed:
        heed = os.path.join(REPO, "build", "heed")
        if not os.path.exists(heed):
            subprocess.run(["make", "-s", "-C", REPO, "build/heed"], check=True)
    peer = args.peer or os.path.normpath(os.path.join(REPO, "..", "shared", "bench", "peer_torch.py"))
    if not os.path.exists(peer):
        p.error(f"no peer at {peer} (give --peer or set HEED_PEER)")

    blas, reference = peer_blas(args.python)
    # said before the run (it is long) and again under the table
    reference_warning = ("PyTorch runs on the reference BLAS (libblas3), under which its small "
                         "convolutions are about 5x slower than with OpenBLAS: the ratios "
                         "flatter heed (apt-get install libopenblas-dev, then run this again)")
    if reference:
        print(f"compare.py: {reference_warning}", file=sys.stderr)

    common = ["--seconds", f"{args.seconds:g}", "--threads", str(args.threads)]
    cases = [c for c in MATRIX if not args.filter or args.filter in c[0]]
    heed_rows, torch_rows = {}, {}
    if args.interleave:
        for w, m, b in cases:
            one = ["--workload", w, "--mode", m, "--batch", str(b)] + common
            hs, ts = [], []
            for _ in range(args.rounds):
                hs += list(run_lines([heed, "bench", "--json"] + one, "heed"))
                ts += list(run_lines([args.python, peer] + one, "torch"))
            heed_rows.update({key(r): r for r in [median_run(hs)] if r})
            torch_rows.update({key(r): r for r in [median_run(ts)] if r})
    else:
        heed_cmd = [heed, "bench", "--all", "--json"] + common
        if args.filter:
            heed_cmd += ["--filter", args.filter]
        heed_rows = {key(r): r for r in run_lines(heed_cmd, "heed")}
        if args.filter:  # the peer has no filter: its cases one by one
            for w, m, b in cases:
                cmd = [args.python, peer, "--workload", w, "--mode", m, "--batch", str(b)] + common
                torch_rows.update({key(r): r for r in run_lines(cmd, "torch")})
        else:
            torch_rows = {key(r): r for r in run_lines([args.python, peer, "--all"] + common,
                                                        "torch")}

    if args.json:
        with open(args.json, "w") as f:
            for r in list(heed_rows.values()) + list(torch_rows.values()):
                f.write(json.dumps(r) + "\n")

    any_heed = next(iter(heed_rows.values()), {})
    any_torch = next(iter(torch_rows.values()), {})
    print(f"heed {any_heed.get('heed', '?')} (gemm kernel {any_heed.get('kernel', '?')}) against "
          f"PyTorch {any_torch.get('torch', '?')} on {blas}; {args.threads} thread"
          f"{'' if args.threads == 1 else 's'}, {args.seconds:g} s per case"
          f"{f', median of {args.rounds} runs' if args.rounds > 1 else ''}; {cpu_name()}, "
          f"{os.cpu_count()} logical CPUs")
    print()
    print("| case | heed img/s | PyTorch img/s | ratio | heed ms | torch ms "
          "| heed peak MB | torch peak MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    ratios = []
    for c in cases:
        h, t = heed_rows.get(c), torch_rows.get(c)
        hi = h and h.get("images_per_s")
        ti = t and t.get("images_per_s")
        ratio = hi / ti if hi and ti else None
        if ratio:
            ratios.append(ratio)
        print(f"| {c[0]} {c[1]} {c[2]} | {fmt(hi, 2)} | {fmt(ti, 2)} | "
              f"{fmt(ratio, 2) + '×' if ratio else '—'} | "
              f"{fmt(h and h.get('ms_per_batch'), 2)} | {fmt(t and t.get('ms_per_batch'), 2)} | "
              f"{fmt(h and h.get('peak_rss_mb'), 1)} | {fmt(t and t.get('peak_rss_mb'), 1)} |")
    if ratios:
        geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        print()
        print(f"ratio = heed images/s / PyTorch images/s; geometric mean over "
              f"{len(ratios)} cases: {geo:.2f}×")
    if reference:
        print(f"\nwarning: {reference_warning}")
    if args.darknet:
        darknet_line(heed, peer, args.seconds, args.rounds)
    if args.scaling and args.threads > 1:
        scaling_lines(heed, cases, args.threads, args.seconds, args.rounds)
    missing = len(cases) - len(ratios)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
