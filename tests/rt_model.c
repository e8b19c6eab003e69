/* tests/rt_model.c -- a plastic linear layer with a Hebbian trace, written by hand against the ABI.
 *
 * Per trial, input x [I], trace H [I, O] (the state, zero at t = 0):
 *   a_j = b_j + sum_i x_i (W_ij + A_ij H_ij)      u = tanh(a)      y = g * u
 *   s = sigmoid(eta)                                H'_ij = (1 - s) H_ij + s x_i y_j
 * Parameters: cell.w [I,O], cell.alpha [I,O], cell.b [O], cell.eta [1] (trainable), head.g [O] (fixed).
 * VJP, given ybar and H'bar:
 *   ytot_j = ybar_j + s sum_i H'bar_ij x_i          (y feeds the output and the trace)
 *   sbar   = sum_ij H'bar_ij (x_i y_j - H_ij)        etabar = sbar s (1 - s)
 *   gbar_j = ytot_j u_j     abar_j = ytot_j g_j (1 - u_j^2)
 *   bbar_j = abar_j   Wbar_ij = x_i abar_j   Abar_ij = x_i H_ij abar_j
 *   Hbar_ij = (1 - s) H'bar_ij + x_i A_ij abar_j */
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "rt_model.h"

long rt_model_nan_after = -1;
long rt_model_sleep_us = 0;

static int I_, O_;
static PlTensorDesc params_[5], state_[1];
static PlModel model_;
static long vjp_calls;

enum { P_W, P_A, P_B, P_ETA, P_G };

static size_t work_floats(int B)
{
	(void)B;
	return (size_t)3 * O_;
}

static void forward_row(const PlStepArgs *a, int r, float *u, float *y)
{
	const float *x = a->x + (size_t)r * I_;
	const float *H = a->state_in[0] + (size_t)r * I_ * O_;
	const float *W = a->params[P_W], *A = a->params[P_A], *b = a->params[P_B], *g = a->params[P_G];
	for (int j = 0; j < O_; j++) {
		float acc = b[j];
		for (int i = 0; i < I_; i++)
			acc += x[i] * (W[i * O_ + j] + A[i * O_ + j] * H[i * O_ + j]);
		u[j] = tanhf(acc);
		y[j] = g[j] * u[j];
	}
}

static float sigmoidf_(float v)
{
	return 1.0f / (1.0f + expf(-v));
}

static void step_forward(const PlStepArgs *a)
{
	if (rt_model_sleep_us > 0)
		usleep((useconds_t)rt_model_sleep_us);
	float s = sigmoidf_(a->params[P_ETA][0]);
	for (int r = 0; r < a->B; r++) {
		float *u = a->work, *y = a->y + (size_t)r * O_;
		forward_row(a, r, u, y);
		if (a->o)
			for (int j = 0; j < O_; j++)
				a->o[(size_t)r * O_ + j] = y[j];
		const float *x = a->x + (size_t)r * I_;
		const float *H = a->state_in[0] + (size_t)r * I_ * O_;
		float *Hn = a->state_out[0] + (size_t)r * I_ * O_;
		for (int i = 0; i < I_; i++)
			for (int j = 0; j < O_; j++)
				Hn[i * O_ + j] = (1.0f - s) * H[i * O_ + j] + s * x[i] * y[j];
	}
}

static void step_vjp(const PlStepArgs *a)
{
	float s = sigmoidf_(a->params[P_ETA][0]);
	const float *A = a->params[P_A], *g = a->params[P_G];
	float *Wb = a->param_bar[P_W], *Ab = a->param_bar[P_A], *bb = a->param_bar[P_B];
	float *etab = a->param_bar[P_ETA], *gb = a->param_bar[P_G];
	for (int r = 0; r < a->B; r++) {
		float *u = a->work, *y = a->work + O_, *ab = a->work + 2 * O_;
		forward_row(a, r, u, y);
		const float *x = a->x + (size_t)r * I_;
		const float *H = a->state_in[0] + (size_t)r * I_ * O_;
		const float *Hnb = a->state_out_bar[0] + (size_t)r * I_ * O_;
		float *Hb = a->state_in_bar[0] + (size_t)r * I_ * O_;
		const float *yb = a->y_bar + (size_t)r * O_;
		float sbar = 0.0f;
		for (int j = 0; j < O_; j++) {
			float ytot = yb[j];
			for (int i = 0; i < I_; i++) {
				ytot += s * Hnb[i * O_ + j] * x[i];
				sbar += Hnb[i * O_ + j] * (x[i] * y[j] - H[i * O_ + j]);
			}
			gb[j] += ytot * u[j];
			ab[j] = ytot * g[j] * (1.0f - u[j] * u[j]);
			bb[j] += ab[j];
		}
		etab[0] += sbar * s * (1.0f - s);
		for (int i = 0; i < I_; i++)
			for (int j = 0; j < O_; j++) {
				Wb[i * O_ + j] += x[i] * ab[j];
				Ab[i * O_ + j] += x[i] * H[i * O_ + j] * ab[j];
				Hb[i * O_ + j] = (1.0f - s) * Hnb[i * O_ + j] + x[i] * A[i * O_ + j] * ab[j];
			}
	}
	vjp_calls++;
	if (rt_model_nan_after >= 0 && vjp_calls > rt_model_nan_after)
		Ab[0] = NAN;
}

static void set_desc(PlTensorDesc *d, const char *name, int rank, int64_t d0, int64_t d1, PlInit init, double a,
		double b, int trainable)
{
	d->name = name;
	d->rank = rank;
	d->dims[0] = d0;
	d->dims[1] = d1;
	d->dims[2] = 0;
	d->init = init;
	d->init_a = a;
	d->init_b = b;
	d->trainable = trainable;
}

const PlModel *rt_model(int in, int out, PlLoss loss)
{
	I_ = in;
	O_ = out;
	vjp_calls = 0;
	set_desc(&params_[P_W], "cell.w", 2, in, out, PL_INIT_UNIFORM, 1.0 / sqrt((double)in), 0, 1);
	set_desc(&params_[P_A], "cell.alpha", 2, in, out, PL_INIT_UNIFORM_AB, -1.0, 1.0, 1);
	set_desc(&params_[P_B], "cell.b", 1, out, 0, PL_INIT_UNIFORM, 0.1, 0, 1);
	set_desc(&params_[P_ETA], "cell.eta", 1, 1, 0, PL_INIT_CONST, 0.0, 0, 1);
	set_desc(&params_[P_G], "head.g", 1, out, 0, PL_INIT_CONST, 1.0, 0, 0);
	set_desc(&state_[0], "cell.hebb~", 2, in, out, PL_INIT_ZERO, 0, 0, 0);
	model_.abi_version = PL_ABI_VERSION;
	model_.name = "rt_hebb";
	model_.hash = "00000000000000aa";
	model_.source = "tests/rt_model.c";
	model_.settings = "";
	model_.in_size = in;
	model_.pred_size = out;
	model_.out_size = out;
	model_.meta_loss = loss;
	model_.n_params = 5;
	model_.params = params_;
	model_.n_state = 1;
	model_.state = state_;
	model_.work_floats = work_floats;
	model_.step_forward = step_forward;
	model_.step_vjp = step_vjp;
	return &model_;
}
