#!/bin/sh
# bench/backends.sh -- the C and the LLVM backend side by side on the plastic cue-reward models: time per
# meta-training step (both backends alternated in each round, 1 thread), compile latency (DSL to runnable)
# and the size of the generated code. Prints one markdown table (docs/backends.md).
#
#   bench/backends.sh [-s STEPS] [-r ROUNDS] [-H HIDDEN] [MODEL...]
#     -s  steps timed per bench run (10)    -r  rounds; each runs C then LLVM on every model (3)
#     -H  --set hidden=N for every model (quick tests; default: the models' own, paper, sizes)
#     MODEL: names under models/cue_reward (default: rnn_hebbian rnn_gradient lstm_hebbian lstm_gradient)
# Set PLASTC=path (default ./plastc: run it from a build directory configured with LLVM).
#
# Columns:
#   ms/step       median over rounds of `plastc bench --threads 1`'s cpu_ms (CPU time per step; median_ms,
#                 the wall time, in brackets): C = the cached binary, LLVM = JIT'd in process
#   C build       `plastc build FILE -o BIN`: front end, gcc -O3, link (wall s; CPU s incl. gcc in brackets)
#   LLVM obj      `plastc build --backend llvm`: default<O3>, object file, link (wall s [CPU s])
#   JIT first     JIT start-up with an empty object cache (round 1 runs with --rebuild): `--time-passes`
#                 total, wall s [CPU s of the plastc process up to the start of training]
#   JIT cached    the same in later rounds, the object coming from the cache (wall ms)
#   code          bytes of the model's functions (`nm -S`, symbols <model>_*): C binary / LLVM binary;
#                 JIT = .text of the JIT's object (its cheaper pass pipeline, see docs/backends.md)
set -u
steps=10 rounds=3 hidden=''
while getopts s:r:H: opt; do
	case $opt in
	s) steps=$OPTARG ;;
	r) rounds=$OPTARG ;;
	H) hidden=$OPTARG ;;
	*) sed -n '2,26p' "$0"; exit 1 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] && set -- rnn_hebbian rnn_gradient lstm_hebbian lstm_gradient
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")
PLASTC=${PLASTC:-./plastc}
if [ ! -x "$PLASTC" ]; then
	echo "bench/backends.sh: $PLASTC is not an executable (set PLASTC=path)" >&2
	exit 2
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/plastc-backends.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
cache=$tmp/cache
set_h=''
[ -n "$hidden" ] && set_h="--set hidden=$hidden"

