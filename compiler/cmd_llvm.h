/* compiler/cmd_llvm.h -- the LLVM backend's part of `plastc emit-llvm` and `plastc train --backend llvm`.
 *
 * The driver (cmd_build.c) parses FILE, --set and --backend, runs the front end and hands the Program
 * with the remaining arguments here. Both functions print diagnostics to stderr and return the exit
 * status (0, 1 user error, 2 internal error, 3 training diverged).
 *
 * Ownership: the Program stays the caller's; nothing returned needs freeing.
 */
#ifndef PLASTC_CMD_LLVM_H
#define PLASTC_CMD_LLVM_H

#include "jit.h"
#include "program.h"

/* Seconds spent in the front-end stages, printed by --time-passes; a negative field (or ft == NULL) means
 * not measured. */
typedef struct LlvmFrontTimes {
	double parse, lower, autodiff, opt;
} LlvmFrontTimes;

/* plastc emit-llvm FILE [-o out.ll] [-O0] [--time-passes]: textual LLVM IR (default: stdout), after the
 * O3 pipeline unless -O0. argv: the arguments after FILE, without --set. */
int cmd_llvm_emit(const Program *p, const LlvmFrontTimes *ft, int argc, char **argv);

/* plastc train FILE --backend llvm [--time-passes] ARGS...: JIT-compiles p and runs the runtime's
 * `train ARGS...` (pl_main) on the JIT'd model in this process. argv: ARGS, without FILE, --set and
 * --backend. */
int cmd_llvm_train(const Program *p, const LlvmFrontTimes *ft, int argc, char **argv);

/* The same for any subcommand of pl_main (sub = "train", "eval", "bench", ...), with the JIT's object
 * cache (cache may be NULL: compile every time). */
int cmd_llvm_run(const Program *p, const LlvmFrontTimes *ft, const JitCache *cache, const char *sub, int argc,
	char **argv);

#endif
