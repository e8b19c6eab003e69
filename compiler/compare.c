/* compiler/compare.c -- the grid of `plastc compare`: variants, run directories, metrics.csv, the
 * subprocess scheduler with resume, compare.json, and the summary tables.
 *
 * Why subprocesses and not threads: every run is an ordinary `plastc train` whose output directory is
 * self-contained, so a grid can be interrupted at any moment (Ctrl-C, a killed job, a reboot) and rerun:
 * finished runs are recognised on disk and skipped, interrupted ones continue from their checkpoint.
 * The state of the grid lives only in the run directories; compare keeps nothing in memory that a rerun
 * would need.
 *
 * Over MPI ranks (`mpirun -np N plastc compare ...`, plastc built --with-mpi), rank 0 keeps this
 * scheduler and the grid's bookkeeping and hands runs out dynamically: every rank (rank 0 included) runs
 * up to --jobs runs at once as subprocesses on its own node; a rank with a free slot asks rank 0, which
 * answers with the longest pending run (the same pick_job as on one machine) or "no more". A finished
 * remote run is reported back with its exit status, and rank 0 marks it exactly as a local one. The run
 * directories must be on a filesystem all ranks share; the summary and plots are rank 0's, from the same
 * files, hence identical to a single-machine compare.
 */
#include "compare.h"
#include "stats.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "plastrt.h"

/* ---- small helpers ---- */

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "plastc: internal error: out of memory\n");
		exit(2);
	}
	return p;
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

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p) {
		fprintf(stderr, "plastc: internal error: out of memory\n");
		exit(2);
	}
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	return memcpy(xmalloc(n), s, n);
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *s = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* mkdir -p: every missing component of path. */
static bool mkdir_p(const char *path)
{
	char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0777) != 0 && errno != EEXIST) {
			free(p);
			return false;
		}
		*s = '/';
	}
	bool ok = mkdir(p, 0777) == 0 || errno == EEXIST;
	free(p);
	return ok;
}

/* Writes text to path through a temporary file and rename(2), so a reader (or a rerun after a crash)
 * sees either the old file or the whole new one, never half of it. */
static bool write_atomic(const char *path, const char *text)
{
	char *tmp = xasprintf("%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	bool ok = f != NULL;
	if (f) {
		ok = fputs(text, f) >= 0;
		ok = fflush(f) == 0 && ok;
		ok = fsync(fileno(f)) == 0 && ok;
		ok = fclose(f) == 0 && ok;
	}
	if (ok)
		ok = rename(tmp, path) == 0;
	if (!ok)
		unlink(tmp);
	free(tmp);
	return ok;
}

static char *read_small_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t cap = 256, len = 0;
	char *buf = xmalloc(cap);
	size_t n;
	while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (len + 1 >= cap)
			buf = xrealloc(buf, cap *= 2);
	}
	fclose(f);
	buf[len] = 0;
	return buf;
}

static bool is_identifier(const char *s, size_t n)
{
	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
			return false;
	return true;
}

/* ---- spec and grid ---- */

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void cmp_spec_free(CmpSpec *s)
{
	strv_free(s->models, s->nmodels);
	free(s->task);
	strv_free(s->sets, s->nsets);
	for (size_t i = 0; i < s->nvaries; i++) {
		free(s->varies[i].key);
		strv_free(s->varies[i].values, s->varies[i].nvalues);
	}
	free(s->varies);
	strv_free(s->extra, s->nextra);
	free(s->out);
	memset(s, 0, sizeof *s);
}

bool cmp_vary_parse(const char *arg, CmpVary *v)
{
	memset(v, 0, sizeof *v);
	const char *eq = strchr(arg, '=');
	if (!eq || !is_identifier(arg, (size_t)(eq - arg))) {
		fprintf(stderr, "plastc: error: --vary '%s': expected NAME=V1,V2,... with NAME a constant of the model\n",
			arg);
		return false;
	}
	v->key = xmalloc((size_t)(eq - arg) + 1);
	memcpy(v->key, arg, (size_t)(eq - arg));
	v->key[eq - arg] = 0;
	const char *p = eq + 1;
	for (;;) {
		const char *c = strchr(p, ',');
		size_t n = c ? (size_t)(c - p) : strlen(p);
		if (n == 0) {
			fprintf(stderr, "plastc: error: --vary '%s': empty value\n", arg);
			free(v->key);
			strv_free(v->values, v->nvalues);
			memset(v, 0, sizeof *v);
			return false;
		}
		char *val = xmalloc(n + 1);
		memcpy(val, p, n);
		val[n] = 0;
		for (size_t i = 0; i < v->nvalues; i++)
			if (strcmp(v->values[i], val) == 0) {
				fprintf(stderr, "plastc: error: --vary '%s': value '%s' given twice\n", arg, val);
				free(val);
				free(v->key);
				strv_free(v->values, v->nvalues);
				memset(v, 0, sizeof *v);
				return false;
			}
		v->values = xrealloc(v->values, (v->nvalues + 1) * sizeof *v->values);
		v->values[v->nvalues++] = val;
		if (!c)
			break;
		p = c + 1;
	}
	return true;
}

char *cmp_safe_name(const char *s)
{
	char *r = xstrdup(s);
	for (char *p = r; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-' || *p == '+'))
			*p = '_';
	/* A name must not be "." or ".." or start with '.' (hidden, or a path component). */
	if (r[0] == '.')
		r[0] = '_';
	return r;
}

/* The file name of a model without directory and without ".plast". */
static char *model_stem(const char *path)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	size_t n = strlen(b);
	if (n > 6 && strcmp(b + n - 6, ".plast") == 0)
		n -= 6;
	char *s = xmalloc(n + 1);
	memcpy(s, b, n);
	s[n] = 0;
	return s;
}

/* The stem with its parent directory in front ("cue_reward-rnn_hebbian"), to tell apart models of the
 * same name from different task folders. */
static char *model_long_stem(const char *path)
{
	char *stem = model_stem(path);
	const char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return stem;
	const char *start = slash;
	while (start > path && start[-1] != '/')
		start--;
	char *r = xasprintf("%.*s-%s", (int)(slash - start), start, stem);
	free(stem);
	return r;
}

