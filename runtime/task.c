/* runtime/task.c -- the meta-learning tasks of Duan et al. (copy, cue_reward, regression), generated
 * exactly as in the reference datasets (spec/reference-model.md A.5), behind one interface.
 *
 * Layout: x [T, B, I], target [T, B, Oy], row-major, so the rows of time step t are one contiguous [B, I]
 * block (what step_forward takes). mask [T] holds the step weights of the meta-loss: the reference sums
 * the per-step MSE over the counted steps and divides by their number. Trials are drawn one after the
 * other from the caller's generator, so a batch depends only on the generator's state. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task_oneshot.h"
#include "util.h"

enum { TASK_COPY, TASK_CUE_REWARD, TASK_REGRESSION, TASK_ONESHOT, TASK_MICONI };
enum { FN_LINEAR, FN_MLP };

struct PlTask {
	int kind;
	int T, I, Oy;
	int n, m;             /* copy: sequence length, delay */
	int classes, d;       /* cue_reward: cues, cue dimension; regression: number of variables */
	double noise;         /* cue_reward: cue noise sd; regression: noise sd on the shown values */
	int K, queries, fn;   /* regression */
	char desc[160];
	double *scratch;      /* per-trial workspace, sized in pl_task_new (owned) */
	int *cls;             /* cue_reward: class per step (owned) */
	PlMiconiTask *miconi; /* completion, oneshot_pattern, reversal (task_miconi.c; owned) */
	PlLoss loss;
	PlOneshot *oneshot;   /* oneshot: episodes from an image data set (owned; task_oneshot.c) */
	PlSplit split;        /* oneshot: the split sampled from */
	long step;            /* meta-training step about to run (pl_task_set_step; oneshot's grow=S) */
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int parse_int(const char *v, int lo, int hi, int *out)
{
	char *end;
	long x = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || x < lo || x > hi)
		return -1;
	*out = (int)x;
	return 0;
}

static int parse_double(const char *v, double lo, double hi, double *out)
{
	char *end;
	double x = strtod(v, &end);
	if (*v == '\0' || *end != '\0' || !(x >= lo && x <= hi))
		return -1;
	*out = x;
	return 0;
}

