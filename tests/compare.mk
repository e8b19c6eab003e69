# tests/compare.mk -- tests of `plastc compare` / `plastc plot`: statistics, metrics parsing, and the
# driver on a tiny grid with a fake trainer (interrupt + resume included).
check_PROGRAMS += tests/test_stats tests/test_compare
tests_test_stats_SOURCES = tests/test_stats.c
tests_test_stats_CFLAGS = $(TEST_CFLAGS)
tests_test_stats_LDADD = $(TEST_LIBS)
tests_test_compare_SOURCES = tests/test_compare.c
tests_test_compare_CFLAGS = $(TEST_CFLAGS)
tests_test_compare_LDADD = $(TEST_LIBS)
TESTS += tests/test_stats tests/test_compare tests/compare_grid.sh tests/compare_real.sh
EXTRA_DIST += tests/compare_grid.sh tests/compare_real.sh tests/fake_trainer.sh
