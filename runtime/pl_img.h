/* runtime/pl_img.h -- kernels of the image ops (conv2d, conv2d_t, conv2d_w, maxpool, pool_argmax,
 * pool_gather, pool_scatter; compiler/ops.def gives their meaning), generic in the element type.
 *
 * Why a header of static inline functions: the C backend emits float code for training and double code
 * for derivative checks, and its generated files are compiled on their own (tests dlopen them without
 * the runtime library). So the generated file includes this header once with the element type it
 * uses:
 *     #define PL_IMG_DOUBLE 1   (only for double; float is the default)
 *     #include "pl_img.h"
 * and runtime/kernels_img.c includes it for float and exports the pl_k_* wrappers (plastrt.h) that the
 * LLVM backend calls. One source of truth for both backends and both precisions.
 *
 * Layouts (row-major): an image [C,H,W]; a kernel [Co,C,k*k]; a batch of n values is n consecutive
 * values. Every function takes n (the number of results: B if the result is batched, else 1) and for
 * each operand whether it is batched (stride one value per result) or shared (stride 0).
 *
 * Convolution through im2col + GEMM. For one image the columns matrix is
 *     cols[(c*k + u)*k + v, i*Wo + j] = x[c, s*i + u - p, s*j + v - p]   (0 outside the image)
 * of size [C*k*k, Ho*Wo]; then, with the kernel as the matrix w[Co, C*k*k] and g[Co, Ho*Wo]:
 *     conv2d   y  = w @ cols                      (GEMM M=Co, N=Ho*Wo, K=C*k*k)
 *     conv2d_w dw = g @ cols^T                    (GEMM M=Co, N=C*k*k, K=Ho*Wo)
 *     conv2d_t x  = col2im(w^T @ g)               (GEMM M=C*k*k, N=Ho*Wo, K=Co; col2im adds overlaps)
 * which is the trilinear form T(g, x, w) of ops.def differentiated in each slot. Images are processed in
 * groups whose columns sit side by side ([C*k*k, n_g*Ho*Wo]) when an image has very few output pixels
 * (3x3 on 28-pixel input), so that the GEMM stays wide; docs/oneshot.md records the measurements behind
 * that threshold. The columns buffer is allocated per call (malloc: the generated file is compiled
 * without the runtime); failure aborts with a message, like any allocation failure inside a step.
 *
 * Pooling: plain loops; ties go to the first window position (strict >), NaN never wins, as the
 * interpreter. A selector holds the window position u*k+v as a real number, clamped into the window.
 */
#ifndef PL_IMG_H
#define PL_IMG_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#ifdef PL_IMG_DOUBLE
typedef double pl_img_real;
#define PL_IMG_GEMM cblas_dgemm
#else
typedef float pl_img_real;
#define PL_IMG_GEMM cblas_sgemm
#endif

/* Images are grouped only when one image has fewer output pixels than PL_IMG_GROUP_BELOW (then up to
 * PL_IMG_GROUP_PIXELS columns per GEMM): bench/conv_kernels.c measured the grouped GEMM slower than one
 * GEMM per image at 14x14 and 7x7 outputs (the copy into [g][Co][P] costs more than the wider GEMM
 * gains) and faster at 3x3 (docs/oneshot.md). */
#define PL_IMG_GROUP_BELOW 32
#define PL_IMG_GROUP_PIXELS 512

static inline void *pl_img_alloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "plastc runtime: out of memory (%zu bytes of convolution columns)\n", n);
		abort();
	}
	return p;
}

/* Images per group for an output of P pixels per image. */
static inline long pl_img_group(long P, long n)
{
	long g = P >= PL_IMG_GROUP_BELOW ? 1 : PL_IMG_GROUP_PIXELS / (P > 0 ? P : 1);
	return g < 1 ? 1 : g > n ? n : g;
}

/* cols[r, off + i*Wo + j] (row length ld) for one image x [C,H,W]; r = (c*k + u)*k + v. */
static inline void pl_img_im2col(const pl_img_real *x, long C, long H, long W, long k, long s, long p, long Ho,
	long Wo, pl_img_real *cols, long ld, long off)
{
	for (long c = 0; c < C; c++)
		for (long u = 0; u < k; u++)
			for (long v = 0; v < k; v++) {
				pl_img_real *row = cols + ((c * k + u) * k + v) * ld + off;
				for (long i = 0; i < Ho; i++) {
					long h = s * i + u - p;
					pl_img_real *dst = row + i * Wo;
					if (h < 0 || h >= H) {
						for (long j = 0; j < Wo; j++)
							dst[j] = 0;
						continue;
					}
					const pl_img_real *src = x + (c * H + h) * W;
					for (long j = 0; j < Wo; j++) {
						long w = s * j + v - p;
						dst[j] = w >= 0 && w < W ? src[w] : 0;
					}
				}
			}
}