now() { date +%s.%N; }
# cpu_of FILE: user+sys seconds of the children as /usr/bin/time -f '%U %S' wrote them
timed() { # timed OUT CMD...: runs CMD, writes "wall cpu" to OUT (cpu empty without /usr/bin/time)
	out=$1; shift
	t0=$(now)
	if [ -x /usr/bin/time ]; then
		/usr/bin/time -f '%U %S' -o "$out.cpu" "$@" >"$out.log" 2>&1
	else
		"$@" >"$out.log" 2>&1
	fi
	rc=$?
	t1=$(now)
	cpu=$(awk '{printf "%.2f", $1 + $2}' "$out.cpu" 2>/dev/null)
	echo "$t0 $t1 ${cpu:-}" | awk '{printf "%.2f %s\n", $2 - $1, $3}' >"$out"
	return $rc
}
med() { sort -g | awk '{v[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
code_bytes() { # code_bytes BIN PREFIX: total size of the text symbols PREFIX_*
	nm -S -t d --defined-only "$1" 2>/dev/null | awk -v p="$2_" '$3 ~ /^[tT]$/ && index($4, p) == 1 {s += $2} END {print s + 0}'
}

for m in "$@"; do
	f=$src/models/cue_reward/$m.plast
	[ -f "$f" ] || { echo "bench/backends.sh: no model $f" >&2; exit 2; }
	pre=cue_reward_$m
	# shellcheck disable=SC2086
	timed "$tmp/$m.cbuild" "$PLASTC" build "$f" $set_h -o "$tmp/$m.c.bin" || { cat "$tmp/$m.cbuild.log" >&2; exit 1; }
	# shellcheck disable=SC2086
	timed "$tmp/$m.lbuild" "$PLASTC" build "$f" $set_h --backend llvm -o "$tmp/$m.llvm.bin" ||
		{ cat "$tmp/$m.lbuild.log" >&2; exit 1; }
	code_bytes "$tmp/$m.c.bin" "$pre" >"$tmp/$m.csize"
	code_bytes "$tmp/$m.llvm.bin" "$pre" >"$tmp/$m.lsize"
done

r=1
while [ "$r" -le "$rounds" ]; do
	for m in "$@"; do
		f=$src/models/cue_reward/$m.plast
		# shellcheck disable=SC2086
		"$PLASTC" bench "$f" $set_h --cache "$cache" --task cue_reward --steps "$steps" --threads 1 \
			>"$tmp/out" 2>&1 || { cat "$tmp/out" >&2; exit 1; }
		sed -n 's/.*cpu_ms=\([0-9.]*\).*/\1/p' "$tmp/out" >>"$tmp/$m.c.cpu"
		sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p' "$tmp/out" >>"$tmp/$m.c.wall"
		rb=''
		[ "$r" = 1 ] && rb=--rebuild
		# shellcheck disable=SC2086
		"$PLASTC" bench "$f" $set_h --backend llvm --cache "$cache" $rb --time-passes --task cue_reward \
			--steps "$steps" --threads 1 >"$tmp/out" 2>&1 || { cat "$tmp/out" >&2; exit 1; }
		sed -n 's/.*cpu_ms=\([0-9.]*\).*/\1/p' "$tmp/out" >>"$tmp/$m.l.cpu"
		sed -n 's/.*median_ms=\([0-9.]*\).*/\1/p' "$tmp/out" >>"$tmp/$m.l.wall"
		tot=$(sed -n 's/^time-passes: total *\([0-9.]*\) ms/\1/p' "$tmp/out")
		if [ "$r" = 1 ]; then
			echo "$tot $(sed -n 's/^time-passes: CPU time of plastc *\([0-9.]*\) ms/\1/p' "$tmp/out")" >"$tmp/$m.jit1"
			sed -n 's/^time-passes: code size *\([0-9]*\) bytes.*/\1/p' "$tmp/out" >"$tmp/$m.jsize"
		else
			echo "$tot" >>"$tmp/$m.jitc"
		fi
	done
	r=$((r + 1))
done

echo "plastc backends: $steps steps x $rounds rounds, 1 thread, batch 64; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'); load average $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "command: PLASTC=$PLASTC sh bench/backends.sh -s $steps -r $rounds${hidden:+ -H $hidden} $*"
echo
echo "| model | C ms/step | LLVM ms/step | LLVM/C | C build | LLVM obj | JIT first | JIT cached | code C / LLVM / JIT |"
echo "|---|---|---|---|---|---|---|---|---|"
for m in "$@"; do
	cc=$(med <"$tmp/$m.c.cpu") cw=$(med <"$tmp/$m.c.wall") lc=$(med <"$tmp/$m.l.cpu") lw=$(med <"$tmp/$m.l.wall")
	ratio=$(echo "$lc $cc" | awk '$2 > 0 {printf "%.2f", $1 / $2}')
	cb=$(cat "$tmp/$m.cbuild") lb=$(cat "$tmp/$m.lbuild") j1=$(cat "$tmp/$m.jit1")
	jc=$( (cat "$tmp/$m.jitc" 2>/dev/null || true) | med)
	printf '| %s | %.1f [%.1f] | %.1f [%.1f] | %s | %s s [%s] | %s s [%s] | %s | %s ms | %s / %s / %s |\n' \
		"$m" "$cc" "$cw" "$lc" "$lw" "$ratio" "${cb% *}" "${cb#* }" "${lb% *}" "${lb#* }" \
		"$(echo "$j1" | awk '{printf "%.2f s [%.2f]", $1 / 1000, $2 / 1000}')" "$jc" \
		"$(cat "$tmp/$m.csize")" "$(cat "$tmp/$m.lsize")" "$(cat "$tmp/$m.jsize")"
done
