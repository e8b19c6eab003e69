/* tests/mpi_tool.c -- helpers of the MPI tests (tests/mpi_train.sh):
 *   mpi_tool batch OUT.safetensors N M B SEED   a copy-task batch (x, target, mask) for `BIN grad`
 *   mpi_tool close A B RTOL ATOL                exit 0 if every tensor of A is in B with the same shape and
 *                                               |a - b| <= ATOL + RTOL |b| elementwise, else print the
 *                                               worst element and exit 1 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plastrt.h"

static double at(const PlStTensor *t, int64_t i)
{
	return t->dtype == PL_F64 ? ((const double *)t->data)[i] : ((const float *)t->data)[i];
}

static int cmd_batch(char **argv)
{
	char n[64], m[64], err[1024];
	snprintf(n, sizeof n, "n=%s", argv[1]);
	snprintf(m, sizeof m, "m=%s", argv[2]);
	const char *opts[2] = {n, m};
	PlTask *task = pl_task_new("copy", 2, opts, err, sizeof err);
	if (!task) {
		fprintf(stderr, "mpi_tool: %s\n", err);
		return 2;
	}
	int B = atoi(argv[3]), T = pl_task_T(task), I = pl_task_in_size(task), O = pl_task_pred_size(task);
	PlRng r;
	pl_rng_seed(&r, strtoull(argv[4], NULL, 10));
	float *x = calloc((size_t)T * B * I, sizeof *x), *y = calloc((size_t)T * B * O, sizeof *y);
	float *mask = calloc((size_t)T, sizeof *mask);
	PlSt *st = pl_st_new();
	int rc = 2;
	if (x && y && mask && st) {
		pl_task_sample(task, &r, B, x, y, mask);
		int64_t xd[3] = {T, B, I}, yd[3] = {T, B, O}, md[1] = {T};
		if (pl_st_add_f32(st, "x", 3, xd, x) == 0 && pl_st_add_f32(st, "target", 3, yd, y) == 0
			&& pl_st_add_f32(st, "mask", 1, md, mask) == 0 && pl_st_write(st, argv[0], err, sizeof err) == 0)
			rc = 0;
		else
			fprintf(stderr, "mpi_tool: %s\n", err);
	}
	pl_st_free(st);
	free(x);
	free(y);
	free(mask);
	pl_task_free(task);
	return rc;
}

static int cmd_close(char **argv)
{
	char err[1024];
	PlSt *a = pl_st_read(argv[0], err, sizeof err), *b = a ? pl_st_read(argv[1], err, sizeof err) : NULL;
	if (!a || !b) {
		fprintf(stderr, "mpi_tool: %s\n", err);
		pl_st_free(a);
		return 2;
	}
	double rtol = atof(argv[2]), atol = atof(argv[3]), worst = 0.0;
	const char *wname = "";
	int rc = 0;
	for (int i = 0; i < a->n && rc == 0; i++) {
		const PlStTensor *x = &a->t[i], *y = pl_st_find(b, x->name);
		if (!y || y->numel != x->numel || y->rank != x->rank) {
			printf("mpi_tool: tensor '%s' missing or of another shape in %s\n", x->name, argv[1]);
			rc = 1;
			break;
		}
		for (int64_t k = 0; k < x->numel; k++) {
			double u = at(x, k), v = at(y, k), d = fabs(u - v), excess = d / (atol + rtol * fabs(v));
			if (!(excess <= 1.0)) {
				printf("mpi_tool: %s[%lld]: %.9g vs %.9g (|diff| %.3g > %.3g)\n", x->name, (long long)k, u, v, d,
					atol + rtol * fabs(v));
				rc = 1;
				break;
			}
			if (excess > worst) {
				worst = excess;
				wname = x->name;
			}
		}
	}
	if (rc == 0)
		printf("mpi_tool: %d tensors close (worst %.3g of the tolerance, in %s)\n", a->n, worst, wname);
	pl_st_free(a);
	pl_st_free(b);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc == 7 && strcmp(argv[1], "batch") == 0)
		return cmd_batch(argv + 2);
	if (argc == 6 && strcmp(argv[1], "close") == 0)
		return cmd_close(argv + 2);
	fprintf(stderr, "usage: mpi_tool batch OUT N M B SEED | mpi_tool close A B RTOL ATOL\n");
	return 2;
}
