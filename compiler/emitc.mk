# compiler/emitc.mk -- sources of the emitc part of libplastcc.a (owned by that part)
compiler_libplastcc_a_SOURCES += compiler/memplan.c compiler/memplan.h compiler/emit_c.c compiler/emit_c.h
