# compiler/fsc.mk -- sources of the few-shot classification part of libplastcc.a (image encoder builders)
compiler_libplastcc_a_SOURCES += compiler/ir_nn.c compiler/ir_nn.h
