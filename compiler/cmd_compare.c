/* compiler/cmd_compare.c -- the `plastc compare` and `plastc plot` commands: flags in, grid out.
 *
 *   plastc compare MODEL... --task T [--seeds N] [--steps S] [--set k=v]... [--vary k=v1,v2,...]...
 *                  [--jobs J] [--goal min|max] [--logy] [--no-plot] --out DIR [--dry-run] [-- TRAIN-FLAGS...]
 *   plastc plot DIR [--logy]
 */
#include "cmd.h"
#include "compare.h"
#include "diag.h"
#include "frontend.h"
#include "plot.h"
#include "plastrt.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char cmd_compare_usage[] =
	"usage: plastc compare MODEL... --task T --out DIR [options] [-- TRAIN-FLAGS...]\n"
	"\n"
	"Trains every MODEL for every combination of --vary values and every seed, as `plastc train`\n"
	"subprocesses, then writes DIR/summary.csv, DIR/pairs.csv, DIR/summary.md and DIR/plots/.\n"
	"Rerunning the same command skips finished runs and resumes interrupted ones.\n"
	"\n"
	"  --task T            the training task (required)\n"
	"  --out DIR           the output directory (required)\n"
	"  --seeds N           seeds 0..N-1 (default 4, as the reference)\n"
	"  --steps S           training steps per run (default: train's default)\n"
	"  --set K=V           set a model constant in every run (repeatable)\n"
	"  --vary K=V1,V2,...  one variant per value (repeatable: all combinations)\n"
	"  --jobs J            runs at once (default: number of cores)\n"
	"  --goal min|max      whether a lower or higher metric is better (default: max for fsc/classification\n"
	"                      tasks, else min); picks the best-validation step\n"
	"  --logy              logarithmic y axis for the learning curves\n"
	"  --no-plot           skip the plots\n"
	"  --dry-run           print the runs and what would happen to each; change nothing\n"
	"  -- TRAIN-FLAGS      everything after `--` goes to every `plastc train` unchanged\n"
	"\n"
	"Environment: PLASTC_COMPARE_TRAINER runs that program instead of this plastc (as PROGRAM train ...).\n";

const char cmd_plot_usage[] =
	"usage: plastc plot DIR [--logy]\n"
	"\n"
	"Redraws DIR/plots/ (learning curves and test-metric bars, PNG and SVG) from the run directories of\n"
	"a `plastc compare` output directory. Needs gnuplot (Debian package gnuplot-nox).\n";

static char *dupstr(const char *s)
{
	char *r = strdup(s);
	if (!r) {
		fprintf(stderr, "plastc: internal error: out of memory\n");
		exit(2);
	}
	return r;
}

static void strv_push(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof **v);
	if (!nv) {
		fprintf(stderr, "plastc: internal error: out of memory\n");
		exit(2);
	}
	*v = nv;
	(*v)[(*n)++] = dupstr(s);
}

static bool parse_count(const char *flag, const char *s, long min, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (*s == 0 || *end || errno || v < min) {
		fprintf(stderr, "plastc: error: %s '%s': expected an integer >= %ld\n", flag, s, min);
		return false;
	}
	*out = v;
	return true;
}

/* The value of a flag given as `--flag VALUE` or `--flag=VALUE`; advances *i past it. NULL (with an
 * error printed) when it is missing. Sets *matched when argv[*i] is this flag. */
static const char *flag_value(int argc, char **argv, int *i, const char *flag, bool *matched)
{
	size_t n = strlen(flag);
	const char *a = argv[*i];
	*matched = false;
	if (strncmp(a, flag, n) != 0 || (a[n] != 0 && a[n] != '='))
		return NULL;
	*matched = true;
	if (a[n] == '=')
		return a + n + 1;
	if (*i + 1 >= argc) {
		fprintf(stderr, "plastc: error: %s needs a value\n", flag);
		return NULL;
	}
	return argv[++*i];
}

static size_t key_len(const char *kv)
{
	const char *eq = strchr(kv, '=');
	return eq ? (size_t)(eq - kv) : strlen(kv);
}

