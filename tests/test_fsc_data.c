/* tests/test_fsc_data.c -- image loaders and the oneshot task on small files generated here in the real
 * formats (IDX plain and gzip, CIFAR-100 binary, PNG and JPEG with split CSVs), valid and corrupt (every
 * corrupt file must give a message naming the file and the defect, never a crash), then the episode
 * structure of the oneshot task, and the installed Fashion-MNIST when present.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#ifdef HAVE_LIBPNG
#include <png.h>
#endif
#ifdef HAVE_LIBJPEG
#include <jpeglib.h>
#endif

#include "images.h"
#include "plastrt.h"
#include "task_oneshot.h"

static char tmpdir[64];
static char errbuf[2048];

static const char *tpath(const char *name)
{
	static char buf[8][512];
	static int k;
	k = (k + 1) % 8;
	snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
	return buf[k];
}

static void write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

static void write_gz(const char *path, const void *data, size_t n)
{
	gzFile g = gzopen(path, "wb");
	assert_non_null(g);
	assert_int_equal(gzwrite(g, data, (unsigned)n), (int)n);
	gzclose(g);
}

static size_t put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
	return 4;
}

/* IDX image file of n images h x w; image i is filled with pix(i, r, c); returns its size in buf */
static size_t idx_images(unsigned char *buf, uint32_t magic, int n, int h, int w, int pattern)
{
	size_t k = 0;
	k += put_be32(buf + k, magic);
	k += put_be32(buf + k, (uint32_t)n);
	k += put_be32(buf + k, (uint32_t)h);
	k += put_be32(buf + k, (uint32_t)w);
	for (int i = 0; i < n; i++)
		for (int p = 0; p < h * w; p++)
			buf[k++] = (unsigned char)(pattern ? (i * 7 + p * 13) % 256 : 3 * i + 1);
	return k;
}

static size_t idx_labels(unsigned char *buf, int n, int classes)
{
	size_t k = 0;
	k += put_be32(buf + k, 0x801);
	k += put_be32(buf + k, (uint32_t)n);
	for (int i = 0; i < n; i++)
		buf[k++] = (unsigned char)(i % classes);
	return k;
}

/* load must fail, and the message must name `file` and contain `what` */
#define EXPECT_FAIL(call, file, what)                                                                    \
	do {                                                                                             \
		errbuf[0] = 0;                                                                           \
		void *r_ = (void *)(call);                                                               \
		if (r_ || !strstr(errbuf, file) || !strstr(errbuf, what))                                \
			fprintf(stderr, "expected failure naming %s with '%s', got %s: '%s'\n", file, what,  \
				r_ ? "success" : "failure", errbuf);                                     \
		assert_null(r_);                                                                         \
		assert_non_null(strstr(errbuf, file));                                                   \
		assert_non_null(strstr(errbuf, what));                                                   \
	} while (0)

static void test_idx(void **state)
{
	(void)state;
	static unsigned char img[16 + 7 * 12 + 64], lab[8 + 7 + 8];
	size_t ni = idx_images(img, 0x803, 7, 3, 4, 0), nl = idx_labels(lab, 7, 3);
	write_file(tpath("i.idx"), img, ni);
	write_gz(tpath("l.idx.gz"), lab, nl);
	PlImageSet *s = pl_idx_load(tpath("i.idx"), tpath("l.idx.gz"), errbuf, sizeof errbuf);
	assert_non_null(s);
	assert_true(s->n == 7 && s->C == 1 && s->H == 3 && s->W == 4 && s->n_classes == 3);
	for (int i = 0; i < 7; i++) {
		assert_int_equal(s->label[i], i % 3);
		assert_int_equal(s->pix[i * 12 + 5], 3 * i + 1);
	}
	pl_imageset_free(s);

	/* defects, each named */
	EXPECT_FAIL(pl_idx_load(tpath("missing.idx"), tpath("l.idx.gz"), errbuf, sizeof errbuf), "missing.idx",
		"cannot open");
	idx_images(img, 0x802, 7, 3, 4, 0);
	write_file(tpath("badmagic.idx"), img, ni);
	EXPECT_FAIL(pl_idx_load(tpath("badmagic.idx"), tpath("l.idx.gz"), errbuf, sizeof errbuf), "badmagic.idx",
		"bad magic");
	idx_images(img, 0x803, 7, 3, 4, 0);
	write_gz(tpath("trunc.idx.gz"), img, ni - 5);
	EXPECT_FAIL(pl_idx_load(tpath("trunc.idx.gz"), tpath("l.idx.gz"), errbuf, sizeof errbuf), "trunc.idx.gz",
		"truncated");
	write_file(tpath("hdr.idx"), img, 10);
	EXPECT_FAIL(pl_idx_load(tpath("hdr.idx"), tpath("l.idx.gz"), errbuf, sizeof errbuf), "hdr.idx", "truncated");
	write_file(tpath("long.idx"), img, ni + 3);
	img[ni] = img[ni + 1] = img[ni + 2] = 9;
	write_file(tpath("long.idx"), img, ni + 3);
	EXPECT_FAIL(pl_idx_load(tpath("long.idx"), tpath("l.idx.gz"), errbuf, sizeof errbuf), "long.idx",
		"longer than its header");
	idx_images(img, 0x803, 0, 3, 4, 0);
	write_file(tpath("zero.idx"), img, 16);
	EXPECT_FAIL(pl_idx_load(tpath("zero.idx"), tpath("l.idx.gz"), errbuf, sizeof errbuf), "zero.idx",
		"image count 0 out of range");
	put_be32(img, 0x803); /* header only: 7 images of 99999 x 4 */
	put_be32(img + 4, 7);
	put_be32(img + 8, 99999);
	put_be32(img + 12, 4);
	write_file(tpath("huge.idx"), img, 16);
	EXPECT_FAIL(pl_idx_load(tpath("huge.idx"), tpath("l.idx.gz"), errbuf, sizeof errbuf), "huge.idx",
		"rows 99999 out of range");
	nl = idx_labels(lab, 6, 3);
	write_file(tpath("six.idx"), lab, nl);
	EXPECT_FAIL(pl_idx_load(tpath("i.idx"), tpath("six.idx"), errbuf, sizeof errbuf), "six.idx",
		"holds 6 labels but");
	/* a gzip file with a damaged body: zlib reports it, we name the file */
	nl = idx_labels(lab, 7, 3);
	write_gz(tpath("crc.idx.gz"), lab, nl);
	FILE *f = fopen(tpath("crc.idx.gz"), "r+b");
	assert_non_null(f);
	fseek(f, -6, SEEK_END); /* inside the CRC-32 trailer */
	fputc(0x5a, f);
	fputc(0xa5, f);
	fclose(f);
	EXPECT_FAIL(pl_idx_load(tpath("i.idx"), tpath("crc.idx.gz"), errbuf, sizeof errbuf), "crc.idx.gz", "corrupt gzip");
}

/* ---- CIFAR-100 ---- */

static void write_cifar(const char *name, int n, const int *fine, int coarse_bad)
{
	unsigned char *buf = calloc((size_t)n, 3074);
	for (int r = 0; r < n; r++) {
		unsigned char *rec = buf + (size_t)r * 3074;
		rec[0] = (unsigned char)(coarse_bad && r == n - 1 ? 25 : fine[r] / 5);
		rec[1] = (unsigned char)fine[r];
		for (int p = 0; p < 3072; p++)
			rec[2 + p] = (unsigned char)(r + p / 1024); /* channel c of record r holds r + c */
	}
	write_file(tpath(name), buf, (size_t)n * 3074);
	free(buf);
}

static void make_cifar_dir(void)
{
	char names[100 * 8] = "";
	for (int k = 0; k < 100; k++) {
		char nm[8];
		snprintf(nm, sizeof nm, "c%02d\n", k);
		strcat(names, nm);
	}
	write_file(tpath("fine_label_names.txt"), names, strlen(names));
	int tr[6] = {3, 7, 3, 50, 7, 99}, te[3] = {50, 3, 1};
	write_cifar("train.bin", 6, tr, 0);
	write_cifar("test.bin", 3, te, 0);
	const char *list = "# a comment\nc50\n\nc03\r\n";
	write_file(tpath("list.txt"), list, strlen(list));
}

