/* tests/test_emitc.c -- the C backend against the interpreter, and the memory plan's invariants.
 *
 * Programs are built by hand with the ir.h builder: an "op zoo" with one or more cases of every op of
 * ops.def (the test fails when an op has no case, so a new op cannot go unlowered) and a small plastic
 * RNN shaped like the real models. Each program gets its step VJP from ad_step_vjp, is emitted as C in
 * double and in float, compiled with the system C compiler into a shared object (the generated code must
 * pass -Wall -Wextra -Werror) and run at several batch sizes against interp_run (emitc_harness.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "emit_c.h"
#include "emitc_harness.h"
#include "interp.h"
#include "ir.h"
#include "memplan.h"

static const SrcSpan NOLOC = {0};

static IrShape S(bool batch, int rank, int64_t d0, int64_t d1, int64_t d2)
{
	int64_t d[3] = {d0, d1, d2};
	return ir_shape(batch, rank, d);
}

static char *dup(const char *s)
{
	char *d = malloc(strlen(s) + 1);
	strcpy(d, s);
	return d;
}

/* ---- building Programs ---- */

typedef struct Builder {
	Program *p;
	IrFunc *f;
	int cap_p, cap_s;
	int zoo_case;
} Builder;

static void builder_init(Builder *b, const char *name, int in_size, int pred_size, int out_size)
{
	memset(b, 0, sizeof *b);
	b->p = calloc(1, sizeof *b->p);
	b->p->name = dup(name);
	b->p->source = dup("tests/test_emitc.c");
	b->p->settings = dup("");
	snprintf(b->p->hash, sizeof b->p->hash, "0123456789abcdef");
	b->p->in_size = in_size;
	b->p->pred_size = pred_size;
	b->p->out_size = out_size;
	b->p->meta_loss = PL_LOSS_MSE;
	b->cap_p = b->cap_s = 1024;
	b->p->params = calloc((size_t)b->cap_p, sizeof *b->p->params);
	b->p->state = calloc((size_t)b->cap_s, sizeof *b->p->state);
	b->f = ir_func_new("step_forward");
	b->p->fwd = b->f;
}

static int add_param(Builder *b, const char *name, IrShape s)
{
	assert_true(b->p->n_params < b->cap_p);
	ProgTensor *t = &b->p->params[b->p->n_params];
	t->name = dup(name);
	t->shape = s;
	t->init = PL_INIT_UNIFORM;
	t->init_a = 0.5;
	t->trainable = true;
	return ir_param(b->f, b->p->n_params++, s, name);
}

/* a state tensor: returns its index; *in receives the INPUT node */
static int add_state(Builder *b, const char *name, IrShape s, int *in)
{
	assert_true(b->p->n_state < b->cap_s);
	assert_true(s.batch);
	ProgTensor *t = &b->p->state[b->p->n_state];
	t->name = dup(name);
	t->shape = s;
	*in = ir_input(b->f, IR_ROLE_STATE, b->p->n_state, s, name);
	return b->p->n_state++;
}

/* ---- the op zoo ---- */

typedef struct Case {
	IrOp op;
	int nin;
	IrShape in[2];
	IrShape out; /* EXPAND, SUM_TO, RESHAPE */
	int64_t a[4];
	int const_in; /* 1 + index of an operand that is a CONST instead of an input */
} Case;

#define B2x3 S(true, 2, 2, 3, 0)

