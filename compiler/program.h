/* compiler/program.h -- a lowered model: parameter and state tables plus the IR of one step.
 *
 * Produced by lower.c from the checked AST; completed by autodiff (the step VJP) and opt; consumed by the
 * interpreter, the C and LLVM emitters and the commands. Ownership: a Program owns its tables, strings and
 * both IrFuncs; program_free releases them.
 */
#ifndef PLASTC_PROGRAM_H
#define PLASTC_PROGRAM_H

#include <stdbool.h>

#include "ir.h"
#include "plastrt.h" /* PlInit, PlLoss: the same enums as the runtime ABI */

typedef struct ProgTensor {
	char *name;      /* params: "enc.w", "cell.alpha_w_hh", "w_out"; state: "enc.w~", "cell.h" */
	IrShape shape;   /* params: batch = false; state: batch = true (per-trial dims) */
	PlInit init;     /* params: initialisation; state: always zero at the start of a trial */
	double init_a, init_b;
	bool trainable;  /* false for `fixed` tensors */
	SrcSpan loc;
	bool running;    /* params: a batch-norm running statistic (not trained; fwd returns the batch value
	                  * as its PARAM_BAR output, the runtime folds it in; fwd_eval reads it) */
} ProgTensor;

typedef struct Program {
	char *name;      /* model name */
	char *source;    /* path of the .plast file */
	char *settings;  /* "hidden=256 rule=hebbian": every constant's final value, for run.json and the hash */
	char hash[17];   /* 64-bit FNV-1a of the source texts and settings, hex */
	int in_size, pred_size, out_size;
	PlLoss meta_loss;
	/* true when a step's result for one trial depends on the other trials of the call (batch norm's
	 * batch statistics): the runtime must then give every call all of a thread's rows (no row blocks) */
	bool couples_rows;
	ProgTensor *params;
	int n_params;
	ProgTensor *state;
	int n_state;
	/* step_forward. ins: DATA x [B,I], then STATE 0..n_state-1 (entering the step).
	 *               outs: PRED y [B,Oy], OUTPUTS o [B,O], STATE 0..n_state-1 (leaving the step),
	 *               optionally SCALAR internal loss (dumps only). */
	IrFunc *fwd;
	/* step_vjp.     ins: as fwd, then PRED_BAR [B,Oy], then STATE_BAR 0..n_state-1 (adjoint of the state
	 *               leaving the step). outs: STATE_BAR 0..n_state-1 (adjoint of the state entering the
	 *               step), PARAM_BAR 0..n_params-1 (to be accumulated by the caller). */
	IrFunc *vjp;
	/* step_forward_eval: as fwd, for evaluation, or NULL when it would equal fwd. Models with batch norm
	 * get it: it normalises with the running statistics (params with `running`) where fwd uses the
	 * batch's, and it has no PARAM_BAR outputs. fwd then also returns, for every running statistic j, the
	 * value of this call's batch (mean; variance unbiased by n/(n-1)) as output PARAM_BAR j. */
	IrFunc *fwd_eval;
} Program;

void program_free(Program *p);

#endif
