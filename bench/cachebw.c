/* bench/cachebw.c -- bandwidth of a float triad a = b + s*c whose three arrays fit in a given size.
 *
 * The dense plastic step run one trial at a time (BIN bench --block 1) streams the trial's plastic state
 * (~0.5 MB per trial at the reference sizes) several times per step; with a block of one trial that
 * working set sits in L2/L3, not DRAM. This measures what such passes can reach: float arrays (as the
 * generated code uses), three arrays of total size KiB, each thread with its own arrays, repeated until
 * ~0.2 s, best of 5. Bytes per element: 12 (read b, read c, write a). Usage: cachebw [threads [KiB...]].
 * Prints `threads=N kib=K triad_GBps=X` per size.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct Job {
	long n, reps;
	float *a, *b, *c;
} Job;

static void *work(void *arg)
{
	Job *j = arg;
	const float s = 0.5f;
	for (long r = 0; r < j->reps; r++) {
		float *restrict a = j->a;
		const float *restrict b = j->b, *restrict c = j->c;
		for (long i = 0; i < j->n; i++)
			a[i] = b[i] + s * c[i];
		/* keep the compiler from dropping repeated passes */
		__asm__ volatile("" : : "r"(a) : "memory");
	}
	return NULL;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	int nt = argc > 1 ? atoi(argv[1]) : 1;
	long sizes[16] = {192, 768, 1536, 3072, 12288, 49152};
	int ns = 6;
	if (nt < 1 || nt > 64) {
		fprintf(stderr, "cachebw: error: thread count must be 1..64\n");
		return 1;
	}
	if (argc > 2) {
		ns = 0;
		for (int k = 2; k < argc && ns < 16; k++)
			sizes[ns++] = atol(argv[k]);
	}
	for (int s = 0; s < ns; s++) {
		long n = sizes[s] * 1024 / 12; /* floats per array */
		if (n < 64) {
			fprintf(stderr, "cachebw: error: size %ld KiB too small\n", sizes[s]);
			return 1;
		}
		Job jobs[64];
		pthread_t th[64];
		long reps = (long)(2e8 / 12.0 / (double)n) + 1; /* ~0.2 GB per pass set at 1 GB/s-ish */
		for (int k = 0; k < nt; k++) {
			jobs[k].n = n;
			jobs[k].reps = reps;
			jobs[k].a = aligned_alloc(64, ((size_t)n * 4 + 63) / 64 * 64);
			jobs[k].b = aligned_alloc(64, ((size_t)n * 4 + 63) / 64 * 64);
			jobs[k].c = aligned_alloc(64, ((size_t)n * 4 + 63) / 64 * 64);
			if (!jobs[k].a || !jobs[k].b || !jobs[k].c) {
				fprintf(stderr, "cachebw: error: out of memory\n");
				return 1;
			}
			for (long i = 0; i < n; i++) {
				jobs[k].a[i] = 0.0f;
				jobs[k].b[i] = 1.0f;
				jobs[k].c[i] = 2.0f;
			}
		}
		double best = 1e30;
		for (int rep = 0; rep < 5; rep++) {
			double t0 = now();
			for (int k = 0; k < nt; k++)
				if (pthread_create(&th[k], NULL, work, &jobs[k]) != 0) {
					fprintf(stderr, "cachebw: error: pthread_create failed\n");
					return 1;
				}
			for (int k = 0; k < nt; k++)
				pthread_join(th[k], NULL);
			double t = now() - t0;
			best = t < best ? t : best;
		}
		if (jobs[0].a[n / 2] != 2.0f) {
			fprintf(stderr, "cachebw: error: wrong result %g\n", (double)jobs[0].a[n / 2]);
			return 2;
		}
		printf("threads=%d kib=%ld triad_GBps=%.1f\n", nt, sizes[s], 12.0 * (double)n * (double)reps * nt / best / 1e9);
		fflush(stdout);
		for (int k = 0; k < nt; k++) {
			free(jobs[k].a);
			free(jobs[k].b);
			free(jobs[k].c);
		}
	}
	return 0;
}