static void test_cifar(void **state)
{
	(void)state;
	make_cifar_dir();
	PlImageSet *s = pl_cifar100_load(tmpdir, tpath("list.txt"), errbuf, sizeof errbuf);
	if (!s)
		fprintf(stderr, "%s\n", errbuf);
	assert_non_null(s);
	/* train records 0, 2 (c03) and 3 (c50), test records 0 (c50) and 1 (c03), in file order */
	assert_int_equal(s->n, 5);
	assert_int_equal(s->n_classes, 2);
	assert_string_equal(s->class_name[0], "c50");
	assert_string_equal(s->class_name[1], "c03");
	const int want_label[5] = {1, 1, 0, 0, 1}, want_rec[5] = {0, 2, 3, 0, 1};
	for (int i = 0; i < 5; i++) {
		assert_int_equal(s->label[i], want_label[i]);
		for (int c = 0; c < 3; c++)
			assert_int_equal(s->pix[(size_t)i * 3072 + c * 1024 + 17], want_rec[i] + c);
	}
	pl_imageset_free(s);

	const char *bad = "c03\nnot_a_class\n";
	write_file(tpath("bad.txt"), bad, strlen(bad));
	EXPECT_FAIL(pl_cifar100_load(tmpdir, tpath("bad.txt"), errbuf, sizeof errbuf), "bad.txt:2", "not a CIFAR-100 class");
	const char *dup = "c03\nc03\n";
	write_file(tpath("dup.txt"), dup, strlen(dup));
	EXPECT_FAIL(pl_cifar100_load(tmpdir, tpath("dup.txt"), errbuf, sizeof errbuf), "dup.txt:2", "twice");
	int te[3] = {50, 3, 1};
	write_cifar("test.bin", 3, te, 1);
	EXPECT_FAIL(pl_cifar100_load(tmpdir, tpath("list.txt"), errbuf, sizeof errbuf), "test.bin", "out of range");
	unsigned char junk[3074 + 10] = {0};
	write_file(tpath("test.bin"), junk, sizeof junk);
	EXPECT_FAIL(pl_cifar100_load(tmpdir, tpath("list.txt"), errbuf, sizeof errbuf), "test.bin",
		"not a positive multiple");
	write_cifar("test.bin", 3, te, 0);
	unlink(tpath("fine_label_names.txt"));
	EXPECT_FAIL(pl_cifar100_load(tmpdir, tpath("list.txt"), errbuf, sizeof errbuf), "fine_label_names.txt",
		"cannot open");
}

/* ---- miniImageNet: PNG and JPEG written with the same libraries ---- */

#if defined(HAVE_LIBPNG) && defined(HAVE_LIBJPEG)
static void rgb_pattern(unsigned char *rgb, int w, int h, int seed)
{
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int c = 0; c < 3; c++)
				rgb[(y * w + x) * 3 + c] = (unsigned char)(seed * 40 + y * 10 + x * 3 + c * 60);
}

static void write_png(const char *path, int w, int h, int seed)
{
	unsigned char *rgb = malloc((size_t)w * h * 3);
	rgb_pattern(rgb, w, h, seed);
	png_image im;
	memset(&im, 0, sizeof im);
	im.version = PNG_IMAGE_VERSION;
	im.width = (png_uint_32)w;
	im.height = (png_uint_32)h;
	im.format = PNG_FORMAT_RGB;
	assert_true(png_image_write_to_file(&im, path, 0, rgb, 0, NULL));
	free(rgb);
}

static void write_jpeg(const char *path, int w, int h, int seed)
{
	unsigned char *rgb = malloc((size_t)w * h * 3);
	rgb_pattern(rgb, w, h, seed);
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr e;
	c.err = jpeg_std_error(&e);
	jpeg_create_compress(&c);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	jpeg_stdio_dest(&c, f);
	c.image_width = (JDIMENSION)w;
	c.image_height = (JDIMENSION)h;
	c.input_components = 3;
	c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, 95, TRUE);
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		JSAMPROW row = rgb + (size_t)c.next_scanline * w * 3;
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	fclose(f);
	free(rgb);
}

static void truncate_copy(const char *from, const char *to, long keep)
{
	FILE *f = fopen(from, "rb");
	assert_non_null(f);
	unsigned char buf[65536];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	assert_true((long)n > keep);
	write_file(to, buf, (size_t)keep);
}

static void test_mini(void **state)
{
	(void)state;
	char images[512];
	snprintf(images, sizeof images, "%s/images", tmpdir);
	assert_int_equal(mkdir(images, 0700), 0);
	write_png(tpath("images/a1.png"), 8, 6, 1);
	write_png(tpath("images/a2.png"), 8, 6, 2);
	write_jpeg(tpath("images/b1.jpg"), 16, 12, 3);
	write_png(tpath("images/b2.png"), 4, 3, 4);
	const char *csv = "filename,label\na1.png,n01\nb1.jpg,n02\r\n\na2.png,n01\nb2.png,n02\n";
	write_file(tpath("train.csv"), csv, strlen(csv));
	PlImageSet *s = pl_miniimagenet_load(tmpdir, "train", 8, errbuf, sizeof errbuf);
	if (!s)
		fprintf(stderr, "%s\n", errbuf);
	assert_non_null(s);
	assert_true(s->n == 4 && s->C == 3 && s->H == 8 && s->W == 8 && s->n_classes == 2);
	assert_string_equal(s->class_name[0], "n01");
	assert_string_equal(s->class_name[1], "n02");
	assert_true(s->label[0] == 0 && s->label[1] == 1 && s->label[2] == 0 && s->label[3] == 1);
	/* a PNG already 8 wide is resampled only in height (6 -> 8); the column order and the channel
	 * planes survive: pixel (y=0, x=5) of channel 2 is seed*40 + 15 + 120 in row 0 */
	assert_int_equal(s->pix[2 * 64 + 0 * 8 + 5], 40 + 15 + 120);
	pl_imageset_free(s);
	/* identity size: exact pixels */
	uint8_t sq[3 * 36];
	write_png(tpath("images/sq.png"), 6, 6, 0);
	assert_int_equal(pl_image_file_rgb(tpath("images/sq.png"), 6, sq, errbuf, sizeof errbuf), 0);
	for (int y = 0; y < 6; y++)
		for (int x = 0; x < 6; x++)
			for (int c = 0; c < 3; c++)
				assert_int_equal(sq[c * 36 + y * 6 + x], (unsigned char)(y * 10 + x * 3 + c * 60));

	/* defects */
	truncate_copy(tpath("images/b1.jpg"), tpath("images/cut.jpg"), 200);
	EXPECT_FAIL(pl_image_file_rgb(tpath("images/cut.jpg"), 8, sq, errbuf, sizeof errbuf) ? NULL : sq, "cut.jpg",
		"corrupt JPEG");
	truncate_copy(tpath("images/a1.png"), tpath("images/cut.png"), 60);
	EXPECT_FAIL(pl_image_file_rgb(tpath("images/cut.png"), 8, sq, errbuf, sizeof errbuf) ? NULL : sq, "cut.png",
		"bad PNG");
	write_file(tpath("images/text.png"), "hello world", 11);
	EXPECT_FAIL(pl_image_file_rgb(tpath("images/text.png"), 8, sq, errbuf, sizeof errbuf) ? NULL : sq, "text.png",
		"neither a JPEG nor a PNG");
	const char *c2 = "filename,label\na1.png,n01\nb1.jpg\n";
	write_file(tpath("val.csv"), c2, strlen(c2));
	EXPECT_FAIL(pl_miniimagenet_load(tmpdir, "val", 8, errbuf, sizeof errbuf), "val.csv:3", "expected 'filename,label'");
	const char *c3 = "filename,label\na1.png,n01\ngone.jpg,n02\n";
	write_file(tpath("val.csv"), c3, strlen(c3));
	EXPECT_FAIL(pl_miniimagenet_load(tmpdir, "val", 8, errbuf, sizeof errbuf), "gone.jpg", "cannot open");
	const char *c4 = "file,lab\na1.png,n01\n";
	write_file(tpath("val.csv"), c4, strlen(c4));
	EXPECT_FAIL(pl_miniimagenet_load(tmpdir, "val", 8, errbuf, sizeof errbuf), "val.csv:1", "header");
	const char *c5 = "filename,label\n../x.png,n01\n";
	write_file(tpath("val.csv"), c5, strlen(c5));
	EXPECT_FAIL(pl_miniimagenet_load(tmpdir, "val", 8, errbuf, sizeof errbuf), "val.csv:2", "leaves the images");
	EXPECT_FAIL(pl_miniimagenet_load(tmpdir, "test", 8, errbuf, sizeof errbuf), "test.csv", "cannot open");
	const char *names[] = {"a1.png", "a2.png", "b1.jpg", "b2.png", "sq.png", "cut.jpg", "cut.png", "text.png"};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		char p[64];
		snprintf(p, sizeof p, "images/%s", names[i]);
		unlink(tpath(p));
	}
	rmdir(images);
	unlink(tpath("train.csv"));
	unlink(tpath("val.csv"));
}