static int zoo_cases(Case *cs)
{
	int n = 0;
	static const IrShape none = {0};
	const IrOp ew1[] = {IR_NEG, IR_EXP, IR_LOG, IR_SQRT, IR_SQUARE, IR_ABS, IR_RELU, IR_TANH, IR_SIGMOID,
		IR_STEP, IR_SIGN};
	const IrOp ew2[] = {IR_ADD, IR_SUB, IR_MUL, IR_DIV, IR_MAX, IR_MIN};
	const IrShape u1[] = {B2x3, S(false, 1, 3, 0, 0), S(true, 0, 0, 0, 0)};
	const IrShape b2[][2] = {
		{B2x3, B2x3},
		{B2x3, S(false, 1, 3, 0, 0)},
		{S(false, 2, 2, 1, 0), S(true, 2, 1, 3, 0)},
		{S(true, 0, 0, 0, 0), S(false, 2, 2, 3, 0)},
		{S(false, 1, 4, 0, 0), S(false, 1, 4, 0, 0)},
		{S(false, 0, 0, 0, 0), S(true, 1, 2, 0, 0)},
		{B2x3, S(true, 2, 2, 1, 0)},
		{S(true, 3, 2, 3, 2), S(false, 2, 3, 1, 0)},
	};
	for (size_t i = 0; i < sizeof ew1 / sizeof *ew1; i++)
		for (size_t k = 0; k < sizeof u1 / sizeof *u1; k++)
			cs[n++] = (Case){ew1[i], 1, {u1[k], none}, none, {0}, 0};
	for (size_t i = 0; i < sizeof ew2 / sizeof *ew2; i++)
		for (size_t k = 0; k < sizeof b2 / sizeof *b2; k++)
			cs[n++] = (Case){ew2[i], 2, {b2[k][0], b2[k][1]}, none, {0}, 0};
	/* constants folded into the code, batched and not */
	cs[n++] = (Case){IR_MUL, 2, {B2x3, S(false, 0, 0, 0, 0)}, none, {0}, 2};
	cs[n++] = (Case){IR_SUB, 2, {S(true, 2, 2, 3, 0), B2x3}, none, {0}, 1};
#define C1(X, O, A0, A1) cs[n++] = (Case){op, 1, {X, none}, O, {A0, A1, 0, 0}, 0}
#define C2(X, Y, A0, A1) cs[n++] = (Case){op, 2, {X, Y}, none, {A0, A1, 0, 0}, 0}
	IrOp op;
	op = IR_EXPAND;
	C1(S(false, 2, 1, 3, 0), B2x3, 0, 0);
	C1(S(false, 0, 0, 0, 0), S(true, 1, 2, 0, 0), 0, 0);
	C1(S(true, 0, 0, 0, 0), B2x3, 0, 0);
	C1(S(true, 2, 1, 3, 0), B2x3, 0, 0);
	C1(S(true, 1, 3, 0, 0), S(true, 3, 2, 2, 3), 0, 0);
	op = IR_SUM_TO;
	C1(B2x3, S(false, 1, 3, 0, 0), 0, 0);
	C1(B2x3, S(true, 0, 0, 0, 0), 0, 0);
	C1(B2x3, S(false, 2, 2, 1, 0), 0, 0);
	C1(B2x3, S(true, 2, 2, 1, 0), 0, 0);
	C1(S(true, 1, 4, 0, 0), S(false, 0, 0, 0, 0), 0, 0);
	C1(B2x3, S(true, 2, 1, 3, 0), 0, 0);
	C1(S(true, 3, 2, 3, 4), S(false, 2, 3, 4, 0), 0, 0);
	op = IR_RESHAPE;
	C1(B2x3, S(true, 1, 6, 0, 0), 0, 0);
	C1(S(false, 1, 6, 0, 0), S(false, 2, 2, 3, 0), 0, 0);
	C1(S(true, 1, 1, 0, 0), S(true, 0, 0, 0, 0), 0, 0);
	op = IR_SLICE;
	C1(S(true, 1, 5, 0, 0), none, 1, 4);
	C1(S(true, 2, 2, 5, 0), none, 0, 2);
	C1(S(false, 1, 5, 0, 0), none, 2, 5);
	op = IR_PAD;
	C1(S(true, 1, 3, 0, 0), none, 1, 6);
	C1(S(true, 2, 2, 3, 0), none, 0, 4);
	C1(S(false, 1, 3, 0, 0), none, 2, 5);
	op = IR_CONCAT;
	C2(S(true, 1, 2, 0, 0), S(true, 1, 3, 0, 0), 0, 0);
	C2(S(true, 2, 2, 1, 0), S(true, 2, 2, 2, 0), 0, 0);
	C2(S(false, 1, 2, 0, 0), S(false, 1, 3, 0, 0), 0, 0);
	op = IR_MATMUL;
	C2(S(true, 1, 3, 0, 0), S(false, 2, 3, 4, 0), 0, 0);
	C2(S(true, 1, 3, 0, 0), S(true, 1, 4, 0, 0), 1, 0);
	C2(S(true, 1, 4, 0, 0), S(false, 2, 3, 4, 0), 0, 1);
	C2(S(false, 2, 2, 3, 0), S(false, 2, 3, 4, 0), 0, 0);
	C2(S(false, 2, 3, 2, 0), S(false, 2, 3, 4, 0), 1, 0);
	C2(S(false, 2, 2, 3, 0), S(false, 2, 4, 3, 0), 0, 1);
	C2(S(false, 2, 3, 2, 0), S(false, 2, 4, 3, 0), 1, 1);
	cs[n++] = (Case){IR_MATMUL, 2, {S(true, 1, 3, 0, 0), S(false, 2, 3, 4, 0)}, none, {0}, 2};
	op = IR_BMV;
	C2(S(true, 1, 3, 0, 0), S(true, 2, 3, 4, 0), 0, 0);
	op = IR_BMVT;
	C2(S(true, 2, 3, 4, 0), S(true, 1, 4, 0, 0), 0, 0);
	op = IR_OUTER;
	C2(S(true, 1, 3, 0, 0), S(true, 1, 4, 0, 0), 0, 0);
	C2(S(true, 1, 1, 0, 0), S(true, 1, 5, 0, 0), 0, 0);
	/* images [C,H,W], kernels [Co,C,k*k]; a0 = k, a1 = stride, a2 = padding */
	int64_t kp[][3] = {{3, 1, 1}, {3, 2, 0}, {2, 1, 0}, {3, 2, 2}};
	for (size_t q = 0; q < sizeof kp / sizeof *kp; q++) {
		int64_t k = kp[q][0], st = kp[q][1], pd = kp[q][2], H = 5, W = 6;
		int64_t Ho = (H + 2 * pd - k) / st + 1, Wo = (W + 2 * pd - k) / st + 1;
		IrShape img = S(true, 3, 2, H, W), ker = S(q == 2, 3, 3, 2, k * k), og = S(true, 3, 3, Ho, Wo);
		IrShape img_u = S(false, 3, 2, H, W);
		cs[n++] = (Case){IR_CONV2D, 2, {q == 1 ? img_u : img, ker}, none, {k, st, pd, 0}, 0};
		cs[n++] = (Case){IR_CONV2D_T, 2, {og, ker}, img, {k, st, pd, 0}, 0};
		cs[n++] = (Case){IR_CONV2D_W, 2, {img, og}, none, {k, st, pd, 0}, 0};
	}
	int64_t pk[][2] = {{2, 2}, {3, 1}, {2, 3}};
	for (size_t q = 0; q < sizeof pk / sizeof *pk; q++) {
		int64_t k = pk[q][0], st = pk[q][1], H = 6, W = 7;
		IrShape img = S(true, 3, 2, H, W), pooled = S(true, 3, 2, (H - k) / st + 1, (W - k) / st + 1);
		cs[n++] = (Case){IR_MAXPOOL, 1, {img, none}, none, {k, st, 0, 0}, 0};
		cs[n++] = (Case){IR_POOL_ARGMAX, 1, {img, none}, none, {k, st, 0, 0}, 0};
		/* the selector operand is pool_argmax of a fresh image (zoo_operand) */
		cs[n++] = (Case){IR_POOL_GATHER, 2, {img, pooled}, none, {k, st, 0, 0}, 0};
		cs[n++] = (Case){IR_POOL_SCATTER, 2, {pooled, pooled}, img, {k, st, 0, 0}, 0};
	}
#undef C1
#undef C2
	return n;
}

