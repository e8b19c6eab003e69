/* compiler/cmd_llvm.h -- the commands of the LLVM backend (compiled when configure found LLVM).
 *
 *   plastc emit-llvm FILE [-o out.ll] [-O0] [--time-passes] [--set NAME=VALUE]...
 *   plastc train FILE --backend llvm [--time-passes] [--set NAME=VALUE]... RUNTIME-TRAIN-FLAGS...
 *
 * cmd_llvm_train is the `--backend llvm` half of `plastc train`: the train command hands it its whole
 * argv (argv[0] = "train"). It JIT-compiles the model and runs the runtime's `train` (pl_main) on the
 * JIT'd entry points in this process; every argument it does not know goes to the runtime.
 * Both return the process exit status (0, 1 user error, 2 internal error, 3 training diverged).
 */
#ifndef PLASTC_CMD_LLVM_H
#define PLASTC_CMD_LLVM_H

int cmd_emit_llvm(int argc, char **argv);
int cmd_llvm_train(int argc, char **argv);

#endif