/* the oneshot task on a generated miniImageNet folder (2 classes x 2 images per split, 16 x 16): augment=1
 * pads the crop by 8 (MetaOptNet's RandomCrop(84, padding=8)), not by 4 as for CIFAR-FS: some
 * meta-training image starts with more than 4 rows of padding, and none with more than 8 */
static void test_mini_task_pad(void **state)
{
	(void)state;
	enum { S = 16, B = 8 };
	static const char *const split[3] = {"train", "val", "test"};
	char d[512], p[600], csv[3][256];
	snprintf(d, sizeof d, "%s/mt", tmpdir);
	assert_int_equal(mkdir(d, 0700), 0);
	snprintf(p, sizeof p, "%s/images", d);
	assert_int_equal(mkdir(p, 0700), 0);
	for (int sp = 0; sp < 3; sp++) {
		int n = snprintf(csv[sp], sizeof csv[sp], "filename,label\n");
		for (int k = 0; k < 4; k++) {
			snprintf(p, sizeof p, "%s/images/%d%d.png", d, sp, k);
			write_png(p, S, S, sp * 4 + k);
			n += snprintf(csv[sp] + n, sizeof csv[sp] - (size_t)n, "%d%d.png,n%d%d\n", sp, k, sp, k / 2);
		}
		snprintf(p, sizeof p, "%s/%s.csv", d, split[sp]);
		write_file(p, csv[sp], strlen(csv[sp]));
	}
	char o1[600];
	snprintf(o1, sizeof o1, "dir=%s", d);
	const char *opts[5] = {"data=mini", o1, "side=16", "ways=2", "augment=1"};
	PlOneshot *o = pl_oneshot_new(5, opts, errbuf, sizeof errbuf);
	if (!o)
		fprintf(stderr, "%s\n", errbuf);
	assert_non_null(o);
	int T = pl_oneshot_T(o), I = pl_oneshot_in_size(o);
	assert_int_equal(I, 3 * S * S + 2);
	float *x = malloc(sizeof(float) * T * B * I), *y = malloc(sizeof(float) * T * B * 2), mask[4];
	PlRng r;
	pl_rng_seed(&r, 9);
	int most = 0; /* the most leading rows of channel 0 equal to the padding */
	for (int rep = 0; rep < 8; rep++) {
		pl_oneshot_sample(o, PL_SPLIT_TRAIN, 0, &r, B, x, y, mask);
		/* the padding's normalised value is the smallest (pixel 0); images here rarely reach it */
		float pad = x[0];
		for (int k = 0; k < T * B; k++)
			for (int q = 0; q < S * S; q++)
				pad = x[(size_t)k * I + q] < pad ? x[(size_t)k * I + q] : pad;
		for (int k = 0; k < T * B; k++) {
			int rows = 0, ok = 1;
			for (int yy = 0; yy < S && ok; yy++) {
				for (int xx = 0; xx < S && ok; xx++)
					ok = x[(size_t)k * I + yy * S + xx] == pad;
				rows += ok;
			}
			most = rows > most ? rows : most;
		}
	}
	assert_true(most > 4);
	assert_true(most <= 8);
	free(x);
	free(y);
	pl_oneshot_free(o);
	for (int sp = 0; sp < 3; sp++) {
		for (int k = 0; k < 4; k++) {
			snprintf(p, sizeof p, "%s/images/%d%d.png", d, sp, k);
			unlink(p);
		}
		snprintf(p, sizeof p, "%s/%s.csv", d, split[sp]);
		unlink(p);
	}
	snprintf(p, sizeof p, "%s/images", d);
	rmdir(p);
	rmdir(d);
}
#else
static void test_mini(void **state)
{
	(void)state;
	skip();
}

static void test_mini_task_pad(void **state)
{
	(void)state;
	skip();
}
#endif

/* ---- the oneshot task on a generated Fashion-MNIST-like folder ---- */

enum { NCLS = 10, PER = 3, SIDE = 4 };

/* image i (class i % 10) is filled with the value 3i+1, so a normalised step identifies its image */
static void make_fashion_dir(const char *sub, int pattern)
{
	char d[512];
	snprintf(d, sizeof d, "%s/%s", tmpdir, sub);
	mkdir(d, 0700);
	static unsigned char img[16 + NCLS * PER * SIDE * SIDE], lab[8 + NCLS * PER];
	size_t ni = idx_images(img, 0x803, NCLS * PER, SIDE, SIDE, pattern), nl = idx_labels(lab, NCLS * PER, NCLS);
	char p[600];
	snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", d);
	write_gz(p, img, ni);
	snprintf(p, sizeof p, "%s/train-labels-idx1-ubyte.gz", d);
	write_gz(p, lab, nl);
	/* the test file: the same classes, different pixel values (offset by 100) */
	for (size_t k = 16; k < ni; k++)
		img[k] = (unsigned char)(img[k] + 100);
	snprintf(p, sizeof p, "%s/t10k-images-idx3-ubyte.gz", d);
	write_gz(p, img, ni);
	snprintf(p, sizeof p, "%s/t10k-labels-idx1-ubyte.gz", d);
	write_gz(p, lab, nl);
}

static void remove_fashion_dir(const char *sub)
{
	static const char *const f[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
		"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"};
	char p[600];
	for (int k = 0; k < 4; k++) {
		snprintf(p, sizeof p, "%s/%s/%s", tmpdir, sub, f[k]);
		unlink(p);
	}
	snprintf(p, sizeof p, "%s/%s", tmpdir, sub);
	rmdir(p);
}

static PlTask *new_task(const char *sub, const char *extra)
{
	char o1[600], o2[64];
	snprintf(o1, sizeof o1, "dir=%s/%s", tmpdir, sub);
	snprintf(o2, sizeof o2, "%s", extra ? extra : "ways=5");
	const char *opts[2] = {o1, o2};
	PlTask *t = pl_task_new("oneshot", 2, opts, errbuf, sizeof errbuf);
	if (!t)
		fprintf(stderr, "%s\n", errbuf);
	return t;
}

