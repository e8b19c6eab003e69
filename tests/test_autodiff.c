/* tests/test_autodiff.c -- per-op derivative checks generated from the op table, first and second order.
 *
 * For every op of ops.def that is not a leaf, cases are generated: elementwise ops get a fixed list of
 * shape combinations (batched, unbatched, broadcasting); shape and linear-algebra ops get hand-picked
 * cases below, and the test FAILS if an op has none (so a new op cannot go untested). For each case:
 *   f(X0, X1) = op(X0, X1);  D = vjp(f)(X; G)  (ad_vjp, seeded with G)
 *   first order:  D_k == d<G, f(X)>/dX_k                     (central differences)
 *   second order: E = vjp of D seeded with U_k, w.r.t. X and G (ad_vjp on its own output):
 *                 E_X == d/dX sum_k <U_k, D_k(X, G)>,  E_G == d/dG of the same   (central differences)
 * NODIFF ops must give exactly zero adjoints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "interp.h"
#include "ir.h"

#define NB 3 /* batch size used in the checks (distinct from every per-trial dim below but 3) */

static const SrcSpan NOLOC = {0};

static IrShape S(bool batch, int rank, int64_t d0, int64_t d1, int64_t d2)
{
	int64_t d[3] = {d0, d1, d2};
	return ir_shape(batch, rank, d);
}

typedef struct Case {
	IrOp op;
	int nin;
	IrShape in[2];
	IrShape out; /* for the ops whose shape is given (ir_op_shape_given) */
	int64_t a[4];
} Case;

/* ---- case generation ---- */

static const IrShape *ew1_shapes(int *n)
{
	static IrShape s[4];
	s[0] = S(true, 2, 2, 3, 0);
	s[1] = S(false, 1, 3, 0, 0);
	s[2] = S(false, 0, 0, 0, 0);
	s[3] = S(true, 0, 0, 0, 0);
	*n = 4;
	return s;
}

static int ew2_shapes(IrShape (*s)[2])
{
	IrShape t[][2] = {
		{S(true, 2, 2, 3, 0), S(true, 2, 2, 3, 0)},  /* same */
		{S(true, 2, 2, 3, 0), S(false, 1, 3, 0, 0)}, /* static row broadcast into a batch */
		{S(false, 2, 2, 1, 0), S(true, 2, 1, 3, 0)}, /* both broadcast */
		{S(true, 0, 0, 0, 0), S(false, 2, 2, 3, 0)}, /* per-trial scalar times a static matrix */
		{S(false, 1, 4, 0, 0), S(false, 1, 4, 0, 0)}, /* unbatched */
		{S(false, 0, 0, 0, 0), S(true, 1, 2, 0, 0)},  /* scalar constant-like */
	};
	int n = (int)(sizeof t / sizeof t[0]);
	memcpy(s, t, sizeof t);
	return n;
}

