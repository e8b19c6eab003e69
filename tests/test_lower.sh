#!/bin/sh
# tests/test_lower.sh -- lowering of every shipped model (models/, examples/, tests/models/) produces a
# step function that passes ir_verify (lower_model verifies and exits 2 otherwise), then retimes it
# (compiler/retime.c), derives and optimises the step VJP; and the IR of two small models, and the retimed
# step of tests/models/retime_gate.plast (pending values and the started flag), match the golden dumps in
# tests/golden/.
# Regenerate the golden files with: tests/test_lower.sh --update
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
# the serial harness runs tests in the build dir and does not apply AM_TESTS_ENVIRONMENT
PLASTC=${PLASTC:-$(pwd)/plastc}
cd "$top_srcdir" || exit 99
fail=0
n=0
for f in $(find models examples tests/models -name '*.plast' 2>/dev/null | sort); do
	grep -q '^[[:space:]]*model[[:space:]]' "$f" || continue # rule libraries
	n=$((n + 1))
	for stage in ir retime opt; do
		if ! timeout 60 "$PLASTC" dump "$f" --stage "$stage" > /dev/null 2> "${TMPDIR:-/tmp}/plastc-lower.$$"; then
			echo "FAIL: $f: plastc dump --stage $stage"
			head -n 20 "${TMPDIR:-/tmp}/plastc-lower.$$"
			fail=$((fail + 1))
		fi
	done
	echo "ok: $f"
done
rm -f "${TMPDIR:-/tmp}/plastc-lower.$$"
[ "$n" -ge 3 ] || { echo "FAIL: only $n models found"; fail=$((fail + 1)); }

for spec in tiny:ir tiny_grad:ir retime_gate:retime; do
	m=${spec%%:*}
	stage=${spec#*:}
	golden=tests/golden/$m.$stage
	if [ "${1:-}" = "--update" ]; then
		PLASTC_NO_RETIME= "$PLASTC" dump "tests/models/$m.plast" --stage "$stage" > "$golden"
		echo "updated $golden"
		continue
	fi
	if PLASTC_NO_RETIME= "$PLASTC" dump "tests/models/$m.plast" --stage "$stage" | diff -u "$golden" - ; then
		echo "ok: $golden"
	else
		echo "FAIL: $golden differs (tests/test_lower.sh --update regenerates it)"
		fail=$((fail + 1))
	fi
done
echo "$n models lowered, $fail failed"
[ "$fail" -eq 0 ]
