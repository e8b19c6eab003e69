/* tests/test_fsc_trial.c -- end to end: oneshot episodes from the runtime task feed a hand-lowered
 * Program (Conv-4-style block -> linear+relu -> concat with the label inputs -> Hebbian plastic RNN -> 5
 * logits, CE meta-loss on the query steps), and interp_trial's BPTT gradient through ad_step_vjp (conv,
 * batch norm, pooling VJPs inside a recurrent step) must match central differences of the trial loss, with
 * and without the optimiser. The images come from a small generated IDX folder.
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
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "autodiff.h"
#include "interp.h"
#include "ir.h"
#include "ir_nn.h"
#include "opt.h"
#include "plastrt.h"
#include "program.h"

enum { SIDE = 4, PIX = SIDE * SIDE, WAYS = 5, I = PIX + WAYS, CH = 2, PROJ = 3, H = 8, NB = 3, T = 2 * WAYS };
static const SrcSpan NOLOC = {0};
static char tmpdir[64];

enum { P_W1, P_GAMMA, P_BETA, P_PROJ, P_WX, P_WH, P_ALPHA, P_WO, NPARAM };

static char *dupstr(const char *s)
{
	char *d = malloc(strlen(s) + 1);
	strcpy(d, s);
	return d;
}

static IrShape S3(bool batch, int64_t a, int64_t b, int64_t c)
{
	int64_t d[3] = {a, b, c};
	return ir_shape(batch, 3, d);
}

static Program *build_program(void)
{
	Program *p = calloc(1, sizeof *p);
	p->name = dupstr("fsc_tiny");
	p->source = dupstr("test");
	p->settings = dupstr("");
	p->in_size = I;
	p->pred_size = WAYS;
	p->out_size = WAYS;
	p->meta_loss = PL_LOSS_CE;
	const int64_t e = (int64_t)(ir_nn_conv4_side(SIDE, 1) * ir_nn_conv4_side(SIDE, 1) * CH);
	IrShape shp[NPARAM] = {S3(false, CH, 1, 9), S3(false, CH, 1, 1), S3(false, CH, 1, 1), ir_shape2(false, e, PROJ),
		ir_shape2(false, PROJ + WAYS, H), ir_shape2(false, H, H), ir_shape2(false, H, H), ir_shape2(false, H, WAYS)};
	static const char *const nm[NPARAM] = {"enc.w1", "enc.bn1.gamma", "enc.bn1.beta", "proj.w", "cell.w_ih",
		"cell.w_hh", "cell.alpha_hh", "head.w"};
	p->n_params = NPARAM;
	p->params = calloc(NPARAM, sizeof *p->params);
	for (int j = 0; j < NPARAM; j++) {
		p->params[j].name = dupstr(nm[j]);
		p->params[j].shape = shp[j];
		p->params[j].trainable = true;
	}
	p->n_state = 2;
	p->state = calloc(2, sizeof *p->state);
	p->state[0] = (ProgTensor){dupstr("cell.h"), ir_shape1(true, H), PL_INIT_ZERO, 0, 0, false, NOLOC};
	p->state[1] = (ProgTensor){dupstr("cell.w_hh~"), ir_shape2(true, H, H), PL_INIT_ZERO, 0, 0, false, NOLOC};

	IrFunc *f = ir_func_new("step_forward");
	int par[NPARAM];
	for (int j = 0; j < NPARAM; j++)
		par[j] = ir_param(f, j, p->params[j].shape, p->params[j].name);
	int x = ir_input(f, IR_ROLE_DATA, 0, ir_shape1(true, I), "x");
	int h = ir_input(f, IR_ROLE_STATE, 0, p->state[0].shape, "cell.h");
	int P = ir_input(f, IR_ROLE_STATE, 1, p->state[1].shape, "cell.w_hh~");
	int img = ir_reshape(f, ir_slice(f, x, 0, PIX, NOLOC), S3(true, 1, SIDE, SIDE), NOLOC);
	int lab = ir_slice(f, x, PIX, I, NOLOC);
	int enc = ir_nn_conv_block(f, img, par[P_W1], par[P_GAMMA], par[P_BETA], NULL, NULL, NOLOC);
	int flat = ir_reshape(f, enc, ir_shape1(true, ir_shape_numel(f->nodes[enc].shape)), NOLOC);
	int pr = ir_add(f, IR_RELU, ir_matmul(f, flat, par[P_PROJ], false, false, NOLOC), -1, NOLOC);
	int in = ir_add(f, IR_CONCAT, pr, lab, NOLOC);
	int weff = ir_add(f, IR_ADD, par[P_WH], ir_add(f, IR_MUL, par[P_ALPHA], P, NOLOC), NOLOC);
	int z = ir_add(f, IR_ADD, ir_matmul(f, in, par[P_WX], false, false, NOLOC), ir_add(f, IR_BMV, h, weff, NOLOC), NOLOC);
	int hn = ir_add(f, IR_TANH, z, -1, NOLOC);
	/* Hebbian trace with a fixed rate 0.1: P' = 0.9 P + 0.1 outer(h, h') */
	int k9 = ir_const(f, 0.9, ir_shape0(false), NOLOC), k1 = ir_const(f, 0.1, ir_shape0(false), NOLOC);
	int Pn = ir_add(f, IR_ADD, ir_add(f, IR_MUL, k9, P, NOLOC),
		ir_add(f, IR_MUL, k1, ir_add(f, IR_OUTER, h, hn, NOLOC), NOLOC), NOLOC);
	int y = ir_matmul(f, hn, par[P_WO], false, false, NOLOC);
	ir_output(f, IR_ROLE_PRED, 0, y, "y");
	ir_output(f, IR_ROLE_STATE, 0, hn, "cell.h");
	ir_output(f, IR_ROLE_STATE, 1, Pn, "cell.w_hh~");
	assert_int_equal(ir_verify(f, stderr), 0);
	p->fwd = f;
	assert_int_equal(ad_step_vjp(p, stderr), 0);
	return p;
}

