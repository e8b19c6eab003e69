/* compiler/cmd_grad.c -- plastc init, grad and gradcheck: parameters, gradients and derivative checks.
 *
 * init runs the runtime's own `init` (pl_cmd_init) on a descriptor of the Program, so its file is the
 * per-model binary's, byte for byte. grad computes the meta-loss of a batch file and its gradient: with
 * the interpreter in float64 (the reference), or with the generated code in float32 (the model binary's
 * `grad`, built into the model cache, or the LLVM JIT in this process). gradcheck checks the derivatives
 * (gradcheck.c) or compares a backend with the interpreter. Files are read with the runtime's pl_st_*
 * functions, whose messages name the file, the tensor and the problem.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "config.h"
#include "frontend.h"
#include "gradcheck.h"
#include "interp.h"

#if defined(HAVE_LLVM) && defined(__has_include)
#if __has_include("jit.h")
#include "jit.h"
#define GRAD_HAVE_JIT 1
#endif
#endif

extern char **environ;

/* argv strings for the runtime's subcommands, which take char ** but never write to them */
static char *mut(const char *s)
{
	return (char *)(uintptr_t)s;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p) {
		fprintf(stderr, "plastc: internal error: out of memory\n");
		exit(2);
	}
	return p;
}

/* ---- options ---- */

typedef struct GradOpts {
	const char *file, *out, *params, *batch, *backend, *cache, *seed;
	char **sets;
	int nset;
	uint64_t seed_v;
	long order, B, T, K;
	double tol, h;
	bool tol_given, rebuild, verbose;
} GradOpts;

static int parse_long(const char *cmd, const char *flag, const char *v, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || end == v || *end || x < lo || x > hi)
		return cmd_usage_error(cmd, "%s wants an integer in [%ld, %ld], got '%s'", flag, lo, hi, v);
	*out = x;
	return 0;
}

static int parse_double(const char *cmd, const char *flag, const char *v, double *out)
{
	char *end;
	errno = 0;
	double x = strtod(v, &end);
	if (errno || end == v || *end || !(x > 0) || !isfinite(x))
		return cmd_usage_error(cmd, "%s wants a positive number, got '%s'", flag, v);
	*out = x;
	return 0;
}

/* Which flags a command takes. */
enum { F_OUT = 1, F_SEED = 2, F_PARAMS = 4, F_BATCHFILE = 8, F_BACKEND = 16, F_CHECK = 32 };

/* Returns 0, or 1 after a usage error. */
static int parse(const char *cmd, unsigned flags, int argc, char **argv, GradOpts *o)
{
	memset(o, 0, sizeof *o);
	o->backend = "interp";
	o->order = 1;
	o->B = 3;
	o->T = 5;
	o->K = 16;
	o->h = 1e-4;
	for (int i = 1; i < argc;) {
		const char *v;
		int r = cmd_opt_set(argc, argv, &i, &o->sets, &o->nset);
		if (r < 0)
			return 1;
		if (r)
			continue;
#define OPT(name, cond, body)                                                                            \
	if ((cond) && (r = cmd_opt(argc, argv, &i, name, &v)) != 0) {                                        \
		if (r < 0)                                                                                   \
			return 1;                                                                            \
		body;                                                                                        \
		continue;                                                                                    \
	}
		OPT("-o", flags & F_OUT, o->out = v)
		OPT("--output", flags & F_OUT, o->out = v)
		OPT("--seed", flags & F_SEED, {
			char *end;
			errno = 0;
			unsigned long long s = strtoull(v, &end, 10);
			if (errno || end == v || *end || v[0] == '-')
				return cmd_usage_error(cmd, "--seed wants a non-negative integer, got '%s'", v);
			o->seed_v = s;
			o->seed = v;
		})
		OPT("--params", flags & F_PARAMS, o->params = v)
		OPT("--batch", flags & F_BATCHFILE, o->batch = v)
		OPT("--batch", flags & F_CHECK, if (parse_long(cmd, "--batch", v, 1, 4096, &o->B)) return 1)
		OPT("--T", flags & F_CHECK, if (parse_long(cmd, "--T", v, 1, 100000, &o->T)) return 1)
		OPT("-K", flags & F_CHECK, if (parse_long(cmd, "-K", v, 1, 1L << 30, &o->K)) return 1)
		OPT("--K", flags & F_CHECK, if (parse_long(cmd, "--K", v, 1, 1L << 30, &o->K)) return 1)
		OPT("--order", flags & F_CHECK, if (parse_long(cmd, "--order", v, 1, 2, &o->order)) return 1)
		OPT("--tol", flags & F_CHECK, {
			if (parse_double(cmd, "--tol", v, &o->tol))
				return 1;
			o->tol_given = true;
		})
		OPT("--h", flags & F_CHECK, if (parse_double(cmd, "--h", v, &o->h)) return 1)
		OPT("--cache", flags & F_BACKEND, o->cache = v)
		OPT("--backend", flags & F_BACKEND, {
			if (strcmp(v, "interp") != 0 && strcmp(v, "c") != 0 && strcmp(v, "llvm") != 0)
				return cmd_usage_error(cmd, "unknown backend '%s' (interp, c or llvm)", v);
			o->backend = v;
		})
#undef OPT
		const char *a = argv[i];
		if ((flags & F_BACKEND) && strcmp(a, "--rebuild") == 0)
			o->rebuild = true;
		else if ((flags & F_BACKEND) && (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0))
			o->verbose = true;
		else if (!o->file && a[0] != '-')
			o->file = a;
		else
			return cmd_usage_error(cmd, "unknown option '%s'", a);
		i++;
	}
	if (!o->file)
		return cmd_usage_error(cmd, "no FILE given");
	if (!o->tol_given)
		o->tol = strcmp(o->backend, "interp") == 0 ? 1e-6 : 1e-3;
	return 0;
}

