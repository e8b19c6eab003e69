/* tests/test_rt_train.c -- BPTT against finite differences, the two memory strategies, threads, AdamW and
 * clipping against hand computation, initialisation, and the pl_main commands run in-process: resume
 * equivalence, divergence (exit 3 naming the tensor), grad/init/eval files, flag errors. */
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "plastrt.h"
#include "rt_model.h"

static char dir[64];

static const char *tmp_path(const char *name)
{
	static char buf[8][256];
	static int k;
	k = (k + 1) % 8;
	snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
	return buf[k];
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/rt_train_XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static float **alloc_params(const PlModel *m)
{
	float **p = calloc((size_t)m->n_params, sizeof *p);
	for (int i = 0; i < m->n_params; i++)
		p[i] = calloc((size_t)pl_desc_numel(&m->params[i]), sizeof(float));
	return p;
}

static void free_params(const PlModel *m, float **p)
{
	for (int i = 0; i < m->n_params; i++)
		free(p[i]);
	free(p);
}

typedef struct Data {
	int T, B;
	float *x, *y, *mask;
} Data;

static Data random_data(const PlModel *m, int T, int B, uint64_t seed)
{
	Data d = {T, B, NULL, NULL, NULL};
	PlRng r;
	pl_rng_seed(&r, seed);
	d.x = malloc((size_t)T * B * m->in_size * sizeof(float));
	d.y = malloc((size_t)T * B * m->pred_size * sizeof(float));
	d.mask = malloc((size_t)T * sizeof(float));
	for (int i = 0; i < T * B * m->in_size; i++)
		d.x[i] = (float)pl_rng_uniform(&r, -1, 1);
	if (m->meta_loss == PL_LOSS_CE) {
		for (int i = 0; i < T * B; i++) {
			int k = (int)pl_rng_below(&r, (uint64_t)m->pred_size);
			for (int j = 0; j < m->pred_size; j++)
				d.y[i * m->pred_size + j] = j == k ? 1.0f : 0.0f;
		}
	} else
		for (int i = 0; i < T * B * m->pred_size; i++)
			d.y[i] = (float)pl_rng_uniform(&r, -1, 1);
	for (int t = 0; t < T; t++)
		d.mask[t] = t == 1 ? 0.0f : (float)pl_rng_uniform(&r, 0.1, 0.5);
	return d;
}

static void free_data(Data *d)
{
	free(d->x);
	free(d->y);
	free(d->mask);
}

static void init_nontrivial(const PlModel *m, float **p)
{
	pl_init_params(m, 3, p);
	p[3][0] = 0.4f;        /* cell.eta: s = sigmoid(0.4) */
	for (int j = 0; j < m->pred_size; j++)
		p[4][j] = 1.0f + 0.3f * (float)j; /* head.g (fixed) */
}

/* ---- BPTT vs finite differences ---- */

static void check_fd(PlLoss loss, int O)
{
	const PlModel *m = rt_model(3, O, loss);
	int T = 7, B = 4;
	Data d = random_data(m, T, B, 17);
	float **p = alloc_params(m), **g = alloc_params(m);
	init_nontrivial(m, p);
	PlBptt *b = pl_bptt_new(m, B, T, PL_BPTT_STORE, 0);
	assert_non_null(b);
	PlBpttResult r = pl_bptt_run(b, p, d.x, d.y, d.mask, B, B, g);
	assert_true(r.finite);
	int checked = 0;
	for (int i = 0; i < m->n_params; i++) {
		int64_t n = pl_desc_numel(&m->params[i]);
		for (int64_t j = 0; j < n; j++) {
			const float h = 4e-3f;
			float keep = p[i][j];
			p[i][j] = keep + h;
			double lp = pl_bptt_run(b, p, d.x, d.y, d.mask, B, B, NULL).loss;
			p[i][j] = keep - h;
			double lm = pl_bptt_run(b, p, d.x, d.y, d.mask, B, B, NULL).loss;
			p[i][j] = keep;
			double fd = (lp - lm) / (2.0 * ((double)(keep + h) - (double)keep));
			double an = g[i][j];
			double tol = 5e-4 + 2e-2 * fmax(fabs(fd), fabs(an));
			if (fabs(fd - an) > tol)
				fail_msg("loss %d: d/d %s[%ld]: bptt %.7g, finite difference %.7g", (int)loss,
					m->params[i].name, (long)j, an, fd);
			checked++;
		}
	}
	assert_true(checked > 10);
	/* The gradient is not trivially zero. */
	double gn = 0;
	for (int j = 0; j < 3 * O; j++)
		gn += fabs(g[1][j]);
	assert_true(gn > 1e-4);
	pl_bptt_free(b);
	free_params(m, p);
	free_params(m, g);
	free_data(&d);
}

static void test_bptt_fd_mse(void **state)
{
	(void)state;
	check_fd(PL_LOSS_MSE, 2);
}

static void test_bptt_fd_sse(void **state)
{
	(void)state;
	check_fd(PL_LOSS_SSE, 2);
}

static void test_bptt_fd_ce(void **state)
{
	(void)state;
	check_fd(PL_LOSS_CE, 3);
}

/* ---- strategies and threads ---- */

static void test_store_vs_recompute(void **state)
{
	(void)state;
	const PlModel *m = rt_model(4, 2, PL_LOSS_MSE);
	int T = 11, B = 5;
	Data d = random_data(m, T, B, 5);
	float **p = alloc_params(m), **g0 = alloc_params(m), **g1 = alloc_params(m);
	init_nontrivial(m, p);
	PlBptt *s = pl_bptt_new(m, B, T, PL_BPTT_STORE, 0);
	PlBpttResult r0 = pl_bptt_run(s, p, d.x, d.y, d.mask, B, B, g0);
	int ks[] = {1, 2, 3, 4, 10, 11, 50};
	for (size_t q = 0; q < sizeof ks / sizeof ks[0]; q++) {
		PlBptt *rc = pl_bptt_new(m, B, T, PL_BPTT_RECOMPUTE, ks[q]);
		assert_non_null(rc);
		PlBpttResult r1 = pl_bptt_run(rc, p, d.x, d.y, d.mask, B, B, g1);
		assert_true(r0.loss == r1.loss);
		for (int i = 0; i < m->n_params; i++)
			assert_memory_equal(g0[i], g1[i], (size_t)pl_desc_numel(&m->params[i]) * sizeof(float));
		/* The second run of the same object gives the same bits (buffers are reset). */
		pl_bptt_run(rc, p, d.x, d.y, d.mask, B, B, g1);
		for (int i = 0; i < m->n_params; i++)
			assert_memory_equal(g0[i], g1[i], (size_t)pl_desc_numel(&m->params[i]) * sizeof(float));
		pl_bptt_free(rc);
	}
	/* Memory estimates: recompute with k ~ sqrt(T) needs less than storing everything. */
	assert_true(pl_bptt_bytes(m, 64, 400, PL_BPTT_RECOMPUTE, 20) < pl_bptt_bytes(m, 64, 400, PL_BPTT_STORE, 0));
	pl_bptt_free(s);
	free_params(m, p);
	free_params(m, g0);
	free_params(m, g1);
	free_data(&d);
}

/* A batch split over row blocks: the same gradient as one block, up to float summation order. The
 * engine lives in the runtime's internal header; reach it through the grad command instead: the
 * --threads flag of `grad` runs the engine. */
static int run_main(const PlModel *m, const char *const *args)
{
	char *argv[64];
	int argc = 0;
	argv[argc++] = (char *)(uintptr_t)"rt_model";
	for (; args[argc - 1]; argc++)
		argv[argc] = (char *)(uintptr_t)args[argc - 1];
	argv[argc] = NULL;
	return pl_main(m, argc, argv);
}

/* Runs pl_main with stderr captured into *msg (malloc'd). */
static int run_main_capture(const PlModel *m, const char *const *args, char **msg)
{
	fflush(stderr);
	int saved = dup(2);
	const char *p = tmp_path("stderr.txt");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	dup2(fd, 2);
	close(fd);
	int rc = run_main(m, args);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	FILE *f = fopen(p, "r");
	*msg = calloc(1, 65536);
	size_t n = fread(*msg, 1, 65535, f);
	(*msg)[n] = '\0';
	fclose(f);
	return rc;
}

static void write_batch(const PlModel *m, const Data *d, const char *path, int f64)
{
	PlSt *st = pl_st_new();
	int64_t xd[3] = {d->T, d->B, m->in_size}, td[3] = {d->T, d->B, m->pred_size}, md[1] = {d->T};
	if (f64) {
		size_t nx = (size_t)d->T * d->B * m->in_size, ny = (size_t)d->T * d->B * m->pred_size;
		double *x = malloc(nx * sizeof *x), *y = malloc(ny * sizeof *y), *k = malloc((size_t)d->T * sizeof *k);
		for (size_t i = 0; i < nx; i++)
			x[i] = d->x[i];
		for (size_t i = 0; i < ny; i++)
			y[i] = d->y[i];
		for (int i = 0; i < d->T; i++)
			k[i] = d->mask[i];
		pl_st_add(st, "x", PL_F64, 3, xd, x);
		pl_st_add(st, "target", PL_F64, 3, td, y);
		pl_st_add(st, "mask", PL_F64, 1, md, k);
		free(x);
		free(y);
		free(k);
	} else {
		pl_st_add_f32(st, "x", 3, xd, d->x);
		pl_st_add_f32(st, "target", 3, td, d->y);
		pl_st_add_f32(st, "mask", 1, md, d->mask);
	}
	char err[512];
	assert_int_equal(pl_st_write(st, path, err, sizeof err), 0);
	pl_st_free(st);
}

static void write_params(const PlModel *m, float **p, const char *path)
{
	PlSt *st = pl_st_new();
	for (int i = 0; i < m->n_params; i++)
		pl_st_add_f32(st, m->params[i].name, m->params[i].rank, m->params[i].dims, p[i]);
	char err[512];
	assert_int_equal(pl_st_write(st, path, err, sizeof err), 0);
	pl_st_free(st);
}

static void test_grad_command_and_threads(void **state)
{
	(void)state;
	const PlModel *m = rt_model(3, 2, PL_LOSS_MSE);
	int T = 6, B = 8;
	Data d = random_data(m, T, B, 23);
	float **p = alloc_params(m), **g = alloc_params(m);
	init_nontrivial(m, p);
	PlBptt *b = pl_bptt_new(m, B, T, PL_BPTT_STORE, 0);
	PlBpttResult r = pl_bptt_run(b, p, d.x, d.y, d.mask, B, B, g);
	write_params(m, p, tmp_path("p.safetensors"));
	write_batch(m, &d, tmp_path("b32.safetensors"), 0);
	write_batch(m, &d, tmp_path("b64.safetensors"), 1);
	const char *files[] = {"b32.safetensors", "b64.safetensors", "b32.safetensors", "b32.safetensors"};
	const char *threads[] = {"1", "1", "3", "1"};
	const char *bptt[] = {"store", "store", "store", "recompute:2"};
	for (int c = 0; c < 4; c++) {
		const char *args[] = {"grad", "--params", tmp_path("p.safetensors"), "--batch", tmp_path(files[c]), "-o",
			tmp_path("g.safetensors"), "--threads", threads[c], "--bptt", bptt[c], NULL};
		assert_int_equal(run_main(m, args), 0);
		char err[512];
		PlSt *gs = pl_st_read(tmp_path("g.safetensors"), err, sizeof err);
		assert_non_null(gs);
		const PlStTensor *lt = pl_st_find(gs, "loss");
		assert_non_null(lt);
		assert_int_equal(lt->rank, 0);
		double loss = ((double *)lt->data)[0];
		int exact = strcmp(threads[c], "1") == 0;
		assert_true(exact ? loss == r.loss : fabs(loss - r.loss) < 1e-6);
		for (int i = 0; i < m->n_params; i++) {
			const PlStTensor *t = pl_st_find(gs, m->params[i].name);
			assert_non_null(t);
			const float *gv = t->data;
			for (int64_t j = 0; j < t->numel; j++)
				if (exact)
					assert_true(gv[j] == g[i][j]);
				else
					assert_true(fabs(gv[j] - g[i][j]) <= 1e-5 * (1 + fabs(g[i][j])));
		}
		pl_st_free(gs);
	}
	/* A batch for another model is rejected with the shape in the message. */
	const PlModel *m4 = rt_model(4, 2, PL_LOSS_MSE);
	char *msg;
	const char *args[] = {"grad", "--params", tmp_path("p.safetensors"), "--batch", tmp_path("b32.safetensors"), "-o",
		tmp_path("g2.safetensors"), NULL};
	assert_int_equal(run_main_capture(m4, args, &msg), 1);
	assert_non_null(strstr(msg, "has shape [3, 2], expected [4, 2]"));
	free(msg);
	pl_bptt_free(b);
	free_params(m, p);
	free_params(m, g);
	free_data(&d);
}

/* ---- optimiser ---- */

static PlTensorDesc opt_desc[2] = {
	{"w", 1, {2, 0, 0}, PL_INIT_ZERO, 0, 0, 1},
	{"fixed", 1, {1, 0, 0}, PL_INIT_ZERO, 0, 0, 0},
};

static PlModel opt_model(void)
{
	PlModel m;
	memset(&m, 0, sizeof m);
	m.n_params = 2;
	m.params = opt_desc;
	return m;
}

/* PyTorch AdamW(amsgrad) on p = [1, -2], lr 0.1, wd 0.01, gradients g1 = [3, 3], g2 = [0.01, -1],
 * g3 = [0.01, 0.1]. Step 1 by hand: m = 0.1 g, v = 0.001 g^2, mhat = g, vhat = g^2, so
 * p1 = p0 (1 - 0.001) - 0.1 g / (|g| + 1e-8) = [0.899, -2.098] (to 1e-8). Steps 2, 3 from the formulas
 * written out in double below (amsgrad keeps vmax = v1 for w[0] at step 2: v2 < v1). */
static void test_adamw_amsgrad(void **state)
{
	(void)state;
	PlModel m = opt_model();
	PlOptConfig c;
	pl_opt_defaults(&c);
	assert_true(c.lr == 1e-3 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.eps == 1e-8 && c.amsgrad == 1 &&
		    c.clip == 5.0 && c.weight_decay == 0.0);
	c.lr = 0.1;
	c.weight_decay = 0.01;
	PlOpt *o = pl_opt_new(&m, &c);
	float w[2] = {1.0f, -2.0f}, fx[1] = {7.0f};
	float *params[2] = {w, fx};
	double gs[3][2] = {{3.0, 3.0}, {0.01, -1.0}, {0.01, 0.1}};
	double P[2] = {1.0, -2.0}, M[2] = {0, 0}, V[2] = {0, 0}, VM[2] = {0, 0};
	for (int t = 1; t <= 3; t++) {
		float g[2] = {(float)gs[t - 1][0], (float)gs[t - 1][1]}, gf[1] = {1.0f};
		float *grads[2] = {g, gf};
		pl_opt_step(o, params, grads);
		for (int j = 0; j < 2; j++) {
			double gj = (float)gs[t - 1][j];
			P[j] *= 1 - 0.1 * 0.01;
			M[j] = 0.9 * M[j] + 0.1 * gj;
			V[j] = 0.999 * V[j] + 0.001 * gj * gj;
			VM[j] = fmax(VM[j], V[j]);
			double bc1 = 1 - pow(0.9, t), bc2 = 1 - pow(0.999, t);
			P[j] -= 0.1 / bc1 * M[j] / (sqrt(VM[j]) / sqrt(bc2) + 1e-8);
		}
		if (t == 1) {
			assert_true(fabs(w[0] - 0.899) < 1e-6);
			assert_true(fabs(w[1] - -2.098) < 1e-6);
		}
		if (t == 2)
			assert_true(VM[0] > V[0]); /* amsgrad is active in this sequence */
		for (int j = 0; j < 2; j++)
			assert_true(fabs(w[j] - P[j]) < 2e-6);
		assert_true(fx[0] == 7.0f); /* fixed parameter never moves */
	}
	assert_int_equal(o->t, 3);
	pl_opt_free(o);

	/* Without amsgrad step 3 differs. */
	c.amsgrad = 0;
	o = pl_opt_new(&m, &c);
	float w2[2] = {1.0f, -2.0f};
	float *params2[2] = {w2, fx};
	for (int t = 1; t <= 3; t++) {
		float g[2] = {(float)gs[t - 1][0], (float)gs[t - 1][1]}, gf[1] = {1.0f};
		float *grads[2] = {g, gf};
		pl_opt_step(o, params2, grads);
	}
	assert_true(fabs(w2[0] - w[0]) > 1e-5);
	pl_opt_free(o);
}

static void test_clip_and_cosine(void **state)
{
	(void)state;
	PlModel m = opt_model();
	float g[2] = {3.0f, 4.0f}, gf[1] = {100.0f};
	float *grads[2] = {g, gf};
	/* The fixed tensor's gradient is not part of the norm. */
	assert_true(fabs(pl_clip_grad_norm(&m, grads, 10.0) - 5.0) < 1e-9);
	assert_true(g[0] == 3.0f && g[1] == 4.0f); /* coef >= 1: untouched */
	assert_true(fabs(pl_clip_grad_norm(&m, grads, 1.0) - 5.0) < 1e-9);
	assert_true(fabs(g[0] - 3.0 / (5.0 + 1e-6)) < 1e-7 && fabs(g[1] - 4.0 / (5.0 + 1e-6)) < 1e-7);
	assert_true(gf[0] == 100.0f);
	g[0] = 3.0f;
	g[1] = 4.0f;
	assert_true(fabs(pl_clip_grad_norm(&m, grads, 5.0) - 5.0) < 1e-9); /* 5/(5+1e-6) < 1: scaled */
	assert_true(g[0] < 3.0f);

	PlOptConfig c;
	pl_opt_defaults(&c);
	c.lr = 1.0;
	c.lr_min = 0.0;
	c.cosine_tmax = 10;
	c.cosine_every = 2;
	PlOpt *o = pl_opt_new(&m, &c);
	assert_true(fabs(pl_opt_lr(o) - 1.0) < 1e-12);
	o->t = 10; /* 5 scheduler steps of 2 */
	assert_true(fabs(pl_opt_lr(o) - 0.5) < 1e-12);
	o->t = 20;
	assert_true(fabs(pl_opt_lr(o)) < 1e-12);
	pl_opt_free(o);
}

/* ---- initialisation ---- */

static void test_init(void **state)
{
	(void)state;
	PlTensorDesc d[4] = {
		{"u", 2, {50, 40, 0}, PL_INIT_UNIFORM, 0.25, 0, 1},
		{"n", 1, {20000, 0, 0}, PL_INIT_NORMAL, 1.0, 2.0, 1},
		{"an", 1, {1000, 0, 0}, PL_INIT_ABS_NORMAL, 0.0, 1.0, 1},
		{"id", 2, {3, 3, 0}, PL_INIT_IDENTITY, 2.0, 0, 1},
	};
	float u[2000], u2[2000], n[20000], an[1000], id[9];
	double ud[2000];
	pl_init_tensor(&d[0], 5, u);
	pl_init_tensor(&d[0], 5, u2);
	pl_init_tensor_f64(&d[0], 5, ud);
	assert_memory_equal(u, u2, sizeof u);
	double lo = 1, hi = -1;
	for (int i = 0; i < 2000; i++) {
		assert_true(u[i] == (float)ud[i]);
		lo = fmin(lo, u[i]);
		hi = fmax(hi, u[i]);
	}
	assert_true(lo >= -0.25 && hi <= 0.25 && lo < -0.24 && hi > 0.24);
	pl_init_tensor(&d[0], 6, u2);
	assert_true(memcmp(u, u2, sizeof u) != 0);
	pl_init_tensor(&d[1], 5, n);
	double s = 0, s2 = 0;
	for (int i = 0; i < 20000; i++) {
		s += n[i];
		s2 += n[i] * n[i];
	}
	assert_true(fabs(s / 20000 - 1.0) < 0.05);
	assert_true(fabs(sqrt(s2 / 20000 - (s / 20000) * (s / 20000)) - 2.0) < 0.05);
	pl_init_tensor(&d[2], 5, an);
	for (int i = 0; i < 1000; i++)
		assert_true(an[i] >= 0.0f);
	pl_init_tensor(&d[3], 5, id);
	for (int i = 0; i < 9; i++)
		assert_true(id[i] == (i % 4 == 0 ? 2.0f : 0.0f));
}

/* ---- commands in-process ---- */

static int same_tensors(const char *a, const char *b, const char *skip_prefix)
{
	char err[512];
	PlSt *x = pl_st_read(a, err, sizeof err), *y = pl_st_read(b, err, sizeof err);
	if (!x || !y)
		return 0;
	int ok = x->n == y->n;
	for (int i = 0; ok && i < x->n; i++) {
		if (skip_prefix && strncmp(x->t[i].name, skip_prefix, strlen(skip_prefix)) == 0)
			continue;
		const PlStTensor *t = pl_st_find(y, x->t[i].name);
		ok = t && t->numel == x->t[i].numel && t->dtype == x->t[i].dtype &&
		     memcmp(t->data, x->t[i].data, (size_t)t->numel * (t->dtype == PL_F64 ? 8 : 4)) == 0;
	}
	pl_st_free(x);
	pl_st_free(y);
	return ok;
}

static long count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long n = 0;
	int c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static void test_resume_equivalence(void **state)
{
	(void)state;
	const PlModel *m = rt_model(16, 1, PL_LOSS_MSE);
	char outA[256], outB[256];
	snprintf(outA, sizeof outA, "%s", tmp_path("runA"));
	snprintf(outB, sizeof outB, "%s", tmp_path("runB"));
	const char *common[] = {"--task", "cue_reward", "--seed", "4", "--batch", "8", "--val-every", "2",
		"--val-trials", "16", "--test-trials", "16", "--quiet", "--lr", "0.01"};
	const char *a[32], *b[32], *c[8];
	int na = 0, nb = 0;
	a[na++] = "train";
	b[nb++] = "train";
	for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
		a[na++] = b[nb++] = common[i];
	a[na++] = "--steps";
	a[na++] = "6";
	a[na++] = "--out";
	a[na++] = outA;
	a[na] = NULL;
	b[nb++] = "--steps";
	b[nb++] = "3";
	b[nb++] = "--out";
	b[nb++] = outB;
	b[nb] = NULL;
	assert_int_equal(run_main(m, a), 0);
	assert_int_equal(run_main(m, b), 0);
	char ca[300], cb[300];
	snprintf(ca, sizeof ca, "%s/checkpoint.safetensors", outA);
	snprintf(cb, sizeof cb, "%s/checkpoint.safetensors", outB);
	assert_false(same_tensors(ca, cb, NULL)); /* 3 steps differ from 6 */
	c[0] = "train";
	c[1] = "--resume";
	c[2] = outB;
	c[3] = "--steps";
	c[4] = "6";
	c[5] = "--quiet";
	c[6] = NULL;
	assert_int_equal(run_main(m, c), 0);
	assert_true(same_tensors(ca, cb, NULL)); /* parameters and AdamW moments, bit for bit */
	char ba[300], bb[300], ma[300], mb[300], ra[300];
	snprintf(ba, sizeof ba, "%s/best.safetensors", outA);
	snprintf(bb, sizeof bb, "%s/best.safetensors", outB);
	assert_true(same_tensors(ba, bb, NULL));
	snprintf(ma, sizeof ma, "%s/metrics.csv", outA);
	snprintf(mb, sizeof mb, "%s/metrics.csv", outB);
	/* header + 6 train + 4 val (0,2,4,6) + 1 test; B also validated at its first session's end (3), and
	 * the first session's test row is dropped on resume */
	assert_int_equal(count_lines(ma), 12);
	assert_int_equal(count_lines(mb), 13);
	snprintf(ra, sizeof ra, "%s/run.json", outA);
	assert_true(access(ra, R_OK) == 0);
	/* The checkpoint carries step and RNG state. */
	char err[512];
	PlSt *st = pl_st_read(ca, err, sizeof err);
	assert_string_equal(pl_st_meta(st, "step"), "6");
	assert_non_null(pl_st_meta(st, "rng"));
	assert_non_null(pl_st_find(st, "adam.vmax.cell.w"));
	assert_null(pl_st_find(st, "adam.m.head.g")); /* fixed: no optimiser state */
	pl_st_free(st);
}

static void test_divergence_exit_3(void **state)
{
	(void)state;
	const PlModel *m = rt_model(16, 1, PL_LOSS_MSE);
	rt_model_nan_after = 20 * 4; /* T = 20 VJP calls per step: NaN in step 5 */
	const char *args[] = {"train", "--task", "cue_reward", "--steps", "10", "--batch", "4", "--val-every", "2",
		"--val-trials", "4", "--test-trials", "4", "--out", tmp_path("nan"), NULL};
	char *msg;
	int rc = run_main_capture(m, args, &msg);
	rt_model_nan_after = -1;
	assert_int_equal(rc, 3);
	if (!strstr(msg, "non-finite gradient of cell.alpha at step 5"))
		fail_msg("message: %s", msg);
	free(msg);
	char err[512];
	PlSt *st = pl_st_read(tmp_path("nan/checkpoint.safetensors"), err, sizeof err);
	assert_non_null(st);
	assert_string_equal(pl_st_meta(st, "step"), "4"); /* last good checkpoint kept */
	pl_st_free(st);
}

static void test_init_eval_and_errors(void **state)
{
	(void)state;
	const PlModel *m = rt_model(3, 1, PL_LOSS_MSE);
	const char *init[] = {"init", "--seed", "9", "-o", tmp_path("init.safetensors"), NULL};
	assert_int_equal(run_main(m, init), 0);
	float **p = alloc_params(m), **q = alloc_params(m);
	pl_init_params(m, 9, p);
	char err[512];
	PlSt *st = pl_st_read(tmp_path("init.safetensors"), err, sizeof err);
	assert_non_null(st);
	assert_string_equal(pl_st_meta(st, "seed"), "9");
	for (int i = 0; i < m->n_params; i++) {
		assert_int_equal(pl_st_get_f32(st, "init", m->params[i].name, m->params[i].rank, m->params[i].dims, q[i],
					 err, sizeof err), 0);
		assert_memory_equal(p[i], q[i], (size_t)pl_desc_numel(&m->params[i]) * sizeof(float));
	}
	pl_st_free(st);
	free_params(m, p);
	free_params(m, q);

	const char *ev[] = {"eval", "--checkpoint", tmp_path("init.safetensors"), "--task", "copy", "--n", "3", "--m",
		"2", "--trials", "100", NULL};
	assert_int_equal(run_main(m, ev), 0);

	char *msg;
	const char *bad_task[] = {"eval", "--checkpoint", tmp_path("init.safetensors"), "--task", "cue_reward", NULL};
	assert_int_equal(run_main_capture(m, bad_task, &msg), 1);
	assert_non_null(strstr(msg, "error: task 'cue_reward"));
	assert_non_null(strstr(msg, "input size 3"));
	free(msg);
	const char *bad_flag[] = {"train", "--task", "copy", "--bogus", "1", NULL};
	assert_int_equal(run_main_capture(m, bad_flag, &msg), 1);
	assert_non_null(strstr(msg, "unknown flag --bogus"));
	free(msg);
	const char *bad_val[] = {"train", "--task", "copy", "--steps", "ten", NULL};
	assert_int_equal(run_main_capture(m, bad_val, &msg), 1);
	assert_non_null(strstr(msg, "--steps: 'ten' is not an integer"));
	free(msg);
	const char *bad_cmd[] = {"fly", NULL};
	assert_int_equal(run_main_capture(m, bad_cmd, &msg), 1);
	assert_non_null(strstr(msg, "unknown command 'fly'"));
	free(msg);
	const char *cmds[] = {"train", "eval", "grad", "init"};
	for (int i = 0; i < 4; i++) {
		const char *help[] = {cmds[i], "--help", NULL};
		assert_int_equal(run_main(m, help), 0);
	}
	const char *no_ckpt[] = {"train", "--resume", tmp_path("nothing-here"), NULL};
	assert_int_equal(run_main_capture(m, no_ckpt, &msg), 1);
	assert_non_null(strstr(msg, "nothing-here/checkpoint.safetensors: cannot open"));
	free(msg);
}

/* Every allocation of the BPTT plan may fail: the constructor returns NULL and frees what it got. */
static void test_alloc_failures(void **state)
{
	(void)state;
	const PlModel *m = rt_model(3, 2, PL_LOSS_MSE);
	int failed = 0;
	for (long k = 0; k < 40; k++) {
		pl_alloc_fail_after(k);
		PlBptt *b = pl_bptt_new(m, 4, 5, k % 2 ? PL_BPTT_RECOMPUTE : PL_BPTT_STORE, 2);
		PlOptConfig c;
		pl_opt_defaults(&c);
		PlOpt *o = pl_opt_new(m, &c);
		pl_alloc_fail_after(-1);
		failed += !b || !o;
		pl_bptt_free(b);
		pl_opt_free(o);
	}
	assert_true(failed > 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bptt_fd_mse),
		cmocka_unit_test(test_bptt_fd_sse),
		cmocka_unit_test(test_bptt_fd_ce),
		cmocka_unit_test(test_store_vs_recompute),
		cmocka_unit_test(test_grad_command_and_threads),
		cmocka_unit_test(test_adamw_amsgrad),
		cmocka_unit_test(test_clip_and_cosine),
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_resume_equivalence),
		cmocka_unit_test(test_divergence_exit_3),
		cmocka_unit_test(test_init_eval_and_errors),
		cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests_name("runtime training", tests, setup, teardown);
}
