/* runtime/train.c -- `train`: meta-training with validation, best-checkpoint selection, test, resume.
 *
 * Randomness, chosen so that --resume reproduces an uninterrupted run bit for bit:
 *   - parameters: pl_init_params(seed) (per-tensor streams);
 *   - training batches: one sequential stream (seed, STREAM_TRAIN), its state saved in every checkpoint;
 *   - validation at step s: a fresh stream (seed, STREAM_VAL + s), so validating never moves the
 *     training stream and a resumed run validates on the same trials;
 *   - test: stream (test_seed, STREAM_TEST), independent of the run's seed, so every run of a task sees
 *     the same test trials (the reference re-seeds with fixed numbers before its test).
 * A checkpoint holds the parameters, the AdamW moments and step count, the training stream, the best
 * validation so far and the run's flags; writes are atomic (pl_st_write), so a kill at any moment leaves
 * the previous checkpoint intact.
 *
 * Under MPI (dist.c) every rank runs this same loop on the same data: each draws the whole batch from
 * the same stream, the engine runs this rank's rows and sums gradients, loss and metric over the ranks
 * (identical bits everywhere), so clipping and AdamW give identical parameters on every rank. Validation
 * and test batches are split the same way. Only rank 0 (tr->io) writes files and progress; nothing a
 * checkpoint holds depends on the number of ranks, so --resume works with any number of them. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "config.h"
#include "util.h"

#define STREAM_TRAIN 0x747261696eULL /* "train" */
#define STREAM_VAL 0x76616c0000000000ULL
#define STREAM_TEST 0x74657374ULL

typedef struct TrainCfg {
	PlTaskSpec task;
	long steps;           /* -1: the task's default */
	uint64_t seed;
	long batch;
	PlOptConfig opt;
	long val_every, val_trials, test_trials, ckpt_every;
	long frozen;          /* episodes run after training without updates (Miconi's frozen phase) */
	uint64_t test_seed;
	PlBpttStrategy bptt;
	int bptt_k, bptt_auto;
	long threads;
	long block;           /* rows per sequential BPTT block (engine.c); -1: automatic */
	double mpi_timeout;   /* < 0: not given */
	int quiet;
	char out[2048], resume[2048], init[2048];
} TrainCfg;

static void cfg_defaults(TrainCfg *c)
{
	memset(c, 0, sizeof *c);
	c->steps = -1;
	c->batch = 0; /* 0, NAN: the optimiser's default, set by cfg_resolve once the flags are known */
	pl_opt_defaults(&c->opt);
	c->opt.lr = c->opt.clip = c->opt.max_dw = c->opt.l1 = c->opt.l2 = NAN;
	c->val_every = 200;
	c->val_trials = 6400;
	c->test_trials = 6400;
	c->ckpt_every = 0; /* 0: with every validation */
	c->test_seed = 1234;
	c->bptt_auto = 1;
	c->threads = 1;
	c->block = -1;
	c->mpi_timeout = -1.0;
	/* -1: the task's default, resolved by cfg_task_defaults once the task is known */
	c->val_every = c->val_trials = c->test_trials = -1;
	c->opt.weight_decay = c->opt.lr_min = -1.0;
	c->opt.cosine_tmax = c->opt.cosine_every = -1;
}

/* Defaults that depend on the task. oneshot follows the reference's FSC protocol (reference-model.md
 * A.4): 40,000 steps, validation every 1,000 on 12,800 episodes (test_batch 200 x 64), test on 12,800,
 * AdamW weight decay 5e-4, CosineAnnealingLR from lr to 1e-4 stepped once per validation interval with
 * T_max = steps / val_every + 1 (41 at the reference's sizes). Other tasks: 10,000 or 20,000 steps,
 * validation every 200 on 6,400 trials, no weight decay, no schedule. */
static void cfg_task_defaults(TrainCfg *c)
{
	int fsc = strcmp(c->task.name, "oneshot") == 0;
	if (c->steps < 0)
		c->steps = fsc ? 40000 : strncmp(c->task.name, "cue", 3) == 0 ? 20000 :
			strcmp(c->task.name, "completion") == 0 ? 5000 : 10000;
	if (c->val_every < 0)
		c->val_every = fsc ? 1000 : 200;
	if (c->val_trials < 0)
		c->val_trials = fsc ? 12800 : 6400;
	if (c->test_trials < 0)
		c->test_trials = fsc ? 12800 : 6400;
	if (c->opt.weight_decay < 0)
		c->opt.weight_decay = fsc ? 5e-4 : 0.0;
	if (c->opt.cosine_every < 0)
		c->opt.cosine_every = fsc ? c->val_every : 1;
	if (c->opt.cosine_tmax < 0)
		c->opt.cosine_tmax = fsc ? c->steps / c->opt.cosine_every + 1 : 0;
	if (c->opt.lr_min < 0)
		c->opt.lr_min = fsc ? 1e-4 : 0.0;
}