bool cmp_grid_build(const CmpSpec *spec, CmpGrid *g)
{
	memset(g, 0, sizeof *g);
	g->spec = spec;
	size_t combos = 1;
	for (size_t k = 0; k < spec->nvaries; k++)
		combos *= spec->varies[k].nvalues;
	/* Model stems, made longer where two models share one. */
	char **stems = xcalloc(spec->nmodels, sizeof *stems);
	for (size_t m = 0; m < spec->nmodels; m++)
		stems[m] = model_stem(spec->models[m]);
	bool *clash = xcalloc(spec->nmodels, sizeof *clash);
	for (size_t m = 0; m < spec->nmodels; m++)
		for (size_t o = 0; o < spec->nmodels; o++)
			if (o != m && strcmp(stems[o], stems[m]) == 0)
				clash[m] = true;
	for (size_t m = 0; m < spec->nmodels; m++) {
		char *base = clash[m] ? model_long_stem(spec->models[m]) : xstrdup(stems[m]);
		free(stems[m]);
		stems[m] = cmp_safe_name(base);
		free(base);
	}
	free(clash);
	g->nvariants = spec->nmodels * combos;
	g->variants = xcalloc(g->nvariants, sizeof *g->variants);
	size_t vi = 0;
	for (size_t m = 0; m < spec->nmodels; m++) {
		for (size_t c = 0; c < combos; c++, vi++) {
			CmpVariant *v = &g->variants[vi];
			v->model = m;
			v->settings = xcalloc(spec->nvaries, sizeof *v->settings);
			char *name = xstrdup(stems[m]);
			/* Mixed radix: the last --vary key varies fastest. */
			size_t rest = c, div = combos;
			for (size_t k = 0; k < spec->nvaries; k++) {
				const CmpVary *vy = &spec->varies[k];
				div /= vy->nvalues;
				const char *val = vy->values[rest / div];
				rest %= div;
				v->settings[k] = xasprintf("%s=%s", vy->key, val);
				char *safe = cmp_safe_name(val);
				char *nn = xasprintf("%s.%s-%s", name, vy->key, safe);
				free(safe);
				free(name);
				name = nn;
			}
			v->name = name;
		}
	}
	strv_free(stems, spec->nmodels);
	for (size_t a = 0; a < g->nvariants; a++)
		for (size_t b = a + 1; b < g->nvariants; b++)
			if (strcmp(g->variants[a].name, g->variants[b].name) == 0) {
				fprintf(stderr, "plastc: error: two runs of the grid would share the directory '%s' "
					"(a model given twice, or --vary values that differ only in characters "
					"unsafe in file names)\n", g->variants[a].name);
				cmp_grid_free(g);
				return false;
			}
	return true;
}

void cmp_grid_free(CmpGrid *g)
{
	for (size_t i = 0; i < g->nvariants; i++) {
		free(g->variants[i].name);
		strv_free(g->variants[i].settings, g->spec ? g->spec->nvaries : 0);
	}
	free(g->variants);
	memset(g, 0, sizeof *g);
}

char *cmp_run_dir(const CmpGrid *g, size_t variant, int seed)
{
	return xasprintf("%s/%s/seed-%d", g->spec->out, g->variants[variant].name, seed);
}

/* ---- metrics.csv ---- */

typedef struct ValRow {
	long step;
	size_t order; /* line order, so that the last of repeated rows wins */
	double metric, loss;
} ValRow;

static int valrow_cmp(const void *a, const void *b)
{
	const ValRow *x = a, *y = b;
	if (x->step != y->step)
		return x->step < y->step ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Splits a CSV line (no quoting: every field of metrics.csv is a number or a bare word) in place. */
static size_t split_csv(char *line, char **fields, size_t max)
{
	size_t n = 0;
	char *p = line;
	while (n < max) {
		fields[n++] = p;
		char *c = strchr(p, ',');
		if (!c)
			break;
		*c = 0;
		p = c + 1;
	}
	return n;
}

static bool parse_double(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s)
		return false;
	while (isspace((unsigned char)*end))
		end++;
	if (*end)
		return false;
	*out = v;
	return true;
}

bool cmp_metrics_load(const char *path, CmpMetrics *m)
{
	memset(m, 0, sizeof *m);
	m->last_step = -1;
	m->test_metric = m->test_loss = NAN;
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int col_step = -1, col_split = -1, col_loss = -1, col_metric = -1, col_sec = -1;
	bool header = false;
	ValRow *rows = NULL;
	size_t nrows = 0, rcap = 0, order = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (len == 0)
			continue;
		char *fld[16];
		size_t nf = split_csv(line, fld, 16);
		if (!header) {
			for (size_t i = 0; i < nf; i++) {
				if (strcmp(fld[i], "step") == 0)
					col_step = (int)i;
				else if (strcmp(fld[i], "split") == 0)
					col_split = (int)i;
				else if (strcmp(fld[i], "loss") == 0)
					col_loss = (int)i;
				else if (strcmp(fld[i], "metric") == 0)
					col_metric = (int)i;
				else if (strcmp(fld[i], "seconds") == 0)
					col_sec = (int)i;
			}
			if (col_step < 0 || col_split < 0 || col_metric < 0)
				break;
			header = true;
			continue;
		}
		/* A line cut short by a killed run is ignored, not an error: it is the last one and the
		 * resumed run writes its step again. */
		if ((int)nf <= col_step || (int)nf <= col_split || (int)nf <= col_metric)
			continue;
		double step_d, metric, loss = NAN, sec = NAN;
		if (!parse_double(fld[col_step], &step_d) || !parse_double(fld[col_metric], &metric))
			continue;
		if (col_loss >= 0 && (int)nf > col_loss)
			parse_double(fld[col_loss], &loss);
		if (col_sec >= 0 && (int)nf > col_sec)
			parse_double(fld[col_sec], &sec);
		long step = (long)step_d;
		if (step > m->last_step)
			m->last_step = step;
		if (!isnan(sec) && !(sec <= m->seconds))
			m->seconds = sec;
		const char *split = fld[col_split];
		if (strcmp(split, "test") == 0) {
			m->has_test = true;
			m->test_metric = metric;
			m->test_loss = loss;
		} else if (strcmp(split, "val") == 0) {
			if (nrows == rcap)
				rows = xrealloc(rows, (rcap = rcap ? 2 * rcap : 64) * sizeof *rows);
			rows[nrows++] = (ValRow){ step, order, metric, loss };
		}
		order++;
	}
	free(line);
	fclose(f);
	if (!header) {
		free(rows);
		return false;
	}
	if (nrows)
		qsort(rows, nrows, sizeof *rows, valrow_cmp);
	m->val_step = xcalloc(nrows, sizeof *m->val_step);
	m->val_metric = xcalloc(nrows, sizeof *m->val_metric);
	m->val_loss = xcalloc(nrows, sizeof *m->val_loss);
	for (size_t i = 0; i < nrows; i++) {
		if (i + 1 < nrows && rows[i + 1].step == rows[i].step)
			continue; /* a later row of the same step follows */
		m->val_step[m->nval] = rows[i].step;
		m->val_metric[m->nval] = rows[i].metric;
		m->val_loss[m->nval] = rows[i].loss;
		m->nval++;
	}
	free(rows);
	return true;
}

