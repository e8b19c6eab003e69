/* compiler/interp.c -- the reference interpreter: every node evaluated into its own double array.
 *
 * Layout: a value of shape [B?, d0, d1, d2] is a dense row-major array with the batch index outermost
 * (B*numel doubles when batched, numel otherwise), as in the runtime ABI. Broadcasting is done with
 * strides: an operand's stride is 0 along every output dim where the operand has extent 1 or no dim
 * at all (right-aligned per-trial dims; the batch dim separately).
 */
#include "interp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The index space of a value: dim[0] is the batch count (B or 1), dim[1..rank] the per-trial dims. */
typedef struct Space {
	int nd;
	int64_t dim[IR_MAX_RANK + 1];
	int64_t total;
} Space;

static Space space_of(IrShape s, int B)
{
	Space sp;
	sp.nd = s.rank + 1;
	sp.dim[0] = s.batch ? B : 1;
	for (int i = 0; i < s.rank; i++)
		sp.dim[i + 1] = s.d[i];
	sp.total = 1;
	for (int i = 0; i < sp.nd; i++)
		sp.total *= sp.dim[i];
	return sp;
}

/* Strides of a value of shape s read (or written) as if it had the extents of sp; s must broadcast
 * to sp (right-aligned). */
static void strides_in(IrShape s, const Space *sp, int64_t *st)
{
	int64_t acc = 1;
	for (int k = sp->nd - 1; k >= 1; k--) {
		int j = s.rank - (sp->nd - k); /* operand dim aligned with space dim k */
		if (j >= 0) {
			st[k] = s.d[j] == 1 ? 0 : acc;
			acc *= s.d[j];
		} else {
			st[k] = 0;
		}
	}
	st[0] = s.batch ? acc : 0;
}

/* odometer step over sp; offsets o[0..nops) advance by their strides */
static inline void advance(const Space *sp, int64_t *idx, int nops, int64_t *o, int64_t st[][IR_MAX_RANK + 1])
{
	for (int k = sp->nd - 1; k >= 0; k--) {
		idx[k]++;
		for (int q = 0; q < nops; q++)
			o[q] += st[q][k];
		if (idx[k] < sp->dim[k])
			return;
		for (int q = 0; q < nops; q++)
			o[q] -= st[q][k] * sp->dim[k];
		idx[k] = 0;
	}
}

static int64_t value_len(IrShape s, int B)
{
	return (s.batch ? B : 1) * ir_shape_numel(s);
}

double interp_ew1(IrOp op, double x)
{
	switch (op) {
	case IR_NEG: return -x;
	case IR_EXP: return exp(x);
	case IR_LOG: return log(x);
	case IR_SQRT: return sqrt(x);
	case IR_SQUARE: return x * x;
	case IR_ABS: return fabs(x);
	case IR_RELU: return x > 0 ? x : 0;
	case IR_TANH: return tanh(x);
	case IR_SIGMOID: return 1.0 / (1.0 + exp(-x));
	case IR_STEP: return x > 0 ? 1.0 : 0.0;
	case IR_SIGN: return x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
	default: return NAN;
	}
}

double interp_ew2(IrOp op, double a, double b)
{
	switch (op) {
	case IR_ADD: return a + b;
	case IR_SUB: return a - b;
	case IR_MUL: return a * b;
	case IR_DIV: return a / b;
	/* ties go to b, matching the VJP (step(a-b) is 0 at a == b) */
	case IR_MAX: return a > b ? a : b;
	case IR_MIN: return a < b ? a : b;
	default: return NAN;
	}
}

/* rows x cols of a MATMUL operand with the batch resolved to B */
static void mat_dims(IrShape s, int B, int64_t *r, int64_t *c)
{
	if (s.batch) {
		*r = B;
		*c = s.d[0];
	} else {
		*r = s.d[0];
		*c = s.d[1];
	}
}

/* The convolution family by direct loops over T(g, x, w) = sum g[co,i,j] x[c, s*i+u-p, s*j+v-p] w[co,c,u*k+v]
 * (ops.def): every op visits the same (co, c, i, j, u, v) terms and accumulates the product of two of
 * the three tensors into the third. Operands without the batch flag are shared by every trial. */
