/* compiler/ir_nn.h -- builders for the image encoder (Conv-4) out of step-IR ops.
 *
 * Lowering calls these to expand a `conv4` layer (docs/oneshot.md) into ordinary IR: convolution and
 * pooling are ops of ops.def; batch norm is composed from elementwise and sum_to ops, so autodiff
 * differentiates it (to any order) with no rule of its own. Images are per-trial [C,H,W] values.
 */
#ifndef PLASTC_IR_NN_H
#define PLASTC_IR_NN_H

#include "ir.h"

#define IR_NN_BN_EPS 1e-5 /* PyTorch's BatchNorm2d default */

/* Batch norm in training mode: per channel c, with the statistics of the current call's trials
 *   mean_c = (1/(B*H*W)) sum_{b,h,w} x,   var_c = (1/(B*H*W)) sum (x - mean_c)^2   (biased, as PyTorch)
 *   y = (x - mean_c) / sqrt(var_c + eps) * gamma_c + beta_c
 * x [B,C,H,W]; gamma, beta [C,1,1] (unbatched). B is the number of trials of this call (a sum over a
 * batched constant 1, not INV_BATCH): data-parallel row blocks normalise over their own rows. If mean
 * and var are not NULL they receive the [C,1,1] statistics (for the running averages of evaluation). */
int ir_nn_batchnorm(IrFunc *f, int x, int gamma, int beta, double eps, int *mean, int *var, SrcSpan loc);

/* Batch norm in evaluation mode: the same map with given statistics mean, var [C,1,1]. */
int ir_nn_batchnorm_eval(IrFunc *f, int x, int gamma, int beta, int mean, int var, double eps, SrcSpan loc);

/* One Conv-4 block: 3x3 convolution (padding 1, stride 1, no bias) with kernel w [Co,C,9], batch norm
 * (training mode) with gamma, beta [Co,1,1], relu, 2x2 max-pool with stride 2. [B,C,H,W] ->
 * [B,Co,H/2,W/2] (floor). mean/var as in ir_nn_batchnorm (may be NULL). */
int ir_nn_conv_block(IrFunc *f, int x, int w, int gamma, int beta, int *mean, int *var, SrcSpan loc);
/* ir_nn_conv_block's *var (when wanted) is the UNBIASED batch variance (x n/(n-1)), the value PyTorch
 * folds into running_var; the normalisation itself uses the biased one. The evaluation form normalises
 * with given [C,1,1] statistics (the running ones). */
int ir_nn_conv_block_eval(IrFunc *f, int x, int w, int gamma, int beta, int mean, int var, SrcSpan loc);

/* Side of the image after n blocks (each keeps the side, then halves it by floor), 0 if it vanishes:
 * 84 -> 42, 21, 10, 5 (embedding 64*5*5 = 1600); 32 -> 2 (256); 28 -> 1 (64). */
int64_t ir_nn_conv4_side(int64_t side, int blocks);

#endif
