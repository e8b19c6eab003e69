#!/bin/sh
# tests/compare_real.sh -- `plastc compare` with the real `plastc train` on a tiny grid (a plastic RNN with
# 8 units on a short copy task, 2 variants x 2 seeds, a few steps): every run finishes, the summary
# counts them, a rerun trains nothing, and a grid killed mid-way and resumed gives the same test
# metrics as the uninterrupted grid (the runtime resumes bit for bit). Skipped (exit 77) while this
# plastc has no `train` command.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${PLASTC:=$PWD/plastc}"
case $PLASTC in /*) ;; *) PLASTC=$PWD/$PLASTC ;; esac
unset PLASTC_COMPARE_TRAINER
if ! "$PLASTC" train --help > /dev/null 2>&1; then
	echo "compare_real.sh: SKIP: this plastc has no train command yet"
	exit 77
fi

work=$(mktemp -d /tmp/plastc-compare-real-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
XDG_CACHE_HOME=$work/cache   # the model cache of plastc train, private to this test
export XDG_CACHE_HOME
cat > tiny.plast <<'EOF'
# A plastic vanilla RNN with 8 units for the copying task (input 3, prediction 1).
const hidden = 8
const eta0 = 0.2
rule hebbian = outer(pre, post)
model tiny {
  input     x[3]
  output    y[1]
  modulator m
  plastic rnn cell (x -> hidden) relu
  linear head (cell -> y, m)
  plasticity {
    rule = hebbian
    rate = eta0 * sigmoid(m)
    max_norm = 1
  }
}
EOF
fails=0
check() {
	_desc=$1; shift
	if "$@"; then echo "ok: $_desc"; else echo "FAIL: $_desc"; fails=$((fails + 1)); fi
}
grid() { # out-dir, steps, extra compare args...
	o=$1; s=$2; shift 2
	"$PLASTC" compare tiny.plast --task copy --seeds 2 --steps "$s" --vary eta0=0.1,0.3 --jobs 2 --out "$o" "$@" \
		-- --n 3 --m 2 --batch 8 --val-every 5 --val-trials 32 --test-trials 32
}

grid A 20 > A.out 2> A.err
check "real grid exits 0" test $? -eq 0
check "summary: both variants, n=2" test "$(grep -c '^tiny\.eta0-0\.[13],tiny.plast,0\.[13],2,0,0,' A/summary.csv)" -eq 2
check "every run has a test row" test "$(cat A/*/seed-*/metrics.csv | grep -c ',test,')" -eq 4
check "every run wrote run.json" test "$(ls A/*/seed-*/run.json | wc -l)" -eq 4
check "plots drawn" test -s A/plots/curves.png -a -s A/plots/test.png
grid A 20 > A2.out 2> A2.err
check "rerun exits 0" test $? -eq 0
check "rerun trains nothing" test "$(cat A/*/seed-*/log.txt | grep -c '^# plastc compare: started')" -eq 4

# Interrupt a longer grid after its first finished run, resume it, and compare with an uninterrupted one.
grid U 400 --no-plot > U.out 2> U.err
check "uninterrupted grid exits 0" test $? -eq 0
# One run at a time, so that the kill lands in a run that has checkpointed past step 0 while another
# run has already finished.
(exec "$PLASTC" compare tiny.plast --task copy --seeds 2 --steps 400 --vary eta0=0.1,0.3 --jobs 1 --out R --no-plot \
	-- --n 3 --m 2 --batch 8 --val-every 5 --val-trials 32 --test-trials 32 > R1.out 2> R1.err) &
pid=$!
mid_run() { # a finished run, and an unfinished one whose metrics.csv has reached a validation at step >= 10
	[ "$(ls R/*/seed-*/done 2>/dev/null | wc -l)" -ge 1 ] || return 1
	for d in R/*/seed-*; do
		[ -e "$d/done" ] && continue
		[ -f "$d/metrics.csv" ] && grep -q '^[1-9][0-9]*0,val,' "$d/metrics.csv" && return 0
	done
	return 1
}
i=0
while ! mid_run && [ $i -lt 1200 ]; do sleep 0.02; i=$((i + 1)); done
kill -TERM $pid 2> /dev/null
wait $pid
check "the grid was interrupted (exit 143)" test $? -eq 143
grid R 400 --no-plot > R2.out 2> R2.err
check "resumed grid exits 0" test $? -eq 0
check "an interrupted run was continued with --resume" sh -c "grep -q '^# plastc compare: resumed' R/*/seed-*/log.txt"
check "finished runs were not rerun" test "$(cat R/*/seed-*/log.txt | grep -c '^# plastc compare: started')" -eq 4
# Everything but the wall time (last column) must match.
cut -d, -f1-14 U/summary.csv > U.cut
cut -d, -f1-14 R/summary.csv > R.cut
check "interrupted + resumed summary equals the uninterrupted one (but wall time)" cmp -s U.cut R.cut
check "pairs equal" cmp -s U/pairs.csv R/pairs.csv

if [ $fails -ne 0 ]; then
	echo "compare_real.sh: $fails check(s) failed"
	for f in A.err U.err R1.err R2.err; do [ -f $f ] && { echo "--- $f"; cat $f; }; done
	for f in A/*/seed-0/log.txt; do echo "--- $f"; tail -5 "$f"; done
	exit 1
fi
echo "compare_real.sh: all checks passed"
