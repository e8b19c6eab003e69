#!/bin/sh
# tests/test_cli.sh -- the plastc command line: help, version, exit codes, the `dump --stage params`
# format (grep-friendly: NAME  SHAPE  INIT, then `total N`) and --set.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
PLASTC=${PLASTC:-$(pwd)/plastc}
cd "$top_srcdir" || exit 99
fail=0
# t DESCRIPTION EXPECTED_STATUS GREP_PATTERN -- ARGS...
t() {
	desc=$1 want=$2 pat=$3
	shift 4
	out=$("$PLASTC" "$@" 2>&1)
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "FAIL: $desc: exit status $rc, expected $want"; printf '%s\n' "$out" | head -n 5; fail=$((fail + 1))
	elif ! printf '%s\n' "$out" | grep -q -- "$pat"; then
		echo "FAIL: $desc: output lacks '$pat'"; printf '%s\n' "$out" | head -n 5; fail=$((fail + 1))
	else
		echo "ok: $desc"
	fi
}
t "version" 0 "^plastc [0-9]" -- --version
t "help lists check" 0 "^  check " -- --help
t "help lists dump" 0 "^  dump " -- --help
t "no command" 1 "usage: plastc COMMAND" --
t "unknown command" 1 "did you mean 'check'" -- chek
t "check --help" 0 "usage: plastc check FILE" -- check --help
t "dump --help" 0 "usage: plastc dump FILE --stage" -- dump --help
t "check without files" 1 "no FILE given" -- check
t "check a missing file" 1 "plastc: error: tests/models/nope.plast: No such file" -- check tests/models/nope.plast
t "check clean files" 0 "" -- check tests/models/rnn.plast tests/models/lib.plast tests/models/lstm.plast
t "check with a set" 0 "" -- check tests/models/rnn.plast --set hidden=64
t "check with an unknown set" 1 "unknown constant 'hiden'" -- check tests/models/rnn.plast --set hiden=64
t "dump needs a stage" 1 "--stage is required" -- dump tests/models/rnn.plast
t "dump unknown stage" 1 "unknown stage 'foo'" -- dump tests/models/rnn.plast --stage foo
t "params line" 0 "^enc.w  \[16,256\]  uniform(-0.0625,0.0625)$" -- dump tests/models/rnn.plast --stage params
t "params alpha" 0 "^cell.alpha_w_hh  \[256,256\]  uniform(-1,1)$" -- dump tests/models/rnn.plast --stage params
t "params total (reference count, gradient rule)" 0 "^total 274962$" -- dump tests/models/rnn.plast --stage params --set rule=gradient
t "params --set hidden" 0 "^cell.w_hh  \[128,128\]  uniform(-0.08838834764831843,0.08838834764831843)$" -- dump tests/models/rnn.plast --stage params --set hidden=128
t "params hh_init" 0 "^cell.w_hh  \[4,4\]  identity(0.5)$" -- dump tests/models/irnn.plast --stage params
t "params hh_init bias" 0 "^cell.b_hh  \[4\]  zero$" -- dump tests/models/irnn.plast --stage params
t "params hh_init leaves w_ih" 0 "^cell.w_ih  \[3,4\]  uniform(-0.5,0.5)$" -- dump tests/models/irnn.plast --stage params
t "params rec_init default" 0 "^cell.w_hh  \[768,768\]  uniform(-0.036084391824351615,0.036084391824351615)$" -- dump models/oneshot/rnn_none.plast --stage params
t "params --set rec_init=identity" 0 "^cell.w_hh  \[768,768\]  identity(1)$" -- dump models/oneshot/rnn_none.plast --stage params --set rec_init=identity
t "params rec_init: a number is no init name" 1 "unknown name 'glorot'" -- dump models/oneshot/rnn_none.plast --stage params --set rec_init=glorot
t "params fixed" 0 "^cell.b_hh  \[8\]  uniform(-0.1,0.1)  fixed$" -- dump tests/models/features.plast --stage params
t "state table" 0 "^cell.h  \[B,256\]$" -- dump tests/models/rnn.plast --stage state
t "ast" 0 "^  plastic rnn cell (enc -> hidden) relu" -- dump tests/models/rnn.plast --stage ast
t "grad" 0 "^func step_vjp" -- dump tests/models/tiny_grad.plast --stage grad
t "opt" 0 "^func step_forward" -- dump tests/models/lstm.plast --stage opt
echo "$fail failed"
[ "$fail" -eq 0 ]