static int special_cases(IrOp op, Case *cs)
{
	int n = 0;
#define C1(X, O, A0, A1) cs[n++] = (Case){op, 1, {X, {0}}, O, {A0, A1, 0, 0}}
#define C2(X, Y, A0, A1) cs[n++] = (Case){op, 2, {X, Y}, {0}, {A0, A1, 0, 0}}
#define CI(X, Y, O, A0, A1, A2) cs[n++] = (Case){op, 2, {X, Y}, O, {A0, A1, A2, 0}}
	switch (op) {
	case IR_EXPAND:
		C1(S(false, 2, 1, 3, 0), S(true, 2, 2, 3, 0), 0, 0);
		C1(S(false, 0, 0, 0, 0), S(true, 1, 2, 0, 0), 0, 0);
		C1(S(true, 1, 1, 0, 0), S(true, 1, 4, 0, 0), 0, 0);
		C1(S(false, 1, 3, 0, 0), S(false, 2, 2, 3, 0), 0, 0);
		break;
	case IR_SUM_TO:
		C1(S(true, 2, 2, 3, 0), S(false, 2, 1, 3, 0), 0, 0);
		C1(S(true, 1, 2, 0, 0), S(false, 0, 0, 0, 0), 0, 0);
		C1(S(true, 1, 4, 0, 0), S(true, 1, 1, 0, 0), 0, 0);
		C1(S(true, 2, 2, 3, 0), S(true, 0, 0, 0, 0), 0, 0);
		C1(S(false, 2, 2, 3, 0), S(false, 1, 3, 0, 0), 0, 0);
		break;
	case IR_RESHAPE:
		C1(S(true, 2, 2, 3, 0), S(true, 1, 6, 0, 0), 0, 0);
		C1(S(false, 1, 6, 0, 0), S(false, 3, 3, 1, 2), 0, 0);
		break;
	case IR_SLICE:
		C1(S(true, 2, 2, 5, 0), (IrShape){0}, 1, 4);
		C1(S(false, 1, 5, 0, 0), (IrShape){0}, 0, 2);
		break;
	case IR_PAD:
		C1(S(true, 2, 2, 3, 0), (IrShape){0}, 1, 6);
		C1(S(false, 1, 2, 0, 0), (IrShape){0}, 0, 3);
		break;
	case IR_CONCAT:
		C2(S(true, 2, 2, 3, 0), S(true, 2, 2, 2, 0), 0, 0);
		C2(S(false, 1, 3, 0, 0), S(false, 1, 2, 0, 0), 0, 0);
		break;
	case IR_MATMUL:
		C2(S(true, 1, 3, 0, 0), S(false, 2, 3, 4, 0), 0, 0); /* x W */
		C2(S(true, 1, 3, 0, 0), S(true, 1, 4, 0, 0), 1, 0);  /* x^T g, a sum over the batch */
		C2(S(true, 1, 4, 0, 0), S(false, 2, 3, 4, 0), 0, 1); /* g W^T */
		C2(S(false, 2, 2, 3, 0), S(false, 2, 3, 4, 0), 0, 0);
		C2(S(false, 2, 3, 2, 0), S(false, 2, 3, 4, 0), 1, 0);
		C2(S(false, 2, 2, 3, 0), S(false, 2, 4, 3, 0), 0, 1);
		C2(S(false, 2, 3, 2, 0), S(false, 2, 4, 3, 0), 1, 1);
		break;
	case IR_BMV:
		C2(S(true, 1, 3, 0, 0), S(true, 2, 3, 4, 0), 0, 0);
		break;
	case IR_BMVT:
		C2(S(true, 2, 3, 4, 0), S(true, 1, 4, 0, 0), 0, 0);
		break;
	case IR_OUTER:
		C2(S(true, 1, 3, 0, 0), S(true, 1, 4, 0, 0), 0, 0);
		break;
	/* images: k, s, p; batched and shared kernels; strides that skip pixels; padding */
	case IR_CONV2D:
		CI(S(true, 3, 2, 4, 5), S(false, 3, 3, 2, 9), (IrShape){0}, 3, 1, 1);
		CI(S(true, 3, 2, 5, 4), S(false, 3, 3, 2, 4), (IrShape){0}, 2, 2, 0);
		CI(S(false, 3, 1, 4, 4), S(true, 3, 2, 1, 9), (IrShape){0}, 3, 2, 1);
		break;
	case IR_CONV2D_T:
		CI(S(true, 3, 3, 4, 5), S(false, 3, 3, 2, 9), S(true, 3, 2, 4, 5), 3, 1, 1);
		CI(S(true, 3, 3, 2, 2), S(false, 3, 3, 2, 4), S(true, 3, 2, 5, 4), 2, 2, 0);
		CI(S(false, 3, 2, 2, 2), S(true, 3, 2, 1, 9), S(true, 3, 1, 4, 4), 3, 2, 1);
		break;
	case IR_CONV2D_W:
		CI(S(true, 3, 2, 4, 5), S(true, 3, 3, 4, 5), (IrShape){0}, 3, 1, 1);
		CI(S(true, 3, 2, 5, 4), S(false, 3, 3, 2, 2), (IrShape){0}, 2, 2, 0);
		CI(S(false, 3, 1, 4, 4), S(true, 3, 2, 2, 2), (IrShape){0}, 3, 2, 1);
		break;
	case IR_MAXPOOL:
	case IR_POOL_ARGMAX:
		C1(S(true, 3, 2, 4, 5), (IrShape){0}, 2, 2);
		C1(S(false, 3, 3, 3, 3), (IrShape){0}, 2, 1); /* overlapping windows */
		break;
	case IR_POOL_GATHER:
		C2(S(true, 3, 2, 4, 5), S(true, 3, 2, 2, 2), 2, 2);
		C2(S(false, 3, 2, 4, 4), S(true, 3, 2, 2, 2), 2, 2);
		C2(S(true, 3, 1, 3, 3), S(false, 3, 1, 2, 2), 2, 1);
		break;
	case IR_POOL_SCATTER:
		CI(S(true, 3, 2, 2, 2), S(true, 3, 2, 2, 2), S(true, 3, 2, 4, 5), 2, 2, 0);
		CI(S(false, 3, 2, 2, 2), S(true, 3, 2, 2, 2), S(true, 3, 2, 4, 4), 2, 2, 0);
		CI(S(true, 3, 1, 2, 2), S(false, 3, 1, 2, 2), S(true, 3, 1, 3, 3), 2, 1, 0); /* overlaps add */
		break;
	default:
		break;
	}
#undef C1
#undef C2
#undef CI
	return n;
}

