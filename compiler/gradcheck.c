/* compiler/gradcheck.c -- derivative checks against central finite differences in float64.
 *
 * Both orders compare an analytic gradient a = ∂f/∂θ with the central difference
 *     D(h) = (f(θ + h e_i) − f(θ − h e_i)) / 2h = f' + f'''h²/6 + O(h⁴),
 * extrapolated (Richardson) to fd = (4 D(h/2) − D(h)) / 3 = f' + O(h⁴). Its error is then dominated by
 * the rounding of the values of f, about ε_f/h where ε_f is the absolute rounding error of one
 * evaluation: a whole trial sums thousands of terms, so ε_f is some 1e3 ulps of the loss, and with
 * h = 1e-6 (plain central differences) it reached 1e-6 of the gradient scale of small tensors (LSTM
 * plasticity coefficients). h = 1e-4 with extrapolation keeps both errors near 1e-8. A ReLU, step, abs
 * or max kink closer than h to the point makes one quotient meaningless (it measures the slopes of two
 * pieces); an element whose quotient disagrees is therefore measured again with h/8 and 4h and the best
 * of the three is kept. A wrong derivative disagrees at every step size, a kink at most at one or two.
 *
 * Relative error of an element: |a − fd| / scale, scale = max(max |a| over the whole tensor, floor) with
 * floor = 1e-3 × the largest |a| of any tensor: a tensor whose gradient is exactly zero (nothing depends
 * on it) is then measured against the others instead of against its own rounding noise.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "gradcheck.h"

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		ir_fatal("out of memory");
	return p;
}

void gc_options_default(GcOptions *o)
{
	o->K = 16;
	o->seed = 0;
	o->tol = 1e-6;
	o->h = 1e-4;
	o->out = stdout;
}

/* ---- random data ---- */

static PlTensorDesc desc_of(const ProgTensor *t)
{
	PlTensorDesc d;
	memset(&d, 0, sizeof d);
	d.name = t->name;
	d.rank = t->shape.rank;
	for (int k = 0; k < t->shape.rank && k < PL_MAX_RANK; k++)
		d.dims[k] = t->shape.d[k];
	d.init = t->init;
	d.init_a = t->init_a;
	d.init_b = t->init_b;
	d.trainable = t->trainable;
	d.running = t->running;
	return d;
}

GcData *gc_data_new(const Program *p, uint64_t seed, int T, int B)
{
	GcData *d = xcalloc(1, sizeof *d);
	d->n_params = p->n_params;
	d->T = T;
	d->B = B;
	d->I = p->in_size;
	d->Oy = p->pred_size;
	d->params = xcalloc((size_t)p->n_params, sizeof *d->params);
	PlRng r;
	for (int j = 0; j < p->n_params; j++) {
		int64_t n = ir_shape_numel(p->params[j].shape);
		d->params[j] = xcalloc((size_t)n, sizeof **d->params);
		PlTensorDesc desc = desc_of(&p->params[j]);
		pl_init_tensor_f64(&desc, seed, d->params[j]);
		pl_rng_seed2(&r, seed ^ 0x6772616463686bULL, pl_hash_str(p->params[j].name));
		for (int64_t e = 0; e < n; e++)
			d->params[j][e] += 0.1 * pl_rng_normal(&r);
	}
	size_t nx = (size_t)T * (size_t)B * (size_t)d->I, ny = (size_t)T * (size_t)B * (size_t)d->Oy;
	d->x = xcalloc(nx, sizeof *d->x);
	d->target = xcalloc(ny, sizeof *d->target);
	d->mask = xcalloc((size_t)T, sizeof *d->mask);
	pl_rng_seed2(&r, seed, 0x6261746368ULL); /* "batch" */
	for (size_t i = 0; i < nx; i++)
		d->x[i] = pl_rng_normal(&r);
	if (p->meta_loss == PL_LOSS_CE) {
		for (size_t row = 0; row < (size_t)T * (size_t)B; row++)
			d->target[row * (size_t)d->Oy + pl_rng_below(&r, (uint64_t)d->Oy)] = 1.0;
	} else {
		for (size_t i = 0; i < ny; i++)
			d->target[i] = pl_rng_normal(&r);
	}
	for (int t = 0; t < T; t++)
		d->mask[t] = pl_rng_uniform(&r, 0.5, 1.5) / T;
	return d;
}