static Program *load(const GradOpts *o, DiagCtx *d, int *rc)
{
	Program *p = frontend_load_program(o->file, o->nset, o->sets, d);
	if (!p) {
		if (diag_error_count(d) == 0)
			fprintf(stderr, "plastc: internal error: %s: the front end returned no program\n", o->file);
		*rc = diag_error_count(d) ? 1 : 2;
	}
	return p;
}

/* A runtime descriptor of p without entry points (init and file checks need only the tables). The
 * names point into p. */
typedef struct ProgModel {
	PlModel m;
	PlTensorDesc *params, *state;
} ProgModel;

static void desc_fill(PlTensorDesc *d, const ProgTensor *t, int n)
{
	for (int i = 0; i < n; i++) {
		d[i].name = t[i].name;
		d[i].rank = t[i].shape.rank;
		for (int k = 0; k < t[i].shape.rank && k < PL_MAX_RANK; k++)
			d[i].dims[k] = t[i].shape.d[k];
		d[i].init = t[i].init;
		d[i].init_a = t[i].init_a;
		d[i].init_b = t[i].init_b;
		d[i].trainable = t[i].trainable ? 1 : 0;
		d[i].running = t[i].running ? 1 : 0;
	}
}

static void prog_model(const Program *p, ProgModel *pm)
{
	memset(pm, 0, sizeof *pm);
	pm->params = xcalloc((size_t)p->n_params, sizeof *pm->params);
	pm->state = xcalloc((size_t)p->n_state, sizeof *pm->state);
	desc_fill(pm->params, p->params, p->n_params);
	desc_fill(pm->state, p->state, p->n_state);
	PlModel *m = &pm->m;
	m->abi_version = PL_ABI_VERSION;
	m->name = p->name;
	m->hash = p->hash;
	m->source = p->source;
	m->settings = p->settings;
	m->in_size = p->in_size;
	m->pred_size = p->pred_size;
	m->out_size = p->out_size;
	m->meta_loss = p->meta_loss;
	m->couples_rows = p->couples_rows;
	m->n_params = p->n_params;
	m->params = pm->params;
	m->n_state = p->n_state;
	m->state = pm->state;
}

static void prog_model_free(ProgModel *pm)
{
	free(pm->params);
	free(pm->state);
}

/* ---- init ---- */

