/* compiler/interp.h -- the reference interpreter: evaluates step IR in double precision.
 *
 * It is the semantic reference: finite-difference checks, golden tests and both backends are compared
 * against it. Slow and simple on purpose.
 */
#ifndef PLASTC_INTERP_H
#define PLASTC_INTERP_H

#include <stdio.h>

#include "ir.h"
#include "program.h"

/* Evaluates f for B trials. params[j]: parameter j of the model (numel of its shape). in[i]: the value of
 * f->ins[i] (B*numel if batched, else numel). out[k]: caller-allocated storage for f->outs[k].
 * B_global is the batch size seen by INV_BATCH (normally B). Returns 0, or -1 after printing to err. */
int interp_run(const IrFunc *f, int B, int B_global, const double *const *params, const double *const *in,
	double *const *out, FILE *err);

/* The scalar semantics of the elementwise ops (shared with constant folding so both agree). */
double interp_ew1(IrOp op, double x);
double interp_ew2(IrOp op, double a, double b);

/* A batch of trials: x [T,B,I], target [T,B,Oy], mask [T] (weight of each step's loss). */
typedef struct TrialBatch {
	int T, B;
	const double *x, *target, *mask;
} TrialBatch;

/* Meta-loss of a whole trial, loss = sum_t mask[t] * l_t with l_t the model's meta_loss at step t (see
 * plastrt.h), and, if grads is not NULL, its gradient w.r.t. every parameter (grads[j] has the numel of
 * param j; overwritten) by BPTT: forward storing every step's state, then step VJPs backwards. */
int interp_trial(const Program *p, const double *const *params, const TrialBatch *b, double *loss,
	double *const *grads, FILE *err);

#endif
