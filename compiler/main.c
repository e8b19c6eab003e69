/* compiler/main.c -- the plastc driver: the command table, --help and --version.
 *
 * To add a command: write `int cmd_NAME(int argc, char **argv)` in compiler/cmd_NAME.c, declare it in
 * cmd.h and add one row below (name, one-line summary, usage text). Usage texts end with a newline.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "config.h"
#include "sema.h" /* sema_nearest */

const PlastcCommand commands[] = {
	{"check", "parse and check .plast files; diagnostics only",
		"usage: plastc check FILE... [--set NAME=VALUE]...\n"
		"Parses and checks each file (a model or a rule library). Exit status 0 if all are clean, 1 if\n"
		"any has errors. PLASTC_DIAG_FORMAT=machine prints one line per diagnostic.\n"
		"options:\n" CMD_SET_USAGE,
		cmd_check},
	{"dump", "print a stage of the compiler: ast, params, state, ir, retime, grad, opt",
		"usage: plastc dump FILE --stage ast|params|state|ir|retime|grad|opt [--set NAME=VALUE]...\n"
		"  ast      the syntax tree of the file and its imports\n"
		"  params   one line per meta-trained tensor: NAME  SHAPE  INIT [fixed], then `total N`\n"
		"  state    one line per per-trial state tensor: NAME  SHAPE, then `total N` (floats per trial)\n"
		"  ir       the step_forward function as lowered\n"
		"  retime   the state table and step_forward after deferring the plastic updates to the next\n"
		"           step (compiler/retime.c; PLASTC_NO_RETIME=1 turns it off for every command)\n"
		"  grad     the step_vjp function (the step's reverse mode) as derived\n"
		"  opt      step_forward and step_vjp after the optimiser\n"
		"options:\n" CMD_SET_USAGE,
		cmd_dump},
	{"emit-c", "print the generated C of a model",
		"usage: plastc emit-c FILE [-o out.c] [--set NAME=VALUE]... [--main] [--double] [--no-line]\n"
		"                     [--no-fuse] [--no-loop-fuse]\n"
		"Writes the model's step functions and PlModel descriptor as one C file (default: stdout).\n"
		"options:\n" CMD_SET_USAGE
		"  -o FILE            write to FILE\n"
		"  --main             also define main() calling pl_main (a standalone program)\n"
		"  --double           compute in double (derivative checks; PlStepArgsD, no descriptor)\n"
		"  --no-line          omit the #line directives that map the code to the .plast file\n"
		"  --no-fuse          one loop per IR node, every value stored (for reading and comparing)\n"
		"  --no-loop-fuse     keep one loop nest per stored value: do not merge consecutive nests over the\n"
		"                     same index space (also PLASTC_NO_LOOP_FUSE=1, which train and bench see);\n"
		"                     PLASTC_NO_LOOP_SCHED=1 merges only nests already consecutive (no reordering)\n",
		cmd_emit_c},
	{"emit-llvm", "print the generated LLVM IR of a model",
		"usage: plastc emit-llvm FILE [-o out.ll] [-O0] [--time-passes] [--no-loop-fuse] [--set NAME=VALUE]...\n"
		"options:\n" CMD_SET_USAGE
		"  --no-loop-fuse     one loop nest per stored value (no merged nests; also PLASTC_NO_LOOP_FUSE=1)\n",
		cmd_emit_llvm},
	{"build", "compile a model into a standalone binary (train/eval/grad/init subcommands)",
		"usage: plastc build FILE -o BIN [--backend c|llvm] [--set NAME=VALUE]... [--keep-c] [--verbose]\n"
		"Compiles the generated code with $CC (default cc) -O3 -march=native and links the runtime,\n"
		"OpenBLAS, jansson and zlib. The runtime is taken from $PLASTC_RUNTIME_DIR, else the build tree\n"
		"(when this plastc runs from it), else the installed include and lib directories.\n"
		"options:\n" CMD_SET_USAGE
		"  -o BIN             the binary to write\n"
		"  --backend c|llvm   code generator (default c)\n"
		"  --keep-c           keep the generated C as BIN.c\n"
		"  --verbose          print the compiler command\n",
		cmd_build},
	{"train", "meta-train a model (built into the model cache, then run)",
		"usage: plastc train FILE --task T [--set NAME=VALUE]... [--backend c|llvm] [--cache DIR]\n"
		"                    [--rebuild] [--verbose] [RUNTIME OPTIONS]...\n"
		"Builds FILE into the cache ($XDG_CACHE_HOME/plastc, else ~/.cache/plastc) unless an identical\n"
		"build is there, then runs `BIN train --task T RUNTIME OPTIONS` (see `BIN train --help`:\n"
		"--steps, --seed, --out, ...). --backend llvm JIT-compiles and trains in this process (the object\n"
		"code is cached in the same directory; --time-passes prints the time of each compiler stage).\n"
		"options:\n" CMD_SET_USAGE
		"  --cache DIR        model cache directory\n"
		"  --rebuild          build even if the cache has the binary\n",
		cmd_train},
	{"eval", "evaluate a checkpoint (model built into the model cache, then run)",
		"usage: plastc eval FILE --checkpoint CKPT --task T [--set NAME=VALUE]... [--cache DIR]\n"
		"                   [RUNTIME OPTIONS]...\n"
		"Like train, but runs `BIN eval ...` (see `BIN eval --help`).\n"
		"options:\n" CMD_SET_USAGE,
		cmd_eval},
	{"init", "write a model's initial parameters (the runtime's init schemes)",
		"usage: plastc init FILE [--seed S] [--set NAME=VALUE]... -o PARAMS.safetensors\n"
		"Writes the parameters of the model's initialisation for seed S (default 0), F32, one tensor per\n"
		"parameter: the same file as the model binary's `init --seed S`.\n"
		"options:\n" CMD_SET_USAGE
		"  --seed S           the seed (each tensor draws from its own stream of (S, name))\n"
		"  -o FILE            the file to write\n",
		cmd_init},
	{"grad", "meta-loss of a batch and the gradient of every parameter",
		"usage: plastc grad FILE --params P --batch BATCH -o G [--backend interp|c|llvm] [--set NAME=VALUE]...\n"
		"BATCH holds x [T, B, I], target [T, B, Oy] and optionally mask [T] (default 1/T), F32 or F64; P the\n"
		"parameters under their names (an init, checkpoint or best file). G gets `loss` (F64 scalar) and\n"
		"d loss / d param under each parameter's name: F64 from the interpreter (default, float64 BPTT),\n"
		"F32 from the generated code.\n"
		"options:\n" CMD_SET_USAGE
		"  --backend B        interp (float64 reference), c (the cached model binary), llvm (JIT)\n"
		"  --cache DIR        model cache directory (--backend c); --rebuild, --verbose as for train\n",
		cmd_grad},
	{"gradcheck", "check the derivatives of a model against finite differences",
		"usage: plastc gradcheck FILE [--order 1|2] [--seed S] [--batch B] [--T T] [-K K] [--tol X] [--h H]\n"
		"                        [--backend interp|c|llvm] [--set NAME=VALUE]...\n"
		"Order 1: the whole-trial meta-loss gradient (BPTT) against central differences in float64, for\n"
		"every parameter tensor (K sampled elements each, deterministic). Order 2 also checks the\n"
		"derivative of each gradient rule's inner gradient (the double backward) with respect to the\n"
		"parameters and the state entering the step (docs/autodiff.md). With --backend c or llvm, the\n"
		"generated code's float32 gradient is compared with the interpreter's instead. Prints one line per\n"
		"tensor (max relative error, PASS/FAIL); exit status 1 if any tensor fails.\n"
		"options:\n" CMD_SET_USAGE
		"  --order 1|2        derivative order to check (default 1)\n"
		"  --seed S           parameters: init(S) + N(0, 0.1^2) noise; random batch and samples (default 0)\n"
		"  --batch B, --T T   trials and time steps of the random batch (default 3 and 5)\n"
		"  -K K               elements checked per tensor (default 16)\n"
		"  --tol X            max relative error (default 1e-6; 1e-3 for --backend c|llvm)\n"
		"  --h H              finite-difference step (default 1e-4, extrapolated with H/2)\n",
		cmd_gradcheck},
	{"bench", "time meta-training steps of a model (built into the model cache, then run)",
		"usage: plastc bench FILE --task T [--set NAME=VALUE]... [--backend c|llvm] [--cache DIR]\n"
		"                    [RUNTIME OPTIONS]...\n"
		"Like train, but runs `BIN bench ...`: median_ms=, min_ms=, peak_rss_mb= of N steps (forward over\n"
		"the trial, BPTT, clip, AdamW); see `BIN bench --help` (--steps, --threads, --block, --profile).\n"
		"--backend llvm runs the bench on JIT'd code in this process (--time-passes as for train).\n"
		"options:\n" CMD_SET_USAGE,
		cmd_bench},
	{"compare", "train a grid of models x --vary values x seeds; summary statistics and plots",
		cmd_compare_usage, cmd_compare},
	{"plot", "redraw the plots of a compare directory (needs gnuplot)", cmd_plot_usage, cmd_plot},
	{NULL, NULL, NULL, NULL},
};

