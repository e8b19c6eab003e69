/* runtime/engine.c -- data-parallel BPTT: a batch's rows split over threads.
 *
 * Why split rows and not work inside a step: trials are independent until the batch mean of the loss, so
 * each thread runs whole trials (all T steps, forward and back) on its row block with no synchronisation
 * until the end, where the gradients are summed. The step functions divide by B_global (the full batch),
 * so the sum of the blocks' gradients is the gradient of the whole batch. Sums over blocks are done in a
 * fixed order, so a run's result does not depend on thread timing (it does depend on the thread count:
 * float addition is not associative). BLAS inside the step runs on one thread unless the user set
 * OPENBLAS_NUM_THREADS (pl_engine_new_block).
 *
 * Row blocks (`block`): a thread may also walk its rows in sequential blocks of `block` rows, each a whole
 * BPTT run (forward over T, back) that adds to the thread's gradients. Why: the plastic state of one
 * trial (S floats, ~0.5 MB for the reference sizes) fits in the L2 cache where that of 32 trials does
 * not, so a small block keeps the state a step reads and writes in cache instead of streaming it from
 * DRAM; the price is narrower GEMMs (M = block) for the static weights. Buffers are planned for one
 * block. block = 0 means one block of all the thread's rows.
 *
 * Ranks (MPI, dist.c) split one level higher: every rank holds the whole batch (all ranks draw it from
 * the same stream), runs the contiguous rows [B*r/N, B*(r+1)/N) of it over its threads, still dividing by
 * the whole B, and the ranks' sums are added in rank order by pl_dist_sum_f32 (identical on every rank).
 * So every rank ends with the gradient, loss and metric of the whole batch. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "util.h"

#define ENGINE_MAX_THREADS 64

typedef struct Job {
	const PlModel *m;
	PlBptt *bp;
	float **grads;   /* this block's gradients (block 0 writes the caller's buffers) */
	int r0, rows;
	int block;       /* rows per sequential BPTT run (<= rows) */
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
	int nranks;      /* pl_dist_size() when the engine was made */
	int64_t *numel;  /* per parameter, for the sum over ranks */
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
	pl_free(e->numel);
	pl_free(e);
}

PlEngine *pl_engine_new(const PlModel *m, int B, int T, PlBpttStrategy s, int k, int threads)
{
	return pl_engine_new_block(m, B, T, s, k, threads, 0);
}

PlEngine *pl_engine_new_block(const PlModel *m, int B, int T, PlBpttStrategy s, int k, int threads, int block)
{
	/* this rank's rows of the batch */
	int nr = pl_dist_size(), me = pl_dist_rank();
	int g0 = (int)((long)B * me / nr), gB = (int)((long)B * (me + 1) / nr) - g0;
	if (gB < 1) {
		pl_err("a batch of %d trials cannot be split over %d ranks (each needs at least one trial)", B, nr);
		return NULL;
	}
	if (threads < 1)
		threads = 1;
	/* A model whose step couples the trials of a call (batch norm) sees different statistics in a block
	 * of R rows than in the whole thread's rows: blocks would change what it computes, not just its speed. */
	if (m->couples_rows)
		block = 0;
	if (threads > gB)
		threads = gB;
	if (threads > ENGINE_MAX_THREADS)
		threads = ENGINE_MAX_THREADS;
	PlEngine *e = pl_alloc(sizeof *e);
	if (!e)
		return NULL;
	e->m = m;
	e->B = B;
	e->T = T;
	e->n = threads;
	e->nranks = nr;
	if (!(e->numel = pl_alloc((size_t)(m->n_params + 1) * sizeof *e->numel)))
		goto fail;
	for (int p = 0; p < m->n_params; p++)
		e->numel[p] = pl_desc_numel(&m->params[p]);
	for (int i = 0; i < threads; i++) {
		Job *j = &e->job[i];
		j->m = m;
		j->r0 = g0 + (int)((long)gB * i / threads);
		j->rows = g0 + (int)((long)gB * (i + 1) / threads) - j->r0;
		j->B = B;
		j->block = block > 0 && block < j->rows ? block : j->rows;
		j->bp = pl_bptt_new(m, j->block, T, s, k);
		if (!j->bp)
			goto fail;
		if (i > 0 && !(j->grads = pl_params_alloc(m)))
			goto fail;
	}
	/* One process uses --threads cores: OpenBLAS threads and our own never both. With several engine
	 * threads each calls single-threaded BLAS. With one, OpenBLAS would start a thread per core, and when
	 * another job holds a core its spin-waiting threads make a step 20-50x slower (measured: rnn_none at
	 * H = 384 with a 2-thread run beside it, 8 s per step against 0.17 s; docs/oneshot.md section 7), so
	 * it gets one thread too unless the user asked for more with OPENBLAS_NUM_THREADS or OMP_NUM_THREADS
	 * (as plastc compare does: cores / jobs). */
	if (threads > 1 || !(getenv("OPENBLAS_NUM_THREADS") || getenv("OMP_NUM_THREADS")))
		openblas_set_num_threads(1);
	return e;
fail:
	pl_engine_free(e);
	return NULL;
}

