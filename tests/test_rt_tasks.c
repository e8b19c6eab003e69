/* tests/test_rt_tasks.c -- the task generators: layouts, statistics, normalisation, determinism, options. */
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
#include "rt_model.h"

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

#define X(b, t, r, k) ((b).x[((size_t)(t) * (b).B + (r)) * (b).I + (k)])
#define Y(b, t, r) ((b).y[(size_t)(t) * (b).B + (r)])

static void test_copy_layout(void **state)
{
	(void)state;
	const char *opts[] = {"n=5", "m=3"};
	Batch b = make("copy", 2, opts, 16, 1);
	assert_int_equal(b.T, 13);
	assert_int_equal(b.I, 3);
	assert_string_equal(pl_task_describe(b.t), "copy n=5 m=3");
	double msum = 0;
	for (int t = 0; t < b.T; t++) {
		msum += b.mask[t];
		assert_true(b.mask[t] == (t >= 8 ? 0.2f : 0.0f));
	}
	assert_true(fabs(msum - 1.0) < 1e-6);
	for (int r = 0; r < b.B; r++) {
		for (int t = 0; t < 5; t++) {
			float v = X(b, t, r, 0);
			assert_true(v >= -1.0f && v <= 1.0f);
			assert_true(X(b, t, r, 1) == 1.0f && X(b, t, r, 2) == 0.0f);
			assert_true(Y(b, t, r) == 0.0f);
			assert_true(Y(b, 8 + t, r) == v); /* recalled in order */
		}
		for (int t = 5; t < 8; t++)
			for (int k = 0; k < 3; k++)
				assert_true(X(b, t, r, k) == 0.0f);
		for (int t = 8; t < 13; t++)
			assert_true(X(b, t, r, 0) == 0.0f && X(b, t, r, 1) == 0.0f && X(b, t, r, 2) == 1.0f);
	}
	/* trials differ */
	assert_true(X(b, 0, 0, 0) != X(b, 0, 1, 0));
	drop(&b);
}

static void test_cue_reward_stats(void **state)
{
	(void)state;
	Batch b = make("cue_reward", 0, NULL, 2000, 3);
	assert_int_equal(b.T, 20);
	assert_int_equal(b.I, 16);
	double rs = 0, rs2 = 0;
	long n = 0;
	for (int t = 0; t < b.T; t++)
		assert_true(b.mask[t] == 1.0f / 20);
	for (int r = 0; r < b.B; r++)
		for (int t = 0; t < b.T; t++) {
			float rew = Y(b, t, r);
			assert_true(rew >= -1.0f && rew <= 1.0f);
			rs += rew;
			rs2 += rew * rew;
			n++;
			if (t < 10) {
				assert_true(X(b, t, r, 14) == rew); /* reward shown in the first half */
				assert_true(X(b, t, r, 15) == 0.0f);
			} else {
				assert_true(X(b, t, r, 14) == 0.0f);
				assert_true(X(b, t, r, 15) == 1.0f);
			}
		}
	/* U[-1,1]: mean 0, variance 1/3 */
	assert_true(fabs(rs / n) < 0.03);
	assert_true(fabs(rs2 / n - 1.0 / 3) < 0.03);
	/* cue + N(0, 0.01): two steps of the same trial with the same reward share the cue up to noise;
	 * over all steps the cue coordinates have mean 0.5 and variance 1/12 + 0.01. */
	double cs = 0, cs2 = 0;
	long cn = 0;
	for (int r = 0; r < b.B; r++)
		for (int t = 0; t < b.T; t++)
			for (int k = 0; k < 14; k++) {
				double v = X(b, t, r, k);
				cs += v;
				cs2 += v * v;
				cn++;
			}
	double cm = cs / cn;
	assert_true(fabs(cm - 0.5) < 0.02);
	assert_true(fabs(cs2 / cn - cm * cm - (1.0 / 12 + 0.01)) < 0.01);
	/* at most 5 distinct rewards per trial */
	for (int r = 0; r < 50; r++) {
		float seen[20];
		int ns = 0;
		for (int t = 0; t < b.T; t++) {
			int found = 0;
			for (int s = 0; s < ns; s++)
				found |= seen[s] == Y(b, t, r);
			if (!found)
				seen[ns++] = Y(b, t, r);
		}
		assert_true(ns <= 5);
	}
	drop(&b);
}

static void check_regression(const char *fn, int K, int d)
{
	char o1[32], o2[32];
	snprintf(o1, sizeof o1, "fn=%s", fn);
	snprintf(o2, sizeof o2, "K=%d", K);
	const char *opts[] = {o1, o2};
	Batch b = make("regression", 2, opts, 300, 5);
	assert_int_equal(b.T, K + 20);
	assert_int_equal(b.I, d + 2);
	double noise2 = 0;
	long nn = 0;
	for (int r = 0; r < b.B; r++) {
		double s = 0, s2 = 0;
		for (int t = 0; t < b.T; t++)
			s += Y(b, t, r);
		double mean = s / b.T;
		for (int t = 0; t < b.T; t++)
			s2 += (Y(b, t, r) - mean) * (Y(b, t, r) - mean);
		assert_true(fabs(mean) < 1e-5);
		assert_true(fabs(sqrt(s2 / (b.T - 1)) - 1.0) < 1e-4); /* unbiased std = 1 per trial */
		for (int t = 0; t < b.T; t++) {
			for (int k = 0; k < d; k++)
				assert_true(X(b, t, r, k) >= -1.0f && X(b, t, r, k) <= 1.0f);
			if (t < K) {
				assert_true(X(b, t, r, d + 1) == 1.0f);
				double e = X(b, t, r, d) - Y(b, t, r);
				noise2 += e * e;
				nn++;
			} else
				assert_true(X(b, t, r, d) == 0.0f && X(b, t, r, d + 1) == 0.0f);
		}
	}
	assert_true(fabs(sqrt(noise2 / nn) - 0.1) < 0.01);
	for (int t = 0; t < b.T; t++)
		assert_true(b.mask[t] == 1.0f / b.T);
	/* Linear f: within a trial the values are an exact affine function of v (rank check via a fit
	 * is overkill: check that two trials differ and values are finite). */
	assert_true(Y(b, 0, 0) != Y(b, 0, 1));
	drop(&b);
}

