/* tests/test_trial.c -- end-to-end double-backward check on a hand-built Program.
 *
 * The step has a plastic input layer with a Hebbian rule and a plastic output layer with a GRADIENT
 * rule (the inner gradient dL_int/dW is built by ad_vjp inside the forward step), a recurrent hidden
 * state, a per-trial modulated rate eta = 0.2 sigmoid(m), decay (1 - eta), and max-norm scaling over
 * both updates. ad_step_vjp then differentiates that step, inner gradient included, and interp_trial's
 * BPTT gradient must match central differences of interp_trial's loss. The internal-loss weight w_int
 * reaches the meta-loss only through the inner gradient, so its gradient checks the double backward.
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
#include "opt.h"
#include "program.h"

enum { I = 3, H = 4, OY = 2, NBATCH = 2, T = 4 };
static const SrcSpan NOLOC = {0};

static char *dupstr(const char *s)
{
	char *d = malloc(strlen(s) + 1);
	strcpy(d, s);
	return d;
}

enum { P_W1, P_A1, P_B1, P_U, P_W2, P_A2, P_B2, P_MOD, P_WINT, NPARAM };
enum { S_P1, S_H, S_P2, NSTATE };

static Program *build_program(PlLoss loss, double max_norm)
{
	Program *p = calloc(1, sizeof *p);
	p->name = dupstr("twolayer");
	p->source = dupstr("test");
	p->settings = dupstr("");
	p->in_size = I;
	p->pred_size = OY;
	p->out_size = OY;
	p->meta_loss = loss;
	static const struct {
		const char *n;
		int r;
		int64_t d0, d1;
	} pt[NPARAM] = {{"enc.w", 2, I, H}, {"enc.alpha", 2, I, H}, {"enc.b", 1, H, 0}, {"cell.u", 2, H, H},
		{"head.w", 2, H, OY}, {"head.alpha", 2, H, OY}, {"head.b", 1, OY, 0}, {"mod.w", 2, H, 1},
		{"w_int", 1, OY, 0}};
	p->n_params = NPARAM;
	p->params = calloc(NPARAM, sizeof *p->params);
	for (int j = 0; j < NPARAM; j++) {
		int64_t d[2] = {pt[j].d0, pt[j].d1};
		p->params[j].name = dupstr(pt[j].n);
		p->params[j].shape = ir_shape(false, pt[j].r, d);
		p->params[j].trainable = true;
	}
	p->n_state = NSTATE;
	p->state = calloc(NSTATE, sizeof *p->state);
	p->state[S_P1] = (ProgTensor){dupstr("enc.w~"), ir_shape2(true, I, H), PL_INIT_ZERO, 0, 0, false, NOLOC};
	p->state[S_H] = (ProgTensor){dupstr("cell.h"), ir_shape1(true, H), PL_INIT_ZERO, 0, 0, false, NOLOC};
	p->state[S_P2] = (ProgTensor){dupstr("head.w~"), ir_shape2(true, H, OY), PL_INIT_ZERO, 0, 0, false, NOLOC};

	IrFunc *f = ir_func_new("step_forward");
	int par[NPARAM];
	for (int j = 0; j < NPARAM; j++)
		par[j] = ir_param(f, j, p->params[j].shape, p->params[j].name);
	int x = ir_input(f, IR_ROLE_DATA, 0, ir_shape1(true, I), "x");
	int P1 = ir_input(f, IR_ROLE_STATE, S_P1, p->state[S_P1].shape, "enc.w~");
	int h = ir_input(f, IR_ROLE_STATE, S_H, p->state[S_H].shape, "cell.h");
	int P2 = ir_input(f, IR_ROLE_STATE, S_P2, p->state[S_P2].shape, "head.w~");
#define A2(op, a, b) ir_add(f, IR_##op, a, b, NOLOC)
#define A1(op, a) ir_add(f, IR_##op, a, -1, NOLOC)
#define K(v) ir_const(f, v, ir_shape0(false), NOLOC)
	int weff1 = A2(ADD, par[P_W1], P1);
	int z = A2(ADD, A2(ADD, A2(BMV, x, weff1), ir_matmul(f, h, par[P_U], false, false, NOLOC)), par[P_B1]);
	int hn = A1(TANH, z);
	int weff2 = A2(ADD, par[P_W2], P2);
	int y = A2(ADD, A2(BMV, hn, weff2), par[P_B2]);
	ir_set_name(f, y, "y");
	int m = ir_reshape(f, ir_matmul(f, hn, par[P_MOD], false, false, NOLOC), ir_shape0(true), NOLOC);
	int eta = A2(MUL, K(0.2), A1(SIGMOID, m));
	/* Hebbian rule on the input layer */
	int d1 = A2(OUTER, x, hn);
	/* gradient rule on the output layer: d2 = dL_int/dWeff2, L_int = (1/B) sum (w_int * y)^2 */
	int lint = A2(MUL, ir_add(f, IR_INV_BATCH, -1, -1, NOLOC),
		ir_sum_to(f, A1(SQUARE, A2(MUL, y, par[P_WINT])), ir_shape0(false), NOLOC));
	int one = K(1.0), d2;
	assert_int_equal(ad_vjp(f, 1, &lint, &one, 1, &weff2, &d2, stderr), 0);
	/* max-norm over both plastic tensors, per trial */
	int n2 = A2(ADD, ir_sum_to(f, A1(SQUARE, d1), ir_shape0(true), NOLOC),
		ir_sum_to(f, A1(SQUARE, d2), ir_shape0(true), NOLOC));
	int norm = A1(SQRT, n2);
	int lr = A2(MUL, eta, A2(MIN, K(1.0), A2(DIV, K(max_norm), norm)));
	int keep = A2(SUB, K(1.0), eta);
	int P1n = A2(ADD, A2(MUL, keep, P1), A2(MUL, lr, A2(MUL, par[P_A1], d1)));
	int P2n = A2(ADD, A2(MUL, keep, P2), A2(MUL, lr, A2(MUL, par[P_A2], d2)));
