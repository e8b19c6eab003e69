/* compiler/frontend.h -- from a path on disk to a checked model and to a lowered Program.
 *
 * Reads the file and its imports (relative to the importing file, each file once, cycles are errors),
 * parses them, runs sema with the --set values, and lowers. Every command that reads a model goes
 * through here.
 *
 * Ownership: a Frontend owns its arena (AST, checked model) and the file texts; frontend_free releases
 * them. A Program returned by frontend_load_program is independent of any Frontend (program_free).
 */
#ifndef PLASTC_FRONTEND_H
#define PLASTC_FRONTEND_H

#include "ast.h"
#include "diag.h"
#include "program.h"
#include "sema.h"

#define FRONTEND_MAX_FILES 256

typedef struct Frontend {
	AstArena *arena;
	AstFile **files;   /* files[0] is the main file, then its imports in the order they were read */
	int nfiles;
	char **texts;      /* the source texts (for the model hash), parallel to files */
	size_t *lens;
	char **real;       /* canonical paths, to read each file once */
	SemaModel *model;  /* after frontend_check; NULL for a rule library or on errors */
} Frontend;

/* Parses path and its imports. Returns NULL only if path itself cannot be read (error reported); other
 * problems are reported to d and leave a partial result (check diag_error_count). */
Frontend *frontend_parse(const char *path, DiagCtx *d);
/* Runs sema on a parsed program; returns the checked model (also stored in fe->model) or NULL. */
SemaModel *frontend_check(Frontend *fe, int nset, char **sets, DiagCtx *d);
void frontend_free(Frontend *fe);

/* 64-bit FNV-1a of the source texts and the settings, as 16 hex digits. */
void frontend_hash(const Frontend *fe, const char *settings, char out[17]);

/* What frontend_load_program_ex does after lowering step_forward. */
enum {
	FE_VJP = 1 << 0, /* derive step_vjp (ad_step_vjp) */
	FE_OPT = 1 << 1, /* run the optimiser on step_forward and step_vjp */
	FE_RETIME = 1 << 2, /* defer large states' updates to the next step (retime.c), before FE_VJP;
	                     * unless PLASTC_NO_RETIME is set */
};

/* retime_program after a first optimiser run on step_forward, unless PLASTC_NO_RETIME is set (FE_RETIME) */
int frontend_retime(Program *p); /* the number of states retimed */
/* After ad_step_vjp of a program frontend_retime changed nret > 0 states of: the VJP reads the states
 * leaving the step (retime_vjp_ex) and matrix-vector products it would recompute become residual states
 * (retime_residuals, then the VJP is derived again), as frontend_load_program_ex does with FE_RETIME. */
void frontend_retime_vjp(Program *p, int nret);

/* Parses, checks and lowers path, retimes the plastic updates, then derives step_vjp and optimises both
 * functions: the Program every backend consumes (FE_RETIME | FE_VJP | FE_OPT). Returns NULL after reporting errors to d. */
Program *frontend_load_program(const char *path, int nset, char **sets, DiagCtx *d);
/* The same with a choice of the later stages (flags: FE_*; 0 = the lowered step_forward only). */
Program *frontend_load_program_ex(const char *path, int nset, char **sets, DiagCtx *d, unsigned flags);

#endif
