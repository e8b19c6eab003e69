# tests/llvm.mk -- tests of the llvm part
if HAVE_LLVM
check_PROGRAMS += tests/test_llvm tests/bench_llvm
TESTS += tests/test_llvm
tests_test_llvm_SOURCES = tests/test_llvm.c
tests_test_llvm_CFLAGS = $(TEST_CFLAGS) $(LLVM_CFLAGS)
tests_test_llvm_LDADD = $(TEST_LIBS)
# built by `make check`, run by hand: tests/bench_llvm [H [B [steps]]]
tests_bench_llvm_SOURCES = tests/bench_llvm.c
tests_bench_llvm_CFLAGS = $(TEST_CFLAGS) $(LLVM_CFLAGS)
tests_bench_llvm_LDADD = $(TEST_LIBS)
endif
EXTRA_DIST += tests/golden/llvm/rnn_none.expected