void gc_data_free(GcData *d)
{
	if (!d)
		return;
	for (int j = 0; j < d->n_params; j++)
		free(d->params[j]);
	free(d->params);
	free(d->x);
	free(d->target);
	free(d->mask);
	free(d);
}

TrialBatch gc_data_batch(const GcData *d)
{
	TrialBatch b = {.T = d->T, .B = d->B, .x = d->x, .target = d->target, .mask = d->mask};
	return b;
}

/* ---- one tensor against finite differences ---- */

/* The function under test at the current point; false after an error (printed). */
typedef bool (*GcEval)(void *ctx, double *value);

typedef struct GcTensor {
	const char *what;  /* "param" or "state" */
	const char *name;
	IrShape shape;
	double *x;         /* the point, perturbed in place and restored */
	const double *a;   /* analytic gradient, same layout */
	int64_t n;
} GcTensor;

static double max_abs(const double *a, int64_t n)
{
	double m = 0;
	for (int64_t i = 0; i < n; i++)
		m = fmax(m, fabs(a[i]));
	return m;
}

static bool central1(GcEval f, void *ctx, double *xi, double h, double *fd)
{
	double x0 = *xi, fp, fm;
	*xi = x0 + h;
	bool ok = f(ctx, &fp);
	*xi = x0 - h;
	ok = ok && f(ctx, &fm);
	*xi = x0;
	*fd = (fp - fm) / (2 * h);
	return ok;
}

/* Richardson's extrapolation of two central differences: D(h) = f' + c h² + O(h⁴), so
 * (4 D(h/2) − D(h)) / 3 = f' + O(h⁴). */
static bool central(GcEval f, void *ctx, double *xi, double h, double *fd)
{
	double d1, d2;
	if (!central1(f, ctx, xi, h, &d1) || !central1(f, ctx, xi, h / 2, &d2))
		return false;
	*fd = (4 * d2 - d1) / 3;
	return true;
}

/* Checks up to o->K elements of t, chosen by a partial Fisher-Yates shuffle seeded by (seed, name).
 * Returns the max relative error, or -1 after an evaluation error. */
static double check_tensor(GcEval f, void *ctx, const GcTensor *t, double floor, const GcOptions *o,
	int *nchecked)
{
	int64_t n = t->n, k = n < o->K ? n : o->K;
	int64_t *idx = xcalloc((size_t)n, sizeof *idx);
	for (int64_t i = 0; i < n; i++)
		idx[i] = i;
	PlRng r;
	pl_rng_seed2(&r, o->seed, pl_hash_str(t->name));
	for (int64_t i = 0; i < k; i++) {
		int64_t j = i + (int64_t)pl_rng_below(&r, (uint64_t)(n - i));
		int64_t s = idx[i];
		idx[i] = idx[j];
		idx[j] = s;
	}
	double scale = fmax(max_abs(t->a, n), floor), worst = 0;
	if (scale == 0)
		scale = 1; /* every gradient of the model is zero: compare absolutely */
	for (int64_t i = 0; i < k; i++) {
		int64_t e = idx[i];
		double fd, err;
		if (!central(f, ctx, &t->x[e], o->h, &fd)) {
			free(idx);
			return -1;
		}
		err = fabs(t->a[e] - fd) / scale;
		if (err > o->tol) { /* a kink within h? (see the header comment) */
			const double alt[2] = {o->h / 8, o->h * 4};
			for (int m = 0; m < 2; m++) {
				if (!central(f, ctx, &t->x[e], alt[m], &fd)) {
					free(idx);
					return -1;
				}
				err = fmin(err, fabs(t->a[e] - fd) / scale);
			}
		}
		worst = fmax(worst, err);
	}
	free(idx);
	*nchecked = (int)k;
	return worst;
}

