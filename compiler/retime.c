/* compiler/retime.c -- deferred plastic updates: each large state's update moves to the start of the
 * next step (retime.h; docs/PERFORMANCE.md "Deferred updates").
 *
 * A step computes, for a plastic matrix S (per trial [in, out]),
 *
 *     y_t = ... x_t @ (W + S_t) ...          (the body reads S_t)
 *     S_{t+1} = f(S_t, v_t)                  (the update, e.g. (1 - wd) S + lr alpha (pre (x) post))
 *
 * where v_t are the small values of step t that f reads (pre, post, the rate, the max-norm scale). In
 * that order every step streams S three times in the forward (the body's bmv reads S_t, the update
 * reads S_t and writes S_{t+1}), and the VJP of the update needs reductions over the adjoint of S_{t+1}
 * that in turn need the body's adjoint: passes over the same matrices in a dependence chain. Retimed,
 * the state is (P = S_{t-1}, v_{t-1}) and the step begins with the update of the step before:
 *
 *     S_t = f(P, v_{t-1})   or   k f(P, v_{t-1})   (k = 0 in the first step of a trial, 1 afterwards)
 *     y_t = ... x_t @ (W + S_t) ...          (the body as before)
 *     state out: P' = S_t, v_t, k' = 1
 *
 * The trial's outputs, losses and parameter gradients are the same: every state starts a trial at zero,
 * P and v included, so in the first step S_0 = 0 = f(0, 0) when the update is 0 at zero inputs (the
 * usual decay * S + rate * delta(pre, post): zero_at_start proves it from the ops), and k f = 0 with the
 * started flag k otherwise; every later S_t is f of the step before. only the state layout differs, and the final state
 * is S_{T-1} and v_{T-1} instead of S_T (nothing reads it). In the retimed VJP the update's reductions
 * (<adj S_t, P>, the rate's <adj S_t, alpha pre post>, alpha's gradient, the pre/post adjoints) read
 * adj S_t, which the body's backward produces in the same step from the state adjoint coming in: they
 * no longer feed the body's backward, so the emitters can merge them with the passes over S_t that the
 * body needs anyway.
 *
 * Which states: per-trial rank >= 2, whose update region (the nodes of S's shape that S_{t+1} depends on)
 * reads no other input of that size and whose frontier v (the other values the region reads, parameters
 * and constants aside) is batched and at most half of S's size (1-2 % of it at the paper's sizes).
 * Models with a separate evaluation step (batch norm) are left as they are. PLASTC_NO_RETIME=1 in the
 * environment turns the pass off.
 */
#include "retime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *rt_alloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);
	if (!p)
		ir_fatal("out of memory");
	return p;
}

static char *rt_strdup(const char *s)
{
	if (!s)
		return NULL;
	char *d = malloc(strlen(s) + 1);
	if (!d)
		ir_fatal("out of memory");
	return strcpy(d, s);
}

bool retime_enabled(void)
{
	const char *e = getenv("PLASTC_NO_RETIME");
	return !(e && *e && strcmp(e, "0") != 0);
}

bool retime_next_enabled(void)
{
	const char *e = getenv("PLASTC_NO_STATE_NEXT");
	return !(e && *e && strcmp(e, "0") != 0);
}

/* Node kinds of one state's update region */
enum { K_NONE = 0, K_REGION, K_STATIC, K_FRONT, K_SELF };

/* Whether node id depends only on parameters and constants (cloned wherever needed) */
static bool is_static(const IrFunc *f, int id, signed char *memo)
{
	if (memo[id])
		return memo[id] > 0;
	const IrNode *nd = &f->nodes[id];
	bool st;
	if (nd->op == IR_INPUT)
		st = false;
	else if (ir_op_info[nd->op].flags & IRF_LEAF)
		st = !nd->shape.batch;
	else {
		st = !nd->shape.batch;
		for (int k = 0; st && k < ir_op_info[nd->op].nin; k++)
			st = is_static(f, nd->in[k], memo);
	}
	memo[id] = st ? 1 : -1;
	return st;
}

/* Classifies the update region of state s (input node sin, output node sout) into kind[]; returns the
 * frontier size in floats per trial, or -1 if the state cannot be retimed. */
