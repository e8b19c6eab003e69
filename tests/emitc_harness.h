/* tests/emitc_harness.h -- compiles generated C at test time and checks it against the interpreter.
 *
 * emitc_check_program emits p as C (double and float), compiles each into a shared object with the
 * system C compiler, loads it, runs step_forward, step_vjp (and step_forward_eval) on random data for a few batch sizes and
 * compares every output with interp_run. Shared by test_emitc (hand-built programs) and the per-model
 * tests. Ownership: the harness owns its temporary directory and removes it in emitc_harness_done.
 */
#ifndef PLASTC_TEST_EMITC_HARNESS_H
#define PLASTC_TEST_EMITC_HARNESS_H

#include <stdbool.h>

#include "emit_c.h"
#include "program.h"

/* Largest relative error seen by the last emitc_check_program call, per precision. */
typedef struct EmitcCheck {
	double max_err_double, max_err_float;
	int compared; /* number of output values compared */
} EmitcCheck;

/* Emitter options for the next checks (default: none, i.e. fusion on); use_double is set per run. */
extern EmitcOptions emitc_harness_options;

/* Creates the temporary directory; returns 0 or -1. */
int emitc_harness_init(void);
void emitc_harness_done(void);

/* Returns 0 when both precisions agree with the interpreter (double: 1e-9 relative, float: tol_float),
 * else -1 after printing the first disagreement. Keeps the generated files when PLASTC_KEEP is set. */
int emitc_check_program(const Program *p, double tol_float, EmitcCheck *res);

#endif