/* Checks every tensor; prints one line per tensor and returns the number of failures or -1. */
static int check_all(GcEval f, void *ctx, const GcTensor *ts, int nt, const char *order, const GcOptions *o)
{
	double gmax = 0;
	for (int i = 0; i < nt; i++)
		gmax = fmax(gmax, max_abs(ts[i].a, ts[i].n));
	int fails = 0;
	double worst = 0;
	for (int i = 0; i < nt; i++) {
		int k = 0;
		double e = check_tensor(f, ctx, &ts[i], 1e-3 * gmax, o, &k);
		if (e < 0)
			return -1;
		bool pass = e < o->tol;
		fails += !pass;
		worst = fmax(worst, e);
		if (o->out) {
			char sh[64];
			ir_shape_str(ts[i].shape, sh, sizeof sh);
			fprintf(o->out, "order %s  %s %-22s %-12s %4d/%-6lld max rel err %.2e  %s\n", order, ts[i].what,
				ts[i].name, sh, k, (long long)ts[i].n, e, pass ? "PASS" : "FAIL");
		}
	}
	if (o->out)
		fprintf(o->out, "order %s: %d tensors, max rel err %.2e (tol %.1e): %s\n", order, nt, worst, o->tol,
			fails ? "FAIL" : "PASS");
	return fails;
}

/* ---- order 1: the meta-loss of a trial ---- */

typedef struct TrialCtx {
	const Program *p;
	double **params;
	TrialBatch b;
	FILE *err;
} TrialCtx;

static bool eval_trial(void *vctx, double *value)
{
	TrialCtx *c = vctx;
	return interp_trial(c->p, (const double *const *)c->params, &c->b, value, NULL, c->err) == 0;
}

int gc_trial(const Program *p, const GcData *d, const GcOptions *o, FILE *err)
{
	TrialCtx c = {.p = p, .params = d->params, .b = gc_data_batch(d), .err = err};
	double **g = xcalloc((size_t)p->n_params, sizeof *g);
	GcTensor *ts = xcalloc((size_t)p->n_params, sizeof *ts);
	for (int j = 0; j < p->n_params; j++)
		g[j] = xcalloc((size_t)ir_shape_numel(p->params[j].shape), sizeof **g);
	double loss;
	int rc = -1;
	if (interp_trial(p, (const double *const *)d->params, &c.b, &loss, g, err) != 0)
		goto out;
	if (o->out)
		fprintf(o->out, "order 1: meta-loss %.10g over T=%d, B=%d; d loss / d parameter (BPTT) vs central "
			"differences, h=%.0e\n", loss, d->T, d->B, o->h);
	for (int j = 0; j < p->n_params; j++)
		ts[j] = (GcTensor){"param", p->params[j].name, p->params[j].shape, d->params[j], g[j],
			ir_shape_numel(p->params[j].shape)};
	rc = check_all(eval_trial, &c, ts, p->n_params, "1", o);
out:
	for (int j = 0; j < p->n_params; j++)
		free(g[j]);
	free(g);
	free(ts);
	return rc;
}

/* ---- order 2: the inner gradient of gradient rules ---- */

/* A copy of fwd whose only output is c = Σ_k ⟨U_k, Δ_k⟩, the U_k being new inputs (role STATE_BAR,
 * index k: any role will do, the caller binds inputs by position). Returns NULL if no Δ is found. */