int cmd_init(int argc, char **argv)
{
	GradOpts o;
	int rc = parse("init", F_OUT | F_SEED, argc, argv, &o);
	if (rc == 0 && !o.out)
		rc = cmd_usage_error("init", "no output file (-o PARAMS.safetensors)");
	if (rc) {
		free(o.sets);
		return rc;
	}
	DiagCtx *d = diag_ctx_new(stderr);
	Program *p = load(&o, d, &rc);
	if (p) {
		ProgModel pm;
		prog_model(p, &pm);
		char *av[] = {mut("init"), mut("--seed"), mut(o.seed ? o.seed : "0"), mut("-o"), mut(o.out), NULL};
		pl_set_progname("plastc");
		rc = pl_cmd_init(&pm.m, 5, av);
		prog_model_free(&pm);
	}
	program_free(p);
	diag_ctx_free(d);
	free(o.sets);
	return rc;
}

/* ---- reading the inputs of grad ---- */

static void shape_text(char *buf, size_t n, int rank, const int64_t *dims)
{
	size_t at = (size_t)snprintf(buf, n, "[");
	for (int i = 0; i < rank && at < n; i++)
		at += (size_t)snprintf(buf + at, n - at, "%s%" PRId64, i ? ", " : "", dims[i]);
	if (at < n)
		snprintf(buf + at, n - at, "]");
}

/* The parameters of P (double, one array per parameter of p) and the batch. Returns 0, or 1 after a
 * message "plastc: error: FILE: ...". */
typedef struct GradInputs {
	int n_params;
	double **params;
	TrialBatch b;
	double *x, *target, *mask;
} GradInputs;

static void inputs_free(GradInputs *in)
{
	if (in->params)
		for (int j = 0; j < in->n_params; j++)
			free(in->params[j]);
	free(in->params);
	free(in->x);
	free(in->target);
	free(in->mask);
	memset(in, 0, sizeof *in);
}

static int read_inputs(const Program *p, const char *ppath, const char *bpath, GradInputs *in)
{
	char err[1024];
	int rc = 1;
	memset(in, 0, sizeof *in);
	PlSt *ps = pl_st_read(ppath, err, sizeof err), *bs = NULL;
	if (!ps || !(bs = pl_st_read(bpath, err, sizeof err))) {
		fprintf(stderr, "plastc: error: %s\n", err);
		goto out;
	}
	in->n_params = p->n_params;
	in->params = xcalloc((size_t)p->n_params, sizeof *in->params);
	for (int j = 0; j < p->n_params; j++) {
		const ProgTensor *t = &p->params[j];
		in->params[j] = xcalloc((size_t)ir_shape_numel(t->shape), sizeof **in->params);
		if (pl_st_get_f64(ps, ppath, t->name, t->shape.rank, t->shape.d, in->params[j], err, sizeof err) < 0) {
			fprintf(stderr, "plastc: error: %s (parameter of model %s)\n", err, p->name);
			goto out;
		}
	}
	const PlStTensor *xt = pl_st_find(bs, "x");
	if (!xt) {
		fprintf(stderr, "plastc: error: %s: missing tensor 'x' ([T, B, %d])\n", bpath, p->in_size);
		goto out;
	}
	if (xt->rank != 3 || xt->dims[0] < 1 || xt->dims[1] < 1 || xt->dims[2] != p->in_size) {
		char s[256];
		shape_text(s, sizeof s, xt->rank, xt->dims);
		fprintf(stderr, "plastc: error: %s: tensor 'x' has shape %s, expected [T, B, %d] with T, B >= 1 "
			"(model %s has input size %d)\n", bpath, s, p->in_size, p->name, p->in_size);
		goto out;
	}
	if (xt->dims[0] > INT_MAX || xt->dims[1] > INT_MAX) {
		fprintf(stderr, "plastc: error: %s: tensor 'x' is too large\n", bpath);
		goto out;
	}
	int T = (int)xt->dims[0], B = (int)xt->dims[1];
	int64_t xd[3] = {T, B, p->in_size}, td[3] = {T, B, p->pred_size}, md[1] = {T};
	in->x = xcalloc((size_t)T * (size_t)B * (size_t)p->in_size, sizeof *in->x);
	in->target = xcalloc((size_t)T * (size_t)B * (size_t)p->pred_size, sizeof *in->target);
	in->mask = xcalloc((size_t)T, sizeof *in->mask);
	if (pl_st_get_f64(bs, bpath, "x", 3, xd, in->x, err, sizeof err) < 0
		|| pl_st_get_f64(bs, bpath, "target", 3, td, in->target, err, sizeof err) < 0) {
		fprintf(stderr, "plastc: error: %s\n", err);
		goto out;
	}
	if (pl_st_find(bs, "mask")) {
		if (pl_st_get_f64(bs, bpath, "mask", 1, md, in->mask, err, sizeof err) < 0) {
			fprintf(stderr, "plastc: error: %s\n", err);
			goto out;
		}
	} else {
		for (int t = 0; t < T; t++)
			in->mask[t] = 1.0 / T; /* as the model binary's grad */
	}
	in->b = (TrialBatch){.T = T, .B = B, .x = in->x, .target = in->target, .mask = in->mask};
	rc = 0;
out:
	if (rc)
		inputs_free(in);
	pl_st_free(ps);
	pl_st_free(bs);
	return rc;
}

