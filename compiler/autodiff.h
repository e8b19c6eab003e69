/* compiler/autodiff.h -- reverse-mode automatic differentiation on the step IR.
 *
 * Every op's VJP is written with ops of ops.def, so these functions run on their own output: the step
 * VJP of a model whose rule contains grad(...) is the double backward.
 */
#ifndef PLASTC_AUTODIFF_H
#define PLASTC_AUTODIFF_H

#include "ir.h"
#include "program.h"

/* Appends to f the adjoint computation of the values outs[0..nouts) seeded with the adjoints
 * seeds[0..nouts) (node ids of f, same shapes), with respect to wrt[0..nwrt). On return wrt_bar[i] is the
 * node id of d/d wrt[i] (a CONST 0 of wrt[i]'s shape when nothing depends on it). Activity analysis:
 * only nodes on a path wrt -> outs get adjoints; IRF_NODIFF ops contribute nothing. Returns 0, or -1 with an
 * internal error printed to err. */
int ad_vjp(IrFunc *f, int nouts, const int *outs, const int *seeds, int nwrt, const int *wrt, int *wrt_bar,
	FILE *err);

/* Builds p->vjp from p->fwd (see program.h for its ports): a copy of the forward graph, then the adjoint
 * of (y, state_out) seeded by the PRED_BAR and STATE_BAR inputs, with respect to every parameter and
 * every state input. Returns 0 or -1. The VJP still contains the whole forward copy: run opt_run on it
 * (and preferably on p->fwd before this call, so the rank-1 norm rewrite also shapes the backward). */
int ad_step_vjp(Program *p, FILE *err);

#endif
