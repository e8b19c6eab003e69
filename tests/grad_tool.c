/* tests/grad_tool.c -- helpers of tests/test_grad.sh.
 *
 * `grad_tool batch T B I OY SEED OUT`: writes a batch file: x [T,B,I] ~ N(0,1), target [T,B,OY] ~ N(0,1),
 * mask [T] ~ U(0.5,1.5)/T, F32.
 * `grad_tool cmp GOT WANT RTOL`: do two gradient files agree within RTOL? Every tensor of WANT must be in GOT with the same shape (F32 or F64 either side). A tensor's error is
 * |got - want|_2 / max(|want|_2, 1e-3 * the largest |want|_2 of any tensor), the rule of `plastc gradcheck
 * --backend c`, so float32 and float64 gradients can be compared. Prints the worst tensor; exit 0 if every
 * error is below RTOL, 1 if not, 2 on an unreadable file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plastrt.h"

static double at(const PlStTensor *t, int64_t i)
{
	return t->dtype == PL_F64 ? ((const double *)t->data)[i] : (double)((const float *)t->data)[i];
}

static double norm(const PlStTensor *a, const PlStTensor *b)
{
	double s = 0;
	for (int64_t i = 0; i < a->numel; i++) {
		double v = at(a, i) - (b ? at(b, i) : 0.0);
		s += v * v;
	}
	return sqrt(s);
}

static int batch(char **argv)
{
	long T = atol(argv[0]), B = atol(argv[1]), I = atol(argv[2]), Oy = atol(argv[3]);
	if (T < 1 || B < 1 || I < 1 || Oy < 1) {
		fprintf(stderr, "grad_tool: batch: bad sizes\n");
		return 2;
	}
	PlRng r;
	pl_rng_seed(&r, (uint64_t)atol(argv[4]));
	size_t nx = (size_t)(T * B * I), ny = (size_t)(T * B * Oy);
	float *x = calloc(nx, sizeof *x), *y = calloc(ny, sizeof *y), *m = calloc((size_t)T, sizeof *m);
	PlSt *st = pl_st_new();
	int rc = 2;
	char err[1024];
	if (!x || !y || !m || !st)
		goto out;
	for (size_t i = 0; i < nx; i++)
		x[i] = (float)pl_rng_normal(&r);
	for (size_t i = 0; i < ny; i++)
		y[i] = (float)pl_rng_normal(&r);
	for (long t = 0; t < T; t++)
		m[t] = (float)(pl_rng_uniform(&r, 0.5, 1.5) / (double)T);
	int64_t xd[3] = {T, B, I}, yd[3] = {T, B, Oy}, md[1] = {T};
	if (pl_st_add_f32(st, "x", 3, xd, x) < 0 || pl_st_add_f32(st, "target", 3, yd, y) < 0
		|| pl_st_add_f32(st, "mask", 1, md, m) < 0)
		goto out;
	if (pl_st_write(st, argv[5], err, sizeof err) < 0) {
		fprintf(stderr, "grad_tool: %s\n", err);
		goto out;
	}
	rc = 0;
out:
	free(x);
	free(y);
	free(m);
	pl_st_free(st);
	return rc;
}

static int cmp(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: grad_tool cmp GOT.safetensors WANT.safetensors RTOL\n");
		return 2;
	}
	char err[1024];
	double rtol = atof(argv[3]);
	PlSt *got = pl_st_read(argv[1], err, sizeof err), *want = NULL;
	if (!got || !(want = pl_st_read(argv[2], err, sizeof err))) {
		fprintf(stderr, "grad_tool: %s\n", err);
		pl_st_free(got);
		return 2;
	}
	double top = 0, worst = 0;
	const char *wname = "";
	int rc = 0;
	for (int i = 0; i < want->n; i++)
		top = fmax(top, norm(&want->t[i], NULL));
	for (int i = 0; i < want->n; i++) {
		const PlStTensor *w = &want->t[i], *g = pl_st_find(got, w->name);
		int same = g && g->rank == w->rank;
		for (int k = 0; same && k < w->rank; k++)
			same = g->dims[k] == w->dims[k];
		if (!same) {
			printf("grad_tool: tensor '%s' is missing or has another shape in %s\n", w->name, argv[1]);
			rc = 1;
			continue;
		}
		double den = fmax(norm(w, NULL), 1e-3 * top);
		double e = den > 0 ? norm(g, w) / den : norm(g, NULL);
		if (isnan(e)) {
			printf("grad_tool: tensor '%s' is not finite in %s\n", w->name, argv[1]);
			rc = 1;
		} else if (e > worst) {
			worst = e;
			wname = w->name;
		}
	}
	if (!(worst < rtol))
		rc = 1;
	printf("grad_tool: %d tensors, worst %s rel err %.2e (tol %.1e)\n", want->n, wname, worst, rtol);
	pl_st_free(got);
	pl_st_free(want);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 8 && strcmp(argv[1], "batch") == 0)
		return batch(argv + 2);
	if (argc == 5 && strcmp(argv[1], "cmp") == 0)
		return cmp(argc - 1, argv + 1);
	fprintf(stderr, "usage: grad_tool batch T B I OY SEED OUT | grad_tool cmp GOT WANT RTOL\n");
	return 2;
}
