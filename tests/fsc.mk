# tests/fsc.mk -- tests of the few-shot classification part
check_PROGRAMS += tests/test_fsc_ir
TESTS += tests/test_fsc_ir
tests_test_fsc_ir_SOURCES = tests/test_fsc_ir.c
tests_test_fsc_ir_CFLAGS = $(TEST_CFLAGS)
tests_test_fsc_ir_LDADD = $(TEST_LIBS)
check_PROGRAMS += tests/test_fsc_data
TESTS += tests/test_fsc_data
tests_test_fsc_data_SOURCES = tests/test_fsc_data.c
tests_test_fsc_data_CFLAGS = $(TEST_CFLAGS) $(LIBPNG_CFLAGS)
tests_test_fsc_data_LDADD = $(TEST_LIBS)
EXTRA_DIST += data/README.md data/cifar_fs/train.txt data/cifar_fs/val.txt data/cifar_fs/test.txt docs/oneshot.md
check_PROGRAMS += tests/test_fsc_trial
TESTS += tests/test_fsc_trial
tests_test_fsc_trial_SOURCES = tests/test_fsc_trial.c
tests_test_fsc_trial_CFLAGS = $(TEST_CFLAGS)
tests_test_fsc_trial_LDADD = $(TEST_LIBS)
# image kernels and the oneshot models in generated C (tests/emitc.mk defines EMITC_TEST_DEFS)
check_PROGRAMS += tests/test_fsc_backends
TESTS += tests/test_fsc_backends
tests_test_fsc_backends_SOURCES = tests/test_fsc_backends.c tests/emitc_harness.c tests/emitc_harness.h
tests_test_fsc_backends_CFLAGS = $(TEST_CFLAGS) $(EMITC_TEST_DEFS)
tests_test_fsc_backends_LDADD = $(TEST_LIBS) -ldl
# few steps of `plastc train` on the oneshot task (C and LLVM backends); skips without Fashion-MNIST
TESTS += tests/test_fsc_train.sh
EXTRA_DIST += tests/test_fsc_train.sh
EXTRA_DIST += bench/conv_kernels.c
