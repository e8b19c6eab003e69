/* tests/test_fsc_backends.c -- the image kernels and the oneshot models in generated code.
 *
 * 1. The float kernels of runtime/pl_img.h (through the exported pl_k_* that the LLVM backend calls)
 *    against direct double loops written from ops.def's definitions, at sizes where the kernels take
 *    their grouped-GEMM paths (many images of few output pixels, a last partial group), with shared and
 *    per-trial operands, stride and padding.
 * 2. The shipped oneshot models (Conv-4 encoder + plastic RNN/LSTM) at a small size through the C
 *    backend, forward and step VJP (for the gradient rule a double backward through the encoder's
 *    output), against the interpreter (emitc_harness.c).
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
#include "emitc_harness.h"
#include "frontend.h"
#include "plastrt.h"

static uint64_t rs = 0x243f6a8885a308d3ull;

static double urand(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (double)(rs >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

/* n random floats, with a double copy */
static float *rnd(long n, double **d)
{
	float *f = malloc(sizeof *f * (size_t)(n ? n : 1));
	*d = malloc(sizeof **d * (size_t)(n ? n : 1));
	assert_non_null(f);
	assert_non_null(*d);
	for (long i = 0; i < n; i++)
		(*d)[i] = f[i] = (float)urand();
	return f;
}

/* max |a - b| / max(1, max |b|) */
static double rel_err(const float *a, const double *b, long n)
{
	double scale = 1.0, e = 0.0;
	for (long i = 0; i < n; i++)
		scale = fmax(scale, fabs(b[i]));
	for (long i = 0; i < n; i++)
		e = fmax(e, fabs(a[i] - b[i]));
	return e / scale;
}

/* The trilinear form of ops.def, T(g, x, w) = sum g[co,i,j] x[c, s*i+u-p, s*j+v-p] w[co,c,u*k+v], and
 * its three partial derivatives, directly: which = 0 conv2d (into g's place), 1 conv2d_t (x's), 2
 * conv2d_w (w's). Operand strides 0 when shared. */
static void ref_conv(int which, long n, int xb, int wb, int gb, long C, long H, long W, long Co, long k, long s,
	long p, const double *x, const double *w, const double *g, double *out)
{
	long Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1;
	long nx = C * H * W, nw = Co * C * k * k, ng = Co * Ho * Wo;
	long no = which == 0 ? ng : which == 1 ? nx : nw;
	memset(out, 0, sizeof *out * (size_t)(n * no));
	for (long b = 0; b < n; b++) {
		const double *xb_ = x ? x + (xb ? b * nx : 0) : NULL, *wb_ = w ? w + (wb ? b * nw : 0) : NULL;
		const double *gb_ = g ? g + (gb ? b * ng : 0) : NULL;
		double *o = out + b * no;
		for (long co = 0; co < Co; co++)
			for (long c = 0; c < C; c++)
				for (long u = 0; u < k; u++)
					for (long v = 0; v < k; v++)
						for (long i = 0; i < Ho; i++)
							for (long j = 0; j < Wo; j++) {
								long h = s * i + u - p, ww = s * j + v - p;
								if (h < 0 || h >= H || ww < 0 || ww >= W)
									continue;
								long ix = (c * H + h) * W + ww, iw = (co * C + c) * k * k + u * k + v,
								     ig = (co * Ho + i) * Wo + j;
								if (which == 0)
									o[ig] += xb_[ix] * wb_[iw];
								else if (which == 1)
									o[ix] += gb_[ig] * wb_[iw];
								else
									o[iw] += gb_[ig] * xb_[ix];
							}
	}
}

typedef struct ConvCase {
	long n;
	int xb, wb, gb; /* which operands are per trial */
	long C, H, W, Co, k, s, p;
} ConvCase;