static void test_oneshot_episodes(void **state)
{
	(void)state;
	make_fashion_dir("fm", 0);
	PlTask *t = new_task("fm", NULL);
	assert_non_null(t);
	int T = pl_task_T(t), I = pl_task_in_size(t), O = pl_task_pred_size(t);
	assert_int_equal(T, 10);
	assert_int_equal(I, SIDE * SIDE + 5);
	assert_int_equal(O, 5);
	assert_int_equal(pl_task_loss(t), PL_LOSS_CE);
	assert_non_null(strstr(pl_task_describe(t), "oneshot"));
	enum { B = 16 };
	float *x = malloc(sizeof(float) * T * B * I), *y = malloc(sizeof(float) * T * B * O), mask[10];
	float *x2 = malloc(sizeof(float) * T * B * I);
	for (int split = 0; split < 3; split++) {
		pl_task_set_split(t, (PlSplit)split);
		PlRng r;
		pl_rng_seed(&r, 42 + (uint64_t)split);
		pl_task_sample(t, &r, B, x, y, mask);
		/* structure; the class of each image is checked in test_oneshot_splits */
		for (int b = 0; b < B; b++) {
			int seen_s[5] = {0}, seen_q[5] = {0};
			float sup_val[5], qry_val[5];
			for (int s = 0; s < T; s++) {
				const float *xs = x + ((size_t)s * B + b) * I, *ys = y + ((size_t)s * B + b) * O;
				int lab = -1, ones = 0;
				for (int k = 0; k < O; k++)
					if (ys[k] == 1.0f) {
						lab = k;
						ones++;
					} else
						assert_true(ys[k] == 0.0f);
				assert_int_equal(ones, 1);
				for (int p = 1; p < SIDE * SIDE; p++)
					assert_true(xs[p] == xs[0]); /* a constant image stays constant */
				if (s < 5) {
					for (int k = 0; k < 5; k++)
						assert_true(xs[SIDE * SIDE + k] == (k == lab ? 1.0f : 0.0f));
					seen_s[lab]++;
					sup_val[lab] = xs[0];
				} else {
					for (int k = 0; k < 5; k++)
						assert_true(xs[SIDE * SIDE + k] == 0.0f);
					seen_q[lab]++;
					qry_val[lab] = xs[0];
				}
			}
			for (int k = 0; k < 5; k++) {
				assert_int_equal(seen_s[k], 1);
				assert_int_equal(seen_q[k], 1);
				assert_true(sup_val[k] != qry_val[k]); /* the query is another image */
			}
		}
		for (int s = 0; s < T; s++)
			assert_true(mask[s] == (s >= 5 ? 0.2f : 0.0f));
		/* determinism: the same generator state gives the same batch */
		pl_rng_seed(&r, 42 + (uint64_t)split);
		pl_task_sample(t, &r, B, x2, y, mask);
		assert_memory_equal(x, x2, sizeof(float) * T * B * I);
	}
	free(x2);
	free(x);
	free(y);
	pl_task_free(t);
	remove_fashion_dir("fm");
}

/* Class membership per split, through the image set directly: the task's split rule is classes 0-4
 * (train file) for meta-training and 5-9 for validation (train file) and test (test file). Identify a
 * step's image by inverting the normalisation with two known images. */
static void test_oneshot_splits(void **state)
{
	(void)state;
	make_fashion_dir("fm2", 0);
	char o1[600];
	snprintf(o1, sizeof o1, "dir=%s/fm2", tmpdir);
	const char *opts[1] = {o1};
	PlOneshot *o = pl_oneshot_new(1, opts, errbuf, sizeof errbuf);
	assert_non_null(o);
	enum { B = 32 };
	int T = pl_oneshot_T(o), I = pl_oneshot_in_size(o);
	float *x = malloc(sizeof(float) * T * B * I), *y = malloc(sizeof(float) * T * B * 5), mask[10];
	/* mean and std of the meta-training images (classes 0-4 of the train file: images i with i%10 < 5,
	 * value 3i+1), to invert the normalisation */
	double sum = 0, sum2 = 0;
	int n = 0;
	for (int i = 0; i < NCLS * PER; i++)
		if (i % NCLS < 5) {
			double v = (3 * i + 1) / 255.0;
			sum += v * SIDE * SIDE;
			sum2 += v * v * SIDE * SIDE;
			n += SIDE * SIDE;
		}
	double m = sum / n, sd = sqrt(sum2 / n - m * m);
	for (int split = 0; split < 3; split++) {
		PlRng r;
		pl_rng_seed(&r, 7);
		pl_oneshot_sample(o, (PlSplit)split, 0, &r, B, x, y, mask);
		for (int b = 0; b < B; b++) {
			int cls_of_label[5];
			for (int k = 0; k < 5; k++)
				cls_of_label[k] = -1;
			for (int s = 0; s < T; s++) {
				const float *xs = x + ((size_t)s * B + b) * I, *ys = y + ((size_t)s * B + b) * 5;
				double raw = (xs[0] * sd + m) * 255.0 - (split == PL_SPLIT_TEST ? 100 : 0);
				long v = lround(raw);
				assert_true(fabs(raw - (double)v) < 1e-3);
				assert_int_equal((v - 1) % 3, 0);
				int img = (int)(v - 1) / 3, cls = img % NCLS, lab = 0;
				while (ys[lab] != 1.0f)
					lab++;
				if (split == PL_SPLIT_TRAIN)
					assert_true(cls < 5);
				else
					assert_true(cls >= 5);
				/* support and query of one label show the same true class */
				if (cls_of_label[lab] < 0)
					cls_of_label[lab] = cls;
				assert_int_equal(cls_of_label[lab], cls);
				/* the label input is the target at support steps and 0 at query steps */
				for (int k = 0; k < 5; k++)
					assert_true(xs[I - 5 + k] == (s < 5 ? ys[k] : 0.0f));
			}
		}
		/* the loss covers the query steps only, averaged over them */
		for (int s = 0; s < T; s++)
			assert_true(mask[s] == (s < 5 ? 0.0f : 0.2f));
	}
	/* accuracy: predicting the target scores 1, a constant prediction scores 1/5 on average */
	double first, all;
	pl_oneshot_accuracy(o, B, y, y, &first, &all);
	assert_true(first == 1.0 && all == 1.0);
	free(x);
	free(y);
	pl_oneshot_free(o);
	remove_fashion_dir("fm2");
}

/* easy=P: P% of meta-training episodes use k in 2..ways-1 of the labels; their extra support and query
 * slots repeat labels in use, with other images of the same class (never the label's first support
 * image); validation and test episodes stay ways-way. */
static void test_oneshot_easy(void **state)
{
	(void)state;
	make_fashion_dir("fm6", 0);
	char o1[600];
	snprintf(o1, sizeof o1, "dir=%s/fm6", tmpdir);
	const char *opts[2] = {o1, "easy=60"};
	PlOneshot *o = pl_oneshot_new(2, opts, errbuf, sizeof errbuf);
	assert_non_null(o);
	assert_non_null(strstr(pl_oneshot_describe(o), "easy=60%"));
	enum { B = 200 };
	int T = pl_oneshot_T(o), I = pl_oneshot_in_size(o);
	float *x = malloc(sizeof(float) * T * B * I), *y = malloc(sizeof(float) * T * B * 5), mask[10];
	for (int split = 0; split < 3; split++) {
		PlRng r;
		pl_rng_seed(&r, 11);
		pl_oneshot_sample(o, (PlSplit)split, 0, &r, B, x, y, mask);
		int count_k[6] = {0};
		for (int b = 0; b < B; b++) {
			int n_sup[5] = {0}, n_qry[5] = {0};
			float first[5] = {0};
			for (int s = 0; s < T; s++) {
				const float *xs = x + ((size_t)s * B + b) * I, *ys = y + ((size_t)s * B + b) * 5;
				int lab = 0;
				while (ys[lab] != 1.0f)
					lab++;
				if (s < 5) {
					if (n_sup[lab]++ == 0)
						first[lab] = xs[0];
					else
						assert_true(xs[0] != first[lab]);
					assert_true(xs[I - 5 + lab] == 1.0f);
				} else {
					assert_true(n_sup[lab] > 0); /* a query's label was given in the support */
					assert_true(xs[0] != first[lab]);
					n_qry[lab]++;
				}
			}
			int k = 0;
			for (int l = 0; l < 5; l++) {
				k += n_sup[l] > 0;
				assert_true((n_sup[l] > 0) == (n_qry[l] > 0)); /* every label in use is queried */
			}
			assert_true(k >= 2 && k <= 5);
			count_k[k]++;
		}
		if (split == PL_SPLIT_TRAIN) {
			for (int k = 2; k <= 4; k++)
				assert_true(count_k[k] > 20); /* about 0.6 * 200 / 3 = 40 each */
			assert_true(count_k[5] > 50 && count_k[5] < 110); /* about 80 */
		} else
			assert_int_equal(count_k[5], B);
	}
	free(x);
	free(y);
	pl_oneshot_free(o);
	const char *bad[2] = {o1, "easy=101"};
	EXPECT_FAIL(pl_oneshot_new(2, bad, errbuf, sizeof errbuf), "oneshot", "bad value '101' for option easy");
	remove_fashion_dir("fm6");
}

