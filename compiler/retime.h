/* compiler/retime.h -- deferred plastic updates (retime.c): a large state's update moves from the end of
 * its step to the start of the next, so that the body's and the update's passes over the same matrix
 * can share their reads (docs/PERFORMANCE.md "Deferred updates").
 *
 * Runs on step_forward after lowering (and a first optimiser run), before autodiff: the VJP is derived
 * from the retimed step, so every backend and the interpreter see the same Program.
 */
#ifndef PLASTC_RETIME_H
#define PLASTC_RETIME_H

#include <stdbool.h>
#include <stdio.h>

#include "program.h"

/* Rewrites p->fwd and appends the pending values and the started flag to p->state. Returns the number of
 * states retimed (0: the Program is unchanged). Models with step_forward_eval are left unchanged. */
int retime_program(Program *p, FILE *err);

/* After ad_step_vjp on a retimed Program: the VJP reads the small state tensors leaving the step (input
 * role STATE_NEXT, the runtime's stored state of step t+1) where its forward part would recompute them;
 * after retiming those include every vector the update reads (pre, post, the head's output), so the
 * optimiser drops most of the recomputed forward. Returns the number of states read. */
int retime_vjp(Program *p, FILE *err);

/* false when PLASTC_NO_RETIME is set to a value other than 0 */
bool retime_enabled(void);
/* false when PLASTC_NO_STATE_NEXT is set to a value other than 0 (retime_vjp off, for A/B runs) */
bool retime_next_enabled(void);

#endif
