/* runtime/bptt.c -- backpropagation through time over one batch of trials, two memory strategies.
 *
 * The model gives one step forward, S_{t+1}, y_t = F(theta, x_t, S_t), and its VJP, which recomputes the
 * step internally from (theta, x_t, S_t). So the backward pass needs S_t for every t, in reverse order:
 *   adj(S_T) = 0;  for t = T-1 .. 0:  (adj(S_t), theta_bar +=) = VJP_t(adj(S_{t+1}), dL/dy_t)
 * dL/dy_t depends only on y_t and target_t, so it is computed during the forward pass and kept
 * ([T, B, Oy], small): the backward pass never needs y again.
 *
 * STORE keeps S_0 .. S_T: T+1 state sets, one forward and one VJP per step.
 * RECOMPUTE(k) keeps only S_0, S_k, S_2k, ... (ceil(T/k) sets) plus a k+1-set segment buffer; the
 * backward pass walks the segments from the last one, re-runs the forward from the segment's checkpoint
 * to refill the buffer, then runs the VJPs of that segment. Memory ceil(T/k) + k + 1 sets (minimal near
 * k = sqrt(T)), cost one extra forward per step. Re-running the same deterministic code on the same
 * inputs gives the same bits, so both strategies give identical gradients (a test checks it).
 *
 * Every buffer is allocated once in pl_bptt_new and reused by each run. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct PlBptt {
	const PlModel *m;
	int B, T, k, nck;
	int Bcap;         /* rows the buffers were planned for; a run may use fewer (pl_bptt_run_rows) */
	int profile;      /* time the step calls (pl_bptt_set_profile) */
	double t_fwd, t_vjp; /* seconds in step_forward / step_vjp since the last pl_bptt_profile */
	PlBpttStrategy s;
	int nsets;        /* STORE: T+1; RECOMPUTE: nck checkpoints then k+1 segment sets */
	float **sets;     /* [nsets * n_state] */
	float **adj;      /* [2 * n_state]: adjoint ping-pong; a state the model marks bar_in_place has one
	                   * buffer in both halves (adj_shared), which its VJP updates in place */
	size_t *numel;    /* per state tensor, B * per-trial numel */
	float *ybar;      /* [T, B, Oy] */
	float *y;         /* [B, Oy] */
	float *work;
	/* batch-norm running statistics (models with PlTensorDesc.running): nrun floats in all, bnbar[i]
	 * points into bnbuf for those params (NULL for the others) and is step_forward's param_bar; bnhist
	 * [T, nrun] keeps each step's batch values of the last training run (pl_bptt_bn_stats) */
	int nrun;
	float **bnbar;
	float *bnbuf, *bnhist;
};

