# tests/ir.mk -- tests of the ir part
check_PROGRAMS += tests/test_ir
TESTS += tests/test_ir
tests_test_ir_SOURCES = tests/test_ir.c
tests_test_ir_CFLAGS = $(TEST_CFLAGS)
tests_test_ir_LDADD = $(TEST_LIBS)
check_PROGRAMS += tests/test_autodiff
TESTS += tests/test_autodiff
tests_test_autodiff_SOURCES = tests/test_autodiff.c
tests_test_autodiff_CFLAGS = $(TEST_CFLAGS)
tests_test_autodiff_LDADD = $(TEST_LIBS)