/* An operand of a case: a state input if batched, a parameter if not, or a CONST; ops whose domain is
 * not the whole line read exp() of it. */
static int zoo_operand(Builder *b, const Case *c, int k)
{
	char name[64];
	int id;
	if (c->const_in == k + 1)
		return ir_const(b->f, 0.75, c->in[k], NOLOC);
	if (k == 1 && (c->op == IR_POOL_GATHER || c->op == IR_POOL_SCATTER)) {
		/* a valid selector: the argmax of an image of the unpooled shape */
		IrShape img = c->op == IR_POOL_GATHER ? c->in[0] : c->out;
		snprintf(name, sizeof name, "c%d.img", b->zoo_case);
		add_state(b, name, img, &id);
		return ir_pool(b->f, IR_POOL_ARGMAX, id, -1, c->a[0], c->a[1], NOLOC);
	}
	snprintf(name, sizeof name, "c%d.%c", b->zoo_case, "xy"[k]);
	if (c->in[k].batch)
		add_state(b, name, c->in[k], &id);
	else
		id = add_param(b, name, c->in[k]);
	bool positive = c->op == IR_LOG || c->op == IR_SQRT || (c->op == IR_DIV && k == 1);
	return positive ? ir_add(b->f, IR_EXP, id, -1, NOLOC) : id;
}

