#!/bin/sh
# tests/mpi_train.sh -- data-parallel training over MPI ranks (built --with-mpi), on loopback:
#   grad: 2 and 3 ranks (uneven row split) give the 1-rank gradients within float tolerance, and the same
#         bits on a repeat (the fixed-order sum over ranks is deterministic); N ranks give exactly the bits
#         of 1 rank with --threads N (the same row blocks summed in the same order);
#   train: 2 ranks reproduce the 1-rank losses (train, val, test rows) and final parameters within float
#         tolerance; only rank 0 writes (no duplicated rows); 2 ranks twice give identical checkpoints;
#   resume: a 2-rank run resumed with 1 rank, and a 1-rank run resumed with 2 ranks, match the
#         uninterrupted 1-rank run within tolerance (a checkpoint does not depend on the ranks);
#   eval: 2 ranks print the 1-rank result;
#   plastc train under mpirun execs the cached binary in each rank and matches the binary's run.
#   batch norm: a oneshot model's running statistics over 2 ranks equal 1 rank with --threads 2, bit for bit.
# Every mpirun runs under `timeout`, so a hang fails the test instead of blocking it.
set -u
: "${PLASTC:?}" "${top_srcdir:?}" "${top_builddir:?}"
TOOL=$top_builddir/tests/mpi_tool
MPIRUN=$(command -v mpirun) || { echo "SKIP: no mpirun"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
mpi() { np=$1; shift; timeout -k 10 120 "$MPIRUN" --oversubscribe -np "$np" "$@"; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/plastc-mpi-train.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
export XDG_CACHE_HOME=$tmp/cache
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done; exit 1; }

M="$top_srcdir/models/copy/rnn_hebbian.plast"
BIN=$tmp/bin
"$PLASTC" build "$M" --set hidden=8 -o "$BIN" 2>"$tmp/build.log" || fail "plastc build"

# ---- grad ----
"$TOOL" batch "$tmp/batch.st" 3 4 9 7 || fail "batch file"
"$BIN" init --seed 5 -o "$tmp/p.st" || fail "init"
"$BIN" grad --params "$tmp/p.st" --batch "$tmp/batch.st" -o "$tmp/g1.st" 2>"$tmp/g1.log" || fail "grad, 1 rank"
mpi 2 "$BIN" grad --params "$tmp/p.st" --batch "$tmp/batch.st" -o "$tmp/g2.st" >"$tmp/g2.log" 2>&1 \
	|| fail "grad, 2 ranks"
"$TOOL" close "$tmp/g2.st" "$tmp/g1.st" 1e-5 1e-7 >"$tmp/close.log" || fail "2-rank gradients differ: $(cat "$tmp/close.log")"
mpi 3 "$BIN" grad --params "$tmp/p.st" --batch "$tmp/batch.st" -o "$tmp/g3.st" >"$tmp/g3.log" 2>&1 \
	|| fail "grad, 3 ranks"
"$TOOL" close "$tmp/g3.st" "$tmp/g1.st" 1e-5 1e-7 >"$tmp/close.log" || fail "3-rank gradients differ: $(cat "$tmp/close.log")"
mpi 3 "$BIN" grad --params "$tmp/p.st" --batch "$tmp/batch.st" -o "$tmp/g3b.st" >"$tmp/g3b.log" 2>&1 \
	|| fail "grad, 3 ranks again"
"$top_builddir/tests/rt_stcmp" "$tmp/g3.st" "$tmp/g3b.st" >/dev/null || fail "3 ranks twice: not bit-identical"
"$BIN" grad --params "$tmp/p.st" --batch "$tmp/batch.st" -o "$tmp/g3t.st" --threads 3 2>"$tmp/g3t.log" \
	|| fail "grad, 3 threads"
"$top_builddir/tests/rt_stcmp" "$tmp/g3.st" "$tmp/g3t.st" >/dev/null || fail "3 ranks and 3 threads: not bit-identical"
ok "grad: 2 and 3 ranks (9 rows: 4+5, 3+3+3) match 1 rank; repeat and --threads 3 are bit-identical"

# a batch too small for the ranks is a clear error
"$TOOL" batch "$tmp/tiny.st" 3 4 1 7 || fail "tiny batch file"
mpi 2 "$BIN" grad --params "$tmp/p.st" --batch "$tmp/tiny.st" -o "$tmp/gt.st" >"$tmp/gt.log" 2>&1 \
	&& fail "1 trial over 2 ranks accepted"
grep -q "cannot be split over 2 MPI ranks" "$tmp/gt.log" || fail "no message for 1 trial over 2 ranks"
ok "grad: 1 trial over 2 ranks is refused with a message"

# ---- train ----
RUN="train --task copy --n 3 --m 4 --steps 20 --batch 9 --val-every 10 --val-trials 27 --test-trials 27 --seed 2"
"$BIN" $RUN --out "$tmp/t1" >"$tmp/t1.log" 2>&1 || fail "train, 1 rank"
mpi 2 "$BIN" $RUN --out "$tmp/t2" >"$tmp/t2.log" 2>&1 || fail "train, 2 ranks"
# every row of metrics.csv: same step and split, loss within 1e-5 relative
cmp_metrics() { # A B
	[ "$(wc -l <"$1")" -eq "$(wc -l <"$2")" ] || return 1
	paste -d, "$1" "$2" | awk -F, 'NR > 1 { if ($1 != $6 || $2 != $7) exit 1;
		d = $3 - $8; if (d < 0) d = -d; a = $8 < 0 ? -$8 : $8; if (d > 1e-5 * a + 1e-7) { print "row " NR ": " $3 " vs " $8; exit 1 } }'
}
cmp_metrics "$tmp/t2/metrics.csv" "$tmp/t1/metrics.csv" || fail "2-rank losses differ from 1 rank"
[ "$(grep -c ',train,' "$tmp/t2/metrics.csv")" -eq 20 ] || fail "2 ranks: not exactly 20 train rows (did more than rank 0 write?)"
[ "$(grep -c 'done:' "$tmp/t2.log")" -eq 1 ] || fail "2 ranks: not exactly one summary line"
grep -q '"mpi_ranks": 2' "$tmp/t2/run.json" || fail "run.json does not record the ranks"
grep -q 'per rank, 2 MPI ranks' "$tmp/t2.log" || fail "no ranks in the banner"
"$TOOL" close "$tmp/t2/checkpoint.safetensors" "$tmp/t1/checkpoint.safetensors" 1e-4 1e-6 >"$tmp/close.log" \
	|| fail "2-rank final checkpoint differs: $(cat "$tmp/close.log")"
