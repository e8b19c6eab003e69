#!/bin/sh
# tests/test_robust.sh -- hostile inputs, generated at run time: `plastc check` must exit 1 with a located
# error, within a time limit, without crashing (any exit status other than 1, e.g. a signal, fails).
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
# the serial harness runs tests in the build dir and does not apply AM_TESTS_ENVIRONMENT
PLASTC=${PLASTC:-$(pwd)/plastc}
dir=$(mktemp -d "${TMPDIR:-/tmp}/plastc-robust.XXXXXX") || exit 99
trap 'rm -rf "$dir"' EXIT
fail=0

# expect NAME SUBSTRING: checks $dir/NAME.plast
expect() {
	out=$(timeout 20 "$PLASTC" check "$dir/$1.plast" 2>&1)
	rc=$?
	if [ "$rc" -ne 1 ]; then
		echo "FAIL: $1: exit status $rc (expected 1)"
		printf '%s\n' "$out" | head -n 5
		fail=$((fail + 1))
	elif ! printf '%s\n' "$out" | grep -q -- "$2"; then
		echo "FAIL: $1: no error containing '$2'"
		printf '%s\n' "$out" | head -n 5
		fail=$((fail + 1))
	else
		echo "ok: $1"
	fi
}

# deterministic pseudo-random bytes (awk's srand with a fixed seed)
garbage() {
	awk -v n="$1" -v seed="$2" 'BEGIN { srand(seed); for (i = 0; i < n; i++) printf "%c", int(rand() * 255) + 1 }'
}

printf 'const a = 1\000\n' > "$dir/nul.plast"
expect nul "NUL byte"

LC_ALL=C garbage 200000 7 | tr -d '\000' > "$dir/garbage.plast"
expect garbage "error:"

# binary garbage with short lines, so the scanner and parser (not the line limit) see it
LC_ALL=C garbage 300000 11 | tr -d '\000' | fold -w 80 > "$dir/garbage_lines.plast"
expect garbage_lines "error:"

printf '\377\376\375 const\n\300\200 model\n' > "$dir/utf8.plast"
expect utf8 "invalid UTF-8"

awk 'BEGIN { printf "const a = 1 "; for (i = 0; i < 5 * 1024 * 1024; i++) printf " "; print "" }' > "$dir/longline.plast"
expect longline "longer than 65536 bytes"

awk 'BEGIN { printf "const a = "; for (i = 0; i < 100000; i++) print "("; print "1" }' > "$dir/nesting.plast"
expect nesting "nesting deeper than 256 levels"

awk 'BEGIN { printf "const a = "; for (i = 0; i < 100000; i++) printf "["; print "" }' > "$dir/nesting_line.plast"
expect nesting_line "longer than 65536"

awk 'BEGIN { printf "const a = "; for (i = 0; i < 30000; i++) printf "-"; print "1" }' > "$dir/unary.plast"
expect unary "nested too deeply"

awk 'BEGIN { printf "const a = (1"; for (i = 0; i < 200000; i++) printf "\n+ 1"; print ")" }' > "$dir/wide.plast"
expect wide "nested deeper than 256"

awk 'BEGIN { for (i = 0; i < 5000; i++) print "const c" i " = c" i + 1 " + 1"; print "const c5000 = 0" }' > "$dir/chain.plast"
expect chain "more than 256 levels deep"

printf 'model m {\n input x[99999999999999999999]\n output y[1]\n linear h (x -> y)\n}\n' > "$dir/hugesize.plast"
expect hugesize "too large"

printf 'model m {\n input x[1e400]\n output y[-2]\n linear h (x -> y)\n}\n' > "$dir/badnum.plast"
expect badnum "out of range"

awk 'BEGIN { for (i = 0; i < 100000; i++) print "const a" i " = " i; print "const a7 = 1" }' > "$dir/manynames.plast"
expect manynames "redefinition of 'a7'"

awk 'BEGIN { for (i = 0; i < 50000; i++) print "}) ] = = -> ,"; }' > "$dir/manyerrors.plast"
expect manyerrors "too many errors"

echo "$fail failed"
[ "$fail" -eq 0 ]