static Program *build_zoo(bool *covered)
{
	Builder b;
	static Case cs[300];
	int n = zoo_cases(cs);
	builder_init(&b, "zoo", 2, 2, 2);
	int x = ir_input(b.f, IR_ROLE_DATA, 0, S(true, 1, 2, 0, 0), "x");
	int inv = ir_add(b.f, IR_INV_BATCH, -1, -1, NOLOC);
	covered[IR_INV_BATCH] = covered[IR_INPUT] = covered[IR_PARAM] = covered[IR_CONST] = true;
	int y = ir_add(b.f, IR_MUL, ir_add(b.f, IR_TANH, x, -1, NOLOC), inv, NOLOC);
	ir_set_name(b.f, y, "y");
	int *res = calloc((size_t)n, sizeof *res), *sidx = calloc((size_t)n, sizeof *sidx);
	for (int i = 0; i < n; i++) {
		const Case *c = &cs[i];
		b.zoo_case = i;
		int a0 = zoo_operand(&b, c, 0), a1 = c->nin > 1 ? zoo_operand(&b, c, 1) : -1;
		int r = ir_add_full(b.f, c->op, a0, a1,
			(c->op == IR_EXPAND || c->op == IR_SUM_TO || c->op == IR_RESHAPE || c->op == IR_CONV2D_T ||
				c->op == IR_POOL_SCATTER) ? &c->out : NULL, 0.0, c->a,
			NOLOC);
		covered[c->op] = true;
		char name[64];
		snprintf(name, sizeof name, "c%d.r", i);
		ir_set_name(b.f, r, name);
		/* results leave as state, which is batched */
		IrShape sr = b.f->nodes[r].shape;
		sr.batch = true;
		res[i] = ir_expand(b.f, r, sr, NOLOC);
		snprintf(name, sizeof name, "c%d.out", i);
		int in;
		sidx[i] = add_state(&b, name, sr, &in);
		(void)in;
	}
	ir_output(b.f, IR_ROLE_PRED, 0, y, "y");
	ir_output(b.f, IR_ROLE_OUTPUTS, 0, y, "o");
	for (int i = 0; i < n; i++)
		ir_output(b.f, IR_ROLE_STATE, sidx[i], res[i], b.p->state[sidx[i]].name);
	/* state without an output port keeps a zero adjoint; all operands of the cases are such state */
	free(res);
	free(sidx);
	assert_int_equal(ir_verify(b.f, stderr), 0);
	assert_int_equal(ad_step_vjp(b.p, stderr), 0);
	return b.p;
}