/* grow=S: meta-training episodes at step s have k = min(ways, 2 + s/S) classes: ways-k blank steps, k support
 * steps with k distinct labels, k queries of exactly those labels (new images), ways-k blank steps; mask 1/k
 * on the queries. Validation and test stay ways-way at every step. */
static void test_oneshot_grow(void **state)
{
	(void)state;
	make_fashion_dir("fm7", 0);
	char o1[600];
	snprintf(o1, sizeof o1, "dir=%s/fm7", tmpdir);
	const char *opts[2] = {o1, "grow=100"};
	PlOneshot *o = pl_oneshot_new(2, opts, errbuf, sizeof errbuf);
	assert_non_null(o);
	assert_non_null(strstr(pl_oneshot_describe(o), "grow=100"));
	assert_int_equal(pl_oneshot_grow_ways(o, PL_SPLIT_TRAIN, 0), 2);
	assert_int_equal(pl_oneshot_grow_ways(o, PL_SPLIT_TRAIN, 99), 2);
	assert_int_equal(pl_oneshot_grow_ways(o, PL_SPLIT_TRAIN, 100), 3);
	assert_int_equal(pl_oneshot_grow_ways(o, PL_SPLIT_TRAIN, 299), 4);
	assert_int_equal(pl_oneshot_grow_ways(o, PL_SPLIT_TRAIN, 300), 5);
	assert_int_equal(pl_oneshot_grow_ways(o, PL_SPLIT_TRAIN, 1000000), 5);
	assert_int_equal(pl_oneshot_grow_ways(o, PL_SPLIT_VAL, 0), 5);
	assert_int_equal(pl_oneshot_grow_ways(o, PL_SPLIT_TEST, 0), 5);
	enum { B = 100 };
	int T = pl_oneshot_T(o), I = pl_oneshot_in_size(o);
	float *x = malloc(sizeof(float) * T * B * I), *y = malloc(sizeof(float) * T * B * 5), mask[10];
	const long steps[4] = {0, 150, 250, 400};
	for (int si = 0; si < 4; si++)
		for (int split = 0; split < 3; split++) {
			int k = split == PL_SPLIT_TRAIN ? pl_oneshot_grow_ways(o, PL_SPLIT_TRAIN, steps[si]) : 5;
			PlRng r;
			pl_rng_seed(&r, 13);
			pl_oneshot_sample(o, (PlSplit)split, steps[si], &r, B, x, y, mask);
			for (int t = 0; t < T; t++)
				assert_float_equal(mask[t], t >= 5 && t < 5 + k ? 1.0f / (float)k : 0.0f, 0.0f);
			int used_labels[5] = {0};
			for (int b = 0; b < B; b++) {
				int n_sup[5] = {0}, n_qry[5] = {0};
				float sup_px[5] = {0};
				for (int t = 0; t < T; t++) {
					const float *xs = x + ((size_t)t * B + b) * I, *ys = y + ((size_t)t * B + b) * 5;
					int blank = (t < 5 && t < 5 - k) || t >= 5 + k, lab = -1, ones = 0;
					for (int l = 0; l < 5; l++)
						if (ys[l] == 1.0f) {
							lab = l;
							ones++;
						} else
							assert_true(ys[l] == 0.0f);
					if (blank) {
						assert_int_equal(ones, 0);
						for (int i = 0; i < I; i++)
							assert_true(xs[i] == 0.0f);
						continue;
					}
					assert_int_equal(ones, 1);
					used_labels[lab] = 1;
					for (int l = 0; l < 5; l++)
						assert_true(xs[I - 5 + l] == (t < 5 && l == lab ? 1.0f : 0.0f));
					if (t < 5) {
						assert_int_equal(n_sup[lab]++, 0); /* k distinct labels in the support */
						sup_px[lab] = xs[0];
					} else {
						assert_int_equal(n_sup[lab], 1); /* a query's label was given */
						assert_true(xs[0] != sup_px[lab]); /* with another image */
						n_qry[lab]++;
					}
				}
				int nl = 0;
				for (int l = 0; l < 5; l++) {
					nl += n_sup[l];
					assert_int_equal(n_qry[l], n_sup[l]); /* each label in use is queried once */
				}
				assert_int_equal(nl, k);
			}
			for (int l = 0; l < 5; l++)
				assert_true(used_labels[l]); /* the k labels are drawn from all five */
		}
	pl_oneshot_free(o);
	/* grow_first=1 grow_pack=1: labels 0..k-1; support at steps 0..k-1, queries at k..2k-1, blanks after */
	const char *opts2[4] = {o1, "grow=100", "grow_first=1", "grow_pack=1"};
	o = pl_oneshot_new(4, opts2, errbuf, sizeof errbuf);
	assert_non_null(o);
	assert_non_null(strstr(pl_oneshot_describe(o), "grow=100 grow_first=1 grow_pack=1"));
	PlRng r2;
	pl_rng_seed(&r2, 17);
	pl_oneshot_sample(o, PL_SPLIT_TRAIN, 150, &r2, B, x, y, mask);
	for (int t = 0; t < T; t++)
		assert_float_equal(mask[t], t >= 3 && t < 6 ? 1.0f / 3.0f : 0.0f, 0.0f);
	for (int b = 0; b < B; b++) {
		int seen[5] = {0};
		for (int t = 0; t < T; t++) {
			const float *xs = x + ((size_t)t * B + b) * I, *ys = y + ((size_t)t * B + b) * 5;
			int lab = -1;
			for (int l = 0; l < 5; l++)
				if (ys[l] == 1.0f)
					lab = l;
			if (t >= 6) {
				assert_int_equal(lab, -1);
				assert_true(xs[0] == 0.0f && xs[I - 5] == 0.0f);
				continue;
			}
			assert_true(lab >= 0 && lab < 3);
			assert_true(xs[I - 5 + lab] == (t < 3 ? 1.0f : 0.0f));
			seen[lab] += t < 3 ? 1 : 10;
		}
		for (int l = 0; l < 3; l++)
			assert_int_equal(seen[l], 11); /* each of labels 0..2 once in the support, once queried */
	}
	free(x);
	free(y);
	pl_oneshot_free(o);
	const char *bad[2] = {o1, "grow=-1"};
	EXPECT_FAIL(pl_oneshot_new(2, bad, errbuf, sizeof errbuf), "oneshot", "bad value '-1' for option grow");
	remove_fashion_dir("fm7");
}

/* A generated Fashion-MNIST folder `sub` (pattern 1) and two tasks on it: *a with the option `opt`, *p
 * without; o1 receives the dir= option. */
static void task_pair(const char *sub, const char *opt, char o1[600], PlOneshot **a, PlOneshot **p)
{
	make_fashion_dir(sub, 1);
	snprintf(o1, 600, "dir=%s/%s", tmpdir, sub);
	const char *on[2] = {o1, opt}, *off[1] = {o1};
	*a = pl_oneshot_new(2, on, errbuf, sizeof errbuf);
	*p = pl_oneshot_new(1, off, errbuf, sizeof errbuf);
	assert_non_null(*a);
	assert_non_null(*p);
}