static int64_t classify(const IrFunc *f, int sin, int sout, signed char *smemo, unsigned char *kind)
{
	IrShape ss = f->nodes[sin].shape;
	int n = f->n;
	memset(kind, K_NONE, (size_t)n);
	if (sout == sin)
		return -1; /* a state that never changes */
	int *stack = rt_alloc(sizeof *stack * (size_t)n);
	int sp = 0;
	int64_t front = 0;
	bool ok = true;
	kind[sout] = K_REGION;
	stack[sp++] = sout;
	while (sp > 0 && ok) {
		const IrNode *nd = &f->nodes[stack[--sp]];
		for (int k = 0; k < ir_op_info[nd->op].nin; k++) {
			int x = nd->in[k];
			if (kind[x] != K_NONE)
				continue;
			const IrNode *xn = &f->nodes[x];
			if (x == sin) {
				kind[x] = K_SELF;
			} else if (is_static(f, x, smemo)) {
				kind[x] = K_STATIC;
			} else if (xn->op != IR_INPUT && ir_shape_eq(xn->shape, ss)) {
				kind[x] = K_REGION;
				stack[sp++] = x;
			} else if (xn->shape.batch && ir_shape_numel(xn->shape) * 2 <= ir_shape_numel(ss)) {
				kind[x] = K_FRONT;
				front += ir_shape_numel(xn->shape);
			} else {
				ok = false; /* another large input, or an unbatched value computed from the data */
			}
		}
	}
	free(stack);
	if (!ok || front * 2 > ir_shape_numel(ss))
		return -1;
	return front;
}

/* Whether region node id is exactly 0 for every parameter value when the state input and every frontier
 * value are 0 (kinds from classify). Conservative: false when unsure. Such a state needs no started
 * flag: with P = 0 and v = 0 in the first step, f(P, v) = 0 = S_0 already. */
static bool zero_at_start(const IrFunc *f, int id, const unsigned char *kind, signed char *memo)
{
	if (memo[id])
		return memo[id] > 0;
	const IrNode *nd = &f->nodes[id];
	bool z = false;
	if (kind[id] == K_SELF || kind[id] == K_FRONT)
		z = true;
	else if (nd->op == IR_CONST)
		z = nd->f == 0.0;
	else if (kind[id] == K_REGION) {
		int a = nd->in[0], b = nd->in[1];
		switch (nd->op) {
		case IR_MUL: case IR_OUTER: case IR_BMV: case IR_BMVT: case IR_MATMUL:
			z = zero_at_start(f, a, kind, memo) || zero_at_start(f, b, kind, memo);
			break;
		case IR_ADD: case IR_SUB: case IR_MAX: case IR_MIN: case IR_CONCAT:
			z = zero_at_start(f, a, kind, memo) && zero_at_start(f, b, kind, memo);
			break;
		case IR_NEG: case IR_SQUARE: case IR_ABS: case IR_RELU: case IR_TANH: case IR_SIGN: case IR_SQRT:
		case IR_EXPAND: case IR_SUM_TO: case IR_RESHAPE: case IR_SLICE: case IR_PAD:
			z = zero_at_start(f, a, kind, memo);
			break;
		default:
			z = false;
		}
	}
	memo[id] = z ? 1 : -1;
	return z;
}

/* Copies node id of f into g with operands mapped through map[] (which must be set) */
static int copy_node(IrFunc *g, const IrFunc *f, int id, const int *map)
{
	const IrNode *nd = &f->nodes[id];
	int a = nd->in[0] >= 0 ? map[nd->in[0]] : -1, b = nd->in[1] >= 0 ? map[nd->in[1]] : -1;
	if ((nd->in[0] >= 0 && a < 0) || (nd->in[1] >= 0 && b < 0))
		ir_fatal("retime: operand of %%%d not mapped", id);
	int r = ir_add_full(g, nd->op, a, b, &nd->shape, nd->f, nd->a, nd->loc);
	if (nd->name)
		ir_set_name(g, r, nd->name);
	return r;
}