PlTask *pl_task_new(const char *name, int n_opts, const char *const *opts, char *err, size_t errlen)
{
	PlTask *t = pl_alloc(sizeof *t);
	if (!t) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	const char *valid;
	if (pl_miconi_is_task(name)) {
		PlMiconiInfo info;
		t->kind = TASK_MICONI;
		if (!(t->miconi = pl_miconi_task_new(name, n_opts, opts, &info, err, errlen)))
			goto fail;
		t->T = info.T;
		t->I = info.n_in;
		t->Oy = info.n_pred;
		t->loss = info.loss;
		snprintf(t->desc, sizeof t->desc, "%s", info.desc);
		return t;
	}
	if (strcmp(name, "copy") == 0) {
		t->kind = TASK_COPY;
		t->n = 20;
		t->m = 20;
		valid = "n, m";
	} else if (strcmp(name, "cue_reward") == 0 || strcmp(name, "cue-reward") == 0) {
		t->kind = TASK_CUE_REWARD;
		t->classes = 5;
		t->d = 14;
		t->T = 20;
		t->noise = 0.1;
		valid = "cues, d, T, noise";
	} else if (strcmp(name, "regression") == 0) {
		t->kind = TASK_REGRESSION;
		t->K = 10;
		t->queries = 20;
		t->fn = FN_LINEAR;
		t->d = 0;
		t->noise = 0.1;
		valid = "K, fn (linear|mlp), queries, d, noise";
	} else if (strcmp(name, "oneshot") == 0) {
		t->kind = TASK_ONESHOT;
		if (!(t->oneshot = pl_oneshot_new(n_opts, opts, err, errlen)))
			goto fail;
		t->T = pl_oneshot_T(t->oneshot);
		t->I = pl_oneshot_in_size(t->oneshot);
		t->Oy = pl_oneshot_ways(t->oneshot);
		snprintf(t->desc, sizeof t->desc, "%s", pl_oneshot_describe(t->oneshot));
		return t;
	} else {
		seterr(err, errlen, "unknown task '%s' (tasks: copy, cue_reward, regression, oneshot, completion, "
			"oneshot_pattern, reversal)", name);
		pl_free(t);
		return NULL;
	}
	for (int i = 0; i < n_opts; i++) {
		const char *eq = strchr(opts[i], '=');
		char key[64];
		if (!eq || (size_t)(eq - opts[i]) >= sizeof key) {
			seterr(err, errlen, "task option '%s' is not of the form key=value", opts[i]);
			goto fail;
		}
		snprintf(key, sizeof key, "%.*s", (int)(eq - opts[i]), opts[i]);
		const char *v = eq + 1;
		int bad = 0, known = 1;
		if (t->kind == TASK_COPY && strcmp(key, "n") == 0)
			bad = parse_int(v, 1, 100000, &t->n);
		else if (t->kind == TASK_COPY && strcmp(key, "m") == 0)
			bad = parse_int(v, 0, 100000, &t->m);
		else if (t->kind == TASK_CUE_REWARD && strcmp(key, "cues") == 0)
			bad = parse_int(v, 1, 100000, &t->classes);
		else if (t->kind == TASK_CUE_REWARD && strcmp(key, "d") == 0)
			bad = parse_int(v, 1, 100000, &t->d);
		else if (t->kind == TASK_CUE_REWARD && strcmp(key, "T") == 0)
			bad = parse_int(v, 2, 1000000, &t->T);
		else if (t->kind != TASK_COPY && strcmp(key, "noise") == 0)
			bad = parse_double(v, 0.0, 1e6, &t->noise);
		else if (t->kind == TASK_REGRESSION && strcmp(key, "K") == 0)
			bad = parse_int(v, 1, 100000, &t->K);
		else if (t->kind == TASK_REGRESSION && strcmp(key, "queries") == 0)
			bad = parse_int(v, 0, 100000, &t->queries);
		else if (t->kind == TASK_REGRESSION && strcmp(key, "d") == 0)
			bad = parse_int(v, 1, 100000, &t->d);
		else if (t->kind == TASK_REGRESSION && strcmp(key, "fn") == 0) {
			if (strcmp(v, "linear") == 0)
				t->fn = FN_LINEAR;
			else if (strcmp(v, "mlp") == 0)
				t->fn = FN_MLP;
			else
				bad = 1;
		} else
			known = 0;
		if (!known) {
			seterr(err, errlen, "task %s has no option '%s' (options: %s)", name, key, valid);
			goto fail;
		}
		if (bad) {
			seterr(err, errlen, "task %s: bad value '%s' for option %s", name, v, key);
			goto fail;
		}
	}
	switch (t->kind) {
	case TASK_COPY:
		t->T = 2 * t->n + t->m;
		t->I = 3;
		t->Oy = 1;
		snprintf(t->desc, sizeof t->desc, "copy n=%d m=%d", t->n, t->m);
		break;
	case TASK_CUE_REWARD:
		t->I = t->d + 2;
		t->Oy = 1;
		snprintf(t->desc, sizeof t->desc, "cue_reward cues=%d d=%d T=%d noise=%g", t->classes, t->d, t->T, t->noise);
		break;
	case TASK_REGRESSION:
		if (t->d == 0)
			t->d = t->fn == FN_MLP ? 6 : 12;
		t->T = t->K + t->queries;
		if (t->T < 2) {
			seterr(err, errlen, "task regression needs K + queries >= 2 (the values are normalised by their std)");
			goto fail;
		}
		t->I = t->d + 2;
		t->Oy = 1;
		snprintf(t->desc, sizeof t->desc, "regression fn=%s d=%d K=%d queries=%d",
			t->fn == FN_MLP ? "mlp" : "linear", t->d, t->K, t->queries);
		break;
	}
	if (t->kind == TASK_CUE_REWARD) {
		t->scratch = pl_alloc((size_t)t->classes * (t->d + 1) * sizeof(double));
		t->cls = pl_alloc((size_t)t->T * sizeof(int));
	} else if (t->kind == TASK_REGRESSION)
		t->scratch = pl_alloc(((size_t)t->T * (t->d + 1) + 2 * (size_t)t->d) * sizeof(double));
	if (t->kind != TASK_COPY && (!t->scratch || (t->kind == TASK_CUE_REWARD && !t->cls))) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	return t;
fail:
	pl_task_free(t);
	return NULL;
}

