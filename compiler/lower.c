/* compiler/lower.c -- checked model -> step IR (lower.h).
 *
 * One step, for the whole batch, exactly as reference-model.md A.1:
 *
 *   linear part of a weight W with plastic part Ŵ and bias b with plastic part b̂:
 *       z = src @ W  [+ bmv(src, Ŵ)]  [+ expand(b)]  [+ b̂]          (W stored [in,out])
 *   linear L:  post = act(z)
 *   rnn L:     a = lin(h_prev; w_hh, b_hh) + lin(src; w_ih, b_ih);   h = act(a);  post = h
 *   lstm L:    gates = the same sum, [B,4H] in the order i, f, g, o
 *              c = σ(f)·c_prev + σ(i)·tanh(g);  h = σ(o)·tanh(c);  post = concat(σi, σf, tanh g, σo)
 *
 * Outputs are slices of their producer; the OUTPUTS port is their concatenation in declaration order.
 * Then the plasticity update of every plastic tensor t (state input ŵ):
 *
 *   Δ_t = the rule's value, with grad(internal_loss, t) = dL/dŵ_t. All these gradients come from ONE
 *         ad_vjp call with respect to the state inputs. Since z = src@W + bmv(src, Ŵ), dL/dŴ equals the
 *         gradient with respect to the effective weight W + Ŵ; h_prev and c_prev are inputs of the step,
 *         so this is the reference's one-step gradient that holds them fixed.
 *   n2    = Σ_t sum_to(square(Δ_t), per-trial scalar)
 *   scale = max_norm / sqrt(max(n2, max_norm²))     (= min(1, max_norm/‖Δ‖), and no 0/0 at n2 = 0 in the
 *                                                      derivative of sqrt, which max() keeps away from 0)
 *   ŵ_t  ← (1 − decay)·ŵ_t + rate·scale·α_t ⊙ Δ_t    (decay is not scaled, as in the reference code)
 *
 * rate and decay are per-trial scalars: a [B,1] modulator expression is reshaped to rank 0 [B].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "ir_nn.h"
#include "lower.h"

typedef struct Lower {
	const SemaModel *m;
	IrFunc *f;
	DiagCtx *diag;
	int x;            /* DATA input */
	int *state_in;    /* STATE inputs */
	int *param;       /* PARAM nodes, created on first use (-1) */
	int *layer_out;   /* activated output of each layer (lstm: h) */
	int *layer_post;  /* post of each layer */
	int *layer_src;   /* concatenated input of each layer */
	int *layer_h_prev;
	int *out_node;    /* each output's slice */
	int *new_state;   /* value of each state leaving the step */
	int *grad_of;     /* per state index: dL/dŵ node, -1 if not requested */
	int loss;         /* internal loss node, -1 */
	bool eval;        /* lowering step_forward_eval: batch norm reads the running statistics */
	int *bn_batch;    /* per param (running statistics only): this call's batch value, -1 */
	/* rule scope while lowering a rule clause */
	bool in_rule;
	int pre, post, w, W;
} Lower;

static SrcSpan nospan(void)
{
	SrcSpan s = {0};
	return s;
}

static int param_node(Lower *l, int i)
{
	if (l->param[i] < 0)
		l->param[i] = ir_param(l->f, i, l->m->params[i].shape, l->m->params[i].name);
	return l->param[i];
}

static IrShape shape_of(Lower *l, int n)
{
	return l->f->nodes[n].shape;
}

/* Makes a value carry the batch dim (CONCAT and OUTER want batched operands). */
static int batched(Lower *l, int n, SrcSpan at)
{
	IrShape s = shape_of(l, n);
	if (s.batch)
		return n;
	s.batch = true;
	return ir_expand(l->f, n, s, at);
}

static int concat2(Lower *l, int a, int b, SrcSpan at)
{
	if (shape_of(l, a).batch != shape_of(l, b).batch) {
		a = batched(l, a, at);
		b = batched(l, b, at);
	}
	return ir_add(l->f, IR_CONCAT, a, b, at);
}

static int scalar_const(Lower *l, double v, SrcSpan at)
{
	return ir_const(l->f, v, ir_shape0(false), at);
}

/* ---- expressions ---- */

