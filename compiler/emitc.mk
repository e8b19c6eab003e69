# compiler/emitc.mk -- sources of the emitc part of libplastcc.a (owned by that part)
compiler_libplastcc_a_SOURCES += compiler/memplan.c compiler/memplan.h compiler/emit_c.c compiler/emit_c.h
compiler_libplastcc_a_SOURCES += compiler/cmd_build.c
# where `plastc build` finds OpenBLAS, jansson and an installed runtime; sanitizer flags must match the
# runtime library's
compiler_libplastcc_a_CFLAGS += -DPLASTC_BLAS_CFLAGS='"$(OPENBLAS_CFLAGS)"' \
	-DPLASTC_BLAS_LIBS='"$(OPENBLAS_LIBS)"' -DPLASTC_JANSSON_LIBS='"$(JANSSON_LIBS)"' \
	-DPLASTC_SAN_CFLAGS='"$(SAN_CFLAGS)"' -DPLASTC_INCLUDEDIR='"$(includedir)"' -DPLASTC_LIBDIR='"$(libdir)"'
