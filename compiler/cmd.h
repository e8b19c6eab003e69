/* compiler/cmd.h -- the plastc command table and the helpers commands share.
 *
 * A command is one function in its own compiler/cmd_*.c file plus one row of `commands[]` in main.c.
 * main.c handles `plastc --help`, `plastc CMD --help` (printing the row's usage text) and `--version`;
 * the function sees argv[0] = the command name and the rest of its arguments.
 * Exit codes: 0 success, 1 user error, 2 internal error, 3 training diverged.
 */
#ifndef PLASTC_CMD_H
#define PLASTC_CMD_H

#include <stdbool.h>
#include <stddef.h>

typedef struct PlastcCommand {
	const char *name;
	const char *summary; /* one line for `plastc --help` */
	const char *usage;   /* the text of `plastc NAME --help`: synopsis, then options */
	int (*run)(int argc, char **argv);
} PlastcCommand;

extern const PlastcCommand commands[];

/* Options shared by every command that reads a model. */
#define CMD_SET_USAGE "  --set NAME=VALUE   replace the value of a `const` before checking (repeatable)\n"

/* Option parsing helpers. At argv[*i]: if it is `name VALUE` or `name=VALUE`, stores VALUE, advances *i
 * past it and returns 1; returns 0 if argv[*i] is another argument; prints an error and returns -1 when
 * the value is missing. */
int cmd_opt(int argc, char **argv, int *i, const char *name, const char **value);
/* Collects --set values (the array grows; free with free()). Same return convention as cmd_opt. */
int cmd_opt_set(int argc, char **argv, int *i, char ***sets, int *nset);
/* "plastc: error: CMD: ..." and returns 1. */
int cmd_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 2, 3)))
#endif
	;

int cmd_check(int argc, char **argv);
int cmd_dump(int argc, char **argv);
/* cmd_build.c: the C backend's commands, the model cache, and the driver side of emit-llvm */
int cmd_emit_c(int argc, char **argv);
int cmd_build(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_emit_llvm(int argc, char **argv);
/* The model binary of p (backend "c" or "llvm") from the model cache (cache: a directory, or NULL for the
 * default), built on a miss; its path goes to bin. Returns 0, 1 (user error) or 2. */
struct Program;
int cmd_model_binary(const struct Program *p, const char *backend, const char *cache, bool rebuild, bool verbose,
	char *bin, size_t nbin);
/* cmd_grad.c: init, grad, gradcheck */
int cmd_init(int argc, char **argv);
int cmd_grad(int argc, char **argv);
int cmd_gradcheck(int argc, char **argv);
/* compiler/cmd_compare.c */
extern const char cmd_compare_usage[], cmd_plot_usage[];
int cmd_compare(int argc, char **argv);
int cmd_plot(int argc, char **argv);

#endif
