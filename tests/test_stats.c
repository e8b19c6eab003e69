/* tests/test_stats.c -- compiler/stats.c against values derived by hand or from closed forms.
 *
 * Closed forms used as references (independent of the incomplete-beta code under test):
 *   df = 1 (Cauchy):  F(t) = 1/2 + atan(t)/π
 *   df = 2:           F(t) = 1/2 + t / (2·sqrt(2 + t²))
 *   df = 3:           F(t) = 1/2 + (u/(1+u²) + atan(u))/π, u = t/√3
 *   integer a, b:     I_x(a, b) = P(Binomial(a+b-1, x) >= a)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "stats.h"

#define PI 3.14159265358979323846

static void near(double got, double want, double tol)
{
	if (!(fabs(got - want) <= tol)) {
		print_error("got %.17g, want %.17g (tolerance %g)\n", got, want, tol);
		fail();
	}
}

static double cdf1(double t) { return 0.5 + atan(t) / PI; }
static double cdf2(double t) { return 0.5 + t / (2 * sqrt(2 + t * t)); }
static double cdf3(double t)
{
	double u = t / sqrt(3.0);
	return 0.5 + (u / (1 + u * u) + atan(u)) / PI;
}

/* P(Binomial(n, x) >= k), by summing the pmf in logs. */
static double binom_tail(int n, double x, int k)
{
	double s = 0;
	for (int j = k; j <= n; j++)
		s += exp(lgamma(n + 1.0) - lgamma(j + 1.0) - lgamma(n - j + 1.0) + j * log(x) + (n - j) * log1p(-x));
	return s;
}

static void test_mean_var_sem(void **state)
{
	(void)state;
	double x[] = { 1, 2, 3, 4 };
	near(stats_mean(x, 4), 2.5, 1e-15);
	near(stats_var(x, 4), 5.0 / 3.0, 1e-15);          /* (2.25+0.25+0.25+2.25)/3 */
	near(stats_sem(x, 4), sqrt(5.0 / 12.0), 1e-15);   /* sqrt(var/n) = 0.6454972243679028 */
	assert_true(isnan(stats_var(x, 1)));
	assert_true(isnan(stats_sem(x, 1)));
	assert_true(isnan(stats_mean(x, 0)));
	/* Large offset: a one-pass formula would lose the variance here. */
	double y[] = { 1e9 + 1, 1e9 + 2, 1e9 + 3, 1e9 + 4 };
	near(stats_var(y, 4), 5.0 / 3.0, 1e-6);
}

static void test_summary(void **state)
{
	(void)state;
	double x[] = { 1, 2, 3, 4 };
	StatsSummary s = stats_summary(x, 4);
	assert_int_equal(s.n, 4);
	near(s.mean, 2.5, 1e-15);
	near(s.sd, sqrt(5.0 / 3.0), 1e-15);
	near(s.sem, 0.6454972243679028, 1e-15);
	near(s.ci_z_hi - s.mean, 1.2651745597610895, 1e-12);  /* 1.96 · SEM */
	near(s.mean - s.ci_z_lo, 1.2651745597610895, 1e-12);
	near(s.ci_t_hi - s.mean, 2.054260256760879, 1e-9);    /* t(0.975, 3) · SEM */
	near(s.mean - s.ci_t_lo, 2.054260256760879, 1e-9);
	StatsSummary one = stats_summary(x, 1);
	assert_int_equal(one.n, 1);
	near(one.mean, 1, 0);
	assert_true(isnan(one.sem) && isnan(one.ci_t_lo) && isnan(one.ci_z_hi));
}

static void test_betainc(void **state)
{
	(void)state;
	for (double x = 0.05; x < 1; x += 0.1) {
		near(stats_betainc(2.5, 1, x), pow(x, 2.5), 1e-14);          /* I_x(a, 1) = x^a */
		near(stats_betainc(1, 3.5, x), 1 - pow(1 - x, 3.5), 1e-14);  /* I_x(1, b) = 1 - (1-x)^b */
	}
	near(stats_betainc(7.3, 7.3, 0.5), 0.5, 1e-14);                   /* symmetry */
	near(stats_betainc(2, 3, 0.3), 0.3483, 1e-14);                    /* 6·.09·.49 + 4·.027·.7 + .0081 */
	near(stats_betainc(50, 60, 0.45), binom_tail(109, 0.45, 50), 1e-12);
	near(stats_betainc(50, 60, 0.45), 0.4642352914306062, 1e-12);
	near(stats_betainc(3, 200, 0.001), binom_tail(202, 0.001, 3), 1e-14);
	near(stats_betainc(2, 3, 0), 0, 0);
	near(stats_betainc(2, 3, 1), 1, 0);
	assert_true(isnan(stats_betainc(-1, 3, 0.5)));
	assert_true(isnan(stats_betainc(1, 3, 1.5)));
}