/* ---- the generated code's grad ---- */

static int spawn_wait(char *const *av, bool verbose)
{
	if (verbose) {
		fprintf(stderr, "plastc:");
		for (int i = 0; av[i]; i++)
			fprintf(stderr, " %s", av[i]);
		fputc('\n', stderr);
	}
	fflush(NULL);
	pid_t pid;
	int e = posix_spawn(&pid, av[0], NULL, NULL, av, environ);
	if (e != 0) {
		fprintf(stderr, "plastc: error: cannot run %s: %s\n", av[0], strerror(e));
		return 1;
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "plastc: internal error: waitpid: %s\n", strerror(errno));
			return 2;
		}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	fprintf(stderr, "plastc: internal error: %s died (signal %d)\n", av[0], WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return 2;
}

/* Runs `grad --params P --batch B -o G` of the generated code: the cached model binary (c) or the JIT'd
 * model in this process (llvm). Returns its exit status. */
static int generated_grad(const Program *p, const GradOpts *o, const char *ppath, const char *bpath,
	const char *gpath)
{
	char *av[] = {mut("grad"), mut("--params"), mut(ppath), mut("--batch"), mut(bpath), mut("-o"), mut(gpath),
		NULL};
	if (strcmp(o->backend, "llvm") == 0) {
#ifdef GRAD_HAVE_JIT
		JitModel *j = jit_compile(p, NULL, stderr);
		if (!j)
			return 2;
		pl_set_progname("plastc");
		int rc = pl_cmd_grad(jit_model(j), 7, av);
		jit_free(j);
		return rc;
#else
		fprintf(stderr, "plastc: error: this plastc was built without the LLVM backend\n"
			"hint: use --backend c or --backend interp\n");
		return 1;
#endif
	}
	char bin[PATH_MAX + 256];
	int rc = cmd_model_binary(p, "c", o->cache, o->rebuild, o->verbose, bin, sizeof bin);
	if (rc)
		return rc;
	char *bv[9] = {bin};
	for (int i = 0; i < 8; i++)
		bv[i + 1] = av[i];
	return spawn_wait(bv, o->verbose);
}

/* ---- grad ---- */

static int write_grads(const Program *p, const char *path, double loss, double *const *g)
{
	char err[1024];
	PlSt *st = pl_st_new();
	int64_t none[1] = {0};
	if (!st || pl_st_add(st, "loss", PL_F64, 0, none, &loss) < 0) {
		fprintf(stderr, "plastc: internal error: out of memory\n");
		pl_st_free(st);
		return 2;
	}
	for (int j = 0; j < p->n_params; j++)
		if (pl_st_add(st, p->params[j].name, PL_F64, p->params[j].shape.rank, p->params[j].shape.d, g[j]) < 0) {
			fprintf(stderr, "plastc: internal error: cannot add tensor '%s'\n", p->params[j].name);
			pl_st_free(st);
			return 2;
		}
	pl_st_set_meta(st, "format", "plastc-grad-1");
	pl_st_set_meta(st, "model", p->name ? p->name : "");
	pl_st_set_meta(st, "model_hash", p->hash);
	pl_st_set_meta(st, "backend", "interp");
	int rc = 0;
	if (pl_st_write(st, path, err, sizeof err) < 0) {
		fprintf(stderr, "plastc: error: %s\n", err);
		rc = 1;
	}
	pl_st_free(st);
	return rc;
}