void cmp_metrics_free(CmpMetrics *m)
{
	free(m->val_step);
	free(m->val_metric);
	free(m->val_loss);
	memset(m, 0, sizeof *m);
	m->last_step = -1;
}

long cmp_metrics_best_val_step(const CmpMetrics *m, CmpGoal goal)
{
	long best = -1;
	double bv = NAN;
	for (size_t i = 0; i < m->nval; i++) {
		double v = m->val_metric[i];
		if (isnan(v))
			continue;
		if (best < 0 || (goal == CMP_GOAL_MIN ? v < bv : v > bv)) {
			best = m->val_step[i];
			bv = v;
		}
	}
	return best;
}

CmpRunState cmp_run_state(const char *run_dir)
{
	char *p = xasprintf("%s/done", run_dir);
	char *done = read_small_file(p);
	free(p);
	if (done) {
		CmpRunState st = strncmp(done, "diverged", 8) == 0 ? CMP_RUN_DIVERGED : CMP_RUN_DONE;
		free(done);
		return st;
	}
	/* A test row means the trainer finished even if compare died before writing `done`. */
	p = xasprintf("%s/metrics.csv", run_dir);
	CmpMetrics m;
	bool finished = cmp_metrics_load(p, &m) && m.has_test;
	cmp_metrics_free(&m);
	free(p);
	if (finished)
		return CMP_RUN_DONE;
	p = xasprintf("%s/checkpoint.safetensors", run_dir);
	bool ckpt = file_exists(p);
	free(p);
	return ckpt ? CMP_RUN_RESUME : CMP_RUN_FRESH;
}

/* ---- compare.json ---- */

static json_t *strv_json(char **v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static bool json_strv(json_t *a, char ***v, size_t *n)
{
	*v = NULL;
	*n = 0;
	if (!json_is_array(a))
		return false;
	*v = xcalloc(json_array_size(a), sizeof **v);
	for (size_t i = 0; i < json_array_size(a); i++) {
		const char *s = json_string_value(json_array_get(a, i));
		if (!s)
			return false;
		(*v)[(*n)++] = xstrdup(s);
	}
	return true;
}

/* The part of the spec that must match for old and new runs to be comparable. */
static json_t *spec_base_json(const CmpSpec *spec)
{
	return json_pack("{s:s, s:I, s:o, s:o, s:s}", "task", spec->task, "steps", (json_int_t)spec->steps,
		"set", strv_json(spec->sets, spec->nsets), "extra", strv_json(spec->extra, spec->nextra),
		"goal", spec->goal == CMP_GOAL_MAX ? "max" : "min");
}

bool cmp_spec_save(const CmpSpec *spec, const CmpGrid *g)
{
	char *path = xasprintf("%s/compare.json", spec->out);
	json_t *base = spec_base_json(spec);
	json_error_t err;
	json_t *old = json_load_file(path, 0, &err);
	if (old) {
		json_t *old_base = json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?}", "task", json_object_get(old, "task"),
			"steps", json_object_get(old, "steps"), "set", json_object_get(old, "set"),
			"extra", json_object_get(old, "extra"), "goal", json_object_get(old, "goal"));
		bool same = old_base && json_equal(old_base, base);
		json_decref(old_base);
		json_decref(old);
		if (!same) {
			fprintf(stderr, "plastc: error: %s: this directory holds a grid made with a different --task, "
				"--steps, --set, --goal or extra training flags; its runs would not be comparable\n"
				"hint: use another --out directory, or repeat the original settings\n", path);
			json_decref(base);
			free(path);
			return false;
		}
	}
	json_t *varies = json_array();
	for (size_t k = 0; k < spec->nvaries; k++)
		json_array_append_new(varies, json_pack("{s:s, s:o}", "key", spec->varies[k].key, "values",
			strv_json(spec->varies[k].values, spec->varies[k].nvalues)));
	json_t *variants = json_array();
	for (size_t i = 0; i < g->nvariants; i++)
		json_array_append_new(variants, json_pack("{s:s, s:s, s:o}", "name", g->variants[i].name,
			"model", spec->models[g->variants[i].model], "settings",
			strv_json(g->variants[i].settings, spec->nvaries)));
	json_object_set_new(base, "models", strv_json(spec->models, spec->nmodels));
	json_object_set_new(base, "seeds", json_integer(spec->seeds));
	json_object_set_new(base, "vary", varies);
	json_object_set_new(base, "variants", variants);
	json_object_set_new(base, "logy", json_boolean(spec->logy));
	char *text = json_dumps(base, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(base);
	char *withnl = xasprintf("%s\n", text);
	free(text);
	bool ok = write_atomic(path, withnl);
	if (!ok)
		fprintf(stderr, "plastc: error: %s: cannot write: %s\n", path, strerror(errno));
	free(withnl);
	free(path);
	return ok;
}

