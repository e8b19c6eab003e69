# compiler/llvm.mk -- sources of the llvm part of libplastcc.a (owned by that part)
if HAVE_LLVM
compiler_libplastcc_a_SOURCES += compiler/emit_llvm.c compiler/emit_llvm.h compiler/jit.c compiler/jit.h \
	compiler/cmd_llvm.c compiler/cmd_llvm.h
# jit.c takes the addresses of cblas_* for the JIT's symbol table
compiler_libplastcc_a_CFLAGS += $(OPENBLAS_CFLAGS)
endif