/* Validation and test episodes of a and p (B each, same seed) must be identical: options that change the
 * meta-training images only. */
static void same_outside_training(const PlOneshot *a, const PlOneshot *p, int B, float *xa, float *xp, float *y,
	float *mask)
{
	size_t n = (size_t)pl_oneshot_T(a) * B * pl_oneshot_in_size(a);
	PlRng r;
	for (int split = PL_SPLIT_VAL; split <= PL_SPLIT_TEST; split++) {
		pl_rng_seed(&r, 5);
		pl_oneshot_sample(a, (PlSplit)split, 0, &r, B, xa, y, mask);
		pl_rng_seed(&r, 5);
		pl_oneshot_sample(p, (PlSplit)split, 0, &r, B, xp, y, mask);
		assert_memory_equal(xa, xp, sizeof(float) * n);
	}
}

/* augmentation: every output pixel is a pixel of the source image or the zero padding, and it changes
 * meta-training episodes only */
static void test_oneshot_augment(void **state)
{
	(void)state;
	char o1[600];
	PlOneshot *a, *p;
	task_pair("fm3", "augment=1", o1, &a, &p);
	enum { B = 8 };
	int T = pl_oneshot_T(a), I = pl_oneshot_in_size(a);
	float *xa = malloc(sizeof(float) * T * B * I), *xp = malloc(sizeof(float) * T * B * I);
	float *y = malloc(sizeof(float) * T * B * 5), mask[10];
	PlRng r;
	pl_rng_seed(&r, 3);
	pl_oneshot_sample(a, PL_SPLIT_VAL, 0, &r, B, xa, y, mask);
	pl_rng_seed(&r, 3);
	pl_oneshot_sample(p, PL_SPLIT_VAL, 0, &r, B, xp, y, mask);
	assert_memory_equal(xa, xp, sizeof(float) * T * B * I); /* no augmentation outside meta-training */
	pl_rng_seed(&r, 3);
	pl_oneshot_sample(a, PL_SPLIT_TRAIN, 0, &r, B, xa, y, mask);
	pl_rng_seed(&r, 3);
	pl_oneshot_sample(p, PL_SPLIT_TRAIN, 0, &r, B, xp, y, mask);
	int changed = 0;
	float pad = 0; /* the zero padding, normalised: the one value not found among the data's pixels */
	int have_pad = 0;
	for (int b = 0; b < B * T; b++) {
		const float *sa = xa + (size_t)b * I;
		/* the augmentation draws shift the generator, so the steps show other images than the
		 * unaugmented batch: each augmented value must be some pixel of that batch's data or the pad */
		for (int q = 0; q < SIDE * SIDE; q++) {
			int found = 0;
			for (int c = 0; c < B * T && !found; c++)
				for (int q2 = 0; q2 < SIDE * SIDE && !found; q2++)
					found = xp[(size_t)c * I + q2] == sa[q];
			if (!found) {
				if (!have_pad) {
					pad = sa[q];
					have_pad = 1;
				}
				assert_true(sa[q] == pad);
			}
		}
		changed += memcmp(sa, xp + (size_t)b * I, sizeof(float) * SIDE * SIDE) != 0;
	}
	assert_true(changed > 0);
	free(xa);
	free(xp);
	free(y);
	pl_oneshot_free(a);
	pl_oneshot_free(p);
	remove_fashion_dir("fm3");
}

/* the task's normalisation of make_fashion_dir(.., 1): mean and population std of the meta-training images
 * (classes 0-4, idx_images pattern 1) */
static void train_norm(double *mean, double *inv_std)
{
	double sum = 0, sum2 = 0, cnt = 0;
	for (int i = 0; i < NCLS * PER; i++)
		for (int p = 0; p < SIDE * SIDE && i % NCLS < 5; p++) {
			double v = ((i * 7 + p * 13) % 256) / 255.0;
			sum += v;
			sum2 += v * v;
			cnt++;
		}
	*mean = sum / cnt;
	*inv_std = 1 / sqrt(sum2 / cnt - *mean * *mean);
}

/* pl_color_jitter against its formulas on a 3-channel 2x2 image and a 1-channel one: each operation
 * alone, clamping, and that the order matters */
static void test_color_jitter(void **state)
{
	(void)state;
	enum { P = 4 };
	const float rgb[3 * P] = {0.1f, 0.5f, 0.9f, 0.3f, /* R */ 0.2f, 0.4f, 0.8f, 0.0f, /* G */ 0.6f, 0.1f, 0.7f, 1.0f};
	float img[3 * P];
	double gray[P], gmean = 0;
	for (int q = 0; q < P; q++) {
		gray[q] = 0.2989 * rgb[q] + 0.587 * rgb[P + q] + 0.114 * rgb[2 * P + q];
		gmean += gray[q] / P;
	}
	const int ord[3] = {0, 1, 2};
	/* brightness 1.3: scaled, the 0.9 and 1.0 values clamped to 1 */
	memcpy(img, rgb, sizeof img);
	pl_color_jitter(img, 3, 2, 2, (const double[3]){1.3, 1, 1}, ord);
	for (int i = 0; i < 3 * P; i++) {
		double want = rgb[i] * 1.3 > 1 ? 1 : rgb[i] * 1.3;
		assert_true(fabs(img[i] - want) < 1e-6);
	}
	/* contrast 0.7: 0.7 x + 0.3 mean(grey) */
	memcpy(img, rgb, sizeof img);
	pl_color_jitter(img, 3, 2, 2, (const double[3]){1, 0.7, 1}, ord);
	for (int i = 0; i < 3 * P; i++)
		assert_true(fabs(img[i] - (0.7 * rgb[i] + 0.3 * gmean)) < 1e-6);
	/* saturation 1.4: 1.4 x - 0.4 grey(pixel), clamped at 0 and 1 */
	memcpy(img, rgb, sizeof img);
	pl_color_jitter(img, 3, 2, 2, (const double[3]){1, 1, 1.4}, ord);
	int clamped = 0;
	for (int c = 0; c < 3; c++)
		for (int q = 0; q < P; q++) {
			double v = 1.4 * rgb[c * P + q] - 0.4 * gray[q], want = v < 0 ? 0 : v > 1 ? 1 : v;
			clamped += v < 0 || v > 1;
			assert_true(fabs(img[c * P + q] - want) < 1e-6);
		}
	assert_true(clamped > 0);
	/* factor 1 everywhere changes nothing */
	memcpy(img, rgb, sizeof img);
	pl_color_jitter(img, 3, 2, 2, (const double[3]){1, 1, 1}, ord);
	for (int i = 0; i < 3 * P; i++)
		assert_true(fabs(img[i] - rgb[i]) < 1e-7);
	/* the order matters: brightness then contrast differs from contrast then brightness once clamping acts */
	float a[3 * P], b[3 * P];
	memcpy(a, rgb, sizeof a);
	memcpy(b, rgb, sizeof b);
	pl_color_jitter(a, 3, 2, 2, (const double[3]){1.4, 0.6, 1}, (const int[3]){0, 1, 2});
	pl_color_jitter(b, 3, 2, 2, (const double[3]){1.4, 0.6, 1}, (const int[3]){1, 0, 2});
	assert_true(memcmp(a, b, sizeof a) != 0);
	/* one channel: saturation is a no-op, contrast blends with the image's own mean */
	float g1[P] = {0.2f, 0.4f, 0.6f, 1.0f}, g0[P];
	memcpy(g0, g1, sizeof g0);
	pl_color_jitter(g1, 1, 2, 2, (const double[3]){1, 1, 0.6}, ord);
	assert_memory_equal(g1, g0, sizeof g0);
	pl_color_jitter(g1, 1, 2, 2, (const double[3]){1, 0.5, 1}, ord);
	for (int q = 0; q < P; q++)
		assert_true(fabs(g1[q] - (0.5 * g0[q] + 0.5 * 0.55)) < 1e-6);
}

