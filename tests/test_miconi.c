/* tests/test_miconi.c -- Miconi 2016 in the runtime: the completion, oneshot_pattern and reversal
 * generators (structure, label bits, masks, statistics, determinism, options) and the RMSprop optimiser
 * against values computed by hand for three steps, with the update bound and the L1/L2 penalties. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "plastrt.h"

typedef struct Batch {
	PlTask *t;
	int T, I, O, B;
	float *x, *y, *mask;
} Batch;

static Batch make(const char *name, int n_opts, const char *const *opts, int B, uint64_t seed)
{
	char err[256];
	Batch b;
	b.t = pl_task_new(name, n_opts, opts, err, sizeof err);
	if (!b.t)
		fail_msg("%s", err);
	b.T = pl_task_T(b.t);
	b.I = pl_task_in_size(b.t);
	b.O = pl_task_pred_size(b.t);
	b.B = B;
	b.x = calloc((size_t)b.T * B * b.I, sizeof(float));
	b.y = calloc((size_t)b.T * B * b.O, sizeof(float));
	b.mask = calloc((size_t)b.T, sizeof(float));
	PlRng r;
	pl_rng_seed(&r, seed);
	pl_task_sample(b.t, &r, B, b.x, b.y, b.mask);
	return b;
}

static void drop(Batch *b)
{
	pl_task_free(b->t);
	free(b->x);
	free(b->y);
	free(b->mask);
}

static const float *X(const Batch *b, int s, int k)
{
	return b->x + ((size_t)s * b->B + k) * b->I;
}

static const float *Y(const Batch *b, int s, int k)
{
	return b->y + ((size_t)s * b->B + k) * b->O;
}

static void test_completion(void **state)
{
	(void)state;
	int B = 4000;
	Batch b = make("completion", 0, NULL, B, 11);
	assert_int_equal(b.T, 2);
	assert_int_equal(b.I, 8);
	assert_int_equal(b.O, 8);
	assert_int_equal(pl_task_loss(b.t), PL_LOSS_SSE);
	assert_string_equal(pl_task_describe(b.t), "completion n=8 keep=1 weight=mean");
	assert_true(b.mask[0] == 0.0f && b.mask[1] == 1.0f);
	int kept_at[8] = {0}, plus = 0;
	for (int k = 0; k < B; k++) {
		int nz = 0, pos = -1;
		for (int i = 0; i < 8; i++) {
			float p = X(&b, 0, k)[i];
			assert_true(p == 1.0f || p == -1.0f);
			plus += p > 0;
			assert_true(Y(&b, 0, k)[i] == p && Y(&b, 1, k)[i] == p);
			float v = X(&b, 1, k)[i];
			if (v != 0.0f) {
				nz++;
				pos = i;
				assert_true(v == p);
			}
		}
		assert_int_equal(nz, 1);
		kept_at[pos]++;
	}
	/* Each position kept with probability 1/8 (sd of a count ~ 21); bits +1 with probability 1/2. */
	for (int i = 0; i < 8; i++)
		assert_true(abs(kept_at[i] - B / 8) < 120);
	assert_true(abs(plus - B * 4) < 600);
	drop(&b);

	const char *o[] = {"keep=3", "n=5"};
	b = make("completion", 2, o, 50, 3);
	assert_int_equal(b.I, 5);
	for (int k = 0; k < 50; k++) {
		int nz = 0;
		for (int i = 0; i < 5; i++)
			nz += X(&b, 1, k)[i] != 0.0f;
		assert_int_equal(nz, 3);
	}
	drop(&b);
}

/* Common checks of one-shot and reversal: label bits, alternation, the swap, p1 != p2. */
static void check_pairs(const Batch *b, int reversal)
{
	int T = b->T, h = T / 2, n = b->I - 2;
	for (int k = 0; k < b->B; k++) {
		const float *p1 = X(b, 0, k) + 2, *p2 = X(b, 1, k) + 2;
		assert_true(memcmp(p1, p2, (size_t)n * sizeof(float)) != 0);
		for (int i = 0; i < n; i++)
			assert_true(p1[i] == 1.0f || p1[i] == -1.0f);
		for (int s = 0; s < T; s++) {
			const float *xs = X(b, s, k), *ys = Y(b, s, k);
			int odd = s % 2;
			/* targets (1,0) at even steps, (0,1) at odd steps, throughout */
			assert_true(ys[0] == (odd ? 0.0f : 1.0f) && ys[1] == (odd ? 1.0f : 0.0f));
			int after = reversal && s >= h;
			const float *want = (odd ^ after) ? p2 : p1;
			assert_memory_equal(xs + 2, want, (size_t)n * sizeof(float));
			int instr = s < 2 || (reversal && (s == h || s == h + 1));
			assert_true(xs[0] == (instr ? ys[0] : 0.0f) && xs[1] == (instr ? ys[1] : 0.0f));
		}
	}
}

