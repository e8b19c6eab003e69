/* tests/test_opt.c -- the optimiser keeps values (random well-typed functions, interpreted before and
 * after) and shrinks the patterns it is meant to shrink. opt_run verifies after every pass itself
 * (non-NDEBUG builds) and these tests verify the result again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp.h"
#include "ir.h"
#include "opt.h"

#define NB 3
static const SrcSpan NOLOC = {0};

static unsigned rnd(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 8) & 0xffffff;
}

static double urand(unsigned *s)
{
	return (double)rnd(s) / (double)0x1000000;
}

static int64_t vlen(IrShape s)
{
	return (s.batch ? NB : 1) * ir_shape_numel(s);
}

/* interprets f with the given inputs and params; returns malloc'ed output arrays */
static double **eval(const IrFunc *f, double **in, double **params)
{
	double **out = calloc((size_t)f->nouts, sizeof *out);
	for (int k = 0; k < f->nouts; k++)
		out[k] = malloc(sizeof(double) * (size_t)vlen(f->nodes[f->outs[k].node].shape));
	assert_int_equal(interp_run(f, NB, NB, (const double *const *)params, (const double *const *)in, out, stderr), 0);
	return out;
}

static double max_rel_diff(const IrFunc *f, double **a, double **b)
{
	double err = 0;
	for (int k = 0; k < f->nouts; k++) {
		int64_t n = vlen(f->nodes[f->outs[k].node].shape);
		for (int64_t i = 0; i < n; i++) {
			double d = fabs(a[k][i] - b[k][i]) / fmax(1.0, fabs(a[k][i]));
			if (isnan(a[k][i]) != isnan(b[k][i]))
				d = INFINITY;
			err = fmax(err, d);
		}
	}
	return err;
}

static void free_outs(const IrFunc *f, double **o)
{
	for (int k = 0; k < f->nouts; k++)
		free(o[k]);
	free(o);
}

static IrShape pool_shape(unsigned *s)
{
	static const IrShape pool[] = {
		{true, 1, {3, 0, 0}}, {false, 1, {3, 0, 0}}, {true, 2, {2, 3, 0}}, {false, 2, {2, 3, 0}},
		{true, 0, {0, 0, 0}}, {false, 0, {0, 0, 0}}, {true, 1, {4, 0, 0}}, {false, 2, {3, 4, 0}},
		{true, 2, {3, 4, 0}}, {false, 2, {1, 3, 0}}, {true, 1, {6, 0, 0}},
	};
	return pool[rnd(s) % (sizeof pool / sizeof pool[0])];
}

/* A random well-typed function: candidates are drawn until ir_infer_shape accepts one. Constants
 * 0, 1, -1 and exact duplicates are frequent so the rewrites fire. No log, sqrt, div or exp: their
 * domains are not tracked here (the derivative checks cover their semantics). */
