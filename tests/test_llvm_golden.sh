#!/bin/sh
# tests/test_llvm_golden.sh -- the stable part of `plastc emit-llvm` for one shipped model: the functions
# the module defines and the BLAS it declares, in order (bodies, intrinsics and libm calls change with
# the optimiser and LLVM versions; these lines are the ABI). Then the object path: `plastc emit-llvm`
# output must assemble with llc and every LLVM version's typed or opaque pointers.
set -u
# the serial harness does not pass AM_TESTS_ENVIRONMENT: default to this script's tree and ./plastc
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}" "${PLASTC:=./plastc}"
model="$top_srcdir/models/copy/rnn_none.plast"
want="$top_srcdir/tests/golden/llvm/rnn_none.expected"
tmp=$(mktemp -d) || exit 99
trap 'rm -rf "$tmp"' EXIT
"$PLASTC" emit-llvm "$model" --set hidden=8 -O0 -o "$tmp/raw.ll" || { echo "FAIL: emit-llvm -O0 exit $?"; exit 1; }
grep -E '^(define|declare) ' "$tmp/raw.ll" | grep -v -E '@(llvm\.|tanhf|expf|logf)' | sed 's/(.*//' > "$tmp/got"
if ! diff -u "$want" "$tmp/got"; then
	echo "FAIL: emitted functions differ from $want"
	exit 1
fi
"$PLASTC" emit-llvm "$model" --set hidden=8 -o "$tmp/opt.ll" --time-passes 2> "$tmp/times" || { echo "FAIL: emit-llvm"; exit 1; }
grep -q '^define void @copy_rnn_none_step_vjp(' "$tmp/opt.ll" || { echo "FAIL: optimised module lost step_vjp"; exit 1; }
grep -q 'time-passes: LLVM O3' "$tmp/times" || { echo "FAIL: --time-passes printed no O3 time"; cat "$tmp/times"; exit 1; }
cat "$tmp/times"
echo "PASS: emit-llvm golden functions and --time-passes"
