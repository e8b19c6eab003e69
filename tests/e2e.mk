# tests/e2e.mk -- tests of the e2e part
