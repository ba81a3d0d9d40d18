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
# shared/bench/peak.c. The machine is shared: run it when it is quiet.
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

echo "measuring the FMA peak..."
peak=$("$BUILD/heed" bench --peak --json)
peak1=$(echo "$peak" | field peak_1t_gflops)
peakall=$(echo "$peak" | field peak_all_gflops)
kernel=$(echo "$peak" | sed -n 's/.*"kernel": "\([a-z0-9]*\)".*/\1/p')

heed_gflops() { # M N K THREADS
    i=0
    while [ "$i" -lt "$REPEAT" ]; do
        "$BUILD/heed" bench gemm "$1" "$2" "$3" --threads "$4" --seconds "$SECONDS_PER_RUN" --json |
            field gflops
        i=$((i + 1))
    done | median
}

echo "measuring OpenBLAS..."
blas=$(i=0; while [ "$i" -lt "$REPEAT" ]; do
    "$BUILD/bench/sgemm_openblas" "$SECONDS_PER_RUN"
    i=$((i + 1))
done)
blas_gflops() { # SHAPE THREADS
    echo "$blas" | grep "shape=$1 " | grep "threads=$2 " | field gflops_median | median
}

echo "measuring heed (kernel $kernel)..."
printf '\n%-8s %-16s %7s %12s %16s %14s\n' shape MxNxK threads "heed GF/s" "OpenBLAS GF/s" "heed % peak"
for t in 1 "$NALL"; do
    if [ "$t" = 1 ]; then p=$peak1; else p=$peakall; fi
    for s in "square 1024 1024 1024" "im2col 64 3136 576"; do
        set -- $s
        h=$(heed_gflops "$2" "$3" "$4" "$t")
        b=$(blas_gflops "$1" "$t")
        printf '%-8s %-16s %7s %12.1f %16.1f %13.1f%%\n' "$1" "$2x$3x$4" "$t" "$h" "$b" \
            "$(echo "$h $p" | awk '{print 100 * $1 / $2}')"
    done
    [ "$NALL" -gt 1 ] || break
done
printf '\npeak (heed bench --peak): 1 thread %s GFLOP/s, %s threads %s GFLOP/s\n' "$peak1" "$NALL" "$peakall"
