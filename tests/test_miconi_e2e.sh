#!/bin/sh
# tests/test_miconi_e2e.sh -- Miconi 2016 end to end through plastc and the C backend:
#  1. the six models in models/miconi check, with 144 (completion) / 48 meta-trained values;
#  2. a short `plastc train --optim rmsprop_miconi --frozen` run per model (exit 0, rows in metrics.csv,
#     the optimiser's state in the checkpoint, the resolved flags in run.json);
#  3. learning: 600 completion episodes bring the per-episode error from ~8 to below 1 (seed 0);
#  4. resume: 10 episodes + resume to 20 give the same checkpoint as 20 in one go (RMSprop state saved);
#  5. gradients: `BIN grad` against the independent float64 reference tests/miconi_ref.py (finite
#     differences, and the spec's forward-mode recursion) on trained parameters (skipped without python3).
set -u
: "${PLASTC:?PLASTC is not set (run through make check)}"
: "${top_srcdir:=.}"
: "${top_builddir:=.}"
M="$top_srcdir/models/miconi"
CMP="$top_builddir/tests/rt_stcmp"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/miconi.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
cache="$tmp/cache"
fail=0
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n - $1"; }
check() { d=$1; shift; if "$@" >"$tmp/out" 2>&1; then ok "$d"; else bad "$d"; cat "$tmp/out"; fi; }

# 1. models and their parameter counts (trainable = total minus the lines marked fixed)
for spec in completion:144:208 completion_alpha_pos:144:208 oneshot:48:48 oneshot_alpha_pos:48:48 \
	reversal:48:48 reversal_alpha_pos:48:48; do
	name=${spec%%:*}
	rest=${spec#*:}
	want_tr=${rest%%:*}
	want_tot=${rest#*:}
	if ! "$PLASTC" dump "$M/$name.plast" --stage params >"$tmp/params" 2>"$tmp/err"; then
		bad "$name: plastc dump --stage params"
		cat "$tmp/err"
		continue
	fi
	tot=$(awk '$1 == "total" { print $2 }' "$tmp/params")
	tr=$(awk '$1 != "total" && $NF != "fixed" { gsub(/[][]/, "", $2); k = split($2, d, ","); p = 1;
		for (i = 1; i <= k; i++) p *= d[i]; s += p } END { print s }' "$tmp/params")
	if [ "$tot" = "$want_tot" ] && [ "$tr" = "$want_tr" ]; then
		ok "$name: $tr meta-trained of $tot"
	else
		bad "$name: $tr meta-trained of $tot, want $want_tr of $want_tot"
		cat "$tmp/params"
	fi
done

# 2. a few episodes per model
task_of() {
	case $1 in
	completion*) echo completion ;;
	oneshot*) echo oneshot_pattern ;;
	reversal*) echo reversal ;;
	esac
}
for name in completion oneshot reversal completion_alpha_pos oneshot_alpha_pos reversal_alpha_pos; do
	task=$(task_of $name)
	D="$tmp/run-$name"
	if "$PLASTC" train "$M/$name.plast" --cache "$cache" --task "$task" --optim rmsprop_miconi --steps 20 \
		--frozen 5 --val-every 10 --val-trials 20 --test-trials 20 --seed 3 --quiet --out "$D" \
		>"$tmp/out" 2>&1; then
		rows=$(grep -c ',train,' "$D/metrics.csv")
		frozen=$(grep -c ',frozen,' "$D/metrics.csv")
		last=$(awk -F, '$2 == "frozen" { s = $1 } END { print s }' "$D/metrics.csv")
		if [ "$rows" = 20 ] && [ "$frozen" = 5 ] && [ "$last" = 25 ] && grep -q '"rmsprop_miconi"' "$D/run.json" \
			&& grep -q 'rms.ms.hid.w' "$D/checkpoint.safetensors" && ! grep -q 'adam.v' "$D/checkpoint.safetensors"; then
			ok "$name: 20 episodes on $task, 5 frozen"
		else
			bad "$name: metrics.csv has $rows train rows, $frozen frozen rows (last $last), or the checkpoint/run.json lack RMSprop"
		fi
	else
		bad "$name: plastc train --task $task"
		cat "$tmp/out"
	fi
done
# the per-task defaults were resolved into the run's flags
grep -A1 '"--lr"' "$tmp/run-completion/run.json" | grep -q '"0.029999999999999999"' && \
	grep -A1 '"--max-dw"' "$tmp/run-reversal/run.json" | grep -q '"0.01"' && \
	grep -A1 '"--batch"' "$tmp/run-reversal/run.json" | grep -q '"1"' && \
	grep -A1 '"--clip"' "$tmp/run-reversal/run.json" | grep -q '"0"' &&
	ok "per-task RMSprop defaults (completion lr 0.03, reversal max-dw 0.01, batch 1, no clip)" ||
	bad "per-task RMSprop defaults in run.json"