static bool valid_set(const char *kv)
{
	const char *eq = strchr(kv, '=');
	if (!eq || eq == kv || eq[1] == 0)
		return false;
	if (!(isalpha((unsigned char)kv[0]) || kv[0] == '_'))
		return false;
	for (const char *p = kv; p < eq; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_'))
			return false;
	return true;
}

/* The trainer: $PLASTC_COMPARE_TRAINER, or this very executable (so a grid never mixes plastc
 * versions with whatever `plastc` PATH would find). */
static char *trainer_path(void)
{
	const char *env = getenv("PLASTC_COMPARE_TRAINER");
	if (env && *env)
		return dupstr(env);
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	if (n <= 0) {
		fprintf(stderr, "plastc: internal error: cannot find the plastc executable (/proc/self/exe): %s\n",
			strerror(errno));
		exit(2);
	}
	buf[n] = 0;
	return dupstr(buf);
}

static bool default_goal_max(const char *task)
{
	return strncmp(task, "fsc", 3) == 0 || strcmp(task, "oneshot") == 0 || strstr(task, "class") != NULL;
}

static int parse_compare(int argc, char **argv, CmpSpec *s, bool *no_plot)
{
	memset(s, 0, sizeof *s);
	s->seeds = 4;
	s->steps = -1;
	int goal = -1;
	*no_plot = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v;
		bool m;
		long n;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(cmd_compare_usage, stdout);
			return -1;
		}
		if (strcmp(a, "--") == 0) {
			for (i++; i < argc; i++)
				strv_push(&s->extra, &s->nextra, argv[i]);
			break;
		}
		if (strcmp(a, "--dry-run") == 0) {
			s->dry_run = true;
			continue;
		}
		if (strcmp(a, "--logy") == 0) {
			s->logy = true;
			continue;
		}
		if (strcmp(a, "--no-plot") == 0) {
			*no_plot = true;
			continue;
		}
		if ((v = flag_value(argc, argv, &i, "--task", &m)) || m) {
			if (!v)
				return 1;
			free(s->task);
			s->task = dupstr(v);
		} else if ((v = flag_value(argc, argv, &i, "--out", &m)) || m) {
			if (!v)
				return 1;
			free(s->out);
			s->out = dupstr(v);
		} else if ((v = flag_value(argc, argv, &i, "--seeds", &m)) || m) {
			if (!v || !parse_count("--seeds", v, 1, &n) || n > 100000)
				return 1;
			s->seeds = (int)n;
		} else if ((v = flag_value(argc, argv, &i, "--steps", &m)) || m) {
			if (!v || !parse_count("--steps", v, 0, &n))
				return 1;
			s->steps = n;
		} else if ((v = flag_value(argc, argv, &i, "--jobs", &m)) || m) {
			if (!v || !parse_count("--jobs", v, 1, &n) || n > 4096)
				return 1;
			s->jobs = (int)n;
		} else if ((v = flag_value(argc, argv, &i, "--goal", &m)) || m) {
			if (!v)
				return 1;
			if (strcmp(v, "min") != 0 && strcmp(v, "max") != 0) {
				fprintf(stderr, "plastc: error: --goal '%s': expected min or max\n", v);
				return 1;
			}
			goal = strcmp(v, "max") == 0;
		} else if ((v = flag_value(argc, argv, &i, "--set", &m)) || m) {
			if (!v)
				return 1;
			if (!valid_set(v)) {
				fprintf(stderr, "plastc: error: --set '%s': expected NAME=VALUE\n", v);
				return 1;
			}
			strv_push(&s->sets, &s->nsets, v);
		} else if ((v = flag_value(argc, argv, &i, "--vary", &m)) || m) {
			if (!v)
				return 1;
			CmpVary vy;
			if (!cmp_vary_parse(v, &vy))
				return 1;
			CmpVary *nv = realloc(s->varies, (s->nvaries + 1) * sizeof *nv);
			if (!nv) {
				fprintf(stderr, "plastc: internal error: out of memory\n");
				exit(2);
			}
			s->varies = nv;
			s->varies[s->nvaries++] = vy;
		} else if (a[0] == '-' && a[1] != 0) {
			fprintf(stderr, "plastc: error: compare: unknown flag '%s'\n"
				"hint: flags meant for `plastc train` go after `--`\n", a);
			return 1;
		} else {
			strv_push(&s->models, &s->nmodels, a);
		}
	}
	if (s->nmodels == 0 || !s->task || !s->out) {
		fprintf(stderr, "plastc: error: compare needs at least one MODEL, --task and --out\n"
			"(plastc compare --help shows the usage)\n");
		return 1;
	}
	for (size_t i = 0; i < s->nmodels; i++) {
		struct stat st;
		if (stat(s->models[i], &st) != 0 || !S_ISREG(st.st_mode)) {
			fprintf(stderr, "plastc: error: %s: %s\n", s->models[i],
				errno == ENOENT || !S_ISREG(st.st_mode) ? "no such model file" : strerror(errno));
			return 1;
		}
	}
	/* One key, one source of values: a key both set and varied, or varied twice, is ambiguous. */
	for (size_t i = 0; i < s->nsets; i++)
		for (size_t j = i + 1; j < s->nsets; j++)
			if (key_len(s->sets[i]) == key_len(s->sets[j]) &&
			    strncmp(s->sets[i], s->sets[j], key_len(s->sets[i])) == 0) {
				fprintf(stderr, "plastc: error: --set gives '%.*s' twice\n", (int)key_len(s->sets[i]),
					s->sets[i]);
				return 1;
			}
	for (size_t k = 0; k < s->nvaries; k++) {
		for (size_t j = k + 1; j < s->nvaries; j++)
			if (strcmp(s->varies[k].key, s->varies[j].key) == 0) {
				fprintf(stderr, "plastc: error: --vary gives '%s' twice\n", s->varies[k].key);
				return 1;
			}
		for (size_t i = 0; i < s->nsets; i++)
			if (key_len(s->sets[i]) == strlen(s->varies[k].key) &&
			    strncmp(s->sets[i], s->varies[k].key, key_len(s->sets[i])) == 0) {
				fprintf(stderr, "plastc: error: '%s' is given by both --set and --vary\n", s->varies[k].key);
				return 1;
			}
	}
	s->goal = goal < 0 ? (default_goal_max(s->task) ? CMP_GOAL_MAX : CMP_GOAL_MIN) :
		goal ? CMP_GOAL_MAX : CMP_GOAL_MIN;
	return 0;
}

