/* compiler/frontend.c -- reading files and imports, running sema and lowering (frontend.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "frontend.h"
#include "lower.h"
#include "opt.h"
#include "parse.h"
#include "retime.h"

static void fe_oom(void)
{
	fprintf(stderr, "plastc: internal error: out of memory\n");
	exit(2);
}

/* Reads at most LEX_MAX_FILE + 1 bytes, so a huge file costs no more than the limit. */
static char *read_file(const char *path, size_t *len, int *err)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		*err = errno;
		return NULL;
	}
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		fe_oom();
	for (;;) {
		if (n == cap) {
			if (cap > LEX_MAX_FILE)
				break;
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				fe_oom();
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f)) {
				*err = errno ? errno : EIO;
				fclose(f);
				free(buf);
				return NULL;
			}
			break;
		}
	}
	fclose(f);
	*len = n;
	return buf;
}

static char *dir_join(const char *base_file, const char *rel)
{
	if (rel[0] == '/')
		return strdup(rel);
	const char *slash = strrchr(base_file, '/');
	size_t dl = slash ? (size_t)(slash - base_file) + 1 : 0;
	char *s = malloc(dl + strlen(rel) + 1);
	if (!s)
		fe_oom();
	memcpy(s, base_file, dl);
	strcpy(s + dl, rel);
	return s;
}

/* Index of the file with canonical path real, or -1. */
static int find_file(const Frontend *fe, const char *real)
{
	for (int i = 0; i < fe->nfiles; i++)
		if (fe->real[i] && strcmp(fe->real[i], real) == 0)
			return i;
	return -1;
}

/* Reads and parses one file; recurses into its imports. stack holds the files being read (for cycles).
 * at: the import that asked for it (file NULL for the main file). Returns the file index or -1. */
static int load(Frontend *fe, DiagCtx *d, const char *path, SrcSpan at, int *stack, int depth)
{
	char *real = realpath(path, NULL);
	if (real) {
		int seen = find_file(fe, real);
		if (seen >= 0) {
			for (int i = 0; i < depth; i++) {
				if (stack[i] == seen) {
					diag_emit(d, DIAG_ERROR, at, NULL, "imports form a tree; move what both need to a third file",
						"import cycle: '%s' is already being imported", path);
					free(real);
					return -1;
				}
			}
			free(real);
			return seen; /* read once */
		}
	}
	if (fe->nfiles >= FRONTEND_MAX_FILES) {
		diag_emit(d, DIAG_ERROR, at, NULL, NULL, "too many imported files (the limit is %d)", FRONTEND_MAX_FILES);
		free(real);
		return -1;
	}
	size_t len = 0;
	int err = 0;
	char *text = read_file(path, &len, &err);
	if (!text) {
		if (at.file)
			diag_emit(d, DIAG_ERROR, at, NULL, NULL, "cannot read '%s': %s", path, strerror(err));
		else
			diag_emit(d, DIAG_ERROR, at, NULL, NULL, "%s: %s", path, strerror(err));
		free(real);
		return -1;
	}
	int idx = fe->nfiles++;
	fe->files = realloc(fe->files, (size_t)fe->nfiles * sizeof *fe->files);
	fe->texts = realloc(fe->texts, (size_t)fe->nfiles * sizeof *fe->texts);
	fe->lens = realloc(fe->lens, (size_t)fe->nfiles * sizeof *fe->lens);
	fe->real = realloc(fe->real, (size_t)fe->nfiles * sizeof *fe->real);
	if (!fe->files || !fe->texts || !fe->lens || !fe->real)
		fe_oom();
	fe->texts[idx] = text;
	fe->lens[idx] = len;
	fe->real[idx] = real;
	const char *name = diag_add_source(d, path, text, len);
	AstFile *f;
	if (lex_check_text(d, name, text, len) != 0) {
		f = ast_alloc(fe->arena, sizeof *f);
		f->path = name;
	} else {
		f = parse_text(fe->arena, d, name, text, len);
	}
	fe->files[idx] = f;
	stack[depth] = idx;
	for (int i = 0; i < f->ndecls; i++) {
		const AstDecl *dc = f->decls[i];
		if (dc->kind != DECL_IMPORT || !dc->name)
			continue;
		char *p = dir_join(name, dc->name);
		load(fe, d, p, dc->name_span, stack, depth + 1);
		free(p);
	}
	return idx;
}