static int lower_expr(Lower *l, const AstExpr *e);

static int lower_name(Lower *l, const AstExpr *e)
{
	const char *n = e->name;
	if (l->in_rule) {
		if (strcmp(n, "pre") == 0)
			return l->pre;
		if (strcmp(n, "post") == 0)
			return l->post;
		if (strcmp(n, "w") == 0 || strcmp(n, "b") == 0)
			return l->w;
		if (strcmp(n, "W") == 0 || strcmp(n, "Wb") == 0)
			return l->W;
	}
	SemaSym s = sema_lookup(l->m, n);
	switch (s.kind) {
	case SYM_INPUT:
		return l->x;
	case SYM_OUTPUT:
		return l->out_node[s.index];
	case SYM_LAYER:
		return l->layer_out[s.index];
	case SYM_PARAM:
		return param_node(l, l->m->fparams[s.index].param);
	case SYM_CONST: {
		double v = 0;
		if (!sema_const_value(l->m, n, &v))
			ir_fatal("lower: constant '%s' has no value", n);
		return scalar_const(l, v, e->span);
	}
	default:
		break;
	}
	ir_fatal("lower: unresolved name '%s' (sema should have rejected it)", n);
}

static int reduce_sum(Lower *l, int a, SrcSpan at)
{
	return ir_sum_to(l->f, a, ir_shape0(shape_of(l, a).batch), at);
}

static int lower_call(Lower *l, const AstExpr *e)
{
	SrcSpan at = e->span;
	SemaFn fn = sema_fn(e->name);
	if (fn == FN_GRAD) {
		/* sema guarantees grad(internal_loss, w|b) inside a rule clause of a plastic tensor */
		for (int i = 0; i < l->m->nstate; i++)
			if (l->state_in[i] == l->w) {
				if (l->grad_of[i] < 0)
					ir_fatal("lower: gradient of state %d was not computed", i);
				return l->grad_of[i];
			}
		ir_fatal("lower: grad of a tensor that is not plastic state");
	}
	int a = lower_expr(l, e->args[0]);
	switch (fn) {
	case FN_RELU: return ir_add(l->f, IR_RELU, a, -1, at);
	case FN_TANH: return ir_add(l->f, IR_TANH, a, -1, at);
	case FN_SIGMOID: return ir_add(l->f, IR_SIGMOID, a, -1, at);
	case FN_EXP: return ir_add(l->f, IR_EXP, a, -1, at);
	case FN_LOG: return ir_add(l->f, IR_LOG, a, -1, at);
	case FN_SQRT: return ir_add(l->f, IR_SQRT, a, -1, at);
	case FN_SQUARE: return ir_add(l->f, IR_SQUARE, a, -1, at);
	case FN_ABS: return ir_add(l->f, IR_ABS, a, -1, at);
	case FN_SIGN: return ir_add(l->f, IR_SIGN, a, -1, at);
	case FN_STEP: return ir_add(l->f, IR_STEP, a, -1, at);
	case FN_MIN:
	case FN_MAX: {
		int b = lower_expr(l, e->args[1]);
		return ir_add(l->f, fn == FN_MIN ? IR_MIN : IR_MAX, a, b, at);
	}
	case FN_SUM: return reduce_sum(l, a, at);
	case FN_MEAN: {
		int64_t n = ir_shape_numel(shape_of(l, a));
		int s = reduce_sum(l, a, at);
		return ir_add(l->f, IR_MUL, s, scalar_const(l, 1.0 / (double)n, at), at);
	}
	case FN_NORM:
		return ir_add(l->f, IR_SQRT, reduce_sum(l, ir_add(l->f, IR_SQUARE, a, -1, at), at), -1, at);
	case FN_BATCH_MEAN: {
		/* the mean over the trials of the (global) batch: a sum over B times 1/B_global */
		IrShape s = shape_of(l, a);
		if (!s.batch)
			return a;
		s.batch = false;
		int inv = ir_add_shaped(l->f, IR_INV_BATCH, -1, -1, ir_shape0(false), at);
		return ir_add(l->f, IR_MUL, ir_sum_to(l->f, a, s, at), inv, at);
	}
	case FN_CONCAT:
		for (int i = 1; i < e->nargs; i++) {
			int b = lower_expr(l, e->args[i]);
			a = concat2(l, a, b, at);
		}
		return a;
	case FN_OUTER: {
		int b = lower_expr(l, e->args[1]);
		a = batched(l, a, at);
		b = batched(l, b, at);
		return ir_add(l->f, IR_OUTER, a, b, at);
	}
	default:
		break;
	}
	ir_fatal("lower: unknown function '%s'", e->name);
}