static IrFunc *random_func(unsigned *s, int nnodes)
{
	static const IrOp ops[] = {IR_NEG, IR_SQUARE, IR_ABS, IR_RELU, IR_TANH, IR_SIGMOID, IR_STEP, IR_SIGN, IR_ADD,
		IR_SUB, IR_MUL, IR_MAX, IR_MIN, IR_EXPAND, IR_SUM_TO, IR_RESHAPE, IR_SLICE, IR_PAD, IR_CONCAT,
		IR_MATMUL, IR_BMV, IR_BMVT, IR_OUTER, IR_CONST, IR_TANH, IR_ADD, IR_MUL, IR_SUM_TO};
	static const double consts[] = {0, 1, -1, 2, 0.5};
	IrFunc *f = ir_func_new("rand");
	for (int k = 0; k < 4; k++)
		ir_input(f, IR_ROLE_DATA, k, pool_shape(s), "in");
	ir_param(f, 0, ir_shape2(false, 3, 4), "p");
	ir_input(f, IR_ROLE_STATE, 0, (IrShape){true, 2, {3, 4, 0}}, "w");
	int made = 0, tries = 0;
	while (made < nnodes && tries++ < 100000) {
		if (rnd(s) % 10 == 0 && f->n > 0) { /* exact duplicate of a non-leaf node */
			IrNode d = f->nodes[rnd(s) % (unsigned)f->n];
			if (ir_op_info[d.op].flags & IRF_LEAF)
				continue;
			ir_add_full(f, d.op, d.in[0], d.in[1], &d.shape, d.f, d.a, NOLOC);
			made++;
			continue;
		}
		IrOp op = ops[rnd(s) % (sizeof ops / sizeof ops[0])];
		int a = (int)(rnd(s) % (unsigned)f->n), b = (int)(rnd(s) % (unsigned)f->n);
		/* prefer recent nodes so the function is deep */
		if (rnd(s) % 2)
			a = f->n - 1 - (int)(rnd(s) % (unsigned)(f->n < 4 ? f->n : 4));
		int nin = ir_op_info[op].nin;
		IrShape sh = pool_shape(s);
		int64_t at[4] = {0, 0, 0, 0};
		IrShape sa = f->nodes[a].shape;
		if (op == IR_SLICE && sa.rank > 0) {
			int64_t n = sa.d[sa.rank - 1];
			at[0] = (int64_t)(rnd(s) % (unsigned)n);
			at[1] = at[0] + 1 + (int64_t)(rnd(s) % (unsigned)(n - at[0]));
		} else if (op == IR_PAD && sa.rank > 0) {
			at[0] = rnd(s) % 3;
			at[1] = sa.d[sa.rank - 1] + at[0] + rnd(s) % 3;
		} else if (op == IR_MATMUL) {
			at[0] = rnd(s) % 2;
			at[1] = rnd(s) % 2;
		}
		if (op == IR_CONST) {
			ir_const(f, consts[rnd(s) % 5], sh, NOLOC);
			made++;
			continue;
		}
		if (op == IR_RESHAPE) {
			/* a shape with the same numel: flatten or the pool */
			sh = sa;
			if (sa.rank == 2) {
				sh.rank = 1;
				sh.d[0] = sa.d[0] * sa.d[1];
			}
		}
		IrShape out = sh;
		const IrShape *y = nin > 1 ? &f->nodes[b].shape : NULL;
		if (ir_infer_shape(op, &sa, y, 0.0, at, &out))
			continue;
		if (op == IR_RESHAPE && ir_shape_eq(out, sa))
			continue;
		ir_add_full(f, op, a, nin > 1 ? b : -1, &out, 0.0, at, NOLOC);
		made++;
	}
	for (int k = 0; k < 3; k++)
		ir_output(f, IR_ROLE_SCALAR, k, f->n - 1 - k, "o");
	ir_output(f, IR_ROLE_SCALAR, 3, (int)(rnd(s) % (unsigned)f->n), "o");
	return f;
}

static void test_random_functions_keep_values(void **state)
{
	(void)state;
	unsigned s = 4242;
	int removed = 0, total = 0, rewrites = 0;
	for (int trial = 0; trial < 300; trial++) {
		IrFunc *f = random_func(&s, 30);
		assert_int_equal(ir_verify(f, stderr), 0);
		double *in[8], *params[1];
		for (int k = 0; k < f->nins; k++) {
			int64_t n = vlen(f->nodes[f->ins[k].node].shape);
			in[k] = malloc(sizeof(double) * (size_t)n);
			for (int64_t i = 0; i < n; i++)
				in[k][i] = 2 * urand(&s) - 1;
		}
		params[0] = malloc(sizeof(double) * 12);
		for (int i = 0; i < 12; i++)
			params[0][i] = 2 * urand(&s) - 1;
		IrFunc *g = ir_func_clone(f, "rand_opt");
		OptStats st;
		opt_run(g, &st);
		assert_int_equal(ir_verify(g, stderr), 0);
		assert_int_equal(g->nins, f->nins);
		assert_int_equal(g->nouts, f->nouts);
		for (int k = 0; k < g->nouts; k++)
			assert_true(ir_shape_eq(g->nodes[g->outs[k].node].shape, f->nodes[f->outs[k].node].shape));
		double **a = eval(f, in, params), **b = eval(g, in, params);
		double err = max_rel_diff(f, a, b);
		if (err > 1e-9) {
			fprintf(stderr, "trial %d: opt changed a value by %.3g\n", trial, err);
			ir_print(f, stderr);
			ir_print(g, stderr);
		}
		assert_true(err <= 1e-9);
		removed += f->n - g->n;
		total += f->n;
		rewrites += st.folded + st.simplified + st.cse;
		free_outs(f, a);
		free_outs(g, b);
		for (int k = 0; k < f->nins; k++)
			free(in[k]);
		free(params[0]);
		ir_func_free(f);
		ir_func_free(g);
	}
	fprintf(stderr, "random functions: %d of %d nodes removed, %d rewrites\n", removed, total, rewrites);
	assert_true(removed > total / 10);
	assert_true(rewrites > 100);
}

static int count_op(const IrFunc *f, IrOp op)
{
	int n = 0;
	for (int i = 0; i < f->n; i++)
		n += f->nodes[i].op == op;
	return n;
}