bool cmp_spec_load(const char *dir, CmpSpec *spec)
{
	memset(spec, 0, sizeof *spec);
	char *path = xasprintf("%s/compare.json", dir);
	json_error_t err;
	json_t *j = json_load_file(path, 0, &err);
	if (!j) {
		if (!file_exists(path))
			fprintf(stderr, "plastc: error: %s: no such file; is %s the --out directory of plastc compare?\n",
				path, dir);
		else
			fprintf(stderr, "plastc: error: %s:%d: %s\n", path, err.line, err.text);
		free(path);
		return false;
	}
	bool ok = true;
	const char *task = json_string_value(json_object_get(j, "task"));
	const char *goal = json_string_value(json_object_get(j, "goal"));
	json_t *varies = json_object_get(j, "vary");
	ok = task && goal && json_is_integer(json_object_get(j, "steps")) &&
		json_is_integer(json_object_get(j, "seeds")) && json_is_array(varies);
	if (ok) {
		spec->task = xstrdup(task);
		spec->goal = strcmp(goal, "max") == 0 ? CMP_GOAL_MAX : CMP_GOAL_MIN;
		spec->steps = (long)json_integer_value(json_object_get(j, "steps"));
		spec->seeds = (int)json_integer_value(json_object_get(j, "seeds"));
		spec->logy = json_is_true(json_object_get(j, "logy"));
		ok = json_strv(json_object_get(j, "models"), &spec->models, &spec->nmodels) &&
			json_strv(json_object_get(j, "set"), &spec->sets, &spec->nsets) &&
			json_strv(json_object_get(j, "extra"), &spec->extra, &spec->nextra);
	}
	if (ok) {
		spec->varies = xcalloc(json_array_size(varies), sizeof *spec->varies);
		for (size_t k = 0; ok && k < json_array_size(varies); k++) {
			json_t *v = json_array_get(varies, k);
			const char *key = json_string_value(json_object_get(v, "key"));
			if (!key) {
				ok = false;
				break;
			}
			spec->varies[k].key = xstrdup(key);
			spec->nvaries++;
			ok = json_strv(json_object_get(v, "values"), &spec->varies[k].values, &spec->varies[k].nvalues) &&
				spec->varies[k].nvalues > 0;
		}
	}
	json_decref(j);
	if (!ok) {
		fprintf(stderr, "plastc: error: %s: not a grid written by plastc compare (missing or malformed fields)\n",
			path);
		cmp_spec_free(spec);
	} else {
		spec->out = xstrdup(dir);
	}
	free(path);
	return ok;
}

/* ---- the scheduler ---- */

typedef struct Job {
	size_t variant;
	int seed;
	char *dir;
	CmpRunState state; /* at the start of this compare */
	pid_t pid;         /* 0 for a run on another rank */
	bool started, finished, failed;
	time_t t0;
} Job;

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

/* The command of one run: a NULL-terminated array of strings, all owned by it (argv_free). */
static char **job_argv(const CmpGrid *g, const Job *j, const char *trainer)
{
	const CmpSpec *s = g->spec;
	const CmpVariant *v = &g->variants[j->variant];
	size_t cap = 16 + 2 * (s->nsets + s->nvaries) + s->nextra;
	char **argv = xcalloc(cap, sizeof *argv);
	size_t n = 0;
	argv[n++] = xstrdup(trainer);
	argv[n++] = xstrdup("train");
	argv[n++] = xstrdup(s->models[v->model]);
	argv[n++] = xstrdup("--task");
	argv[n++] = xstrdup(s->task);
	argv[n++] = xstrdup("--seed");
	argv[n++] = xasprintf("%d", j->seed);
	if (s->steps >= 0) {
		argv[n++] = xstrdup("--steps");
		argv[n++] = xasprintf("%ld", s->steps);
	}
	for (size_t i = 0; i < s->nsets; i++) {
		argv[n++] = xstrdup("--set");
		argv[n++] = xstrdup(s->sets[i]);
	}
	for (size_t i = 0; i < s->nvaries; i++) {
		argv[n++] = xstrdup("--set");
		argv[n++] = xstrdup(v->settings[i]);
	}
	/* `train --resume DIR` continues DIR's run in DIR (the runtime refuses a different --out). */
	argv[n++] = xstrdup(j->state == CMP_RUN_RESUME ? "--resume" : "--out");
	argv[n++] = xstrdup(j->dir);
	for (size_t i = 0; i < s->nextra; i++)
		argv[n++] = xstrdup(s->extra[i]);
	argv[n] = NULL;
	return argv;
}

static void argv_free(char **argv)
{
	for (size_t i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
}

/* Shell-quotes one word for printing a command a user can paste. */
static void print_word(FILE *f, const char *w)
{
	bool plain = *w != 0;
	for (const char *p = w; *p; p++)
		if (!(isalnum((unsigned char)*p) || strchr("-_./=,+:@%", *p)))
			plain = false;
	if (plain) {
		fputs(w, f);
		return;
	}
	fputc('\'', f);
	for (const char *p = w; *p; p++) {
		if (*p == '\'')
			fputs("'\\''", f);
		else
			fputc(*p, f);
	}
	fputc('\'', f);
}

static void print_argv(FILE *f, char **argv)
{
	for (size_t i = 0; argv[i]; i++) {
		if (i)
			fputc(' ', f);
		print_word(f, argv[i]);
	}
	fputc('\n', f);
}

/* Seconds per training step of a variant, measured from the metrics.csv of any of its runs (finished or
 * not), or NAN when none has reached step 1 yet. */
static double variant_rate(const CmpGrid *g, const Job *jobs, size_t njobs, size_t variant)
{
	double sum = 0;
	int n = 0;
	for (size_t i = 0; i < njobs; i++) {
		if (jobs[i].variant != variant)
			continue;
		char *p = xasprintf("%s/metrics.csv", jobs[i].dir);
		CmpMetrics m;
		if (cmp_metrics_load(p, &m) && m.last_step > 0 && m.seconds > 0) {
			sum += m.seconds / (double)m.last_step;
			n++;
		}
		cmp_metrics_free(&m);
		free(p);
	}
	(void)g;
	return n ? sum / n : NAN;
}

/* Picks the pending job expected to take longest: (remaining steps) × (seconds per step of its variant,
 * measured from runs already under way; the mean over measured variants for the others). The longest
 * run started first finishes the grid soonest (LPT scheduling). Before anything is measured all costs
 * tie and the grid order applies, which is seed-major so that every variant gets measured early. */
static Job *pick_job(const CmpGrid *g, Job *jobs, size_t njobs)
{
	double *rate = xcalloc(g->nvariants, sizeof *rate);
	double rsum = 0;
	int rn = 0;
	for (size_t v = 0; v < g->nvariants; v++) {
		rate[v] = variant_rate(g, jobs, njobs, v);
		if (!isnan(rate[v])) {
			rsum += rate[v];
			rn++;
		}
	}
	double rdefault = rn ? rsum / rn : 1;
	Job *best = NULL;
	double bcost = -1;
	for (size_t i = 0; i < njobs; i++) {
		Job *j = &jobs[i];
		if (j->started || j->state == CMP_RUN_DONE || j->state == CMP_RUN_DIVERGED)
			continue;
		double remaining = g->spec->steps > 0 ? (double)g->spec->steps : 1;
		if (j->state == CMP_RUN_RESUME) {
			char *p = xasprintf("%s/metrics.csv", j->dir);
			CmpMetrics m;
			if (cmp_metrics_load(p, &m) && m.last_step > 0)
				remaining = g->spec->steps > 0 ? fmax(1, (double)(g->spec->steps - m.last_step)) : 0.5;
			cmp_metrics_free(&m);
			free(p);
		}
		double cost = remaining * (isnan(rate[j->variant]) ? rdefault : rate[j->variant]);
		if (cost > bcost) {
			best = j;
			bcost = cost;
		}
	}
	free(rate);
	return best;
}

/* The cores of this rank: the node's, shared with the other ranks of the run on the same node. */
static long rank_cores(void)
{
	long c = sysconf(_SC_NPROCESSORS_ONLN) / pl_dist_local_size();
	return c > 1 ? c : 1;
}

static bool job_start(const CmpGrid *g, Job *j, const char *trainer, int jobs_at_once)
{
	if (!mkdir_p(j->dir)) {
		fprintf(stderr, "plastc: error: %s: cannot create directory: %s\n", j->dir, strerror(errno));
		return false;
	}
	if (j->state == CMP_RUN_FRESH) {
		/* Leftovers of a run killed before its first checkpoint would mix with the new rows. */
		char *p = xasprintf("%s/metrics.csv", j->dir);
		unlink(p);
		free(p);
	}
	char *logp = xasprintf("%s/log.txt", j->dir);
	int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
	if (fd < 0) {
		fprintf(stderr, "plastc: error: %s: cannot open: %s\n", logp, strerror(errno));
		free(logp);
		return false;
	}
	free(logp);
	char **argv = job_argv(g, j, trainer);
	FILE *lf = fdopen(dup(fd), "a");
	if (lf) {
		time_t now = time(NULL);
		char ts[64];
		strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", localtime(&now));
		fprintf(lf, "# plastc compare: %s %s", j->state == CMP_RUN_RESUME ? "resumed" : "started", ts);
		if (pl_dist_size() > 1) {
			char host[256] = "?";
			gethostname(host, sizeof host - 1);
			fprintf(lf, " on MPI rank %d of %d (%s)", pl_dist_rank(), pl_dist_size(), host);
		}
		fputs("\n# ", lf);
		print_argv(lf, argv);
		fclose(lf);
	}
	/* Threads per run: the cores shared among the runs, unless the user chose. */
	char threads[32];
	long cores = rank_cores();
	snprintf(threads, sizeof threads, "%ld", cores / jobs_at_once > 1 ? cores / jobs_at_once : 1);
	pid_t parent = getpid();
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "plastc: error: cannot start a run: fork: %s\n", strerror(errno));
		close(fd);
		argv_free(argv);
		return false;
	}
	if (pid == 0) {
		/* The run dies with compare even when compare is killed with SIGKILL, so a rerun never races
		 * an orphan writing into the same directory. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(1);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		setenv("OPENBLAS_NUM_THREADS", threads, 0);
		pl_dist_scrub_env(); /* a run is not a rank */
		execv(trainer, argv);
		dprintf(2, "plastc: error: %s: cannot run: %s\n", trainer, strerror(errno));
		_exit(127);
	}
	close(fd);
	argv_free(argv);
	j->pid = pid;
	j->started = true;
	j->t0 = time(NULL);
	return true;
}