static int lower_expr(Lower *l, const AstExpr *e)
{
	switch (e->kind) {
	case AST_NUM:
		return scalar_const(l, e->num, e->span);
	case AST_NAME:
		return lower_name(l, e);
	case AST_CALL:
		return lower_call(l, e);
	case AST_NEG:
		return ir_add(l->f, IR_NEG, lower_expr(l, e->args[0]), -1, e->span);
	case AST_BINOP: {
		int a = lower_expr(l, e->args[0]);
		int b = lower_expr(l, e->args[1]);
		IrOp op = e->op == '+' ? IR_ADD : e->op == '-' ? IR_SUB : e->op == '*' ? IR_MUL : IR_DIV;
		return ir_add(l->f, op, a, b, e->span);
	}
	case AST_SLICE: {
		int a = lower_expr(l, e->args[0]);
		IrShape s = shape_of(l, a);
		int64_t lo = 0, hi = s.d[s.rank - 1];
		/* sema checked the bounds are constant integers in range */
		double v;
		if (e->lo) {
			if (e->lo->kind == AST_NUM)
				lo = (int64_t)e->lo->num;
			else if (e->lo->kind == AST_NAME && sema_const_value(l->m, e->lo->name, &v))
				lo = (int64_t)v;
			else
				ir_fatal("lower: slice bound is not a simple constant");
		}
		if (e->hi) {
			if (e->hi->kind == AST_NUM)
				hi = (int64_t)e->hi->num;
			else if (e->hi->kind == AST_NAME && sema_const_value(l->m, e->hi->name, &v))
				hi = (int64_t)v;
			else
				ir_fatal("lower: slice bound is not a simple constant");
		}
		return ir_slice(l->f, a, lo, hi, e->span);
	}
	case AST_ERROR:
		break;
	}
	ir_fatal("lower: error node reached lowering");
}

/* ---- layers ---- */

/* z = x @ W [+ bmv(x, Ŵ)] [+ expand(b)] [+ b̂] for the weight tw and bias tb (NULL if none). */
static int linear_part(Lower *l, int x, const SemaTensor *tw, const SemaTensor *tb, SrcSpan at)
{
	int z = ir_matmul(l->f, x, param_node(l, tw->param), false, false, at);
	if (tw->state >= 0)
		z = ir_add(l->f, IR_ADD, z, ir_add(l->f, IR_BMV, x, l->state_in[tw->state], at), at);
	if (tb) {
		z = ir_add(l->f, IR_ADD, z, ir_expand(l->f, param_node(l, tb->param), shape_of(l, z), at), at);
		if (tb->state >= 0)
			z = ir_add(l->f, IR_ADD, z, l->state_in[tb->state], at);
	}
	return z;
}

static int activate(Lower *l, SemaAct a, int z, SrcSpan at)
{
	switch (a) {
	case ACT_IDENTITY: return z;
	case ACT_RELU: return ir_add(l->f, IR_RELU, z, -1, at);
	case ACT_TANH: return ir_add(l->f, IR_TANH, z, -1, at);
	case ACT_SIGMOID: return ir_add(l->f, IR_SIGMOID, z, -1, at);
	}
	return z;
}

static const SemaTensor *find_t(const SemaLayer *L, const char *suffix)
{
	for (int k = 0; k < L->nt; k++)
		if (strcmp(L->t[k].suffix, suffix) == 0)
			return &L->t[k];
	return NULL;
}

/* conv4: the source viewed as images [C,side,side] (CHW), then per block
 *   conv 3x3 (padding 1, no bias) -> batch norm (this call's batch statistics) -> relu -> max-pool 2x2
 * (ir_nn_conv_block), and the result flattened to [channels * out_side^2] in CHW order. In the evaluation
 * step (l->eval) batch norm uses the running statistics instead (ir_nn_conv_block_eval); in the training
 * step the batch's mean and unbiased variance are kept in l->bn_batch for the PARAM_BAR outputs. */
