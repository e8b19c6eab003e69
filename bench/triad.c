/* bench/triad.c -- memory bandwidth of this machine: STREAM-style triad a = b + s*c and a read-only sum.
 *
 * Arrays of 2^24 doubles (128 MiB each) dwarf the 32 MiB L3, so every pass streams from DRAM. Threads
 * split the index range; each thread first-touches its own part. Bytes counted the STREAM way: triad
 * 24 bytes per element (read b, read c, write a; the write-allocate read is not counted), sum 8 bytes.
 * Prints the best of REPS passes. Usage: triad [threads...] (default: 1 2).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define N (1L << 24)
#define REPS 12

static double *a, *b, *c;

typedef struct Job {
	long lo, hi;
	int kind; /* 0 init, 1 triad, 2 sum */
	double sum;
} Job;

static void *work(void *arg)
{
	Job *j = arg;
	if (j->kind == 0) {
		for (long i = j->lo; i < j->hi; i++) {
			a[i] = 0.0;
			b[i] = 1.0;
			c[i] = 2.0;
		}
	} else if (j->kind == 1) {
		const double s = 3.0;
		for (long i = j->lo; i < j->hi; i++)
			a[i] = b[i] + s * c[i];
	} else {
		/* Vectorised reduction (built with -fopenmp-simd): a scalar chain would be core-bound. */
		double acc = 0;
#pragma omp simd reduction(+ : acc)
		for (long i = j->lo; i < j->hi; i++)
			acc += b[i];
		j->sum = acc;
	}
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double run(int nt, int kind, double *sum)
{
	pthread_t th[64];
	Job jobs[64];
	double t0 = now();
	for (int k = 0; k < nt; k++) {
		jobs[k].lo = N * k / nt;
		jobs[k].hi = N * (k + 1) / nt;
		jobs[k].kind = kind;
		jobs[k].sum = 0;
		if (pthread_create(&th[k], NULL, work, &jobs[k]) != 0) {
			fprintf(stderr, "triad: error: pthread_create failed\n");
			exit(1);
		}
	}
	for (int k = 0; k < nt; k++) {
		pthread_join(th[k], NULL);
		if (sum)
			*sum += jobs[k].sum;
	}
	return now() - t0;
}

int main(int argc, char **argv)
{
	int threads[16] = {1, 2};
	int nthr = 2;
	if (argc > 1) {
		nthr = 0;
		for (int k = 1; k < argc && nthr < 16; k++) {
			threads[nthr] = atoi(argv[k]);
			if (threads[nthr] < 1 || threads[nthr] > 64) {
				fprintf(stderr, "triad: error: thread count must be 1..64\n");
				return 1;
			}
			nthr++;
		}
	}
	a = malloc(N * sizeof *a);
	b = malloc(N * sizeof *b);
	c = malloc(N * sizeof *c);
	if (!a || !b || !c) {
		fprintf(stderr, "triad: error: out of memory\n");
		return 1;
	}
	for (int k = 0; k < nthr; k++) {
		int nt = threads[k];
		run(nt, 0, NULL);
		double best_t = 1e30, best_s = 1e30, check = 0;
		for (int r = 0; r < REPS; r++) {
			double t = run(nt, 1, NULL);
			best_t = t < best_t ? t : best_t;
			double s = run(nt, 2, &check);
			best_s = s < best_s ? s : best_s;
		}
		/* b is all ones, so each sum pass adds N: a check that the loop really ran. */
		if (check != (double)N * REPS || a[N / 2] != 7.0) {
			fprintf(stderr, "triad: error: wrong results (%g, %g)\n", check, a[N / 2]);
			return 2;
		}
		printf("threads=%d triad_GBps=%.1f read_GBps=%.1f\n", nt, 24.0 * N / best_t / 1e9,
			8.0 * N / best_s / 1e9);
	}
	free(a);
	free(b);
	free(c);
	return 0;
}