static void check_conv(const ConvCase *cc)
{
	long Ho = (cc->H + 2 * cc->p - cc->k) / cc->s + 1, Wo = (cc->W + 2 * cc->p - cc->k) / cc->s + 1;
	long nx = cc->C * cc->H * cc->W, nw = cc->Co * cc->C * cc->k * cc->k, ng = cc->Co * Ho * Wo, n = cc->n;
	double *xd, *wd, *gd;
	float *x = rnd((cc->xb ? n : 1) * nx, &xd), *w = rnd((cc->wb ? n : 1) * nw, &wd);
	float *g = rnd((cc->gb ? n : 1) * ng, &gd);
	long nmax = n * (nx > nw ? (nx > ng ? nx : ng) : (nw > ng ? nw : ng));
	float *of = malloc(sizeof *of * (size_t)nmax);
	double *od = malloc(sizeof *od * (size_t)nmax);
	assert_non_null(of);
	assert_non_null(od);
	/* conv2d: x, w -> [n, Co, Ho, Wo] */
	pl_k_conv2d(n, cc->xb, cc->wb, cc->C, cc->H, cc->W, cc->Co, cc->k, cc->s, cc->p, x, w, of);
	ref_conv(0, n, cc->xb, cc->wb, 0, cc->C, cc->H, cc->W, cc->Co, cc->k, cc->s, cc->p, xd, wd, NULL, od);
	double e0 = rel_err(of, od, n * ng);
	/* conv2d_t: g, w -> [n, C, H, W] */
	pl_k_conv2d_t(n, cc->gb, cc->wb, cc->C, cc->H, cc->W, cc->Co, cc->k, cc->s, cc->p, g, w, of);
	ref_conv(1, n, 0, cc->wb, cc->gb, cc->C, cc->H, cc->W, cc->Co, cc->k, cc->s, cc->p, NULL, wd, gd, od);
	double e1 = rel_err(of, od, n * nx);
	/* conv2d_w: x, g -> [n, Co, C, k*k] */
	pl_k_conv2d_w(n, cc->xb, cc->gb, cc->C, cc->H, cc->W, cc->Co, cc->k, cc->s, cc->p, x, g, of);
	ref_conv(2, n, cc->xb, 0, cc->gb, cc->C, cc->H, cc->W, cc->Co, cc->k, cc->s, cc->p, xd, NULL, gd, od);
	double e2 = rel_err(of, od, n * nw);
	printf("# conv n=%ld x%s w%s g%s [%ld,%ld,%ld] Co=%ld k=%ld s=%ld p=%ld: rel err %.1e %.1e %.1e\n", n,
		cc->xb ? "[n]" : "", cc->wb ? "[n]" : "", cc->gb ? "[n]" : "", cc->C, cc->H, cc->W, cc->Co, cc->k, cc->s,
		cc->p, e0, e1, e2);
	assert_true(e0 < 1e-5);
	assert_true(e1 < 1e-5);
	assert_true(e2 < 1e-5);
	free(x), free(w), free(g), free(xd), free(wd), free(gd), free(of), free(od);
}

