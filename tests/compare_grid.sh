#!/bin/sh
# tests/compare_grid.sh -- `plastc compare` and `plastc plot` end to end on a tiny grid, with
# tests/fake_trainer.sh standing in for `plastc train` (PLASTC_COMPARE_TRAINER):
#   1. --dry-run lists every run and writes nothing;
#   2. a full grid (2 variants × 3 seeds): summary files, one trainer invocation per run, plots;
#   3. the same grid killed mid-way and rerun: finished runs are not rerun, interrupted runs resume from
#      their checkpoint, and the summary equals the uninterrupted one byte for byte;
#   4. a diverged run (exit 3) is counted as diverged, a failing run makes compare exit 1;
#   5. user errors: missing flags, a directory made with other settings, gnuplot missing.
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
# The serial harness does not pass AM_TESTS_ENVIRONMENT: default to the plastc of the build directory
# the test runs in, made absolute before we cd away.
: "${PLASTC:=$PWD/plastc}"
case $PLASTC in /*) ;; *) PLASTC=$PWD/$PLASTC ;; esac
PLASTC_COMPARE_TRAINER="$top_srcdir/tests/fake_trainer.sh"
export PLASTC_COMPARE_TRAINER
unset FAKE_TRAINER_SLEEP

work=$(mktemp -d /tmp/plastc-compare-grid-XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
: > rnn_hebbian.plast   # the fake trainer only reads the name
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() { # description, command...
	_desc=$1; shift
	if "$@"; then ok "$_desc"; else bad "$_desc"; fi
}

grid() { # out-dir, extra args...
	o=$1; shift
	"$PLASTC" compare rnn_hebbian.plast --task cue_reward --seeds 3 --steps 100 \
		--vary eta0=0.1,0.4 --jobs 2 --out "$o" "$@"
}

# ---- 1. dry run ----
grid dry --dry-run > dry.txt 2>&1
check "dry run exits 0" test $? -eq 0
check "dry run lists 6 runs" test "$(grep -c '^run ' dry.txt)" -eq 6
check "dry run command line" grep -q "fake_trainer.sh train rnn_hebbian.plast --task cue_reward --seed 0 --steps 100 --set eta0=0.1 --out dry/rnn_hebbian.eta0-0.1/seed-0" dry.txt
check "dry run writes nothing" test ! -e dry

# ---- 2. a full grid ----
grid A > A.out 2> A.err
check "grid A exits 0" test $? -eq 0
for f in compare.json summary.csv pairs.csv summary.md plots/curves.png plots/curves.svg plots/test.png plots/test.svg; do
	check "grid A wrote $f" test -s "A/$f"
done
check "summary.csv has both variants with n=3" test "$(grep -c '^rnn_hebbian\.eta0-0\.[14],rnn_hebbian.plast,0\.[14],3,0,0,' A/summary.csv)" -eq 2
check "pairs.csv has the one pair" test "$(wc -l < A/pairs.csv)" -eq 2
check "every run ran once" test "$(cat A/*/seed-*/invocations.txt | grep -c fresh)" -eq 6
check "every run has a done marker" test "$(cat A/*/seed-*/done | grep -c '^ok$')" -eq 6
check "log.txt holds the trainer output" grep -q "fake_trainer: done" A/rnn_hebbian.eta0-0.1/seed-2/log.txt
check "progress lines" grep -q "6/6 runs finished" A.err
# A rerun skips everything.
grid A > A2.out 2> A2.err
check "rerun exits 0" test $? -eq 0
check "rerun starts nothing" test "$(cat A/*/seed-*/invocations.txt | wc -l)" -eq 6
check "rerun reports all skipped" grep -q "6/6 runs finished (6 skipped" A2.err
# plot redraws from the run directories.
rm -f A/plots/*.png A/plots/*.svg
"$PLASTC" plot A > plot.out 2>&1
check "plot exits 0" test $? -eq 0
check "plot redraws the PNGs" test -s A/plots/curves.png -a -s A/plots/test.png
check "PNG signature" sh -c "head -c 4 A/plots/test.png | grep -q PNG"
check "SVG written" grep -q "<svg" A/plots/curves.svg

# ---- 3. interrupt and resume ----
# exec, so that $! is compare itself and the kill below reaches it.
(FAKE_TRAINER_SLEEP=0.1 exec "$PLASTC" compare rnn_hebbian.plast --task cue_reward --seeds 3 --steps 100 \
	--vary eta0=0.1,0.4 --jobs 1 --out B --no-plot > B1.out 2> B1.err) &
pid=$!
# Wait until two runs have finished, then kill compare in the middle of the third.
i=0
while [ "$(ls B/*/seed-*/done 2>/dev/null | wc -l)" -lt 2 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sleep 0.35
kill -TERM $pid
wait $pid
rc=$?
check "interrupted compare exits 143 (got $rc)" test $rc -eq 143
check "interrupted compare says how to continue" grep -q "rerun the same command" B1.err
ndone=$(ls B/*/seed-*/done 2>/dev/null | wc -l)
check "some but not all runs finished before the kill ($ndone)" test "$ndone" -ge 2 -a "$ndone" -lt 6
finished_before=$(ls B/*/seed-*/done | sed 's|/done$||')
partial=""
for d in B/*/seed-*; do
	[ -e "$d/done" ] || { [ -e "$d/checkpoint.safetensors" ] && partial="$partial $d"; }
done
check "an interrupted run left a checkpoint" test -n "$partial"
sleep 0.3 # the killed trainer's last sleep
# Longest first: fresh runs are scheduled before the shorter resumed ones.
grid B --jobs 1 --dry-run > B-dry.txt
check "dry run after the kill shows a resume" grep -q '^resume ' B-dry.txt
check "fresh runs are scheduled before resumed ones" sh -c "grep -E '^(run|resume) ' B-dry.txt | sed 's/ .*//' | uniq | tr '\n' ' ' | grep -qx 'run resume '"
grid B --jobs 1 --no-plot > B2.out 2> B2.err
check "resumed grid exits 0" test $? -eq 0
for d in $finished_before; do
	check "finished run $d was not rerun" test "$(wc -l < "$d/invocations.txt")" -eq 1
