/* tests/test_bn_running.c -- batch norm's running statistics, end to end through the runtime.
 *
 * A shipped oneshot model (Conv-4 encoder with batch norm, Hebbian RNN) at a small size, JIT-compiled:
 * 1. One training run of the engine (1 and 2 threads) folds the batch statistics of every time step into
 *    the running_mean / running_var parameters as PyTorch does (r = 0.9 r + 0.1 s per forward call, the
 *    variance unbiased by n/(n-1)); the expected values come from the interpreter's step_forward, run on
 *    each thread's rows separately and averaged with the rows as weights, as engine.c documents.
 * 2. An evaluation run (no gradients) uses step_forward_eval, i.e. the running statistics: its loss equals
 *    the interpreter's trial loss through step_forward_eval, and differs from the batch-statistics loss.
 * 3. A model without batch norm gets no evaluation step and no running parameters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "diag.h"
#include "frontend.h"
#include "interp.h"
#include "jit.h"
#include "util.h"

enum { B = 6, T = 10, WAYS = 5 };

static uint64_t rs = 0x9e3779b97f4a7c15ull;

static double urand(void) /* [-1, 1) */
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (double)(rs >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

typedef struct Fix {
	DiagCtx *d;
	Program *p;
	JitModel *jm;
	const PlModel *m;
	float **par;     /* initial parameters (running statistics set away from 0 / 1) */
	float *x, *target, mask[T];
	double *xd, *td;
} Fix;

static void load(Fix *f, const char *rel, int nsets, char **sets)
{
	const char *top = getenv("top_srcdir");
	if (!top)
		top = PLASTC_ABS_SRCDIR;
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", top, rel);
	f->d = diag_ctx_new(stderr);
	f->p = frontend_load_program(path, nsets, sets, f->d);
	assert_non_null(f->p);
	EmitllTimes t = {0};
	f->jm = jit_compile(f->p, &t, stderr);
	assert_non_null(f->jm);
	f->m = jit_model(f->jm);
	assert_int_equal(pl_model_check(f->m), 0);
}

static void unload(Fix *f)
{
	jit_free(f->jm);
	program_free(f->p);
	diag_ctx_free(f->d);
}

static void oneshot_fixture(Fix *f)
{
	static char s0[] = "hidden=8", s1[] = "pixels=256", s2[] = "filters=4";
	char *sets[] = {s0, s1, s2};
	load(f, "models/oneshot/rnn_hebbian.plast", 3, sets);
	const PlModel *m = f->m;
	f->par = pl_params_alloc(m);
	assert_non_null(f->par);
	pl_init_params(m, 7, f->par);
	for (int j = 0; j < m->n_params; j++)
		if (m->params[j].running) {
			int var = strstr(m->params[j].name, "running_var") != NULL;
			for (int64_t i = 0; i < pl_desc_numel(&m->params[j]); i++)
				f->par[j][i] = (float)(var ? 0.5 + fabs(urand()) : 0.3 * urand());
		}
	int I = m->in_size, Oy = m->pred_size;
	size_t nx = (size_t)T * B * I, nt = (size_t)T * B * Oy;
	f->x = malloc(nx * sizeof *f->x);
	f->xd = malloc(nx * sizeof *f->xd);
	f->target = calloc(nt, sizeof *f->target);
	f->td = calloc(nt, sizeof *f->td);
	assert_true(f->x && f->xd && f->target && f->td);
	for (size_t i = 0; i < nx; i++)
		f->xd[i] = f->x[i] = (float)urand();
	for (int t = 0; t < T; t++) {
		f->mask[t] = t < WAYS ? 0.0f : 1.0f / WAYS;
		for (int b = 0; b < B; b++) {
			size_t k = ((size_t)t * B + b) * Oy + (size_t)((t + b) % Oy);
			f->td[k] = f->target[k] = 1.0f;
		}
	}
}

static void oneshot_free(Fix *f)
{
	pl_params_free(f->m, f->par);
	free(f->x);
	free(f->xd);
	free(f->target);
	free(f->td);
	unload(f);
}

/* The batch statistics of every step of rows [r0, r0 + n), through the interpreter's step_forward;
 * stats[t][j] gets w * (value of param j's PARAM_BAR output), added. */
static void interp_stats(const Fix *f, double *const *par, int r0, int n, double w, double **stats)
{
	const Program *p = f->p;
	const IrFunc *g = p->fwd;
	int I = p->in_size, S = p->n_state;
	double **st = calloc((size_t)S + 1, sizeof *st), **nx = calloc((size_t)S + 1, sizeof *nx);
	for (int s = 0; s < S; s++) {
		st[s] = calloc((size_t)(n * ir_shape_numel(p->state[s].shape)), sizeof **st);
		nx[s] = calloc((size_t)(n * ir_shape_numel(p->state[s].shape)), sizeof **nx);
	}
	const double **in = calloc((size_t)g->nins + 1, sizeof *in);
	double **out = calloc((size_t)g->nouts + 1, sizeof *out);
	for (int k = 0; k < g->nouts; k++) {
		IrShape sh = g->nodes[g->outs[k].node].shape;
		out[k] = calloc((size_t)(ir_shape_numel(sh) * (sh.batch ? n : 1)) + 1, sizeof **out);
	}
	int found = 0;
	for (int t = 0; t < T; t++) {
		for (int k = 0; k < g->nins; k++)
			in[k] = g->ins[k].role == IR_ROLE_DATA ? f->xd + ((size_t)t * B + r0) * I : st[g->ins[k].index];
		assert_int_equal(interp_run(g, n, n, (const double *const *)par, in, out, stderr), 0);
		for (int k = 0; k < g->nouts; k++) {
			const IrPort *pt = &g->outs[k];
			if (pt->role == IR_ROLE_STATE)
				memcpy(nx[pt->index], out[k], sizeof **nx * (size_t)(n * ir_shape_numel(p->state[pt->index].shape)));
			else if (pt->role == IR_ROLE_PARAM_BAR) {
				assert_true(p->params[pt->index].running);
				for (int64_t i = 0; i < ir_shape_numel(p->params[pt->index].shape); i++)
					stats[t * p->n_params + pt->index][i] += w * out[k][i];
				found += t == 0;
			}
		}
		double **tmp = st;
		st = nx;
		nx = tmp;
	}
	assert_int_equal(found, 8); /* 4 blocks x (mean, variance) */
	for (int s = 0; s < S; s++) {
		free(st[s]);
		free(nx[s]);
	}
	for (int k = 0; k < g->nouts; k++)
		free(out[k]);
	free(st);
	free(nx);
	free(in);
	free(out);
}

static double **dpar_of(const Fix *f, float *const *par)
{
	const Program *p = f->p;
	double **d = calloc((size_t)p->n_params + 1, sizeof *d);
	for (int j = 0; j < p->n_params; j++) {
		int64_t n = ir_shape_numel(p->params[j].shape);
		d[j] = calloc((size_t)n + 1, sizeof **d);
		for (int64_t i = 0; i < n; i++)
			d[j][i] = par[j][i];
	}
	return d;
}

static void dpar_free(const Fix *f, double **d)
{
	for (int j = 0; j < f->p->n_params; j++)
		free(d[j]);
	free(d);
}

static void check_fold(int threads)
{
	Fix f;
	oneshot_fixture(&f);
	const PlModel *m = f.m;
	int P = m->n_params;
	float **par = pl_params_alloc(m), **grads = pl_params_alloc(m);
	for (int j = 0; j < P; j++)
		memcpy(par[j], f.par[j], sizeof(float) * (size_t)pl_desc_numel(&m->params[j]));
	PlEngine *e = pl_engine_new_block(m, B, T, PL_BPTT_STORE, 1, threads, 0);
	assert_non_null(e);
	PlBpttResult r = pl_engine_run(e, par, f.x, f.target, f.mask, grads);
	assert_true(r.finite);

	/* expected: the rows of each thread as engine.c splits them, weighted by rows / B */
	double **d0 = dpar_of(&f, f.par);
	double **stats = calloc((size_t)T * P, sizeof *stats);
	for (int t = 0; t < T; t++)
		for (int j = 0; j < P; j++)
			stats[t * P + j] = calloc((size_t)pl_desc_numel(&m->params[j]) + 1, sizeof **stats);
	for (int i = 0; i < threads; i++) {
		int r0 = (int)((long)B * i / threads), n = (int)((long)B * (i + 1) / threads) - r0;
		interp_stats(&f, d0, r0, n, (double)n / B, stats);
	}
	int checked = 0;
	double worst = 0;
	for (int j = 0; j < P; j++) {
		int64_t n = pl_desc_numel(&m->params[j]);
		for (int64_t i = 0; i < n; i++) {
			if (!m->params[j].running) {
				assert_true(par[j][i] == f.par[j][i]); /* nothing else changes */
				continue;
			}
			double want = d0[j][i];
			for (int t = 0; t < T; t++)
				want = 0.9 * want + 0.1 * stats[t * P + j][i];
			double err = fabs(par[j][i] - want) / (1e-3 + fabs(want));
			if (err > worst)
				worst = err;
			if (!(err < 1e-3))
				fail_msg("%s[%lld]: runtime %.7g, expected %.7g (%d threads)", m->params[j].name, (long long)i,
					par[j][i], want, threads);
			checked++;
		}
	}
	print_message("%d running values after one training run, %d thread(s): worst rel err %.2e\n", checked,
		threads, worst);
	assert_int_equal(checked, 8 * 4);
	for (int k = 0; k < T * P; k++)
		free(stats[k]);
	free(stats);
	dpar_free(&f, d0);
	pl_engine_free(e);
	pl_params_free(m, par);
	pl_params_free(m, grads);
	oneshot_free(&f);
}

static void test_fold_one_thread(void **state)
{
	(void)state;
	check_fold(1);
}

static void test_fold_two_threads(void **state)
{
	(void)state;
	check_fold(2);
}

static void test_eval_uses_running(void **state)
{
	(void)state;
	Fix f;
	oneshot_fixture(&f);
	const PlModel *m = f.m;
	assert_non_null(f.p->fwd_eval);
	assert_non_null(m->step_forward_eval);
	PlEngine *e = pl_engine_new_block(m, B, T, PL_BPTT_STORE, 1, 1, 0);
	assert_non_null(e);
	PlBpttResult r = pl_engine_run(e, f.par, f.x, f.target, f.mask, NULL);
	assert_true(r.finite);

	double **d = dpar_of(&f, f.par);
	double maskd[T];
	for (int t = 0; t < T; t++)
		maskd[t] = f.mask[t];
	TrialBatch tb = {T, B, f.xd, f.td, maskd};
	Program q = *f.p; /* the same program evaluated through its evaluation step */
	q.fwd = f.p->fwd_eval;
	double l_eval = 0, l_train = 0;
	assert_int_equal(interp_trial(&q, (const double *const *)d, &tb, &l_eval, NULL, stderr), 0);
	assert_int_equal(interp_trial(f.p, (const double *const *)d, &tb, &l_train, NULL, stderr), 0);
	print_message("eval loss: runtime %.7g, interpreter (running statistics) %.7g, batch statistics %.7g\n",
		r.loss, l_eval, l_train);
	assert_true(fabs(r.loss - l_eval) <= 1e-4 * (1 + fabs(l_eval)));
	assert_true(fabs(l_eval - l_train) > 1e-3); /* the statistics do matter */
	dpar_free(&f, d);
	pl_engine_free(e);
	oneshot_free(&f);
}

static void test_no_batchnorm(void **state)
{
	(void)state;
	Fix f;
	static char s0[] = "hidden=8";
	char *sets[] = {s0};
	load(&f, "models/cue_reward/rnn_hebbian.plast", 1, sets);
	assert_null(f.p->fwd_eval);
	assert_null(f.m->step_forward_eval);
	assert_int_equal(pl_model_running(f.m), 0);
	for (int k = 0; k < f.p->fwd->nouts; k++)
		assert_true(f.p->fwd->outs[k].role != IR_ROLE_PARAM_BAR);
	unload(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fold_one_thread),
		cmocka_unit_test(test_fold_two_threads),
		cmocka_unit_test(test_eval_uses_running),
		cmocka_unit_test(test_no_batchnorm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
