/* compiler/autodiff.c -- reverse-mode automatic differentiation on the step IR.
 *
 * ad_vjp walks the node list backwards once. Every rule below builds its adjoint contributions with the
 * ordinary builder (ir_add & co.), so the backward graph is ordinary IR: running ad_vjp on a function
 * that already contains a backward graph differentiates that graph too (double backward, ggml-style).
 *
 * Notation in the derivations: g is the adjoint of the node's value y (same shape as y); for an
 * elementwise op with broadcasting, the contribution to operand a is computed in y's shape and then
 * summed down to a's shape (the adjoint of a broadcast is a sum: d/da sum_i g_i y_i(a) adds over every
 * output position a was copied to).
 */
#include "autodiff.h"

#include <stdlib.h>
#include <string.h>

/* Names already used in the function, so adjoint names stay unique ("h_b", then "h_b2" if a first
 * pass already made an "h_b"): backends may build identifiers from them. Open addressing on strings
 * owned by the function's nodes. */
typedef struct NameSet {
	const char **slot;
	int cap, n;
} NameSet;

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static bool nameset_has(const NameSet *ns, const char *s)
{
	if (!ns->cap)
		return false;
	for (int i = (int)(str_hash(s) & (uint64_t)(ns->cap - 1)); ns->slot[i]; i = (i + 1) & (ns->cap - 1))
		if (strcmp(ns->slot[i], s) == 0)
			return true;
	return false;
}

static void nameset_add(NameSet *ns, const char *s)
{
	if (2 * (ns->n + 1) > ns->cap) {
		NameSet big = {NULL, ns->cap ? 2 * ns->cap : 64, 0};
		big.slot = calloc((size_t)big.cap, sizeof *big.slot);
		if (!big.slot)
			ir_fatal("out of memory");
		for (int i = 0; i < ns->cap; i++)
			if (ns->slot[i])
				nameset_add(&big, ns->slot[i]);
		free(ns->slot);
		*ns = big;
	}
	int i = (int)(str_hash(s) & (uint64_t)(ns->cap - 1));
	while (ns->slot[i])
		i = (i + 1) & (ns->cap - 1);
	ns->slot[i] = s;
	ns->n++;
}

typedef struct AdCtx {
	IrFunc *f;
	int n0;   /* nodes of the function being differentiated; the backward graph is appended after */
	int *adj; /* adj[i]: node id of the adjoint of node i, -1 while no contribution has arrived */
	bool *active;
	SrcSpan loc; /* of the node whose rule is being built: backward nodes point at the DSL text too */
	FILE *err;
} AdCtx;

/* ---- small builders ---- */

static int scal(AdCtx *c, double v)
{
	return ir_const(c->f, v, ir_shape0(false), c->loc);
}

static int op1(AdCtx *c, IrOp op, int a)
{
	return ir_add(c->f, op, a, -1, c->loc);
}

static int op2(AdCtx *c, IrOp op, int a, int b)
{
	return ir_add(c->f, op, a, b, c->loc);
}

static IrShape shape_of(AdCtx *c, int id)
{
	return c->f->nodes[id].shape;
}

static int last_dim(AdCtx *c, int id)
{
	IrShape s = shape_of(c, id);
	return (int)s.d[s.rank - 1];
}

/* x's shape, batched if u or v is: the shape of an image adjoint computed from operands u and v before
 * accum_bc sums it down to x */
static IrShape with_batch(AdCtx *c, int x, int u, int v)
{
	IrShape s = shape_of(c, x);
	s.batch = shape_of(c, u).batch || shape_of(c, v).batch;
	return s;
}

/* adds contribution v (already in x's shape) to the adjoint of x */
static void accum(AdCtx *c, int x, int v)
{
	if (x < 0 || !c->active[x])
		return;
	if (!ir_shape_eq(shape_of(c, x), shape_of(c, v))) {
		char s1[64], s2[64];
		ir_shape_str(shape_of(c, x), s1, sizeof s1);
		ir_shape_str(shape_of(c, v), s2, sizeof s2);
		ir_fatal("autodiff: %s: adjoint of %%%d has shape %s, node is %s", c->f->name, x, s2, s1);
	}
	c->adj[x] = c->adj[x] < 0 ? v : op2(c, IR_ADD, c->adj[x], v);
}

