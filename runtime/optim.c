/* runtime/optim.c -- AdamW (PyTorch 1.13 torch.optim.AdamW, amsgrad optional), global-norm gradient
 * clipping (torch.nn.utils.clip_grad_norm_) and CosineAnnealingLR, as the reference trains.
 *
 * One step for a trainable tensor p with gradient g, step count t (from 1):
 *   p  <- p * (1 - lr * wd)                     decoupled weight decay, before the moments
 *   m  <- beta1 m + (1 - beta1) g
 *   v  <- beta2 v + (1 - beta2) g^2
 *   vmax <- max(vmax, v)                        amsgrad (v itself keeps its own average)
 *   p  <- p - (lr / (1 - beta1^t)) * m / (sqrt(vmax) / sqrt(1 - beta2^t) + eps)
 * PyTorch evaluates the scalar factors in double and the tensor arithmetic in float; so does this code.
 * Fixed (trainable = 0) parameters have no gradient in PyTorch: they take part neither in the clipping
 * norm nor in the step. */
#include <math.h>
#include <string.h>

#include "util.h"

void pl_opt_defaults(PlOptConfig *c)
{
	memset(c, 0, sizeof *c);
	c->lr = 1e-3;
	c->beta1 = 0.9;
	c->beta2 = 0.999;
	c->eps = 1e-8;
	c->weight_decay = 0.0;
	c->amsgrad = 1;
	c->clip = 5.0;
	c->cosine_tmax = 0;
	c->cosine_every = 1;
	c->lr_min = 0.0;
	c->kind = PL_OPT_ADAMW;
	c->rms_decay = 0.99;
	c->max_dw = 0.0;
	c->l1 = 0.0;
	c->l2 = 0.0;
}

void pl_opt_free(PlOpt *o)
{
	if (!o)
		return;
	for (int i = 0; i < o->n; i++) {
		if (o->m)
			pl_free(o->m[i]);
		if (o->v)
			pl_free(o->v[i]);
		if (o->vmax)
			pl_free(o->vmax[i]);
	}
	pl_free(o->m);
	pl_free(o->v);
	pl_free(o->vmax);
	pl_free(o);
}

PlOpt *pl_opt_new(const PlModel *m, const PlOptConfig *c)
{
	PlOpt *o = pl_alloc(sizeof *o);
	if (!o)
		return NULL;
	o->cfg = *c;
	if (o->cfg.cosine_every < 1)
		o->cfg.cosine_every = 1;
	o->n = m->n_params;
	o->desc = m->params;
	size_t np = (size_t)(o->n ? o->n : 1);
	o->m = pl_alloc(np * sizeof(float *));
	o->v = pl_alloc(np * sizeof(float *));
	o->vmax = pl_alloc(np * sizeof(float *));
	if (!o->m || !o->v || !o->vmax)
		goto fail;
	for (int i = 0; i < o->n; i++) {
		if (!m->params[i].trainable)
			continue;
		size_t bytes = (size_t)pl_desc_numel(&m->params[i]) * sizeof(float);
		o->m[i] = pl_alloc(bytes);
		if (!o->m[i])
			goto fail;
		if (c->kind == PL_OPT_RMSPROP_MICONI)
			continue;
		o->v[i] = pl_alloc(bytes);
		o->vmax[i] = pl_alloc(bytes);
		if (!o->v[i] || !o->vmax[i])
			goto fail;
	}
	return o;
fail:
	pl_opt_free(o);
	return NULL;
}

/* clip_grad_norm_: total = || (||g_1||, ..., ||g_n||) ||_2; coef = max / (total + 1e-6), applied only if
 * coef < 1. Each tensor's norm is summed in double. */
double pl_clip_grad_norm(const PlModel *m, float *const *grads, double max_norm)
{
	double ss = 0.0;
	for (int i = 0; i < m->n_params; i++) {
		if (!m->params[i].trainable)
			continue;
		int64_t n = pl_desc_numel(&m->params[i]);
		double s = 0.0;
		for (int64_t j = 0; j < n; j++)
			s += (double)grads[i][j] * grads[i][j];
		ss += s;
	}
	double total = sqrt(ss);
	if (max_norm > 0.0) {
		double coef = max_norm / (total + 1e-6);
		if (coef < 1.0) {
			float cf = (float)coef;
			for (int i = 0; i < m->n_params; i++) {
				if (!m->params[i].trainable)
					continue;
				int64_t n = pl_desc_numel(&m->params[i]);
				for (int64_t j = 0; j < n; j++)
					grads[i][j] *= cf;
			}
		}
	}
	return total;
}

/* CosineAnnealingLR in closed form: eta = eta_min + (eta_0 - eta_min)(1 + cos(pi e / T_max)) / 2, with
 * e the number of scheduler steps taken (one per cosine_every optimiser steps). */
double pl_opt_lr(const PlOpt *o)
{
	const PlOptConfig *c = &o->cfg;
	if (c->cosine_tmax <= 0)
		return c->lr;
	long e = o->t / c->cosine_every;
	return c->lr_min + (c->lr - c->lr_min) * (1.0 + cos(M_PI * (double)e / (double)c->cosine_tmax)) / 2.0;
}

void pl_opt_step(PlOpt *o, float *const *params, float *const *grads)
{
	const PlOptConfig *c = &o->cfg;
	if (c->kind == PL_OPT_RMSPROP_MICONI) {
		pl_opt_step_rmsprop_miconi(o, params, grads);
		return;
	}
	double lr = pl_opt_lr(o);
	o->t++;
	double bc1 = 1.0 - pow(c->beta1, (double)o->t);
	double bc2 = 1.0 - pow(c->beta2, (double)o->t);
	float step_size = (float)(lr / bc1);
	float bc2_sqrt = (float)sqrt(bc2);
	float decay = (float)(1.0 - lr * c->weight_decay);
	float b1 = (float)c->beta1, b2 = (float)c->beta2;
	float one_b1 = (float)(1.0 - c->beta1), one_b2 = (float)(1.0 - c->beta2), eps = (float)c->eps;
	for (int i = 0; i < o->n; i++) {
		if (!o->desc[i].trainable)
			continue;
		int64_t n = pl_desc_numel(&o->desc[i]);
		float *p = params[i], *g = grads[i], *m = o->m[i], *v = o->v[i], *vm = o->vmax[i];
		for (int64_t j = 0; j < n; j++) {
			p[j] *= decay;
			m[j] = m[j] * b1 + g[j] * one_b1;
			v[j] = v[j] * b2 + g[j] * g[j] * one_b2;
			float second = v[j];
			if (c->amsgrad) {
				vm[j] = vm[j] > v[j] ? vm[j] : v[j];
				second = vm[j];
			}
			float denom = sqrtf(second) / bc2_sqrt + eps;
			p[j] -= step_size * (m[j] / denom);
		}
	}
}
