/* tests/test_perf.c -- every execution scheme of the runtime gives the interpreter's gradients.
 *
 * The speed levers of the runtime change how a batch is walked, never the step code: --threads splits
 * the rows over threads, --block walks a thread's rows in sequential BPTT runs that accumulate the
 * gradients, --bptt recompute re-runs forward segments. Each must give the gradient of the whole
 * batch. Shipped models (RNN Hebbian, LSTM gradient: a double backward, RNN none) at hidden = 8 are
 * built by both backends (C: emitted, compiled to a shared object and loaded; LLVM: JIT, when
 * configured) and run through the engine under every scheme on one random batch; the meta-loss and
 * every parameter gradient are compared with interp_trial (the interpreter's BPTT, in double).
 * Float against double over T steps of a (double) backward: relative error <= 2e-5 of each tensor's
 * largest entry, 1e-5 on the loss. A second check: two runs of the same scheme give the same bits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "diag.h"
#include "emit_c.h"
#include "frontend.h"
#include "interp.h"
#include "util.h"
#ifdef HAVE_LLVM
#include "jit.h"
#endif

static const char *const models[] = {
	"models/cue_reward/rnn_hebbian.plast",
	"models/cue_reward/lstm_gradient.plast",
	"models/cue_reward/rnn_gradient.plast",
	"models/copy/rnn_none.plast",
};

typedef struct Scheme {
	int threads, block;
	PlBpttStrategy bptt;
	int k;
} Scheme;

/* one block, row blocks of 1 and of a size that does not divide the rows, threads with and without
 * blocks, recompute with blocks */
static const Scheme schemes[] = {
	{1, 0, PL_BPTT_STORE, 0},     {1, 1, PL_BPTT_STORE, 0},     {1, 4, PL_BPTT_STORE, 0},
	{2, 0, PL_BPTT_STORE, 0},     {2, 1, PL_BPTT_STORE, 0},     {3, 2, PL_BPTT_STORE, 0},
	{1, 2, PL_BPTT_RECOMPUTE, 3}, {2, 1, PL_BPTT_RECOMPUTE, 2},
};

enum { T = 7, B = 6 };

static char tmpdir[64];

static uint64_t rng = 0x2545f4914f6cdd1dull;

static double urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

/* Emits p as C, compiles it into a shared object and returns its descriptor (handle in *h). */
static const PlModel *build_c(const Program *p, void **h)
{
	char pre[256], c[400], so[400], cmd[2048];
	emitc_symbol_prefix(p, pre, sizeof pre);
	snprintf(c, sizeof c, "%s/%s.c", tmpdir, pre);
	snprintf(so, sizeof so, "%s/%s.so", tmpdir, pre);
	if (emitc_write(p, NULL, c, stderr) != 0)
		return NULL;
	const char *cc = getenv("CC") && getenv("CC")[0] ? getenv("CC") : "cc";
	snprintf(cmd, sizeof cmd,
		"%s -std=c11 -O2 -march=native -fopenmp-simd -fno-math-errno -fPIC -shared -I'%s' %s -o '%s' '%s' %s -lm",
		cc, PERF_TEST_RT_INC, PERF_TEST_BLAS_CFLAGS, so, c, PERF_TEST_BLAS_LIBS);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_perf: compile failed: %s\n", cmd);
		return NULL;
	}
	*h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	if (!*h) {
		fprintf(stderr, "test_perf: dlopen: %s\n", dlerror());
		return NULL;
	}
	char sym[300];
	snprintf(sym, sizeof sym, "%s_model", pre);
	return dlsym(*h, sym);
}

/* Runs every scheme on m and compares with the interpreter's loss and gradients. Returns failures. */
static int check_schemes(const char *what, const PlModel *m, float *const *params, const float *x,
	const float *target, const float *mask, double ref_loss, double *const *ref_g)
{
	int fails = 0;
	float **g = pl_params_alloc(m), **g2 = pl_params_alloc(m);
	assert_non_null(g);
	assert_non_null(g2);
	for (size_t s = 0; s < sizeof schemes / sizeof *schemes; s++) {
		const Scheme *sc = &schemes[s];
		PlEngine *e = pl_engine_new_block(m, B, T, sc->bptt, sc->k, sc->threads, sc->block);
		assert_non_null(e);
		PlBpttResult r = pl_engine_run(e, params, x, target, mask, g);
		PlBpttResult r2 = pl_engine_run(e, params, x, target, mask, g2);
		double lerr = fabs(r.loss - ref_loss) / (fabs(ref_loss) + 1e-30);
		double worst = 0.0;
		const char *worst_name = "";
		int same = r.loss == r2.loss;
		for (int i = 0; i < m->n_params; i++) {
			int64_t n = pl_desc_numel(&m->params[i]);
			double mx = 0.0, err = 0.0;
			for (int64_t j = 0; j < n; j++)
				mx = fmax(mx, fabs(ref_g[i][j]));
			for (int64_t j = 0; j < n; j++) {
				err = fmax(err, fabs(g[i][j] - ref_g[i][j]));
				same &= g[i][j] == g2[i][j];
			}
			err = mx > 0 ? err / mx : err;
			if (err > worst) {
				worst = err;
				worst_name = m->params[i].name;
			}
		}
		int ok = lerr <= 1e-5 && worst <= 2e-5 && same && r.finite;
		printf("# %s threads=%d block=%d bptt=%s%s: loss rel err %.1e, worst grad rel err %.1e (%s)%s%s\n", what,
			sc->threads, pl_engine_block(e), sc->bptt == PL_BPTT_STORE ? "store" : "recompute",
			sc->bptt == PL_BPTT_STORE ? "" : (sc->k == 2 ? ":2" : ":3"), lerr, worst, worst_name,
			same ? "" : ", NOT REPRODUCIBLE", ok ? "" : "  <-- FAIL");
		fails += !ok;
		pl_engine_free(e);
	}
	pl_params_free(m, g);
	pl_params_free(m, g2);
	return fails;
}

