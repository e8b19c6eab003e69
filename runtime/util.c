/* runtime/util.c -- messages, clock, parameter buffers and their safetensors form. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
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