/* all cases of one op, generated from its table entry */
static int cases_for(IrOp op, Case *cs)
{
	const IrOpInfo *info = &ir_op_info[op];
	int n = 0;
	if (info->flags & IRF_LEAF)
		return 0;
	if (info->flags & IRF_EW) {
		if (info->nin == 1) {
			int k;
			const IrShape *s = ew1_shapes(&k);
			for (int i = 0; i < k; i++)
				cs[n++] = (Case){op, 1, {s[i], {0}}, {0}, {0, 0, 0, 0}};
		} else {
			IrShape s[16][2];
			int k = ew2_shapes(s);
			for (int i = 0; i < k; i++)
				cs[n++] = (Case){op, 2, {s[i][0], s[i][1]}, {0}, {0, 0, 0, 0}};
		}
		return n;
	}
	return special_cases(op, cs);
}

/* inputs that must stay in a domain: log and sqrt of positives, division by positives; the selector
 * of pool_gather / pool_scatter holds window positions 0 .. win-1 */
static void fill(IrOp op, int k, int64_t win, double *x, int64_t n, unsigned *seed)
{
	bool pos = ((op == IR_LOG || op == IR_SQRT) && k == 0) || (op == IR_DIV && k == 1);
	bool sel = (op == IR_POOL_GATHER || op == IR_POOL_SCATTER) && k == 1;
	for (int64_t i = 0; i < n; i++) {
		*seed = *seed * 1103515245u + 12345u;
		double u = (double)((*seed >> 8) & 0xffffff) / (double)0x1000000;
		x[i] = sel ? (double)(int64_t)(u * (double)win) : pos ? 0.5 + 1.5 * u : 2 * u - 1;
	}
}

static int64_t len(IrShape s)
{
	return (s.batch ? NB : 1) * ir_shape_numel(s);
}

/* Function under test. Inputs: X0, X1 (DATA 0/1), G (PRED_BAR), U0, U1 (STATE_BAR 0/1).
 * Outputs: y, D0, D1, E0, E1, EG (SCALAR 0..5). */
typedef struct Built {
	IrFunc *f;
	int nx;
	int in_x[2], in_g, in_u[2];
	int y, d[2], e[3];
} Built;

static Built build(const Case *c, FILE *err, int *rc)
{
	Built b;
	memset(&b, 0, sizeof b);
	IrFunc *f = ir_func_new(ir_op_info[c->op].name);
	b.f = f;
	b.nx = c->nin;
	for (int k = 0; k < c->nin; k++)
		b.in_x[k] = ir_input(f, IR_ROLE_DATA, k, c->in[k], k ? "x1" : "x0");
	IrShape out = c->out;
	b.y = ir_add_full(f, c->op, b.in_x[0], c->nin > 1 ? b.in_x[1] : -1, ir_op_shape_given(c->op) ? &out : NULL,
		0.0, c->a, NOLOC);
	b.in_g = ir_input(f, IR_ROLE_PRED_BAR, 0, f->nodes[b.y].shape, "g");
	*rc = ad_vjp(f, 1, &b.y, &b.in_g, b.nx, b.in_x, b.d, err);
	if (*rc)
		return b;
	for (int k = 0; k < c->nin; k++)
		b.in_u[k] = ir_input(f, IR_ROLE_STATE_BAR, k, c->in[k], k ? "u1" : "u0");
	int wrt[3] = {b.in_x[0], c->nin > 1 ? b.in_x[1] : b.in_g, b.in_g};
	int nw = c->nin + 1;
	int e[3];
	*rc = ad_vjp(f, b.nx, b.d, b.in_u, nw, wrt, e, err);
	if (*rc)
		return b;
	for (int k = 0; k < c->nin; k++)
		b.e[k] = e[k];
	b.e[2] = e[c->nin];
	ir_output(f, IR_ROLE_PRED, 0, b.y, "y");
	for (int k = 0; k < c->nin; k++)
		ir_output(f, IR_ROLE_SCALAR, k, b.d[k], "d");
	for (int k = 0; k < c->nin; k++)
		ir_output(f, IR_ROLE_SCALAR, 2 + k, b.e[k], "e");
	ir_output(f, IR_ROLE_SCALAR, 4, b.e[2], "eg");
	*rc = ir_verify(f, err);
	return b;
}