static void test_t_cdf(void **state)
{
	(void)state;
	double ts[] = { -30, -4.3, -2, -1, -0.3, 0, 0.3, 1, 2, 3.1824, 12.7, 100 };
	for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
		near(stats_t_cdf(ts[i], 1), cdf1(ts[i]), 1e-13);
		near(stats_t_cdf(ts[i], 2), cdf2(ts[i]), 1e-13);
		near(stats_t_cdf(ts[i], 3), cdf3(ts[i]), 1e-13);
	}
	near(stats_t_cdf(1, 1), 0.75, 1e-15);
	near(stats_t_cdf(0, 7), 0.5, 1e-15);
	/* Many degrees of freedom: the normal CDF, Φ(1.96) = 0.9750021048517795. */
	near(stats_t_cdf(1.96, 1e7), 0.9750021048517795, 1e-7);
	near(stats_t_cdf(INFINITY, 4), 1, 0);
	near(stats_t_cdf(-INFINITY, 4), 0, 0);
}

static void test_t_quantile(void **state)
{
	(void)state;
	near(stats_t_quantile(0.975, 1), tan(PI * 0.475), 1e-10);                     /* 12.7062... */
	near(stats_t_quantile(0.975, 2), sqrt(2 * 0.95 * 0.95 / (1 - 0.95 * 0.95)), 1e-12); /* 4.3027 */
	near(stats_t_quantile(0.975, 3), 3.182446305283706, 1e-11);  /* bisection on the df=3 closed form */
	near(cdf3(stats_t_quantile(0.975, 3)), 0.975, 1e-14);
	near(stats_t_quantile(0.975, 10), 2.228138851986158, 1e-10);  /* Simpson integration of the pdf; tables: 2.228 */
	near(stats_t_quantile(0.025, 3), -3.182446305283706, 1e-11);
	near(stats_t_quantile(0.5, 3), 0, 0);
	near(stats_t_quantile(0.975, 1e7), 1.959963984540054, 1e-5);  /* the normal quantile */
	assert_true(isnan(stats_t_quantile(1, 3)));
	assert_true(isnan(stats_t_quantile(0.5, 0)));
}

static void test_paired(void **state)
{
	(void)state;
	/* d = a - b = (-1, 0, -2, -1): mean -1, deviations (0, 1, -1, 0), var 2/3, SEM sqrt(1/6),
	 * t = -sqrt(6), df 3, p = 2(1 - F3(sqrt 6)) with the df=3 closed form. */
	double a[] = { 1, 2, 3, 4 }, b[] = { 2, 2, 5, 5 };
	StatsPaired p = stats_paired(a, b, 4);
	assert_int_equal(p.n, 4);
	near(p.mean_diff, -1, 1e-15);
	near(p.sem, 0.408248290463863, 1e-15);
	near(p.t, -2.449489742783178, 1e-14);
	near(p.df, 3, 0);
	near(p.p, 2 * (1 - cdf3(sqrt(6.0))), 1e-13);
	near(p.p, 0.09172111331157184, 1e-12);
	near(p.ci_hi - p.mean_diff, 1.2992282636253374, 1e-9);
	near(p.mean_diff - p.ci_lo, 1.2992282636253374, 1e-9);
	/* Swapping a and b flips the sign and keeps p. */
	StatsPaired q = stats_paired(b, a, 4);
	near(q.mean_diff, 1, 1e-15);
	near(q.p, p.p, 1e-15);
	/* Constant differences: no spread. */
	double c[] = { 2, 3, 4, 5 };
	StatsPaired r = stats_paired(c, a, 4);
	near(r.mean_diff, 1, 0);
	near(r.p, 0, 0);
	assert_true(isinf(r.t) && r.t > 0);
	StatsPaired z = stats_paired(a, a, 4);
	near(z.p, 1, 0);
	/* One pair: a difference but no test. */
	StatsPaired one = stats_paired(a, b, 1);
	near(one.mean_diff, -1, 0);
	assert_true(isnan(one.p) && isnan(one.sem));
	StatsPaired none = stats_paired(a, b, 0);
	assert_true(isnan(none.mean_diff));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mean_var_sem),
		cmocka_unit_test(test_summary),
		cmocka_unit_test(test_betainc),
		cmocka_unit_test(test_t_cdf),
		cmocka_unit_test(test_t_quantile),
		cmocka_unit_test(test_paired),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
