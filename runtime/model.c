/* runtime/model.c -- checks a generated model descriptor against this runtime's ABI. */
#include <stdio.h>

#include "plastrt.h"

int pl_model_check(const PlModel *m)
{
	if (!m) {
		fprintf(stderr, "error: no model descriptor\n");
		return -1;
	}
	if (m->abi_version != PL_ABI_VERSION) {
		fprintf(stderr, "error: model '%s' was generated for runtime ABI %d, this runtime has ABI %d\n"
				"hint: rebuild the model with this plastc (plastc build)\n",
			m->name ? m->name : "?", m->abi_version, PL_ABI_VERSION);
		return -1;
	}
	return 0;
}
