/* compiler/stats.c -- mean, SEM, confidence intervals and the paired t-test for `plastc compare`.
 *
 * The only special function needed is Student's t CDF. With x = df / (df + t²), the tail mass is
 *   P(|T| > |t|) = I_x(df/2, 1/2),
 * where I_x(a, b) is the regularised incomplete beta function. We evaluate I_x by its continued fraction
 * (Lentz's method), which converges fast when x < (a+1)/(a+b+2); otherwise we use the symmetry
 * I_x(a, b) = 1 - I_{1-x}(b, a). Quantiles invert the CDF by bisection: the CDF is monotone and cheap, and
 * with at most a few hundred evaluations per summary speed does not matter, robustness does.
 */
#include "stats.h"

#include <math.h>

double stats_mean(const double *x, size_t n)
{
	if (n == 0)
		return NAN;
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += x[i];
	return s / (double)n;
}

/* Two passes (mean, then squared deviations): the one-pass sum-of-squares formula cancels badly when
 * the values are large and close together, which is exactly what test losses of similar runs are. */
double stats_var(const double *x, size_t n)
{
	if (n < 2)
		return NAN;
	double m = stats_mean(x, n), s = 0;
	for (size_t i = 0; i < n; i++)
		s += (x[i] - m) * (x[i] - m);
	return s / (double)(n - 1);
}

double stats_sem(const double *x, size_t n)
{
	if (n < 2)
		return NAN;
	return sqrt(stats_var(x, n) / (double)n);
}

StatsSummary stats_summary(const double *x, size_t n)
{
	StatsSummary s = { .n = n, .mean = stats_mean(x, n), .sd = NAN, .sem = NAN,
		.ci_z_lo = NAN, .ci_z_hi = NAN, .ci_t_lo = NAN, .ci_t_hi = NAN };
	if (n < 2)
		return s;
	s.sd = sqrt(stats_var(x, n));
	s.sem = s.sd / sqrt((double)n);
	s.ci_z_lo = s.mean - STATS_Z95 * s.sem;
	s.ci_z_hi = s.mean + STATS_Z95 * s.sem;
	double tq = stats_t_quantile(0.975, (double)(n - 1));
	s.ci_t_lo = s.mean - tq * s.sem;
	s.ci_t_hi = s.mean + tq * s.sem;
	return s;
}

StatsPaired stats_paired(const double *a, const double *b, size_t n)
{
	StatsPaired r = { .n = n, .mean_diff = NAN, .sem = NAN, .ci_lo = NAN, .ci_hi = NAN,
		.t = NAN, .df = n >= 1 ? (double)n - 1 : NAN, .p = NAN };
	if (n == 0)
		return r;
	/* Differences first, then the one-sample machinery on them: that is all a paired test is. */
	double mean = 0;
	for (size_t i = 0; i < n; i++)
		mean += a[i] - b[i];
	mean /= (double)n;
	r.mean_diff = mean;
	if (n < 2)
		return r;
	double ss = 0;
	for (size_t i = 0; i < n; i++) {
		double d = (a[i] - b[i]) - mean;
		ss += d * d;
	}
	r.sem = sqrt(ss / (double)(n - 1) / (double)n);
	double tq = stats_t_quantile(0.975, r.df);
	r.ci_lo = mean - tq * r.sem;
	r.ci_hi = mean + tq * r.sem;
	if (r.sem == 0) {
		/* Identical differences on every seed: no spread to test against. A zero difference is no
		 * evidence at all (p = 1); a constant non-zero one is as strong as it gets (p = 0). */
		r.t = mean == 0 ? 0 : copysign(INFINITY, mean);
		r.p = mean == 0 ? 1 : 0;
		return r;
	}
	r.t = mean / r.sem;
	r.p = stats_betainc(r.df / 2, 0.5, r.df / (r.df + r.t * r.t));
	return r;
}

/* The continued fraction of I_x(a, b) (without its prefactor):
 *   1 / (1 + d1 / (1 + d2 / (1 + ...))), with
 *   d_{2m+1} = -(a+m)(a+b+m) x / ((a+2m)(a+2m+1)),   d_{2m} = m(b-m) x / ((a+2m-1)(a+2m)),
 * evaluated front to back by the modified Lentz method (C and D ratios, tiny values guard zeros). */
static double betainc_cf(double a, double b, double x)
{
	const double tiny = 1e-300, eps = 1e-16;
	double c = 1, d = 1 - (a + b) * x / (a + 1);
	if (fabs(d) < tiny)
		d = tiny;
	d = 1 / d;
	double f = d;
	for (int m = 1; m <= 10000; m++) {
		double m2 = 2.0 * m;
		double num = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
		d = 1 + num * d;
		c = 1 + num / c;
		if (fabs(d) < tiny)
			d = tiny;
		if (fabs(c) < tiny)
			c = tiny;
		d = 1 / d;
		f *= c * d;
		num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
		d = 1 + num * d;
		c = 1 + num / c;
		if (fabs(d) < tiny)
			d = tiny;
		if (fabs(c) < tiny)
			c = tiny;
		d = 1 / d;
		double delta = c * d;
		f *= delta;
		if (fabs(delta - 1) < eps)
			break;
	}
	return f;
}

double stats_betainc(double a, double b, double x)
{
	if (!(a > 0) || !(b > 0) || !(x >= 0) || !(x <= 1))
		return NAN;
	if (x == 0)
		return 0;
	if (x == 1)
		return 1;
	/* x^a (1-x)^b / (a B(a,b)), in logs so large a, b do not overflow. */
	double lpre = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
	if (x < (a + 1) / (a + b + 2))
		return exp(lpre) * betainc_cf(a, b, x) / a;
	return 1 - exp(lpre) * betainc_cf(b, a, 1 - x) / b;
}

double stats_t_cdf(double t, double df)
{
	if (!(df > 0) || isnan(t))
		return NAN;
	if (isinf(t))
		return t > 0 ? 1 : 0;
	double tail = 0.5 * stats_betainc(df / 2, 0.5, df / (df + t * t)); /* P(T > |t|) */
	return t > 0 ? 1 - tail : tail;
}

double stats_t_quantile(double p, double df)
{
	if (!(p > 0) || !(p < 1) || !(df > 0))
		return NAN;
	if (p == 0.5)
		return 0;
	if (p < 0.5)
		return -stats_t_quantile(1 - p, df);
	double lo = 0, hi = 1;
	while (stats_t_cdf(hi, df) < p && hi < 1e300)
		hi *= 2;
	/* Bisection to the last representable bit: 2000 halvings cover any bracket up to 1e300. */
	for (int i = 0; i < 2000 && hi - lo > 1e-15 * hi; i++) {
		double mid = 0.5 * (lo + hi);
		if (stats_t_cdf(mid, df) < p)
			lo = mid;
		else
			hi = mid;
	}
	return 0.5 * (lo + hi);
}