/* Clones the static node id (and its operands) into g once; smap caches the clones */
static int clone_static(IrFunc *g, const IrFunc *f, int id, int *smap)
{
	if (smap[id] >= 0)
		return smap[id];
	const IrNode *nd = &f->nodes[id];
	for (int k = 0; k < ir_op_info[nd->op].nin; k++)
		clone_static(g, f, nd->in[k], smap);
	return smap[id] = copy_node(g, f, id, smap);
}

/* Clones state s's update region into g with the state input mapped to P (pin) and the frontier to its
 * pending inputs (fin); returns S_t = f(P, v), times the started flag kin if kin >= 0. */
static int build_update(IrFunc *g, const IrFunc *f, int s, int sin, int sout, int pin, int kin, const int *fin,
	const int *fidx, const unsigned char *ks, int *smap, int *rmap, const char *name)
{
	(void)s;
	SrcSpan none = {0};
	int n = f->n;
	for (int i = 0; i < n; i++)
		rmap[i] = -1;
	rmap[sin] = pin;
	for (int i = 0; i < n; i++) {
		if (ks[i] == K_FRONT)
			rmap[i] = fin[fidx[i]];
		else if (ks[i] == K_STATIC)
			rmap[i] = clone_static(g, f, i, smap);
	}
	for (int i = 0; i < n; i++)
		if (ks[i] == K_REGION)
			rmap[i] = copy_node(g, f, i, rmap);
	int st = kin >= 0 ? ir_add(g, IR_MUL, kin, rmap[sout], none) : rmap[sout];
	ir_set_name(g, st, name);
	return st;
}