int cmd_grad(int argc, char **argv)
{
	GradOpts o;
	int rc = parse("grad", F_OUT | F_PARAMS | F_BATCHFILE | F_BACKEND, argc, argv, &o);
	if (rc == 0 && (!o.params || !o.batch || !o.out))
		rc = cmd_usage_error("grad", "needs --params P.safetensors --batch B.safetensors -o G.safetensors");
	if (rc) {
		free(o.sets);
		return rc;
	}
	DiagCtx *d = diag_ctx_new(stderr);
	Program *p = load(&o, d, &rc);
	GradInputs in;
	memset(&in, 0, sizeof in);
	double **g = NULL;
	if (!p)
		goto out;
	/* the inputs are checked here for every backend, so the messages are plastc's */
	if ((rc = read_inputs(p, o.params, o.batch, &in)) != 0)
		goto out;
	if (strcmp(o.backend, "interp") != 0) {
		rc = generated_grad(p, &o, o.params, o.batch, o.out);
		goto out;
	}
	g = xcalloc((size_t)p->n_params, sizeof *g);
	for (int j = 0; j < p->n_params; j++)
		g[j] = xcalloc((size_t)ir_shape_numel(p->params[j].shape), sizeof **g);
	double loss;
	if (interp_trial(p, (const double *const *)in.params, &in.b, &loss, g, stderr) != 0) {
		rc = 2;
		goto out;
	}
	if ((rc = write_grads(p, o.out, loss, g)) != 0)
		goto out;
	if (!isfinite(loss)) {
		fprintf(stderr, "plastc: error: grad: the loss is not finite (written anyway to %s)\n", o.out);
		rc = 3;
	}
out:
	if (g)
		for (int j = 0; j < p->n_params; j++)
			free(g[j]);
	free(g);
	inputs_free(&in);
	program_free(p);
	diag_ctx_free(d);
	free(o.sets);
	return rc;
}

/* ---- gradcheck ---- */

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

/* The names of the Δ nodes of the gradient rules ("LAYER.TENSOR.delta", as lower.c names them): the
 * plastic tensors whose rule clause calls grad(...). Returns the count (names in *out, free each and
 * the array), or -1. */
static int gradient_deltas(const GradOpts *o, char ***out)
{
	*out = NULL;
	FILE *sink = tmpfile();
	DiagCtx *d = diag_ctx_new(sink ? sink : stderr); /* the same diagnostics were printed by load() */
	Frontend *fe = frontend_parse(o->file, d);
	int n = -1;
	SemaModel *m = fe && diag_error_count(d) == 0 ? frontend_check(fe, o->nset, o->sets, d) : NULL;
	if (m) {
		n = 0;
		char **names = xcalloc((size_t)m->nstate + 1, sizeof *names);
		for (int li = 0; li < m->nlayers; li++) {
			const SemaLayer *L = &m->layers[li];
			if (!L->plastic || !L->rule)
				continue;
			for (int k = 0; k < L->nt; k++) {
				const SemaTensor *t = &L->t[k];
				if (t->state < 0 || !uses_grad(t->is_bias ? L->rule->bias : L->rule->value))
					continue;
				size_t len = strlen(L->name) + strlen(t->suffix) + 8;
				names[n] = xcalloc(len, 1);
				snprintf(names[n++], len, "%s.%s.delta", L->name, t->suffix);
			}
		}
		*out = names;
	}
	frontend_free(fe);
	diag_ctx_free(d);
	if (sink)
		fclose(sink);
	return n;
}

static double norm2(const double *a, const double *b, int64_t n)
{
	double s = 0;
	for (int64_t i = 0; i < n; i++) {
		double v = b ? a[i] - b[i] : a[i];
		s += v * v;
	}
	return sqrt(s);
}

static int write_f32(PlSt *st, const char *name, int rank, const int64_t *dims, const double *v, int64_t n)
{
	float *f = xcalloc((size_t)n, sizeof *f);
	for (int64_t i = 0; i < n; i++)
		f[i] = (float)v[i];
	int rc = pl_st_add_f32(st, name, rank, dims, f);
	free(f);
	return rc;
}

static void round_f32(double *v, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		v[i] = (double)(float)v[i];
}

/* --backend c|llvm: the generated code's gradient (float32) against the interpreter's (float64) on the
 * same float32-representable parameters and batch. Per tensor: |g_gen - g_interp|_2 / max(|g_interp|_2,
 * 1e-3 max_t |g_interp,t|_2). Returns 0 (pass), 1 (fail or user error) or 2. */