void pl_task_free(PlTask *t)
{
	if (!t)
		return;
	pl_free(t->scratch);
	pl_free(t->cls);
	pl_miconi_task_free(t->miconi);
	pl_oneshot_free(t->oneshot);
	pl_free(t);
}

int pl_task_T(const PlTask *t)
{
	return t->T;
}

int pl_task_in_size(const PlTask *t)
{
	return t->I;
}

int pl_task_pred_size(const PlTask *t)
{
	return t->Oy;
}

PlLoss pl_task_loss(const PlTask *t)
{
	if (t->kind == TASK_MICONI)
		return t->loss;
	return t->kind == TASK_ONESHOT ? PL_LOSS_CE : PL_LOSS_MSE;
}

void pl_task_set_split(PlTask *t, PlSplit s)
{
	t->split = s;
}

void pl_task_set_step(PlTask *t, long step)
{
	t->step = step;
}

const char *pl_task_describe(const PlTask *t)
{
	return t->desc;
}

int pl_task_check_model(const PlTask *t, const PlModel *m, char *err, size_t errlen)
{
	if (m->in_size != t->I || m->pred_size != t->Oy) {
		seterr(err, errlen, "task '%s' has inputs of size %d and predictions of size %d, but model '%s' has "
				"input size %d and prediction size %d", t->desc, t->I, t->Oy, m->name ? m->name : "?",
			m->in_size, m->pred_size);
		return -1;
	}
	return 0;
}

/* Copying (SeqReproduction, dim 1): r ~ U[-1,1]^n; x = (r_t, 1, 0) while presenting, 0 during the delay,
 * (0, 0, 1) during recall; the target is 0 until recall, then r in order. Only recall steps count. */
static void sample_copy(const PlTask *t, PlRng *r, int B, float *x, float *y, float *mask)
{
	int T = t->T, I = t->I;
	for (int b = 0; b < B; b++) {
		for (int s = 0; s < T; s++) {
			float *xs = x + ((size_t)s * B + b) * I;
			xs[0] = xs[1] = xs[2] = 0.0f;
			y[(size_t)s * B + b] = 0.0f;
		}
		for (int i = 0; i < t->n; i++) {
			float v = (float)pl_rng_uniform(r, -1.0, 1.0);
			float *xs = x + ((size_t)i * B + b) * I;
			xs[0] = v;
			xs[1] = 1.0f;
			y[(size_t)(t->n + t->m + i) * B + b] = v;
		}
		for (int s = t->n + t->m; s < T; s++)
			x[((size_t)s * B + b) * I + 2] = 1.0f;
	}
	for (int s = 0; s < T; s++)
		mask[s] = s >= t->n + t->m ? 1.0f / (float)t->n : 0.0f;
}

/* Cue-reward: per trial, class per step i_t ~ U{0..C-1}, cues c_k ~ U[0,1]^d, rewards r_k ~ U[-1,1]
 * (drawn in the reference's order). x_t = (c_{i_t} + N(0, noise^2), r_{i_t}, 0) in the first half and
 * (c_{i_t} + noise, 0, 1) in the second; the target is r_{i_t} at every step, all steps count. */
static void sample_cue_reward(const PlTask *t, PlRng *r, int B, float *x, float *y, float *mask)
{
	int T = t->T, I = t->I, C = t->classes, d = t->d;
	int *cls = t->cls;
	double *cue = t->scratch, *rew = t->scratch + (size_t)C * d;
	for (int b = 0; b < B; b++) {
		for (int s = 0; s < T; s++)
			cls[s] = (int)pl_rng_below(r, (uint64_t)C);
		for (int k = 0; k < C * d; k++)
			cue[k] = pl_rng_double(r);
		for (int k = 0; k < C; k++)
			rew[k] = pl_rng_uniform(r, -1.0, 1.0);
		for (int s = 0; s < T; s++) {
			float *xs = x + ((size_t)s * B + b) * I;
			int c = cls[s];
			for (int j = 0; j < d; j++)
				xs[j] = (float)(cue[c * d + j] + t->noise * pl_rng_normal(r));
			int first = s < T / 2;
			xs[d] = first ? (float)rew[c] : 0.0f;
			xs[d + 1] = first ? 0.0f : 1.0f;
			y[(size_t)s * B + b] = (float)rew[c];
		}
	}
	for (int s = 0; s < T; s++)
		mask[s] = 1.0f / (float)T;
}