/* Creates DIR and its parents. */
static bool make_dirs(const char *path)
{
	char *p = dupstr(path);
	bool ok = true;
	for (char *s = p + 1; ok && *s; s++)
		if (*s == '/') {
			*s = 0;
			ok = mkdir(p, 0777) == 0 || errno == EEXIST;
			*s = '/';
		}
	ok = ok && (mkdir(p, 0777) == 0 || errno == EEXIST);
	if (!ok)
		fprintf(stderr, "plastc: error: %s: cannot create directory: %s\n", path, strerror(errno));
	free(p);
	return ok;
}

/* Checks every variant's model with its --set and --vary values, as `plastc check` would, so that a
 * misspelt constant fails now with a located message instead of in every run of the grid. Only when
 * the trainer is plastc itself: another trainer (PLASTC_COMPARE_TRAINER) may read other files. */
static bool preflight(const CmpGrid *g)
{
	const CmpSpec *s = g->spec;
	size_t nsets = s->nsets + s->nvaries;
	char **sets = calloc(nsets ? nsets : 1, sizeof *sets);
	if (!sets) {
		fprintf(stderr, "plastc: internal error: out of memory\n");
		exit(2);
	}
	bool ok = true;
	for (size_t v = 0; v < g->nvariants && ok; v++) {
		for (size_t i = 0; i < s->nsets; i++)
			sets[i] = s->sets[i];
		for (size_t k = 0; k < s->nvaries; k++)
			sets[s->nsets + k] = g->variants[v].settings[k];
		DiagCtx *d = diag_ctx_new(stderr);
		Frontend *fe = frontend_parse(s->models[g->variants[v].model], d);
		if (fe && diag_error_count(d) == 0)
			frontend_check(fe, (int)nsets, sets, d);
		if (!fe || diag_error_count(d) > 0) {
			fprintf(stderr, "plastc: error: variant %s: %s does not check with these settings; no run started\n",
				g->variants[v].name, s->models[g->variants[v].model]);
			ok = false;
		}
		frontend_free(fe);
		diag_ctx_free(d);
	}
	free(sets);
	return ok;
}