static void eval_conv(IrOp op, const int64_t *a, IrShape so, IrShape sx, IrShape sy, int B, const double *x,
	const double *y, double *out)
{
	int64_t k = a[0], s = a[1], p = a[2];
	/* name the three tensors: img [C,H,W], ker [Co,C,k*k], og [Co,Ho,Wo] */
	IrShape si, sk, sg;
	switch (op) {
	case IR_CONV2D: si = sx; sk = sy; sg = so; break;
	case IR_CONV2D_T: sg = sx; sk = sy; si = so; break;
	default: si = sx; sg = sy; sk = so; break;
	}
	int64_t C = si.d[0], H = si.d[1], W = si.d[2], Co = sk.d[0], Ho = sg.d[1], Wo = sg.d[2];
	int nb = so.batch ? B : 1;
	memset(out, 0, sizeof *out * (size_t)(nb * ir_shape_numel(so)));
	for (int b = 0; b < nb; b++) {
		const double *xb = x + (sx.batch ? (int64_t)b * ir_shape_numel(sx) : 0);
		const double *yb = y + (sy.batch ? (int64_t)b * ir_shape_numel(sy) : 0);
		double *ob = out + (int64_t)b * ir_shape_numel(so);
		for (int64_t co = 0; co < Co; co++)
			for (int64_t c = 0; c < C; c++)
				for (int64_t u = 0; u < k; u++)
					for (int64_t v = 0; v < k; v++) {
						int64_t ik = (co * C + c) * k * k + u * k + v;
						for (int64_t i = 0; i < Ho; i++) {
							int64_t h = s * i + u - p;
							if (h < 0 || h >= H)
								continue;
							for (int64_t j = 0; j < Wo; j++) {
								int64_t w = s * j + v - p;
								if (w < 0 || w >= W)
									continue;
								int64_t ii = (c * H + h) * W + w, ig = (co * Ho + i) * Wo + j;
								switch (op) {
								case IR_CONV2D: ob[ig] += xb[ii] * yb[ik]; break;
								case IR_CONV2D_T: ob[ii] += xb[ig] * yb[ik]; break;
								default: ob[ik] += xb[ii] * yb[ig]; break;
								}
							}
						}
					}
	}
}

/* window position u*k+v stored in a selector value; clamped so a corrupt selector cannot index outside */
static int64_t sel_pos(double v, int64_t k)
{
	long q = lround(v);
	return q < 0 ? 0 : q >= k * k ? k * k - 1 : q;
}

/* Pooling over k x k windows with stride s; the image is [C,H,W], the pooled value [C,Ho,Wo]. */
static void eval_pool(IrOp op, const int64_t *a, IrShape so, IrShape sx, IrShape sy, int B, const double *x,
	const double *y, double *out)
{
	int64_t k = a[0], s = a[1];
	IrShape si = op == IR_POOL_SCATTER ? so : sx, sp = op == IR_POOL_SCATTER ? sx : so;
	int64_t C = si.d[0], H = si.d[1], W = si.d[2], Ho = sp.d[1], Wo = sp.d[2];
	int nb = so.batch ? B : 1;
	if (op == IR_POOL_SCATTER)
		memset(out, 0, sizeof *out * (size_t)(nb * ir_shape_numel(so)));
	for (int b = 0; b < nb; b++) {
		const double *xb = x + (sx.batch ? (int64_t)b * ir_shape_numel(sx) : 0);
		const double *yb = y ? y + (sy.batch ? (int64_t)b * ir_shape_numel(sy) : 0) : NULL;
		double *ob = out + (int64_t)b * ir_shape_numel(so);
		for (int64_t c = 0; c < C; c++)
			for (int64_t i = 0; i < Ho; i++)
				for (int64_t j = 0; j < Wo; j++) {
					int64_t ip = (c * Ho + i) * Wo + j;
					if (op == IR_POOL_GATHER || op == IR_POOL_SCATTER) {
						int64_t q = sel_pos(yb[ip], k);
						int64_t ii = (c * H + s * i + q / k) * W + s * j + q % k;
						if (op == IR_POOL_GATHER)
							ob[ip] = xb[ii];
						else
							ob[ii] += xb[ip];
						continue;
					}
					const double *win = xb + (c * H + s * i) * W + s * j;
					int64_t best = 0;
					for (int64_t u = 0; u < k; u++)
						for (int64_t v = 0; v < k; v++)
							if (win[u * W + v] > win[(best / k) * W + best % k])
								best = u * k + v;
					ob[ip] = op == IR_MAXPOOL ? win[(best / k) * W + best % k] : (double)best;
				}
	}
}