static int fold_running(PlEngine *e, float *const *params);

static void *job_run(void *arg)
{
	Job *j = arg;
	const PlModel *m = j->m;
	float *const *g = j->out_grads ? (j->grads ? j->grads : j->out_grads) : NULL;
	PlBpttResult r = {.finite = 1};
	for (int r0 = 0; r0 < j->rows; r0 += j->block) {
		int n = j->rows - r0 < j->block ? j->rows - r0 : j->block;
		PlBpttResult q = pl_bptt_run_rows(j->bp, n, j->params, j->x + (size_t)r0 * m->in_size,
			j->target + (size_t)r0 * m->pred_size, j->mask, j->B, j->B, g, r0 > 0);
		r.loss += q.loss;
		r.metric += m->meta_loss == PL_LOSS_CE ? q.metric * n / j->rows : q.metric;
		r.metric_first += m->meta_loss == PL_LOSS_CE ? q.metric_first * n / j->rows : q.metric_first;
		r.finite &= q.finite;
	}
	j->res = r;
	return NULL;
}

void pl_engine_set_profile(PlEngine *e, int on)
{
	for (int i = 0; i < e->n; i++)
		pl_bptt_set_profile(e->job[i].bp, on);
}

void pl_engine_profile(PlEngine *e, double *fwd, double *vjp)
{
	double f = 0.0, v = 0.0;
	for (int i = 0; i < e->n; i++)
		pl_bptt_profile(e->job[i].bp, &f, &v);
	*fwd = f / e->n;
	*vjp = v / e->n;
}

int pl_engine_block(const PlEngine *e)
{
	return e->job[0].block;
}

PlBpttResult pl_engine_run(PlEngine *e, float *const *params, const float *x, const float *target,
		const float *mask, float *const *grads)
{
	const PlModel *m = e->m;
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
	PlBpttResult r = {.finite = 1};
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
	if (e->nranks > 1) {
		/* Over the ranks: the loss, metric and a non-finite count, then the gradients. A failure here
		 * (out of memory) shows as a non-finite result; a lost rank aborts the run inside dist.c. */
		double s[4] = {r.loss, r.metric, r.finite ? 0.0 : 1.0, r.metric_first};
		if (pl_dist_sum_f64(s, 4, grads ? "loss of a training batch" : "loss of an evaluation batch") < 0)
			s[2] = 1.0;
		r.loss = s[0];
		r.metric = s[1];
		r.finite = s[2] == 0.0;
		r.metric_first = s[3];
		if (grads && pl_dist_sum_f32(grads, e->numel, m->n_params, "gradient sum over ranks") < 0)
			r.finite = 0;
	}
	if (grads && fold_running(e, params) < 0)
		r.finite = 0;
	return r;
}

/* Batch norm's running statistics after a training run, as PyTorch's momentum 0.1:
 *     running = 0.9 running + 0.1 batch          (batch variance unbiased, n/(n-1), by the step code)
 * once per forward call of the step function, i.e. once per time step in time order (the reference's
 * CNNtoRNN calls its CNN once on all T*B images: one update per meta-step; docs/oneshot.md says why we
 * differ). A call normalises with the statistics of its own rows (a thread's, as PyTorch DataParallel);
 * the value folded in is their mean over the threads and ranks weighted by rows, summed in a fixed order,
 * so every rank folds the same numbers and the result does not depend on thread timing. */
