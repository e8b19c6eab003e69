#!/bin/sh
# bench/miconi/run.sh -- the protocol of Miconi 2016 section 4 (docs/miconi.md): for each task, SEEDS
# seeds, one RMSprop update per episode with the paper's hyper-parameters, the last 500 episodes frozen.
#   bench/miconi/run.sh OUTDIR [SEEDS (20)] [MODELS (completion oneshot reversal)]
# Each run writes OUTDIR/MODEL/sSEED/metrics.csv: split "train" = the episode's error before its update,
# split "frozen" = the frozen phase. bench/miconi/summary.py turns them into median / IQR curves.
# Env: PLASTC (default plastc), JOBS (parallel runs, default nproc).
set -eu
out=${1:?usage: run.sh OUTDIR [SEEDS] [MODELS]}
seeds=${2:-20}
models=${3:-completion oneshot reversal}
PLASTC=${PLASTC:-plastc}
JOBS=${JOBS:-$(nproc)}
here=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
for model in $models; do
	case $model in
	completion*) task=completion episodes=5000 ;;
	oneshot*) task=oneshot_pattern episodes=10000 ;;
	reversal*) task=reversal episodes=10000 ;;
	*) echo "run.sh: unknown model $model" >&2; exit 1 ;;
	esac
	# build once (the model cache), then the seeds in parallel
	mkdir -p "$out/$model"
	"$PLASTC" train "$here/models/miconi/$model.plast" --task $task --steps 0 --val-trials 1 --test-trials 0 \
		--quiet --out "$out/$model/build" >/dev/null
	s=0
	while [ $s -lt "$seeds" ]; do
		echo "$s"
		s=$((s + 1))
	done | xargs -P "$JOBS" -I{} "$PLASTC" train "$here/models/miconi/$model.plast" --task $task \
		--optim rmsprop_miconi --steps $((episodes - 500)) --frozen 500 --seed {} \
		--val-every 500 --val-trials 100 --test-trials 0 --quiet --out "$out/$model/s{}"
	rm -rf "$out/$model/build"
done
