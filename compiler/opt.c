/* compiler/opt.c -- constant folding, algebraic simplification, CSE and DCE on the step IR.
 *
 * One rebuild does the first three at once: the nodes are re-emitted in order into a fresh function,
 * and every emitted node goes through emit(), which folds, simplifies (possibly emitting other nodes,
 * which go through emit() again) and finally looks the node up in a hash of the nodes already built
 * (CSE). DCE then keeps what the outputs need (and every INPUT node, which the ports own) and compacts
 * the array, remapping the ports. Both repeat until nothing changes. Every rewrite below is exact in
 * real arithmetic; in floating point it changes results by rounding only (e.g. the norm rewrite sums in
 * a different order), with the one documented exception that x*0 -> 0 drops a NaN or inf in x.
 */
#include "opt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp.h"

typedef struct Opt {
	IrFunc *g;     /* the function being built */
	int *hash;     /* open addressing over node ids of g, -1 empty */
	int hcap;
	OptStats *st;
	SrcSpan loc;
} Opt;

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h;
}

static uint64_t node_hash(const IrNode *n)
{
	uint64_t h = (uint64_t)n->op;
	uint64_t fb;
	memcpy(&fb, &n->f, sizeof fb);
	h = mix(h, (uint64_t)(int64_t)n->in[0]);
	h = mix(h, (uint64_t)(int64_t)n->in[1]);
	h = mix(h, fb);
	for (int k = 0; k < 4; k++)
		h = mix(h, (uint64_t)n->a[k]);
	h = mix(h, (uint64_t)n->shape.batch);
	h = mix(h, (uint64_t)n->shape.rank);
	for (int k = 0; k < n->shape.rank; k++)
		h = mix(h, (uint64_t)n->shape.d[k]);
	return h;
}

static bool node_same(const IrNode *x, const IrNode *y)
{
	return x->op == y->op && x->in[0] == y->in[0] && x->in[1] == y->in[1] &&
	       memcmp(&x->f, &y->f, sizeof x->f) == 0 && memcmp(x->a, y->a, sizeof x->a) == 0 &&
	       ir_shape_eq(x->shape, y->shape);
}

static void hash_insert(Opt *o, int id);

static void hash_grow(Opt *o)
{
	int old = o->hcap;
	int *oh = o->hash;
	o->hcap = old ? 2 * old : 256;
	o->hash = malloc(sizeof *o->hash * (size_t)o->hcap);
	if (!o->hash)
		ir_fatal("out of memory");
	for (int i = 0; i < o->hcap; i++)
		o->hash[i] = -1;
	for (int i = 0; i < old; i++)
		if (oh[i] >= 0)
			hash_insert(o, oh[i]);
	free(oh);
}

static void hash_insert(Opt *o, int id)
{
	if (2 * (o->g->n + 1) > o->hcap)
		hash_grow(o);
	uint64_t h = node_hash(&o->g->nodes[id]);
	int m = o->hcap - 1;
	for (int i = (int)(h & (uint64_t)m);; i = (i + 1) & m)
		if (o->hash[i] < 0) {
			o->hash[i] = id;
			return;
		}
}

static int hash_find(Opt *o, const IrNode *n)
{
	if (!o->hcap)
		return -1;
	uint64_t h = node_hash(n);
	int m = o->hcap - 1;
	for (int i = (int)(h & (uint64_t)m); o->hash[i] >= 0; i = (i + 1) & m)
		if (node_same(&o->g->nodes[o->hash[i]], n))
			return o->hash[i];
	return -1;
}

/* ---- emit: fold, simplify, CSE ---- */

static int emit(Opt *o, IrOp op, int a, int b, const IrShape *shape, double fv, const int64_t *attrs);

static bool is_const(Opt *o, int id, double *v)
{
	if (id < 0 || o->g->nodes[id].op != IR_CONST)
		return false;
	if (v)
		*v = o->g->nodes[id].f;
	return true;
}

static bool is_constv(Opt *o, int id, double v)
{
	double c;
	return is_const(o, id, &c) && c == v;
}

static int konst(Opt *o, double v, IrShape s)
{
	return emit(o, IR_CONST, -1, -1, &s, v, NULL);
}

static IrShape shp(Opt *o, int id)
{
	return o->g->nodes[id].shape;
}

/* x in the result shape r: x itself, or x broadcast to r */
static int as_shape(Opt *o, int x, IrShape r)
{
	if (ir_shape_eq(shp(o, x), r))
		return x;
	return emit(o, IR_EXPAND, x, -1, &r, 0.0, NULL);
}

static int e1(Opt *o, IrOp op, int a)
{
	return emit(o, op, a, -1, NULL, 0.0, NULL);
}

static int e2(Opt *o, IrOp op, int a, int b)
{
	return emit(o, op, a, b, NULL, 0.0, NULL);
}

