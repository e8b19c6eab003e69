/* tests/rt_model_main.c -- a per-model binary of the test model, as plastc's C backend would make one.
 * Environment (test hooks): RT_MODEL_IN, RT_MODEL_OUT (sizes, default 16 and 1: cue_reward),
 * RT_MODEL_NAN_AFTER (NaN in the gradient of cell.alpha after that many VJP calls), RT_MODEL_SLEEP_US. */
#include <stdlib.h>

#include "rt_model.h"

static long env_long(const char *name, long dflt)
{
	const char *v = getenv(name);
	return v && *v ? strtol(v, NULL, 10) : dflt;
}

int main(int argc, char **argv)
{
	rt_model_nan_after = env_long("RT_MODEL_NAN_AFTER", -1);
	rt_model_sleep_us = env_long("RT_MODEL_SLEEP_US", 0);
	const PlModel *m = rt_model((int)env_long("RT_MODEL_IN", 16), (int)env_long("RT_MODEL_OUT", 1), PL_LOSS_MSE);
	return pl_main(m, argc, argv);
}