static IrFunc *contracted(const IrFunc *fwd, const char *const *names, int nd, int *c_node, FILE *out, FILE *err)
{
	IrFunc *g = ir_func_clone(fwd, "gradcheck_inner");
	for (int k = 0; k < g->nouts; k++)
		free(g->outs[k].name);
	g->nouts = 0;
	SrcSpan none = {0};
	int c = -1, n0 = g->n;
	for (int k = 0; k < nd; k++) {
		int dn = -1;
		for (int i = 0; i < n0 && dn < 0; i++)
			if (g->nodes[i].name && strcmp(g->nodes[i].name, names[k]) == 0)
				dn = i;
		if (dn < 0) {
			/* Two tensors can share one Δ node: the biases b_hh and b_ih of an RNN feed the same
			 * pre-activation, so ad_vjp gives them the same adjoint node, and lower.c's second
			 * ir_set_name renames it. Its value is contracted under the other name. */
			if (out)
				fprintf(out, "order 2: %s shares its node with another tensor's delta (checked there)\n",
					names[k]);
			continue;
		}
		char nm[512];
		snprintf(nm, sizeof nm, "u.%s", names[k]);
		int u = ir_input(g, IR_ROLE_STATE_BAR, k, g->nodes[dn].shape, nm);
		int t = ir_add(g, IR_MUL, dn, u, none);
		t = ir_sum_to(g, t, ir_shape0(false), none);
		c = c < 0 ? t : ir_add(g, IR_ADD, c, t, none);
	}
	if (c < 0) {
		if (err)
			fprintf(err, "plastc: internal error: gradcheck: no delta node of a gradient rule in %s\n", fwd->name);
		ir_func_free(g);
		return NULL;
	}
	*c_node = c;
	return g;
}

typedef struct InnerCtx {
	const IrFunc *g0; /* the contraction only */
	int B;
	double **params;
	double **in;
	FILE *err;
} InnerCtx;

static bool eval_inner(void *vctx, double *value)
{
	InnerCtx *c = vctx;
	double *out[1] = {value};
	return interp_run(c->g0, c->B, c->B, (const double *const *)c->params, (const double *const *)c->in, out, c->err) == 0;
}

static int64_t port_len(const IrFunc *f, int node, int B)
{
	IrShape s = f->nodes[node].shape;
	return ir_shape_numel(s) * (s.batch ? B : 1);
}

