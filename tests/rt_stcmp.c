/* tests/rt_stcmp.c -- `rt_stcmp A B`: exit 0 if two safetensors files hold the same tensors bit for bit
 * (metadata is ignored), else print the first difference and exit 1. Used by tests/rt_cli.sh. */
#include <stdio.h>
#include <string.h>

#include "plastrt.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: rt_stcmp A.safetensors B.safetensors\n");
		return 2;
	}
	char err[1024];
	PlSt *a = pl_st_read(argv[1], err, sizeof err);
	if (!a) {
		fprintf(stderr, "rt_stcmp: %s\n", err);
		return 2;
	}
	PlSt *b = pl_st_read(argv[2], err, sizeof err);
	if (!b) {
		fprintf(stderr, "rt_stcmp: %s\n", err);
		pl_st_free(a);
		return 2;
	}
	int rc = 0;
	if (a->n != b->n) {
		printf("rt_stcmp: %d tensors vs %d\n", a->n, b->n);
		rc = 1;
	}
	for (int i = 0; !rc && i < a->n; i++) {
		const PlStTensor *x = &a->t[i], *y = pl_st_find(b, x->name);
		size_t es = x->dtype == PL_F64 ? 8 : 4;
		if (!y || y->dtype != x->dtype || y->numel != x->numel || memcmp(x->data, y->data, (size_t)x->numel * es)) {
			printf("rt_stcmp: tensor '%s' differs\n", x->name);
			rc = 1;
		}
	}
	pl_st_free(a);
	pl_st_free(b);
	return rc;
}