static const char train_usage[] =
	"usage: %s train --task T [flags]\n"
	"Meta-trains the model by BPTT + AdamW (amsgrad) on task T and writes DIR/metrics.csv,\n"
	"DIR/checkpoint.safetensors, DIR/best.safetensors and DIR/run.json.\n"
	"  --task copy|cue_reward|regression|completion|oneshot_pattern|reversal|oneshot   task (--task-opt k=v,\n"
	"                     --n --m (copy), --K --fn linear|mlp; oneshot: --task-opt data=fashion|cifar_fs|mini\n"
	"                     dir=DIR augment=0|1 jitter=0|1, docs/oneshot.md)\n"
	"  --steps N          optimiser steps (default 20000 for cue_reward, 40000 for oneshot, 5000 for\n"
	"                     completion, else 10000)\n"
	"  --seed S           seed of initialisation and training data (default 0)\n"
	"  --batch B          trials per step (64; 1 with --optim rmsprop_miconi)\n"
	"  --optim adamw|rmsprop_miconi   optimiser (adamw)\n"
	"  --lr X --wd X --clip X --beta1 X --beta2 X --eps X --amsgrad 0|1\n"
	"                     AdamW (1e-3, 0, 5, 0.9, 0.999, 1e-8, 1; oneshot: --wd 5e-4); --clip 0 disables clipping\n"
	"  --lr X --rms-decay X --max-dw X --l1 X --l2 X --eps X\n"
	"                     Miconi 2016's RMSprop (completion 0.03, 0.99, 0.1, 1e-3, 1e-4, 1e-8;\n"
	"                     other tasks 0.01, 0.99, 0.01, 1e-4, 0, 1e-8; no --clip unless given)\n"
	"  --cosine N [--cosine-every K] [--lr-min X]   cosine schedule, T_max N scheduler steps of K steps\n"
	"                     (oneshot: K = --val-every, N = steps/K + 1, --lr-min 1e-4; --cosine 0 disables)\n"
	"  --val-every N      validate every N steps (200; oneshot 1000) on --val-trials fresh trials\n"
	"                     (6400; oneshot 12800)\n"
	"  --test-trials N    final test of the best checkpoint (6400; oneshot 12800) on trials of --test-seed (1234)\n"
	"  oneshot: metrics.csv's metric is the accuracy of the first query step (the reference's), metric_all\n"
	"  the accuracy over all five queries\n"
	"  --ckpt-every N     write the checkpoint every N steps (default: at every validation)\n"
	"  --frozen N         after the last step, N more batches from the training stream with the final\n"
	"                     parameters and no update, logged as split 'frozen' (Miconi's test phase; 0)\n"
	"  --out DIR          output folder (default run-MODEL-TASK-sSEED)\n"
	"  --resume DIR       continue DIR's run from its checkpoint (flags given here override)\n"
	"  --init FILE        start from the parameters in FILE instead of the seed's initialisation\n"
	"  --bptt store|recompute[:K]|auto   BPTT memory strategy (auto: store if it fits in memory)\n"
	"  --threads N        data-parallel threads over the batch (1); the process uses N cores: BLAS runs\n"
	"                     single-threaded inside them unless OPENBLAS_NUM_THREADS is set\n"
	"  --block R|auto     each thread runs its rows in sequential blocks of R trials, so a block's\n"
	"                     plastic state stays in cache (auto: from the L2 size; 0: one block)\n"
	"  --mpi-timeout S    under mpirun: abort if a collective waits more than S seconds for a rank (300;\n"
	"                     0 = forever); the batch is split over the ranks, rank 0 writes the files\n"
	"  --quiet            no progress lines\n"
	"Exit status: 0 done, 1 bad flag or file, 2 internal error, 3 training diverged (NaN/Inf).\n";

/* Applies one flag. Returns 0, -1 after an error message, -2 if the flag is unknown. */
static int cfg_flag(TrainCfg *c, const char *f, const char *v)
{
	long l;
	int r = pl_task_flag(&c->task, f, v);
	if (r)
		return r < 0 ? -1 : 0;
#define LONGF(name, field, lo, hi) \
	if (strcmp(f, name) == 0) { \
		if (pl_parse_long(f, v, lo, hi, &l) < 0) \
			return -1; \
		c->field = l; \
		return 0; \
	}
#define DBLF(name, field, lo, hi) \
	if (strcmp(f, name) == 0) \
		return pl_parse_double(f, v, lo, hi, &c->field);
	LONGF("steps", steps, 0, 1000000000L)
	LONGF("batch", batch, 1, 1000000L)
	LONGF("val-every", val_every, 1, 1000000000L)
	LONGF("val-trials", val_trials, 1, 1000000000L)
	LONGF("test-trials", test_trials, 0, 1000000000L)
	LONGF("ckpt-every", ckpt_every, 0, 1000000000L)
	LONGF("frozen", frozen, 0, 1000000000L)
	LONGF("threads", threads, 1, 64)
	LONGF("cosine", opt.cosine_tmax, 0, 1000000000L)
	LONGF("cosine-every", opt.cosine_every, 1, 1000000000L)
	LONGF("amsgrad", opt.amsgrad, 0, 1)
	DBLF("lr", opt.lr, 0.0, 1e6)
	DBLF("wd", opt.weight_decay, 0.0, 1e6)
	DBLF("clip", opt.clip, 0.0, 1e30)
	DBLF("beta1", opt.beta1, 0.0, 1.0)
	DBLF("beta2", opt.beta2, 0.0, 1.0)
	DBLF("eps", opt.eps, 0.0, 1.0)
	DBLF("lr-min", opt.lr_min, 0.0, 1e6)
	DBLF("rms-decay", opt.rms_decay, 0.0, 1.0)
	DBLF("max-dw", opt.max_dw, 0.0, 1e30)
	DBLF("l1", opt.l1, 0.0, 1e6)
	DBLF("l2", opt.l2, 0.0, 1.0)
	DBLF("mpi-timeout", mpi_timeout, 0.0, 1e9)
#undef LONGF
#undef DBLF
	if (strcmp(f, "optim") == 0) {
		if (strcmp(v, "adamw") == 0)
			c->opt.kind = PL_OPT_ADAMW;
		else if (strcmp(v, "rmsprop_miconi") == 0)
			c->opt.kind = PL_OPT_RMSPROP_MICONI;
		else {
			pl_err("--optim: unknown optimiser '%s' (adamw, rmsprop_miconi)", v);
			return -1;
		}
		return 0;
	}
	if (strcmp(f, "seed") == 0)
		return pl_parse_u64(f, v, &c->seed);
	if (strcmp(f, "test-seed") == 0)
		return pl_parse_u64(f, v, &c->test_seed);
	if (strcmp(f, "bptt") == 0)
		return pl_parse_bptt(v, &c->bptt, &c->bptt_k, &c->bptt_auto);
	if (strcmp(f, "block") == 0) {
		if (strcmp(v, "auto") == 0) {
			c->block = -1;
			return 0;
		}
		if (pl_parse_long(f, v, 0, 1000000L, &l) < 0)
			return -1;
		c->block = l;
		return 0;
	}
	struct {
		const char *name;
		char *dst;
	} paths[] = {{"out", c->out}, {"resume", c->resume}, {"init", c->init}};
	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
		if (strcmp(f, paths[i].name) == 0) {
			if (strlen(v) >= sizeof c->out) {
				pl_err("--%s: path too long", f);
				return -1;
			}
			snprintf(paths[i].dst, sizeof c->out, "%s", v);
			return 0;
		}
	return -2;
}

/* The run's settings as flags, so a checkpoint can carry them and --resume can replay them through
 * the same parser. Paths are not included: they belong to the invocation. */
