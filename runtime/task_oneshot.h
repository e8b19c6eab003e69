/* runtime/task_oneshot.h -- the one-shot image classification task (internal; task.c dispatches to it).
 *
 * An episode of `ways`-way 1-shot classification is a trial of T = 2*ways steps: `ways` support steps
 * (one image of each class, in a shuffled order, with its one-hot label) then `ways` query steps (one new
 * image of each class, shuffled again, label input 0). x_t = (normalised pixels in CHW order, label[ways]);
 * the target is the one-hot class at every step; mask = 1/ways on the query steps, 0 on the support steps,
 * so the meta-loss is the cross-entropy averaged over the queries. docs/oneshot.md has the details.
 */
#ifndef PLASTRT_TASK_ONESHOT_H
#define PLASTRT_TASK_ONESHOT_H

#include <stddef.h>

#include "images.h"
#include "plastrt.h"

/* Ownership: a PlOneshot owns its image sets and class indices; pl_oneshot_free releases them. */
typedef struct PlOneshot PlOneshot;

/* opts "k=v": data=fashion|cifar_fs|mini, dir=PATH, classes=PATH (CIFAR-FS class lists folder),
 * side=N (mini), ways=N, augment=0|1, jitter=0|1, rotate=0|1, easy=P, grow=S, same=0|1. Loads every split's
 * images now, so errors in the data files are reported here (NULL, message "FILE: problem" in err) and never while sampling. */
PlOneshot *pl_oneshot_new(int n_opts, const char *const *opts, char *err, size_t errlen);
void pl_oneshot_free(PlOneshot *o);
int pl_oneshot_T(const PlOneshot *o);
int pl_oneshot_in_size(const PlOneshot *o);
int pl_oneshot_ways(const PlOneshot *o);
const char *pl_oneshot_describe(const PlOneshot *o);
/* Image geometry of x's pixel part: C, H, W. */
void pl_oneshot_image(const PlOneshot *o, int *C, int *H, int *W);
/* B episodes from the given split (augmentation, if on, only on PL_SPLIT_TRAIN). Layout as every task:
 * x [T,B,I], target [T,B,ways], mask [T]. */
void pl_oneshot_sample(const PlOneshot *o, PlSplit split, long step, PlRng *r, int B, float *x, float *target,
	float *mask);
/* The number of classes of a meta-training episode at training step `step` (option grow=S: min(ways,
 * 2 + step/S); otherwise, and for validation and test, `ways`). */
int pl_oneshot_grow_ways(const PlOneshot *o, PlSplit split, long step);
/* torchvision's ColorJitter on one image (C x H x W floats in [0, 1], changed in place): factor[0..2] are
 * the brightness, contrast and saturation factors, applied in the order order[0..2] (a permutation of 0, 1,
 * 2). Brightness scales every value; contrast blends with the mean of the grey image (0.2989 R + 0.587 G +
 * 0.114 B for C = 3, the channel itself otherwise); saturation blends each pixel with its grey value
 * (nothing for C != 3); each result is clamped to [0, 1]. */
void pl_color_jitter(float *img, int C, int H, int W, const double factor[3], const int order[3]);
/* Accuracy of predictions y [T,B,ways] on a batch: over the first query step (the reference's metric) and
 * over all query steps. */
void pl_oneshot_accuracy(const PlOneshot *o, int B, const float *y, const float *target, double *first,
	double *all);

#endif
