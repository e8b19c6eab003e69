# tests/mpi.mk -- the MPI tests (only when built ./configure --with-mpi): data-parallel grad/train/eval
# over 2-3 ranks on loopback against 1 rank, fault handling (a killed or stopped rank), compare over ranks.
EXTRA_DIST += tests/mpi_train.sh tests/mpi_fault.sh tests/mpi_compare.sh
if HAVE_MPI
check_PROGRAMS += tests/mpi_tool
tests_mpi_tool_SOURCES = tests/mpi_tool.c
tests_mpi_tool_CFLAGS = $(TEST_CFLAGS)
tests_mpi_tool_LDADD = $(TEST_LIBS)
TESTS += tests/mpi_train.sh tests/mpi_fault.sh tests/mpi_compare.sh
endif
