# compiler/ir.mk -- sources of the ir part of libplastcc.a (owned by that part)
compiler_libplastcc_a_SOURCES += compiler/ir.c compiler/program.c compiler/interp.c compiler/autodiff.c compiler/opt.c compiler/retime.c \
	compiler/autodiff.h compiler/opt.h compiler/interp.h compiler/program.h compiler/retime.h