/* Few-shot regression: a fresh f per trial with PyTorch's default nn.Linear init (weights and biases
 * U(+-1/sqrt(fan_in))): linear Linear(d,1), or mlp Linear(d,2) -> tanh -> Linear(2,1). v_t ~ U[-1,1]^d,
 * values f(v_t) normalised by their mean and unbiased std over the T points; x_t = (v_t, value_t +
 * N(0, noise^2), 1) for the K support steps and (v_t, 0, 0) for the queries; target = value_t at all steps. */
static void sample_regression(const PlTask *t, PlRng *r, int B, float *x, float *y, float *mask)
{
	int T = t->T, I = t->I, d = t->d;
	double *v = t->scratch, *val = v + (size_t)T * d, *w1 = val + T;
	for (int b = 0; b < B; b++) {
		double b1[2], w2[2], b2 = 0.0, bias = 0.0;
		double k1 = 1.0 / sqrt((double)d);
		if (t->fn == FN_LINEAR) {
			for (int j = 0; j < d; j++)
				w1[j] = pl_rng_uniform(r, -k1, k1);
			bias = pl_rng_uniform(r, -k1, k1);
		} else {
			double k2 = 1.0 / sqrt(2.0);
			for (int j = 0; j < 2 * d; j++)
				w1[j] = pl_rng_uniform(r, -k1, k1);
			for (int h = 0; h < 2; h++)
				b1[h] = pl_rng_uniform(r, -k1, k1);
			for (int h = 0; h < 2; h++)
				w2[h] = pl_rng_uniform(r, -k2, k2);
			b2 = pl_rng_uniform(r, -k2, k2);
		}
		for (int k = 0; k < T * d; k++)
			v[k] = pl_rng_uniform(r, -1.0, 1.0);
		double mean = 0.0;
		for (int s = 0; s < T; s++) {
			const double *vs = v + (size_t)s * d;
			double out;
			if (t->fn == FN_LINEAR) {
				out = bias;
				for (int j = 0; j < d; j++)
					out += w1[j] * vs[j];
			} else {
				out = b2;
				for (int h = 0; h < 2; h++) {
					double a = b1[h];
					for (int j = 0; j < d; j++)
						a += w1[h * d + j] * vs[j];
					out += w2[h] * tanh(a);
				}
			}
			val[s] = out;
			mean += out;
		}
		mean /= T;
		double ss = 0.0;
		for (int s = 0; s < T; s++)
			ss += (val[s] - mean) * (val[s] - mean);
		double sd = sqrt(ss / (T - 1));
		/* sd is 0 only if every value coincides (probability 0); keep the data finite then. */
		double inv = sd > 0.0 ? 1.0 / sd : 1.0;
		for (int s = 0; s < T; s++) {
			double z = (val[s] - mean) * inv;
			float *xs = x + ((size_t)s * B + b) * I;
			for (int j = 0; j < d; j++)
				xs[j] = (float)v[(size_t)s * d + j];
			if (s < t->K) {
				xs[d] = (float)(z + t->noise * pl_rng_normal(r));
				xs[d + 1] = 1.0f;
			} else {
				xs[d] = 0.0f;
				xs[d + 1] = 0.0f;
			}
			y[(size_t)s * B + b] = (float)z;
		}
	}
	for (int s = 0; s < T; s++)
		mask[s] = 1.0f / (float)T;
}

void pl_task_sample(const PlTask *t, PlRng *r, int B, float *x, float *target, float *mask)
{
	switch (t->kind) {
	case TASK_COPY:
		sample_copy(t, r, B, x, target, mask);
		break;
	case TASK_CUE_REWARD:
		sample_cue_reward(t, r, B, x, target, mask);
		break;
	case TASK_REGRESSION:
		sample_regression(t, r, B, x, target, mask);
		break;
	case TASK_MICONI:
		pl_miconi_task_sample(t->miconi, r, B, x, target, mask);
		break;
	case TASK_ONESHOT:
		pl_oneshot_sample(t->oneshot, t->split, t->step, r, B, x, target, mask);
		break;
	}
}