static void test_oneshot(void **state)
{
	(void)state;
	Batch b = make("oneshot_pattern", 0, NULL, 300, 5);
	assert_int_equal(b.T, 20);
	assert_int_equal(b.I, 10);
	assert_int_equal(b.O, 2);
	assert_int_equal(pl_task_loss(b.t), PL_LOSS_CE);
	check_pairs(&b, 0);
	/* mean CE over steps 2..19: the spec's logged error */
	for (int s = 0; s < 20; s++)
		assert_float_equal(b.mask[s], s < 2 ? 0.0f : 1.0f / 18.0f, 1e-9);
	drop(&b);
	/* n = 1: p2 must be redrawn until it differs, so p2 = -p1 always */
	const char *o[] = {"n=1", "T=6", "weight=sum"};
	b = make("oneshot_pattern", 3, o, 200, 9);
	assert_int_equal(b.T, 6);
	check_pairs(&b, 0);
	for (int k = 0; k < 200; k++)
		assert_true(X(&b, 0, k)[2] == -X(&b, 1, k)[2]);
	for (int s = 0; s < 6; s++)
		assert_float_equal(b.mask[s], s < 2 ? 0.0f : 1.0f, 0.0);
	drop(&b);
}

static void test_reversal(void **state)
{
	(void)state;
	Batch b = make("reversal", 0, NULL, 300, 6);
	assert_int_equal(b.T, 20);
	assert_int_equal(b.I, 10);
	check_pairs(&b, 1);
	/* Scored: 2..9 and 12..19, each 1/18 (the original's mean over 2..19 counts 10 and 11 as zeros). */
	double sum = 0.0;
	for (int s = 0; s < 20; s++) {
		int masked = s < 2 || s == 10 || s == 11;
		assert_float_equal(b.mask[s], masked ? 0.0f : 1.0f / 18.0f, 1e-9);
		sum += b.mask[s];
	}
	assert_float_equal(sum, 16.0 / 18.0, 1e-6);
	drop(&b);
	const char *o[] = {"weight=scored", "T=12"};
	b = make("reversal", 2, o, 40, 6);
	check_pairs(&b, 1);
	for (int s = 0; s < 12; s++) {
		int masked = s < 2 || s == 6 || s == 7;
		assert_float_equal(b.mask[s], masked ? 0.0f : 1.0f / 8.0f, 1e-9);
	}
	drop(&b);
}

/* Same seed, same data; a batch of B is B trials drawn one after the other. */
static void test_determinism(void **state)
{
	(void)state;
	const char *names[] = {"completion", "oneshot_pattern", "reversal"};
	for (int i = 0; i < 3; i++) {
		Batch a = make(names[i], 0, NULL, 3, 42), c = make(names[i], 0, NULL, 3, 42);
		Batch d = make(names[i], 0, NULL, 3, 43);
		size_t nx = (size_t)a.T * a.B * a.I;
		assert_memory_equal(a.x, c.x, nx * sizeof(float));
		assert_memory_equal(a.y, c.y, (size_t)a.T * a.B * a.O * sizeof(float));
		assert_true(memcmp(a.x, d.x, nx * sizeof(float)) != 0);
		/* three single-trial batches from one stream = one batch of three */
		PlRng r;
		pl_rng_seed(&r, 42);
		float *x1 = calloc((size_t)a.T * a.I, sizeof(float)), *y1 = calloc((size_t)a.T * a.O, sizeof(float));
		float m1[20];
		for (int k = 0; k < 3; k++) {
			pl_task_sample(a.t, &r, 1, x1, y1, m1);
			for (int s = 0; s < a.T; s++)
				assert_memory_equal(x1 + (size_t)s * a.I, X(&a, s, k), (size_t)a.I * sizeof(float));
		}
		free(x1);
		free(y1);
		drop(&a);
		drop(&c);
		drop(&d);
	}
}