"$PLASTC" train "$M/completion.plast" --cache "$cache" --task completion --optim sgd --steps 1 --out "$tmp/x" \
	>"$tmp/out" 2>&1
rc=$?
if [ $rc = 1 ] && grep -q "unknown optimiser 'sgd'" "$tmp/out"; then ok "--optim sgd refused"; else bad "--optim sgd: rc $rc"; cat "$tmp/out"; fi
"$PLASTC" train "$M/completion.plast" --cache "$cache" --task reversal --steps 1 --out "$tmp/x" >"$tmp/out" 2>&1
rc=$?
if [ $rc = 1 ] && grep -q "inputs of size 10" "$tmp/out"; then ok "task/model size mismatch refused"; else bad "mismatch: rc $rc"; cat "$tmp/out"; fi

# 3. learning (seed 0): mean error of episodes 1-50 (chance ~8) and 551-600
D="$tmp/learn"
if "$PLASTC" train "$M/completion.plast" --cache "$cache" --task completion --optim rmsprop_miconi --steps 600 \
	--val-every 600 --val-trials 50 --test-trials 0 --quiet --out "$D" >"$tmp/out" 2>&1; then
	res=$(awk -F, '$2 == "train" && $1 <= 50 { a += $3 } $2 == "train" && $1 > 550 { b += $3 }
		END { printf "%.4f %.4f", a / 50, b / 50 }' "$D/metrics.csv")
	first=${res% *}
	lastm=${res#* }
	if awk -v a="$first" -v b="$lastm" 'BEGIN { exit !(a > 4 && b < 1) }'; then
		ok "completion learns: error $first (episodes 1-50) -> $lastm (551-600)"
	else
		bad "completion: error $first (episodes 1-50) -> $lastm (551-600), want > 4 then < 1"
	fi
else
	bad "completion 600 episodes"
	cat "$tmp/out"
fi

# 4. resume with the RMSprop state
common="--cache $cache --task reversal --optim rmsprop_miconi --val-every 5 --val-trials 4 --test-trials 0 --quiet"
"$PLASTC" train "$M/reversal.plast" $common --steps 20 --out "$tmp/full" >"$tmp/out" 2>&1 &&
	"$PLASTC" train "$M/reversal.plast" $common --steps 10 --out "$tmp/half" >>"$tmp/out" 2>&1 &&
	"$PLASTC" train "$M/reversal.plast" $common --steps 20 --resume "$tmp/half" >>"$tmp/out" 2>&1
if [ $? = 0 ] && "$CMP" "$tmp/full/checkpoint.safetensors" "$tmp/half/checkpoint.safetensors" >>"$tmp/out" 2>&1; then
	ok "10 + resume 10 episodes = 20 episodes, bit for bit (RMSprop mean square restored)"
else
	bad "resume with RMSprop"
	cat "$tmp/out"
fi

# 5. gradients against the float64 reference
PY=${PYTHON:-python3}
if command -v "$PY" >/dev/null 2>&1; then
	for spec in completion:learn: reversal:run-reversal: reversal_alpha_pos:run-reversal_alpha_pos:--alpha-abs; do
		name=${spec%%:*}
		rest=${spec#*:}
		run=${rest%%:*}
		flag=${rest#*:}
		task=$(task_of $name)
		[ "$task" = oneshot_pattern ] && task=oneshot
		if "$PLASTC" build "$M/$name.plast" -o "$tmp/$name.bin" >"$tmp/out" 2>&1 &&
			"$PY" "$top_srcdir/tests/miconi_ref.py" batch "$task" 5 2 "$tmp/b-$name.st" >>"$tmp/out" 2>&1 &&
			"$tmp/$name.bin" grad --params "$tmp/$run/checkpoint.safetensors" --batch "$tmp/b-$name.st" \
				-o "$tmp/g-$name.st" >>"$tmp/out" 2>&1 &&
			"$PY" "$top_srcdir/tests/miconi_ref.py" check "$tmp/$run/checkpoint.safetensors" "$tmp/b-$name.st" \
				"$tmp/g-$name.st" $flag >>"$tmp/out" 2>&1; then
			ok "$name: plastc's gradient = finite differences of the float64 reference"
			grep '^#' "$tmp/out"
		else
			bad "$name: gradient check"
			cat "$tmp/out"
		fi
	done
else
	echo "# python3 not found: gradient checks skipped"
fi

echo "# $n checks, $fail failed"
[ $fail = 0 ]
