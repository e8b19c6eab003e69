#!/bin/sh
# tests/test_bench.sh -- `BIN bench` and `plastc bench`, and training under the runtime's schemes.
#   bench prints median_ms=, min_ms=, cpu_ms=, peak_rss_mb= (positive numbers) and, with --profile, the
#   split and per-step lines; --val-trials adds val_trials_per_s=; bad flags exit 1. plastc bench runs it
#   through the model cache. A fixed-seed training run (5 steps, cue_reward, Hebbian RNN at hidden=8)
#   gives the same loss curve, within float tolerance, with one block, blocks of 1 and 3 trials, and
#   2 threads with blocks of 1.
set -u
: "${PLASTC:?}" "${top_srcdir:?}"
M="$top_srcdir/models/cue_reward/rnn_hebbian.plast"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/plastc-bench-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; }; done; exit 1; }
num() { sed -n "s/.*[ ^]$1=\([0-9.eE+-]*\).*/\1/p" "$2" | tail -1; }
pos() { awk -v v="$1" 'BEGIN { exit !(v + 0 > 0) }'; }

"$PLASTC" build "$M" --set hidden=8 -o "$tmp/bin" 2>"$tmp/build.log" || fail "build"
"$tmp/bin" bench --task cue_reward --steps 3 --profile --val-trials 128 >"$tmp/bench.log" 2>&1 || fail "bench"
line=$(tail -1 "$tmp/bench.log")
for k in median_ms min_ms cpu_ms peak_rss_mb fwd_ms vjp_ms opt_ms val_trials_per_s; do
	v=$(echo " $line" | sed -n "s/.* $k=\([0-9.eE+-]*\).*/\1/p")
	[ -n "$v" ] && pos "$v" || fail "bench: no positive $k= in: $line"
done
[ "$(grep -c '^step [0-9]*:' "$tmp/bench.log")" -eq 3 ] || fail "bench --profile: not 3 step lines"
grep -q '^bench: model cue_reward_rnn_hebbian, task cue_reward.*block 64, bptt store' "$tmp/bench.log" ||
	fail "bench: header (hidden=8 must get one block of 64)"
ok "BIN bench"

"$tmp/bin" bench --task cue_reward --steps 1 --block 2 --threads 2 --bptt recompute:3 >"$tmp/b2.log" 2>&1 ||
	fail "bench --block 2 --threads 2"
grep -q '2 threads, block 2, bptt recompute:3' "$tmp/b2.log" || fail "bench: header of the forced scheme"
"$tmp/bin" bench --task cue_reward --bogus 1 >"$tmp/err.log" 2>&1; rc=$?
[ $rc -eq 1 ] && grep -q 'unknown flag --bogus' "$tmp/err.log" || fail "bench --bogus: rc $rc"
rm -f "$tmp/err.log"
ok "bench flags"

"$PLASTC" bench "$M" --set hidden=8 --cache "$tmp/cache" --task cue_reward --steps 2 >"$tmp/pb.log" 2>&1 ||
	fail "plastc bench"
grep -q 'median_ms=' "$tmp/pb.log" || fail "plastc bench: no median_ms="
ok "plastc bench"

# the same training run under four schemes: losses equal within float tolerance
for s in "0 1" "1 1" "3 1" "1 2"; do
	set -- $s
	"$tmp/bin" train --task cue_reward --steps 5 --seed 3 --val-every 5 --val-trials 64 --test-trials 64 \
		--block "$1" --threads "$2" --quiet --out "$tmp/run-$1-$2" >"$tmp/train.log" 2>&1 || fail "train block $1 threads $2"
	grep ',train,' "$tmp/run-$1-$2/metrics.csv" | cut -d, -f3 >"$tmp/loss-$1-$2.txt"
done
rm -f "$tmp/train.log"
[ "$(wc -l <"$tmp/loss-0-1.txt")" -eq 5 ] || fail "train: not 5 train rows"
for s in 1-1 3-1 1-2; do
	paste -d' ' "$tmp/loss-0-1.txt" "$tmp/loss-$s.txt" | awk -v s="$s" '
		{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-5 * ($1 < 0 ? -$1 : $1) + 1e-7) { print "step " NR ": " $1 " vs " $2 " (" s ")"; bad = 1 } }
		END { exit bad }' || fail "loss curve differs under block-threads $s"
done
ok "fixed-seed loss curve equal under blocks 0/1/3 and 2 threads"

# bench/floor.py: the dense DRAM floor is bytes / triad rate; the gradient rule streams the cell's input-side
# plastic weight twice more per step: (5 S + 2 S_ih) / (5 S) of the Hebbian floor at the same sizes
if command -v python3 >/dev/null 2>&1; then
	printf 'threads=1 triad_GBps=10.0\nthreads=1 M=64 N=K=256 sgemm_GFLOPs=100\n' >"$tmp/machine.txt"
	python3 "$top_srcdir/bench/floor.py" --lines "$tmp/machine.txt" cue_reward-rnn-hebbian cue_reward-rnn-gradient \
		>"$tmp/floor.log" 2>&1 || fail "floor.py --lines"
	h=$(sed -n 's/.*rnn-hebbian dense_1t_ms=\([0-9.]*\).*/\1/p' "$tmp/floor.log")
	g=$(sed -n 's/.*rnn-gradient dense_1t_ms=\([0-9.]*\).*/\1/p' "$tmp/floor.log")
	# Hebbian RNN H=256, I=16, O=6: S = 16*256 + 2*256*256 + 256*6 = 136,704 floats; x 5 x 4 B x 64 x 20 / 10 GB/s
	awk -v h="$h" -v g="$g" 'BEGIN { e = 5 * 136704 * 4 * 64 * 20 / 10e9 * 1e3; r = g / h
		exit !(h > e - 0.2 && h < e + 0.2 && r > 1.18 && r < 1.21) }' || fail "floor.py: hebbian $h ms, gradient $g ms"
	ok "floor.py dense floors"
	# the harness's floor table (-m), plastc only, tiny sizes
	PLASTC="$PLASTC" sh "$top_srcdir/bench/run.sh" -n -m -H 8 -s 2 cue_reward-rnn-gradient >"$tmp/run.log" 2>&1 ||
		fail "bench/run.sh -m"
	grep -q '^config  *1t med ms  *1t min ms  *floor 1t  *med/floor' "$tmp/run.log" || fail "run.sh -m: no floor table"
	grep '^cue_reward-rnn-gradient ' "$tmp/run.log" | grep -q '[0-9]x ' || fail "run.sh -m: no ratio to the floor"
	ok "bench/run.sh floor table"
fi
