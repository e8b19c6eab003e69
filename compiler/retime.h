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

/* retime_vjp, which also returns in *recomp (malloc'd, or NULL) the ids of the forward's matrix-vector
 * products over a per-trial matrix that the VJP still computes again (*nrecomp of them): each is one more
 * pass over a plastic matrix per step, e.g. the LSTM's gate pre-activations in a gradient-rule model. */
int retime_vjp_ex(Program *p, FILE *err, int **recomp, int *nrecomp);

/* Residual states: step_forward also returns the values of its nodes ids[0..k-1] as new small states
 * ("residK", appended to p->state; the step before's value is an input nothing reads), so that the VJP,
 * derived again afterwards, reads them leaving the step (retime_vjp) instead of recomputing them. The
 * runtime stores them with the other states: B * k vectors per step. Returns k. */
int retime_residuals(Program *p, const int *ids, int k);

/* false when PLASTC_NO_RESIDUALS is set to a value other than 0 (no residual states, for A/B runs) */
bool retime_resid_enabled(void);

/* false when PLASTC_NO_RETIME is set to a value other than 0 */
bool retime_enabled(void);
/* false when PLASTC_NO_STATE_NEXT is set to a value other than 0 (retime_vjp off, for A/B runs) */
bool retime_next_enabled(void);

#endif
