/* compiler/stats.h -- small-sample statistics for `plastc compare`: mean, SEM, confidence intervals,
 * Student's t distribution and the paired t-test.
 *
 * Everything is double precision and self-contained (only <math.h>): the t CDF is computed from the
 * regularised incomplete beta function, its quantile by inverting the CDF. Functions take arrays the
 * caller owns and return plain structs; nothing is allocated.
 */
#ifndef PLASTC_STATS_H
#define PLASTC_STATS_H

#include <stddef.h>

/* The z value of a two-sided 95% normal interval, as in the reference's "mean ± 1.96·SEM". */
#define STATS_Z95 1.96

/* One sample's description. Fields that need n >= 2 (sd, sem, both intervals) are NAN when n < 2. */
typedef struct StatsSummary {
	size_t n;
	double mean;
	double sd;         /* sample standard deviation, divisor n - 1 */
	double sem;        /* sd / sqrt(n) */
	double ci_z_lo, ci_z_hi; /* mean ± 1.96·SEM (the reference's convention) */
	double ci_t_lo, ci_t_hi; /* mean ± t_{0.975, n-1}·SEM (exact under normality) */
} StatsSummary;

/* A paired comparison of a and b on the same units: d_i = a_i - b_i. */
typedef struct StatsPaired {
	size_t n;
	double mean_diff;
	double sem;                /* SEM of the differences; NAN when n < 2 */
	double ci_lo, ci_hi;       /* t-based 95% interval of the mean difference */
	double t;                  /* mean_diff / sem (±INFINITY when sem = 0 and mean_diff != 0) */
	double df;                 /* n - 1 */
	double p;                  /* two-sided p-value of H0: mean difference = 0; NAN when n < 2 */
} StatsPaired;

double stats_mean(const double *x, size_t n);
/* Sample variance with divisor n - 1; NAN when n < 2. */
double stats_var(const double *x, size_t n);
double stats_sem(const double *x, size_t n);
StatsSummary stats_summary(const double *x, size_t n);
StatsPaired stats_paired(const double *a, const double *b, size_t n);

/* Regularised incomplete beta I_x(a, b) for a, b > 0 and 0 <= x <= 1; NAN outside that domain. */
double stats_betainc(double a, double b, double x);
/* P(T <= t) for Student's t with df > 0 degrees of freedom (df need not be an integer). */
double stats_t_cdf(double t, double df);
/* The p-quantile of Student's t with df degrees of freedom, 0 < p < 1. */
double stats_t_quantile(double p, double df);

#endif
