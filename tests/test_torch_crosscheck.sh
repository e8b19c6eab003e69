#!/bin/sh
# tests/test_torch_crosscheck.sh -- `plastc grad` against the independent PyTorch reference (bench/ref_model.py).
#
# For every model of models/{cue_reward,copy,regression_linear,regression_mlp} (RNN and LSTM x
# none/hebbian/gradient), at a small size (--set hidden=8): plastc init, a random batch (T=6, B=3,
# unequal mask weights), plastc grad and ref_model.py grad in float64, then bench/compare_grads.py
# (relative error <= XCHECK_RTOL, default 1e-9; for gradients stored as float32 XCHECK_RTOL_F32, 1e-5).
# Uses `plastc init` / `plastc grad` when plastc has them, else `plastc build` and the binary's init / grad.
# Exit 77 (skip) without python3 torch, without either way to get gradients, or with no model to check.
# The rule of a model is read from its file name (hebbian / gradient; neither = none, which needs no alpha).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
PLASTC=${PLASTC:-./plastc}
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=python3
RTOL=${XCHECK_RTOL:-1e-9}
HIDDEN=${XCHECK_HIDDEN:-8}
BENCH="$top_srcdir/bench"
[ -f "$BENCH/ref_model.py" ] || BENCH=$(cd "$(dirname "$0")/../bench" && pwd)
MODELS=${XCHECK_MODELS:-$top_srcdir/models}

if ! "$PYTHON" -c 'import torch, numpy' >/dev/null 2>&1; then
	echo "SKIP: python3 torch (or numpy) is not installed"
	exit 77
fi
RTOL_F32=${XCHECK_RTOL_F32:-1e-5}
if [ -x "$PLASTC" ] && "$PLASTC" grad --help >/dev/null 2>&1; then
	how=grad
elif [ -x "$PLASTC" ] && "$PLASTC" build --help >/dev/null 2>&1; then
	how=build
else
	echo "SKIP: $PLASTC has neither a grad nor a build command yet"
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/xcheck.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM

# Prints the model's input size (enc.w rows) and prediction size (head.w columns - 4 extra - 1 modulator).
input_size() {
	"$PYTHON" - "$1" <<'PY'
import os, sys
sys.path.insert(0, os.environ["BENCH"])
import stio
p, _ = stio.load(sys.argv[1])
O = p["head.w"].shape[1]
print(p["enc.w"].shape[0], O - 5 if O >= 6 else O)
PY
}
export BENCH

# init and grad of model $1 (further arguments: --set flags) through plastc or the built binary.
pl_init() {
	f=$1
	shift
	if [ "$how" = grad ]; then
		"$PLASTC" init "$f" "$@" --seed 7 -o "$tmp/p.st"
	else
		"$tmp/bin" init --seed 7 -o "$tmp/p.st"
	fi
}
pl_grad() {
	f=$1
	shift
	if [ "$how" = grad ]; then
		"$PLASTC" grad "$f" "$@" --params "$tmp/p.st" --batch "$tmp/b.st" -o "$tmp/g.st"
	else
		"$tmp/bin" grad --params "$tmp/p.st" --batch "$tmp/b.st" -o "$tmp/g.st"
	fi
}
# The largest error of the last comparison.
worst() {
	awk '$1 == "ok" { for (i = 1; i < NF; i++) if ($i == "err" || $i == "rel") { v = $(i + 1) + 0; if (v > m) m = v } }
		END { printf "worst rel err %.1e", m }' "$tmp/cmp"
}

checked=0
failed=0
for f in "$MODELS"/cue_reward/*.plast "$MODELS"/copy/*.plast "$MODELS"/regression_linear/*.plast \
	"$MODELS"/regression_mlp/*.plast; do
	[ -f "$f" ] || continue
	base=$(basename "$f" .plast)
	case $base in
	*gradient*) rule=gradient ;;
	*hebbian*) rule=hebbian ;;
	*) rule=none ;;
	esac
	name="$(basename "$(dirname "$f")")/$base"
	set -- --set hidden="$HIDDEN"
	grep -q '^const hidden' "$f" || set --
	if [ "$how" = build ]; then
		rm -f "$tmp/bin"
		if ! "$PLASTC" build "$f" "$@" -o "$tmp/bin" >"$tmp/err" 2>&1; then
			cat "$tmp/err"
			echo "FAIL $name: plastc build"
			failed=$((failed + 1))
			continue
		fi
	fi
	if ! pl_init "$f" "$@" >"$tmp/err" 2>&1; then
		cat "$tmp/err"
		echo "FAIL $name: init"
		failed=$((failed + 1))
		continue
	fi
	sizes=$(input_size "$tmp/p.st") || { echo "FAIL $name: unreadable parameters"; failed=$((failed + 1)); continue; }
	I=${sizes% *}
	Oy=${sizes#* }
	"$PYTHON" "$BENCH/ref_model.py" batch --task random --batch-size 3 --steps 6 --input "$I" \
		--out-dim "$Oy" --seed 11 -o "$tmp/b.st" || { echo "FAIL $name: batch"; failed=$((failed + 1)); continue; }
	if ! pl_grad "$f" "$@"; then
		echo "FAIL $name: grad"
		failed=$((failed + 1))
		continue
	fi
	if ! "$PYTHON" "$BENCH/ref_model.py" grad --rule "$rule" --params "$tmp/p.st" --batch "$tmp/b.st" \
		-o "$tmp/r.st"; then
		echo "FAIL $name: ref_model.py grad"
		failed=$((failed + 1))
		continue
	fi
	if "$PYTHON" "$BENCH/compare_grads.py" --rtol "$RTOL" --rtol-f32 "$RTOL_F32" "$tmp/g.st" "$tmp/r.st" \
		>"$tmp/cmp"; then
		echo "ok   $name ($rule, I=$I, Oy=$Oy, $*, via $how; $(worst))"
	else
		cat "$tmp/cmp"
		echo "FAIL $name ($rule, I=$I, Oy=$Oy, $*, via $how)"
		failed=$((failed + 1))
	fi
	checked=$((checked + 1))
done

if [ "$checked" -eq 0 ] && [ "$failed" -eq 0 ]; then
	echo "SKIP: no cue_reward, copy or regression model found in $MODELS"
	exit 77
fi
echo "torch cross-check: $checked model(s) compared, $failed failure(s)"
[ "$failed" -eq 0 ]