static void test_known_patterns_shrink(void **state)
{
	(void)state;
	IrFunc *f = ir_func_new("pat");
	IrShape v = ir_shape1(true, 3);
	int x = ir_input(f, IR_ROLE_DATA, 0, v, "x");
	int one = ir_const(f, 1.0, ir_shape0(false), NOLOC), zero = ir_const(f, 0.0, ir_shape0(false), NOLOC);
	int a = ir_add(f, IR_MUL, x, one, NOLOC);         /* x*1 */
	int b = ir_add(f, IR_ADD, a, zero, NOLOC);        /* +0 */
	int c = ir_add(f, IR_NEG, ir_add(f, IR_NEG, b, -1, NOLOC), -1, NOLOC); /* --x */
	int d = ir_add(f, IR_MUL, one, x, NOLOC);         /* duplicate of a (commuted) */
	int e = ir_add(f, IR_ADD, c, d, NOLOC);
	ir_add(f, IR_EXP, x, -1, NOLOC);                  /* dead */
	int z = ir_add(f, IR_MUL, x, zero, NOLOC);        /* x*0 */
	int z2 = ir_add(f, IR_SUB, zero, z, NOLOC);       /* 0 - 0 */
	int ex = ir_add_shaped(f, IR_EXPAND, z2, -1, v, NOLOC); /* expand to the same shape */
	int r = ir_add(f, IR_ADD, e, ex, NOLOC);
	ir_output(f, IR_ROLE_PRED, 0, r, "y");
	IrFunc *g = ir_func_clone(f, "pat");
	OptStats st;
	opt_run(g, &st);
	ir_print(g, stderr);
	assert_int_equal(ir_verify(g, stderr), 0);
	/* x + x is all that is left */
	assert_int_equal(g->n, 2);
	assert_int_equal(g->nodes[1].op, IR_ADD);
	assert_int_equal(g->nodes[1].in[0], 0);
	assert_int_equal(g->nodes[1].in[1], 0);
	assert_true(st.simplified > 0 && st.dce > 0);
	double xv[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, *in[1] = {xv};
	double **o1 = eval(f, in, NULL), **o2 = eval(g, in, NULL);
	assert_true(max_rel_diff(f, o1, o2) == 0);
	free_outs(f, o1);
	free_outs(g, o2);
	ir_func_free(f);
	ir_func_free(g);
}

/* sum over the per-trial dims of square(k * outer(a, c)) = k^2 |a|^2 |c|^2: no [B,I,J] tensor left */
static void test_rank1_norm_rewrite(void **state)
{
	(void)state;
	IrFunc *f = ir_func_new("norm");
	int a = ir_input(f, IR_ROLE_DATA, 0, ir_shape1(true, 5), "pre");
	int c = ir_input(f, IR_ROLE_DATA, 1, ir_shape1(true, 7), "post");
	int k = ir_input(f, IR_ROLE_DATA, 2, ir_shape0(true), "eta");
	int o = ir_add(f, IR_OUTER, a, c, NOLOC);
	int n1 = ir_sum_to(f, ir_add(f, IR_SQUARE, o, -1, NOLOC), ir_shape0(true), NOLOC);
	int n2 = ir_sum_to(f, ir_add(f, IR_SQUARE, ir_add(f, IR_MUL, k, o, NOLOC), -1, NOLOC), ir_shape0(false), NOLOC);
	ir_output(f, IR_ROLE_SCALAR, 0, ir_add(f, IR_SQRT, n1, -1, NOLOC), "norm");
	ir_output(f, IR_ROLE_SCALAR, 1, n2, "total");
	IrFunc *g = ir_func_clone(f, "norm");
	OptStats st;
	opt_run(g, &st);
	ir_print(g, stderr);
	assert_int_equal(ir_verify(g, stderr), 0);
	assert_int_equal(count_op(g, IR_OUTER), 0);
	for (int i = 0; i < g->n; i++)
		assert_true(g->nodes[i].shape.rank <= 1);
	double av[15], cv[21], kv[3] = {0.5, -2, 3};
	unsigned s = 9;
	for (int i = 0; i < 15; i++)
		av[i] = 2 * urand(&s) - 1;
	for (int i = 0; i < 21; i++)
		cv[i] = 2 * urand(&s) - 1;
	double *in[3] = {av, cv, kv};
	double **o1 = eval(f, in, NULL), **o2 = eval(g, in, NULL);
	assert_true(max_rel_diff(f, o1, o2) < 1e-12);
	free_outs(f, o1);
	free_outs(g, o2);
	ir_func_free(f);
	ir_func_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_patterns_shrink),
		cmocka_unit_test(test_rank1_norm_rewrite),
		cmocka_unit_test(test_random_functions_keep_values),
	};
	return cmocka_run_group_tests_name("opt", tests, NULL, NULL);
}