static void eval_node(const IrFunc *f, int i, int B, int B_global, double **v)
{
	const IrNode *nd = &f->nodes[i];
	double *out = v[i];
	const double *x = nd->in[0] >= 0 ? v[nd->in[0]] : NULL;
	const double *y = nd->in[1] >= 0 ? v[nd->in[1]] : NULL;
	IrShape so = nd->shape;
	IrShape sx = nd->in[0] >= 0 ? f->nodes[nd->in[0]].shape : so;
	IrShape sy = nd->in[1] >= 0 ? f->nodes[nd->in[1]].shape : so;
	int64_t n = value_len(so, B);
	unsigned flags = ir_op_info[nd->op].flags;

	if (flags & IRF_EW) {
		Space sp = space_of(so, B);
		int64_t st[2][IR_MAX_RANK + 1], idx[IR_MAX_RANK + 1] = {0}, o[2] = {0, 0};
		strides_in(sx, &sp, st[0]);
		strides_in(sy, &sp, st[1]);
		if (ir_op_info[nd->op].nin == 1) {
			for (int64_t l = 0; l < sp.total; l++, advance(&sp, idx, 2, o, st))
				out[l] = interp_ew1(nd->op, x[o[0]]);
		} else {
			for (int64_t l = 0; l < sp.total; l++, advance(&sp, idx, 2, o, st))
				out[l] = interp_ew2(nd->op, x[o[0]], y[o[1]]);
		}
		return;
	}
	switch (nd->op) {
	case IR_PARAM:
	case IR_INPUT:
		return; /* bound by the caller */
	case IR_CONST:
		for (int64_t l = 0; l < n; l++)
			out[l] = nd->f;
		return;
	case IR_INV_BATCH:
		out[0] = 1.0 / (double)B_global;
		return;
	case IR_EXPAND: {
		Space sp = space_of(so, B);
		int64_t st[1][IR_MAX_RANK + 1], idx[IR_MAX_RANK + 1] = {0}, o[1] = {0};
		strides_in(sx, &sp, st[0]);
		for (int64_t l = 0; l < sp.total; l++, advance(&sp, idx, 1, o, st))
			out[l] = x[o[0]];
		return;
	}
	case IR_SUM_TO: {
		Space sp = space_of(sx, B);
		int64_t st[1][IR_MAX_RANK + 1], idx[IR_MAX_RANK + 1] = {0}, o[1] = {0};
		strides_in(so, &sp, st[0]);
		memset(out, 0, sizeof *out * (size_t)n);
		for (int64_t l = 0; l < sp.total; l++, advance(&sp, idx, 1, o, st))
			out[o[0]] += x[l];
		return;
	}
	case IR_RESHAPE:
		memcpy(out, x, sizeof *out * (size_t)n);
		return;
	case IR_SLICE: {
		int64_t last = sx.d[sx.rank - 1], w = nd->a[1] - nd->a[0], rows = n / w;
		for (int64_t r = 0; r < rows; r++)
			memcpy(out + r * w, x + r * last + nd->a[0], sizeof *out * (size_t)w);
		return;
	}
	case IR_PAD: {
		int64_t len = sx.d[sx.rank - 1], N = nd->a[1], rows = n / N;
		memset(out, 0, sizeof *out * (size_t)n);
		for (int64_t r = 0; r < rows; r++)
			memcpy(out + r * N + nd->a[0], x + r * len, sizeof *out * (size_t)len);
		return;
	}
	case IR_CONCAT: {
		int64_t na = sx.d[sx.rank - 1], nb = sy.d[sy.rank - 1], rows = n / (na + nb);
		for (int64_t r = 0; r < rows; r++) {
			memcpy(out + r * (na + nb), x + r * na, sizeof *out * (size_t)na);
			memcpy(out + r * (na + nb) + na, y + r * nb, sizeof *out * (size_t)nb);
		}
		return;
	}
	case IR_MATMUL: {
		int64_t ra, ca, rb, cb;
		mat_dims(sx, B, &ra, &ca);
		mat_dims(sy, B, &rb, &cb);
		bool ta = nd->a[0], tb = nd->a[1];
		int64_t M = ta ? ca : ra, K = ta ? ra : ca, N = tb ? rb : cb;
		for (int64_t r = 0; r < M; r++)
			for (int64_t c = 0; c < N; c++) {
				double acc = 0;
				for (int64_t k = 0; k < K; k++) {
					double av = ta ? x[k * ca + r] : x[r * ca + k];
					double bv = tb ? y[c * cb + k] : y[k * cb + c];
					acc += av * bv;
				}
				out[r * N + c] = acc;
			}
		return;
	}
	case IR_BMV: {
		int64_t I = sy.d[0], J = sy.d[1];
		for (int b = 0; b < B; b++)
			for (int64_t j = 0; j < J; j++) {
				double acc = 0;
				for (int64_t k = 0; k < I; k++)
					acc += x[b * I + k] * y[(b * I + k) * J + j];
				out[b * J + j] = acc;
			}
		return;
	}
	case IR_BMVT: {
		int64_t I = sx.d[0], J = sx.d[1];
		for (int b = 0; b < B; b++)
			for (int64_t k = 0; k < I; k++) {
				double acc = 0;
				for (int64_t j = 0; j < J; j++)
					acc += x[(b * I + k) * J + j] * y[b * J + j];
				out[b * I + k] = acc;
			}
		return;
	}
	case IR_OUTER: {
		int64_t I = sx.d[0], J = sy.d[0];
		for (int b = 0; b < B; b++)
			for (int64_t k = 0; k < I; k++)
				for (int64_t j = 0; j < J; j++)
					out[(b * I + k) * J + j] = x[b * I + k] * y[b * J + j];
		return;
	}
	case IR_CONV2D:
	case IR_CONV2D_T:
	case IR_CONV2D_W:
		eval_conv(nd->op, nd->a, so, sx, sy, B, x, y, out);
		return;
	case IR_MAXPOOL:
	case IR_POOL_ARGMAX:
	case IR_POOL_GATHER:
	case IR_POOL_SCATTER:
		eval_pool(nd->op, nd->a, so, sx, sy, B, x, y, out);
		return;
	default:
		ir_fatal("interp: %s: no evaluation rule for %s", f->name, ir_op_name(nd->op));
	}
}

