/* runtime/optim_rmsprop.c -- the optimiser of Miconi 2016 (spec miconi-2016.md 2.3; the paper says only
 * "gradient descent", the values come from its code): RMSprop without momentum, an element-wise bound on
 * the update (not on the gradient), and L1/L2 penalties applied after the step, outside the gradient.
 *
 * For each trainable tensor p with gradient g, at step t (from 1):
 *   m <- g^2                           at t = 1 (the code initialises the mean square with g^2, not 0)
 *   m <- m + (1 - rho)(g^2 - m)        afterwards (rho = 0.99)
 *   d  = -lr g / sqrt(m + eps)         eps = 1e-8, inside the square root
 *   p <- p + min(max(d, -max_dw), max_dw)
 *   p <- p - l1 sign(p) - l2 p         only for tensors of rank >= 2
 * The penalty goes to the weights, the plasticity coefficients and the read-out V, not to the biases;
 * in a .plast model those are exactly the matrices (biases are vectors), so the rank decides and the
 * optimiser needs no list of names. sign(0) = 0. The arithmetic is done in double per element and the
 * mean square is stored in float, like the parameters. */
#include <math.h>
#include <string.h>

#include "util.h"

void pl_opt_miconi_defaults(PlOptConfig *c, const char *task)
{
	c->kind = PL_OPT_RMSPROP_MICONI;
	c->rms_decay = 0.99;
	c->eps = 1e-8;
	c->clip = 0.0;
	if (task && strcmp(task, "completion") == 0) {
		c->lr = 0.03;
		c->max_dw = 0.1;
		c->l1 = 1e-3;
		c->l2 = 1e-4;
	} else {
		c->lr = 0.01;
		c->max_dw = 0.01;
		c->l1 = 1e-4;
		c->l2 = 0.0;
	}
}

void pl_opt_step_rmsprop_miconi(PlOpt *o, float *const *params, float *const *grads)
{
	const PlOptConfig *c = &o->cfg;
	double lr = pl_opt_lr(o);
	int first = o->t == 0;
	o->t++;
	for (int i = 0; i < o->n; i++) {
		if (!o->desc[i].trainable)
			continue;
		int64_t n = pl_desc_numel(&o->desc[i]);
		int penalise = o->desc[i].rank >= 2 && (c->l1 != 0.0 || c->l2 != 0.0);
		float *p = params[i], *ms = o->m[i];
		const float *g = grads[i];
		for (int64_t j = 0; j < n; j++) {
			double gj = g[j], g2 = gj * gj;
			double mj = first ? g2 : ms[j] + (1.0 - c->rms_decay) * (g2 - ms[j]);
			ms[j] = (float)mj;
			double d = -lr * gj / sqrt((double)ms[j] + c->eps);
			if (c->max_dw > 0.0)
				d = d > c->max_dw ? c->max_dw : (d < -c->max_dw ? -c->max_dw : d);
			double pj = (double)p[j] + d;
			if (penalise) {
				double sg = pj > 0.0 ? 1.0 : (pj < 0.0 ? -1.0 : 0.0);
				pj = pj - c->l1 * sg - c->l2 * pj;
			}
			p[j] = (float)pj;
		}
	}
}