static void write_gz(const char *path, const void *data, size_t n)
{
	gzFile g = gzopen(path, "wb");
	assert_non_null(g);
	assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
	gzclose(g);
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static const char *const fnames[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
	"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};

/* 10 classes x 4 images of SIDE x SIDE with varied pixels */
static void make_dir(void)
{
	enum { N = 40 };
	static unsigned char img[16 + N * PIX], lab[8 + N];
	put_be32(img, 0x803);
	put_be32(img + 4, N);
	put_be32(img + 8, SIDE);
	put_be32(img + 12, SIDE);
	unsigned s = 99;
	for (int k = 0; k < N * PIX; k++) {
		s = s * 1103515245u + 12345u;
		img[16 + k] = (unsigned char)(s >> 16);
	}
	put_be32(lab, 0x801);
	put_be32(lab + 4, N);
	for (int i = 0; i < N; i++)
		lab[8 + i] = (unsigned char)(i % 10);
	char p[256];
	for (int k = 0; k < 4; k++) {
		snprintf(p, sizeof p, "%s/%s", tmpdir, fnames[k]);
		write_gz(p, k % 2 ? lab : img, k % 2 ? sizeof lab : sizeof img);
	}
}

static double urand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (double)((*s >> 8) & 0xffffff) / (double)0x1000000;
}

static void check(bool optimise)
{
	Program *p = build_program();
	if (optimise) {
		OptStats st;
		opt_run(p->fwd, &st);
		opt_run(p->vjp, &st);
		assert_int_equal(ir_verify(p->fwd, stderr), 0);
		assert_int_equal(ir_verify(p->vjp, stderr), 0);
	}
	/* one batch of episodes from the task */
	char o1[128], err[1024];
	snprintf(o1, sizeof o1, "dir=%s", tmpdir);
	const char *opts[1] = {o1};
	PlTask *task = pl_task_new("oneshot", 1, opts, err, sizeof err);
	if (!task)
		fprintf(stderr, "%s\n", err);
	assert_non_null(task);
	assert_int_equal(pl_task_T(task), T);
	assert_int_equal(pl_task_in_size(task), I);
	static float xf[T * NB * I], yf[T * NB * WAYS], mf[T];
	PlRng r;
	pl_rng_seed(&r, 5);
	pl_task_sample(task, &r, NB, xf, yf, mf);
	pl_task_free(task);
	static double x[T * NB * I], tg[T * NB * WAYS], mask[T];
	for (int k = 0; k < T * NB * I; k++)
		x[k] = xf[k];
	for (int k = 0; k < T * NB * WAYS; k++)
		tg[k] = yf[k];
	for (int t = 0; t < T; t++)
		mask[t] = mf[t];
	TrialBatch b = {T, NB, x, tg, mask};

	double *par[NPARAM], *g[NPARAM];
	unsigned seed = 31;
	for (int j = 0; j < NPARAM; j++) {
		int64_t n = ir_shape_numel(p->params[j].shape);
		par[j] = malloc(sizeof(double) * (size_t)n);
		g[j] = calloc((size_t)n, sizeof(double));
		for (int64_t e = 0; e < n; e++)
			par[j][e] = j == P_GAMMA ? 0.5 + urand(&seed) : 1.2 * urand(&seed) - 0.6;
	}
	double L;
	assert_int_equal(interp_trial(p, (const double *const *)par, &b, &L, g, stderr), 0);
	assert_true(isfinite(L) && L > 0);
	double worst = 0, scale = 0;
	const double h = 1e-5;
	for (int j = 0; j < NPARAM; j++) {
		int64_t n = ir_shape_numel(p->params[j].shape);
		double jerr = 0, jscale = 0;
		for (int64_t e = 0; e < n; e++) {
			double save = par[j][e], lp, lm;
			par[j][e] = save + h;
			assert_int_equal(interp_trial(p, (const double *const *)par, &b, &lp, NULL, stderr), 0);
			par[j][e] = save - h;
			assert_int_equal(interp_trial(p, (const double *const *)par, &b, &lm, NULL, stderr), 0);
			par[j][e] = save;
			double fd = (lp - lm) / (2 * h);
			jerr = fmax(jerr, fabs(fd - g[j][e]));
			jscale = fmax(jscale, fabs(fd));
		}
		assert_true(jscale > 0); /* every parameter, the encoder's included, reaches the loss */
		worst = fmax(worst, jerr);
		scale = fmax(scale, jscale);
	}
	fprintf(stderr, "oneshot trial (opt %d): loss %.6f, gradient rel err %.3g (%d + %d nodes)\n", optimise, L,
		worst / scale, p->fwd->n, p->vjp->n);
	assert_true(worst / scale < 1e-6);
	for (int j = 0; j < NPARAM; j++) {
		free(par[j]);
		free(g[j]);
	}
	program_free(p);
}

static void test_trial_gradient(void **state)
{
	(void)state;
	check(false);
	check(true);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/plastc-fsct-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	make_dir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char p[256];
	for (int k = 0; k < 4; k++) {
		snprintf(p, sizeof p, "%s/%s", tmpdir, fnames[k]);
		unlink(p);
	}
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_trial_gradient),
	};
	return cmocka_run_group_tests_name("fsc_trial", tests, setup, teardown);
}
