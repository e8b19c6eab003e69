/* runtime/loss.c -- the meta-loss of one time step and its derivative with respect to the predictions.
 *
 * Derivatives (per row b, output k; D = B_div * Oy for MSE, B_div for SSE and CE):
 *   MSE/SSE: l = (1/D) sum (y - t)^2            dl/dy_k = 2 (y_k - t_k) / D
 *   CE:      l = (1/B) sum_b -sum_k t_k (y_k - lse(y))
 *            dl/dy_j = (p_j sum_k t_k - t_j) / B, p = softmax(y)   (= p - t for a one-hot target)
 * Sums are taken in double; the loss of a step is small next to float rounding of each term. */
#include <math.h>

#include "plastrt.h"

static int argmax(const float *v, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

double pl_loss_step(PlLoss kind, int B, int B_div, int Oy, const float *y, const float *target,
		double weight, float *dy, int *correct)
{
	double total = 0.0;
	int right = 0;
	if (kind == PL_LOSS_CE) {
		for (int b = 0; b < B; b++) {
			const float *yb = y + (size_t)b * Oy, *tb = target + (size_t)b * Oy;
			double mx = yb[0];
			for (int k = 1; k < Oy; k++)
				mx = yb[k] > mx ? yb[k] : mx;
			double z = 0.0, tsum = 0.0, dot = 0.0;
			for (int k = 0; k < Oy; k++) {
				z += exp(yb[k] - mx);
				tsum += tb[k];
				dot += tb[k] * (yb[k] - mx);
			}
			double lse = log(z);
			total += tsum * lse - dot;
			if (dy)
				for (int k = 0; k < Oy; k++) {
					double p = exp(yb[k] - mx - lse);
					dy[(size_t)b * Oy + k] = (float)(weight * (p * tsum - tb[k]) / B_div);
				}
			right += argmax(yb, Oy) == argmax(tb, Oy);
		}
		if (correct)
			*correct = right;
		return total / B_div;
	}
	double D = kind == PL_LOSS_MSE ? (double)B_div * Oy : (double)B_div;
	size_t n = (size_t)B * Oy;
	for (size_t i = 0; i < n; i++) {
		double e = (double)y[i] - (double)target[i];
		total += e * e;
		if (dy)
			dy[i] = (float)(weight * 2.0 * e / D);
	}
	if (correct) {
		for (int b = 0; b < B; b++)
			right += argmax(y + (size_t)b * Oy, Oy) == argmax(target + (size_t)b * Oy, Oy);
		*correct = right;
	}
	return total / D;
}
