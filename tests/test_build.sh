#!/bin/sh
# tests/test_build.sh -- plastc emit-c, build, train and eval end to end, and the model cache.
#   emit-c writes a C file with the descriptor (and main only with --main); build makes a binary whose
#   --help works and whose `grad` subcommand runs; train builds into the cache once, and a second run with
#   the same model and flags uses the cached binary (log line, same inode and mtime); another --set
#   value makes another entry; eval runs the cached binary on the checkpoint that train wrote.
set -u
: "${PLASTC:?}" "${top_srcdir:?}"
M="$top_srcdir/models/copy/rnn_none.plast"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/plastc-build-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
n=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
fail() { echo "FAIL: $*"; for f in "$tmp"/*.log; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; }; done; exit 1; }

# emit-c
"$PLASTC" emit-c "$M" --set hidden=8 -o "$tmp/m.c" 2>"$tmp/emit.log" || fail "emit-c"
grep -q '^const PlModel copy_rnn_none_model = {' "$tmp/m.c" || fail "emit-c: no descriptor"
grep -q '^#line [0-9]* ".*rnn_none.plast"' "$tmp/m.c" || fail "emit-c: no #line to the model"
grep -q 'int main(' "$tmp/m.c" && fail "emit-c: main without --main"
"$PLASTC" emit-c "$M" --set hidden=8 --main >"$tmp/main.c" 2>>"$tmp/emit.log" || fail "emit-c --main to stdout"
grep -q 'return pl_main(&copy_rnn_none_model, argc, argv);' "$tmp/main.c" || fail "emit-c --main: no main"
ok "emit-c"

# user errors exit 1 with a message
"$PLASTC" emit-c "$M" --bogus >/dev/null 2>"$tmp/err.log"; rc=$?
[ $rc -eq 1 ] && grep -q "unknown option '--bogus'" "$tmp/err.log" || fail "emit-c --bogus: rc $rc"
"$PLASTC" build "$M" 2>"$tmp/err.log"; rc=$?
[ $rc -eq 1 ] && grep -q 'no output given' "$tmp/err.log" || fail "build without -o: rc $rc"
"$PLASTC" build "$tmp/none.plast" -o "$tmp/x" 2>"$tmp/err.log"; rc=$?
[ $rc -eq 1 ] || fail "build of a missing file: rc $rc"
rm -f "$tmp/err.log"
ok "usage errors"

# build: a standalone binary
"$PLASTC" build "$M" --set hidden=8 -o "$tmp/bin" 2>"$tmp/build.log" || fail "build"
"$tmp/bin" --help >"$tmp/help.log" 2>&1 || fail "bin --help"
grep -q 'train' "$tmp/help.log" && grep -q 'copy_rnn_none' "$tmp/help.log" || fail "bin --help text"
"$tmp/bin" init --seed 1 -o "$tmp/p.safetensors" >"$tmp/init.log" 2>&1 || fail "bin init"
[ -s "$tmp/p.safetensors" ] || fail "bin init wrote nothing"
ok "build"

# train through the cache: the first run builds, the second reuses
cache="$tmp/cache"
run_train() {
	"$PLASTC" train "$M" --set hidden=8 --cache "$cache" --task copy --steps 2 --batch 4 --val-every 1 \
		--val-trials 4 --test-trials 4 --quiet --out "$tmp/$1" 2>"$tmp/$1.log" >>"$tmp/$1.log"
}
run_train run1 || fail "train 1"
grep -q 'plastc: built model binary' "$tmp/run1.log" || fail "train 1 did not build"
bin=$(ls "$cache"/copy_rnn_none-*/copy_rnn_none) || fail "no binary in the cache"
[ "$(echo "$bin" | wc -l)" -eq 1 ] || fail "more than one cache entry"
[ -f "$tmp/run1/metrics.csv" ] || fail "train 1 wrote no metrics"
before=$(stat -c '%i %Y' "$bin")
sleep 1
run_train run2 || fail "train 2"
grep -q "plastc: using cached model binary $bin" "$tmp/run2.log" || fail "train 2 did not use the cache"
grep -q 'built model binary' "$tmp/run2.log" && fail "train 2 rebuilt"
[ "$(stat -c '%i %Y' "$bin")" = "$before" ] || fail "train 2 replaced the binary"
ok "cache hit"

"$PLASTC" train "$M" --set hidden=6 --cache "$cache" --task copy --steps 1 --batch 4 --val-every 1 \
	--val-trials 4 --test-trials 4 --quiet --out "$tmp/run3" >"$tmp/run3.log" 2>&1 || fail "train 3"
[ "$(ls -d "$cache"/copy_rnn_none-* | wc -l)" -eq 2 ] || fail "another --set value should be another entry"
ls -a "$cache"/copy_rnn_none-*/ | grep -q '\.tmp\.' && fail "temporary files left in the cache"
ok "cache miss on a new setting"

# eval runs the cached binary
ck=$(ls "$tmp/run1"/*.safetensors | head -1)
"$PLASTC" eval "$M" --set hidden=8 --cache "$cache" --checkpoint "$ck" --task copy --trials 8 --batch 4 \
	>"$tmp/eval.log" 2>&1 || fail "eval"
grep -q "using cached model binary $bin" "$tmp/eval.log" || fail "eval did not use the cache"
ok "eval"
# the LLVM backend, when this plastc has it: build links its object the same way
if "$PLASTC" build "$M" --set hidden=8 --backend llvm -o "$tmp/lbin" 2>"$tmp/llvm.log"; then
	"$tmp/lbin" --help 2>&1 | grep -q 'copy_rnn_none' || fail "llvm binary --help"
	ok "build --backend llvm"
else
	grep -q 'built without the LLVM backend' "$tmp/llvm.log" || fail "build --backend llvm"
	echo "# no LLVM backend in this plastc: build --backend llvm not checked"
fi
rm -f "$tmp/llvm.log"
echo "# $n checks passed"