Frontend *frontend_parse(const char *path, DiagCtx *d)
{
	Frontend *fe = calloc(1, sizeof *fe);
	if (!fe)
		fe_oom();
	fe->arena = ast_arena_new();
	int stack[FRONTEND_MAX_FILES + 1];
	SrcSpan none = {0};
	if (load(fe, d, path, none, stack, 0) < 0) {
		frontend_free(fe);
		return NULL;
	}
	return fe;
}

SemaModel *frontend_check(Frontend *fe, int nset, char **sets, DiagCtx *d)
{
	fe->model = sema_check(fe->arena, d, fe->files, fe->nfiles, nset, sets);
	return fe->model;
}

void frontend_free(Frontend *fe)
{
	if (!fe)
		return;
	for (int i = 0; i < fe->nfiles; i++) {
		free(fe->texts[i]);
		free(fe->real[i]);
	}
	free(fe->files);
	free(fe->texts);
	free(fe->lens);
	free(fe->real);
	ast_arena_free(fe->arena);
	free(fe);
}

void frontend_hash(const Frontend *fe, const char *settings, char out[17])
{
	uint64_t h = 1469598103934665603ull;
	for (int i = 0; i < fe->nfiles; i++) {
		for (size_t k = 0; k < fe->lens[i]; k++)
			h = (h ^ (unsigned char)fe->texts[i][k]) * 1099511628211ull;
		h = (h ^ 0xff) * 1099511628211ull; /* file separator */
	}
	for (const char *s = settings ? settings : ""; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

int frontend_retime(Program *p)
{
	if (!retime_enabled())
		return 0;
	opt_run(p->fwd, NULL); /* the frontier is smallest after the rank-1 norm rewrite and CSE */
	return retime_program(p, stderr);
}

void frontend_retime_vjp(Program *p, int nret)
{
	if (nret <= 0 || !retime_next_enabled())
		return;
	int *rc = NULL, nrc = 0;
	retime_vjp_ex(p, stderr, &rc, &nrc);
	/* values the VJP would recompute with a pass over a plastic matrix become states */
	if (nrc > 0 && retime_resid_enabled()) {
		retime_residuals(p, rc, nrc);
		ir_func_free(p->vjp);
		p->vjp = NULL;
		if (ad_step_vjp(p, stderr) != 0)
			ir_fatal("autodiff failed on model '%s'", p->name);
		retime_vjp(p, stderr);
	}
	free(rc);
}

Program *frontend_load_program(const char *path, int nset, char **sets, DiagCtx *d)
{
	return frontend_load_program_ex(path, nset, sets, d, FE_RETIME | FE_VJP | FE_OPT);
}

Program *frontend_load_program_ex(const char *path, int nset, char **sets, DiagCtx *d, unsigned flags)
{
	Frontend *fe = frontend_parse(path, d);
	if (!fe)
		return NULL;
	Program *p = NULL;
	if (diag_error_count(d) == 0) {
		SemaModel *m = frontend_check(fe, nset, sets, d);
		if (!m && diag_error_count(d) == 0) {
			SrcSpan none = {0};
			diag_emit(d, DIAG_ERROR, none, NULL, "this command needs a file with a `model NAME { ... }`",
				"%s: no model in this file", path);
		}
		if (m) {
			p = lower_model(m, path, d);
			if (p)
				frontend_hash(fe, p->settings, p->hash);
			int nret = p && (flags & FE_RETIME) ? frontend_retime(p) : 0;
			if (p && (flags & FE_VJP) && ad_step_vjp(p, stderr) != 0)
				ir_fatal("autodiff failed on model '%s'", p->name);
			if (p && (flags & FE_VJP))
				frontend_retime_vjp(p, nret);
			if (p && (flags & FE_OPT)) {
				opt_run(p->fwd, NULL);
				if (p->fwd_eval)
					opt_run(p->fwd_eval, NULL);
				if (p->vjp)
					opt_run(p->vjp, NULL);
			}
		}
	}
	frontend_free(fe);
	return p;
}
