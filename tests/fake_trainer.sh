#!/bin/sh
# tests/fake_trainer.sh -- stands in for `plastc train` in the compare tests (PLASTC_COMPARE_TRAINER).
# Writes metrics.csv (step,split,loss,metric,seconds) with values that depend only on its arguments, a
# fake checkpoint after every validation row, and supports --resume from that checkpoint, so compare's
# scheduling, skipping and resuming can be tested without a real trainer.
#   --set fail=1                 exit 1 (a broken run)
#   --set max_norm=100, odd seed exit 3 without a test row (training diverged)
#   FAKE_TRAINER_SLEEP=SECONDS   pause after each validation row (to interrupt a grid mid-run)
# `--resume DIR` continues DIR's run (as the runtime's train does). Every invocation appends "fresh" or "resume STEP" to OUT/invocations.txt.
set -eu
[ "$1" = train ] || { echo "fake_trainer: expected 'train'" >&2; exit 2; }
shift
model=$1; shift
task= seed= steps=100 out= resume=0 sets=
while [ $# -gt 0 ]; do
	case $1 in
	--task) task=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	--steps) steps=$2; shift 2 ;;
	--set) sets="$sets $2"; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--resume) resume=1; out=$2; shift 2 ;;
	*) echo "fake_trainer: extra flag $1"; shift ;;
	esac
done
[ -n "$task" ] && [ -n "$seed" ] && [ -n "$out" ] || { echo "fake_trainer: missing flags" >&2; exit 2; }
case " $sets " in *" fail=1 "*) echo "fake_trainer: failing on request" >&2; exit 1 ;; esac
mkdir -p "$out"
# A number in [0, 1000) from the model's name and the settings: each variant learns differently.
h=$(printf '%s|%s|%s' "$(basename "$model")" "$sets" "$task" | cksum | cut -d' ' -f1)
h=$((h % 1000))
start=0
if [ "$resume" = 1 ] && [ -f "$out/checkpoint.safetensors" ]; then
	start=$(( $(cat "$out/checkpoint.safetensors") + 10 ))
	echo "resume $((start - 10))" >> "$out/invocations.txt"
else
	echo "fresh" >> "$out/invocations.txt"
	echo "step,split,loss,metric,seconds" > "$out/metrics.csv"
fi
metric() { # step -> metric
	awk -v h="$h" -v s="$seed" -v t="$1" 'BEGIN { printf "%.6f", 0.1 + (0.3 + h / 2000.0) * exp(-t / 40.0) + 0.01 * ((s * 7 + h) % 5) }'
}
step=$start
while [ "$step" -le "$steps" ]; do
	m=$(metric "$step")
	if [ "$step" -ge 50 ]; then
		case " $sets " in *" max_norm=100 "*)
			if [ $((seed % 2)) = 1 ]; then
				echo "$step,train,nan,nan,$step" >> "$out/metrics.csv"
				echo "fake_trainer: loss is NaN at step $step" >&2; exit 3
			fi ;;
		esac
	fi
	echo "$step,train,$m,$m,$(awk -v t="$step" 'BEGIN { printf "%.2f", t * 0.01 }')" >> "$out/metrics.csv"
	echo "$step,val,$m,$m,$(awk -v t="$step" 'BEGIN { printf "%.2f", t * 0.01 }')" >> "$out/metrics.csv"
	echo "$step" > "$out/checkpoint.safetensors.tmp" && mv "$out/checkpoint.safetensors.tmp" "$out/checkpoint.safetensors"
	[ -z "${FAKE_TRAINER_SLEEP:-}" ] || sleep "$FAKE_TRAINER_SLEEP"
	step=$((step + 10))
done
# Test row: the metric of the best validation step (the last, the curve decreases) plus a seed offset.
t=$(awk -v h="$h" -v s="$seed" -v t="$steps" 'BEGIN { printf "%.6f", 0.1 + (0.3 + h / 2000.0) * exp(-t / 40.0) + 0.013 * ((s * 3 + h) % 4) }')
echo "$steps,test,$t,$t,$(awk -v t="$steps" 'BEGIN { printf "%.2f", t * 0.01 + 0.05 }')" >> "$out/metrics.csv"
echo "fake_trainer: done"
