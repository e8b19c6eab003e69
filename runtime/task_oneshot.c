/* runtime/task_oneshot.c -- `ways`-way 1-shot image classification episodes (see task_oneshot.h).
 *
 * Data sets and their three splits (docs/oneshot.md gives the reasons):
 *   fashion   Fashion-MNIST IDX files: meta-train on classes 0-4 (train file), validate on classes 5-9
 *             (train file), test on classes 5-9 (test file). 1x28x28.
 *   cifar_fs  CIFAR-100 binary, the CIFAR-FS class split 64/16/20 (data/cifar_fs/{train,val,test}.txt);
 *             every split uses the images of both CIFAR files. 3x32x32.
 *   mini      miniImageNet, the Ravi & Larochelle split CSVs. 3 x side x side (84).
 * Pixels are normalised per channel, (p/255 - mean_c) / std_c, with mean and std measured on the
 * meta-training split's images when the task is created. Augmentation (augment=1, meta-training episodes
 * only): a random crop of the image zero-padded by 4 on each side (8 for miniImageNet), then a horizontal
 * flip with probability 1/2 (torchvision's RandomCrop(padding=4 or 8) and RandomHorizontalFlip). Colour jitter (jitter=1,
 * meta-training episodes only): torchvision's ColorJitter(brightness=.4, contrast=.4, saturation=.4), as
 * MetaOptNet's CIFAR-FS and miniImageNet pipelines use it, applied to the cropped image (see pl_color_jitter).
 */
#include "config.h"

#include "task_oneshot.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DATA_FASHION, DATA_CIFAR_FS, DATA_MINI };
/* crop padding of augment=1: MetaOptNet's RandomCrop(32, padding=4) for CIFAR-FS (and Fashion-MNIST),
 * RandomCrop(84, padding=8) for miniImageNet */
enum { PAD = 4, PAD_MINI = 8 };

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

struct PlOneshot {
	int data;
	int ways, T, I, C, H, W, side, augment;
	int jitter;                  /* ColorJitter(.4, .4, .4) on meta-training images */
	int pad;                     /* crop padding of augment=1: PAD, or PAD_MINI for miniImageNet */
	int same;                    /* sanity option: the query image is its class's support image */
	int rotate;                  /* meta-training classes x 4 rotations (square images only) */
	int easy;                    /* percent of meta-training episodes with 2..ways-1 classes (docs/oneshot.md) */
	int grow;                    /* curriculum: meta-training episodes have min(ways, 2 + step/grow) classes */
	int grow_first;              /* grow: a k-way episode uses labels 0..k-1 (else k of the ways at random) */
	int grow_pack;               /* grow: a k-way episode fills steps 0..2k-1 (else its support ends at ways) */
	PlImageSet *own[3];          /* loaded sets (fashion: train file, test file) */
	const PlImageSet *src[3];    /* per split: the set its indices point into */
	PlClassIndex *ci[3];         /* per split: images of each class */
	double mean[3], inv_std[3];  /* per channel, on the [0,1] scale */
	int *scratch;                /* per-episode work: class draw, two orders, two image picks (owned) */
	char desc[160];
};

static void seterr(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void pl_oneshot_free(PlOneshot *o)
{
	if (!o)
		return;
	for (int k = 0; k < 3; k++) {
		pl_imageset_free(o->own[k]);
		pl_class_index_free(o->ci[k]);
	}
	pl_free(o->scratch);
	pl_free(o);
}

static const char *split_name(int s)
{
	return s == PL_SPLIT_TRAIN ? "meta-training" : s == PL_SPLIT_VAL ? "validation" : "test";
}

/* Every split needs `ways` classes with two images each (a support and a distinct query image). */
static int check_split(const PlOneshot *o, int s, const char *what, char *err, size_t errlen)
{
	const PlClassIndex *ci = o->ci[s];
	if (ci->n_classes < o->ways) {
		seterr(err, errlen, "%s: the %s split has %d classes, fewer than ways=%d", what, split_name(s),
			ci->n_classes, o->ways);
		return -1;
	}
	for (int k = 0; k < ci->n_classes; k++)
		if (ci->start[k + 1] - ci->start[k] < 2) {
			seterr(err, errlen, "%s: class %d of the %s split has %d image%s; a 1-shot episode needs 2 (support "
					    "and query)", what, k, split_name(s), ci->start[k + 1] - ci->start[k],
				ci->start[k + 1] - ci->start[k] == 1 ? "" : "s");
			return -1;
		}
	return 0;
}

static int parse_int(const char *v, int lo, int hi, int *out)
{
	char *end;
	long x = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || x < lo || x > hi)
		return -1;
	*out = (int)x;
	return 0;
}