static int fold_running(PlEngine *e, float *const *params)
{
	const PlModel *m = e->m;
	int nrun = 0;
	pl_bptt_bn_stats(e->job[0].bp, &nrun);
	if (nrun <= 0)
		return 0;
	size_t n = (size_t)e->T * (size_t)nrun;
	double *acc = pl_alloc(n * sizeof(double));
	if (!acc) {
		pl_err("out of memory (batch-norm running statistics)");
		return -1;
	}
	for (int i = 0; i < e->n; i++) {
		int k;
		const float *h = pl_bptt_bn_stats(e->job[i].bp, &k);
		double w = (double)e->job[i].rows / e->B;
		for (size_t q = 0; q < n; q++)
			acc[q] += w * h[q];
	}
	if (e->nranks > 1 && pl_dist_sum_f64(acc, (int)n, "batch-norm statistics over ranks") < 0) {
		pl_free(acc);
		return -1;
	}
	for (int t = 0; t < e->T; t++) {
		const double *s = acc + (size_t)t * nrun;
		for (int i = 0; i < m->n_params; i++) {
			if (!m->params[i].running)
				continue;
			int64_t c = pl_desc_numel(&m->params[i]);
			float *r = params[i];
			for (int64_t q = 0; q < c; q++)
				r[q] = (float)(0.9 * r[q] + 0.1 * s[q]);
			s += c;
		}
	}
	pl_free(acc);
	return 0;
}

size_t pl_phys_mem(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	return pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz : (size_t)4 << 30;
}

PlBpttStrategy pl_auto_bptt(const PlModel *m, int rows, int T, int k, int threads)
{
	(void)k;
	size_t store_b = pl_bptt_bytes(m, rows, T, PL_BPTT_STORE, 0) * (size_t)threads;
	return store_b <= pl_phys_mem() / 100 * 40 ? PL_BPTT_STORE : PL_BPTT_RECOMPUTE;
}

/* The largest block whose per-step working set fits in half the L2 cache: per trial, the state entering
 * and leaving the step, the two adjoint sets, and the step's scratch (work_floats grows linearly in B).
 * When even one trial does not fit (a reference-size plastic model: ~0.5 MB of state, more scratch),
 * the passes over the plastic matrices stream from L3 or DRAM whatever the block, and what a block
 * changes is how often the static tensors are read per trial: the C and LLVM nests run the trials of a
 * block inside each row (nest_batch_inner in compiler/emit_c.c), so alpha and its gradient are read
 * once per block, and the GEMMs and weight-gradient updates get M = block rows. Then AUTO_BLOCK_STREAM
 * trials per block: 13-21 % faster than 1 for the four cue-reward models at H = 256/128, and 8 or more
 * slower again (more concurrent streams per row: docs/PERFORMANCE.md, "Trials inside the rows").
 * Models without large state (non-plastic) get one block: their cost is the static-weight GEMMs, which
 * want many rows. PLASTC_BLOCK overrides (tests). */
#define AUTO_BLOCK_STREAM 4

int pl_auto_block(const PlModel *m, int rows)
{
	if (m->couples_rows)
		return 0; /* see pl_engine_new_block */
	const char *env = getenv("PLASTC_BLOCK");
	if (env && *env)
		return atoi(env) < 0 ? 0 : atoi(env);
	long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
	size_t cache = l2 > 0 ? (size_t)l2 : (size_t)1 << 20;
	size_t state = 0;
	for (int j = 0; j < m->n_state; j++)
		state += (size_t)pl_desc_numel(&m->state[j]);
	size_t work1 = m->work_floats(1), work2 = m->work_floats(2);
	size_t per = (4 * state + (work2 > work1 ? work2 - work1 : work1)) * sizeof(float);
	/* Small per-trial sets: the whole batch fits, or the GEMMs matter more than the cache. */
	if (state * sizeof(float) < 16384)
		return 0;
	size_t b = cache / 2 / (per ? per : 1);
	if (b < 1)
		b = AUTO_BLOCK_STREAM;
	return b >= (size_t)rows ? 0 : (int)b;
}