static json_t *cfg_to_flags(const TrainCfg *c)
{
	json_t *a = json_array();
	char buf[128];
#define ADD(flag, fmt, val) \
	do { \
		json_array_append_new(a, json_string("--" flag)); \
		snprintf(buf, sizeof buf, fmt, val); \
		json_array_append_new(a, json_string(buf)); \
	} while (0)
	ADD("task", "%s", c->task.name);
	for (int i = 0; i < c->task.n_opts; i++)
		ADD("task-opt", "%s", c->task.opts[i]);
	ADD("steps", "%ld", c->steps);
	ADD("seed", "%" PRIu64, c->seed);
	ADD("batch", "%ld", c->batch);
	ADD("lr", "%.17g", c->opt.lr);
	ADD("wd", "%.17g", c->opt.weight_decay);
	ADD("clip", "%.17g", c->opt.clip);
	ADD("beta1", "%.17g", c->opt.beta1);
	ADD("beta2", "%.17g", c->opt.beta2);
	ADD("eps", "%.17g", c->opt.eps);
	ADD("amsgrad", "%d", c->opt.amsgrad);
	ADD("cosine", "%ld", c->opt.cosine_tmax);
	ADD("cosine-every", "%ld", c->opt.cosine_every);
	ADD("lr-min", "%.17g", c->opt.lr_min);
	ADD("optim", "%s", c->opt.kind == PL_OPT_RMSPROP_MICONI ? "rmsprop_miconi" : "adamw");
	ADD("rms-decay", "%.17g", c->opt.rms_decay);
	ADD("max-dw", "%.17g", c->opt.max_dw);
	ADD("l1", "%.17g", c->opt.l1);
	ADD("l2", "%.17g", c->opt.l2);
	ADD("val-every", "%ld", c->val_every);
	ADD("val-trials", "%ld", c->val_trials);
	ADD("test-trials", "%ld", c->test_trials);
	ADD("test-seed", "%" PRIu64, c->test_seed);
	ADD("ckpt-every", "%ld", c->ckpt_every);
	ADD("frozen", "%ld", c->frozen);
	if (c->bptt_auto)
		ADD("bptt", "%s", "auto");
	else if (c->bptt == PL_BPTT_STORE)
		ADD("bptt", "%s", "store");
	else {
		snprintf(buf, sizeof buf, "recompute:%d", c->bptt_k);
		json_array_append_new(a, json_string("--bptt"));
		json_array_append_new(a, json_string(buf));
	}
	ADD("threads", "%ld", c->threads);
	if (c->block >= 0)
		ADD("block", "%ld", c->block);
#undef ADD
	return a;
}

/* Fills what the flags left open with the chosen optimiser's defaults (Miconi's depend on the task). */
static void cfg_resolve(TrainCfg *c)
{
	PlOptConfig d;
	pl_opt_defaults(&d);
	if (c->opt.kind == PL_OPT_RMSPROP_MICONI)
		pl_opt_miconi_defaults(&d, c->task.name);
	double *field[] = {&c->opt.lr, &c->opt.clip, &c->opt.max_dw, &c->opt.l1, &c->opt.l2};
	const double dflt[] = {d.lr, d.clip, d.max_dw, d.l1, d.l2};
	for (size_t i = 0; i < sizeof field / sizeof field[0]; i++)
		if (isnan(*field[i]))
			*field[i] = dflt[i];
	if (c->batch == 0)
		c->batch = c->opt.kind == PL_OPT_RMSPROP_MICONI ? 1 : 64;
}

