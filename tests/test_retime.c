/* tests/test_retime.c -- deferred plastic updates (compiler/retime.c) change the state layout, not the
 * trial: for every shipped model kind and the test models, the Program with and without the pass gives
 * the same meta-loss and the same gradient of every parameter (interp_trial, float64 BPTT), and the pass
 * really applies (the plastic models get pending states; a rule that is not 0 at zero inputs gets the
 * started flag, and without that flag its loss would differ: checked by breaking it on purpose).
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

#include "frontend.h"
#include "interp.h"
#include "program.h"

enum { T = 5, NB = 3 };

typedef struct Case {
	const char *path, *set; /* set: one --set, or NULL */
	bool plastic;           /* must be retimed (plastic, and its pending values are small) */
} Case;

static const Case cases[] = {
	{"models/cue_reward/rnn_hebbian.plast", "hidden=8", true},
	{"models/cue_reward/rnn_gradient.plast", "hidden=8", true},
	{"models/cue_reward/lstm_hebbian.plast", "hidden=8", true},
	{"models/cue_reward/lstm_gradient.plast", "hidden=8", true},
	{"models/cue_reward/rnn_none.plast", "hidden=8", false},
	{"models/copy/lstm_gradient.plast", "hidden=8", true},
	{"models/regression_linear/rnn_hebbian.plast", "hidden=8", true},
	{"models/regression_mlp/lstm_gradient.plast", "hidden=8", true},
	{"models/miconi/completion.plast", NULL, true},
	/* [10, 2] weights, pre x[10] and post [2]: the pending values would exceed half the matrix */
	{"models/miconi/reversal.plast", NULL, false},
	{"models/rules/oja.plast", "hidden=8", true},
	{"models/rules/oja_effective.plast", "hidden=8", true},
	{"models/rules/covariance.plast", "hidden=8", true},
	{"models/rules/per_layer_modulator.plast", "hidden=8", true},
	{"tests/models/features.plast", NULL, true},
	{"tests/models/retime_gate.plast", NULL, true},
};

static uint64_t rng = 88172645463325252ull;
static double urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static Program *load(const Case *c, unsigned flags)
{
	char path[4096], set[64];
	const char *top = getenv("top_srcdir");
	snprintf(path, sizeof path, "%s/%s", top ? top : ".", c->path);
	char *sets[1] = {set};
	if (c->set)
		snprintf(set, sizeof set, "%s", c->set);
	DiagCtx *d = diag_ctx_new(stderr);
	Program *p = frontend_load_program_ex(path, c->set ? 1 : 0, sets, d, flags);
	diag_ctx_free(d);
	return p;
}

typedef struct Run {
	double loss;
	double **grads;
} Run;

/* Meta-loss and gradients of p on one fixed random batch and parameter set (seeded per case) */
static void trial(const Program *p, uint64_t seed, Run *r)
{
	rng = seed;
	double **params = calloc((size_t)p->n_params, sizeof *params);
	r->grads = calloc((size_t)p->n_params, sizeof *r->grads);
	for (int j = 0; j < p->n_params; j++) {
		int64_t n = ir_shape_numel(p->params[j].shape);
		params[j] = malloc(sizeof **params * (size_t)(n ? n : 1));
		r->grads[j] = calloc((size_t)(n ? n : 1), sizeof **r->grads);
		for (int64_t i = 0; i < n; i++)
			params[j][i] = 0.8 * urand() - 0.4;
	}
	int I = p->in_size, Oy = p->pred_size;
	double *x = malloc(sizeof *x * (size_t)(T * NB * I)), *tg = malloc(sizeof *tg * (size_t)(T * NB * Oy));
	double mask[T];
	for (int i = 0; i < T * NB * I; i++)
		x[i] = 2 * urand() - 1;
	for (int t = 0; t < T; t++) {
		mask[t] = 1.0 / T;
		for (int b = 0; b < NB; b++) {
			int hot = (int)(urand() * Oy) % Oy;
			for (int k = 0; k < Oy; k++)
				tg[(t * NB + b) * Oy + k] = p->meta_loss == PL_LOSS_CE ? (k == hot) : 2 * urand() - 1;
		}
	}
	TrialBatch tb = {T, NB, x, tg, mask};
	assert_int_equal(interp_trial(p, (const double *const *)params, &tb, &r->loss, r->grads, stderr), 0);
	for (int j = 0; j < p->n_params; j++)
		free(params[j]);
	free(params);
	free(x);
	free(tg);
}

static void run_free(const Program *p, Run *r)
{
	for (int j = 0; j < p->n_params; j++)
		free(r->grads[j]);
	free(r->grads);
}

/* max |a - b| / (1 + max |a|) over every gradient, and the loss */
static double compare(const Program *p, const Run *a, const Run *b)
{
	double worst = fabs(a->loss - b->loss) / (1 + fabs(a->loss));
	for (int j = 0; j < p->n_params; j++) {
		int64_t n = ir_shape_numel(p->params[j].shape);
		double m = 0, d = 0;
		for (int64_t i = 0; i < n; i++) {
			m = fmax(m, fabs(a->grads[j][i]));
			d = fmax(d, fabs(a->grads[j][i] - b->grads[j][i]));
		}
		worst = fmax(worst, d / (1 + m));
	}
	return worst;
}

