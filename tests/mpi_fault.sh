#!/bin/sh
# tests/mpi_fault.sh -- a lost rank ends a distributed run with a clear error within a bounded time:
#   1. rank 1 killed with SIGKILL mid-run: mpirun notices, ends every rank, exits non-zero and names the
#      rank; --resume (2 ranks) then continues from the last checkpoint and finishes with the same losses,
#      bit for bit, as an uninterrupted 2-rank run;
#   2. rank 1 frozen with SIGSTOP (what a hung rank or a lost node looks like to the others): rank 0's
#      collective times out after --mpi-timeout 3 s, names the collective, and aborts the job (status 4);
#   3. rank 0 failing alone (its output folder cannot be created) ends the job instead of leaving rank 1
#      waiting (the exit-status agreement aborts).
# Each mpirun runs under `timeout -k 10 120` (KILL 10 s after TERM): a hang fails the test (status 124
# or 137) instead of blocking it.
set -u
: "${PLASTC:?}" "${top_srcdir:?}" "${top_builddir:?}"
MPIRUN=$(command -v mpirun) || { echo "SKIP: no mpirun"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
tmp=$(mktemp -d "${TMPDIR:-/tmp}/plastc-mpi-fault.XXXXXX") || exit 1
stopped=""
bg=""
cleanup() {
	# neither a job we started nor a rank we froze may outlive the test (`timeout` passes TERM on)
	for p in $bg; do kill -TERM "$p" 2>/dev/null; done
	for p in $stopped; do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }; done; exit 1; }

BIN=$tmp/bin
"$PLASTC" build "$top_srcdir/models/copy/rnn_hebbian.plast" --set hidden=8 -o "$BIN" 2>"$tmp/build.log" \
	|| fail "plastc build"

# the pid of rank R below process TP (timeout, whose child mpirun launches the local ranks itself)
rank_pid() { # TP R
	for c in $(ps -o pid= --ppid "$1"); do
		for p in $(ps -o pid= --ppid "$c"); do
			tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$p"; return; }
		done
	done
}
# waits until FILE has at least N lines with ",train," (at most 60 s)
wait_rows() { # FILE N
	i=0
	while [ $i -lt 1200 ]; do
		[ "$(grep -c ',train,' "$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
		sleep 0.05
		i=$((i + 1))
	done
	return 1
}
now() { date +%s; }

RUN="train --task copy --n 3 --m 4 --batch 8 --val-every 500 --val-trials 16 --test-trials 16 --ckpt-every 500 --seed 1"

# 1. SIGKILL of rank 1
timeout -k 10 120 "$MPIRUN" --oversubscribe -np 2 "$BIN" $RUN --steps 100000000 --out "$tmp/k" --quiet >"$tmp/k.log" 2>&1 &
mp=$!
bg=$mp
wait_rows "$tmp/k/metrics.csv" 1500 || fail "the 2-rank run did not get going"
r1=$(rank_pid $mp 1)
[ -n "$r1" ] || fail "cannot find rank 1 among the children of mpirun $mp"
t0=$(now)
kill -KILL "$r1"
wait $mp
rc=$?
dt=$(($(now) - t0))
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "SIGKILL of rank 1: mpirun exit status $rc"
[ $dt -le 30 ] || fail "SIGKILL of rank 1: the job took $dt s to end"
grep -q "rank 1 .*exited on signal 9" "$tmp/k.log" || fail "SIGKILL of rank 1: no message naming rank 1"
ok "SIGKILL of rank 1 ends the job in ${dt} s (status $rc) naming the rank"

step=$(grep ',train,' "$tmp/k/metrics.csv" | tail -1 | cut -d, -f1)
last=$(( (step / 500) * 500 + 1000 ))
timeout -k 10 120 "$MPIRUN" --oversubscribe -np 2 "$BIN" train --resume "$tmp/k" --steps $last >"$tmp/kr.log" 2>&1 \
	|| fail "resume after the kill"
grep -q "resuming .* at step" "$tmp/kr.log" || fail "resume did not start from the checkpoint"
timeout -k 10 120 "$MPIRUN" --oversubscribe -np 2 "$BIN" $RUN --steps $last --out "$tmp/u" --quiet >"$tmp/u.log" 2>&1 \
	|| fail "uninterrupted 2-rank run"
cut -d, -f1-4 "$tmp/k/metrics.csv" >"$tmp/k.rows"
cut -d, -f1-4 "$tmp/u/metrics.csv" >"$tmp/u.rows"
cmp -s "$tmp/k.rows" "$tmp/u.rows" || fail "killed + resumed rows differ from the uninterrupted run"
"$top_builddir/tests/rt_stcmp" "$tmp/k/checkpoint.safetensors" "$tmp/u/checkpoint.safetensors" >/dev/null \
	|| fail "killed + resumed checkpoint differs from the uninterrupted run"
ok "--resume after the kill (step $step) finishes at step $last identical to an uninterrupted run"

# 2. SIGSTOP of rank 1: only our deadline can end this
timeout -k 10 120 "$MPIRUN" --oversubscribe -np 2 "$BIN" $RUN --steps 100000000 --mpi-timeout 3 --out "$tmp/s" --quiet \
	>"$tmp/s.log" 2>&1 &
mp=$!
bg=$mp
wait_rows "$tmp/s/metrics.csv" 500 || fail "the 2-rank run did not get going"
r1=$(rank_pid $mp 1)
[ -n "$r1" ] || fail "cannot find rank 1 among the children of mpirun $mp"
stopped=$r1
t0=$(now)
kill -STOP "$r1"
wait $mp
rc=$?
dt=$(($(now) - t0))
[ $rc -eq 4 ] || fail "SIGSTOP of rank 1: mpirun exit status $rc, expected 4"
[ $dt -le 30 ] || fail "SIGSTOP of rank 1: the job took $dt s to end"
grep -q "rank 0 of 2: .* did not complete within 3 s (--mpi-timeout)" "$tmp/s.log" \
	|| fail "SIGSTOP of rank 1: no timeout message"
ok "a frozen rank 1 is reported after --mpi-timeout 3 and the job ends in ${dt} s (status 4)"

# 3. rank 0 fails alone: --out under a regular file cannot be created
: >"$tmp/file"
t0=$(now)
timeout -k 10 120 "$MPIRUN" --oversubscribe -np 2 "$BIN" $RUN --steps 10 --out "$tmp/file/run" --quiet >"$tmp/o.log" 2>&1
rc=$?
dt=$(($(now) - t0))
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "rank 0 failing alone: status $rc"
grep -q "cannot create the output folder" "$tmp/o.log" || fail "rank 0 failing alone: no message"
ok "rank 0 failing alone ends the job in ${dt} s (status $rc)"
echo "all $n MPI fault checks passed"
