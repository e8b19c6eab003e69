/* tests/test_fsc_ir.c -- the image encoder in the IR: conv/pool kernels on hand-computed values, shape
 * rules, batch norm statistics, and first- and second-order derivative checks of a whole Conv-4 block
 * (convolution, batch norm composed of elementwise ops, relu, max-pool) against central differences,
 * before and after the optimiser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "interp.h"
#include "ir.h"
#include "ir_nn.h"
#include "opt.h"

static const SrcSpan NOLOC = {0};

static IrShape S3(bool batch, int64_t a, int64_t b, int64_t c)
{
	int64_t d[3] = {a, b, c};
	return ir_shape(batch, 3, d);
}

/* one input, one output, B trials: evaluates f on `in` into a fresh array */
static double *run1(IrFunc *f, int B, const double *const *in)
{
	int64_t n = (f->nodes[f->outs[0].node].shape.batch ? B : 1) * ir_shape_numel(f->nodes[f->outs[0].node].shape);
	double *out = calloc((size_t)n, sizeof *out);
	double *outs[1] = {out};
	assert_int_equal(interp_run(f, B, B, NULL, in, outs, stderr), 0);
	return out;
}

/* 1 channel 3x3 image 1..9, kernel of ones, padding 1: each output is the sum of the 3x3 neighbourhood */
static void test_conv_values(void **state)
{
	(void)state;
	IrFunc *f = ir_func_new("conv");
	int x = ir_input(f, IR_ROLE_DATA, 0, S3(true, 1, 3, 3), "x");
	int w = ir_input(f, IR_ROLE_DATA, 1, S3(false, 1, 1, 9), "w");
	int y = ir_conv2d(f, x, w, 3, 1, 1, NOLOC);
	ir_output(f, IR_ROLE_PRED, 0, y, "y");
	double xv[9], wv[9];
	for (int i = 0; i < 9; i++) {
		xv[i] = i + 1;
		wv[i] = 1;
	}
	const double *in[2] = {xv, wv};
	double *out = run1(f, 1, in);
	const double want[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
	for (int i = 0; i < 9; i++)
		assert_true(out[i] == want[i]);
	free(out);
	ir_func_free(f);

	/* stride 2, no padding, kernel picking the top-left pixel: subsampling */
	f = ir_func_new("conv_s2");
	x = ir_input(f, IR_ROLE_DATA, 0, S3(true, 1, 5, 5), "x");
	w = ir_input(f, IR_ROLE_DATA, 1, S3(false, 1, 1, 4), "w");
	y = ir_conv2d(f, x, w, 2, 2, 0, NOLOC);
	assert_true(ir_shape_eq(f->nodes[y].shape, S3(true, 1, 2, 2)));
	ir_output(f, IR_ROLE_PRED, 0, y, "y");
	double x5[25], w4[4] = {1, 0, 0, 0};
	for (int i = 0; i < 25; i++)
		x5[i] = i;
	const double *in2[2] = {x5, w4};
	out = run1(f, 1, in2);
	assert_true(out[0] == 0 && out[1] == 2 && out[2] == 10 && out[3] == 12);
	free(out);
	ir_func_free(f);
}

static void test_pool_values(void **state)
{
	(void)state;
	IrFunc *f = ir_func_new("pool");
	int x = ir_input(f, IR_ROLE_DATA, 0, S3(true, 1, 3, 5), "x");
	int y = ir_pool(f, IR_MAXPOOL, x, -1, 2, 2, NOLOC);
	int idx = ir_pool(f, IR_POOL_ARGMAX, x, -1, 2, 2, NOLOC);
	int gat = ir_pool(f, IR_POOL_GATHER, x, idx, 2, 2, NOLOC);
	int sc = ir_pool_scatter(f, y, idx, S3(true, 1, 3, 5), 2, 2, NOLOC);
	ir_output(f, IR_ROLE_PRED, 0, y, "y");
	ir_output(f, IR_ROLE_SCALAR, 0, idx, "idx");
	ir_output(f, IR_ROLE_SCALAR, 1, gat, "gather");
	ir_output(f, IR_ROLE_SCALAR, 2, sc, "scatter");
	assert_true(ir_shape_eq(f->nodes[y].shape, S3(true, 1, 1, 2))); /* floor: 3 -> 1, 5 -> 2 */
	double xv[15] = {1, 9, 2, 2, 7, /**/ 3, 4, 8, 8, 0, /**/ 50, 50, 50, 50, 50};
	const double *in[1] = {xv};
	double o0[2], o1[2], o2[2], o3[15];
	double *outs[4] = {o0, o1, o2, o3};
	assert_int_equal(interp_run(f, 1, 1, NULL, in, outs, stderr), 0);
	assert_true(o0[0] == 9 && o0[1] == 8);
	assert_true(o1[0] == 1 && o1[1] == 2); /* 8 at (1,0) of the window [2 2; 8 8]: ties go first */
	assert_true(o2[0] == 9 && o2[1] == 8);
	for (int i = 0; i < 15; i++)
		assert_true(o3[i] == (i == 1 ? 9 : i == 7 ? 8 : 0));
	ir_func_free(f);
}

static void test_shape_rules(void **state)
{
	(void)state;
	IrShape out, img = S3(true, 2, 4, 4), ker = S3(false, 3, 2, 9), bad = S3(false, 3, 1, 9);
	int64_t a[4] = {3, 1, 1, 0}, a0[4] = {0, 1, 0, 0}, abigp[4] = {3, 1, 3, 0};
	assert_null(ir_infer_shape(IR_CONV2D, &img, &ker, 0, a, &out));
	assert_true(ir_shape_eq(out, S3(true, 3, 4, 4)));
	assert_non_null(ir_infer_shape(IR_CONV2D, &img, &bad, 0, a, &out));  /* channel mismatch */
	assert_non_null(ir_infer_shape(IR_CONV2D, &img, &ker, 0, a0, &out)); /* k = 0 */
	assert_non_null(ir_infer_shape(IR_CONV2D, &img, &ker, 0, abigp, &out)); /* padding >= k */
	IrShape g = S3(true, 3, 4, 4);
	out = S3(true, 2, 4, 5); /* does not convolve to 4 */
	assert_non_null(ir_infer_shape(IR_CONV2D_T, &g, &ker, 0, a, &out));
	out = S3(true, 2, 4, 4);
	assert_null(ir_infer_shape(IR_CONV2D_T, &g, &ker, 0, a, &out));
	out = S3(false, 2, 4, 4); /* batch flag must follow the operands */
	assert_non_null(ir_infer_shape(IR_CONV2D_T, &g, &ker, 0, a, &out));
	int64_t ap[4] = {2, 2, 0, 0};
	IrShape small = S3(true, 1, 1, 4);
	assert_non_null(ir_infer_shape(IR_MAXPOOL, &small, NULL, 0, ap, &out)); /* window larger */
	IrShape idx = S3(true, 2, 2, 3);
	assert_non_null(ir_infer_shape(IR_POOL_GATHER, &img, &idx, 0, ap, &out));
	assert_true(ir_nn_conv4_side(84, 4) == 5 && ir_nn_conv4_side(32, 4) == 2 && ir_nn_conv4_side(28, 4) == 1);
	assert_true(ir_nn_conv4_side(8, 4) == 0);
}

static unsigned rng_state = 777;
static double urand(void)
{
	rng_state = rng_state * 1103515245u + 12345u;
	return (double)((rng_state >> 8) & 0xffffff) / (double)0x1000000;
}

/* batch norm output: per channel mean 0 and (biased) variance var/(var+eps) with gamma 1, beta 0; the
 * evaluation form with the statistics of the batch reproduces the training form */
static void test_batchnorm(void **state)
{
	(void)state;
	enum { B = 3, C = 2, H = 3, W = 4 };
	IrFunc *f = ir_func_new("bn");
	int x = ir_input(f, IR_ROLE_DATA, 0, S3(true, C, H, W), "x");
	int ga = ir_input(f, IR_ROLE_DATA, 1, S3(false, C, 1, 1), "gamma");
	int be = ir_input(f, IR_ROLE_DATA, 2, S3(false, C, 1, 1), "beta");
	int m, v;
	int y = ir_nn_batchnorm(f, x, ga, be, IR_NN_BN_EPS, &m, &v, NOLOC);
	int ye = ir_nn_batchnorm_eval(f, x, ga, be, m, v, IR_NN_BN_EPS, NOLOC);
	ir_output(f, IR_ROLE_PRED, 0, y, "y");
	ir_output(f, IR_ROLE_SCALAR, 0, ye, "ye");
	ir_output(f, IR_ROLE_SCALAR, 1, m, "mean");
	ir_output(f, IR_ROLE_SCALAR, 2, v, "var");
	double xv[B * C * H * W], g1[C] = {1, 1}, b0[C] = {0, 0};
	for (int i = 0; i < B * C * H * W; i++)
		xv[i] = 3 + 2 * urand() + (i / (H * W)) % C; /* channel 1 shifted by 1 */
	const double *in[3] = {xv, g1, b0};
	double yv[B * C * H * W], yev[B * C * H * W], mv[C], vv[C];
	double *outs[4] = {yv, yev, mv, vv};
	assert_int_equal(interp_run(f, B, B, NULL, in, outs, stderr), 0);
	for (int c = 0; c < C; c++) {
		double s = 0, s2 = 0, xs = 0;
		for (int b = 0; b < B; b++)
			for (int p = 0; p < H * W; p++) {
				double e = yv[(b * C + c) * H * W + p];
				s += e;
				s2 += e * e;
				xs += xv[(b * C + c) * H * W + p];
			}
		int n = B * H * W;
		assert_true(fabs(s / n) < 1e-12);
		assert_true(fabs(s2 / n - vv[c] / (vv[c] + IR_NN_BN_EPS)) < 1e-12);
		assert_true(fabs(mv[c] - xs / n) < 1e-12);
	}
	for (int i = 0; i < B * C * H * W; i++)
		assert_true(fabs(yv[i] - yev[i]) < 1e-12);
	ir_func_free(f);
}

/* ---- derivative check of a whole block ----
 * f(x, w, gamma, beta) = conv_block; D = vjp(f)(G) w.r.t. the four inputs; E = vjp of D seeded with U,
 * w.r.t. the inputs and G. First order: D_k = d<G,y>/dX_k. Second order: E = d/d(X,G) sum_k <U_k, D_k>. */
enum { NIN = 4, NB = 2 };

typedef struct Blk {
	IrFunc *f;
	int nports; /* X0..X3, G, U0..U3 */
} Blk;

static IrFunc *build_block(void)
{
	IrFunc *f = ir_func_new("block");
	int X[NIN];
	X[0] = ir_input(f, IR_ROLE_DATA, 0, S3(true, 2, 5, 6), "x");
	X[1] = ir_input(f, IR_ROLE_DATA, 1, S3(false, 3, 2, 9), "w");
	X[2] = ir_input(f, IR_ROLE_DATA, 2, S3(false, 3, 1, 1), "gamma");
	X[3] = ir_input(f, IR_ROLE_DATA, 3, S3(false, 3, 1, 1), "beta");
	int y = ir_nn_conv_block(f, X[0], X[1], X[2], X[3], NULL, NULL, NOLOC);
	assert_true(ir_shape_eq(f->nodes[y].shape, S3(true, 3, 2, 3)));
	int g = ir_input(f, IR_ROLE_PRED_BAR, 0, f->nodes[y].shape, "g");
	int D[NIN], U[NIN], E[NIN + 1], wrt[NIN + 1];
	assert_int_equal(ad_vjp(f, 1, &y, &g, NIN, X, D, stderr), 0);
	for (int k = 0; k < NIN; k++) {
		U[k] = ir_input(f, IR_ROLE_STATE_BAR, k, f->nodes[X[k]].shape, "u");
		wrt[k] = X[k];
	}
	wrt[NIN] = g;
	assert_int_equal(ad_vjp(f, NIN, D, U, NIN + 1, wrt, E, stderr), 0);
	ir_output(f, IR_ROLE_PRED, 0, y, "y");
	for (int k = 0; k < NIN; k++)
		ir_output(f, IR_ROLE_SCALAR, k, D[k], "d");
	for (int k = 0; k <= NIN; k++)
		ir_output(f, IR_ROLE_SCALAR, NIN + k, E[k], "e");
	assert_int_equal(ir_verify(f, stderr), 0);
	return f;
}

static int64_t vlen(const IrFunc *f, int node)
{
	IrShape s = f->nodes[node].shape;
	return (s.batch ? NB : 1) * ir_shape_numel(s);
}

static double dotp(const double *a, const double *b, int64_t n)
{
	double s = 0;
	for (int64_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

/* phi = <G, y>, psi = sum_k <U_k, D_k>; outs (if not NULL) gets every output */
static void eval_blk(IrFunc *f, double **in, double *phi, double *psi, double **keep)
{
	double *outs[2 * NIN + 2];
	for (int k = 0; k < f->nouts; k++)
		outs[k] = calloc((size_t)vlen(f, f->outs[k].node), sizeof(double));
	assert_int_equal(interp_run(f, NB, NB, NULL, (const double *const *)in, outs, stderr), 0);
	*phi = dotp(in[NIN], outs[0], vlen(f, f->outs[0].node));
	*psi = 0;
	for (int k = 0; k < NIN; k++)
		*psi += dotp(in[NIN + 1 + k], outs[1 + k], vlen(f, f->outs[1 + k].node));
	for (int k = 0; k < f->nouts; k++) {
		if (keep)
			keep[k] = outs[k];
		else
			free(outs[k]);
	}
}

static double fd_err(IrFunc *f, double **in, int port, const double *an, int which)
{
	const double h = 1e-5;
	int64_t n = vlen(f, f->ins[port].node);
	double err = 0, scale = 1;
	for (int64_t i = 0; i < n; i++) {
		double save = in[port][i], p1, q1, p0, q0;
		in[port][i] = save + h;
		eval_blk(f, in, &p1, &q1, NULL);
		in[port][i] = save - h;
		eval_blk(f, in, &p0, &q0, NULL);
		in[port][i] = save;
		double fd = which ? (q1 - q0) / (2 * h) : (p1 - p0) / (2 * h);
		err = fmax(err, fabs(fd - an[i]));
		scale = fmax(scale, fabs(fd));
	}
	return err / scale;
}

static void check_block(IrFunc *f, const char *what)
{
	double *in[2 * NIN + 1];
	for (int k = 0; k < f->nins; k++) {
		int64_t n = vlen(f, f->ins[k].node);
		in[k] = malloc(sizeof(double) * (size_t)n);
		for (int64_t i = 0; i < n; i++)
			in[k][i] = k == 2 ? 0.5 + urand() : 2 * urand() - 1; /* gamma away from 0 */
	}
	double phi, psi, *outs[2 * NIN + 2];
	eval_blk(f, in, &phi, &psi, outs);
	double worst = 0;
	for (int k = 0; k < NIN; k++) {
		double e1 = fd_err(f, in, k, outs[1 + k], 0), e2 = fd_err(f, in, k, outs[1 + NIN + k], 1);
		if (e1 > 1e-6 || e2 > 1e-6)
			fprintf(stderr, "%s: input %d: first-order err %.3g, second-order err %.3g\n", what, k, e1, e2);
		worst = fmax(worst, fmax(e1, e2));
	}
	double eg = fd_err(f, in, NIN, outs[1 + 2 * NIN], 1);
	if (eg > 1e-6)
		fprintf(stderr, "%s: second order w.r.t. the seed: err %.3g\n", what, eg);
	worst = fmax(worst, eg);
	fprintf(stderr, "%s: worst relative error %.3g\n", what, worst);
	assert_true(worst < 1e-6);
	for (int k = 0; k < f->nouts; k++)
		free(outs[k]);
	for (int k = 0; k < f->nins; k++)
		free(in[k]);
}

static void test_block_derivatives(void **state)
{
	(void)state;
	IrFunc *f = build_block();
	check_block(f, "conv block");
	OptStats st;
	memset(&st, 0, sizeof st);
	opt_run(f, &st);
	assert_int_equal(ir_verify(f, stderr), 0);
	check_block(f, "conv block after opt");
	ir_func_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_conv_values),
		cmocka_unit_test(test_pool_values),
		cmocka_unit_test(test_shape_rules),
		cmocka_unit_test(test_batchnorm),
		cmocka_unit_test(test_block_derivatives),
	};
	return cmocka_run_group_tests_name("fsc_ir", tests, NULL, NULL);
}