#undef A1
#undef A2
#undef K
	ir_output(f, IR_ROLE_PRED, 0, y, "y");
	ir_output(f, IR_ROLE_STATE, S_P1, P1n, "enc.w~");
	ir_output(f, IR_ROLE_STATE, S_H, hn, "cell.h");
	ir_output(f, IR_ROLE_STATE, S_P2, P2n, "head.w~");
	ir_output(f, IR_ROLE_SCALAR, 0, norm, "norm");
	assert_int_equal(ir_verify(f, stderr), 0);
	p->fwd = f;
	assert_int_equal(ad_step_vjp(p, stderr), 0);
	assert_int_equal(ir_verify(p->vjp, stderr), 0);
	return p;
}

static double urand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (double)((*s >> 8) & 0xffffff) / (double)0x1000000;
}

typedef struct Data {
	double *params[NPARAM];
	double x[T * NBATCH * I], target[T * NBATCH * OY], mask[T];
	TrialBatch b;
} Data;

static void make_data(const Program *p, Data *d, unsigned seed)
{
	for (int j = 0; j < NPARAM; j++) {
		int64_t n = ir_shape_numel(p->params[j].shape);
		d->params[j] = malloc(sizeof(double) * (size_t)n);
		for (int64_t e = 0; e < n; e++)
			d->params[j][e] = 1.6 * urand(&seed) - 0.8;
	}
	for (int i = 0; i < T * NBATCH * I; i++)
		d->x[i] = 2 * urand(&seed) - 1;
	for (int t = 0; t < T * NBATCH; t++) {
		int hot = (int)(urand(&seed) * OY);
		for (int k = 0; k < OY; k++)
			d->target[t * OY + k] = p->meta_loss == PL_LOSS_CE ? (k == hot) : 2 * urand(&seed) - 1;
	}
	for (int t = 0; t < T; t++)
		d->mask[t] = t == 0 ? 0.0 : 1.0 / (T - 1);
	d->b = (TrialBatch){T, NBATCH, d->x, d->target, d->mask};
}

static void free_data(Data *d)
{
	for (int j = 0; j < NPARAM; j++)
		free(d->params[j]);
}

/* max over all parameters of |analytic - fd| / max |fd|; also reports |grad w_int| */
static double grad_error(const Program *p, Data *d, double *wint_grad)
{
	double *g[NPARAM], L;
	for (int j = 0; j < NPARAM; j++)
		g[j] = calloc((size_t)ir_shape_numel(p->params[j].shape), sizeof(double));
	assert_int_equal(interp_trial(p, (const double *const *)d->params, &d->b, &L, g, stderr), 0);
	assert_true(isfinite(L) && L > 0);
	double err = 0, scale = 0, werr = 0, wscale = 0;
	const double h = 1e-5;
	for (int j = 0; j < NPARAM; j++) {
		int64_t n = ir_shape_numel(p->params[j].shape);
		for (int64_t e = 0; e < n; e++) {
			double save = d->params[j][e], lp, lm;
			d->params[j][e] = save + h;
			assert_int_equal(interp_trial(p, (const double *const *)d->params, &d->b, &lp, NULL, stderr), 0);
			d->params[j][e] = save - h;
			assert_int_equal(interp_trial(p, (const double *const *)d->params, &d->b, &lm, NULL, stderr), 0);
			d->params[j][e] = save;
			double fd = (lp - lm) / (2 * h);
			err = fmax(err, fabs(fd - g[j][e]));
			scale = fmax(scale, fabs(fd));
			if (j == P_WINT) {
				werr = fmax(werr, fabs(fd - g[j][e]));
				wscale = fmax(wscale, fabs(fd));
			}
		}
	}
	*wint_grad = 0;
	for (int k = 0; k < OY; k++)
		*wint_grad = fmax(*wint_grad, fabs(g[P_WINT][k]));
	for (int j = 0; j < NPARAM; j++)
		free(g[j]);
	/* w_int's gradient is small (it acts through the inner gradient only): check it on its own scale */
	if (werr / wscale > 1e-5) {
		fprintf(stderr, "dL/dw_int: rel err %.3g on its own scale\n", werr / wscale);
		return 1.0;
	}
	return err / scale;
}