int interp_run(const IrFunc *f, int B, int B_global, const double *const *params, const double *const *in,
	double *const *out, FILE *err)
{
	if (B < 1 || B_global < 1) {
		if (err)
			fprintf(err, "internal error: interp: %s: batch size %d (global %d)\n", f->name, B, B_global);
		return -1;
	}
	if (ir_verify(f, err) != 0)
		return -1;
	double **v = calloc((size_t)(f->n ? f->n : 1), sizeof *v);
	if (!v)
		ir_fatal("out of memory");
	for (int i = 0; i < f->n; i++) {
		int64_t len = value_len(f->nodes[i].shape, B);
		v[i] = malloc(sizeof **v * (size_t)(len ? len : 1));
		if (!v[i])
			ir_fatal("out of memory");
		if (f->nodes[i].op == IR_PARAM)
			memcpy(v[i], params[f->nodes[i].a[0]], sizeof **v * (size_t)len);
	}
	for (int k = 0; k < f->nins; k++) {
		int id = f->ins[k].node;
		memcpy(v[id], in[k], sizeof **v * (size_t)value_len(f->nodes[id].shape, B));
	}
	for (int i = 0; i < f->n; i++)
		eval_node(f, i, B, B_global, v);
	for (int k = 0; k < f->nouts; k++) {
		int id = f->outs[k].node;
		memcpy(out[k], v[id], sizeof **v * (size_t)value_len(f->nodes[id].shape, B));
	}
	for (int i = 0; i < f->n; i++)
		free(v[i]);
	free(v);
	return 0;
}

