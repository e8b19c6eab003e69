# tests/perf.mk -- the runtime's execution schemes (threads, row blocks, BPTT strategies) against the
# interpreter, both backends; the bench subcommand.
PERF_TEST_DEFS = -DPERF_TEST_RT_INC='"$(abs_top_srcdir)/runtime"' \
	-DPERF_TEST_BLAS_CFLAGS='"$(OPENBLAS_CFLAGS)"' -DPERF_TEST_BLAS_LIBS='"$(OPENBLAS_LIBS)"'
check_PROGRAMS += tests/test_perf
TESTS += tests/test_perf
tests_test_perf_SOURCES = tests/test_perf.c
tests_test_perf_CFLAGS = $(TEST_CFLAGS) $(LLVM_CFLAGS) $(PERF_TEST_DEFS)
tests_test_perf_LDADD = $(TEST_LIBS) -ldl
TESTS += tests/test_bench.sh
EXTRA_DIST += tests/test_bench.sh