static int cfg_parse_argv(TrainCfg *c, int argc, char **argv, int *help)
{
	for (int i = 1; i < argc; i++) {
		char name[64];
		const char *v;
		if (pl_next_flag(argc, argv, &i, "train", "help quiet", name, sizeof name, &v) < 0)
			return -1;
		if (strcmp(name, "help") == 0) {
			*help = 1;
			continue;
		}
		if (strcmp(name, "quiet") == 0) {
			c->quiet = 1;
			continue;
		}
		int r = cfg_flag(c, name, v);
		if (r == -2) {
			pl_err("train: unknown flag --%s (see %s train --help)", name, pl_progname());
			return -1;
		}
		if (r < 0)
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------------ */

typedef struct Trainer {
	const PlModel *m;
	TrainCfg cfg;
	PlTask *task;
	int T, B;
	PlEngine *eng;
	float **params, **grads, **best;
	PlOpt *opt;
	PlRng rng;
	long step;
	double best_val;
	long best_step;
	double seconds0, t_start; /* seconds of earlier sessions; this session's start */
	float *x, *target, *mask;
	FILE *metrics;
	char ckpt_path[2100], best_path[2100], metrics_path[2100], runjson_path[2100];
	json_t *run;
	int tty;
	int io; /* this process writes the outputs (rank 0) */
	double last_print;
	double last_train_loss, last_val;
	long session_step0;
	int first_query; /* oneshot: report the first query's accuracy as the metric (and metric_all) */
} Trainer;

/* The metric a run reports and selects on: the first query's accuracy for oneshot, else metric. */
static double reported(const Trainer *tr, PlBpttResult r)
{
	return tr->first_query ? r.metric_first : r.metric;
}

static double elapsed(const Trainer *tr)
{
	return tr->seconds0 + (pl_now() - tr->t_start);
}

static int all_finite(const float *p, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		if (!isfinite(p[i]))
			return 0;
	return 1;
}

static int save_params_file(const Trainer *tr, float *const *params, const char *path, const char *kind,
		long step, double val)
{
	if (!tr->io)
		return 0;
	PlSt *st = pl_st_new();
	char err[1024], buf[64];
	int rc = -1;
	if (!st || pl_params_to_st(tr->m, st, "", params) < 0)
		goto out;
	pl_st_set_meta(st, "format", kind);
	pl_st_set_meta(st, "model", tr->m->name ? tr->m->name : "");
	pl_st_set_meta(st, "model_hash", tr->m->hash ? tr->m->hash : "");
	snprintf(buf, sizeof buf, "%ld", step);
	pl_st_set_meta(st, "step", buf);
	snprintf(buf, sizeof buf, "%" PRIu64, tr->cfg.seed);
	pl_st_set_meta(st, "seed", buf);
	snprintf(buf, sizeof buf, "%.17g", val);
	pl_st_set_meta(st, "val_loss", buf);
	pl_st_set_meta(st, "task", pl_task_describe(tr->task));
	if (pl_st_write(st, path, err, sizeof err) < 0) {
		pl_err("%s", err);
		goto out;
	}
	rc = 0;
out:
	pl_st_free(st);
	return rc;
}

static int save_checkpoint(Trainer *tr)
{
	if (!tr->io)
		return 0;
	const PlModel *m = tr->m;
	PlSt *st = pl_st_new();
	char err[1024], buf[PL_RNG_STRLEN > 64 ? PL_RNG_STRLEN : 64];
	int rc = -1;
	/* The best-so-far parameters travel in the checkpoint too: best.safetensors may be newer than the
	 * checkpoint if the process died between the two writes. */
	if (!st || pl_params_to_st(m, st, "", tr->params) < 0 || pl_params_to_st(m, st, "best.", tr->best) < 0)
		goto oom;
	for (int i = 0; i < m->n_params; i++) {
		if (!m->params[i].trainable)
			continue;
		char name[600];
		const PlTensorDesc *d = &m->params[i];
		if (tr->opt->cfg.kind == PL_OPT_RMSPROP_MICONI) {
			snprintf(name, sizeof name, "rms.ms.%s", d->name);
			if (pl_st_add_f32(st, name, d->rank, d->dims, tr->opt->m[i]) < 0)
				goto oom;
			continue;
		}
		snprintf(name, sizeof name, "adam.m.%s", d->name);
		if (pl_st_add_f32(st, name, d->rank, d->dims, tr->opt->m[i]) < 0)
			goto oom;
		snprintf(name, sizeof name, "adam.v.%s", d->name);
		if (pl_st_add_f32(st, name, d->rank, d->dims, tr->opt->v[i]) < 0)
			goto oom;
		snprintf(name, sizeof name, "adam.vmax.%s", d->name);
		if (pl_st_add_f32(st, name, d->rank, d->dims, tr->opt->vmax[i]) < 0)
			goto oom;
	}
	pl_st_set_meta(st, "format", "plastc-checkpoint-1");
	pl_st_set_meta(st, "model", m->name ? m->name : "");
	pl_st_set_meta(st, "model_hash", m->hash ? m->hash : "");
	pl_st_set_meta(st, "task", pl_task_describe(tr->task));
	snprintf(buf, sizeof buf, "%ld", tr->step);
	pl_st_set_meta(st, "step", buf);
	snprintf(buf, sizeof buf, "%" PRIu64, tr->cfg.seed);
	pl_st_set_meta(st, "seed", buf);
	snprintf(buf, sizeof buf, "%ld", tr->opt->t);
	pl_st_set_meta(st, "adam_t", buf);
	snprintf(buf, sizeof buf, "%.17g", tr->best_val);
	pl_st_set_meta(st, "best_val", buf);
	snprintf(buf, sizeof buf, "%ld", tr->best_step);
	pl_st_set_meta(st, "best_step", buf);
	snprintf(buf, sizeof buf, "%.6f", elapsed(tr));
	pl_st_set_meta(st, "seconds", buf);
	pl_rng_save(&tr->rng, buf);
	pl_st_set_meta(st, "rng", buf);
	json_t *flags = cfg_to_flags(&tr->cfg);
	char *ftext = json_dumps(flags, JSON_COMPACT);
	json_decref(flags);
	if (!ftext)
		goto oom;
	pl_st_set_meta(st, "config", ftext);
	free(ftext);
	if (pl_st_write(st, tr->ckpt_path, err, sizeof err) < 0) {
		pl_err("%s", err);
		goto out;
	}
	rc = 0;
	goto out;
oom:
	pl_err("out of memory writing %s", tr->ckpt_path);
out:
	pl_st_free(st);
	return rc;
}

/* Mean loss and metric over n_trials trials (rounded up to whole batches) drawn from r. */
static PlBpttResult evaluate(Trainer *tr, float *const *params, PlRng *r, long n_trials, long *used)
{
	long nb = (n_trials + tr->B - 1) / tr->B;
	PlBpttResult acc = {0.0, 0.0, 0.0, 1};
	for (long i = 0; i < nb; i++) {
		pl_task_sample(tr->task, r, tr->B, tr->x, tr->target, tr->mask);
		PlBpttResult b = pl_engine_run(tr->eng, params, tr->x, tr->target, tr->mask, NULL);
		acc.loss += b.loss;
		acc.metric += b.metric;
		acc.metric_first += b.metric_first;
		acc.finite &= b.finite;
	}
	if (nb > 0) {
		acc.loss /= (double)nb;
		acc.metric /= (double)nb;
		acc.metric_first /= (double)nb;
	}
	*used = nb * tr->B;
	return acc;
}

static void metrics_row(Trainer *tr, long step, const char *split, PlBpttResult r)
{
	if (!tr->metrics)
		return;
	fprintf(tr->metrics, "%ld,%s,%.9g,%.9g,%.3f", step, split, r.loss, reported(tr, r), elapsed(tr));
	if (tr->first_query)
		fprintf(tr->metrics, ",%.9g", r.metric);
	fputc('\n', tr->metrics);
	fflush(tr->metrics);
}

static void fmt_duration(char *buf, size_t n, double s)
{
	if (!isfinite(s) || s < 0)
		snprintf(buf, n, "?");
	else if (s < 60)
		snprintf(buf, n, "%.0fs", s);
	else if (s < 3600)
		snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
	else
		snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

static void progress(Trainer *tr, int force)
{
	if (tr->cfg.quiet || !tr->io)
		return;
	double now = pl_now();
	if (!force && now - tr->last_print < (tr->tty ? 0.2 : 30.0))
		return;
	tr->last_print = now;
	double dt = now - tr->t_start;
	double rate = dt > 0 ? (double)(tr->step - tr->session_step0) / dt : 0.0;
	char eta[32];
	fmt_duration(eta, sizeof eta, rate > 0 ? (double)(tr->cfg.steps - tr->step) / rate : -1.0);
	char line[256];
	snprintf(line, sizeof line, "step %ld/%ld  loss %.5f  val %.5f  %.2f steps/s  ETA %s", tr->step,
		tr->cfg.steps, tr->last_train_loss, tr->last_val, rate, eta);
	if (tr->tty)
		fprintf(stderr, "\r%s\033[K", line);
	else
		fprintf(stderr, "%s\n", line);
	fflush(stderr);
}

static void progress_done(Trainer *tr)
{
	if (tr->tty && !tr->cfg.quiet && tr->io)
		fputc('\n', stderr);
}

/* Validation at the current step; keeps the best parameters (in memory and best.safetensors). */
static int validate(Trainer *tr)
{
	PlRng r;
	long used;
	pl_rng_seed2(&r, tr->cfg.seed, STREAM_VAL + (uint64_t)tr->step);
	pl_task_set_split(tr->task, PL_SPLIT_VAL);
	PlBpttResult v = evaluate(tr, tr->params, &r, tr->cfg.val_trials, &used);
	pl_task_set_split(tr->task, PL_SPLIT_TRAIN);
	metrics_row(tr, tr->step, "val", v);
	v.metric = reported(tr, v);
	tr->last_val = v.loss;
	if (!v.finite) {
		progress_done(tr);
		if (tr->io)
			pl_err("training diverged: non-finite validation loss at step %ld; last good checkpoint: %s",
			tr->step, tr->ckpt_path);
		return PL_EXIT_DIVERGED;
	}
	int better = tr->m->meta_loss == PL_LOSS_CE ? (tr->best_step < 0 || -v.metric < tr->best_val)
						    : (tr->best_step < 0 || v.loss < tr->best_val);
	if (better) {
		tr->best_val = tr->m->meta_loss == PL_LOSS_CE ? -v.metric : v.loss;
		tr->best_step = tr->step;
		for (int i = 0; i < tr->m->n_params; i++)
			memcpy(tr->best[i], tr->params[i], (size_t)pl_desc_numel(&tr->m->params[i]) * sizeof(float));
		if (save_params_file(tr, tr->best, tr->best_path, "plastc-params-1", tr->step, v.loss) < 0)
			return PL_EXIT_USER;
	}
	if (!tr->tty && !tr->cfg.quiet && tr->io) {
		fprintf(stderr, "val step %ld: loss %.6f metric %.6f%s\n", tr->step, v.loss, v.metric,
			better ? " (best)" : "");
		fflush(stderr);
	}
	return 0;
}

static void machine_info(json_t *o)
{
	char host[256] = "?";
	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "?");
	host[sizeof host - 1] = '\0';
	json_object_set_new(o, "hostname", json_string(host));
	char cpu[256] = "?";
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (f) {
		char line[512];
		while (fgets(line, sizeof line, f))
			if (strncmp(line, "model name", 10) == 0) {
				char *c = strchr(line, ':');
				if (c) {
					c++;
					while (*c == ' ')
						c++;
					c[strcspn(c, "\n")] = '\0';
					snprintf(cpu, sizeof cpu, "%s", c);
				}
				break;
			}
		fclose(f);
	}
	json_object_set_new(o, "cpu", json_string(cpu));
	json_object_set_new(o, "nproc", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
}

static int write_json_atomic(json_t *j, const char *path)
{
	char tmp[2200];
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	if (json_dump_file(j, tmp, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 || rename(tmp, path) < 0) {
		pl_err("%s: cannot write", path);
		unlink(tmp);
		return -1;
	}
	return 0;
}

static json_t *run_json(const Trainer *tr, int argc, char **argv, const char *bptt_desc)
{
	const PlModel *m = tr->m;
	json_t *r = json_object(), *model = json_object(), *av = json_array(), *mach = json_object();
	json_object_set_new(r, "format", json_string("plastc-run-1"));
	json_object_set_new(model, "name", json_string(m->name ? m->name : ""));
	json_object_set_new(model, "hash", json_string(m->hash ? m->hash : ""));
	json_object_set_new(model, "source", json_string(m->source ? m->source : ""));
	json_object_set_new(model, "settings", json_string(m->settings ? m->settings : ""));
	int64_t total = 0, trainable = 0;
	for (int i = 0; i < m->n_params; i++) {
		if (m->params[i].running)
			continue; /* buffers, as PyTorch counts them */
		total += pl_desc_numel(&m->params[i]);
		if (m->params[i].trainable)
			trainable += pl_desc_numel(&m->params[i]);
	}
	json_object_set_new(model, "parameters", json_integer(total));
	json_object_set_new(model, "trainable", json_integer(trainable));
	if (pl_model_running(m) > 0)
		json_object_set_new(model, "buffers", json_integer(pl_model_running(m)));
	json_object_set_new(r, "model", model);
	json_object_set_new(r, "plastc_version", json_string(PACKAGE_VERSION));
	for (int i = 0; i < argc; i++)
		json_array_append_new(av, json_string(argv[i]));
	json_object_set_new(r, "argv", av);
	json_object_set_new(r, "flags", cfg_to_flags(&tr->cfg));
	json_object_set_new(r, "seed", json_integer((json_int_t)tr->cfg.seed));
	json_object_set_new(r, "task", json_string(pl_task_describe(tr->task)));
	json_object_set_new(r, "T", json_integer(tr->T));
	json_object_set_new(r, "bptt", json_string(bptt_desc));
	machine_info(mach);
	json_object_set_new(r, "machine", mach);
	char when[64];
	time_t now = time(NULL);
	struct tm tmv;
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tmv));
	json_object_set_new(r, "started", json_string(when));
	return r;
}

/* Loads DIR/checkpoint.safetensors into the trainer (parameters, moments, stream, best). */
static int load_checkpoint(Trainer *tr, const PlSt *st)
{
	const PlModel *m = tr->m;
	char err[1024];
	if (pl_params_from_st(m, st, tr->ckpt_path, "", tr->params, err, sizeof err) < 0) {
		pl_err("%s", err);
		return -1;
	}
	for (int i = 0; i < m->n_params; i++) {
		if (!m->params[i].trainable)
			continue;
		char name[600];
		const PlTensorDesc *d = &m->params[i];
		float *dst[3] = {tr->opt->m[i], tr->opt->v[i], tr->opt->vmax[i]};
		const char *pre[3] = {"adam.m.", "adam.v.", "adam.vmax."};
		int rms = tr->opt->cfg.kind == PL_OPT_RMSPROP_MICONI;
		if (rms)
			pre[0] = "rms.ms."; /* its mean square lives in m; it has no v, vmax */
		for (int k = 0; k < (rms ? 1 : 3); k++) {
			snprintf(name, sizeof name, "%s%s", pre[k], d->name);
			if (pl_st_get_f32(st, tr->ckpt_path, name, d->rank, d->dims, dst[k], err, sizeof err) < 0) {
				pl_err("%s", err);
				return -1;
			}
		}
	}
	const char *step = pl_st_meta(st, "step"), *adam_t = pl_st_meta(st, "adam_t"), *rng = pl_st_meta(st, "rng");
	const char *bv = pl_st_meta(st, "best_val"), *bs = pl_st_meta(st, "best_step"), *secs = pl_st_meta(st, "seconds");
	if (!step || !adam_t || !rng || !bv || !bs || !secs || pl_rng_load(&tr->rng, rng) < 0) {
		pl_err("%s: not a plastc training checkpoint (metadata step/adam_t/rng/best_val/best_step/seconds)",
			tr->ckpt_path);
		return -1;
	}
	tr->step = strtol(step, NULL, 10);
	tr->opt->t = strtol(adam_t, NULL, 10);
	tr->best_val = strtod(bv, NULL);
	tr->best_step = strtol(bs, NULL, 10);
	tr->seconds0 = strtod(secs, NULL);
	if (pl_params_from_st(m, st, tr->ckpt_path, "best.", tr->best, err, sizeof err) < 0) {
		pl_err("%s", err);
		return -1;
	}
	return 0;
}

/* Keeps the header and the train/val rows up to `step` (a killed run may have logged past its checkpoint). */
static int truncate_metrics(const char *path, long step)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	char tmp[2200];
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	FILE *o = fopen(tmp, "w");
	if (!o) {
		fclose(f);
		return -1;
	}
	char line[512];
	while (fgets(line, sizeof line, f)) {
		char *end;
		long s = strtol(line, &end, 10);
		if (end == line || *end != ',') {
			if (strncmp(line, "step,", 5) == 0)
				fputs(line, o);
			continue;
		}
		/* Test rows belong to a finished session; the resumed run writes its own. */
		if (s <= step && strchr(line, '\n') && strncmp(end, ",test,", 6) != 0)
			fputs(line, o);
	}
	fclose(f);
	if (fclose(o) != 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static size_t phys_mem(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	return pages > 0 && psz > 0 ? (size_t)pages * (size_t)psz : (size_t)4 << 30;
}

static void trainer_free(Trainer *tr)
{
	pl_engine_free(tr->eng);
	pl_params_free(tr->m, tr->params);
	pl_params_free(tr->m, tr->grads);
	pl_params_free(tr->m, tr->best);
	pl_opt_free(tr->opt);
	pl_task_free(tr->task);
	pl_free(tr->x);
	pl_free(tr->target);
	pl_free(tr->mask);
	if (tr->metrics)
		fclose(tr->metrics);
	if (tr->run)
		json_decref(tr->run);
}

static int train_main(const PlModel *m, int argc, char **argv)
{
	Trainer tr;
	memset(&tr, 0, sizeof tr);
	tr.m = m;
	TrainCfg *c = &tr.cfg;
	cfg_defaults(c);
	int help = 0, rc = PL_EXIT_USER;
	PlSt *ck = NULL;
	char err[1024];

	/* With --resume the checkpoint's flags come first, then this command line's. */
	TrainCfg probe;
	cfg_defaults(&probe);
	if (cfg_parse_argv(&probe, argc, argv, &help) < 0)
		return PL_EXIT_USER;
	if (help) {
		printf(train_usage, pl_progname());
		return 0;
	}
	if (pl_dist_init() < 0)
		return PL_EXIT_USER;
	if (probe.mpi_timeout >= 0)
		pl_dist_set_timeout(probe.mpi_timeout);
	tr.io = pl_dist_rank() == 0;
	if (probe.resume[0]) {
		if (probe.out[0] && strcmp(probe.out, probe.resume) != 0) {
			pl_err("train: --resume %s continues in its own folder; drop --out %s", probe.resume, probe.out);
			return PL_EXIT_USER;
		}
		snprintf(tr.ckpt_path, sizeof tr.ckpt_path, "%s/checkpoint.safetensors", probe.resume);
		ck = pl_st_read(tr.ckpt_path, err, sizeof err);
		if (!ck) {
			pl_err("%s", err);
			return PL_EXIT_USER;
		}
		const char *hash = pl_st_meta(ck, "model_hash"), *conf = pl_st_meta(ck, "config");
		if (hash && m->hash && strcmp(hash, m->hash) != 0) {
			pl_err("%s: written by model hash %s, this model has hash %s", tr.ckpt_path, hash, m->hash);
			goto done;
		}
		json_error_t je;
		json_t *flags = conf ? json_loads(conf, 0, &je) : NULL;
		if (!json_is_array(flags)) {
			pl_err("%s: no usable \"config\" metadata (not a plastc checkpoint?)", tr.ckpt_path);
			if (flags)
				json_decref(flags);
			goto done;
		}
		size_t n = json_array_size(flags);
		char **fv = pl_alloc((n + 1) * sizeof *fv);
		int bad = !fv;
		/* Copies, because parsing takes char ** like main's argv. */
		for (size_t i = 0; !bad && i < n; i++) {
			const char *sv = json_string_value(json_array_get(flags, i));
			size_t len = sv ? strlen(sv) + 1 : 0;
			if (!sv || !(fv[i + 1] = pl_alloc(len)))
				bad = 1;
			else
				memcpy(fv[i + 1], sv, len);
		}
		if (!bad) {
			fv[0] = argv[0];
			bad = cfg_parse_argv(c, (int)n + 1, fv, &help) < 0;
		}
		for (size_t i = 0; fv && i < n; i++)
			pl_free(fv[i + 1]);
		pl_free(fv);
		json_decref(flags);
		if (bad) {
			pl_err("%s: bad \"config\" metadata", tr.ckpt_path);
			goto done;
		}
	}
	if (cfg_parse_argv(c, argc, argv, &help) < 0)
		goto done;
	cfg_resolve(c);
	if (!(tr.task = pl_task_from_spec(&c->task, m)))
		goto done;
	cfg_task_defaults(c);
	if (c->resume[0])
		snprintf(c->out, sizeof c->out, "%s", c->resume);
	else if (!c->out[0])
		snprintf(c->out, sizeof c->out, "run-%s-%s-s%" PRIu64, m->name ? m->name : "model", c->task.name, c->seed);
	tr.T = pl_task_T(tr.task);
	tr.first_query = strcmp(c->task.name, "oneshot") == 0 && m->meta_loss == PL_LOSS_CE;
	tr.B = (int)c->batch;
	int nranks = pl_dist_size();
	if (c->batch < nranks) {
		if (tr.io)
			pl_err("train: --batch %ld is smaller than the number of MPI ranks (%d)", c->batch, nranks);
		goto done;
	}
	if (tr.io && pl_mkdir_p(c->out) < 0) {
		pl_err("%s: cannot create the output folder: %s", c->out, strerror(errno));
		goto done;
	}
	snprintf(tr.ckpt_path, sizeof tr.ckpt_path, "%s/checkpoint.safetensors", c->out);
	snprintf(tr.best_path, sizeof tr.best_path, "%s/best.safetensors", c->out);
	snprintf(tr.metrics_path, sizeof tr.metrics_path, "%s/metrics.csv", c->out);
	snprintf(tr.runjson_path, sizeof tr.runjson_path, "%s/run.json", c->out);

	/* Memory plan: choose the BPTT strategy once, allocate every buffer once. */
	int Br = (tr.B + nranks - 1) / nranks; /* rows of this rank, at most */
	int threads = (int)(c->threads < Br ? c->threads : Br);
	int Bt = (Br + threads - 1) / threads;
	int block = c->block >= 0 ? (int)c->block : pl_auto_block(m, Bt);
	if (m->couples_rows && block > 0) {
		if (!c->quiet && tr.io)
			fprintf(stderr, "%s: note: --block %d ignored: the model's batch norm needs all of a thread's rows in "
					"one call\n", pl_progname(), block);
		block = 0;
	}
	if (block > 0 && block < Bt)
		Bt = block;
	int ksq = (int)ceil(sqrt((double)tr.T));
	int k = c->bptt_k > 0 ? c->bptt_k : ksq;
	size_t store_b = pl_bptt_bytes(m, Bt, tr.T, PL_BPTT_STORE, 0) * (size_t)threads;
	size_t rec_b = pl_bptt_bytes(m, Bt, tr.T, PL_BPTT_RECOMPUTE, k) * (size_t)threads;
	PlBpttStrategy strat = c->bptt;
	if (c->bptt_auto)
		strat = store_b <= phys_mem() / 100 * 40 ? PL_BPTT_STORE : PL_BPTT_RECOMPUTE;
	char bptt_desc[64];
	if (strat == PL_BPTT_STORE)
		snprintf(bptt_desc, sizeof bptt_desc, "store");
	else
		snprintf(bptt_desc, sizeof bptt_desc, "recompute:%d", k);
	char ranks_desc[64] = "";
	if (nranks > 1)
		snprintf(ranks_desc, sizeof ranks_desc, " per rank, %d MPI ranks", nranks);
	if (!c->quiet && tr.io)
		fprintf(stderr, "%s: model %s, task %s (T=%d), batch %d, seed %" PRIu64 ", %d thread%s%s, block %d\n"
				"%s: bptt %s%s: %.1f MiB (store %.1f MiB, recompute:%d %.1f MiB, RAM %.0f MiB)\n",
			pl_progname(), m->name ? m->name : "?", pl_task_describe(tr.task), tr.T, tr.B, c->seed,
			threads, threads == 1 ? "" : "s", ranks_desc, Bt, pl_progname(), bptt_desc, c->bptt_auto ? " (auto)" : "",
			(strat == PL_BPTT_STORE ? store_b : rec_b) / 1048576.0, store_b / 1048576.0, k,
			rec_b / 1048576.0, phys_mem() / 1048576.0);
	tr.eng = pl_engine_new_block(m, tr.B, tr.T, strat, k, threads, block);
	tr.params = pl_params_alloc(m);
	tr.grads = pl_params_alloc(m);
	tr.best = pl_params_alloc(m);
	tr.opt = pl_opt_new(m, &c->opt);
	tr.x = pl_alloc((size_t)tr.T * tr.B * m->in_size * sizeof(float));
	tr.target = pl_alloc((size_t)tr.T * tr.B * m->pred_size * sizeof(float));
	tr.mask = pl_alloc((size_t)tr.T * sizeof(float));
	if (!tr.eng || !tr.params || !tr.grads || !tr.best || !tr.opt || !tr.x || !tr.target || !tr.mask) {
		pl_err("out of memory planning the run (bptt %s needs %.1f MiB)", bptt_desc,
			(strat == PL_BPTT_STORE ? store_b : rec_b) / 1048576.0);
		rc = PL_EXIT_INTERNAL;
		goto done;
	}

	tr.best_step = -1;
	tr.best_val = INFINITY;
	if (ck) {
		if (load_checkpoint(&tr, ck) < 0)
			goto done;
		if (tr.io && truncate_metrics(tr.metrics_path, tr.step) < 0) {
			pl_err("%s: cannot rewrite", tr.metrics_path);
			goto done;
		}
		if (!c->quiet && tr.io)
			fprintf(stderr, "%s: resuming %s at step %ld (best val %.6f at step %ld)\n", pl_progname(),
				tr.ckpt_path, tr.step, tr.best_val, tr.best_step);
	} else {
		pl_rng_seed2(&tr.rng, c->seed, STREAM_TRAIN);
		if (c->init[0]) {
			PlSt *p = pl_st_read(c->init, err, sizeof err);
			int bad = !p || pl_params_from_st(m, p, c->init, "", tr.params, err, sizeof err) < 0;
			pl_st_free(p);
			if (bad) {
				pl_err("%s", err);
				goto done;
			}
		} else
			pl_init_params(m, c->seed, tr.params);
	}
	/* Every rank read the same files (a filesystem all nodes share): make sure they agree. */
	for (int i = 0; i < m->n_params && nranks > 1; i++)
		if (pl_dist_same(tr.params[i], (size_t)pl_desc_numel(&m->params[i]) * sizeof(float),
			    "the initial or resumed parameters") < 0
			|| pl_dist_same(tr.rng.s, sizeof tr.rng.s, "the training data stream") < 0)
			goto done;
	struct stat sb;
	int fresh_metrics = stat(tr.metrics_path, &sb) != 0 || !ck;
	if (tr.io) {
		tr.metrics = fopen(tr.metrics_path, fresh_metrics ? "w" : "a");
		if (!tr.metrics) {
			pl_err("%s: cannot open: %s", tr.metrics_path, strerror(errno));
			goto done;
		}
		if (fresh_metrics)
			fprintf(tr.metrics, "step,split,loss,metric,seconds%s\n", tr.first_query ? ",metric_all" : "");
	}
	tr.run = run_json(&tr, argc, argv, bptt_desc);
	if (ck)
		json_object_set_new(tr.run, "resumed_from_step", json_integer(tr.step));
	if (nranks > 1)
		json_object_set_new(tr.run, "mpi_ranks", json_integer(nranks));
	if (tr.io && write_json_atomic(tr.run, tr.runjson_path) < 0)
		goto done;

	tr.tty = isatty(2);
	tr.t_start = pl_now();
	tr.session_step0 = tr.step;
	tr.last_val = NAN;
	tr.last_train_loss = NAN;
	long ckpt_every = c->ckpt_every > 0 ? c->ckpt_every : c->val_every;
	if (!ck) {
		if ((rc = validate(&tr)) != 0)
			goto done;
		if (save_checkpoint(&tr) < 0) {
			rc = PL_EXIT_USER;
			goto done;
		}
	}
	while (tr.step < c->steps) {
		pl_task_set_step(tr.task, tr.step);
		pl_task_sample(tr.task, &tr.rng, tr.B, tr.x, tr.target, tr.mask);
		PlBpttResult res = pl_engine_run(tr.eng, tr.params, tr.x, tr.target, tr.mask, tr.grads);
		long s = tr.step + 1;
		if (!res.finite) {
			progress_done(&tr);
			if (tr.io)
				pl_err("training diverged: non-finite loss at step %ld; last good checkpoint: %s", s, tr.ckpt_path);
			rc = PL_EXIT_DIVERGED;
			goto done;
		}
		for (int i = 0; i < m->n_params; i++)
			if (m->params[i].trainable && !all_finite(tr.grads[i], pl_desc_numel(&m->params[i]))) {
				progress_done(&tr);
				if (tr.io)
					pl_err("training diverged: non-finite gradient of %s at step %ld; last good checkpoint: %s",
					m->params[i].name, s, tr.ckpt_path);
				rc = PL_EXIT_DIVERGED;
				goto done;
			}
		if (c->opt.clip > 0)
			pl_clip_grad_norm(m, tr.grads, c->opt.clip);
		pl_opt_step(tr.opt, tr.params, tr.grads);
		tr.step = s;
		tr.last_train_loss = res.loss;
		metrics_row(&tr, s, "train", res);
		if (s % c->val_every == 0 || s == c->steps) {
			if ((rc = validate(&tr)) != 0)
				goto done;
			progress(&tr, !tr.tty);
		}
		if (s % ckpt_every == 0 || s == c->steps) {
			if (save_checkpoint(&tr) < 0) {
				rc = PL_EXIT_USER;
				goto done;
			}
		}
		progress(&tr, 0);
	}
	progress(&tr, tr.tty);
	progress_done(&tr);

	/* Frozen phase: the training stream continues, the final parameters stay. Its rows follow the last
	 * step, so a resume (which keeps rows up to the checkpoint's step) redoes it identically. */
	for (long i = 1; i <= c->frozen; i++) {
		pl_task_sample(tr.task, &tr.rng, tr.B, tr.x, tr.target, tr.mask);
		PlBpttResult res = pl_engine_run(tr.eng, tr.params, tr.x, tr.target, tr.mask, NULL);
		metrics_row(&tr, tr.step + i, "frozen", res);
	}

	/* Test of the best-validation parameters on the fixed test trials. */
	PlRng tr_test;
	long used = 0;
	pl_rng_seed2(&tr_test, c->test_seed, STREAM_TEST);
	PlBpttResult test = {NAN, NAN, NAN, 1};
	double test_all = NAN;
	if (c->test_trials > 0) {
		pl_task_set_split(tr.task, PL_SPLIT_TEST);
		test = evaluate(&tr, tr.best, &tr_test, c->test_trials, &used);
		metrics_row(&tr, tr.best_step, "test", test);
		test_all = test.metric;
		test.metric = reported(&tr, test);
	}
	json_t *result = json_object();
	json_object_set_new(result, "steps", json_integer(tr.step));
	json_object_set_new(result, "best_step", json_integer(tr.best_step));
	json_object_set_new(result, "best_val", json_real(m->meta_loss == PL_LOSS_CE ? -tr.best_val : tr.best_val));
	json_object_set_new(result, "test_loss", json_real(test.loss));
	json_object_set_new(result, "test_metric", json_real(test.metric));
	if (tr.first_query)
		json_object_set_new(result, "test_metric_all", json_real(test_all));
	json_object_set_new(result, "test_trials", json_integer(used));
	json_object_set_new(result, "seconds", json_real(elapsed(&tr)));
	json_object_set_new(tr.run, "result", result);
	if (tr.io && write_json_atomic(tr.run, tr.runjson_path) < 0) {
		rc = PL_EXIT_USER;
		goto done;
	}
	char dur[32];
	fmt_duration(dur, sizeof dur, elapsed(&tr));
	if (tr.io && m->meta_loss == PL_LOSS_CE)
		printf("%s: done: %s on %s, %ld steps, best val accuracy %.4f (step %ld), test loss %.6f accuracy %.4f "
		       "(%ld trials), %s, %s\n", pl_progname(), m->name ? m->name : "?", pl_task_describe(tr.task), tr.step,
			-tr.best_val, tr.best_step, test.loss, test.metric, used, dur, c->out);
	else if (tr.io)
		printf("%s: done: %s on %s, %ld steps, best val %.6f (step %ld), test MSE %.6f (%ld trials), %s, %s\n",
			pl_progname(), m->name ? m->name : "?", pl_task_describe(tr.task), tr.step, tr.best_val,
			tr.best_step, test.loss, used, dur, c->out);
	fflush(stdout);
	rc = 0;
done:
	pl_st_free(ck);
	trainer_free(&tr);
	return rc;
}

int pl_cmd_train(const PlModel *m, int argc, char **argv)
{
	/* every rank returns the same status, or the run is aborted (dist.c) */
	return pl_dist_finish(train_main(m, argc, argv));
}
