/* runtime/util.c -- messages, clock, parameter buffers and their safetensors form. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

static char progname[64] = "plastc";

void pl_set_progname(const char *name)
{
	const char *slash = name ? strrchr(name, '/') : NULL;
	snprintf(progname, sizeof progname, "%s", slash ? slash + 1 : (name ? name : "plastc"));
}

const char *pl_progname(void)
{
	return progname;
}

void pl_err(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: error: ", progname);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

double pl_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

float **pl_params_alloc(const PlModel *m)
{
	float **p = pl_alloc((size_t)(m->n_params ? m->n_params : 1) * sizeof *p);
	if (!p)
		return NULL;
	for (int i = 0; i < m->n_params; i++)
		if (!(p[i] = pl_alloc((size_t)pl_desc_numel(&m->params[i]) * sizeof(float)))) {
			pl_params_free(m, p);
			return NULL;
		}
	return p;
}

void pl_params_free(const PlModel *m, float **p)
{
	if (!p)
		return;
	for (int i = 0; i < m->n_params; i++)
		pl_free(p[i]);
	pl_free(p);
}

int pl_params_to_st(const PlModel *m, PlSt *st, const char *prefix, float *const *params)
{
	for (int i = 0; i < m->n_params; i++) {
		char name[512];
		snprintf(name, sizeof name, "%s%s", prefix, m->params[i].name);
		if (pl_st_add_f32(st, name, m->params[i].rank, m->params[i].dims, params[i]) < 0)
			return -1;
	}
	return 0;
}

int pl_params_from_st(const PlModel *m, const PlSt *st, const char *what, const char *prefix,
		float *const *params, char *err, size_t errlen)
{
	for (int i = 0; i < m->n_params; i++) {
		char name[512];
		snprintf(name, sizeof name, "%s%s", prefix, m->params[i].name);
		if (pl_st_get_f32(st, what, name, m->params[i].rank, m->params[i].dims, params[i], err, errlen) < 0)
			return -1;
	}
	return 0;
}

int pl_task_flag(PlTaskSpec *ts, const char *flag, const char *value)
{
	if (strcmp(flag, "task") == 0) {
		if (strlen(value) >= sizeof ts->name) {
			pl_err("--task: unknown task '%s'", value);
			return -1;
		}
		snprintf(ts->name, sizeof ts->name, "%s", value);
		return 1;
	}
	const char *key = NULL;
	if (strcmp(flag, "n") == 0 || strcmp(flag, "m") == 0 || strcmp(flag, "K") == 0 || strcmp(flag, "fn") == 0)
		key = flag;
	else if (strcmp(flag, "task-opt") != 0)
		return 0;
	char opt[64];
	if ((size_t)snprintf(opt, sizeof opt, "%s%s%s", key ? key : "", key ? "=" : "", value) >= sizeof opt) {
		pl_err("--%s: value too long", flag);
		return -1;
	}
	if (!strchr(opt, '=')) {
		pl_err("--task-opt wants key=value, got '%s'", value);
		return -1;
	}
	/* A later value of the same key replaces the earlier one (flags after --resume override). */
	size_t klen = (size_t)(strchr(opt, '=') - opt);
	for (int i = 0; i < ts->n_opts; i++)
		if (strncmp(ts->opts[i], opt, klen + 1) == 0) {
			snprintf(ts->opts[i], sizeof ts->opts[i], "%s", opt);
			return 1;
		}
	if (ts->n_opts == PL_MAX_TASK_OPTS) {
		pl_err("too many task options");
		return -1;
	}
	snprintf(ts->opts[ts->n_opts++], sizeof ts->opts[0], "%s", opt);
	return 1;
}

