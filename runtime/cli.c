/* runtime/cli.c -- pl_main and the small subcommands: init, grad, eval (train is in train.c). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "util.h"

static const char main_usage[] =
	"usage: %s COMMAND [flags]   (%s --help for a command's flags)\n"
	"  train   meta-train on a task (BPTT + AdamW), writing metrics, checkpoints and run.json\n"
	"  eval    loss (and metric) of a checkpoint on freshly drawn task trials\n"
	"  grad    loss and parameter gradients of a batch file (interoperability hook)\n"
	"  init    initial parameters for a seed\n"
	"  bench   time meta-training steps (median_ms=, peak_rss_mb=; --profile splits them)\n"
	"model: %s (%s), input %d, prediction %d, output %d, %d parameter tensors\n";

static const char init_usage[] =
	"usage: %s init [--seed S] -o PARAMS.safetensors\n"
	"Writes the model's initial parameters for seed S (default 0), F32, one tensor per parameter.\n";

static const char grad_usage[] =
	"usage: %s grad --params P.safetensors --batch BATCH.safetensors -o G.safetensors [--bptt S] [--threads N]\n"
	"               [--block R]   (R trials per sequential BPTT block; default 0, one block per thread)\n"
	"          [--mpi-timeout S]\n"
	"BATCH holds x [T, B, I], target [T, B, Oy] and optionally mask [T] (default 1/T), F32 or F64.\n"
	"G gets `loss` (F64 scalar) and d loss / d param (F32) under each parameter's name.\n"
	"Under mpirun the batch's rows are split over the ranks (every rank reads both files); rank 0 writes G.\n";

static const char eval_usage[] =
	"usage: %s eval --checkpoint CKPT --task T [--trials N] [--seed S] [--batch B] [--threads N] [--mpi-timeout S]\n"
	"Mean meta-loss (and metric: accuracy for CE models, else the loss) of the parameters in CKPT on N\n"
	"trials (default 6400, rounded up to whole batches) drawn from the test stream of seed S (default\n"
	"1234: the trials `train` tests on). Task flags as for train (--task-opt k=v, --n, --m, --K, --fn).\n"
	"Under mpirun each batch's rows are split over the ranks; rank 0 prints the result.\n";

static int write_params(const PlModel *m, float *const *p, uint64_t seed, const char *path)
{
	char err[1024], buf[32];
	PlSt *st = pl_st_new();
	int rc = PL_EXIT_INTERNAL;
	if (!st || pl_params_to_st(m, st, "", p) < 0) {
		pl_err("out of memory");
		goto out;
	}
	pl_st_set_meta(st, "format", "plastc-params-1");
	pl_st_set_meta(st, "model", m->name ? m->name : "");
	pl_st_set_meta(st, "model_hash", m->hash ? m->hash : "");
	snprintf(buf, sizeof buf, "%" PRIu64, seed);
	pl_st_set_meta(st, "seed", buf);
	pl_st_set_meta(st, "step", "0");
	if (pl_st_write(st, path, err, sizeof err) < 0) {
		pl_err("%s", err);
		rc = PL_EXIT_USER;
		goto out;
	}
	rc = 0;
out:
	pl_st_free(st);
	return rc;
}

int pl_cmd_init(const PlModel *m, int argc, char **argv)
{
	uint64_t seed = 0;
	const char *out = NULL;
	for (int i = 1; i < argc; i++) {
		char name[64];
		const char *v;
		if (pl_next_flag(argc, argv, &i, "init", "help", name, sizeof name, &v) < 0)
			return PL_EXIT_USER;
		if (strcmp(name, "help") == 0) {
			printf(init_usage, pl_progname());
			return 0;
		} else if (strcmp(name, "seed") == 0) {
			if (pl_parse_u64(name, v, &seed) < 0)
				return PL_EXIT_USER;
		} else if (strcmp(name, "output") == 0)
			out = v;
		else {
			pl_err("init: unknown flag --%s (see %s init --help)", name, pl_progname());
			return PL_EXIT_USER;
		}
	}
	if (!out) {
		pl_err("init: no output file (-o PARAMS.safetensors)");
		return PL_EXIT_USER;
	}
	float **p = pl_params_alloc(m);
	if (!p) {
		pl_err("out of memory");
		return PL_EXIT_INTERNAL;
	}
	pl_init_params(m, seed, p);
	int rc = write_params(m, p, seed, out);
	pl_params_free(m, p);
	return rc;
}

/* --mpi-timeout S: 1 if `name` is that flag (applied, or -1 after an error), else 0. */
static int mpi_timeout_flag(const char *name, const char *v)
{
	double t;
	if (strcmp(name, "mpi-timeout") != 0)
		return 0;
	if (pl_parse_double(name, v, 0.0, 1e9, &t) < 0)
		return -1;
	pl_dist_set_timeout(t);
	return 1;
}