static void test_schemes(void **state)
{
	(void)state;
	const char *top = getenv("top_srcdir");
	int checked = 0, fails = 0, in_place = 0;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/plastc-perf-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	for (size_t k = 0; k < sizeof models / sizeof *models; k++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", top ? top : ".", models[k]);
		char set0[] = "hidden=8";
		char *sets[] = {set0};
		DiagCtx *d = diag_ctx_new(stderr);
		Program *p = frontend_load_program(path, 1, sets, d); /* d outlives p: locations point into it */
		assert_non_null(p);

		/* parameters: the model's initialisation (random alpha), as float and double */
		int np = p->n_params;
		float **pf = calloc((size_t)np, sizeof *pf);
		double **pd = calloc((size_t)np, sizeof *pd), **gd = calloc((size_t)np, sizeof *gd);
		void *h = NULL;
		const PlModel *m = build_c(p, &h);
		assert_non_null(m);
		assert_int_equal(m->n_params, np);
		float **params = pl_params_alloc(m);
		pl_init_params(m, 7, params);
		for (int i = 0; i < np; i++) {
			int64_t n = pl_desc_numel(&m->params[i]);
			pd[i] = malloc((size_t)n * sizeof(double));
			gd[i] = malloc((size_t)n * sizeof(double));
			for (int64_t j = 0; j < n; j++)
				pd[i][j] = params[i][j];
			pf[i] = params[i];
		}
		size_t nx = (size_t)T * B * m->in_size, ny = (size_t)T * B * m->pred_size;
		float *x = malloc(nx * sizeof *x), *tg = malloc(ny * sizeof *tg), *mask = malloc(T * sizeof *mask);
		double *xd = malloc(nx * sizeof *xd), *tgd = malloc(ny * sizeof *tgd), *maskd = malloc(T * sizeof *maskd);
		for (size_t i = 0; i < nx; i++)
			xd[i] = x[i] = (float)urand();
		for (size_t i = 0; i < ny; i++)
			tgd[i] = tg[i] = (float)urand();
		for (int t = 0; t < T; t++)
			maskd[t] = mask[t] = (float)((t % 3 + 1) / 10.0); /* unequal step weights */
		TrialBatch tb = {T, B, xd, tgd, maskd};
		double ref_loss = 0.0;
		assert_int_equal(interp_trial(p, (const double *const *)pd, &tb, &ref_loss, gd, stderr), 0);

		char what[300];
		snprintf(what, sizeof what, "%s C", models[k]);
		fails += check_schemes(what, m, params, x, tg, mask, ref_loss, gd);
		checked++;
		/* the plastic models' descriptors let the runtime keep one buffer per plastic weight's adjoint
		 * (bar_in_place), which the schemes above used; the first such model also with two buffers */
		if (m->bar_in_place) {
			if (in_place++ == 0) {
				assert_int_equal(setenv("PLASTC_NO_BAR_IN_PLACE", "1", 1), 0);
				snprintf(what, sizeof what, "%s C, two adjoint buffers", models[k]);
				fails += check_schemes(what, m, params, x, tg, mask, ref_loss, gd);
				assert_int_equal(unsetenv("PLASTC_NO_BAR_IN_PLACE"), 0);
			}
		}
#ifdef HAVE_LLVM
		JitModel *j = jit_compile(p, NULL, stderr);
		assert_non_null(j);
		snprintf(what, sizeof what, "%s LLVM", models[k]);
		fails += check_schemes(what, jit_model(j), params, x, tg, mask, ref_loss, gd);
		jit_free(j);
		checked++;
#endif
		pl_params_free(m, params);
		for (int i = 0; i < np; i++) {
			free(pd[i]);
			free(gd[i]);
		}
		free(pf);
		free(pd);
		free(gd);
		free(x);
		free(tg);
		free(mask);
		free(xd);
		free(tgd);
		free(maskd);
		dlclose(h);
		program_free(p);
		diag_ctx_free(d);
	}
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_perf: could not remove %s\n", tmpdir);
	printf("# %d model/backend pairs x %zu schemes, %d failures\n", checked,
		sizeof schemes / sizeof *schemes, fails);
	printf("# %d models update a plastic adjoint in place (bar_in_place)\n", in_place);
	assert_int_equal(fails, 0);
	assert_true(checked > 0);
	assert_true(in_place > 0);
}