/* x[C,H,W] += the columns of one image (the adjoint of im2col). */
static inline void pl_img_col2im(const pl_img_real *cols, long ld, long off, long C, long H, long W, long k, long s,
	long p, long Ho, long Wo, pl_img_real *x)
{
	for (long c = 0; c < C; c++)
		for (long u = 0; u < k; u++)
			for (long v = 0; v < k; v++) {
				const pl_img_real *row = cols + ((c * k + u) * k + v) * ld + off;
				for (long i = 0; i < Ho; i++) {
					long h = s * i + u - p;
					if (h < 0 || h >= H)
						continue;
					pl_img_real *dst = x + (c * H + h) * W;
					const pl_img_real *src = row + i * Wo;
					for (long j = 0; j < Wo; j++) {
						long w = s * j + v - p;
						if (w >= 0 && w < W)
							dst[w] += src[j];
					}
				}
			}
}

/* y[b] = conv2d(x[b or 0], w[b or 0]) for b < n: x [C,H,W], w [Co,C,k*k] -> y [Co,Ho,Wo]. */
static inline void pl_img_conv2d(long n, int xb, int wb, long C, long H, long W, long Co, long k, long s, long p,
	const pl_img_real *x, const pl_img_real *w, pl_img_real *y)
{
	long Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1, P = Ho * Wo, K = C * k * k;
	long xs = xb ? C * H * W : 0, ws = wb ? Co * K : 0;
	/* a per-image kernel cannot share one GEMM across images; a shared one can */
	long G = wb ? 1 : pl_img_group(P, n);
	pl_img_real *cols = pl_img_alloc(sizeof *cols * (size_t)(K * G * P));
	pl_img_real *tmp = G > 1 ? pl_img_alloc(sizeof *tmp * (size_t)(Co * G * P)) : NULL;
	for (long b0 = 0; b0 < n; b0 += G) {
		long g = n - b0 < G ? n - b0 : G, ld = g * P;
		for (long q = 0; q < g; q++)
			pl_img_im2col(x + (b0 + q) * xs, C, H, W, k, s, p, Ho, Wo, cols, ld, q * P);
		if (g == 1) {
			PL_IMG_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Co, (int)P, (int)K, 1, w + b0 * ws,
				(int)K, cols, (int)P, 0, y + b0 * Co * P, (int)P);
			continue;
		}
		/* tmp[Co, g*P]: image q's output is the column block q; y wants [g][Co][P] */
		PL_IMG_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)Co, (int)ld, (int)K, 1, w, (int)K, cols,
			(int)ld, 0, tmp, (int)ld);
		for (long q = 0; q < g; q++)
			for (long co = 0; co < Co; co++)
				memcpy(y + ((b0 + q) * Co + co) * P, tmp + co * ld + q * P, sizeof *y * (size_t)P);
	}
	free(tmp);
	free(cols);
}

/* x[b] = conv2d_t(g[b or 0], w[b or 0]): g [Co,Ho,Wo], w [Co,C,k*k] -> x [C,H,W]. */
static inline void pl_img_conv2d_t(long n, int gb, int wb, long C, long H, long W, long Co, long k, long s, long p,
	const pl_img_real *g, const pl_img_real *w, pl_img_real *x)
{
	long Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1, P = Ho * Wo, K = C * k * k;
	long gs = gb ? Co * P : 0, ws = wb ? Co * K : 0;
	long G = wb ? 1 : pl_img_group(P, n);
	pl_img_real *cols = pl_img_alloc(sizeof *cols * (size_t)(K * G * P));
	pl_img_real *tmp = G > 1 ? pl_img_alloc(sizeof *tmp * (size_t)(Co * G * P)) : NULL;
	memset(x, 0, sizeof *x * (size_t)(n * C * H * W));
	for (long b0 = 0; b0 < n; b0 += G) {
		long q, gn = n - b0 < G ? n - b0 : G, ld = gn * P;
		if (gn == 1) {
			PL_IMG_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)P, (int)Co, 1, w + b0 * ws,
				(int)K, g + b0 * gs, (int)P, 0, cols, (int)P);
		} else {
			for (q = 0; q < gn; q++)
				for (long co = 0; co < Co; co++)
					memcpy(tmp + co * ld + q * P, g + (b0 + q) * gs + co * P, sizeof *tmp * (size_t)P);
			PL_IMG_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)ld, (int)Co, 1, w, (int)K, tmp,
				(int)ld, 0, cols, (int)ld);
		}
		for (q = 0; q < gn; q++)
			pl_img_col2im(cols, ld, q * P, C, H, W, k, s, p, Ho, Wo, x + (b0 + q) * C * H * W);
	}
	free(tmp);
	free(cols);
}

