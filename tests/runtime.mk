# tests/runtime.mk -- tests of the runtime part
check_PROGRAMS += tests/test_rt_io
tests_test_rt_io_SOURCES = tests/test_rt_io.c
tests_test_rt_io_CFLAGS = $(TEST_CFLAGS)
tests_test_rt_io_LDADD = $(TEST_LIBS)
TESTS += tests/test_rt_io
check_PROGRAMS += tests/test_rt_tasks
tests_test_rt_tasks_SOURCES = tests/test_rt_tasks.c tests/rt_model.c tests/rt_model.h
tests_test_rt_tasks_CFLAGS = $(TEST_CFLAGS)
tests_test_rt_tasks_LDADD = $(TEST_LIBS)
TESTS += tests/test_rt_tasks