/* inputs of the VJP that read the state leaving the step (retime_vjp) */
static int next_inputs(const Program *p)
{
	int c = 0;
	for (int k = 0; k < p->vjp->nins; k++)
		c += p->vjp->ins[k].role == IR_ROLE_STATE_NEXT;
	return c;
}

static int find_state(const Program *p, const char *name)
{
	for (int s = 0; s < p->n_state; s++)
		if (strcmp(p->state[s].name, name) == 0)
			return s;
	return -1;
}

static void test_same_trial(void **state)
{
	(void)state;
	unsetenv("PLASTC_NO_RETIME");
	int retimed = 0;
	for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
		const Case *c = &cases[k];
		Program *plain = load(c, FE_VJP | FE_OPT), *ret = load(c, FE_RETIME | FE_VJP | FE_OPT);
		assert_non_null(plain);
		assert_non_null(ret);
		assert_int_equal(plain->n_params, ret->n_params);
		assert_int_equal(next_inputs(plain), 0);
		if (c->plastic) {
			assert_true(ret->n_state > plain->n_state);
			assert_true(next_inputs(ret) > 0);
			retimed++;
		} else {
			assert_int_equal(ret->n_state, plain->n_state);
			assert_int_equal(next_inputs(ret), 0);
		}
		Run a, b;
		uint64_t seed = 0x9E3779B97F4A7C15ull * (k + 1);
		trial(plain, seed, &a);
		trial(ret, seed, &b);
		double err = compare(plain, &a, &b);
		printf("# %s: state %d -> %d tensors, VJP reads %d leaving the step, loss %.12g, max rel diff %.1e\n",
			c->path, plain->n_state, ret->n_state, next_inputs(ret), a.loss, err);
		assert_true(err < 1e-11);
		run_free(plain, &a);
		run_free(ret, &b);
		program_free(plain);
		program_free(ret);
	}
	assert_true(retimed >= 10);
}

/* The started flag: present exactly for the rule with a constant term, and needed. Replacing the flag's
 * output (1 at every step) by its input (0 at the start: the flag never rises) must change the loss, so
 * the flag is what makes the first step's update vanish. */
static void test_started_flag(void **state)
{
	(void)state;
	unsetenv("PLASTC_NO_RETIME");
	const Case *gate = &cases[sizeof cases / sizeof *cases - 1], *hebb = &cases[0];
	Program *h = load(hebb, FE_RETIME | FE_VJP | FE_OPT);
	assert_int_equal(find_state(h, "pend.started"), -1); /* decay * S + rate * pre post is 0 at zero */
	program_free(h);
	Program *g = load(gate, FE_RETIME | FE_VJP | FE_OPT), *plain = load(gate, FE_VJP | FE_OPT);
	int k = find_state(g, "pend.started");
	assert_true(k >= 0);
	Run a, b;
	trial(plain, 7, &a);
	trial(g, 7, &b);
	assert_true(compare(plain, &a, &b) < 1e-11);
	run_free(g, &b);
	/* break it: the flag's output becomes its input */
	int in = -1;
	for (int q = 0; q < g->fwd->nins; q++)
		if (g->fwd->ins[q].role == IR_ROLE_STATE && g->fwd->ins[q].index == k)
			in = g->fwd->ins[q].node;
	assert_true(in >= 0);
	for (int q = 0; q < g->fwd->nouts; q++)
		if (g->fwd->outs[q].role == IR_ROLE_STATE && g->fwd->outs[q].index == k)
			g->fwd->outs[q].node = in;
	trial(g, 7, &b);
	printf("# flag stuck at 0: loss %.12g instead of %.12g\n", b.loss, a.loss);
	assert_true(fabs(b.loss - a.loss) > 1e-6 * (1 + fabs(a.loss)));
	run_free(g, &b);
	run_free(plain, &a);
	program_free(g);
	program_free(plain);
}

/* PLASTC_NO_RETIME=1 turns the pass off for every command (frontend_load_program); PLASTC_NO_STATE_NEXT=1
 * only the VJP's reading of the state leaving the step, which must not change the trial either */
static void test_env_off(void **state)
{
	(void)state;
	setenv("PLASTC_NO_RETIME", "1", 1);
	Program *p = load(&cases[0], FE_RETIME | FE_VJP | FE_OPT), *q = load(&cases[0], FE_VJP | FE_OPT);
	assert_int_equal(p->n_state, q->n_state);
	assert_int_equal(next_inputs(p), 0);
	program_free(p);
	unsetenv("PLASTC_NO_RETIME");
	setenv("PLASTC_NO_STATE_NEXT", "1", 1);
	p = load(&cases[1], FE_RETIME | FE_VJP | FE_OPT);
	unsetenv("PLASTC_NO_STATE_NEXT");
	Program *r = load(&cases[1], FE_RETIME | FE_VJP | FE_OPT);
	assert_true(p->n_state > q->n_state);
	assert_int_equal(next_inputs(p), 0);
	assert_true(next_inputs(r) > 0);
	Run a, b;
	trial(p, 11, &a);
	trial(r, 11, &b);
	assert_true(compare(p, &a, &b) < 1e-11);
	run_free(p, &a);
	run_free(r, &b);
	program_free(p);
	program_free(q);
	program_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_trial),
		cmocka_unit_test(test_started_flag),
		cmocka_unit_test(test_env_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
