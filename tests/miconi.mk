# tests/miconi.mk -- Miconi 2016: task generators and RMSprop (cmocka), models and training end to end
check_PROGRAMS += tests/test_miconi
tests_test_miconi_SOURCES = tests/test_miconi.c
tests_test_miconi_CFLAGS = $(TEST_CFLAGS)
tests_test_miconi_LDADD = $(TEST_LIBS)
TESTS += tests/test_miconi tests/test_miconi_e2e.sh
EXTRA_DIST += tests/test_miconi_e2e.sh tests/miconi_ref.py