static int compare_backend(const Program *p, const GradOpts *o, GcData *dd)
{
	int T = dd->T, B = dd->B, P = p->n_params;
	int64_t nx = (int64_t)T * B * p->in_size, ny = (int64_t)T * B * p->pred_size;
	for (int j = 0; j < P; j++)
		round_f32(dd->params[j], ir_shape_numel(p->params[j].shape));
	round_f32(dd->x, nx);
	round_f32(dd->target, ny);
	round_f32(dd->mask, T);
	double **gi = xcalloc((size_t)P, sizeof *gi), **gg = xcalloc((size_t)P, sizeof *gg);
	for (int j = 0; j < P; j++) {
		gi[j] = xcalloc((size_t)ir_shape_numel(p->params[j].shape), sizeof **gi);
		gg[j] = xcalloc((size_t)ir_shape_numel(p->params[j].shape), sizeof **gg);
	}
	TrialBatch b = gc_data_batch(dd);
	double li, lg = 0;
	int rc = 2;
	char dir[PATH_MAX], pp[PATH_MAX + 32], bp[PATH_MAX + 32], gp[PATH_MAX + 32], err[1024];
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/plastc-gradcheck.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	bool made = false;
	PlSt *ps = NULL, *bs = NULL, *gs = NULL;
	if (interp_trial(p, (const double *const *)dd->params, &b, &li, gi, stderr) != 0)
		goto out;
	if (!mkdtemp(dir)) {
		fprintf(stderr, "plastc: error: cannot create a temporary directory %s: %s\n", dir, strerror(errno));
		rc = 1;
		goto out;
	}
	made = true;
	snprintf(pp, sizeof pp, "%s/params.safetensors", dir);
	snprintf(bp, sizeof bp, "%s/batch.safetensors", dir);
	snprintf(gp, sizeof gp, "%s/grad.safetensors", dir);
	ps = pl_st_new();
	bs = pl_st_new();
	int64_t xd[3] = {T, B, p->in_size}, td[3] = {T, B, p->pred_size}, md[1] = {T};
	if (!ps || !bs)
		goto out;
	for (int j = 0; j < P; j++)
		if (write_f32(ps, p->params[j].name, p->params[j].shape.rank, p->params[j].shape.d, dd->params[j],
				ir_shape_numel(p->params[j].shape)) < 0)
			goto out;
	if (write_f32(bs, "x", 3, xd, dd->x, nx) < 0 || write_f32(bs, "target", 3, td, dd->target, ny) < 0
		|| write_f32(bs, "mask", 1, md, dd->mask, T) < 0)
		goto out;
	if (pl_st_write(ps, pp, err, sizeof err) < 0 || pl_st_write(bs, bp, err, sizeof err) < 0) {
		fprintf(stderr, "plastc: error: %s\n", err);
		rc = 1;
		goto out;
	}
	if ((rc = generated_grad(p, o, pp, bp, gp)) != 0)
		goto out;
	rc = 2;
	int64_t none[1] = {0};
	if (!(gs = pl_st_read(gp, err, sizeof err)) || pl_st_get_f64(gs, gp, "loss", 0, none, &lg, err, sizeof err) < 0) {
		fprintf(stderr, "plastc: internal error: the generated grad wrote an unreadable file: %s\n", err);
		goto out;
	}
	for (int j = 0; j < P; j++)
		if (pl_st_get_f64(gs, gp, p->params[j].name, p->params[j].shape.rank, p->params[j].shape.d, gg[j], err,
				sizeof err) < 0) {
			fprintf(stderr, "plastc: internal error: %s\n", err);
			goto out;
		}
	double gmax = 0;
	for (int j = 0; j < P; j++)
		gmax = fmax(gmax, norm2(gi[j], NULL, ir_shape_numel(p->params[j].shape)));
	int fails = 0;
	double worst = fabs(lg - li) / fmax(fabs(li), 1e-300);
	FILE *out = stdout;
	fprintf(out, "backend %s: meta-loss %.8g, interpreter %.10g (T=%d, B=%d), rel err %.2e  %s\n", o->backend, lg,
		li, T, B, worst, worst < o->tol ? "PASS" : "FAIL");
	fails += !(worst < o->tol);
	for (int j = 0; j < P; j++) {
		int64_t n = ir_shape_numel(p->params[j].shape);
		double den = fmax(norm2(gi[j], NULL, n), 1e-3 * gmax);
		double e = den > 0 ? norm2(gg[j], gi[j], n) / den : norm2(gg[j], NULL, n);
		bool pass = e < o->tol;
		fails += !pass;
		worst = fmax(worst, e);
		char sh[64];
		ir_shape_str(p->params[j].shape, sh, sizeof sh);
		fprintf(out, "backend %s  param %-22s %-12s |g| %.3e  rel err of the norm %.2e  %s\n", o->backend,
			p->params[j].name, sh, norm2(gi[j], NULL, n), e, pass ? "PASS" : "FAIL");
	}
	fprintf(out, "backend %s vs interpreter: %d tensors, max rel err %.2e (tol %.1e): %s\n", o->backend, P, worst,
		o->tol, fails ? "FAIL" : "PASS");
	rc = fails ? 1 : 0;
out:
	if (rc == 2 && !ps)
		fprintf(stderr, "plastc: internal error: out of memory\n");
	if (made) {
		unlink(pp);
		unlink(bp);
		unlink(gp);
		rmdir(dir);
	}
	pl_st_free(ps);
	pl_st_free(bs);
	pl_st_free(gs);
	for (int j = 0; j < P; j++) {
		free(gi[j]);
		free(gg[j]);
	}
	free(gi);
	free(gg);
	return rc;
}

