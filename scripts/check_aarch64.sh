#!/bin/sh
# check_aarch64.sh -- builds heed and its test suite for 64-bit ARM with
# Debian's cross compiler, and runs the quick part of the suite under
# qemu: from an x86-64 machine, that the code an ARM board compiles (the
# portable matrix-product kernel, in NEON through GCC's vector extension,
# and no x86 path) builds cleanly and computes what the tests expect.
#
# Needs (as root, once):
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install gcc-aarch64-linux-gnu qemu-user \
#       libpng-dev:arm64 libjpeg62-turbo-dev:arm64 zlib1g-dev:arm64 check:arm64
#
# Usage: scripts/check_aarch64.sh [SUITE...]
# Builds the library, the heed command and the suite in build/aarch64 (the
# compile alone is the portability check: no x86 code outside its guards,
# no warning), then runs SUITEs under qemu, one thread, each test in the
# same process (CK_FORK=no: a forked test under qemu-user hangs). qemu
# emulates the floating point slowly: the default suites are those that
# finish in about a second each there (the portable matrix product among
# them, through Grad-CAM's and the models' networks); the others take from
# minutes to hours, so run those on an ARM machine with make check.
set -eu
cd "$(dirname "$0")/.."
pc=/usr/lib/aarch64-linux-gnu/pkgconfig
PKG_CONFIG_PATH=$pc PKG_CONFIG_LIBDIR=$pc \
    make -j2 CC=aarch64-linux-gnu-gcc BUILD=build/aarch64 build/aarch64/check_heed build/aarch64/heed
[ $# -gt 0 ] || set -- balance evaluate gradcam image_orient linear loss model model_input params schedule tensor
QEMU_LD_PREFIX=/usr/aarch64-linux-gnu CK_FORK=no OMP_NUM_THREADS=1 \
    qemu-aarch64 build/aarch64/check_heed "$@"