int retime_program(Program *p, FILE *err)
{
	(void)err;
	if (!p || !p->fwd || p->fwd_eval)
		return 0;
	IrFunc *f = p->fwd;
	int n = f->n, S = p->n_state;
	int *sin = rt_alloc(sizeof *sin * (size_t)(S ? S : 1));
	int *sout = rt_alloc(sizeof *sout * (size_t)(S ? S : 1));
	for (int s = 0; s < S; s++) {
		sin[s] = sout[s] = -1;
		for (int k = 0; k < f->nins; k++)
			if (f->ins[k].role == IR_ROLE_STATE && f->ins[k].index == s)
				sin[s] = f->ins[k].node;
		for (int k = 0; k < f->nouts; k++)
			if (f->outs[k].role == IR_ROLE_STATE && f->outs[k].index == s)
				sout[s] = f->outs[k].node;
	}
	signed char *smemo = rt_alloc((size_t)n);
	unsigned char *kind = rt_alloc((size_t)n * (size_t)(S ? S : 1)); /* kind[s * n + id] */
	bool *ret = rt_alloc(sizeof *ret * (size_t)(S ? S : 1));
	int nret = 0;
	for (int s = 0; s < S; s++) {
		if (sin[s] < 0 || sout[s] < 0 || f->nodes[sin[s]].shape.rank < 2)
			continue;
		if (classify(f, sin[s], sout[s], smemo, kind + (size_t)s * (size_t)n) >= 0) {
			ret[s] = true;
			nret++;
		}
	}
	/* a region must not read another retimed state's input (classify rejects large inputs already) */
	if (nret == 0) {
		free(sin), free(sout), free(smemo), free(kind), free(ret);
		return 0;
	}
	/* the frontier: every node some region reads, in node order (shared between states) */
	int *fidx = rt_alloc(sizeof *fidx * (size_t)n); /* node -> frontier index, or -1 */
	int nfront = 0;
	for (int i = 0; i < n; i++) {
		fidx[i] = -1;
		for (int s = 0; s < S; s++)
			if (ret[s] && kind[(size_t)s * (size_t)n + (size_t)i] == K_FRONT) {
				fidx[i] = nfront++;
				break;
			}
	}
	int *front = rt_alloc(sizeof *front * (size_t)(nfront ? nfront : 1));
	for (int i = 0; i < n; i++)
		if (fidx[i] >= 0)
			front[fidx[i]] = i;

	IrFunc *g = ir_func_new(f->name);
	int *map = rt_alloc(sizeof *map * (size_t)n);
	int *smap = rt_alloc(sizeof *smap * (size_t)n);
	int *rmap = rt_alloc(sizeof *rmap * (size_t)n);
	for (int i = 0; i < n; i++)
		map[i] = smap[i] = -1;
	int *pin = rt_alloc(sizeof *pin * (size_t)S);
	for (int k = 0; k < f->nins; k++) {
		const IrPort *pt = &f->ins[k];
		int id = ir_input(g, pt->role, pt->index, f->nodes[pt->node].shape, pt->name);
		if (pt->role == IR_ROLE_STATE && ret[pt->index])
			pin[pt->index] = id;
		else
			map[pt->node] = id;
	}
	SrcSpan none = {0};
	int *fin = rt_alloc(sizeof *fin * (size_t)(nfront ? nfront : 1));
	char nm[160];
	for (int q = 0; q < nfront; q++) {
		const IrNode *u = &f->nodes[front[q]];
		snprintf(nm, sizeof nm, "pend%d%s%s", q, u->name ? "." : "", u->name ? u->name : "");
		fin[q] = ir_input(g, IR_ROLE_STATE, S + q, u->shape, nm);
	}
	/* the started flag, only if some state's update is not 0 at the start by itself */
	bool *gate = rt_alloc(sizeof *gate * (size_t)S);
	bool need_k = false;
	for (int s = 0; s < S; s++) {
		if (!ret[s])
			continue;
		memset(smemo, 0, (size_t)n);
		gate[s] = !zero_at_start(f, sout[s], kind + (size_t)s * (size_t)n, smemo);
		need_k = need_k || gate[s];
	}
	int kin = need_k ? ir_input(g, IR_ROLE_STATE, S + nfront, ir_shape0(true), "pend.started") : -1;
	/* the body, reading S_t = f(P, v_{t-1}) (or k f: the started flag, gate[]) where it read the state
	 * input; each S_t is computed just before its first reader, so that the emitters find the update
	 * next to the nests that read it (k = 0 only in the first step, where P = S_0 = 0: every state starts
	 * a trial at zero) */
	for (int i = 0; i <= n; i++) {
		const IrNode *nd = i < n ? &f->nodes[i] : NULL;
		for (int s = 0; s < S; s++) {
			if (!ret[s] || map[sin[s]] >= 0)
				continue;
			bool reads = !nd; /* after the body: the states no node reads, for their outputs */
			for (int k = 0; nd && k < ir_op_info[nd->op].nin; k++)
				reads = reads || nd->in[k] == sin[s];
			if (reads)
				map[sin[s]] = build_update(g, f, s, sin[s], sout[s], pin[s], gate[s] ? kin : -1, fin, fidx,
					kind + (size_t)s * (size_t)n, smap, rmap, p->state[s].name);
		}
		if (nd && nd->op != IR_INPUT)
			map[i] = copy_node(g, f, i, map);
	}
	/* outputs: as before, retimed states return S_t, then the frontier values and k' = 1 */
	int last_state = -1;
	for (int k = 0; k < f->nouts; k++)
		if (f->outs[k].role == IR_ROLE_STATE)
			last_state = k;
	for (int k = 0; k < f->nouts; k++) {
		const IrPort *pt = &f->outs[k];
		int node = pt->role == IR_ROLE_STATE && ret[pt->index] ? map[sin[pt->index]] : map[pt->node];
		ir_output(g, pt->role, pt->index, node, pt->name);
		if (k == last_state) {
			for (int q = 0; q < nfront; q++)
				ir_output(g, IR_ROLE_STATE, S + q, map[front[q]], g->ins[g->nodes[fin[q]].a[0]].name);
			if (need_k) {
				int c1 = ir_const(g, 1.0, ir_shape0(false), none);
				ir_output(g, IR_ROLE_STATE, S + nfront, ir_expand(g, c1, ir_shape0(true), none), "pend.started");
			}
		}
	}
	/* the state table */
	int nnew = nfront + (need_k ? 1 : 0);
	p->state = realloc(p->state, sizeof *p->state * (size_t)(S + nnew));
	if (!p->state)
		ir_fatal("out of memory");
	for (int q = 0; q < nnew; q++) {
		ProgTensor *t = &p->state[S + q];
		memset(t, 0, sizeof *t);
		t->name = rt_strdup(g->ins[g->nodes[q < nfront ? fin[q] : kin].a[0]].name);
		t->shape = q < nfront ? f->nodes[front[q]].shape : ir_shape0(true);
		t->init = PL_INIT_ZERO;
		t->trainable = false;
	}
	p->n_state = S + nnew;
	if (ir_verify(g, stderr) != 0)
		ir_fatal("retime: the retimed step of model '%s' does not verify", p->name);
	ir_func_free(f);
	p->fwd = g;
	free(sin), free(sout), free(smemo), free(kind), free(ret), free(fidx), free(front);
	free(map), free(smap), free(rmap), free(pin), free(fin), free(gate);
	return nret;
}

