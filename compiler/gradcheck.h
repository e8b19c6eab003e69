/* compiler/gradcheck.h -- derivative checks of a Program against central finite differences (float64).
 *
 * `plastc gradcheck` (cmd_grad.c) is the command; this file holds the checks, so tests can call them too.
 * Order 1: the whole-trial meta-loss gradient of interp_trial (BPTT over step_vjp, which for a gradient
 * rule is already a double backward) against central differences of the interpreted loss. Order 2: the
 * inner gradient Δ of each gradient rule, contracted with a random tensor, differentiated by ad_vjp
 * against central differences (docs/autodiff.md, "Checking the derivatives"). Every check samples up to
 * K elements of each tensor, deterministically from the seed and the tensor's name.
 *
 * Ownership: GcData owns its arrays (gc_data_free); the checks only read the Program.
 */
#ifndef PLASTC_GRADCHECK_H
#define PLASTC_GRADCHECK_H

#include <stdint.h>
#include <stdio.h>

#include "interp.h"
#include "program.h"

typedef struct GcOptions {
	int K;          /* elements sampled per tensor (every element of a smaller tensor) */
	uint64_t seed;  /* the sampling of elements and the seeds of order 2 */
	double tol;     /* a tensor passes when its max relative error is below tol */
	double h;       /* finite-difference step (absolute; Richardson-extrapolated with h/2) */
	FILE *out;      /* one line per tensor and a summary; NULL: silent */
} GcOptions;

void gc_options_default(GcOptions *o); /* K 16, seed 0, tol 1e-6, h 1e-4, out stdout */

/* Parameters and a batch of trials for the checks: the parameters of pl_init_tensor_f64 for `seed`
 * plus N(0, 0.1^2) noise (so that tensors initialised to zero, e.g. plastic coefficients, make every
 * path active); x ~ N(0, 1); targets N(0, 1) (one-hot for CE); mask[t] ~ U(0.5, 1.5)/T (unequal
 * weights). */
typedef struct GcData {
	int n_params;
	double **params;      /* [n_params], each the numel of its parameter */
	int T, B, I, Oy;
	double *x, *target, *mask;
} GcData;
GcData *gc_data_new(const Program *p, uint64_t seed, int T, int B);
void gc_data_free(GcData *d);
TrialBatch gc_data_batch(const GcData *d);

/* Order 1. Returns the number of failing tensors, or -1 after an internal error printed to err. */
int gc_trial(const Program *p, const GcData *d, const GcOptions *o, FILE *err);

/* Order 2 for the Δ nodes of p->fwd named delta_names[0..ndelta) ("cell.w_hh.delta", one per
 * gradient-rule tensor): c = Σ_k ⟨U_k, Δ_k⟩ with random U_k, its ad_vjp with respect to every parameter
 * and every state input, against central differences of c, at random parameters (d->params), a random
 * x and random state inputs for d->B trials. Returns the number of failing tensors, or -1. */
int gc_inner(const Program *p, const char *const *delta_names, int ndelta, const GcData *d,
	const GcOptions *o, FILE *err);

#endif