static int grad_main(const PlModel *m, int argc, char **argv)
{
	const char *ppath = NULL, *bpath = NULL, *out = NULL;
	PlBpttStrategy strat = PL_BPTT_STORE;
	int k = 0, autos = 0;
	long threads = 1, block = 0;
	for (int i = 1; i < argc; i++) {
		char name[64];
		const char *v;
		if (pl_next_flag(argc, argv, &i, "grad", "help", name, sizeof name, &v) < 0)
			return PL_EXIT_USER;
		int r = mpi_timeout_flag(name, v);
		if (r < 0)
			return PL_EXIT_USER;
		if (r)
			continue;
		if (strcmp(name, "help") == 0) {
			printf(grad_usage, pl_progname());
			return 0;
		} else if (strcmp(name, "params") == 0)
			ppath = v;
		else if (strcmp(name, "batch") == 0)
			bpath = v;
		else if (strcmp(name, "output") == 0)
			out = v;
		else if (strcmp(name, "bptt") == 0) {
			if (pl_parse_bptt(v, &strat, &k, &autos) < 0)
				return PL_EXIT_USER;
			if (autos)
				strat = PL_BPTT_STORE;
		} else if (strcmp(name, "threads") == 0) {
			if (pl_parse_long(name, v, 1, 64, &threads) < 0)
				return PL_EXIT_USER;
		} else if (strcmp(name, "block") == 0) {
			if (pl_parse_long(name, v, 0, 1000000L, &block) < 0)
				return PL_EXIT_USER;
		} else {
			pl_err("grad: unknown flag --%s (see %s grad --help)", name, pl_progname());
			return PL_EXIT_USER;
		}
	}
	if (!ppath || !bpath || !out) {
		pl_err("grad: needs --params P.safetensors --batch B.safetensors -o G.safetensors");
		return PL_EXIT_USER;
	}
	if (pl_dist_init() < 0)
		return PL_EXIT_USER;
	char err[1024];
	int rc = PL_EXIT_USER;
	PlSt *ps = NULL, *bs = NULL, *gs = NULL;
	float **params = NULL, **grads = NULL, *x = NULL, *target = NULL, *mask = NULL;
	PlEngine *eng = NULL;
	if (!(ps = pl_st_read(ppath, err, sizeof err)) || !(bs = pl_st_read(bpath, err, sizeof err))) {
		pl_err("%s", err);
		goto out;
	}
	params = pl_params_alloc(m);
	grads = pl_params_alloc(m);
	if (!params || !grads)
		goto oom;
	if (pl_params_from_st(m, ps, ppath, "", params, err, sizeof err) < 0) {
		pl_err("%s", err);
		goto out;
	}
	const PlStTensor *xt = pl_st_find(bs, "x");
	if (!xt) {
		pl_err("%s: missing tensor 'x' ([T, B, %d])", bpath, m->in_size);
		goto out;
	}
	if (xt->rank != 3 || xt->dims[2] != m->in_size || xt->dims[0] < 1 || xt->dims[1] < 1) {
		pl_err("%s: tensor 'x' must have shape [T, B, %d] with T, B >= 1 for model %s", bpath, m->in_size,
			m->name ? m->name : "?");
		goto out;
	}
	int T = (int)xt->dims[0], B = (int)xt->dims[1];
	if (B < pl_dist_size()) {
		pl_err("%s: a batch of %d trials cannot be split over %d MPI ranks", bpath, B, pl_dist_size());
		goto out;
	}
	int64_t xd[3] = {T, B, m->in_size}, td[3] = {T, B, m->pred_size}, md[1] = {T};
	x = pl_alloc((size_t)T * B * m->in_size * sizeof(float));
	target = pl_alloc((size_t)T * B * m->pred_size * sizeof(float));
	mask = pl_alloc((size_t)T * sizeof(float));
	if (!x || !target || !mask)
		goto oom;
	if (pl_st_get_f32(bs, bpath, "x", 3, xd, x, err, sizeof err) < 0
		|| pl_st_get_f32(bs, bpath, "target", 3, td, target, err, sizeof err) < 0) {
		pl_err("%s", err);
		goto out;
	}
	if (pl_st_find(bs, "mask")) {
		if (pl_st_get_f32(bs, bpath, "mask", 1, md, mask, err, sizeof err) < 0) {
			pl_err("%s", err);
			goto out;
		}
	} else
		for (int t = 0; t < T; t++)
			mask[t] = 1.0f / (float)T;
	if (!(eng = pl_engine_new_block(m, B, T, strat, k > 0 ? k : (int)ceil(sqrt((double)T)), (int)threads,
		      (int)block)))
		goto oom;
	PlBpttResult r = pl_engine_run(eng, params, x, target, mask, grads);
	if (!(gs = pl_st_new()))
		goto oom;
	int64_t none[1] = {0};
	if (pl_st_add(gs, "loss", PL_F64, 0, none, &r.loss) < 0 || pl_params_to_st(m, gs, "", grads) < 0)
		goto oom;
	pl_st_set_meta(gs, "format", "plastc-grad-1");
	pl_st_set_meta(gs, "model", m->name ? m->name : "");
	pl_st_set_meta(gs, "model_hash", m->hash ? m->hash : "");
	if (pl_dist_rank() == 0 && pl_st_write(gs, out, err, sizeof err) < 0) {
		pl_err("%s", err);
		goto out;
	}
	rc = r.finite ? 0 : PL_EXIT_DIVERGED;
	if (!r.finite && pl_dist_rank() == 0)
		pl_err("grad: the loss is not finite (written anyway to %s)", out);
	goto out;
oom:
	pl_err("out of memory");
	rc = PL_EXIT_INTERNAL;
out:
	pl_engine_free(eng);
	pl_st_free(ps);
	pl_st_free(bs);
	pl_st_free(gs);
	pl_params_free(m, params);
	pl_params_free(m, grads);
	pl_free(x);
	pl_free(target);
	pl_free(mask);
	return rc;
}