/* contribution v in the shape of the broadcast result, summed down to operand x's shape */
static void accum_bc(AdCtx *c, int x, int v)
{
	if (x < 0 || !c->active[x])
		return;
	accum(c, x, ir_sum_to(c->f, v, shape_of(c, x), c->loc));
}

/* ---- the rules: one case per op of ops.def (no default, so -Wswitch flags a new op) ---- */

static int vjp_rule(AdCtx *c, int i)
{
	IrNode nd = c->f->nodes[i]; /* copy: the node array moves as we append */
	int g = c->adj[i], a = nd.in[0], b = nd.in[1], y = i;
	bool da = a >= 0 && c->active[a], db = b >= 0 && c->active[b];
	c->loc = nd.loc;
	switch (nd.op) {
	/* leaves: nothing below them */
	case IR_PARAM:
	case IR_INPUT:
	case IR_CONST:
	case IR_INV_BATCH:
		return 0;
	/* piecewise constant: derivative 0 almost everywhere */
	case IR_STEP:
	case IR_SIGN:
		return 0;

	case IR_NEG: /* d(-a) = -da */
		accum(c, a, op1(c, IR_NEG, g));
		return 0;
	case IR_EXP: /* d exp(a) = exp(a) da = y da */
		accum(c, a, op2(c, IR_MUL, g, y));
		return 0;
	case IR_LOG: /* d log(a) = da / a */
		accum(c, a, op2(c, IR_DIV, g, a));
		return 0;
	case IR_SQRT: /* d sqrt(a) = da / (2 sqrt(a)) = 0.5 da / y */
		accum(c, a, op2(c, IR_DIV, op2(c, IR_MUL, g, scal(c, 0.5)), y));
		return 0;
	case IR_SQUARE: /* d a^2 = 2 a da */
		accum(c, a, op2(c, IR_MUL, op2(c, IR_MUL, g, a), scal(c, 2.0)));
		return 0;
	case IR_ABS: /* d|a| = sign(a) da */
		accum(c, a, op2(c, IR_MUL, g, op1(c, IR_SIGN, a)));
		return 0;
	case IR_RELU: /* d relu(a) = [a > 0] da = [y > 0] da: from the output, so that a VJP that reads y
	               * from the state leaving the step (retime.c) need not recompute a */
		accum(c, a, op2(c, IR_MUL, g, op1(c, IR_STEP, y)));
		return 0;
	case IR_TANH: /* d tanh(a) = (1 - tanh^2 a) da = (1 - y^2) da */
		accum(c, a, op2(c, IR_MUL, g, op2(c, IR_SUB, scal(c, 1.0), op1(c, IR_SQUARE, y))));
		return 0;
	case IR_SIGMOID: /* d s(a) = s(a)(1 - s(a)) da = y(1 - y) da */
		accum(c, a, op2(c, IR_MUL, g, op2(c, IR_MUL, y, op2(c, IR_SUB, scal(c, 1.0), y))));
		return 0;

	case IR_ADD: /* d(a+b) = da + db */
		if (da)
			accum_bc(c, a, g);
		if (db)
			accum_bc(c, b, g);
		return 0;
	case IR_SUB: /* d(a-b) = da - db */
		if (da)
			accum_bc(c, a, g);
		if (db)
			accum_bc(c, b, op1(c, IR_NEG, g));
		return 0;
	case IR_MUL: /* d(ab) = b da + a db */
		if (da)
			accum_bc(c, a, op2(c, IR_MUL, g, b));
		if (db)
			accum_bc(c, b, op2(c, IR_MUL, g, a));
		return 0;
	case IR_DIV: /* d(a/b) = da / b - (a/b^2) db = da / b - (y/b) db */
		if (da)
			accum_bc(c, a, op2(c, IR_DIV, g, b));
		if (db)
			accum_bc(c, b, op1(c, IR_NEG, op2(c, IR_DIV, op2(c, IR_MUL, g, y), b)));
		return 0;
	case IR_MAX: /* max(a,b) = a where a > b, else b (ties to b): selector s = step(a - b) */
	case IR_MIN: /* min(a,b) = a where a < b, else b (ties to b): selector s = step(b - a) */
	{
		int s = nd.op == IR_MAX ? op1(c, IR_STEP, op2(c, IR_SUB, a, b)) : op1(c, IR_STEP, op2(c, IR_SUB, b, a));
		int ga = op2(c, IR_MUL, g, s);
		if (da)
			accum_bc(c, a, ga);
		if (db)
			accum_bc(c, b, op2(c, IR_SUB, g, ga));
		return 0;
	}

	case IR_EXPAND: /* the adjoint of a copy to many places is the sum over them */
		accum(c, a, ir_sum_to(c->f, g, shape_of(c, a), c->loc));
		return 0;
	case IR_SUM_TO: /* each summand receives the adjoint of its sum */
		accum(c, a, ir_expand(c->f, g, shape_of(c, a), c->loc));
		return 0;
	case IR_RESHAPE:
		accum(c, a, ir_reshape(c->f, g, shape_of(c, a), c->loc));
		return 0;
	case IR_SLICE: /* slice selects: the adjoint goes back in place, zeros elsewhere */
		accum(c, a, ir_pad(c->f, g, nd.a[0], last_dim(c, a), c->loc));
		return 0;
	case IR_PAD: /* pad places: the adjoint is read back from the same place */
		accum(c, a, ir_slice(c->f, g, nd.a[0], nd.a[0] + last_dim(c, a), c->loc));
		return 0;
	case IR_CONCAT: {
		int na = last_dim(c, a), nb = last_dim(c, b);
		if (da)
			accum(c, a, ir_slice(c->f, g, 0, na, c->loc));
		if (db)
			accum(c, b, ir_slice(c->f, g, na, na + nb, c->loc));
		return 0;
	}

	/* C = op(A) op(B): dL/dop(A) = G op(B)^T, dL/dop(B) = op(A)^T G. Transposing back where A or B
	 * entered transposed keeps every product a MATMUL with flags (shapes checked in ir.c):
	 *   ta=0: dA = G op(B)^T      = matmul(G, B, 0, !tb)
	 *   ta=1: dA = op(B) G^T      = matmul(B, G, tb, 1)
	 *   tb=0: dB = op(A)^T G      = matmul(A, G, !ta, 0)
	 *   tb=1: dB = G^T op(A)      = matmul(G, A, 1, ta)                                          */
	case IR_MATMUL: {
		bool ta = nd.a[0], tb = nd.a[1];
		if (da)
			accum(c, a, ta ? ir_matmul(c->f, b, g, tb, true, c->loc) : ir_matmul(c->f, g, b, false, !tb, c->loc));
		if (db)
			accum(c, b, tb ? ir_matmul(c->f, g, a, true, ta, c->loc) : ir_matmul(c->f, a, g, !ta, false, c->loc));
		return 0;
	}
	/* y_j = sum_i x_i W_ij:   dx_i = sum_j W_ij g_j = bmvt(W, g),   dW_ij = x_i g_j = outer(x, g) */
	case IR_BMV:
		if (da)
			accum(c, a, op2(c, IR_BMVT, b, g));
		if (db)
			accum(c, b, op2(c, IR_OUTER, a, g));
		return 0;
	/* y_i = sum_j W_ij v_j:   dW_ij = g_i v_j = outer(g, v),   dv_j = sum_i g_i W_ij = bmv(g, W) */
	case IR_BMVT:
		if (da)
			accum(c, a, op2(c, IR_OUTER, g, b));
		if (db)
			accum(c, b, op2(c, IR_BMV, g, a));
		return 0;
	/* P_ij = a_i c_j:   da_i = sum_j G_ij c_j = bmvt(G, c),   dc_j = sum_i a_i G_ij = bmv(a, G) */
	case IR_OUTER:
		if (da)
			accum(c, a, op2(c, IR_BMVT, g, b));
		if (db)
			accum(c, b, op2(c, IR_BMV, a, g));
		return 0;

	/* The convolution family are the partial derivatives of one trilinear form (ops.def)
	 *   T(g, x, w) = sum g[co,i,j] x[c, s*i+u-p, s*j+v-p] w[co,c,u*k+v],
	 * conv2d = dT/dg, conv2d_t = dT/dx, conv2d_w = dT/dw. For any of them, z = dT/d(slot)(two operands),
	 * <h, z> = T with h in that slot, so the adjoint of each operand is dT/d(operand) with h put in the
	 * op's own slot: again an op of the family. A batched operand against an unbatched one gives a
	 * batched adjoint, summed down by accum_bc (the sum over the batch of a shared kernel's gradient). */
	case IR_CONV2D: /* y = dT/dg (x, w):  dx = conv2d_t(g, w),  dw = conv2d_w(x, g) */
		if (da)
			accum_bc(c, a, ir_conv2d_t(c->f, g, b, with_batch(c, a, g, b), nd.a[0], nd.a[1], nd.a[2], c->loc));
		if (db)
			accum_bc(c, b, ir_conv2d_w(c->f, a, g, nd.a[0], nd.a[1], nd.a[2], c->loc));
		return 0;
	case IR_CONV2D_T: /* y = dT/dx (a = g0, w):  dg0 = conv2d(h, w),  dw = conv2d_w(h, g0) */
		if (da)
			accum_bc(c, a, ir_conv2d(c->f, g, b, nd.a[0], nd.a[1], nd.a[2], c->loc));
		if (db)
			accum_bc(c, b, ir_conv2d_w(c->f, g, a, nd.a[0], nd.a[1], nd.a[2], c->loc));
		return 0;
	case IR_CONV2D_W: /* y = dT/dw (x, b = g0):  dx = conv2d_t(g0, h),  dg0 = conv2d(x, h) */
		if (da)
			accum_bc(c, a, ir_conv2d_t(c->f, b, g, with_batch(c, a, b, g), nd.a[0], nd.a[1], nd.a[2], c->loc));
		if (db)
			accum_bc(c, b, ir_conv2d(c->f, a, g, nd.a[0], nd.a[1], nd.a[2], c->loc));
		return 0;
	/* maxpool(x) = pool_gather(x, pool_argmax(x)), and the selector is piecewise constant, so
	 * d maxpool = pool_gather(dx, idx): its adjoint puts g back where the maxima were. gather and
	 * scatter through a fixed selector are linear maps transposed to each other, so each one's VJP is
	 * the other; the selector operand gets nothing (piecewise constant). */
	case IR_MAXPOOL:
		accum(c, a, ir_pool_scatter(c->f, g, ir_pool(c->f, IR_POOL_ARGMAX, a, -1, nd.a[0], nd.a[1], c->loc),
				    shape_of(c, a), nd.a[0], nd.a[1], c->loc));
		return 0;
	case IR_POOL_ARGMAX:
		return 0;
	case IR_POOL_GATHER:
		if (da)
			accum_bc(c, a, ir_pool_scatter(c->f, g, b, with_batch(c, a, g, b), nd.a[0], nd.a[1], c->loc));
		return 0;
	case IR_POOL_SCATTER:
		if (da)
			accum_bc(c, a, ir_pool(c->f, IR_POOL_GATHER, g, b, nd.a[0], nd.a[1], c->loc));
		return 0;

	case IR_OP_COUNT:
		break;
	}
	if (c->err)
		fprintf(c->err, "internal error: autodiff: %s: no VJP rule for %s (node %%%d)\n", c->f->name,
			ir_op_name(nd.op), i);
	return -1;
}

