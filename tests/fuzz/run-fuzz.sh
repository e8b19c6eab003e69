#!/usr/bin/env bash
# tests/fuzz/run-fuzz.sh [SECONDS] -- build the front-end libFuzzer target and run it for SECONDS (default 60).
#
# Not part of automake: libFuzzer needs clang and its own main, and the sanitizer flags must cover every
# front-end object. The script generates the scanner and parser with flex and bison into a temporary
# directory, compiles them with the compiler sources the front end needs (parse, sema and what they
# call; see below) and tests/fuzz/fuzz_frontend.c, seeds a corpus from every
# shipped model, tests/bad/*.plast and examples/*.plast, and runs libFuzzer.
#
# Outputs in $FUZZ_DIR (default _build-fuzz): the binary, corpus/ (kept between runs, so later runs
# start from what earlier ones found) and artifacts/ (reproducers). Exit status: 0 if no crash, 1 on a
# crash, leak, timeout or out-of-memory (the reproducer path is printed; replay it with
# `_build-fuzz/fuzz_frontend PATH`), 2 if the target cannot be built.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
seconds=${1:-60}
case "$seconds" in ''|*[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2;; esac
out=${FUZZ_DIR:-$top/_build-fuzz}
cc=${FUZZ_CC:-clang-14}
command -v "$cc" >/dev/null 2>&1 || cc=clang
command -v "$cc" >/dev/null 2>&1 || { echo "run-fuzz: clang-14 not found" >&2; exit 2; }

mkdir -p "$out/corpus" "$out/artifacts"
gen=$(mktemp -d "${TMPDIR:-/tmp}/plastc-fuzz.XXXXXX")
trap 'rm -rf "$gen"' EXIT

# --- generated scanner and parser ---
(cd "$gen" && bison -d -o parser.c "$top/grammar/parser.y" && flex -o lexer.c "$top/grammar/lexer.l") || {
	echo "run-fuzz: flex/bison failed" >&2; exit 2; }
# config.h as configure would write it (only the names the sources use).
cat >"$gen/config.h" <<'CONF'
#define PACKAGE "plastc"
#define PACKAGE_NAME "plastc"
#define PACKAGE_VERSION "fuzz"
#define PACKAGE_STRING "plastc fuzz"
#define VERSION "fuzz"
CONF

# --- sources: every compiler/*.c but main.c (and runtime/*.c); each goes into an archive, and the
# target links against it, so only the objects the front end reaches (sema pulls in the IR shape code)
# are linked. A file that does not compile (a backend needing headers absent here) is skipped with a
# note: if the front end needed it, the link fails and the script exits 2.
srcs=$(cd "$top" && ls compiler/*.c runtime/*.c 2>/dev/null | grep -v '^compiler/main\.c$')
srcs="$srcs ${FUZZ_EXTRA_SOURCES:-}"
[ -n "$srcs" ] || { echo "run-fuzz: no compiler sources found" >&2; exit 2; }

flags="-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
	-std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -DHAVE_CONFIG_H -DPLASTC_FUZZ
	-I$gen -I$top/compiler -I$top/runtime -I$top/grammar -I$top -w"
extra_inc="$(pkg-config --cflags jansson openblas 2>/dev/null) $(llvm-config-14 --cppflags 2>/dev/null)"
objs=()
for s in $srcs; do
	[ -f "$top/$s" ] || { echo "run-fuzz: note: $s is listed but absent, skipped" >&2; continue; }
	o="$gen/$(printf '%s' "${s%.c}" | tr '/' '_').o"
	# shellcheck disable=SC2086
	$cc $flags $extra_inc -c -o "$o" "$top/$s" 2>"$o.err" || { echo "run-fuzz: note: $s does not compile here, skipped" >&2; continue; }
	objs+=("$o")
done
for g in lexer parser; do
	# shellcheck disable=SC2086
	$cc $flags -c -o "$gen/$g.o" "$gen/$g.c" || { echo "run-fuzz: build of generated $g.c failed" >&2; exit 2; }
	objs+=("$gen/$g.o")
done
ar cr "$gen/libfrontend.a" "${objs[@]}"
echo "run-fuzz: linking $out/fuzz_frontend"
# shellcheck disable=SC2086
$cc ${flags/fuzzer-no-link/fuzzer} -o "$out/fuzz_frontend" "$here/fuzz_frontend.c" "$gen/libfrontend.a" -lm $(pkg-config --libs openblas 2>/dev/null) || {
	echo "run-fuzz: link failed" >&2; exit 2; }

# --- seed corpus (a copy, so libFuzzer may add to corpus/ without touching the tree) ---
seeds="$out/seeds"
rm -rf "$seeds" && mkdir -p "$seeds"
n=0
while IFS= read -r f; do
	cp "$f" "$seeds/$(printf '%s' "${f#$top/}" | tr '/' '_')" && n=$((n + 1))
done < <(find "$top/models" "$top/tests/bad" "$top/examples" -name '*.plast' -type f 2>/dev/null | sort)
# The target does not read imports; it takes a program as files separated by `#---` lines. So that the
# seeds reach deep into sema, each model that imports is also seeded joined with its imports.
while IFS= read -r f; do
	seed="$seeds/joined_$(printf '%s' "${f#$top/}" | tr '/' '_')"
	cp "$f" "$seed"
	for imp in $(sed -n 's/^import[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
		[ -f "$(dirname "$f")/$imp" ] && { printf '\n#---\n'; cat "$(dirname "$f")/$imp"; } >>"$seed"
	done
	n=$((n + 1))
done < <(grep -l '^import' $(find "$top/models" "$top/examples" -name '*.plast' -type f) 2>/dev/null)
echo "run-fuzz: $n seed files; fuzzing for $seconds s"

# --- run; libFuzzer exits non-zero on any finding ---
"$out/fuzz_frontend" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
	-dict="$here/plast.dict" -artifact_prefix="$out/artifacts/" -print_final_stats=1 \
	"$out/corpus" "$seeds" 2>"$out/fuzz.log"
rc=$?
if [ $rc -ne 0 ]; then
	grep -v -e '^"' -e 'Recommended dictionary' -e 'End of recommended' "$out/fuzz.log" | tail -n 60 >&2
	repro=$(grep -o "Test unit written to [^ ]*" "$out/fuzz.log" | tail -n 1 | sed 's/Test unit written to //')
	echo "run-fuzz: FAILED (libFuzzer exit $rc); full log: $out/fuzz.log" >&2
	[ -n "$repro" ] && echo "run-fuzz: reproducer: $repro  (replay: $out/fuzz_frontend $repro)" >&2
	exit 1
fi
grep -E '^(Done|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb))' "$out/fuzz.log"
echo "run-fuzz: no crash in $seconds s ($(ls "$out/corpus" | wc -l) corpus entries)"
