#!/usr/bin/env bash
# scripts/bootstrap.sh -- the README's two commands.
#
#   bash scripts/bootstrap.sh demo   install missing Debian packages, build, compile a shipped model and
#                                    meta-train it on its default task (progress on the terminal)
#   bash scripts/bootstrap.sh test   install missing Debian packages, build with -Werror, run `make check`,
#                                    then the suite again under ASan+UBSan, then the front-end fuzzer
#
# Build trees: _build (normal, --with-mpi: `make check` there runs the MPI tests on loopback), _build-san
# (sanitizers, without MPI: OpenMPI's own allocations in MPI_Init/MPI_Finalize are reported as leaks and a
# suppression list broad enough to hide them would hide ours too; docs/SCALING.md), _build-fuzz (libFuzzer).
# Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
mode=${1:-}
jobs=$(nproc 2>/dev/null || echo 2)

PACKAGES="build-essential pkg-config autoconf automake flex bison libopenblas-dev libcmocka-dev
libjansson-dev zlib1g-dev llvm-14-dev clang-14 libclang-rt-14-dev gnuplot-nox python3
libpng-dev libjpeg-dev dataset-fashion-mnist libopenmpi-dev openmpi-bin"

step() { printf '\n==> %s\n' "$*"; }

install_packages() {
	local missing=()
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		echo "all Debian packages present"
		return
	fi
	step "installing: ${missing[*]}"
	local sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() { # build DIR CONFIGURE-ARGS...
	local dir=$1; shift
	[ -x configure ] || { step "autogen"; ./autogen.sh >/dev/null 2>&1 || ./autogen.sh; }
	mkdir -p "$dir"
	# reconfigure when the arguments changed too (a _build from before --with-mpi, or demo then test)
	if [ ! -f "$dir/Makefile" ] || [ configure -nt "$dir/Makefile" ] \
		|| [ "$(cat "$dir/.bootstrap-args" 2>/dev/null)" != "$*" ]; then
		step "configure $dir: $*"
		(cd "$dir" && "$top/configure" -q "$@")
		printf '%s\n' "$*" >"$dir/.bootstrap-args"
	fi
	step "make ($dir)"
	make -C "$dir" -j"$jobs" >/dev/null
}

case "$mode" in
demo)
	install_packages
	build _build --with-mpi
	step "plastc check + dump params on a shipped model"
	_build/plastc check models/cue_reward/rnn_hebbian.plast
	_build/plastc dump models/cue_reward/rnn_hebbian.plast --stage params | tail -n 3
	if _build/plastc train --help >/dev/null 2>&1; then
		step "meta-training the plastic RNN (Hebbian) on cue-reward"
		mkdir -p runs # train creates --out itself but not its parents (a fresh clone has no runs/)
		_build/plastc train models/cue_reward/rnn_hebbian.plast --task cue_reward --steps "${STEPS:-300}" \
			--val-every 100 --val-trials 1280 --test-trials 6400 --out runs/demo
		echo "metrics: runs/demo/metrics.csv (step,split,loss,metric,seconds); parameters: runs/demo/best.safetensors"
	fi
	;;
test)
	install_packages
	build _build --enable-werror --with-mpi
	step "make check"
	make -C _build -j"$jobs" check
	step "make check under AddressSanitizer + UndefinedBehaviorSanitizer"
	build _build-san --enable-werror --enable-asan --enable-ubsan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		make -C _build-san -j"$jobs" check
	if [ -x tests/fuzz/run-fuzz.sh ]; then
		step "fuzzing the front end (libFuzzer, ${FUZZ_SECONDS:-60} s)"
		tests/fuzz/run-fuzz.sh "${FUZZ_SECONDS:-60}"
	fi
	step "all tests passed"
	;;
*)
	echo "usage: bash scripts/bootstrap.sh demo|test" >&2
	exit 1
	;;
esac