int ad_vjp(IrFunc *f, int nouts, const int *outs, const int *seeds, int nwrt, const int *wrt, int *wrt_bar,
	FILE *err)
{
	AdCtx c = {f, f->n, NULL, NULL, {0}, err};
	int n0 = f->n, rc = 0;
	bool *fwd = calloc((size_t)(n0 ? n0 : 1), sizeof *fwd);
	bool *bwd = calloc((size_t)(n0 ? n0 : 1), sizeof *bwd);
	c.active = calloc((size_t)(n0 ? n0 : 1), sizeof *c.active);
	c.adj = malloc(sizeof *c.adj * (size_t)(n0 ? n0 : 1));
	if (!fwd || !bwd || !c.active || !c.adj)
		ir_fatal("out of memory");
	for (int i = 0; i < n0; i++)
		c.adj[i] = -1;
	for (int k = 0; k < nwrt; k++) {
		if (wrt[k] < 0 || wrt[k] >= n0)
			ir_fatal("ad_vjp: %s: wrt %d is not a node", f->name, wrt[k]);
		fwd[wrt[k]] = true;
	}
	for (int k = 0; k < nouts; k++) {
		if (outs[k] < 0 || outs[k] >= n0 || seeds[k] < 0 || seeds[k] >= n0)
			ir_fatal("ad_vjp: %s: output or seed %d is not a node", f->name, k);
		if (!ir_shape_eq(f->nodes[outs[k]].shape, f->nodes[seeds[k]].shape))
			ir_fatal("ad_vjp: %s: seed %%%d has not the shape of output %%%d", f->name, seeds[k], outs[k]);
		bwd[outs[k]] = true;
	}
	/* Activity analysis: a node needs an adjoint only if it depends on some wrt (forward reachability;
	 * piecewise-constant ops cut the dependence) and some output depends on it (backward). */
	for (int i = 0; i < n0; i++) {
		const IrNode *nd = &f->nodes[i];
		if (fwd[i] || (ir_op_info[nd->op].flags & IRF_NODIFF))
			continue;
		for (int k = 0; k < ir_op_info[nd->op].nin; k++)
			if (fwd[nd->in[k]])
				fwd[i] = true;
	}
	for (int i = n0 - 1; i >= 0; i--) {
		if (!bwd[i])
			continue;
		const IrNode *nd = &f->nodes[i];
		for (int k = 0; k < ir_op_info[nd->op].nin; k++)
			bwd[nd->in[k]] = true;
	}
	for (int i = 0; i < n0; i++)
		c.active[i] = fwd[i] && bwd[i];

	NameSet names = {NULL, 0, 0};
	for (int i = 0; i < n0; i++)
		if (f->nodes[i].name)
			nameset_add(&names, f->nodes[i].name);
	for (int k = 0; k < nouts; k++)
		accum(&c, outs[k], seeds[k]);
	for (int i = n0 - 1; i >= 0 && rc == 0; i--) {
		if (!c.active[i] || c.adj[i] < 0)
			continue;
		/* the adjoint of i is complete here (all users have larger ids): name it after its value */
		const char *nm = f->nodes[i].name;
		if (nm && c.adj[i] >= n0 && !f->nodes[c.adj[i]].name) {
			size_t len = strlen(nm) + 16;
			char *buf = malloc(len);
			if (!buf)
				ir_fatal("out of memory");
			snprintf(buf, len, "%s_b", nm);
			for (int k = 2; nameset_has(&names, buf); k++)
				snprintf(buf, len, "%s_b%d", nm, k);
			ir_set_name(f, c.adj[i], buf);
			free(buf);
			nameset_add(&names, f->nodes[c.adj[i]].name);
		}
		if (ir_op_info[f->nodes[i].op].flags & IRF_LEAF)
			continue;
		rc = vjp_rule(&c, i);
	}
	if (rc == 0)
		for (int k = 0; k < nwrt; k++) {
			int w = wrt[k];
			wrt_bar[k] = c.adj[w] >= 0 ? c.adj[w] : ir_const(f, 0.0, f->nodes[w].shape, f->nodes[w].loc);
		}
	free(names.slot);
	free(fwd);
	free(bwd);
	free(c.active);
	free(c.adj);
	return rc;
}