static void lower_conv4(Lower *l, int li, int src)
{
	const SemaLayer *L = &l->m->layers[li];
	SrcSpan at = L->item->span;
	char nm[512];
	int64_t d[3] = {L->img_c, L->img_side, L->img_side};
	int x = ir_reshape(l->f, batched(l, src, at), ir_shape(true, 3, d), at);
	snprintf(nm, sizeof nm, "%s.image", L->name);
	ir_set_name(l->f, x, nm);
	for (int b = 0; b < L->blocks; b++) {
		int p0 = L->conv_param + 5 * b; /* w, gamma, beta, running_mean, running_var */
		if (l->eval)
			x = ir_nn_conv_block_eval(l->f, x, param_node(l, p0), param_node(l, p0 + 1), param_node(l, p0 + 2),
				param_node(l, p0 + 3), param_node(l, p0 + 4), at);
		else
			x = ir_nn_conv_block(l->f, x, param_node(l, p0), param_node(l, p0 + 1), param_node(l, p0 + 2),
				&l->bn_batch[p0 + 3], &l->bn_batch[p0 + 4], at);
		snprintf(nm, sizeof nm, "%s.block%d", L->name, b + 1);
		ir_set_name(l->f, x, nm);
	}
	int y = ir_reshape(l->f, x, ir_shape1(true, L->size), at);
	ir_set_name(l->f, y, L->name);
	l->layer_out[li] = l->layer_post[li] = y;
}

static void lower_layer(Lower *l, int li)
{
	const SemaModel *m = l->m;
	const SemaLayer *L = &m->layers[li];
	SrcSpan at = L->item->span;
	char nm[512];
	int src = -1;
	for (int k = 0; k < L->nsrcs; k++) {
		const SemaSrc *s = &L->srcs[k];
		int v = s->kind == SRC_INPUT ? l->x : s->kind == SRC_LAYER ? l->layer_out[s->index] : l->out_node[s->index];
		if (s->sliced)
			v = ir_slice(l->f, v, s->offset, s->offset + s->size, s->span);
		src = src < 0 ? v : concat2(l, src, v, at);
	}
	l->layer_src[li] = src;
	if (L->kind == LAYER_CONV4) {
		lower_conv4(l, li, src);
		return;
	}
	if (L->kind == LAYER_LINEAR) {
		int z = linear_part(l, src, find_t(L, "w"), find_t(L, "b"), at);
		snprintf(nm, sizeof nm, "%s.z", L->name);
		ir_set_name(l->f, z, nm);
		int y = activate(l, L->act, z, at);
		l->layer_out[li] = l->layer_post[li] = y;
		for (int k = 0; k < L->nouts; k++) {
			const SemaOutput *o = &m->outs[L->outs[k]];
			int s = ir_slice(l->f, y, o->offset, o->offset + o->size, o->item->span);
			ir_set_name(l->f, s, o->name);
			l->out_node[L->outs[k]] = s;
		}
		return;
	}
	int h_prev = l->state_in[L->h_state];
	l->layer_h_prev[li] = h_prev;
	int zh = linear_part(l, h_prev, find_t(L, "w_hh"), find_t(L, "b_hh"), at);
	int zi = linear_part(l, src, find_t(L, "w_ih"), find_t(L, "b_ih"), at);
	int a = ir_add(l->f, IR_ADD, zh, zi, at);
	snprintf(nm, sizeof nm, "%s.%s", L->name, L->kind == LAYER_LSTM ? "gates" : "a");
	ir_set_name(l->f, a, nm);
	if (L->kind == LAYER_RNN) {
		int h = activate(l, L->act, a, at);
		l->layer_out[li] = l->layer_post[li] = h;
		l->new_state[L->h_state] = h;
		return;
	}
	int64_t H = L->size;
	int gi = ir_add(l->f, IR_SIGMOID, ir_slice(l->f, a, 0, H, at), -1, at);
	int gf = ir_add(l->f, IR_SIGMOID, ir_slice(l->f, a, H, 2 * H, at), -1, at);
	int gg = ir_add(l->f, IR_TANH, ir_slice(l->f, a, 2 * H, 3 * H, at), -1, at);
	int go = ir_add(l->f, IR_SIGMOID, ir_slice(l->f, a, 3 * H, 4 * H, at), -1, at);
	int fc = ir_add(l->f, IR_MUL, gf, l->state_in[L->c_state], at);
	int ig = ir_add(l->f, IR_MUL, gi, gg, at);
	int c = ir_add(l->f, IR_ADD, fc, ig, at);
	int h = ir_add(l->f, IR_MUL, go, ir_add(l->f, IR_TANH, c, -1, at), at);
	snprintf(nm, sizeof nm, "%s.c", L->name);
	ir_set_name(l->f, c, nm);
	snprintf(nm, sizeof nm, "%s.h", L->name);
	ir_set_name(l->f, h, nm);
	l->layer_out[li] = h;
	int post = ir_add(l->f, IR_CONCAT, gi, gf, at);
	post = ir_add(l->f, IR_CONCAT, post, gg, at);
	l->layer_post[li] = ir_add(l->f, IR_CONCAT, post, go, at);
	l->new_state[L->h_state] = h;
	l->new_state[L->c_state] = c;
}

