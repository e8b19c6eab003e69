/* runtime/task_miconi.c -- the three tasks of Miconi 2016, "Learning to learn with backpropagation of
 * Hebbian plasticity" (/work/shared/spec/miconi-2016.md section 3): pattern completion, one-shot
 * learning of two arbitrary patterns, reversal learning. task.c dispatches to this file for the names
 * `completion`, `oneshot_pattern` and `reversal` (the image task called `oneshot` is another task).
 *
 * Inputs are clamped: x(t) is the stimulus itself. Patterns are +-1 vectors, each bit +1 with probability
 * 1/2 (the code; the paper's "at least one nonzero element" holds trivially). In the two classification
 * tasks the label bits are inputs 0 and 1 and the pattern occupies inputs 2..n+1; the label bits carry
 * the target on instruction steps only and are 0 elsewhere. Targets are given at every step; the step
 * mask decides what is scored.
 *
 * Step weights (option `weight`), chosen so that the trial loss is the spec's logged per-episode error:
 *   completion: mask = (0, 1): the summed squared error of the test step.
 *   one-shot:   1/(T-2) on steps 2..T-1: the mean cross-entropy over steps 2..T-1.
 *   reversal:   1/(T-2) on steps 2..T/2-1 and T/2+2..T-1: the original averages over steps 2..T-1 with
 *               the two masked steps T/2, T/2+1 counted as zeros (chance 16/18 ln 2, spec 3.3).
 * weight=sum gives every scored step weight 1 (the original sums for its gradient); weight=scored
 * divides by the number of scored steps instead. RMSprop is invariant to this scale (up to its eps).
 *
 * Draw order per trial (deterministic per generator state): completion: the n bits of p, then the
 * kept position k. One-shot and reversal: the n bits of p1, then p2's n bits, p2 redrawn whole until it
 * differs from p1 in at least one bit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum { MT_COMPLETION, MT_ONESHOT, MT_REVERSAL };
enum { MW_MEAN, MW_SUM, MW_SCORED };

struct PlMiconiTask {
	int kind;
	int n;      /* pattern bits */
	int T;      /* steps per episode */
	int keep;   /* completion: bits kept at the test step */
	int weight; /* MW_* */
	int I, Oy;
	float *p1, *p2; /* per-trial scratch, n floats each (owned) */
	int *perm;      /* completion: positions, n ints (owned) */
};

