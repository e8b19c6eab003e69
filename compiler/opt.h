/* compiler/opt.h -- optimisation passes on the step IR (each keeps the function valid; the verifier
 * runs after each in debug builds and in tests). */
#ifndef PLASTC_OPT_H
#define PLASTC_OPT_H

#include "ir.h"

typedef struct OptStats {
	int folded, simplified, cse, dce; /* nodes changed or removed by each pass */
} OptStats;

/* Constant folding and algebraic simplification (x*1, x+0, x*0, expand/sum_to of equal shapes,
 * sum_to(square(outer(a,c))) -> product of per-vector sums, ...), CSE, DCE; to a fixed point.
 * Compacts the node array (ids change; ports are updated). */
void opt_run(IrFunc *f, OptStats *stats);

#endif