static Case zoo_probe[300];

static void test_op_zoo(void **state)
{
	bool covered[IR_OP_COUNT] = {false};
	Program *p = build_zoo(covered);
	for (int op = 0; op < IR_OP_COUNT; op++)
		if (!covered[op]) {
			fprintf(stderr, "op %s has no case in the emitter's op zoo\n", ir_op_name((IrOp)op));
			fail();
		}
	EmitcCheck r;
	assert_int_equal(emitc_check_program(p, 2e-5, &r), 0);
	printf("# op zoo: %d cases, %d nodes fwd, %d vjp; %d values compared; max rel err double %.2g, float %.2g\n",
		zoo_cases(zoo_probe), p->fwd->n, p->vjp->n, r.compared, r.max_err_double, r.max_err_float);
	assert_true(r.compared > 1000);
	program_free(p);
}

/* ---- a small plastic RNN ----
 *   z  = x @ w_in + b                        h' = tanh(z + h @ (w_hh + alpha * hebb))
 *   o  = h' @ w_out;  y = o[:, :2];  m = o[:, 2]
 *   eta = 0.2 * sigmoid(m);   hebb' = hebb + eta * (outer(h, h') - hebb)
 * with source locations on the nodes (for the #line test). */
static Program *build_rnn(int H)
{
	Builder b;
	static const char *file = "mini.plast";
	SrcSpan at[8];
	for (int k = 0; k < 8; k++)
		at[k] = (SrcSpan){file, 3 + k, 5, 3 + k, 20};
	builder_init(&b, "mini-rnn", 3, 2, 3);
	IrFunc *f = b.f;
	int x = ir_input(f, IR_ROLE_DATA, 0, S(true, 1, 3, 0, 0), "x");
	int h, hebb;
	add_state(&b, "cell.h", S(true, 1, H, 0, 0), &h);
	add_state(&b, "cell.w_hh~", S(true, 2, H, H, 0), &hebb);
	int w_in = add_param(&b, "enc.w", S(false, 2, 3, H, 0));
	int bias = add_param(&b, "enc.b", S(false, 1, H, 0, 0));
	int w_hh = add_param(&b, "cell.w_hh", S(false, 2, H, H, 0));
	int alpha = add_param(&b, "cell.alpha_hh", S(false, 2, H, H, 0));
	int w_out = add_param(&b, "head.w", S(false, 2, H, 3, 0));
	int z = ir_add(f, IR_ADD, ir_matmul(f, x, w_in, false, false, at[0]), bias, at[0]);
	ir_set_name(f, z, "enc.z");
	int weff = ir_add(f, IR_ADD, w_hh, ir_add(f, IR_MUL, alpha, hebb, at[1]), at[1]);
	ir_set_name(f, weff, "cell.w_eff");
	int hn = ir_add(f, IR_TANH, ir_add(f, IR_ADD, z, ir_add(f, IR_BMV, h, weff, at[1]), at[1]), -1, at[1]);
	ir_set_name(f, hn, "cell.h_new");
	int o = ir_matmul(f, hn, w_out, false, false, at[2]);
	ir_set_name(f, o, "head.o");
	int y = ir_slice(f, o, 0, 2, at[2]);
	ir_set_name(f, y, "y");
	int m = ir_reshape(f, ir_slice(f, o, 2, 3, at[3]), S(true, 0, 0, 0, 0), at[3]);
	int eta = ir_add(f, IR_MUL, ir_const(f, 0.2, S(false, 0, 0, 0, 0), at[4]),
		ir_add(f, IR_SIGMOID, m, -1, at[4]), at[4]);
	ir_set_name(f, eta, "eta");
	int dw = ir_add(f, IR_SUB, ir_add(f, IR_OUTER, h, hn, at[5]), hebb, at[5]);
	int hebb_n = ir_add(f, IR_ADD, hebb, ir_add(f, IR_MUL, eta, dw, at[5]), at[5]);
	ir_set_name(f, hebb_n, "cell.w_hh~_new");
	ir_output(f, IR_ROLE_PRED, 0, y, "y");
	ir_output(f, IR_ROLE_OUTPUTS, 0, o, "o");
	ir_output(f, IR_ROLE_STATE, 0, hn, "cell.h");
	ir_output(f, IR_ROLE_STATE, 1, hebb_n, "cell.w_hh~");
	assert_int_equal(ir_verify(f, stderr), 0);
	assert_int_equal(ad_step_vjp(b.p, stderr), 0);
	return b.p;
}

