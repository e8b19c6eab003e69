# tests/llvm.mk -- tests of the llvm part
