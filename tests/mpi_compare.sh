#!/bin/sh
# tests/mpi_compare.sh -- `mpirun -np 2 plastc compare` (built --with-mpi):
#   1. a grid with the stand-in trainer (tests/fake_trainer.sh): the 2-rank summary files equal the
#      1-rank ones byte for byte, and both ranks ran runs (their log.txt headers name the rank);
#   2. the same grid with rank 1 killed by SIGKILL mid-way: the job ends promptly, and rerunning the same
#      command over 2 ranks keeps the finished runs, resumes the others and gives the same summary;
#   3. a real grid (plastc train on a small model) over 2 ranks: the same test metrics and summary as
#      over 1 rank (wall times aside).
# Every mpirun runs under `timeout`, so a hang fails the test instead of blocking it.
set -u
: "${PLASTC:?}" "${top_srcdir:?}"
MPIRUN=$(command -v mpirun) || { echo "SKIP: no mpirun"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
mpi() { np=$1; shift; timeout -k 10 120 "$MPIRUN" --oversubscribe -np "$np" "$@"; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/plastc-mpi-compare.XXXXXX") || exit 1
bg=""
cleanup() { for p in $bg; do kill -TERM "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
cd "$tmp" || exit 1
export XDG_CACHE_HOME=$tmp/cache
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done; exit 1; }
same() { # DIR1 DIR2: the summary files are equal
	for f in summary.csv pairs.csv summary.md; do cmp -s "$1/$f" "$2/$f" || return 1; done
}

# ---- 1. stand-in trainer ----
: >rnn_hebbian.plast
grid() { # DIR, more flags
	o=$1; shift
	PLASTC_COMPARE_TRAINER="$top_srcdir/tests/fake_trainer.sh" "$PLASTC" compare rnn_hebbian.plast --task cue_reward \
		--seeds 3 --steps 100 --vary eta0=0.1,0.4 --jobs 1 --no-plot --out "$o" "$@"
}
grid A >A.log 2>&1 || fail "1 rank"
PLASTC_COMPARE_TRAINER="$top_srcdir/tests/fake_trainer.sh" mpi 2 "$PLASTC" compare rnn_hebbian.plast \
	--task cue_reward --seeds 3 --steps 100 --vary eta0=0.1,0.4 --jobs 1 --no-plot --out B >B.log 2>&1 || fail "2 ranks"
same A B || fail "2-rank summary differs from 1 rank"
grep -q "compare over 2 MPI ranks" B.log || fail "no 2-rank line"
[ "$(cat B/*/seed-*/log.txt | grep -c 'on MPI rank 1 of 2')" -ge 1 ] || fail "rank 1 ran nothing"
[ "$(cat B/*/seed-*/log.txt | grep -c 'on MPI rank 0 of 2')" -ge 1 ] || fail "rank 0 ran nothing"
[ "$(cat B/*/seed-*/invocations.txt | grep -c fresh)" -eq 6 ] || fail "not exactly one run per (variant, seed)"
ok "2-rank compare: same summary as 1 rank, runs on both ranks, each run once"

# ---- 2. a rank killed mid-grid, then the same command again ----
export FAKE_TRAINER_SLEEP=0.3
PLASTC_COMPARE_TRAINER="$top_srcdir/tests/fake_trainer.sh" timeout -k 10 120 "$MPIRUN" --oversubscribe -np 2 "$PLASTC" \
	compare rnn_hebbian.plast --task cue_reward --seeds 3 --steps 100 --vary eta0=0.1,0.4 --jobs 1 --no-plot \
	--out K >K1.log 2>&1 &
tp=$!
bg=$tp
i=0
while [ $i -lt 600 ] && [ "$(cat K/*/seed-*/done 2>/dev/null | wc -l)" -lt 2 ]; do sleep 0.05; i=$((i + 1)); done
[ "$(cat K/*/seed-*/done 2>/dev/null | wc -l)" -ge 2 ] || fail "the grid did not finish 2 runs"
r1=""
for c in $(ps -o pid= --ppid $tp); do
	for p in $(ps -o pid= --ppid "$c"); do
		tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && r1=$p
	done
done
[ -n "$r1" ] || fail "cannot find rank 1"
t0=$(date +%s)
kill -KILL "$r1"
wait $tp
rc=$?
dt=$(($(date +%s) - t0))
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $dt -le 30 ] || fail "killed rank: status $rc after $dt s"
finished=$(cat K/*/seed-*/done 2>/dev/null | wc -l)
[ "$finished" -lt 6 ] || fail "the grid finished before the kill"
unset FAKE_TRAINER_SLEEP
PLASTC_COMPARE_TRAINER="$top_srcdir/tests/fake_trainer.sh" mpi 2 "$PLASTC" compare rnn_hebbian.plast \
	--task cue_reward --seeds 3 --steps 100 --vary eta0=0.1,0.4 --jobs 1 --no-plot --out K >K2.log 2>&1 \
	|| fail "rerun after the kill"
grep -q "($finished skipped" K2.log || fail "the rerun did not skip the $finished finished runs"
same A K || fail "summary after kill + rerun differs"
ok "rank 1 killed mid-grid: job ended in ${dt} s; the rerun kept $finished finished runs and gives the same summary"

# ---- 3. real runs ----
M="$top_srcdir/models/copy/rnn_hebbian.plast"
real() { # DIR
	o=$1; shift
	"$@" "$PLASTC" compare "$M" --set hidden=8 --task copy --seeds 2 --steps 20 --vary eta0=0.1,0.2 --jobs 1 \
		--no-plot --out "$o" -- --n 3 --m 4 --batch 8 --val-every 10 --val-trials 16 --test-trials 16
}
real R1 >R1.log 2>&1 || fail "real grid, 1 rank"
real R2 mpi 2 >R2.log 2>&1 || fail "real grid, 2 ranks"
cut -d, -f1-14 R1/summary.csv >R1.cut
cut -d, -f1-14 R2/summary.csv >R2.cut
cmp -s R1.cut R2.cut || fail "real grid: summary.csv differs (beyond wall times)"
cmp -s R1/pairs.csv R2/pairs.csv || fail "real grid: pairs.csv differs"
for d in R1/*/seed-*; do
	grep ',test,' "$d/metrics.csv" | cut -d, -f1-4 >a.rows
	grep ',test,' "R2/${d#R1/}/metrics.csv" | cut -d, -f1-4 >b.rows
	cmp -s a.rows b.rows || fail "real grid: test row of $d differs"
done
ok "real grid over 2 ranks: same test rows, summary and pairs as over 1 rank"
echo "all $n MPI compare checks passed"