/* jitter=1 on the task: validation and test episodes are untouched, meta-training images change and stay
 * within the normalised image of [0, 1], and the description says so */
static void test_oneshot_jitter(void **state)
{
	(void)state;
	char o1[600];
	PlOneshot *a, *p;
	task_pair("fm7", "jitter=1", o1, &a, &p);
	assert_non_null(strstr(pl_oneshot_describe(a), "jitter=1"));
	assert_null(strstr(pl_oneshot_describe(p), "jitter"));
	enum { B = 8 };
	int T = pl_oneshot_T(a), I = pl_oneshot_in_size(a);
	float *xa = malloc(sizeof(float) * T * B * I), *xp = malloc(sizeof(float) * T * B * I);
	float *y = malloc(sizeof(float) * T * B * 5), mask[10];
	PlRng r;
	same_outside_training(a, p, B, xa, xp, y, mask);
	pl_rng_seed(&r, 5);
	pl_oneshot_sample(a, PL_SPLIT_TRAIN, 0, &r, B, xa, y, mask);
	double mean, inv_std;
	train_norm(&mean, &inv_std);
	double lo = (0 - mean) * inv_std - 1e-5, hi = (1 - mean) * inv_std + 1e-5;
	int unmatched = 0;
	for (int k = 0; k < B * T; k++) {
		const float *xs = xa + (size_t)k * I;
		for (int q = 0; q < SIDE * SIDE; q++)
			assert_true(xs[q] >= lo && xs[q] <= hi);
		/* a jittered image is (almost surely) none of the data's images */
		int found = 0;
		for (int i = 0; i < NCLS * PER && !found; i++) {
			int ok = 1;
			for (int q = 0; q < SIDE * SIDE && ok; q++)
				ok = fabs(xs[q] - (((i * 7 + q * 13) % 256) / 255.0 - mean) * inv_std) < 1e-4;
			found = ok;
		}
		unmatched += !found;
	}
	assert_true(unmatched > B * T / 2);
	const char *bad[2] = {o1, "jitter=2"};
	EXPECT_FAIL(pl_oneshot_new(2, bad, errbuf, sizeof errbuf), "oneshot", "bad value '2' for option jitter");
	free(xa);
	free(xp);
	free(y);
	pl_oneshot_free(a);
	pl_oneshot_free(p);
	remove_fashion_dir("fm7");
}

/* rotate=1: a meta-training class of an episode is a data class turned by 0-3 quarters; the support and
 * the query of a label show the same class with the same turn; other splits are untouched. Each step's
 * image is identified by fitting the normalisation's affine map (increasing) against every turned image. */
static void turn_quarter(const unsigned char *in, unsigned char *out)
{
	/* counter-clockwise: out(y, x) = in(x, S-1-y) */
	for (int y = 0; y < SIDE; y++)
		for (int x = 0; x < SIDE; x++)
			out[y * SIDE + x] = in[x * SIDE + (SIDE - 1 - y)];
}

static int identify_turned(const float *xs, int *turn)
{
	double mean, inv_std;
	train_norm(&mean, &inv_std);
	for (int i = 0; i < NCLS * PER; i++) {
		unsigned char r[SIDE * SIDE], t[SIDE * SIDE];
		for (int p = 0; p < SIDE * SIDE; p++)
			r[p] = (unsigned char)((i * 7 + p * 13) % 256); /* idx_images, pattern 1 */
		for (int k = 0; k < 4; k++) {
			int ok = 1;
			for (int p = 0; p < SIDE * SIDE && ok; p++)
				ok = fabs(xs[p] - (r[p] / 255.0 - mean) * inv_std) < 1e-4;
			if (ok) {
				*turn = k;
				return i;
			}
			turn_quarter(r, t);
			memcpy(r, t, sizeof r);
		}
	}
	return -1;
}

static void test_oneshot_rotate(void **state)
{
	(void)state;
	char o1[600];
	PlOneshot *a, *p;
	task_pair("fm5", "rotate=1", o1, &a, &p);
	enum { B = 16 };
	int T = pl_oneshot_T(a), I = pl_oneshot_in_size(a);
	float *xa = malloc(sizeof(float) * T * B * I), *xp = malloc(sizeof(float) * T * B * I);
	float *y = malloc(sizeof(float) * T * B * 5), mask[10];
	PlRng r;
	same_outside_training(a, p, B, xa, xp, y, mask); /* held-out classes are not turned */
	pl_rng_seed(&r, 5);
	pl_oneshot_sample(a, PL_SPLIT_TRAIN, 0, &r, B, xa, y, mask);
	int turns_seen[4] = {0}, repeated_class = 0;
	for (int b = 0; b < B; b++) {
		int cls_of[5] = {0}, turn_of[5] = {0}, base_count[NCLS] = {0};
		for (int s = 0; s < T; s++) {
			const float *xs = xa + ((size_t)s * B + b) * I, *ys = y + ((size_t)s * B + b) * 5;
			int lab = 0;
			while (ys[lab] != 1.0f)
				lab++;
			int k = -1, i = identify_turned(xs, &k);
			assert_true(i >= 0);
			assert_true(i % NCLS < 5); /* a meta-training class */
			if (s < 5) {
				cls_of[lab] = i % NCLS;
				turn_of[lab] = k;
				base_count[i % NCLS]++;
				turns_seen[k]++;
			} else {
				assert_int_equal(i % NCLS, cls_of[lab]);
				assert_int_equal(k, turn_of[lab]);
			}
		}
		for (int c = 0; c < NCLS; c++)
			repeated_class += base_count[c] > 1; /* two turns of one class in an episode: distinct classes */
	}
	for (int k = 0; k < 4; k++)
		assert_true(turns_seen[k] > 0);
	assert_true(repeated_class > 0);
	free(xa);
	free(xp);
	free(y);
	pl_oneshot_free(a);
	pl_oneshot_free(p);
	remove_fashion_dir("fm5");
}

static void test_oneshot_errors(void **state)
{
	(void)state;
	make_fashion_dir("fm4", 0);
	char o1[600];
	snprintf(o1, sizeof o1, "dir=%s/fm4", tmpdir);
	const char *six[2] = {o1, "ways=6"};
	EXPECT_FAIL(pl_task_new("oneshot", 2, six, errbuf, sizeof errbuf), "fm4", "fewer than ways=6");
	const char *unk[1] = {"colour=red"};
	EXPECT_FAIL(pl_task_new("oneshot", 1, unk, errbuf, sizeof errbuf), "oneshot", "no option 'colour'");
	const char *cif[1] = {"data=cifar_fs"};
	unsetenv("PLASTC_ONESHOT_DIR");
	EXPECT_FAIL(pl_task_new("oneshot", 1, cif, errbuf, sizeof errbuf), "cifar_fs", "needs dir=");
	const char *nodir[1] = {"dir=/nonexistent/fashion"};
	EXPECT_FAIL(pl_task_new("oneshot", 1, nodir, errbuf, sizeof errbuf), "/nonexistent/fashion/train-images", "cannot open");
	remove_fashion_dir("fm4");
}

/* CIFAR-FS through the task with the class lists of the repository: every name of data/cifar_fs must be
 * a CIFAR-100 class, the three lists disjoint, 64 + 16 + 20 = 100. Checked against a generated
 * fine_label_names.txt in CIFAR-100 label order (alphabetical) built from the lists themselves. */
