/* runtime/images.h -- image data sets for one-shot classification (internal to the runtime, not installed).
 *
 * Three formats, each read whole into memory as 8-bit pixels:
 *   IDX (Fashion-MNIST, gzip or plain):  pl_idx_load(images, labels)
 *   CIFAR-100 binary (for CIFAR-FS):      pl_cifar100_load(dir, class list)
 *   miniImageNet (JPEG/PNG + split CSV):  pl_miniimagenet_load(dir, split, side)
 * Every loader checks every size it reads and fails with a message "FILE: problem" in err (no "error:"
 * prefix, as the safetensors functions) and NULL; nothing in a bad file can make it crash or read out of
 * bounds. docs/oneshot.md gives the layouts, the class splits and the normalisation.
 */
#ifndef PLASTRT_IMAGES_H
#define PLASTRT_IMAGES_H

#include <stddef.h>
#include <stdint.h>

/* A set of images of one size. Pixels are stored per image as C planes of H rows of W bytes (CHW, the
 * layout the encoder's [C,H,W] values use). Labels are dense class ids 0..n_classes-1; class_name[k] is
 * the name of class k when the format has names (else NULL). Ownership: a PlImageSet owns its arrays
 * and names; pl_imageset_free releases everything. */
typedef struct PlImageSet {
	int n;            /* images */
	int C, H, W;
	uint8_t *pix;     /* n * C * H * W */
	int *label;       /* n */
	int n_classes;
	char **class_name; /* n_classes entries or NULL */
} PlImageSet;

void pl_imageset_free(PlImageSet *s);

/* Largest accepted image side and image count: far above every data set used, small enough that sizes
 * computed from a corrupt header cannot overflow. */
#define PL_IMAGES_MAX_SIDE 4096
#define PL_IMAGES_MAX_N 10000000

/* IDX files (http://yann.lecun.com/exdb/mnist/ format, big-endian): images magic 0x00000803 with dims
 * [n, rows, cols] of unsigned bytes; labels magic 0x00000801 with [n]. Either file may be gzip-compressed
 * (zlib reads plain files unchanged). Labels must be < 256; n_classes = 1 + the largest label. */
PlImageSet *pl_idx_load(const char *images_path, const char *labels_path, char *err, size_t errlen);

/* CIFAR-100 binary version (cifar-100-binary.tar.gz): DIR/train.bin and DIR/test.bin hold records of
 * 3074 bytes (coarse label, fine label, 1024 red, 1024 green, 1024 blue bytes of a 32x32 image), and
 * DIR/fine_label_names.txt the 100 fine class names, one per line, in label order. Keeps the images of
 * the classes named in class_list (a text file, one CIFAR-100 fine class name per line; blank lines and
 * lines starting with '#' ignored) from both files, relabelled 0..k-1 in the list's order. */
PlImageSet *pl_cifar100_load(const char *dir, const char *class_list, char *err, size_t errlen);

/* miniImageNet (Vinyals et al. images, Ravi & Larochelle split): DIR/SPLIT.csv with a header line and
 * rows "filename,label" (label = WordNet id), images under DIR/images/ as JPEG or PNG (decoded by
 * libjpeg/libpng when configure found them). Images are converted to RGB and resized to side x side
 * (bilinear) if they are not that size already. Classes are numbered in order of first appearance. */
PlImageSet *pl_miniimagenet_load(const char *dir, const char *split, int side, char *err, size_t errlen);

/* Decodes one JPEG or PNG file (chosen by its signature bytes) to 8-bit RGB, resized to side x side, into
 * out (3 * side * side bytes, CHW). Returns 0 or -1 with "FILE: problem" in err. */
int pl_image_file_rgb(const char *path, int side, uint8_t *out, char *err, size_t errlen);

/* The images of each class: idx[start[k] .. start[k+1]) are the indices of class k's images among those
 * selected. Ownership: owns its arrays; pl_class_index_free releases them. */
typedef struct PlClassIndex {
	int n_classes;
	int *start; /* n_classes + 1 */
	int *idx;
} PlClassIndex;
/* Indexes the images i of s with lo <= i < hi whose class is in [cls_lo, cls_hi), renumbered from 0. */
PlClassIndex *pl_class_index_new(const PlImageSet *s, int lo, int hi, int cls_lo, int cls_hi);
void pl_class_index_free(PlClassIndex *ci);

#endif