static char *suffixed(const char *name, const char *suf)
{
	const char *n = name ? name : "?";
	size_t len = strlen(n) + strlen(suf) + 1;
	char *s = malloc(len);
	if (!s)
		ir_fatal("out of memory");
	snprintf(s, len, "%s%s", n, suf);
	return s;
}

int ad_step_vjp(Program *p, FILE *err)
{
	const IrFunc *fwd = p->fwd;
	IrFunc *v = ir_func_clone(fwd, "step_vjp");
	SrcSpan none = {0};
	/* the VJP keeps fwd's inputs and gets its own outputs */
	for (int k = 0; k < v->nouts; k++)
		free(v->outs[k].name);
	v->nouts = 0;

	int S = p->n_state, P = p->n_params;
	int *outs = malloc(sizeof *outs * (size_t)(S + 1));
	int *seeds = malloc(sizeof *seeds * (size_t)(S + 1));
	int nw = 0, nouts = 0;
	int *wrt = malloc(sizeof *wrt * (size_t)(fwd->n + 1));
	int *wbar = malloc(sizeof *wbar * (size_t)(fwd->n + 1));
	if (!outs || !seeds || !wrt || !wbar)
		ir_fatal("out of memory");

	int pred = -1;
	for (int k = 0; k < fwd->nouts; k++)
		if (fwd->outs[k].role == IR_ROLE_PRED)
			pred = fwd->outs[k].node;
	if (pred < 0) {
		if (err)
			fprintf(err, "internal error: autodiff: %s has no prediction output\n", fwd->name);
		ir_func_free(v);
		free(outs);
		free(seeds);
		free(wrt);
		free(wbar);
		return -1;
	}
	int ybar = ir_input(v, IR_ROLE_PRED_BAR, 0, v->nodes[pred].shape, "pred_bar");
	outs[nouts] = pred;
	seeds[nouts++] = ybar;
	for (int s = 0; s < S; s++) {
		int so = -1;
		for (int k = 0; k < fwd->nouts; k++)
			if (fwd->outs[k].role == IR_ROLE_STATE && fwd->outs[k].index == s)
				so = fwd->outs[k].node;
		IrShape sh = so >= 0 ? v->nodes[so].shape : p->state[s].shape;
		char *nm = suffixed(p->state[s].name, "_out_b");
		int sb = ir_input(v, IR_ROLE_STATE_BAR, s, sh, nm);
		free(nm);
		if (so >= 0) {
			outs[nouts] = so;
			seeds[nouts++] = sb;
		}
	}
	/* wrt: every PARAM node (a parameter may appear as several nodes), then every STATE input */
	for (int i = 0; i < fwd->n; i++)
		if (fwd->nodes[i].op == IR_PARAM)
			wrt[nw++] = i;
	int nparam_nodes = nw;
	int *state_in = malloc(sizeof *state_in * (size_t)(S ? S : 1));
	if (!state_in)
		ir_fatal("out of memory");
	for (int s = 0; s < S; s++) {
		state_in[s] = -1;
		for (int k = 0; k < fwd->nins; k++)
			if (fwd->ins[k].role == IR_ROLE_STATE && fwd->ins[k].index == s)
				state_in[s] = fwd->ins[k].node;
		if (state_in[s] >= 0)
			wrt[nw++] = state_in[s];
	}
	int rc = ad_vjp(v, nouts, outs, seeds, nw, wrt, wbar, err);
	if (rc == 0) {
		int w = nparam_nodes;
		for (int s = 0; s < S; s++) {
			int node = state_in[s] >= 0 ? wbar[w++] : ir_const(v, 0.0, p->state[s].shape, none);
			char *nm = suffixed(p->state[s].name, "_in_b");
			ir_output(v, IR_ROLE_STATE_BAR, s, node, nm);
			free(nm);
		}
		for (int j = 0; j < P; j++) {
			int acc = -1;
			for (int k = 0; k < nparam_nodes; k++)
				if (fwd->nodes[wrt[k]].a[0] == j)
					acc = acc < 0 ? wbar[k] : ir_add(v, IR_ADD, acc, wbar[k], none);
			if (acc < 0)
				acc = ir_const(v, 0.0, p->params[j].shape, none);
			char *nm = suffixed(p->params[j].name, "_b");
			ir_output(v, IR_ROLE_PARAM_BAR, j, acc, nm);
			free(nm);
		}
		if (ir_verify(v, err) != 0)
			rc = -1;
	}
	free(state_in);
	free(outs);
	free(seeds);
	free(wrt);
	free(wbar);
	if (rc != 0) {
		ir_func_free(v);
		return -1;
	}
	ir_func_free(p->vjp);
	p->vjp = v;
	return 0;
}