int pl_miconi_is_task(const char *name)
{
	return strcmp(name, "completion") == 0 || strcmp(name, "oneshot_pattern") == 0 ||
	       strcmp(name, "reversal") == 0;
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

void pl_miconi_task_free(PlMiconiTask *t)
{
	if (!t)
		return;
	pl_free(t->p1);
	pl_free(t->p2);
	pl_free(t->perm);
	pl_free(t);
}

PlMiconiTask *pl_miconi_task_new(const char *name, int n_opts, const char *const *opts, PlMiconiInfo *info,
		char *err, size_t errlen)
{
	PlMiconiTask *t = pl_alloc(sizeof *t);
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	const char *valid;
	t->n = 8;
	t->weight = MW_MEAN;
	if (strcmp(name, "completion") == 0) {
		t->kind = MT_COMPLETION;
		t->T = 2;
		t->keep = 1;
		valid = "n, keep, weight (mean|sum|scored)";
	} else {
		t->kind = strcmp(name, "reversal") == 0 ? MT_REVERSAL : MT_ONESHOT;
		t->T = 20;
		valid = "n, T, weight (mean|sum|scored)";
	}
	for (int i = 0; i < n_opts; i++) {
		const char *eq = strchr(opts[i], '=');
		char key[64];
		if (!eq || (size_t)(eq - opts[i]) >= sizeof key) {
			snprintf(err, errlen, "task option '%s' is not of the form key=value", opts[i]);
			goto fail;
		}
		snprintf(key, sizeof key, "%.*s", (int)(eq - opts[i]), opts[i]);
		const char *v = eq + 1;
		int bad = 0;
		if (strcmp(key, "n") == 0)
			bad = parse_int(v, 1, 1000000, &t->n);
		else if (strcmp(key, "keep") == 0 && t->kind == MT_COMPLETION)
			bad = parse_int(v, 0, 1000000, &t->keep);
		else if (strcmp(key, "T") == 0 && t->kind != MT_COMPLETION)
			bad = parse_int(v, t->kind == MT_REVERSAL ? 8 : 3, 1000000, &t->T);
		else if (strcmp(key, "weight") == 0) {
			if (strcmp(v, "mean") == 0)
				t->weight = MW_MEAN;
			else if (strcmp(v, "sum") == 0)
				t->weight = MW_SUM;
			else if (strcmp(v, "scored") == 0)
				t->weight = MW_SCORED;
			else
				bad = 1;
		} else {
			snprintf(err, errlen, "task %s has no option '%s' (options: %s)", name, key, valid);
			goto fail;
		}
		if (bad) {
			snprintf(err, errlen, "task %s: bad value '%s' for option %s", name, v, key);
			goto fail;
		}
	}
	if (t->kind == MT_COMPLETION && t->keep > t->n) {
		snprintf(err, errlen, "task completion: keep=%d exceeds the pattern size n=%d", t->keep, t->n);
		goto fail;
	}
	if (t->kind == MT_REVERSAL && t->T % 2 != 0) {
		snprintf(err, errlen, "task reversal: T=%d must be even (the patterns swap at T/2)", t->T);
		goto fail;
	}
	if (t->kind == MT_COMPLETION) {
		t->I = t->n;
		t->Oy = t->n;
	} else {
		t->I = t->n + 2;
		t->Oy = 2;
	}
	static const char *const wname[] = {"mean", "sum", "scored"};
	if (t->kind == MT_COMPLETION)
		snprintf(info->desc, sizeof info->desc, "completion n=%d keep=%d weight=%s", t->n, t->keep,
			wname[t->weight]);
	else
		snprintf(info->desc, sizeof info->desc, "%s n=%d T=%d weight=%s", name, t->n, t->T, wname[t->weight]);
	info->T = t->T;
	info->n_in = t->I;
	info->n_pred = t->Oy;
	info->loss = t->kind == MT_COMPLETION ? PL_LOSS_SSE : PL_LOSS_CE;
	t->p1 = pl_alloc((size_t)t->n * sizeof(float));
	t->p2 = pl_alloc((size_t)t->n * sizeof(float));
	t->perm = pl_alloc((size_t)t->n * sizeof(int));
	if (!t->p1 || !t->p2 || !t->perm) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return t;
fail:
	pl_miconi_task_free(t);
	return NULL;
}

static void draw_pattern(PlRng *r, int n, float *p)
{
	for (int i = 0; i < n; i++)
		p[i] = pl_rng_below(r, 2) ? 1.0f : -1.0f;
}

/* Is step s scored, and the weight of a scored step. */
static int scored(const PlMiconiTask *t, int s)
{
	switch (t->kind) {
	case MT_COMPLETION:
		return s == 1;
	case MT_ONESHOT:
		return s >= 2;
	default:
		return s >= 2 && s != t->T / 2 && s != t->T / 2 + 1;
	}
}

static void fill_mask(const PlMiconiTask *t, float *mask)
{
	int n_scored = 0;
	for (int s = 0; s < t->T; s++)
		n_scored += scored(t, s);
	double w = 1.0;
	if (t->weight == MW_SCORED)
		w = 1.0 / n_scored;
	else if (t->weight == MW_MEAN && t->kind != MT_COMPLETION)
		w = 1.0 / (t->T - 2); /* steps 2..T-1, the reversal's two masked zeros included */
	for (int s = 0; s < t->T; s++)
		mask[s] = scored(t, s) ? (float)w : 0.0f;
}

/* Completion: step 0 shows p, step 1 keeps `keep` positions of p (distinct, uniform; keep = 1 is the
 * spec's single position k) and zeroes the rest; the target is p at both steps. */
static void sample_completion(const PlMiconiTask *t, PlRng *r, int B, float *x, float *y)
{
	int n = t->n;
	for (int b = 0; b < B; b++) {
		float *x0 = x + (size_t)b * n, *x1 = x + ((size_t)B + b) * n;
		draw_pattern(r, n, t->p1);
		/* The first `keep` entries of a partial Fisher-Yates shuffle. */
		for (int i = 0; i < n; i++)
			t->perm[i] = i;
		for (int i = 0; i < t->keep; i++) {
			int j = i + (int)pl_rng_below(r, (uint64_t)(n - i));
			int tmp = t->perm[i];
			t->perm[i] = t->perm[j];
			t->perm[j] = tmp;
		}
		for (int i = 0; i < n; i++) {
			x0[i] = t->p1[i];
			x1[i] = 0.0f;
			y[(size_t)b * n + i] = t->p1[i];
			y[((size_t)B + b) * n + i] = t->p1[i];
		}
		for (int i = 0; i < t->keep; i++)
			x1[t->perm[i]] = t->p1[t->perm[i]];
	}
}

/* One-shot and reversal: step s shows p1 with target (1,0) if s is even, p2 with target (0,1) if odd;
 * in the reversal, from step T/2 on, the patterns are swapped (p2 at even steps with (1,0), p1 at odd
 * steps with (0,1)). Label bits = target at the instruction steps 0, 1 (and T/2, T/2+1 in the reversal). */
static void sample_pairs(const PlMiconiTask *t, PlRng *r, int B, float *x, float *y)
{
	int n = t->n, I = t->I, T = t->T, h = T / 2;
	for (int b = 0; b < B; b++) {
		draw_pattern(r, n, t->p1);
		for (;;) {
			draw_pattern(r, n, t->p2);
			if (memcmp(t->p1, t->p2, (size_t)n * sizeof(float)) != 0)
				break;
		}
		for (int s = 0; s < T; s++) {
			int odd = s & 1;
			int swapped = t->kind == MT_REVERSAL && s >= h;
			const float *p = (odd != swapped) ? t->p2 : t->p1;
			int instr = s < 2 || (t->kind == MT_REVERSAL && (s == h || s == h + 1));
			float *xs = x + ((size_t)s * B + b) * I, *ys = y + ((size_t)s * B + b) * 2;
			ys[0] = odd ? 0.0f : 1.0f;
			ys[1] = odd ? 1.0f : 0.0f;
			xs[0] = instr ? ys[0] : 0.0f;
			xs[1] = instr ? ys[1] : 0.0f;
			memcpy(xs + 2, p, (size_t)n * sizeof(float));
		}
	}
}

void pl_miconi_task_sample(const PlMiconiTask *t, PlRng *r, int B, float *x, float *target, float *mask)
{
	if (t->kind == MT_COMPLETION)
		sample_completion(t, r, B, x, target);
	else
		sample_pairs(t, r, B, x, target);
	fill_mask(t, mask);
}