static void test_plastic_rnn(void **state)
{
	Program *p = build_rnn(8);
	EmitcCheck r;
	assert_int_equal(emitc_check_program(p, 2e-5, &r), 0);
	printf("# plastic rnn H=8: %d values compared; max rel err double %.2g, float %.2g\n", r.compared,
		r.max_err_double, r.max_err_float);
	/* and with one loop per node, every value stored */
	emitc_harness_options.no_fuse = true;
	int rc = emitc_check_program(p, 2e-5, &r);
	emitc_harness_options.no_fuse = false;
	assert_int_equal(rc, 0);
	/* and with single-reader fusion only (no recomputation of outer products in several loops) */
	emitc_harness_options.no_multi_fuse = true;
	rc = emitc_check_program(p, 2e-5, &r);
	emitc_harness_options.no_multi_fuse = false;
	assert_int_equal(rc, 0);
	/* and with the batch loop outermost in every nest (PLASTC_NO_BATCH_INNER) */
	emitc_harness_options.no_batch_inner = true;
	rc = emitc_check_program(p, 2e-5, &r);
	emitc_harness_options.no_batch_inner = false;
	assert_int_equal(rc, 0);
	program_free(p);
}

/* The text carries what a reader needs: header comments, #line back to the DSL, _b adjoint names,
 * BLAS for the matmul, the descriptor, main only on request. */