/* A C build of models/cue_reward/rnn_hebbian.plast with one --set, in its own temporary folder. */
typedef struct {
	DiagCtx *d;
	Program *p;
	void *h;
	const PlModel *m;
} RnnBuild;

static void rnn_build(RnnBuild *b, const char *set)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	snprintf(path, sizeof path, "%s/models/cue_reward/rnn_hebbian.plast", top ? top : ".");
	snprintf(tmpdir, sizeof tmpdir, "/tmp/plastc-perf-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	char set0[32];
	snprintf(set0, sizeof set0, "%s", set);
	char *sets[] = {set0};
	b->d = diag_ctx_new(stderr);
	b->p = frontend_load_program(path, 1, sets, b->d);
	assert_non_null(b->p);
	b->h = NULL;
	b->m = build_c(b->p, &b->h);
	assert_non_null(b->m);
}

static void rnn_build_free(RnnBuild *b)
{
	dlclose(b->h);
	program_free(b->p);
	diag_ctx_free(b->d);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_perf: could not remove %s\n", tmpdir);
}

/* pl_auto_block: a model whose per-trial state is large gets small blocks, a small one none, and
 * PLASTC_BLOCK overrides. Uses the hidden = 8 and hidden = 256 builds' descriptors only. */
static void test_auto_block(void **state)
{
	(void)state;
	int blocks[2];
	const char *hs[2] = {"hidden=8", "hidden=256"};
	unsetenv("PLASTC_BLOCK");
	for (int i = 0; i < 2; i++) {
		RnnBuild b;
		rnn_build(&b, hs[i]);
		blocks[i] = pl_auto_block(b.m, 64);
		if (i == 1) {
			setenv("PLASTC_BLOCK", "5", 1);
			assert_int_equal(pl_auto_block(b.m, 64), 5);
			unsetenv("PLASTC_BLOCK");
		}
		rnn_build_free(&b);
	}
	printf("# auto block: hidden=8 -> %d, hidden=256 -> %d (of 64 rows)\n", blocks[0], blocks[1]);
	assert_int_equal(blocks[0], 0);
	assert_true(blocks[1] >= 1 && blocks[1] < 64);
}

/* OpenBLAS's own; declared here so the test needs no cblas.h include path */
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);

/* One engine thread means one BLAS thread unless the environment asks for more (engine.c: OpenBLAS's
 * spin-waiting threads beside another job made steps 20-50x slower); several engine threads always mean
 * single-threaded BLAS. */
static void test_blas_threads(void **state)
{
	(void)state;
	RnnBuild b;
	rnn_build(&b, "hidden=8");
	unsetenv("OPENBLAS_NUM_THREADS");
	unsetenv("OMP_NUM_THREADS");
	openblas_set_num_threads(2);
	int n0 = openblas_get_num_threads(); /* 1 on a one-core machine */
	PlEngine *e = pl_engine_new_block(b.m, 4, 3, PL_BPTT_STORE, 1, 1, 0);
	assert_non_null(e);
	assert_int_equal(openblas_get_num_threads(), 1);
	pl_engine_free(e);
	setenv("OPENBLAS_NUM_THREADS", "2", 1);
	openblas_set_num_threads(2);
	e = pl_engine_new_block(b.m, 4, 3, PL_BPTT_STORE, 1, 1, 0);
	assert_non_null(e);
	assert_int_equal(openblas_get_num_threads(), n0); /* the user's choice stands */
	pl_engine_free(e);
	e = pl_engine_new_block(b.m, 4, 3, PL_BPTT_STORE, 1, 2, 0);
	assert_non_null(e);
	assert_int_equal(openblas_get_num_threads(), 1); /* our threads, never both */
	pl_engine_free(e);
	unsetenv("OPENBLAS_NUM_THREADS");
	printf("# BLAS threads: 1 engine thread -> 1 (unset) / %d (OPENBLAS_NUM_THREADS=2); 2 engine threads -> 1\n", n0);
	rnn_build_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schemes),
		cmocka_unit_test(test_auto_block),
		cmocka_unit_test(test_blas_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