static void test_cifar_fs_lists(void **state)
{
	(void)state;
	static const char *const split[3] = {"train", "val", "test"};
	static const int want[3] = {64, 16, 20};
	char all[100][128];
	int n = 0;
	for (int s = 0; s < 3; s++) {
		char p[1024], line[128];
		snprintf(p, sizeof p, "%s/data/cifar_fs/%s.txt", PLASTC_ABS_SRCDIR, split[s]);
		FILE *f = fopen(p, "r");
		assert_non_null(f);
		int k = 0;
		while (fgets(line, sizeof line, f)) {
			line[strcspn(line, "\r\n")] = 0;
			if (!line[0] || line[0] == '#')
				continue;
			assert_true(n < 100);
			for (int j = 0; j < n; j++)
				assert_true(strcmp(all[j], line) != 0); /* disjoint */
			snprintf(all[n++], sizeof all[0], "%s", line);
			k++;
		}
		fclose(f);
		assert_int_equal(k, want[s]);
	}
	assert_int_equal(n, 100);
}

/* Random damage: flip, truncate or extend valid files many times; every load either succeeds or fails
 * with a message naming the file (under ASan/UBSan this also proves no out-of-bounds access). */
static unsigned mut_seed = 2024;
static unsigned mrand(unsigned n)
{
	mut_seed = mut_seed * 1103515245u + 12345u;
	return (mut_seed >> 8) % n;
}

static size_t mutate(unsigned char *buf, size_t n, size_t cap)
{
	switch (mrand(3)) {
	case 0: /* flip a few bytes */
		for (unsigned k = 0, m = 1 + mrand(4); k < m; k++)
			buf[mrand((unsigned)n)] ^= (unsigned char)(1 + mrand(255));
		return n;
	case 1: /* truncate */
		return mrand((unsigned)n);
	default: /* extend with garbage */
	{
		size_t add = 1 + mrand(16);
		if (n + add > cap)
			add = cap - n;
		for (size_t k = 0; k < add; k++)
			buf[n + k] = (unsigned char)mrand(256);
		return n + add;
	}
	}
}

static size_t read_all(const char *path, unsigned char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static void test_mutations(void **state)
{
	(void)state;
	static unsigned char good[70000], bad[70100];
	int ok = 0, failed = 0;
	/* IDX images, plain and gzip */
	size_t ni = idx_images(good, 0x803, 7, 3, 4, 1);
	unsigned char lab[16];
	size_t nl = idx_labels(lab, 7, 3);
	write_file(tpath("ml.idx"), lab, nl);
	for (int it = 0; it < 300; it++) {
		memcpy(bad, good, ni);
		size_t n = mutate(bad, ni, sizeof bad);
		const char *name = it % 2 ? "m.idx.gz" : "m.idx";
		if (it % 2)
			write_gz(tpath(name), bad, n);
		else
			write_file(tpath(name), bad, n);
		errbuf[0] = 0;
		PlImageSet *s = pl_idx_load(tpath(name), tpath("ml.idx"), errbuf, sizeof errbuf);
		if (s) {
			ok++;
			pl_imageset_free(s);
		} else {
			failed++;
			assert_non_null(strstr(errbuf, name));
		}
	}
	/* a gzip stream damaged after compression */
	write_gz(tpath("g.gz"), good, ni);
	size_t ng = read_all(tpath("g.gz"), good, sizeof good);
	for (int it = 0; it < 300; it++) {
		memcpy(bad, good, ng);
		size_t n = mutate(bad, ng, sizeof bad);
		write_file(tpath("m.gz"), bad, n);
		errbuf[0] = 0;
		PlImageSet *s = pl_idx_load(tpath("m.gz"), tpath("ml.idx"), errbuf, sizeof errbuf);
		if (s) {
			ok++;
			pl_imageset_free(s);
		} else {
			failed++;
			assert_non_null(strstr(errbuf, "m.gz"));
		}
	}
#if defined(HAVE_LIBPNG) && defined(HAVE_LIBJPEG)
	/* PNG and JPEG */
	static const char *const img[2] = {"m0.png", "m0.jpg"};
	write_png(tpath(img[0]), 9, 7, 1);
	write_jpeg(tpath(img[1]), 9, 7, 1);
	uint8_t out[3 * 8 * 8];
	for (int f = 0; f < 2; f++) {
		size_t n0 = read_all(tpath(img[f]), good, sizeof good);
		for (int it = 0; it < 300; it++) {
			memcpy(bad, good, n0);
			size_t n = mutate(bad, n0, sizeof bad);
			const char *name = f ? "m.jpg" : "m.png";
			write_file(tpath(name), bad, n);
			errbuf[0] = 0;
			if (pl_image_file_rgb(tpath(name), 8, out, errbuf, sizeof errbuf) == 0)
				ok++;
			else {
				failed++;
				assert_non_null(strstr(errbuf, name));
			}
		}
		unlink(tpath(img[f]));
	}
	unlink(tpath("m.png"));
	unlink(tpath("m.jpg"));
#endif
	fprintf(stderr, "damaged files: %d loaded, %d rejected with a message\n", ok, failed);
	assert_true(failed > 0);
	unlink(tpath("ml.idx"));
	unlink(tpath("m.idx"));
	unlink(tpath("m.idx.gz"));
	unlink(tpath("g.gz"));
	unlink(tpath("m.gz"));
}

/* the installed data set, when present */
static void test_fashion_installed(void **state)
{
	(void)state;
	const char *d = "/usr/share/datasets/fashion-mnist";
	char a[256], b[256];
	snprintf(a, sizeof a, "%s/train-images-idx3-ubyte.gz", d);
	snprintf(b, sizeof b, "%s/train-labels-idx1-ubyte.gz", d);
	if (access(a, R_OK) != 0) {
		fprintf(stderr, "no %s: skipped\n", a);
		skip();
	}
	PlImageSet *s = pl_idx_load(a, b, errbuf, sizeof errbuf);
	assert_non_null(s);
	assert_true(s->n == 60000 && s->H == 28 && s->W == 28 && s->n_classes == 10);
	int cnt[10] = {0};
	for (int i = 0; i < s->n; i++)
		cnt[s->label[i]]++;
	for (int k = 0; k < 10; k++)
		assert_int_equal(cnt[k], 6000);
	pl_imageset_free(s);
	const char *none[1] = {"data=fashion"};
	unsetenv("PLASTC_ONESHOT_DIR");
	PlTask *t = pl_task_new("oneshot", 1, none, errbuf, sizeof errbuf);
	assert_non_null(t);
	assert_int_equal(pl_task_in_size(t), 28 * 28 + 5);
	enum { B = 4 };
	float *x = malloc(sizeof(float) * 10 * B * (28 * 28 + 5)), *y = malloc(sizeof(float) * 10 * B * 5), mask[10];
	PlRng r;
	pl_rng_seed(&r, 1);
	pl_task_set_split(t, PL_SPLIT_TEST);
	pl_task_sample(t, &r, B, x, y, mask);
	double mean = 0;
	for (int i = 0; i < 28 * 28; i++)
		mean += x[i];
	assert_true(isfinite(mean));
	free(x);
	free(y);
	pl_task_free(t);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/plastc-fsc-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	static const char *const files[] = {"i.idx", "l.idx.gz", "badmagic.idx", "trunc.idx.gz", "hdr.idx", "long.idx",
		"zero.idx", "huge.idx", "six.idx", "crc.idx.gz", "train.bin", "test.bin", "list.txt", "bad.txt", "dup.txt",
		"fine_label_names.txt"};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++)
		unlink(tpath(files[i]));
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idx),
		cmocka_unit_test(test_cifar),
		cmocka_unit_test(test_mini),
		cmocka_unit_test(test_mini_task_pad),
		cmocka_unit_test(test_oneshot_episodes),
		cmocka_unit_test(test_oneshot_splits),
		cmocka_unit_test(test_oneshot_augment),
		cmocka_unit_test(test_color_jitter),
		cmocka_unit_test(test_oneshot_jitter),
		cmocka_unit_test(test_oneshot_rotate),
		cmocka_unit_test(test_oneshot_easy),
		cmocka_unit_test(test_oneshot_grow),
		cmocka_unit_test(test_oneshot_errors),
		cmocka_unit_test(test_cifar_fs_lists),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_fashion_installed),
	};
	return cmocka_run_group_tests_name("fsc_data", tests, setup, teardown);
}
