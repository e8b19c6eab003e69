#!/bin/sh
# tests/rt_cli.sh -- the per-model binary's command line (tests/rt_model_bin, the hand-written test model
# linked with the runtime): kill -9 in the middle of training then --resume gives the same final
# checkpoint as an uninterrupted run; divergence exits 3 naming the tensor; flag and file errors exit 1.
set -u
B=${top_builddir:-.}/tests
BIN=$B/rt_model_bin
CMP=$B/rt_stcmp
D=$(mktemp -d /tmp/rt_cli.XXXXXX)
trap 'rm -rf "$D"' EXIT
fails=0
ok() { echo "ok - $*"; }
bad() { echo "not ok - $*"; fails=$((fails + 1)); }
check() { # check DESCRIPTION COMMAND...
	d=$1; shift
	if "$@"; then ok "$d"; else bad "$d"; fi
}

RUN="train --task cue_reward --steps 30 --batch 8 --val-every 10 --val-trials 16 --test-trials 16 --ckpt-every 2 --seed 3"

# 1. uninterrupted reference run (also: non-TTY progress lines and run.json content)
$BIN $RUN --out "$D/full" >"$D/full.out" 2>"$D/full.err"
check "uninterrupted run exits 0" test $? -eq 0
check "summary line" grep -q "done: rt_hebb on cue_reward.*30 steps.*test MSE" "$D/full.out"
check "plain progress lines without a TTY" grep -q "^val step 10: loss" "$D/full.err"
check "bptt plan printed" grep -q "bptt store (auto)" "$D/full.err"
for key in '"hostname"' '"cpu"' '"nproc"' '"plastc_version"' '"flags"' '"hash": "00000000000000aa"' '"test_loss"'; do
	check "run.json has $key" grep -q "$key" "$D/full/run.json"
done
check "metrics.csv header" sh -c "head -1 '$D/full/metrics.csv' | grep -qx 'step,split,loss,metric,seconds'"

# 1b. --out creates missing parent folders (a fresh clone has no runs/); a file in the way is an error
$BIN train --task cue_reward --steps 2 --batch 4 --val-every 2 --val-trials 4 --test-trials 4 --quiet \
	--out "$D/deep/er/run" >/dev/null 2>&1
check "--out creates parent folders" test -s "$D/deep/er/run/metrics.csv"
: >"$D/afile"
$BIN train --task cue_reward --steps 2 --batch 4 --quiet --out "$D/afile/run" >/dev/null 2>"$D/afile.err"
check "--out under a file exits 1" test $? -eq 1
check "--out under a file names the folder" grep -q "afile/run: cannot create the output folder" "$D/afile.err"

# 2. the same run, slowed down, killed with SIGKILL mid-way, then resumed
RT_MODEL_SLEEP_US=3000 $BIN $RUN --out "$D/killed" --quiet >/dev/null 2>&1 &
pid=$!
i=0
while [ $i -lt 400 ]; do
	n=$(grep -c ',train,' "$D/killed/metrics.csv" 2>/dev/null || true)
	[ "${n:-0}" -ge 9 ] && break
	sleep 0.05
	i=$((i + 1))
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
check "run was killed before finishing" sh -c "! grep -q ',test,' '$D/killed/metrics.csv'"
check "killed run left a readable checkpoint" $CMP "$D/killed/checkpoint.safetensors" "$D/killed/checkpoint.safetensors"
$BIN train --resume "$D/killed" --quiet >"$D/resumed.out" 2>&1
check "resume exits 0" test $? -eq 0
check "final checkpoint identical to the uninterrupted run" $CMP "$D/full/checkpoint.safetensors" "$D/killed/checkpoint.safetensors"
check "best checkpoint identical" $CMP "$D/full/best.safetensors" "$D/killed/best.safetensors"
cut -d, -f1-4 "$D/full/metrics.csv" >"$D/m1"
cut -d, -f1-4 "$D/killed/metrics.csv" >"$D/m2"
check "metrics rows identical after resume" cmp -s "$D/m1" "$D/m2"

# the recompute strategy trains to the same bits as store; two threads run too (last bits may differ)
$BIN $RUN --bptt recompute:3 --out "$D/rec" --quiet >/dev/null 2>&1
check "recompute:3 run exits 0" test $? -eq 0
check "recompute:3 final checkpoint identical to store" $CMP "$D/full/checkpoint.safetensors" "$D/rec/checkpoint.safetensors"
$BIN $RUN --threads 2 --out "$D/thr" --quiet >"$D/thr.out" 2>&1
check "--threads 2 run exits 0" test $? -eq 0
check "--threads recorded in run.json" grep -q '"--threads",' "$D/thr/run.json"

# 3. divergence: NaN in the gradient of cell.alpha during step 6 (T = 20 VJP calls per step)
RT_MODEL_NAN_AFTER=100 $BIN $RUN --out "$D/nan" --quiet >/dev/null 2>"$D/nan.err"
check "divergence exits 3" test $? -eq 3
check "message names step and tensor" grep -q "error: training diverged: non-finite gradient of cell.alpha at step 6" "$D/nan.err"
check "last good checkpoint kept" $CMP "$D/nan/checkpoint.safetensors" "$D/nan/checkpoint.safetensors"

# 4. init, eval, and errors
$BIN init --seed 5 -o "$D/p.safetensors"
check "init exits 0" test $? -eq 0
$BIN eval --checkpoint "$D/full/best.safetensors" --task cue_reward --trials 16 --batch 8 >"$D/eval.out"
check "eval exits 0" test $? -eq 0
# eval of the best checkpoint on the test stream reproduces train's test number
t1=$(grep ',test,' "$D/full/metrics.csv" | cut -d, -f3)
t2=$(sed 's/.*MSE //' "$D/eval.out")
check "eval reproduces the test MSE ($t1 vs $t2)" awk "BEGIN { d = $t1 - $t2; exit !(d < 1e-6 && d > -1e-6) }"
$BIN eval --checkpoint "$D/p.safetensors" --task copy >/dev/null 2>"$D/e1"
check "task/model size mismatch exits 1" test $? -eq 1
check "mismatch message" grep -q "error: task 'copy n=20 m=20' has inputs of size 3 and predictions of size 1, but model 'rt_hebb' has input size 16" "$D/e1"
RT_MODEL_IN=3 $BIN eval --checkpoint "$D/p.safetensors" --task copy >/dev/null 2>"$D/e2"
check "parameters of another shape exit 1" test $? -eq 1
check "shape message names file and tensor" grep -q "p.safetensors: tensor 'cell.w' has shape \[16, 1\], expected \[3, 1\]" "$D/e2"
head -c 5 "$D/p.safetensors" >"$D/trunc.safetensors"
$BIN eval --checkpoint "$D/trunc.safetensors" --task cue_reward 2>"$D/e3"
check "truncated file exits 1" test $? -eq 1
check "truncated message" grep -q "trunc.safetensors: truncated file" "$D/e3"
$BIN 2>/dev/null
check "no command exits 1" test $? -eq 1
$BIN --help >/dev/null
check "--help exits 0" test $? -eq 0
$BIN train --task cue_reward --batch 0 2>"$D/e4"
check "bad flag value exits 1" test $? -eq 1
check "bad value message" grep -q "error: --batch: '0' is not an integer" "$D/e4"
$BIN train --task cue_reward --resume "$D/full" --out "$D/elsewhere" 2>"$D/e5"
check "--resume with another --out exits 1" test $? -eq 1

echo "rt_cli: $fails failure(s)"
[ $fails -eq 0 ]