/* Replaces node x of the VJP (a value of the step's forward part) by rep; a concatenation's operands get
 * the matching slices of rep, so that e.g. the LSTM's activated gates need no recomputation either. */
static void substitute(IrFunc *g, const IrFunc *v, int x, int rep, int *map)
{
	const IrNode *nd = &v->nodes[x];
	if (map[x] >= 0 || nd->op == IR_INPUT || (ir_op_info[nd->op].flags & IRF_LEAF))
		return;
	map[x] = rep;
	if (nd->op == IR_CONCAT) {
		IrShape sa = v->nodes[nd->in[0]].shape, sb = v->nodes[nd->in[1]].shape;
		int64_t la = sa.d[sa.rank - 1], lb = sb.d[sb.rank - 1];
		if (sa.rank < 1 || sb.rank < 1)
			return;
		substitute(g, v, nd->in[0], ir_slice(g, rep, 0, la, nd->loc), map);
		substitute(g, v, nd->in[1], ir_slice(g, rep, la, la + lb, nd->loc), map);
	}
}

int retime_vjp(Program *p, FILE *err)
{
	return retime_vjp_ex(p, err, NULL, NULL);
}

int retime_vjp_ex(Program *p, FILE *err, int **recomp, int *nrecomp)
{
	(void)err;
	if (recomp)
		*recomp = NULL;
	if (nrecomp)
		*nrecomp = 0;
	IrFunc *v = p->vjp, *f = p->fwd;
	if (!v || !f || p->fwd_eval)
		return 0;
	int S = p->n_state, n = v->n, nsub = 0;
	int *so = rt_alloc(sizeof *so * (size_t)(S ? S : 1));
	for (int s = 0; s < S; s++) {
		so[s] = -1;
		if (p->state[s].shape.rank >= 2)
			continue; /* the plastic matrices: recomputed from S_{t-1} inside the passes that read it anyway */
		for (int k = 0; k < f->nouts; k++)
			if (f->outs[k].role == IR_ROLE_STATE && f->outs[k].index == s)
				so[s] = f->outs[k].node;
		if (so[s] >= 0 && (so[s] >= n || v->nodes[so[s]].op == IR_INPUT ||
			(ir_op_info[v->nodes[so[s]].op].flags & IRF_LEAF)))
			so[s] = -1;
		nsub += so[s] >= 0;
	}
	if (nsub == 0) {
		free(so);
		return 0;
	}
	IrFunc *g = ir_func_new(v->name);
	int *map = rt_alloc(sizeof *map * (size_t)n);
	for (int i = 0; i < n; i++)
		map[i] = -1;
	for (int k = 0; k < v->nins; k++) {
		const IrPort *pt = &v->ins[k];
		map[pt->node] = ir_input(g, pt->role, pt->index, v->nodes[pt->node].shape, pt->name);
	}
	char nm[200];
	for (int s = 0; s < S; s++) {
		if (so[s] < 0)
			continue;
		snprintf(nm, sizeof nm, "%s_next", p->state[s].name);
		int in = ir_input(g, IR_ROLE_STATE_NEXT, s, v->nodes[so[s]].shape, nm);
		substitute(g, v, so[s], in, map);
	}
	for (int i = 0; i < n; i++)
		if (map[i] < 0)
			map[i] = copy_node(g, v, i, map);
	for (int k = 0; k < v->nouts; k++)
		ir_output(g, v->outs[k].role, v->outs[k].index, map[v->outs[k].node], v->outs[k].name);
	if (ir_verify(g, stderr) != 0)
		ir_fatal("retime: the step VJP of model '%s' does not verify after reading the state leaving the step",
			p->name);
	if (recomp && nrecomp) {
		/* the forward's matrix-vector products over a per-trial matrix that the VJP still computes again */
		bool *live = rt_alloc(sizeof *live * (size_t)(g->n ? g->n : 1));
		memset(live, 0, sizeof *live * (size_t)g->n);
		for (int k = 0; k < g->nouts; k++)
			live[g->outs[k].node] = true;
		for (int i = g->n - 1; i >= 0; i--)
			for (int k = 0; live[i] && k < ir_op_info[g->nodes[i].op].nin; k++)
				live[g->nodes[i].in[k]] = true;
		int *ids = rt_alloc(sizeof *ids * (size_t)(f->n ? f->n : 1)), nids = 0;
		for (int x = 0; x < f->n && x < n; x++) {
			const IrNode *nd = &v->nodes[x];
			if (nd->op != IR_BMV || !live[map[x]])
				continue;
			IrShape sw = v->nodes[nd->in[1]].shape;
			if (sw.batch && sw.rank >= 2)
				ids[nids++] = x;
		}
		free(live);
		if (nids) {
			*recomp = ids;
			*nrecomp = nids;
		} else
			free(ids);
	}
	ir_func_free(v);
	p->vjp = g;
	free(so);
	free(map);
	return nsub;
}

