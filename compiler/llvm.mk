# compiler/llvm.mk -- sources of the llvm part of libplastcc.a (owned by that part)