mpi 2 "$BIN" $RUN --out "$tmp/t2b" >"$tmp/t2b.log" 2>&1 || fail "train, 2 ranks again"
"$top_builddir/tests/rt_stcmp" "$tmp/t2/checkpoint.safetensors" "$tmp/t2b/checkpoint.safetensors" >/dev/null \
	|| fail "2 ranks twice: checkpoints not bit-identical"
"$BIN" $RUN --threads 2 --out "$tmp/t1t" >"$tmp/t1t.log" 2>&1 || fail "train, 1 rank, 2 threads"
"$top_builddir/tests/rt_stcmp" "$tmp/t2/checkpoint.safetensors" "$tmp/t1t/checkpoint.safetensors" >/dev/null \
	|| fail "2 ranks and 2 threads: checkpoints not bit-identical"
ok "train: 2 ranks reproduce the 1-rank losses and parameters; rank 0 alone writes; bit-identical to a repeat and to --threads 2"

# ---- resume with another number of ranks ----
HALF=$(echo "$RUN" | sed 's/--steps 20/--steps 10/')
mpi 2 "$BIN" $HALF --out "$tmp/r21" >"$tmp/r21a.log" 2>&1 || fail "train 10 steps, 2 ranks"
"$BIN" train --resume "$tmp/r21" --steps 20 >"$tmp/r21b.log" 2>&1 || fail "resume with 1 rank"
cmp_metrics "$tmp/r21/metrics.csv" "$tmp/t1/metrics.csv" || fail "2 ranks then 1: losses differ"
"$BIN" $HALF --out "$tmp/r12" >"$tmp/r12a.log" 2>&1 || fail "train 10 steps, 1 rank"
mpi 2 "$BIN" train --resume "$tmp/r12" --steps 20 >"$tmp/r12b.log" 2>&1 || fail "resume with 2 ranks"
cmp_metrics "$tmp/r12/metrics.csv" "$tmp/t1/metrics.csv" || fail "1 rank then 2: losses differ"
"$TOOL" close "$tmp/r12/checkpoint.safetensors" "$tmp/t1/checkpoint.safetensors" 1e-4 1e-6 >"$tmp/close.log" \
	|| fail "1 rank then 2: checkpoint differs: $(cat "$tmp/close.log")"
