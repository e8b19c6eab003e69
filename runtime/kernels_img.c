/* runtime/kernels_img.c -- the float image kernels exported for generated code (plastrt.h pl_k_*).
 *
 * The kernels themselves live in pl_img.h (shared with the C backend, which includes it in float or
 * double); these wrappers give them external linkage and the fixed int64 signature that the LLVM backend
 * declares. */
#include "plastrt.h"

#include "pl_img.h"

void pl_k_conv2d(int64_t n, int64_t xb, int64_t wb, int64_t C, int64_t H, int64_t W, int64_t Co, int64_t k,
		int64_t s, int64_t p, const float *x, const float *w, float *y)
{
	pl_img_conv2d(n, xb != 0, wb != 0, C, H, W, Co, k, s, p, x, w, y);
}

void pl_k_conv2d_t(int64_t n, int64_t gb, int64_t wb, int64_t C, int64_t H, int64_t W, int64_t Co, int64_t k,
		int64_t s, int64_t p, const float *g, const float *w, float *x)
{
	pl_img_conv2d_t(n, gb != 0, wb != 0, C, H, W, Co, k, s, p, g, w, x);
}

void pl_k_conv2d_w(int64_t n, int64_t xb, int64_t gb, int64_t C, int64_t H, int64_t W, int64_t Co, int64_t k,
		int64_t s, int64_t p, const float *x, const float *g, float *dw)
{
	pl_img_conv2d_w(n, xb != 0, gb != 0, C, H, W, Co, k, s, p, x, g, dw);
}

void pl_k_maxpool(int64_t n, int64_t sel, int64_t C, int64_t H, int64_t W, int64_t k, int64_t s, const float *x,
		float *y)
{
	pl_img_maxpool(n, sel != 0, C, H, W, k, s, x, y);
}

void pl_k_pool_move(int64_t n, int64_t scatter, int64_t vb, int64_t ib, int64_t C, int64_t H, int64_t W,
		int64_t k, int64_t s, const float *v, const float *idx, float *y)
{
	pl_img_pool_move(n, scatter != 0, vb != 0, ib != 0, C, H, W, k, s, v, idx, y);
}