static size_t round64(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

static size_t set_bytes(const PlModel *m, int B)
{
	size_t s = 0;
	for (int j = 0; j < m->n_state; j++)
		s += round64((size_t)B * (size_t)pl_desc_numel(&m->state[j]) * sizeof(float));
	return s;
}

static int nsets_of(int T, PlBpttStrategy s, int k, int *nck)
{
	if (s == PL_BPTT_STORE) {
		*nck = 0;
		return T + 1;
	}
	*nck = (T + k - 1) / k;
	return *nck + k + 1;
}

size_t pl_bptt_bytes(const PlModel *m, int B, int T, PlBpttStrategy s, int k)
{
	int nck;
	if (k < 1)
		k = 1;
	size_t sets = (size_t)nsets_of(T, s, k, &nck) + 2; /* + adjoints */
	return sets * set_bytes(m, B) + round64((size_t)T * B * m->pred_size * sizeof(float))
		+ round64((size_t)B * m->pred_size * sizeof(float)) + round64(m->work_floats((int)B) * sizeof(float));
}

/* Whether state j's adjoint is one buffer updated in place by step_vjp (PlModel.bar_in_place, ABI 4):
 * that state's VJP loop then reads and writes one buffer instead of reading one and writing another (3
 * memory transfers per element instead of 4, and half the adjoint working set). PLASTC_NO_BAR_IN_PLACE=1
 * keeps two buffers (A/B runs, tests). */
static bool adj_shared(const PlBptt *b, int j)
{
	if (!b->m->bar_in_place || !b->m->bar_in_place[j])
		return false;
	const char *env = getenv("PLASTC_NO_BAR_IN_PLACE");
	return !(env && env[0] && strcmp(env, "0") != 0);
}

void pl_bptt_free(PlBptt *b)
{
	if (!b)
		return;
	int ns = b->m->n_state;
	if (b->sets)
		for (int i = 0; i < b->nsets * ns; i++)
			pl_free(b->sets[i]);
	if (b->adj)
		for (int i = 0; i < 2 * ns; i++)
			if (i < ns || b->adj[i] != b->adj[i - ns])
				pl_free(b->adj[i]);
	pl_free(b->sets);
	pl_free(b->adj);
	pl_free(b->numel);
	pl_free(b->ybar);
	pl_free(b->y);
	pl_free(b->work);
	pl_free(b->bnbar);
	pl_free(b->bnbuf);
	pl_free(b->bnhist);
	pl_free(b);
}

PlBptt *pl_bptt_new(const PlModel *m, int B, int T, PlBpttStrategy s, int k)
{
	if (B < 1 || T < 1)
		return NULL;
	PlBptt *b = pl_alloc(sizeof *b);
	if (!b)
		return NULL;
	b->m = m;
	b->B = B;
	b->Bcap = B;
	b->T = T;
	b->s = s;
	b->k = k < 1 ? 1 : (k > T ? T : k);
	b->nsets = nsets_of(T, s, b->k, &b->nck);
	int ns = m->n_state;
	size_t nptr = (size_t)(ns ? ns : 1);
	b->sets = pl_alloc((size_t)b->nsets * nptr * sizeof(float *));
	b->adj = pl_alloc(2 * nptr * sizeof(float *));
	b->numel = pl_alloc(nptr * sizeof(size_t));
	b->ybar = pl_alloc((size_t)T * B * m->pred_size * sizeof(float));
	b->y = pl_alloc((size_t)B * m->pred_size * sizeof(float));
	b->work = pl_alloc(m->work_floats(B) * sizeof(float));
	if (!b->sets || !b->adj || !b->numel || !b->ybar || !b->y || !b->work)
		goto fail;
	for (int j = 0; j < ns; j++)
		b->numel[j] = (size_t)B * (size_t)pl_desc_numel(&m->state[j]);
	b->nrun = pl_model_running(m);
	if (b->nrun > 0) {
		b->bnbar = pl_alloc((size_t)m->n_params * sizeof(float *));
		b->bnbuf = pl_alloc((size_t)b->nrun * sizeof(float));
		b->bnhist = pl_alloc((size_t)T * b->nrun * sizeof(float));
		if (!b->bnbar || !b->bnbuf || !b->bnhist)
			goto fail;
		size_t off = 0;
		for (int i = 0; i < m->n_params; i++)
			if (m->params[i].running) {
				b->bnbar[i] = b->bnbuf + off;
				off += (size_t)pl_desc_numel(&m->params[i]);
			}
	}
	for (int i = 0; i < b->nsets; i++)
		for (int j = 0; j < ns; j++)
			if (!(b->sets[i * ns + j] = pl_alloc(b->numel[j] * sizeof(float))))
				goto fail;
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < ns; j++) {
			if (i == 1 && adj_shared(b, j)) {
				b->adj[ns + j] = b->adj[j];
				continue;
			}
			if (!(b->adj[i * ns + j] = pl_alloc(b->numel[j] * sizeof(float))))
				goto fail;
		}
	return b;
fail:
	pl_bptt_free(b);
	return NULL;
}

static float *const *set_at(const PlBptt *b, int i)
{
	return b->sets + (size_t)i * b->m->n_state;
}

static void zero_set(const PlBptt *b, float *const *set)
{
	for (int j = 0; j < b->m->n_state; j++)
		memset(set[j], 0, b->numel[j] * sizeof(float));
}

static void copy_set(const PlBptt *b, float *const *dst, float *const *src)
{
	for (int j = 0; j < b->m->n_state; j++)
		memcpy(dst[j], src[j], b->numel[j] * sizeof(float));
}

typedef struct Run {
	PlBptt *b;
	float *const *params;
	const float *x;
	int ld, B_global;
} Run;