static int sum_to(Opt *o, int x, IrShape s)
{
	return emit(o, IR_SUM_TO, x, -1, &s, 0.0, NULL);
}

/* Constant folding. CONST nodes are uniform tensors, so an elementwise op of constants, and any shape
 * op of a constant that keeps the batch flag, is again a CONST. A sum over the batch is not folded: B
 * is a run-time number. Returns a node id or -1. */
static int fold(Opt *o, IrOp op, int a, int b, IrShape r, const int64_t *at)
{
	double va = 0, vb = 0;
	unsigned fl = ir_op_info[op].flags;
	bool ca = is_const(o, a, &va), cb = is_const(o, b, &vb);
	if ((fl & IRF_EW) && ir_op_info[op].nin == 1 && ca)
		return konst(o, interp_ew1(op, va), r);
	if ((fl & IRF_EW) && ir_op_info[op].nin == 2 && ca && cb)
		return konst(o, interp_ew2(op, va, vb), r);
	switch (op) {
	case IR_EXPAND:
	case IR_RESHAPE:
	case IR_SLICE:
		if (ca)
			return konst(o, va, r);
		break;
	case IR_PAD:
		if (ca && va == 0)
			return konst(o, 0.0, r);
		break;
	case IR_CONCAT:
		if (ca && cb && va == vb)
			return konst(o, va, r);
		break;
	case IR_SUM_TO:
		if (ca && shp(o, a).batch == r.batch)
			return konst(o, va * (double)(ir_shape_numel(shp(o, a)) / ir_shape_numel(r)), r);
		break;
	case IR_MATMUL:
	case IR_BMV:
	case IR_BMVT:
	case IR_OUTER:
	case IR_CONV2D:
	case IR_CONV2D_T:
	case IR_CONV2D_W:
		if ((ca && va == 0) || (cb && vb == 0))
			return konst(o, 0.0, r);
		break;
	case IR_MAXPOOL:    /* every window of a uniform image holds the same value */
	case IR_POOL_GATHER:
		if (ca)
			return konst(o, va, r);
		break;
	case IR_POOL_SCATTER: /* zeros where nothing is scattered, so only a zero g folds */
		if (ca && va == 0)
			return konst(o, 0.0, r);
		break;
	default:
		break;
	}
	(void)at;
	return -1;
}

/* sum over all per-trial dims of x^2 where x = k * outer(a, c) with k a (per-trial) scalar or absent:
 *   sum_ij (k a_i c_j)^2 = k^2 (sum_i a_i^2)(sum_j c_j^2)
 * so the [B,I,J] square-and-reduce becomes two vector reductions: O(I+J) instead of O(I*J) per trial.
 * Returns the [B] result or -1 if x has not that form. */
static int rank1_sqnorm(Opt *o, int x)
{
	const IrNode *n = &o->g->nodes[x];
	int k = -1, outer = -1;
	if (n->op == IR_OUTER) {
		outer = x;
	} else if (n->op == IR_MUL) {
		for (int s = 0; s < 2; s++) {
			int u = n->in[s], v = n->in[1 - s];
			if (o->g->nodes[u].op == IR_OUTER && shp(o, v).rank == 0) {
				outer = u;
				k = v;
			}
		}
	}
	if (outer < 0)
		return -1;
	int a = o->g->nodes[outer].in[0], c = o->g->nodes[outer].in[1];
	IrShape pt = ir_shape0(true);
	int sa = sum_to(o, e1(o, IR_SQUARE, a), pt);
	int sc = sum_to(o, e1(o, IR_SQUARE, c), pt);
	int p = e2(o, IR_MUL, sa, sc);
	if (k >= 0)
		p = e2(o, IR_MUL, p, e1(o, IR_SQUARE, k));
	return p;
}

