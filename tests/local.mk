# tests/local.mk -- `make check`: cmocka unit tests, golden tests, derivative checks, end-to-end runs.
TEST_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS) -Wno-unused-parameter
TEST_LIBS = $(PLASTC_LIBS) $(CMOCKA_LIBS)
TESTS_ENVIRONMENT = top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' \
	PLASTC='$(abs_top_builddir)/plastc' PLASTC_SAN_CFLAGS='$(SAN_CFLAGS)'; \
	export top_srcdir top_builddir PLASTC PLASTC_SAN_CFLAGS;
include $(srcdir)/tests/frontend.mk
include $(srcdir)/tests/ir.mk
include $(srcdir)/tests/runtime.mk
include $(srcdir)/tests/emitc.mk
include $(srcdir)/tests/llvm.mk
include $(srcdir)/tests/e2e.mk
include $(srcdir)/tests/bench.mk
include $(srcdir)/tests/miconi.mk
include $(srcdir)/tests/fsc.mk
include $(srcdir)/tests/grad.mk
include $(srcdir)/tests/mpi.mk
include $(srcdir)/tests/compare.mk
include $(srcdir)/tests/perf.mk
include $(srcdir)/tests/bnrun.mk
