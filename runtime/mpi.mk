# runtime/mpi.mk -- distributed runs: dist.c in the runtime, and with ./configure --with-mpi the MPI
# variant of the runtime, libplastrt_mpi.a (the same sources compiled with mpicc's flags and PL_HAVE_MPI),
# which plastc and every per-model binary then link instead of libplastrt.a.
runtime_libplastrt_a_SOURCES += runtime/dist.c
if HAVE_MPI
lib_LIBRARIES += runtime/libplastrt_mpi.a
runtime_libplastrt_mpi_a_SOURCES = $(runtime_libplastrt_a_SOURCES)
runtime_libplastrt_mpi_a_CFLAGS = $(runtime_libplastrt_a_CFLAGS) $(MPI_CFLAGS) -DPL_HAVE_MPI
# what plastc links (compiler/local.mk)
PLASTRT_LIB = runtime/libplastrt_mpi.a
PLASTRT_LINK = $(MPI_LIBS)
else
PLASTRT_LIB = runtime/libplastrt.a
PLASTRT_LINK =
endif
