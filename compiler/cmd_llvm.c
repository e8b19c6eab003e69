/* compiler/cmd_llvm.c -- the LLVM backend's part of `plastc emit-llvm` and `plastc train --backend llvm`
 * (see cmd_llvm.h). */
#include "cmd_llvm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit_llvm.h"
#include "jit.h"
#include "plastrt.h"

/* --time-passes: one line per stage that ran, the total, then the machine-code size. */
static void print_times(const LlvmFrontTimes *ft, const EmitllTimes *t, const char *codegen_name)
{
	struct {
		const char *name;
		double s;
	} rows[] = {
		{"parse", ft ? ft->parse : -1}, {"lower", ft ? ft->lower : -1}, {"autodiff", ft ? ft->autodiff : -1},
		{"opt", ft ? ft->opt : -1}, {"LLVM IR build", t->ir_build}, {"LLVM O3", t->opt},
		{codegen_name, codegen_name ? t->codegen : -1},
	};
	double total = 0;
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		if (rows[i].s < 0)
			continue; /* not measured, or a stage this command does not run */
		fprintf(stderr, "time-passes: %-14s %9.2f ms\n", rows[i].name, 1e3 * rows[i].s);
		total += rows[i].s;
	}
	fprintf(stderr, "time-passes: %-14s %9.2f ms\n", "total", 1e3 * total);
	fprintf(stderr, "time-passes: code size      %9zu bytes (.text)\n", t->code_bytes);
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
		} else {
			fprintf(stderr, "plastc: error: emit-llvm: unknown argument '%s'\n"
				"usage: plastc emit-llvm FILE [-o out.ll] [-O0] [--time-passes] [--set NAME=VALUE]...\n",
				argv[i]);
			return 1;
		}
	}
	EmitllTimes t = {0};
	int rc = emitll_write_ir(p, out, flags, time_passes ? &t : NULL, stderr);
	if (rc == 0 && time_passes)
		print_times(ft, &t, NULL); /* no machine code is kept (the size comes from a separate compile) */
	return rc;
}

int cmd_llvm_train(const Program *p, const LlvmFrontTimes *ft, int argc, char **argv)
{
	/* pl_main sees `<model> train ARGS...`, as a per-model binary would */
	char **av = calloc((size_t)argc + 3, sizeof *av);
	if (!av) {
		fprintf(stderr, "plastc: internal error: out of memory\n");
		return 2;
	}
	static char fallback_name[] = "plastc", train[] = "train";
	int ac = 0;
	bool time_passes = false;
	av[ac++] = p->name ? p->name : fallback_name;
	av[ac++] = train;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--time-passes") == 0)
			time_passes = true;
		else
			av[ac++] = argv[i];
	}
	av[ac] = NULL;
	EmitllTimes t = {0};
	JitModel *jm = jit_compile(p, time_passes ? &t : NULL, stderr);
	if (!jm) {
		free(av);
		return 2;
	}
	if (time_passes)
		print_times(ft, &t, "JIT codegen");
	int rc = pl_main(jit_model(jm), ac, av);
	jit_free(jm); /* only after pl_main: the model's entry points live in the JIT */
	free(av);
	return rc;
}