typedef struct Progress {
	size_t total, skipped, done, failed, running, resumed;
	time_t t0;
	bool tty;
	FILE *out;
} Progress;

/* On a terminal the line is redrawn in place on every event and tick; into a file or pipe, one line is
 * written at the start and one per finished run (force). */
static void progress_print(const Progress *p, bool final, bool force)
{
	if (!p->out || (!p->tty && !force))
		return;
	long el = (long)(time(NULL) - p->t0);
	size_t finished = p->skipped + p->done + p->failed;
	const int width = 24;
	int fill = p->total ? (int)((double)finished / (double)p->total * width) : width;
	char bar[32];
	for (int i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[width] = 0;
	fprintf(p->out, "%scompare [%s] %zu/%zu runs finished (%zu skipped, %zu resumed, %zu failed), %zu running, "
		"%ld:%02ld elapsed%s", p->tty ? "\r\033[K" : "", bar, finished, p->total, p->skipped, p->resumed,
		p->failed, p->running, el / 60, el % 60, p->tty && !final ? "" : "\n");
	fflush(p->out);
}

static void job_finish(const CmpGrid *g, Job *j, int status, Progress *pr)
{
	(void)g;
	j->finished = true;
	pr->running--;
	char *metrics = xasprintf("%s/metrics.csv", j->dir);
	char *donep = xasprintf("%s/done", j->dir);
	if (WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 3)) {
		CmpMetrics m;
		bool has_test = cmp_metrics_load(metrics, &m) && m.has_test;
		cmp_metrics_free(&m);
		if (WEXITSTATUS(status) == 3) {
			write_atomic(donep, "diverged\n");
			pr->done++;
		} else if (has_test) {
			write_atomic(donep, "ok\n");
			pr->done++;
		} else {
			if (pr->tty)
				fputs("\r\033[K", stderr);
			fprintf(stderr, "plastc: error: %s: the trainer exited successfully but wrote no test row to %s\n",
				j->dir, metrics);
			j->failed = true;
			pr->failed++;
		}
	} else if (!interrupted) {
		if (pr->tty)
			fputs("\r\033[K", stderr);
		if (WIFEXITED(status))
			fprintf(stderr, "plastc: error: %s: run failed with exit status %d; see %s/log.txt\n", j->dir,
				WEXITSTATUS(status), j->dir);
		else
			fprintf(stderr, "plastc: error: %s: run killed by signal %d; see %s/log.txt\n", j->dir,
				WTERMSIG(status), j->dir);
		j->failed = true;
		pr->failed++;
	}
	free(metrics);
	free(donep);
}

/* The grid's runs in seed-major order: seed 0 of every variant first (see pick_job). Every rank builds
 * the same array, so a run is named by its index. */
static Job *jobs_make(const CmpGrid *g, size_t *njobs)
{
	const CmpSpec *s = g->spec;
	*njobs = g->nvariants * (size_t)s->seeds;
	Job *jobs = xcalloc(*njobs, sizeof *jobs);
	size_t n = 0;
	for (int seed = 0; seed < s->seeds; seed++)
		for (size_t v = 0; v < g->nvariants; v++, n++) {
			jobs[n].variant = v;
			jobs[n].seed = seed;
			jobs[n].dir = cmp_run_dir(g, v, seed);
			jobs[n].state = cmp_run_state(jobs[n].dir);
		}
	return jobs;
}

/* Rank 0's side of a message from a worker rank: {finished run or -1, its wait status}. Records the
 * finished run, then answers with the next run to start ({index, state}) or {-1, 0}: no more. */
