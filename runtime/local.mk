# runtime/local.mk -- libplastrt.a, linked into plastc and into every per-model binary.
lib_LIBRARIES += runtime/libplastrt.a
runtime_libplastrt_a_SOURCES = runtime/plastrt.h runtime/model.c
runtime_libplastrt_a_CFLAGS = $(AM_CFLAGS) $(OPENBLAS_CFLAGS) $(JANSSON_CFLAGS)
include_HEADERS = runtime/plastrt.h
include $(srcdir)/runtime/more.mk
include $(srcdir)/runtime/miconi.mk
include $(srcdir)/runtime/fsc.mk
