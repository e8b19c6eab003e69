# tests/llvm.mk -- tests of the llvm part
if HAVE_LLVM
check_PROGRAMS += tests/test_llvm
TESTS += tests/test_llvm
tests_test_llvm_SOURCES = tests/test_llvm.c
tests_test_llvm_CFLAGS = $(TEST_CFLAGS) $(LLVM_CFLAGS)
tests_test_llvm_LDADD = $(TEST_LIBS)
endif