static void test_text(void **state)
{
	Program *p = build_rnn(4);
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	EmitcOptions o = {.main = true, .c_name = "mini.c"};
	assert_int_equal(emitc_program(p, &o, m, stderr), 0);
	fclose(m);
	const char *want[] = {
		"#include \"plastrt.h\"",
		"#include <cblas.h>",
		"static void mini_rnn_step_forward(const PlStepArgs *a)",
		"static void mini_rnn_step_vjp(const PlStepArgs *a)",
		"/* mini_rnn_step_vjp: the vector-Jacobian product",
		"#line 3 \"mini.plast\"",
		"cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, 4, 3, 1.0f, in0, 3, in1, 4, 0.0f, out, 4);",
		"cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,",
		"_b = w + ", /* adjoints named after their value */
		"= a->param_bar[0]; /* [",
		", accumulated in place */", /* weight gradients go straight into param_bar ... */
		"(int)B, 1.0f, in0, ", ", 1.0f, out, ", /* ... by an sgemm over the batch with beta = 1 */
		"cell_w_hh_p_out_b",
		"#pragma omp simd reduction(+:acc", /* acc, or acc0, acc1, ... in a merged nest */
		"const PlModel mini_rnn_model = {",
		".abi_version = PL_ABI_VERSION,",
		"{\"cell.w_hh~\", 2, {4, 4, 0}, PL_INIT_ZERO, 0, 0, 0, 0},",
		"return pl_main(&mini_rnn_model, argc, argv);",
	};
	for (size_t k = 0; k < sizeof want / sizeof *want; k++)
		if (!strstr(buf, want[k])) {
			fprintf(stderr, "generated C lacks: %s\n", want[k]);
			fail();
		}
	/* every #line to the C file names the line that follows it */
	long line = 1;
	int back = 0;
	for (char *s = buf; *s; line++) {
		char *nl = strchr(s, '\n');
		if (strncmp(s, "#line ", 6) == 0 && strstr(s, "\"mini.c\"") && (!nl || strstr(s, "\"mini.c\"") < nl)) {
			assert_int_equal(strtol(s + 6, NULL, 10), line + 1);
			back++;
		}
		if (!nl)
			break;
		s = nl + 1;
	}
	assert_true(back > 0);
	/* fusion: the Hebbian update hebb + eta * (outer(h, h') - hebb) is one loop writing state_out[1] */
	const char *fwd = strstr(buf, "static void mini_rnn_step_forward(");
	const char *vjp = strstr(buf, "static void mini_rnn_step_vjp(");
	assert_non_null(fwd);
	assert_non_null(vjp);
	char *fwd_text = strndup(fwd, (size_t)(vjp - fwd));
	assert_null(strstr(fwd_text, "= outer "));
	assert_non_null(strstr(fwd_text, "real *const cell_w_hh_p_new = a->state_out[1]; /* [B,4,4], computed in place */"));
	/* nests that read a static matrix (alpha) beside per-trial ones run the trials inside the rows
	 * (nest_batch_inner): a batch loop that is not the outermost one */
	assert_non_null(strstr(fwd_text, "for (long i1 = 0; i1 < B; i1++)"));
	free(fwd_text);
	free(buf);

	/* no main unless asked; the double variant exports its functions */
	buf = NULL;
	m = open_memstream(&buf, &len);
	EmitcOptions d = {.use_double = true, .no_line = true};
	assert_int_equal(emitc_program(p, &d, m, stderr), 0);
	fclose(m);
	assert_null(strstr(buf, "int main("));
	assert_null(strstr(buf, "#line"));
	assert_non_null(strstr(buf, "typedef double real;"));
	assert_non_null(strstr(buf, "void mini_rnn_step_vjp(const PlStepArgsD *a)\n{"));
	assert_non_null(strstr(buf, "cblas_dgemm("));
	free(buf);

	/* PLASTC_NO_BATCH_INNER's option: every batch loop is outermost again */
	buf = NULL;
	m = open_memstream(&buf, &len);
	EmitcOptions nb = {.no_line = true, .no_batch_inner = true};
	assert_int_equal(emitc_program(p, &nb, m, stderr), 0);
	fclose(m);
	assert_null(strstr(buf, "i1 < B;"));
	assert_non_null(strstr(buf, "for (long i0 = 0; i0 < B; i0++)"));
	free(buf);
	program_free(p);
}

/* ---- the memory plan ---- */

/* Invariants for B in 1..9: slots aligned, inside work_floats(B), and no two values that are live at
 * the same time overlap. Also: storage is actually shared (the plan beats one slot per value). */
