#!/bin/sh
# tests/test_torch_crosscheck.sh -- `plastc grad` against the independent PyTorch reference (bench/ref_model.py).
#
# For every cue_reward, copy and regression model in models/ (RNN and LSTM x none/hebbian/gradient), at a
# small size (--set hidden=8): plastc init, a random batch (T=6, B=3, unequal mask weights), plastc grad
# and ref_model.py grad in float64, then bench/compare_grads.py (relative error <= XCHECK_RTOL, 1e-9).
# Python runs twice in all (once for every model's batch, once for every reference gradient and
# comparison), since importing torch costs seconds.
# Exit 77 (skip) without python3 torch, without plastc's grad command, or with no model to check.
# The rule of a model is read from its file name (hebbian / gradient; neither = none, which needs no alpha).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
PLASTC=${PLASTC:-./plastc}
RTOL=${XCHECK_RTOL:-1e-9}
HIDDEN=${XCHECK_HIDDEN:-8}
BENCH="$top_srcdir/bench"

# Debian's torch lives in the system Python; a python3 earlier on PATH (pyenv, a venv) may lack it.
if [ -z "${PYTHON:-}" ]; then
	for p in /usr/bin/python3 python3; do
		if "$p" -c 'import torch, numpy' >/dev/null 2>&1; then
			PYTHON=$p
			break
		fi
	done
fi
if [ -z "${PYTHON:-}" ] || ! "$PYTHON" -c 'import torch, numpy' >/dev/null 2>&1; then
	echo "SKIP: no python3 with torch and numpy (tried /usr/bin/python3 and python3)"
	exit 77
fi
if [ ! -x "$PLASTC" ] || ! "$PLASTC" grad --help >/dev/null 2>&1; then
	echo "SKIP: $PLASTC has no grad command yet"
	exit 77
fi
echo "python: $PYTHON ($("$PYTHON" -c 'import torch; print("torch", torch.__version__)'))"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/xcheck.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
export BENCH

failed=0
# 1. parameters: one line "K RULE NAME ARGS" per model in $tmp/list
k=0
: >"$tmp/list"
for f in "$top_srcdir"/models/cue_reward/*.plast "$top_srcdir"/models/copy/*.plast \
	"$top_srcdir"/models/regression/*.plast "$top_srcdir"/models/regression_linear/*.plast \
	"$top_srcdir"/models/regression_mlp/*.plast; do
	[ -f "$f" ] || continue
	base=$(basename "$f" .plast)
	case $base in
	*gradient*) rule=gradient ;;
	*hebbian*) rule=hebbian ;;
	*) rule=none ;;
	esac
	name="$(basename "$(dirname "$f")")/$base"
	k=$((k + 1))
	args="--set hidden=$HIDDEN"
	# shellcheck disable=SC2086
	if ! "$PLASTC" init "$f" $args --seed 7 -o "$tmp/$k.p.st" 2>"$tmp/err"; then
		if grep -q hidden "$tmp/err"; then
			args=""
			"$PLASTC" init "$f" --seed 7 -o "$tmp/$k.p.st" 2>"$tmp/err" || { cat "$tmp/err"; echo "FAIL $name: plastc init"; failed=$((failed + 1)); continue; }
		else
			cat "$tmp/err"; echo "FAIL $name: plastc init"; failed=$((failed + 1)); continue
		fi
	fi
	echo "$k $rule $name $f $args" >>"$tmp/list"
done

# 2. one batch per model, sized from its parameters: I = enc.w rows, Oy = head.w columns - 4 extra - 1
#    modulator (or all of them for a head without extras)
"$PYTHON" - "$tmp" <<'PY' || { echo "FAIL: writing the batches"; exit 1; }
import os, sys
sys.path.insert(0, os.environ["BENCH"])
import ref_model, stio
tmp = sys.argv[1]
for line in open(os.path.join(tmp, "list")):
    k = line.split()[0]
    p, _ = stio.load(os.path.join(tmp, k + ".p.st"))
    O = p["head.w"].shape[1]
    I, Oy = p["enc.w"].shape[0], (O - 5 if O >= 6 else O)
    rc = ref_model.main(["batch", "--task", "random", "--batch-size", "3", "--steps", "6", "--input", str(I),
                         "--out-dim", str(Oy), "--seed", "11", "-o", os.path.join(tmp, k + ".b.st")])
    if rc:
        sys.exit(rc)
PY

# 3. plastc grad (the interpreter, float64)
while read -r k rule name f args; do
	# shellcheck disable=SC2086
	if ! "$PLASTC" grad "$f" $args --params "$tmp/$k.p.st" --batch "$tmp/$k.b.st" -o "$tmp/$k.g.st"; then
		echo "FAIL $name: plastc grad"
		failed=$((failed + 1))
		echo "$k" >>"$tmp/skip"
	fi
done <"$tmp/list"

# 4. the reference's gradients and the comparison, all in one Python process
"$PYTHON" - "$tmp" "$RTOL" <<'PY'
import contextlib, io, os, sys
sys.path.insert(0, os.environ["BENCH"])
import compare_grads, ref_model
tmp, rtol = sys.argv[1], sys.argv[2]
skip = set(open(os.path.join(tmp, "skip")).read().split()) if os.path.exists(os.path.join(tmp, "skip")) else set()
checked = failed = 0
for line in open(os.path.join(tmp, "list")):
    k, rule, name, f, *args = line.split()
    if k in skip:
        continue
    base = os.path.join(tmp, k)
    if ref_model.main(["grad", "--rule", rule, "--params", base + ".p.st", "--batch", base + ".b.st",
                       "-o", base + ".r.st"]) != 0:
        print(f"FAIL {name}: ref_model.py grad")
        failed += 1
        continue
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = compare_grads.main(["--rtol", rtol, base + ".g.st", base + ".r.st"])
    worst = max((float(w.split()[-1]) for w in out.getvalue().splitlines() if " err " in w), default=0.0)
    loss = [w for w in out.getvalue().splitlines() if " loss " in w]
    if rc == 0:
        print(f"ok   {name} ({rule}, {' '.join(args)}): max tensor err {worst:.1e}, {loss[0].split(' rel ')[-1] if loss else ''} on the loss")
    else:
        print(out.getvalue(), end="")
        print(f"FAIL {name} ({rule}, {' '.join(args)})")
        failed += 1
    checked += 1
print(f"torch cross-check: {checked} model(s) compared, {failed} failure(s)")
with open(os.path.join(tmp, "result"), "w") as r:
    r.write(f"{checked} {failed}\n")
PY
read -r checked pyfailed <"$tmp/result" 2>/dev/null || { echo "FAIL: the comparison did not run"; exit 1; }
failed=$((failed + pyfailed))
if [ "$checked" -eq 0 ] && [ "$failed" -eq 0 ]; then
	echo "SKIP: no cue_reward, copy or regression model found in $top_srcdir/models"
	exit 77
fi
[ "$failed" -eq 0 ]
