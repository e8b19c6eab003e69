/* tests/emitc_harness.c -- generated C versus the interpreter (see emitc_harness.h).
 *
 * Every buffer of a step call is described once (Buf: role, index, length) and held in double; the
 * float run works on float copies and converts the results back. The scratch block is poisoned with NaN
 * before each call (a slot read before it is written shows up as NaN in the results) and followed by a
 * guard zone that must be intact afterwards (the memory plan's size is big enough).
 */
#define _GNU_SOURCE
#include "emitc_harness.h"

#include <dlfcn.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit_c.h"
#include "interp.h"

/* the double variant of PlStepArgs defined by every generated file compiled with use_double */
typedef struct PlStepArgsD {
	int B;
	int B_global;
	double *const *params;
	const double *x;
	double *const *state_in;
	double *const *state_out;
	double *y;
	double *o;
	const double *y_bar;
	double *const *state_out_bar;
	double *const *state_in_bar;
	double *const *param_bar;
	double *work;
} PlStepArgsD;

EmitcOptions emitc_harness_options;
static char tmpdir[256];
static int serial;

int emitc_harness_init(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/plastc-emitc-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

void emitc_harness_done(void)
{
	char cmd[400];
	if (getenv("PLASTC_KEEP") || !tmpdir[0]) {
		if (tmpdir[0])
			fprintf(stderr, "emitc harness: generated files kept in %s\n", tmpdir);
		return;
	}
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "emitc harness: could not remove %s\n", tmpdir);
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static double urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

static int64_t vlen(IrShape s, int B)
{
	return (s.batch ? B : 1) * ir_shape_numel(s);
}

/* Emits and compiles p; returns the dlopen handle or NULL. */
static void *build(const Program *p, bool dbl, char *pre, size_t npre)
{
	char c[400], so[400], cmd[2048];
	emitc_symbol_prefix(p, pre, npre);
	serial++;
	snprintf(c, sizeof c, "%s/%s_%s%d.c", tmpdir, pre, dbl ? "d" : "f", serial);
	snprintf(so, sizeof so, "%s/%s_%s%d.so", tmpdir, pre, dbl ? "d" : "f", serial);
	EmitcOptions o = emitc_harness_options;
	o.use_double = dbl;
	if (emitc_write(p, &o, c, stderr) != 0) {
		fprintf(stderr, "emitc harness: emit-c failed for %s\n", pre);
		return NULL;
	}
	const char *cc = getenv("CC") && getenv("CC")[0] ? getenv("CC") : "cc";
	/* the generated code must be warning-free, so the test holds it to -Wall -Wextra -Werror */
	snprintf(cmd, sizeof cmd,
		"%s -std=c11 -O2 -march=native -fopenmp-simd -fPIC -shared -Wall -Wextra -Werror -I'%s' %s "
		"-o '%s' '%s' %s -lm",
		cc, EMITC_TEST_RT_INC, EMITC_TEST_BLAS_CFLAGS, so, c, EMITC_TEST_BLAS_LIBS);
	if (system(cmd) != 0) {
		fprintf(stderr, "emitc harness: compile failed: %s\n", cmd);
		return NULL;
	}
	void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	if (!h)
		fprintf(stderr, "emitc harness: dlopen: %s\n", dlerror());
	return h;
}

/* The buffers of one call, in double. */
typedef struct Bufs {
	int np, ns;
	double **params, **state_in, **state_out, **state_out_bar, **state_in_bar, **param_bar;
	double *x, *y, *o, *y_bar;
} Bufs;

static double **dalloc_set(const ProgTensor *t, int n, int B)
{
	double **v = calloc((size_t)n + 1, sizeof *v);
	for (int i = 0; i < n; i++)
		v[i] = calloc((size_t)vlen(t[i].shape, B) + 1, sizeof **v);
	return v;
}

static void bufs_init(Bufs *b, const Program *p, int B)
{
	memset(b, 0, sizeof *b);
	b->np = p->n_params;
	b->ns = p->n_state;
	b->params = dalloc_set(p->params, b->np, B);
	b->param_bar = dalloc_set(p->params, b->np, B);
	b->state_in = dalloc_set(p->state, b->ns, B);
	b->state_out = dalloc_set(p->state, b->ns, B);
	b->state_out_bar = dalloc_set(p->state, b->ns, B);
	b->state_in_bar = dalloc_set(p->state, b->ns, B);
	b->x = calloc((size_t)B * (size_t)p->in_size + 1, sizeof(double));
	b->y = calloc((size_t)B * (size_t)p->pred_size + 1, sizeof(double));
	b->y_bar = calloc((size_t)B * (size_t)p->pred_size + 1, sizeof(double));
	b->o = calloc((size_t)B * (size_t)p->out_size + 1, sizeof(double));
}

static void free_set(double **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void bufs_free(Bufs *b)
{
	free_set(b->params, b->np);
	free_set(b->param_bar, b->np);
	free_set(b->state_in, b->ns);
	free_set(b->state_out, b->ns);
	free_set(b->state_out_bar, b->ns);
	free_set(b->state_in_bar, b->ns);
	free(b->x);
	free(b->y);
	free(b->y_bar);
	free(b->o);
}

/* the buffer an input or output port binds */
static double *port_buf(Bufs *b, const IrPort *pt, bool input)
{
	switch (pt->role) {
	case IR_ROLE_DATA: return b->x;
	case IR_ROLE_STATE: return input ? b->state_in[pt->index] : b->state_out[pt->index];
	case IR_ROLE_PRED: return b->y;
	case IR_ROLE_OUTPUTS: return b->o;
	case IR_ROLE_PRED_BAR: return b->y_bar;
	case IR_ROLE_STATE_BAR: return input ? b->state_out_bar[pt->index] : b->state_in_bar[pt->index];
	case IR_ROLE_PARAM_BAR: return b->param_bar[pt->index];
	case IR_ROLE_SCALAR: return NULL;
	case IR_ROLE_STATE_NEXT: return input ? b->state_out[pt->index] : NULL; /* the VJP reads it */
	}
	return NULL;
}

/* float mirrors of a Bufs */
typedef struct FBufs {
	float **params, **state_in, **state_out, **state_out_bar, **state_in_bar, **param_bar;
	float *x, *y, *o, *y_bar;
} FBufs;

static float *fcopy(const double *d, int64_t n)
{
	float *f = calloc((size_t)n + 1, sizeof *f);
	for (int64_t i = 0; i < n; i++)
		f[i] = (float)d[i];
	return f;
}

static float **fcopy_set(double **d, const ProgTensor *t, int n, int B)
{
	float **v = calloc((size_t)n + 1, sizeof *v);
	for (int i = 0; i < n; i++)
		v[i] = fcopy(d[i], vlen(t[i].shape, B));
	return v;
}

static void back(double *d, const float *f, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		d[i] = f[i];
}

static void ffree_set(float **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

#define GUARD 64
#define SENTINEL 12345.0

/* Runs f (fwd or vjp) of the loaded object on b. */
/* which: 0 step_forward, 1 step_vjp, 2 step_forward_eval */
static const char *const fn_names[3] = {"forward", "vjp", "forward_eval"};

static int run_generated(void *h, const char *pre, bool dbl, int which, const Program *p, Bufs *b, int B,
	int Bg)
{
	char sym[256];
	if (dbl) {
		snprintf(sym, sizeof sym, "%s_work_floats", pre);
		size_t (*wf)(int) = (size_t(*)(int))dlsym(h, sym);
		snprintf(sym, sizeof sym, "%s_step_%s", pre, fn_names[which]);
		void (*fn)(const PlStepArgsD *) = (void (*)(const PlStepArgsD *))dlsym(h, sym);
		if (!wf || !fn) {
			fprintf(stderr, "emitc harness: missing %s\n", sym);
			return -1;
		}
		size_t nw = wf(B);
		double *work = aligned_alloc(64, ((nw + GUARD) * sizeof(double) + 63) / 64 * 64);
		for (size_t i = 0; i < nw; i++)
			work[i] = NAN;
		for (size_t i = nw; i < nw + GUARD; i++)
			work[i] = SENTINEL;
		PlStepArgsD a = {B, Bg, b->params, b->x, b->state_in, b->state_out, b->y, b->o, b->y_bar,
			b->state_out_bar, b->state_in_bar, b->param_bar, work};
		fn(&a);
		int bad = 0;
		for (size_t i = nw; i < nw + GUARD; i++)
			bad |= work[i] != SENTINEL;
		free(work);
		if (bad)
			fprintf(stderr, "emitc harness: %s wrote past work_floats(%d) = %zu\n", sym, B, nw);
		return bad ? -1 : 0;
	}
	snprintf(sym, sizeof sym, "%s_model", pre);
	const PlModel *m = dlsym(h, sym);
	if (!m) {
		fprintf(stderr, "emitc harness: missing %s\n", sym);
		return -1;
	}
	if (m->abi_version != PL_ABI_VERSION || m->n_params != p->n_params || m->n_state != p->n_state ||
		m->in_size != p->in_size || m->pred_size != p->pred_size || m->out_size != p->out_size) {
		fprintf(stderr, "emitc harness: descriptor of %s disagrees with the program\n", pre);
		return -1;
	}
	for (int j = 0; j < p->n_params; j++)
		if (strcmp(m->params[j].name, p->params[j].name) != 0 ||
			m->params[j].rank != p->params[j].shape.rank) {
			fprintf(stderr, "emitc harness: parameter %d of %s: descriptor says %s\n", j, pre,
				m->params[j].name);
			return -1;
		}
	FBufs f;
	f.params = fcopy_set(b->params, p->params, p->n_params, B);
	f.param_bar = fcopy_set(b->param_bar, p->params, p->n_params, B);
	f.state_in = fcopy_set(b->state_in, p->state, p->n_state, B);
	f.state_out = fcopy_set(b->state_out, p->state, p->n_state, B);
	f.state_out_bar = fcopy_set(b->state_out_bar, p->state, p->n_state, B);
	f.state_in_bar = fcopy_set(b->state_in_bar, p->state, p->n_state, B);
	f.x = fcopy(b->x, (int64_t)B * p->in_size);
	f.y = fcopy(b->y, (int64_t)B * p->pred_size);
	f.y_bar = fcopy(b->y_bar, (int64_t)B * p->pred_size);
	f.o = fcopy(b->o, (int64_t)B * p->out_size);
	size_t nw = m->work_floats(B);
	float *work = aligned_alloc(64, ((nw + GUARD) * sizeof(float) + 63) / 64 * 64);
	for (size_t i = 0; i < nw; i++)
		work[i] = NAN;
	for (size_t i = nw; i < nw + GUARD; i++)
		work[i] = (float)SENTINEL;
	PlStepArgs a = {B, Bg, f.params, f.x, f.state_in, f.state_out, f.y, f.o, f.y_bar, f.state_out_bar,
		f.state_in_bar, f.param_bar, work};
	void (*fn)(const PlStepArgs *) = which == 1 ? m->step_vjp : which == 2 ? m->step_forward_eval : m->step_forward;
	if (!fn) {
		fprintf(stderr, "emitc harness: %s_model has no step_%s\n", pre, fn_names[which]);
		free(work);
		return -1;
	}
	fn(&a);
	int bad = 0;
	for (size_t i = nw; i < nw + GUARD; i++)
		bad |= work[i] != (float)SENTINEL;
	if (bad)
		fprintf(stderr, "emitc harness: %s wrote past work_floats(%d) = %zu\n", pre, B, nw);
	free(work);
	for (int s = 0; s < p->n_state; s++) {
		back(b->state_out[s], f.state_out[s], vlen(p->state[s].shape, B));
		back(b->state_in_bar[s], f.state_in_bar[s], vlen(p->state[s].shape, B));
	}
	for (int j = 0; j < p->n_params; j++)
		back(b->param_bar[j], f.param_bar[j], vlen(p->params[j].shape, B));
	back(b->y, f.y, (int64_t)B * p->pred_size);
	back(b->o, f.o, (int64_t)B * p->out_size);
	ffree_set(f.params, p->n_params);
	ffree_set(f.param_bar, p->n_params);
	ffree_set(f.state_in, p->n_state);
	ffree_set(f.state_out, p->n_state);
	ffree_set(f.state_out_bar, p->n_state);
	ffree_set(f.state_in_bar, p->n_state);
	free(f.x);
	free(f.y);
	free(f.y_bar);
	free(f.o);
	return bad ? -1 : 0;
}

#define PARAM_BAR_START 0.5 /* param_bar starts here: the generated code must add, not overwrite */

/* One function at one batch size: interpreter versus generated code. */
static int check_fn(void *h, const char *pre, bool dbl, int which, const Program *p, int B, int Bg, double tol,
	double *max_err, int *compared)
{
	const IrFunc *f = which == 1 ? p->vjp : which == 2 ? p->fwd_eval : p->fwd;
	Bufs b;
	bufs_init(&b, p, B);
	for (int j = 0; j < p->n_params; j++)
		for (int64_t i = 0; i < vlen(p->params[j].shape, B); i++)
			b.params[j][i] = p->params[j].running ? 0.5 + fabs(urand()) : urand(); /* a variance is > 0 */
	const double **in = calloc((size_t)f->nins + 1, sizeof *in);
	double **ref = calloc((size_t)f->nouts + 1, sizeof *ref);
	for (int k = 0; k < f->nins; k++) {
		double *buf = port_buf(&b, &f->ins[k], true);
		int64_t n = vlen(f->nodes[f->ins[k].node].shape, B);
		for (int64_t i = 0; i < n; i++)
			buf[i] = urand();
		in[k] = buf;
	}
	for (int k = 0; k < f->nouts; k++)
		ref[k] = calloc((size_t)vlen(f->nodes[f->outs[k].node].shape, B) + 1, sizeof **ref);
	for (int j = 0; j < p->n_params; j++)
		for (int64_t i = 0; i < vlen(p->params[j].shape, B); i++)
			b.param_bar[j][i] = PARAM_BAR_START;
	int rc = interp_run(f, B, Bg, (const double *const *)b.params, in, ref, stderr);
	if (rc == 0)
		rc = run_generated(h, pre, dbl, which, p, &b, B, Bg);
	for (int k = 0; k < f->nouts && rc == 0; k++) {
		const IrPort *pt = &f->outs[k];
		const double *got = port_buf(&b, pt, false);
		if (!got)
			continue;
		double base = pt->role == IR_ROLE_PARAM_BAR ? PARAM_BAR_START : 0.0;
		int64_t n = vlen(f->nodes[pt->node].shape, B);
		for (int64_t i = 0; i < n; i++) {
			double want = ref[k][i] + base, err = fabs(got[i] - want) / fmax(1.0, fabs(want));
			if (!(err <= tol)) {
				fprintf(stderr,
					"emitc harness: %s %s (%s) B=%d: output %s [%lld] = %.9g, interpreter %.9g\n",
					pre, fn_names[which], dbl ? "double" : "float", B,
					pt->name ? pt->name : ir_role_name(pt->role), (long long)i, got[i], want);
				rc = -1;
				break;
			}
			if (err > *max_err)
				*max_err = err;
			(*compared)++;
		}
	}
	for (int k = 0; k < f->nouts; k++)
		free(ref[k]);
	free(ref);
	free(in);
	bufs_free(&b);
	return rc;
}

int emitc_check_program(const Program *p, double tol_float, EmitcCheck *res)
{
	EmitcCheck r = {0, 0, 0};
	int rc = 0;
	for (int dbl = 1; dbl >= 0 && rc == 0; dbl--) {
		char pre[128];
		void *h = build(p, dbl, pre, sizeof pre);
		if (!h)
			return -1;
		static const int Bs[][2] = {{1, 1}, {3, 3}, {5, 8}};
		for (size_t k = 0; k < sizeof Bs / sizeof *Bs && rc == 0; k++)
			for (int which = 0; which <= 2 && rc == 0; which++)
				if (which == 0 || (which == 1 && p->vjp) || (which == 2 && p->fwd_eval))
					rc = check_fn(h, pre, dbl, which, p, Bs[k][0], Bs[k][1], dbl ? 1e-9 : tol_float,
						dbl ? &r.max_err_double : &r.max_err_float, &r.compared);
		dlclose(h);
	}
	if (res)
		*res = r;
	return rc;
}