int gc_inner(const Program *p, const char *const *delta_names, int ndelta, const GcData *d,
	const GcOptions *o, FILE *err)
{
	if (ndelta <= 0)
		return 0;
	int c0;
	IrFunc *g0 = contracted(p->fwd, delta_names, ndelta, &c0, o->out, err);
	if (!g0)
		return -1;
	ir_output(g0, IR_ROLE_SCALAR, 0, c0, "c");
	/* g: the same contraction, then its reverse mode w.r.t. every PARAM node and every state input */
	int c;
	IrFunc *g = contracted(p->fwd, delta_names, ndelta, &c, NULL, err);
	if (!g) {
		ir_func_free(g0);
		return -1;
	}
	int n0 = g->n, S = p->n_state, P = p->n_params;
	int *wrt = xcalloc((size_t)(n0 + S), sizeof *wrt), *wbar = xcalloc((size_t)(n0 + S), sizeof *wbar);
	int nw = 0;
	for (int i = 0; i < n0; i++)
		if (g->nodes[i].op == IR_PARAM)
			wrt[nw++] = i;
	int npn = nw;
	int *state_node = xcalloc((size_t)S, sizeof *state_node);
	for (int s = 0; s < S; s++) {
		state_node[s] = -1;
		for (int k = 0; k < g->nins; k++)
			if (g->ins[k].role == IR_ROLE_STATE && g->ins[k].index == s)
				state_node[s] = g->ins[k].node;
		if (state_node[s] >= 0)
			wrt[nw++] = state_node[s];
	}
	SrcSpan none = {0};
	int one = ir_const(g, 1.0, ir_shape0(false), none);
	int rc = -1;
	double **params = d->params;
	double **inbuf = NULL, **outbuf = NULL;
	GcTensor *ts = NULL;
	if (ad_vjp(g, 1, &c, &one, nw, wrt, wbar, err) != 0)
		goto out;
	ir_output(g, IR_ROLE_SCALAR, 0, c, "c");
	for (int j = 0; j < P; j++) {
		int acc = -1;
		for (int k = 0; k < npn; k++)
			if (g->nodes[wrt[k]].a[0] == j)
				acc = acc < 0 ? wbar[k] : ir_add(g, IR_ADD, acc, wbar[k], none);
		if (acc < 0)
			acc = ir_const(g, 0.0, p->params[j].shape, none);
		ir_output(g, IR_ROLE_PARAM_BAR, j, acc, p->params[j].name);
	}
	for (int s = 0, w = npn; s < S; s++) {
		int node = state_node[s] >= 0 ? wbar[w++] : ir_const(g, 0.0, p->state[s].shape, none);
		ir_output(g, IR_ROLE_STATE_BAR, s, node, p->state[s].name);
	}
	if (ir_verify(g, err) != 0)
		goto out;

	/* inputs: x ~ N(0,1), states ~ N(0, 0.5^2), U ~ N(0,1) */
	int B = d->B;
	inbuf = xcalloc((size_t)g->nins, sizeof *inbuf);
	PlRng r;
	pl_rng_seed2(&r, o->seed, 0x696e6e6572ULL); /* "inner" */
	for (int k = 0; k < g->nins; k++) {
		int64_t n = port_len(g, g->ins[k].node, B);
		inbuf[k] = xcalloc((size_t)n, sizeof **inbuf);
		double sd = g->ins[k].role == IR_ROLE_STATE ? 0.5 : 1.0;
		for (int64_t e = 0; e < n; e++)
			inbuf[k][e] = sd * pl_rng_normal(&r);
	}
	outbuf = xcalloc((size_t)g->nouts, sizeof *outbuf);
	for (int k = 0; k < g->nouts; k++)
		outbuf[k] = xcalloc((size_t)port_len(g, g->outs[k].node, B), sizeof **outbuf);
	if (interp_run(g, B, B, (const double *const *)params, (const double *const *)inbuf, outbuf, err) != 0)
		goto out;
	if (o->out) {
		fprintf(o->out, "order 2: c = sum of <U, delta> over");
		for (int k = 0; k < ndelta; k++)
			fprintf(o->out, " %s", delta_names[k]);
		fprintf(o->out, " = %.10g (B=%d); dc / d parameter and dc / d state input (ad_vjp of the inner "
			"gradient) vs central differences, h=%.0e\n", outbuf[0][0], B, o->h);
	}
	ts = xcalloc((size_t)(P + S), sizeof *ts);
	int nt = 0;
	for (int k = 0; k < g->nouts; k++) {
		const IrPort *pt = &g->outs[k];
		if (pt->role == IR_ROLE_PARAM_BAR) {
			const ProgTensor *pr = &p->params[pt->index];
			ts[nt++] = (GcTensor){"param", pr->name, pr->shape, params[pt->index], outbuf[k],
				ir_shape_numel(pr->shape)};
		} else if (pt->role == IR_ROLE_STATE_BAR && state_node[pt->index] >= 0) {
			int in = -1;
			for (int i = 0; i < g->nins; i++)
				if (g->ins[i].node == state_node[pt->index])
					in = i;
			const ProgTensor *st = &p->state[pt->index];
			ts[nt++] = (GcTensor){"state", st->name, st->shape, inbuf[in], outbuf[k],
				port_len(g, state_node[pt->index], B)};
		}
	}
	/* g0 has the inputs of g in the same order (both are the clone plus the U inputs) */
	InnerCtx ctx = {.g0 = g0, .B = B, .params = params, .in = inbuf, .err = err};
	rc = check_all(eval_inner, &ctx, ts, nt, "2", o);
out:
	if (inbuf)
		for (int k = 0; k < g->nins; k++)
			free(inbuf[k]);
	if (outbuf)
		for (int k = 0; k < g->nouts; k++)
			free(outbuf[k]);
	free(inbuf);
	free(outbuf);
	free(ts);
	free(wrt);
	free(wbar);
	free(state_node);
	ir_func_free(g);
	ir_func_free(g0);
	return rc;
}
