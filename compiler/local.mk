# compiler/local.mk -- libplastcc.a (every stage of the compiler) and the plastc driver.
noinst_LIBRARIES += compiler/libplastcc.a
compiler_libplastcc_a_SOURCES = \
	compiler/diag.h compiler/ir.h compiler/ops.def
compiler_libplastcc_a_CFLAGS = $(AM_CFLAGS) $(LLVM_CFLAGS) $(JANSSON_CFLAGS)

PLASTC_LIBS = compiler/libplastcc.a grammar/libgrammar.a compiler/libplastcc.a runtime/libplastrt.a \
	$(LLVM_LIBS) $(JANSSON_LIBS) $(OPENBLAS_LIBS)

bin_PROGRAMS += plastc
plastc_SOURCES = compiler/main.c
plastc_CFLAGS = $(AM_CFLAGS) $(LLVM_CFLAGS)
plastc_LDADD = $(PLASTC_LIBS)
include $(srcdir)/compiler/frontend.mk
include $(srcdir)/compiler/ir.mk
include $(srcdir)/compiler/emitc.mk
include $(srcdir)/compiler/llvm.mk
include $(srcdir)/compiler/fsc.mk
include $(srcdir)/compiler/grad.mk
include $(srcdir)/compiler/compare.mk