static int eval_main(const PlModel *m, int argc, char **argv)
{
	const char *ckpt = NULL;
	PlTaskSpec ts;
	memset(&ts, 0, sizeof ts);
	long trials = 6400, batch = 64, threads = 1;
	uint64_t seed = 1234;
	for (int i = 1; i < argc; i++) {
		char name[64];
		const char *v;
		if (pl_next_flag(argc, argv, &i, "eval", "help", name, sizeof name, &v) < 0)
			return PL_EXIT_USER;
		if (strcmp(name, "help") == 0) {
			printf(eval_usage, pl_progname());
			return 0;
		}
		int r = mpi_timeout_flag(name, v);
		if (r < 0)
			return PL_EXIT_USER;
		if (r)
			continue;
		r = pl_task_flag(&ts, name, v);
		if (r < 0)
			return PL_EXIT_USER;
		if (r)
			continue;
		if (strcmp(name, "checkpoint") == 0)
			ckpt = v;
		else if (strcmp(name, "trials") == 0) {
			if (pl_parse_long(name, v, 1, 1000000000L, &trials) < 0)
				return PL_EXIT_USER;
		} else if (strcmp(name, "batch") == 0) {
			if (pl_parse_long(name, v, 1, 1000000L, &batch) < 0)
				return PL_EXIT_USER;
		} else if (strcmp(name, "threads") == 0) {
			if (pl_parse_long(name, v, 1, 64, &threads) < 0)
				return PL_EXIT_USER;
		} else if (strcmp(name, "seed") == 0) {
			if (pl_parse_u64(name, v, &seed) < 0)
				return PL_EXIT_USER;
		} else {
			pl_err("eval: unknown flag --%s (see %s eval --help)", name, pl_progname());
			return PL_EXIT_USER;
		}
	}
	if (!ckpt) {
		pl_err("eval: no --checkpoint given");
		return PL_EXIT_USER;
	}
	PlTask *task = pl_task_from_spec(&ts, m);
	if (!task)
		return PL_EXIT_USER;
	pl_task_set_split(task, PL_SPLIT_TEST); /* eval reports on the held-out test data, as train's test */
	if (pl_dist_init() < 0 || batch < pl_dist_size()) {
		if (batch < pl_dist_size())
			pl_err("eval: --batch %ld is smaller than the number of MPI ranks (%d)", batch, pl_dist_size());
		pl_task_free(task);
		return PL_EXIT_USER;
	}
	char err[1024];
	int rc = PL_EXIT_USER;
	int T = pl_task_T(task), B = (int)batch;
	PlSt *st = NULL;
	float **params = NULL, *x = NULL, *target = NULL, *mask = NULL;
	PlEngine *eng = NULL;
	if (!(st = pl_st_read(ckpt, err, sizeof err))) {
		pl_err("%s", err);
		goto out;
	}
	params = pl_params_alloc(m);
	x = pl_alloc((size_t)T * B * m->in_size * sizeof(float));
	target = pl_alloc((size_t)T * B * m->pred_size * sizeof(float));
	mask = pl_alloc((size_t)T * sizeof(float));
	eng = pl_engine_new_block(m, B, T, PL_BPTT_STORE, 1, (int)threads,
		pl_auto_block(m, (B + (int)threads - 1) / (int)threads));
	if (!params || !x || !target || !mask || !eng) {
		pl_err("out of memory");
		rc = PL_EXIT_INTERNAL;
		goto out;
	}
	if (pl_params_from_st(m, st, ckpt, "", params, err, sizeof err) < 0) {
		pl_err("%s", err);
		goto out;
	}
	/* The same stream as train's test (train.c: STREAM_TEST). */
	PlRng r;
	pl_rng_seed2(&r, seed, 0x74657374ULL);
	long nb = (trials + B - 1) / B;
	double loss = 0.0, metric = 0.0, first = 0.0;
	int finite = 1;
	for (long i = 0; i < nb; i++) {
		pl_task_sample(task, &r, B, x, target, mask);
		PlBpttResult b = pl_engine_run(eng, params, x, target, mask, NULL);
		loss += b.loss;
		metric += b.metric;
		first += b.metric_first;
		finite &= b.finite;
	}
	loss /= (double)nb;
	metric /= (double)nb;
	first /= (double)nb;
	if (pl_dist_rank() == 0) {
		if (m->meta_loss == PL_LOSS_CE)
			printf("%s: eval: %s on %s, %ld trials: loss %.6f accuracy %.4f (first weighted step %.4f)\n",
				pl_progname(), ckpt, pl_task_describe(task), nb * B, loss, metric, first);
		else
			printf("%s: eval: %s on %s, %ld trials: MSE %.6f\n", pl_progname(), ckpt, pl_task_describe(task),
				nb * B, loss);
	}
	rc = finite ? 0 : PL_EXIT_DIVERGED;
out:
	pl_engine_free(eng);
	pl_st_free(st);
	pl_params_free(m, params);
	pl_free(x);
	pl_free(target);
	pl_free(mask);
	pl_task_free(task);
	return rc;
}

