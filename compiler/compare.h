/* compiler/compare.h -- `plastc compare`: a grid of training runs (models × --vary values × seeds), run as
 * `plastc train` subprocesses with resume, then a statistical summary of the grid.
 *
 * Layout of an output directory DIR:
 *   DIR/compare.json              the grid (spec and variant names); `plastc plot DIR` reads it back
 *   DIR/<variant>/seed-<s>/       one run: the trainer's metrics.csv, checkpoint.safetensors, run.json,
 *                                 plus log.txt (the run's stdout and stderr) and done (written atomically
 *                                 when the run has finished: "ok" or "diverged")
 *   DIR/summary.csv, DIR/pairs.csv, DIR/summary.md   per-variant statistics and paired comparisons
 *   DIR/plots/                    gnuplot data, script and figures (plot.h)
 *
 * Ownership: a CmpSpec owns every string and array it points to (cmp_spec_free); a CmpGrid owns its
 * variants and borrows its spec, which must outlive it; a CmpMetrics owns its arrays (cmp_metrics_free).
 */
#ifndef PLASTC_COMPARE_H
#define PLASTC_COMPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* One `--vary key=v1,v2,...`. */
typedef struct CmpVary {
	char *key;
	char **values;
	size_t nvalues;
} CmpVary;

/* Which way the task's metric is better: the best-validation step is its minimum or its maximum. */
typedef enum CmpGoal { CMP_GOAL_MIN, CMP_GOAL_MAX } CmpGoal;

/* Everything the command line says about a grid. */
typedef struct CmpSpec {
	char **models;
	size_t nmodels;
	char *task;
	int seeds;          /* seeds 0 .. seeds-1 */
	long steps;         /* < 0: not given, the trainer's default applies */
	char **sets;        /* "k=v", passed to every run */
	size_t nsets;
	CmpVary *varies;
	size_t nvaries;
	char **extra;       /* flags after `--`, passed to every run */
	size_t nextra;
	CmpGoal goal;
	int jobs;           /* runs at once; <= 0: number of online cores */
	char *out;
	bool dry_run;
	bool logy;          /* log-scale y axis for the learning curves */
} CmpSpec;

/* One point of the grid without the seed: a model and one value per --vary key. */
typedef struct CmpVariant {
	char *name;         /* filesystem-safe, unique: model stem, then ".key-value" per vary key */
	size_t model;       /* index into spec->models */
	char **settings;    /* "key=value", one per spec->varies, in that order */
} CmpVariant;

typedef struct CmpGrid {
	const CmpSpec *spec;
	CmpVariant *variants;
	size_t nvariants;
} CmpGrid;

/* The rows of one run's metrics.csv that the summary and plots need. When a resumed run repeats a
 * (step, split) row, the last one wins. */
typedef struct CmpMetrics {
	long *val_step;     /* validation rows, sorted by step */
	double *val_metric;
	double *val_loss;
	size_t nval;
	bool has_test;
	double test_metric, test_loss;
	long last_step;     /* the largest step of any row; -1 when there is none */
	double seconds;     /* the largest seconds value; the run's wall time */
} CmpMetrics;

/* The state of one run directory. */
typedef enum CmpRunState {
	CMP_RUN_FRESH,      /* nothing usable: start from scratch */
	CMP_RUN_RESUME,     /* interrupted with a checkpoint: continue with --resume */
	CMP_RUN_DONE,       /* finished: skip */
	CMP_RUN_DIVERGED    /* finished with exit status 3 (training diverged): skip, count as diverged */
} CmpRunState;

void cmp_spec_free(CmpSpec *s);
/* Parses "key=v1,v2,..." into v; returns false (and prints `plastc: error: ...`) on a malformed one. */
bool cmp_vary_parse(const char *arg, CmpVary *v);

/* Builds the variants (models outermost, then the --vary keys in order, the last varying fastest).
 * Prints an error and returns false on name clashes. */
bool cmp_grid_build(const CmpSpec *spec, CmpGrid *g);
void cmp_grid_free(CmpGrid *g);
/* A filesystem-safe rendering of s: [A-Za-z0-9._+-] kept, anything else becomes '_'. Caller frees. */
char *cmp_safe_name(const char *s);
/* "DIR/<variant>/seed-<s>" (caller frees). */
char *cmp_run_dir(const CmpGrid *g, size_t variant, int seed);

/* Loads a metrics.csv; returns false when the file is missing or has no usable header. */
bool cmp_metrics_load(const char *path, CmpMetrics *m);
void cmp_metrics_free(CmpMetrics *m);
/* The best validation step under the goal (ties: the earliest); -1 without validation rows. */
long cmp_metrics_best_val_step(const CmpMetrics *m, CmpGoal goal);
CmpRunState cmp_run_state(const char *run_dir);

/* Writes DIR/compare.json. Refuses (error, false) when DIR already holds a grid made with a different
 * task, steps, --set or extra flags, because its runs would not be comparable. */
bool cmp_spec_save(const CmpSpec *spec, const CmpGrid *g);
/* Reads DIR/compare.json back into *spec (out = dir). */
bool cmp_spec_load(const char *dir, CmpSpec *spec);

/* Runs every unfinished run of the grid (or, with dry_run, prints what it would do).
 * trainer: the program to run as `TRAINER train MODEL ...`. Returns 0 when every run finished,
 * 1 when some failed (each is reported), 130/143 when interrupted by SIGINT/SIGTERM. */
int cmp_run_grid(const CmpGrid *g, const char *trainer, FILE *progress);
/* A rank other than 0 of a distributed compare: runs what rank 0's cmp_run_grid hands out until told
 * there is no more work. Returns 0. */
int cmp_work_grid(const CmpGrid *g, const char *trainer);

/* Writes DIR/summary.csv, DIR/pairs.csv and DIR/summary.md from the run directories. */
bool cmp_summary_write(const CmpGrid *g);

/* The seed runs of one variant as loaded from disk, for the summary and the plots.
 * Ownership: owns runs[] and each run's metrics. */
typedef struct CmpVariantRuns {
	int nseeds;
	CmpRunState *state;   /* [nseeds] */
	CmpMetrics *metrics;  /* [nseeds]; zeroed when the run has no metrics.csv */
	long *best_step;      /* [nseeds]; run.json's result.best_step, else from metrics.csv; -1: none */
} CmpVariantRuns;
void cmp_variant_runs_load(const CmpGrid *g, size_t variant, CmpVariantRuns *r);
void cmp_variant_runs_free(CmpVariantRuns *r);
/* A run counts in the statistics when it finished normally with a finite test metric. */
bool cmp_run_usable(const CmpVariantRuns *r, int seed);

#endif