done
for d in $partial; do
	check "interrupted run $d resumed" grep -q "^resume " "$d/invocations.txt"
	check "interrupted run $d was started with --resume" grep -q -- "--resume $d\$" "$d/log.txt"
done
check "resumed progress counts the resume" grep -q "resumed" B2.err
for f in summary.csv pairs.csv summary.md; do
	check "$f after interrupt+resume equals the uninterrupted one" cmp -s A/$f B/$f
done

# ---- 4. diverged and failing runs ----
"$PLASTC" compare rnn_hebbian.plast --task copy --seeds 2 --steps 60 --vary max_norm=1,100 --out C --no-plot \
	> C.out 2> C.err
check "grid with a diverged run exits 0" test $? -eq 0
check "the diverged run is marked" grep -qx diverged C/rnn_hebbian.max_norm-100/seed-1/done
check "summary counts it: n=1, diverged=1" grep -q '^rnn_hebbian.max_norm-100,rnn_hebbian.plast,100,1,1,0,' C/summary.csv
check "pair uses the common seed only" grep -q '^rnn_hebbian.max_norm-1,rnn_hebbian.max_norm-100,1,' C/pairs.csv
"$PLASTC" compare rnn_hebbian.plast --task copy --seeds 1 --steps 20 --set fail=1 --out D --no-plot > D.out 2> D.err
check "a failing run makes compare exit 1" test $? -eq 1
check "the failure names the run and its log" grep -q "D/rnn_hebbian/seed-0: run failed with exit status 1; see D/rnn_hebbian/seed-0/log.txt" D.err

# ---- 5. user errors ----
"$PLASTC" compare rnn_hebbian.plast --out E > /dev/null 2> E.err
check "missing --task: exit 1" test $? -eq 1
check "missing --task: message" grep -q "plastc: error: compare needs at least one MODEL, --task and --out" E.err
"$PLASTC" compare nosuch.plast --task copy --out E > /dev/null 2> E.err
check "missing model: exit 1 and message" sh -c "test $? -eq 1 && grep -q 'nosuch.plast: no such model file' E.err"
"$PLASTC" compare rnn_hebbian.plast --task copy --out E --set eta0=1 --vary eta0=1,2 > /dev/null 2> E.err
check "--set and --vary on one key: exit 1" test $? -eq 1
"$PLASTC" compare rnn_hebbian.plast --task copy --out E --frobnicate > /dev/null 2> E.err
check "unknown flag: hint about --" grep -q "flags meant for \`plastc train\` go after \`--\`" E.err
grid A --steps 50 > /dev/null 2> E.err
check "other --steps on an existing grid: exit 1" test $? -eq 1
check "other --steps on an existing grid: message" grep -q "would not be comparable" E.err
PLASTC_GNUPLOT=/nonexistent/gnuplot "$PLASTC" plot A > /dev/null 2> E.err
check "gnuplot missing: exit 1" test $? -eq 1
check "gnuplot missing: names the package" grep -q "gnuplot-nox" E.err
"$PLASTC" plot "$work/nothing-here" > /dev/null 2> E.err
check "plot of a non-compare directory: exit 1" test $? -eq 1

# ---- 6. preflight: with plastc as the trainer, every variant's model is checked before any run ----
cat > tiny.plast <<'EOF2'
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
  }
}
EOF2
env -u PLASTC_COMPARE_TRAINER "$PLASTC" compare tiny.plast --task copy --seeds 1 --vary hidden=4,8 --out F \
	--dry-run > F.out 2> F.err
check "preflight passes a good grid" test $? -eq 0
check "the real trainer is plastc itself" grep -q "^run .*/plastc train tiny.plast --task copy --seed 0 --set hidden=4 --out F/tiny.hidden-4/seed-0\$" F.out
env -u PLASTC_COMPARE_TRAINER "$PLASTC" compare tiny.plast --task copy --seeds 1 --vary hiden=4,8 --out F \
	> F.out 2> F.err
check "preflight: a misspelt --vary key fails before any run" test $? -eq 1 -a ! -e F
check "preflight: names the constant and the variant" sh -c "grep -q \"unknown constant 'hiden'\" F.err && grep -q 'variant tiny.hiden-4' F.err"

if [ $fails -ne 0 ]; then
	echo "compare_grid.sh: $fails check(s) failed"
	for f in A.err B1.err B2.err C.err; do [ -f $f ] && { echo "--- $f"; cat $f; }; done
	exit 1
fi
echo "compare_grid.sh: all checks passed"