/* ---- plasticity ---- */

static bool uses_grad(const AstExpr *e)
{
	if (!e)
		return false;
	if (e->kind == AST_CALL && strcmp(e->name, "grad") == 0)
		return true;
	for (int i = 0; i < e->nargs; i++)
		if (uses_grad(e->args[i]))
			return true;
	return false;
}

static const AstExpr *clause_of(const SemaLayer *L, const SemaTensor *t)
{
	return t->is_bias ? L->rule->bias : L->rule->value;
}

/* A per-trial scalar: [B,1] or [1] becomes rank 0. */
static int per_trial_scalar(Lower *l, int n, SrcSpan at)
{
	IrShape s = shape_of(l, n);
	if (s.rank == 0)
		return n;
	return ir_reshape(l->f, n, ir_shape0(s.batch), at);
}

static void lower_plasticity(Lower *l)
{
	const SemaModel *m = l->m;
	IrFunc *f = l->f;
	/* (1) all gradients of the internal loss in one reverse pass */
	int nwrt = 0;
	int *wrt = malloc((size_t)(m->nstate + 1) * sizeof *wrt);
	int *wst = malloc((size_t)(m->nstate + 1) * sizeof *wst);
	int *bars = malloc((size_t)(m->nstate + 1) * sizeof *bars);
	if (!wrt || !wst || !bars)
		ir_fatal("out of memory");
	for (int li = 0; li < m->nlayers; li++) {
		const SemaLayer *L = &m->layers[li];
		if (!L->plastic || !L->rule)
			continue;
		for (int k = 0; k < L->nt; k++)
			if (L->t[k].state >= 0 && uses_grad(clause_of(L, &L->t[k]))) {
				wst[nwrt] = L->t[k].state;
				wrt[nwrt++] = l->state_in[L->t[k].state];
			}
	}
	if (nwrt > 0) {
		l->loss = lower_expr(l, m->internal_loss);
		ir_set_name(f, l->loss, "internal_loss");
		int one = ir_const(f, 1.0, shape_of(l, l->loss), m->internal_loss->span);
		if (ad_vjp(f, 1, &l->loss, &one, nwrt, wrt, bars, stderr) != 0)
			ir_fatal("lower: ad_vjp failed on the internal loss");
		for (int k = 0; k < nwrt; k++)
			l->grad_of[wst[k]] = bars[k];
	}
	/* (2) the rules' values Δ, expanded to the state's shape */
	int *delta = malloc((size_t)(m->nstate + 1) * sizeof *delta);
	if (!delta)
		ir_fatal("out of memory");
	for (int i = 0; i < m->nstate; i++)
		delta[i] = -1;
	int n2 = -1;
	for (int li = 0; li < m->nlayers; li++) {
		const SemaLayer *L = &m->layers[li];
		if (!L->plastic || !L->rule)
			continue;
		for (int k = 0; k < L->nt; k++) {
			const SemaTensor *t = &L->t[k];
			if (t->state < 0)
				continue;
			const AstExpr *e = clause_of(L, t);
			l->in_rule = true;
			l->pre = t->is_bias ? -1 : t->pre_is_h ? l->layer_h_prev[li] : l->layer_src[li];
			l->post = l->layer_post[li];
			l->w = l->state_in[t->state];
			l->W = param_node(l, t->param);
			int d = lower_expr(l, e);
			l->in_rule = false;
			d = ir_expand(f, d, m->state[t->state].shape, e->span);
			char nm[512];
			snprintf(nm, sizeof nm, "%s.%s.delta", L->name, t->suffix);
			ir_set_name(f, d, nm);
			delta[t->state] = d;
			if (m->has_max_norm) {
				int sq = ir_add(f, IR_SQUARE, d, -1, e->span);
				sq = ir_sum_to(f, sq, ir_shape0(true), e->span);
				n2 = n2 < 0 ? sq : ir_add(f, IR_ADD, n2, sq, e->span);
			}
		}
	}
	/* (3) max-norm scale: max_norm / sqrt(max(n2, max_norm^2)) */
	int scale = -1;
	if (m->has_max_norm && n2 >= 0) {
		SrcSpan at = nospan();
		int mx = ir_add(f, IR_MAX, n2, scalar_const(l, m->max_norm * m->max_norm, at), at);
		int num = scalar_const(l, m->max_norm, at);
		scale = ir_add(f, IR_DIV, num, ir_add(f, IR_SQRT, mx, -1, at), at);
		ir_set_name(f, scale, "max_norm_scale");
	}
	/* (4) the updates */
	for (int li = 0; li < m->nlayers; li++) {
		const SemaLayer *L = &m->layers[li];
		if (!L->plastic || !L->rule)
			continue;
		SrcSpan at = L->item->span;
		int rate = per_trial_scalar(l, lower_expr(l, L->rate), L->rate->span);
		int keep = -1;
		if (L->decay) {
			int decay = per_trial_scalar(l, lower_expr(l, L->decay), L->decay->span);
			keep = ir_add(f, IR_SUB, scalar_const(l, 1.0, L->decay->span), decay, L->decay->span);
		}
		int coef = scale >= 0 ? ir_add(f, IR_MUL, rate, scale, at) : rate;
		for (int k = 0; k < L->nt; k++) {
			const SemaTensor *t = &L->t[k];
			if (t->state < 0)
				continue;
			int old = l->state_in[t->state];
			int step = ir_add(f, IR_MUL, coef, delta[t->state], at);
			if (t->alpha >= 0)
				step = ir_add(f, IR_MUL, step, param_node(l, t->alpha), at);
			int kept = keep >= 0 ? ir_add(f, IR_MUL, keep, old, at) : old;
			int nw = ir_add(f, IR_ADD, kept, step, at);
			nw = ir_expand(f, nw, m->state[t->state].shape, at);
			ir_set_name(f, nw, m->state[t->state].name);
			l->new_state[t->state] = nw;
		}
	}
	free(wrt);
	free(wst);
	free(bars);
	free(delta);
}

