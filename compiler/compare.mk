# compiler/compare.mk -- `plastc compare` and `plastc plot`: the run grid, statistics and gnuplot figures.
compiler_libplastcc_a_SOURCES += \
	compiler/stats.h compiler/stats.c \
	compiler/compare.h compiler/compare.c \
	compiler/plot.h compiler/plot.c \
	compiler/cmd_compare.c