static void serve_worker(const CmpGrid *g, Job *jobs, size_t njobs, int from, const int msg[2], Progress *pr,
	bool *told)
{
	if (msg[0] >= 0 && (size_t)msg[0] < njobs && jobs[msg[0]].started && !jobs[msg[0]].finished) {
		job_finish(g, &jobs[msg[0]], msg[1], pr);
		progress_print(pr, false, true);
	}
	Job *j = interrupted ? NULL : pick_job(g, jobs, njobs);
	int reply[2] = {-1, 0};
	if (j) {
		reply[0] = (int)(j - jobs);
		reply[1] = (int)j->state;
		j->started = true;
		j->pid = 0;
		j->t0 = time(NULL);
		pr->running++;
		if (j->state == CMP_RUN_RESUME)
			pr->resumed++;
		progress_print(pr, false, false);
	} else
		told[from] = true;
	pl_dist_send_ints(from, reply, 2, "compare: answering a rank");
}

int cmp_run_grid(const CmpGrid *g, const char *trainer, FILE *progress)
{
	const CmpSpec *s = g->spec;
	size_t njobs;
	Job *jobs = jobs_make(g, &njobs);
	int nranks = s->dry_run ? 1 : pl_dist_size();
	bool *told = xcalloc((size_t)nranks, sizeof *told); /* rank r was answered "no more" */
	told[0] = true;
	int jobs_at_once = s->jobs > 0 ? s->jobs : (int)rank_cores();
	if (jobs_at_once < 1)
		jobs_at_once = 1;
	Progress pr = { .total = njobs, .t0 = time(NULL), .out = progress,
		.tty = progress && isatty(fileno(progress)) };
	for (size_t i = 0; i < njobs; i++)
		if (jobs[i].state == CMP_RUN_DONE || jobs[i].state == CMP_RUN_DIVERGED)
			pr.skipped++;

	if (s->dry_run) {
		/* The order the scheduler would start them in, with what it would do. */
		for (Job *j; (j = pick_job(g, jobs, njobs)) != NULL;) {
			char **argv = job_argv(g, j, trainer);
			printf("%s  ", j->state == CMP_RUN_RESUME ? "resume" : "run   ");
			print_argv(stdout, argv);
			argv_free(argv);
			j->started = true;
		}
		for (size_t i = 0; i < njobs; i++)
			if (jobs[i].state == CMP_RUN_DONE || jobs[i].state == CMP_RUN_DIVERGED)
				printf("skip    %s (%s)\n", jobs[i].dir, jobs[i].state == CMP_RUN_DONE ? "finished" : "diverged");
		printf("%zu runs: %zu to run, %zu finished, %d at once\n", njobs, njobs - pr.skipped, pr.skipped,
			jobs_at_once);
		for (size_t i = 0; i < njobs; i++)
			free(jobs[i].dir);
		free(jobs);
		free(told);
		return 0;
	}

	struct sigaction sa = { .sa_handler = on_signal }, old_int, old_term;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: the sleep of the polling loop returns early so that the loop notices. */
	interrupted = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);

	progress_print(&pr, false, true);
	bool start_failed = false, killed = false;
	unsigned ticks = 0;
	size_t local = 0; /* runs of this process (pr.running also counts the other ranks') */
	for (;;) {
		while (!interrupted && !start_failed && local < (size_t)jobs_at_once) {
			Job *j = pick_job(g, jobs, njobs);
			if (!j)
				break;
			if (!job_start(g, j, trainer, jobs_at_once)) {
				start_failed = true;
				j->started = j->finished = j->failed = true;
				pr.failed++;
				break;
			}
			pr.running++;
			local++;
			if (j->state == CMP_RUN_RESUME)
				pr.resumed++;
			progress_print(&pr, false, false);
		}
		/* the other ranks' requests and reports */
		int msg[2], from;
		while (nranks > 1 && pl_dist_recv_ints(&from, msg, 2, "compare: a rank's request") > 0)
			serve_worker(g, jobs, njobs, from, msg, &pr, told);
		bool all_told = true;
		for (int r = 0; r < nranks; r++)
			all_told = all_told && told[r];
		if (pr.running == 0 && all_told)
			break;
		if (interrupted && !killed) {
			for (size_t i = 0; i < njobs; i++)
				if (jobs[i].started && !jobs[i].finished && jobs[i].pid > 0)
					kill(jobs[i].pid, SIGTERM);
			killed = true;
			if (nranks > 1) {
				/* the other ranks' runs end with their ranks (their runs die with them) */
				fprintf(stderr, "plastc: compare interrupted; rerun the same command to continue (finished runs "
					"are kept)\n");
				pl_dist_abort(128 + (int)interrupted);
			}
		}
		/* Poll rather than block in waitpid: a signal that lands between the check above and a
		 * blocking wait would otherwise go unnoticed until a run ends. The sleep is cut short by
		 * signals, and the tick keeps the elapsed time on the progress line moving. */
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid == 0 || (pid < 0 && errno == ECHILD && nranks > 1)) {
			struct timespec ts = { 0, 100 * 1000 * 1000 };
			nanosleep(&ts, NULL);
			if (++ticks % 10 == 0)
				progress_print(&pr, false, false);
			continue;
		}
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (size_t i = 0; i < njobs; i++)
			if (jobs[i].started && !jobs[i].finished && jobs[i].pid == pid && pid > 0) {
				job_finish(g, &jobs[i], status, &pr);
				local--;
				break;
			}
		progress_print(&pr, false, true);
	}
	if (pr.tty)
		progress_print(&pr, true, false);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	int rc = pr.failed ? 1 : 0;
	if (interrupted) {
		fprintf(stderr, "plastc: compare interrupted; rerun the same command to continue (finished runs are kept)\n");
		rc = 128 + (int)interrupted;
	}
	for (size_t i = 0; i < njobs; i++)
		free(jobs[i].dir);
	free(jobs);
	free(told);
	return rc;
}

