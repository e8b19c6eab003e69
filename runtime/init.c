/* runtime/init.c -- parameter initialisation from the model's init specs, deterministic per seed. */
#include <math.h>

#include "plastrt.h"

int64_t pl_desc_numel(const PlTensorDesc *d)
{
	int64_t n = 1;
	for (int i = 0; i < d->rank; i++)
		n *= d->dims[i];
	return n;
}

int pl_model_running(const PlModel *m)
{
	int64_t n = 0;
	for (int i = 0; i < m->n_params; i++)
		if (m->params[i].running)
			n += pl_desc_numel(&m->params[i]);
	return (int)n;
}

/* Every value is drawn in double and then stored, so the float and double versions agree exactly
 * after rounding, and `plastc init` (F64 interpreter) and a per-model binary start from the same point. */
static double draw(const PlTensorDesc *d, PlRng *r, int64_t i)
{
	switch (d->init) {
	case PL_INIT_ZERO:
		return 0.0;
	case PL_INIT_CONST:
		return d->init_a;
	case PL_INIT_UNIFORM:
		return pl_rng_uniform(r, -d->init_a, d->init_a);
	case PL_INIT_UNIFORM_AB:
		return pl_rng_uniform(r, d->init_a, d->init_b);
	case PL_INIT_NORMAL:
		return d->init_a + d->init_b * pl_rng_normal(r);
	case PL_INIT_ABS_NORMAL:
		return fabs(d->init_a + d->init_b * pl_rng_normal(r));
	case PL_INIT_IDENTITY: {
		/* a*I on the last two dims (a square matrix, or a stack of them). */
		int64_t c = d->rank >= 1 ? d->dims[d->rank - 1] : 1;
		int64_t rr = d->rank >= 2 ? d->dims[d->rank - 2] : 1;
		int64_t in_mat = i % (rr * c);
		return in_mat / c == in_mat % c ? d->init_a : 0.0;
	}
	}
	return 0.0;
}

void pl_init_tensor_f64(const PlTensorDesc *d, uint64_t seed, double *out)
{
	PlRng r;
	pl_rng_seed2(&r, seed, pl_hash_str(d->name));
	int64_t n = pl_desc_numel(d);
	for (int64_t i = 0; i < n; i++)
		out[i] = draw(d, &r, i);
}

void pl_init_tensor(const PlTensorDesc *d, uint64_t seed, float *out)
{
	PlRng r;
	pl_rng_seed2(&r, seed, pl_hash_str(d->name));
	int64_t n = pl_desc_numel(d);
	for (int64_t i = 0; i < n; i++)
		out[i] = (float)draw(d, &r, i);
}

void pl_init_params(const PlModel *m, uint64_t seed, float *const *params)
{
	for (int i = 0; i < m->n_params; i++)
		pl_init_tensor(&m->params[i], seed, params[i]);
}
