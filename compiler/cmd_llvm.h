/* compiler/cmd_llvm.h -- the commands of the LLVM backend, given a loaded Program.
 *
 * The driver parses FILE and --set, runs the front end (parse, lower, autodiff, opt) and hands the
 * Program with the remaining arguments to these functions, together with the front end's stage times
 * for --time-passes. They print diagnostics to stderr and return the process exit status.
 *
 * Ownership: the Program stays the caller's; nothing returned needs freeing.
 */
#ifndef PLASTC_CMD_LLVM_H
#define PLASTC_CMD_LLVM_H

#include "program.h"

/* Seconds spent in each front-end stage (for --time-passes); negative = not measured. */
typedef struct LlvmFrontTimes {
	double parse, lower, autodiff, opt;
} LlvmFrontTimes;

/* plastc emit-llvm FILE [-o out.ll] [-O0] [--time-passes]: textual LLVM IR (default: stdout), after the
 * O3 pipeline unless -O0. argv holds the arguments after FILE and the --set options. */
int cmd_llvm_emit(const Program *p, const LlvmFrontTimes *ft, int argc, char **argv);

/* plastc train FILE --backend llvm [--time-passes] ARGS...: JIT-compiles p and runs the runtime's
 * command line `train ARGS...` (pl_main) on the JIT'd model in this process. argv holds ARGS (the
 * arguments after FILE, without --set and --backend). */
int cmd_llvm_train(const Program *p, const LlvmFrontTimes *ft, int argc, char **argv);

#endif
