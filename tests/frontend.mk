# tests/frontend.mk -- tests of the frontend part
check_PROGRAMS += tests/test_frontend
TESTS += tests/test_frontend tests/test_cli.sh tests/test_bad.sh tests/test_robust.sh tests/test_lower.sh
tests_test_frontend_SOURCES = tests/test_frontend.c
tests_test_frontend_CFLAGS = $(TEST_CFLAGS)
tests_test_frontend_LDADD = $(TEST_LIBS)
EXTRA_DIST += tests/test_cli.sh tests/test_bad.sh tests/test_robust.sh tests/test_lower.sh tests/bad tests/models tests/golden
