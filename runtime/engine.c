/* runtime/engine.c -- data-parallel BPTT: a batch's rows split over threads.
 *
 * Why split rows and not work inside a step: trials are independent until the batch mean of the loss, so
 * each thread runs whole trials (all T steps, forward and back) on its row block with no synchronisation
 * until the end, where the gradients are summed. The step functions divide by B_global (the full batch),
 * so the sum of the blocks' gradients is the gradient of the whole batch. Sums over blocks are done in a
 * fixed order, so a run's result does not depend on thread timing (it does depend on the thread count:
 * float addition is not associative). BLAS inside the step is told to use one thread when we use several. */
#include <pthread.h>
#include <string.h>

#include <cblas.h>

#include "util.h"

#define ENGINE_MAX_THREADS 64

typedef struct Job {
	PlBptt *bp;
	float **grads;   /* this block's gradients (block 0 writes the caller's buffers) */
	int r0, rows;
	int B;           /* the whole batch: rows per step in the arrays, and the divisor of the means */
	/* per run */
	float *const *params;
	const float *x, *target, *mask;
	float *const *out_grads;
	PlBpttResult res;
} Job;

struct PlEngine {
	const PlModel *m;
	int B, T, n;
	Job job[ENGINE_MAX_THREADS];
};

void pl_engine_free(PlEngine *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->n; i++) {
		pl_bptt_free(e->job[i].bp);
		pl_params_free(e->m, e->job[i].grads);
	}
	pl_free(e);
}

PlEngine *pl_engine_new(const PlModel *m, int B, int T, PlBpttStrategy s, int k, int threads)
{
	if (threads < 1)
		threads = 1;
	if (threads > B)
		threads = B;
	if (threads > ENGINE_MAX_THREADS)
		threads = ENGINE_MAX_THREADS;
	PlEngine *e = pl_alloc(sizeof *e);
	if (!e)
		return NULL;
	e->m = m;
	e->B = B;
	e->T = T;
	e->n = threads;
	for (int i = 0; i < threads; i++) {
		Job *j = &e->job[i];
		j->r0 = (int)((long)B * i / threads);
		j->rows = (int)((long)B * (i + 1) / threads) - j->r0;
		j->B = B;
		j->bp = pl_bptt_new(m, j->rows, T, s, k);
		if (!j->bp)
			goto fail;
		if (i > 0 && !(j->grads = pl_params_alloc(m)))
			goto fail;
	}
	if (threads > 1)
		openblas_set_num_threads(1);
	return e;
fail:
	pl_engine_free(e);
	return NULL;
}

static void *job_run(void *arg)
{
	Job *j = arg;
	float *const *g = j->out_grads ? (j->grads ? j->grads : j->out_grads) : NULL;
	j->res = pl_bptt_run(j->bp, j->params, j->x, j->target, j->mask, j->B, j->B, g);
	return NULL;
}

PlBpttResult pl_engine_run(PlEngine *e, float *const *params, const float *x, const float *target,
		const float *mask, float *const *grads)
{
	const PlModel *m = e->m;
	if (e->n == 1)
		return pl_bptt_run(e->job[0].bp, params, x, target, mask, e->B, e->B, grads);
	/* pl_bptt_run reads rows r0.. of each step: offset the base pointers, keep ld = B. */
	pthread_t tid[ENGINE_MAX_THREADS];
	int started[ENGINE_MAX_THREADS] = {0};
	for (int i = 0; i < e->n; i++) {
		Job *j = &e->job[i];
		j->params = params;
		j->x = x + (size_t)j->r0 * m->in_size;
		j->target = target + (size_t)j->r0 * m->pred_size;
		j->mask = mask;
		j->out_grads = grads;
		if (i > 0)
			started[i] = pthread_create(&tid[i], NULL, job_run, j) == 0;
	}
	job_run(&e->job[0]);
	for (int i = 1; i < e->n; i++) {
		if (started[i])
			pthread_join(tid[i], NULL);
		else
			job_run(&e->job[i]);
	}
	PlBpttResult r = {0.0, 0.0, 0.0, 1};
	for (int i = 0; i < e->n; i++) {
		r.loss += e->job[i].res.loss;
		r.metric += m->meta_loss == PL_LOSS_CE ? e->job[i].res.metric * e->job[i].rows / e->B
						       : e->job[i].res.metric;
		r.metric_first += m->meta_loss == PL_LOSS_CE ? e->job[i].res.metric_first * e->job[i].rows / e->B
							     : e->job[i].res.metric_first;
		r.finite &= e->job[i].res.finite;
	}
	if (grads)
		for (int i = 1; i < e->n; i++)
			for (int p = 0; p < m->n_params; p++) {
				int64_t n = pl_desc_numel(&m->params[p]);
				float *dst = grads[p];
				const float *src = e->job[i].grads[p];
				for (int64_t q = 0; q < n; q++)
					dst[q] += src[q];
			}
	return r;
}
