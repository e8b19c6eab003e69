/* runtime/bench.c -- `BIN bench`: the time of one meta-training step, as bench/torch_step.py measures
 * PyTorch's, and where it goes.
 *
 * A step is what train's loop does per batch: forward over the whole trial, BPTT, clip_grad_norm_ and
 * one AdamW step. The batch is drawn before the clock starts (PyTorch's timing excludes data generation
 * too), so the timed part is pl_engine_run + pl_clip_grad_norm + pl_opt_step. Warm-up steps run first
 * and are not timed (first touch of the buffers, BLAS start-up). Peak memory is this process's ru_maxrss:
 * every buffer is planned before the loop, so it is the whole run's. With --profile the step is split
 * into forward (step_forward calls), VJP (step_vjp calls), the rest of BPTT (losses, state copies),
 * clip + AdamW, and data generation (outside the step). --val-trials N also times forward-only batches
 * (validation: no gradient) and prints trials per second. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cblas.h>

#include "util.h"

static const char bench_usage[] =
	"usage: %s bench --task T [--steps N] [--warmup W] [--batch B] [--threads N] [--block R]\n"
	"                [--bptt store|recompute[:K]|auto] [--seed S] [--val-trials N] [--profile]\n"
	"Times N (default 10) meta-training steps (forward over the trial, BPTT, clip, AdamW; the batch is\n"
	"drawn before the clock starts) after W (default 1) untimed ones and prints\n"
	"  median_ms=X min_ms=Y peak_rss_mb=Z ...\n"
	"--block R runs each thread's rows in sequential blocks of R trials (0 = one block; default auto).\n"
	"--profile adds the split fwd_ms= vjp_ms= bptt_other_ms= opt_ms= data_ms= (medians per step).\n"
	"--val-trials N adds val_trials_per_s= (forward only, no gradient, N trials). Task flags as for train.\n";

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* CPU seconds of the whole process (all threads): on a machine shared with other jobs the wall time of a
 * step grows with the load, its CPU time much less, so both are printed. */
static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