static void check_plan(const IrFunc *f)
{
	MemPlan *mp = memplan_build(f);
	int n = f->n;
	int *last = malloc(sizeof *last * (size_t)(n + 1));
	for (int i = 0; i < n; i++) {
		last[i] = i;
		for (int k = 0; k < ir_op_info[f->nodes[i].op].nin; k++)
			last[f->nodes[i].in[k]] = i;
	}
	for (int i = 0; i < n; i++)
		for (int k = 0; k < ir_op_info[f->nodes[i].op].nin; k++)
			if (last[f->nodes[i].in[k]] < i)
				last[f->nodes[i].in[k]] = i;
	for (int k = 0; k < f->nouts; k++)
		last[f->outs[k].node] = n;
	int64_t naive_b = 0, naive_c = 0;
	for (int i = 0; i < n; i++) {
		const IrNode *nd = &f->nodes[i];
		bool leaf = nd->op == IR_PARAM || nd->op == IR_INPUT || nd->op == IR_INV_BATCH;
		if (leaf)
			assert_false(mp->has_slot[i]);
		else if (nd->op != IR_CONST)
			assert_true(mp->has_slot[i]);
		if (mp->has_slot[i]) {
			int64_t sz = (ir_shape_numel(nd->shape) + 15) / 16 * 16;
			if (nd->shape.batch)
				naive_b += sz;
			else
				naive_c += sz;
		}
	}
	for (int64_t B = 1; B <= 9; B++) {
		int64_t total = mp->total_b * B + mp->total_c;
		for (int i = 0; i < n; i++) {
			if (!mp->has_slot[i])
				continue;
			const IrNode *ni = &f->nodes[i];
			int64_t oi = mp->off_b[i] * B + mp->off_c[i];
			int64_t si = (ni->shape.batch ? B : 1) * ir_shape_numel(ni->shape);
			assert_int_equal(oi % 16, 0);
			assert_true(oi >= 0 && oi + si <= total);
			for (int j = i + 1; j < n; j++) {
				if (!mp->has_slot[j] || j > last[i])
					continue; /* i is dead before j is written */
				const IrNode *nj = &f->nodes[j];
				int64_t oj = mp->off_b[j] * B + mp->off_c[j];
				int64_t sj = (nj->shape.batch ? B : 1) * ir_shape_numel(nj->shape);
				if (oi < oj + sj && oj < oi + si) {
					fprintf(stderr, "%s: %%%d and %%%d overlap at B=%lld\n", f->name, i, j, (long long)B);
					fail();
				}
			}
		}
	}
	assert_true(mp->total_b <= naive_b && mp->total_c <= naive_c);
	assert_true(mp->total_b + mp->total_c < naive_b + naive_c);
	free(last);
	memplan_free(mp);
}

static void test_memplan(void **state)
{
	bool covered[IR_OP_COUNT] = {false};
	Program *z = build_zoo(covered);
	check_plan(z->fwd);
	check_plan(z->vjp);
	Program *r = build_rnn(8);
	check_plan(r->fwd);
	check_plan(r->vjp);
	program_free(z);
	program_free(r);

	/* a chain of 10 temporaries needs two slots, not ten */
	IrFunc *f = ir_func_new("chain");
	int v = ir_input(f, IR_ROLE_STATE, 0, S(true, 1, 32, 0, 0), "s");
	for (int k = 0; k < 10; k++)
		v = ir_add(f, IR_TANH, v, -1, NOLOC);
	ir_output(f, IR_ROLE_STATE, 0, v, "s");
	MemPlan *mp = memplan_build(f);
	assert_int_equal(mp->total_b, 64);
	assert_int_equal(mp->total_c, 0);
	memplan_free(mp);

	/* memplan_build_timed: the same chain with nodes 3..6 (tanh 2..5) run as one merged nest (times 3..3
	 * written, read up to 6): their four results and the operand of the first are live together, so no
	 * two of them share storage, and the other values still reuse slots */
	int n = f->n, t_def[16], t_read[16];
	for (int i = 0; i < n; i++) {
		t_def[i] = f->nodes[i].op == IR_INPUT ? -1 : i;
		t_read[i] = -1;
	}
	for (int i = 3; i <= 6; i++)
		t_def[i] = 3;
	for (int j = 1; j < n; j++) /* node j reads node j - 1 while it runs: up to 6 inside the nest */
		t_read[j - 1] = j >= 3 && j <= 6 ? 6 : j;
	mp = memplan_build_timed(f, NULL, t_def, t_read, n);
	for (int i = 2; i <= 6; i++)
		for (int j = i + 1; j <= 6; j++)
			assert_true(mp->off_b[i] != mp->off_b[j]);
	assert_int_equal(mp->total_b, 5 * 32);
	for (int i = 1; i < n; i++)
		assert_true(mp->has_slot[i]);
	memplan_free(mp);
	ir_func_free(f);
}

int main(void)
{
	if (emitc_harness_init() != 0) {
		fprintf(stderr, "cannot create a temporary directory\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memplan),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_plastic_rnn),
		cmocka_unit_test(test_op_zoo),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	emitc_harness_done();
	return rc;
}