int cmd_compare(int argc, char **argv)
{
	CmpSpec spec;
	bool no_plot;
	int prc = parse_compare(argc, argv, &spec, &no_plot);
	if (prc != 0) {
		cmp_spec_free(&spec);
		return prc < 0 ? 0 : 1;
	}
	CmpGrid g;
	if (!cmp_grid_build(&spec, &g)) {
		cmp_spec_free(&spec);
		return 1;
	}
	char *trainer = trainer_path();
	const char *env = getenv("PLASTC_COMPARE_TRAINER");
	int rc;
	/* Under mpirun (plastc built --with-mpi) rank 0 does everything a single-machine compare does and
	 * hands runs out to the other ranks (compare.c); they only run what they are given. */
	if (pl_dist_init() < 0) {
		free(trainer);
		cmp_grid_free(&g);
		cmp_spec_free(&spec);
		return 1;
	}
	int rank = pl_dist_rank(), nranks = pl_dist_size(), ok = 0;
	if (rank > 0) {
		pl_dist_bcast_for(&ok, sizeof ok, "compare: waiting for rank 0's checks", 0);
		rc = ok ? cmp_work_grid(&g, trainer) : 1;
		pl_dist_bcast_for(&rc, sizeof rc, "compare: waiting for the end of the grid", 0);
	} else if ((!env || !*env) && !preflight(&g)) {
		rc = 1;
	} else if (spec.dry_run) {
		rc = cmp_run_grid(&g, trainer, NULL);
	} else if (!make_dirs(spec.out) || !cmp_spec_save(&spec, &g)) {
		rc = 1;
	} else {
		ok = 1;
		pl_dist_bcast_for(&ok, sizeof ok, "compare: waiting for rank 0's checks", 0);
		if (nranks > 1)
			fprintf(stderr, "plastc: compare over %d MPI ranks\n", nranks);
		rc = cmp_run_grid(&g, trainer, stderr);
		if (rc == 0 || rc == 1) {
			if (!cmp_summary_write(&g))
				rc = 1;
			else
				printf("plastc: wrote %s/summary.md, %s/summary.csv and %s/pairs.csv\n", spec.out, spec.out,
					spec.out);
			if (!no_plot && plot_grid(&g) != 0)
				rc = 1;
		}
	}
	if (rank == 0 && nranks > 1) {
		/* the other ranks wait for the checks (unless the grid started) and for the exit status */
		if (!ok)
			pl_dist_bcast_for(&ok, sizeof ok, "compare: waiting for rank 0's checks", 0);
		pl_dist_bcast_for(&rc, sizeof rc, "compare: waiting for the end of the grid", 0);
	}
	rc = pl_dist_finish(rc);
	free(trainer);
	cmp_grid_free(&g);
	cmp_spec_free(&spec);
	return rc;
}

int cmd_plot(int argc, char **argv)
{
	const char *dir = NULL;
	bool logy = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(cmd_plot_usage, stdout);
			return 0;
		}
		if (strcmp(argv[i], "--logy") == 0) {
			logy = true;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "plastc: error: plot: unknown flag '%s'\n(plastc plot --help shows the usage)\n", argv[i]);
			return 1;
		} else if (dir) {
			fprintf(stderr, "plastc: error: plot takes one DIR\n(plastc plot --help shows the usage)\n");
			return 1;
		} else {
			dir = argv[i];
		}
	}
	if (!dir) {
		fprintf(stderr, "plastc: error: plot needs a DIR (the --out of plastc compare)\n"
			"(plastc plot --help shows the usage)\n");
		return 1;
	}
	CmpSpec spec;
	if (!cmp_spec_load(dir, &spec))
		return 1;
	spec.logy = spec.logy || logy;
	CmpGrid g;
	int rc = 1;
	if (cmp_grid_build(&spec, &g)) {
		rc = plot_grid(&g);
		cmp_grid_free(&g);
	}
	cmp_spec_free(&spec);
	return rc;
}
