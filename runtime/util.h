/* runtime/util.h -- helpers shared by the runtime's own files (not part of the ABI, not installed).
 * Every symbol is prefixed pl_ because the runtime links into user programs. */
#ifndef PLASTRT_UTIL_H
#define PLASTRT_UTIL_H

#include "plastrt.h"

#if defined(__GNUC__)
#define PL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PL_PRINTF(a, b)
#endif

/* "<progname>: error: ..." on stderr (a newline is added). */
void pl_err(const char *fmt, ...) PL_PRINTF(1, 2);
const char *pl_progname(void);
double pl_now(void); /* monotonic seconds */
/* mkdir -p: creates PATH and its missing parents (mode 0777 & umask); 0, or -1 with errno set. */
int pl_mkdir_p(const char *path);

/* Parameter buffers: one pl_alloc per tensor. Ownership: the caller frees with pl_params_free. */
float **pl_params_alloc(const PlModel *m);
void pl_params_free(const PlModel *m, float **p);
/* Adds every parameter (name = prefix + parameter name) as F32. */
int pl_params_to_st(const PlModel *m, PlSt *st, const char *prefix, float *const *params);
/* Loads every parameter from st, checking names and shapes; what = the file name for messages. */
int pl_params_from_st(const PlModel *m, const PlSt *st, const char *what, const char *prefix,
		float *const *params, char *err, size_t errlen);

/* pl_bptt_run on the first `rows` (<= the planned B) rows of the buffers; with accumulate != 0 the
 * gradients are added to grads instead of overwriting them (sequential row blocks of one batch). */
/* The batch statistics of each step of b's last training run: [T, nrun] floats, the running params' values
 * in parameter order (nrun = pl_model_running; NULL when 0). */
const float *pl_bptt_bn_stats(const PlBptt *b, int *nrun);
PlBpttResult pl_bptt_run_rows(PlBptt *b, int rows, float *const *params, const float *x, const float *target,
		const float *mask, int ld, int B_global, float *const *grads, int accumulate);
/* Profiling: with it on, the time spent in step_forward and step_vjp is summed; pl_bptt_profile adds
 * the sums to *fwd and *vjp (seconds) and resets them. */
void pl_bptt_set_profile(PlBptt *b, int on);
void pl_bptt_profile(PlBptt *b, double *fwd, double *vjp);

/* Data-parallel BPTT over threads: the B rows of a batch are split into row blocks, each run by its own
 * PlBptt on its own thread with B_global = B, and the per-thread gradients are summed. With one thread
 * it is a plain pl_bptt_run. Ownership: a PlEngine owns its PlBptts and gradient buffers. */
typedef struct PlEngine PlEngine;
PlEngine *pl_engine_new(const PlModel *m, int B, int T, PlBpttStrategy s, int k, int threads);
/* The same with each thread's rows run in sequential blocks of `block` rows (0: one block); engine.c
 * says why. */
PlEngine *pl_engine_new_block(const PlModel *m, int B, int T, PlBpttStrategy s, int k, int threads, int block);
int pl_engine_block(const PlEngine *e); /* rows per block of thread 0 */
void pl_engine_set_profile(PlEngine *e, int on);
size_t pl_phys_mem(void); /* bytes of RAM */
/* The automatic choices: STORE if its buffers for `threads` blocks of `rows` rows fit in 40% of RAM, else
 * RECOMPUTE; the rows per sequential block for a thread's `rows` rows (0: one block). */
PlBpttStrategy pl_auto_bptt(const PlModel *m, int rows, int T, int k, int threads);
int pl_auto_block(const PlModel *m, int rows);
/* Seconds in step_forward / step_vjp since the last call, averaged over the threads. */
void pl_engine_profile(PlEngine *e, double *fwd, double *vjp);
void pl_engine_free(PlEngine *e);
/* grads NULL: forward only. Returns the batch's loss and metric. */
PlBpttResult pl_engine_run(PlEngine *e, float *const *params, const float *x, const float *target,
		const float *mask, float *const *grads);

/* ---- Miconi 2016 tasks (task_miconi.c; task.c dispatches to them) ---- */

/* Ownership: a PlMiconiTask owns its scratch; pl_miconi_task_free releases it. */
typedef struct PlMiconiTask PlMiconiTask;
typedef struct PlMiconiInfo {
	int T, n_in, n_pred;
	PlLoss loss;
	char desc[160];
} PlMiconiInfo;
int pl_miconi_is_task(const char *name); /* completion | oneshot_pattern | reversal */
/* NULL with a message in err on a bad option; fills info on success. */
PlMiconiTask *pl_miconi_task_new(const char *name, int n_opts, const char *const *opts, PlMiconiInfo *info,
		char *err, size_t errlen);
void pl_miconi_task_free(PlMiconiTask *t);
void pl_miconi_task_sample(const PlMiconiTask *t, PlRng *r, int B, float *x, float *target, float *mask);
/* Miconi's RMSprop step (optim_rmsprop.c); pl_opt_step calls it when cfg.kind is PL_OPT_RMSPROP_MICONI. */
void pl_opt_step_rmsprop_miconi(PlOpt *o, float *const *params, float *const *grads);

#endif

/* ---- command-line helpers ---- */

/* A task and its options as given on the command line (--task, --task-opt k=v, --n, --m, --K, --fn). */
#define PL_MAX_TASK_OPTS 16
typedef struct PlTaskSpec {
	char name[32];
	int n_opts;
	char opts[PL_MAX_TASK_OPTS][64];
} PlTaskSpec;
/* 1 if `flag` is a task flag (then applied, or -1 after an error message), 0 if not. */
int pl_task_flag(PlTaskSpec *ts, const char *flag, const char *value);
/* Creates the task, prints the error and returns NULL if it fails or does not fit the model. */
PlTask *pl_task_from_spec(const PlTaskSpec *ts, const PlModel *m);

/* Splits argv[*i] into a flag name (without "--") and its value, advancing *i past a separate value.
 * `boolean` lists flags that take no value ("help quiet"). Returns 0, or -1 after an error message. */
int pl_next_flag(int argc, char **argv, int *i, const char *cmd, const char *boolean, char *name,
		size_t name_len, const char **value);
int pl_parse_long(const char *flag, const char *v, long lo, long hi, long *out);
int pl_parse_u64(const char *flag, const char *v, uint64_t *out);
int pl_parse_double(const char *flag, const char *v, double lo, double hi, double *out);
/* "store", "recompute", "recompute:K" or "auto" (*auto_ = 1). */
int pl_parse_bptt(const char *v, PlBpttStrategy *s, int *k, int *auto_);