/* mean and standard deviation of each channel over the meta-training split's images */
static void measure_norm(PlOneshot *o)
{
	const PlImageSet *s = o->src[PL_SPLIT_TRAIN];
	const PlClassIndex *ci = o->ci[PL_SPLIT_TRAIN];
	size_t plane = (size_t)o->H * o->W;
	int n = ci->start[ci->n_classes];
	for (int c = 0; c < o->C; c++) {
		double sum = 0, sum2 = 0;
		for (int j = 0; j < n; j++) {
			const uint8_t *p = s->pix + (size_t)ci->idx[j] * o->C * plane + c * plane;
			for (size_t q = 0; q < plane; q++) {
				double v = p[q] / 255.0;
				sum += v;
				sum2 += v * v;
			}
		}
		double cnt = (double)n * (double)plane, m = sum / cnt, var = sum2 / cnt - m * m;
		o->mean[c] = m;
		/* a constant channel (never in real data) would divide by 0: leave it unscaled */
		o->inv_std[c] = var > 1e-12 ? 1.0 / sqrt(var) : 1.0;
	}
}

PlOneshot *pl_oneshot_new(int n_opts, const char *const *opts, char *err, size_t errlen)
{
	PlOneshot *o = pl_alloc(sizeof *o);
	if (!o) {
		seterr(err, errlen, "out of memory");
		return NULL;
	}
	o->data = DATA_FASHION;
	o->ways = 5;
	o->side = 84;
	const char *dir = getenv("PLASTC_ONESHOT_DIR"), *classes = PLASTC_ABS_SRCDIR "/data/cifar_fs";
	for (int i = 0; i < n_opts; i++) {
		const char *eq = strchr(opts[i], '=');
		char key[32];
		if (!eq || (size_t)(eq - opts[i]) >= sizeof key) {
			seterr(err, errlen, "task option '%s' is not of the form key=value", opts[i]);
			goto fail;
		}
		snprintf(key, sizeof key, "%.*s", (int)(eq - opts[i]), opts[i]);
		const char *v = eq + 1;
		int bad = 0;
		if (strcmp(key, "data") == 0) {
			if (strcmp(v, "fashion") == 0)
				o->data = DATA_FASHION;
			else if (strcmp(v, "cifar_fs") == 0)
				o->data = DATA_CIFAR_FS;
			else if (strcmp(v, "mini") == 0)
				o->data = DATA_MINI;
			else
				bad = 1;
		} else if (strcmp(key, "dir") == 0)
			dir = v;
		else if (strcmp(key, "classes") == 0)
			classes = v;
		else if (strcmp(key, "side") == 0)
			bad = parse_int(v, 8, 512, &o->side);
		else if (strcmp(key, "ways") == 0)
			bad = parse_int(v, 2, 100, &o->ways);
		else if (strcmp(key, "augment") == 0)
			bad = parse_int(v, 0, 1, &o->augment);
		else if (strcmp(key, "jitter") == 0)
			bad = parse_int(v, 0, 1, &o->jitter);
		else if (strcmp(key, "same") == 0)
			bad = parse_int(v, 0, 1, &o->same);
		else if (strcmp(key, "rotate") == 0)
			bad = parse_int(v, 0, 1, &o->rotate);
		else if (strcmp(key, "easy") == 0)
			bad = parse_int(v, 0, 100, &o->easy);
		else if (strcmp(key, "grow_first") == 0)
			bad = parse_int(v, 0, 1, &o->grow_first);
		else if (strcmp(key, "grow_pack") == 0)
			bad = parse_int(v, 0, 1, &o->grow_pack);
		else if (strcmp(key, "grow") == 0)
			bad = parse_int(v, 0, 100000000, &o->grow);
		else {
			seterr(err, errlen, "task oneshot has no option '%s' (options: data (fashion|cifar_fs|mini), dir, "
					    "classes, side, ways, augment, jitter, rotate, easy, grow, grow_first, grow_pack, same)", key);
			goto fail;
		}
		if (bad) {
			seterr(err, errlen, "task oneshot: bad value '%s' for option %s", v, key);
			goto fail;
		}
	}
	static const char *const split_file[3] = {"train", "val", "test"};
	char path[2][4096];
	switch (o->data) {
	case DATA_FASHION:
		if (!dir)
			dir = FASHION_DIR;
		snprintf(path[0], sizeof path[0], "%s/train-images-idx3-ubyte.gz", dir);
		snprintf(path[1], sizeof path[1], "%s/train-labels-idx1-ubyte.gz", dir);
		if (!(o->own[0] = pl_idx_load(path[0], path[1], err, errlen)))
			goto fail;
		snprintf(path[0], sizeof path[0], "%s/t10k-images-idx3-ubyte.gz", dir);
		snprintf(path[1], sizeof path[1], "%s/t10k-labels-idx1-ubyte.gz", dir);
		if (!(o->own[1] = pl_idx_load(path[0], path[1], err, errlen)))
			goto fail;
		if (o->own[1]->H != o->own[0]->H || o->own[1]->W != o->own[0]->W) {
			seterr(err, errlen, "%s: images are %dx%d but the training file's are %dx%d", path[0], o->own[1]->H,
				o->own[1]->W, o->own[0]->H, o->own[0]->W);
			goto fail;
		}
		o->src[PL_SPLIT_TRAIN] = o->src[PL_SPLIT_VAL] = o->own[0];
		o->src[PL_SPLIT_TEST] = o->own[1];
		o->ci[PL_SPLIT_TRAIN] = pl_class_index_new(o->own[0], 0, o->own[0]->n, 0, 5);
		o->ci[PL_SPLIT_VAL] = pl_class_index_new(o->own[0], 0, o->own[0]->n, 5, 10);
		o->ci[PL_SPLIT_TEST] = pl_class_index_new(o->own[1], 0, o->own[1]->n, 5, 10);
		break;
	case DATA_CIFAR_FS:
		if (!dir) {
			seterr(err, errlen, "task oneshot data=cifar_fs needs dir=FOLDER (the unpacked cifar-100-binary.tar.gz: "
					    "train.bin, test.bin, fine_label_names.txt) or PLASTC_ONESHOT_DIR");
			goto fail;
		}
		for (int s = 0; s < 3; s++) {
			snprintf(path[0], sizeof path[0], "%s/%s.txt", classes, split_file[s]);
			if (!(o->own[s] = pl_cifar100_load(dir, path[0], err, errlen)))
				goto fail;
			o->src[s] = o->own[s];
			o->ci[s] = pl_class_index_new(o->own[s], 0, o->own[s]->n, 0, o->own[s]->n_classes);
		}
		break;
	default:
		if (!dir) {
			seterr(err, errlen, "task oneshot data=mini needs dir=FOLDER (train.csv, val.csv, test.csv and images/) or "
					    "PLASTC_ONESHOT_DIR");
			goto fail;
		}
		for (int s = 0; s < 3; s++) {
			if (!(o->own[s] = pl_miniimagenet_load(dir, split_file[s], o->side, err, errlen)))
				goto fail;
			o->src[s] = o->own[s];
			o->ci[s] = pl_class_index_new(o->own[s], 0, o->own[s]->n, 0, o->own[s]->n_classes);
		}
		break;
	}
	for (int s = 0; s < 3; s++) {
		if (!o->ci[s]) {
			seterr(err, errlen, "out of memory indexing the %s split", split_name(s));
			goto fail;
		}
		if (check_split(o, s, dir, err, errlen) != 0)
			goto fail;
	}
	const PlImageSet *t = o->src[PL_SPLIT_TRAIN];
	o->C = t->C;
	o->H = t->H;
	o->W = t->W;
	o->T = 2 * o->ways;
	o->pad = o->data == DATA_MINI ? PAD_MINI : PAD;
	o->I = o->C * o->H * o->W + o->ways;
	if (o->rotate && o->H != o->W) {
		seterr(err, errlen, "task oneshot: rotate=1 needs square images, the data set's are %dx%d", o->H, o->W);
		goto fail;
	}
	int kmax = 0;
	for (int s = 0; s < 3; s++)
		kmax = o->ci[s]->n_classes > kmax ? o->ci[s]->n_classes : kmax;
	kmax *= o->rotate ? 4 : 1; /* the meta-training split's rotated classes */
	if (!(o->scratch = pl_alloc((size_t)(kmax + 8 * o->ways) * sizeof *o->scratch))) {
		seterr(err, errlen, "out of memory");
		goto fail;
	}
	measure_norm(o);
	static const char *const dname[3] = {"fashion", "cifar_fs", "mini"};
	snprintf(o->desc, sizeof o->desc, "oneshot data=%s ways=%d shots=1 image=%dx%dx%d augment=%d rotate=%d",
		dname[o->data], o->ways, o->C, o->H, o->W, o->augment, o->rotate);
	if (o->jitter) {
		size_t n = strlen(o->desc);
		snprintf(o->desc + n, sizeof o->desc - n, " jitter=1");
	}
	if (o->easy) {
		size_t n = strlen(o->desc);
		snprintf(o->desc + n, sizeof o->desc - n, " easy=%d%%", o->easy);
	}
	if (o->grow) {
		size_t n = strlen(o->desc);
		snprintf(o->desc + n, sizeof o->desc - n, " grow=%d%s%s", o->grow, o->grow_first ? " grow_first=1" : "",
			o->grow_pack ? " grow_pack=1" : "");
	}
	return o;
fail:
	pl_oneshot_free(o);
	return NULL;
}

