# compiler/frontend.mk -- sources of the frontend part of libplastcc.a (owned by that part)
compiler_libplastcc_a_SOURCES += \
	compiler/ast.h compiler/ast.c compiler/parse.h compiler/diag.c \
	compiler/sema.h compiler/sema.c compiler/frontend.h compiler/frontend.c \
	compiler/lower.h compiler/lower.c compiler/cmd.h compiler/cmd_check.c compiler/cmd_dump.c
EXTRA_DIST += compiler/README.md
