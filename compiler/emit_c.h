/* compiler/emit_c.h -- the C backend: a Program as one readable C file over OpenBLAS and plastrt.h.
 *
 * The file defines, with the semantics of the runtime ABI (plastrt.h):
 *     static size_t <m>_work_floats(int B);                  scratch for either entry point
 *     static void   <m>_step_forward(const PlStepArgs *a);
 *     static void   <m>_step_vjp(const PlStepArgs *a);      PARAM_BAR outputs accumulate (+=)
 *     const PlModel <m>_model = {...};                        the descriptor
 * and with EmitcOptions.main also `int main(argc, argv) { return pl_main(&<m>_model, argc, argv); }`.
 * <m> is emitc_symbol_prefix(p). Output buffers (y, o, state_out, state_in_bar, param_bar) must not
 * alias the inputs of the same call.
 *
 * With EmitcOptions.use_double the file computes in double for derivative checks: `typedef double real`,
 * the three functions above are exported (not static) and take a `const PlStepArgsD *` (the same fields
 * as PlStepArgs with every float pointer a double pointer; the file defines the type), and there is no
 * descriptor and no main.
 *
 * Ownership: the emitter only reads the Program; nothing it returns needs freeing.
 */
#ifndef PLASTC_EMIT_C_H
#define PLASTC_EMIT_C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "program.h"

typedef struct EmitcOptions {
	bool main;          /* also define main() calling pl_main (standalone binaries) */
	bool use_double;    /* compute in double; see above */
	bool no_line;       /* omit #line directives (they map generated code back to the .plast file) */
	bool no_fuse;       /* one loop per IR node: store every value (for comparisons and debugging) */
	bool no_multi_fuse; /* fuse only values with one reader (no recomputation in several loops) */
	bool no_loop_sched; /* plan_groups merges only nests already consecutive (no reordering to merge more);
			     * also set by the environment variable PLASTC_NO_LOOP_SCHED=1 */
	bool no_loop_chain; /* merged nests hold no producer-consumer pair (a member reading, at the same point,
			     * what an earlier member stores) and write no caller state buffer; also set by
			     * PLASTC_NO_LOOP_CHAIN=1 */
	bool no_loop_fuse;  /* keep one loop nest per stored value (no merging of nests over one space);
			     * also set by the environment variable PLASTC_NO_LOOP_FUSE=1 */
	bool no_batch_inner; /* keep the batch loop outermost in every nest (see nest_batch_inner in emit_c.c);
			      * also set by PLASTC_NO_BATCH_INNER=1 */
	bool no_bar_in_place; /* never let step_vjp update a state adjoint in place (PlModel.bar_in_place = NULL);
			       * also set by PLASTC_NO_BAR_IN_PLACE=1, which the runtime reads too */
	const char *c_name; /* name of the C file being written, for #line directives that return to it;
			     * NULL: "<m>.c" */
} EmitcOptions;

/* Writes the C file of p to out. Returns 0, or 2 after printing "plastc: internal error: ..." to err
 * (an IR the C backend cannot lower). o may be NULL (defaults: no main, float, #line on). */
int emitc_program(const Program *p, const EmitcOptions *o, FILE *out, FILE *err);

/* emitc_program into the file path ("-" = stdout). Returns 0, 1 when path cannot be written
 * ("plastc: error: PATH: reason" printed to err), 2 on an internal error. */
int emitc_write(const Program *p, const EmitcOptions *o, const char *path, FILE *err);

/* The C identifier prefix of p's symbols: the model name with every byte outside [A-Za-z0-9_] as '_'
 * (and a leading '_' if it starts with a digit). Writes at most n bytes including the NUL. */
void emitc_symbol_prefix(const Program *p, char *buf, size_t n);

#endif
