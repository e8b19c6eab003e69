/* compiler/program.c -- release of a lowered Program (its tables, strings and both step functions). */
#include "program.h"

#include <stdlib.h>

static void free_tensors(ProgTensor *t, int n)
{
	for (int i = 0; i < n; i++)
		free(t[i].name);
	free(t);
}

void program_free(Program *p)
{
	if (!p)
		return;
	free(p->name);
	free(p->source);
	free(p->settings);
	free_tensors(p->params, p->n_params);
	free_tensors(p->state, p->n_state);
	ir_func_free(p->fwd);
	ir_func_free(p->vjp);
	ir_func_free(p->fwd_eval);
	free(p);
}
