/* compiler/ir_nn.c -- builders for the Conv-4 image encoder (see ir_nn.h). */
#include "ir_nn.h"

static int scal(IrFunc *f, double v, SrcSpan loc)
{
	return ir_const(f, v, ir_shape0(false), loc);
}

/* The per-channel mean over the trials and the pixels of x [B,C,H,W]: sum_to [C,1,1] divided by B*H*W.
 * B is counted as sum_to([B] ones) so the statistic belongs to this call's trials (ir_nn.h). */
static int channel_mean(IrFunc *f, int x, SrcSpan loc)
{
	IrShape sx = f->nodes[x].shape;
	int64_t d[3] = {sx.d[0], 1, 1};
	IrShape sc = ir_shape(false, 3, d);
	int s = ir_sum_to(f, x, sc, loc);
	double npix = (double)(sx.d[1] * sx.d[2]);
	int m = ir_add(f, IR_MUL, s, scal(f, 1.0 / npix, loc), loc);
	if (sx.batch) {
		int nb = ir_sum_to(f, ir_const(f, 1.0, ir_shape0(true), loc), ir_shape0(false), loc);
		m = ir_add(f, IR_DIV, m, nb, loc);
	}
	return m;
}

static void check_bn(IrFunc *f, int x, int gamma, int beta)
{
	IrShape sx = f->nodes[x].shape, sg = f->nodes[gamma].shape, sb = f->nodes[beta].shape;
	int64_t d[3] = {sx.d[0], 1, 1};
	IrShape sc = ir_shape(false, 3, d);
	if (sx.rank != 3 || !ir_shape_eq(sg, sc) || !ir_shape_eq(sb, sc))
		ir_fatal("%s: batch norm needs x [B,C,H,W] and gamma, beta [C,1,1]", f->name);
}

/* y = (x - mean) * rsqrt(var + eps) * gamma + beta, the scale computed once per channel */
static int bn_apply(IrFunc *f, int x, int gamma, int beta, int mean, int var, double eps, SrcSpan loc)
{
	int xc = ir_add(f, IR_SUB, x, mean, loc);
	int sd = ir_add(f, IR_SQRT, ir_add(f, IR_ADD, var, scal(f, eps, loc), loc), -1, loc);
	int scale = ir_add(f, IR_DIV, gamma, sd, loc);
	return ir_add(f, IR_ADD, ir_add(f, IR_MUL, xc, scale, loc), beta, loc);
}

int ir_nn_batchnorm(IrFunc *f, int x, int gamma, int beta, double eps, int *mean, int *var, SrcSpan loc)
{
	check_bn(f, x, gamma, beta);
	int m = channel_mean(f, x, loc);
	int xc = ir_add(f, IR_SUB, x, m, loc);
	int v = channel_mean(f, ir_add(f, IR_SQUARE, xc, -1, loc), loc);
	if (mean)
		*mean = m;
	if (var)
		*var = v;
	return bn_apply(f, x, gamma, beta, m, v, eps, loc);
}

int ir_nn_batchnorm_eval(IrFunc *f, int x, int gamma, int beta, int mean, int var, double eps, SrcSpan loc)
{
	check_bn(f, x, gamma, beta);
	if (!ir_shape_eq(f->nodes[mean].shape, f->nodes[gamma].shape) ||
		!ir_shape_eq(f->nodes[var].shape, f->nodes[gamma].shape))
		ir_fatal("%s: batch norm statistics must be [C,1,1]", f->name);
	return bn_apply(f, x, gamma, beta, mean, var, eps, loc);
}

/* The variance for running_var, as PyTorch: the batch variance v (biased, over n = B*H*W values per
 * channel) times n/(n-1), with n-1 floored at 1 so a single value gives 0, not 0/0. */
static int unbiased(IrFunc *f, int x, int v, SrcSpan loc)
{
	IrShape sx = f->nodes[x].shape;
	int n = scal(f, (double)(sx.d[1] * sx.d[2]), loc);
	if (sx.batch)
		n = ir_add(f, IR_MUL, n, ir_sum_to(f, ir_const(f, 1.0, ir_shape0(true), loc), ir_shape0(false), loc), loc);
	int nm1 = ir_add(f, IR_MAX, ir_add(f, IR_SUB, n, scal(f, 1.0, loc), loc), scal(f, 1.0, loc), loc);
	return ir_add(f, IR_MUL, v, ir_add(f, IR_DIV, n, nm1, loc), loc);
}

int ir_nn_conv_block(IrFunc *f, int x, int w, int gamma, int beta, int *mean, int *var, SrcSpan loc)
{
	int c = ir_conv2d(f, x, w, 3, 1, 1, loc);
	int n = ir_nn_batchnorm(f, c, gamma, beta, IR_NN_BN_EPS, mean, var, loc);
	if (var)
		*var = unbiased(f, c, *var, loc);
	int r = ir_add(f, IR_RELU, n, -1, loc);
	return ir_pool(f, IR_MAXPOOL, r, -1, 2, 2, loc);
}

int ir_nn_conv_block_eval(IrFunc *f, int x, int w, int gamma, int beta, int mean, int var, SrcSpan loc)
{
	int c = ir_conv2d(f, x, w, 3, 1, 1, loc);
	int n = ir_nn_batchnorm_eval(f, c, gamma, beta, mean, var, IR_NN_BN_EPS, loc);
	int r = ir_add(f, IR_RELU, n, -1, loc);
	return ir_pool(f, IR_MAXPOOL, r, -1, 2, 2, loc);
}

int64_t ir_nn_conv4_side(int64_t side, int blocks)
{
	for (int i = 0; i < blocks; i++)
		side = ir_conv_out_side(side, 2, 2, 0); /* the 3x3 padded conv keeps the side */
	return side;
}
