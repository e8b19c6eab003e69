# runtime/perf.mk -- the benchmark subcommand (BIN bench)
runtime_libplastrt_a_SOURCES += runtime/bench.c
