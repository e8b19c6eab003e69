/* bench/sgemm.c -- OpenBLAS sgemm rate with M = 64 rows (the batch), the shape of a meta-training step.
 *
 * C[M,N] = A[M,K] B[K,N] for K = N in {128, 256, 512, 1024}, row-major, on 1 and 2 threads
 * (openblas_set_num_threads). Prints the best GFLOP/s (2 M N K flops per call) of enough calls to run
 * ~0.3 s per shape. Usage: sgemm [threads...] (default: 1 2).
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

void openblas_set_num_threads(int num_threads);

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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
				fprintf(stderr, "sgemm: error: thread count must be 1..64\n");
				return 1;
			}
			nthr++;
		}
	}
	const int M = 64;
	const int sizes[] = {128, 256, 512, 1024};
	for (int ti = 0; ti < nthr; ti++) {
		openblas_set_num_threads(threads[ti]);
		for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
			int N = sizes[si], K = sizes[si];
			float *A = malloc(sizeof(float) * (size_t)M * (size_t)K);
			float *B = malloc(sizeof(float) * (size_t)K * (size_t)N);
			float *C = malloc(sizeof(float) * (size_t)M * (size_t)N);
			if (!A || !B || !C) {
				fprintf(stderr, "sgemm: error: out of memory\n");
				return 1;
			}
			for (long i = 0; i < (long)M * K; i++)
				A[i] = (float)((i % 7) - 3) * 0.25f;
			for (long i = 0; i < (long)K * N; i++)
				B[i] = (float)((i % 5) - 2) * 0.5f;
			double flops = 2.0 * M * N * K, best = 0;
			int calls = (int)(3e8 / flops) + 1;
			for (int rep = 0; rep < 10; rep++) {
				double t0 = now();
				for (int k = 0; k < calls; k++)
					cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N,
						0.0f, C, N);
				double g = flops * calls / (now() - t0) / 1e9;
				best = g > best ? g : best;
			}
			/* C[0][0] = sum_k A[0][k] B[k][0]: check one entry so the calls cannot be dropped. */
			double want = 0;
			for (int k = 0; k < K; k++)
				want += (double)A[k] * (double)B[(long)k * N];
			if (want - C[0] > 1e-3 || C[0] - want > 1e-3) {
				fprintf(stderr, "sgemm: error: wrong result %g vs %g\n", (double)C[0], want);
				return 2;
			}
			printf("threads=%d M=%d N=K=%d sgemm_GFLOPs=%.1f\n", threads[ti], M, N, best);
			free(A);
			free(B);
			free(C);
		}
	}
	return 0;
}