/* in-port values of the built function: X0, X1, G, U0, U1 in port order */
typedef struct Vals {
	double *v[5];
	int64_t n[5];
	int nports;
} Vals;

static double dot(const double *a, const double *b, int64_t n)
{
	double s = 0;
	for (int64_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

/* runs f; returns phi = <G, y> and psi = sum_k <U_k, D_k>; optionally copies outputs */
static void run(const Built *b, Vals *v, double *phi, double *psi, double **outs_copy)
{
	const IrFunc *f = b->f;
	const double *in[5];
	for (int k = 0; k < f->nins; k++)
		in[k] = v->v[k];
	double *out[8];
	for (int k = 0; k < f->nouts; k++) {
		int64_t n = len(f->nodes[f->outs[k].node].shape);
		out[k] = malloc(sizeof(double) * (size_t)n);
	}
	assert_int_equal(interp_run(f, NB, NB, NULL, in, out, stderr), 0);
	/* ports: ins X.., G, U..; outs y, D.., E.., EG */
	int gport = b->nx, uport = b->nx + 1;
	*phi = dot(v->v[gport], out[0], v->n[gport]);
	*psi = 0;
	for (int k = 0; k < b->nx; k++)
		*psi += dot(v->v[uport + k], out[1 + k], v->n[uport + k]);
	for (int k = 0; k < f->nouts; k++) {
		if (outs_copy)
			outs_copy[k] = out[k];
		else
			free(out[k]);
	}
}

static double max_abs(const double *a, int64_t n)
{
	double m = 0;
	for (int64_t i = 0; i < n; i++)
		m = fmax(m, fabs(a[i]));
	return m;
}

/* compares an analytic gradient with central differences of phi (which=0) or psi (which=1) w.r.t.
 * in-port p; returns the relative error max|a - fd| / max(1, max|a|, max|fd|) */
static double check_port(const Built *b, Vals *v, int p, const double *analytic, int which)
{
	const double h = 1e-5;
	int64_t n = v->n[p];
	double *fd = malloc(sizeof(double) * (size_t)n);
	for (int64_t i = 0; i < n; i++) {
		double save = v->v[p][i], phi, psi, lo, hi;
		v->v[p][i] = save + h;
		run(b, v, &phi, &psi, NULL);
		hi = which ? psi : phi;
		v->v[p][i] = save - h;
		run(b, v, &phi, &psi, NULL);
		lo = which ? psi : phi;
		v->v[p][i] = save;
		fd[i] = (hi - lo) / (2 * h);
	}
	double err = 0;
	for (int64_t i = 0; i < n; i++)
		err = fmax(err, fabs(fd[i] - analytic[i]));
	double scale = fmax(1.0, fmax(max_abs(fd, n), max_abs(analytic, n)));
	free(fd);
	return err / scale;
}

static int check_case(const Case *c, unsigned *seed, char *what, size_t wn)
{
	int rc;
	Built b = build(c, stderr, &rc);
	char s0[32], s1[32] = "";
	ir_shape_str(c->in[0], s0, sizeof s0);
	if (c->nin > 1)
		ir_shape_str(c->in[1], s1, sizeof s1);
	snprintf(what, wn, "%s(%s%s%s) a=%d,%d,%d", ir_op_info[c->op].name, s0, c->nin > 1 ? ", " : "", s1,
		(int)c->a[0], (int)c->a[1], (int)c->a[2]);
	if (rc) {
		ir_func_free(b.f);
		return -1;
	}
	Vals v;
	v.nports = b.f->nins;
	for (int k = 0; k < b.f->nins; k++) {
		v.n[k] = len(b.f->nodes[b.f->ins[k].node].shape);
		v.v[k] = malloc(sizeof(double) * (size_t)v.n[k]);
		fill(c->op, k < b.nx ? k : 9, c->a[0] * c->a[0], v.v[k], v.n[k], seed);
	}
	double phi, psi, *outs[8];
	run(&b, &v, &phi, &psi, outs);
	int bad = 0;
	bool nodiff = ir_op_info[c->op].flags & IRF_NODIFF;
	for (int k = 0; k < b.nx; k++) {
		if (nodiff) {
			if (max_abs(outs[1 + k], v.n[k]) != 0) {
				fprintf(stderr, "%s: nonzero adjoint of a NODIFF op\n", what);
				bad++;
			}
			continue;
		}
		double e1 = check_port(&b, &v, k, outs[1 + k], 0);
		double e2 = check_port(&b, &v, k, outs[1 + b.nx + k], 1);
		if (e1 > 1e-6 || e2 > 1e-6) {
			fprintf(stderr, "%s: operand %d: first-order err %.3g, second-order err %.3g\n", what, k, e1, e2);
			bad++;
		}
	}
	if (!nodiff) {
		double eg = check_port(&b, &v, b.nx, outs[1 + 2 * b.nx], 1);
		if (eg > 1e-6) {
			fprintf(stderr, "%s: second order w.r.t. the seed: err %.3g\n", what, eg);
			bad++;
		}
	}
	for (int k = 0; k < b.f->nouts; k++)
		free(outs[k]);
	for (int k = 0; k < v.nports; k++)
		free(v.v[k]);
	ir_func_free(b.f);
	return bad ? -1 : 0;
}

static void test_every_op_derivatives(void **state)
{
	(void)state;
	unsigned seed = 12345;
	int failures = 0, checked = 0;
	for (int op = 0; op < IR_OP_COUNT; op++) {
		if (ir_op_info[op].flags & IRF_LEAF)
			continue;
		Case cs[32];
		int n = cases_for((IrOp)op, cs);
		if (n == 0) {
			fprintf(stderr, "op %s has no derivative-check case: add one to tests/test_autodiff.c\n",
				ir_op_info[op].name);
			failures++;
			continue;
		}
		for (int i = 0; i < n; i++) {
			char what[160];
			if (check_case(&cs[i], &seed, what, sizeof what) != 0) {
				fprintf(stderr, "FAILED: %s\n", what);
				failures++;
			}
			checked++;
		}
	}
	fprintf(stderr, "derivative checks: %d cases, %d failures\n", checked, failures);
	assert_int_equal(failures, 0);
	assert_true(checked > 80);
}

/* activity analysis: nothing is built for a wrt that the output does not depend on, and the result
 * for it is a zero constant of its shape */
static void test_activity(void **state)
{
	(void)state;
	IrFunc *f = ir_func_new("act");
	int x = ir_input(f, IR_ROLE_DATA, 0, ir_shape1(true, 3), "x");
	int z = ir_input(f, IR_ROLE_DATA, 1, ir_shape1(true, 3), "z");
	int y = ir_add(f, IR_TANH, x, -1, NOLOC);
	int unrelated = ir_add(f, IR_EXP, z, -1, NOLOC); /* depends on z, but is not an output */
	(void)unrelated;
	int s = ir_add(f, IR_STEP, z, -1, NOLOC);
	int y2 = ir_add(f, IR_MUL, y, s, NOLOC); /* z reaches y2 only through STEP */
	int g = ir_input(f, IR_ROLE_PRED_BAR, 0, ir_shape1(true, 3), "g");
	int n_before = f->n;
	int wrt[2] = {x, z}, bar[2];
	assert_int_equal(ad_vjp(f, 1, &y2, &g, 2, wrt, bar, stderr), 0);
	assert_int_equal(f->nodes[bar[1]].op, IR_CONST);
	assert_true(f->nodes[bar[1]].f == 0.0);
	assert_true(ir_shape_eq(f->nodes[bar[1]].shape, ir_shape1(true, 3)));
	/* the adjoint of x: g*s (mul), then tanh': square, sub, const 1, mul: no node touches z's exp */
	for (int i = n_before; i < f->n; i++)
		for (int k = 0; k < 2; k++)
			assert_int_not_equal(f->nodes[i].in[k], unrelated);
	assert_true(f->n - n_before <= 7);
	assert_int_equal(ir_verify(f, stderr), 0);
	ir_func_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_op_derivatives),
		cmocka_unit_test(test_activity),
	};
	return cmocka_run_group_tests_name("autodiff", tests, NULL, NULL);
}
