#!/bin/sh
# bench/run.sh -- plastc vs PyTorch per meta-training step, side by side, on the same configurations.
#
#   bench/run.sh [-s PLASTC_STEPS] [-t TORCH_STEPS] [-r ROUNDS] [-H HIDDEN] [-m] [-n] [-l] [-j "1 2"]
#                [-x "BENCH FLAGS"] [-v VAL_TRIALS] [-c] [CONFIG... | all]
#     -s  steps timed by plastc (20)      -t  steps timed by PyTorch after 1 warm-up step (3)
#     -r  rounds; each round runs plastc then PyTorch on each configuration, alternately (1)
#     -H  override every hidden size (quick tests)   -m  also measure memory bandwidth and sgemm (machine.sh)
#     -n  no PyTorch    -l  PyTorch with the lean malloc setting (torch_step.py --malloc lean)
#     -j  plastc thread counts, each timed in turn (default "1"; the first is the one compared with PyTorch)
#     -x  more flags for plastc bench (e.g. "--block 0" to force a scheme)
#     -v  also time VAL_TRIALS forward-only trials (validation throughput, trials/s)
#     -c  also time `plastc build` (DSL to binary) with the C and the LLVM backend
# Default configurations: the four plastic cue-reward ones (bench/torch_step.py --list for all names).
# Prints a table: config, plastc ms/step, torch ms/step, torch/plastc, peak RSS of each (MiB); with
# several rounds the ms/step is the median of the rounds' medians. With -m also the floor table: plastc's
# median and fastest step against the dense DRAM floor of bench/floor.py from this run's own triad rate. PyTorch is skipped when python3 torch is
# absent; plastc when it cannot run yet (see bench/plastc_step.py). Set PLASTC=path (default ./plastc).
set -u
here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$PYTHON" ] || PYTHON=python3
psteps=20 tsteps=3 rounds=1 hidden='' machine=0 notorch=0 malloc=default pthreads=1 pextra='' vtrials=0 ccomp=''
while getopts s:t:r:H:mnlj:x:v:c opt; do
	case $opt in
	s) psteps=$OPTARG ;;
	t) tsteps=$OPTARG ;;
	r) rounds=$OPTARG ;;
	H) hidden=$OPTARG ;;
	m) machine=1 ;;
	n) notorch=1 ;;
	l) malloc=lean ;;
	j) pthreads=$OPTARG ;;
	x) pextra=$OPTARG ;;
	v) vtrials=$OPTARG ;;
	c) ccomp=--compile ;;
	*) sed -n '2,19p' "$0"; exit 1 ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then
	set -- cue_reward-rnn-hebbian cue_reward-rnn-gradient cue_reward-lstm-hebbian cue_reward-lstm-gradient
elif [ "$1" = all ]; then
	# shellcheck disable=SC2046
	set -- $("$PYTHON" "$here/torch_step.py" --list | cut -d' ' -f1)
fi
hflag=
[ -n "$hidden" ] && hflag="--hidden $hidden"

if [ "$notorch" = 0 ] && ! "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
	echo "PyTorch: skipped (python3 torch is not installed)"
	notorch=1
fi
PLASTC=${PLASTC:-./plastc}
noplastc=0
if [ ! -x "$PLASTC" ]; then
	echo "plastc: skipped ($PLASTC is not an executable; set PLASTC=path)"
	noplastc=1
fi
export PLASTC
res=$(mktemp "${TMPDIR:-/tmp}/plastc-bench.XXXXXX") || exit 2
trap 'rm -f "$res"' EXIT INT TERM

mres=$(mktemp "${TMPDIR:-/tmp}/plastc-machine-out.XXXXXX") || exit 2
trap 'rm -f "$res" "$mres"' EXIT INT TERM
if [ "$machine" = 1 ]; then
	sh "$here/machine.sh" | tee "$mres"
fi
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  host: $(uname -n)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
r=1
while [ "$r" -le "$rounds" ]; do
	for c in "$@"; do
		if [ "$noplastc" = 0 ]; then
			first=1
			for j in $pthreads; do
				tool=plastc cflag=$ccomp
				[ "$first" = 1 ] || tool=plastc_j cflag=
				# shellcheck disable=SC2086
				"$PYTHON" "$here/plastc_step.py" --steps "$psteps" $hflag --threads "$j" --extra "$pextra" \
					--val-trials "$vtrials" $cflag "$c" |
					sed "s/^/$tool load=$(cut -d' ' -f1 /proc/loadavg) /" | tee -a "$res"
				first=0
			done
		fi
		if [ "$notorch" = 0 ]; then
			# shellcheck disable=SC2086
			"$PYTHON" "$here/torch_step.py" --steps "$tsteps" --warmup 1 --malloc "$malloc" $hflag "$c" |
				sed "s/^/torch load=$(cut -d' ' -f1 /proc/loadavg) /" | tee -a "$res"
		fi
	done
	r=$((r + 1))
done

if [ "$machine" = 1 ]; then
	"$PYTHON" "$here/floor.py" --lines ${hidden:+--hidden "$hidden"} "$mres" "$@" >>"$res" || echo "floor.py failed: no floor table"
