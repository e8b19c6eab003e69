# tests/e2e.mk -- tests of the e2e part
TESTS += tests/test_param_counts.sh
EXTRA_DIST += tests/test_param_counts.sh