static void check_loss(PlLoss loss, double max_norm, bool optimise)
{
	Program *p = build_program(loss, max_norm);
	if (optimise) {
		/* the pipeline: optimise the forward (so the rank-1 norm rewrite happens before
		 * differentiation and the norm's backward stays on vectors), then differentiate, then
		 * optimise the VJP */
		OptStats st;
		opt_run(p->fwd, &st);
		assert_int_equal(ad_step_vjp(p, stderr), 0);
		opt_run(p->vjp, &st);
		assert_int_equal(ir_verify(p->fwd, stderr), 0);
		assert_int_equal(ir_verify(p->vjp, stderr), 0);
		if (getenv("TRIAL_DUMP")) /* for reading what the optimiser leaves */
			ir_print(p->vjp, stderr);
	}
	Data d;
	make_data(p, &d, 777u + (unsigned)loss);
	double wint;
	double err = grad_error(p, &d, &wint);
	fprintf(stderr, "loss kind %d, max_norm %g, opt %d: gradient rel err %.3g, |dL/dw_int| %.3g (%d + %d nodes)\n",
		(int)loss, max_norm, optimise, err, wint, p->fwd->n, p->vjp->n);
	assert_true(err < 1e-6);
	assert_true(wint > 1e-6); /* the double-backward path carries a real gradient */
	free_data(&d);
	program_free(p);
}

/* max_norm 0.05 clips every step; 100 never does */
static void test_trial_mse(void **state)
{
	(void)state;
	check_loss(PL_LOSS_MSE, 0.05, false);
	check_loss(PL_LOSS_MSE, 100.0, false);
}

static void test_trial_ce_sse(void **state)
{
	(void)state;
	check_loss(PL_LOSS_CE, 0.05, false);
	check_loss(PL_LOSS_SSE, 0.05, false);
}

static void test_trial_optimised(void **state)
{
	(void)state;
	check_loss(PL_LOSS_MSE, 0.05, true);
	check_loss(PL_LOSS_CE, 100.0, true);
}

/* the step VJP has the ports program.h promises */
static void test_step_vjp_ports(void **state)
{
	(void)state;
	Program *p = build_program(PL_LOSS_MSE, 1.0);
	const IrFunc *v = p->vjp;
	int nin_f = p->fwd->nins;
	assert_int_equal(v->nins, nin_f + 1 + NSTATE);
	for (int k = 0; k < nin_f; k++)
		assert_int_equal(v->ins[k].role, p->fwd->ins[k].role);
	assert_int_equal(v->ins[nin_f].role, IR_ROLE_PRED_BAR);
	for (int s = 0; s < NSTATE; s++) {
		assert_int_equal(v->ins[nin_f + 1 + s].role, IR_ROLE_STATE_BAR);
		assert_int_equal(v->ins[nin_f + 1 + s].index, s);
	}
	assert_int_equal(v->nouts, NSTATE + NPARAM);
	for (int s = 0; s < NSTATE; s++)
		assert_true(v->outs[s].role == IR_ROLE_STATE_BAR && v->outs[s].index == s);
	for (int j = 0; j < NPARAM; j++) {
		assert_true(v->outs[NSTATE + j].role == IR_ROLE_PARAM_BAR && v->outs[NSTATE + j].index == j);
		assert_true(ir_shape_eq(v->nodes[v->outs[NSTATE + j].node].shape, p->params[j].shape));
	}
	program_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_step_vjp_ports),
		cmocka_unit_test(test_trial_mse),
		cmocka_unit_test(test_trial_ce_sse),
		cmocka_unit_test(test_trial_optimised),
	};
	return cmocka_run_group_tests_name("trial", tests, NULL, NULL);
}