int cmd_gradcheck(int argc, char **argv)
{
	GradOpts o;
	int rc = parse("gradcheck", F_SEED | F_BACKEND | F_CHECK, argc, argv, &o);
	if (rc) {
		free(o.sets);
		return rc;
	}
	DiagCtx *d = diag_ctx_new(stderr);
	Program *p = load(&o, d, &rc);
	GcData *dd = NULL;
	char **names = NULL;
	int nd = 0;
	if (!p)
		goto out;
	dd = gc_data_new(p, o.seed_v, (int)o.T, (int)o.B);
	printf("gradcheck %s: model %s (%s), input %d, prediction %d, %d parameter tensors, %d state tensors, "
		"seed %" PRIu64 "\n", o.file, p->name, p->settings && p->settings[0] ? p->settings : "defaults", p->in_size,
		p->pred_size, p->n_params, p->n_state, o.seed_v);
	if (strcmp(o.backend, "interp") != 0) {
		if (o.order > 1)
			printf("note: --order applies to the finite-difference checks (--backend interp); --backend %s "
				"compares gradients\n", o.backend);
		rc = compare_backend(p, &o, dd);
		goto out;
	}
	GcOptions go;
	gc_options_default(&go);
	go.K = (int)o.K;
	go.seed = o.seed_v;
	go.tol = o.tol;
	go.h = o.h;
	int f1 = gc_trial(p, dd, &go, stderr), f2 = 0;
	if (f1 < 0) {
		rc = 2;
		goto out;
	}
	if (o.order >= 2) {
		nd = gradient_deltas(&o, &names);
		if (nd < 0) {
			fprintf(stderr, "plastc: internal error: %s: cannot find the gradient rules\n", o.file);
			rc = 2;
			goto out;
		}
		if (nd == 0) {
			printf("order 2: model %s has no gradient rule; nothing to check\n", p->name);
		} else {
			/* The step_forward as lowered, before the optimiser: the function ad_step_vjp differentiates
			 * (frontend.c), and the one where every Δ still has its own node (CSE merges equal ones,
			 * e.g. the inner gradients of b_hh and b_ih of an RNN). */
			DiagCtx *d2 = diag_ctx_new(stderr);
			Program *lowered = frontend_load_program_ex(o.file, o.nset, o.sets, d2, 0);
			f2 = lowered ? gc_inner(lowered, (const char *const *)names, nd, dd, &go, stderr) : -1;
			program_free(lowered);
			diag_ctx_free(d2);
			if (f2 < 0) {
				rc = 2;
				goto out;
			}
		}
	}
	rc = f1 + f2 > 0 ? 1 : 0;
	printf("gradcheck %s: %s\n", o.file, rc ? "FAIL" : "PASS");
out:
	for (int i = 0; i < nd; i++)
		free(names[i]);
	free(names);
	gc_data_free(dd);
	program_free(p);
	diag_ctx_free(d);
	free(o.sets);
	return rc;
}
