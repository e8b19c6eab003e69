# tests/emitc.mk -- tests of the emitc part
# The harness compiles generated C at test time: it needs the runtime header and OpenBLAS's flags.
EMITC_TEST_DEFS = -DEMITC_TEST_RT_INC='"$(abs_top_srcdir)/runtime"' \
	-DEMITC_TEST_BLAS_CFLAGS='"$(OPENBLAS_CFLAGS)"' -DEMITC_TEST_BLAS_LIBS='"$(OPENBLAS_LIBS)"'
check_PROGRAMS += tests/test_emitc
TESTS += tests/test_emitc
tests_test_emitc_SOURCES = tests/test_emitc.c tests/emitc_harness.c tests/emitc_harness.h
tests_test_emitc_CFLAGS = $(TEST_CFLAGS) $(EMITC_TEST_DEFS)
tests_test_emitc_LDADD = $(TEST_LIBS) -ldl
check_PROGRAMS += tests/test_emitc_models
TESTS += tests/test_emitc_models
tests_test_emitc_models_SOURCES = tests/test_emitc_models.c tests/emitc_harness.c tests/emitc_harness.h
tests_test_emitc_models_CFLAGS = $(TEST_CFLAGS) $(EMITC_TEST_DEFS)
tests_test_emitc_models_LDADD = $(TEST_LIBS) -ldl
TESTS += tests/test_build.sh
EXTRA_DIST += tests/test_build.sh
