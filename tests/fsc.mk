# tests/fsc.mk -- tests of the few-shot classification part
check_PROGRAMS += tests/test_fsc_ir
TESTS += tests/test_fsc_ir
tests_test_fsc_ir_SOURCES = tests/test_fsc_ir.c
tests_test_fsc_ir_CFLAGS = $(TEST_CFLAGS)
tests_test_fsc_ir_LDADD = $(TEST_LIBS)