/* Algebraic simplification. Returns a node id (of shape r) or -1. */
static int simplify(Opt *o, IrOp op, int a, int b, IrShape r, const int64_t *at)
{
	/* An elementwise op broadcasts by itself: expand(s) as an operand is s whenever s and the other
	 * operand still broadcast to the same result. Saves materialising (e.g.) a [B,I,J] copy of [B]. */
	if ((ir_op_info[op].flags & IRF_EW) && ir_op_info[op].nin == 2) {
		for (int k = 0; k < 2; k++) {
			int u = k ? b : a, v = k ? a : b;
			if (o->g->nodes[u].op != IR_EXPAND)
				continue;
			int src = o->g->nodes[u].in[0];
			IrShape bs;
			if (ir_shape_broadcast(shp(o, src), shp(o, v), &bs) && ir_shape_eq(bs, r))
				return k ? e2(o, op, a, src) : e2(o, op, src, b);
		}
	}
	/* f(expand(s)) = expand(f(s)): compute on the small tensor; the expand then meets the next
	 * elementwise op and disappears by the rule above */
	if ((ir_op_info[op].flags & IRF_EW) && ir_op_info[op].nin == 1 && o->g->nodes[a].op == IR_EXPAND)
		return emit(o, IR_EXPAND, e1(o, op, o->g->nodes[a].in[0]), -1, &r, 0.0, NULL);
	switch (op) {
	case IR_ADD:
		if (is_constv(o, b, 0))
			return as_shape(o, a, r);
		if (is_constv(o, a, 0))
			return as_shape(o, b, r);
		break;
	case IR_SUB:
		if (is_constv(o, b, 0))
			return as_shape(o, a, r);
		if (is_constv(o, a, 0))
			return as_shape(o, e1(o, IR_NEG, b), r);
		break;
	case IR_MUL:
		if (is_constv(o, a, 0) || is_constv(o, b, 0))
			return konst(o, 0.0, r);
		if (is_constv(o, b, 1))
			return as_shape(o, a, r);
		if (is_constv(o, a, 1))
			return as_shape(o, b, r);
		if (is_constv(o, b, -1))
			return as_shape(o, e1(o, IR_NEG, a), r);
		if (is_constv(o, a, -1))
			return as_shape(o, e1(o, IR_NEG, b), r);
		break;
	case IR_DIV:
		if (is_constv(o, b, 1))
			return as_shape(o, a, r);
		if (is_constv(o, a, 0))
			return konst(o, 0.0, r);
		break;
	case IR_NEG:
		if (o->g->nodes[a].op == IR_NEG)
			return o->g->nodes[a].in[0];
		break;
	case IR_EXPAND:
	case IR_SUM_TO:
	case IR_RESHAPE:
		if (ir_shape_eq(shp(o, a), r))
			return a;
		/* a chain of the same op collapses: broadcasting, reducing and reshaping are transitive */
		if (o->g->nodes[a].op == op)
			return emit(o, op, o->g->nodes[a].in[0], -1, &r, 0.0, NULL);
		if (op == IR_SUM_TO && r.rank == 0 && o->g->nodes[a].op == IR_SQUARE) {
			int p = rank1_sqnorm(o, o->g->nodes[a].in[0]);
			if (p >= 0)
				return sum_to(o, p, r);
		}
		break;
	case IR_SLICE: {
		const IrNode *x = &o->g->nodes[a];
		if (at[0] == 0 && at[1] == shp(o, a).d[shp(o, a).rank - 1])
			return a;
		if (x->op == IR_PAD) {
			IrShape s = shp(o, x->in[0]);
			if (at[0] == x->a[0] && at[1] == x->a[0] + s.d[s.rank - 1])
				return x->in[0];
		}
		if (x->op == IR_CONCAT) {
			IrShape s = shp(o, x->in[0]);
			int64_t na = s.d[s.rank - 1];
			if (at[0] == 0 && at[1] == na)
				return x->in[0];
			if (at[0] == na && at[1] == shp(o, a).d[shp(o, a).rank - 1])
				return x->in[1];
		}
		break;
	}
	case IR_PAD:
		if (at[0] == 0 && at[1] == shp(o, a).d[shp(o, a).rank - 1])
			return a;
		break;
	default:
		break;
	}
	return -1;
}

static int emit(Opt *o, IrOp op, int a, int b, const IrShape *shape, double fv, const int64_t *attrs)
{
	IrNode nd;
	memset(&nd, 0, sizeof nd);
	nd.op = op;
	nd.in[0] = a;
	nd.in[1] = b;
	nd.f = fv;
	if (attrs)
		memcpy(nd.a, attrs, sizeof nd.a);
	if (shape)
		nd.shape = *shape;
	if (op == IR_INV_BATCH)
		nd.shape = ir_shape0(false);
	const IrShape *x = a >= 0 ? &o->g->nodes[a].shape : NULL;
	const IrShape *y = b >= 0 ? &o->g->nodes[b].shape : NULL;
	if (ir_infer_shape(op, x, y, fv, nd.a, &nd.shape))
		ir_fatal("opt: %s: ill-typed %s while rebuilding", o->g->name, ir_op_name(op));
	if (op != IR_INPUT) {
		int r = fold(o, op, a, b, nd.shape, nd.a);
		if (r >= 0) {
			o->st->folded++;
			return r;
		}
		r = simplify(o, op, a, b, nd.shape, nd.a);
		if (r >= 0) {
			o->st->simplified++;
			return r;
		}
		/* commutative ops: operands in id order so a*b and b*a meet in the hash */
		if ((ir_op_info[op].flags & IRF_COMMUTE) && nd.in[0] > nd.in[1]) {
			int t = nd.in[0];
			nd.in[0] = nd.in[1];
			nd.in[1] = t;
		}
		r = hash_find(o, &nd);
		if (r >= 0) {
			o->st->cse++;
			return r;
		}
	}
	int id = ir_add_full(o->g, op, nd.in[0], nd.in[1], &nd.shape, fv, nd.a, o->loc);
	if (op != IR_INPUT)
		hash_insert(o, id);
	return id;
}

