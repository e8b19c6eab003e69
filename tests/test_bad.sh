#!/bin/sh
# tests/test_bad.sh -- golden diagnostics: every tests/bad/*.plast must fail `plastc check` (exit 1)
# with exactly the errors its comments announce.
#
#   # expect-error: SUBSTRING          on the offending line: an error at that line containing SUBSTRING
#   # expect-error-global: SUBSTRING   an error without a location ("plastc: error: ...")
#   # check-args: ARGS                 extra arguments for plastc check (e.g. --set k=v)
#
# Every expected error must appear, and every reported error must be on a line (or, for unlocated
# errors, be global) that has an expectation. Runs with PLASTC_DIAG_FORMAT=machine.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
# the serial harness runs tests in the build dir and does not apply AM_TESTS_ENVIRONMENT
PLASTC=${PLASTC:-$(pwd)/plastc}
cd "$top_srcdir" || exit 99
fail=0
n=0
for f in tests/bad/*.plast; do
	n=$((n + 1))
	args=$(sed -n 's/^# check-args: //p' "$f" | head -n 1)
	# shellcheck disable=SC2086
	out=$(PLASTC_DIAG_FORMAT=machine timeout 20 "$PLASTC" check $args "$f" 2>&1)
	rc=$?
	bad=""
	if [ "$rc" -ne 1 ]; then
		bad="exit status $rc, expected 1"
	fi
	# expectations: "LINE<TAB>SUBSTRING" (LINE 0 = global)
	exp=$(LC_ALL=C awk '{
		line = $0
		while ((i = index(line, "# expect-error-global: ")) > 0) {
			rest = substr(line, i + 23); j = index(rest, " # expect-"); s = j ? substr(rest, 1, j - 1) : rest
			sub(/[ \t]+$/, "", s); print "0\t" s; line = j ? substr(rest, j) : ""
		}
		line = $0
		while ((i = index(line, "# expect-error: ")) > 0) {
			rest = substr(line, i + 16); j = index(rest, " # expect-"); s = j ? substr(rest, 1, j - 1) : rest
			sub(/[ \t]+$/, "", s); print NR "\t" s; line = j ? substr(rest, j) : ""
		}
	}' "$f")
	# actual errors: "LINE<TAB>MESSAGE"
	act=$(printf '%s\n' "$out" | LC_ALL=C awk -v f="$f" '
		index($0, f ":") == 1 {
			rest = substr($0, length(f) + 2)
			split(rest, p, ":")
			if (index(rest, ": error: ") > 0) { m = substr(rest, index(rest, ": error: ") + 9); print p[1] "\t" m }
			next
		}
		/^plastc: error: / { print "0\t" substr($0, 16); next }
		/: error: / { print "-1\t" $0 }')
	tab=$(printf '\t')
	# every expectation met
	while IFS="$tab" read -r line sub; do
		[ -z "$line" ] && continue
		if ! printf '%s\n' "$act" | LC_ALL=C awk -F '\t' -v l="$line" -v s="$sub" '$1 == l && index($2, s) { ok = 1 } END { exit !ok }'; then
			bad="$bad${bad:+; }missing at line $line: '$sub'"
		fi
	done <<EOT
$exp
EOT
	# no unexpected error
	while IFS="$tab" read -r line msg; do
		[ -z "$line" ] && continue
		if ! printf '%s\n' "$exp" | LC_ALL=C awk -F '\t' -v l="$line" '$1 == l { ok = 1 } END { exit !ok }'; then
			bad="$bad${bad:+; }unexpected error at line $line: $msg"
		fi
	done <<EOT
$act
EOT
	if [ -n "$bad" ]; then
		echo "FAIL: $f: $bad"
		printf '%s\n' "$out" | sed 's/^/    | /'
		fail=$((fail + 1))
	else
		echo "ok: $f"
	fi
done
echo "$n bad files, $fail failed"
[ "$n" -ge 25 ] || { echo "FAIL: fewer than 25 bad files"; exit 1; }
[ "$fail" -eq 0 ]