int pl_oneshot_T(const PlOneshot *o)
{
	return o->T;
}

int pl_oneshot_in_size(const PlOneshot *o)
{
	return o->I;
}

int pl_oneshot_ways(const PlOneshot *o)
{
	return o->ways;
}

const char *pl_oneshot_describe(const PlOneshot *o)
{
	return o->desc;
}

void pl_oneshot_image(const PlOneshot *o, int *C, int *H, int *W)
{
	*C = o->C;
	*H = o->H;
	*W = o->W;
}

/* Fisher-Yates: a uniformly random permutation of 0..n-1 */
static void shuffle(PlRng *r, int *p, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = i;
	for (int i = n - 1; i > 0; i--) {
		int j = (int)pl_rng_below(r, (uint64_t)i + 1);
		int t = p[i];
		p[i] = p[j];
		p[j] = t;
	}
}

/* Writes image `img` of s, rotated by rot quarter turns counter-clockwise, normalised, into out (C*H*W
 * floats). With augmentation: the output pixel (y, x) is pixel (y + oy - pad, x' + ox - pad) of the rotated
 * image, x' = W-1-x when flipped, and 0 (black, normalised) outside: a crop at (oy, ox) of the rotated image
 * padded by pad (o->pad), then the flip. Pixel (y, x) of the image turned by a quarter (square, side S) is pixel
 * (x, S-1-y) of the original; the other turns repeat that. */
