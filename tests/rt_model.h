/* tests/rt_model.h -- a small hand-written model implementing the PlModel ABI, for the runtime tests. */
#ifndef RT_MODEL_H
#define RT_MODEL_H

#include "plastrt.h"

/* Builds the model for input size `in` and prediction size `out` (static storage: one model at a time).
 * loss: the meta-loss kind to declare. */
const PlModel *rt_model(int in, int out, PlLoss loss);

/* Test hooks: after `nan_after` VJP calls, the gradient of cell.alpha gets a NaN (-1: never);
 * each step_forward sleeps `sleep_us` microseconds (to make a run slow enough to kill). */
extern long rt_model_nan_after;
extern long rt_model_sleep_us;

#endif