int cmp_work_grid(const CmpGrid *g, const char *trainer)
{
	size_t njobs;
	Job *jobs = jobs_make(g, &njobs);
	int slots = g->spec->jobs > 0 ? g->spec->jobs : (int)rank_cores();
	int running = 0;
	bool outstanding = false, no_more = false;
	/* finished runs not yet reported: {index, wait status} pairs */
	int *reports = xcalloc(2 * njobs + 2, sizeof *reports);
	size_t nrep = 0;
	for (;;) {
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			for (size_t i = 0; i < njobs; i++)
				if (jobs[i].started && !jobs[i].finished && jobs[i].pid == pid) {
					jobs[i].finished = true;
					running--;
					reports[2 * nrep] = (int)i;
					reports[2 * nrep + 1] = status;
					nrep++;
					break;
				}
		/* one message at a time, each answered: a report (which also asks for a run) or a request */
		if (!outstanding && (nrep > 0 || (!no_more && running < slots))) {
			int msg[2] = {-1, 0};
			if (nrep > 0) {
				nrep--;
				msg[0] = reports[2 * nrep];
				msg[1] = reports[2 * nrep + 1];
			}
			pl_dist_send_ints(0, msg, 2, "compare: asking rank 0 for a run");
			outstanding = true;
		}
		int reply[2], from;
		if (outstanding && pl_dist_recv_ints(&from, reply, 2, "compare: rank 0's answer") > 0) {
			outstanding = false;
			if (reply[0] >= 0 && (size_t)reply[0] < njobs) {
				Job *j = &jobs[reply[0]];
				j->state = (CmpRunState)reply[1];
				if (job_start(g, j, trainer, slots))
					running++;
				else {
					/* reported like a run that could not be executed */
					j->started = j->finished = true;
					reports[2 * nrep] = reply[0];
					reports[2 * nrep + 1] = 127 << 8;
					nrep++;
				}
			} else
				no_more = true;
		}
		if (no_more && running == 0 && nrep == 0 && !outstanding)
			break;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	for (size_t i = 0; i < njobs; i++)
		free(jobs[i].dir);
	free(jobs);
	free(reports);
	return 0;
}

/* ---- runs on disk ---- */

/* The trainer's own choice of best-validation step (run.json: result.best_step), or -1. */
static long run_json_best_step(const char *dir)
{
	char *p = xasprintf("%s/run.json", dir);
	json_error_t err;
	json_t *j = json_load_file(p, 0, &err);
	free(p);
	json_t *b = json_object_get(json_object_get(j, "result"), "best_step");
	long step = json_is_integer(b) ? (long)json_integer_value(b) : -1;
	json_decref(j);
	return step;
}

void cmp_variant_runs_load(const CmpGrid *g, size_t variant, CmpVariantRuns *r)
{
	int n = g->spec->seeds;
	r->nseeds = n;
	r->state = xcalloc((size_t)n, sizeof *r->state);
	r->metrics = xcalloc((size_t)n, sizeof *r->metrics);
	r->best_step = xcalloc((size_t)n, sizeof *r->best_step);
	for (int s = 0; s < n; s++) {
		char *dir = cmp_run_dir(g, variant, s);
		r->state[s] = cmp_run_state(dir);
		char *p = xasprintf("%s/metrics.csv", dir);
		if (!cmp_metrics_load(p, &r->metrics[s]))
			cmp_metrics_free(&r->metrics[s]);
		free(p);
		/* The trainer knows which validation number it selected on (loss, or accuracy for
		 * classification); without its run.json, the goal's extreme of the val metric. */
		r->best_step[s] = run_json_best_step(dir);
		if (r->best_step[s] < 0)
			r->best_step[s] = cmp_metrics_best_val_step(&r->metrics[s], g->spec->goal);
		free(dir);
	}
}

void cmp_variant_runs_free(CmpVariantRuns *r)
{
	for (int s = 0; s < r->nseeds; s++)
		cmp_metrics_free(&r->metrics[s]);
	free(r->state);
	free(r->metrics);
	free(r->best_step);
	memset(r, 0, sizeof *r);
}

bool cmp_run_usable(const CmpVariantRuns *r, int seed)
{
	return r->state[seed] == CMP_RUN_DONE && r->metrics[seed].has_test && isfinite(r->metrics[seed].test_metric);
}

/* ---- the summary ---- */

/* %.6g, or "" for a missing value (NAN) in CSV, "n/a" in Markdown. */
static void put_num(FILE *f, double x, const char *missing)
{
	if (isnan(x))
		fputs(missing, f);
	else
		fprintf(f, "%.6g", x);
}

static void put_num4(FILE *f, double x)
{
	if (isnan(x))
		fputs("n/a", f);
	else
		fprintf(f, "%.4g", x);
}

typedef struct VariantStats {
	StatsSummary test;
	size_t diverged, missing;
	double best_step_mean, seconds_mean;
} VariantStats;

static VariantStats variant_stats(const CmpVariantRuns *r)
{
	VariantStats vs = { 0 };
	double *x = xcalloc((size_t)r->nseeds, sizeof *x);
	double *bs = xcalloc((size_t)r->nseeds, sizeof *bs);
	double *sec = xcalloc((size_t)r->nseeds, sizeof *sec);
	size_t n = 0, nb = 0;
	for (int s = 0; s < r->nseeds; s++) {
		if (cmp_run_usable(r, s)) {
			x[n] = r->metrics[s].test_metric;
			sec[n] = r->metrics[s].seconds;
			n++;
			if (r->best_step[s] >= 0)
				bs[nb++] = (double)r->best_step[s];
		} else if (r->state[s] == CMP_RUN_DIVERGED || r->state[s] == CMP_RUN_DONE) {
			vs.diverged++; /* exit status 3, or a finished run whose test metric is not finite */
		} else {
			vs.missing++;
		}
	}
	vs.test = stats_summary(x, n);
	vs.best_step_mean = stats_mean(bs, nb);
	vs.seconds_mean = stats_mean(sec, n);
	free(x);
	free(bs);
	free(sec);
	return vs;
}

static FILE *open_out(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		fprintf(stderr, "plastc: error: %s: cannot write: %s\n", path, strerror(errno));
	return f;
}

static bool close_out(FILE *f, const char *path)
{
	bool ok = !ferror(f);
	ok = fclose(f) == 0 && ok;
	if (!ok)
		fprintf(stderr, "plastc: error: %s: write failed\n", path);
	return ok;
}

bool cmp_summary_write(const CmpGrid *g)
{
	const CmpSpec *s = g->spec;
	size_t nv = g->nvariants;
	CmpVariantRuns *runs = xcalloc(nv, sizeof *runs);
	VariantStats *vs = xcalloc(nv, sizeof *vs);
	for (size_t v = 0; v < nv; v++) {
		cmp_variant_runs_load(g, v, &runs[v]);
		vs[v] = variant_stats(&runs[v]);
	}
	/* Paired comparisons over the seeds that both variants finished. */
	size_t npairs = nv * (nv - 1) / 2, pi = 0;
	StatsPaired *pairs = xcalloc(npairs, sizeof *pairs);
	double *a = xcalloc((size_t)s->seeds, sizeof *a), *b = xcalloc((size_t)s->seeds, sizeof *b);
	for (size_t i = 0; i < nv; i++)
		for (size_t j = i + 1; j < nv; j++, pi++) {
			size_t n = 0;
			for (int sd = 0; sd < s->seeds; sd++)
				if (cmp_run_usable(&runs[i], sd) && cmp_run_usable(&runs[j], sd)) {
					a[n] = runs[i].metrics[sd].test_metric;
					b[n] = runs[j].metrics[sd].test_metric;
					n++;
				}
			pairs[pi] = stats_paired(a, b, n);
		}
	free(a);
	free(b);

	bool ok = true;
	char *path = xasprintf("%s/summary.csv", s->out);
	FILE *f = open_out(path);
	if (f) {
		fputs("variant,model", f);
		for (size_t k = 0; k < s->nvaries; k++)
			fprintf(f, ",%s", s->varies[k].key);
		fputs(",n,diverged,missing,mean,sd,sem,ci95_z_lo,ci95_z_hi,ci95_t_lo,ci95_t_hi,"
			"best_val_step_mean,seconds_mean\n", f);
		for (size_t v = 0; v < nv; v++) {
			const CmpVariant *var = &g->variants[v];
			fprintf(f, "%s,%s", var->name, s->models[var->model]);
			for (size_t k = 0; k < s->nvaries; k++)
				fprintf(f, ",%s", strchr(var->settings[k], '=') + 1);
			fprintf(f, ",%zu,%zu,%zu", vs[v].test.n, vs[v].diverged, vs[v].missing);
			double cols[] = { vs[v].test.mean, vs[v].test.sd, vs[v].test.sem, vs[v].test.ci_z_lo,
				vs[v].test.ci_z_hi, vs[v].test.ci_t_lo, vs[v].test.ci_t_hi, vs[v].best_step_mean,
				vs[v].seconds_mean };
			for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
				fputc(',', f);
				put_num(f, cols[c], "");
			}
			fputc('\n', f);
		}
		ok = close_out(f, path) && ok;
	} else {
		ok = false;
	}
	free(path);

	path = xasprintf("%s/pairs.csv", s->out);
	f = open_out(path);
	if (f) {
		fputs("a,b,n,mean_diff,sem,ci95_t_lo,ci95_t_hi,t,df,p\n", f);
		pi = 0;
		for (size_t i = 0; i < nv; i++)
			for (size_t j = i + 1; j < nv; j++, pi++) {
				const StatsPaired *p = &pairs[pi];
				fprintf(f, "%s,%s,%zu", g->variants[i].name, g->variants[j].name, p->n);
				double cols[] = { p->mean_diff, p->sem, p->ci_lo, p->ci_hi, p->t, p->df, p->p };
				for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
					fputc(',', f);
					put_num(f, cols[c], "");
				}
				fputc('\n', f);
			}
		ok = close_out(f, path) && ok;
	} else {
		ok = false;
	}
	free(path);

	path = xasprintf("%s/summary.md", s->out);
	f = open_out(path);
	if (f) {
		fprintf(f, "# plastc compare: task %s, %d seed%s", s->task, s->seeds, s->seeds == 1 ? "" : "s");
		if (s->steps >= 0)
			fprintf(f, ", %ld steps", s->steps);
		fputs("\n\n", f);
		fprintf(f, "Test metric of each run's best-validation checkpoint (%s is better), over the seeds that "
			"finished.\n\n", s->goal == CMP_GOAL_MIN ? "lower" : "higher");
		fputs("- **mean ± 1.96·SEM**: the reference's convention (a normal approximation; too narrow for a few "
			"seeds).\n"
			"- **95% CI (t)**: mean ± t(0.975, n−1)·SEM, Student's t interval (the one to trust with 4 seeds).\n"
			"- **best val step**: the mean over seeds of the step with the best validation metric; "
			"**wall s**: mean seconds per run.\n\n", f);
		fputs("| variant | n | diverged | mean ± 1.96·SEM | 95% CI (t) | SEM | best val step | wall s |\n"
			"|---|---|---|---|---|---|---|---|\n", f);
		for (size_t v = 0; v < nv; v++) {
			const StatsSummary *t = &vs[v].test;
			fprintf(f, "| %s | %zu", g->variants[v].name, t->n);
			if (vs[v].missing)
				fprintf(f, " (%zu missing)", vs[v].missing);
			fprintf(f, " | %zu | ", vs[v].diverged);
			put_num4(f, t->mean);
			fputs(" ± ", f);
			put_num4(f, isnan(t->sem) ? NAN : STATS_Z95 * t->sem);
			fputs(" | [", f);
			put_num4(f, t->ci_t_lo);
			fputs(", ", f);
			put_num4(f, t->ci_t_hi);
			fputs("] | ", f);
			put_num4(f, t->sem);
			fputs(" | ", f);
			put_num4(f, vs[v].best_step_mean);
			fputs(" | ", f);
			put_num4(f, vs[v].seconds_mean);
			fputs(" |\n", f);
		}
		if (npairs) {
			fputs("\n## Paired comparisons (same seeds)\n\n"
				"d = A − B per seed, over the seeds both finished; 95% CI of the mean of d from Student's t "
				"with n−1 degrees of freedom; p: two-sided paired t-test of mean d = 0.\n\n"
				"| A | B | n | mean d | 95% CI (t) | t | p |\n|---|---|---|---|---|---|---|\n", f);
			pi = 0;
			for (size_t i = 0; i < nv; i++)
				for (size_t j = i + 1; j < nv; j++, pi++) {
					const StatsPaired *p = &pairs[pi];
					fprintf(f, "| %s | %s | %zu | ", g->variants[i].name, g->variants[j].name, p->n);
					put_num4(f, p->mean_diff);
					fputs(" | [", f);
					put_num4(f, p->ci_lo);
					fputs(", ", f);
					put_num4(f, p->ci_hi);
					fputs("] | ", f);
					put_num4(f, p->t);
					fputs(" | ", f);
					if (!isnan(p->p) && p->p < 1e-4)
						fputs("< 1e-4", f);
					else
						put_num4(f, p->p);
					fputs(" |\n", f);
				}
		}
		ok = close_out(f, path) && ok;
	} else {
		ok = false;
	}
	free(path);

	for (size_t v = 0; v < nv; v++)
		cmp_variant_runs_free(&runs[v]);
	free(runs);
	free(vs);
	free(pairs);
	return ok;
}