ok "resume: 2 ranks -> 1 and 1 -> 2 continue the run"

# ---- eval ----
"$BIN" eval --checkpoint "$tmp/t1/best.safetensors" --task copy --n 3 --m 4 --trials 30 --batch 10 \
	>"$tmp/e1.log" 2>&1 || fail "eval, 1 rank"
mpi 2 "$BIN" eval --checkpoint "$tmp/t1/best.safetensors" --task copy --n 3 --m 4 --trials 30 --batch 10 \
	>"$tmp/e2.log" 2>&1 || fail "eval, 2 ranks"
[ "$(grep -c 'eval:' "$tmp/e2.log")" -eq 1 ] || fail "eval, 2 ranks: not one result line"
v1=$(sed -n 's/.*MSE \([0-9.e+-]*\).*/\1/p' "$tmp/e1.log")
v2=$(sed -n 's/.*MSE \([0-9.e+-]*\).*/\1/p' "$tmp/e2.log")
awk -v a="$v1" -v b="$v2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= 1e-5 * a + 1e-7) }' \
	|| fail "eval: 1 rank $v1, 2 ranks $v2"
ok "eval: 2 ranks print the 1-rank MSE ($v1)"

# ---- plastc train under mpirun ----
mpi 2 "$PLASTC" train "$M" --set hidden=8 ${RUN#train } --out "$tmp/p2" >"$tmp/p2.log" 2>&1 || fail "mpirun plastc train"
cmp_metrics "$tmp/p2/metrics.csv" "$tmp/t2/metrics.csv" || fail "mpirun plastc train: losses differ from the binary's"
grep -q 'per rank, 2 MPI ranks' "$tmp/p2.log" || fail "mpirun plastc train did not run as 2 ranks"
ok "mpirun -np 2 plastc train execs the model binary in each rank"
# ---- batch norm's running statistics over ranks (oneshot model; needs Fashion-MNIST) ----
DATA=${PLASTC_ONESHOT_DIR:-/usr/share/datasets/fashion-mnist}
if [ -f "$DATA/train-images-idx3-ubyte.gz" ]; then
	"$PLASTC" build "$top_srcdir/models/oneshot/rnn_hebbian.plast" --set hidden=8 --set filters=4 -o "$tmp/os" \
		2>"$tmp/osb.log" || fail "plastc build oneshot"
	OS="train --task oneshot --task-opt dir=$DATA --steps 3 --batch 6 --val-every 3 --val-trials 12 --test-trials 12 --seed 3"
	"$tmp/os" $OS --threads 2 --out "$tmp/os1" >"$tmp/os1.log" 2>&1 || fail "oneshot train, 1 rank, 2 threads"
	mpi 2 "$tmp/os" $OS --out "$tmp/os2" >"$tmp/os2.log" 2>&1 || fail "oneshot train, 2 ranks"
	"$top_builddir/tests/rt_stcmp" "$tmp/os1/checkpoint.safetensors" "$tmp/os2/checkpoint.safetensors" >/dev/null \
		|| fail "oneshot: 2 ranks and 2 threads: checkpoints (running statistics included) not bit-identical"
	ok "batch norm: 2 ranks fold the same running statistics as 1 rank with --threads 2 (bit-identical checkpoints)"
else
	echo "# no Fashion-MNIST in $DATA: batch-norm check over ranks skipped"
fi
echo "all $n MPI training checks passed"