/* mode: FWD_EVAL (evaluation: step_forward_eval when the model has one), FWD_TRAIN (training: the batch
 * statistics of step t are kept in bnhist), FWD_AGAIN (training, recomputed for the backward). */
enum { FWD_EVAL, FWD_TRAIN, FWD_AGAIN };

static void forward_step(const Run *r, int t, float *const *sin, float *const *sout, int mode)
{
	PlBptt *b = r->b;
	PlStepArgs a;
	memset(&a, 0, sizeof a);
	a.B = b->B;
	a.B_global = r->B_global;
	a.params = r->params;
	a.x = r->x + (size_t)t * r->ld * b->m->in_size;
	a.state_in = sin;
	a.state_out = sout;
	a.y = b->y;
	a.work = b->work;
	void (*fn)(const PlStepArgs *) = b->m->step_forward;
	if (mode == FWD_EVAL && b->m->step_forward_eval)
		fn = b->m->step_forward_eval;
	else if (b->nrun > 0) {
		memset(b->bnbuf, 0, (size_t)b->nrun * sizeof(float));
		a.param_bar = b->bnbar;
	}
	if (b->profile) {
		double t0 = pl_now();
		fn(&a);
		b->t_fwd += pl_now() - t0;
	} else
		fn(&a);
	if (mode == FWD_TRAIN && b->nrun > 0)
		memcpy(b->bnhist + (size_t)t * b->nrun, b->bnbuf, (size_t)b->nrun * sizeof(float));
}

const float *pl_bptt_bn_stats(const PlBptt *b, int *nrun)
{
	*nrun = b->nrun;
	return b->bnhist;
}

/* snext: the state leaving step t (a step_vjp may read it: compiler/retime.c, role STATE_NEXT) */
static void vjp_step(const Run *r, int t, float *const *sin, float *const *snext, float *const *sout_bar,
		float *const *sin_bar, float *const *grads)
{
	PlBptt *b = r->b;
	PlStepArgs a;
	memset(&a, 0, sizeof a);
	a.B = b->B;
	a.B_global = r->B_global;
	a.params = r->params;
	a.x = r->x + (size_t)t * r->ld * b->m->in_size;
	a.state_in = sin;
	a.state_out = snext;
	a.y_bar = b->ybar + (size_t)t * b->B * b->m->pred_size;
	a.state_out_bar = sout_bar;
	a.state_in_bar = sin_bar;
	a.param_bar = grads;
	a.work = b->work;
	if (b->profile) {
		double t0 = pl_now();
		b->m->step_vjp(&a);
		b->t_vjp += pl_now() - t0;
	} else
		b->m->step_vjp(&a);
}

/* Loss of step t from b->y, and its adjoint into ybar[t] if wanted. */
static void step_loss(const Run *r, int t, const float *target, const float *mask, int want_bar,
		double *loss, double *hits, double *wsum, double *first)
{
	PlBptt *b = r->b;
	int Oy = b->m->pred_size;
	float *ybar = b->ybar + (size_t)t * b->B * Oy;
	if (mask[t] == 0.0f) {
		if (want_bar)
			memset(ybar, 0, (size_t)b->B * Oy * sizeof(float));
		return;
	}
	int correct = 0;
	double l = pl_loss_step(b->m->meta_loss, b->B, r->B_global, Oy, b->y, target + (size_t)t * r->ld * Oy,
		mask[t], want_bar ? ybar : NULL, &correct);
	*loss += mask[t] * l;
	*hits += mask[t] * (double)correct / b->B;
	if (*wsum == 0.0)
		*first = (double)correct / b->B;
	*wsum += mask[t];
}

void pl_bptt_set_profile(PlBptt *b, int on)
{
	b->profile = on;
}

void pl_bptt_profile(PlBptt *b, double *fwd, double *vjp)
{
	*fwd += b->t_fwd;
	*vjp += b->t_vjp;
	b->t_fwd = b->t_vjp = 0.0;
}

PlBpttResult pl_bptt_run(PlBptt *b, float *const *params, const float *x, const float *target,
		const float *mask, int ld, int B_global, float *const *grads)
{
	return pl_bptt_run_rows(b, b->Bcap, params, x, target, mask, ld, B_global, grads, 0);
}