/* Under MPI every rank returns the same status, or the run is aborted (dist.c). */
int pl_cmd_grad(const PlModel *m, int argc, char **argv)
{
	return pl_dist_finish(grad_main(m, argc, argv));
}

int pl_cmd_eval(const PlModel *m, int argc, char **argv)
{
	return pl_dist_finish(eval_main(m, argc, argv));
}

int pl_main(const PlModel *m, int argc, char **argv)
{
	pl_set_progname(argc > 0 ? argv[0] : NULL);
	if (pl_model_check(m) < 0)
		return PL_EXIT_INTERNAL;
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
		FILE *f = argc < 2 ? stderr : stdout;
		fprintf(f, main_usage, pl_progname(), pl_progname(), m->name ? m->name : "?", m->hash ? m->hash : "?",
			m->in_size, m->pred_size, m->out_size, m->n_params);
		return argc < 2 ? PL_EXIT_USER : 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("%s (plastc runtime %s, ABI %d)\n", pl_progname(), PACKAGE_VERSION, PL_ABI_VERSION);
		return 0;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "train") == 0)
		return pl_cmd_train(m, argc - 1, argv + 1);
	if (strcmp(cmd, "bench") == 0)
		return pl_cmd_bench(m, argc - 1, argv + 1);
	if (strcmp(cmd, "eval") == 0)
		return pl_cmd_eval(m, argc - 1, argv + 1);
	if (strcmp(cmd, "grad") == 0)
		return pl_cmd_grad(m, argc - 1, argv + 1);
	if (strcmp(cmd, "init") == 0)
		return pl_cmd_init(m, argc - 1, argv + 1);
	pl_err("unknown command '%s' (train, eval, grad, init; see %s --help)", cmd, pl_progname());
	return PL_EXIT_USER;
}
