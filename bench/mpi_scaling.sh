#!/bin/sh
# bench/mpi_scaling.sh -- data-parallel scaling of meta-training over MPI ranks on this machine, and the
# cost of the gradient sum, all measured in one invocation (docs/SCALING.md quotes its output).
#
#   PLASTC=./plastc sh $SRC/bench/mpi_scaling.sh [-s STEPS] [-b BATCH] [-n MAXRANKS] [MODEL.plast ...]
#     -s  training steps timed per configuration (20; plus 2 untimed warm-up steps)
#     -b  batch size (64)   -n  largest number of ranks (2)
#   default models: models/cue_reward/rnn_hebbian.plast and models/cue_reward/rnn_gradient.plast
#   (H = 256), each trained on the task of its folder.
# Needs plastc built --with-mpi, mpirun and mpicc (exit 77 without them). Run it from the build directory.
#
# Per model and configuration it trains the same run (same seed, same data) and reads the time per step
# from the `seconds` column of metrics.csv between the 2nd and the last train row (start-up, compilation
# and validation excluded): 1 rank with 1 thread; 1 rank with --threads N; N ranks with 1 thread each
# (OpenBLAS on one thread everywhere, so the cores are not oversubscribed); 1 rank at batch/N for
# N = 2..64 (what each of N ranks computes, measured where there are not N cores). Then mpi_allreduce times
# MPI_Allreduce and the runtime's deterministic sum of a gradient of the model's size over N ranks.
# Every line carries the 1-minute load average read just after it: the machine may be shared.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
PLASTC=${PLASTC:-./plastc}
steps=20 batch=64 maxn=2
while getopts s:b:n: opt; do
	case $opt in
	s) steps=$OPTARG ;;
	b) batch=$OPTARG ;;
	n) maxn=$OPTARG ;;
	*) sed -n '2,10p' "$0"; exit 1 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- "$src/models/cue_reward/rnn_hebbian.plast" "$src/models/cue_reward/rnn_gradient.plast"
command -v mpirun >/dev/null && command -v mpicc >/dev/null || { echo "needs mpirun and mpicc" >&2; exit 77; }
# CI and containers run as root; the shared-memory transport's single-copy mode needs ptrace rights
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OPENBLAS_NUM_THREADS=1
builddir=$(cd "$(dirname "$PLASTC")" && pwd)
[ -f "$builddir/runtime/libplastrt_mpi.a" ] || { echo "$builddir: plastc was not built --with-mpi" >&2; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/plastc-mpi-scaling.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME=$tmp/cache
# every mpirun is bounded: a stuck rank ends the benchmark instead of hanging it
mpi() { np=$1; shift; timeout 600 mpirun --oversubscribe -np "$np" "$@"; }
load() { cut -d' ' -f1 /proc/loadavg; }

# ms per step from metrics.csv: train rows 3..last (the first two are warm-up)
ms_per_step() {
	awk -F, -v s="$steps" '$2 == "train" { n++; if (n == 2) t0 = $5; t1 = $5 } END { printf "%.1f", (t1 - t0) / s * 1000 }' "$1"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# the gradient-sum benchmark, linked as plastc links a per-model binary (config.h has the libraries)
libs=$(sed -n 's/^#define PLASTC_\(IMAGE\|MPI\)_LIBS "\(.*\)"$/\2/p' "$builddir/config.h" | tr '\n' ' ')
mpicc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -I"$src/runtime" -o "$tmp/mpi_allreduce" "$here/mpi_allreduce.c" \
	"$builddir/runtime/libplastrt_mpi.a" $libs $(pkg-config --libs openblas jansson) -lz -lm -lpthread

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; $(mpirun --version | head -1)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "batch $batch (global: split over the ranks), $steps timed steps, OPENBLAS_NUM_THREADS=1"
for model in "$@"; do
	task=$(basename "$(dirname "$model")")
	case $task in
	regression_linear) topt="--task regression --fn linear" ;;
	regression_mlp) topt="--task regression --fn mlp" ;;
	*) topt="--task $task" ;;
	esac
	params=$("$PLASTC" dump "$model" --stage params | awk '$1 == "total" { print $2 }')
	"$PLASTC" build "$model" -o "$tmp/bin" 2>"$tmp/build.log" || { cat "$tmp/build.log" >&2; exit 1; }
	RUN="train $topt --steps $((steps + 2)) --batch $batch --val-every 100000 --val-trials $batch --test-trials 0 --quiet --seed 1"
	echo
	echo "model: ${model#"$src"/} ($params parameters, gradient $((params * 4)) bytes), $topt"
	"$tmp/bin" $RUN --out "$tmp/r1" >/dev/null
	t1=$(ms_per_step "$tmp/r1/metrics.csv")
	printf '  %-24s %8s ms/step  speed-up 1.00  (load %s)\n' "1 rank, 1 thread" "$t1" "$(load)"
	n=2
	while [ $n -le "$maxn" ]; do
		"$tmp/bin" $RUN --threads $n --out "$tmp/t$n" >/dev/null
		tt=$(ms_per_step "$tmp/t$n/metrics.csv")
		printf '  %-24s %8s ms/step  speed-up %s  (load %s)\n' "1 rank, $n threads" "$tt" "$(ratio "$t1" "$tt")" "$(load)"
		mpi $n "$tmp/bin" $RUN --out "$tmp/m$n" >/dev/null
		tm=$(ms_per_step "$tmp/m$n/metrics.csv")
		printf '  %-24s %8s ms/step  speed-up %s  (load %s)\n' "$n ranks, 1 thread each" "$tm" "$(ratio "$t1" "$tm")" "$(load)"
		n=$((n + 1))
	done
	# the compute of one rank of N: 1 rank on its share batch/N of the global batch (the per-step work
	# that does not shrink with the rows -- optimiser, small GEMMs -- shows as the excess over t1/N)
	for n in 2 4 8 16 32 64; do
		[ $((batch % n)) -eq 0 ] || continue
		b=$((batch / n))
		"$tmp/bin" $RUN --batch $b --out "$tmp/b$n" >/dev/null
		tb=$(ms_per_step "$tmp/b$n/metrics.csv")
		printf '  %-24s %8s ms/step  t1/N %6.1f  (load %s)\n' "1 rank, batch $b (1/$n)" "$tb" \
			"$(awk -v a="$t1" -v n=$n 'BEGIN { print a / n }')" "$(load)"
	done
	n=2
	while [ $n -le "$maxn" ]; do
		mpi $n "$tmp/mpi_allreduce" "$params" 200 | sed 's/^/  /'
		n=$((n + 1))
	done
	rm -rf "$tmp"/r1 "$tmp"/t[0-9]* "$tmp"/m[0-9]* "$tmp"/b[0-9]*
done
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
