/* tests/test_ir.c -- the op table, shapes, builder, verifier, printer and interpreter basics. */
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

static const SrcSpan NOLOC = {0};

static void test_op_table(void **state)
{
	(void)state;
	int n = 0;
	for (int op = 0; op < IR_OP_COUNT; op++) {
		const IrOpInfo *in = &ir_op_info[op];
		assert_non_null(in->name);
		assert_true(strlen(in->name) > 0);
		for (const char *c = in->name; *c; c++)
			assert_false(*c >= 'A' && *c <= 'Z');
		assert_string_equal(in->name, ir_op_name((IrOp)op));
		assert_true(in->nin >= 0 && in->nin <= IR_MAX_IN);
		assert_int_equal(in->nin == 0, (in->flags & IRF_LEAF) != 0);
		assert_non_null(in->doc);
		for (int o2 = 0; o2 < op; o2++)
			assert_string_not_equal(in->name, ir_op_info[o2].name);
		n++;
	}
	assert_int_equal(n, IR_OP_COUNT);
	assert_string_equal(ir_op_info[IR_MATMUL].name, "matmul");
}

static void test_shapes(void **state)
{
	(void)state;
	IrShape a = ir_shape2(true, 3, 4), b = ir_shape1(false, 4), c = ir_shape0(true), r;
	char buf[64];
	assert_true(ir_shape_broadcast(a, b, &r));
	assert_true(ir_shape_eq(r, a));
	assert_true(ir_shape_broadcast(c, b, &r));
	assert_true(ir_shape_eq(r, ir_shape1(true, 4)));
	assert_false(ir_shape_broadcast(ir_shape1(false, 3), b, &r));
	assert_true(ir_shape_broadcastable_to(b, a));
	assert_false(ir_shape_broadcastable_to(a, b));
	assert_false(ir_shape_broadcastable_to(ir_shape1(true, 4), ir_shape2(false, 3, 4)));
	ir_shape_str(a, buf, sizeof buf);
	assert_string_equal(buf, "[B,3,4]");
	ir_shape_str(ir_shape0(false), buf, sizeof buf);
	assert_string_equal(buf, "[]");
	ir_shape_str(c, buf, sizeof buf);
	assert_string_equal(buf, "[B]");
	assert_int_equal(ir_shape_numel(a), 12);
}

static void test_matmul_shapes(void **state)
{
	(void)state;
	IrFunc *f = ir_func_new("mm");
	int x = ir_input(f, IR_ROLE_DATA, 0, ir_shape1(true, 3), "x");
	int W = ir_param(f, 0, ir_shape2(false, 3, 5), "W");
	int g = ir_input(f, IR_ROLE_PRED_BAR, 0, ir_shape1(true, 5), "g");
	int y = ir_matmul(f, x, W, false, false, NOLOC);
	assert_true(ir_shape_eq(f->nodes[y].shape, ir_shape1(true, 5)));
	int dW = ir_matmul(f, x, g, true, false, NOLOC);
	assert_true(ir_shape_eq(f->nodes[dW].shape, ir_shape2(false, 3, 5)));
	int dx = ir_matmul(f, g, W, false, true, NOLOC);
	assert_true(ir_shape_eq(f->nodes[dx].shape, ir_shape1(true, 3)));
	int o = ir_add(f, IR_OUTER, x, g, NOLOC);
	assert_true(ir_shape_eq(f->nodes[o].shape, (IrShape){true, 2, {3, 5, 0}}));
	int v = ir_add(f, IR_BMV, x, o, NOLOC);
	assert_true(ir_shape_eq(f->nodes[v].shape, ir_shape1(true, 5)));
	int u = ir_add(f, IR_BMVT, o, g, NOLOC);
	assert_true(ir_shape_eq(f->nodes[u].shape, ir_shape1(true, 3)));
	assert_int_equal(ir_verify(f, NULL), 0);
	ir_func_free(f);
}