/* ---- the program ---- */

static char *xstrdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d)
		ir_fatal("out of memory");
	return d;
}

static ProgTensor *copy_tensors(const ProgTensor *t, int n)
{
	ProgTensor *c = calloc((size_t)n + 1, sizeof *c);
	if (!c)
		ir_fatal("out of memory");
	for (int i = 0; i < n; i++) {
		c[i] = t[i];
		c[i].name = xstrdup(t[i].name);
	}
	return c;
}

/* One step function of the model: step_forward, or (eval) step_forward_eval. */
static IrFunc *lower_step(const SemaModel *m, DiagCtx *d, bool eval)
{
	Lower l;
	memset(&l, 0, sizeof l);
	l.m = m;
	l.diag = d;
	l.eval = eval;
	l.f = ir_func_new(eval ? "step_forward_eval" : "step_forward");
	int nl = m->nlayers + 1, ns = m->nstate + 1, no = m->nouts + 1;
	l.state_in = malloc((size_t)ns * sizeof(int));
	l.new_state = malloc((size_t)ns * sizeof(int));
	l.grad_of = malloc((size_t)ns * sizeof(int));
	l.param = malloc((size_t)(m->nparams + 1) * sizeof(int));
	l.bn_batch = malloc((size_t)(m->nparams + 1) * sizeof(int));
	l.layer_out = malloc((size_t)nl * sizeof(int));
	l.layer_post = malloc((size_t)nl * sizeof(int));
	l.layer_src = malloc((size_t)nl * sizeof(int));
	l.layer_h_prev = malloc((size_t)nl * sizeof(int));
	l.out_node = malloc((size_t)no * sizeof(int));
	if (!l.state_in || !l.bn_batch || !l.new_state || !l.grad_of || !l.param || !l.layer_out || !l.layer_post ||
		!l.layer_src ||
		!l.layer_h_prev || !l.out_node)
		ir_fatal("out of memory");
	for (int i = 0; i < m->nparams; i++)
		l.param[i] = l.bn_batch[i] = -1;
	for (int i = 0; i < m->nstate; i++)
		l.new_state[i] = l.grad_of[i] = -1;
	for (int i = 0; i < m->nlayers; i++)
		l.layer_h_prev[i] = -1;
	l.loss = -1;

	l.x = ir_input(l.f, IR_ROLE_DATA, 0, ir_shape1(true, m->in_size), m->input_name);
	for (int i = 0; i < m->nstate; i++)
		l.state_in[i] = ir_input(l.f, IR_ROLE_STATE, i, m->state[i].shape, m->state[i].name);
	for (int li = 0; li < m->nlayers; li++)
		lower_layer(&l, li);
	lower_plasticity(&l);

	int o = -1;
	for (int i = 0; i < m->nouts; i++)
		o = o < 0 ? l.out_node[i] : concat2(&l, o, l.out_node[i], nospan());
	ir_output(l.f, IR_ROLE_PRED, 0, l.out_node[m->pred], m->outs[m->pred].name);
	ir_output(l.f, IR_ROLE_OUTPUTS, 0, o, "outputs");
	for (int i = 0; i < m->nstate; i++) {
		if (l.new_state[i] < 0)
			ir_fatal("lower: state '%s' has no new value", m->state[i].name);
		ir_output(l.f, IR_ROLE_STATE, i, l.new_state[i], m->state[i].name);
	}
	for (int i = 0; i < m->nparams && !eval; i++)
		if (m->params[i].running) {
			if (l.bn_batch[i] < 0)
				ir_fatal("lower: running statistic '%s' has no batch value", m->params[i].name);
			ir_output(l.f, IR_ROLE_PARAM_BAR, i, l.bn_batch[i], m->params[i].name);
		}
	free(l.bn_batch);
	free(l.state_in);
	free(l.new_state);
	free(l.grad_of);
	free(l.param);
	free(l.layer_out);
	free(l.layer_post);
	free(l.layer_src);
	free(l.layer_h_prev);
	free(l.out_node);
	if (ir_verify(l.f, stderr) != 0)
		ir_fatal("lowering of model '%s' produced an invalid step function", m->name);
	return l.f;
}

Program *lower_model(const SemaModel *m, const char *source, DiagCtx *d)
{
	Program *p = calloc(1, sizeof *p);
	if (!p)
		ir_fatal("out of memory");
	p->name = xstrdup(m->name);
	p->source = xstrdup(source);
	p->settings = xstrdup(m->settings);
	p->in_size = (int)m->in_size;
	p->pred_size = (int)m->pred_size;
	p->out_size = (int)m->out_size;
	p->meta_loss = m->meta_loss;
	p->params = copy_tensors(m->params, m->nparams);
	p->n_params = m->nparams;
	p->state = copy_tensors(m->state, m->nstate);
	p->n_state = m->nstate;
	for (int i = 0; i < m->nlayers; i++)
		p->couples_rows |= m->layers[i].kind == LAYER_CONV4; /* its batch norm */

	bool running = false;
	for (int i = 0; i < m->nparams; i++)
		running |= m->params[i].running;
	p->fwd = lower_step(m, d, false);
	if (running)
		p->fwd_eval = lower_step(m, d, true);
	return p;
}