/* ---- whole trials ---- */

/* l_t and (if dy) dl_t/dy for one step (definitions in plastrt.h). Derivations:
 *   MSE: d/dy (1/(B*O)) sum (y-t)^2 = 2 (y-t) / (B*O);  SSE the same with 1/B.
 *   CE:  l = (1/B) sum_b [ -sum_k t_k y_k + (sum_k t_k) lse(y) ], so dl/dy_k = (softmax_k sum_j t_j - t_k)/B. */
static double step_loss(PlLoss kind, int B, int O, const double *y, const double *t, double *dy)
{
	double l = 0;
	if (kind == PL_LOSS_MSE || kind == PL_LOSS_SSE) {
		double s = kind == PL_LOSS_MSE ? 1.0 / ((double)B * O) : 1.0 / B;
		for (int64_t i = 0; i < (int64_t)B * O; i++) {
			double e = y[i] - t[i];
			l += s * e * e;
			if (dy)
				dy[i] = 2 * s * e;
		}
		return l;
	}
	for (int b = 0; b < B; b++) {
		const double *yb = y + (int64_t)b * O, *tb = t + (int64_t)b * O;
		double m = yb[0], z = 0, tsum = 0;
		for (int k = 1; k < O; k++)
			m = yb[k] > m ? yb[k] : m;
		for (int k = 0; k < O; k++)
			z += exp(yb[k] - m);
		double lse = m + log(z);
		for (int k = 0; k < O; k++) {
			tsum += tb[k];
			l -= tb[k] * (yb[k] - lse) / B;
		}
		if (dy)
			for (int k = 0; k < O; k++)
				dy[(int64_t)b * O + k] = (exp(yb[k] - lse) * tsum - tb[k]) / B;
	}
	return l;
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);
	if (!p)
		ir_fatal("out of memory");
	return p;
}