/* dw[b] = conv2d_w(x[b or 0], g[b or 0]): x [C,H,W], g [Co,Ho,Wo] -> dw [Co,C,k*k]. A batched result
 * stays per image (the IR sums it with a following sum_to when the kernel is shared). */
static inline void pl_img_conv2d_w(long n, int xb, int gb, long C, long H, long W, long Co, long k, long s, long p,
	const pl_img_real *x, const pl_img_real *g, pl_img_real *dw)
{
	long Ho = (H + 2 * p - k) / s + 1, Wo = (W + 2 * p - k) / s + 1, P = Ho * Wo, K = C * k * k;
	long xs = xb ? C * H * W : 0, gs = gb ? Co * P : 0;
	pl_img_real *cols = pl_img_alloc(sizeof *cols * (size_t)(K * P));
	for (long b = 0; b < n; b++) {
		if (b == 0 || xb)
			pl_img_im2col(x + b * xs, C, H, W, k, s, p, Ho, Wo, cols, P, 0);
		PL_IMG_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, (int)Co, (int)K, (int)P, 1, g + b * gs, (int)P, cols,
			(int)P, 0, dw + b * Co * K, (int)K);
	}
	free(cols);
}

/* Position u*k+v of the first maximum of the k x k window at win (row length W); NaN never wins. */
static inline long pl_img_argmax(const pl_img_real *win, long W, long k)
{
	long best = 0;
	pl_img_real m = win[0];
	for (long u = 0; u < k; u++)
		for (long v = 0; v < k; v++)
			if (win[u * W + v] > m) {
				m = win[u * W + v];
				best = u * k + v;
			}
	return best;
}

/* maxpool (sel = 0) or pool_argmax (sel = 1) of n images x [C,H,W] -> [C,Ho,Wo]. */
static inline void pl_img_maxpool(long n, int sel, long C, long H, long W, long k, long s, const pl_img_real *x,
	pl_img_real *y)
{
	long Ho = (H - k) / s + 1, Wo = (W - k) / s + 1;
	for (long b = 0; b < n * C; b++) {
		const pl_img_real *xi = x + b * H * W;
		pl_img_real *yi = y + b * Ho * Wo;
		for (long i = 0; i < Ho; i++)
			for (long j = 0; j < Wo; j++) {
				const pl_img_real *win = xi + s * i * W + s * j;
				long q = pl_img_argmax(win, W, k);
				yi[i * Wo + j] = sel ? (pl_img_real)q : win[(q / k) * W + q % k];
			}
	}
}

static inline long pl_img_sel(pl_img_real v, long k)
{
	/* round half away from zero, clamped: a corrupt selector cannot index outside the window */
	long q = (long)(v < 0 ? v - (pl_img_real)0.5 : v + (pl_img_real)0.5);
	return q < 0 ? 0 : q >= k * k ? k * k - 1 : q;
}

/* pool_gather (scatter = 0): y[b] = x[b or 0] read through idx[b or 0], [C,Ho,Wo];
 * pool_scatter (scatter = 1): y[b] [C,H,W] = zeros plus v[b or 0] ([C,Ho,Wo]) added where idx selects.
 * vb / ib: is the value operand / the selector batched. */
static inline void pl_img_pool_move(long n, int scatter, int vb, int ib, long C, long H, long W, long k, long s,
	const pl_img_real *v, const pl_img_real *idx, pl_img_real *y)
{
	long Ho = (H - k) / s + 1, Wo = (W - k) / s + 1, img = C * H * W, pooled = C * Ho * Wo;
	if (scatter)
		memset(y, 0, sizeof *y * (size_t)(n * img));
	for (long b = 0; b < n; b++) {
		const pl_img_real *vi = v + (vb ? b * (scatter ? pooled : img) : 0);
		const pl_img_real *ii = idx + (ib ? b * pooled : 0);
		pl_img_real *yi = y + b * (scatter ? img : pooled);
		for (long c = 0; c < C; c++)
			for (long i = 0; i < Ho; i++)
				for (long j = 0; j < Wo; j++) {
					long ip = (c * Ho + i) * Wo + j, q = pl_img_sel(ii[ip], k);
					long at = (c * H + s * i + q / k) * W + s * j + q % k;
					if (scatter)
						yi[at] += vi[ip];
					else
						yi[ip] = vi[at];
				}
	}
}

#endif /* PL_IMG_H */
