#!/bin/sh
# sgemm_compare.sh -- heed_gemm against OpenBLAS's cblas_sgemm, and both
# against the machine's measured FMA peak.
#
#   bench/sgemm_compare.sh            # from the repository root (or anywhere)
#   REPEAT=5 SECONDS_PER_RUN=2 bench/sgemm_compare.sh
#
# Builds build/heed and ../shared/bench/sgemm_openblas.c (needs
# libopenblas-dev), then measures, at 1 thread and at all threads:
#   square  M=N=K=1024
#   im2col  M=64 N=3136 K=576 (resnet18's 3x3 conv at 56x56x64)
# Each figure is the median of REPEAT runs, each itself a median over calls.
# The peak is `heed bench --peak` (1 thread / all threads), the same loop as
# shared/bench/peak.c, measured again right before each of heed's runs: the
# machine is shared and its speed drifts by a tenth or more within minutes,
# so "% of peak" is the median of each run over the peak beside it (one peak
# for the whole script read 86% and 96% of the same code in two runs).
set -eu

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SHARED=${SHARED:-../shared}
REPEAT=${REPEAT:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-1}
NALL=$(nproc)

make -s BUILD="$BUILD" "$BUILD/heed"
mkdir -p "$BUILD/bench"
cc -O2 -march=native "$SHARED/bench/sgemm_openblas.c" -o "$BUILD/bench/sgemm_openblas" \
    -I/usr/include/x86_64-linux-gnu/openblas-pthread -lopenblas

# field NAME: the number after "NAME": or NAME= on stdin's first match.
field() { sed -n "s/.*[\"]*$1[\"]*[=:] *\([0-9.]*\).*/\1/p" | head -n 1; }
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

kernel=$("$BUILD/heed" bench gemm 8 8 8 --seconds 0.01 --json |
    sed -n 's/.*"kernel": "\([a-z0-9]*\)".*/\1/p')

# The peak for THREADS (1, or all) right now.
peak_now() {
    if [ "$1" = 1 ]; then "$BUILD/heed" bench --peak --json | field peak_1t_gflops
    else "$BUILD/heed" bench --peak --json | field peak_all_gflops; fi
}

# REPEAT lines "GFLOPS PERCENT_OF_PEAK PEAK" for M N K THREADS.
heed_runs() {
    i=0
    while [ "$i" -lt "$REPEAT" ]; do
        p=$(peak_now "$4")
        g=$("$BUILD/heed" bench gemm "$1" "$2" "$3" --threads "$4" --seconds "$SECONDS_PER_RUN" \
            --json | field gflops)
        echo "$g $p" | awk '{print $1, 100 * $1 / $2, $2}'
        i=$((i + 1))
    done
}

echo "measuring OpenBLAS..."
blas=$(i=0; while [ "$i" -lt "$REPEAT" ]; do
    "$BUILD/bench/sgemm_openblas" "$SECONDS_PER_RUN"
    i=$((i + 1))
done)
blas_gflops() { # SHAPE THREADS
    echo "$blas" | grep "shape=$1 " | grep "threads=$2 " | field gflops_median | median
}

echo "measuring heed (kernel $kernel), each run beside a fresh peak..."
printf '\n%-8s %-16s %7s %12s %16s %14s %12s\n' shape MxNxK threads "heed GF/s" "OpenBLAS GF/s" \
    "heed % peak" "peak GF/s"
for t in 1 "$NALL"; do
    for s in "square 1024 1024 1024" "im2col 64 3136 576"; do
        set -- $s
        runs=$(heed_runs "$2" "$3" "$4" "$t")
        h=$(echo "$runs" | awk '{print $1}' | median)
        pct=$(echo "$runs" | awk '{print $2}' | median)
        pk=$(echo "$runs" | awk '{print $3}' | median)
        b=$(blas_gflops "$1" "$t")
        printf '%-8s %-16s %7s %12.1f %16.1f %13.1f%% %12.1f\n' "$1" "$2x$3x$4" "$t" "$h" "$b" \
            "$pct" "$pk"
    done
    [ "$NALL" -gt 1 ] || break
done
printf '\n%% of peak: the median over runs of heed / the peak (heed bench --peak) measured\n'
printf 'just before that run; peak GF/s: the median of those peaks.\n'
