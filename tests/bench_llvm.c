/* tests/bench_llvm.c -- speed of LLVM-generated step code on a plastic RNN step (not run by make check).
 *
 *   tests/bench_llvm [H [B [steps]]]      defaults 256 64 50
 *
 * The step (hand-built IR, the shape of the Duan et al. plastic RNN forward):
 *   h'    = relu(x Wx + b + bmv(h, W + alpha * Hebb))
 *   Hebb' = (1 - eta) * Hebb + eta * outer(h, h')            eta = 0.1 * sigmoid(h' m) per trial
 * and its step VJP by autodiff (then the optimiser on both). The forward streams the [B,H,H] plastic
 * state: its floor is reading Hebb once and writing Hebb' once, 8 B H^2 bytes per step; the VJP at least
 * reads Hebb and the adjoint of Hebb' and writes the adjoint of Hebb (12 B H^2). The report gives the
 * time per step and the bandwidth those floors would need.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"
#include "emit_llvm.h"
#include "ir.h"
#include "jit.h"
#include "opt.h"
#include "program.h"

static const SrcSpan NOLOC = {0};

static ProgTensor tensor(const char *name, IrShape s)
{
	ProgTensor t;
	memset(&t, 0, sizeof t);
	t.name = strdup(name);
	t.shape = s;
	t.trainable = true;
	return t;
}

static Program *build(int I, int H)
{
	Program *p = calloc(1, sizeof *p);
	p->name = strdup("bench");
	p->in_size = I;
	p->pred_size = H;
	p->n_params = 5;
	p->params = calloc(5, sizeof *p->params);
	p->params[0] = tensor("Wx", ir_shape2(false, I, H));
	p->params[1] = tensor("b", ir_shape1(false, H));
	p->params[2] = tensor("W", ir_shape2(false, H, H));
	p->params[3] = tensor("alpha", ir_shape2(false, H, H));
	p->params[4] = tensor("m", ir_shape1(false, H));
	p->n_state = 2;
	p->state = calloc(2, sizeof *p->state);
	p->state[0] = tensor("h", ir_shape1(true, H));
	p->state[1] = tensor("Hebb", ir_shape2(true, H, H));
	IrFunc *f = p->fwd = ir_func_new("step_forward");
	int x = ir_input(f, IR_ROLE_DATA, 0, ir_shape1(true, I), "x");
	int h = ir_input(f, IR_ROLE_STATE, 0, ir_shape1(true, H), "h");
	int Hb = ir_input(f, IR_ROLE_STATE, 1, ir_shape2(true, H, H), "Hebb");
	int Wx = ir_param(f, 0, p->params[0].shape, "Wx"), b = ir_param(f, 1, p->params[1].shape, "b");
	int W = ir_param(f, 2, p->params[2].shape, "W"), al = ir_param(f, 3, p->params[3].shape, "alpha");
	int m = ir_param(f, 4, p->params[4].shape, "m");
	int eff = ir_add(f, IR_ADD, W, ir_add(f, IR_MUL, al, Hb, NOLOC), NOLOC);
	int pre = ir_add(f, IR_ADD, ir_add(f, IR_ADD, ir_matmul(f, x, Wx, false, false, NOLOC), b, NOLOC),
		ir_add(f, IR_BMV, h, eff, NOLOC), NOLOC);
	int h2 = ir_add(f, IR_RELU, pre, -1, NOLOC);
	int eta = ir_add(f, IR_MUL, ir_const(f, 0.1, ir_shape0(false), NOLOC),
		ir_add(f, IR_SIGMOID, ir_sum_to(f, ir_add(f, IR_MUL, h2, m, NOLOC), ir_shape0(true), NOLOC), -1, NOLOC),
		NOLOC);
	int keep = ir_add(f, IR_SUB, ir_const(f, 1.0, ir_shape0(false), NOLOC), eta, NOLOC);
	int Hb2 = ir_add(f, IR_ADD, ir_add(f, IR_MUL, keep, Hb, NOLOC),
		ir_add(f, IR_MUL, eta, ir_add(f, IR_OUTER, h, h2, NOLOC), NOLOC), NOLOC);
	ir_output(f, IR_ROLE_PRED, 0, h2, "y");
	ir_output(f, IR_ROLE_STATE, 0, h2, "h");
	ir_output(f, IR_ROLE_STATE, 1, Hb2, "Hebb");
	if (ad_step_vjp(p, stderr) != 0)
		exit(2);
	opt_run(p->fwd, NULL);
	opt_run(p->vjp, NULL);
	return p;
}

static float *randv(size_t n, uint64_t *s)
{
	float *v = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
	for (size_t i = 0; i < n; i++) {
		*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
		v[i] = (float)((double)(*s >> 11) / (double)(1ULL << 53) - 0.5) * 0.1f;
	}
	return v;
}

int main(int argc, char **argv)
{
	int H = argc > 1 ? atoi(argv[1]) : 256, B = argc > 2 ? atoi(argv[2]) : 64;
	int steps = argc > 3 ? atoi(argv[3]) : 50, I = 16;
	Program *p = build(I, H);
	EmitllTimes t = {0};
	double t0 = emitll_now();
	JitModel *jm = jit_compile(p, &t, stderr);
	if (!jm)
		return 2;
	const PlModel *mod = jit_model(jm);
	printf("JIT start-up %.1f ms (IR build %.2f, O3 %.1f, codegen %.1f ms), code %zu bytes\n",
		1e3 * (emitll_now() - t0), 1e3 * t.ir_build, 1e3 * t.opt, 1e3 * t.codegen, t.code_bytes);
	uint64_t s = 42;
	float *params[5];
	for (int j = 0; j < 5; j++)
		params[j] = randv((size_t)ir_shape_numel(p->params[j].shape), &s);
	float *x = randv((size_t)B * I, &s);
	float *st[2][2];
	for (int k = 0; k < 2; k++)
		for (int j = 0; j < 2; j++)
			st[k][j] = randv((size_t)B * ir_shape_numel(p->state[j].shape), &s);
	float *y = randv((size_t)B * H, &s);
	float *work = randv(mod->work_floats(B), &s);
	float *ybar = randv((size_t)B * H, &s);
	float *sob[2], *sib[2], *pbar[5];
	for (int j = 0; j < 2; j++) {
		sob[j] = randv((size_t)B * ir_shape_numel(p->state[j].shape), &s);
		sib[j] = randv((size_t)B * ir_shape_numel(p->state[j].shape), &s);
	}
	for (int j = 0; j < 5; j++)
		pbar[j] = randv((size_t)ir_shape_numel(p->params[j].shape), &s);
	for (int which = 0; which < 2; which++) {
		double best = 1e30, sum = 0;
		for (int i = 0; i < steps; i++) {
			PlStepArgs a;
			memset(&a, 0, sizeof a);
			a.B = a.B_global = B;
			a.params = params;
			a.x = x;
			a.state_in = st[i & 1];
			a.state_out = st[(i + 1) & 1];
			a.y = y;
			a.y_bar = ybar;
			a.state_out_bar = sob;
			a.state_in_bar = sib;
			a.param_bar = pbar;
			a.work = work;
			double t1 = emitll_now();
			(which ? mod->step_vjp : mod->step_forward)(&a);
			double dt = emitll_now() - t1;
			sum += dt;
			if (dt < best)
				best = dt;
		}
		double floor_bytes = (which ? 12.0 : 8.0) * B * (double)H * H;
		printf("H=%d B=%d: %s best %.3f ms, mean %.3f ms; floor %.0f MB -> %.1f GB/s\n", H, B,
			which ? "step_vjp    " : "step_forward", 1e3 * best, 1e3 * sum / steps, floor_bytes * 1e-6,
			floor_bytes / best * 1e-9);
	}
	printf("scratch: %.1f MB\n", (double)mod->work_floats(B) * 4e-6);
	jit_free(jm);
	program_free(p);
	return 0;
}
