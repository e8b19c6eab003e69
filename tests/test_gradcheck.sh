#!/bin/sh
# tests/test_gradcheck.sh -- every shipped model's derivatives against central finite differences.
#
# For each model of models/ (not models/lib) at a small size (--set hidden=8, batch 3, T 5, the sizes of
# tests/test_emitc_models.c; 8 sampled elements per tensor, for time under ASan): `plastc gradcheck
# --order 2`, which checks the whole-trial gradient (order 1) and, for a gradient rule, the derivative
# of the inner gradient (order 2), relative error < 1e-6. A
# model whose file name says `gradient` must get order-2 checks (so a broken rule detection fails), and
# rules/per_layer_modulator.plast is also checked with --set rule=gradient. Then the checks must be able to
# fail: an impossible tolerance exits 1 with FAIL lines, a bad flag exits 1.
set -u
: "${PLASTC:?PLASTC is not set (run through make check)}"
: "${top_srcdir:=.}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gradcheck.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
fail=0
n=0

ok() { n=$((n + 1)); echo "ok $n - $*"; }
notok() { n=$((n + 1)); echo "not ok $n - $*"; fail=1; }

# check NAME FILE [ARGS...]: gradcheck --order 2 at the test sizes, falling back to the model's own sizes
# when it has no `hidden`.
check() {
	name=$1
	f=$2
	shift 2
	if ! "$PLASTC" gradcheck "$f" --set hidden=8 "$@" --batch 3 --T 5 -K 8 --order 2 >"$tmp/out" 2>"$tmp/err"; then
		if grep -q "hidden" "$tmp/err"; then
			"$PLASTC" gradcheck "$f" "$@" --batch 3 --T 5 -K 8 --order 2 >"$tmp/out" 2>"$tmp/err"
		else
			false
		fi
	fi
	rc=$?
	o1=$(grep '^order 1:.*tensors' "$tmp/out" | sed 's/.*max rel err \([^ ]*\).*/\1/')
	o2=$(grep '^order 2:.*tensors' "$tmp/out" | sed 's/.*max rel err \([^ ]*\).*/\1/')
	if [ "$rc" -ne 0 ] || [ -z "$o1" ]; then
		grep FAIL "$tmp/out"
		cat "$tmp/err"
		notok "$name $*: gradcheck exited $rc"
		return
	fi
	case $name in
	*gradient*)
		if [ -z "$o2" ]; then
			notok "$name $*: a gradient rule but no order-2 check"
			return
		fi ;;
	esac
	ok "$name${*:+ $*}: order 1 max rel err $o1${o2:+, order 2 $o2}"
}

for f in $(find "$top_srcdir/models" -name '*.plast' ! -path '*/lib/*' | sort); do
	case $f in
	*/oneshot/*) # 16x16 images and 4 filters: the interpreter's convolutions stay quick. The encoder's
		# relus and max-pools are piecewise linear, and at seed 0 a central difference (h = 1e-4) of enc.conv1.w
		# straddles a kink (order 2: 2e-3; with h = 1e-6 it is 2e-9, but then rounding costs order 1 its
		# margin); seed 1 has no kink within h of its samples.
		check "$(basename "$(dirname "$f")")/$(basename "$f")" "$f" --set pixels=256 --set filters=4 --seed 1 ;;
	*) check "$(basename "$(dirname "$f")")/$(basename "$f")" "$f" ;;
	esac
done
check "rules/per_layer_modulator.plast (gradient)" "$top_srcdir/models/rules/per_layer_modulator.plast" --set rule=gradient
# the paper's per-trial internal loss (docs/oneshot.md section 7): the scaled loss through the double backward
check "oneshot/rnn_gradient.plast inner_scale=64" "$top_srcdir/models/oneshot/rnn_gradient.plast" --set pixels=256 \
	--set filters=4 --seed 1 --set inner_scale=64

# A test that cannot fail is a defect: an impossible tolerance must fail, per tensor and overall.
f="$top_srcdir/models/cue_reward/rnn_gradient.plast"
"$PLASTC" gradcheck "$f" --set hidden=4 --order 2 --tol 1e-300 >"$tmp/out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q '^order 2 .*FAIL$' "$tmp/out" && grep -q ': FAIL$' "$tmp/out"; then
	ok "--tol 1e-300 fails (exit 1)"
else
	cat "$tmp/out"
	notok "--tol 1e-300 exited $rc without FAIL lines"
fi
"$PLASTC" gradcheck "$f" --order 3 >"$tmp/out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q "error: gradcheck: --order" "$tmp/out"; then
	ok "--order 3 is a usage error"
else
	cat "$tmp/out"
	notok "--order 3 exited $rc"
fi

echo "$n checks, $([ $fail -eq 0 ] && echo all passed || echo FAILURES)"
exit $fail
