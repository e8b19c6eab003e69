#!/bin/sh
# tests/test_param_counts.sh -- every shipped model has exactly the parameter count of the reference
# (Duan et al. 2023 PyTorch code, spec A.3; the arithmetic is in models/README.md).
#
# For each model it runs `plastc dump FILE --stage params` and compares the last line, `total N`, with the
# expected N. Also checks that `--set rule=...` switches a plastic model's rule without changing the count,
# and that a wrong --set is rejected (so the test would notice a driver that ignores its flags).
# Uses $PLASTC and $top_srcdir when set (tests/local.mk's AM_TESTS_ENVIRONMENT; the serial harness
# does not pass it), else the plastc of the current (build) directory and the tree holding this script.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
PLASTC=${PLASTC:-$(pwd)/plastc}
[ -x "$PLASTC" ] || { echo "not ok - no plastc binary at $PLASTC"; exit 1; }
fail=0
n=0

# total FILE [ARGS...] -- prints the N of the last line `total N` (commas removed), or nothing.
total() {
	f=$1; shift
	out=$("$PLASTC" dump "$f" --stage params "$@" 2>&1) || { printf '%s\n' "$out" >&2; return 0; }
	printf '%s\n' "$out" | tail -n 1 | sed -n 's/^total[[:space:]]*[:=]\{0,1\}[[:space:]]*\([0-9][0-9,]*\)[[:space:]]*$/\1/p' | tr -d ,
}

expect() { # expect FILE N [ARGS...]
	f=$1; want=$2; shift 2
	n=$((n + 1))
	got=$(total "$top_srcdir/$f" "$@")
	if [ "$got" = "$want" ]; then
		echo "ok $n - $f $* total $got"
	else
		echo "not ok $n - $f $*: expected total $want, got '${got}'"
		fail=1
	fi
}

#      task              RNN plastic  RNN none  LSTM plastic  LSTM none
while read -r task rp rn lp ln; do
	expect "models/$task/rnn_hebbian.plast"   "$rp"
	expect "models/$task/rnn_gradient.plast"  "$rp"
	expect "models/$task/rnn_none.plast"      "$rn"
	expect "models/$task/lstm_hebbian.plast"  "$lp"
	expect "models/$task/lstm_gradient.plast" "$lp"
	expect "models/$task/lstm_none.plast"     "$ln"
done <<'TABLE'
cue_reward         274962 304524 270098 300876
copy               268306 299532 266770 298380
regression_linear  273938 303756 269586 300492
regression_mlp     270866 301452 268050 299340
TABLE

# One-shot classification (models/oneshot, models/README.md): with a 32x32x3 image these are the
# reference's CIFAR-FS models, whose counts spec A.3 gives; the defaults are Fashion-MNIST 28x28x1.
for m in rnn_hebbian rnn_gradient; do expect models/oneshot/$m.plast 1304025 --set pixels=3072 --set channels=3; done
for m in lstm_hebbian lstm_gradient; do expect models/oneshot/$m.plast 1235161 --set pixels=3072 --set channels=3; done
expect models/oneshot/rnn_none.plast  1497807 --set pixels=3072 --set channels=3
expect models/oneshot/lstm_none.plast 1396815 --set pixels=3072 --set channels=3
expect models/oneshot/rnn_hebbian.plast  1205529
expect models/oneshot/rnn_gradient.plast 1205529
expect models/oneshot/rnn_none.plast     1350159
expect models/oneshot/lstm_hebbian.plast 1185817
expect models/oneshot/lstm_none.plast    1322895

# --set switches the rule (same count) and the size (count follows the formula 2(S)+6 at H=64:
# enc 16*64+64 = 1088, cell 2(64*64+64) = 8320, head 64*6+6 = 390; S = 9798; total 19602).
expect models/cue_reward/rnn_hebbian.plast  274962 --set rule=gradient
expect models/cue_reward/rnn_gradient.plast 274962 --set rule=hebbian
expect models/cue_reward/rnn_hebbian.plast  19602  --set hidden=64

# The ablation constants of models/lib/duan.plast (models/README.md):
# size_scale=0.25 is hidden=64 for the plastic RNN (19602, as above) and 96 for the non-plastic one
# (enc 16*96+96 = 1632, cell 2(96*96+96) = 18624, head 96*6+6 = 582; S = 20838; total S+6 = 20844);
# modulation=0 changes the rate, not the tensors; extra_dim=8 widens the head to 10 outputs
# (head 256*10+10 = 2570, S = 4352+131584+2570 = 138506, total 2S+10 = 277022);
# alpha_mode=none drops every alpha (S+6 = 137484), uniform keeps them (constant 1).
expect models/cue_reward/rnn_hebbian.plast  19602  --set size_scale=0.25
expect models/cue_reward/rnn_none.plast     20844  --set size_scale=0.25
expect models/cue_reward/rnn_hebbian.plast  274962 --set modulation=0
expect models/cue_reward/rnn_hebbian.plast  277022 --set extra_dim=8
expect models/cue_reward/rnn_hebbian.plast  137484 --set alpha_mode=none
expect models/cue_reward/rnn_hebbian.plast  274962 --set alpha_mode=uniform

# Rules beyond the paper (models/README.md).
expect models/rules/oja.plast                 274188
expect models/rules/oja_effective.plast       274188
expect models/rules/covariance.plast          268940
expect models/rules/per_layer_modulator.plast 275992

# The worked example of examples/README.md (weight-only rule, like oja).
expect examples/bcm.plast             274188

# A test that cannot fail is a defect: an unknown constant must be rejected with exit status 1.
n=$((n + 1))
"$PLASTC" dump "$top_srcdir/models/cue_reward/rnn_hebbian.plast" --stage params --set no_such_constant=1 >/dev/null 2>&1
rc=$?
if [ "$rc" -eq 1 ]; then
	echo "ok $n - --set of an unknown constant exits 1"
else
	echo "not ok $n - --set of an unknown constant exited $rc, expected 1"
	fail=1
fi

# A size_scale that makes a size fractional (256 * 0.3 = 76.8) and an α mode that does not exist are rejected.
for bad in size_scale=0.3 alpha_mode=randm; do
	n=$((n + 1))
	"$PLASTC" dump "$top_srcdir/models/cue_reward/rnn_hebbian.plast" --stage params --set "$bad" >/dev/null 2>&1
	rc=$?
	if [ "$rc" -eq 1 ]; then
		echo "ok $n - --set $bad exits 1"
	else
		echo "not ok $n - --set $bad exited $rc, expected 1"
		fail=1
	fi
done

echo "$n checks, $([ $fail -eq 0 ] && echo all passed || echo FAILURES)"
exit $fail