static void test_regression(void **state)
{
	(void)state;
	check_regression("linear", 10, 12);
	check_regression("linear", 20, 12);
	check_regression("mlp", 10, 6);
	check_regression("mlp", 20, 6);
}

/* Linear f: the normalised values are affine in v, so with d+1 <= T points the least-squares residual is
 * zero. Checked on one trial by solving the normal equations. */
static void test_regression_linear_is_linear(void **state)
{
	(void)state;
	const char *opts[] = {"K=20"};
	Batch b = make("regression", 1, opts, 4, 9);
	int d = 12, n = d + 1, T = b.T;
	for (int r = 0; r < b.B; r++) {
		double A[13][14];
		memset(A, 0, sizeof A);
		for (int t = 0; t < T; t++) {
			double f[13];
			for (int k = 0; k < d; k++)
				f[k] = X(b, t, r, k);
			f[d] = 1.0;
			for (int i = 0; i < n; i++) {
				for (int j = 0; j < n; j++)
					A[i][j] += f[i] * f[j];
				A[i][n] += f[i] * Y(b, t, r);
			}
		}
		for (int i = 0; i < n; i++) /* Gauss-Jordan */
			for (int j = 0; j < n; j++)
				if (j != i) {
					double q = A[j][i] / A[i][i];
					for (int k = i; k <= n; k++)
						A[j][k] -= q * A[i][k];
				}
		double res = 0;
		for (int t = 0; t < T; t++) {
			double p = A[d][n] / A[d][d];
			for (int k = 0; k < d; k++)
				p += A[k][n] / A[k][k] * X(b, t, r, k);
			res += (p - Y(b, t, r)) * (p - Y(b, t, r));
		}
		assert_true(res / T < 1e-8);
	}
	drop(&b);
}

static void test_determinism(void **state)
{
	(void)state;
	const char *names[] = {"copy", "cue_reward", "regression"};
	for (int i = 0; i < 3; i++) {
		Batch a = make(names[i], 0, NULL, 8, 11), b = make(names[i], 0, NULL, 8, 11), c = make(names[i], 0, NULL, 8, 12);
		size_t nx = (size_t)a.T * a.B * a.I * sizeof(float);
		assert_memory_equal(a.x, b.x, nx);
		assert_memory_equal(a.y, b.y, (size_t)a.T * a.B * a.O * sizeof(float));
		assert_true(memcmp(a.x, c.x, nx) != 0);
		drop(&a);
		drop(&b);
		drop(&c);
	}
}

static void test_options_and_model_check(void **state)
{
	(void)state;
	char err[256];
	const char *bad1[] = {"q=1"};
	assert_null(pl_task_new("copy", 1, bad1, err, sizeof err));
	assert_non_null(strstr(err, "task copy has no option 'q' (options: n, m)"));
	const char *bad2[] = {"fn=cubic"};
	assert_null(pl_task_new("regression", 1, bad2, err, sizeof err));
	assert_non_null(strstr(err, "bad value 'cubic' for option fn"));
	assert_null(pl_task_new("fsc5", 0, NULL, err, sizeof err));
	assert_non_null(strstr(err, "unknown task 'fsc5'"));
	const char *bad3[] = {"n"};
	assert_null(pl_task_new("copy", 1, bad3, err, sizeof err));
	assert_non_null(strstr(err, "key=value"));

	PlTask *t = pl_task_new("cue_reward", 0, NULL, err, sizeof err);
	assert_int_equal(pl_task_check_model(t, rt_model(16, 1, PL_LOSS_MSE), err, sizeof err), 0);
	assert_int_equal(pl_task_check_model(t, rt_model(3, 1, PL_LOSS_MSE), err, sizeof err), -1);
	assert_non_null(strstr(err, "inputs of size 16"));
	assert_non_null(strstr(err, "input size 3"));
	pl_task_free(t);
	const char *mlp[] = {"fn=mlp"};
	t = pl_task_new("regression", 1, mlp, err, sizeof err);
	assert_int_equal(pl_task_in_size(t), 8);
	assert_int_equal(pl_task_T(t), 30);
	pl_task_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_layout),
		cmocka_unit_test(test_cue_reward_stats),
		cmocka_unit_test(test_regression),
		cmocka_unit_test(test_regression_linear_is_linear),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_options_and_model_check),
	};
	return cmocka_run_group_tests_name("runtime tasks", tests, NULL, NULL);
}
