# tests/grad.mk -- plastc init, grad and gradcheck: derivative checks of every shipped model, the C backend
# against the interpreter, malformed files, init determinism (tests/test_grad.sh, tests/test_gradcheck.sh)
check_PROGRAMS += tests/grad_tool
tests_grad_tool_SOURCES = tests/grad_tool.c
tests_grad_tool_CFLAGS = $(TEST_CFLAGS)
tests_grad_tool_LDADD = $(TEST_LIBS)
TESTS += tests/test_gradcheck.sh tests/test_grad.sh
EXTRA_DIST += tests/test_gradcheck.sh tests/test_grad.sh