static double clamp01(double v)
{
	return v < 0 ? 0 : v > 1 ? 1 : v;
}

/* luma of pixel q of a C-channel image (torchvision's rgb_to_grayscale weights; the channel itself if C != 3) */
static double gray_at(const float *img, int C, size_t plane, size_t q)
{
	return C == 3 ? 0.2989 * img[q] + 0.587 * img[plane + q] + 0.114 * img[2 * plane + q] : img[q];
}

void pl_color_jitter(float *img, int C, int H, int W, const double factor[3], const int order[3])
{
	size_t plane = (size_t)H * W, n = (size_t)C * plane;
	for (int k = 0; k < 3; k++) {
		double f = factor[order[k]];
		switch (order[k]) {
		case 0: /* brightness: blend with black */
			for (size_t i = 0; i < n; i++)
				img[i] = (float)clamp01(f * img[i]);
			break;
		case 1: { /* contrast: blend with the mean of the grey image */
			double m = 0;
			for (size_t q = 0; q < plane; q++)
				m += gray_at(img, C, plane, q);
			m /= (double)plane;
			for (size_t i = 0; i < n; i++)
				img[i] = (float)clamp01(f * img[i] + (1 - f) * m);
			break;
		}
		default: /* saturation: blend each pixel with its grey value; a no-op on one channel */
			if (C != 3)
				break;
			for (size_t q = 0; q < plane; q++) {
				double g = gray_at(img, C, plane, q);
				for (int c = 0; c < 3; c++)
					img[c * plane + q] = (float)clamp01(f * img[c * plane + q] + (1 - f) * g);
			}
			break;
		}
	}
}