int interp_trial(const Program *p, const double *const *params, const TrialBatch *b, double *loss,
	double *const *grads, FILE *err)
{
	const IrFunc *fwd = p->fwd, *vjp = p->vjp;
	int T = b->T, B = b->B, I = p->in_size, Oy = p->pred_size, S = p->n_state;
	if (grads && !vjp) {
		if (err)
			fprintf(err, "internal error: interp_trial: program %s has no step VJP\n", p->name);
		return -1;
	}
	int64_t *slen = xcalloc((size_t)S, sizeof *slen);
	for (int s = 0; s < S; s++)
		slen[s] = (int64_t)B * ir_shape_numel(p->state[s].shape);
	/* st[t*S + s]: state s entering step t, t = 0..T */
	double **st = xcalloc((size_t)(T + 1) * (size_t)S, sizeof *st);
	for (int k = 0; k < (T + 1) * S; k++)
		st[k] = xcalloc((size_t)slen[k % S], sizeof **st);
	double *ybar = xcalloc((size_t)T * (size_t)B * (size_t)Oy, sizeof *ybar);
	int rc = -1;
	double L = 0;

	/* forward */
	const double **fin = xcalloc((size_t)fwd->nins, sizeof *fin);
	double **fout = xcalloc((size_t)fwd->nouts, sizeof *fout);
	for (int k = 0; k < fwd->nouts; k++)
		fout[k] = xcalloc((size_t)value_len(fwd->nodes[fwd->outs[k].node].shape, B), sizeof **fout);
	for (int t = 0; t < T; t++) {
		for (int k = 0; k < fwd->nins; k++) {
			const IrPort *pt = &fwd->ins[k];
			if (pt->role == IR_ROLE_DATA)
				fin[k] = b->x + (int64_t)t * B * I;
			else if (pt->role == IR_ROLE_STATE)
				fin[k] = st[t * S + pt->index];
			else
				goto bad_port;
		}
		if (interp_run(fwd, B, B, params, fin, fout, err) != 0)
			goto done;
		const double *y = NULL;
		for (int k = 0; k < fwd->nouts; k++) {
			const IrPort *pt = &fwd->outs[k];
			if (pt->role == IR_ROLE_PRED)
				y = fout[k];
			else if (pt->role == IR_ROLE_STATE)
				memcpy(st[(t + 1) * S + pt->index], fout[k], sizeof **st * (size_t)slen[pt->index]);
		}
		if (!y) {
			if (err)
				fprintf(err, "internal error: interp_trial: %s has no prediction output\n", fwd->name);
			goto done;
		}
		double *dy = ybar + (int64_t)t * B * Oy;
		L += b->mask[t] * step_loss(p->meta_loss, B, Oy, y, b->target + (int64_t)t * B * Oy, dy);
		for (int64_t i = 0; i < (int64_t)B * Oy; i++)
			dy[i] *= b->mask[t];
	}
	*loss = L;
	rc = 0;
	if (!grads)
		goto done;

	/* backward: sbar holds the adjoint of the state leaving step t (zero after the last step) */
	rc = -1;
	{
		double **sbar = xcalloc((size_t)S, sizeof *sbar);
		for (int s = 0; s < S; s++)
			sbar[s] = xcalloc((size_t)slen[s], sizeof **sbar);
		const double **vin = xcalloc((size_t)vjp->nins, sizeof *vin);
		double **vout = xcalloc((size_t)vjp->nouts, sizeof *vout);
		for (int k = 0; k < vjp->nouts; k++)
			vout[k] = xcalloc((size_t)value_len(vjp->nodes[vjp->outs[k].node].shape, B), sizeof **vout);
		for (int j = 0; j < p->n_params; j++)
			memset(grads[j], 0, sizeof **grads * (size_t)ir_shape_numel(p->params[j].shape));
		bool ok = true;
		for (int t = T - 1; t >= 0 && ok; t--) {
			for (int k = 0; k < vjp->nins; k++) {
				const IrPort *pt = &vjp->ins[k];
				switch (pt->role) {
				case IR_ROLE_DATA: vin[k] = b->x + (int64_t)t * B * I; break;
				case IR_ROLE_STATE: vin[k] = st[t * S + pt->index]; break;
				case IR_ROLE_PRED_BAR: vin[k] = ybar + (int64_t)t * B * Oy; break;
				case IR_ROLE_STATE_BAR: vin[k] = sbar[pt->index]; break;
				case IR_ROLE_STATE_NEXT: vin[k] = st[(t + 1) * S + pt->index]; break;
				default: ok = false;
				}
			}
			if (!ok) {
				if (err)
					fprintf(err, "internal error: interp_trial: unexpected input role in %s\n",
						vjp->name);
				break;
			}
			if (interp_run(vjp, B, B, params, vin, vout, err) != 0) {
				ok = false;
				break;
			}
			for (int k = 0; k < vjp->nouts; k++) {
				const IrPort *pt = &vjp->outs[k];
				if (pt->role == IR_ROLE_STATE_BAR) {
					memcpy(sbar[pt->index], vout[k], sizeof **sbar * (size_t)slen[pt->index]);
				} else if (pt->role == IR_ROLE_PARAM_BAR) {
					int64_t m = ir_shape_numel(p->params[pt->index].shape);
					for (int64_t e = 0; e < m; e++)
						grads[pt->index][e] += vout[k][e];
				}
			}
		}
		for (int s = 0; s < S; s++)
			free(sbar[s]);
		free(sbar);
		free(vin);
		for (int k = 0; k < vjp->nouts; k++)
			free(vout[k]);
		free(vout);
		if (ok)
			rc = 0;
	}
	goto done;

bad_port:
	if (err)
		fprintf(err, "internal error: interp_trial: unexpected input role in %s\n", fwd->name);
done:
	for (int k = 0; k < fwd->nouts; k++)
		free(fout[k]);
	free(fout);
	free(fin);
	for (int k = 0; k < (T + 1) * S; k++)
		free(st[k]);
	free(st);
	free(ybar);
	free(slen);
	return rc;
}