static void test_options(void **state)
{
	(void)state;
	char err[256];
	struct {
		const char *task, *opt, *msg;
	} bad[] = {
		{"completion", "T=4", "has no option 'T'"},
		{"completion", "keep=9", "keep=9 exceeds"},
		{"reversal", "T=21", "must be even"},
		{"reversal", "T=6", "bad value '6' for option T"},
		{"oneshot_pattern", "weight=median", "bad value 'median'"},
		{"oneshot_pattern", "n", "not of the form key=value"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		PlTask *t = pl_task_new(bad[i].task, 1, &bad[i].opt, err, sizeof err);
		assert_null(t);
		if (!strstr(err, bad[i].msg))
			fail_msg("%s %s: got '%s', want '%s'", bad[i].task, bad[i].opt, err, bad[i].msg);
	}
	PlTask *t = pl_task_new("no_such_task", 0, NULL, err, sizeof err);
	assert_null(t);
	assert_non_null(strstr(err, "oneshot_pattern"));
}

/* ---- optimiser ---- */

static const PlTensorDesc opt_desc[] = {
	{"w", 2, {1, 2, 0}, PL_INIT_ZERO, 0, 0, 1},   /* a matrix: penalised */
	{"b", 1, {2, 0, 0}, PL_INIT_ZERO, 0, 0, 1},   /* a bias: not penalised */
	{"f", 2, {1, 1, 0}, PL_INIT_ZERO, 0, 0, 0},   /* fixed: never changes */
};

static PlModel opt_model(void)
{
	PlModel m;
	memset(&m, 0, sizeof m);
	m.abi_version = PL_ABI_VERSION;
	m.name = "opt";
	m.n_params = 3;
	m.params = opt_desc;
	return m;
}

/* Three steps with lr 0.01, rho 0.99, eps 1e-8, max_dw 0.015, l1 1e-3, l2 0.1. Worked by hand:
 *
 * w[0]: p = 0.3, g = 0.5, 0.1, 4.0
 *   t1: m = 0.25; d = -0.01*0.5/sqrt(0.25+1e-8) = -0.0099999998; p = 0.2900000002;
 *       penalty: p - 1e-3 - 0.1 p = 0.2600000002
 *   t2: m = 0.25 + 0.01(0.01 - 0.25) = 0.2476; d = -0.001/sqrt(0.24760001) = -0.0020096698;
 *       p = 0.2579903304; penalty: 0.9 p - 1e-3 = 0.2311912974
 *   t3: m = 0.2476 + 0.01(16 - 0.2476) = 0.405124; d = -0.04/sqrt(0.40512401) = -0.0628445 -> clipped
 *       to -0.015; p = 0.2161912974; penalty: 0.9 p - 1e-3 = 0.1935721677
 * w[1]: p = -0.2, g = -2, 1, 0
 *   t1: m = 4; d = +0.01 (to 1e-9) -> p = -0.19; penalty: 0.9 p + 1e-3 = -0.170
 *   t2: m = 4 + 0.01(1 - 4) = 3.97; d = -0.01/sqrt(3.97) = -0.0050188916; p = -0.1750188916;
 *       penalty: -0.1575170024 + 0.001 = -0.1565170024
 *   t3: m = 3.97 - 0.0397 = 3.9303; d = 0; p = -0.1565170024; penalty: -0.1408653022 + 0.001
 *       = -0.1398653022
 * b[0] (no penalty): p = 0.1, g = 0.2, -0.2, 0.3
 *   t1: m = 0.04; d = -0.01 (to 1e-9); p = 0.09
 *   t2: m = 0.04; d = +0.01; p = 0.1
 *   t3: m = 0.04 + 0.01(0.09 - 0.04) = 0.0405; d = -0.003/sqrt(0.0405) = -0.0149071198; p = 0.0850928802
 * b[1]: p = 0, g = 0, 0, 0: m = 0, d = 0 (eps keeps it finite), p stays 0 */
static void test_rmsprop_by_hand(void **state)
{
	(void)state;
	PlModel m = opt_model();
	PlOptConfig c;
	pl_opt_defaults(&c);
	c.kind = PL_OPT_RMSPROP_MICONI;
	c.lr = 0.01;
	c.rms_decay = 0.99;
	c.eps = 1e-8;
	c.max_dw = 0.015;
	c.l1 = 1e-3;
	c.l2 = 0.1;
	PlOpt *o = pl_opt_new(&m, &c);
	assert_non_null(o);
	assert_null(o->v[0]); /* RMSprop has no second buffer */
	float w[2] = {0.3f, -0.2f}, bb[2] = {0.1f, 0.0f}, f[1] = {7.0f};
	float *params[3] = {w, bb, f};
	float gw[3][2] = {{0.5f, -2.0f}, {0.1f, 1.0f}, {4.0f, 0.0f}};
	float gb[3][2] = {{0.2f, 0.0f}, {-0.2f, 0.0f}, {0.3f, 0.0f}};
	float gf[1] = {100.0f};
	const double want_w[3][2] = {{0.2600000002, -0.170}, {0.2311912974, -0.1565170024},
		{0.1935721677, -0.1398653022}};
	const double want_b[3] = {0.09, 0.1, 0.0850928802};
	for (int t = 0; t < 3; t++) {
		float *grads[3] = {gw[t], gb[t], gf};
		pl_opt_step(o, params, grads);
		assert_float_equal(w[0], want_w[t][0], 2e-7);
		assert_float_equal(w[1], want_w[t][1], 2e-7);
		assert_float_equal(bb[0], want_b[t], 2e-7);
		assert_float_equal(bb[1], 0.0, 0.0);
		assert_float_equal(f[0], 7.0, 0.0);
	}
	assert_int_equal(o->t, 3);
	assert_float_equal(o->m[0][0], 0.405124, 1e-7);
	assert_float_equal(o->m[1][0], 0.0405, 1e-8);
	pl_opt_free(o);
}

/* Without the bound and the penalties, the first step moves every element by -lr sign(g) (m = g^2),
 * whatever the scale of g: the property that makes the task's step weights irrelevant. */
static void test_rmsprop_first_step_and_defaults(void **state)
{
	(void)state;
	PlModel m = opt_model();
	PlOptConfig c;
	pl_opt_defaults(&c);
	pl_opt_miconi_defaults(&c, "completion");
	assert_int_equal(c.kind, PL_OPT_RMSPROP_MICONI);
	assert_float_equal(c.lr, 0.03, 0);
	assert_float_equal(c.max_dw, 0.1, 0);
	assert_float_equal(c.l1, 1e-3, 0);
	assert_float_equal(c.l2, 1e-4, 0);
	assert_float_equal(c.rms_decay, 0.99, 0);
	assert_float_equal(c.clip, 0.0, 0);
	pl_opt_miconi_defaults(&c, "reversal");
	assert_float_equal(c.lr, 0.01, 0);
	assert_float_equal(c.max_dw, 0.01, 0);
	assert_float_equal(c.l1, 1e-4, 0);
	assert_float_equal(c.l2, 0.0, 0);
	c.max_dw = 0;
	c.l1 = c.l2 = 0;
	PlOpt *o = pl_opt_new(&m, &c);
	float w[2] = {1.0f, 1.0f}, bb[2] = {1.0f, 1.0f}, f[1] = {0};
	float gw[2] = {3e-2f, -5e2f}, gb[2] = {-7e-1f, 1.0f}, gf[1] = {1};
	float *params[3] = {w, bb, f}, *grads[3] = {gw, gb, gf};
	pl_opt_step(o, params, grads);
	assert_float_equal(w[0], 0.99, 1e-6);
	assert_float_equal(w[1], 1.01, 1e-6);
	assert_float_equal(bb[0], 1.01, 1e-6);
	assert_float_equal(bb[1], 0.99, 1e-6);
	pl_opt_free(o);
}

/* AdamW is untouched by the new fields: the default kind is AdamW. */
static void test_adamw_still_default(void **state)
{
	(void)state;
	PlOptConfig c;
	pl_opt_defaults(&c);
	assert_int_equal(c.kind, PL_OPT_ADAMW);
	PlModel m = opt_model();
	PlOpt *o = pl_opt_new(&m, &c);
	assert_non_null(o->v[0]);
	assert_non_null(o->vmax[0]);
	pl_opt_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_completion),
		cmocka_unit_test(test_oneshot),
		cmocka_unit_test(test_reversal),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_rmsprop_by_hand),
		cmocka_unit_test(test_rmsprop_first_step_and_defaults),
		cmocka_unit_test(test_adamw_still_default),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