static void print_help(FILE *out)
{
	fprintf(out, "usage: plastc COMMAND [ARGS]   (plastc COMMAND --help for its options)\n\ncommands:\n");
	for (const PlastcCommand *c = commands; c->name; c++)
		fprintf(out, "  %-12s %s\n", c->name, c->summary);
	fprintf(out, "\nplastc --version prints the version. Exit status: 0 success, 1 user error, 2 internal error,\n"
		"3 training diverged.\n");
}

int cmd_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "plastc: error: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(plastc %s --help shows the usage)\n", cmd);
	return 1;
}

int cmd_opt(int argc, char **argv, int *i, const char *name, const char **value)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*value = a + n + 1;
		(*i)++;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		cmd_usage_error(argv[0], "%s needs a value", name);
		return -1;
	}
	*value = argv[*i + 1];
	*i += 2;
	return 1;
}

int cmd_opt_set(int argc, char **argv, int *i, char ***sets, int *nset)
{
	const char *v;
	int r = cmd_opt(argc, argv, i, "--set", &v);
	if (r != 1)
		return r;
	char **s = realloc(*sets, (size_t)(*nset + 1) * sizeof *s);
	if (!s) {
		fprintf(stderr, "plastc: internal error: out of memory\n");
		exit(2);
	}
	s[(*nset)++] = (char *)(uintptr_t)v;
	*sets = s;
	return 1;
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		print_help(stderr);
		return 1;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("plastc %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		if (argc > 2 && strcmp(cmd, "help") == 0) {
			for (const PlastcCommand *c = commands; c->name; c++)
				if (strcmp(c->name, argv[2]) == 0) {
					fputs(c->usage, stdout);
					return 0;
				}
		}
		print_help(stdout);
		return 0;
	}
	for (const PlastcCommand *c = commands; c->name; c++) {
		if (strcmp(c->name, cmd) != 0)
			continue;
		if (wants_help(argc - 1, argv + 1)) {
			fputs(c->usage, stdout);
			return 0;
		}
		return c->run(argc - 1, argv + 1);
	}
	const char *names[64];
	int n = 0;
	for (const PlastcCommand *c = commands; c->name && n < 64; c++)
		names[n++] = c->name;
	const char *best = sema_nearest(cmd, names, n);
	fprintf(stderr, "plastc: error: unknown command '%s'\n", cmd);
	if (best)
		fprintf(stderr, "hint: did you mean '%s'?\n", best);
	else
		fprintf(stderr, "hint: plastc --help lists the commands\n");
	return 1;
}
