/* compiler/cmd_dump.c -- `plastc dump FILE --stage ...`: print one stage of the compiler. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "cmd.h"
#include "frontend.h"
#include "lower.h"
#include "opt.h"

/* "uniform(-0.0625,0.0625)": the init of a tensor as text that reads like the DSL. */
static void init_str(const ProgTensor *t, char *buf, size_t n)
{
	char a[40], b[40];
	ir_fmt_double(t->init_a, a, sizeof a);
	ir_fmt_double(t->init_b, b, sizeof b);
	switch (t->init) {
	case PL_INIT_ZERO: snprintf(buf, n, "zero"); break;
	case PL_INIT_CONST: snprintf(buf, n, "const(%s)", a); break;
	case PL_INIT_UNIFORM: {
		char na[41];
		ir_fmt_double(-t->init_a, na, sizeof na);
		snprintf(buf, n, "uniform(%s,%s)", na, a);
		break;
	}
	case PL_INIT_UNIFORM_AB: snprintf(buf, n, "uniform(%s,%s)", a, b); break;
	case PL_INIT_NORMAL: snprintf(buf, n, "normal(%s,%s)", a, b); break;
	case PL_INIT_ABS_NORMAL: snprintf(buf, n, "abs_normal(%s,%s)", a, b); break;
	case PL_INIT_IDENTITY: snprintf(buf, n, "identity(%s)", a); break;
	}
}

static void print_tensors(const ProgTensor *t, int n, bool with_init, FILE *out)
{
	long long total = 0, running = 0;
	for (int i = 0; i < n; i++) {
		char shape[64], init[128];
		ir_shape_str(t[i].shape, shape, sizeof shape);
		if (with_init) {
			init_str(&t[i], init, sizeof init);
			fprintf(out, "%s  %s  %s%s\n", t[i].name, shape, init,
				t[i].running ? "  running" : t[i].trainable ? "" : "  fixed");
		} else {
			fprintf(out, "%s  %s\n", t[i].name, shape);
		}
		/* PyTorch counts batch norm's running statistics as buffers, not parameters (sum(p.numel())) */
		if (t[i].running)
			running += (long long)ir_shape_numel(t[i].shape);
		else
			total += (long long)ir_shape_numel(t[i].shape);
	}
	if (running)
		fprintf(out, "buffers %lld (batch-norm running statistics, not in the total)\n", running);
	fprintf(out, "total %lld\n", total);
}

/* The state table of a Program (after retime.c: with the pending values and the started flag) */
static void print_state_table(const Program *p, FILE *out)
{
	fprintf(out, "state (%d tensors, per trial)\n", p->n_state);
	for (int i = 0; i < p->n_state; i++) {
		char shape[64];
		ir_shape_str(p->state[i].shape, shape, sizeof shape);
		fprintf(out, "  %s  %s\n", p->state[i].name, shape);
	}
}

int cmd_dump(int argc, char **argv)
{
	char **sets = NULL;
	int nset = 0, rc = 0;
	const char *file = NULL, *stage = NULL;
	for (int i = 1; i < argc;) {
		int r = cmd_opt_set(argc, argv, &i, &sets, &nset);
		if (r == 0)
			r = cmd_opt(argc, argv, &i, "--stage", &stage);
		if (r < 0) {
			free(sets);
			return 1;
		}
		if (r)
			continue;
		if ((argv[i][0] == '-' && argv[i][1] != '\0') || file) {
			free(sets);
			return cmd_usage_error("dump", "unexpected argument '%s'", argv[i]);
		}
		file = argv[i++];
	}
	static const char *const stages[] = {"ast", "params", "state", "ir", "grad", "opt", "retime"};
	int st = -1;
	for (int k = 0; stage && k < 7; k++)
		if (strcmp(stage, stages[k]) == 0)
			st = k;
	if (!file || st < 0) {
		free(sets);
		return cmd_usage_error("dump", !file ? "no FILE given" : stage ? "unknown stage '%s'" :
			"--stage is required%s", stage ? stage : "");
	}
	DiagCtx *d = diag_ctx_new(stderr);
	if (st <= 2) {
		Frontend *fe = frontend_parse(file, d);
		if (fe && st == 0) {
			for (int k = 0; k < fe->nfiles; k++)
				ast_print_file(fe->files[k], stdout);
		} else if (fe && diag_error_count(d) == 0) {
			SemaModel *m = frontend_check(fe, nset, sets, d);
			if (m && st == 1)
				print_tensors(m->params, m->nparams, true, stdout);
			else if (m)
				print_tensors(m->state, m->nstate, false, stdout);
			else if (diag_error_count(d) == 0)
				rc = cmd_usage_error("dump", "%s has no model", file);
		}
		frontend_free(fe);
	} else {
		/* ir: as lowered; retime: step_forward after retime.c; grad, opt: as compiled */
		Program *p = frontend_load_program_ex(file, nset, sets, d,
			st == 3 ? 0 : st == 6 ? FE_RETIME : st == 4 ? FE_RETIME | FE_VJP : FE_RETIME | FE_VJP | FE_OPT);
		if (p && st == 6) {
			print_state_table(p, stdout);
			ir_print(p->fwd, stdout);
		} else if (p) {
			if (st != 4)
				ir_print(p->fwd, stdout);
			if (st != 4 && p->fwd_eval)
				ir_print(p->fwd_eval, stdout);
			if (st != 3 && p->vjp)
				ir_print(p->vjp, stdout);
		}
		program_free(p);
	}
	if (diag_error_count(d) > 0)
		rc = 1;
	diag_ctx_free(d);
	free(sets);
	return rc;
}
