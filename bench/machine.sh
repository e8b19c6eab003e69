#!/bin/sh
# bench/machine.sh -- this machine's limits for the roofline: DRAM bandwidth (triad.c, 1 and 2 threads)
# and OpenBLAS sgemm GFLOP/s with M = 64 (sgemm.c, 1 and 2 threads), and in-cache bandwidth by working-set
# size (cachebw.c, 1 and 2 threads). Builds them into $BUILD (a temp dir).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-$(mktemp -d "${TMPDIR:-/tmp}/plastc-machine.XXXXXX")}
CC=${CC:-gcc}
flags="-O3 -march=native -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra"
# shellcheck disable=SC2086
$CC $flags -fopenmp-simd -pthread "$here/triad.c" -o "$BUILD/triad"
# shellcheck disable=SC2086
$CC $flags -pthread "$here/cachebw.c" -o "$BUILD/cachebw"
# shellcheck disable=SC2046,SC2086
$CC $flags $(pkg-config --cflags openblas) "$here/sgemm.c" -o "$BUILD/sgemm" $(pkg-config --libs openblas)
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//') x $(nproc)"
echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
"$BUILD/triad" 1 2
OPENBLAS_NUM_THREADS=2 "$BUILD/sgemm" 1 2
"$BUILD/cachebw" 1
"$BUILD/cachebw" 2