static void put_image(const PlOneshot *o, const PlImageSet *s, int img, int rot, int aug, int jit, PlRng *r,
	float *out)
{
	int pad = o->pad, oy = pad, ox = pad, flip = 0;
	if (aug) {
		oy = (int)pl_rng_below(r, 2 * (uint64_t)pad + 1);
		ox = (int)pl_rng_below(r, 2 * (uint64_t)pad + 1);
		flip = (int)pl_rng_below(r, 2);
	}
	size_t plane = (size_t)o->H * o->W;
	const uint8_t *p = s->pix + (size_t)img * o->C * plane;
	for (int c = 0; c < o->C; c++)
		for (int y = 0; y < o->H; y++)
			for (int x = 0; x < o->W; x++) {
				int sy = y + oy - pad, sx = (flip ? o->W - 1 - x : x) + ox - pad;
				for (int k = 0; k < rot; k++) {
					int ty = sx;
					sx = o->W - 1 - sy;
					sy = ty;
				}
				double v = sy >= 0 && sy < o->H && sx >= 0 && sx < o->W ? p[c * plane + (size_t)sy * o->W + sx] / 255.0 : 0.0;
				/* without jitter the normalised value directly (bit-identical to earlier versions) */
				out[c * plane + (size_t)y * o->W + x] = jit ? (float)v : (float)((v - o->mean[c]) * o->inv_std[c]);
			}
	if (jit) {
		/* torchvision ColorJitter.get_params: the order of the three operations is a random permutation,
		 * each factor uniform in [1 - 0.4, 1 + 0.4] */
		int order[3] = {0, 1, 2};
		for (int i = 2; i > 0; i--) {
			int j = (int)pl_rng_below(r, (uint64_t)i + 1), t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
		double f[3];
		for (int k = 0; k < 3; k++)
			f[k] = pl_rng_uniform(r, 0.6, 1.4);
		pl_color_jitter(out, o->C, o->H, o->W, f, order);
		for (int c = 0; c < o->C; c++)
			for (size_t q = 0; q < plane; q++)
				out[c * plane + q] = (float)((out[c * plane + q] - o->mean[c]) * o->inv_std[c]);
	}
}

/* An image of class c (index into the split's class index) other than image `not` (an index into the
 * class; -1: any). Every class has at least two images (check_split). */
static int other_image(const PlClassIndex *ci, int c, int not, PlRng *r)
{
	int n = ci->start[c + 1] - ci->start[c];
	int a = (int)pl_rng_below(r, (uint64_t)n - (not >= 0));
	if (not >= 0)
		a += a >= not;
	return a;
}

/* Slot order of an easy episode: the k active labels once each, then ways-k repeats of active labels drawn
 * at random, all shuffled. */
static void easy_slots(PlRng *r, const int *active, int k, int N, int *slot, int *p)
{
	shuffle(r, p, N);
	for (int i = 0; i < N; i++) {
		int pos = p[i];
		slot[pos] = i < k ? active[i] : active[pl_rng_below(r, (uint64_t)k)];
	}
}

int pl_oneshot_grow_ways(const PlOneshot *o, PlSplit split, long step)
{
	if (!o->grow || split != PL_SPLIT_TRAIN || o->ways <= 2)
		return o->ways;
	long k = 2 + step / o->grow;
	return k < o->ways ? (int)k : o->ways;
}

/* grow=S, a k-way episode (k < ways) in the ways-way frame: ways-k blank steps (image and label input 0),
 * the k support steps (k of the ways labels, at random, in a shuffled order; labels 0..k-1 with
 * grow_first=1), the k query steps, ways-k blank steps; the mask is 1/k on the k queries. With grow_pack=1
 * the support and queries take steps 0..2k-1 and the blank steps follow. */
static void sample_grown(const PlOneshot *o, int k, PlRng *r, int B, float *x, float *target, float *mask)
{
	int N = o->ways, T = o->T, I = o->I, npix = I - N;
	const PlClassIndex *ci = o->ci[PL_SPLIT_TRAIN];
	const PlImageSet *s = o->src[PL_SPLIT_TRAIN];
	int nrot = o->rotate ? 4 : 1;
	int K = ci->n_classes * nrot;
	int *cls = o->scratch, *ord_s = cls + K, *ord_q = ord_s + N, *sup = ord_q + N, *qry = sup + N, *rot = qry + N;
	int *active = rot + N;
	int aug = o->augment, jit = o->jitter;
	memset(x, 0, (size_t)T * B * I * sizeof *x);
	memset(target, 0, (size_t)T * B * N * sizeof *target);
	for (int b = 0; b < B; b++) {
		shuffle(r, cls, K);
		if (o->grow_first)
			for (int j = 0; j < N; j++)
				active[j] = j;
		else
			shuffle(r, active, N); /* label active[j] shows class cls[j], j < k */
		for (int j = 0; j < k; j++) {
			int c = cls[j] / nrot, n = ci->start[c + 1] - ci->start[c];
			rot[j] = cls[j] % nrot;
			int a = (int)pl_rng_below(r, (uint64_t)n), q = (int)pl_rng_below(r, (uint64_t)n - 1);
			q += q >= a;
			if (o->same)
				q = a;
			sup[j] = ci->idx[ci->start[c] + a];
			qry[j] = ci->idx[ci->start[c] + q];
		}
		shuffle(r, ord_s, k);
		shuffle(r, ord_q, k);
		for (int i = 0; i < 2 * k; i++) {
			int query = i >= k, j = query ? ord_q[i - k] : ord_s[i], lab = active[j];
			int t = o->grow_pack ? i : query ? N + i - k : N - k + i;
			float *xs = x + ((size_t)t * B + b) * I, *ys = target + ((size_t)t * B + b) * N;
			put_image(o, s, query ? qry[j] : sup[j], rot[j], aug, jit, r, xs);
			if (!query)
				xs[npix + lab] = 1.0f;
			ys[lab] = 1.0f;
		}
	}
	int q0 = o->grow_pack ? k : N;
	for (int t = 0; t < T; t++)
		mask[t] = t >= q0 && t < q0 + k ? 1.0f / (float)k : 0.0f;
}

void pl_oneshot_sample(const PlOneshot *o, PlSplit split, long step, PlRng *r, int B, float *x, float *target,
	float *mask)
{
	int N = o->ways, T = o->T, I = o->I, npix = I - N;
	int kg = pl_oneshot_grow_ways(o, split, step);
	if (kg < N) {
		sample_grown(o, kg, r, B, x, target, mask);
		return;
	}
	const PlClassIndex *ci = o->ci[split];
	const PlImageSet *s = o->src[split];
	/* with rotate=1, meta-training class c of the episode is class c / 4 of the data turned (c % 4) quarters */
	int nrot = o->rotate && split == PL_SPLIT_TRAIN ? 4 : 1;
	int K = ci->n_classes * nrot;
	int *cls = o->scratch, *ord_s = cls + K, *ord_q = ord_s + N, *sup = ord_q + N, *qry = sup + N, *rot = qry + N;
	/* easy episodes: the support image's index in its class, the labels used, scratch */
	int *sa = rot + N, *active = sa + N, *tmp = active + N;
	int aug = o->augment && split == PL_SPLIT_TRAIN, jit = o->jitter && split == PL_SPLIT_TRAIN;
	for (int b = 0; b < B; b++) {
		/* the episode's classes: the first N of a random permutation; episode label j = cls[j] */
		shuffle(r, cls, K);
		for (int j = 0; j < N; j++) {
			int c = cls[j] / nrot, n = ci->start[c + 1] - ci->start[c];
			rot[j] = cls[j] % nrot;
			int a = (int)pl_rng_below(r, (uint64_t)n), q = (int)pl_rng_below(r, (uint64_t)n - 1);
			q += q >= a; /* a distinct query image */
			if (o->same)
				q = a;
			sa[j] = a;
			sup[j] = ci->idx[ci->start[c] + a];
			qry[j] = ci->idx[ci->start[c] + q];
		}
		/* easy=P: with probability P%, only k in 2..N-1 of the N labels are used; their support and query
		 * slots are filled up with repeats (other images of the same classes). Validation and test episodes
		 * are always N-way. */
		int k = N;
		if (o->easy && split == PL_SPLIT_TRAIN && N > 2 && (int)pl_rng_below(r, 100) < o->easy)
			k = 2 + (int)pl_rng_below(r, (uint64_t)N - 2);
		if (k < N) {
			shuffle(r, active, N); /* the k labels used are active[0..k) */
			easy_slots(r, active, k, N, ord_s, tmp);
			easy_slots(r, active, k, N, ord_q, tmp);
		} else {
			shuffle(r, ord_s, N);
			shuffle(r, ord_q, N);
		}
		for (int t = 0; t < T; t++) {
			int query = t >= N, i = query ? t - N : t, j = query ? ord_q[i] : ord_s[i];
			float *xs = x + ((size_t)t * B + b) * I, *ys = target + ((size_t)t * B + b) * N;
			int img = query ? qry[j] : sup[j];
			if (k < N) {
				/* a repeat of label j (not its first slot) shows another image of its class */
				int first = 1;
				const int *ord = query ? ord_q : ord_s;
				for (int u = 0; u < i; u++)
					first &= ord[u] != j;
				if (!first) {
					int c = cls[j] / nrot;
					img = ci->idx[ci->start[c] + other_image(ci, c, sa[j], r)];
				}
			}
			put_image(o, s, img, rot[j], aug, jit, r, xs);
			for (int kk = 0; kk < N; kk++) {
				xs[npix + kk] = !query && kk == j ? 1.0f : 0.0f;
				ys[kk] = kk == j ? 1.0f : 0.0f;
			}
		}
	}
	for (int t = 0; t < T; t++)
		mask[t] = t >= N ? 1.0f / (float)N : 0.0f;
}

static int argmax(const float *v, int n)
{
	int best = 0;
	for (int k = 1; k < n; k++)
		if (v[k] > v[best])
			best = k;
	return best;
}

void pl_oneshot_accuracy(const PlOneshot *o, int B, const float *y, const float *target, double *first,
	double *all)
{
	int N = o->ways;
	long hit_first = 0, hit_all = 0;
	for (int t = N; t < o->T; t++)
		for (int b = 0; b < B; b++) {
			size_t off = ((size_t)t * B + b) * N;
			int ok = argmax(y + off, N) == argmax(target + off, N);
			hit_all += ok;
			if (t == N)
				hit_first += ok;
		}
	*first = B > 0 ? (double)hit_first / B : 0.0;
	*all = B > 0 ? (double)hit_all / ((double)B * N) : 0.0;
}