/* moves g's contents into f (f keeps its address, which callers hold) */
static void replace_func(IrFunc *f, IrFunc *g)
{
	IrFunc tmp = *f;
	*f = *g;
	*g = tmp;
	ir_func_free(g);
}

/* fold + simplify + CSE; returns true if anything changed */
static bool rebuild(IrFunc *f, OptStats *st)
{
	OptStats before = *st;
	Opt o = {ir_func_new(f->name), NULL, 0, st, {0}};
	int *map = malloc(sizeof *map * (size_t)(f->n ? f->n : 1));
	if (!map)
		ir_fatal("out of memory");
	for (int i = 0; i < f->n; i++) {
		const IrNode *n = &f->nodes[i];
		o.loc = n->loc;
		int a = n->in[0] >= 0 ? map[n->in[0]] : -1, b = n->in[1] >= 0 ? map[n->in[1]] : -1;
		int id = emit(&o, n->op, a, b, &n->shape, n->f, n->a);
		map[i] = id;
		if (n->name && !o.g->nodes[id].name)
			ir_set_name(o.g, id, n->name);
	}
	/* ports: same order; INPUT nodes were re-emitted in place (never merged) */
	IrFunc *g = o.g;
	g->ins = realloc(g->ins, sizeof *g->ins * (size_t)(f->nins ? f->nins : 1));
	g->cap_ins = f->nins ? f->nins : 1;
	for (int k = 0; k < f->nins; k++) {
		g->ins[k] = f->ins[k];
		g->ins[k].node = map[f->ins[k].node];
		f->ins[k].name = NULL; /* moved */
	}
	g->nins = f->nins;
	g->outs = realloc(g->outs, sizeof *g->outs * (size_t)(f->nouts ? f->nouts : 1));
	g->cap_outs = f->nouts ? f->nouts : 1;
	for (int k = 0; k < f->nouts; k++) {
		g->outs[k] = f->outs[k];
		g->outs[k].node = map[f->outs[k].node];
		f->outs[k].name = NULL;
	}
	g->nouts = f->nouts;
	free(map);
	free(o.hash);
	bool changed = g->n != f->n || st->folded != before.folded || st->simplified != before.simplified ||
		       st->cse != before.cse;
	replace_func(f, g);
	return changed;
}

/* DCE and compaction: keep what the outputs need and every INPUT node; returns nodes removed */
static int dce(IrFunc *f)
{
	bool *live = calloc((size_t)(f->n ? f->n : 1), sizeof *live);
	int *map = malloc(sizeof *map * (size_t)(f->n ? f->n : 1));
	if (!live || !map)
		ir_fatal("out of memory");
	for (int k = 0; k < f->nouts; k++)
		live[f->outs[k].node] = true;
	for (int i = f->n - 1; i >= 0; i--) {
		if (f->nodes[i].op == IR_INPUT)
			live[i] = true;
		if (!live[i])
			continue;
		for (int k = 0; k < ir_op_info[f->nodes[i].op].nin; k++)
			live[f->nodes[i].in[k]] = true;
	}
	int m = 0;
	for (int i = 0; i < f->n; i++) {
		if (!live[i]) {
			free(f->nodes[i].name);
			map[i] = -1;
			continue;
		}
		IrNode n = f->nodes[i];
		for (int k = 0; k < IR_MAX_IN; k++)
			if (n.in[k] >= 0)
				n.in[k] = map[n.in[k]];
		map[i] = m;
		f->nodes[m++] = n;
	}
	int removed = f->n - m;
	f->n = m;
	for (int k = 0; k < f->nins; k++)
		f->ins[k].node = map[f->ins[k].node];
	for (int k = 0; k < f->nouts; k++)
		f->outs[k].node = map[f->outs[k].node];
	free(live);
	free(map);
	return removed;
}

/* every pass must leave a valid function (not in NDEBUG builds: it costs a pass over the nodes) */
static void check(const IrFunc *f, const char *pass)
{
#ifndef NDEBUG
	if (ir_verify(f, stderr) != 0)
		ir_fatal("opt: %s left %s invalid", pass, f->name);
#else
	(void)f;
	(void)pass;
#endif
}

void opt_run(IrFunc *f, OptStats *stats)
{
	OptStats local;
	OptStats *st = stats ? stats : &local;
	memset(st, 0, sizeof *st);
	for (int iter = 0; iter < 20; iter++) {
		bool changed = rebuild(f, st);
		check(f, "fold/simplify/cse");
		int removed = dce(f);
		check(f, "dce");
		st->dce += removed;
		if (!changed && removed == 0)
			break;
	}
}
