/* compiler/cmd_llvm.c -- `plastc emit-llvm` and `plastc train --backend llvm` (see cmd_llvm.h). */
#include "cmd_llvm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "cmd.h"
#include "emit_llvm.h"
#include "frontend.h"
#include "jit.h"
#include "opt.h"
#include "plastrt.h"

/* Front-end stage times, for --time-passes. */
typedef struct FrontTimes {
	double parse_lower, autodiff, opt;
} FrontTimes;

/* The front end's pipeline (frontend_load_program: lower, step VJP, optimise both), stage by stage so
 * that each can be timed. Returns NULL after diagnostics (exit status 1). */
static Program *load_timed(const char *path, int nset, char **sets, FrontTimes *t)
{
	DiagCtx *d = diag_ctx_new(stderr);
	double t0 = emitll_now();
	Program *p = frontend_load_program_ex(path, nset, sets, d, 0);
	double t1 = emitll_now();
	diag_ctx_free(d);
	if (!p)
		return NULL;
	if (ad_step_vjp(p, stderr) != 0) {
		program_free(p);
		fprintf(stderr, "plastc: internal error: autodiff failed on model in %s\n", path);
		exit(2);
	}
	double t2 = emitll_now();
	opt_run(p->fwd, NULL);
	opt_run(p->vjp, NULL);
	double t3 = emitll_now();
	t->parse_lower = t1 - t0;
	t->autodiff = t2 - t1;
	t->opt = t3 - t2;
	return p;
}

/* --time-passes: one line per stage, then the machine-code size. */
static void print_times(const FrontTimes *ft, const EmitllTimes *t, const char *codegen_name)
{
	struct {
		const char *name;
		double s;
	} rows[] = {
		{"parse+lower", ft->parse_lower}, {"autodiff", ft->autodiff}, {"opt", ft->opt},
		{"LLVM IR build", t->ir_build}, {"LLVM O3", t->opt}, {codegen_name, t->codegen},
	};
	double total = 0;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (!rows[i].name)
			continue; /* a stage this command does not run */
		fprintf(stderr, "time-passes: %-14s %9.2f ms\n", rows[i].name, 1e3 * rows[i].s);
		total += rows[i].s;
	}
	fprintf(stderr, "time-passes: %-14s %9.2f ms\n", "total", 1e3 * total);
	fprintf(stderr, "time-passes: code size      %9zu bytes (.text)\n", t->code_bytes);
}

int cmd_emit_llvm(int argc, char **argv)
{
	char **sets = NULL;
	int nset = 0, rc = 0;
	const char *file = NULL, *out = "-";
	unsigned flags = 0;
	bool time_passes = false;
	for (int i = 1; i < argc;) {
		int r = cmd_opt_set(argc, argv, &i, &sets, &nset);
		if (r == 0)
			r = cmd_opt(argc, argv, &i, "-o", &out);
		if (r < 0) {
			rc = 1;
			goto out;
		}
		if (r)
			continue;
		if (strcmp(argv[i], "-O0") == 0) {
			flags |= EMITLL_NO_OPT;
		} else if (strcmp(argv[i], "--time-passes") == 0) {
			time_passes = true;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			rc = cmd_usage_error("emit-llvm", "unknown option '%s'", argv[i]);
			goto out;
		} else if (file) {
			rc = cmd_usage_error("emit-llvm", "more than one FILE ('%s', '%s')", file, argv[i]);
			goto out;
		} else {
			file = argv[i];
		}
		i++;
	}
	if (!file) {
		rc = cmd_usage_error("emit-llvm", "no FILE given");
		goto out;
	}
	FrontTimes ft;
	Program *p = load_timed(file, nset, sets, &ft);
	if (!p) {
		rc = 1;
		goto out;
	}
	EmitllTimes t = {0};
	rc = emitll_write_ir(p, out, flags, time_passes ? &t : NULL, stderr);
	if (rc == 0 && time_passes)
		print_times(&ft, &t, NULL); /* emit-llvm generates no machine code (the size comes from a separate compile) */
	program_free(p);
out:
	free(sets);
	return rc;
}

int cmd_llvm_train(int argc, char **argv)
{
	char **sets = NULL;
	int nset = 0, rc = 0;
	const char *file = NULL, *v;
	bool time_passes = false;
	/* pl_main sees `<model> train ARGS...`, as a per-model binary would; argv[0] is replaced below */
	char **av = calloc((size_t)argc + 2, sizeof *av);
	if (!av) {
		fprintf(stderr, "plastc: internal error: out of memory\n");
		return 2;
	}
	int ac = 2;
	for (int i = 1; i < argc;) {
		int r = cmd_opt_set(argc, argv, &i, &sets, &nset);
		if (r == 0 && (r = cmd_opt(argc, argv, &i, "--backend", &v)) == 1 && strcmp(v, "llvm") != 0) {
			rc = cmd_usage_error("train", "the LLVM trainer was given --backend %s", v);
			goto out;
		}
		if (r < 0) {
			rc = 1;
			goto out;
		}
		if (r)
			continue;
		/* FILE is the first argument (the contract: plastc train FILE ...) or else the one ending in
		 * .plast; everything else, values of runtime flags included, goes to the runtime */
		size_t len = strlen(argv[i]);
		if (strcmp(argv[i], "--time-passes") == 0)
			time_passes = true;
		else if (!file && argv[i][0] != '-' && (i == 1 || (len > 6 && strcmp(argv[i] + len - 6, ".plast") == 0)))
			file = argv[i];
		else
			av[ac++] = argv[i];
		i++;
	}
	if (!file) {
		rc = cmd_usage_error("train", "no FILE given");
		goto out;
	}
	FrontTimes ft;
	Program *p = load_timed(file, nset, sets, &ft);
	if (!p) {
		rc = 1;
		goto out;
	}
	EmitllTimes t = {0};
	JitModel *jm = jit_compile(p, time_passes ? &t : NULL, stderr);
	if (!jm) {
		program_free(p);
		rc = 2;
		goto out;
	}
	if (time_passes)
		print_times(&ft, &t, "JIT codegen");
	static char train[] = "train";
	av[0] = p->name;
	av[1] = train;
	av[ac] = NULL;
	rc = pl_main(jit_model(jm), ac, av);
	jit_free(jm); /* after pl_main: the model's entry points live in the JIT */
	program_free(p);
out:
	free(av);
	free(sets);
	return rc;
}