/* The buffers hold Bcap rows; a run on rows <= Bcap uses their first rows (the sets are per tensor, so
 * only the element counts change). */
static void set_rows(PlBptt *b, int rows)
{
	b->B = rows;
	for (int j = 0; j < b->m->n_state; j++)
		b->numel[j] = (size_t)rows * (size_t)pl_desc_numel(&b->m->state[j]);
}

PlBpttResult pl_bptt_run_rows(PlBptt *b, int rows, float *const *params, const float *x, const float *target,
		const float *mask, int ld, int B_global, float *const *grads, int accumulate)
{
	const PlModel *m = b->m;
	if (rows != b->B)
		set_rows(b, rows < 1 || rows > b->Bcap ? b->Bcap : rows);
	int T = b->T, ns = m->n_state;
	Run r = {b, params, x, ld, B_global};
	double loss = 0.0, hits = 0.0, wsum = 0.0, first = 0.0;
	PlBpttResult res = {0.0, 0.0, 0.0, 1};

	if (!grads) {
		/* Forward only: two state sets, ping-pong. */
		zero_set(b, set_at(b, 0));
		for (int t = 0; t < T; t++) {
			forward_step(&r, t, set_at(b, t & 1), set_at(b, (t + 1) & 1), FWD_EVAL);
			step_loss(&r, t, target, mask, 0, &loss, &hits, &wsum, &first);
		}
	} else if (b->s == PL_BPTT_STORE) {
		zero_set(b, set_at(b, 0));
		for (int t = 0; t < T; t++) {
			forward_step(&r, t, set_at(b, t), set_at(b, t + 1), FWD_TRAIN);
			step_loss(&r, t, target, mask, 1, &loss, &hits, &wsum, &first);
		}
	} else {
		/* Forward through the segments, keeping only each segment's entering state. */
		int k = b->k;
		float *const *seg0 = set_at(b, b->nck);
		zero_set(b, set_at(b, 0));
		for (int c = 0; c < b->nck; c++) {
			int t0 = c * k, len = T - t0 < k ? T - t0 : k;
			copy_set(b, seg0, set_at(b, c));
			for (int i = 0; i < len; i++) {
				forward_step(&r, t0 + i, set_at(b, b->nck + i), set_at(b, b->nck + i + 1), FWD_TRAIN);
				step_loss(&r, t0 + i, target, mask, 1, &loss, &hits, &wsum, &first);
			}
			if (c + 1 < b->nck)
				copy_set(b, set_at(b, c + 1), set_at(b, b->nck + len));
		}
	}
	res.loss = loss;
	res.metric = m->meta_loss == PL_LOSS_CE ? (wsum > 0 ? hits / wsum : 0.0) : loss;
	res.metric_first = m->meta_loss == PL_LOSS_CE ? first : loss;
	res.finite = isfinite(loss);
	if (!grads)
		return res;

	if (!accumulate)
		for (int i = 0; i < m->n_params; i++)
			memset(grads[i], 0, (size_t)pl_desc_numel(&m->params[i]) * sizeof(float));
	float *const *cur = b->adj, *const *nxt = b->adj + ns;
	zero_set(b, cur);
	if (b->s == PL_BPTT_STORE) {
		for (int t = T - 1; t >= 0; t--) {
			vjp_step(&r, t, set_at(b, t), set_at(b, t + 1), cur, nxt, grads);
			float *const *tmp = cur;
			cur = nxt;
			nxt = tmp;
		}
		return res;
	}
	int k = b->k;
	for (int c = b->nck - 1; c >= 0; c--) {
		int t0 = c * k, len = T - t0 < k ? T - t0 : k;
		copy_set(b, set_at(b, b->nck), set_at(b, c));
		/* every step of the segment, the last one too: its VJP reads the state it leaves */
		for (int i = 0; i < len; i++)
			forward_step(&r, t0 + i, set_at(b, b->nck + i), set_at(b, b->nck + i + 1), FWD_AGAIN);
		for (int i = len - 1; i >= 0; i--) {
			vjp_step(&r, t0 + i, set_at(b, b->nck + i), set_at(b, b->nck + i + 1), cur, nxt, grads);
			float *const *tmp = cur;
			cur = nxt;
			nxt = tmp;
		}
	}
	return res;
}