fi
echo
# Table: per config the median (over rounds) of each tool's median ms and the max of its peak RSS.
awk -v order="$*" '
function val(line, key,   m) { if (match(line, key "=[^ ]*")) return substr(line, RSTART + length(key) + 1, RLENGTH - length(key) - 1); return "" }
function med(list,   a, n, i, j, t) { n = split(list, a, " "); if (n == 0) return "";
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
$1 == "floor" { c = val($0, "config"); fl1[c] = val($0, "dense_1t_ms"); fl2[c] = val($0, "dense_2t_ms"); l3[c] = val($0, "blkL3_1t_ms"); next }
{ tool = $1; c = val($0, "config"); ms[tool, c] = ms[tool, c] " " val($0, "median_ms");
  if (val($0, "min_ms") != "" && (mn[tool, c] == "" || val($0, "min_ms") + 0 < mn[tool, c] + 0)) mn[tool, c] = val($0, "min_ms")
  if (val($0, "cpu_ms") != "") cpu[tool, c] = cpu[tool, c] " " val($0, "cpu_ms")
  if (val($0, "val_trials_per_s") != "") vt[tool, c] = vt[tool, c] " " val($0, "val_trials_per_s")
  if (val($0, "compile_c_s") != "") cc[c] = val($0, "compile_c_s")
  if (val($0, "compile_llvm_s") != "") cl[c] = val($0, "compile_llvm_s")
  if (tool == "plastc" && val($0, "scheme") != "") sch[c] = val($0, "scheme")
  rss = val($0, "peak_rss_mb") + 0; if (rss > mx[tool, c]) mx[tool, c] = rss }
END {
	printf "%-26s %14s %14s %9s %12s %12s\n", "config", "plastc ms/step", "torch ms/step", "torch/pl", "plastc MiB", "torch MiB"
	n = split(order, cs, " ")
	for (i = 1; i <= n; i++) {
		c = cs[i]; p = med(ms["plastc", c]); t = med(ms["torch", c])
		ratio = (p != "" && t != "" && p > 0) ? sprintf("%.1fx", t / p) : "-"
		printf "%-26s %14s %14s %9s %12s %12s\n", c, p == "" ? "-" : sprintf("%.1f", p), t == "" ? "-" : sprintf("%.1f", t),
			ratio, mx["plastc", c] ? sprintf("%.0f", mx["plastc", c]) : "-", mx["torch", c] ? sprintf("%.0f", mx["torch", c]) : "-"
	}
	# the floor table (-m): plastc median and fastest step over the dense DRAM floor of this run (bench/floor.py)
	nf = 0
	for (i = 1; i <= n; i++) if (fl1[cs[i]] != "") nf = 1
	if (nf) {
		printf "\n%-26s %10s %10s %10s %10s %10s %10s %10s %10s\n", "config", "1t med ms", "1t min ms", "floor 1t", "med/floor", "min/floor", "2t med ms", "floor 2t", "L3 floor"
		for (i = 1; i <= n; i++) {
			c = cs[i]; p = med(ms["plastc", c]); q = med(ms["plastc_j", c]); m1 = mn["plastc", c]
			printf "%-26s %10s %10s %10s %10s %10s %10s %10s %10s\n", c, p == "" ? "-" : sprintf("%.1f", p), m1 == "" ? "-" : sprintf("%.1f", m1),
				fl1[c] == "" ? "-" : fl1[c], (p != "" && fl1[c] > 0) ? sprintf("%.2fx", p / fl1[c]) : "-",
				(m1 != "" && fl1[c] > 0) ? sprintf("%.2fx", m1 / fl1[c]) : "-", q == "" ? "-" : sprintf("%.1f", q),
				fl2[c] == "" ? "-" : fl2[c], l3[c] == "" ? "-" : l3[c]
		}
	}
	# more plastc figures, when measured: other thread counts, CPU time, validation, compile latency
	extra = 0
	for (i = 1; i <= n; i++) { c = cs[i]; if (ms["plastc_j", c] != "" || cpu["plastc", c] != "" || vt["plastc", c] != "" || cc[c] != "") extra = 1 }
	if (!extra) exit
	printf "\n%-26s %10s %10s %10s %8s %12s %10s %10s %10s\n", "config", "1st j ms", "2nd j ms", "speedup", "cpu ms", "val trials/s", "build c s", "build ll s", "scheme"
	for (i = 1; i <= n; i++) {
		c = cs[i]; p = med(ms["plastc", c]); q = med(ms["plastc_j", c])
		printf "%-26s %10s %10s %10s %8s %12s %10s %10s %10s\n", c, p == "" ? "-" : sprintf("%.1f", p), q == "" ? "-" : sprintf("%.1f", q),
			(p != "" && q != "" && q > 0) ? sprintf("%.2fx", p / q) : "-", med(cpu["plastc", c]) == "" ? "-" : sprintf("%.1f", med(cpu["plastc", c])),
			med(vt["plastc", c]) == "" ? "-" : sprintf("%.0f", med(vt["plastc", c])), cc[c] == "" ? "-" : cc[c], cl[c] == "" ? "-" : cl[c],
			sch[c] == "" ? "-" : sch[c]
	}
}' "$res"
