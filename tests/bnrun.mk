# tests/bnrun.mk -- batch norm's running statistics through the runtime (JIT-compiled oneshot model)
if HAVE_LLVM
check_PROGRAMS += tests/test_bn_running
TESTS += tests/test_bn_running
tests_test_bn_running_SOURCES = tests/test_bn_running.c
tests_test_bn_running_CFLAGS = $(TEST_CFLAGS) $(LLVM_CFLAGS)
tests_test_bn_running_LDADD = $(TEST_LIBS)
endif