/* a tiny function used by the printer golden test and the interpreter test */
static IrFunc *tiny(void)
{
	IrFunc *f = ir_func_new("tiny");
	int x = ir_input(f, IR_ROLE_DATA, 0, ir_shape1(true, 2), "x");
	int W = ir_param(f, 0, ir_shape2(false, 2, 3), "enc.w");
	int b = ir_param(f, 1, ir_shape1(false, 3), "enc.b");
	int z = ir_matmul(f, x, W, false, false, NOLOC);
	int zb = ir_add(f, IR_ADD, z, b, NOLOC);
	ir_set_name(f, zb, "enc.z");
	int h = ir_add(f, IR_RELU, zb, -1, NOLOC);
	int half = ir_const(f, 0.5, ir_shape0(false), NOLOC);
	int hs = ir_add(f, IR_MUL, h, half, NOLOC);
	int s = ir_sum_to(f, hs, ir_shape0(true), NOLOC);
	int sl = ir_slice(f, hs, 1, 3, NOLOC);
	ir_output(f, IR_ROLE_PRED, 0, sl, "y");
	ir_output(f, IR_ROLE_SCALAR, 0, s, "s");
	return f;
}

static const char *tiny_golden = "func tiny (10 nodes)\n"
				 "  in  data 0 = %0  ; x\n"
				 "  %0 = input #0 : [B,2]  ; x\n"
				 "  %1 = param #0 : [2,3]  ; enc.w\n"
				 "  %2 = param #1 : [3]  ; enc.b\n"
				 "  %3 = matmul %0, %1 : [B,3]\n"
				 "  %4 = add %3, %2 : [B,3]  ; enc.z\n"
				 "  %5 = relu %4 : [B,3]\n"
				 "  %6 = const 0.5 : []\n"
				 "  %7 = mul %5, %6 : [B,3]\n"
				 "  %8 = sum_to %7 : [B]\n"
				 "  %9 = slice %7 [1:3] : [B,2]\n"
				 "  out pred 0 = %9  ; y\n"
				 "  out scalar 0 = %8  ; s\n";

static void test_printer_golden(void **state)
{
	(void)state;
	IrFunc *f = tiny();
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	ir_print(f, m);
	fclose(m);
	assert_string_equal(buf, tiny_golden);
	free(buf);
	/* a clone prints the same but for its name */
	IrFunc *g = ir_func_clone(f, "tiny");
	m = open_memstream(&buf, &len);
	ir_print(g, m);
	fclose(m);
	assert_string_equal(buf, tiny_golden);
	free(buf);
	ir_func_free(g);
	ir_func_free(f);
}

static void test_interp_tiny(void **state)
{
	(void)state;
	IrFunc *f = tiny();
	double x[4] = {1, -2, 0.5, 3};
	double W[6] = {1, 2, 3, 4, 5, 6}, bb[3] = {0.1, -20, 0.3};
	const double *params[2] = {W, bb};
	const double *in[1] = {x};
	double y[4], s[2];
	double *out[2] = {y, s};
	assert_int_equal(interp_run(f, 2, 2, params, in, out, NULL), 0);
	/* trial 0: z = [1-8, 2-10, 3-12] + b = [-6.9, -28, -8.7] -> relu 0 */
	/* trial 1: z = [0.5+12, 1+15, 1.5+18] + b = [12.6, -4, 19.8] -> [12.6, 0, 19.8] */
	assert_true(fabs(y[0]) < 1e-12 && fabs(y[1]) < 1e-12);
	assert_true(fabs(y[2] - 0) < 1e-12);
	assert_true(fabs(y[3] - 9.9) < 1e-12);
	assert_true(fabs(s[0]) < 1e-12);
	assert_true(fabs(s[1] - 16.2) < 1e-12);
	ir_func_free(f);
}