PlTask *pl_task_from_spec(const PlTaskSpec *ts, const PlModel *m)
{
	char err[512];
	if (!ts->name[0]) {
		pl_err("no task given (--task copy|cue_reward|regression)");
		return NULL;
	}
	const char *opts[PL_MAX_TASK_OPTS];
	for (int i = 0; i < ts->n_opts; i++)
		opts[i] = ts->opts[i];
	PlTask *t = pl_task_new(ts->name, ts->n_opts, opts, err, sizeof err);
	if (!t) {
		pl_err("%s", err);
		return NULL;
	}
	if (pl_task_check_model(t, m, err, sizeof err) < 0) {
		pl_err("%s", err);
		pl_task_free(t);
		return NULL;
	}
	return t;
}

int pl_next_flag(int argc, char **argv, int *i, const char *cmd, const char *boolean, char *name,
		size_t name_len, const char **value)
{
	const char *a = argv[*i];
	*value = NULL;
	if (strcmp(a, "-o") == 0)
		a = "--output";
	else if (strcmp(a, "-h") == 0)
		a = "--help";
	if (a[0] != '-' || a[1] != '-' || a[2] == '\0') {
		pl_err("%s: unexpected argument '%s' (see %s %s --help)", cmd, a, pl_progname(), cmd);
		return -1;
	}
	a += 2;
	const char *eq = strchr(a, '=');
	size_t n = eq ? (size_t)(eq - a) : strlen(a);
	if (n >= name_len) {
		pl_err("%s: unknown flag --%s", cmd, a);
		return -1;
	}
	memcpy(name, a, n);
	name[n] = '\0';
	/* boolean flags: a space-separated list */
	const char *b = boolean;
	while (b && *b) {
		size_t bl = strcspn(b, " ");
		if (bl == n && strncmp(b, name, n) == 0) {
			if (eq) {
				pl_err("%s: flag --%s takes no value", cmd, name);
				return -1;
			}
			return 0;
		}
		b += bl;
		while (*b == ' ')
			b++;
	}
	if (eq)
		*value = eq + 1;
	else if (*i + 1 < argc)
		*value = argv[++*i];
	else {
		pl_err("%s: flag --%s needs a value", cmd, name);
		return -1;
	}
	return 0;
}

int pl_parse_long(const char *flag, const char *v, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno || x < lo || x > hi) {
		pl_err("--%s: '%s' is not an integer in [%ld, %ld]", flag, v, lo, hi);
		return -1;
	}
	*out = x;
	return 0;
}

int pl_parse_u64(const char *flag, const char *v, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (*v == '\0' || *v == '-' || *end != '\0' || errno) {
		pl_err("--%s: '%s' is not a non-negative integer", flag, v);
		return -1;
	}
	*out = (uint64_t)x;
	return 0;
}

int pl_parse_double(const char *flag, const char *v, double lo, double hi, double *out)
{
	char *end;
	double x = strtod(v, &end);
	if (*v == '\0' || *end != '\0' || !(x >= lo && x <= hi)) {
		pl_err("--%s: '%s' is not a number in [%g, %g]", flag, v, lo, hi);
		return -1;
	}
	*out = x;
	return 0;
}

int pl_parse_bptt(const char *v, PlBpttStrategy *s, int *k, int *auto_)
{
	*auto_ = 0;
	*k = 0;
	if (strcmp(v, "auto") == 0) {
		*auto_ = 1;
		return 0;
	}
	if (strcmp(v, "store") == 0) {
		*s = PL_BPTT_STORE;
		return 0;
	}
	if (strncmp(v, "recompute", 9) == 0) {
		*s = PL_BPTT_RECOMPUTE;
		if (v[9] == '\0')
			return 0;
		long kk;
		if (v[9] == ':' && pl_parse_long("bptt", v + 10, 1, 1000000, &kk) == 0) {
			*k = (int)kk;
			return 0;
		}
		return -1;
	}
	pl_err("--bptt: '%s' is not store, recompute, recompute:K or auto", v);
	return -1;
}

int pl_mkdir_p(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof buf) {
		errno = n ? ENAMETOOLONG : ENOENT;
		return -1;
	}
	memcpy(buf, path, n + 1);
	/* Create each prefix ending before a '/', then the whole path; existing folders are fine. */
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0777) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0777) < 0 && errno != EEXIST)
		return -1;
	struct stat st;
	if (stat(buf, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}