static void test_conv_kernels(void **state)
{
	(void)state;
	static const ConvCase cases[] = {
		{37, 1, 0, 1, 5, 7, 7, 6, 3, 1, 1},   /* 49 pixels: one GEMM per image */
		{60, 1, 0, 1, 6, 3, 3, 5, 3, 1, 1},   /* 9 pixels: groups of 56 images, last group 4 */
		{3, 1, 0, 1, 64, 14, 14, 64, 3, 1, 1}, /* a Conv-4 block 2 on Fashion-MNIST */
		{50, 1, 0, 1, 8, 3, 3, 8, 3, 1, 1},   /* 9 pixels: one group of 50 */
		{5, 1, 1, 1, 3, 9, 8, 4, 3, 2, 1},    /* per-trial kernels, stride 2, odd sides */
		{6, 0, 1, 1, 2, 6, 6, 3, 2, 2, 0},    /* a shared image */
		{1, 0, 0, 0, 3, 5, 5, 2, 3, 1, 2},    /* nothing batched, padding 2 */
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		check_conv(&cases[i]);
}

/* maxpool / pool_argmax / pool_gather / pool_scatter against direct loops (ties: the first window
 * position, which random values never produce; one window of equal maxima checks it) */
static void test_pool_kernels(void **state)
{
	(void)state;
	const long n = 4, C = 3, H = 7, W = 6, k = 3, s = 2, Ho = (H - k) / s + 1, Wo = (W - k) / s + 1;
	double *xd, *gd;
	float *x = rnd(n * C * H * W, &xd), *g = rnd(n * C * Ho * Wo, &gd);
	for (long u = 0; u < k; u++)
		for (long v = 0; v < k; v++)
			x[u * W + v] = 2.0f; /* image 0, channel 0: the first window is a tie of its maximum */
	float *y = malloc(sizeof *y * (size_t)(n * C * Ho * Wo)), *sel = malloc(sizeof *sel * (size_t)(n * C * Ho * Wo));
	float *back = malloc(sizeof *back * (size_t)(n * C * H * W)), *gat = malloc(sizeof *gat * (size_t)(n * C * Ho * Wo));
	pl_k_maxpool(n, 0, C, H, W, k, s, x, y);
	pl_k_maxpool(n, 1, C, H, W, k, s, x, sel);
	pl_k_pool_move(n, 0, 1, 1, C, H, W, k, s, x, sel, gat);
	pl_k_pool_move(n, 1, 1, 1, C, H, W, k, s, g, sel, back);
	double *want_back = calloc((size_t)(n * C * H * W), sizeof *want_back);
	for (long b = 0; b < n * C; b++)
		for (long i = 0; i < Ho; i++)
			for (long j = 0; j < Wo; j++) {
				const float *win = x + b * H * W + s * i * W + s * j;
				long best = 0;
				for (long u = 0; u < k; u++)
					for (long v = 0; v < k; v++)
						if (win[u * W + v] > win[(best / k) * W + best % k])
							best = u * k + v;
				long ip = b * Ho * Wo + i * Wo + j;
				assert_true(y[ip] == win[(best / k) * W + best % k]);
				assert_true(sel[ip] == (float)best);
				assert_true(gat[ip] == y[ip]);
				want_back[b * H * W + (s * i + best / k) * W + s * j + best % k] += g[ip];
			}
	assert_true(sel[0] == 0.0f); /* the tie went to the first position */
	for (long q = 0; q < n * C * H * W; q++)
		assert_true(fabs(back[q] - want_back[q]) < 1e-6);
	free(x), free(g), free(xd), free(gd), free(y), free(sel), free(back), free(gat), free(want_back);
}

/* The oneshot models at hidden 8, 16x16 images (4 blocks: 16 -> 1) and 4 filters, C backend vs the
 * interpreter. */
static void test_oneshot_models(void **state)
{
	(void)state;
	static const char *const models[] = {
		"models/oneshot/rnn_gradient.plast",
		"models/oneshot/rnn_hebbian.plast",
		"models/oneshot/lstm_none.plast",
	};
	const char *top = getenv("top_srcdir");
	if (!top)
		top = PLASTC_ABS_SRCDIR;
	int checked = 0;
	for (size_t k = 0; k < sizeof models / sizeof *models; k++) {
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", top, models[k]);
		char s0[] = "hidden=8", s1[] = "pixels=256", s2[] = "filters=4";
		char *sets[] = {s0, s1, s2};
		DiagCtx *d = diag_ctx_new(stderr);
		Program *p = frontend_load_program(path, 3, sets, d);
		assert_non_null(p); /* d stays alive: node locations point into its copies of the sources */
		EmitcCheck r;
		int rc = emitc_check_program(p, 1e-3, &r);
		printf("# %s: %d + %d nodes, %d values (max rel err double %.1e, float %.1e)%s\n", models[k], p->fwd->n,
			p->vjp->n, r.compared, r.max_err_double, r.max_err_float, rc ? " MISMATCH" : "");
		assert_int_equal(rc, 0);
		checked++;
		program_free(p);
		diag_ctx_free(d);
	}
	assert_int_equal(checked, 3);
}

int main(void)
{
	if (emitc_harness_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conv_kernels),
		cmocka_unit_test(test_pool_kernels),
		cmocka_unit_test(test_oneshot_models),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	emitc_harness_done();
	return rc;
}