static void test_interp_broadcast(void **state)
{
	(void)state;
	/* [B] per-trial scalar times a static [2,3] plus a batched [B,1,3] */
	IrFunc *f = ir_func_new("bc");
	int s = ir_input(f, IR_ROLE_DATA, 0, ir_shape0(true), "s");
	int M = ir_param(f, 0, ir_shape2(false, 2, 3), "M");
	int r = ir_input(f, IR_ROLE_STATE, 0, (IrShape){true, 2, {1, 3, 0}}, "r");
	int p = ir_add(f, IR_MUL, s, M, NOLOC);
	int q = ir_add(f, IR_SUB, p, r, NOLOC);
	int c = ir_sum_to(f, q, ir_shape1(false, 3), NOLOC);
	int e = ir_expand(f, r, (IrShape){true, 2, {2, 3, 0}}, NOLOC);
	int cc = ir_add(f, IR_CONCAT, q, e, NOLOC);
	int pd = ir_pad(f, c, 1, 5, NOLOC);
	ir_output(f, IR_ROLE_PRED, 0, q, "q");
	ir_output(f, IR_ROLE_SCALAR, 0, pd, "c");
	ir_output(f, IR_ROLE_OUTPUTS, 0, cc, "cc");
	assert_int_equal(ir_verify(f, stderr), 0);
	double sv[2] = {2, -1}, Mv[6] = {1, 2, 3, 4, 5, 6}, rv[6] = {1, 1, 1, 10, 20, 30};
	const double *params[1] = {Mv};
	const double *in[2] = {sv, rv};
	double qv[12], pv[5], ccv[24];
	double *out[3] = {qv, pv, ccv};
	assert_int_equal(interp_run(f, 2, 2, params, in, out, stderr), 0);
	double want[12] = {1, 3, 5, 7, 9, 11, -11, -22, -33, -14, -25, -36};
	for (int i = 0; i < 12; i++)
		assert_true(fabs(qv[i] - want[i]) < 1e-12);
	double wc[5] = {0, 1 + 7 - 11 - 14, 3 + 9 - 22 - 25, 5 + 11 - 33 - 36, 0};
	for (int i = 0; i < 5; i++)
		assert_true(fabs(pv[i] - wc[i]) < 1e-12);
	/* concat row 0 of trial 1: q[1,0,:] then r[1,0,:] */
	assert_true(fabs(ccv[12 + 0] + 11) < 1e-12 && fabs(ccv[12 + 3] - 10) < 1e-12 && fabs(ccv[12 + 5] - 30) < 1e-12);
	ir_func_free(f);
}

/* verifier: every malformed function is rejected with a message naming the problem */
static int verify_msg(const IrFunc *f, const char *want)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	int rc = ir_verify(f, m);
	fclose(m);
	int found = strstr(buf, want) != NULL;
	if (!found)
		fprintf(stderr, "verifier said: %s(wanted \"%s\")\n", buf, want);
	free(buf);
	return rc == -1 && found;
}

static void test_verifier_rejects(void **state)
{
	(void)state;
	IrFunc *f = tiny();
	assert_int_equal(ir_verify(f, NULL), 0);

	IrFunc *g = ir_func_clone(f, "bad");
	g->nodes[4].in[1] = 7; /* forward reference */
	assert_true(verify_msg(g, "not an earlier node"));
	ir_func_free(g);

	g = ir_func_clone(f, "bad");
	g->nodes[5].in[1] = 2; /* relu with two operands */
	assert_true(verify_msg(g, "has 1 operand(s)"));
	ir_func_free(g);

	g = ir_func_clone(f, "bad");
	g->nodes[4].shape.d[0] = 4; /* add result shape wrong */
	assert_true(verify_msg(g, "rule gives"));
	ir_func_free(g);

	g = ir_func_clone(f, "bad");
	g->nodes[3].in[1] = 2; /* matmul with a vector */
	assert_true(verify_msg(g, "not a matrix"));
	ir_func_free(g);

	g = ir_func_clone(f, "bad");
	g->nodes[9].a[1] = 9; /* slice past the end */
	assert_true(verify_msg(g, "slice bounds"));
	ir_func_free(g);

	g = ir_func_clone(f, "bad");
	g->nodes[8].shape = ir_shape1(false, 2); /* sum_to to an incompatible shape */
	assert_true(verify_msg(g, "sum_to shape"));
	ir_func_free(g);

	g = ir_func_clone(f, "bad");
	g->outs[0].node = 99;
	assert_true(verify_msg(g, "output port 0"));
	ir_func_free(g);

	g = ir_func_clone(f, "bad");
	g->ins[0].node = 1; /* a param is not an input */
	assert_true(verify_msg(g, "input port 0"));
	ir_func_free(g);

	g = ir_func_clone(f, "bad");
	g->nodes[1].shape.batch = true; /* batched parameter */
	assert_true(verify_msg(g, "parameter has no batch"));
	ir_func_free(g);

	g = ir_func_clone(f, "bad");
	g->nodes[6].op = IR_OP_COUNT;
	assert_true(verify_msg(g, "bad op"));
	ir_func_free(g);

	ir_func_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_op_table),
		cmocka_unit_test(test_shapes),
		cmocka_unit_test(test_matmul_shapes),
		cmocka_unit_test(test_printer_golden),
		cmocka_unit_test(test_interp_tiny),
		cmocka_unit_test(test_interp_broadcast),
		cmocka_unit_test(test_verifier_rejects),
	};
	return cmocka_run_group_tests_name("ir", tests, NULL, NULL);
}
