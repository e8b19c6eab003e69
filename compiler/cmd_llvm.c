/* compiler/cmd_llvm.c -- the LLVM backend's part of `plastc emit-llvm` and `plastc train --backend llvm`
 * (see cmd_llvm.h). */
#include "cmd_llvm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "emit_llvm.h"
#include "jit.h"
#include "plastrt.h"

/* --time-passes: one line per stage that ran, the total, then the machine-code size. opt_name names the
 * pass pipeline; codegen_name and link_name are NULL for stages the command does not run. */
static void print_times(const LlvmFrontTimes *ft, const EmitllTimes *t, const char *opt_name,
	const char *codegen_name, const char *link_name)
{
	char opt_row[64];
	snprintf(opt_row, sizeof opt_row, "LLVM %s", opt_name);
	struct {
		const char *name;
		double s;
	} rows[] = {
		{"parse+check", ft ? ft->parse : -1}, {"lower", ft ? ft->lower : -1}, {"autodiff", ft ? ft->autodiff : -1},
		{"opt", ft ? ft->opt : -1}, {"LLVM IR build", t->ir_build}, {opt_row, t->cache_hit ? -1 : t->opt},
		{codegen_name, codegen_name && !t->cache_hit ? t->codegen : -1},
		{t->cache_hit ? "JIT object cache (hit)" : "JIT object cache", link_name ? t->cache : -1},
		{link_name, link_name ? t->link : -1},
	};
	double total = 0;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (rows[i].s < 0)
			continue; /* not measured, or a stage this command does not run */
		fprintf(stderr, "time-passes: %-22s %9.2f ms\n", rows[i].name, 1e3 * rows[i].s);
		total += rows[i].s;
	}
	fprintf(stderr, "time-passes: %-22s %9.2f ms\n", "total", 1e3 * total);
	/* the stages are wall-clock times; on a shared machine the process's CPU time says how much of that
	 * was work (it also counts process start and anything before the front end) */
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		fprintf(stderr, "time-passes: %-22s %9.2f ms\n", "CPU time of plastc",
			1e3 * ((double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec) +
				1e-3 * ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec));
	fprintf(stderr, "time-passes: %-22s %9zu bytes (.text)\n", "code size", t->code_bytes);
}

int cmd_llvm_emit(const Program *p, const LlvmFrontTimes *ft, int argc, char **argv)
{
	const char *out = "-";
	unsigned flags = 0;
	bool time_passes = false;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			out = argv[++i];
		} else if (strncmp(argv[i], "-o=", 3) == 0) {
			out = argv[i] + 3;
		} else if (strcmp(argv[i], "-O0") == 0) {
			flags |= EMITLL_NO_OPT;
		} else if (strcmp(argv[i], "--time-passes") == 0) {
			time_passes = true;
		} else if (strcmp(argv[i], "--no-loop-fuse") == 0) {
			flags |= EMITLL_NO_LOOP_FUSE;
		} else {
			fprintf(stderr, "plastc: error: emit-llvm: unknown argument '%s'\n"
				"usage: plastc emit-llvm FILE [-o out.ll] [-O0] [--time-passes] [--no-loop-fuse] [--set NAME=VALUE]...\n",
				argv[i]);
			return 1;
		}
	}
	EmitllTimes t = {0};
	int rc = emitll_write_ir(p, out, flags, time_passes ? &t : NULL, stderr);
	if (rc == 0 && time_passes)
		print_times(ft, &t, "default<O3>", NULL, NULL); /* no machine code is kept (the size comes from a separate compile) */
	return rc;
}

int cmd_llvm_train(const Program *p, const LlvmFrontTimes *ft, int argc, char **argv)
{
	return cmd_llvm_run(p, ft, NULL, "train", argc, argv);
}

int cmd_llvm_run(const Program *p, const LlvmFrontTimes *ft, const JitCache *cache, const char *sub, int argc,
	char **argv)
{
	/* pl_main sees `<model> train ARGS...`, as a per-model binary would */
	char **av = calloc((size_t)argc + 3, sizeof *av);
	if (!av) {
		fprintf(stderr, "plastc: internal error: out of memory\n");
		return 2;
	}
	static char fallback_name[] = "plastc";
	char *subcmd = strdup(sub);
	if (!subcmd) {
		free(av);
		fprintf(stderr, "plastc: internal error: out of memory\n");
		return 2;
	}
	int ac = 0;
	bool time_passes = false;
	av[ac++] = p->name ? p->name : fallback_name;
	av[ac++] = subcmd;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--time-passes") == 0)
			time_passes = true;
		else
			av[ac++] = argv[i];
	}
	av[ac] = NULL;
	EmitllTimes t = {0};
	JitModel *jm = jit_compile_cached(p, cache, time_passes ? &t : NULL, stderr);
	if (!jm) {
		free(av);
		free(subcmd);
		return 2;
	}
	if (time_passes)
		print_times(ft, &t, strcmp(jit_passes(), JIT_DEFAULT_PASSES) == 0 ? "JIT passes" : "passes (env)", "JIT codegen",
			"JIT link");
	int rc = pl_main(jit_model(jm), ac, av);
	jit_free(jm); /* only after pl_main: the model's entry points live in the JIT */
	free(av);
	free(subcmd);
	return rc;
}