bool retime_resid_enabled(void)
{
	const char *e = getenv("PLASTC_NO_RESIDUALS");
	return !(e && *e && strcmp(e, "0") != 0);
}

int retime_residuals(Program *p, const int *ids, int k)
{
	IrFunc *f = p->fwd;
	int S = p->n_state, n = f->n;
	if (k <= 0)
		return 0;
	IrFunc *g = ir_func_new(f->name);
	int *map = rt_alloc(sizeof *map * (size_t)n);
	for (int i = 0; i < n; i++)
		map[i] = -1;
	for (int q = 0; q < f->nins; q++) {
		const IrPort *pt = &f->ins[q];
		map[pt->node] = ir_input(g, pt->role, pt->index, f->nodes[pt->node].shape, pt->name);
	}
	char nm[200];
	for (int q = 0; q < k; q++) {
		const IrNode *u = &f->nodes[ids[q]];
		snprintf(nm, sizeof nm, "resid%d%s%s", q, u->name ? "." : "", u->name ? u->name : "");
		(void)ir_input(g, IR_ROLE_STATE, S + q, u->shape, nm); /* the step before's value: not read */
	}
	for (int i = 0; i < n; i++)
		if (map[i] < 0)
			map[i] = copy_node(g, f, i, map);
	int last_state = -1;
	for (int q = 0; q < f->nouts; q++)
		if (f->outs[q].role == IR_ROLE_STATE)
			last_state = q;
	for (int q = 0; q < f->nouts; q++) {
		const IrPort *pt = &f->outs[q];
		ir_output(g, pt->role, pt->index, map[pt->node], pt->name);
		if (q == last_state)
			for (int r = 0; r < k; r++)
				ir_output(g, IR_ROLE_STATE, S + r, map[ids[r]], g->ins[f->nins + r].name);
	}
	p->state = realloc(p->state, sizeof *p->state * (size_t)(S + k));
	if (!p->state)
		ir_fatal("out of memory");
	for (int q = 0; q < k; q++) {
		ProgTensor *t = &p->state[S + q];
		memset(t, 0, sizeof *t);
		t->name = rt_strdup(g->ins[f->nins + q].name);
		t->shape = f->nodes[ids[q]].shape;
		t->init = PL_INIT_ZERO;
		t->trainable = false;
	}
	p->n_state = S + k;
	if (ir_verify(g, stderr) != 0)
		ir_fatal("retime: the step of model '%s' does not verify with its residual states", p->name);
	ir_func_free(f);
	p->fwd = g;
	free(map);
	return k;
}