int pl_cmd_bench(const PlModel *m, int argc, char **argv)
{
	PlTaskSpec ts;
	memset(&ts, 0, sizeof ts);
	long steps = 10, warmup = 1, batch = 64, threads = 1, block = -1, val_trials = 0;
	uint64_t seed = 0;
	PlBpttStrategy strat = PL_BPTT_STORE;
	int k = 0, bauto = 1, profile = 0;
	for (int i = 1; i < argc; i++) {
		char name[64];
		const char *v;
		if (pl_next_flag(argc, argv, &i, "bench", "help profile", name, sizeof name, &v) < 0)
			return PL_EXIT_USER;
		int r = pl_task_flag(&ts, name, v);
		if (r < 0)
			return PL_EXIT_USER;
		if (r)
			continue;
		if (strcmp(name, "help") == 0) {
			printf(bench_usage, pl_progname());
			return 0;
		} else if (strcmp(name, "profile") == 0)
			profile = 1;
		else if (strcmp(name, "steps") == 0) {
			if (pl_parse_long(name, v, 1, 1000000L, &steps) < 0)
				return PL_EXIT_USER;
		} else if (strcmp(name, "warmup") == 0) {
			if (pl_parse_long(name, v, 0, 1000000L, &warmup) < 0)
				return PL_EXIT_USER;
		} else if (strcmp(name, "batch") == 0) {
			if (pl_parse_long(name, v, 1, 1000000L, &batch) < 0)
				return PL_EXIT_USER;
		} else if (strcmp(name, "threads") == 0) {
			if (pl_parse_long(name, v, 1, 64, &threads) < 0)
				return PL_EXIT_USER;
		} else if (strcmp(name, "block") == 0) {
			if (pl_parse_long(name, v, 0, 1000000L, &block) < 0)
				return PL_EXIT_USER;
		} else if (strcmp(name, "val-trials") == 0) {
			if (pl_parse_long(name, v, 0, 100000000L, &val_trials) < 0)
				return PL_EXIT_USER;
		} else if (strcmp(name, "seed") == 0) {
			if (pl_parse_u64(name, v, &seed) < 0)
				return PL_EXIT_USER;
		} else if (strcmp(name, "bptt") == 0) {
			if (pl_parse_bptt(v, &strat, &k, &bauto) < 0)
				return PL_EXIT_USER;
		} else {
			pl_err("bench: unknown flag --%s (see %s bench --help)", name, pl_progname());
			return PL_EXIT_USER;
		}
	}
	PlTask *task = pl_task_from_spec(&ts, m);
	if (!task)
		return PL_EXIT_USER;
	int T = pl_task_T(task), B = (int)batch;
	if (threads > B)
		threads = B;
	int rows = (B + (int)threads - 1) / (int)threads;
	if (block < 0)
		block = pl_auto_block(m, rows);
	int brows = block > 0 && block < rows ? (int)block : rows;
	if (k <= 0)
		k = (int)ceil(sqrt((double)T));
	if (bauto)
		strat = pl_auto_bptt(m, brows, T, k, (int)threads);
	int rc = PL_EXIT_INTERNAL;
	float **params = pl_params_alloc(m), **grads = pl_params_alloc(m);
	float *x = pl_alloc((size_t)T * B * m->in_size * sizeof(float));
	float *target = pl_alloc((size_t)T * B * m->pred_size * sizeof(float));
	float *mask = pl_alloc((size_t)T * sizeof(float));
	PlOptConfig oc;
	pl_opt_defaults(&oc);
	PlOpt *opt = pl_opt_new(m, &oc);
	PlEngine *eng = pl_engine_new_block(m, B, T, strat, k, (int)threads, (int)block);
	double *ms = calloc((size_t)steps, sizeof *ms), *fw = calloc((size_t)steps, sizeof *fw);
	double *vj = calloc((size_t)steps, sizeof *vj), *ot = calloc((size_t)steps, sizeof *ot);
	double *dt = calloc((size_t)steps, sizeof *dt), *cpu = calloc((size_t)steps, sizeof *cpu);
	if (!params || !grads || !x || !target || !mask || !opt || !eng || !ms || !fw || !vj || !ot || !dt || !cpu) {
		pl_err("out of memory planning the benchmark");
		goto out;
	}
	pl_init_params(m, seed, params);
	PlRng rng;
	pl_rng_seed2(&rng, seed, 0x747261696eULL);
	pl_engine_set_profile(eng, profile);
	printf("bench: model %s, task %s (T=%d), batch %d, %ld thread%s, block %d, bptt %s",
		m->name ? m->name : "?", pl_task_describe(task), T, B, threads, threads == 1 ? "" : "s",
		pl_engine_block(eng), strat == PL_BPTT_STORE ? "store" : "recompute");
	if (strat == PL_BPTT_RECOMPUTE)
		printf(":%d", k);
	printf("%s, %ld warm-up + %ld timed steps\n", bauto ? " (auto)" : "", warmup, steps);
	fflush(stdout);
	double loss0 = 0.0;
	for (long s = 0; s < warmup + steps; s++) {
		double t0 = pl_now();
		pl_task_sample(task, &rng, B, x, target, mask);
		double t1 = pl_now(), c1 = cpu_now();
		PlBpttResult r = pl_engine_run(eng, params, x, target, mask, grads);
		double t2 = pl_now();
		pl_clip_grad_norm(m, grads, oc.clip);
		pl_opt_step(opt, params, grads);
		double t3 = pl_now(), c3 = cpu_now();
		if (!r.finite) {
			pl_err("bench: the loss became non-finite at step %ld", s + 1);
			rc = PL_EXIT_DIVERGED;
			goto out;
		}
		if (s == 0)
			loss0 = r.loss;
		double f = 0.0, v = 0.0;
		pl_engine_profile(eng, &f, &v);
		if (s >= warmup) {
			long i = s - warmup;
			ms[i] = (t3 - t1) * 1e3;
			cpu[i] = (c3 - c1) * 1e3;
			dt[i] = (t1 - t0) * 1e3;
			ot[i] = (t3 - t2) * 1e3;
			fw[i] = f * 1e3;
			vj[i] = v * 1e3;
			if (profile)
				printf("step %ld: %.2f ms (fwd %.2f, vjp %.2f, opt %.2f; data %.2f)\n", i + 1, ms[i], fw[i],
					vj[i], ot[i], dt[i]);
		}
	}
	double mn = ms[0];
	for (long i = 1; i < steps; i++)
		mn = ms[i] < mn ? ms[i] : mn;
	/* bptt_other: the step minus the step calls and the optimiser (losses, state copies, block sums). */
	double med_ms = median(ms, (int)steps), med_fw = median(fw, (int)steps), med_vj = median(vj, (int)steps);
	double med_ot = median(ot, (int)steps), med_dt = median(dt, (int)steps), med_cpu = median(cpu, (int)steps);
	printf("median_ms=%.3f min_ms=%.3f cpu_ms=%.3f peak_rss_mb=%.1f loss0=%.9g", med_ms, mn, med_cpu,
		peak_rss_mb(), loss0);
	if (profile)
		printf(" fwd_ms=%.3f vjp_ms=%.3f bptt_other_ms=%.3f opt_ms=%.3f data_ms=%.3f", med_fw, med_vj,
			med_ms - med_fw - med_vj - med_ot, med_ot, med_dt);
	if (val_trials > 0) {
		long nb = (val_trials + B - 1) / B;
		double tv = 0.0;
		for (long i = 0; i < nb; i++) {
			pl_task_sample(task, &rng, B, x, target, mask);
			double t0 = pl_now();
			pl_engine_run(eng, params, x, target, mask, NULL);
			tv += pl_now() - t0;
		}
		printf(" val_trials_per_s=%.1f", (double)(nb * B) / tv);
	}
	printf("\n");
	rc = 0;
out:
	free(ms);
	free(fw);
	free(vj);
	free(ot);
	free(dt);
	free(cpu);
	pl_engine_free(eng);
	pl_opt_free(opt);
	pl_params_free(m, params);
	pl_params_free(m, grads);
	pl_free(x);
	pl_free(target);
	pl_free(mask);
	pl_task_free(task);
	return rc;
}
