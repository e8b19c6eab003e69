/* bench/conv_kernels.c -- conv2d forward of the Conv-4 blocks: im2col + OpenBLAS sgemm (runtime/pl_img.h,
 * with and without grouping images into one GEMM) against a direct loop kernel, in float.
 *
 *   cc -O2 -march=native -I runtime $(pkg-config --cflags openblas) bench/conv_kernels.c \
 *      $(pkg-config --libs openblas) -lm -o /tmp/conv_kernels && OPENBLAS_NUM_THREADS=1 /tmp/conv_kernels
 *
 * The direct kernel is the loop nest one would write by hand: for each output channel and input channel
 * and kernel tap, an axpy over the output row (contiguous, vectorised by the compiler). Prints the
 * milliseconds per call (best of 5) and GFLOP/s for a batch of 16 images (one time step of B = 16). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "pl_img.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void direct(long n, long C, long H, long W, long Co, const float *x, const float *w, float *y)
{
	/* k = 3, stride 1, padding 1: Ho = H, Wo = W */
	for (long b = 0; b < n; b++)
		for (long co = 0; co < Co; co++) {
			float *yo = y + (b * Co + co) * H * W;
			for (long q = 0; q < H * W; q++)
				yo[q] = 0;
			for (long c = 0; c < C; c++) {
				const float *xc = x + (b * C + c) * H * W;
				for (long u = 0; u < 3; u++)
					for (long v = 0; v < 3; v++) {
						float wt = w[(co * C + c) * 9 + u * 3 + v];
						for (long i = 0; i < H; i++) {
							long h = i + u - 1;
							if (h < 0 || h >= H)
								continue;
							long j0 = v == 0 ? 1 : 0, j1 = v == 2 ? W - 1 : W;
							const float *xr = xc + h * W + v - 1;
							float *yr = yo + i * W;
							for (long j = j0; j < j1; j++)
								yr[j] += wt * xr[j];
						}
					}
			}
		}
}

/* im2col + one GEMM per image (no grouping), for comparison with pl_img_conv2d's grouped GEMM */
static void per_image(long n, long C, long H, long W, long Co, const float *x, const float *w, float *y)
{
	long P = H * W, K = C * 9;
	float *cols = malloc(sizeof *cols * (size_t)(K * P));
	for (long b = 0; b < n; b++) {
		pl_img_im2col(x + b * C * H * W, C, H, W, 3, 1, 1, H, W, cols, P, 0);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Co, (int)P, (int)K, 1, w, (int)K, cols, (int)P, 0,
			y + b * Co * P, (int)P);
	}
	free(cols);
}

int main(void)
{
	const long n = 16, Co = 64;
	const long shapes[4][2] = {{1, 28}, {64, 14}, {64, 7}, {64, 3}}; /* C, side of the 4 blocks (28 px) */
	printf("block  C  side  | direct ms  GF/s | im2col/image ms  GF/s | im2col grouped ms  GF/s\n");
	for (int s = 0; s < 4; s++) {
		long C = shapes[s][0], H = shapes[s][1];
		float *x = malloc(sizeof *x * (size_t)(n * C * H * H)), *w = malloc(sizeof *w * (size_t)(Co * C * 9));
		float *y = malloc(sizeof *y * (size_t)(n * Co * H * H));
		for (long i = 0; i < n * C * H * H; i++)
			x[i] = (float)(i % 17) / 17.0f;
		for (long i = 0; i < Co * C * 9; i++)
			w[i] = (float)(i % 13) / 13.0f - 0.5f;
		double flop = 2.0 * n * Co * C * 9 * H * H, best[3] = {1e9, 1e9, 1e9};
		for (int rep = 0; rep < 5; rep++) {
			double t0 = now();
			direct(n, C, H, H, Co, x, w, y);
			double t1 = now();
			per_image(n, C, H, H, Co, x, w, y);
			double t2 = now();
			pl_img_conv2d(n, 1, 0, C, H, H, Co, 3, 1, 1, x, w, y);
			double t3 = now();
			best[0] = t1 - t0 < best[0] ? t1 - t0 : best[0];
			best[1] = t2 - t1 < best[1] ? t2 - t1 : best[1];
			best[2] = t3 - t2 < best[2] ? t3 - t2 : best[2];
		}
		printf("%d  %3ld  %2ld  | %8.3f  %5.1f | %8.3f  %5.1f | %8.3f  %5.1f\n", s + 1, C, H, 1e3 * best[0],
			flop / best[0] * 1e-9, 1e3 * best[1], flop / best[1] * 1e-9, 1e3 * best[2], flop / best[2] * 1e-9);
		free(x), free(w), free(y);
	}
	return 0;
}
